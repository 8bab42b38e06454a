package webhookauth

import (
	"sync"
	"time"
)

// verifiedCerts remembers which client certificates the x509 authenticator
// accepted, for the client CA content they were verified against. Verifying
// a chain costs about 125 µs of CPU on every request of the kube-apiserver
// (BenchmarkApiserverCertificate without it), where deciding a review costs
// 2 µs; the apiserver presents the same certificate request after request.
// An entry counts only while the CA content is the same (a rotation drops
// every entry), for at most verifiedFor (so that an expiring CA or
// certificate is judged again soon), and there are at most maxVerified.
type verifiedCerts struct {
	mu sync.Mutex
	// bundle is the CA content the entries were verified against, by
	// identity: the CA provider stores new content in a new slice.
	bundle  *byte
	entries map[string]verifiedCert // by the leaf certificate's DER
}

type verifiedCert struct {
	name  string
	until time.Time
}

const (
	maxVerified = 64
	verifiedFor = time.Minute
)

// get returns the name of leaf if it was verified against bundle and the
// entry has not run out.
func (v *verifiedCerts) get(bundle, leaf []byte, now time.Time) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(bundle) == 0 || v.bundle != &bundle[0] {
		return "", false
	}
	e, ok := v.entries[string(leaf)]
	if !ok || !now.Before(e.until) {
		return "", false
	}
	return e.name, true
}

// put remembers that leaf, named name, was verified against bundle (read
// before the verification, so that it is never newer than what verified
// the certificate), until notAfter at the latest.
func (v *verifiedCerts) put(bundle, leaf []byte, name string, now, notAfter time.Time) {
	if len(bundle) == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.bundle != &bundle[0] || len(v.entries) >= maxVerified {
		v.bundle, v.entries = &bundle[0], map[string]verifiedCert{}
	}
	until := now.Add(verifiedFor)
	if notAfter.Before(until) {
		until = notAfter
	}
	v.entries[string(leaf)] = verifiedCert{name: name, until: until}
}
