// Package webhookauth proves, against a real kube-apiserver, who may call
// the operator's webhook server: the apiserver by its client certificate,
// portal backends by a ServiceAccount token bound to the shipped ClusterRole
// partner-decision-client, and nobody else. A refused caller gets 401 or 403
// (or no TLS connection) and no decision: the decision counter does not
// move and no decision is logged.
package webhookauth

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/yaml"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authzserver"
	"github.com/roompro/partner-operator/internal/certs"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/metrics"
	"github.com/roompro/partner-operator/internal/operator"
	"github.com/roompro/partner-operator/internal/testenv"
	"github.com/roompro/partner-operator/internal/webhookauth"
)

const (
	probeDomain = "ready.example.com"
	// admissionPath is one validating webhook; every admission path is
	// guarded alike (webhookserver.Register).
	admissionPath = "/validate-partners-roompro-io-v1alpha1-partnerinvitation"
	portalNS      = "portal"
)

var (
	ctx   = context.Background()
	cp    *controlplane.ControlPlane
	admin client.Client
	cs    *kubernetes.Clientset
	// managerLog is everything the managers log, decisions (V(1)) included.
	managerLog = &testenv.SyncBuffer{}
	// other is a CA the main manager also trusts: its certificates stand in
	// for a cluster CA's, which signs kubelets' and users' certificates too.
	other *certs.CA
	// caFile is the main manager's --webhook-client-ca-file.
	caFile string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	stop, err := start()
	if stop != nil {
		defer stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "webhookauth: starting the operator:", err)
		return 1
	}
	return m.Run()
}

