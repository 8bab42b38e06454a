package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	corev1 "k8s.io/api/core/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/scope"
)

// roomBoundKind adapts a kind whose objects are about one room (spec.room)
// and share the status shape of a Ticket: Ticket and RoomReport.
type roomBoundKind[O client.Object] struct {
	name      string // the controller's name
	newObject func() O
	newList   func() client.ObjectList
	room      func(O) string
	status    func(O) v1alpha1.TicketStatus
	setStatus func(O, v1alpha1.TicketStatus)
}

// RoomReport's status converts to and from Ticket's: the conversion compiles
// only while both kinds keep the same status fields.
var (
	ticketKind = roomBoundKind[*v1alpha1.Ticket]{
		name:      "ticket-access",
		newObject: func() *v1alpha1.Ticket { return &v1alpha1.Ticket{} },
		newList:   func() client.ObjectList { return &v1alpha1.TicketList{} },
		room:      func(t *v1alpha1.Ticket) string { return t.Spec.Room },
		status:    func(t *v1alpha1.Ticket) v1alpha1.TicketStatus { return *t.Status.DeepCopy() },
		setStatus: func(t *v1alpha1.Ticket, s v1alpha1.TicketStatus) { t.Status = s },
	}
	reportKind = roomBoundKind[*v1alpha1.RoomReport]{
		name:      "roomreport-access",
		newObject: func() *v1alpha1.RoomReport { return &v1alpha1.RoomReport{} },
		newList:   func() client.ObjectList { return &v1alpha1.RoomReportList{} },
		room:      func(r *v1alpha1.RoomReport) string { return r.Spec.Room },
		status:    func(r *v1alpha1.RoomReport) v1alpha1.TicketStatus { return v1alpha1.TicketStatus(*r.Status.DeepCopy()) },
		setStatus: func(r *v1alpha1.RoomReport, s v1alpha1.TicketStatus) { r.Status = v1alpha1.RoomReportStatus(s) },
	}
)

// AccessCopyReconciler keeps the access labels and status.partners of every
// object of one room-bound kind (Ticket, RoomReport) equal to those of its
// room: a partner reaches a ticket exactly when it reaches the room. It is
// the only writer of those labels and that status.
type AccessCopyReconciler[O client.Object] struct {
	client.Client
	Events events.EventRecorder
	kind   roomBoundKind[O]
}

// Reconcile copies one object's room access.
func (r *AccessCopyReconciler[O]) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := r.kind.newObject()
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	roomName := r.kind.room(obj)
	room := &v1alpha1.Room{}
	found := true
	if err := r.Get(ctx, client.ObjectKey{Namespace: obj.GetNamespace(), Name: roomName}, room); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("reading room %q: %w", roomName, err)
		}
		found = false
	}
	desired := accessDomains(room.Labels) // none when the room is missing
	if !accessLabelsAre(obj.GetLabels(), desired) {
		patch := client.MergeFromWithOptions(obj.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
		obj.SetLabels(scope.WithAccessLabels(obj.GetLabels(), desired))
		if err := r.Patch(ctx, obj, patch); err != nil {
			return ctrl.Result{}, ignoreStale(err, fmt.Sprintf("labelling %s for %v", obj.GetName(), desired))
		}
	}
	before := obj.DeepCopyObject().(client.Object)
	previous := r.kind.status(obj)
	next := accessCopyStatus(obj, previous, roomName, found, desired)
	r.kind.setStatus(obj, next)
	written, err := patchStatus(ctx, r.Client, before, obj)
	if !written || err != nil {
		return ctrl.Result{}, err
	}
	if r.Events != nil {
		switch {
		case !found && conditionReason(previous.Conditions, v1alpha1.ConditionReady) != v1alpha1.ReasonRoomNotFound:
			r.Events.Eventf(obj, nil, corev1.EventTypeWarning, v1alpha1.ReasonRoomNotFound, "Reconcile",
				"room %q does not exist in this namespace: no partner reaches this object until it does", roomName)
		case found && !slices.Equal(previous.Partners, next.Partners):
			r.Events.Eventf(obj, nil, corev1.EventTypeNormal, v1alpha1.ReasonRoomAccessCopied, "Reconcile",
				"%s", readyMessage(next))
		}
	}
	return ctrl.Result{}, nil
}

// SetupWithManager registers the controller: its own kind, and the rooms
// whose access labels change (or that appear or go), which enqueue their
// objects through the cache's spec.room index.
func (r *AccessCopyReconciler[O]) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(r.kind.newObject()).
		Watches(&v1alpha1.Room{}, r.objectsOfRoom()).
		WithOptions(controller.Options{MaxConcurrentReconciles: objectWorkers}).
		Named(r.kind.name).
		Complete(r)
}

func (r *AccessCopyReconciler[O]) objectsOfRoom() handler.EventHandler {
	enqueue := func(ctx context.Context, q queue, room client.Object) {
		for _, req := range listRequests(ctx, r.Client, r.kind.newList(), client.InNamespace(room.GetNamespace()),
			client.MatchingFields{indexSpecRoom: room.GetName()}) {
			q.Add(req)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q queue) { enqueue(ctx, q, e.Object) },
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q queue) {
			if len(accessLabelsChanged(e.ObjectOld.(*v1alpha1.Room), e.ObjectNew.(*v1alpha1.Room))) > 0 {
				enqueue(ctx, q, e.ObjectNew)
			}
		},
		DeleteFunc:  func(ctx context.Context, e event.DeleteEvent, q queue) { enqueue(ctx, q, e.Object) },
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q queue) { enqueue(ctx, q, e.Object) },
	}
}

// accessDomains are the sorted domains whose access label is "true".
func accessDomains(labels map[string]string) []string {
	var domains []string
	for k, v := range labels {
		if domain, ok := strings.CutPrefix(k, v1alpha1.AccessLabelPrefix); ok && v == "true" {
			domains = append(domains, domain)
		}
	}
	slices.Sort(domains)
	return domains
}

// accessLabelsAre reports whether labels hold exactly one access label,
// "true", per domain: then the object costs no write.
func accessLabelsAre(labels map[string]string, domains []string) bool {
	n := 0
	for k, v := range labels {
		if domain, ok := strings.CutPrefix(k, v1alpha1.AccessLabelPrefix); ok {
			if v != "true" || !slices.Contains(domains, domain) {
				return false
			}
			n++
		}
	}
	return n == len(domains)
}
