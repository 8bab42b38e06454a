package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// The keys of the Secret of the self-signed certificate. One Secret holds
// the CA and the serving certificate, so that promoting a new CA and
// issuing the certificate it signs is one write: no crash can leave a
// serving certificate of a CA the Secret does not record.
const (
	// KeyTrustBundle holds every CA the kube-apiserver must trust now, in
	// PEM: what the operator writes into the caBundle of its webhook
	// configurations, and what a cluster admin copies into the
	// authorization webhook's kubeconfig on the control-plane hosts.
	KeyTrustBundle = "ca.crt"
	keyCert        = "tls.crt"
	keyKey         = "tls.key"
	// The CA that signs the serving certificates, with its key.
	keySigningCA  = "signing-ca.crt"
	keySigningKey = "signing-ca.key"
	// A CA prepared by a rotation: trusted, not yet signing.
	keyNextCA  = "next-ca.crt"
	keyNextKey = "next-ca.key"
	// CAs that signed before (certificates only, no keys): trusted until
	// the serving certificate has been from the signing CA for a while.
	keyRetiredCAs = "retired-ca.crt"
)

// RotationAnnotation on the Secret asks for a step of a CA rotation:
// RotationPrepare, then (once every control-plane host trusts the bundle)
// RotationCommit. The operator removes it in the write that acts on it.
const (
	RotationAnnotation = "partners.roompro.io/ca-rotation"
	RotationPrepare    = "Prepare"
	RotationCommit     = "Commit"
)

// State is what the Secret holds, parsed.
type State struct {
	// Signing signs the serving certificates; nil before the first one (a
	// new install, or an upgrade from a release that made a CA per renewal).
	Signing *CA
	// Next is the CA a rotation prepared: trusted, not yet signing.
	Next *CA
	// Retired CAs are trusted, and sign nothing any more.
	Retired []*x509.Certificate
	// Serving is the stored serving certificate; nil when there is none
	// that goes with its key.
	Serving *x509.Certificate
	// ServingCert and ServingKey are Serving and its key, in PEM.
	ServingCert, ServingKey []byte
	// Request is the value of RotationAnnotation.
	Request string
}

// ParseState reads the Secret's data and annotations. A Secret without a
// signing CA is a new install or one of a release that made a CA per
// renewal: the CAs of its ca.crt are taken as retired, trusted until the
// serving certificate they signed is replaced. A signing or next CA that
// does not parse is an error: the operator changes nothing (a new CA in its
// place would lock out every apiserver that trusts the old one).
func ParseState(data map[string][]byte, annotations map[string]string) (State, error) {
	st := State{Request: annotations[RotationAnnotation]}
	if len(data[keySigningCA]) > 0 || len(data[keySigningKey]) > 0 {
		var err error
		if st.Signing, err = ParseCA(data[keySigningCA], data[keySigningKey]); err != nil {
			return State{}, fmt.Errorf("the signing CA (%s, %s): %w", keySigningCA, keySigningKey, err)
		}
		if len(data[keyNextCA]) > 0 || len(data[keyNextKey]) > 0 {
			if st.Next, err = ParseCA(data[keyNextCA], data[keyNextKey]); err != nil {
				return State{}, fmt.Errorf("the next CA (%s, %s): %w", keyNextCA, keyNextKey, err)
			}
		}
		if st.Retired, err = parseCertificates(data[keyRetiredCAs]); err != nil {
			return State{}, fmt.Errorf("the retired CAs (%s): %w", keyRetiredCAs, err)
		}
	} else {
		// What an older release wrote, or garbage: nothing to keep then.
		st.Retired, _ = parseCertificates(data[KeyTrustBundle])
	}
	if pair, err := tls.X509KeyPair(data[keyCert], data[keyKey]); err == nil {
		st.Serving, st.ServingCert, st.ServingKey = pair.Leaf, data[keyCert], data[keyKey]
	}
	return st, nil
}

