// Package rotation proves, against a real kube-apiserver, that rotating the
// webhook's certificates never denies a partner: while partner requests
// and SubjectAccessReviews flow through the apiserver's authorization
// webhook, the operator's own provisioning renews the serving certificate
// (same CA) and rotates the CA (old and new trusted while the serving
// certificate switches), and every review is allowed.
//
// The apiserver trusts the authorization webhook through a CA file its
// kubeconfig names, as on a control-plane host: the admin copies the Secret's
// ca.crt into it once at install (and restarts the apiserver, as enabling
// the webhook does anyway), and again after a rotation's Prepare, which the
// running apiserver reads again by itself within five minutes. The test
// waits those five minutes: it is what a cluster does.
package rotation

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/certs"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/operator"
	"github.com/roompro/partner-operator/internal/testenv"
)

const (
	tenant     = "tenant-a"
	operatorNS = "partner-operator-system"
	secretName = "partner-operator-webhook-server-cert"
	partner    = "alice@contoso.com"
	// Certificate lifetimes short enough for the test's frozen clock:
	// renewal is 2/3 into (validity + the 5 minutes of backdating), so a
	// step of 4m20s renews, and every certificate stays valid in real time
	// for the test's few minutes.
	validity     = 9 * time.Minute
	retiredTrust = time.Minute
)

