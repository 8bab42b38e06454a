package controllers

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/scope"
)

// AssignmentReconciler reports what a RoomAssignment selects: how many rooms,
// which named rooms are missing, and whether it is in effect (its link is
// Active). The room labels themselves are RoomAccessReconciler's job.
type AssignmentReconciler struct {
	client.Client
	// APIReader reads around the cache where a stale read would delete too
	// much (see removeIfOrphaned). Default: Client.
	APIReader client.Reader
	Audit     *audit.Recorder

	scopes *scopeIndex
}

// Reconcile brings one assignment's status up to date.
func (r *AssignmentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	a := &v1alpha1.RoomAssignment{}
	if err := r.Get(ctx, req.NamespacedName, a); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !a.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	link, removed, err := linkOf(ctx, r.Client, r.APIReader, r.Audit, a, a.Spec.PartnerLink, audit.CategoryAssignment)
	if removed || err != nil {
		return ctrl.Result{}, err
	}

	matcher, compileErr := scope.Compile(a.Spec.Rooms)
	selected := map[string]struct{}{}
	if compileErr == nil {
		if selected, err = roomsOf(ctx, r.Client, a.Namespace, []*scope.Matcher{matcher}); err != nil {
			return ctrl.Result{}, err
		}
	}
	// A named room is selected whenever it exists.
	sel := selection{rooms: len(selected), missing: scope.MissingNames(a.Spec.Rooms, selected), invalid: compileErr}

	before := a.DeepCopy()
	a.Status = assignmentStatus(a, link, sel)
	if written, err := patchStatus(ctx, r.Client, before, a); !written || err != nil {
		return ctrl.Result{}, err
	}
	recordGenerationChange(r.Audit, a, before.Status.ObservedGeneration, audit.CategoryAssignment,
		fmt.Sprintf("assigns %d room(s) to PartnerLink %q", a.Status.MatchedRooms, a.Spec.PartnerLink))
	return ctrl.Result{}, nil
}

// SetupWithManager registers the controller. A room event wakes only the
// assignments whose scopes could select the room, before or after the event:
// the controller files each assignment's scope by anchor as it sees it.
func (r *AssignmentReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.scopes = newScopeIndex()
	return ctrl.NewControllerManagedBy(mgr).
		Named("roomassignment").
		WithOptions(controller.Options{MaxConcurrentReconciles: objectWorkers}).
		Watches(&v1alpha1.RoomAssignment{}, r.scopes.filing(func(o client.Object) *scope.Matcher {
			m, _ := scope.Compile(o.(*v1alpha1.RoomAssignment).Spec.Rooms)
			return m
		})).
		Watches(&v1alpha1.Room{}, r.scopes.selecting()).
		Watches(&v1alpha1.PartnerLink{}, enqueueByPartnerLink(r.Client, func() client.ObjectList { return &v1alpha1.RoomAssignmentList{} })).
		Complete(r)
}
