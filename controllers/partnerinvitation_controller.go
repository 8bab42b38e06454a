package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/deadline"
	"github.com/roompro/partner-operator/internal/lifecycle"
)

// InvitationReconciler keeps an invitation's status: its deadline, and its
// phase, derived from the PartnerLink of its name (lifecycle.Judge). It turns
// a Pending invitation Expired at its deadline, woken by Deadlines rather than
// polling, and Accepted when a link accepts it.
type InvitationReconciler struct {
	client.Client
	// APIReader reads the invitation's link around the cache before the
	// invitation is turned Expired: a link admitted a moment before the
	// deadline must not be missed. Default: Client.
	APIReader client.Reader
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
	link, err := r.linkOf(ctx, r.Client, inv)
	if err != nil {
		return ctrl.Result{}, err
	}
	now := r.Clock.Now()
	status := invitationStatus(inv, link, now)
	if status.Phase == v1alpha1.InvitationExpired && inv.Status.Phase != v1alpha1.InvitationExpired {
		if link, err = r.linkOf(ctx, liveReader(r.APIReader, r.Client), inv); err != nil {
			return ctrl.Result{}, err
		}
		status = invitationStatus(inv, link, now)
	}
	if status.Phase == v1alpha1.InvitationPending {
		r.Deadlines.At(inv, lifecycle.ExpiresAt(inv))
	} else {
		r.Deadlines.Cancel(inv)
	}
	before := inv.DeepCopy()
	inv.Status = status
	if written, err := patchStatus(ctx, r.Client, before, inv); !written || err != nil {
		return ctrl.Result{}, err
	}
	r.recordTransition(inv, before.Status.Phase, link)
	return ctrl.Result{}, nil
}

// linkOf returns the PartnerLink named like the invitation (a link is named
// like the invitation it accepts), or nil.
func (r *InvitationReconciler) linkOf(ctx context.Context, reader client.Reader, inv *v1alpha1.PartnerInvitation) (*v1alpha1.PartnerLink, error) {
	link := &v1alpha1.PartnerLink{}
	switch err := reader.Get(ctx, client.ObjectKeyFromObject(inv), link); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading PartnerLink %q: %w", inv.Name, err)
	}
	return link, nil
}

func (r *InvitationReconciler) recordTransition(inv *v1alpha1.PartnerInvitation, previous v1alpha1.InvitationPhase, link *v1alpha1.PartnerLink) {
	if previous == inv.Status.Phase {
		return
	}
	expiresAt := formatTime(inv.Status.ExpiresAt.Time)
	switch inv.Status.Phase {
	case v1alpha1.InvitationPending:
		r.Audit.Record(inv, audit.Change{
			Category: audit.CategoryPartnerInvitation, Operation: audit.OperationCreate, Result: audit.Successful,
			UserID: inv.Annotations[v1alpha1.AnnotationRequestedBy], Reason: v1alpha1.ReasonInvitationSent,
			Message: fmt.Sprintf("invited %s; the invitation expires at %s", inv.Spec.PartnerDomain, expiresAt),
		})
	case v1alpha1.InvitationExpired:
		r.Audit.Record(inv, audit.Change{
			Category: audit.CategoryPartnerInvitation, Operation: audit.OperationUpdate, Result: audit.Successful,
			UserID: audit.OperatorUser, Reason: v1alpha1.ReasonInvitationExpired,
			Message: fmt.Sprintf("%s did not accept before %s; the invitation can no longer be accepted", inv.Spec.PartnerDomain, expiresAt),
		})
	case v1alpha1.InvitationAccepted:
		change := audit.Change{
			Category: audit.CategoryPartnerInvitation, Operation: audit.OperationUpdate, Result: audit.Successful,
			UserID: inv.Status.AcceptedBy, Reason: v1alpha1.ReasonInvitationAccepted,
			Message: fmt.Sprintf("%s accepted the invitation by %s at %s", inv.Spec.PartnerDomain, orUnknown(inv.Status.AcceptedBy), formatTime(inv.Status.AcceptedAt.Time)),
		}
		if link != nil {
			change.Related = link
		}
		r.Audit.Record(inv, change)
	}
}

// SetupWithManager registers the controller: an invitation wakes on its own
// events (its status writes find nothing to change), on its deadline and on
// the events of the link of its name.
func (r *InvitationReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.PartnerInvitation{}).
		Watches(&v1alpha1.PartnerLink{}, enqueueNamed(func(o client.Object) string { return o.(*v1alpha1.PartnerLink).Spec.Invitation })).
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
