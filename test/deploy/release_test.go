package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/testenv"
)

const imageRepository = "ghcr.io/roompro/partner-operator"

// releaseImage is the image of the release VERSION names.
func releaseImage(t *testing.T) string {
	t.Helper()
	root, err := controlplane.RepositoryRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		t.Fatalf("the release version: %v", err)
	}
	return imageRepository + ":v" + strings.TrimSpace(string(data))
}

// Every install path runs the release that VERSION names, never a moving
// tag: config/default and config/cert-manager, and the chart's default.
func TestTheManifestsRunTheRelease(t *testing.T) {
	want := releaseImage(t)
	for _, overlay := range []string{"config/default", "config/cert-manager"} {
		for _, o := range render(t, overlay) {
			if o.GetKind() == "Deployment" {
				if got := convert[appsv1.Deployment](t, o).Spec.Template.Spec.Containers[0].Image; got != want {
					t.Errorf("%s runs %s, want the release %s (make manifests)", overlay, got, want)
				}
			}
		}
	}
	root, err := controlplane.RepositoryRoot()
	if err != nil {
		t.Fatal(err)
	}
	var chart struct{ AppVersion string }
	var values struct {
		Image struct{ Repository, Tag string }
	}
	for file, into := range map[string]any{"Chart.yaml": &chart, "values.yaml": &values} {
		data, err := os.ReadFile(filepath.Join(root, "dist", "chart", file))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, into); err != nil {
			t.Fatal(err)
		}
	}
	if got := values.Image.Repository + ":" + values.Image.Tag; got != want || imageRepository+":"+chart.AppVersion != want {
		t.Errorf("the chart runs %s (appVersion %s), want the release %s (make helm-chart)", got, chart.AppVersion, want)
	}
}

// `make deploy` deploys the release, or the tag or digest IMG names; over an
// install of config/cert-manager it refuses config/default (which would
// switch the operator to its own certificates) and applies the overlay it is
// told to re-apply.
func TestMakeDeployDeploysTheRelease(t *testing.T) {
	cp, admin := testenv.StartControlPlane(t, controlplane.Options{})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, cp.Kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	deployed := func() *appsv1.Deployment {
		t.Helper()
		d := &appsv1.Deployment{}
		if err := admin.Get(context.Background(), client.ObjectKey{Namespace: "partner-operator-system", Name: "partner-operator-controller-manager"}, d); err != nil {
			t.Fatal(err)
		}
		return d
	}

	if out, err := makeDeploy(kubeconfig); err != nil {
		t.Fatalf("make deploy: %v\n%s", err, out)
	}
	if got, want := deployed().Spec.Template.Spec.Containers[0].Image, releaseImage(t); got != want {
		t.Errorf("make deploy deployed %s, want the release %s", got, want)
	}
	digest := imageRepository + "@sha256:" + strings.Repeat("ab", 32)
	if out, err := makeDeploy(kubeconfig, "IMG="+digest); err != nil {
		t.Fatalf("make deploy IMG=%s: %v\n%s", digest, err, out)
	}
	if got := deployed().Spec.Template.Spec.Containers[0].Image; got != digest {
		t.Errorf("make deploy IMG=%s deployed %s", digest, got)
	}

	// cert-manager's kinds, and the serving Certificate of config/cert-manager.
	for _, kind := range []string{"Certificate", "Issuer"} {
		plural := strings.ToLower(kind) + "s"
		crd := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": plural + ".cert-manager.io"},
			"spec": map[string]any{
				"group": "cert-manager.io", "scope": "Namespaced",
				"names": map[string]any{"kind": kind, "plural": plural, "singular": strings.ToLower(kind)},
				"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true, "schema": map[string]any{
					"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true},
				}}},
			},
		}}
		if err := admin.Create(context.Background(), crd); err != nil {
			t.Fatal(err)
		}
	}
	certificate := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
		"metadata": map[string]any{"name": "partner-operator-serving-cert", "namespace": "partner-operator-system"},
		"spec":     map[string]any{"secretName": "partner-operator-webhook-server-cert"},
	}}
	deadline := time.Now().Add(30 * time.Second)
	for err := admin.Create(context.Background(), certificate); err != nil; err = admin.Create(context.Background(), certificate) {
		if time.Now().After(deadline) {
			t.Fatalf("creating the Certificate: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // until the CRD is served
	}
	out, err := makeDeploy(kubeconfig)
	if err == nil || !strings.Contains(out, "OVERLAY=config/cert-manager") {
		t.Errorf("make deploy of config/default over cert-manager: %v, want a refusal naming OVERLAY=config/cert-manager\n%s", err, out)
	}
	if got := deployed().Spec.Template.Spec.Containers[0].Image; got != digest {
		t.Errorf("the refused make deploy changed the Deployment's image to %s", got)
	}
	if out, err := makeDeploy(kubeconfig, "OVERLAY=config/cert-manager"); err != nil {
		t.Fatalf("make deploy OVERLAY=config/cert-manager: %v\n%s", err, out)
	}
	d := deployed()
	if args := d.Spec.Template.Spec.Containers[0].Args; !strings.Contains(strings.Join(args, " "), "--cert-provisioning=external") {
		t.Errorf("make deploy OVERLAY=config/cert-manager left the manager's args at %v", args)
	}
	if got, want := d.Spec.Template.Spec.Containers[0].Image, releaseImage(t); got != want {
		t.Errorf("make deploy OVERLAY=config/cert-manager deployed %s, want the release %s", got, want)
	}
}

// makeDeploy runs `make deploy` in the repository against kubeconfig.
func makeDeploy(kubeconfig string, vars ...string) (string, error) {
	root, err := controlplane.RepositoryRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("make", append([]string{"--no-print-directory", "deploy", "KUBECONFIG=" + kubeconfig}, vars...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("make deploy %s: %w", strings.Join(vars, " "), err)
	}
	return string(out), nil
}
