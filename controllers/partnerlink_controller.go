package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/lifecycle"
	"github.com/roompro/partner-operator/internal/scope"
)

// linkFinalizer holds a deleted PartnerLink until its roles, assignments and
// room labels are gone.
const linkFinalizer = "partners.roompro.io/offboard"

// Reasons of a link's conditions.
const (
	reasonActivating        = "Activating"
	reasonActive            = "Active"
	reasonOffboarding       = "Offboarding"
	reasonPrimaryAdminFound = "PrimaryAdminFound"
	reasonNoPrimaryAdmin    = "NoPrimaryAdmin"
	primaryAdminAssignment  = "primary-admins"
	initialAssignmentSuffix = "-invitation"
)

// LinkReconciler activates a PartnerLink that validly accepts its invitation,
// keeps an active link's built-in primary-admin role in place, and offboards
// a deleted link.
type LinkReconciler struct {
	client.Client
	// APIReader reads around the cache: a leaving link's children, so that
	// a child created a moment before the delete is not missed, and the link
	// itself before activation creates children. Default: Client.
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
		return ctrl.Result{}, r.offboard(ctx, link)
	}
	if controllerutil.AddFinalizer(link, linkFinalizer) {
		if err := r.Update(ctx, link); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding the offboarding finalizer: %w", err)
		}
	}
	if link.Status.Phase != v1alpha1.LinkActive {
		return ctrl.Result{}, r.activate(ctx, link)
	}
	return ctrl.Result{}, r.maintain(ctx, link)
}

// activate accepts the invitation in three idempotent steps — claim it on the
// link, mark it Accepted, create the link's assignment and built-in role —
// and then marks the link Active. A crash between steps resumes where it
// stopped (see lifecycle.AcceptedBy).
func (r *LinkReconciler) activate(ctx context.Context, link *v1alpha1.PartnerLink) error {
	inv := &v1alpha1.PartnerInvitation{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: link.Namespace, Name: link.Spec.Invitation}, inv); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading PartnerInvitation %q: %w", link.Spec.Invitation, err)
		}
		inv = nil
	}
	if refusal := lifecycle.CheckAcceptance(inv, link, r.Clock.Now()); refusal != nil {
		return r.refuse(ctx, link, refusal)
	}

	if link.Status.EstablishedAt == nil {
		// Stored at second precision, so that the copy in the invitation
		// compares equal after the round trip through the apiserver.
		link.Status.EstablishedAt = &metav1.Time{Time: r.Clock.Now().Truncate(time.Second)}
		link.Status.EstablishedBy = link.Annotations[v1alpha1.AnnotationRequestedBy]
		link.Status.Phase = v1alpha1.LinkPending
		link.Status.ObservedGeneration = link.Generation
		setCondition(&link.Status.Conditions, link, v1alpha1.ConditionReady, metav1.ConditionFalse, reasonActivating,
			fmt.Sprintf("accepting PartnerInvitation %q", inv.Name))
		if err := r.Status().Update(ctx, link); err != nil {
			return ignoreStale(err, "claiming the invitation")
		}
	}

	if !lifecycle.AcceptedBy(inv, link) {
		inv.Status.Phase = v1alpha1.InvitationAccepted
		inv.Status.AcceptedBy = link.Status.EstablishedBy
		inv.Status.AcceptedAt = link.Status.EstablishedAt.DeepCopy()
		inv.Status.PartnerLink = link.Name
		inv.Status.ObservedGeneration = inv.Generation
		setCondition(&inv.Status.Conditions, inv, v1alpha1.ConditionReady, metav1.ConditionTrue, "Accepted",
			fmt.Sprintf("accepted by %s through PartnerLink %q", orUnknown(inv.Status.AcceptedBy), link.Name))
		if err := r.Status().Update(ctx, inv); err != nil {
			// A conflict may be the invitation turning Expired: the next
			// reconcile (the invitation's watch event) judges again.
			return ignoreStale(err, "marking the invitation Accepted")
		}
		r.Audit.Record(inv, audit.Change{
			Category: audit.CategoryPartnerInvitation, Operation: audit.OperationUpdate, Result: audit.Successful,
			UserID: inv.Status.AcceptedBy, Reason: "InvitationAccepted", Related: link,
			Message: fmt.Sprintf("%s accepted the invitation by %s", link.Spec.PartnerDomain, orUnknown(inv.Status.AcceptedBy)),
		})
	}

	// A reconcile woken by a later change (the built-in role deleted, say)
	// may read this link from a cache that has not yet seen it turn Active.
	// Creating the children here would then undo that delete silently, as
	// part of an activation that already happened: the live link decides.
	live := &v1alpha1.PartnerLink{}
	if err := liveReader(r.APIReader, r.Client).Get(ctx, client.ObjectKeyFromObject(link), live); err != nil {
		return client.IgnoreNotFound(err)
	}
	if live.Status.Phase == v1alpha1.LinkActive {
		return r.maintain(ctx, live)
	}

	if _, err := r.createChild(ctx, link, initialAssignment(link, inv)); err != nil {
		return err
	}
	if _, err := r.createChild(ctx, link, primaryAdminRole(link)); err != nil {
		return err
	}

	link.Status.Phase = v1alpha1.LinkActive
	setCondition(&link.Status.Conditions, link, v1alpha1.ConditionReady, metav1.ConditionTrue, reasonActive,
		fmt.Sprintf("%s manages the rooms of its RoomAssignments", link.Spec.PartnerDomain))
	setCondition(&link.Status.Conditions, link, v1alpha1.ConditionPrimaryAdminPresent, metav1.ConditionTrue, reasonPrimaryAdminFound,
		fmt.Sprintf("PartnerRole %q has %d primary admin(s)", v1alpha1.PrimaryAdminRoleName(link.Name), len(link.Spec.PrimaryAdmins)))
	if err := r.Status().Update(ctx, link); err != nil {
		return ignoreStale(err, "marking the link Active")
	}
	r.Audit.Record(link, audit.Change{
		Category: audit.CategoryPartnerInvitation, Operation: audit.OperationCreate, Result: audit.Successful,
		UserID: link.Status.EstablishedBy, Reason: "PartnerLinkActive", Related: inv,
		Message: fmt.Sprintf("%s is now a partner of this tenant", link.Spec.PartnerDomain),
	})
	return nil
}

