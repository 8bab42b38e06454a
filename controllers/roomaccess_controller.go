package controllers

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/scope"
)

// RoomAccessReconciler keeps the label access.partners.roompro.io/<domain>
// and status.partners of each room equal to the partners whose active links'
// assignments select it: added when a room enters a scope, removed when it
// leaves. Only rooms whose labels differ are written.
type RoomAccessReconciler struct {
	client.Client
	reach *reachCache
}

// Workers per controller. Reconciles of different objects are independent
// (controller-runtime never runs one key twice at once), and each one waits
// on API round trips: with a thousand links, one worker per kind left the
// apiserver idle between writes. Rooms get more: a scope holds thousands.
const (
	objectWorkers     = 4
	roomAccessWorkers = 16
)

// Reconcile brings one room's access labels up to date.
func (r *RoomAccessReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	room := &v1alpha1.Room{}
	if err := r.Get(ctx, req.NamespacedName, room); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	reach, err := r.reachIn(ctx, room.Namespace)
	if err != nil {
		return ctrl.Result{}, err
	}
	missing, err := r.missingReferences(ctx, room)
	if err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, syncRoomAccess(ctx, r.Client, room, reach.partnersOf(room), missing)
}

// missingReferences reads, from the cache, which groups and ring the room
// names that do not exist.
func (r *RoomAccessReconciler) missingReferences(ctx context.Context, room *v1alpha1.Room) (references, error) {
	var failed error
	exists := func(obj client.Object) func(string) bool {
		return func(name string) bool {
			err := r.Get(ctx, client.ObjectKey{Namespace: room.Namespace, Name: name}, obj)
			if err != nil && !apierrors.IsNotFound(err) && failed == nil {
				failed = fmt.Errorf("reading %T %q: %w", obj, name, err)
			}
			return err == nil
		}
	}
	m := missingReferences(room, exists(&v1alpha1.RoomGroup{}), exists(&v1alpha1.UpdateRing{}))
	return m, failed
}

// reachIn reads the namespace's reach: memoized when the controller runs
// in a manager, computed afresh when it is called on its own.
func (r *RoomAccessReconciler) reachIn(ctx context.Context, namespace string) (*namespaceReach, error) {
	if r.reach != nil {
		return r.reach.forNamespace(ctx, namespace)
	}
	reach, err := reachIn(ctx, r.Client, namespace)
	return newNamespaceReach(reach), err
}

// syncRoomAccess makes the room's access labels and status.partners say
// exactly which partners (desired, sorted) may reach it. Both writes are
// guarded by the resourceVersion, so a decision taken on a stale room is
// taken again on the newer one.
func syncRoomAccess(ctx context.Context, c client.Client, room *v1alpha1.Room, desired []string, missing references) error {
	if !scope.AccessLabelsMatch(room, desired) {
		patch := client.MergeFromWithOptions(room.DeepCopy(), client.MergeFromWithOptimisticLock{})
		room.Labels = scope.WithAccessLabels(room.Labels, desired)
		if err := c.Patch(ctx, room, patch); err != nil {
			return ignoreStale(err, fmt.Sprintf("labelling room %q for %v", room.Name, desired))
		}
	}
	before := room.DeepCopy()
	room.Status = roomStatus(room, desired, missing)
	_, err := patchStatus(ctx, c, before, room)
	return err
}

// SetupWithManager registers the controller. A change of an assignment, or
// of whether a link is active, wakes only the rooms its scopes could select
// (before and after the change), found through the cache's label index: one
// assignment change costs no API call for an unrelated room.
func (r *RoomAccessReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.reach = newReachCache(mgr.GetCache())
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Room{}).
		Watches(&v1alpha1.RoomAssignment{}, r.roomsInScopesOf(r.assignmentScope, assignmentMoved)).
		Watches(&v1alpha1.PartnerLink{}, r.roomsInScopesOf(r.linkScopes, accessChanged)).
		Watches(&v1alpha1.RoomGroup{}, roomsNaming(r.Client, indexRoomGroups)).
		Watches(&v1alpha1.UpdateRing{}, roomsNaming(r.Client, indexRoomUpdateRing)).
		WithOptions(controller.Options{MaxConcurrentReconciles: roomAccessWorkers}).
		Named("room-access").
		Complete(r)
}

type queue = workqueue.TypedRateLimitingInterface[ctrl.Request]