// service stands in for the webhook Service in front of the replica: it
// forwards the apiserver's connections and can drop the idle ones, as a
// rolling restart or an idle timeout does, so that the apiserver's next
// call makes a new TLS handshake with the certificate of the moment.
type service struct {
	backend  string
	accepted atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

func (s *service) serve(t *testing.T, addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(); s.dropAll() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns[in] = struct{}{}
			s.mu.Unlock()
			go func() {
				defer func() {
					s.mu.Lock()
					delete(s.conns, in)
					s.mu.Unlock()
					_ = in.Close()
				}()
				out, err := net.Dial("tcp", s.backend)
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

func (s *service) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

// traffic is partners' requests through the apiserver: SubjectAccessReviews
// (the apiserver asks the authorization webhook) and the partner's own
// reads of its room (which the apiserver authorizes the same way).
type traffic struct {
	phase    atomic.Value // string
	mu       sync.Mutex
	held     sync.RWMutex // Lock: no request in flight
	ok       map[string]int
	failures []string
}

func (tr *traffic) record(err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	phase := tr.phase.Load().(string)
	if err != nil {
		tr.failures = append(tr.failures, phase+": "+err.Error())
		return
	}
	tr.ok[phase]++
}

func (tr *traffic) run(ctx context.Context, admin client.Client, asPartner client.Client, wg *sync.WaitGroup) {
	for i := range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				tr.held.RLock()
				tr.record(tr.once(ctx, admin, asPartner, i%2 == 0))
				tr.held.RUnlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func (tr *traffic) once(ctx context.Context, admin, asPartner client.Client, review bool) error {
	if !review {
		room := &v1alpha1.Room{}
		if err := asPartner.Get(ctx, client.ObjectKey{Namespace: tenant, Name: "nyc"}, room); err != nil && ctx.Err() == nil {
			return fmt.Errorf("the partner's get of its room: %w", err)
		}
		return nil
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: partner,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: tenant, Verb: "get", Group: v1alpha1.GroupVersion.Group, Resource: "rooms", Name: "nyc"}}}
	if err := admin.Create(ctx, sar); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("creating a SubjectAccessReview: %w", err)
	}
	if !sar.Status.Allowed {
		return fmt.Errorf("review not allowed: %+v", sar.Status)
	}
	return nil
}

// reconnect makes the apiserver's next webhook calls use new connections:
// it holds the traffic (nothing in flight), drops the idle connections, and
// waits until the apiserver has dialled again.
func (tr *traffic) reconnect(t *testing.T, svc *service) {
	t.Helper()
	tr.held.Lock()
	svc.dropAll()
	before := svc.accepted.Load()
	time.Sleep(200 * time.Millisecond) // the apiserver notices the closed idle connections
	tr.held.Unlock()
	eventually(t, 20*time.Second, "the apiserver to connect again", func() bool { return svc.accepted.Load() > before })
}

func TestRotationNeverDeniesAPartner(t *testing.T) {
	managerLog := &testenv.SyncBuffer{}
	ctrl.SetLogger(zap.New(zap.WriteTo(managerLog)))
	cp, admin := testenv.StartControlPlane(t, controlplane.Options{Webhooks: true})
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(cp.Config)
	must(t, err)
	must(t, admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNS}}))

	// The operator's provisioning, as --cert-provisioning=self-signed runs
	// it, for the webhook Service and the loopback address the local
	// apiserver calls.
	clk := clocktesting.NewFakeClock(time.Now())
	provisioning, err := client.New(cp.Config, client.Options{Scheme: testenv.NewScheme()})
	must(t, err)
	p := &certs.Provisioner{
		Client: provisioning, Clock: clk, Namespace: operatorNS, SecretName: secretName,
		DNSNames:    []string{"partner-operator-webhook-service.partner-operator-system.svc", "partner-operator-webhook-service"},
		IPAddresses: []net.IP{net.ParseIP(cp.Webhook.Host)},
		CertDir:     t.TempDir(), MutatingWebhookConfiguration: "mutating-webhook-configuration",
		ValidatingWebhookConfiguration: "validating-webhook-configuration",
		Validity:                       validity, CAValidity: time.Hour, RetiredTrust: retiredTrust, Resync: 250 * time.Millisecond,
	}
	renewAt, err := p.Ensure(ctx)
	must(t, err)

	// Install: the admin copies ca.crt to the control-plane host and
	// (re)starts the apiserver with the authorization webhook.
	installed := secretData(t, admin)[certs.KeyTrustBundle]
	caA := onlyCA(t, installed)
	must(t, cp.Webhook.SetAuthorizerCAs(installed))
	must(t, cp.RestartAPIServer())
	reloads := caReloads(t, cs)

	// The manager behind the Service, with the provisioner.
	backend := freePort(t)
	svc := &service{backend: net.JoinHostPort("127.0.0.1", strconv.Itoa(backend)), conns: map[net.Conn]struct{}{}}
	svc.serve(t, net.JoinHostPort(cp.Webhook.Host, strconv.Itoa(cp.Webhook.Port)))
	managerCfg, err := cp.AddUser("partner-operator", "system:masters")
	must(t, err)
	mgr, err := operator.New(ctx, managerCfg, operator.Options{
		OperatorUser: "partner-operator", AuditLog: io.Discard,
		Webhook:        webhook.Options{Host: "127.0.0.1", Port: backend, CertDir: p.CertDir},
		WebhookCallers: cp.Webhook.Callers(),
	})
	must(t, err)
	must(t, mgr.Add(p))
	mgrCtx, stopManager := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = mgr.Start(mgrCtx) }()
	t.Cleanup(func() { stopManager(); <-stopped })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager log:\n%s", tail(managerLog.String(), 60))
		}
	})

	// A partnership: alice of contoso.com may read the room nyc.
	must(t, testenv.RegisterPartners(ctx, admin, "contoso.com"))
	must(t, admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenant}}))
	eventually(t, 30*time.Second, "the webhooks to admit the invitation", func() bool {
		return admin.Create(ctx, &v1alpha1.PartnerInvitation{ObjectMeta: metav1.ObjectMeta{Name: "contoso", Namespace: tenant},
			Spec: v1alpha1.PartnerInvitationSpec{PartnerDomain: "contoso.com", ExpiryDays: 30, TermsAccepted: true,
				Rooms: v1alpha1.RoomScope{Names: []string{"nyc"}}}}) == nil
	})
	must(t, admin.Create(ctx, &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: "nyc", Namespace: tenant}, Spec: v1alpha1.RoomSpec{DisplayName: "NYC"}}))
	link := &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Name: "contoso", Namespace: tenant},
		Spec: v1alpha1.PartnerLinkSpec{Invitation: "contoso", PartnerDomain: "contoso.com",
			PrimaryAdmins: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: partner}}}}
	eventually(t, 20*time.Second, "the tenant manager's acceptance", func() bool {
		return as(t, cp.Config, "tm@contoso.com", "contoso.com:tenant-managers").Create(ctx, link) == nil
	})
	asPartner := as(t, cp.Config, partner)
	eventually(t, 30*time.Second, "the partner to be allowed its room", func() bool {
		return asPartner.Get(ctx, client.ObjectKey{Namespace: tenant, Name: "nyc"}, &v1alpha1.Room{}) == nil
	})

	// From here on, every partner request must succeed.
	tr := &traffic{ok: map[string]int{}}
	tr.phase.Store("installed")
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	var wg sync.WaitGroup
	tr.run(trafficCtx, admin, asPartner, &wg)
	t.Cleanup(func() { stopTraffic(); wg.Wait() })
	settle := func(phase string) {
		tr.reconnect(t, svc)
		time.Sleep(time.Second)
		tr.phase.Store(phase)
		time.Sleep(time.Second)
	}
	settle("installed")

	// 1. A renewal: a new serving certificate of the same CA; nothing the
	// apiserver trusts changes.
	first := served(t, cp)
	clk.SetTime(renewAt)
	eventually(t, 20*time.Second, "the renewed certificate to be served", func() bool { return !served(t, cp).Equal(first) })
	renewed := served(t, cp)
	if !signedBy(renewed, caA) {
		t.Fatal("the renewed certificate is not signed by the CA the apiserver trusts")
	}
	if got := secretData(t, admin)[certs.KeyTrustBundle]; !bytes.Equal(got, installed) {
		t.Error("the renewal changed the trust bundle")
	}
	settle("renewed")

	// 2. A CA rotation. Prepare: the next CA joins the bundle everywhere
	// the operator writes it; nothing is signed by it yet.
	annotate(t, admin, certs.RotationPrepare)
	var bundle []byte
	eventually(t, 20*time.Second, "the next CA in ca.crt", func() bool {
		bundle = secretData(t, admin)[certs.KeyTrustBundle]
		return len(parse(t, bundle)) == 2
	})
	caB := other(t, bundle, caA)
	eventually(t, 20*time.Second, "both CAs in every caBundle", func() bool { return everyCABundleCarries(t, admin, caA, caB) })
	if !signedBy(served(t, cp), caA) {
		t.Fatal("prepare switched the serving certificate")
	}
	settle("prepared")

	// The admin copies the bundle to the control-plane host; the running
	// apiserver reads it again by itself.
	must(t, cp.Webhook.SetAuthorizerCAs(bundle))
	t.Log("waiting for the apiserver to read the authorization webhook's CA file again (up to five minutes)")
	eventually(t, 7*time.Minute, "the apiserver to reload the authorization webhook's CAs", func() bool { return caReloads(t, cs) > reloads })

	// Commit: the serving certificate switches to the new CA.
	annotate(t, admin, certs.RotationCommit)
	eventually(t, 20*time.Second, "a certificate of the new CA to be served", func() bool { return signedBy(served(t, cp), caB) })
	if !everyCABundleCarries(t, admin, caA, caB) {
		t.Error("the old CA left a caBundle as the serving certificate switched")
	}
	settle("committed")

	// The overlap ends: the old CA goes from every caBundle.
	clk.Step(retiredTrust)
	eventually(t, 20*time.Second, "the old CA to leave ca.crt", func() bool {
		return len(parse(t, secretData(t, admin)[certs.KeyTrustBundle])) == 1
	})
	eventually(t, 20*time.Second, "the new CA alone in every caBundle", func() bool { return everyCABundleIs(t, admin, caB) })
	if !signedBy(served(t, cp), caB) {
		t.Fatal("the served certificate is not from the new CA")
	}
	settle("old CA dropped")

	stopTraffic()
	wg.Wait()
	total := 0
	for _, phase := range []string{"installed", "renewed", "prepared", "committed", "old CA dropped"} {
		n := tr.ok[phase]
		total += n
		if n < 10 {
			t.Errorf("phase %q: %d successful partner requests, want a steady flow", phase, n)
		}
	}
	t.Logf("%d partner requests succeeded (%v), %d failed; the apiserver connected %d times", total, tr.ok, len(tr.failures), svc.accepted.Load())
	if len(tr.failures) > 0 {
		t.Errorf("%d partner requests failed, want none; the first: %v", len(tr.failures), tr.failures[:min(5, len(tr.failures))])
	}
}

