package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// roomCountedKind adapts a kind that rooms join by naming it (RoomGroup by
// spec.groups, UpdateRing by spec.updateRing) and whose status shape is a
// RoomGroup's.
type roomCountedKind[O client.Object] struct {
	name      string
	newObject func() O
	// index is the rooms' field index of the names they give this kind.
	index string
	// named are the names a room gives this kind.
	named     func(*v1alpha1.Room) []string
	status    func(O) v1alpha1.RoomGroupStatus
	setStatus func(O, v1alpha1.RoomGroupStatus)
}

// UpdateRing's status converts to and from RoomGroup's: the conversion
// compiles only while both kinds keep the same status fields.
var (
	groupKind = roomCountedKind[*v1alpha1.RoomGroup]{
		name: "roomgroup-rooms", newObject: func() *v1alpha1.RoomGroup { return &v1alpha1.RoomGroup{} },
		index: indexRoomGroups, named: roomGroups,
		status:    func(g *v1alpha1.RoomGroup) v1alpha1.RoomGroupStatus { return *g.Status.DeepCopy() },
		setStatus: func(g *v1alpha1.RoomGroup, s v1alpha1.RoomGroupStatus) { g.Status = s },
	}
	ringKind = roomCountedKind[*v1alpha1.UpdateRing]{
		name: "updatering-rooms", newObject: func() *v1alpha1.UpdateRing { return &v1alpha1.UpdateRing{} },
		index: indexRoomUpdateRing, named: roomRing,
		status: func(u *v1alpha1.UpdateRing) v1alpha1.RoomGroupStatus {
			return v1alpha1.RoomGroupStatus(*u.Status.DeepCopy())
		},
		setStatus: func(u *v1alpha1.UpdateRing, s v1alpha1.RoomGroupStatus) { u.Status = v1alpha1.UpdateRingStatus(s) },
	}
)

func roomGroups(r *v1alpha1.Room) []string { return r.Spec.Groups }

func roomRing(r *v1alpha1.Room) []string {
	if r.Spec.UpdateRing == "" {
		return nil
	}
	return []string{r.Spec.UpdateRing}
}

// RoomCountReconciler keeps status.rooms of a RoomGroup or UpdateRing equal
// to the number of rooms that name it, counted through the rooms' field
// index.
type RoomCountReconciler[O client.Object] struct {
	client.Client
	Events events.EventRecorder
	kind   roomCountedKind[O]
}

// Reconcile counts one group's or ring's rooms.
func (r *RoomCountReconciler[O]) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := r.kind.newObject()
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	rooms := &v1alpha1.RoomList{}
	if err := r.List(ctx, rooms, client.InNamespace(obj.GetNamespace()), client.MatchingFields{r.kind.index: obj.GetName()},
		client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, fmt.Errorf("counting the rooms of %s: %w", obj.GetName(), err)
	}
	before := obj.DeepCopyObject().(client.Object)
	previous := r.kind.status(obj)
	r.kind.setStatus(obj, roomCountStatus(obj, previous, len(rooms.Items)))
	written, err := patchStatus(ctx, r.Client, before, obj)
	if written && r.Events != nil && previous.Rooms != int32(len(rooms.Items)) {
		r.Events.Eventf(obj, nil, corev1.EventTypeNormal, v1alpha1.ReasonRoomsCounted, "Reconcile", "%d room(s) name it", len(rooms.Items))
	}
	return ctrl.Result{}, err
}

// roomCountStatus is the status of a group or ring that n rooms name.
func roomCountStatus(obj client.Object, current v1alpha1.RoomGroupStatus, n int) v1alpha1.RoomGroupStatus {
	status := *current.DeepCopy()
	status.Rooms = int32(n)
	status.ObservedGeneration = obj.GetGeneration()
	setCondition(&status.Conditions, obj, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRoomsCounted,
		fmt.Sprintf("%d room(s) name it", n))
	return status
}

// SetupWithManager registers the controller: a room's create and delete
// enqueue the groups (rings) it names, an update those it named before and
// names now when they differ.
func (r *RoomCountReconciler[O]) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(r.kind.newObject()).
		Watches(&v1alpha1.Room{}, namedBy(r.kind.named)).
		WithOptions(controller.Options{MaxConcurrentReconciles: objectWorkers}).
		Named(r.kind.name).
		Complete(r)
}

// namedBy enqueues the objects a room names (named), before and after an
// update that changes them.
func namedBy(named func(*v1alpha1.Room) []string) handler.EventHandler {
	enqueue := func(q queue, rooms ...client.Object) {
		for _, o := range rooms {
			for _, n := range named(o.(*v1alpha1.Room)) {
				q.Add(ctrl.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: n}})
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q queue) { enqueue(q, e.Object) },
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q queue) {
			if !sameStrings(named(e.ObjectOld.(*v1alpha1.Room)), named(e.ObjectNew.(*v1alpha1.Room))) {
				enqueue(q, e.ObjectOld, e.ObjectNew)
			}
		},
		DeleteFunc:  func(_ context.Context, e event.DeleteEvent, q queue) { enqueue(q, e.Object) },
		GenericFunc: func(_ context.Context, e event.GenericEvent, q queue) { enqueue(q, e.Object) },
	}
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
