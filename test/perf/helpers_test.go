package perf

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/operator"
)

// requestCounter counts the manager's API requests by kind, so that a
// benchmark can show which calls the operator made (lists, watches, gets,
// status writes) while it worked.
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		c.add(classify(req))
		return rt.RoundTrip(req)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func (c *requestCounter) add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[key]++
}

// snapshot returns a copy of the counts.
func (c *requestCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	maps.Copy(out, c.counts)
	return out
}

// classify names a request "<verb> <resource>[/<subresource>]", with the
// verbs of the apiserver (list and watch told apart from get).
func classify(req *http.Request) string {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	// /api/v1/... or /apis/<group>/<version>/...
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return strings.ToLower(req.Method) + " " + req.URL.Path
	}
	if len(parts) >= 2 && parts[0] == "namespaces" && len(parts) > 2 {
		parts = parts[2:]
	}
	resource, named, sub := "", false, ""
	if len(parts) > 0 {
		resource = parts[0]
	}
	if len(parts) > 1 {
		named = true
	}
	if len(parts) > 2 {
		sub = "/" + parts[2]
	}
	verb := strings.ToLower(req.Method)
	switch req.Method {
	case http.MethodGet:
		switch {
		case req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	case http.MethodPut:
		verb = "update"
	case http.MethodPost:
		verb = "create"
	}
	return verb + " " + resource + sub
}

// errorLog counts the manager's "Reconciler error" log lines by controller
// (and discards the log): benchmarks report them instead of printing them.
type errorLog struct {
	mu     sync.Mutex
	counts map[string]int
	last   map[string]string
}

func (l *errorLog) Write(p []byte) (int, error) {
	var line struct {
		Msg        string `json:"msg"`
		Controller string `json:"controller"`
		Error      string `json:"error"`
	}
	if json.Unmarshal(p, &line) == nil && line.Msg != "" {
		key := line.Msg
		if line.Controller != "" {
			key = line.Controller + ": " + line.Msg
		}
		l.mu.Lock()
		if l.counts == nil {
			l.counts, l.last = map[string]int{}, map[string]string{}
		}
		l.counts[key]++
		l.last[key] = line.Error
		l.mu.Unlock()
	}
	return len(p), nil
}

// take returns the counts (and one example error each) since the last take.
func (l *errorLog) take() (map[string]int, map[string]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, e := l.counts, l.last
	l.counts, l.last = nil, nil
	return c, e
}

// report prints what the manager logged at error level.
func (l *errorLog) report(what string) {
	counts, examples := l.take()
	if len(counts) == 0 {
		fmt.Printf("%s: the operator logged no errors\n", what)
		return
	}
	for _, key := range slices.Sorted(maps.Keys(counts)) {
		fmt.Printf("%s: operator logged %d x %q, e.g. %s\n", what, counts[key], key, examples[key])
	}
}

// reconcileTotal reads controller-runtime's reconcile counter of one
// controller (all results) from the process-wide metrics registry.
func reconcileTotal(controller string) float64 {
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return math.NaN()
	}
	total := 0.0
	for _, mf := range families {
		if mf.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controller {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

// runningOperator is one manager with the whole operator on it.
type runningOperator struct {
	requests *requestCounter
	stop     func()
}

// startOperator runs the operator (controllers, admission webhooks, the
// authorization index and webhook) on a fresh manager that serves the
// control plane's webhook address. clk nil means the real clock. Each
// benchmark starts its own and stops it before the next one starts.
func startOperator(tb testing.TB, clk clock.WithDelayedExecution) *runningOperator {
	tb.Helper()
	counter := &requestCounter{}
	cfg := rest.CopyConfig(managerConfig)
	cfg.Wrap(counter.wrap)
	// The benchmarks drive the operator hard; client-side throttling would
	// measure the rate limiter, not the operator.
	cfg.QPS, cfg.Burst = 1000, 2000
	opts := operator.Options{
		// Asked once in TestMain, so that the request counter counts only
		// the operator's work.
		OperatorUser: operatorUser, AuditLog: io.Discard,
		Webhook:        webhook.Options{Host: cp.Webhook.Host, Port: cp.Webhook.Port, CertDir: cp.Webhook.CertDir},
		WebhookCallers: cp.Webhook.Callers(),
		// Each benchmark registers the same controllers on a new manager.
		SkipControllerNameValidation: true,
	}
	if clk != nil {
		opts.Clock = clk
	}
	mgr, err := operator.New(context.Background(), cfg, opts)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		if err := mgr.Start(ctx); err != nil {
			fmt.Printf("perf: manager exited: %v\n", err)
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-exited }) }
	tb.Cleanup(stop)
	return &runningOperator{requests: counter, stop: stop}
}

// impersonate returns a client that impersonates a user.
func impersonate(user string, groups ...string) (client.Client, error) {
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst = 1000, 2000
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return client.New(cfg, client.Options{Scheme: scheme})
}

// roomReview asks the apiserver (and through it the authorization webhook)
// whether user may get a room.
func roomReview(ctx context.Context, c client.Client, ns, room, user string) (authorizationv1.SubjectAccessReviewStatus, error) {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: "get", Group: v1alpha1.GroupVersion.Group, Resource: "rooms", Name: room,
		},
	}}
	if err := c.Create(ctx, sar); err != nil {
		return authorizationv1.SubjectAccessReviewStatus{}, err
	}
	return sar.Status, nil
}

// eventually polls cond every interval until it holds or timeout passes.
func eventually(tb testing.TB, timeout, interval time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}

// percentile is the nearest-rank q-quantile (0 < q <= 1) of sorted.
func percentile[T any](sorted []T, q float64) T {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// summary is the distribution of a set of durations.
type summary struct {
	n                  int
	p50, p90, p99, max time.Duration
}

func summarize(ds []time.Duration) summary {
	if len(ds) == 0 {
		return summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return summary{n: len(s), p50: percentile(s, .50), p90: percentile(s, .90), p99: percentile(s, .99), max: s[len(s)-1]}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ensureNamespace creates the namespace ns, or finds it there: a benchmark
// body may run more than once against the same control plane.
func ensureNamespace(ctx context.Context, tb testing.TB, ns string) {
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		tb.Fatal(err)
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// onceMetrics runs a benchmark's fixed set of samples once per process,
// however often the testing package calls the benchmark, and reports its
// figures on every call.
type onceMetrics struct {
	sync.Once
	metrics map[string]float64
}

func (o *onceMetrics) report(b *testing.B, run func(*testing.B) map[string]float64) {
	o.Do(func() { o.metrics = run(b) })
	for name, v := range o.metrics {
		b.ReportMetric(v, name)
	}
}
