package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/lifecycle"
	"github.com/roompro/partner-operator/internal/scope"
)

// linkFinalizer holds a deleted PartnerLink until its roles, assignments and
// room labels are gone.
const linkFinalizer = "partners.roompro.io/offboard"

const (
	primaryAdminAssignment  = "primary-admins"
	initialAssignmentSuffix = "-invitation"
	// offboardRecheck is how long a leaving link waits before it looks
	// again for rooms that still carry its partner's label; the room events
	// that remove the label usually wake it sooner.
	offboardRecheck = 5 * time.Second
)

// LinkReconciler activates a PartnerLink that validly accepts its invitation,
// keeps an active link's built-in primary-admin role in place, and offboards
// a deleted link.
type LinkReconciler struct {
	client.Client
	// APIReader reads around the cache: a leaving link's children, so that
	// a child created a moment before the delete is not missed; the link
	// itself before activation creates children or a built-in role is
	// restored; an invitation before a link is refused for it. Default:
	// Client.
	APIReader client.Reader
	Clock     clock.PassiveClock
	Audit     *audit.Recorder
}

// Reconcile moves one link one step towards its desired state.
func (r *LinkReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	link := &v1alpha1.PartnerLink{}
	if err := r.Get(ctx, req.NamespacedName, link); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !link.DeletionTimestamp.IsZero() {
		return r.offboard(ctx, link)
	}
	if controllerutil.AddFinalizer(link, linkFinalizer) {
		if err := r.Update(ctx, link); err != nil {
			return ctrl.Result{}, ignoreStale(err, "adding the offboarding finalizer")
		}
	}
	if link.Status.Phase != v1alpha1.LinkActive {
		return ctrl.Result{}, r.activate(ctx, link)
	}
	return ctrl.Result{}, r.maintain(ctx, link)
}

// activate creates the link's assignment and built-in role when the link
// accepts its invitation (lifecycle.CheckAcceptance, the rule the invitation
// controller records the acceptance by), and then marks the link Active.
// Every step is idempotent: a crash between steps resumes where it stopped.
func (r *LinkReconciler) activate(ctx context.Context, link *v1alpha1.PartnerLink) error {
	inv, refusal, err := r.acceptance(ctx, link)
	if err != nil {
		return err
	}
	if refusal != nil {
		return r.refuse(ctx, link, refusal)
	}

	// A reconcile woken by a later change (the built-in role deleted, say)
	// may read this link from a cache that has not yet seen it turn Active.
	// Creating the children here would then undo that delete silently, as
	// part of an activation that already happened: the live link decides.
	live := &v1alpha1.PartnerLink{}
	if err := liveReader(r.APIReader, r.Client).Get(ctx, client.ObjectKeyFromObject(link), live); err != nil {
		return client.IgnoreNotFound(err)
	}
	switch {
	case !live.DeletionTimestamp.IsZero():
		return nil // its offboarding follows
	case live.Status.Phase == v1alpha1.LinkActive:
		return r.maintain(ctx, live)
	}

	for _, child := range []client.Object{initialAssignment(link, inv), primaryAdminRole(link)} {
		taken, err := r.ensureChild(ctx, link, child)
		if err != nil {
			return err
		}
		if taken != nil {
			return r.refuse(ctx, link, taken)
		}
	}

	before := link.DeepCopy()
	link.Status = activeLinkStatus(link, r.Clock.Now())
	if written, err := patchStatus(ctx, r.Client, before, link); !written || err != nil {
		return err
	}
	r.Audit.Record(link, audit.Change{
		Category: audit.CategoryPartnerInvitation, Operation: audit.OperationCreate, Result: audit.Successful,
		UserID: link.Status.EstablishedBy, Reason: v1alpha1.ReasonPartnerLinkActive, Related: inv,
		Message: fmt.Sprintf("%s is now a partner of this tenant", link.Spec.PartnerDomain),
	})
	return nil
}

// acceptance reads the link's invitation and judges whether the link accepts
// it. A refusal judged on the cache is judged again on the live invitation:
// an invitation created a moment ago, or accepted by this very link a moment
// ago, must not be refused because the cache has not seen it yet.
func (r *LinkReconciler) acceptance(ctx context.Context, link *v1alpha1.PartnerLink) (*v1alpha1.PartnerInvitation, *lifecycle.Refusal, error) {
	var inv *v1alpha1.PartnerInvitation
	var refusal *lifecycle.Refusal
	for _, reader := range []client.Reader{r.Client, liveReader(r.APIReader, r.Client)} {
		inv = &v1alpha1.PartnerInvitation{}
		if err := reader.Get(ctx, client.ObjectKey{Namespace: link.Namespace, Name: link.Spec.Invitation}, inv); err != nil {
			if !apierrors.IsNotFound(err) {
				return nil, nil, fmt.Errorf("reading PartnerInvitation %q: %w", link.Spec.Invitation, err)
			}
			inv = nil
		}
		if refusal = lifecycle.CheckAcceptance(inv, link); refusal == nil {
			break
		}
	}
	return inv, refusal, nil
}