// Data is the Secret's data for st.
func (st State) Data() (map[string][]byte, error) {
	data := map[string][]byte{
		KeyTrustBundle: EncodeBundle(st.Bundle()),
		keyCert:        st.ServingCert,
		keyKey:         st.ServingKey,
	}
	// A kubernetes.io/tls Secret must have both keys, even empty.
	for _, k := range []string{keyCert, keyKey} {
		if data[k] == nil {
			data[k] = []byte{}
		}
	}
	for _, ca := range []struct {
		ca            *CA
		cert, keyName string
	}{{st.Signing, keySigningCA, keySigningKey}, {st.Next, keyNextCA, keyNextKey}} {
		if ca.ca == nil {
			continue
		}
		key, err := ca.ca.KeyPEM()
		if err != nil {
			return nil, err
		}
		data[ca.cert], data[ca.keyName] = ca.ca.PEM, key
	}
	if len(st.Retired) > 0 {
		data[keyRetiredCAs] = EncodeBundle(st.Retired)
	}
	return data, nil
}

// Bundle is every CA to trust: the signing, the next and the retired ones,
// ordered by when they were made, so that the bundle changes only when the
// set does (a commit reorders nothing).
func (st State) Bundle() []*x509.Certificate {
	var all []*x509.Certificate
	if st.Signing != nil {
		all = append(all, st.Signing.cert)
	}
	if st.Next != nil {
		all = append(all, st.Next.cert)
	}
	all = append(all, st.Retired...)
	slices.SortFunc(all, func(a, b *x509.Certificate) int {
		if c := a.NotBefore.Compare(b.NotBefore); c != 0 {
			return c
		}
		return bytes.Compare(a.Raw, b.Raw)
	})
	return slices.CompactFunc(all, func(a, b *x509.Certificate) bool { return a.Equal(b) })
}

// EncodeBundle is cas in PEM, one after the other.
func EncodeBundle(cas []*x509.Certificate) []byte {
	out := make([]byte, 0, 1024*len(cas))
	for _, c := range cas {
		out = append(out, pemCert(c.Raw)...)
	}
	return out
}

// BundleCarries says whether the PEM bundle holds ca.
func BundleCarries(bundle []byte, ca *x509.Certificate) bool {
	certs, err := parseCertificates(bundle)
	return err == nil && slices.ContainsFunc(certs, ca.Equal)
}

// Policy is how long certificates live and which names they carry.
type Policy struct {
	// DNSNames and IPs of the serving certificate; its CA is constrained to
	// them.
	DNSNames []string
	IPs      []net.IP
	// Validity of a serving certificate; it is renewed two thirds into it.
	Validity time.Duration
	// CAValidity of a CA. Two thirds into it the next CA is prepared (and
	// an Event asks the admin to distribute the bundle and commit); when
	// less than one Validity is left it is committed without being asked.
	CAValidity time.Duration
	// RetiredTrust is how long a retired CA stays trusted once the serving
	// certificate is from the signing CA: time for every replica to pick
	// the new certificate up.
	RetiredTrust time.Duration
}

// Validate says what is wrong with p.
func (p Policy) Validate() error {
	var errs []error
	if len(p.DNSNames) == 0 {
		errs = append(errs, errors.New("the serving certificate needs a DNS name"))
	}
	if p.Validity <= 0 || p.RetiredTrust <= 0 {
		errs = append(errs, fmt.Errorf("validity %s and retired-CA trust %s must be positive", p.Validity, p.RetiredTrust))
	}
	if p.CAValidity < 3*p.Validity {
		errs = append(errs, fmt.Errorf("the CA's validity %s must be at least three serving validities (%s)", p.CAValidity, 3*p.Validity))
	}
	return errors.Join(errs...)
}

// Note is something a Decision did worth telling the admin: an Event on
// the Secret and a log line.
type Note struct {
	Warning         bool
	Reason, Message string
}

