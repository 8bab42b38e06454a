// Command manager runs the partner-operator: its controllers and, in later
// releases, its admission and authorization webhooks.
//
// With --local-control-plane it first starts its own etcd and kube-apiserver
// on loopback (see internal/controlplane) and runs against them: the embedded
// mode behind `make run`. Otherwise it runs against the cluster of
// --kubeconfig, $KUBECONFIG or the in-cluster configuration.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	partnersv1alpha1 "github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/operator"
)

type options struct {
	localControlPlane bool
	localKubeconfig   string
	metricsAddr       string
	probeAddr         string
	leaderElect       bool
	webhookPort       int
	webhookCertDir    string
}

func main() {
	var opts options
	flag.BoolVar(&opts.localControlPlane, "local-control-plane", false,
		"Start a local etcd and kube-apiserver (binaries from hack/setup-envtest.sh) and run against them instead of a cluster.")
	flag.StringVar(&opts.localKubeconfig, "local-kubeconfig", "bin/local/kubeconfig",
		"With --local-control-plane: where to write the admin kubeconfig of the local control plane.")
	flag.StringVar(&opts.metricsAddr, "metrics-bind-address", "0",
		"The address the metrics endpoint binds to, for example :8443; 0 disables it.")
	flag.StringVar(&opts.probeAddr, "health-probe-bind-address", ":8081", "The address the health probe endpoint binds to.")
	flag.BoolVar(&opts.leaderElect, "leader-elect", false,
		"Enable leader election, so that only one replica reconciles at a time. Every replica serves the webhooks.")
	flag.IntVar(&opts.webhookPort, "webhook-port", 9443, "The port of the webhook server (admission webhooks and /authorize).")
	flag.StringVar(&opts.webhookCertDir, "webhook-cert-dir", "",
		"The directory with the webhook server's tls.crt and tls.key. Default: controller-runtime's, <temp>/k8s-webhook-server/serving-certs.")
	zapOpts := zap.Options{Development: true}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := run(ctrl.SetupSignalHandler(), opts); err != nil {
		ctrl.Log.WithName("setup").Error(err, "manager exited")
		os.Exit(1)
	}
}

func run(ctx context.Context, opts options) (err error) {
	log := ctrl.Log.WithName("setup")
	var cfg *rest.Config
	webhookOpts := webhook.Options{Port: opts.webhookPort, CertDir: opts.webhookCertDir, TLSOpts: []func(*tls.Config){
		func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 },
	}}
	if opts.localControlPlane {
		cp, startErr := controlplane.Start(controlplane.Options{KubeconfigPath: opts.localKubeconfig, Webhooks: true})
		if startErr != nil {
			return startErr
		}
		defer func() {
			log.Info("stopping the local control plane")
			err = errors.Join(err, cp.Stop())
		}()
		cfg = cp.Config
		webhookOpts.Host, webhookOpts.Port, webhookOpts.CertDir = cp.Webhook.Host, cp.Webhook.Port, cp.Webhook.CertDir
		fmt.Fprintf(os.Stderr, "\nLocal control plane is up. In another shell:\n\n"+
			"    export KUBECONFIG=%s\n    kubectl apply -f config/samples/\n    kubectl get roompro\n\n"+
			"The apiserver asks this manager's webhooks: partner users (--as alice@contoso.com) see only their rooms.\n"+
			"Ctrl-C stops the manager and the control plane and removes their data.\n\n", opts.localKubeconfig)
	} else if cfg, err = ctrl.GetConfig(); err != nil {
		return fmt.Errorf("loading the cluster configuration (use --kubeconfig, or --local-control-plane for a local one): %w", err)
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(partnersv1alpha1.AddToScheme(scheme))

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: opts.metricsAddr},
		HealthProbeBindAddress: opts.probeAddr,
		WebhookServer:          webhook.NewServer(webhookOpts),
		LeaderElection:         opts.leaderElect,
		LeaderElectionID:       "partner-operator.partners.roompro.io",
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	operatorUser, err := operator.WhoAmI(ctx, cfg)
	if err != nil {
		return err
	}
	log.Info("the operator's own requests are recognised by their user", "user", operatorUser)
	if _, err := operator.Setup(mgr, operator.Options{OperatorUser: operatorUser}); err != nil {
		return err
	}
	log.Info("starting the manager")
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}
