// Package helm lints, renders, installs, upgrades and uninstalls the chart
// dist/chart with real Helm: the helm of helm.sh/helm/v4 at the version
// pinned in hack/tools/helm/go.mod, built by hack/setup-helm.sh (make
// setup-helm, which make test runs), against the local control plane.
package helm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/testenv"
)

// helmCLI runs the pinned helm with a home of its own (no user's cache,
// config or repositories) against one kubeconfig.
type helmCLI struct {
	bin        string
	kubeconfig string
	env        []string
}

func newHelm(t *testing.T, kubeconfig string) *helmCLI {
	t.Helper()
	root := repositoryRoot(t)
	bin := os.Getenv("HELM")
	if bin == "" {
		data, err := os.ReadFile(filepath.Join(root, "hack", "tools", "helm", "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^\s*helm\.sh/helm/v4 (v\S+)`).FindSubmatch(data)
		if m == nil {
			t.Fatal("hack/tools/helm/go.mod pins no helm.sh/helm/v4")
		}
		bin = filepath.Join(root, "bin", "helm", string(m[1]), "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("helm not found: run hack/setup-helm.sh (make setup-helm) to build it: %v", err)
	}
	home := t.TempDir()
	env := append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+kubeconfig,
	)
	return &helmCLI{bin: bin, kubeconfig: kubeconfig, env: env}
}

// try runs helm and returns its standard output, or an error with its
// standard error.
func (h *helmCLI) try(args ...string) (string, error) {
	cmd := exec.Command(h.bin, args...)
	cmd.Env = h.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func (h *helmCLI) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := h.try(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func repositoryRoot(t *testing.T) string {
	t.Helper()
	root, err := controlplane.RepositoryRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func chartDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(repositoryRoot(t), "dist", "chart")
}

var certificateModes = []string{"self-signed", "cert-manager"}

func TestChartLints(t *testing.T) {
	h := newHelm(t, os.DevNull)
	for _, mode := range certificateModes {
		t.Run(mode, func(t *testing.T) {
			h.run(t, "lint", "--strict", chartDir(t), "--set", "certificates.mode="+mode)
		})
	}
}

// TestTheChartInstallsIntoItsReleaseNamespace: what config/default has, the
// chart has, in any namespace: the Namespace with its Pod Security label,
// and every object and reference in it; and its CRDs and Namespace are
// kept by Helm and Argo CD.
func TestTheChartInstallsIntoItsReleaseNamespace(t *testing.T) {
	h := newHelm(t, os.DevNull)
	want := kustomizeNamespace(t)
	for _, mode := range certificateModes {
		t.Run(mode, func(t *testing.T) {
			const ns = "rooms-operator"
			out := h.run(t, "template", "partner-operator", chartDir(t), "-n", ns, "--set", "certificates.mode="+mode)
			if strings.Contains(out, want.GetName()) {
				t.Errorf("installed into %s, the chart still names %s:\n%s", ns, want.GetName(), linesWith(out, want.GetName()))
			}
			var namespaces []*unstructured.Unstructured
			crds := 0
			for _, o := range decode(t, out) {
				if got := o.GetNamespace(); got != "" && got != ns {
					t.Errorf("%s %s is in namespace %s, not the release's %s", o.GetKind(), o.GetName(), got, ns)
				}
				switch o.GetKind() {
				case "Namespace":
					namespaces = append(namespaces, o)
				case "CustomResourceDefinition":
					crds++
					checkKept(t, o)
				}
			}
			if crds == 0 {
				t.Error("the chart has no CRDs")
			}
			if len(namespaces) != 1 || namespaces[0].GetName() != ns {
				t.Fatalf("the chart renders the Namespaces %v, want the release's %s alone", names(namespaces), ns)
			}
			for k, v := range want.GetLabels() {
				if got := namespaces[0].GetLabels()[k]; got != v {
					t.Errorf("the chart's Namespace has label %s=%q, config/default's %q", k, got, v)
				}
			}
			if namespaces[0].GetLabels()["pod-security.kubernetes.io/enforce"] != "restricted" {
				t.Errorf("the chart's Namespace does not enforce the Pod Security level restricted: %v", namespaces[0].GetLabels())
			}
			checkKept(t, namespaces[0])
		})
	}
}

// checkKept: Helm keeps the object on uninstall, Argo CD neither prunes nor
// deletes it.
func checkKept(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	a := o.GetAnnotations()
	if a["helm.sh/resource-policy"] != "keep" {
		t.Errorf("%s %s lacks helm.sh/resource-policy: keep", o.GetKind(), o.GetName())
	}
	opts := strings.Split(a["argocd.argoproj.io/sync-options"], ",")
	if !slices.Contains(opts, "Prune=false") || !slices.Contains(opts, "Delete=false") {
		t.Errorf("%s %s: argocd.argoproj.io/sync-options %q, want Prune=false,Delete=false", o.GetKind(), o.GetName(), a["argocd.argoproj.io/sync-options"])
	}
}

// TestUninstallKeepsTheCRDsAndEveryCustomerObject installs an earlier
// chart (no Namespace in it, as before this release, so installed with
// --create-namespace; its Room CRD older), writes customer objects of every
// kind in two tenants, adopts the namespace as docs/upgrade.md says and
// upgrades to dist/chart (which upgrades the CRDs too: the reason they are
// templates, not crds/, which Helm never upgrades), uninstalls, and finds
// every CRD and every object as it was, the namespace kept, and the operator
// itself gone. A second install takes the kept CRDs and namespace back.
//
// The chart's admission webhooks have no pod behind their Service on a
// control plane without nodes, and with failurePolicy Fail would refuse
// every write: the apiserver runs without its webhook admission plugins
// (the other suites serve the same configurations, config/webhook), so the
// CRDs' own validation admits the objects.
func TestUninstallKeepsTheCRDsAndEveryCustomerObject(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cp, _ := testenv.StartControlPlane(t, controlplane.Options{
		CRDDir:               t.TempDir(), // none: the chart installs them
		AdmissionWebhooksOff: true,
		KubeconfigPath:       kubeconfig,
	})
	scheme := testenv.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	h := newHelm(t, kubeconfig)
	const release, ns = "partner-operator", "rooms-operator"
	chart := chartDir(t)

	h.run(t, "install", release, previousChart(t, chart), "-n", ns, "--create-namespace", "--timeout", "2m")
	crds := chartCRDs(t, h, chart)
	waitEstablished(ctx, t, admin, crds)
	data, err := testenv.CreateCustomerData(ctx, admin, "fourth-coffee", "tailspin")
	if err != nil {
		t.Fatal(err)
	}
	checkEveryKind(t, crds, data)

	// docs/upgrade.md: the release's namespace joins the release.
	kubectl(t, kubeconfig, "label", "namespace", ns, "app.kubernetes.io/managed-by=Helm")
	kubectl(t, kubeconfig, "annotate", "namespace", ns, "meta.helm.sh/release-name="+release, "meta.helm.sh/release-namespace="+ns)
	h.run(t, "upgrade", release, chart, "-n", ns, "--set", "replicas=1", "--timeout", "2m")
	deployment := &appsv1.Deployment{}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "partner-operator-controller-manager"}, deployment); err != nil {
		t.Fatal(err)
	}
	if r := deployment.Spec.Replicas; r == nil || *r != 1 {
		t.Errorf("after helm upgrade --set replicas=1 the Deployment has %v replicas", r)
	}
	rooms := &apiextensionsv1.CustomResourceDefinition{}
	if err := admin.Get(ctx, client.ObjectKey{Name: "rooms.partners.roompro.io"}, rooms); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rooms.Spec.Names.Categories, "roompro") {
		t.Errorf("helm upgrade did not upgrade the Room CRD: categories %v", rooms.Spec.Names.Categories)
	}
	checkNamespace(ctx, t, admin, ns, "after helm upgrade")

	h.run(t, "uninstall", release, "-n", ns, "--timeout", "2m")
	if _, err := h.try("status", release, "-n", ns); err == nil {
		t.Error("helm status still finds the release after helm uninstall")
	}
	err = admin.Get(ctx, client.ObjectKeyFromObject(deployment), &appsv1.Deployment{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("after helm uninstall, reading the operator's Deployment: %v, want it gone", err)
	}
	checkCRDsKept(ctx, t, admin, crds)
	checkDataKept(ctx, t, admin, data)
	checkNamespace(ctx, t, admin, ns, "after helm uninstall")

	// Installed again, the release takes back what it kept.
	h.run(t, "install", release, chart, "-n", ns, "--timeout", "2m")
	checkCRDsKept(ctx, t, admin, crds)
	checkDataKept(ctx, t, admin, data)
}

// checkNamespace: the release's namespace is there, enforces the Pod
// Security level restricted, and is not being deleted.
func checkNamespace(ctx context.Context, t *testing.T, c client.Client, name, when string) {
	t.Helper()
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, ns); err != nil {
		t.Errorf("%s, reading the namespace %s: %v", when, name, err)
		return
	}
	if ns.DeletionTimestamp != nil {
		t.Errorf("%s the namespace %s is being deleted", when, name)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("%s the namespace %s does not enforce the Pod Security level restricted: %v", when, name, ns.Labels)
	}
}

// kubectl runs the kubectl of hack/setup-envtest.sh against kubeconfig.
func kubectl(t *testing.T, kubeconfig string, args ...string) {
	t.Helper()
	dir, err := controlplane.BinaryDir()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// previousChart is dist/chart as the release before: without the Namespace
// (left to --create-namespace), and with a Room CRD that lacks the category
// roompro.
func previousChart(t *testing.T, chart string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "partner-operator")
	if err := os.CopyFS(dir, os.DirFS(chart)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "templates", "namespace-release.yaml")); err != nil {
		t.Fatalf("the chart has no templates/namespace-release.yaml: update previousChart: %v", err)
	}
	edit := func(file, from, to string) {
		t.Helper()
		path := filepath.Join(dir, file)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(from)
		if !re.Match(data) {
			t.Fatalf("%s no longer matches %q: update previousChart", file, from)
		}
		if err := os.WriteFile(path, re.ReplaceAll(data, []byte(to)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit("Chart.yaml", `(?m)^version: .*$`, "version: 0.0.1")
	edit(filepath.Join("templates", "customresourcedefinition-rooms.partners.roompro.io.yaml"), `\n    categories:\n    - roompro\n`, "\n")
	return dir
}

// chartCRDs are the names of the chart's CRDs, as Helm renders them.
func chartCRDs(t *testing.T, h *helmCLI, chart string) map[string]string {
	t.Helper()
	crds := map[string]string{} // name: kind
	for _, o := range decode(t, h.run(t, "template", "x", chart)) {
		if o.GetKind() == "CustomResourceDefinition" {
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			crds[o.GetName()] = kind
		}
	}
	if len(crds) == 0 {
		t.Fatal("the chart renders no CRD")
	}
	return crds
}

// checkEveryKind: the customer data has an object of every kind the chart
// defines, so that no kind's loss goes unseen.
func checkEveryKind(t *testing.T, crds map[string]string, data []client.Object) {
	t.Helper()
	have := map[string]bool{}
	for _, o := range data {
		have[strings.TrimPrefix(fmt.Sprintf("%T", o), "*v1alpha1.")] = true
	}
	for _, kind := range crds {
		if !have[kind] {
			t.Errorf("testenv.CreateCustomerData writes no %s: add one", kind)
		}
	}
}

func checkCRDsKept(ctx context.Context, t *testing.T, c client.Client, crds map[string]string) {
	t.Helper()
	for name := range crds {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		switch err := c.Get(ctx, client.ObjectKey{Name: name}, crd); {
		case apierrors.IsNotFound(err):
			t.Errorf("the CRD %s is gone", name)
		case err != nil:
			t.Fatal(err)
		case crd.DeletionTimestamp != nil:
			t.Errorf("the CRD %s is being deleted", name)
		case !established(crd):
			t.Errorf("the CRD %s is not established: %v", name, crd.Status.Conditions)
		}
	}
}

// waitEstablished waits until the apiserver serves every CRD (helm install
// does not wait for it).
func waitEstablished(ctx context.Context, t *testing.T, c client.Client, crds map[string]string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for name := range crds {
		for {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			err := c.Get(ctx, client.ObjectKey{Name: name}, crd)
			if err == nil && established(crd) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the CRD %s is not established 30s after helm install (error %v)", name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

// checkDataKept fails the test unless every object is there, as it was.
// (Deleting a CRD deletes its objects in the background, and a link's
// finalizer holds it: checkCRDsKept sees a deleted CRD at once.)
func checkDataKept(ctx context.Context, t *testing.T, c client.Client, data []client.Object) {
	t.Helper()
	lost, err := testenv.CustomerDataLost(ctx, c, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lost {
		t.Error(l)
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d customer objects lost", len(lost), len(data))
	}
}

// kustomizeNamespace is the Namespace of config/default.
func kustomizeNamespace(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	out, err := controlplane.Kustomize("config/default")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range decode(t, string(out)) {
		if o.GetKind() == "Namespace" {
			return o
		}
	}
	t.Fatal("config/default has no Namespace")
	return nil
}

func decode(t *testing.T, stream string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	decoder := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(stream), 4096)
	for {
		o := &unstructured.Unstructured{}
		if err := decoder.Decode(&o.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding a render: %v", err)
		}
		if len(o.Object) > 0 {
			objs = append(objs, o)
		}
	}
	return objs
}

func names(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetName())
	}
	return out
}

func linesWith(text, s string) string {
	var out []string
	for line := range strings.Lines(text) {
		if strings.Contains(line, s) {
			out = append(out, strings.TrimRight(line, "\n"))
		}
	}
	return strings.Join(out, "\n")
}
