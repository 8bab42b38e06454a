package certs_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/internal/certs"
	"github.com/roompro/partner-operator/internal/controlplane"
)

// TestProvisionPatchAndRotate runs against a real apiserver: the Secret and
// the webhook configurations are what a cluster would hold.
func TestProvisionPatchAndRotate(t *testing.T) {
	cp, err := controlplane.Start(controlplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "partner-operator-system"}}); err != nil {
		t.Fatal(err)
	}
	path, none := "/validate", admissionregistrationv1.SideEffectClassNone
	hook := func() admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
			Namespace: "partner-operator-system", Name: "partner-operator-webhook-service", Path: &path}}
	}
	if err := c.Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "partner-operator-validating"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "v.partners.roompro.io", ClientConfig: hook(),
			SideEffects: &none, AdmissionReviewVersions: []string{"v1"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "partner-operator-mutating"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "m.partners.roompro.io", ClientConfig: hook(),
			SideEffects: &none, AdmissionReviewVersions: []string{"v1"}}},
	}); err != nil {
		t.Fatal(err)
	}

	clk := clocktesting.NewFakeClock(time.Now())
	certDir := t.TempDir()
	p := &certs.Provisioner{
		Client: c, Clock: clk, Namespace: "partner-operator-system", SecretName: "webhook-server-cert",
		DNSNames: []string{"partner-operator-webhook-service.partner-operator-system.svc"},
		CertDir:  certDir, MutatingWebhookConfiguration: "partner-operator-mutating",
		ValidatingWebhookConfiguration: "partner-operator-validating",
		Validity:                       30 * 24 * time.Hour,
	}

	renewAt, err := p.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := servingCert(t, certDir)
	verify(t, c, first, p.DNSNames[0])
	if want := first.NotBefore.Add(first.NotAfter.Sub(first.NotBefore) * 2 / 3); !renewAt.Equal(want) {
		t.Errorf("renewAt = %v, want two thirds into the validity, %v", renewAt, want)
	}

	// Before the renewal time nothing changes.
	clk.SetTime(renewAt.Add(-time.Minute))
	if _, err := p.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if again := servingCert(t, certDir); again.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatal("renewed before the renewal time")
	}

	// At the renewal time, before expiry, a new certificate replaces it and
	// the apiserver trusts both CAs while replicas switch.
	clk.SetTime(renewAt)
	if _, err := p.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	second := servingCert(t, certDir)
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("the certificate was not renewed at the renewal time")
	}
	if !clk.Now().Before(first.NotAfter) {
		t.Fatal("test premise: renewal must happen before expiry")
	}
	verify(t, c, second, p.DNSNames[0])
	verify(t, c, first, p.DNSNames[0]) // the old CA stays trusted until it expires
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

// verify checks that both webhook configurations' caBundle validates cert.
func verify(t *testing.T, c client.Client, cert *x509.Certificate, dnsName string) {
	t.Helper()
	ctx := context.Background()
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: "partner-operator-validating"}, v); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "partner-operator-mutating"}, m); err != nil {
		t.Fatal(err)
	}
	for name, bundle := range map[string][]byte{"validating": v.Webhooks[0].ClientConfig.CABundle, "mutating": m.Webhooks[0].ClientConfig.CABundle} {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(bundle) {
			t.Fatalf("%s caBundle holds no certificate", name)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: dnsName, CurrentTime: cert.NotBefore.Add(time.Hour)}); err != nil {
			t.Errorf("%s caBundle does not validate the serving certificate: %v", name, err)
		}
	}
}
