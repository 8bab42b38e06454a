package authzserver

// SubjectAccessReviews in.
//
// A review is decoded into the k8s type itself, authorizationv1.SubjectAccessReview,
// in two steps:
//
//  1. encoding/json/jsontext checks that the body is I-JSON (RFC 7493):
//     valid syntax and UTF-8, no unpaired surrogate escape, no member name
//     given twice in any object (known or not, escaped or not), one value
//     and nothing after it but whitespace, at most 10,000 levels deep.
//  2. A walk over that validated text maps it onto the k8s type's schema,
//     with encoding/json's rules for it: member names match exactly ("User"
//     or "ſpec" is an unknown member, not user or spec); unknown members are
//     stepped over, as the apiserver does (a newer apiserver may send fields
//     this type does not know); a known member of the wrong JSON type is an
//     error, even where the webhook does not read it (metadata, uid,
//     status), as it is to the apiserver; null leaves a member at its zero
//     value. metadata, whose schema is large and which the apiserver sends
//     empty, is read by encoding/json/v2 when it is not empty.
//
// Every check a review's security rests on is jsontext's; the walk needs no
// syntax checks of its own, because every byte it steps over is valid JSON.
// FuzzCodecMatchesKubernetesDecoder checks the result against the
// apiserver's own decoder, sigs.k8s.io/json in strict mode.
//
// Why not encoding/json/v2's Unmarshal, or jsontext's token reader? Both
// were measured (BENCHMARKS.md, "Issue 14's measurement"): a review cost
// 8.5 µs with Unmarshal and 5 µs with jsontext's ReadToken/ReadValue per
// member, about 65 ns a call, against 1 µs for jsontext to validate the
// whole body at once, and the throughput of the webhook fell to 0.85 of the
// HTTPS floor. Validating once and walking the text costs about 3 µs.
//
// Size and depth are bounded: the handler reads at most MaxBodyBytes through
// http.MaxBytesReader, jsontext rejects nesting deeper than 10,000 (a fixed
// limit, the same as encoding/json's) with a stack of 8 bytes a level, and
// the walk steps over unknown values by counting brackets, never by
// recursion; it nests only as deep as the review's schema.

import (
	"bytes"
	"encoding/json/jsontext"
	"encoding/json/v2"
	"errors"
	"fmt"
	"io"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

// A reviewReader decodes one review at a time; they are reused. It walks
// the body's text only after jsontext has validated it, so the walk needs
// no syntax checks of its own: every byte it steps over is valid JSON.
type reviewReader struct {
	body  bytes.Buffer
	limit io.LimitedReader
	// text is the whole body: a string without an escape is cut from it
	// rather than copied.
	text string
	pos  int
	// The decoded review and what it points to live here, reused from one
	// review to the next, so that decoding allocates only the body's
	// string: the review is valid until release.
	review      authorizationv1.SubjectAccessReview
	resource    authorizationv1.ResourceAttributes
	nonResource authorizationv1.NonResourceAttributes
	fieldSel    authorizationv1.FieldSelectorAttributes
	labelSel    authorizationv1.LabelSelectorAttributes
	strings     []string // every string array of the review, one after the other
	extra       map[string]authorizationv1.ExtraValue
	request     authz.Request
}

var reviewReaders = sync.Pool{New: func() any { return &reviewReader{} }}

// decodeReview reads one review from body, at most MaxBodyBytes, and
// validates it. The review is r.review, valid until r.release().
func decodeReview(body io.Reader) (*reviewReader, error) {
	r := reviewReaders.Get().(*reviewReader)
	if err := r.read(body, &r.review); err != nil {
		r.release()
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("the review is larger than %d bytes", MaxBodyBytes)
		}
		return nil, fmt.Errorf("the body is not a JSON SubjectAccessReview: %w", err)
	}
	if err := validate(&r.review); err != nil {
		r.release()
		return nil, err
	}
	return r, nil
}

var errTooLarge = errors.New("too large")

func (r *reviewReader) read(body io.Reader, review *authorizationv1.SubjectAccessReview) error {
	r.limit = io.LimitedReader{R: body, N: MaxBodyBytes + 1}
	_, err := r.body.ReadFrom(&r.limit)
	r.limit.R = nil
	switch {
	case err != nil:
		return err
	case r.body.Len() > MaxBodyBytes:
		return errTooLarge
	}
	// I-JSON (RFC 7493): one value, valid syntax and UTF-8, no name
	// repeated in any object, at most 10,000 levels deep.
	if !jsontext.Value(r.body.Bytes()).IsValid() {
		return invalidJSON(r.body.Bytes())
	}
	r.text, r.pos = r.body.String(), 0
	return readObject(r, review, reviewMember)
}

