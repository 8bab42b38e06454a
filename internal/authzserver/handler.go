// Package authzserver serves the authorization webhook: it keeps an
// authz.Index fed from the manager's informers and answers
// authorization.k8s.io/v1 SubjectAccessReviews on POST /authorize, the
// contract of the kube-apiserver's webhook authorizer.
package authzserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
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

// ServeHTTP decodes one review, decides, and returns it with its status.
// A request that is not a well-formed review gets a 400 and no decision.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST a SubjectAccessReview", http.StatusMethodNotAllowed)
		return
	}
	start := time.Now()
	review, err := decodeReview(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := requestOf(&review.Spec)
	d := h.Index.Decide(req)
	review.Status = authorizationv1.SubjectAccessReviewStatus{
		Allowed: d.Verdict == authz.Allow,
		Denied:  d.Verdict == authz.Deny,
		Reason:  d.Reason,
	}
	if d.Verdict != authz.NoOpinion {
		// The username only: groups and extra may carry tokens or claims.
		log.FromContext(r.Context()).V(1).Info("authorization decision", "user", req.User, "verb", req.Verb,
			"resource", req.Resource, "subresource", req.Subresource, "namespace", req.Namespace, "name", req.Name,
			"path", req.Path, "verdict", d.Verdict.String(), "reason", d.Reason)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
	metrics.Decisions.WithLabelValues(d.Verdict.String()).Inc()
	metrics.DecisionSeconds.Observe(time.Since(start).Seconds())
}

func decodeReview(body io.Reader) (*authorizationv1.SubjectAccessReview, error) {
	review := &authorizationv1.SubjectAccessReview{}
	if err := json.NewDecoder(body).Decode(review); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, fmt.Errorf("the review is larger than %d bytes", MaxBodyBytes)
		}
		return nil, fmt.Errorf("the body is not a JSON SubjectAccessReview: %w", err)
	}
	if want := authorizationv1.SchemeGroupVersion.String(); review.APIVersion != want || review.Kind != "SubjectAccessReview" {
		return nil, fmt.Errorf("want apiVersion %s, kind SubjectAccessReview; got apiVersion %q, kind %q", want, review.APIVersion, review.Kind)
	}
	spec := &review.Spec
	if spec.User == "" && len(spec.Groups) == 0 {
		return nil, errors.New("spec.user or spec.groups is required")
	}
	if (spec.ResourceAttributes == nil) == (spec.NonResourceAttributes == nil) {
		return nil, errors.New("exactly one of spec.resourceAttributes and spec.nonResourceAttributes is required")
	}
	return review, nil
}

// requestOf reduces a review to what the decision rules read.
func requestOf(spec *authorizationv1.SubjectAccessReviewSpec) *authz.Request {
	req := &authz.Request{User: spec.User, Groups: spec.Groups}
	if na := spec.NonResourceAttributes; na != nil {
		req.Path, req.Verb = na.Path, na.Verb
		return req
	}
	ra := spec.ResourceAttributes
	req.Namespace, req.Verb, req.Group = ra.Namespace, ra.Verb, ra.Group
	req.Resource, req.Subresource, req.Name = ra.Resource, ra.Subresource, ra.Name
	if ls := ra.LabelSelector; ls != nil {
		for _, r := range ls.Requirements {
			req.LabelSelector = append(req.LabelSelector, authz.Requirement{Key: r.Key, Operator: string(r.Operator), Values: r.Values})
		}
		// A caller other than the apiserver may send only the raw selector.
		if len(ls.Requirements) == 0 && ls.RawSelector != "" {
			req.LabelSelector = parseRawSelector(ls.RawSelector)
		}
	}
	return req
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
