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
	"errors"
	"flag"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	partnersv1alpha1 "github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/controllers"
	"github.com/roompro/partner-operator/internal/controlplane"
)

type options struct {
	localControlPlane bool
	localKubeconfig   string
	metricsAddr       string
	probeAddr         string
	leaderElect       bool
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
		"Enable leader election, so that only one replica reconciles at a time.")
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
	if opts.localControlPlane {
		cp, startErr := controlplane.Start(controlplane.Options{KubeconfigPath: opts.localKubeconfig})
		if startErr != nil {
			return startErr
		}
		defer func() {
			log.Info("stopping the local control plane")
			err = errors.Join(err, cp.Stop())
		}()
		cfg = cp.Config
		fmt.Fprintf(os.Stderr, "\nLocal control plane is up. In another shell:\n\n"+
			"    export KUBECONFIG=%s\n    kubectl apply -f config/samples/\n    kubectl get roompro\n\n"+
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
		LeaderElection:         opts.leaderElect,
		LeaderElectionID:       "partner-operator.partners.roompro.io",
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := controllers.SetupWithManager(mgr, controllers.Options{}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	log.Info("starting the manager")
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}