// invalidJSON says what is wrong with a body that is not I-JSON: jsontext's
// decoder reads it again to find out.
func invalidJSON(body []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(body), decodeOptions)
	_, err := dec.ReadValue()
	if err == nil {
		if _, err = dec.ReadToken(); err == io.EOF {
			err = nil
		}
		err = errors.Join(errors.New("data after the review"), err)
	}
	return err
}

// release returns r to the pool. The review keeps the text its strings are
// cut from.
func (r *reviewReader) release() {
	r.text = ""
	if r.body.Cap() > 4<<10 || cap(r.strings) > 256 || len(r.extra) > 16 {
		// A rare large review does not stay in the pool.
		r.body, r.strings, r.extra = bytes.Buffer{}, nil, nil
	}
	r.body.Reset()
	// Everything is zeroed: no field of one review shows in the next.
	clear(r.strings)
	r.strings = r.strings[:0]
	clear(r.extra)
	r.pos, r.review, r.request = 0, authorizationv1.SubjectAccessReview{}, authz.Request{}
	r.resource, r.nonResource = authorizationv1.ResourceAttributes{}, authorizationv1.NonResourceAttributes{}
	r.fieldSel, r.labelSel = authorizationv1.FieldSelectorAttributes{}, authorizationv1.LabelSelectorAttributes{}
	reviewReaders.Put(r)
}

// emptyMetadata is what the apiserver sends as a review's metadata.
const emptyMetadata = `{"creationTimestamp":null}`

func reviewMember(r *reviewReader, review *authorizationv1.SubjectAccessReview, name string) error {
	switch name {
	case "apiVersion":
		return field("apiVersion", readString(r, &review.APIVersion))
	case "kind":
		return field("kind", readString(r, &review.Kind))
	case "metadata":
		if v := r.value(); v != emptyMetadata {
			return field("metadata", json.Unmarshal([]byte(v), &review.ObjectMeta, decodeOptions))
		}
		return nil
	case "spec":
		return field("spec", readObject(r, &review.Spec, specMember))
	case "status":
		return field("status", readObject(r, &review.Status, statusMember))
	}
	r.value()
	return nil
}

func specMember(r *reviewReader, s *authorizationv1.SubjectAccessReviewSpec, name string) error {
	switch name {
	case "resourceAttributes":
		return field("resourceAttributes", readOptional(r, &s.ResourceAttributes, &r.resource, resourceMember))
	case "nonResourceAttributes":
		return field("nonResourceAttributes", readOptional(r, &s.NonResourceAttributes, &r.nonResource, nonResourceMember))
	case "user":
		return field("user", readString(r, &s.User))
	case "groups":
		return field("groups", readStrings(r, &s.Groups))
	case "extra":
		return field("extra", readExtra(r, &s.Extra))
	case "uid":
		return field("uid", readString(r, &s.UID))
	}
	r.value()
	return nil
}

func resourceMember(r *reviewReader, a *authorizationv1.ResourceAttributes, name string) error {
	switch name {
	case "namespace":
		return field("namespace", readString(r, &a.Namespace))
	case "verb":
		return field("verb", readString(r, &a.Verb))
	case "group":
		return field("group", readString(r, &a.Group))
	case "version":
		return field("version", readString(r, &a.Version))
	case "resource":
		return field("resource", readString(r, &a.Resource))
	case "subresource":
		return field("subresource", readString(r, &a.Subresource))
	case "name":
		return field("name", readString(r, &a.Name))
	case "fieldSelector":
		return field("fieldSelector", readOptional(r, &a.FieldSelector, &r.fieldSel, fieldSelectorMember))
	case "labelSelector":
		return field("labelSelector", readOptional(r, &a.LabelSelector, &r.labelSel, labelSelectorMember))
	}
	r.value()
	return nil
}

func nonResourceMember(r *reviewReader, a *authorizationv1.NonResourceAttributes, name string) error {
	switch name {
	case "path":
		return field("path", readString(r, &a.Path))
	case "verb":
		return field("verb", readString(r, &a.Verb))
	}
	r.value()
	return nil
}

func fieldSelectorMember(r *reviewReader, s *authorizationv1.FieldSelectorAttributes, name string) error {
	switch name {
	case "rawSelector":
		return field("rawSelector", readString(r, &s.RawSelector))
	case "requirements":
		return field("requirements", readArray(r, &s.Requirements, func(r *reviewReader, req *metav1.FieldSelectorRequirement) error {
			return readObject(r, &requirement{&req.Key, (*string)(&req.Operator), &req.Values}, requirementMember)
		}))
	}
	r.value()
	return nil
}

