package controllers

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/deadline"
	"github.com/roompro/partner-operator/internal/lifecycle"
)

// InvitationReconciler keeps an invitation's expiresAt and phase. It turns a
// Pending invitation Expired at its deadline, woken by Deadlines rather than
// polling. The PartnerLink controller, not this one, marks invitations
// Accepted: lifecycle.Phase never moves an Accepted or Expired one.
type InvitationReconciler struct {
	client.Client
	Clock     clock.PassiveClock
	Audit     *audit.Recorder
	Deadlines *deadline.Scheduler
}

// Reconcile brings one invitation's status up to date.
func (r *InvitationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	inv := &v1alpha1.PartnerInvitation{}
	if err := r.Get(ctx, req.NamespacedName, inv); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.Deadlines.Cancel(&v1alpha1.PartnerInvitation{ObjectMeta: metav1.ObjectMeta{Name: req.Name, Namespace: req.Namespace}})
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}

	expiresAt := lifecycle.ExpiresAt(inv)
	phase := lifecycle.Phase(inv, r.Clock.Now())
	if phase == v1alpha1.InvitationPending {
		r.Deadlines.At(inv, expiresAt)
	} else {
		r.Deadlines.Cancel(inv)
	}

	previous := inv.Status.Phase
	status := inv.Status.DeepCopy()
	status.Phase = phase
	status.ExpiresAt = &metav1.Time{Time: expiresAt}
	status.ObservedGeneration = inv.Generation
	switch phase {
	case v1alpha1.InvitationPending:
		setCondition(&status.Conditions, inv, v1alpha1.ConditionReady, metav1.ConditionFalse, "AwaitingAcceptance",
			fmt.Sprintf("waiting for a tenant manager of %s to create PartnerLink %q before %s", inv.Spec.PartnerDomain, inv.Name, expiresAt.UTC().Format(time.RFC3339)))
	case v1alpha1.InvitationExpired:
		setCondition(&status.Conditions, inv, v1alpha1.ConditionReady, metav1.ConditionFalse, lifecycle.ReasonInvitationExpired,
			fmt.Sprintf("expired unaccepted at %s; create a new invitation to invite %s again", expiresAt.UTC().Format(time.RFC3339), inv.Spec.PartnerDomain))
	case v1alpha1.InvitationAccepted:
		setCondition(&status.Conditions, inv, v1alpha1.ConditionReady, metav1.ConditionTrue, "Accepted",
			fmt.Sprintf("accepted by %s through PartnerLink %q", orUnknown(status.AcceptedBy), status.PartnerLink))
	}
	if equality.Semantic.DeepEqual(*status, inv.Status) {
		return ctrl.Result{}, nil
	}
	inv.Status = *status
	if err := r.Status().Update(ctx, inv); err != nil {
		return ctrl.Result{}, ignoreStale(err, "updating the invitation status")
	}
	r.recordTransition(inv, previous)
	return ctrl.Result{}, nil
}

func (r *InvitationReconciler) recordTransition(inv *v1alpha1.PartnerInvitation, previous v1alpha1.InvitationPhase) {
	if previous == inv.Status.Phase {
		return
	}
	switch inv.Status.Phase {
	case v1alpha1.InvitationPending:
		r.Audit.Record(inv, audit.Change{
			Category: audit.CategoryPartnerInvitation, Operation: audit.OperationCreate, Result: audit.Successful,
			UserID: inv.Annotations[v1alpha1.AnnotationRequestedBy], Reason: "InvitationSent",
			Message: fmt.Sprintf("invited %s; the invitation expires at %s", inv.Spec.PartnerDomain, inv.Status.ExpiresAt.UTC().Format(time.RFC3339)),
		})
	case v1alpha1.InvitationExpired:
		r.Audit.Record(inv, audit.Change{
			Category: audit.CategoryPartnerInvitation, Operation: audit.OperationUpdate, Result: audit.Successful,
			UserID: audit.OperatorUser, Reason: lifecycle.ReasonInvitationExpired,
			Message: fmt.Sprintf("%s did not accept before %s; the invitation can no longer be accepted", inv.Spec.PartnerDomain, inv.Status.ExpiresAt.UTC().Format(time.RFC3339)),
		})
	}
}

// SetupWithManager registers the controller. It also wakes on its own status
// writes; those reconciles find nothing to change and write nothing.
func (r *InvitationReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.PartnerInvitation{}).
		WatchesRawSource(r.Deadlines.Source()).
		Named("partnerinvitation").
		Complete(r)
}

func orUnknown(s string) string {
	if s == "" {
		return "an unrecorded user"
	}
	return s
}
