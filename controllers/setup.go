// Package controllers holds the reconcilers of the partner-operator. Each one
// is short and idempotent: it reads the world from the manager's cache,
// computes what should be with the pure packages under internal/, and writes
// only the difference.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/changecontrol"
	"github.com/roompro/partner-operator/internal/deadline"
)

// The manager's RBAC, generated into config/rbac/role.yaml by `make manifests`:
// exactly the verbs its calls need, which test/rbac proves by running the
// operator with nothing else.
// Every kind is cached (list and watch); all but rooms are also read live
// (get) where a stale cache would mislead: the API reader of the
// controllers and of the admission webhooks.
// +kubebuilder:rbac:groups=partners.roompro.io,resources=partnerinvitations;partnerlinks;partnerroles;roomassignments;partnerorganizations,verbs=get;list;watch
// Rooms are written by a merge patch of their labels (roomaccess_controller.go),
// links by an update that adds or removes the finalizer.
// +kubebuilder:rbac:groups=partners.roompro.io,resources=rooms,verbs=list;watch;patch
// +kubebuilder:rbac:groups=partners.roompro.io,resources=partnerlinks,verbs=update
// +kubebuilder:rbac:groups=partners.roompro.io,resources=partnerroles;roomassignments,verbs=create;delete
// Status is written by a merge patch only (patchStatus, status.go).
// +kubebuilder:rbac:groups=partners.roompro.io,resources=rooms/status;partnerinvitations/status;partnerlinks/status;partnerroles/status;roomassignments/status;partnerorganizations/status,verbs=patch
// A link's children name it as their owner with blockOwnerDeletion, which
// the OwnerReferencesPermissionEnforcement admission plugin allows only to
// whoever may update the link's finalizers.
// +kubebuilder:rbac:groups=partners.roompro.io,resources=partnerlinks/finalizers,verbs=update
// The recorder writes events.k8s.io/v1 Events: a create, and a patch when
// an Event repeats (its series). Leader election's core Events are in
// config/rbac/leader_election_role.yaml.
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// Tickets and RoomReports carry their room's access labels (a merge patch,
// accesscopy_controller.go) and status; RoomGroups and UpdateRings are
// counted (status) and read from the cache for the rooms' references.
// +kubebuilder:rbac:groups=partners.roompro.io,resources=tickets;roomreports,verbs=list;watch;patch
// +kubebuilder:rbac:groups=partners.roompro.io,resources=roomgroups;updaterings,verbs=list;watch
// +kubebuilder:rbac:groups=partners.roompro.io,resources=tickets/status;roomreports/status;roomgroups/status;updaterings/status,verbs=patch
// Namespaces are read to tell one that is being deleted (namespace.go).
// +kubebuilder:rbac:groups=core,resources=namespaces,verbs=get;list;watch

// Options configure the controllers.
type Options struct {
	// Clock is the time the controllers judge expiry by. Default: the real clock.
	Clock clock.WithDelayedExecution
	// AuditLog receives one JSON line per partner-relevant change. Default: stdout.
	AuditLog io.Writer
	// ChangeRecheck re-checks, when an approved PartnerChangeRequest is
	// applied, that its requester may still make the write. Required: the
	// change request controller refuses to start without it.
	ChangeRecheck changecontrol.Recheck
}

// Field indexes of the manager's cache, so reconcilers find the children of a
// link without scanning the namespace.
const (
	indexPartnerLink   = "spec.partnerLink"
	indexPartnerDomain = "spec.partnerDomain"
	// indexRoomLabels holds one "key=value" per label of a room: a scope's
	// anchor label finds its candidate rooms without a scan of the namespace.
	indexRoomLabels = "metadata.labels"
	// indexSpecRoom files Tickets and RoomReports by spec.room: a room's
	// access change finds its objects.
	indexSpecRoom = "spec.room"
	// indexRoomGroups and indexRoomUpdateRing file rooms by the groups and
	// ring they name: a group or ring counts its rooms, and its create or
	// delete finds the rooms whose references it resolves.
	indexRoomGroups     = "spec.groups"
	indexRoomUpdateRing = "spec.updateRing"
)

func labelPair(key, value string) string { return key + "=" + value }

