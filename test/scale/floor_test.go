package scale

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/controlplane"
)

// BenchmarkApiserverFloor is what this machine's apiserver and etcd can do
// without the operator: the writes convergence needs per room (create it,
// label it, write its status), made by 32 clients with no admission webhooks
// and no rate limit. Convergence cannot beat it; compare converge-s with
// floor-s at the same SCALE_ROOMS.
func BenchmarkApiserverFloor(b *testing.B) {
	rooms := envInt("SCALE_ROOMS", 100_000)
	b.Run(fmt.Sprintf("rooms=%d", rooms), func(b *testing.B) {
		ctx := context.Background()
		cp, err := controlplane.Start(controlplane.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = cp.Stop() }()
		cfg := rest.CopyConfig(cp.Config)
		cfg.QPS = -1
		c, err := client.New(cfg, client.Options{Scheme: scheme})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		parallel(b, rooms, func(i int) error {
			room := &v1alpha1.Room{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("room-%d", i),
					Labels: map[string]string{"partner": fmt.Sprintf("p%d", i%1000), "floor": strconv.Itoa(i / 1000 % 10)}},
				Spec: v1alpha1.RoomSpec{DisplayName: fmt.Sprintf("Room %d", i)},
			}
			if err := c.Create(ctx, room); err != nil {
				return err
			}
			patch := client.MergeFrom(room.DeepCopy())
			room.Labels[v1alpha1.AccessLabel(domainOf(i%1000))] = "true"
			if err := c.Patch(ctx, room, patch); err != nil {
				return err
			}
			room.Status.Partners = []string{domainOf(i % 1000)}
			return c.Status().Update(ctx, room)
		})
		elapsed := time.Since(start)
		b.ReportMetric(elapsed.Seconds(), "floor-s")
		b.ReportMetric(float64(3*rooms)/elapsed.Seconds(), "writes/s")
		b.Logf("%d rooms created, labelled and given a status in %s (%.0f writes/s)", rooms, elapsed.Round(time.Millisecond), float64(3*rooms)/elapsed.Seconds())
	})
}
