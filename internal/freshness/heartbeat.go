package freshness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/internal/metrics"
)

// The heartbeat Lease lives in the operator's namespace; the Role the
// marker generates allows nothing outside it. get is not needed: the
// heartbeat is read through the cache (list, watch) and written blind.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=list;watch;create;patch;delete,namespace=system

// Labels of every heartbeat Lease, so that an operator can find them
// (kubectl get leases -l app.kubernetes.io/component=authorization-heartbeat).
const (
	ComponentLabel = "app.kubernetes.io/component"
	ComponentValue = "authorization-heartbeat"
	nameLabel      = "app.kubernetes.io/name"
	leasePrefix    = "partner-operator-heartbeat-"
)

// Options configure the heartbeat of one replica. The zero value is the
// defaults.
type Options struct {
	// Namespace holds the heartbeat Lease. Default: "default"; in a
	// cluster the manager passes its own namespace (POD_NAMESPACE).
	Namespace string
	// Identity names this replica in its Lease's name and holder.
	// Default: NewIdentity of the hostname (a pod's name).
	Identity string
	// Owner, when set, owns the Lease (the replica's Pod), so that the
	// garbage collector removes the Lease of a replica that died without
	// deleting it.
	Owner *metav1.OwnerReference
	// Period is the time between two heartbeats. Default: DefaultPeriod.
	Period time.Duration
	// MaxStaleness is how old the latest heartbeat seen may be before
	// partner users are denied. Default: DefaultMaxStaleness.
	MaxStaleness time.Duration
	// Clock times the heartbeats and judges them. Default: the real clock.
	Clock clock.WithTicker
}

// Complete returns o with every unset field at its default.
func (o Options) Complete() (Options, error) {
	if o.Namespace == "" {
		o.Namespace = metav1.NamespaceDefault
	}
	if o.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			host = "partner-operator"
		}
		o.Identity = NewIdentity(host)
	}
	if o.Period == 0 {
		o.Period = DefaultPeriod
	}
	if o.MaxStaleness == 0 {
		o.MaxStaleness = DefaultMaxStaleness
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Period < 0 || o.MaxStaleness <= o.Period {
		return o, fmt.Errorf("the maximum staleness of the authorization index (%s) must be longer than the heartbeat period (%s)", o.MaxStaleness, o.Period)
	}
	return o, nil
}

// Lease is the name of this replica's heartbeat Lease.
func (o Options) Lease() types.NamespacedName {
	return types.NamespacedName{Namespace: o.Namespace, Name: dnsSubdomain(leasePrefix + o.Identity)}
}

// CacheConfig restricts the manager's cache of Leases to this replica's
// heartbeat: the operator reads no other Lease through it (leader election
// reads its own directly), and should not hold every Lease of the cluster.
func CacheConfig(lease types.NamespacedName) cache.ByObject {
	return cache.ByObject{
		Namespaces: map[string]cache.Config{lease.Namespace: {}},
		Field:      fields.OneTermEqualSelector("metadata.name", lease.Name),
	}
}

// NewIdentity names a replica: base (its pod's name) and a random suffix,
// so that two replicas on one host (the tests') or a process and its
// restart never share a heartbeat.
func NewIdentity(base string) string {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix) // never fails (crypto/rand)
	const maxBase = 200      // the Lease's name stays within 253 characters
	base = strings.Trim(dnsSubdomain(base), "-.")
	if len(base) > maxBase {
		base = base[:maxBase]
	}
	return base + "-" + hex.EncodeToString(suffix)
}

// dnsSubdomain lower-cases s and replaces what a DNS subdomain (an object's
// name) may not hold with dashes.
func dnsSubdomain(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '-'
	}, s)
	if len(s) > 253 {
		s = s[:253]
	}
	return strings.TrimRight(s, "-.")
}

// Informers is the part of the manager's cache the heartbeat watches
// through.
type Informers interface {
	GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error)
}

// Heartbeat is the manager runnable that writes this replica's heartbeat
// Lease every Period, feeds its echoes from the manager's cache to the
// Monitor, and has the Monitor judge between echoes. The writes go straight
// to the apiserver and the echo comes back on the cache's connection, the
// one the index's informers use: if either path stops, no echo arrives.
type Heartbeat struct {
	Client    client.Client
	Informers Informers
	Monitor   *Monitor
	Options   Options // completed
	Log       logr.Logger
}

// New returns the heartbeat of o (completed) for index, with its Monitor.
func New(o Options, c client.Client, informers Informers, index Marker, log logr.Logger) *Heartbeat {
	return &Heartbeat{Client: c, Informers: informers, Options: o, Log: log, Monitor: NewMonitor(o.Clock, o.MaxStaleness, index, log)}
}

