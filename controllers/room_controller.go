package controllers

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// RoomAccessReconciler keeps the label access.partners.roompro.io/<domain>
// and status.partners of each room equal to the partners whose active links'
// assignments select it: added when a room enters a scope, removed when it
// leaves. Only rooms whose labels differ are written.
type RoomAccessReconciler struct {
	client.Client
}

// Reconcile brings one room's access labels up to date.
func (r *RoomAccessReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	room := &v1alpha1.Room{}
	if err := r.Get(ctx, req.NamespacedName, room); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	grants, err := grantsIn(ctx, r.Client, room.Namespace)
	if err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, syncRoomAccess(ctx, r.Client, room, grants)
}

// SetupWithManager registers the controller. Any change of an assignment or
// a link of the namespace may move any of its rooms in or out of a scope, so
// those events wake every room of the namespace; rooms whose labels are
// already right cost a cache read and no write.
func (r *RoomAccessReconciler) SetupWithManager(mgr ctrl.Manager) error {
	allRooms := enqueueAllInNamespace(r.Client, func() client.ObjectList { return &v1alpha1.RoomList{} })
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Room{}).
		Watches(&v1alpha1.RoomAssignment{}, allRooms).
		Watches(&v1alpha1.PartnerLink{}, allRooms).
		Named("room-access").
		Complete(r)
}
