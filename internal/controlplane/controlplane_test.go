package controlplane

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
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
	root, err := RepositoryRoot()
	if err != nil {
		t.Fatal(err)
	}
	manifests, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(manifests) == 0 {
		t.Fatalf("no CRD manifests in config/crd/bases: %v", err)
	}
	if ours != len(manifests) {
		t.Errorf("installed %d partners.roompro.io CRDs, want one per manifest of config/crd/bases: %d", ours, len(manifests))
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

func TestControllerManagerDeletesNamespacesCollectsGarbageAndStops(t *testing.T) {
	start := time.Now()
	cp, err := Start(Options{ControllerManager: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("control plane with kube-controller-manager up in %s", time.Since(start).Round(10*time.Millisecond))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cp.Stop()
		}
	})
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}

	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kcm-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the namespace's default ServiceAccount", func() bool {
		_, err := cs.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})

	// The garbage collector deletes what an owner that is gone owned.
	configMaps := cs.CoreV1().ConfigMaps(ns.Name)
	owner, err := configMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := configMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owned", OwnerReferences: []metav1.OwnerReference{{
		APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID,
	}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := configMaps.Delete(ctx, owner.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the garbage collector to delete the owned ConfigMap", func() bool {
		_, err := configMaps.Get(ctx, "owned", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})

	// The namespace controller empties a deleted namespace and removes it.
	if _, err := configMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "content"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted namespace to go", func() bool {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})

	process := cp.controllerManager.cmd.Process
	// A terminal's Ctrl-C signals this process's group: the controller
	// manager is out of it, so that Stop, not the signal, stops it.
	if pgid, err := syscall.Getpgid(process.Pid); err != nil || pgid == syscall.Getpgrp() {
		t.Errorf("kube-controller-manager is in this process's group (pgid %d, err %v): a Ctrl-C of make run would stop it before Stop does", pgid, err)
	}
	stopped = true
	stopStart := time.Now()
	if err := cp.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped in %s", time.Since(stopStart).Round(10*time.Millisecond))
	// Signal 0 reaches only a live process; Stop reaped it, so none is left.
	if err := process.Signal(syscall.Signal(0)); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kube-controller-manager (pid %d) still there after Stop: signal 0 gave %v", process.Pid, err)
	}
}

func TestStartExplainsAMissingControllerManager(t *testing.T) {
	dir := t.TempDir()
	for _, bin := range []string{"etcd", "kube-apiserver"} {
		if err := os.WriteFile(filepath.Join(dir, bin), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Start(Options{BinaryDir: dir, ControllerManager: true})
	if err == nil {
		t.Fatal("Start succeeded without kube-controller-manager")
	}
	for _, want := range []string{"kube-controller-manager not found", "make setup-envtest"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
