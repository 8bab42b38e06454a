package webhookauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/roompro/partner-operator/internal/certs"
)

// logs receives everything the package logs through ctrl.Log, for the
// tests that read it (controller-runtime's logger can be set once).
var logs syncBuilder

type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) add(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(line + "\n")
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMain(m *testing.M) {
	ctrl.SetLogger(funcr.New(func(prefix, args string) { logs.add(prefix + " " + args) }, funcr.Options{Verbosity: 1}))
	os.Exit(m.Run())
}

// Neither a client CA nor the explicit opt-out: no guard, and the error
// names both flags.
func TestNewRefusesNoWayToAuthenticateTheAPIServer(t *testing.T) {
	_, err := New(&rest.Config{Host: "https://127.0.0.1:1"}, Options{})
	if !errors.Is(err, ErrNoCallerAuthentication) {
		t.Fatalf("New: %v, want %v", err, ErrNoCallerAuthentication)
	}
	for _, flag := range []string{"--webhook-client-ca-file", "--insecure-allow-unauthenticated-admission-callers"} {
		if !strings.Contains(err.Error(), flag) {
			t.Errorf("the error does not name %s", flag)
		}
	}
	if _, err := New(&rest.Config{Host: "https://127.0.0.1:1"}, Options{ClientCAFile: filepath.Join(t.TempDir(), "missing.crt")}); err == nil ||
		!strings.Contains(err.Error(), "--webhook-client-ca-file") {
		t.Errorf("New with a missing CA file: %v, want an error naming the flag", err)
	}
}

// The opt-out is never silent.
func TestTheAdmissionOptOutIsLoud(t *testing.T) {
	if _, err := New(&rest.Config{Host: "https://127.0.0.1:1"}, Options{InsecureAllowUnauthenticatedAdmission: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "WARNING: --insecure-allow-unauthenticated-admission-callers is set") {
		t.Errorf("no warning logged for the opt-out:\n%s", logs.String())
	}
}

// stub is a guard whose certificate and token checks answer from maps, for
// the wiring of Wrap: which checks run, and that a refused request reaches
// no handler. The certificate's "name" is the request's TLS server name,
// standing in for a verified common name.
func stub(tokens map[string]string, allowedUsers ...string) *Guard {
	return &Guard{
		allowed: []string{DefaultAllowedName},
		certs: authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
			return &authenticator.Response{User: &user.DefaultInfo{Name: r.TLS.ServerName}}, true, nil
		}),
		tokens: authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
			tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !found {
				return nil, false, nil
			}
			name, ok := tokens[tok]
			if !ok {
				return nil, false, errors.New("invalid bearer token")
			}
			return &authenticator.Response{User: &user.DefaultInfo{Name: name}}, true, nil
		}),
		decide: authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
			if a.GetVerb() != "create" || a.GetAPIGroup() != DecisionGroup || a.GetResource() != DecisionResource {
				return authorizer.DecisionDeny, "", errors.New("asked about the wrong permission")
			}
			for _, u := range allowedUsers {
				if a.GetUser().GetName() == u {
					return authorizer.DecisionAllow, "", nil
				}
			}
			return authorizer.DecisionNoOpinion, "", nil
		}),
		log: ctrl.Log,
	}
}

