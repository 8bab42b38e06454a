package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/testenv"
)

// TestUndeployKeepsCustomerData runs the Makefile's targets against the local
// control plane: make deploy, customer objects of every kind, make undeploy.
// The manager and its webhook configurations are gone; every CRD, every
// customer object and the operator's namespace stay. make uninstall without
// DELETE_CUSTOMER_DATA=yes refuses and deletes nothing.
//
// The apiserver runs without its webhook admission plugins: the deployed
// webhook configurations point at a Service with no pod behind it (the
// other suites serve the same configurations).
func TestUndeployKeepsCustomerData(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make deploy and make undeploy need make: %v", err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cp, _ := testenv.StartControlPlane(t, controlplane.Options{
		CRDDir:               t.TempDir(), // none: make deploy installs them
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
	var crds []string
	for _, o := range render(t, "config/crd") {
		crds = append(crds, o.GetName())
	}
	var namespace string
	for _, o := range render(t, "config/default") {
		if o.GetKind() == "Namespace" {
			namespace = o.GetName()
		}
	}

	runMake(t, kubeconfig, "deploy")
	for _, name := range crds {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := admin.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("the CRD %s is not established after make deploy: %v", name, err)
		}
	}
	data, err := testenv.CreateCustomerData(ctx, admin, "fourth-coffee", "tailspin")
	if err != nil {
		t.Fatal(err)
	}

	runMake(t, kubeconfig, "undeploy")
	deployment := client.ObjectKey{Namespace: namespace, Name: "partner-operator-controller-manager"}
	if err := admin.Get(ctx, deployment, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("after make undeploy, reading the manager's Deployment: %v, want it gone", err)
	}
	out, err := makeTarget(kubeconfig, "uninstall")
	if err == nil {
		t.Errorf("make uninstall without DELETE_CUSTOMER_DATA=yes succeeded:\n%s", out)
	} else if !strings.Contains(out, "DELETE_CUSTOMER_DATA=yes") {
		t.Errorf("make uninstall refused without saying how to confirm:\n%s", out)
	}

	for _, name := range crds {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := admin.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
			t.Errorf("the CRD %s: %v", name, err)
		} else if crd.DeletionTimestamp != nil {
			t.Errorf("the CRD %s is being deleted", name)
		}
	}
	lost, err := testenv.CustomerDataLost(ctx, admin, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lost {
		t.Error(l)
	}
	ns := &corev1.Namespace{}
	if err := admin.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("after make undeploy the namespace %s is not kept (error %v, deletion %v)", namespace, err, ns.DeletionTimestamp)
	}
}

// runMake runs a target of the Makefile against kubeconfig.
func runMake(t *testing.T, kubeconfig, target string) {
	t.Helper()
	if out, err := makeTarget(kubeconfig, target); err != nil {
		t.Fatalf("make %s: %v\n%s", target, err, out)
	}
}

func makeTarget(kubeconfig, target string) (string, error) {
	root, err := controlplane.RepositoryRoot()
	if err != nil {
		return "", err
	}
	// kubectl delete waits for what it deletes: a CRD whose PartnerLinks
	// hold the operator's finalizer never goes, once the operator is gone.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", root, target, "KUBECONFIG="+kubeconfig)
	// On the deadline, make and the kubectl it runs go: a process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Not the flags of a make that runs this test (make test -n, -j).
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); name != "MAKEFLAGS" && name != "MFLAGS" && name != "MAKELEVEL" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("make %s did not finish within 2 minutes: %w", target, ctx.Err())
	}
	return string(out), err
}
