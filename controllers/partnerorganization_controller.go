package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// OrganizationReconciler keeps a PartnerOrganization's status: Ready
// (reason Registered) and how many invitations and links name its domain.
// The registration itself takes effect through the authorization index,
// which watches PartnerOrganizations directly; this status only tells the
// platform team what a registration is used by before they delete it.
type OrganizationReconciler struct {
	client.Client
}

func (r *OrganizationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	org := &v1alpha1.PartnerOrganization{}
	if err := r.Get(ctx, req.NamespacedName, org); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	domain := client.MatchingFields{indexPartnerDomain: string(org.Spec.Domain)}
	invitations := &v1alpha1.PartnerInvitationList{}
	if err := r.List(ctx, invitations, domain); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the invitations of %s: %w", org.Spec.Domain, err)
	}
	links := &v1alpha1.PartnerLinkList{}
	if err := r.List(ctx, links, domain); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the links of %s: %w", org.Spec.Domain, err)
	}
	before := org.DeepCopy()
	org.Status = organizationStatus(org, len(invitations.Items), len(links.Items))
	// A stale write is dropped: the event of the write that made it stale
	// recounts.
	_, err := patchStatus(ctx, r.Client, before, org)
	return ctrl.Result{}, err
}

// SetupWithManager watches registrations, and the invitations and links
// whose counts they show (mapped by domain: a registration is named by it).
func (r *OrganizationReconciler) SetupWithManager(mgr ctrl.Manager) error {
	byDomain := func(domain func(client.Object) v1alpha1.Domain) handler.EventHandler {
		return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: string(domain(o))}}}
		})
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("partnerorganization").
		For(&v1alpha1.PartnerOrganization{}).
		Watches(&v1alpha1.PartnerInvitation{}, byDomain(func(o client.Object) v1alpha1.Domain {
			return o.(*v1alpha1.PartnerInvitation).Spec.PartnerDomain
		})).
		Watches(&v1alpha1.PartnerLink{}, byDomain(func(o client.Object) v1alpha1.Domain {
			return o.(*v1alpha1.PartnerLink).Spec.PartnerDomain
		})).
		Complete(r)
}