func labelSelectorMember(r *reviewReader, s *authorizationv1.LabelSelectorAttributes, name string) error {
	switch name {
	case "rawSelector":
		return field("rawSelector", readString(r, &s.RawSelector))
	case "requirements":
		return field("requirements", readArray(r, &s.Requirements, func(r *reviewReader, req *metav1.LabelSelectorRequirement) error {
			return readObject(r, &requirement{&req.Key, (*string)(&req.Operator), &req.Values}, requirementMember)
		}))
	}
	r.value()
	return nil
}

// requirement is the schema label and field selector requirements share.
type requirement struct {
	key, operator *string
	values        *[]string
}

func requirementMember(r *reviewReader, req *requirement, name string) error {
	switch name {
	case "key":
		return field("key", readString(r, req.key))
	case "operator":
		return field("operator", readString(r, req.operator))
	case "values":
		return field("values", readStrings(r, req.values))
	}
	r.value()
	return nil
}

func statusMember(r *reviewReader, s *authorizationv1.SubjectAccessReviewStatus, name string) error {
	switch name {
	case "allowed":
		return field("allowed", readBool(r, &s.Allowed))
	case "denied":
		return field("denied", readBool(r, &s.Denied))
	case "reason":
		return field("reason", readString(r, &s.Reason))
	case "evaluationError":
		return field("evaluationError", readString(r, &s.EvaluationError))
	}
	r.value()
	return nil
}

// The readers below decode as encoding/json does into the k8s type: null
// leaves the value as it is (zero, since no member is given twice), an
// empty array or object makes an empty, non-nil slice or map.

// readObject reads an object, or null, into v: member reads the value of
// each member, given its name.
func readObject[T any](r *reviewReader, v *T, member func(*reviewReader, *T, string) error) error {
	if open, err := r.begin('{', "an object"); !open {
		return err
	}
	for r.more('}') {
		if err := member(r, v, r.name()); err != nil {
			return err
		}
	}
	return nil
}

// readOptional reads an object into *slot and points *p at it, or null
// into nil. Each slot is read at most once per review: jsontext refused
// every repeated name.
func readOptional[T any](r *reviewReader, p **T, slot *T, member func(*reviewReader, *T, string) error) error {
	if r.peek() == 'n' {
		r.value()
		return nil
	}
	*p = slot
	return readObject(r, slot, member)
}

// readArray reads an array into a new slice, or null into nil.
func readArray[T any](r *reviewReader, p *[]T, elem func(*reviewReader, *T) error) error {
	if open, err := r.begin('[', "an array"); !open {
		return err
	}
	s := []T{}
	for r.more(']') {
		s = append(s, *new(T))
		if err := elem(r, &s[len(s)-1]); err != nil {
			return field(fmt.Sprintf("[%d]", len(s)-1), err)
		}
	}
	*p = s
	return nil
}

// readStrings reads an array of strings into a new slice, or null into nil.
func readStrings(r *reviewReader, p *[]string) error {
	if open, err := r.begin('[', "an array"); !open {
		return err
	}
	if r.strings == nil {
		r.strings = make([]string, 0, 32)
	}
	start := len(r.strings)
	for r.more(']') {
		r.strings = append(r.strings, "")
		if err := readString(r, &r.strings[len(r.strings)-1]); err != nil {
			return field(fmt.Sprintf("[%d]", len(r.strings)-1-start), err)
		}
	}
	// Not nil, even when empty; capped, so that an append to it copies
	// rather than writes over the next array.
	*p = r.strings[start:len(r.strings):len(r.strings)]
	return nil
}

// readExtra reads spec.extra: an object of string arrays, or null.
func readExtra(r *reviewReader, p *map[string]authorizationv1.ExtraValue) error {
	if open, err := r.begin('{', "an object"); !open {
		return err
	}
	if r.extra == nil {
		r.extra = map[string]authorizationv1.ExtraValue{}
	}
	extra := r.extra
	for r.more('}') {
		key := r.name()
		var values []string
		if err := readStrings(r, &values); err != nil {
			return field(key, err)
		}
		extra[key] = values
	}
	*p = extra
	return nil
}

func readString(r *reviewReader, s *string) error {
	switch r.peek() {
	case '"':
		*s = r.string()
	case 'n':
		r.value()
	default:
		return r.wrongKind("a string")
	}
	return nil
}

