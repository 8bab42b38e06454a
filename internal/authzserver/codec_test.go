package authzserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/internal/authz"
	"github.com/roompro/partner-operator/internal/metrics"
)

// The reference: the handler as it was, decoding and encoding with
// encoding/json. It is kept here to check the codec against and to measure
// it against (BenchmarkHandler).

type referenceHandler struct{ Index *authz.Index }

func (h *referenceHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST a SubjectAccessReview", http.StatusMethodNotAllowed)
		return
	}
	start := time.Now()
	review, err := referenceDecodeReview(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := referenceRequestOf(&review.Spec)
	d := h.Index.Decide(req)
	review.Status = authorizationv1.SubjectAccessReviewStatus{
		Allowed: d.Verdict == authz.Allow,
		Denied:  d.Verdict == authz.Deny,
		Reason:  d.Reason,
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
	metrics.Decisions.WithLabelValues(d.Verdict.String()).Inc()
	metrics.DecisionSeconds.Observe(time.Since(start).Seconds())
}

func referenceDecodeReview(body io.Reader) (*authorizationv1.SubjectAccessReview, error) {
	review := &authorizationv1.SubjectAccessReview{}
	if err := json.NewDecoder(body).Decode(review); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, fmt.Errorf("the review is larger than %d bytes", MaxBodyBytes)
		}
		return nil, fmt.Errorf("the body is not a JSON SubjectAccessReview: %w", err)
	}
	if err := referenceValidate(review.APIVersion, review.Kind, &review.Spec); err != nil {
		return nil, err
	}
	return review, nil
}

func referenceValidate(apiVersion, kind string, spec *authorizationv1.SubjectAccessReviewSpec) error {
	if want := authorizationv1.SchemeGroupVersion.String(); apiVersion != want || kind != "SubjectAccessReview" {
		return fmt.Errorf("want apiVersion %s, kind SubjectAccessReview; got apiVersion %q, kind %q", want, apiVersion, kind)
	}
	if spec.User == "" && len(spec.Groups) == 0 {
		return errors.New("spec.user or spec.groups is required")
	}
	if (spec.ResourceAttributes == nil) == (spec.NonResourceAttributes == nil) {
		return errors.New("exactly one of spec.resourceAttributes and spec.nonResourceAttributes is required")
	}
	return nil
}

func referenceRequestOf(spec *authorizationv1.SubjectAccessReviewSpec) *authz.Request {
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
		if len(ls.Requirements) == 0 && ls.RawSelector != "" {
			req.LabelSelector = parseRawSelector(ls.RawSelector)
		}
	}
	if fs := ra.FieldSelector; fs != nil {
		for _, r := range fs.Requirements {
			req.FieldSelector = append(req.FieldSelector, authz.Requirement{Key: r.Key, Operator: string(r.Operator), Values: r.Values})
		}
		if len(fs.Requirements) == 0 && fs.RawSelector != "" {
			req.FieldSelector = parseRawFieldSelector(fs.RawSelector)
		}
	}
	return req
}

// referenceK8s decodes with json.Unmarshal into the k8s type (Unmarshal,
// not Decoder.Decode: the codec rejects data after the review, as Unmarshal
// does).
func referenceK8s(body []byte) (*authz.Request, error) {
	var review authorizationv1.SubjectAccessReview
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, err
	}
	if err := referenceValidate(review.APIVersion, review.Kind, &review.Spec); err != nil {
		return nil, err
	}
	return referenceRequestOf(&review.Spec), nil
}

// mirrorReview is the k8s type reduced to the fields the codec reads; the
// fields it skips are unknown here, so encoding/json skips them too.
type mirrorReview struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		User               string   `json:"user"`
		Groups             []string `json:"groups"`
		ResourceAttributes *struct {
			Namespace     string          `json:"namespace"`
			Verb          string          `json:"verb"`
			Group         string          `json:"group"`
			Resource      string          `json:"resource"`
			Subresource   string          `json:"subresource"`
			Name          string          `json:"name"`
			LabelSelector *mirrorSelector `json:"labelSelector"`
			FieldSelector *mirrorSelector `json:"fieldSelector"`
		} `json:"resourceAttributes"`
		NonResourceAttributes *struct {
			Path string `json:"path"`
			Verb string `json:"verb"`
		} `json:"nonResourceAttributes"`
	} `json:"spec"`
}

