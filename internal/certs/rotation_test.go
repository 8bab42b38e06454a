package certs_test

import (
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roompro/partner-operator/internal/certs"
)

var (
	t0     = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	policy = certs.Policy{
		DNSNames:     []string{"partner-operator-webhook-service.partner-operator-system.svc", "partner-operator-webhook-service"},
		Validity:     90 * 24 * time.Hour,
		CAValidity:   10 * 365 * 24 * time.Hour,
		RetiredTrust: 10 * time.Minute,
	}
)

// settle applies the decisions at now until there is nothing left to do,
// as the provisioner does when every caBundle takes what it writes, and
// returns the state and the decisions taken.
func settle(t *testing.T, st certs.State, now time.Time) (certs.State, []certs.Decision) {
	t.Helper()
	var taken []certs.Decision
	for range 10 {
		d := certs.Decide(st, now, policy)
		if !d.ChangesTrust() && !d.ChangesServing() {
			if !d.Wake.After(now) {
				t.Fatalf("nothing to do at %s but wake at %s", now, d.Wake)
			}
			return st, taken
		}
		if d.ChangesTrust() && d.ChangesServing() {
			t.Fatalf("one step changes trust and the serving certificate at once: %+v", d)
		}
		var err error
		if st, err = certs.Apply(st, d, now, policy); err != nil {
			t.Fatal(err)
		}
		taken = append(taken, d)
	}
	t.Fatal("no fixed point after 10 steps")
	return st, nil
}

func signedBy(c *x509.Certificate, ca *x509.Certificate) bool { return c.CheckSignatureFrom(ca) == nil }

func names(cas []*x509.Certificate) []string {
	var out []string
	for _, c := range cas {
		out = append(out, c.SerialNumber.String())
	}
	return out
}

func sameCAs(a, b []*x509.Certificate) bool { return slices.Equal(names(a), names(b)) }

// A new install: the CA comes first, in its own step (the provisioner puts
// it into every caBundle), then the serving certificate it signs.
func TestInstallTrustsTheCABeforeIssuing(t *testing.T) {
	d := certs.Decide(certs.State{}, t0, policy)
	if !d.CreateCA || d.ChangesServing() {
		t.Fatalf("first decision %+v: want the CA alone", d)
	}
	st, taken := settle(t, certs.State{}, t0)
	if len(taken) != 2 || !taken[1].Issue {
		t.Fatalf("decisions %+v: want create the CA, then issue", taken)
	}
	if !signedBy(st.Serving, st.Signing.Certificate()) {
		t.Error("the serving certificate is not signed by the signing CA")
	}
	if got := st.Signing.Certificate().NotAfter.Sub(t0); got != policy.CAValidity {
		t.Errorf("the CA lives %s, want %s", got, policy.CAValidity)
	}
	if got := st.Serving.NotAfter.Sub(t0); got != policy.Validity {
		t.Errorf("the serving certificate lives %s, want %s", got, policy.Validity)
	}
}

// Renewal is two thirds into the serving certificate's validity, and never
// changes the CA or the bundle.
func TestRenewalKeepsTheCA(t *testing.T) {
	st, _ := settle(t, certs.State{}, t0)
	first, bundle := st.Serving, st.Bundle()
	renewAt := first.NotBefore.Add(first.NotAfter.Sub(first.NotBefore) * 2 / 3)
	if d := certs.Decide(st, t0, policy); !d.Wake.Equal(renewAt) {
		t.Errorf("wakes at %s, want the renewal time %s", d.Wake, renewAt)
	}
	if after, taken := settle(t, st, renewAt.Add(-time.Second)); len(taken) != 0 || !after.Serving.Equal(first) {
		t.Fatalf("renewed before the renewal time: %+v", taken)
	}
	for i := range 3 { // three renewals: half a year
		now := renewAt.Add(time.Duration(i) * 60 * 24 * time.Hour)
		var taken []certs.Decision
		st, taken = settle(t, st, now)
		if len(taken) != 1 || !taken[0].Issue || taken[0].CreateCA || taken[0].PrepareNext || taken[0].Commit {
			t.Fatalf("renewal %d: %+v, want one issue", i, taken)
		}
		if !signedBy(st.Serving, bundle[0]) || !sameCAs(st.Bundle(), bundle) {
			t.Fatalf("renewal %d changed the CA: bundle %v, was %v", i, names(st.Bundle()), names(bundle))
		}
	}
}