func readBool(r *reviewReader, b *bool) error {
	switch r.peek() {
	case 't', 'f':
		*b = r.value() == "true"
	case 'n':
		r.value()
	default:
		return r.wrongKind("a boolean")
	}
	return nil
}

// The steps of the walk. Each starts where the last one ended, before any
// whitespace.

// peek returns the first byte of the next token.
func (r *reviewReader) peek() byte {
	for {
		switch c := r.text[r.pos]; c {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return c
		}
	}
}

// begin steps into an object or array (open is '{' or '['); open is false,
// with no error, for null.
func (r *reviewReader) begin(open byte, want string) (bool, error) {
	switch r.peek() {
	case open:
		r.pos++
		return true, nil
	case 'n':
		r.value()
		return false, nil
	}
	return false, r.wrongKind(want)
}

// more steps over the comma before the next member or element, or over
// the close that ends the object or array and says there is none.
func (r *reviewReader) more(close byte) bool {
	switch r.peek() {
	case close:
		r.pos++
		return false
	case ',':
		r.pos++
	}
	return true
}

// name reads a member's name and the colon after it.
func (r *reviewReader) name() string {
	r.peek()
	name := r.string()
	r.peek()
	r.pos++ // the colon
	return name
}

// string reads a string: a substring of the text when it has no escape,
// the common case, else the escapes decoded by jsontext. One pass finds
// the closing quote or the first backslash: most strings of a review are
// a few bytes long, where a byte loop costs less than strings.IndexByte's
// two calls (BENCHMARKS.md, "Fourth attempt").
func (r *reviewReader) string() string {
	text, start := r.text, r.pos+1
	for i := start; i < len(text); i++ {
		switch text[i] {
		case '"':
			r.pos = i + 1
			return text[start:i]
		case '\\':
			return r.escapedString(i)
		}
	}
	panic("unreachable: jsontext validated the string's closing quote")
}

// escapedString reads the rest of a string whose first backslash is at
// i, and decodes it with jsontext.
func (r *reviewReader) escapedString(i int) string {
	start := r.pos
	for ; r.text[i] != '"'; i++ {
		if r.text[i] == '\\' {
			i++ // the escaped byte, which may be a quote
		}
	}
	r.pos = i + 1
	s, _ := jsontext.AppendUnquote(nil, r.text[start:r.pos]) // valid: jsontext checked it
	return string(s)
}

// value steps over one value of any kind and returns its text. Nesting
// is counted, not recursed into.
func (r *reviewReader) value() string {
	r.peek()
	start, depth := r.pos, 0
	for {
		switch r.peek() {
		case '{', '[':
			depth++
			r.pos++
		case '}', ']':
			depth--
			r.pos++
		case '"':
			r.string()
		case ',', ':': // inside an object or array: depth > 0
			r.pos++
			continue
		default: // a number, true, false or null: up to the next delimiter
			for r.pos < len(r.text) && !endsScalar(r.text[r.pos]) {
				r.pos++
			}
		}
		if depth == 0 {
			return r.text[start:r.pos]
		}
	}
}

// endsScalar says whether c ends a number, true, false or null.
func endsScalar(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', ':', ']', '}':
		return true
	}
	return false
}

// wrongKind is the error for a value of another kind than want.
func (r *reviewReader) wrongKind(want string) error {
	kind := "a number"
	switch r.peek() {
	case '{':
		kind = "an object"
	case '[':
		kind = "an array"
	case '"':
		kind = "a string"
	case 't', 'f':
		kind = "a boolean"
	}
	return fmt.Errorf("want %s, not %s", want, kind)
}

// fieldError names the member whose value is wrong: spec.groups[1].
type fieldError struct {
	path string
	err  error
}

func (e *fieldError) Error() string { return e.path + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// field prefixes err's path with name.
func field(name string, err error) error {
	if err == nil {
		return nil
	}
	if fe, ok := errors.AsType[*fieldError](err); ok && fe == err {
		sep := "."
		if fe.path[0] == '[' {
			sep = ""
		}
		fe.path = name + sep + fe.path
		return fe
	}
	return &fieldError{path: name, err: err}
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
	req := &authz.Request{}
	requestInto(spec, req)
	return req
}

// requestInto is requestOf into a zeroed *req.
func requestInto(spec *authorizationv1.SubjectAccessReviewSpec, req *authz.Request) {
	req.User, req.Groups, req.Extra = spec.User, spec.Groups, spec.Extra
	if na := spec.NonResourceAttributes; na != nil {
		req.Path, req.Verb = na.Path, na.Verb
		return
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
}
