package authzserver

// A SubjectAccessReview codec for exactly the fields the decision reads.
//
// encoding/json spent ~12 µs per review (reflection over the whole k8s type,
// ObjectMeta included), 60 times the decision itself. The decoder below reads
// one review in a single pass over the body and keeps encoding/json's (v1)
// semantics for every field it reads, so that it accepts and rejects what
// json.Unmarshal does and yields the same values (FuzzCodecMatchesEncodingJSON
// checks this against encoding/json):
//
//   - keys match field names exactly or case-insensitively (Unicode simple
//     folding, as encoding/json does), after unescaping;
//   - unknown keys, and the fields that the decision does not read
//     (metadata, spec.uid, spec.extra, resourceAttributes.version, status),
//     are skipped after a full syntax check;
//   - null leaves a string unchanged, and sets a slice or a pointer-to-struct
//     field to nil; a repeated key decodes into what the earlier one left
//     (a pointer-to-struct is merged into, a slice reused in place);
//   - strings are unescaped as encoding/json does: invalid UTF-8 and
//     unpaired surrogates become U+FFFD;
//   - nesting deeper than 10000 and anything after the top-level value other
//     than whitespace are syntax errors;
//   - a value of the wrong JSON type is an error (encoding/json reports it
//     after decoding the rest; the review is rejected either way).
//
// The differences from the encoding/json path the handler had: the skipped
// fields are checked for syntax, not for type ({"metadata": 5} is skipped
// here, an error there; the decision never reads them), and data after the
// review is rejected (as json.Unmarshal does; json.Decoder.Decode ignored it).

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/roompro/partner-operator/internal/authz"
)

// maxNestingDepth is encoding/json's limit.
const maxNestingDepth = 10000

// review is a decoded SubjectAccessReview: the fields the decision reads.
// Its slices are reused from one review to the next (see reset).
type sarReview struct {
	apiVersion, kind string
	// spec is the raw JSON of the spec, echoed in the answer as the
	// apiserver's own SubjectAccessReview endpoint does.
	spec          string
	user          string
	groups        []string
	hasRA, hasNRA bool
	ra            resourceAttrs
	nra           nonResourceAttrs
}

type resourceAttrs struct {
	namespace, verb, group, resource, subresource, name string
	hasLS, hasFS                                        bool
	// ls and fs: the label and field selectors, of one shape.
	ls, fs labelSelectorAttrs
}

type labelSelectorAttrs struct {
	raw  string
	reqs []labelRequirement
}

type labelRequirement struct {
	key, operator string
	values        []string
}

type nonResourceAttrs struct {
	path, verb string
}

// clearStrings zeroes a slice's whole backing array and empties it. The
// decoder keeps the invariant that the backing array beyond what
// encoding/json's slice would have as capacity is zero, so that an element
// exposed again by a repeated key holds what encoding/json's would.
func clearStrings(s []string) []string {
	clear(s[:cap(s)])
	return s[:0]
}

func clearRequirements(s []labelRequirement) []labelRequirement {
	full := s[:cap(s)]
	for i := range full {
		full[i].reset()
	}
	return s[:0]
}

func (r *labelRequirement) reset() {
	r.key, r.operator = "", ""
	r.values = clearStrings(r.values)
}

func (ls *labelSelectorAttrs) reset() {
	ls.raw = ""
	ls.reqs = clearRequirements(ls.reqs)
}

func (ra *resourceAttrs) reset() {
	ra.namespace, ra.verb, ra.group, ra.resource, ra.subresource, ra.name = "", "", "", "", "", ""
	ra.hasLS, ra.hasFS = false, false
	ra.ls.reset()
	ra.fs.reset()
}

func (r *sarReview) reset() {
	r.apiVersion, r.kind, r.user = "", "", ""
	r.groups = clearStrings(r.groups)
	r.hasRA, r.hasNRA = false, false
	r.ra.reset()
	r.nra = nonResourceAttrs{}
}

// maxPooledLen bounds what a pooled review keeps: a review with thousands of
// groups must not make every later reset clear thousands of strings.
const maxPooledLen = 256

// trim drops oversized slices and the references into the last body.
func (r *sarReview) trim() {
	if cap(r.groups) > maxPooledLen {
		r.groups = nil
	}
	r.ra.ls.trim()
	r.ra.fs.trim()
	r.reset()
}

