// Package managercmd is the manager's command line: its flags, the
// certificate provisioning and memory limit they ask for, and running the
// operator (internal/operator) with them. The two entry points share it:
// cmd/manager, the binary that ships, runs against a cluster; cmd/local
// first starts a local control plane (`make run`). It links no control
// plane and no test code, so that the shipped binary does not either.
package managercmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/roompro/partner-operator/internal/certs"
	"github.com/roompro/partner-operator/internal/freshness"
	"github.com/roompro/partner-operator/internal/operator"
	"github.com/roompro/partner-operator/internal/webhookauth"
	"github.com/roompro/partner-operator/internal/webhookserver"
)

// The values of --cert-provisioning.
const (
	ExternalCertificates   = "external"
	SelfSignedCertificates = "self-signed"
)

// DefaultGracefulShutdownTimeout is the default of --graceful-shutdown-timeout:
// longer than the webhook server's request deadline, so that a request in
// flight at SIGTERM is answered, and short enough for config/manager's
// terminationGracePeriodSeconds (30 s) after its preStop delay (10 s).
const DefaultGracefulShutdownTimeout = 15 * time.Second

// Options are the manager's command-line options.
type Options struct {
	MetricsAddr   string
	MetricsSecure bool
	ProbeAddr     string
	PprofAddr     string
	LeaderElect   bool

	// GracefulShutdownTimeout bounds the manager's stop after SIGTERM.
	GracefulShutdownTimeout time.Duration

	// WebhookHost is the address the webhook server binds to; "" is every
	// interface. It has no flag: cmd/local sets it to its control plane's.
	WebhookHost    string
	WebhookPort    int
	WebhookCertDir string

	// Who may call the webhook server (internal/webhookauth).
	WebhookClientCAFile       string
	WebhookClientAllowedNames string
	InsecureAdmissionCallers  bool

	// Built-in certificate provisioning (--cert-provisioning=self-signed).
	CertProvisioning  string
	Namespace         string
	CertSecret        string
	WebhookService    string
	MutatingWebhooks  string
	ValidatingWebhook string

	TenantManagerGroup string

	// Ready, when set, is called once, when the manager's caches have
	// synced: cmd/local tells the person at the console then what to do.
	Ready func()

	// The heartbeat that tells how fresh the authorization index is
	// (internal/freshness). Namespace above is where its Lease lives
	// ("default" when it is empty).
	HeartbeatPeriod   time.Duration
	MaxIndexStaleness time.Duration
	// PodName and PodUID are the replica's Pod (the downward API's
	// metadata.name and metadata.uid): its name names the heartbeat, and
	// the Pod owns it, so that the garbage collector removes the heartbeat
	// of a replica that died.
	PodName, PodUID string
}