// A rotation: Prepare adds the next CA to the bundle and signs nothing with
// it; Commit switches the serving certificate; the old CA is dropped once
// the new certificate has been served for RetiredTrust.
func TestRotationOverlapsOldAndNewCA(t *testing.T) {
	st, _ := settle(t, certs.State{}, t0)
	old := st.Signing.Certificate()
	now := t0.Add(24 * time.Hour)

	st.Request = certs.RotationPrepare
	st, taken := settle(t, st, now)
	if len(taken) != 1 || !taken[0].PrepareNext || !taken[0].ClearRequest || st.Request != "" {
		t.Fatalf("prepare: %+v, want the next CA and the request cleared", taken)
	}
	next := st.Next.Certificate()
	if got := st.Bundle(); !sameCAs(got, []*x509.Certificate{old, next}) {
		t.Fatalf("prepared bundle %v, want old and next", names(got))
	}
	if !signedBy(st.Serving, old) {
		t.Fatal("prepare switched the serving certificate")
	}

	now = now.Add(time.Hour) // the admin distributes the bundle
	st.Request = certs.RotationCommit
	st, taken = settle(t, st, now)
	if len(taken) != 1 || !taken[0].Commit || !taken[0].Issue || !taken[0].ClearRequest {
		t.Fatalf("commit: %+v, want one step that commits and issues", taken)
	}
	if !signedBy(st.Serving, next) || !st.Signing.Certificate().Equal(next) || st.Next != nil {
		t.Fatal("after commit the serving certificate and the signing CA are not the next CA")
	}
	if got := st.Bundle(); !sameCAs(got, []*x509.Certificate{old, next}) {
		t.Fatalf("bundle right after commit %v, want still old and next", names(got))
	}

	dropAt := st.Serving.NotBefore.Add(5*time.Minute + policy.RetiredTrust)
	if d := certs.Decide(st, now, policy); !d.Wake.Equal(dropAt) {
		t.Errorf("wakes at %s, want when the old CA is dropped, %s", d.Wake, dropAt)
	}
	if _, taken := settle(t, st, dropAt.Add(-time.Second)); len(taken) != 0 {
		t.Fatalf("dropped the old CA early: %+v", taken)
	}
	st, taken = settle(t, st, dropAt)
	if len(taken) != 1 || len(taken[0].Retire) != 1 || !taken[0].Retire[0].Equal(old) {
		t.Fatalf("drop: %+v, want the old CA retired", taken)
	}
	if got := st.Bundle(); !sameCAs(got, []*x509.Certificate{next}) {
		t.Fatalf("final bundle %v, want the new CA alone", names(got))
	}
}

func TestRotationRequests(t *testing.T) {
	st, _ := settle(t, certs.State{}, t0)
	now := t0.Add(time.Hour)
	for _, tc := range []struct {
		name, request, reason string
		prepared              bool
	}{
		{"commit with nothing prepared", "Commit", "CARotationRefused", false},
		{"prepare twice", "prepare", "CARotationAlreadyPrepared", true},
		{"an unknown step", "Now", "CARotationRefused", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := st
			if tc.prepared {
				in.Request = certs.RotationPrepare
				in, _ = settle(t, in, now)
			}
			in.Request = tc.request
			out, taken := settle(t, in, now)
			if len(taken) != 1 || taken[0].Commit || taken[0].PrepareNext || !taken[0].ClearRequest || out.Request != "" {
				t.Fatalf("%+v: want the request removed, nothing else", taken)
			}
			if taken[0].Notes[0].Reason != tc.reason {
				t.Errorf("reason %s, want %s", taken[0].Notes[0].Reason, tc.reason)
			}
			if !sameCAs(out.Bundle(), in.Bundle()) || !out.Serving.Equal(in.Serving) {
				t.Error("a refused request changed the CAs or the certificate")
			}
		})
	}
}