// trim drops buffers grown past what a pooled review keeps.
func (ls *labelSelectorAttrs) trim() {
	if cap(ls.reqs) > maxPooledLen {
		ls.reqs = nil
	}
	for i, req := range ls.reqs[:cap(ls.reqs)] {
		if cap(req.values) > maxPooledLen {
			ls.reqs[:cap(ls.reqs)][i].values = nil
		}
	}
}

// validate applies the rules the handler always applied after decoding.
func (r *sarReview) validate() error {
	if r.apiVersion != reviewAPIVersion || r.kind != reviewKind {
		return fmt.Errorf("want apiVersion %s, kind %s; got apiVersion %q, kind %q", reviewAPIVersion, reviewKind, r.apiVersion, r.kind)
	}
	if r.user == "" && len(r.groups) == 0 {
		return errors.New("spec.user or spec.groups is required")
	}
	if r.hasRA == r.hasNRA {
		return errors.New("exactly one of spec.resourceAttributes and spec.nonResourceAttributes is required")
	}
	return nil
}

// request reduces the review to what the decision rules read, as requestOf
// does for the k8s type. The request shares the review's slices; reqs is
// scratch space for its label selector.
func (r *sarReview) request(req *authz.Request, reqs []authz.Requirement) []authz.Requirement {
	*req = authz.Request{User: r.user}
	if len(r.groups) > 0 {
		req.Groups = r.groups
	}
	if r.hasNRA {
		req.Path, req.Verb = r.nra.path, r.nra.verb
		return reqs
	}
	ra := &r.ra
	req.Namespace, req.Verb, req.Group = ra.namespace, ra.verb, ra.group
	req.Resource, req.Subresource, req.Name = ra.resource, ra.subresource, ra.name
	reqs = reqs[:0]
	if ra.hasLS {
		req.LabelSelector, reqs = ra.ls.requirements(reqs, parseRawSelector)
	}
	if ra.hasFS {
		req.FieldSelector, reqs = ra.fs.requirements(reqs, parseRawFieldSelector)
	}
	return reqs
}

// requirements appends the selector's requirements to reqs and returns them
// (a sub-slice of the result) with the result. A caller other than the
// apiserver may send only the raw selector: parseRaw reads it then.
func (ls *labelSelectorAttrs) requirements(reqs []authz.Requirement, parseRaw func(string) []authz.Requirement) (own, all []authz.Requirement) {
	start := len(reqs)
	for _, lr := range ls.reqs {
		var values []string
		if len(lr.values) > 0 {
			values = lr.values
		}
		reqs = append(reqs, authz.Requirement{Key: lr.key, Operator: lr.operator, Values: values})
	}
	switch {
	case len(reqs) > start:
		return reqs[start:len(reqs):len(reqs)], reqs
	case ls.raw != "":
		return parseRaw(ls.raw), reqs
	}
	return nil, reqs
}

const (
	reviewAPIVersion = "authorization.k8s.io/v1"
	reviewKind       = "SubjectAccessReview"
)

// objectFields names the members of one object the decoder reads, matched
// exactly first, then case-insensitively, as encoding/json does; and the
// frequent members it skips without trying to fold them.
type objectFields struct{ names, skipped []string }

var (
	reviewFields      = objectFields{names: []string{"apiVersion", "kind", "spec"}, skipped: []string{"metadata", "status"}}
	specFields        = objectFields{names: []string{"user", "groups", "resourceAttributes", "nonResourceAttributes"}, skipped: []string{"extra", "uid"}}
	resourceFields    = objectFields{names: []string{"namespace", "verb", "group", "resource", "subresource", "name", "labelSelector", "fieldSelector"}, skipped: []string{"version"}}
	labelFields       = objectFields{names: []string{"rawSelector", "requirements"}}
	requirementFields = objectFields{names: []string{"key", "operator", "values"}}
	nonResourceFields = objectFields{names: []string{"path", "verb"}}
)

// index is the index in f.names of the member key, or -1 for one to skip.
func (f objectFields) index(key string) int {
	if slices.Contains(f.skipped, key) {
		return -1
	}
	return fieldIndex(key, f.names)
}

// fieldIndex is the index of the field key names in names, or -1.
func fieldIndex(key string, names []string) int {
	for i, n := range names {
		if key == n {
			return i
		}
	}
	// The names are ASCII; a key that folds to one has as many runes, each
	// of one to three bytes (K, U+212A KELVIN SIGN, folds to k).
	for i, n := range names {
		if len(key) >= len(n) && len(key) <= 3*len(n) && strings.EqualFold(key, n) {
			return i
		}
	}
	return -1
}

