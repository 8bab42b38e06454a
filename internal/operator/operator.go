// Package operator assembles the partner-operator on a controller-runtime
// manager: the scheme, the cache, the webhook server, metrics and health
// checks, the controllers, the admission webhooks, the authorization index
// and its webhook. The manager binaries and every suite that runs the
// operator build it with New, so the tests run what ships and differ from it
// only where their Options say so.
package operator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/controllers"
	"github.com/roompro/partner-operator/internal/admission"
	"github.com/roompro/partner-operator/internal/authz"
	"github.com/roompro/partner-operator/internal/authzserver"
	"github.com/roompro/partner-operator/internal/changecontrol"
	"github.com/roompro/partner-operator/internal/freshness"
	"github.com/roompro/partner-operator/internal/metrics"
	"github.com/roompro/partner-operator/internal/webhookauth"
	"github.com/roompro/partner-operator/internal/webhookserver"
)

// LeaderElectionID names the lease the replicas elect their leader by.
const LeaderElectionID = "partner-operator.partners.roompro.io"

// Options configure the operator and its manager. The zero value is the
// operator as it ships with every listener but the webhook server off; each
// field set is a difference from that, so a caller's options say all in
// which it differs.
type Options struct {
	// Clock judges expiry. Default: the real clock.
	Clock clock.WithDelayedExecution
	// AuditLog receives the JSON audit lines. Default: stdout.
	AuditLog io.Writer
	// OperatorUser is the username of the manager's own credentials.
	// Default: the apiserver's answer for them (WhoAmI).
	OperatorUser string
	// TenantManagerGroup is the group suffix of partners' tenant managers.
	// Default: authz.DefaultTenantManagerGroup.
	TenantManagerGroup string

	// Webhook says where the webhook server (the admission webhooks and the
	// authorization webhook) listens and where its certificate is.
	Webhook webhook.Options
	// WebhookCallers says how the webhook server authenticates its callers:
	// the kube-apiserver's client CA, or the explicit opt-out for admission.
	// Neither is an error (webhookauth.ErrNoCallerAuthentication), unless
	// ControllersOnly. A local control plane's are
	// controlplane.WebhookServing.Callers().
	WebhookCallers webhookauth.Options
	// ControllersOnly runs the controllers alone: no webhook server, no
	// admission webhooks, no authorization index. For a control plane that
	// asks no webhooks.
	ControllersOnly bool
	// Freshness configures the heartbeat by which each replica knows how
	// far behind the cluster its authorization index may be: a Lease of its
	// own in Freshness.Namespace (default "default"), written every second
	// and seen back through the manager's cache; past 5 s without one,
	// partner users are denied. Its clock is its own, not Clock: suites
	// that freeze Clock to step expiry still need heartbeats in real time.
	Freshness freshness.Options

	// MetricsBindAddress is the address of the metrics endpoint, for
	// example :8443; "" or "0" disables it.
	MetricsBindAddress string
	// MetricsSecure serves metrics over HTTPS, to callers the apiserver
	// authenticates and authorises (get on /metrics).
	MetricsSecure bool
	// HealthProbeBindAddress is the address of /healthz and /readyz; "" or
	// "0" disables it.
	HealthProbeBindAddress string
	// PprofBindAddress is the address of /debug/pprof/; "" or "0" disables it.
	PprofBindAddress string

	// LeaderElection, when set, lets only the elected replica reconcile.
	// Every replica serves the webhooks.
	LeaderElection *LeaderElection

	// GracefulShutdownTimeout bounds the manager's stop: the webhook server
	// finishing the requests in flight, the heartbeat deleting its Lease.
	// Zero leaves controller-runtime's default (30 s).
	GracefulShutdownTimeout time.Duration

	// ChangeRecheck re-checks the requester of an approved
	// PartnerChangeRequest before the operator applies it. Default: the
	// admission webhooks' checks (admission.NewRecheck); with
	// ControllersOnly, notWiredRecheck, which refuses every apply.
	ChangeRecheck changecontrol.Recheck

	// SkipControllerNameValidation lets several managers in one process
	// register the same controllers: tests that run replicas side by side
	// or start one manager after another.
	SkipControllerNameValidation bool
}

// LeaderElection configures the election of LeaderElectionID.
type LeaderElection struct {
	// Namespace holds the lease. Default: the namespace the pod runs in.
	Namespace string
	// LeaseDuration, RenewDeadline and RetryPeriod time the election; zero
	// leaves controller-runtime's default.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// NewScheme returns the scheme of the operator: the built-in kinds and the
// operator's own.
func NewScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	return scheme
}

