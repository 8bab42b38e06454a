// Package operator assembles the partner-operator on a controller-runtime
// manager: the controllers, the admission webhooks, the authorization index
// and its webhook, and the health checks. The manager binary and the
// end-to-end tests share it, so the tests run what ships.
package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/controllers"
	"github.com/roompro/partner-operator/internal/admission"
	"github.com/roompro/partner-operator/internal/authz"
	"github.com/roompro/partner-operator/internal/authzserver"
	"github.com/roompro/partner-operator/internal/metrics"
)

// Options configure the operator.
type Options struct {
	// Clock judges expiry. Default: the real clock.
	Clock clock.WithDelayedExecution
	// AuditLog receives the JSON audit lines. Default: stdout.
	AuditLog io.Writer
	// OperatorUser is the username of the manager's own credentials; see WhoAmI.
	OperatorUser string
	// TenantManagerGroup is the group suffix of partners' tenant managers.
	// Default: authz.DefaultTenantManagerGroup.
	TenantManagerGroup string
}

// CacheOptions are the manager's cache options. Managed fields are dropped
// from cached objects: the operator never reads them, and at 100,000 rooms
// they were the largest part of the cache. (An update sent from a cached
// object without them leaves the stored managed fields as they are.)
//
// Cached rooms keep only what the operator reads: name, labels, the
// metadata a write needs, and status. Their spec and annotations are
// dropped, a third of the cache at 100,000 rooms. The operator writes
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
		room.Spec = v1alpha1.RoomSpec{}
	}
	return obj, nil
}

// Setup registers everything on mgr and returns the authorization index.
func Setup(mgr ctrl.Manager, opts Options) (*authz.Index, error) {
	if err := controllers.SetupWithManager(mgr, controllers.Options{Clock: opts.Clock, AuditLog: opts.AuditLog}); err != nil {
		return nil, err
	}
	index := authz.NewIndex(authz.WithTenantManagerGroup(opts.TenantManagerGroup))
	if err := admission.SetupWithManager(mgr, admission.Options{
		OperatorUser: opts.OperatorUser, Clock: opts.Clock, IsPartnerDomain: index.IsPartnerDomain,
		TenantManagerGroup: opts.TenantManagerGroup, Holdings: index.Holdings,
	}); err != nil {
		return nil, fmt.Errorf("setting up the admission webhooks: %w", err)
	}
	if err := mgr.Add(&authzserver.Feeder{Cache: mgr.GetCache(), Index: index}); err != nil {
		return nil, fmt.Errorf("adding the authorization index: %w", err)
	}
	mgr.GetWebhookServer().Register(authzserver.Path, &authzserver.Handler{Index: index})
	if err := (&metrics.StateCollector{Reader: mgr.GetCache()}).Register(); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		return nil, fmt.Errorf("registering the state metrics: %w", err)
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("webhook-server", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return nil, fmt.Errorf("adding the readiness check: %w", err)
	}
	// Not ready until the index has synced: until then partners are denied.
	if err := mgr.AddReadyzCheck("authorization-index", func(*http.Request) error {
		if !index.Synced() {
			return errors.New("the authorization index has not synced yet")
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("adding the readiness check: %w", err)
	}
	return index, nil
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
