package webhookauth

import (
	"net/http"
	"testing"
)

// Every combination of endpoint, certificate, token and the admission
// opt-out, against the rules written out: only the apiserver's certificate
// reaches admission (or anyone, with the opt-out); decisions take the
// apiserver's certificate or an allowed token, whatever the opt-out says.
func TestVerdicts(t *testing.T) {
	type tc struct {
		e        Endpoint
		c        certificate
		t        token
		insecure bool
	}
	want := func(x tc) int {
		switch {
		case x.c == apiserverCertificate:
			return http.StatusOK
		case x.e == Admission && x.insecure:
			return http.StatusOK
		case x.e == Admission && x.c == otherCertificate:
			return http.StatusForbidden
		case x.e == Admission:
			return http.StatusUnauthorized
		case x.t == tokenAllowed:
			return http.StatusOK
		case x.t == tokenNotAllowed:
			return http.StatusForbidden
		case x.t == tokenUnchecked:
			return http.StatusInternalServerError
		case x.t == tokenRejected:
			return http.StatusUnauthorized
		case x.c == otherCertificate:
			return http.StatusForbidden
		default:
			return http.StatusUnauthorized
		}
	}
	for _, e := range []Endpoint{Admission, Decisions} {
		for _, c := range []certificate{noCertificate, apiserverCertificate, otherCertificate} {
			for _, tok := range []token{noToken, tokenRejected, tokenNotAllowed, tokenAllowed, tokenUnchecked} {
				for _, insecure := range []bool{false, true} {
					x := tc{e, c, tok, insecure}
					v := byCertificate(e, c, insecure)
					if v == askToken {
						if e != Decisions {
							t.Fatalf("%+v: a token asked for on %s", x, e)
						}
						v = byToken(c, tok)
					}
					got := http.StatusOK
					if v != pass {
						got = v.status()
					}
					if got != want(x) {
						t.Errorf("%s, certificate %d, token %d, insecure %v: %d (%s), want %d", e, c, tok, insecure, got, v, want(x))
					}
				}
			}
		}
	}
}
