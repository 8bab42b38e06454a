package managercmd

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/internal/certs"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/operator"
)

// config/default re-applied over an install of config/cert-manager runs the
// manager with --cert-provisioning=self-signed next to cert-manager's
// Secret: the manager refuses to start, names the overlay to re-apply, and
// leaves the Secret as cert-manager wrote it.
func TestASelfSignedManagerLeavesCertManagersSecretAlone(t *testing.T) {
	cp, err := controlplane.Start(controlplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	admin, err := client.New(cp.Config, client.Options{Scheme: operator.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const namespace, name = "partner-operator-system", "partner-operator-webhook-server-cert"
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	// What cert-manager writes for the Certificate of config/cert-manager.
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: map[string]string{
			certs.CertManagerCertificateAnnotation: "partner-operator-serving-cert", "cert-manager.io/issuer-name": "partner-operator-serving-ca-issuer",
		}},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"ca.crt": []byte("cert-manager's CA"), "tls.crt": []byte("cert-manager's certificate"), "tls.key": []byte("its key")},
	}
	if err := admin.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}

	var o Options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o.BindFlags(fs)
	if err := fs.Parse([]string{
		"--cert-provisioning=self-signed", "--namespace=" + namespace, "--webhook-cert-dir=" + t.TempDir(),
		"--insecure-allow-unauthenticated-admission-callers",
	}); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = Run(runCtx, cp.Config, o)
	if err == nil || !strings.Contains(err.Error(), "written by cert-manager") || !strings.Contains(err.Error(), "config/cert-manager") {
		t.Fatalf("Run: %v, want a refusal naming config/cert-manager", err)
	}
	after := &corev1.Secret{}
	if err := admin.Get(ctx, client.ObjectKeyFromObject(secret), after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != secret.ResourceVersion || !bytes.Equal(after.Data["tls.crt"], secret.Data["tls.crt"]) {
		t.Errorf("the manager changed cert-manager's Secret: %+v", after)
	}
}