// mirrorSelector is the shape label and field selectors share.
type mirrorSelector struct {
	RawSelector  string `json:"rawSelector"`
	Requirements []struct {
		Key      string   `json:"key"`
		Operator string   `json:"operator"`
		Values   []string `json:"values"`
	} `json:"requirements"`
}

func referenceMirror(body []byte) (*authz.Request, error) {
	var m mirrorReview
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	spec := authorizationv1.SubjectAccessReviewSpec{User: m.Spec.User, Groups: m.Spec.Groups}
	if na := m.Spec.NonResourceAttributes; na != nil {
		spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: na.Path, Verb: na.Verb}
	}
	if ra := m.Spec.ResourceAttributes; ra != nil {
		spec.ResourceAttributes = &authorizationv1.ResourceAttributes{Namespace: ra.Namespace, Verb: ra.Verb, Group: ra.Group,
			Resource: ra.Resource, Subresource: ra.Subresource, Name: ra.Name}
		if ls := ra.LabelSelector; ls != nil {
			spec.ResourceAttributes.LabelSelector = &authorizationv1.LabelSelectorAttributes{RawSelector: ls.RawSelector}
			for _, r := range ls.Requirements {
				spec.ResourceAttributes.LabelSelector.Requirements = append(spec.ResourceAttributes.LabelSelector.Requirements,
					metav1.LabelSelectorRequirement{Key: r.Key, Operator: metav1.LabelSelectorOperator(r.Operator), Values: r.Values})
			}
		}
		if fs := ra.FieldSelector; fs != nil {
			spec.ResourceAttributes.FieldSelector = &authorizationv1.FieldSelectorAttributes{RawSelector: fs.RawSelector}
			for _, r := range fs.Requirements {
				spec.ResourceAttributes.FieldSelector.Requirements = append(spec.ResourceAttributes.FieldSelector.Requirements,
					metav1.FieldSelectorRequirement{Key: r.Key, Operator: metav1.FieldSelectorOperator(r.Operator), Values: r.Values})
			}
		}
	}
	if err := referenceValidate(m.APIVersion, m.Kind, &spec); err != nil {
		return nil, err
	}
	return referenceRequestOf(&spec), nil
}

// fastDecode runs the codec as the handler does, on a pooled state, and
// returns a copy of the request.
func fastDecode(body []byte) (*authz.Request, error) {
	st := statePool.Get().(*state)
	defer st.release()
	req, err := st.decode(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out := *req
	out.Groups = append([]string(nil), req.Groups...)
	out.LabelSelector, out.FieldSelector = copyRequirements(req.LabelSelector), copyRequirements(req.FieldSelector)
	return &out, nil
}

func copyRequirements(reqs []authz.Requirement) []authz.Requirement {
	var out []authz.Requirement
	for _, r := range reqs {
		r.Values = append([]string(nil), r.Values...)
		out = append(out, r)
	}
	return out
}

// normalize makes nil and empty slices equal: the rules read only lengths.
func normalize(r *authz.Request) *authz.Request {
	if r == nil {
		return nil
	}
	out := *r
	if len(out.Groups) == 0 {
		out.Groups = nil
	}
	out.LabelSelector, out.FieldSelector = normalizeRequirements(out.LabelSelector), normalizeRequirements(out.FieldSelector)
	return &out
}

func normalizeRequirements(reqs []authz.Requirement) []authz.Requirement {
	if len(reqs) == 0 {
		return nil
	}
	out := append([]authz.Requirement(nil), reqs...)
	for i := range out {
		if len(out[i].Values) == 0 {
			out[i].Values = nil
		}
	}
	return out
}

// checkCodec is the property: the codec agrees with encoding/json on the
// mirror type (same request, or both reject), and with encoding/json on the
// k8s type except where the k8s type rejects a skipped field's type.
func checkCodec(t *testing.T, body []byte) {
	t.Helper()
	got, gotErr := fastDecode(body)
	want, wantErr := referenceMirror(body)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("body %q:\ncodec error: %v\nencoding/json error: %v", body, gotErr, wantErr)
	}
	if gotErr == nil && !reflect.DeepEqual(normalize(got), normalize(want)) {
		t.Fatalf("body %q:\ncodec:         %+v\nencoding/json: %+v", body, normalize(got), normalize(want))
	}
	k8s, k8sErr := referenceK8s(body)
	switch {
	case k8sErr == nil && gotErr != nil:
		t.Fatalf("body %q: the k8s type decodes (%+v), the codec rejects: %v", body, k8s, gotErr)
	case k8sErr == nil && !reflect.DeepEqual(normalize(got), normalize(k8s)):
		t.Fatalf("body %q:\ncodec: %+v\nk8s:   %+v", body, normalize(got), normalize(k8s))
	case k8sErr != nil && gotErr == nil:
		// Only a type error in a field the codec skips may tell them apart.
		if _, ok := errors.AsType[*json.SyntaxError](k8sErr); ok {
			t.Fatalf("body %q: a syntax error (%v) the codec accepts", body, k8sErr)
		}
	}
}