// served is the certificate the webhook server presents now.
func served(t *testing.T, cp *controlplane.ControlPlane) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", net.JoinHostPort(cp.Webhook.Host, strconv.Itoa(cp.Webhook.Port)), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads what is served
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState().PeerCertificates[0]
}

func signedBy(c, ca *x509.Certificate) bool { return c.CheckSignatureFrom(ca) == nil }

var reloadMetric = regexp.MustCompile(`(?m)^rest_client_transport_ca_reload_total\{reason="updated",result="success"\} (\d+)$`)

// caReloads is how often the apiserver found a CA file changed and took it.
func caReloads(t *testing.T, cs *kubernetes.Clientset) int {
	t.Helper()
	out, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := reloadMetric.FindSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func secretData(t *testing.T, c client.Client) map[string][]byte {
	t.Helper()
	s := &corev1.Secret{}
	must(t, c.Get(context.Background(), client.ObjectKey{Namespace: operatorNS, Name: secretName}, s))
	return s.Data
}

// annotate asks for a rotation step, as `kubectl annotate secret` does.
func annotate(t *testing.T, c client.Client, step string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNS, Name: secretName}}
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, certs.RotationAnnotation, step))
	must(t, c.Patch(context.Background(), s, client.RawPatch("application/merge-patch+json", patch)))
}