// decoder reads one JSON document from s.
type decoder struct {
	s       string
	i       int
	depth   int
	err     error
	scratch []byte
}

// decodeReviewJSON decodes body into r (which it resets first). It returns
// a syntax or type error; validation is the caller's (r.validate).
func (d *decoder) decodeReviewJSON(body string, r *sarReview) error {
	r.reset()
	d.s, d.i, d.depth, d.err = body, 0, 0, nil
	if d.reviewValue(r) {
		d.ws()
		if d.i < len(d.s) {
			d.syntax("after the top-level value")
		}
	}
	d.s = ""
	return d.err
}

func (d *decoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) syntax(context string) bool {
	if d.err == nil {
		if d.i >= len(d.s) {
			d.err = errors.New("unexpected end of JSON input")
		} else {
			d.err = fmt.Errorf("invalid character %q %s (offset %d)", d.s[d.i], context, d.i)
		}
	}
	return false
}

func (d *decoder) typeError(field, want string) bool {
	if d.err == nil {
		d.err = fmt.Errorf("%s: want %s, got %q (offset %d)", field, want, d.s[d.i], d.i)
	}
	return false
}

// peek skips whitespace and returns the next byte, or fails at the end.
func (d *decoder) peek() (byte, bool) {
	if i := d.i; i < len(d.s) {
		if c := d.s[i]; c > ' ' {
			return c, true
		}
	}
	return d.peekSlow()
}

func (d *decoder) peekSlow() (byte, bool) {
	d.ws()
	if d.i >= len(d.s) {
		return 0, d.syntax("")
	}
	return d.s[d.i], true
}

func (d *decoder) push() bool {
	d.depth++
	if d.depth > maxNestingDepth {
		if d.err == nil {
			d.err = errors.New("exceeded max depth")
		}
		return false
	}
	return true
}

// literal consumes the literal lit (true, false or null).
func (d *decoder) literal(lit string) bool {
	if len(d.s)-d.i >= len(lit) && d.s[d.i:d.i+len(lit)] == lit {
		d.i += len(lit)
		return true
	}
	// Point at the first byte that differs.
	for k := 0; k < len(lit) && d.i < len(d.s) && d.s[d.i] == lit[k]; k++ {
		d.i++
	}
	return d.syntax("in literal")
}

// member reads the next key of an object whose '{' was consumed; done is
// true when it consumed the closing '}'.
func (d *decoder) member(first bool) (key string, done, ok bool) {
	c, ok := d.peek()
	if !ok {
		return "", false, false
	}
	if c == '}' {
		d.i++
		d.depth--
		return "", true, true
	}
	if !first {
		if c != ',' {
			return "", false, d.syntax("after object value")
		}
		d.i++
		if c, ok = d.peek(); !ok {
			return "", false, false
		}
	}
	if c != '"' {
		return "", false, d.syntax("looking for the beginning of an object key")
	}
	if key, ok = d.str(); !ok {
		return "", false, false
	}
	if c, ok = d.peek(); !ok {
		return "", false, false
	}
	if c != ':' {
		return "", false, d.syntax("after object key")
	}
	d.i++
	return key, false, true
}

// element starts the next element of an array whose '[' was consumed; done
// is true when it consumed the closing ']'.
func (d *decoder) element(first bool) (done, ok bool) {
	c, ok := d.peek()
	if !ok {
		return false, false
	}
	if c == ']' && first {
		d.i++
		d.depth--
		return true, true
	}
	if first {
		return false, true
	}
	switch c {
	case ']':
		d.i++
		d.depth--
		return true, true
	case ',':
		d.i++
		return false, true
	}
	return false, d.syntax("after array element")
}

// str reads a string at d.s[d.i] == '"' and returns it unescaped.
func (d *decoder) str() (string, bool) {
	start := d.i + 1
	for i := start; i < len(d.s); i++ {
		if c := d.s[i]; !plain[c] {
			if c == '"' {
				d.i = i + 1
				return d.s[start:i], true
			}
			return d.strSlow(start, i)
		}
	}
	d.i = len(d.s)
	return "", d.syntax("")
}