// start runs a control plane wired to the webhooks and the operator on it,
// trusting the control plane's client CA and other's.
func start() (stop func(), err error) {
	ctrl.SetLogger(zap.New(zap.WriteTo(managerLog), zap.UseDevMode(true)))
	if cp, err = controlplane.Start(controlplane.Options{Webhooks: true}); err != nil {
		return nil, err
	}
	var stops []func()
	stop = func() {
		for _, s := range stops {
			s()
		}
		_ = cp.Stop()
	}
	if admin, err = client.New(cp.Config, client.Options{Scheme: testenv.NewScheme()}); err != nil {
		return stop, err
	}
	if cs, err = kubernetes.NewForConfig(cp.Config); err != nil {
		return stop, err
	}
	if other, err = certs.NewCA(time.Now(), time.Hour, "a cluster CA"); err != nil {
		return stop, err
	}
	apiserverCA, err := os.ReadFile(cp.Webhook.ClientCAFile)
	if err != nil {
		return stop, err
	}
	dir, err := os.MkdirTemp("", "webhookauth-")
	if err != nil {
		return stop, err
	}
	stops = append(stops, func() { _ = os.RemoveAll(dir) })
	caFile = filepath.Join(dir, "client-ca.crt")
	if err := os.WriteFile(caFile, append(apiserverCA, other.PEM...), 0o600); err != nil {
		return stop, err
	}
	callers := cp.Webhook.Callers()
	callers.ClientCAFile = caFile
	mgrStop, err := startManager(cp.Webhook.Port, callers)
	if err != nil {
		return stop, err
	}
	stops = append([]func(){mgrStop}, stops...)

	if err := testenv.RegisterPartners(ctx, admin, probeDomain); err != nil {
		return stop, err
	}
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: portalNS}}); err != nil {
		return stop, err
	}
	// Ready when the apiserver gets the webhook's own answer for a partner
	// user (it calls with its certificate).
	deadline := time.Now().Add(60 * time.Second)
	for {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: "probe@" + probeDomain, ResourceAttributes: probeAttributes()}}
		if err := admin.Create(ctx, sar); err == nil && strings.Contains(sar.Status.Reason, "no role of the caller grants") {
			return stop, nil
		}
		if time.Now().After(deadline) {
			return stop, fmt.Errorf("the apiserver never got the webhook's answer: %+v", sar.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startManager runs the whole operator, serving the webhooks on port.
func startManager(port int, callers webhookauth.Options) (stop func(), err error) {
	managerConfig, err := cp.AddUser("partner-operator", "system:masters")
	if err != nil {
		return nil, err
	}
	mgr, err := operator.New(ctx, managerConfig, operator.Options{
		AuditLog: io.Discard, SkipControllerNameValidation: true,
		Webhook:        webhook.Options{Host: cp.Webhook.Host, Port: port, CertDir: cp.Webhook.CertDir},
		WebhookCallers: callers,
	})
	if err != nil {
		return nil, err
	}
	mgrCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(mgrCtx); err != nil {
			fmt.Fprintln(os.Stderr, "webhookauth: manager:", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

func probeAttributes() *authorizationv1.ResourceAttributes {
	return &authorizationv1.ResourceAttributes{Namespace: "nowhere", Verb: "get", Group: v1alpha1.GroupVersion.Group, Resource: "rooms", Name: "x"}
}

// caller is how a test client connects: its TLS client certificate and its
// bearer token, both optional.
type caller struct {
	cert  *tls.Certificate
	token string
}

func withCert(t *testing.T, issued certs.Issued) caller {
	t.Helper()
	pair, err := tls.X509KeyPair(issued.Cert, issued.Key)
	if err != nil {
		t.Fatal(err)
	}
	return caller{cert: &pair}
}

// issuedByOther signs a client certificate named cn with other.
func issuedByOther(t *testing.T, cn string) certs.Issued {
	t.Helper()
	issued, err := other.SignClient(time.Now(), time.Hour, cn)
	if err != nil {
		t.Fatal(err)
	}
	return issued
}

// answer is what a webhook server said: the HTTP status (0: no TLS
// connection) and the body.
type answer struct {
	status int
	body   string
}

// post sends body to path on the webhook server at port as c. The client
// sends its certificate whatever CAs the server names, as a hostile one would.
func post(t *testing.T, port int, path string, c caller, body []byte) answer {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cp.Webhook.CA)
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if c.cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c.cert, nil }
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"https://"+net.JoinHostPort(cp.Webhook.Host, strconv.Itoa(port))+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return answer{body: err.Error()}
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: string(data)}
}

func reviewBody(t *testing.T) []byte {
	t.Helper()
	body, err := json.Marshal(authorizationv1.SubjectAccessReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview"},
		Spec:     authorizationv1.SubjectAccessReviewSpec{User: "probe@" + probeDomain, ResourceAttributes: probeAttributes()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func admissionBody(t *testing.T) []byte {
	t.Helper()
	inv, _ := json.Marshal(&v1alpha1.PartnerInvitation{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PartnerInvitation"},
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: portalNS},
		Spec: v1alpha1.PartnerInvitationSpec{PartnerDomain: probeDomain, ExpiryDays: 7, TermsAccepted: true,
			Rooms: v1alpha1.RoomScope{Names: []string{"nyc"}}},
	})
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "probe", Operation: admissionv1.Create, Namespace: portalNS, Name: "probe",
			Kind:     metav1.GroupVersionKind{Group: v1alpha1.GroupVersion.Group, Version: "v1alpha1", Kind: "PartnerInvitation"},
			Resource: metav1.GroupVersionResource{Group: v1alpha1.GroupVersion.Group, Version: "v1alpha1", Resource: "partnerinvitations"},
			UserInfo: authenticationv1.UserInfo{Username: "forged@" + probeDomain},
			Object:   runtime.RawExtension{Raw: inv},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// decisions is the sum of the decision counter over its verdicts.
func decisions(t *testing.T) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 8)
	go func() { metrics.Decisions.Collect(ch); close(ch) }()
	total := 0.0
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		total += pb.GetCounter().GetValue()
	}
	return total
}

// refused checks that the calls of do were all refused with a status of
// want (0: no TLS connection), and that no decision was made, counted or
// logged meanwhile.
func refused(t *testing.T, do func() []answer, want ...int) {
	t.Helper()
	before, logged := decisions(t), len(managerLog.String())
	for i, a := range do() {
		if a.status != want[i] {
			t.Errorf("call %d: %d %q, want %d", i, a.status, strings.TrimSpace(a.body), want[i])
		}
		if strings.Contains(a.body, "SubjectAccessReview") || strings.Contains(a.body, "AdmissionReview") {
			t.Errorf("call %d was answered with a review: %s", i, a.body)
		}
	}
	if after := decisions(t); after != before {
		t.Errorf("the decision counter moved from %v to %v", before, after)
	}
	if log := managerLog.String()[logged:]; strings.Contains(log, "authorization decision") {
		t.Errorf("a decision was logged:\n%s", log)
	}
}

// decided checks that a call was answered with a decision, counted.
func decided(t *testing.T, do func() answer) {
	t.Helper()
	before := decisions(t)
	a := do()
	var sar authorizationv1.SubjectAccessReview
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &sar) != nil || !sar.Status.Denied {
		t.Fatalf("%d %q, want the webhook's Deny", a.status, a.body)
	}
	if after := decisions(t); after != before+1 {
		t.Errorf("the decision counter moved from %v to %v, want one more", before, after)
	}
}

// The apiserver's own calls: writes are admitted and partner users are
// decided, through the apiserver, with the certificate it presents.
func TestTheAPIServerIsAnswered(t *testing.T) {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: "probe@" + probeDomain, ResourceAttributes: probeAttributes()}}
	if err := admin.Create(ctx, sar); err != nil || !sar.Status.Denied {
		t.Errorf("a partner user's review through the apiserver: %v %+v, want the webhook's Deny", err, sar.Status)
	}
	room := &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: "admitted", Namespace: portalNS}, Spec: v1alpha1.RoomSpec{DisplayName: "Admitted"}}
	if err := admin.Create(ctx, room); err != nil {
		t.Errorf("a write through the apiserver's admission webhooks: %v", err)
	}
	tlsConfig, err := cp.Webhook.ClientTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	decided(t, func() answer {
		return post(t, cp.Webhook.Port, authzserver.Path, caller{cert: &tlsConfig.Certificates[0]}, reviewBody(t))
	})
}

