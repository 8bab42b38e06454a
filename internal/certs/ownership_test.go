package certs

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCheckSelfSignedMayTakeOver(t *testing.T) {
	secret := func(annotations map[string]string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cert", Annotations: annotations}}
	}
	for _, ok := range []*corev1.Secret{nil, secret(nil), secret(map[string]string{"other": "x"})} {
		if err := CheckSelfSignedMayTakeOver(ok); err != nil {
			t.Errorf("%+v: %v, want no refusal", ok, err)
		}
	}
	err := CheckSelfSignedMayTakeOver(secret(map[string]string{CertManagerCertificateAnnotation: "partner-operator-serving-cert"}))
	if err == nil {
		t.Fatal("a Secret of cert-manager is taken over")
	}
	for _, want := range []string{"ns/cert", `Certificate "partner-operator-serving-cert"`, "config/cert-manager", "docs/upgrade.md"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not say %q", err, want)
		}
	}
}