// plain holds the bytes a string holds as they are: ASCII, not a control
// character, quote or backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func hex4(s string) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range []byte(s[:4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// strSlow continues str from i, the first byte that is not plain ASCII,
// unescaping as encoding/json's unquote does.
func (d *decoder) strSlow(start, i int) (string, bool) {
	b := append(d.scratch[:0], d.s[start:i]...)
	changed := false
	for i < len(d.s) {
		c := d.s[i]
		switch {
		case c == '"':
			d.i = i + 1
			d.scratch = b
			if !changed {
				return d.s[start:i], true
			}
			return string(b), true
		case c < 0x20:
			d.i = i
			return "", d.syntax("in string literal")
		case c == '\\':
			changed = true
			if i+1 >= len(d.s) {
				d.i = len(d.s)
				return "", d.syntax("")
			}
			e := d.s[i+1]
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				rr := hex4(d.s[i+2:])
				if rr < 0 {
					d.i = i + 2
					for k := 0; k < 4 && d.i < len(d.s) && isHex(d.s[d.i]); k++ {
						d.i++
					}
					return "", d.syntax("in \\u hexadecimal character escape")
				}
				i += 6
				if utf16.IsSurrogate(rr) {
					if i+1 < len(d.s) && d.s[i] == '\\' && d.s[i+1] == 'u' {
						if rr1 := hex4(d.s[i+2:]); rr1 >= 0 {
							if dec := utf16.DecodeRune(rr, rr1); dec != utf8.RuneError {
								i += 6
								b = utf8.AppendRune(b, dec)
								continue
							}
						}
					}
					rr = utf8.RuneError
				}
				b = utf8.AppendRune(b, rr)
				continue
			default:
				d.i = i + 1
				return "", d.syntax("in string escape code")
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(d.s[i:])
			if r == utf8.RuneError && n == 1 {
				changed = true
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, d.s[i:i+n]...)
			}
			i += n
		}
	}
	d.i = len(d.s)
	d.scratch = b
	return "", d.syntax("")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// skip reads and discards any value, checking its syntax.
func (d *decoder) skip() bool {
	c, ok := d.peek()
	if !ok {
		return false
	}
	switch {
	case c == '"':
		return d.skipString()
	case c == '{':
		d.i++
		if !d.push() {
			return false
		}
		for first := true; ; first = false {
			c, ok := d.peek()
			if !ok {
				return false
			}
			if c == '}' {
				d.i++
				d.depth--
				return true
			}
			if !first {
				if c != ',' {
					return d.syntax("after object value")
				}
				d.i++
				if c, ok = d.peek(); !ok {
					return false
				}
			}
			if c != '"' {
				return d.syntax("looking for the beginning of an object key")
			}
			if !d.skipString() {
				return false
			}
			if c, ok = d.peek(); !ok {
				return false
			}
			if c != ':' {
				return d.syntax("after object key")
			}
			d.i++
			if !d.skip() {
				return false
			}
		}
	case c == '[':
		d.i++
		if !d.push() {
			return false
		}
		for first := true; ; first = false {
			done, ok := d.element(first)
			if !ok {
				return false
			}
			if done {
				return true
			}
			if !d.skip() {
				return false
			}
		}
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	}
	return d.syntax("looking for beginning of value")
}

// skipString checks a string's syntax without unescaping it.
func (d *decoder) skipString() bool {
	for i := d.i + 1; i < len(d.s); i++ {
		c := d.s[i]
		if plain[c] || c >= utf8.RuneSelf {
			continue
		}
		switch {
		case c == '"':
			d.i = i + 1
			return true
		case c < 0x20:
			d.i = i
			return d.syntax("in string literal")
		case c == '\\':
			if i+1 >= len(d.s) {
				d.i = len(d.s)
				return d.syntax("")
			}
			switch d.s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if hex4(d.s[i+2:]) < 0 {
					d.i = i + 2
					for k := 0; k < 4 && d.i < len(d.s) && isHex(d.s[d.i]); k++ {
						d.i++
					}
					return d.syntax("in \\u hexadecimal character escape")
				}
				i += 5
			default:
				d.i = i + 1
				return d.syntax("in string escape code")
			}
		}
	}
	d.i = len(d.s)
	return d.syntax("")
}

// number checks a number's syntax: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() bool {
	s, i := d.s, d.i
	digits := func() bool {
		n := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i > n
	}
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		digits()
	default:
		d.i = i
		return d.syntax("in numeric literal")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			d.i = i
			return d.syntax("after decimal point in numeric literal")
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			d.i = i
			return d.syntax("in exponent of numeric literal")
		}
	}
	d.i = i
	return true
}