// SetupWithManager registers the field indexes and every controller.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.AuditLog == nil {
		opts.AuditLog = os.Stdout
	}
	if opts.ChangeRecheck == nil {
		return errors.New("controllers.Options.ChangeRecheck is required: the change request controller re-checks every requester before it applies a change")
	}
	ctx := context.Background()
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(ctx, &v1alpha1.RoomAssignment{}, indexPartnerLink, func(o client.Object) []string {
		return []string{o.(*v1alpha1.RoomAssignment).Spec.PartnerLink}
	}); err != nil {
		return fmt.Errorf("indexing RoomAssignments by partnerLink: %w", err)
	}
	if err := indexer.IndexField(ctx, &v1alpha1.PartnerRole{}, indexPartnerLink, func(o client.Object) []string {
		return []string{o.(*v1alpha1.PartnerRole).Spec.PartnerLink}
	}); err != nil {
		return fmt.Errorf("indexing PartnerRoles by partnerLink: %w", err)
	}

	if err := indexer.IndexField(ctx, &v1alpha1.PartnerLink{}, indexPartnerDomain, func(o client.Object) []string {
		return []string{string(o.(*v1alpha1.PartnerLink).Spec.PartnerDomain)}
	}); err != nil {
		return fmt.Errorf("indexing PartnerLinks by partnerDomain: %w", err)
	}
	if err := indexer.IndexField(ctx, &v1alpha1.PartnerInvitation{}, indexPartnerDomain, func(o client.Object) []string {
		return []string{string(o.(*v1alpha1.PartnerInvitation).Spec.PartnerDomain)}
	}); err != nil {
		return fmt.Errorf("indexing PartnerInvitations by partnerDomain: %w", err)
	}
	if err := indexer.IndexField(ctx, &v1alpha1.Room{}, indexRoomLabels, func(o client.Object) []string {
		pairs := make([]string, 0, len(o.GetLabels()))
		for k, v := range o.GetLabels() {
			pairs = append(pairs, labelPair(k, v))
		}
		return pairs
	}); err != nil {
		return fmt.Errorf("indexing Rooms by label: %w", err)
	}

	if err := indexer.IndexField(ctx, &v1alpha1.Ticket{}, indexSpecRoom, func(o client.Object) []string {
		return []string{o.(*v1alpha1.Ticket).Spec.Room}
	}); err != nil {
		return fmt.Errorf("indexing Tickets by room: %w", err)
	}
	if err := indexer.IndexField(ctx, &v1alpha1.RoomReport{}, indexSpecRoom, func(o client.Object) []string {
		return []string{o.(*v1alpha1.RoomReport).Spec.Room}
	}); err != nil {
		return fmt.Errorf("indexing RoomReports by room: %w", err)
	}
	if err := indexer.IndexField(ctx, &v1alpha1.Room{}, indexRoomGroups, func(o client.Object) []string {
		return roomGroups(o.(*v1alpha1.Room))
	}); err != nil {
		return fmt.Errorf("indexing Rooms by group: %w", err)
	}
	if err := indexer.IndexField(ctx, &v1alpha1.Room{}, indexRoomUpdateRing, func(o client.Object) []string {
		return roomRing(o.(*v1alpha1.Room))
	}); err != nil {
		return fmt.Errorf("indexing Rooms by update ring: %w", err)
	}

	// The cache watches namespaces from the start, so that the first Event
	// does not wait for an informer to sync.
	if _, err := mgr.GetCache().GetInformer(ctx, &corev1.Namespace{}); err != nil {
		return fmt.Errorf("watching Namespaces: %w", err)
	}
	recorder := func(name string) *audit.Recorder {
		return audit.NewRecorder(eventsOutsideTerminatingNamespaces(mgr.GetEventRecorder(name), mgr.GetCache()), opts.AuditLog, opts.Clock)
	}
	c := mgr.GetClient()
	eventsOf := func(name string) events.EventRecorder {
		return eventsOutsideTerminatingNamespaces(mgr.GetEventRecorder(name), mgr.GetCache())
	}
	setups := []interface{ SetupWithManager(ctrl.Manager) error }{
		&InvitationReconciler{Client: c, APIReader: mgr.GetAPIReader(), Clock: opts.Clock, Audit: recorder("partnerinvitation-controller"), Deadlines: deadline.New(opts.Clock)},
		&LinkReconciler{Client: c, APIReader: mgr.GetAPIReader(), Clock: opts.Clock, Audit: recorder("partnerlink-controller"), Deadlines: deadline.New(opts.Clock)},
		&AssignmentReconciler{Client: c, APIReader: mgr.GetAPIReader(), Audit: recorder("roomassignment-controller")},
		&RoleReconciler{Client: c, APIReader: mgr.GetAPIReader(), Clock: opts.Clock, Audit: recorder("partnerrole-controller"), Deadlines: deadline.New(opts.Clock)},
		&RoomAccessReconciler{Client: c},
		&OrganizationReconciler{Client: c},
		&AccessCopyReconciler[*v1alpha1.Ticket]{Client: c, Events: eventsOf("ticket-access-controller"), kind: ticketKind},
		&AccessCopyReconciler[*v1alpha1.RoomReport]{Client: c, Events: eventsOf("roomreport-access-controller"), kind: reportKind},
		&RoomCountReconciler[*v1alpha1.RoomGroup]{Client: c, Events: eventsOf("roomgroup-controller"), kind: groupKind},
		&RoomCountReconciler[*v1alpha1.UpdateRing]{Client: c, Events: eventsOf("updatering-controller"), kind: ringKind},
		&PartnerChangeRequestReconciler{Client: c, APIReader: mgr.GetAPIReader(), Clock: opts.Clock, Audit: recorder("partnerchangerequest-controller"),
			Deadlines: deadline.New(opts.Clock), Recheck: opts.ChangeRecheck},
	}
	for _, s := range setups {
		if err := s.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("setting up %T: %w", s, err)
		}
	}
	return nil
}
