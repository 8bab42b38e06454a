package authzserver

// SubjectAccessReviews out.

import (
	"encoding/json/jsontext"
	"strconv"

	"github.com/roompro/partner-operator/internal/authz"
)

// appendAnswer appends the answer to a review to dst: a SubjectAccessReview
// with the status the apiserver's webhook authorizer reads, and nothing
// else, as the contract's example response has it. The apiserver reads only
// the status; echoing the spec would cost a third of a review's CPU
// (BENCHMARKS.md, "Issue 14's measurement"). The status is written as
// encoding/json writes it (denied, reason and evaluationError omitted when
// empty); TestAnswerIsWhatTheApiserverReads compares the two.
func appendAnswer(dst []byte, d authz.Decision) []byte {
	b := append(dst, `{"apiVersion":"`+reviewAPIVersion+`","kind":"`+reviewKind+`","status":{"allowed":`...)
	b = strconv.AppendBool(b, d.Verdict == authz.Allow)
	if d.Verdict == authz.Deny {
		b = append(b, `,"denied":true`...)
	}
	if d.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, d.Reason)
	}
	return append(b, "}}"...)
}

// appendString quotes s. Most strings of a review are printable ASCII
// without a quote or backslash, which need no escape and are copied as they
// are; jsontext quotes the others (its only error says it replaced invalid
// UTF-8).
func appendString(b []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < ' ' || c > '~' || c == '"' || c == '\\' {
			b, _ = jsontext.AppendQuote(b, s)
			return b
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
