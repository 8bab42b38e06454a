package authzserver

// Benchmarks of the authorizer webhook.
//
// BenchmarkHandler is the handler alone, in process (no network, no TLS):
//
//	go test ./internal/authzserver -run '^$' -bench 'Handler$' -benchmem
//
// BenchmarkWebhookLoad serves the handler over HTTPS on loopback from the
// production webhook server (webhookserver.New: controller-runtime's server,
// TLS 1.2 minimum, HTTP/2 offered, request deadlines, webhook metrics) and
// drives it with C keep-alive clients (C = 8, 64) over HTTP/1.1 (one
// connection per client) and over HTTP/2 (one multiplexed connection, as the
// kube-apiserver's client does). In the same run it measures two floors, the
// same server with a handler that answers a fixed allowing review:
//
//   - floor: without reading the review;
//   - floor-read: after reading (and discarding) the review, which isolates
//     what the handler does from what receiving a body costs.
//
// Each server gets loadRequests reviews (stopping at 30 s), sent in batches
// that rotate between the three servers, so that load from elsewhere on the
// machine hits all three alike. Every answer is decoded and must allow the
// review. A sub-benchmark measures once and ignores b.N: run with
// -benchtime=1x (and -count=N for N measurements):
//
//	go test ./internal/authzserver -run '^$' -bench WebhookLoad -benchtime=1x -count=3
//
// Metrics: req/s, p50-µs, p99-µs (latency of one review as the client sees
// it), ns/op (wall time per review), cpu-µs/req (the process's CPU time per
// review: server, client and GC, which load from other processes disturbs
// less than req/s); the handler's also throughput-vs-floor (its req/s over
// the floor's), p99-vs-floor (its p99 over the floor's),
// cpu-µs/req-over-floor (what the handler adds) and the ratios against
// floor-read. The handler's result also logs the medians over the sets so
// far, each ratio taken within its set (issue 14's targets: throughput ≥
// 0.95 of the floor, p99 ≤ 1.1× the floor's, at the median of -count=5).

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/json/jsontext"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authz"
	"github.com/roompro/partner-operator/internal/webhookserver"
)

const benchNamespace = "tenant-a"

// benchIndex: one namespace, rooms rooms and partners partners; partner i
// has an Active link whose assignment selects the rooms labelled
// partner=p<i>, and a primary admin admin@p<i>.example.com.
func benchIndex(b *testing.B, rooms, partners int) *authz.Index {
	b.Helper()
	x := authz.NewIndex()
	for r := range rooms {
		x.Upsert(&v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: fmt.Sprintf("room-%d", r),
			Labels: map[string]string{"partner": fmt.Sprintf("p%d", r%partners)}}})
	}
	for p := range partners {
		domain := fmt.Sprintf("p%d.example.com", p)
		link := fmt.Sprintf("p%d", p)
		x.Upsert(&v1alpha1.PartnerInvitation{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: link},
			Spec:   v1alpha1.PartnerInvitationSpec{PartnerDomain: v1alpha1.Domain(domain)},
			Status: v1alpha1.PartnerInvitationStatus{Phase: v1alpha1.InvitationAccepted}})
		x.Upsert(&v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: link},
			Spec:   v1alpha1.PartnerLinkSpec{Invitation: link, PartnerDomain: v1alpha1.Domain(domain)},
			Status: v1alpha1.PartnerLinkStatus{Phase: v1alpha1.LinkActive}})
		x.Upsert(&v1alpha1.RoomAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: link + "-invitation"},
			Spec: v1alpha1.RoomAssignmentSpec{PartnerLink: link,
				Rooms: v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"partner": link}}}}})
		x.Upsert(&v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: link + "-primary-admins"},
			Spec: v1alpha1.PartnerRoleSpec{PartnerLink: link, Permissions: v1alpha1.PrimaryAdminPermissions,
				Assignments: []v1alpha1.RoleAssignment{{Name: "a", Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "admin@" + domain}}}}}})
	}
	x.SetSynced(true)
	return x
}

// benchReview is a review as the kube-apiserver sends it (about 600
// bytes): partner p5's admin gets room-5, which is in scope.
var benchReview = []byte(`{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},` +
	`"spec":{"resourceAttributes":{"namespace":"tenant-a","verb":"get","group":"partners.roompro.io","version":"v1alpha1","resource":"rooms","name":"room-5"},` +
	`"user":"admin@p5.example.com","groups":["p5.example.com:admins","p5.example.com:helpdesk","system:authenticated"],` +
	`"extra":{"authentication.kubernetes.io/credential-id":["JTI=7c9e6679-7425-40de-944b-e07fc1f90ae7"],"scopes.authorization.openshift.io":["user:full"]},` +
	`"uid":"2c5ea4c0-4067-11e9-8bad-9b1deb4d3b7d"},"status":{"allowed":false}}`)