// Decision is the next step for a Secret: a change of what is trusted
// (CreateCA, PrepareNext, Retire, or only the removal of a refused
// request), or a change of the serving certificate (Commit, Issue), or
// nothing until Wake. Trust changes come first: a serving certificate is
// written only once every webhook configuration carries its CA, which the
// provisioner checks between the two.
type Decision struct {
	// CreateCA makes the signing CA.
	CreateCA bool
	// PrepareNext makes the next CA.
	PrepareNext bool
	// Retire drops these retired CAs from the trust bundle.
	Retire []*x509.Certificate
	// Commit makes the next CA the signing one, the signing one retired,
	// and issues a serving certificate from the new one (Issue).
	Commit bool
	// Issue signs a new serving certificate for DNSNames and IPs.
	Issue    bool
	DNSNames []string
	IPs      []net.IP
	// ClearRequest removes RotationAnnotation in this step's write.
	ClearRequest bool
	Notes        []Note
	// Wake is when to decide again, when there is nothing to do now.
	Wake time.Time
}

// ChangesTrust is true for a step that changes what is trusted (or only
// removes a request it refuses).
func (d Decision) ChangesTrust() bool {
	return d.CreateCA || d.PrepareNext || len(d.Retire) > 0 || (d.ClearRequest && !d.Commit)
}

// ChangesServing is true for a step that writes a serving certificate.
func (d Decision) ChangesServing() bool { return d.Commit || d.Issue }

// Signer is the CA that signs the serving certificate of this step.
func (d Decision) Signer(st State) *CA {
	if d.Commit {
		return st.Next
	}
	return st.Signing
}