// BindFlags binds the manager's flags to o, with their defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", "0",
		"The address the metrics endpoint binds to, for example :8443; 0 disables it.")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", true,
		"Serve metrics over HTTPS, to callers the apiserver authenticates and authorises (get on /metrics).")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "The address the health probe endpoint binds to.")
	fs.StringVar(&o.PprofAddr, "pprof-bind-address", "0", "The address of the Go profiling endpoints (/debug/pprof/); \"0\" disables them.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false,
		"Enable leader election, so that only one replica reconciles at a time. Every replica serves the webhooks.")
	fs.DurationVar(&o.GracefulShutdownTimeout, "graceful-shutdown-timeout", DefaultGracefulShutdownTimeout,
		"How long the manager may take to stop after SIGTERM: the webhook server finishes the requests in flight (each at most "+
			webhookserver.DefaultRequestTimeout.String()+"). Keep the pod's terminationGracePeriodSeconds above its preStop delay plus this.")
	fs.IntVar(&o.WebhookPort, "webhook-port", 9443, "The port of the webhook server (admission webhooks and /authorize).")
	fs.StringVar(&o.WebhookCertDir, "webhook-cert-dir", filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs"),
		"The directory with the webhook server's tls.crt and tls.key.")
	fs.StringVar(&o.WebhookClientCAFile, "webhook-client-ca-file", "",
		"A PEM file of the CAs that sign the kube-apiserver's client certificate for the webhooks (re-read when it changes). "+
			"Required, unless --insecure-allow-unauthenticated-admission-callers.")
	fs.StringVar(&o.WebhookClientAllowedNames, "webhook-client-allowed-names", webhookauth.DefaultAllowedName,
		"Comma-separated common names of the client certificates (of --webhook-client-ca-file) taken for the kube-apiserver's; "+
			"other certificates of that CA are refused.")
	fs.BoolVar(&o.InsecureAdmissionCallers, "insecure-allow-unauthenticated-admission-callers", false,
		"Let any caller reach the admission webhooks, with or without a client certificate: only for clusters whose apiserver "+
			"cannot be given one (a WARNING is logged). POST /authorize still answers only the apiserver's certificate and "+
			"bearer tokens allowed to create subjectaccessreviews.partners.roompro.io.")
	fs.StringVar(&o.CertProvisioning, "cert-provisioning", ExternalCertificates,
		"Who provides the webhook serving certificate: external (cert-manager or a mounted Secret) or self-signed (the operator issues and rotates it, and patches the caBundle of its webhook configurations).")
	fs.StringVar(&o.Namespace, "namespace", os.Getenv("POD_NAMESPACE"),
		"The operator's namespace: where each replica writes its heartbeat Lease (default when empty) and keeps the self-signed certificate.")
	fs.StringVar(&o.CertSecret, "cert-secret", "partner-operator-webhook-server-cert", "The Secret of the self-signed certificate.")
	fs.StringVar(&o.WebhookService, "webhook-service", "partner-operator-webhook-service", "The Service in front of the webhook server (self-signed certificates).")
	fs.StringVar(&o.MutatingWebhooks, "mutating-webhook-configuration", "partner-operator-mutating-webhook-configuration",
		"The MutatingWebhookConfiguration whose caBundle the self-signed provisioning keeps current.")
	fs.StringVar(&o.ValidatingWebhook, "validating-webhook-configuration", "partner-operator-validating-webhook-configuration",
		"The ValidatingWebhookConfiguration whose caBundle the self-signed provisioning keeps current.")
	fs.StringVar(&o.TenantManagerGroup, "tenant-manager-group-suffix", "tenant-managers",
		"Members of <partner-domain>:<suffix> are the partner's tenant managers.")
	fs.DurationVar(&o.HeartbeatPeriod, "heartbeat-period", freshness.DefaultPeriod,
		"How often each replica writes its heartbeat Lease, which it must see come back through its watch of the apiserver.")
	fs.DurationVar(&o.MaxIndexStaleness, "max-index-staleness", freshness.DefaultMaxStaleness,
		"How far behind the cluster the authorization index may be (the age of the latest heartbeat seen) before partner users are denied.")
	fs.StringVar(&o.PodName, "pod-name", os.Getenv("POD_NAME"), "The replica's Pod name (names its heartbeat; default: the hostname).")
	fs.StringVar(&o.PodUID, "pod-uid", os.Getenv("POD_UID"), "The replica's Pod UID: with --pod-name, the Pod owns the heartbeat Lease.")
}

// Run runs the operator against the apiserver of cfg until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	// Refused before anything talks to the apiserver.
	allowedNames, err := splitNames(o.WebhookClientAllowedNames)
	if err != nil {
		return err
	}
	callers := webhookauth.Options{
		ClientCAFile: o.WebhookClientCAFile, AllowedNames: allowedNames,
		InsecureAllowUnauthenticatedAdmission: o.InsecureAdmissionCallers,
	}
	if err := callers.Validate(); err != nil {
		return err
	}
	if err := setMemoryLimit(); err != nil {
		return err
	}
	var provisioner *certs.Provisioner
	switch o.CertProvisioning {
	case ExternalCertificates:
	case SelfSignedCertificates:
		if provisioner, err = provisionCertificate(ctx, cfg, o); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--cert-provisioning=%q: want %s or %s", o.CertProvisioning, ExternalCertificates, SelfSignedCertificates)
	}

	opts := operator.Options{
		TenantManagerGroup:     o.TenantManagerGroup,
		Webhook:                webhook.Options{Host: o.WebhookHost, Port: o.WebhookPort, CertDir: o.WebhookCertDir},
		WebhookCallers:         callers,
		MetricsBindAddress:     o.MetricsAddr,
		MetricsSecure:          o.MetricsSecure,
		HealthProbeBindAddress: o.ProbeAddr,
		PprofBindAddress:       o.PprofAddr,
		Freshness:              o.freshness(),
	}
	opts.GracefulShutdownTimeout = o.GracefulShutdownTimeout
	if o.LeaderElect {
		opts.LeaderElection = &operator.LeaderElection{}
	}
	mgr, err := operator.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	if o.Ready != nil {
		if err := mgr.Add(&readyNotifier{cache: mgr.GetCache(), ready: o.Ready}); err != nil {
			return fmt.Errorf("adding the readiness notice: %w", err)
		}
	}
	if provisioner != nil {
		provisioner.Events = mgr.GetEventRecorder("webhook-certificates")
		if err := mgr.Add(provisioner); err != nil {
			return fmt.Errorf("adding the certificate provisioner: %w", err)
		}
	}
	ctrl.Log.WithName("setup").Info("starting the manager")
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}

