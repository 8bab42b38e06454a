// Command manager runs the partner-operator: its controllers, its admission
// webhooks and its authorization webhook.
//
// With --local-control-plane it first starts its own etcd and kube-apiserver
// on loopback (see internal/controlplane), wired to its webhooks, and runs
// against them: the embedded mode behind `make run`. Otherwise it runs against
// the cluster of --kubeconfig, $KUBECONFIG or the in-cluster configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/roompro/partner-operator/internal/certs"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/operator"
)

type options struct {
	localControlPlane bool
	localKubeconfig   string
	metricsAddr       string
	metricsSecure     bool
	probeAddr         string
	pprofAddr         string
	leaderElect       bool
	webhookPort       int
	webhookCertDir    string

	// Built-in certificate provisioning (--cert-provisioning=self-signed).
	certProvisioning  string
	namespace         string
	certSecret        string
	webhookService    string
	mutatingWebhooks  string
	validatingWebhook string

	tenantManagerGroup string
}

func main() {
	var opts options
	flag.BoolVar(&opts.localControlPlane, "local-control-plane", false,
		"Start a local etcd and kube-apiserver (binaries from hack/setup-envtest.sh) and run against them instead of a cluster.")
	flag.StringVar(&opts.localKubeconfig, "local-kubeconfig", "bin/local/kubeconfig",
		"With --local-control-plane: where to write the admin kubeconfig of the local control plane.")
	flag.StringVar(&opts.metricsAddr, "metrics-bind-address", "0",
		"The address the metrics endpoint binds to, for example :8443; 0 disables it.")
	flag.BoolVar(&opts.metricsSecure, "metrics-secure", true,
		"Serve metrics over HTTPS, to callers the apiserver authenticates and authorises (get on /metrics).")
	flag.StringVar(&opts.probeAddr, "health-probe-bind-address", ":8081", "The address the health probe endpoint binds to.")
	flag.StringVar(&opts.pprofAddr, "pprof-bind-address", "0", "The address of the Go profiling endpoints (/debug/pprof/); \"0\" disables them.")
	flag.BoolVar(&opts.leaderElect, "leader-elect", false,
		"Enable leader election, so that only one replica reconciles at a time. Every replica serves the webhooks.")
	flag.IntVar(&opts.webhookPort, "webhook-port", 9443, "The port of the webhook server (admission webhooks and /authorize).")
	flag.StringVar(&opts.webhookCertDir, "webhook-cert-dir", filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs"),
		"The directory with the webhook server's tls.crt and tls.key.")
	flag.StringVar(&opts.certProvisioning, "cert-provisioning", "external",
		"Who provides the webhook serving certificate: external (cert-manager or a mounted Secret) or self-signed (the operator issues and rotates it, and patches the caBundle of its webhook configurations).")
	flag.StringVar(&opts.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "The operator's namespace (self-signed certificates).")
	flag.StringVar(&opts.certSecret, "cert-secret", "partner-operator-webhook-server-cert", "The Secret of the self-signed certificate.")
	flag.StringVar(&opts.webhookService, "webhook-service", "partner-operator-webhook-service", "The Service in front of the webhook server (self-signed certificates).")
	flag.StringVar(&opts.mutatingWebhooks, "mutating-webhook-configuration", "partner-operator-mutating-webhook-configuration",
		"The MutatingWebhookConfiguration whose caBundle the self-signed provisioning keeps current.")
	flag.StringVar(&opts.validatingWebhook, "validating-webhook-configuration", "partner-operator-validating-webhook-configuration",
		"The ValidatingWebhookConfiguration whose caBundle the self-signed provisioning keeps current.")
	flag.StringVar(&opts.tenantManagerGroup, "tenant-manager-group-suffix", "tenant-managers",
		"Members of <partner-domain>:<suffix> are the partner's tenant managers.")
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
	if err := setMemoryLimit(); err != nil {
		return err
	}
	var cfg *rest.Config
	webhookOpts := webhook.Options{Port: opts.webhookPort, CertDir: opts.webhookCertDir}
	if opts.localControlPlane {
		cp, startErr := controlplane.Start(controlplane.Options{KubeconfigPath: opts.localKubeconfig, Webhooks: true})
		if startErr != nil {
			return startErr
		}
		defer func() {
			log.Info("stopping the local control plane")
			err = errors.Join(err, cp.Stop())
		}()
		// The manager runs as its own user, so that the admission webhooks tell
		// its writes from the admin's (the kubeconfig printed below).
		if cfg, err = cp.AddUser("partner-operator", "system:masters"); err != nil {
			return err
		}
		webhookOpts.Host, webhookOpts.Port, webhookOpts.CertDir = cp.Webhook.Host, cp.Webhook.Port, cp.Webhook.CertDir
		fmt.Fprintf(os.Stderr, "\nLocal control plane is up. In another shell:\n\n"+
			"    export KUBECONFIG=%s\n    kubectl apply -f config/samples/\n    kubectl get roompro\n\n"+
			"The apiserver asks this manager's webhooks: partner users (--as alice@contoso.com) see only their rooms.\n"+
			"Ctrl-C stops the manager and the control plane and removes their data.\n\n", opts.localKubeconfig)
	} else if cfg, err = ctrl.GetConfig(); err != nil {
		return fmt.Errorf("loading the cluster configuration (use --kubeconfig, or --local-control-plane for a local one): %w", err)
	}

	var provisioner *certs.Provisioner
	if opts.certProvisioning == "self-signed" && !opts.localControlPlane {
		if provisioner, err = provisionCertificate(ctx, cfg, opts); err != nil {
			return err
		}
	} else if opts.certProvisioning != "external" && opts.certProvisioning != "self-signed" {
		return fmt.Errorf("--cert-provisioning=%q: want external or self-signed", opts.certProvisioning)
	}

	operatorOpts := operator.Options{
		TenantManagerGroup:     opts.tenantManagerGroup,
		Webhook:                webhookOpts,
		MetricsBindAddress:     opts.metricsAddr,
		MetricsSecure:          opts.metricsSecure,
		HealthProbeBindAddress: opts.probeAddr,
		PprofBindAddress:       opts.pprofAddr,
	}
	if opts.leaderElect {
		operatorOpts.LeaderElection = &operator.LeaderElection{}
	}
	mgr, err := operator.New(ctx, cfg, operatorOpts)
	if err != nil {
		return err
	}
	if provisioner != nil {
		if err := mgr.Add(provisioner); err != nil {
			return fmt.Errorf("adding the certificate provisioner: %w", err)
		}
	}
	log.Info("starting the manager")
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}