// refuse records why the link is not activated. It writes (and audits) only
// when the reason changes, so a link that stays refused causes no churn.
func (r *LinkReconciler) refuse(ctx context.Context, link *v1alpha1.PartnerLink, refusal *lifecycle.Refusal) error {
	previous := conditionReason(link.Status.Conditions, v1alpha1.ConditionReady)
	before := link.DeepCopy()
	link.Status = refusedLinkStatus(link, refusal)
	if written, err := patchStatus(ctx, r.Client, before, link); !written || err != nil {
		return err
	}
	if previous != refusal.Reason {
		r.Audit.Record(link, audit.Change{
			Category: audit.CategoryPartnerInvitation, Operation: audit.OperationCreate, Result: audit.Failed,
			UserID: link.Annotations[v1alpha1.AnnotationRequestedBy], Reason: refusal.Reason,
			Message: "the link is not activated: " + refusal.Message,
		})
	}
	return nil
}

// maintain keeps an active link whole: it restores a missing built-in role
// and reports the primary-admin invariant and the scope's size.
func (r *LinkReconciler) maintain(ctx context.Context, link *v1alpha1.PartnerLink) error {
	role := &v1alpha1.PartnerRole{}
	err := r.Get(ctx, client.ObjectKey{Namespace: link.Namespace, Name: v1alpha1.PrimaryAdminRoleName(link.Name)}, role)
	switch {
	case apierrors.IsNotFound(err):
		if role, err = r.restorePrimaryAdminRole(ctx, link); role == nil || err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("reading the built-in role: %w", err)
	}

	rooms, err := r.roomsInScope(ctx, link)
	if err != nil {
		return err
	}
	before := link.DeepCopy()
	link.Status = maintainedLinkStatus(link, role, rooms)
	_, err = patchStatus(ctx, r.Client, before, link)
	return err
}

// restorePrimaryAdminRole recreates the missing built-in role of an active
// link from its spec.primaryAdmins. It reads the link live first: a customer
// who deletes the link and then its role must not see the role come back
// because the role's delete reached this controller before the link's.
// It returns nil when there is nothing to restore.
func (r *LinkReconciler) restorePrimaryAdminRole(ctx context.Context, link *v1alpha1.PartnerLink) (*v1alpha1.PartnerRole, error) {
	live := &v1alpha1.PartnerLink{}
	if err := liveReader(r.APIReader, r.Client).Get(ctx, client.ObjectKeyFromObject(link), live); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if !live.DeletionTimestamp.IsZero() || live.UID != link.UID {
		return nil, nil
	}
	role := primaryAdminRole(link)
	created, err := r.createChild(ctx, link, role)
	if err != nil || !created {
		// Not created: the cache was behind and the role exists; its own
		// event reconciles the link again.
		return nil, err
	}
	r.Audit.Record(role, audit.Change{
		Category: audit.CategoryRole, Operation: audit.OperationCreate, Result: audit.Successful, Warning: true,
		UserID: audit.OperatorUser, Reason: v1alpha1.ReasonPrimaryAdminRoleRestored, Related: link,
		Message: fmt.Sprintf("the built-in role was missing; restored it from PartnerLink %q spec.primaryAdmins", link.Name),
	})
	return role, nil
}

// offboard lets a deleted link go once nothing of it is left: it deletes the
// link's roles and assignments, and waits until no room carries the
// partner's label unless another live link of the partner covers it. The
// room-access controller alone writes those labels: from the moment the
// delete is accepted, reachIn no longer counts the link, and the link's
// update event wakes the rooms of its scopes.
func (r *LinkReconciler) offboard(ctx context.Context, link *v1alpha1.PartnerLink) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(link, linkFinalizer) {
		return ctrl.Result{}, nil
	}
	before := link.DeepCopy()
	link.Status = terminatingLinkStatus(link)
	if _, err := patchStatus(ctx, r.Client, before, link); err != nil {
		return ctrl.Result{}, err
	}

	remaining, err := r.deleteChildren(ctx, link)
	if err != nil {
		return ctrl.Result{}, err
	}
	labelled, err := r.roomsStillLabelled(ctx, link)
	if err != nil {
		return ctrl.Result{}, err
	}
	if remaining > 0 || labelled > 0 {
		log.FromContext(ctx).V(1).Info("offboarding waits", "children", remaining, "labelledRooms", labelled)
		return ctrl.Result{RequeueAfter: offboardRecheck}, nil
	}

	controllerutil.RemoveFinalizer(link, linkFinalizer)
	if err := r.Update(ctx, link); err != nil {
		// Not recorded: the reconcile that does remove the finalizer records
		// the offboarding, once.
		return ctrl.Result{}, client.IgnoreNotFound(ignoreStale(err, "removing the offboarding finalizer"))
	}
	r.Audit.Record(link, audit.Change{
		Category: audit.CategoryPartnerInvitation, Operation: audit.OperationDelete, Result: audit.Successful,
		UserID: audit.OperatorUser, Reason: v1alpha1.ReasonPartnerOffboarded,
		Message: fmt.Sprintf("offboarded %s: its roles and assignments are deleted, and no room carries its label that no other link of it covers",
			link.Spec.PartnerDomain),
	})
	return ctrl.Result{}, nil
}