// roomsNaming enqueues, when a group or ring is created or deleted, the
// rooms that name it (the rooms' field index): their ReferencesResolved
// condition changes. An update changes no name.
func roomsNaming(c client.Reader, index string) handler.EventHandler {
	enqueue := func(ctx context.Context, q queue, obj client.Object) {
		for _, req := range listRequests(ctx, c, &v1alpha1.RoomList{}, client.InNamespace(obj.GetNamespace()),
			client.MatchingFields{index: obj.GetName()}, client.UnsafeDisableDeepCopy) {
			q.Add(req)
		}
	}
	return handler.Funcs{
		CreateFunc:  func(ctx context.Context, e event.CreateEvent, q queue) { enqueue(ctx, q, e.Object) },
		DeleteFunc:  func(ctx context.Context, e event.DeleteEvent, q queue) { enqueue(ctx, q, e.Object) },
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q queue) { enqueue(ctx, q, e.Object) },
	}
}

// roomsInScopesOf is the event handler of an object with scopes: it drops the
// namespace's memoized reach and enqueues the rooms of the object's scopes,
// old and new; changed filters the updates that cannot move a room.
func (r *RoomAccessReconciler) roomsInScopesOf(scopes func(context.Context, client.Object) []*scope.Matcher, changed func(old, new client.Object) bool) handler.EventHandler {
	enqueue := func(ctx context.Context, q queue, objs ...client.Object) {
		r.reach.invalidate(objs[0].GetNamespace())
		for _, obj := range objs {
			for _, m := range scopes(ctx, obj) {
				enqueueRoomsOf(ctx, r.Client, q, obj.GetNamespace(), m)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q queue) { enqueue(ctx, q, e.Object) },
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q queue) {
			if changed(e.ObjectOld, e.ObjectNew) {
				enqueue(ctx, q, e.ObjectOld, e.ObjectNew)
			}
		},
		DeleteFunc:  func(ctx context.Context, e event.DeleteEvent, q queue) { enqueue(ctx, q, e.Object) },
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q queue) { enqueue(ctx, q, e.Object) },
	}
}

func (r *RoomAccessReconciler) assignmentScope(_ context.Context, obj client.Object) []*scope.Matcher {
	m, err := scope.Compile(obj.(*v1alpha1.RoomAssignment).Spec.Rooms)
	if err != nil {
		return nil // selects nothing, now or before
	}
	return []*scope.Matcher{m}
}

func (r *RoomAccessReconciler) linkScopes(ctx context.Context, obj client.Object) []*scope.Matcher {
	matchers, err := linkMatchers(ctx, r.Client, obj.(*v1alpha1.PartnerLink))
	if err != nil {
		return nil // the assignments' own events reach the rooms
	}
	return matchers
}

// assignmentMoved: the scope, the link or the deletion state changed.
func assignmentMoved(old, new client.Object) bool {
	o, n := old.(*v1alpha1.RoomAssignment), new.(*v1alpha1.RoomAssignment)
	return !equality.Semantic.DeepEqual(o.Spec, n.Spec) || o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero()
}

// accessChanged: the link started or stopped granting access.
func accessChanged(old, new client.Object) bool {
	o, n := old.(*v1alpha1.PartnerLink), new.(*v1alpha1.PartnerLink)
	return linkGrantsAccess(o) != linkGrantsAccess(n) || o.Spec.PartnerDomain != n.Spec.PartnerDomain
}

// linkMatchers compiles the scopes of a link's live assignments.
func linkMatchers(ctx context.Context, c client.Reader, link *v1alpha1.PartnerLink) ([]*scope.Matcher, error) {
	assignments := &v1alpha1.RoomAssignmentList{}
	if err := c.List(ctx, assignments, client.InNamespace(link.Namespace), client.MatchingFields{indexPartnerLink: link.Name},
		client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	var matchers []*scope.Matcher
	for i := range assignments.Items {
		if m, err := scope.Compile(assignments.Items[i].Spec.Rooms); err == nil && assignments.Items[i].DeletionTimestamp.IsZero() {
			matchers = append(matchers, m)
		}
	}
	return matchers, nil
}

// accessLabelsChanged lists the domains whose access label differs between
// two versions of a room (nil for the version before a create or after a
// delete): the partners whose reach the change moved.
func accessLabelsChanged(old, new *v1alpha1.Room) []string {
	before, after := accessLabels(old), accessLabels(new)
	var domains []string
	for d, v := range before {
		if after[d] != v {
			domains = append(domains, d)
		}
	}
	for d := range after {
		if _, ok := before[d]; !ok {
			domains = append(domains, d)
		}
	}
	return domains
}

func accessLabels(room *v1alpha1.Room) map[string]string {
	labels := map[string]string{}
	if room == nil {
		return labels
	}
	for k, v := range room.Labels {
		if domain, ok := strings.CutPrefix(k, v1alpha1.AccessLabelPrefix); ok {
			labels[domain] = v
		}
	}
	return labels
}