// Two thirds into the CA's life the next CA is prepared and the admin
// warned; when a full serving certificate no longer fits it is committed.
func TestTheCAAgesIntoARotation(t *testing.T) {
	st, _ := settle(t, certs.State{}, t0)
	ca := st.Signing.Certificate()
	prepareAt := ca.NotBefore.Add(ca.NotAfter.Sub(ca.NotBefore) * 2 / 3)
	// Serving certificates renewed on time until then.
	st, _ = settle(t, st, prepareAt.Add(-time.Minute))
	st, taken := settle(t, st, prepareAt)
	if len(taken) == 0 || !taken[0].PrepareNext || !taken[0].Notes[0].Warning {
		t.Fatalf("at two thirds of the CA: %+v, want the next CA prepared with a warning", taken)
	}
	if signedBy(st.Serving, st.Next.Certificate()) {
		t.Fatal("the next CA signed without a commit")
	}
	commitAt := ca.NotAfter.Add(-policy.Validity)
	st, _ = settle(t, st, commitAt.Add(-time.Minute))
	if st.Next == nil || !st.Signing.Certificate().Equal(ca) {
		t.Fatal("committed before the last moment")
	}
	st, taken = settle(t, st, commitAt)
	if len(taken) == 0 || !taken[0].Commit {
		t.Fatalf("at the last moment: %+v, want a commit", taken)
	}
	if st.Serving.NotAfter.After(st.Signing.Certificate().NotAfter) {
		t.Error("the serving certificate outlives its CA")
	}
}