// deleteChildren deletes the link's roles and assignments, read live so that
// a child created a moment before the link's delete is not missed, and
// returns how many there were.
func (r *LinkReconciler) deleteChildren(ctx context.Context, link *v1alpha1.PartnerLink) (int, error) {
	roles := &v1alpha1.PartnerRoleList{}
	assignments := &v1alpha1.RoomAssignmentList{}
	for _, list := range []client.ObjectList{roles, assignments} {
		// spec.partnerLink is a selectable field of both CRDs, so the
		// apiserver filters, and the cache's index of the same name matches.
		if err := liveReader(r.APIReader, r.Client).List(ctx, list, client.InNamespace(link.Namespace), client.MatchingFields{indexPartnerLink: link.Name}); err != nil {
			return 0, fmt.Errorf("listing the link's children: %w", err)
		}
	}
	for i := range roles.Items {
		if err := r.Delete(ctx, &roles.Items[i]); client.IgnoreNotFound(err) != nil {
			return 0, fmt.Errorf("deleting PartnerRole %q: %w", roles.Items[i].Name, err)
		}
	}
	for i := range assignments.Items {
		if err := r.Delete(ctx, &assignments.Items[i]); client.IgnoreNotFound(err) != nil {
			return 0, fmt.Errorf("deleting RoomAssignment %q: %w", assignments.Items[i].Name, err)
		}
	}
	return len(roles.Items) + len(assignments.Items), nil
}

// roomsStillLabelled counts the rooms that carry the partner's access label
// although no live link of the partner covers them.
func (r *LinkReconciler) roomsStillLabelled(ctx context.Context, link *v1alpha1.PartnerLink) (int, error) {
	domain := string(link.Spec.PartnerDomain)
	rooms := &v1alpha1.RoomList{}
	if err := r.List(ctx, rooms, client.InNamespace(link.Namespace), client.HasLabels{v1alpha1.AccessLabel(domain)}); err != nil {
		return 0, fmt.Errorf("listing the partner's rooms: %w", err)
	}
	if len(rooms.Items) == 0 {
		return 0, nil
	}
	reach, err := reachIn(ctx, r.Client, link.Namespace)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range rooms.Items {
		if !slices.Contains(scope.PartnersOf(&rooms.Items[i], reach), domain) {
			n++
		}
	}
	return n, nil
}

// ensureChild creates obj, a child of the link, and reports an existing
// object of its name that the link does not control: a child the link did
// not create is not the link's, whoever made it.
func (r *LinkReconciler) ensureChild(ctx context.Context, link *v1alpha1.PartnerLink, obj client.Object) (*lifecycle.Refusal, error) {
	created, err := r.createChild(ctx, link, obj)
	if err != nil || created {
		return nil, err
	}
	existing := obj.DeepCopyObject().(client.Object)
	if err := liveReader(r.APIReader, r.Client).Get(ctx, client.ObjectKeyFromObject(obj), existing); err != nil {
		// Gone since the create failed: the next reconcile creates it.
		return nil, fmt.Errorf("reading the existing %s: %w", obj.GetName(), err)
	}
	if metav1.IsControlledBy(existing, link) {
		return nil, nil
	}
	kind, err := apiutil.GVKForObject(obj, r.Scheme())
	if err != nil {
		return nil, err
	}
	return childTaken(link, kind.Kind, existing), nil
}

// childTaken is the refusal of a link whose child's name another object holds.
func childTaken(link *v1alpha1.PartnerLink, kind string, obj client.Object) *lifecycle.Refusal {
	owner := "it was not created by this link"
	if ref := metav1.GetControllerOf(obj); ref != nil {
		owner = fmt.Sprintf("it belongs to %s %q", ref.Kind, ref.Name)
	}
	return &lifecycle.Refusal{Reason: v1alpha1.ReasonChildNameTaken, Message: fmt.Sprintf(
		"%s %q holds the name of this link's own %s, but %s: its members and rooms are not this partner's; the customer deletes it, and the link then creates its own",
		kind, obj.GetName(), strings.ToLower(kind), owner)}
}