// refuse records why the link is not activated. It writes (and audits) only
// when the reason changes, so a link that stays refused causes no churn.
func (r *LinkReconciler) refuse(ctx context.Context, link *v1alpha1.PartnerLink, refusal *lifecycle.Refusal) error {
	previous := conditionReason(link.Status.Conditions, v1alpha1.ConditionReady)
	status := link.Status.DeepCopy()
	status.Phase = v1alpha1.LinkPending
	status.EstablishedAt, status.EstablishedBy = nil, ""
	status.ObservedGeneration = link.Generation
	setCondition(&status.Conditions, link, v1alpha1.ConditionReady, metav1.ConditionFalse, refusal.Reason, refusal.Message)
	if equality.Semantic.DeepEqual(*status, link.Status) {
		return nil
	}
	link.Status = *status
	if err := r.Status().Update(ctx, link); err != nil {
		return ignoreStale(err, "recording the refusal")
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
	if apierrors.IsNotFound(err) {
		role = primaryAdminRole(link)
		created, err := r.createChild(ctx, link, role)
		if err != nil {
			return err
		}
		// Not created: the cache was behind and the role exists; the
		// reconcile that did create it has recorded the restore.
		if created {
			r.Audit.Record(role, audit.Change{
				Category: audit.CategoryRole, Operation: audit.OperationCreate, Result: audit.Successful, Warning: true,
				UserID: audit.OperatorUser, Reason: "PrimaryAdminRoleRestored", Related: link,
				Message: fmt.Sprintf("the built-in role was missing; restored it from PartnerLink %q spec.primaryAdmins", link.Name),
			})
		}
	} else if err != nil {
		return fmt.Errorf("reading the built-in role: %w", err)
	}

	rooms, err := r.roomsInScope(ctx, link)
	if err != nil {
		return err
	}
	status := link.Status.DeepCopy()
	status.Rooms = rooms
	status.ObservedGeneration = link.Generation
	if members := primaryAdminCount(role); members > 0 {
		setCondition(&status.Conditions, link, v1alpha1.ConditionPrimaryAdminPresent, metav1.ConditionTrue, reasonPrimaryAdminFound,
			fmt.Sprintf("PartnerRole %q has %d primary admin(s)", role.Name, members))
	} else {
		setCondition(&status.Conditions, link, v1alpha1.ConditionPrimaryAdminPresent, metav1.ConditionFalse, reasonNoPrimaryAdmin,
			fmt.Sprintf("PartnerRole %q has no member: the partner has no primary admin", role.Name))
	}
	if equality.Semantic.DeepEqual(*status, link.Status) {
		return nil
	}
	link.Status = *status
	return ignoreStale(r.Status().Update(ctx, link), "updating the link status")
}

// offboard deletes the link's roles and assignments and takes the partner's
// label off every room before it lets the link go. From the moment the
// delete is accepted, grantsIn no longer counts the link.
func (r *LinkReconciler) offboard(ctx context.Context, link *v1alpha1.PartnerLink) error {
	if !controllerutil.ContainsFinalizer(link, linkFinalizer) {
		return nil
	}
	if link.Status.Phase != v1alpha1.LinkTerminating {
		link.Status.Phase = v1alpha1.LinkTerminating
		setCondition(&link.Status.Conditions, link, v1alpha1.ConditionReady, metav1.ConditionFalse, reasonOffboarding,
			fmt.Sprintf("removing the roles, assignments and room labels of %s", link.Spec.PartnerDomain))
		if err := r.Status().Update(ctx, link); err != nil {
			return ignoreStale(err, "marking the link Terminating")
		}
	}

	roles := &v1alpha1.PartnerRoleList{}
	assignments := &v1alpha1.RoomAssignmentList{}
	for _, list := range []client.ObjectList{roles, assignments} {
		// spec.partnerLink is a selectable field of both CRDs, so the
		// apiserver filters, and the cache's index of the same name matches.
		if err := liveReader(r.APIReader, r.Client).List(ctx, list, client.InNamespace(link.Namespace), client.MatchingFields{indexPartnerLink: link.Name}); err != nil {
			return fmt.Errorf("listing the link's children: %w", err)
		}
	}
	for i := range roles.Items {
		if err := r.Delete(ctx, &roles.Items[i]); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting PartnerRole %q: %w", roles.Items[i].Name, err)
		}
	}
	for i := range assignments.Items {
		if err := r.Delete(ctx, &assignments.Items[i]); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting RoomAssignment %q: %w", assignments.Items[i].Name, err)
		}
	}

	rooms := &v1alpha1.RoomList{}
	if err := r.List(ctx, rooms, client.InNamespace(link.Namespace),
		client.HasLabels{v1alpha1.AccessLabel(string(link.Spec.PartnerDomain))}); err != nil {
		return fmt.Errorf("listing the partner's rooms: %w", err)
	}
	grants, err := grantsIn(ctx, r.Client, link.Namespace)
	if err != nil {
		return err
	}
	for i := range rooms.Items {
		if err := syncRoomAccess(ctx, r.Client, &rooms.Items[i], scope.PartnersOf(&rooms.Items[i], grants)); err != nil {
			return err
		}
	}

	r.Audit.Record(link, audit.Change{
		Category: audit.CategoryPartnerInvitation, Operation: audit.OperationDelete, Result: audit.Successful,
		UserID: audit.OperatorUser, Reason: "PartnerOffboarded",
		Message: fmt.Sprintf("deleted %d role(s) and %d assignment(s); took the label of %s off the rooms no other link of it covers",
			len(roles.Items), len(assignments.Items), link.Spec.PartnerDomain),
	})
	controllerutil.RemoveFinalizer(link, linkFinalizer)
	if err := r.Update(ctx, link); err != nil {
		return client.IgnoreNotFound(ignoreStale(err, "removing the offboarding finalizer"))
	}
	return nil
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

