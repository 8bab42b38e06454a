// Package authzserver serves the authorization webhook: it keeps an
// authz.Index fed from the manager's informers and answers
// authorization.k8s.io/v1 SubjectAccessReviews on POST /authorize, the
// contract of the kube-apiserver's webhook authorizer.
package authzserver

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/roompro/partner-operator/internal/authz"
	"github.com/roompro/partner-operator/internal/metrics"
)

// Path is where the webhook server serves the authorizer.
const Path = "/authorize"

// MaxBodyBytes bounds a review: real ones are a few hundred bytes.
const MaxBodyBytes = 64 << 10

// Handler answers SubjectAccessReviews from the index.
type Handler struct {
	Index *authz.Index
}

// ServeHTTP decodes one review, decides, and answers with the review: as
// it came, with the decision's status (codec.go). A request that is not a
// well-formed review gets a 400 and no decision.
// answerBuffers hold answers while they are written.
var answerBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST a SubjectAccessReview", http.StatusMethodNotAllowed)
		return
	}
	// The index's clock: the real one, or the test suites' fake one. Its
	// reading is the moment of the decision as well (Request.At).
	clock := h.Index.Clock()
	start := clock.Now()
	review, err := decodeReview(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	defer review.release()
	req := &review.request
	requestInto(&review.review.Spec, req)
	req.At = start
	d := h.Index.Decide(req)
	if d.Verdict != authz.NoOpinion {
		logDecision(r.Context(), req, d)
	}
	buf := answerBuffers.Get().(*[]byte)
	defer answerBuffers.Put(buf)
	*buf = appendAnswer((*buf)[:0], d)
	w.Header()["Content-Type"] = jsonContentType
	_, _ = w.Write(*buf) // copies: the buffer is reused
	decisionCounter(d.Verdict).Inc()
	if d.Verdict == authz.Deny {
		denialCounter(d.Cause).Inc()
	}
	metrics.DecisionSeconds.Observe(clock.Since(start).Seconds())
}

// jsonContentType is shared by every answer; net/http only reads it.
var jsonContentType = []string{"application/json"}

// logDecision logs a decision at V(1) with the username only: groups and
// extra may carry tokens or claims. It builds the entry only when V(1) is
// enabled.
func logDecision(ctx context.Context, req *authz.Request, d authz.Decision) {
	logger, err := logr.FromContext(ctx)
	if err != nil {
		logger = log.Log
	}
	if l := logger.V(1); l.Enabled() {
		l.Info("authorization decision", "user", req.User, "verb", req.Verb,
			"resource", req.Resource, "subresource", req.Subresource, "namespace", req.Namespace, "name", req.Name,
			"path", req.Path, "verdict", d.Verdict.String(), "reason", d.Reason)
	}
}

// decisionCounters caches the decision counter of each verdict.
var decisionCounters [3]atomic.Pointer[prometheus.Counter]

func decisionCounter(v authz.Verdict) prometheus.Counter {
	if v < 0 || int(v) >= len(decisionCounters) {
		return metrics.Decisions.WithLabelValues(v.String())
	}
	if c := decisionCounters[v].Load(); c != nil {
		return *c
	}
	c := metrics.Decisions.WithLabelValues(v.String())
	decisionCounters[v].Store(&c)
	return c
}

// denialCounters holds the denial counter of each cause, every label
// present from the start so that a dashboard's rate() sees the first one.
var denialCounters = func() map[authz.DenialCause]prometheus.Counter {
	counters := map[authz.DenialCause]prometheus.Counter{}
	for _, c := range authz.DenialCauses() {
		counters[c] = metrics.Denials.WithLabelValues(c.String())
	}
	return counters
}()

func denialCounter(c authz.DenialCause) prometheus.Counter {
	if counter, ok := denialCounters[c]; ok {
		return counter
	}
	return metrics.Denials.WithLabelValues(c.String())
}

// parseRawFieldSelector turns "key=value", "key==value" or "key!=value"
// into requirements; a selector that does not parse confines nothing.
func parseRawFieldSelector(raw string) []authz.Requirement {
	sel, err := fields.ParseSelector(raw)
	if err != nil {
		return nil
	}
	var out []authz.Requirement
	for _, r := range sel.Requirements() {
		switch r.Operator {
		case selection.Equals, selection.DoubleEquals:
			out = append(out, authz.Requirement{Key: r.Field, Operator: "In", Values: []string{r.Value}})
		case selection.NotEquals:
			out = append(out, authz.Requirement{Key: r.Field, Operator: "NotIn", Values: []string{r.Value}})
		}
	}
	return out
}

// parseRawSelector turns "key", "key=true" or "key in (true)" into
// requirements; a selector that does not parse confines nothing.
func parseRawSelector(raw string) []authz.Requirement {
	sel, err := labels.Parse(raw)
	if err != nil {
		return nil
	}
	reqs, _ := sel.Requirements()
	var out []authz.Requirement
	for _, r := range reqs {
		op := ""
		switch r.Operator() {
		case selection.Exists:
			op = "Exists"
		case selection.In, selection.Equals, selection.DoubleEquals:
			op = "In"
		case selection.NotIn, selection.NotEquals:
			op = "NotIn"
		case selection.DoesNotExist:
			op = "DoesNotExist"
		default:
			continue
		}
		out = append(out, authz.Requirement{Key: r.Key(), Operator: op, Values: r.ValuesUnsorted()})
	}
	return out
}
