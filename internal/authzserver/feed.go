package authzserver

import (
	"context"
	"fmt"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authz"
	"github.com/roompro/partner-operator/internal/metrics"
)

// The Feeder caches PartnerChangeRequests, Tickets and RoomReports (list
// and watch) for the index; the manager's other kinds are in
// controllers/setup.go.
// +kubebuilder:rbac:groups=partners.roompro.io,resources=partnerchangerequests,verbs=list;watch
// +kubebuilder:rbac:groups=partners.roompro.io,resources=tickets;roomreports,verbs=list;watch

// Feeder keeps an Index equal to the cache: it registers event handlers on
// the informers of the kinds the index keeps (partner registrations and the
// namespaced kinds, PartnerChangeRequests, Tickets and RoomReports included:
// the index learns the link of each request and the room of each ticket and
// report by name; the rooms of an update ring it reads from the Rooms) and marks the index synced once every
// handler has seen the initial list. It runs on every replica, leader or not,
// so that each one can answer reviews.
type Feeder struct {
	Cache cache.Cache
	Index *authz.Index
}

// NeedLeaderElection is false: followers serve decisions too.
func (f *Feeder) NeedLeaderElection() bool { return false }

// Start registers the handlers and waits for them to sync.
func (f *Feeder) Start(ctx context.Context) error {
	var registrations []toolscache.ResourceEventHandlerRegistration
	for _, obj := range []client.Object{
		&v1alpha1.PartnerOrganization{}, &v1alpha1.PartnerInvitation{}, &v1alpha1.PartnerLink{}, &v1alpha1.RoomAssignment{},
		&v1alpha1.PartnerRole{}, &v1alpha1.Room{}, &v1alpha1.PartnerChangeRequest{}, &v1alpha1.Ticket{}, &v1alpha1.RoomReport{},
	} {
		informer, err := f.Cache.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("getting the informer of %T: %w", obj, err)
		}
		reg, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    f.Index.Upsert,
			UpdateFunc: func(_, newObj any) { f.Index.Upsert(newObj) },
			DeleteFunc: func(obj any) {
				if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
					obj = tombstone.Obj
				}
				f.Index.Delete(obj)
			},
		})
		if err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
		registrations = append(registrations, reg)
	}
	synced := make([]toolscache.InformerSynced, 0, len(registrations))
	for _, reg := range registrations {
		synced = append(synced, reg.HasSynced)
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), synced...) {
		return ctx.Err()
	}
	f.Index.SetSynced(true)
	metrics.IndexSynced.Set(1)
	log.FromContext(ctx).Info("authorization index synced; answering partner requests")
	<-ctx.Done()
	return nil
}