func primaryAdminCount(role *v1alpha1.PartnerRole) int {
	n := 0
	for _, a := range role.Spec.Assignments {
		n += len(a.Members)
	}
	return n
}

// syncRoomAccess makes the room's access labels and status.partners say
// exactly which partners (desired, sorted) may reach it. The label patch is
// guarded by the resourceVersion, so a decision taken on a stale room is
// retried.
func syncRoomAccess(ctx context.Context, c client.Client, room *v1alpha1.Room, desired []string) error {
	if !scope.AccessLabelsMatch(room, desired) {
		patch := client.MergeFromWithOptions(room.DeepCopy(), client.MergeFromWithOptimisticLock{})
		room.Labels = scope.WithAccessLabels(room.Labels, desired)
		if err := c.Patch(ctx, room, patch); err != nil {
			return ignoreStale(err, fmt.Sprintf("labelling room %q for %v", room.Name, desired))
		}
	}
	status := room.Status.DeepCopy()
	status.Partners = desired
	status.ObservedGeneration = room.Generation
	message := "no partner may reach this room"
	if len(desired) > 0 {
		message = "reachable by " + strings.Join(desired, ", ")
	}
	setCondition(&status.Conditions, room, v1alpha1.ConditionReady, metav1.ConditionTrue, "AccessReconciled", message)
	if !equality.Semantic.DeepEqual(*status, room.Status) {
		room.Status = *status
		if err := c.Status().Update(ctx, room); err != nil {
			return ignoreStale(err, fmt.Sprintf("updating the partners of room %q", room.Name))
		}
	}
	return nil
}

// ignoreStale drops the errors of a write based on a stale version: a
// conflict (the newer version's watch event reconciles again) or NotFound
// (the object is gone). It wraps any other error.
func ignoreStale(err error, doing string) error {
	if err == nil || apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("%s: %w", doing, err)
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