// NeedLeaderElection is false: every replica answers reviews from its own
// index, so every replica proves its own watch.
func (h *Heartbeat) NeedLeaderElection() bool { return false }

// Start watches the heartbeat, beats until ctx ends, then deletes the Lease.
func (h *Heartbeat) Start(ctx context.Context) error {
	lease := h.Options.Lease()
	log := h.Log.WithValues("lease", lease.String())
	informer, err := h.Informers.GetInformer(ctx, &coordinationv1.Lease{})
	if err != nil {
		return fmt.Errorf("getting the informer of the heartbeat Lease: %w", err)
	}
	saw := func(obj any) {
		if l, ok := obj.(*coordinationv1.Lease); ok && l.Name == lease.Name && l.Namespace == lease.Namespace && l.Spec.RenewTime != nil {
			h.Monitor.Saw(l.Spec.RenewTime.Time)
		}
	}
	reg, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    saw,
		UpdateFunc: func(_, obj any) { saw(obj) },
	})
	if err != nil {
		return fmt.Errorf("watching the heartbeat Lease: %w", err)
	}
	defer func() { _ = informer.RemoveEventHandler(reg) }()

	beating := make(chan struct{})
	go func() { defer close(beating); h.beat(ctx, log) }()
	checks := h.Options.Clock.NewTicker(h.Options.Period / 4)
	defer checks.Stop()
	for {
		select {
		case <-checks.C():
			h.Monitor.Check()
		case <-ctx.Done():
			<-beating
			h.remove(log)
			return nil
		}
	}
}

// beat writes a heartbeat now and every Period until ctx ends. A write
// gets one Period: one that hangs (a connection that went silent) must not
// hold up the next.
func (h *Heartbeat) beat(ctx context.Context, log logr.Logger) {
	ticker := h.Options.Clock.NewTicker(h.Options.Period)
	defer ticker.Stop()
	failing := false
	for {
		writeCtx, cancel := context.WithTimeout(ctx, h.Options.Period)
		err := h.write(writeCtx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			metrics.HeartbeatWriteErrors.Inc()
			if !failing { // once per outage, not every second
				log.Error(err, "writing the heartbeat failed; the authorization index turns stale if no write succeeds for the maximum staleness",
					"maxStaleness", h.Options.MaxStaleness.String())
			}
			failing = true
		case err == nil && failing:
			log.Info("writing the heartbeat works again")
			failing = false
		}
		select {
		case <-ticker.C():
		case <-ctx.Done():
			return
		}
	}
}

// write stamps the next heartbeat and writes it: a merge patch of its
// renewTime, which needs no resourceVersion and so never conflicts, or the
// whole Lease when it does not exist (the first write, or after someone
// deleted it).
func (h *Heartbeat) write(ctx context.Context) error {
	lease := h.Options.Lease()
	stamp := h.Monitor.Stamp()
	patch := fmt.Appendf(nil, `{"spec":{"renewTime":%q}}`, stamp.UTC().Format(metav1.RFC3339Micro))
	obj := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: lease.Namespace, Name: lease.Name}}
	err := h.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
	if apierrors.IsNotFound(err) {
		err = h.Client.Create(ctx, h.newLease(stamp))
	}
	if err != nil {
		return fmt.Errorf("writing the heartbeat Lease %s: %w", lease, err)
	}
	return nil
}

func (h *Heartbeat) newLease(stamp metav1.MicroTime) *coordinationv1.Lease {
	lease := h.Options.Lease()
	// The holder renews every Period; leaseDurationSeconds says, as a
	// node's heartbeat Lease does, how old a renewal may be before the
	// holder acts on it (denies partners).
	duration := int32(h.Options.MaxStaleness.Round(time.Second) / time.Second)
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: lease.Namespace, Name: lease.Name,
			Labels: map[string]string{nameLabel: "partner-operator", ComponentLabel: ComponentValue},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: &h.Options.Identity, LeaseDurationSeconds: &duration,
			AcquireTime: &stamp, RenewTime: &stamp,
		},
	}
	if h.Options.Owner != nil {
		l.OwnerReferences = []metav1.OwnerReference{*h.Options.Owner}
	}
	return l
}

// remove deletes the Lease when the replica stops, so that stopped
// replicas leave nothing behind. It is bounded: a replica stopping because
// the apiserver is unreachable must not hang on it.
func (h *Heartbeat) remove(log logr.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	lease := h.Options.Lease()
	err := h.Client.Delete(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: lease.Namespace, Name: lease.Name}})
	if err != nil && !apierrors.IsNotFound(err) {
		log.Error(err, "deleting the heartbeat Lease; the garbage collector removes it with the replica's Pod")
	}
}
