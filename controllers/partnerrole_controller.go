package controllers

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
)

// RoleReconciler reports whether a PartnerRole is in effect (its link is
// Active) and audits its changes. Restoring the built-in role is the link
// controller's job: the invariant belongs to the link.
type RoleReconciler struct {
	client.Client
	// APIReader reads around the cache where a stale read would delete too
	// much (see removeIfOrphaned). Default: Client.
	APIReader client.Reader
	Audit     *audit.Recorder
}

// Reconcile brings one role's status up to date.
func (r *RoleReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	role := &v1alpha1.PartnerRole{}
	if err := r.Get(ctx, req.NamespacedName, role); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !role.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	link, removed, err := linkOf(ctx, r.Client, r.APIReader, r.Audit, role, role.Spec.PartnerLink, audit.CategoryRole)
	if removed || err != nil {
		return ctrl.Result{}, err
	}

	before := role.DeepCopy()
	role.Status = roleStatus(role, link)
	if written, err := patchStatus(ctx, r.Client, before, role); !written || err != nil {
		return ctrl.Result{}, err
	}
	recordGenerationChange(r.Audit, role, before.Status.ObservedGeneration, audit.CategoryRole,
		fmt.Sprintf("grants %v to %d member(s)", role.Spec.Permissions, primaryAdminCount(role)))
	return ctrl.Result{}, nil
}

// SetupWithManager registers the controller; the role's link changes whether
// it is in effect.
func (r *RoleReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.PartnerRole{}).
		Watches(&v1alpha1.PartnerLink{}, enqueueByPartnerLink(r.Client, func() client.ObjectList { return &v1alpha1.PartnerRoleList{} })).
		Named("partnerrole").
		WithOptions(controller.Options{MaxConcurrentReconciles: objectWorkers}).
		Complete(r)
}
