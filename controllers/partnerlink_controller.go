package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/deadline"
	"github.com/roompro/partner-operator/internal/lifecycle"
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
// keeps an active link's built-in primary-admin role in place and its
// relationship's end (partnerlink_relationship.go) up to date, expires it at
// that end, and offboards an expired or deleted link.
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
	// Deadlines wakes an active link at its next notice and at its
	// expiresAt, judged by Clock, rather than polling.
	Deadlines *deadline.Scheduler
}

// Reconcile moves one link one step towards its desired state.
func (r *LinkReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	link := &v1alpha1.PartnerLink{}
	if err := r.Get(ctx, req.NamespacedName, link); err != nil {
		if apierrors.IsNotFound(err) {
			r.Deadlines.Cancel(&v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Name: req.Name, Namespace: req.Namespace}})
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !link.DeletionTimestamp.IsZero() {
		r.Deadlines.Cancel(link)
		return r.offboard(ctx, link)
	}
	result, err := r.reconcileLive(ctx, link)
	if namespaceTerminating(err) {
		// A child or the built-in role cannot be created: the namespace is
		// being deleted, and the link with it (namespace.go).
		log.FromContext(ctx).V(1).Info("not activating or repairing a link whose namespace is being deleted", "reason", err.Error())
		return ctrl.Result{}, nil
	}
	return result, err
}

// reconcileLive holds a link that is not deleted with the finalizer, and
// activates, maintains or (once expired) offboards it.
func (r *LinkReconciler) reconcileLive(ctx context.Context, link *v1alpha1.PartnerLink) (ctrl.Result, error) {
	if controllerutil.AddFinalizer(link, linkFinalizer) {
		if err := r.Update(ctx, link); err != nil {
			return ctrl.Result{}, ignoreStale(err, "adding the offboarding finalizer")
		}
	}
	switch link.Status.Phase {
	case v1alpha1.LinkExpired:
		// Final: whatever the customer edits, an expired relationship is
		// not activated again.
		r.Deadlines.Cancel(link)
		return r.offboardExpired(ctx, link)
	case v1alpha1.LinkActive:
		return r.maintain(ctx, link)
	}
	return ctrl.Result{}, r.activate(ctx, link)
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
		_, err := r.maintain(ctx, live)
		return err
	case live.Status.Phase == v1alpha1.LinkExpired:
		return nil // final; the event of its status write offboards it
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
	link.Status = activeLinkStatus(link, inv, r.Clock.Now())
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

// maintain keeps an active link whole: it follows the invitation's
// relationship terms (expiresAt, extensions, notices), restores a missing
// built-in role and reports the primary-admin invariant and the scope's size.
// At expiresAt without autoExtend it expires the link instead.
func (r *LinkReconciler) maintain(ctx context.Context, link *v1alpha1.PartnerLink) (ctrl.Result, error) {
	inv, err := r.invitationOf(ctx, r.Client, link)
	if err != nil {
		return ctrl.Result{}, err
	}
	t, known := termsOf(inv, link)
	now := r.Clock.Now()
	rel := judgeRelationship(&link.Status, t, known, now)
	if rel.expired {
		// Irreversible: judge again on the live invitation, which the
		// customer may have just lengthened or set to autoExtend.
		if inv, err = r.invitationOf(ctx, liveReader(r.APIReader, r.Client), link); err != nil {
			return ctrl.Result{}, err
		}
		t, known = termsOf(inv, link)
		if rel = judgeRelationship(&link.Status, t, known, now); rel.expired {
			return r.expire(ctx, link, rel.expiresAt.Time)
		}
	}
	if rel.next.IsZero() {
		r.Deadlines.Cancel(link)
	} else {
		r.Deadlines.At(link, rel.next)
	}

	role := &v1alpha1.PartnerRole{}
	err = r.Get(ctx, client.ObjectKey{Namespace: link.Namespace, Name: v1alpha1.PrimaryAdminRoleName(link.Name)}, role)
	switch {
	case apierrors.IsNotFound(err):
		if role, err = r.restorePrimaryAdminRole(ctx, link); role == nil || err != nil {
			return ctrl.Result{}, err
		}
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("reading the built-in role: %w", err)
	}

	rooms, err := r.roomsInScope(ctx, link)
	if err != nil {
		return ctrl.Result{}, err
	}
	before := link.DeepCopy()
	link.Status = maintainedLinkStatus(link, role, rooms)
	setRelationship(&link.Status, link, rel, t.autoExtend)
	if written, err := patchStatus(ctx, r.Client, before, link); !written || err != nil {
		return ctrl.Result{}, err
	}
	r.recordRelationship(link, before, rel)
	return ctrl.Result{}, nil
}

// invitationOf reads the link's invitation through reader; nil when it is gone.
func (r *LinkReconciler) invitationOf(ctx context.Context, reader client.Reader, link *v1alpha1.PartnerLink) (*v1alpha1.PartnerInvitation, error) {
	inv := &v1alpha1.PartnerInvitation{}
	switch err := reader.Get(ctx, client.ObjectKey{Namespace: link.Namespace, Name: link.Spec.Invitation}, inv); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading PartnerInvitation %q: %w", link.Spec.Invitation, err)
	}
	return inv, nil
}