// stringField decodes a string into dst; null leaves dst as it is.
func (d *decoder) stringField(dst *string, field string) bool {
	c, ok := d.peek()
	if !ok {
		return false
	}
	switch c {
	case '"':
		v, ok := d.str()
		if ok {
			*dst = v
		}
		return ok
	case 'n':
		return d.literal("null")
	}
	return d.typeErrorOrSyntax(field, "a string")
}

// typeErrorOrSyntax reports a value of the wrong type, or a syntax error
// if it is not a value at all (encoding/json checks syntax first).
func (d *decoder) typeErrorOrSyntax(field, want string) bool {
	at := d.i
	if !d.skip() {
		return false
	}
	d.i = at
	return d.typeError(field, want)
}

// stringsField decodes an array of strings into *dst in place, as
// encoding/json does; null empties it.
func (d *decoder) stringsField(dst *[]string, field string) bool {
	return arrayField(d, dst, field, "an array of strings", clearStrings,
		func(s *string) bool { return d.stringField(s, field) })
}

// arrayField decodes a JSON array into *dst in place, as encoding/json does:
// null empties it (empty also zeroes the backing array, see clearStrings),
// and element decodes each element into the slot encoding/json would use.
func arrayField[T any](d *decoder, dst *[]T, field, want string, empty func([]T) []T, element func(*T) bool) bool {
	c, ok := d.peek()
	if !ok {
		return false
	}
	switch c {
	case 'n':
		if !d.literal("null") {
			return false
		}
		*dst = empty(*dst)
		return true
	case '[':
	default:
		return d.typeErrorOrSyntax(field, want)
	}
	d.i++
	if !d.push() {
		return false
	}
	s := *dst
	for n := 0; ; n++ {
		done, ok := d.element(n == 0)
		if !ok {
			*dst = s
			return false
		}
		if done {
			if n == 0 {
				s = empty(s)
			} else {
				s = s[:n]
			}
			*dst = s
			return true
		}
		// encoding/json grows the slice by one, exposing what its
		// backing array held there (see clearStrings).
		if n >= cap(s) {
			var zero T
			s = append(s, zero)
		} else {
			s = s[:n+1]
		}
		if !element(&s[n]) {
			*dst = s
			return false
		}
	}
}

// object consumes '{' or null; null reports isNull. Any other value is a
// type error.
func (d *decoder) object(field string) (isNull, ok bool) {
	c, ok := d.peek()
	if !ok {
		return false, false
	}
	switch c {
	case '{':
		d.i++
		return false, d.push()
	case 'n':
		return true, d.literal("null")
	}
	return false, d.typeErrorOrSyntax(field, "an object")
}

// members decodes the members of an object whose '{' has been read:
// value(i) decodes the value of the member f.names[i], and every other
// member is read and discarded.
func (d *decoder) members(f objectFields, value func(i int) bool) bool {
	for first := true; ; first = false {
		key, done, ok := d.member(first)
		if !ok || done {
			return ok
		}
		if i := f.index(key); i >= 0 {
			ok = value(i)
		} else {
			ok = d.skip()
		}
		if !ok {
			return false
		}
	}
}

// optionalObject decodes a member that holds an object or null, into a
// target that *present says is set. null unsets it. An object sets it,
// after reset if it was unset (a repeated key merges into what the earlier
// one left, as encoding/json does), and members decodes the object's
// members.
func (d *decoder) optionalObject(field string, present *bool, reset func(), members func() bool) bool {
	isNull, ok := d.object(field)
	switch {
	case !ok:
		return false
	case isNull:
		*present = false
		return true
	}
	if !*present {
		reset()
		*present = true
	}
	return members()
}

func (d *decoder) reviewValue(r *sarReview) bool {
	isNull, ok := d.object("the review")
	if !ok || isNull {
		return ok
	}
	return d.members(reviewFields, func(i int) bool {
		switch i {
		case 0:
			return d.stringField(&r.apiVersion, "apiVersion")
		case 1:
			return d.stringField(&r.kind, "kind")
		}
		// spec, kept as sent to be echoed
		d.ws()
		start := d.i
		if !d.specValue(r) {
			return false
		}
		r.spec = d.s[start:d.i]
		return true
	})
}

