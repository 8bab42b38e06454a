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
	"path/filepath"
	"strings"

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
	// INFO, as the shipped manager logs, but as lines a person reads
	// rather than JSON, unless --zap-encoder says otherwise.
	var zapOpts zap.Options
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	if zapOpts.NewEncoder == nil {
		zap.ConsoleEncoder()(&zapOpts)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := run(ctrl.SetupSignalHandler(), opts, *kubeconfig); err != nil {
		ctrl.Log.WithName("setup").Error(err, "manager exited")
		os.Exit(1)
	}
}

func run(ctx context.Context, opts managercmd.Options, kubeconfig string) (err error) {
	log := ctrl.Log.WithName("setup")
	// The banner names the kubeconfig by its absolute path, which works
	// from any shell.
	if kubeconfig, err = filepath.Abs(kubeconfig); err != nil {
		return fmt.Errorf("locating the kubeconfig: %w", err)
	}
	kubectl, err := kubectlPath()
	if err != nil {
		return err
	}
	cp, err := controlplane.Start(controlplane.Options{KubeconfigPath: kubeconfig, Webhooks: true, ControllerManager: true})
	if err != nil {
		return err
	}
	defer func() {
		log.Info("stopping the local control plane")
		if err = errors.Join(err, cp.Stop()); err == nil {
			log.Info("stopped; the local control plane's data is removed")
		}
	}()
	// The manager runs as its own user, so that the admission webhooks tell
	// its writes from the admin's (the kubeconfig printed below).
	cfg, err := cp.AddUser("partner-operator", "system:masters")
	if err != nil {
		return err
	}
	// The control plane calls the webhooks where it says, with the
	// certificate it issued: there is nothing to provision. Its apiserver
	// presents a client certificate of the CA it issued.
	opts.WebhookHost, opts.WebhookPort, opts.WebhookCertDir = cp.Webhook.Host, cp.Webhook.Port, cp.Webhook.CertDir
	callers := cp.Webhook.Callers()
	opts.WebhookClientCAFile, opts.WebhookClientAllowedNames = callers.ClientCAFile, strings.Join(callers.AllowedNames, ",")
	if opts.CertProvisioning == managercmd.SelfSignedCertificates {
		opts.CertProvisioning = managercmd.ExternalCertificates
	}
	opts.Ready = func() { fmt.Fprint(os.Stderr, banner(kubeconfig, kubectl)) }
	return managercmd.Run(ctx, cfg, opts)
}

// kubectlPath is the kubectl to tell the user of: $KUBECTL (the Makefile
// passes the one hack/setup-envtest.sh built), else that one, found as the
// control plane finds its binaries.
func kubectlPath() (string, error) {
	if kubectl := os.Getenv("KUBECTL"); kubectl != "" {
		return filepath.Abs(kubectl)
	}
	dir, err := controlplane.BinaryDir()
	if err != nil {
		return "", err
	}
	return filepath.Abs(filepath.Join(dir, "kubectl"))
}

// banner is what a person needs to start, printed once the manager runs.
func banner(kubeconfig, kubectl string) string {
	return fmt.Sprintf(`
The local control plane and the partner-operator are running. In another shell:

    export KUBECONFIG=%s
    alias kubectl=%s    # built by make setup-envtest; or your own kubectl, v1.36 to v1.38
    kubectl apply -f config/samples/
    kubectl get roompro

The apiserver asks this manager's webhooks: partner users (kubectl --as alice@contoso.com) see only their rooms.
Ctrl-C stops the manager and the control plane and removes their data.

`, kubeconfig, kubectl)
}
