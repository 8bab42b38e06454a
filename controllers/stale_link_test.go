package controllers_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/controllers"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/deadline"
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
	stale.UID, stale.Finalizers, stale.CreationTimestamp = "link-uid", []string{"partners.roompro.io/offboard"}, established
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
		Deadlines: deadline.New(clocktesting.NewFakeClock(now)),
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

// linkReconcilerOn is a LinkReconciler whose cache is cache and whose writes
// and live reads go to apiserver, with the events it records.
func linkReconcilerOn(apiserver, cache client.Client, now time.Time) (*controllers.LinkReconciler, *events.FakeRecorder) {
	recorded := events.NewFakeRecorder(10)
	return &controllers.LinkReconciler{
		Client:    staleCache{Client: apiserver, cache: cache},
		APIReader: apiserver,
		Clock:     clocktesting.NewFakeClock(now),
		Audit:     audit.NewRecorder(recorded, io.Discard, clocktesting.NewFakeClock(now)),
		Deadlines: deadline.New(clocktesting.NewFakeClock(now)),
	}, recorded
}

func fakeAPI(objs ...client.Object) client.Client {
	return fakeAPIBuilder(objs...).Build()
}

// fakeAPIBuilder is fakeAPI's builder, for a test that intercepts calls.
func fakeAPIBuilder(objs ...client.Object) *fake.ClientBuilder {
	return fake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.PartnerLink{}, &v1alpha1.PartnerInvitation{}, &v1alpha1.PartnerRole{}, &v1alpha1.RoomAssignment{}).
		WithIndex(&v1alpha1.RoomAssignment{}, "spec.partnerLink", func(o client.Object) []string {
			return []string{o.(*v1alpha1.RoomAssignment).Spec.PartnerLink}
		}).
		WithIndex(&v1alpha1.PartnerRole{}, "spec.partnerLink", func(o client.Object) []string {
			return []string{o.(*v1alpha1.PartnerRole).Spec.PartnerLink}
		})
}

// admittedPair is a pending invitation and a link created for it at now, as
// admission leaves them: the link records the invitation's UID and carries
// its finalizer.
func admittedPair(now time.Time) (*v1alpha1.PartnerInvitation, *v1alpha1.PartnerLink) {
	inv := invitation("tenant", "contoso", "contoso.com", 30)
	inv.UID, inv.CreationTimestamp = "inv-uid", metav1.NewTime(now)
	l := link("tenant", "contoso", "contoso.com")
	l.UID, l.CreationTimestamp, l.Finalizers = "link-uid", metav1.NewTime(now), []string{"partners.roompro.io/offboard"}
	l.Annotations[v1alpha1.AnnotationInvitationUID] = string(inv.UID)
	return inv, l
}

func drain(r *events.FakeRecorder) []string {
	var got []string
	for {
		select {
		case e := <-r.Events:
			got = append(got, e)
		default:
			return got
		}
	}
}

// The customer deletes a link and then its built-in role; the role's event
// can reach the link controller while its cache still shows the link alive.
// The role must not come back: the live link is leaving.
func TestTheBuiltinRoleOfALeavingLinkIsNotRestored(t *testing.T) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	active := link("tenant", "contoso", "contoso.com")
	active.UID, active.Finalizers = "link-uid", []string{"partners.roompro.io/offboard"}
	active.Status.Phase = v1alpha1.LinkActive
	leaving := active.DeepCopy()
	deleted := metav1.NewTime(now)
	leaving.DeletionTimestamp = &deleted

	apiserver := fakeAPI(leaving)
	r, recorded := linkReconcilerOn(apiserver, fakeAPI(active), now)
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(active)}); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	err := apiserver.Get(ctx, client.ObjectKey{Namespace: "tenant", Name: v1alpha1.PrimaryAdminRoleName("contoso")}, &v1alpha1.PartnerRole{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the built-in role of a leaving link was restored (err = %v)", err)
	}
	if got := drain(recorded); len(got) != 0 {
		t.Errorf("events = %q, want none", got)
	}
}

// A link created right after its invitation can be reconciled before the
// cache has seen the invitation: it must not be refused (with a Failed audit
// line) for an invitation that exists.
func TestAJustCreatedInvitationIsNotMissedByALaggingCache(t *testing.T) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	inv, l := admittedPair(now)

	apiserver := fakeAPI(inv, l)
	r, recorded := linkReconcilerOn(apiserver, fakeAPI(l.DeepCopy()), now)
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(l)}); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	got := &v1alpha1.PartnerLink{}
	if err := apiserver.Get(ctx, client.ObjectKeyFromObject(l), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != v1alpha1.LinkActive {
		t.Errorf("phase = %q (Ready: %v), want Active", got.Status.Phase, got.Status.Conditions)
	}
	for _, e := range drain(recorded) {
		if strings.Contains(e, v1alpha1.ReasonInvitationNotFound) {
			t.Errorf("refused on the lagging cache: %s", e)
		}
	}
}