// New returns a manager for cfg with the whole operator on it, ready to
// Start. ctx bounds asking the apiserver for the operator's user.
func New(ctx context.Context, cfg *rest.Config, opts Options) (ctrl.Manager, error) {
	webhookOpts := opts.Webhook
	var guard *webhookauth.Guard
	var guards []webhookserver.Guard
	if !opts.ControllersOnly {
		var err error
		if guard, err = webhookauth.New(cfg, opts.WebhookCallers); err != nil {
			return nil, err
		}
		webhookOpts.TLSOpts = append(slices.Clone(webhookOpts.TLSOpts), guard.ConfigureTLS)
		guards = append(guards, func(path string, h http.Handler) http.Handler {
			if path == authzserver.Path {
				return guard.Wrap(webhookauth.Decisions, h)
			}
			return guard.Wrap(webhookauth.Admission, h)
		})
	}
	metricsOpts := metricsserver.Options{BindAddress: cmp.Or(opts.MetricsBindAddress, "0"), SecureServing: opts.MetricsSecure}
	if opts.MetricsSecure {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	cacheOpts := CacheOptions()
	if !opts.ControllersOnly {
		var err error
		if opts.Freshness, err = opts.Freshness.Complete(); err != nil {
			return nil, err
		}
		cacheOpts.ByObject[&coordinationv1.Lease{}] = freshness.CacheConfig(opts.Freshness.Lease())
	}
	mgrOpts := ctrl.Options{
		Scheme:                 NewScheme(),
		Cache:                  cacheOpts,
		Metrics:                metricsOpts,
		HealthProbeBindAddress: opts.HealthProbeBindAddress,
		PprofBindAddress:       opts.PprofBindAddress,
		WebhookServer:          webhookserver.New(webhookOpts, webhookserver.DefaultRequestTimeout, guards...),
	}
	mgrOpts.GracefulShutdownTimeout = nonZero(opts.GracefulShutdownTimeout)
	if le := opts.LeaderElection; le != nil {
		mgrOpts.LeaderElection = true
		mgrOpts.LeaderElectionID = LeaderElectionID
		mgrOpts.LeaderElectionNamespace = le.Namespace
		mgrOpts.LeaseDuration = nonZero(le.LeaseDuration)
		mgrOpts.RenewDeadline = nonZero(le.RenewDeadline)
		mgrOpts.RetryPeriod = nonZero(le.RetryPeriod)
	}
	if opts.SkipControllerNameValidation {
		mgrOpts.Controller = config.Controller{SkipNameValidation: new(true)}
	}
	mgr, err := ctrl.NewManager(cfg, mgrOpts)
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	if opts.OperatorUser == "" && !opts.ControllersOnly {
		if opts.OperatorUser, err = WhoAmI(ctx, cfg); err != nil {
			return nil, err
		}
		ctrl.Log.WithName("setup").Info("the operator's own requests are recognised by their user", "user", opts.OperatorUser)
	}
	if guard != nil {
		if err := mgr.Add(guard); err != nil {
			return nil, fmt.Errorf("adding the webhook client CA watch: %w", err)
		}
	}
	if err := setup(mgr, opts); err != nil {
		return nil, err
	}
	return mgr, nil
}

// nonZero is d as the manager's options take it: nil for the default.
func nonZero(d time.Duration) *time.Duration {
	if d == 0 {
		return nil
	}
	return &d
}

// CacheOptions are the manager's cache options (New adds the replica's
// heartbeat Lease, the one Lease it caches). Managed fields are dropped
// from cached objects: the operator never reads them, and at 100,000 rooms
// they were the largest part of the cache. (An update sent from a cached
// object without them leaves the stored managed fields as they are.)
//
// Cached rooms keep only what the operator reads: name, labels, the
// metadata a write needs, status, and of the spec only the groups and the
// update ring (the field indexes of the group and ring controllers, and the
// authorization index's rings). The
// rest of the spec and the annotations are dropped, a third of the cache
// at 100,000 rooms. The operator writes
// rooms only by a merge patch of labels, computed between two cached
// copies, and by status updates, which the apiserver applies to status
// alone: neither can clear what the cache does not hold. Read a room
// through the APIReader for anything else.
func CacheOptions() cache.Options {
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject:         map[client.Object]cache.ByObject{&v1alpha1.Room{}: {Transform: roomAccessView}},
	}
}