// provisionCertificate issues (or loads) the self-signed serving certificate
// before the webhook server starts, which needs the files to exist, and
// returns the provisioner that renews it afterwards.
func provisionCertificate(ctx context.Context, cfg *rest.Config, opts options) (*certs.Provisioner, error) {
	if opts.namespace == "" {
		return nil, errors.New("--cert-provisioning=self-signed needs --namespace (or POD_NAMESPACE)")
	}
	c, err := client.New(cfg, client.Options{Scheme: operator.NewScheme()})
	if err != nil {
		return nil, fmt.Errorf("creating a client for certificate provisioning: %w", err)
	}
	svc := opts.webhookService
	p := &certs.Provisioner{
		Client: c, Clock: clock.RealClock{}, Namespace: opts.namespace, SecretName: opts.certSecret,
		DNSNames: []string{svc + "." + opts.namespace + ".svc", svc + "." + opts.namespace + ".svc.cluster.local", svc + "." + opts.namespace, svc},
		CertDir:  opts.webhookCertDir, MutatingWebhookConfiguration: opts.mutatingWebhooks,
		ValidatingWebhookConfiguration: opts.validatingWebhook,
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := p.Ensure(ctx); err != nil {
		return nil, fmt.Errorf("provisioning the webhook serving certificate: %w", err)
	}
	return p, nil
}

// setMemoryLimit sets the runtime's soft memory limit below the container's
// (operator.SoftMemoryLimit), so that the heap is collected harder before
// the kernel kills the process. GOMEMLIMIT, when set, wins.
func setMemoryLimit() error {
	container := os.Getenv(operator.ContainerMemoryLimitEnv)
	if container == "" || os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	limit, err := operator.SoftMemoryLimit(container)
	if err != nil {
		return err
	}
	debug.SetMemoryLimit(limit)
	ctrl.Log.WithName("setup").Info("set the Go runtime's memory limit", "bytes", limit, "containerLimit", container)
	return nil
}
