package controllers

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/deadline"
)

// RoleReconciler reports whether a PartnerRole is in effect (its link is
// Active) and, per assignment, whether its window is Active, Upcoming or
// Expired; it audits the role's changes and its windows opening and
// closing. Restoring the built-in role is the link controller's job: the
// invariant belongs to the link. The status is a report: the authorization
// webhook decides windows against its own clock, whatever the status says.
type RoleReconciler struct {
	client.Client
	// APIReader reads around the cache where a stale read would delete too
	// much (see removeIfOrphaned). Default: Client.
	APIReader client.Reader
	// Clock judges the assignments' windows.
	Clock clock.PassiveClock
	Audit *audit.Recorder
	// Deadlines wakes a role at its next validFrom or validUntil, so that
	// its status turns at that moment without polling.
	Deadlines *deadline.Scheduler
}

// Reconcile brings one role's status up to date.
func (r *RoleReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	role := &v1alpha1.PartnerRole{}
	if err := r.Get(ctx, req.NamespacedName, role); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.Deadlines.Cancel(&v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Name: req.Name, Namespace: req.Namespace}})
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !role.DeletionTimestamp.IsZero() {
		r.Deadlines.Cancel(role)
		return ctrl.Result{}, nil
	}
	link, removed, err := linkOf(ctx, r.Client, r.APIReader, r.Audit, role, role.Spec.PartnerLink, audit.CategoryRole)
	if removed || err != nil {
		return ctrl.Result{}, err
	}

	now := r.Clock.Now()
	// Armed before the write: a status write that conflicts is retried by
	// the newer version's event, but a boundary must never be missed.
	if next, ok := nextWindowChange(role, now); ok {
		r.Deadlines.At(role, next)
	} else {
		r.Deadlines.Cancel(role)
	}
	before := role.DeepCopy()
	role.Status = roleStatus(role, link, now)
	if written, err := patchStatus(ctx, r.Client, before, role); !written || err != nil {
		return ctrl.Result{}, err
	}
	recordGenerationChange(r.Audit, role, before.Status.ObservedGeneration, audit.CategoryRole,
		fmt.Sprintf("grants %v to %d member(s)", role.Spec.Permissions, primaryAdminCount(role)))
	r.recordWindows(role, windowTransitions(role, before.Status.Assignments, role.Status.Assignments))
	return ctrl.Result{}, nil
}

// recordWindows audits the assignments whose window opened or closed, as
// the status just written records it.
func (r *RoleReconciler) recordWindows(role *v1alpha1.PartnerRole, transitions []windowTransition) {
	for _, t := range transitions {
		reason, message := v1alpha1.ReasonAssignmentActive,
			fmt.Sprintf("assignment %q grants %v to %d member(s) from now on, inside its window %s", t.Assignment.Name, role.Spec.Permissions, len(t.Assignment.Members), describeWindow(t.Assignment))
		if t.To == v1alpha1.WindowExpired {
			reason, message = v1alpha1.ReasonAssignmentExpired,
				fmt.Sprintf("assignment %q grants nothing any more: its window %s has ended", t.Assignment.Name, describeWindow(t.Assignment))
		}
		r.Audit.Record(role, audit.Change{
			Category: audit.CategoryRole, Operation: audit.OperationUpdate, Result: audit.Successful,
			UserID: audit.OperatorUser, Reason: reason, Message: message,
		})
	}
}

// SetupWithManager registers the controller; the role's link changes whether
// it is in effect, and the deadlines wake it when a window opens or closes.
func (r *RoleReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.PartnerRole{}).
		Watches(&v1alpha1.PartnerLink{}, enqueueByPartnerLink(r.Client, func() client.ObjectList { return &v1alpha1.PartnerRoleList{} })).
		WatchesRawSource(r.Deadlines.Source()).
		Named("partnerrole").
		WithOptions(controller.Options{MaxConcurrentReconciles: objectWorkers}).
		Complete(r)
}
