// Command local runs the partner-operator's manager on a control plane of
// its own: it starts etcd, kube-apiserver and kube-controller-manager on
// loopback (binaries from hack/setup-envtest.sh, see internal/controlplane),
// the apiserver wired to the manager's webhooks, and runs the manager of
// cmd/manager against them. The controller manager's namespace controller
// and garbage collector make `kubectl delete namespace` and owner references
// work as on a cluster. This is
// `make run`. It is its own binary because the control plane is envtest's,
// test code that the shipped manager must not link.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/managercmd"
)

func main() {
	var opts managercmd.Options
	opts.BindFlags(flag.CommandLine)
	kubeconfig := flag.String("local-kubeconfig", "bin/local/kubeconfig",
		"Where to write the admin kubeconfig of the local control plane.")
	zapOpts := zap.Options{Development: true}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := run(ctrl.SetupSignalHandler(), opts, *kubeconfig); err != nil {
		ctrl.Log.WithName("setup").Error(err, "manager exited")
		os.Exit(1)
	}
}

func run(ctx context.Context, opts managercmd.Options, kubeconfig string) (err error) {
	log := ctrl.Log.WithName("setup")
	cp, err := controlplane.Start(controlplane.Options{KubeconfigPath: kubeconfig, Webhooks: true, ControllerManager: true})
	if err != nil {
		return err
	}
	defer func() {
		log.Info("stopping the local control plane")
		err = errors.Join(err, cp.Stop())
	}()
	// The manager runs as its own user, so that the admission webhooks tell
	// its writes from the admin's (the kubeconfig printed below).
	cfg, err := cp.AddUser("partner-operator", "system:masters")
	if err != nil {
		return err
	}
	// The control plane calls the webhooks where it says, with the
	// certificate it issued: there is nothing to provision.
	opts.WebhookHost, opts.WebhookPort, opts.WebhookCertDir = cp.Webhook.Host, cp.Webhook.Port, cp.Webhook.CertDir
	if opts.CertProvisioning == managercmd.SelfSignedCertificates {
		opts.CertProvisioning = managercmd.ExternalCertificates
	}
	fmt.Fprintf(os.Stderr, "\nLocal control plane is up. In another shell:\n\n"+
		"    export KUBECONFIG=%s\n    kubectl apply -f config/samples/\n    kubectl get roompro\n\n"+
		"The apiserver asks this manager's webhooks: partner users (--as alice@contoso.com) see only their rooms.\n"+
		"Ctrl-C stops the manager and the control plane and removes their data.\n\n", kubeconfig)
	return managercmd.Run(ctx, cfg, opts)
}