// An object under the name of one of a link's children that the link did not
// create is not the link's: the link does not activate over it, says why, and
// activates once the customer deletes it. (Before, activation took
// AlreadyExists as success, and the squatter's members counted as the
// partner's primary admins.)
func TestAChildNameHeldByAnotherObjectKeepsTheLinkFromReady(t *testing.T) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	inv, l := admittedPair(now)
	squatter := &v1alpha1.RoomAssignment{
		ObjectMeta: metav1.ObjectMeta{Name: "contoso-invitation", Namespace: "tenant"},
		Spec:       v1alpha1.RoomAssignmentSpec{PartnerLink: "contoso", Rooms: v1alpha1.RoomScope{Names: []string{"ber"}}},
	}
	apiserver := fakeAPI(inv, l, squatter)
	r, _ := linkReconcilerOn(apiserver, apiserver, now)
	reconcile := func() *v1alpha1.PartnerLink {
		t.Helper()
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(l)}); err != nil {
			t.Fatalf("Reconcile: %v", err)
		}
		got := &v1alpha1.PartnerLink{}
		if err := apiserver.Get(ctx, client.ObjectKeyFromObject(l), got); err != nil {
			t.Fatal(err)
		}
		return got
	}

	got := reconcile()
	ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
	if got.Status.Phase == v1alpha1.LinkActive || ready == nil || ready.Reason != v1alpha1.ReasonChildNameTaken ||
		!strings.Contains(ready.Message, `RoomAssignment "contoso-invitation"`) {
		t.Fatalf("phase %q, Ready %+v; want Pending, %s naming the assignment", got.Status.Phase, ready, v1alpha1.ReasonChildNameTaken)
	}
	err := apiserver.Get(ctx, client.ObjectKey{Namespace: "tenant", Name: v1alpha1.PrimaryAdminRoleName("contoso")}, &v1alpha1.PartnerRole{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("a refused link created its built-in role (err = %v)", err)
	}

	if err := apiserver.Delete(ctx, squatter); err != nil {
		t.Fatal(err)
	}
	if got := reconcile(); got.Status.Phase != v1alpha1.LinkActive {
		t.Fatalf("phase %q after the squatter was deleted, want Active", got.Status.Phase)
	}
	own := &v1alpha1.RoomAssignment{}
	if err := apiserver.Get(ctx, client.ObjectKeyFromObject(squatter), own); err != nil || !metav1.IsControlledBy(own, l) {
		t.Errorf("the link's own assignment: %v, controlled by the link: %v", err, err == nil && metav1.IsControlledBy(own, l))
	}
}

// An active link whose built-in role's name is held by a role it does not
// control counts none of that role's members as its primary admins.
func TestAnActiveLinkDoesNotCountAnotherRolesMembers(t *testing.T) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	l := link("tenant", "contoso", "contoso.com")
	l.UID, l.Finalizers = "link-uid", []string{"partners.roompro.io/offboard"}
	l.Status.Phase = v1alpha1.LinkActive
	stray := &v1alpha1.PartnerRole{
		ObjectMeta: metav1.ObjectMeta{Name: "contoso-primary-admins", Namespace: "tenant", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: "PartnerLink", Name: "contoso", UID: "an-earlier-link", Controller: new(true)}}},
		Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso", Builtin: v1alpha1.BuiltinPrimaryAdmin, Permissions: v1alpha1.PrimaryAdminPermissions,
			Assignments: []v1alpha1.RoleAssignment{{Name: "primary-admins", Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "mallory@contoso.com"}}}}},
	}
	apiserver := fakeAPI(l, stray)
	r, _ := linkReconcilerOn(apiserver, apiserver, now)
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(l)}); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	got := &v1alpha1.PartnerLink{}
	if err := apiserver.Get(ctx, client.ObjectKeyFromObject(l), got); err != nil {
		t.Fatal(err)
	}
	for _, condType := range []string{v1alpha1.ConditionReady, v1alpha1.ConditionPrimaryAdminPresent} {
		if c := meta.FindStatusCondition(got.Status.Conditions, condType); c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonChildNameTaken {
			t.Errorf("%s = %+v, want False, %s", condType, c, v1alpha1.ReasonChildNameTaken)
		}
	}
}