// Certificates: none, another CA's, the trusted CA's with another name.
// And a certificate of that CA with the allowed name is let in.
func TestCertificates(t *testing.T) {
	foreign, err := certs.IssueClient(time.Now(), time.Hour, webhookauth.DefaultAllowedName)
	if err != nil {
		t.Fatal(err)
	}
	kubelet := withCert(t, issuedByOther(t, "system:node:worker-1"))
	port := cp.Webhook.Port
	for _, path := range []string{authzserver.Path, admissionPath} {
		body := reviewBody(t)
		if path == admissionPath {
			body = admissionBody(t)
		}
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			refused(t, func() []answer {
				return []answer{
					post(t, port, path, caller{}, body),
					post(t, port, path, withCert(t, foreign), body),
					post(t, port, path, kubelet, body),
				}
			}, http.StatusUnauthorized, 0, http.StatusForbidden)
			if a := post(t, port, path, withCert(t, issuedByOther(t, webhookauth.DefaultAllowedName)), body); a.status != http.StatusOK {
				t.Errorf("a certificate of a trusted CA with the allowed name: %d %q, want 200", a.status, a.body)
			}
		})
	}
}

// Tokens: none, invalid, a ServiceAccount's without the grant, and one
// bound to the shipped ClusterRole partner-decision-client; then the
// binding goes, and within the caches' lifetime the token with it.
func TestTokens(t *testing.T) {
	bindDecisionClient(t, "portal")
	portal := caller{token: serviceAccountToken(t, "portal")}
	nobody := caller{token: serviceAccountToken(t, "nobody")}
	port := cp.Webhook.Port
	refused(t, func() []answer {
		return []answer{
			post(t, port, authzserver.Path, caller{token: "not-a-token"}, reviewBody(t)),
			post(t, port, authzserver.Path, nobody, reviewBody(t)),
			// Tokens never reach the admission webhooks.
			post(t, port, admissionPath, portal, admissionBody(t)),
		}
	}, http.StatusUnauthorized, http.StatusForbidden, http.StatusUnauthorized)
	decided(t, func() answer { return post(t, port, authzserver.Path, portal, reviewBody(t)) })

	if err := admin.Delete(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "portal-decisions"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(webhookauth.AllowCacheTTL + 20*time.Second)
	for post(t, port, authzserver.Path, portal, reviewBody(t)).status != http.StatusForbidden {
		if time.Now().After(deadline) {
			t.Fatal("the token still gets decisions after its binding was deleted")
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// The opt-out for apiservers without a certificate opens the admission
// webhooks only, loudly; /authorize still needs a certificate the manager
// can verify (it has no client CA here) or an allowed token.
func TestTheAdmissionOptOut(t *testing.T) {
	bindDecisionClient(t, "portal-insecure")
	portal := caller{token: serviceAccountToken(t, "portal-insecure")}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	stop, err := startManager(port, webhookauth.Options{InsecureAllowUnauthenticatedAdmission: true})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if !strings.Contains(managerLog.String(), "WARNING: --insecure-allow-unauthenticated-admission-callers is set") {
		t.Error("the opt-out was not logged as a WARNING")
	}
	tlsConfig, err := cp.Webhook.ClientTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := post(t, port, admissionPath, caller{}, admissionBody(t))
		if a.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an admission review without a certificate under the opt-out: %d %q, want 200", a.status, a.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	refused(t, func() []answer {
		return []answer{
			post(t, port, authzserver.Path, caller{}, reviewBody(t)),
			post(t, port, authzserver.Path, caller{cert: &tlsConfig.Certificates[0]}, reviewBody(t)),
		}
	}, http.StatusUnauthorized, http.StatusUnauthorized)
	decided(t, func() answer { return post(t, port, authzserver.Path, portal, reviewBody(t)) })
}

// bindDecisionClient creates the ServiceAccount name in portalNS and binds
// the ClusterRole partner-decision-client, as config/customer-roles ships
// it, to it with a ClusterRoleBinding named <name>-decisions.
func bindDecisionClient(t *testing.T, name string) {
	t.Helper()
	root, err := controlplane.RepositoryRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "customer-roles", "decision-client.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(data, role); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, role); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: portalNS}}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-decisions"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: portalNS}},
	}); err != nil {
		t.Fatal(err)
	}
}

// serviceAccountToken creates the ServiceAccount name (if it is not there)
// and returns a token of it from the TokenRequest API.
func serviceAccountToken(t *testing.T, name string) string {
	t.Helper()
	if err := admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: portalNS}}); err != nil &&
		!strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(portalNS).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}