// createChild creates obj owned by the link; an existing one is left as it
// is, and created says which happened. The role and assignment controllers
// audit the creation when they first see the object; the annotation names the
// operator as its author.
func (r *LinkReconciler) createChild(ctx context.Context, link *v1alpha1.PartnerLink, obj client.Object) (created bool, err error) {
	if err := controllerutil.SetControllerReference(link, obj, r.Scheme()); err != nil {
		return false, fmt.Errorf("owning %s: %w", obj.GetName(), err)
	}
	obj.SetAnnotations(map[string]string{v1alpha1.AnnotationRequestedBy: audit.OperatorUser})
	switch err := r.Create(ctx, obj); {
	case apierrors.IsAlreadyExists(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("creating %T %q: %w", obj, obj.GetName(), err)
	}
	return true, nil
}

// roomsInScope counts the rooms the link's assignments select.
func (r *LinkReconciler) roomsInScope(ctx context.Context, link *v1alpha1.PartnerLink) (int32, error) {
	matchers, err := linkMatchers(ctx, r.Client, link)
	if err != nil {
		return 0, fmt.Errorf("listing the link's assignments: %w", err)
	}
	rooms, err := roomsOf(ctx, r.Client, link.Namespace, matchers)
	if err != nil {
		return 0, err
	}
	return int32(len(rooms)), nil
}

// SetupWithManager registers the controller and what wakes it: its children
// (by spec.partnerLink, owned or not), its invitation, and rooms that gained
// or lost its partner's access label (for the scope's size: the room-access
// controller moves that label whenever a room enters or leaves a scope).
func (r *LinkReconciler) SetupWithManager(mgr ctrl.Manager) error {
	byPartnerLink := func(o client.Object) string {
		switch o := o.(type) {
		case *v1alpha1.PartnerRole:
			return o.Spec.PartnerLink
		case *v1alpha1.RoomAssignment:
			return o.Spec.PartnerLink
		}
		return ""
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.PartnerLink{}).
		Watches(&v1alpha1.PartnerRole{}, enqueueNamed(byPartnerLink)).
		Watches(&v1alpha1.RoomAssignment{}, enqueueNamed(byPartnerLink)).
		Watches(&v1alpha1.PartnerInvitation{}, enqueueNamed(client.Object.GetName)).
		Watches(&v1alpha1.Room{}, r.linksReaching()).
		Named("partnerlink").
		WithOptions(controller.Options{MaxConcurrentReconciles: objectWorkers}).
		Complete(r)
}

func initialAssignment(link *v1alpha1.PartnerLink, inv *v1alpha1.PartnerInvitation) *v1alpha1.RoomAssignment {
	return &v1alpha1.RoomAssignment{
		ObjectMeta: metav1.ObjectMeta{Name: link.Name + initialAssignmentSuffix, Namespace: link.Namespace},
		Spec:       v1alpha1.RoomAssignmentSpec{PartnerLink: link.Name, Rooms: *inv.Spec.Rooms.DeepCopy()},
	}
}

func primaryAdminRole(link *v1alpha1.PartnerLink) *v1alpha1.PartnerRole {
	return &v1alpha1.PartnerRole{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.PrimaryAdminRoleName(link.Name), Namespace: link.Namespace},
		Spec: v1alpha1.PartnerRoleSpec{
			PartnerLink: link.Name,
			Builtin:     v1alpha1.BuiltinPrimaryAdmin,
			Permissions: slices.Clone(v1alpha1.PrimaryAdminPermissions),
			Assignments: []v1alpha1.RoleAssignment{{
				Name:    primaryAdminAssignment,
				Members: slices.Clone(link.Spec.PrimaryAdmins),
			}},
		},
	}
}

// linksReaching enqueues, on a room event, the links of the namespace whose
// partner's access label the event moved, after roomCountDelay.
func (r *LinkReconciler) linksReaching() handler.EventHandler {
	enqueue := func(ctx context.Context, q queue, old, new *v1alpha1.Room) {
		room := new
		if room == nil {
			room = old
		}
		for _, domain := range accessLabelsChanged(old, new) {
			for _, req := range listRequests(ctx, r.Client, &v1alpha1.PartnerLinkList{}, client.InNamespace(room.Namespace),
				client.MatchingFields{indexPartnerDomain: domain}) {
				q.AddAfter(req, roomCountDelay)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q queue) {
			enqueue(ctx, q, nil, e.Object.(*v1alpha1.Room))
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q queue) {
			enqueue(ctx, q, e.ObjectOld.(*v1alpha1.Room), e.ObjectNew.(*v1alpha1.Room))
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q queue) {
			enqueue(ctx, q, e.Object.(*v1alpha1.Room), nil)
		},
	}
}
