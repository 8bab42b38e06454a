package deploy

import (
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// With cert-manager, the serving certificate is signed by a long-lived CA
// of its own (selfSigned Issuer → CA Certificate → CA Issuer → serving
// certificate), so that renewing the serving certificate never changes what
// the apiserver trusts: the caBundle cert-manager injects and the CA the
// authorization webhook's kubeconfig holds on the control-plane hosts.
func TestCertManagerServingCertificateChainsToALongLivedCA(t *testing.T) {
	byName := map[string]*unstructured.Unstructured{}
	for _, o := range render(t, "config/cert-manager") {
		byName[o.GetKind()+"/"+o.GetName()] = o
	}
	str := func(o *unstructured.Unstructured, path ...string) string {
		s, _, _ := unstructured.NestedString(o.Object, path...)
		return s
	}
	duration := func(o *unstructured.Unstructured, field string) time.Duration {
		d, err := time.ParseDuration(str(o, "spec", field))
		if err != nil {
			t.Fatalf("%s spec.%s: %v", o.GetName(), field, err)
		}
		return d
	}
	serving := byName["Certificate/partner-operator-serving-cert"]
	if serving == nil {
		t.Fatal("no serving Certificate partner-operator-serving-cert")
	}
	if str(serving, "spec", "secretName") != "partner-operator-webhook-server-cert" {
		t.Errorf("the serving certificate goes to %s, not the Secret the manager mounts", str(serving, "spec", "secretName"))
	}
	issuer := byName["Issuer/"+str(serving, "spec", "issuerRef", "name")]
	if issuer == nil {
		t.Fatalf("the serving certificate's issuer %s is not rendered", str(serving, "spec", "issuerRef", "name"))
	}
	caSecret := str(issuer, "spec", "ca", "secretName")
	if caSecret == "" {
		t.Fatalf("the serving certificate's issuer %s is not a CA Issuer: %v", issuer.GetName(), issuer.Object["spec"])
	}
	var ca *unstructured.Unstructured
	for name, o := range byName {
		if o.GetKind() == "Certificate" && str(o, "spec", "secretName") == caSecret {
			ca = byName[name]
		}
	}
	if ca == nil {
		t.Fatalf("no Certificate writes the CA Secret %s", caSecret)
	}
	if isCA, _, _ := unstructured.NestedBool(ca.Object, "spec", "isCA"); !isCA {
		t.Errorf("%s is not a CA certificate (isCA)", ca.GetName())
	}
	if root := byName["Issuer/"+str(ca, "spec", "issuerRef", "name")]; root == nil || root.Object["spec"].(map[string]any)["selfSigned"] == nil {
		t.Errorf("the CA %s is not issued by a selfSigned Issuer", ca.GetName())
	}
	if d := duration(ca, "duration"); d < 5*365*24*time.Hour {
		t.Errorf("the CA lives %s, want years", d)
	}
	if d, renew := duration(serving, "duration"), duration(serving, "renewBefore"); d > 90*24*time.Hour || renew <= 0 || renew >= d {
		t.Errorf("the serving certificate lives %s renewed %s before: want at most 90 days, renewed before expiry", d, renew)
	}
	if p := str(ca, "spec", "privateKey", "rotationPolicy"); p != "Never" {
		t.Errorf("the CA's privateKey.rotationPolicy is %q: want Never, so that cert-manager's renewal of the CA keeps the key the apiserver trusts", p)
	}
	if critical, _, _ := unstructured.NestedBool(ca.Object, "spec", "nameConstraints", "critical"); !critical {
		t.Error("the CA's name constraints are missing or not critical")
	}
	permitted, _, _ := unstructured.NestedStringSlice(ca.Object, "spec", "nameConstraints", "permitted", "dnsDomains")
	names, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
	for _, n := range names {
		if !slices.Contains(permitted, n) {
			t.Errorf("the serving certificate's name %s is outside the CA's name constraints %v", n, permitted)
		}
	}
	// The client CA of the apiserver's certificate stays a CA of its own.
	if client := byName["Certificate/partner-operator-webhook-client-ca"]; client == nil || str(client, "spec", "secretName") == caSecret {
		t.Error("the apiserver's client certificate must keep a CA of its own, apart from the serving CA")
	}
}
