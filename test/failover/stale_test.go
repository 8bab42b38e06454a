package failover

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/freshness"
	"github.com/roompro/partner-operator/internal/operator"
	"github.com/roompro/partner-operator/internal/testenv"
)

// TestNoDecisionFromAStaleIndex runs the operator behind a proxy between it
// and the apiserver, while the apiserver calls its webhooks directly, and
// partner users' requests keep coming through the apiserver:
//
//   - the proxy goes silent (bytes held, nothing closed, so no watch
//     errors): within the maximum staleness plus a heartbeat period partner
//     users are denied, saying the index is stale, the customer's staff are
//     unaffected and the replica is not ready; a revocation made meanwhile
//     holds once the connection is back, and the other decisions return;
//   - the apiserver restarts on the same etcd: nothing is lost, and the
//     operator converges (decisions, a new assignment, the room labels).
func TestNoDecisionFromAStaleIndex(t *testing.T) {
	cp, admin := testenv.StartControlPlane(t, controlplane.Options{Webhooks: true})
	ctx := context.Background()
	managerConfig, err := cp.AddUser("partner-operator", "system:masters")
	if err != nil {
		t.Fatal(err)
	}
	apiserver, err := url.Parse(managerConfig.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, apiserver.Host)
	viaProxy := rest.CopyConfig(managerConfig)
	viaProxy.Host = "https://" + proxy.Addr()

	probes := "127.0.0.1:" + strconv.Itoa(freePort(t))
	mgr, err := operator.New(ctx, viaProxy, operator.Options{
		OperatorUser: "partner-operator", AuditLog: io.Discard,
		Webhook:                webhook.Options{Host: cp.Webhook.Host, Port: cp.Webhook.Port, CertDir: cp.Webhook.CertDir},
		WebhookCallers:         cp.Webhook.Callers(),
		HealthProbeBindAddress: probes,
		// TestFailureModes registers the same controllers in this process.
		SkipControllerNameValidation: true,
		// Freshness as shipped: a heartbeat a second, 5 s at most.
	})
	if err != nil {
		t.Fatal(err)
	}
	mgrCtx, stop := context.WithCancel(ctx)
	exited := make(chan struct{})
	go func() { defer close(exited); _ = mgr.Start(mgrCtx) }()
	t.Cleanup(func() { stop(); <-exited })

	// The world: contoso.com's primary admin alice, and bob, whom a role
	// lets view the rooms on floor 1; megan, the customer's staff, reads
	// rooms by RBAC.
	const staff = "megan@fourthcoffee.com"
	must(t, admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	must(t, testenv.RegisterPartners(ctx, admin, "contoso.com"))
	must(t, admin.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "room-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"rooms"}, Verbs: []string{"get", "list"}}}}))
	must(t, admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "room-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "room-reader"},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: staff}}}))
	eventually(t, 30*time.Second, "the webhooks to admit writes", func() bool { return admin.Create(ctx, invitation("contoso")) == nil })
	for _, room := range []string{"nyc", "sea"} {
		must(t, admin.Create(ctx, &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: room, Namespace: ns, Labels: map[string]string{"floor": "1"}},
			Spec: v1alpha1.RoomSpec{DisplayName: room}}))
	}
	link := acceptContoso(ctx, t, cp, admin, ns)
	// The partner users' clients go to the apiserver directly, never
	// through the proxy: only the operator's connection goes silent.
	alice, bob, megan := as(t, cp.Config, "alice@contoso.com"), as(t, cp.Config, "bob@contoso.com"), as(t, cp.Config, staff)
	helpdesk := &v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Name: "contoso-helpdesk", Namespace: ns},
		Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso", Permissions: []v1alpha1.Permission{v1alpha1.RoomsView},
			Assignments: []v1alpha1.RoleAssignment{{Name: "helpdesk", Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "bob@contoso.com"}},
				Scope: v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"floor": "1"}}}}}}}
	eventually(t, 20*time.Second, "alice's role for bob to be admitted", func() bool { return alice.Create(ctx, helpdesk) == nil })

	getRoom := func(c client.Client, room string) error {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: room}, &v1alpha1.Room{})
	}
	deniedSaying := func(err error, reason string) bool {
		return apierrors.IsForbidden(err) && strings.Contains(err.Error(), reason)
	}
	const (
		staleReason = "decision index is stale"
		outOfScope  = "the room is not in the scope of the caller's roles"
	)
	eventually(t, 20*time.Second, "alice and bob to get nyc", func() bool { return getRoom(alice, "nyc") == nil && getRoom(bob, "nyc") == nil })
	if err := getRoom(megan, "nyc"); err != nil {
		t.Fatalf("the customer's staff, by RBAC: %v", err)
	}
	if code := readyz(probes); code != http.StatusOK {
		t.Fatalf("readyz before the outage: %d, want 200", code)
	}

	t.Run("the watch connection goes silent", func(t *testing.T) {
		proxy.Pause()
		defer proxy.Resume() // also when the subtest fails half-way
		paused := time.Now()
		// The latest heartbeat seen before the pause was written no later
		// than the pause, so the index turns stale at most the maximum
		// staleness after it, plus the judgement's interval (a quarter of
		// a period) and a review's round trip: one period bounds both.
		bound := freshness.DefaultMaxStaleness + freshness.DefaultPeriod
		var last error
		eventually(t, bound+10*time.Second, "alice to be denied for a stale index", func() bool {
			last = getRoom(alice, "nyc")
			return deniedSaying(last, staleReason)
		})
		took := time.Since(paused)
		t.Logf("alice denied %s after the pause: %v", took.Round(10*time.Millisecond), last)
		if took > bound {
			t.Errorf("the switch to Deny took %s, more than the maximum staleness plus a heartbeat period (%s)", took, bound)
		}
		if err := getRoom(bob, "nyc"); !deniedSaying(err, staleReason) {
			t.Errorf("bob while the index is stale: %v, want denied for staleness", err)
		}
		if err := getRoom(megan, "nyc"); err != nil {
			t.Errorf("the customer's staff while the index is stale: %v, want allowed by RBAC", err)
		}
		if code := readyz(probes); code == http.StatusOK {
			t.Error("the replica is ready while its index is stale")
		}

		// The customer moves nyc to floor 2 meanwhile, out of bob's scope;
		// the operator cannot see it until the connection is back. (A
		// room's admission reads nothing from the apiserver; the webhooks
		// that do would hang on the silent connection and refuse the write.)
		must(t, admin.Patch(ctx, &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: "nyc", Namespace: ns}},
			client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"floor":"2"}}}`))))

		proxy.Resume()
		resumed := time.Now()
		eventually(t, 30*time.Second, "alice to get nyc again", func() bool { return getRoom(alice, "nyc") == nil })
		t.Logf("alice allowed again %s after the connection came back", time.Since(resumed).Round(10*time.Millisecond))
		eventually(t, 30*time.Second, "bob to be denied nyc, out of his role's scope", func() bool {
			return deniedSaying(getRoom(bob, "nyc"), outOfScope)
		})
		eventually(t, 10*time.Second, "the replica to be ready again", func() bool { return readyz(probes) == http.StatusOK })
	})

	t.Run("the apiserver restarts", func(t *testing.T) {
		if err := cp.RestartAPIServer(); err != nil {
			t.Fatal(err)
		}
		restarted := time.Now()
		eventually(t, 60*time.Second, "alice to get nyc after the restart", func() bool { return getRoom(alice, "nyc") == nil })
		t.Logf("alice allowed %s after the apiserver was back", time.Since(restarted).Round(10*time.Millisecond))
		if err := getRoom(bob, "nyc"); !deniedSaying(err, outOfScope) {
			t.Errorf("bob after the restart: %v, want still denied: the revocation holds", err)
		}
		must(t, admin.Get(ctx, client.ObjectKeyFromObject(link), link))
		if link.Status.Phase != v1alpha1.LinkActive {
			t.Errorf("the link after the restart: %s, want Active", link.Status.Phase)
		}
		if err := getRoom(alice, "sea"); !deniedSaying(err, outOfScope) {
			t.Errorf("alice on sea before it is assigned: %v, want out of scope", err)
		}

		// The operator's watches and controllers work again: the customer
		// adds sea to the partner's scope.
		more := &v1alpha1.RoomAssignment{ObjectMeta: metav1.ObjectMeta{Name: "contoso-sea", Namespace: ns},
			Spec: v1alpha1.RoomAssignmentSpec{PartnerLink: "contoso", Rooms: v1alpha1.RoomScope{Names: []string{"sea"}}}}
		eventually(t, 30*time.Second, "the assignment of sea to be admitted", func() bool { return admin.Create(ctx, more) == nil })
		eventually(t, 30*time.Second, "alice to get sea", func() bool { return getRoom(alice, "sea") == nil })
		room := &v1alpha1.Room{}
		eventually(t, 30*time.Second, "sea to carry contoso.com's access label", func() bool {
			return admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "sea"}, room) == nil && room.Labels[v1alpha1.AccessLabel("contoso.com")] == "true"
		})

		// One heartbeat Lease, in the default namespace (no POD_NAMESPACE
		// here), held by this replica.
		leases := &coordinationv1.LeaseList{}
		must(t, admin.List(ctx, leases, client.InNamespace(metav1.NamespaceDefault), client.MatchingLabels{freshness.ComponentLabel: freshness.ComponentValue}))
		if len(leases.Items) != 1 || leases.Items[0].Spec.RenewTime == nil {
			t.Errorf("heartbeat Leases: %d, want one renewed: %+v", len(leases.Items), leases.Items)
		}
	})
}

// readyz is the status of the manager's readiness endpoint.
func readyz(addr string) int {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(fmt.Sprintf("http://%s/readyz", addr))
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
