package controllers

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/scope"
)

// offboard lets a deleted link go once nothing of it is left: it deletes the
// link's roles and assignments, and waits until no room, ticket or report
// carries the partner's label unless another live link of the partner
// covers the room. The room-access controller alone writes the rooms'
// labels, and the access-copy controllers follow them onto tickets and
// reports: from the moment the
// delete is accepted, reachIn no longer counts the link, and the link's
// update event wakes the rooms of its scopes.
func (r *LinkReconciler) offboard(ctx context.Context, link *v1alpha1.PartnerLink) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(link, linkFinalizer) {
		return ctrl.Result{}, nil
	}
	before := link.DeepCopy()
	link.Status = terminatingLinkStatus(link)
	if _, err := patchStatus(ctx, r.Client, before, link); err != nil {
		return ctrl.Result{}, err
	}

	if waiting, err := r.removeAccess(ctx, link); err != nil || waiting {
		return waitResult(waiting, err)
	}

	controllerutil.RemoveFinalizer(link, linkFinalizer)
	if err := r.Update(ctx, link); err != nil {
		// Not recorded: the reconcile that does remove the finalizer records
		// the offboarding, once.
		return ctrl.Result{}, client.IgnoreNotFound(ignoreStale(err, "removing the offboarding finalizer"))
	}
	r.Audit.Record(link, audit.Change{
		Category: audit.CategoryPartnerInvitation, Operation: audit.OperationDelete, Result: audit.Successful,
		UserID: audit.OperatorUser, Reason: v1alpha1.ReasonPartnerOffboarded,
		Message: fmt.Sprintf("offboarded %s: its roles and assignments are deleted, and no room, ticket or report carries its label that no other link of it covers",
			link.Spec.PartnerDomain),
	})
	return ctrl.Result{}, nil
}

// offboardExpired offboards a link whose relationship ended, as offboard
// does a deleted one, but keeps the link and its finalizer: the link stays
// as the record of the relationship, and a later delete runs offboard, which
// finds nothing left to do. Idempotent: each reconcile of an expired link
// deletes what remains and waits for the labels to go.
func (r *LinkReconciler) offboardExpired(ctx context.Context, link *v1alpha1.PartnerLink) (ctrl.Result, error) {
	if waiting, err := r.removeAccess(ctx, link); err != nil || waiting {
		return waitResult(waiting, err)
	}
	return ctrl.Result{}, nil
}

// waitResult requeues a waiting offboarding, or returns its error.
func waitResult(waiting bool, err error) (ctrl.Result, error) {
	if err != nil || !waiting {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: offboardRecheck}, nil
}

// removeAccess deletes the link's roles and assignments and reports whether
// any of them, or a room, ticket or report carrying its label, is still
// left: offboarding then waits (offboardRecheck).
func (r *LinkReconciler) removeAccess(ctx context.Context, link *v1alpha1.PartnerLink) (waiting bool, err error) {
	remaining, err := r.deleteChildren(ctx, link)
	if err != nil {
		return false, err
	}
	labelled, err := r.roomsStillLabelled(ctx, link)
	if err != nil {
		return false, err
	}
	if remaining > 0 || labelled > 0 {
		log.FromContext(ctx).V(1).Info("offboarding waits", "phase", link.Status.Phase, "children", remaining, "labelledRoomsTicketsReports", labelled)
		return true, nil
	}
	return false, nil
}

// deleteChildren deletes the link's roles and assignments, read live so that
// a child created a moment before the link's delete is not missed, and
// returns how many there were.
func (r *LinkReconciler) deleteChildren(ctx context.Context, link *v1alpha1.PartnerLink) (int, error) {
	roles := &v1alpha1.PartnerRoleList{}
	assignments := &v1alpha1.RoomAssignmentList{}
	for _, list := range []client.ObjectList{roles, assignments} {
		// spec.partnerLink is a selectable field of both CRDs, so the
		// apiserver filters, and the cache's index of the same name matches.
		if err := liveReader(r.APIReader, r.Client).List(ctx, list, client.InNamespace(link.Namespace), client.MatchingFields{indexPartnerLink: link.Name}); err != nil {
			return 0, fmt.Errorf("listing the link's children: %w", err)
		}
	}
	for i := range roles.Items {
		if err := r.Delete(ctx, &roles.Items[i]); client.IgnoreNotFound(err) != nil {
			return 0, fmt.Errorf("deleting PartnerRole %q: %w", roles.Items[i].Name, err)
		}
	}
	for i := range assignments.Items {
		if err := r.Delete(ctx, &assignments.Items[i]); client.IgnoreNotFound(err) != nil {
			return 0, fmt.Errorf("deleting RoomAssignment %q: %w", assignments.Items[i].Name, err)
		}
	}
	return len(roles.Items) + len(assignments.Items), nil
}

// roomsStillLabelled counts the rooms, tickets and reports that carry the
// partner's access label although no live link of the partner covers them
// (a ticket or report through its room, which must exist). The lists are
// label-selector lists of the cache: an offboarding with nothing left
// costs three empty lookups.
func (r *LinkReconciler) roomsStillLabelled(ctx context.Context, link *v1alpha1.PartnerLink) (int, error) {
	domain := string(link.Spec.PartnerDomain)
	labelled := []client.ListOption{client.InNamespace(link.Namespace), client.HasLabels{v1alpha1.AccessLabel(domain)}, client.UnsafeDisableDeepCopy}
	rooms := &v1alpha1.RoomList{}
	tickets := &v1alpha1.TicketList{}
	reports := &v1alpha1.RoomReportList{}
	for _, list := range []client.ObjectList{rooms, tickets, reports} {
		if err := r.List(ctx, list, labelled...); err != nil {
			return 0, fmt.Errorf("listing the partner's labelled objects: %w", err)
		}
	}
	if len(rooms.Items)+len(tickets.Items)+len(reports.Items) == 0 {
		return 0, nil
	}
	reach, err := reachIn(ctx, r.Client, link.Namespace)
	if err != nil {
		return 0, err
	}
	covered := map[string]bool{} // room name -> another live link covers it
	coveredRoom := func(name string) (bool, error) {
		if c, ok := covered[name]; ok {
			return c, nil
		}
		room := &v1alpha1.Room{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: link.Namespace, Name: name}, room); err != nil {
			if apierrors.IsNotFound(err) {
				covered[name] = false
				return false, nil
			}
			return false, fmt.Errorf("reading room %q: %w", name, err)
		}
		covered[name] = slices.Contains(scope.PartnersOf(room, reach), domain)
		return covered[name], nil
	}
	n := 0
	for i := range rooms.Items {
		if !slices.Contains(scope.PartnersOf(&rooms.Items[i], reach), domain) {
			n++
		}
	}
	roomsOfObjects := make([]string, 0, len(tickets.Items)+len(reports.Items))
	for i := range tickets.Items {
		roomsOfObjects = append(roomsOfObjects, tickets.Items[i].Spec.Room)
	}
	for i := range reports.Items {
		roomsOfObjects = append(roomsOfObjects, reports.Items[i].Spec.Room)
	}
	for _, name := range roomsOfObjects {
		c, err := coveredRoom(name)
		if err != nil {
			return 0, err
		}
		if !c {
			n++
		}
	}
	return n, nil
}
