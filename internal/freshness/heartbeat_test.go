package freshness

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/cache/informertest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestOptionsDefaultsAndLeaseName(t *testing.T) {
	o, err := Options{}.Complete()
	if err != nil {
		t.Fatal(err)
	}
	if o.Namespace != "default" || o.Period != DefaultPeriod || o.MaxStaleness != DefaultMaxStaleness || o.Clock == nil || o.Identity == "" {
		t.Errorf("defaults: %+v", o)
	}
	if _, err := (Options{Period: 5 * time.Second, MaxStaleness: 5 * time.Second}).Complete(); err == nil {
		t.Error("a maximum staleness no longer than the period was accepted")
	}

	a, b := NewIdentity("Manager_Pod.1"), NewIdentity("Manager_Pod.1")
	if a == b {
		t.Errorf("two replicas of one host share the identity %s", a)
	}
	if !strings.HasPrefix(a, "manager-pod.1-") {
		t.Errorf("identity %q does not start with the host's name as a DNS name", a)
	}
	long := Options{Namespace: "ns", Identity: NewIdentity(strings.Repeat("x", 300))}.Lease()
	if len(long.Name) > 253 || !strings.HasPrefix(long.Name, "partner-operator-heartbeat-x") {
		t.Errorf("lease name of a long host: %q (%d characters)", long.Name, len(long.Name))
	}
}

// The heartbeat writes its Lease, judges from the echoes its informer
// delivers, turns the index stale when they stop and current when they come
// back, recreates a Lease someone deleted, and deletes it when it stops.
func TestHeartbeat(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := coordinationv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	informers := &informertest.FakeInformers{Scheme: scheme}
	informer, err := informers.FakeInformerFor(ctx, &coordinationv1.Lease{})
	if err != nil {
		t.Fatal(err)
	}
	// The fake client plays the apiserver, and forwards what it stores to
	// the informer while the "watch" delivers.
	var delivering atomic.Bool
	delivering.Store(true)
	echo := func(obj client.Object) {
		if delivering.Load() {
			informer.Update(nil, obj.DeepCopyObject().(*coordinationv1.Lease))
		}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if err := c.Create(ctx, obj, opts...); err != nil {
				return err
			}
			echo(obj)
			return nil
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if err := c.Patch(ctx, obj, patch, opts...); err != nil {
				return err
			}
			echo(obj)
			return nil
		},
	}).Build()

	clk := clocktesting.NewFakeClock(time.Now())
	owner := &metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: "manager-0", UID: "uid-0"}
	o, err := Options{Namespace: "operator", Identity: "manager-0-abcd", Owner: owner, Clock: clk}.Complete()
	if err != nil {
		t.Fatal(err)
	}
	index := &marker{}
	h := New(o, c, informers, index, logr.Discard())
	exited := make(chan error, 1)
	go func() { exited <- h.Start(ctx) }()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	current := func() bool { return index.stale() == "" }
	waitFor("the first heartbeat to make the index current", current)
	waitFor("the heartbeat's two tickers", func() bool { return clk.Waiters() == 2 })

	key := o.Lease()
	lease := &coordinationv1.Lease{}
	if err := c.Get(ctx, key, lease); err != nil {
		t.Fatal(err)
	}
	if lease.Name != "partner-operator-heartbeat-manager-0-abcd" || *lease.Spec.HolderIdentity != "manager-0-abcd" ||
		lease.Labels[ComponentLabel] != ComponentValue || len(lease.OwnerReferences) != 1 || lease.OwnerReferences[0].UID != "uid-0" ||
		*lease.Spec.LeaseDurationSeconds != 5 {
		t.Errorf("the heartbeat Lease: %+v", lease)
	}

	// The watch stops delivering; writes go on. Stale once the latest
	// heartbeat seen is more than 5s old.
	delivering.Store(false)
	for range 6 {
		clk.Step(time.Second)
	}
	waitFor("the index to turn stale", func() bool { return strings.Contains(index.stale(), "stale") })

	// It delivers again: the next heartbeat makes the index current.
	delivering.Store(true)
	clk.Step(time.Second)
	waitFor("the index to be current again", current)

	// A deleted Lease is written anew.
	if err := c.Delete(ctx, lease); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	waitFor("the Lease to be recreated", func() bool { return c.Get(ctx, key, &coordinationv1.Lease{}) == nil })

	cancel()
	if err := <-exited; err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := c.Get(context.Background(), key, &coordinationv1.Lease{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Lease after the heartbeat stopped: %v, want it deleted", err)
	}
}
