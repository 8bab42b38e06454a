package authzserver

// SubjectAccessReviews in and out, with encoding/json/v2.
//
// A review is decoded into the k8s type itself, authorizationv1.SubjectAccessReview,
// and answered by encoding that same value with its status set: what the
// kube-apiserver's own subjectaccessreviews endpoint does. v2 reads the k8s
// type as encoding/json does (TypeMeta's `json:""` embeds it, metav1.Time's
// UnmarshalJSON and MarshalJSON are called) but for the rules below.
//
// Decoding is strict where a review could otherwise mean two things to two
// readers (FuzzCodecMatchesKubernetesDecoder checks it against the
// apiserver's own decoder, sigs.k8s.io/json):
//
//   - a member name given twice in any object, known or not, is an error
//     (encoding/json took the last; the apiserver's decoder in strict mode
//     reports it);
//   - member names match the k8s type's exactly: "User" or "ſpec" is an
//     unknown member, not user or spec (encoding/json folded case);
//   - unknown members are ignored, after a syntax check, as the apiserver
//     does: a newer apiserver may send fields this type does not know;
//   - invalid UTF-8 and unpaired surrogate escapes are errors (encoding/json
//     replaced them with U+FFFD, so that two different usernames could
//     decode alike);
//   - anything after the review but whitespace is an error.
//
// Size and depth are bounded: the handler reads at most MaxBodyBytes through
// http.MaxBytesReader, and jsontext rejects nesting deeper than 10,000 (a
// fixed limit, the same as encoding/json's; this Go has no option to lower
// it). An unknown member is skipped token by token by jsontext's state
// machine, which keeps 8 bytes per level on a slice, not Go recursion; the
// k8s type itself nests only a few levels. So 64 KiB of brackets are
// rejected at level 10,001 after at most 80 KB of state.

import (
	jsonv1 "encoding/json"
	"encoding/json/jsontext"
	"encoding/json/v2"
	"errors"
	"fmt"
	"io"
	"net/http"

	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/roompro/partner-operator/internal/authz"
)

const (
	reviewAPIVersion = "authorization.k8s.io/v1"
	reviewKind       = "SubjectAccessReview"
)

// decodeOptions are v2's defaults, spelled out because the webhook's
// security rests on them (see the top of this file).
var decodeOptions = json.JoinOptions(
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
	json.MatchCaseInsensitiveNames(false),
	json.RejectUnknownMembers(false),
)

// encodeOptions write what encoding/json, and so the apiserver's own
// endpoint, writes for the k8s type, where v2's defaults differ:
//
//   - `omitempty` omits false and 0 (the option lives in encoding/json);
//     v2's omits only empty JSON values, and would write "denied":false and
//     "generation":0;
//   - a nil slice or map is null (an extra value sent as null), not [] or {};
//   - invalid UTF-8 in a reason becomes U+FFFD rather than an unanswered
//     review (decoded strings are valid UTF-8 already).
//
// Unlike encoding/json, v2 does not escape <, > and & (no JSON reader
// cares); TestAnswerIsTheApiserversEncoding compares the two.
var encodeOptions = json.JoinOptions(
	jsonv1.OmitEmptyWithLegacySemantics(true),
	json.FormatNilSliceAsNull(true),
	json.FormatNilMapAsNull(true),
	jsontext.AllowInvalidUTF8(true),
)

// decodeReview reads one review from body and validates it.
func decodeReview(body io.Reader) (*authorizationv1.SubjectAccessReview, error) {
	review := &authorizationv1.SubjectAccessReview{}
	if err := json.UnmarshalRead(body, review, decodeOptions); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, fmt.Errorf("the review is larger than %d bytes", MaxBodyBytes)
		}
		return nil, fmt.Errorf("the body is not a JSON SubjectAccessReview: %w", err)
	}
	if err := validate(review); err != nil {
		return nil, err
	}
	return review, nil
}

// validate applies the rules a review must meet before it is decided.
func validate(review *authorizationv1.SubjectAccessReview) error {
	if review.APIVersion != reviewAPIVersion || review.Kind != reviewKind {
		return fmt.Errorf("want apiVersion %s, kind %s; got apiVersion %q, kind %q", reviewAPIVersion, reviewKind, review.APIVersion, review.Kind)
	}
	spec := &review.Spec
	if spec.User == "" && len(spec.Groups) == 0 {
		return errors.New("spec.user or spec.groups is required")
	}
	if (spec.ResourceAttributes == nil) == (spec.NonResourceAttributes == nil) {
		return errors.New("exactly one of spec.resourceAttributes and spec.nonResourceAttributes is required")
	}
	return nil
}

// requestOf reduces a validated review's spec to what the decision rules
// read. A caller other than the apiserver may send only a raw selector: it
// is parsed then.
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

// encodeAnswer sets the review's status to the decision and encodes the
// review: apiVersion, kind, metadata and spec as they came, and the status
// the apiserver's webhook authorizer reads.
func encodeAnswer(review *authorizationv1.SubjectAccessReview, d authz.Decision) ([]byte, error) {
	review.Status = authorizationv1.SubjectAccessReviewStatus{
		Allowed: d.Verdict == authz.Allow,
		Denied:  d.Verdict == authz.Deny,
		Reason:  d.Reason,
	}
	return json.Marshal(review, encodeOptions)
}