// roomAccessView is the cache's transform of rooms (see CacheOptions). It
// replaces DefaultTransform for rooms, so it drops managed fields too.
func roomAccessView(obj any) (any, error) {
	if room, ok := obj.(*v1alpha1.Room); ok {
		room.ManagedFields = nil
		room.Annotations = nil
		room.Spec = v1alpha1.RoomSpec{Groups: room.Spec.Groups, UpdateRing: room.Spec.UpdateRing}
	}
	return obj, nil
}

// setup registers the operator on mgr.
func setup(mgr ctrl.Manager, opts Options) error {
	index := authz.NewIndex(authz.WithTenantManagerGroup(opts.TenantManagerGroup), authz.WithClock(opts.Clock))
	admissionOpts := admission.Options{
		OperatorUser: opts.OperatorUser, Clock: opts.Clock, IsPartnerDomain: index.IsPartnerDomain,
		TenantManagerGroup: opts.TenantManagerGroup, Holdings: index.Holdings, Decide: index.Decide,
	}
	// An approved change is applied only after the checks a direct write of
	// its requester would meet now: the admission webhooks' own, on the
	// index the authorization webhook decides from. Without the webhooks
	// (ControllersOnly) there is no index to check against, and every
	// apply is refused rather than written unchecked.
	recheck := opts.ChangeRecheck
	switch {
	case recheck != nil:
	case opts.ControllersOnly:
		recheck = notWiredRecheck
	default:
		recheck = admission.NewRecheck(mgr.GetAPIReader(), admissionOpts)
	}
	if err := controllers.SetupWithManager(mgr, controllers.Options{Clock: opts.Clock, AuditLog: opts.AuditLog, ChangeRecheck: recheck}); err != nil {
		return err
	}
	if err := (&metrics.StateCollector{Reader: mgr.GetCache(), Clock: opts.Clock}).Register(); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		return fmt.Errorf("registering the state metrics: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	if opts.ControllersOnly {
		return nil
	}

	if err := admission.SetupWithManager(mgr, admissionOpts); err != nil {
		return fmt.Errorf("setting up the admission webhooks: %w", err)
	}
	if err := mgr.Add(&authzserver.Feeder{Cache: mgr.GetCache(), Index: index}); err != nil {
		return fmt.Errorf("adding the authorization index: %w", err)
	}
	// The heartbeat comes back through the cache that feeds the index, so
	// its age is how far behind the index may be.
	heartbeat := freshness.New(opts.Freshness, mgr.GetClient(), mgr.GetCache(), index, ctrl.Log.WithName("freshness"))
	if err := mgr.Add(heartbeat); err != nil {
		return fmt.Errorf("adding the heartbeat of the authorization index: %w", err)
	}
	mgr.GetWebhookServer().Register(authzserver.Path, &authzserver.Handler{Index: index})
	if err := mgr.AddReadyzCheck("webhook-server", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	// Not ready until the index has synced: until then partners are denied.
	if err := mgr.AddReadyzCheck("authorization-index", func(*http.Request) error {
		if !index.Synced() {
			return errors.New("the authorization index has not synced yet")
		}
		return nil
	}); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	// Not ready while the index is stale: partners are denied meanwhile,
	// and a replica whose watch delivers should answer instead.
	if err := mgr.AddReadyzCheck("authorization-index-fresh", heartbeat.Monitor.Ready); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	return nil
}

// WhoAmI asks the apiserver which user cfg's credentials are: the admission
// webhooks let only that user set operator-owned fields.
func WhoAmI(ctx context.Context, cfg *rest.Config) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", fmt.Errorf("creating a clientset: %w", err)
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("asking the apiserver who the operator is (SelfSubjectReview): %w", err)
	}
	return review.Status.UserInfo.Username, nil
}

// notWiredRecheck is the re-check of an operator without the admission
// webhooks and the authorization index (ControllersOnly): it refuses every
// apply, so an approved change fails NoLongerAuthorized rather than being
// written unchecked.
func notWiredRecheck(context.Context, changecontrol.Requester, *v1alpha1.PartnerChangeRequest, client.Object) error {
	return &changecontrol.Refusal{Message: "the operator cannot re-check the requester: this replica runs the controllers only, without the authorization index to check against"}
}