// An upgrade from the release that made a CA per renewal: those CAs stay
// trusted, the certificate they signed is served until it is due, then
// the long-lived CA signs and the old CAs go.
func TestUpgradeFromACAPerRenewal(t *testing.T) {
	legacy, err := certs.Issue(t0, policy.Validity, policy.DNSNames, nil)
	if err != nil {
		t.Fatal(err)
	}
	older, err := certs.Issue(t0.Add(-60*24*time.Hour), policy.Validity, policy.DNSNames, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := certs.ParseState(map[string][]byte{
		"ca.crt": append(legacy.CA, older.CA...), "tls.crt": legacy.Cert, "tls.key": legacy.Key,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Retired) != 2 || st.Signing != nil {
		t.Fatalf("parsed %d retired CAs and signing %v: want the two old CAs retired, no signing CA", len(st.Retired), st.Signing)
	}
	now := t0.Add(24 * time.Hour)
	st, taken := settle(t, st, now)
	if len(taken) != 1 || !taken[0].CreateCA {
		t.Fatalf("upgrade: %+v, want the long-lived CA created, and nothing issued", taken)
	}
	if got := string(st.ServingCert); got != string(legacy.Cert) {
		t.Fatal("the upgrade replaced the serving certificate the apiserver trusts")
	}
	if len(st.Bundle()) != 3 {
		t.Fatalf("bundle %v: want both old CAs and the new one", names(st.Bundle()))
	}
	due := st.Serving.NotBefore.Add(st.Serving.NotAfter.Sub(st.Serving.NotBefore) * 2 / 3)
	st, taken = settle(t, st, due)
	// The older per-renewal CA expired before: dropped on its own.
	if !signedBy(st.Serving, st.Signing.Certificate()) {
		t.Fatalf("at the old certificate's renewal: %+v, want one from the long-lived CA", taken)
	}
	st, _ = settle(t, st, due.Add(policy.RetiredTrust))
	if got := st.Bundle(); len(got) != 1 || !got[0].Equal(st.Signing.Certificate()) {
		t.Fatalf("bundle after the move %v, want the long-lived CA alone", names(got))
	}
}

// The Secret round-trips every CA and the certificate.
func TestStateRoundTrips(t *testing.T) {
	st, _ := settle(t, certs.State{}, t0)
	st.Request = certs.RotationPrepare
	st, _ = settle(t, st, t0)
	st.Request = certs.RotationCommit
	st, _ = settle(t, st, t0.Add(time.Hour))
	st.Request = certs.RotationPrepare
	st, _ = settle(t, st, t0.Add(time.Hour+time.Minute)) // the old CA still trusted
	data, err := st.Data()
	if err != nil {
		t.Fatal(err)
	}
	back, err := certs.ParseState(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Signing.Certificate().Equal(st.Signing.Certificate()) || !back.Next.Certificate().Equal(st.Next.Certificate()) ||
		!sameCAs(back.Retired, st.Retired) || !back.Serving.Equal(st.Serving) || len(back.Retired) != 1 {
		t.Fatal("the Secret's data does not round-trip")
	}
	if string(data["ca.crt"]) != string(certs.EncodeBundle(st.Bundle())) {
		t.Error("ca.crt is not the bundle")
	}
	if _, err := certs.ParseState(map[string][]byte{"signing-ca.crt": data["signing-ca.crt"], "signing-ca.key": data["next-ca.key"]}, nil); err == nil {
		t.Error("a signing CA with another CA's key parsed")
	}
}

// The CA signs only for the webhook Service's names: a certificate it
// signs for another name does not verify.
func TestTheCAIsNameConstrained(t *testing.T) {
	ca, err := certs.NewServingCA(t0, time.Hour, "test", policy.DNSNames, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := ca.Certificate()
	if !c.PermittedDNSDomainsCritical || !slices.Equal(c.PermittedDNSDomains, policy.DNSNames) || len(c.ExcludedIPRanges) != 2 {
		t.Fatalf("constraints: critical %v, DNS %v, excluded IPs %v", c.PermittedDNSDomainsCritical, c.PermittedDNSDomains, c.ExcludedIPRanges)
	}
	if c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("path length %d (zero %v): want 0, so that the CA signs no CA below it", c.MaxPathLen, c.MaxPathLenZero)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c)
	verify := func(dnsNames []string, ips []net.IP) error {
		issued, err := ca.SignServing(t0, time.Hour, dnsNames, ips)
		if err != nil {
			t.Fatal(err)
		}
		st, err := certs.ParseState(map[string][]byte{"tls.crt": issued.Cert, "tls.key": issued.Key}, nil)
		if err != nil || st.Serving == nil {
			t.Fatal("the issued certificate does not parse", err)
		}
		_, err = st.Serving.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0})
		return err
	}
	if err := verify(policy.DNSNames, nil); err != nil {
		t.Errorf("the Service's names: %v", err)
	}
	for _, other := range [][]string{{"kubernetes.default.svc"}, {"evil-partner-operator-webhook-service"}} {
		if err := verify(other, nil); err == nil || !strings.Contains(err.Error(), "constraint") {
			t.Errorf("%v verified (%v), want a name constraint violation", other, err)
		}
	}
	if err := verify(policy.DNSNames[:1], []net.IP{net.IPv4(10, 0, 0, 1)}); err == nil {
		t.Error("an IP address verified under a CA that permits none")
	}
	withIP, err := certs.NewServingCA(t0, time.Hour, "test", policy.DNSNames, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if r := withIP.Certificate().PermittedIPRanges; len(r) != 1 || r[0].String() != "127.0.0.1/32" {
		t.Errorf("permitted IP ranges %v, want 127.0.0.1/32 alone", r)
	}
}

// A CA constrained to the old names cannot sign the new ones: a changed
// Service name prepares a rotation, and the certificate keeps its names
// until it is committed.
func TestRenamedServicePreparesARotation(t *testing.T) {
	st, _ := settle(t, certs.State{}, t0)
	renamed := policy
	renamed.DNSNames = []string{"webhooks.partner-operator-system.svc"}
	d := certs.Decide(st, t0.Add(time.Hour), renamed)
	if !d.PrepareNext || !d.Notes[0].Warning {
		t.Fatalf("%+v: want a rotation prepared, with a warning", d)
	}
}