func (d *decoder) specValue(r *sarReview) bool {
	isNull, ok := d.object("spec")
	if !ok || isNull {
		return ok
	}
	return d.members(specFields, func(i int) bool {
		switch i {
		case 0:
			return d.stringField(&r.user, "spec.user")
		case 1:
			return d.stringsField(&r.groups, "spec.groups")
		case 2:
			return d.optionalObject("spec.resourceAttributes", &r.hasRA, r.ra.reset,
				func() bool { return d.resourceAttrsMembers(&r.ra) })
		}
		return d.optionalObject("spec.nonResourceAttributes", &r.hasNRA, func() { r.nra = nonResourceAttrs{} },
			func() bool { return d.nonResourceAttrsMembers(&r.nra) })
	})
}

func (d *decoder) resourceAttrsMembers(ra *resourceAttrs) bool {
	return d.members(resourceFields, func(i int) bool {
		switch i {
		case 0:
			return d.stringField(&ra.namespace, "spec.resourceAttributes.namespace")
		case 1:
			return d.stringField(&ra.verb, "spec.resourceAttributes.verb")
		case 2:
			return d.stringField(&ra.group, "spec.resourceAttributes.group")
		case 3:
			return d.stringField(&ra.resource, "spec.resourceAttributes.resource")
		case 4:
			return d.stringField(&ra.subresource, "spec.resourceAttributes.subresource")
		case 5:
			return d.stringField(&ra.name, "spec.resourceAttributes.name")
		case 6:
			return d.optionalObject("spec.resourceAttributes.labelSelector", &ra.hasLS, ra.ls.reset,
				func() bool { return d.selectorMembers(&ra.ls, "labelSelector") })
		}
		return d.optionalObject("spec.resourceAttributes.fieldSelector", &ra.hasFS, ra.fs.reset,
			func() bool { return d.selectorMembers(&ra.fs, "fieldSelector") })
	})
}

// selectorMembers decodes a labelSelector or fieldSelector: both are a raw
// selector and a list of requirements of one shape.
func (d *decoder) selectorMembers(ls *labelSelectorAttrs, name string) bool {
	return d.members(labelFields, func(i int) bool {
		if i == 0 {
			return d.stringField(&ls.raw, name+".rawSelector")
		}
		return d.requirementsField(&ls.reqs, name+".requirements")
	})
}

// requirementsField decodes a selector's requirements in place, as
// stringsField does for strings: an object merges into the element, null
// leaves it.
func (d *decoder) requirementsField(dst *[]labelRequirement, field string) bool {
	return arrayField(d, dst, field, "an array of requirements", clearRequirements, func(r *labelRequirement) bool {
		isNull, ok := d.object(field)
		if !ok || isNull {
			return ok
		}
		return d.requirementMembers(r)
	})
}

func (d *decoder) requirementMembers(r *labelRequirement) bool {
	return d.members(requirementFields, func(i int) bool {
		switch i {
		case 0:
			return d.stringField(&r.key, "requirements.key")
		case 1:
			return d.stringField(&r.operator, "requirements.operator")
		}
		return d.stringsField(&r.values, "requirements.values")
	})
}

func (d *decoder) nonResourceAttrsMembers(na *nonResourceAttrs) bool {
	return d.members(nonResourceFields, func(i int) bool {
		if i == 0 {
			return d.stringField(&na.path, "spec.nonResourceAttributes.path")
		}
		return d.stringField(&na.verb, "spec.nonResourceAttributes.verb")
	})
}

// appendResponse appends the answer: a SubjectAccessReview with the status
// the apiserver reads (its webhook authorizer reads only apiVersion, kind
// and status; the spec need not be echoed). The status is byte for byte what
// encoding/json writes for a SubjectAccessReviewStatus.
func appendResponse(b []byte, spec string, allowed, denied bool, reason string) []byte {
	if spec == "" || spec == "null" {
		spec = "{}"
	}
	b = append(b, `{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","metadata":{},"spec":`...)
	b = append(b, spec...)
	b = append(b, `,"status":{"allowed":`...)
	if allowed {
		b = append(b, "true"...)
	} else {
		b = append(b, "false"...)
	}
	if denied {
		b = append(b, `,"denied":true`...)
	}
	if reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, reason)
	}
	return append(b, "}}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json does (HTML-safe, with
// invalid UTF-8 as U+FFFD and U+2028, U+2029 escaped).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += n
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += n
			start = i
			continue
		}
		i += n
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