func TestWrap(t *testing.T) {
	g := stub(map[string]string{"portal": "system:serviceaccount:portal:backend", "other": "system:serviceaccount:x:y",
		// A token user named like the apiserver's certificate is still a token user.
		"lookalike": DefaultAllowedName}, "system:serviceaccount:portal:backend")
	cases := []struct {
		name     string
		e        Endpoint
		certName string // "" for no client certificate
		token    string
		want     int
	}{
		{"admission, the apiserver's certificate", Admission, DefaultAllowedName, "", http.StatusOK},
		{"admission, no certificate", Admission, "", "", http.StatusUnauthorized},
		{"admission, a kubelet's certificate", Admission, "system:node:n1", "", http.StatusForbidden},
		{"admission, an allowed token", Admission, "", "portal", http.StatusUnauthorized},
		{"admission, a token named like the apiserver", Admission, "", "lookalike", http.StatusUnauthorized},
		{"decisions, the apiserver's certificate", Decisions, DefaultAllowedName, "", http.StatusOK},
		{"decisions, nothing", Decisions, "", "", http.StatusUnauthorized},
		{"decisions, an invalid token", Decisions, "", "forged", http.StatusUnauthorized},
		{"decisions, a token without the grant", Decisions, "", "other", http.StatusForbidden},
		{"decisions, a token named like the apiserver", Decisions, "", "lookalike", http.StatusForbidden},
		{"decisions, a token with the grant", Decisions, "", "portal", http.StatusOK},
		{"decisions, a kubelet's certificate", Decisions, "system:node:n1", "", http.StatusForbidden},
		{"decisions, a kubelet's certificate and a token with the grant", Decisions, "system:node:n1", "portal", http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			served := false
			h := g.Wrap(tc.e, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true }))
			r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader("{}"))
			if tc.certName != "" {
				r.TLS = &tls.ConnectionState{ServerName: tc.certName, PeerCertificates: []*x509.Certificate{{}}}
			}
			if tc.token != "" {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Errorf("status %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tc.want)
			}
			if served != (tc.want == http.StatusOK) {
				t.Errorf("handler served: %v, want %v", served, tc.want == http.StatusOK)
			}
			if tc.token != "" && strings.Contains(w.Body.String(), tc.token) {
				t.Errorf("the answer repeats the token: %s", w.Body.String())
			}
		})
	}
}

// A SubjectAccessReview that fails is no answer: nothing is decided, and
// the caller is told to try again (500), not refused for good.
func TestAFailedPermissionCheckDecidesNothing(t *testing.T) {
	g := stub(map[string]string{"portal": "portal"})
	g.decide = authorizer.AuthorizerFunc(func(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
		return authorizer.DecisionNoOpinion, "", errors.New("connection refused")
	})
	served := false
	r := httptest.NewRequest(http.MethodPost, "/authorize", nil)
	r.Header.Set("Authorization", "Bearer portal")
	w := httptest.NewRecorder()
	g.Wrap(Decisions, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true })).ServeHTTP(w, r)
	if w.Code != http.StatusInternalServerError || served {
		t.Errorf("status %d, served %v: want 500 and nothing served", w.Code, served)
	}
}

