package certs_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/roompro/partner-operator/internal/certs"
	"github.com/roompro/partner-operator/internal/controlplane"
)

const operatorNS = "partner-operator-system"

// The provisioner against a real apiserver: the Secret and the webhook
// configurations are what a cluster would hold. Each subtest has a Secret
// and two configurations of its own.
func TestProvisionerAgainstTheAPIServer(t *testing.T) {
	cp, err := controlplane.Start(controlplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.NewWithWatch(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNS}}); err != nil {
		t.Fatal(err)
	}
	t.Run("renewal keeps the CA, rotation overlaps", func(t *testing.T) { testRenewalAndRotation(t, c) })
	t.Run("the serving certificate waits for every caBundle", func(t *testing.T) { testServingWaitsForEveryCABundle(t, c) })
	t.Run("upgrade from a CA per renewal", func(t *testing.T) { testUpgrade(t, c) })
}

// newProvisioner creates the webhook configurations of name (two webhooks
// each) and a provisioner for them with its own Secret and directory.
func newProvisioner(t *testing.T, c client.Client, name string) (*certs.Provisioner, *clocktesting.FakeClock) {
	t.Helper()
	ctx := context.Background()
	path, none := "/validate", admissionregistrationv1.SideEffectClassNone
	hook := admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
		Namespace: operatorNS, Name: "partner-operator-webhook-service", Path: &path}}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name + "-validating"}}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name + "-mutating"}}
	for _, w := range []string{"a.partners.roompro.io", "b.partners.roompro.io"} {
		v.Webhooks = append(v.Webhooks, admissionregistrationv1.ValidatingWebhook{Name: w, ClientConfig: hook, SideEffects: &none, AdmissionReviewVersions: []string{"v1"}})
		m.Webhooks = append(m.Webhooks, admissionregistrationv1.MutatingWebhook{Name: w, ClientConfig: hook, SideEffects: &none, AdmissionReviewVersions: []string{"v1"}})
	}
	for _, obj := range []client.Object{v, m} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	clk := clocktesting.NewFakeClock(time.Now())
	return &certs.Provisioner{
		Client: c, Clock: clk, Namespace: operatorNS, SecretName: name,
		DNSNames: []string{"partner-operator-webhook-service.partner-operator-system.svc", "partner-operator-webhook-service"},
		CertDir:  t.TempDir(), MutatingWebhookConfiguration: m.Name, ValidatingWebhookConfiguration: v.Name,
		Validity: 30 * 24 * time.Hour, CAValidity: 365 * 24 * time.Hour, RetiredTrust: 10 * time.Minute,
	}, clk
}