// checkEncoder: the answer decodes with encoding/json into the k8s type,
// and its status is byte for byte encoding/json's.
func checkEncoder(t *testing.T, allowed, denied bool, reason string) {
	t.Helper()
	spec := `{"user":"alice@contoso.com","groups":["system:authenticated"],"resourceAttributes":{"namespace":"t","verb":"get","resource":"rooms"}}`
	out := appendResponse(nil, spec, allowed, denied, reason)
	var sar authorizationv1.SubjectAccessReview
	if err := json.Unmarshal(out, &sar); err != nil {
		t.Fatalf("reason %q: the answer %q does not decode: %v", reason, out, err)
	}
	var wantSpec authorizationv1.SubjectAccessReviewSpec
	_ = json.Unmarshal([]byte(spec), &wantSpec)
	if !reflect.DeepEqual(sar.Spec, wantSpec) {
		t.Fatalf("the answer's spec %+v, want the request's %+v", sar.Spec, wantSpec)
	}
	if sar.APIVersion != reviewAPIVersion || sar.Kind != reviewKind {
		t.Fatalf("answer %q is %s %s", out, sar.APIVersion, sar.Kind)
	}
	status := authorizationv1.SubjectAccessReviewStatus{Allowed: allowed, Denied: denied, Reason: reason}
	wantStatus, _ := json.Marshal(status)
	if !bytes.Contains(out, append(append([]byte(`"status":`), wantStatus...), "}\n"...)) {
		t.Fatalf("reason %q: answer %s, want status %s", reason, out, wantStatus)
	}
	// Through a round trip both end up the same (invalid UTF-8 replaced).
	var roundTrip authorizationv1.SubjectAccessReviewStatus
	_ = json.Unmarshal(wantStatus, &roundTrip)
	if sar.Status != roundTrip {
		t.Fatalf("reason %q: status %+v, want %+v", reason, sar.Status, roundTrip)
	}
}

const apiserverReview = `{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},` +
	`"spec":{"resourceAttributes":{"namespace":"t","verb":"get","group":"partners.roompro.io","version":"v1alpha1","resource":"rooms","name":"nyc"},` +
	`"user":"alice@contoso.com","groups":["contoso.com:admins","system:authenticated"],` +
	`"extra":{"authentication.kubernetes.io/credential-id":["JTI=0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"]},"uid":"8d5c4a1e-2b3f-4c6d-9e8f-7a6b5c4d3e2f"},"status":{"allowed":false}}`