// benchWriter is a minimal ResponseWriter, reused between requests.
type benchWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (w *benchWriter) Header() http.Header         { return w.header }
func (w *benchWriter) Write(p []byte) (int, error) { return w.body.Write(p) }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }

type benchBody struct{ bytes.Reader }

func (*benchBody) Close() error { return nil }

// BenchmarkHandler is the handler's own cost per review: decoding,
// deciding and encoding, with no network and no TLS.
func BenchmarkHandler(b *testing.B) {
	x := benchIndex(b, 1000, 10)
	h := &Handler{Index: x}
	w := &benchWriter{header: http.Header{}}
	body := &benchBody{}
	r, _ := http.NewRequest(http.MethodPost, Path, nil)
	r.Body = body
	serve := func() {
		body.Reset(benchReview)
		w.body.Reset()
		w.code = http.StatusOK
		h.ServeHTTP(w, r)
	}
	serve()
	if err := checkAllowed(w.code, w.body.Bytes()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		serve()
		n++
	}
	// CPU time (the process's, GC included) is what the handler costs even
	// when other work on the machine inflates ns/op.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(n), "cpu-ns/op")
}

// BenchmarkDecodeParts splits what decoding a review costs: jsontext's
// validation of the body alone (the standard library's part, which no
// walk can avoid), then the whole decode (validation, the walk into the
// k8s type, the pooled reader's reset).
//
//	go test ./internal/authzserver -run '^$' -bench DecodeParts -benchmem
func BenchmarkDecodeParts(b *testing.B) {
	b.Run("part=validate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !jsontext.Value(benchReview).IsValid() {
				b.Fatal("benchReview is not valid JSON")
			}
		}
	})
	b.Run("part=decode", func(b *testing.B) {
		body := &benchBody{}
		b.ReportAllocs()
		for b.Loop() {
			body.Reset(benchReview)
			r, err := decodeReview(body)
			if err != nil {
				b.Fatal(err)
			}
			r.release()
		}
	})
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// checkAllowed: a 200 whose body decodes to an allowing review.
func checkAllowed(code int, body []byte) error {
	if code != http.StatusOK {
		return fmt.Errorf("status %d: %s", code, body)
	}
	var answer struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Status     struct {
			Allowed bool   `json:"allowed"`
			Denied  bool   `json:"denied"`
			Reason  string `json:"reason"`
		} `json:"status"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fmt.Errorf("the answer %q does not decode: %w", body, err)
	}
	if answer.APIVersion != reviewAPIVersion || answer.Kind != reviewKind || !answer.Status.Allowed || answer.Status.Denied {
		return fmt.Errorf("the answer %s does not allow the review", body)
	}
	return nil
}

// selfSigned writes a certificate for 127.0.0.1 as tls.crt and tls.key
// into a new directory, and returns it with a pool that trusts it.
func selfSigned(b *testing.B) (string, *x509.CertPool) {
	b.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "partner-operator-webhook"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		b.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return dir, pool
}

// startServer serves h at Path from the production webhook server on a
// free loopback port and returns its URL.
func startServer(b *testing.B, certDir string, h http.Handler) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	srv := webhookserver.New(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: certDir}, webhookserver.DefaultRequestTimeout)
	srv.Register(Path, h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("webhook server: %v", err)
		}
	})
	started := srv.StartedChecker()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := started(nil); err == nil {
			break
		}
		select {
		case err := <-done:
			b.Fatalf("the webhook server stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatal("the webhook server did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Sprintf("https://127.0.0.1:%d%s", port, Path)
}

// floorHandler answers every request with a fixed allowing review, the
// bytes the handler answers benchReview with, reading the request's body
// first if readBody: what serving costs without the handler.
func floorHandler(readBody bool) http.Handler {
	answer := appendAnswer(nil, authz.Decision{Verdict: authz.Allow, Reason: "a role of the partner grants it"})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if readBody {
			_, _ = io.Copy(io.Discard, r.Body)
		}
		w.Header()["Content-Type"] = jsonContentType
		_, _ = w.Write(answer)
	})
}

func loadClient(proto string, clients int, pool *x509.CertPool) (*http.Client, func()) {
	tlsConfig := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	switch proto {
	case "h1":
		t := &http.Transport{
			TLSClientConfig:     tlsConfig,
			ForceAttemptHTTP2:   false,
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
			MaxIdleConnsPerHost: clients,
			MaxConnsPerHost:     clients,
			IdleConnTimeout:     90 * time.Second,
		}
		return &http.Client{Transport: t}, t.CloseIdleConnections
	default:
		protocols := new(http.Protocols)
		protocols.SetHTTP2(true)
		t := &http.Transport{TLSClientConfig: tlsConfig, Protocols: protocols}
		return &http.Client{Transport: t}, t.CloseIdleConnections
	}
}

type loadResult struct {
	reqPerSec, p50, p99 float64 // p50 and p99 in µs
	// cpuPerRequest is the process's CPU time (server, client and GC) per
	// review, in µs: what the server costs the machine, less sensitive to
	// load from elsewhere than req/s.
	cpuPerRequest float64
	perRequest    time.Duration
}

const (
	// loadRequests reviews are sent to each server, in loadRounds batches
	// that rotate between the servers, so that all see the same background
	// load on a shared machine.
	loadRequests = 20000
	loadRounds   = 20
	// loadMaxTime bounds the time spent sending to one server.
	loadMaxTime = 30 * time.Second
)

// loader sends reviews to one server from clients concurrent keep-alive
// clients and checks every answer.
type loader struct {
	url, proto string
	clients    int
	client     *http.Client
	closeIdle  func()
	latencies  []time.Duration // of every answer, in order of sending
	elapsed    time.Duration   // spent in batches
	cpu        time.Duration   // process CPU time spent in batches
	failed     atomic.Pointer[error]
}

func newLoader(url, proto string, clients int, pool *x509.CertPool) *loader {
	c, closeIdle := loadClient(proto, clients, pool)
	return &loader{url: url, proto: proto, clients: clients, client: c, closeIdle: closeIdle,
		latencies: make([]time.Duration, 0, loadRequests)}
}

func (l *loader) fail(err error) { l.failed.CompareAndSwap(nil, &err) }

func (l *loader) send(buf *bytes.Buffer) {
	resp, err := l.client.Post(l.url, "application/json", bytes.NewReader(benchReview))
	if err != nil {
		l.fail(err)
		return
	}
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		l.fail(err)
		return
	}
	if want := map[string]int{"h1": 1, "h2": 2}[l.proto]; resp.ProtoMajor != want {
		l.fail(fmt.Errorf("served over %s, want HTTP/%d", resp.Proto, want))
	}
	if err := checkAllowed(resp.StatusCode, buf.Bytes()); err != nil {
		l.fail(err)
	}
}

// warmUp opens the connections: TLS handshakes are not measured.
func (l *loader) warmUp() {
	var wg sync.WaitGroup
	for range l.clients {
		wg.Go(func() {
			var buf bytes.Buffer
			for range 4 {
				l.send(&buf)
			}
		})
	}
	wg.Wait()
}

// batch sends n reviews (fewer once loadMaxTime is spent).
func (l *loader) batch(n int) {
	if l.elapsed >= loadMaxTime || l.failed.Load() != nil {
		return
	}
	base := len(l.latencies)
	lat := l.latencies[base : base+n]
	clear(lat)
	var next atomic.Int64
	var wg sync.WaitGroup
	start, cpu0 := time.Now(), cpuTime()
	stopAt := start.Add(loadMaxTime - l.elapsed)
	for range l.clients {
		wg.Go(func() {
			var buf bytes.Buffer
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || l.failed.Load() != nil {
					return
				}
				t0 := time.Now()
				if t0.After(stopAt) {
					return
				}
				l.send(&buf)
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	l.elapsed += time.Since(start)
	l.cpu += cpuTime() - cpu0
	l.latencies = append(l.latencies, slices.DeleteFunc(lat, func(d time.Duration) bool { return d == 0 })...)
}

func (l *loader) result() loadResult {
	lat := slices.Clone(l.latencies)
	slices.Sort(lat)
	n := len(lat)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return loadResult{
		reqPerSec:     float64(n) / l.elapsed.Seconds(),
		p50:           us(lat[n*50/100]),
		p99:           us(lat[min(n*99/100, n-1)]),
		perRequest:    l.elapsed / time.Duration(n),
		cpuPerRequest: us(l.cpu) / float64(n),
	}
}

// compare loads the servers in turn, batch by batch, rotating the order
// every round, and returns their results in order.
func compare(b *testing.B, urls []string, proto string, clients int, pool *x509.CertPool) []loadResult {
	b.Helper()
	loaders := make([]*loader, len(urls))
	for i, url := range urls {
		loaders[i] = newLoader(url, proto, clients, pool)
		defer loaders[i].closeIdle()
		loaders[i].warmUp()
	}
	perRound := loadRequests / loadRounds
	for round := range loadRounds {
		for k := range loaders {
			loaders[(round+k)%len(loaders)].batch(perRound)
		}
	}
	results := make([]loadResult, len(loaders))
	for i, l := range loaders {
		if err := l.failed.Load(); err != nil {
			b.Fatal(*err)
		}
		if len(l.latencies) == 0 {
			b.Fatal("no answers")
		}
		results[i] = l.result()
	}
	return results
}

var discardLogs sync.Once

func BenchmarkWebhookLoad(b *testing.B) {
	// The manager's logger: V(1) (the decision log) is off in production.
	discardLogs.Do(func() { log.SetLogger(logr.Discard()) })
	certDir, pool := selfSigned(b)
	x := benchIndex(b, 1000, 10)
	// floor answers without reading the review, as the task defines it;
	// floor-read reads it first (what receiving the body costs, which the
	// handler cannot avoid), then answers the same fixed review.
	servers := []string{"floor", "floor-read", "handler"}
	urls := []string{
		startServer(b, certDir, floorHandler(false)),
		startServer(b, certDir, floorHandler(true)),
		startServer(b, certDir, &Handler{Index: x}),
	}
	for _, proto := range []string{"h1", "h2"} {
		for _, clients := range []int{8, 64} {
			b.Run(fmt.Sprintf("proto=%s/clients=%d", proto, clients), func(b *testing.B) {
				// The first server's sub-benchmark measures all of them, in
				// turn (so that -count=N measures N sets); the others report
				// their part of the oldest set not yet reported.
				var pending [][]loadResult
				reported := make([]int, len(servers))
				for i, server := range servers {
					b.Run("server="+server, func(b *testing.B) {
						if i == 0 || reported[i] == len(pending) {
							pending = append(pending, compare(b, urls, proto, clients, pool))
						}
						set := pending[reported[i]]
						reported[i]++
						r := set[i]
						b.ReportMetric(float64(r.perRequest.Nanoseconds()), "ns/op")
						b.ReportMetric(r.reqPerSec, "req/s")
						b.ReportMetric(r.p50, "p50-µs")
						b.ReportMetric(r.p99, "p99-µs")
						b.ReportMetric(r.cpuPerRequest, "cpu-µs/req")
						if server == "handler" {
							floor, readFloor := set[0], set[1]
							b.ReportMetric(r.reqPerSec/floor.reqPerSec, "throughput-vs-floor")
							b.ReportMetric(r.p99/floor.p99, "p99-vs-floor")
							b.ReportMetric(r.cpuPerRequest-floor.cpuPerRequest, "cpu-µs/req-over-floor")
							b.ReportMetric(r.reqPerSec/readFloor.reqPerSec, "throughput-vs-readfloor")
							b.ReportMetric(r.p99/readFloor.p99, "p99-vs-readfloor")
							// Printed under this result (a parent
							// benchmark's log shows only with -v): with
							// -count=N the last one covers all N sets.
							logMedians(b, servers, pending[:reported[i]])
						}
					})
				}
			})
		}
	}
}

// logMedians logs, over the sets measured so far (one per -count), the
// median of each server's figures and of the handler's ratios to the floor,
// each ratio taken within its set: the figures BENCHMARKS.md gives.
func logMedians(b *testing.B, servers []string, sets [][]loadResult) {
	if len(sets) == 0 {
		return
	}
	median := func(f func(set []loadResult) float64) float64 {
		v := make([]float64, len(sets))
		for i, set := range sets {
			v[i] = f(set)
		}
		slices.Sort(v)
		if n := len(v); n%2 == 0 {
			return (v[n/2-1] + v[n/2]) / 2
		}
		return v[len(v)/2]
	}
	var line strings.Builder
	fmt.Fprintf(&line, "medians of %d alternated sets:", len(sets))
	for i, server := range servers {
		fmt.Fprintf(&line, " %s %.0f req/s, p50 %.0f µs, p99 %.0f µs, %.1f CPU-µs/req;", server,
			median(func(set []loadResult) float64 { return set[i].reqPerSec }),
			median(func(set []loadResult) float64 { return set[i].p50 }),
			median(func(set []loadResult) float64 { return set[i].p99 }),
			median(func(set []loadResult) float64 { return set[i].cpuPerRequest }))
	}
	h := len(servers) - 1
	fmt.Fprintf(&line, " %s vs floor: throughput %.3f, p99 %.3f, CPU %+.1f µs/req", servers[h],
		median(func(set []loadResult) float64 { return set[h].reqPerSec / set[0].reqPerSec }),
		median(func(set []loadResult) float64 { return set[h].p99 / set[0].p99 }),
		median(func(set []loadResult) float64 { return set[h].cpuPerRequest - set[0].cpuPerRequest }))
	b.Log(line.String())
}