func parse(t *testing.T, bundle []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		if block, bundle = pem.Decode(bundle); block == nil {
			return out
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

func onlyCA(t *testing.T, bundle []byte) *x509.Certificate {
	t.Helper()
	cas := parse(t, bundle)
	if len(cas) != 1 {
		t.Fatalf("the bundle holds %d CAs, want one", len(cas))
	}
	return cas[0]
}

func other(t *testing.T, bundle []byte, ca *x509.Certificate) *x509.Certificate {
	t.Helper()
	for _, c := range parse(t, bundle) {
		if !c.Equal(ca) {
			return c
		}
	}
	t.Fatal("the bundle holds no other CA")
	return nil
}

// caBundles is the caBundle of every admission webhook.
func caBundles(t *testing.T, c client.Client) [][]byte {
	t.Helper()
	ctx := context.Background()
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	must(t, c.Get(ctx, client.ObjectKey{Name: "mutating-webhook-configuration"}, m))
	must(t, c.Get(ctx, client.ObjectKey{Name: "validating-webhook-configuration"}, v))
	var out [][]byte
	for _, w := range m.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	for _, w := range v.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	if len(out) == 0 {
		t.Fatal("no admission webhooks")
	}
	return out
}

func everyCABundleCarries(t *testing.T, c client.Client, cas ...*x509.Certificate) bool {
	t.Helper()
	for _, b := range caBundles(t, c) {
		for _, ca := range cas {
			if !certs.BundleCarries(b, ca) {
				return false
			}
		}
	}
	return true
}

func everyCABundleIs(t *testing.T, c client.Client, ca *x509.Certificate) bool {
	t.Helper()
	for _, b := range caBundles(t, c) {
		if cas := parse(t, b); len(cas) != 1 || !cas[0].Equal(ca) {
			return false
		}
	}
	return true
}

func as(t *testing.T, cfg *rest.Config, user string, groups ...string) client.Client {
	t.Helper()
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	cl, err := client.New(c, client.Options{Scheme: testenv.NewScheme()})
	must(t, err)
	return cl
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
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

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