// The client CA file is read again when it changes: a rotation applies to
// the next request, on a connection made before it too, without a restart.
// Over real TLS (loopback), with the library's certificate authenticator.
func TestTheClientCAIsReloaded(t *testing.T) {
	now := time.Now()
	a := issue(t, now, DefaultAllowedName)
	b := issue(t, now, DefaultAllowedName)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	writeFile(t, caFile, a.CA)
	g, err := New(&rest.Config{Host: "https://127.0.0.1:1"}, Options{ClientCAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Start(t.Context()) }()

	serving, err := certs.Issue(now, time.Hour, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	servingPair, err := tls.X509KeyPair(serving.Cert, serving.Key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g.Wrap(Admission, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	// As controller-runtime does: ConfigureTLS on the very config served.
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{servingPair}}
	g.ConfigureTLS(srv.TLS)
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(serving.CA)

	// Clients send their certificate whatever CAs the server names, as a
	// misconfigured or hostile one would.
	client := func(cert certs.Issued) *http.Client {
		pair, err := tls.X509KeyPair(cert.Cert, cert.Key)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil },
		}}}
	}
	status := func(c *http.Client) string {
		resp, err := c.Post(srv.URL, "application/json", strings.NewReader("{}"))
		if err != nil {
			return "refused in TLS"
		}
		defer func() { _ = resp.Body.Close() }()
		return resp.Status
	}
	clientA, clientB := client(a), client(b)
	if got := status(clientA); got != "200 OK" {
		t.Fatalf("a certificate of the configured CA: %s, want 200 OK", got)
	}
	if got := status(clientB); got != "refused in TLS" {
		t.Fatalf("a certificate of another CA: %s, want refused in TLS", got)
	}

	writeFile(t, caFile, b.CA)
	deadline := time.Now().Add(20 * time.Second)
	for status(clientB) != "200 OK" {
		if time.Now().After(deadline) {
			t.Fatal("the rotated CA was not loaded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// clientA's kept-alive connection was verified under the old CA; it
	// no longer counts.
	if got := status(clientA); got != "401 Unauthorized" {
		t.Errorf("a certificate of the removed CA, on a connection made before: %s, want 401 Unauthorized", got)
	}
	// A new connection is refused in the handshake.
	if got := status(client(a)); got != "refused in TLS" {
		t.Errorf("a certificate of the removed CA, on a new connection: %s, want refused in TLS", got)
	}
}

func issue(t *testing.T, now time.Time, cn string) certs.Issued {
	t.Helper()
	issued, err := certs.IssueClient(now, time.Hour, cn)
	if err != nil {
		t.Fatal(err)
	}
	return issued
}

// writeFile replaces path at once, as kubelet's atomic writer does.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkApiserverCertificate is the guard's cost for a request of the
// kube-apiserver, without TLS, once its certificate was verified: the first
// request of a certificate, and the first after a minute or a change of the
// CA file, verify its chain (about 125 µs on the 2-CPU machine of
// BENCHMARKS.md; about 0.15 µs after).
func BenchmarkApiserverCertificate(b *testing.B) {
	issued, err := certs.IssueClient(time.Now(), time.Hour, DefaultAllowedName)
	if err != nil {
		b.Fatal(err)
	}
	caFile := filepath.Join(b.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, issued.CA, 0o600); err != nil {
		b.Fatal(err)
	}
	g, err := New(&rest.Config{Host: "https://127.0.0.1:1"}, Options{ClientCAFile: caFile})
	if err != nil {
		b.Fatal(err)
	}
	pair, err := tls.X509KeyPair(issued.Cert, issued.Key)
	if err != nil {
		b.Fatal(err)
	}
	h := g.Wrap(Decisions, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest(http.MethodPost, "/authorize", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{pair.Leaf}}
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
	if w.Code != http.StatusOK {
		b.Fatalf("status %d", w.Code)
	}
}

// A verified certificate counts for the CA content it was verified against,
// for at most verifiedFor and never past its own expiry; a new CA content
// forgets every entry, and the entries are bounded.
func TestVerifiedCerts(t *testing.T) {
	var v verifiedCerts
	now := time.Now()
	bundle, rotated := []byte("ca one"), []byte("ca one") // equal bytes, new content
	v.put(bundle, []byte("leaf"), "apiserver", now, now.Add(time.Hour))
	if name, ok := v.get(bundle, []byte("leaf"), now); !ok || name != "apiserver" {
		t.Errorf("get = %q, %v; want the verified name", name, ok)
	}
	if _, ok := v.get(bundle, []byte("leaf"), now.Add(verifiedFor)); ok {
		t.Error("an entry outlived verifiedFor")
	}
	if _, ok := v.get(rotated, []byte("leaf"), now); ok {
		t.Error("an entry counted for CA content it was not verified against")
	}
	v.put(bundle, []byte("short"), "apiserver", now, now.Add(time.Second))
	if _, ok := v.get(bundle, []byte("short"), now.Add(time.Second)); ok {
		t.Error("an entry outlived its certificate")
	}
	for i := range 2 * maxVerified {
		v.put(bundle, []byte{byte(i)}, "x", now, now.Add(time.Hour))
	}
	if len(v.entries) > maxVerified {
		t.Errorf("%d entries, want at most %d", len(v.entries), maxVerified)
	}
	v.put(nil, []byte("leaf"), "x", now, now.Add(time.Hour))
	if _, ok := v.get(nil, []byte("leaf"), now); ok {
		t.Error("an entry without CA content counted")
	}
}