// readyNotifier calls ready once the cache has synced, on every replica.
type readyNotifier struct {
	cache interface{ WaitForCacheSync(context.Context) bool }
	ready func()
}

func (n *readyNotifier) NeedLeaderElection() bool { return false }

func (n *readyNotifier) Start(ctx context.Context) error {
	if n.cache.WaitForCacheSync(ctx) {
		n.ready()
	}
	return nil
}

// freshness is the heartbeat's options: the replica is named after its Pod,
// which owns the Lease when its UID is known and the Lease is in the Pod's
// namespace (the garbage collector would delete at once a Lease whose owner
// it cannot find there).
func (o Options) freshness() freshness.Options {
	f := freshness.Options{Namespace: o.Namespace, Period: o.HeartbeatPeriod, MaxStaleness: o.MaxIndexStaleness}
	if o.PodName != "" {
		f.Identity = freshness.NewIdentity(o.PodName)
		if o.PodUID != "" && o.Namespace != "" && o.Namespace == os.Getenv("POD_NAMESPACE") {
			f.Owner = &metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: o.PodName, UID: types.UID(o.PodUID)}
		}
	}
	return f
}

// splitNames parses --webhook-client-allowed-names; an empty list would
// take no certificate for the apiserver's, which is never what was meant.
func splitNames(list string) ([]string, error) {
	var names []string
	for name := range strings.SplitSeq(list, ",") {
		if name = strings.TrimSpace(name); name != "" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("--webhook-client-allowed-names=%q names no certificate; the default is %s", list, webhookauth.DefaultAllowedName)
	}
	return names, nil
}

// provisionCertificate issues (or loads) the self-signed serving certificate
// before the webhook server starts, which needs the files to exist, and
// returns the provisioner that renews it afterwards.
func provisionCertificate(ctx context.Context, cfg *rest.Config, o Options) (*certs.Provisioner, error) {
	if o.Namespace == "" {
		return nil, errors.New("--cert-provisioning=self-signed needs --namespace (or POD_NAMESPACE)")
	}
	c, err := client.New(cfg, client.Options{Scheme: operator.NewScheme()})
	if err != nil {
		return nil, fmt.Errorf("creating a client for certificate provisioning: %w", err)
	}
	// Never take over a Secret that cert-manager writes (config/default
	// re-applied over config/cert-manager): refuse to start, and say why.
	secret := &corev1.Secret{}
	switch err := c.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.CertSecret}, secret); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("reading the webhook certificate Secret %s/%s: %w", o.Namespace, o.CertSecret, err)
	default:
		if err := certs.CheckSelfSignedMayTakeOver(secret); err != nil {
			return nil, err
		}
	}
	svc := o.WebhookService
	p := &certs.Provisioner{
		Client: c, Clock: clock.RealClock{}, Namespace: o.Namespace, SecretName: o.CertSecret,
		DNSNames: []string{svc + "." + o.Namespace + ".svc", svc + "." + o.Namespace + ".svc.cluster.local", svc + "." + o.Namespace, svc},
		CertDir:  o.WebhookCertDir, MutatingWebhookConfiguration: o.MutatingWebhooks,
		ValidatingWebhookConfiguration: o.ValidatingWebhook,
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
