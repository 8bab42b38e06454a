package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestStartWritesKubeconfigInstallsCRDsAndStopCleansUp(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "local", "kubeconfig")
	cp, err := Start(Options{KubeconfigPath: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cp.Stop()
		}
	})

	info, err := os.Stat(kubeconfig)
	if err != nil {
		t.Fatalf("kubeconfig not written: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("kubeconfig mode = %o, want 600: it holds an admin credential", perm)
	}

	// The written kubeconfig, not just cp.Config, must reach the apiserver.
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	crds := &apiextensionsv1.CustomResourceDefinitionList{}
	if err := c.List(context.Background(), crds); err != nil {
		t.Fatal(err)
	}
	var ours int
	for _, crd := range crds.Items {
		if crd.Spec.Group == "partners.roompro.io" {
			ours++
		}
	}
	if ours != 6 {
		t.Errorf("installed %d partners.roompro.io CRDs, want 6", ours)
	}

	stopped = true
	if err := cp.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(kubeconfig); !os.IsNotExist(err) {
		t.Errorf("kubeconfig still present after Stop (err=%v)", err)
	}
}

func TestStartExplainsMissingBinaries(t *testing.T) {
	_, err := Start(Options{BinaryDir: t.TempDir()})
	if err == nil {
		t.Fatal("Start succeeded without binaries")
	}
	if want := "run hack/setup-envtest.sh"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

// A restarted apiserver serves on the same address, under the same CA,
// accepts the client certificates issued before, and finds in etcd what was
// written before.
func TestRestartAPIServerKeepsAddressCertificatesAndData(t *testing.T) {
	cp, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	user, err := cp.AddUser("someone", "system:masters")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(user, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "before-the-restart"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}

	if err := cp.RestartAPIServer(); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(ns), ns); err != nil {
		t.Fatalf("the namespace written before the restart, read with a certificate issued before it: %v", err)
	}
}