// recordRelationship records, once the status that says so is stored, the
// extensions just made and a notice just reached. The stored Expiring
// reason is what "already raised" means, so a restart raises nothing again.
func (r *LinkReconciler) recordRelationship(link, before *v1alpha1.PartnerLink, rel relationship) {
	for _, ext := range rel.extended {
		r.Audit.Record(link, audit.Change{
			Category: audit.CategoryPartnerInvitation, Operation: audit.OperationUpdate, Result: audit.Successful,
			UserID: audit.OperatorUser, Reason: v1alpha1.ReasonExtended,
			Message: fmt.Sprintf("the relationship with %s reached its end at %s and is extended by %d days to %s (relationship.autoExtend)",
				link.Spec.PartnerDomain, formatTime(ext.From.Time), v1alpha1.AutoExtendDays, formatTime(ext.To.Time)),
		})
	}
	previous := conditionReason(before.Status.Conditions, v1alpha1.ConditionExpiring)
	if current := conditionReason(link.Status.Conditions, v1alpha1.ConditionExpiring); noticeRaised(previous, current) {
		r.Audit.Record(link, audit.Change{
			Category: audit.CategoryPartnerInvitation, Operation: audit.OperationUpdate, Result: audit.Successful, Warning: true,
			UserID: audit.OperatorUser, Reason: current,
			Message: meta.FindStatusCondition(link.Status.Conditions, v1alpha1.ConditionExpiring).Message,
		})
	}
}

// expire ends the relationship: the link turns Expired (from then on
// reachIn and the index no longer count it) and is offboarded like a
// deleted link, but stays as a record.
func (r *LinkReconciler) expire(ctx context.Context, link *v1alpha1.PartnerLink, expiresAt time.Time) (ctrl.Result, error) {
	r.Deadlines.Cancel(link)
	before := link.DeepCopy()
	link.Status = expiredLinkStatus(link, expiresAt)
	if written, err := patchStatus(ctx, r.Client, before, link); !written || err != nil {
		// Not written: a newer version of the link reconciles again.
		return ctrl.Result{}, err
	}
	r.Audit.Record(link, audit.Change{
		Category: audit.CategoryPartnerInvitation, Operation: audit.OperationDelete, Result: audit.Successful, Warning: true,
		UserID: audit.OperatorUser, Reason: v1alpha1.ReasonRelationshipExpired,
		Message: fmt.Sprintf("the relationship with %s ended at %s: its roles and assignments are deleted and its access labels removed; the link stays as an Expired record",
			link.Spec.PartnerDomain, formatTime(expiresAt)),
	})
	return r.offboardExpired(ctx, link)
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
		WatchesRawSource(r.Deadlines.Source()).
		Named("partnerlink").
		WithOptions(controller.Options{MaxConcurrentReconciles: objectWorkers}).
		Complete(r)
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
