// Package failover proves the failure modes against a real kube-apiserver:
// with the operator down, partner requests are denied, other users are
// unaffected and admission fails closed; with two replicas, the follower
// answers authorization reviews too and takes over reconciling within the
// lease duration after the leader dies; when the operator's connection to
// the apiserver goes silent, its stale index denies partners until it is
// back, and an apiserver restart loses nothing (stale_test.go).
package failover

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/operator"
	"github.com/roompro/partner-operator/internal/testenv"
)

const (
	ns            = "tenant-a"
	leaseDuration = 4 * time.Second
)

var scheme = testenv.NewScheme()

// service stands in for the webhook Service: it forwards the apiserver's
// connections to whichever replica is its current endpoint.
type service struct{ backend atomic.Value } // "host:port"

func (s *service) serve(t *testing.T, addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = in.Close() }()
				out, err := net.Dial("tcp", s.backend.Load().(string))
				if err != nil {
					return
				}
				defer func() { _ = out.Close() }()
				go func() { _, _ = io.Copy(out, in) }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

type replica struct {
	mgr    ctrl.Manager
	port   int
	stop   context.CancelFunc
	exited chan struct{}
}

func startReplica(t *testing.T, cp *controlplane.ControlPlane, cfg *rest.Config, user string) *replica {
	t.Helper()
	r := &replica{port: freePort(t), exited: make(chan struct{})}
	// A crash of a replica is not a graceful hand-over: as shipped, the
	// lease is not released on cancel.
	mgr, err := operator.New(context.Background(), cfg, operator.Options{
		OperatorUser: user, AuditLog: io.Discard,
		Webhook:        webhook.Options{Host: "127.0.0.1", Port: r.port, CertDir: cp.Webhook.CertDir},
		WebhookCallers: cp.Webhook.Callers(),
		LeaderElection: &operator.LeaderElection{Namespace: "default",
			LeaseDuration: leaseDuration, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond},
		// Two managers in one test process register the same controllers.
		SkipControllerNameValidation: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.mgr = mgr
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() {
		defer close(r.exited)
		_ = mgr.Start(ctx)
	}()
	t.Cleanup(func() { cancel(); <-r.exited })
	return r
}

func as(t *testing.T, cfg *rest.Config, user string, groups ...string) client.Client {
	t.Helper()
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	cl, err := client.New(c, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestFailureModes(t *testing.T) {
	cp, admin := testenv.StartControlPlane(t, controlplane.Options{Webhooks: true})
	ctx := context.Background()
	svc := &service{}
	svc.serve(t, net.JoinHostPort(cp.Webhook.Host, strconv.Itoa(cp.Webhook.Port)))
	svc.backend.Store("127.0.0.1:1") // no replica yet: connections fail

	// The customer's staff member "staff" may read rooms through RBAC.
	must(t, admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	// The platform team registers the partner; registrations have no
	// admission webhook on create, so this works with the operator down.
	must(t, testenv.RegisterPartners(ctx, admin, "contoso.com"))
	must(t, admin.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "room-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"rooms"}, Verbs: []string{"get", "list"}}}}))
	must(t, admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "room-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "room-reader"},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "staff"}, {APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "alice@contoso.com"}}}))

	t.Run("operator down", func(t *testing.T) {
		// A partner user is denied although RBAC would allow it: failurePolicy Deny.
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: "alice@contoso.com",
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "list", Group: v1alpha1.GroupVersion.Group, Resource: "rooms"}}}
		must(t, admin.Create(ctx, sar))
		if sar.Status.Allowed {
			t.Errorf("partner user with the operator down: %+v, want not allowed", sar.Status)
		}
		if err := as(t, cp.Config, "alice@contoso.com").List(ctx, &v1alpha1.RoomList{}, client.InNamespace(ns)); err == nil {
			t.Error("a partner user listed rooms with the operator down")
		}
		// The customer's staff are unaffected: matchConditions keep them away.
		if err := as(t, cp.Config, "staff").List(ctx, &v1alpha1.RoomList{}, client.InNamespace(ns)); err != nil {
			t.Errorf("customer staff with the operator down: %v, want allowed by RBAC", err)
		}
		// Admission fails closed: nothing is written.
		inv := invitation("down")
		if err := admin.Create(ctx, inv); err == nil {
			t.Fatal("an invitation was admitted with the webhooks down")
		}
		if err := admin.Get(ctx, client.ObjectKeyFromObject(inv), inv); !apierrors.IsNotFound(err) {
			t.Errorf("an invitation was stored with the webhooks down: %v", err)
		}
	})

	managerA, err := cp.AddUser("partner-operator", "system:masters")
	if err != nil {
		t.Fatal(err)
	}
	a := startReplica(t, cp, managerA, "partner-operator")
	svc.backend.Store("127.0.0.1:" + strconv.Itoa(a.port))
	select {
	case <-a.mgr.Elected():
	case <-time.After(30 * time.Second):
		t.Fatal("replica A never became leader")
	}
	b := startReplica(t, cp, managerA, "partner-operator")

	// A partnership, reconciled by the leader A.
	eventually(t, 20*time.Second, "the webhooks to admit writes", func() bool { return admin.Create(ctx, invitation("contoso")) == nil })
	must(t, admin.Create(ctx, &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: "nyc", Namespace: ns, Labels: map[string]string{"country": "us"}},
		Spec: v1alpha1.RoomSpec{DisplayName: "NYC"}}))
	link := acceptContoso(ctx, t, cp, admin, ns)

	t.Run("the follower answers reviews", func(t *testing.T) {
		select {
		case <-b.mgr.Elected():
			t.Fatal("test premise: B must be the follower")
		default:
		}
		eventually(t, 10*time.Second, "the follower to allow alice on her room", func() bool {
			return postReview(t, cp, b.port, "alice@contoso.com", "nyc").Allowed
		})
		if s := postReview(t, cp, b.port, "alice@contoso.com", "elsewhere"); !s.Denied {
			t.Errorf("follower on a room out of scope: %+v, want denied", s)
		}
	})

	t.Run("the follower takes over within the lease duration", func(t *testing.T) {
		a.stop() // the leader dies without releasing the lease
		<-a.exited
		died := time.Now()
		svc.backend.Store("127.0.0.1:" + strconv.Itoa(b.port)) // the Service's endpoints follow
		// A partner accepts while no replica leads: B's webhooks admit the
		// acceptance, and B activates it once it has taken over.
		inv := invitation("after-failover")
		eventually(t, 10*time.Second, "the webhooks of B to admit writes", func() bool { return admin.Create(ctx, inv) == nil })
		accepted := &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Name: "after-failover", Namespace: ns},
			Spec: v1alpha1.PartnerLinkSpec{Invitation: "after-failover", PartnerDomain: "contoso.com",
				PrimaryAdmins: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "bob@contoso.com"}}}}
		// One live partnership per domain: end the first one, as the
		// customer would before a new partnership.
		must(t, admin.Delete(ctx, link))
		eventually(t, 10*time.Second, "the acceptance to be admitted by B", func() bool {
			return as(t, cp.Config, "tm@contoso.com", "contoso.com:tenant-managers").Create(ctx, accepted) == nil
		})
		acceptedWithoutLeader := false
		select {
		case <-b.mgr.Elected():
		default:
			acceptedWithoutLeader = true
		}
		eventually(t, leaseDuration+5*time.Second, "B to reconcile the new invitation", func() bool {
			return admin.Get(ctx, client.ObjectKeyFromObject(inv), inv) == nil && inv.Status.Phase != ""
		})
		took := time.Since(died)
		eventually(t, 20*time.Second, "B to activate the link accepted during the failover", func() bool {
			return admin.Get(ctx, client.ObjectKeyFromObject(accepted), accepted) == nil && accepted.Status.Phase == v1alpha1.LinkActive &&
				admin.Get(ctx, client.ObjectKeyFromObject(inv), inv) == nil && inv.Status.Phase == v1alpha1.InvitationAccepted
		})
		if inv.Status.PartnerLinkUID != accepted.UID {
			t.Errorf("the invitation records link %s, want %s", inv.Status.PartnerLinkUID, accepted.UID)
		}
		t.Logf("acceptance made while no replica led: %v", acceptedWithoutLeader)
		t.Logf("the follower reconciled %s after the leader died (lease duration %s)", took.Round(10*time.Millisecond), leaseDuration)
		// Takeover waits for the lease to expire, then one retry period.
		if took > leaseDuration+2*time.Second {
			t.Errorf("takeover took %s, more than the lease duration %s plus a retry", took, leaseDuration)
		}
	})
}