var codecSeeds = []string{
	apiserverReview,
	`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"nonResourceAttributes":{"path":"/api","verb":"get"},"groups":["system:authenticated"]}}`,
	`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a@b.c","resourceAttributes":{"verb":"list","resource":"rooms","labelSelector":{"rawSelector":"x","requirements":[{"key":"k","operator":"In","values":["v","w"]},{"key":"e","operator":"Exists"}]}}}}`,
	`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a@b.c","resourceAttributes":{"verb":"list","labelSelector":{"rawSelector":"partners.roompro.io/access-contoso.com in (true)"}}}}`,
	// Escapes, folding, repeated keys, nulls.
	`{"APIVERSION":"authorization.k8s.io\/v1","\u006bind":"SubjectAccessReview","SPEC":{"ſpec":1,"uſer":"\ud83d\ude00\u00e9\ud800x\udc00\"\\\/\b\f\n\r\t","groups":["a",null,"\u0000"]}}`,
	`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a","user":null,"groups":["a","b","c"],"groups":["x"],"groups":[null,null,null,null,null],"resourceAttributes":{"verb":"get"},"resourceAttributes":{"name":"n"}}}`,
	`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a","resourceAttributes":{"verb":"get","labelSelector":{"requirements":[{"key":"a","values":["1","2"]},{"key":"b"}]},"labelSelector":{"requirements":[{"operator":"In","values":[null]}]}}}}`,
	`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a","resourceAttributes":{"verb":"get"},"resourceAttributes":null,"nonResourceAttributes":{"path":"/"},"groups":[],"groups":null}}`,
	`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a@b.c","resourceAttributes":{"verb":"list","resource":"partnerroles","labelSelector":{"requirements":[{"key":"k","operator":"Exists"}]},"fieldSelector":{"rawSelector":"x","requirements":[{"key":"spec.partnerLink","operator":"In","values":["contoso"]}]}}}}`,
	`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a","resourceAttributes":{"verb":"get","fieldSelector":{"rawSelector":"spec.partnerLink=contoso"},"version":[1,-2.5e+3,true,false,null,{"x":{}}]}},"metadata":5,"status":"x"}`,
	"\t{\"apiVersion\" : \"authorization.k8s.io/v1\" ,\r\n\"kind\":\"SubjectAccessReview\",\"spec\":{\"user\":\"a\xff\xfeb\",\"nonResourceAttributes\":{}}}\n ",
	`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":5,"nonResourceAttributes":{}}}`,
	`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a","nonResourceAttributes":{}}} x`,
	`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a","nonResourceAttributes":{},}}`,
	`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a","nonResourceAttributes":{"path":01}}}`,
	`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a","nonResourceAttributes":[]}}`,
	`null`, ``, `{`, `[]`, `"x"`, `{"a":[1,]}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":tru}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`,
}

func TestCodecMatchesEncodingJSON(t *testing.T) {
	for _, body := range codecSeeds {
		checkCodec(t, []byte(body))
	}
	// encoding/json's nesting limit, in a skipped field and in a read one.
	for _, depth := range []int{9998, 9999, 10000, 10001} {
		checkCodec(t, []byte(`{"metadata":`+strings.Repeat("[", depth)+strings.Repeat("]", depth)+`}`))
		checkCodec(t, []byte(`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a","nonResourceAttributes":{"x":`+
			strings.Repeat(`{"a":`, depth)+"1"+strings.Repeat("}", depth)+`}}}`))
	}
	// A pooled state is reused: a review must not see the last one's groups.
	checkCodec(t, []byte(`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a","groups":["1","2","3","4","5","6","7"],"nonResourceAttributes":{}}}`))
	checkCodec(t, []byte(`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a","groups":["1"],"groups":[null,null,null],"nonResourceAttributes":{}}}`))
}

func TestEncoderMatchesEncodingJSON(t *testing.T) {
	for _, reason := range []string{"", "not a partner identity", `q"b\s/<>&` + "\x00\x1f\b\f\n\r\t\x7f", "\u2028\u2029é😀", "bad\xff\xfe utf-8\xed\xa0\x80"} {
		for _, v := range [][2]bool{{true, false}, {false, true}, {false, false}} {
			checkEncoder(t, v[0], v[1], reason)
		}
	}
}

func FuzzCodecMatchesEncodingJSON(f *testing.F) {
	for _, s := range codecSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkCodec(t, body)
		checkEncoder(t, len(body)%2 == 0, len(body)%3 == 0, string(body))
	})
}
