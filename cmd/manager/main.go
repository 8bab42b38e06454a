// Command manager runs the partner-operator: its controllers, its admission
// webhooks and its authorization webhook, against the cluster of
// --kubeconfig, $KUBECONFIG or the in-cluster configuration. It is the
// binary the image ships (Dockerfile); cmd/local runs the same manager on a
// local control plane instead.
package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/roompro/partner-operator/internal/managercmd"
)

func main() {
	var opts managercmd.Options
	opts.BindFlags(flag.CommandLine)
	// Production logging: JSON lines at INFO. Authorization decisions are
	// logged only at V(1) (--zap-log-level=debug); denials are counted by
	// cause in partner_operator_authorization_denials_total instead.
	var zapOpts zap.Options
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := run(opts); err != nil {
		ctrl.Log.WithName("setup").Error(err, "manager exited")
		os.Exit(1)
	}
}

func run(opts managercmd.Options) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading the cluster configuration (use --kubeconfig, or `make run` for a local control plane): %w", err)
	}
	return managercmd.Run(ctrl.SetupSignalHandler(), cfg, opts)
}