func invitation(name string) *v1alpha1.PartnerInvitation {
	return &v1alpha1.PartnerInvitation{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.PartnerInvitationSpec{PartnerDomain: "contoso.com", ExpiryDays: 30, TermsAccepted: true,
			Rooms: v1alpha1.RoomScope{Names: []string{"nyc"}}},
	}
}

// postReview sends a SubjectAccessReview straight to one replica, with the
// apiserver's client certificate.
func postReview(t *testing.T, cp *controlplane.ControlPlane, port int, user, room string) authorizationv1.SubjectAccessReviewStatus {
	t.Helper()
	tlsConfig, err := cp.Webhook.ClientTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	body, _ := json.Marshal(authorizationv1.SubjectAccessReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview"},
		Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: "get", Group: v1alpha1.GroupVersion.Group, Resource: "rooms", Name: room}},
	})
	resp, err := hc.Post("https://127.0.0.1:"+strconv.Itoa(port)+"/authorize", "application/json", bytes.NewReader(body))
	if err != nil {
		return authorizationv1.SubjectAccessReviewStatus{Reason: err.Error()}
	}
	defer func() { _ = resp.Body.Close() }()
	var out authorizationv1.SubjectAccessReview
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out.Status
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// acceptContoso accepts the invitation contoso of ns as contoso.com's tenant
// manager, with alice as primary admin, and returns the link once it is
// Active.
func acceptContoso(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, admin client.Client, ns string) *v1alpha1.PartnerLink {
	t.Helper()
	link := &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Name: "contoso", Namespace: ns},
		Spec: v1alpha1.PartnerLinkSpec{Invitation: "contoso", PartnerDomain: "contoso.com",
			PrimaryAdmins: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "alice@contoso.com"}}}}
	eventually(t, 20*time.Second, "the tenant manager's acceptance", func() bool {
		return as(t, cp.Config, "tm@contoso.com", "contoso.com:tenant-managers").Create(ctx, link) == nil
	})
	eventually(t, 20*time.Second, "the link to be Active", func() bool {
		return admin.Get(ctx, client.ObjectKeyFromObject(link), link) == nil && link.Status.Phase == v1alpha1.LinkActive
	})
	return link
}