func ensure(t *testing.T, p *certs.Provisioner) {
	t.Helper()
	if _, err := p.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func testRenewalAndRotation(t *testing.T, c client.Client) {
	ctx := context.Background()
	p, clk := newProvisioner(t, c, "rotation")
	renewAt, err := p.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := servingCert(t, p.CertDir)
	caA := onlyCA(t, bundles(t, c, p))
	verify(t, c, p, first, true)
	if want := first.NotBefore.Add(first.NotAfter.Sub(first.NotBefore) * 2 / 3); !renewAt.Equal(want) {
		t.Errorf("renewAt = %v, want two thirds into the validity, %v", renewAt, want)
	}
	if !caA.PermittedDNSDomainsCritical || len(caA.PermittedDNSDomains) != len(p.DNSNames) {
		t.Errorf("the CA is not constrained to the Service's names: %v", caA.PermittedDNSDomains)
	}

	// Before the renewal time nothing changes.
	clk.SetTime(renewAt.Add(-time.Minute))
	ensure(t, p)
	if again := servingCert(t, p.CertDir); !again.Equal(first) {
		t.Fatal("renewed before the renewal time")
	}

	// At the renewal time a new certificate of the same CA: the webhook
	// configurations are not even written.
	before := configVersions(t, c, p)
	clk.SetTime(renewAt)
	ensure(t, p)
	second := servingCert(t, p.CertDir)
	if second.Equal(first) {
		t.Fatal("the certificate was not renewed at the renewal time")
	}
	if second.CheckSignatureFrom(caA) != nil {
		t.Fatal("the renewed certificate is not signed by the CA of before")
	}
	if after := configVersions(t, c, p); after != before {
		t.Errorf("renewal wrote the webhook configurations (resourceVersions %s, then %s)", before, after)
	}

	// Prepare: the next CA is trusted beside the old one, nothing switches.
	annotate(t, c, p, certs.RotationPrepare)
	ensure(t, p)
	secret := getSecret(t, c, p)
	if _, ok := secret.Annotations[certs.RotationAnnotation]; ok {
		t.Error("the request annotation stayed after it was acted on")
	}
	cas := bundleCAs(t, secret.Data[certs.KeyTrustBundle])
	if len(cas) != 2 {
		t.Fatalf("ca.crt after prepare holds %d CAs, want the old and the next", len(cas))
	}
	caB := cas[1]
	if !cas[0].Equal(caA) {
		caB = cas[0]
	}
	for name, bundle := range bundles(t, c, p) {
		if !certs.BundleCarries(bundle, caA) || !certs.BundleCarries(bundle, caB) {
			t.Errorf("the caBundle of %s does not carry both CAs", name)
		}
	}
	if !servingCert(t, p.CertDir).Equal(second) {
		t.Fatal("prepare switched the serving certificate")
	}

	// Commit: the serving certificate is from the new CA, both still trusted.
	clk.Step(time.Hour)
	annotate(t, c, p, certs.RotationCommit)
	ensure(t, p)
	third := servingCert(t, p.CertDir)
	if third.CheckSignatureFrom(caB) != nil {
		t.Fatal("after commit the serving certificate is not signed by the new CA")
	}
	verify(t, c, p, third, true)
	verify(t, c, p, second, true) // replicas still serving the old one are trusted

	// After the overlap the old CA is dropped everywhere.
	clk.Step(p.RetiredTrust)
	ensure(t, p)
	if got := onlyCA(t, bundles(t, c, p)); !got.Equal(caB) {
		t.Error("after the overlap the caBundle is not the new CA alone")
	}
	verify(t, c, p, third, true)
	verify(t, c, p, second, false)
}

// A webhook configuration that cannot be patched (here: a patch the
// apiserver refuses) holds back every serving certificate whose CA it does
// not carry: at install, and at a commit.
func testServingWaitsForEveryCABundle(t *testing.T, c client.WithWatch) {
	ctx := context.Background()
	p, clk := newProvisioner(t, c, "gated")
	good := p.Client
	refused := errors.New("patch refused")
	p.Client = interceptor.NewClient(c, interceptor.Funcs{Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
		if obj.GetName() == p.ValidatingWebhookConfiguration {
			return refused
		}
		return c.Patch(ctx, obj, patch, opts...)
	}})

	if _, err := p.Ensure(ctx); !errors.Is(err, refused) {
		t.Fatalf("install with a configuration that refuses the patch: %v, want the refusal", err)
	}
	if s := getSecret(t, c, p); len(s.Data["tls.crt"]) != 0 {
		t.Fatal("a serving certificate was stored before the validating configuration carried its CA")
	}
	if _, err := os.Stat(filepath.Join(p.CertDir, "tls.crt")); err == nil {
		t.Fatal("a serving certificate was written before the validating configuration carried its CA")
	}
	p.Client = good
	ensure(t, p)
	served := servingCert(t, p.CertDir)
	verify(t, c, p, served, true)

	// A rotation whose next CA one configuration never took: the commit
	// waits, however often it is asked.
	p.Client = interceptor.NewClient(c, interceptor.Funcs{Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
		if obj.GetName() == p.ValidatingWebhookConfiguration {
			return refused
		}
		return c.Patch(ctx, obj, patch, opts...)
	}})
	annotate(t, c, p, certs.RotationPrepare)
	if _, err := p.Ensure(ctx); !errors.Is(err, refused) {
		t.Fatalf("prepare with a configuration that refuses the patch: %v, want the refusal", err)
	}
	signing := getSecret(t, c, p).Data["signing-ca.crt"]
	annotate(t, c, p, certs.RotationCommit)
	clk.Step(time.Hour)
	for range 3 {
		_, err := p.Ensure(ctx)
		if err == nil {
			t.Fatal("committed while the validating configuration lacks the new CA")
		}
	}
	s := getSecret(t, c, p)
	if string(s.Data["signing-ca.crt"]) != string(signing) || s.Annotations[certs.RotationAnnotation] != certs.RotationCommit {
		t.Fatal("the rotation was committed while a caBundle lacks the new CA")
	}
	if !servingCert(t, p.CertDir).Equal(served) {
		t.Fatal("the serving certificate changed while a caBundle lacks the new CA")
	}
	p.Client = good
	ensure(t, p)
	after := servingCert(t, p.CertDir)
	if after.Equal(served) {
		t.Fatal("the commit did not happen once every caBundle carried the new CA")
	}
	verify(t, c, p, after, true)
}