func (d *Decision) note(warning bool, reason, format string, args ...any) {
	d.Notes = append(d.Notes, Note{Warning: warning, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// Decide is the next step for st at now.
func Decide(st State, now time.Time, p Policy) Decision {
	var d Decision
	if st.Signing == nil {
		d.CreateCA = true
		if len(st.Retired) > 0 {
			d.note(false, "WebhookCACreated", "created the long-lived webhook CA; the %d CA(s) of the previous release stay trusted until the serving certificate they signed is renewed: copy %s into the authorization webhook's kubeconfig on every control-plane host before then", len(st.Retired), KeyTrustBundle)
		} else {
			d.note(false, "WebhookCACreated", "created the webhook CA")
		}
		return d
	}
	d.Retire = retire(st, now, p)
	for _, c := range d.Retire {
		d.note(false, "RetiredCADropped", "no longer trusting the retired CA %q (serial %x)", c.Subject.CommonName, c.SerialNumber)
	}
	commitRequested := d.request(st)
	if st.Next == nil && !d.PrepareNext {
		if renewAt := twoThirds(st.Signing.cert); !now.Before(renewAt) {
			d.PrepareNext = true
			d.note(true, "CARotationPrepared", "the webhook CA expires at %s: prepared the next CA, now trusted beside it; copy %s into the authorization webhook's kubeconfig on every control-plane host, then annotate %s=%s (done without asking at %s)",
				st.Signing.cert.NotAfter.UTC().Format(time.RFC3339), KeyTrustBundle, RotationAnnotation, RotationCommit, autoCommitAt(st.Signing, p).UTC().Format(time.RFC3339))
		} else if err := permits(st.Signing.cert, p.DNSNames, p.IPs); err != nil {
			d.PrepareNext = true
			d.note(true, "CARotationPrepared", "the webhook Service's names changed and the CA is constrained to the old ones (%v): prepared a next CA for the new names; copy %s into the authorization webhook's kubeconfig on every control-plane host, then annotate %s=%s", err, KeyTrustBundle, RotationAnnotation, RotationCommit)
		}
	}
	if d.ChangesTrust() {
		return d
	}
	d.DNSNames, d.IPs = p.DNSNames, p.IPs
	if st.Next != nil && (commitRequested || !now.Before(autoCommitAt(st.Signing, p))) {
		d.Commit, d.Issue, d.ClearRequest = true, true, commitRequested
		d.note(!commitRequested, "CARotationCommitted", "the serving certificate is now signed by the next CA %q; the previous CA stays trusted for %s", st.Next.cert.Subject.CommonName, p.RetiredTrust)
		return d
	}
	if reason := servingReason(st, now, p); reason != "" {
		d.Issue = true
		if permits(st.Signing.cert, p.DNSNames, p.IPs) != nil && st.Serving != nil {
			// Until the rotation for the new names is committed, the
			// certificate keeps the names its CA may sign.
			d.DNSNames, d.IPs = st.Serving.DNSNames, st.Serving.IPAddresses
		}
		d.note(false, "ServingCertificateIssued", "issued a new webhook serving certificate from the CA %q: %s", st.Signing.cert.Subject.CommonName, reason)
		return d
	}
	d.Wake = wake(st, p)
	return d
}

// request handles RotationAnnotation, and says whether it asks for a
// commit that can be made (which the serving step does).
func (d *Decision) request(st State) (commit bool) {
	switch {
	case st.Request == "":
	case strings.EqualFold(st.Request, RotationPrepare):
		d.ClearRequest = true
		if st.Next != nil {
			d.note(false, "CARotationAlreadyPrepared", "the next CA %q is prepared already: copy %s into the authorization webhook's kubeconfig on every control-plane host, then annotate %s=%s", st.Next.cert.Subject.CommonName, KeyTrustBundle, RotationAnnotation, RotationCommit)
			return false
		}
		d.PrepareNext = true
		d.note(false, "CARotationPrepared", "prepared the next webhook CA, now trusted beside the current one: copy %s into the authorization webhook's kubeconfig on every control-plane host, then annotate %s=%s", KeyTrustBundle, RotationAnnotation, RotationCommit)
	case strings.EqualFold(st.Request, RotationCommit):
		if st.Next != nil {
			return true
		}
		d.ClearRequest = true
		d.note(true, "CARotationRefused", "nothing to commit: no next CA is prepared; annotate %s=%s first and distribute %s", RotationAnnotation, RotationPrepare, KeyTrustBundle)
	default:
		d.ClearRequest = true
		d.note(true, "CARotationRefused", "%s=%q: want %s or %s", RotationAnnotation, st.Request, RotationPrepare, RotationCommit)
	}
	return false
}

// retire is the retired CAs to drop: expired ones, and all of them once
// the serving certificate has been from the signing CA for RetiredTrust.
func retire(st State, now time.Time, p Policy) []*x509.Certificate {
	switchedAt, switched := servedSince(st)
	var out []*x509.Certificate
	for _, c := range st.Retired {
		if !now.Before(c.NotAfter) || (switched && !now.Before(switchedAt.Add(p.RetiredTrust))) {
			out = append(out, c)
		}
	}
	return out
}

// servedSince is when the stored serving certificate was issued, if the
// signing CA signed it.
func servedSince(st State) (time.Time, bool) {
	if st.Serving == nil || st.Signing == nil || st.Serving.CheckSignatureFrom(st.Signing.cert) != nil {
		return time.Time{}, false
	}
	return st.Serving.NotBefore.Add(clockSkew), true
}

// servingReason says why the serving certificate must be issued anew, or
// "" when it is good.
func servingReason(st State, now time.Time, p Policy) string {
	switch {
	case st.Serving == nil:
		return "the Secret holds no serving certificate"
	case !slices.ContainsFunc(st.Bundle(), func(ca *x509.Certificate) bool { return st.Serving.CheckSignatureFrom(ca) == nil }):
		return "its CA is no longer trusted"
	case permits(st.Signing.cert, p.DNSNames, p.IPs) == nil && !sameNames(st.Serving, p):
		return "the webhook Service's names changed"
	case !now.Before(twoThirds(st.Serving)):
		return fmt.Sprintf("two thirds of its validity passed (it expires at %s)", st.Serving.NotAfter.UTC().Format(time.RFC3339))
	}
	return ""
}

// wake is the next time something is due for st.
func wake(st State, p Policy) time.Time {
	times := []time.Time{}
	if st.Serving != nil {
		times = append(times, twoThirds(st.Serving))
	}
	if st.Next == nil {
		times = append(times, twoThirds(st.Signing.cert))
	} else {
		times = append(times, autoCommitAt(st.Signing, p))
	}
	switchedAt, switched := servedSince(st)
	for _, c := range st.Retired {
		times = append(times, c.NotAfter)
		if switched {
			times = append(times, switchedAt.Add(p.RetiredTrust))
		}
	}
	return slices.MinFunc(times, time.Time.Compare)
}

// twoThirds is two thirds into c's validity: when a serving certificate is
// renewed, and when the next CA is prepared.
func twoThirds(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
}

// autoCommitAt is when the next CA is committed without being asked: the
// last moment a full-length serving certificate of the signing CA fits.
func autoCommitAt(signing *CA, p Policy) time.Time {
	return signing.cert.NotAfter.Add(-p.Validity)
}

// permits says why ca's name constraints forbid dnsNames or ips, if they do.
func permits(ca *x509.Certificate, dnsNames []string, ips []net.IP) error {
	var errs []error
	for _, n := range dnsNames {
		if len(ca.PermittedDNSDomains) > 0 && !slices.ContainsFunc(ca.PermittedDNSDomains, func(d string) bool { return n == d || strings.HasSuffix(n, "."+d) }) {
			errs = append(errs, fmt.Errorf("%s is outside %v", n, ca.PermittedDNSDomains))
		}
	}
	for _, ip := range ips {
		inside := slices.ContainsFunc(ca.PermittedIPRanges, func(r *net.IPNet) bool { return r.Contains(ip) })
		excluded := slices.ContainsFunc(ca.ExcludedIPRanges, func(r *net.IPNet) bool { return r.Contains(ip) })
		if excluded || (len(ca.PermittedIPRanges) > 0 && !inside) {
			errs = append(errs, fmt.Errorf("%s is outside the CA's IP ranges", ip))
		}
	}
	return errors.Join(errs...)
}

// sameNames says whether c carries exactly p's names.
func sameNames(c *x509.Certificate, p Policy) bool {
	if !slices.Equal(slices.Sorted(slices.Values(c.DNSNames)), slices.Sorted(slices.Values(p.DNSNames))) || len(c.IPAddresses) != len(p.IPs) {
		return false
	}
	for _, ip := range p.IPs {
		if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// Apply carries out d on st at now: it makes the CAs and the certificate d
// asks for (the only part that is not pure: keys are random).
func Apply(st State, d Decision, now time.Time, p Policy) (State, error) {
	name := "partner-operator webhook CA " + now.UTC().Format("2006-01-02T15:04:05Z")
	var err error
	if d.CreateCA {
		if st.Signing, err = NewServingCA(now, p.CAValidity, name, p.DNSNames, p.IPs); err != nil {
			return State{}, err
		}
	}
	if d.PrepareNext {
		if st.Next, err = NewServingCA(now, p.CAValidity, name, p.DNSNames, p.IPs); err != nil {
			return State{}, err
		}
	}
	st.Retired = slices.DeleteFunc(slices.Clone(st.Retired), func(c *x509.Certificate) bool { return slices.ContainsFunc(d.Retire, c.Equal) })
	if d.Commit {
		if st.Next == nil {
			return State{}, errors.New("committing a CA rotation: no next CA")
		}
		st.Retired = append(st.Retired, st.Signing.cert)
		st.Signing, st.Next = st.Next, nil
	}
	if d.Issue {
		issued, err := st.Signing.SignServing(now, p.Validity, d.DNSNames, d.IPs)
		if err != nil {
			return State{}, err
		}
		pair, err := tls.X509KeyPair(issued.Cert, issued.Key)
		if err != nil {
			return State{}, fmt.Errorf("loading the new serving certificate: %w", err)
		}
		st.Serving, st.ServingCert, st.ServingKey = pair.Leaf, issued.Cert, issued.Key
	}
	if d.ClearRequest {
		st.Request = ""
	}
	return st, nil
}

// parseCertificates parses every certificate of a PEM bundle.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing a certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		return nil, errors.New("trailing data that is not PEM")
	}
	return out, nil
}
