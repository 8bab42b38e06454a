package controllers_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/controllers"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/testenv"
)

// staleCache reads from a cache that lags behind the apiserver and writes to
// the apiserver, as a manager's client does.
type staleCache struct {
	client.Client
	cache client.Reader
}

func (s staleCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return s.cache.Get(ctx, key, obj, opts...)
}

func (s staleCache) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return s.cache.List(ctx, list, opts...)
}

// A reconcile can read a link from a cache that has not yet seen it turn
// Active, woken by a later change: here, both its children deleted. It must
// not take the activation again, which would bring the initial assignment
// back and restore the built-in role without a word; the live link says the
// link is Active, so the role is restored, with its Warning, and nothing else.
// (This raced the envtest spec of the restore when the cache lagged.)
func TestReconcileOfAStaleLinkDoesNotActivateItAgain(t *testing.T) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	established := metav1.NewTime(now.Add(-time.Minute))
	inv := invitation("tenant", "contoso", "contoso.com", 30)
	inv.CreationTimestamp = established
	inv.Status = v1alpha1.PartnerInvitationStatus{Phase: v1alpha1.InvitationAccepted, PartnerLink: "contoso", AcceptedAt: &established}
	stale := link("tenant", "contoso", "contoso.com")
	stale.UID, stale.Finalizers = "link-uid", []string{"partners.roompro.io/offboard"}
	stale.Status = v1alpha1.PartnerLinkStatus{Phase: v1alpha1.LinkPending, EstablishedAt: &established}
	live := stale.DeepCopy()
	live.Status.Phase = v1alpha1.LinkActive

	scheme := testenv.NewScheme()
	builder := func(objs ...client.Object) *fake.ClientBuilder {
		return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
			WithStatusSubresource(&v1alpha1.PartnerLink{}, &v1alpha1.PartnerInvitation{}).
			WithIndex(&v1alpha1.RoomAssignment{}, "spec.partnerLink", func(o client.Object) []string {
				return []string{o.(*v1alpha1.RoomAssignment).Spec.PartnerLink}
			})
	}
	apiserver := builder(live, inv.DeepCopy()).Build()
	cache := builder(stale, inv.DeepCopy()).Build()
	recorded := events.NewFakeRecorder(10)
	r := &controllers.LinkReconciler{
		Client:    staleCache{Client: apiserver, cache: cache},
		APIReader: apiserver,
		Clock:     clocktesting.NewFakeClock(now),
		Audit:     audit.NewRecorder(recorded, io.Discard, clocktesting.NewFakeClock(now)),
	}

	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(stale)}); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}

	role := &v1alpha1.PartnerRole{}
	if err := apiserver.Get(ctx, client.ObjectKey{Namespace: "tenant", Name: v1alpha1.PrimaryAdminRoleName("contoso")}, role); err != nil {
		t.Fatalf("the built-in role was not restored: %v", err)
	}
	err := apiserver.Get(ctx, client.ObjectKey{Namespace: "tenant", Name: "contoso-invitation"}, &v1alpha1.RoomAssignment{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the deleted initial assignment came back (err = %v): only activation creates it", err)
	}
	close(recorded.Events)
	var reasons []string
	for e := range recorded.Events {
		reasons = append(reasons, e)
	}
	if len(reasons) != 1 || !strings.HasPrefix(reasons[0], "Warning PrimaryAdminRoleRestored ") {
		t.Errorf("events = %q, want one Warning PrimaryAdminRoleRestored", reasons)
	}
}