// An install of the release that made a CA per renewal: its Secret holds
// those CAs and no CA key. The upgrade keeps them trusted and the
// certificate they signed served until it is due, then moves to the
// long-lived CA without the apiserver ever seeing a CA it does not trust.
func testUpgrade(t *testing.T, c client.Client) {
	ctx := context.Background()
	p, clk := newProvisioner(t, c, "legacy")
	old, err := certs.Issue(clk.Now(), p.Validity, p.DNSNames, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNS, Name: p.SecretName}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"ca.crt": old.CA, "tls.crt": old.Cert, "tls.key": old.Key}}); err != nil {
		t.Fatal(err)
	}
	oldCA := bundleCAs(t, old.CA)[0]
	ensure(t, p)
	served := servingCert(t, p.CertDir)
	if served.CheckSignatureFrom(oldCA) != nil {
		t.Fatal("the upgrade replaced the certificate of the CA the apiserver trusts")
	}
	for name, bundle := range bundles(t, c, p) {
		if cas := bundleCAs(t, bundle); len(cas) != 2 || !certs.BundleCarries(bundle, oldCA) {
			t.Errorf("the caBundle of %s holds %d CAs: want the old one and the long-lived one", name, len(cas))
		}
	}
	clk.SetTime(served.NotBefore.Add(served.NotAfter.Sub(served.NotBefore) * 2 / 3))
	ensure(t, p)
	renewed := servingCert(t, p.CertDir)
	if renewed.CheckSignatureFrom(oldCA) == nil {
		t.Fatal("the renewal is still signed by a per-renewal CA")
	}
	verify(t, c, p, renewed, true)
	verify(t, c, p, served, true)
	clk.Step(p.RetiredTrust)
	ensure(t, p)
	verify(t, c, p, served, false)
	long := onlyCA(t, bundles(t, c, p))
	clk.SetTime(renewed.NotBefore.Add(renewed.NotAfter.Sub(renewed.NotBefore) * 2 / 3))
	ensure(t, p)
	if next := servingCert(t, p.CertDir); next.Equal(renewed) || next.CheckSignatureFrom(long) != nil {
		t.Error("the next renewal is not from the same long-lived CA")
	}
}

func servingCert(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("tls.crt holds no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tls.key")); err != nil {
		t.Fatal(err)
	}
	return cert
}

func getSecret(t *testing.T, c client.Client, p *certs.Provisioner) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: p.Namespace, Name: p.SecretName}, s); err != nil {
		t.Fatal(err)
	}
	return s
}

// annotate asks for a rotation step, as an admin does with kubectl annotate.
func annotate(t *testing.T, c client.Client, p *certs.Provisioner, step string) {
	t.Helper()
	s := getSecret(t, c, p)
	patch := client.MergeFrom(s.DeepCopy())
	s.Annotations = map[string]string{certs.RotationAnnotation: step}
	if err := c.Patch(context.Background(), s, patch); err != nil {
		t.Fatal(err)
	}
}

// bundles is the caBundle of every webhook of p's two configurations.
func bundles(t *testing.T, c client.Client, p *certs.Provisioner) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: p.ValidatingWebhookConfiguration}, v); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: p.MutatingWebhookConfiguration}, m); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, w := range v.Webhooks {
		out["validating/"+w.Name] = w.ClientConfig.CABundle
	}
	for _, w := range m.Webhooks {
		out["mutating/"+w.Name] = w.ClientConfig.CABundle
	}
	return out
}

func configVersions(t *testing.T, c client.Client, p *certs.Provisioner) string {
	t.Helper()
	ctx := context.Background()
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: p.ValidatingWebhookConfiguration}, v); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: p.MutatingWebhookConfiguration}, m); err != nil {
		t.Fatal(err)
	}
	return v.ResourceVersion + "," + m.ResourceVersion
}

func bundleCAs(t *testing.T, bundle []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		if block, bundle = pem.Decode(bundle); block == nil {
			return out
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// onlyCA is the one CA every caBundle holds.
func onlyCA(t *testing.T, bundles map[string][]byte) *x509.Certificate {
	t.Helper()
	var ca *x509.Certificate
	for name, bundle := range bundles {
		cas := bundleCAs(t, bundle)
		if len(cas) != 1 || (ca != nil && !ca.Equal(cas[0])) {
			t.Fatalf("the caBundle of %s holds %d CAs, want the same one as every other webhook", name, len(cas))
		}
		ca = cas[0]
	}
	return ca
}

// verify checks that every caBundle validates cert for the Service's name
// (want), or that none does.
func verify(t *testing.T, c client.Client, p *certs.Provisioner, cert *x509.Certificate, want bool) {
	t.Helper()
	for name, bundle := range bundles(t, c, p) {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(bundle) {
			t.Fatalf("%s caBundle holds no certificate", name)
		}
		_, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: p.DNSNames[0], CurrentTime: cert.NotBefore.Add(time.Hour)})
		if want && err != nil {
			t.Errorf("the caBundle of %s does not validate the serving certificate: %v", name, err)
		}
		if !want && (err == nil || !strings.Contains(err.Error(), "unknown authority")) {
			t.Errorf("the caBundle of %s validates a certificate of a dropped CA (%v)", name, err)
		}
	}
}
