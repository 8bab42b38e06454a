// Package deploy checks the install manifests as kustomize renders them:
// what a platform team applies with `make deploy`.
package deploy

import (
	"bytes"
	"slices"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/roompro/partner-operator/internal/controlplane"
)

// render runs `kubectl kustomize dir` with the kubectl of hack/setup-envtest.sh.
func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	out, err := controlplane.Kustomize(dir)
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := decoder.Decode(&obj.Object); err != nil {
			break
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
	return objs
}

func convert[T any](t *testing.T, obj *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDefaultRendersTheOperator(t *testing.T) {
	objs := render(t, "config/default")
	kinds := map[string]int{}
	services := map[string]bool{}
	for _, o := range objs {
		kinds[o.GetKind()]++
		if o.GetKind() == "Service" {
			services[o.GetNamespace()+"/"+o.GetName()] = true
		}
	}
	for kind, want := range map[string]int{
		"CustomResourceDefinition": 6, "Deployment": 1, "ServiceAccount": 1, "Namespace": 1,
		"MutatingWebhookConfiguration": 1, "ValidatingWebhookConfiguration": 1, "Service": 2,
	} {
		if kinds[kind] != want {
			t.Errorf("%d %s, want %d", kinds[kind], kind, want)
		}
	}

	for _, o := range objs {
		switch o.GetKind() {
		case "MutatingWebhookConfiguration":
			for _, w := range convert[admissionregistrationv1.MutatingWebhookConfiguration](t, o).Webhooks {
				checkWebhook(t, w.Name, w.ClientConfig, w.FailurePolicy, services)
			}
		case "ValidatingWebhookConfiguration":
			for _, w := range convert[admissionregistrationv1.ValidatingWebhookConfiguration](t, o).Webhooks {
				checkWebhook(t, w.Name, w.ClientConfig, w.FailurePolicy, services)
			}
		case "ClusterRole", "Role":
			for _, rule := range convert[rbacv1.ClusterRole](t, o).Rules {
				if slices.Contains(rule.Verbs, "*") || slices.Contains(rule.Resources, "*") || slices.Contains(rule.APIGroups, "*") {
					t.Errorf("%s %s has a wildcard rule: %+v", o.GetKind(), o.GetName(), rule)
				}
			}
		case "Deployment":
			d := convert[appsv1.Deployment](t, o)
			pod := d.Spec.Template.Spec
			if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
				t.Error("the manager must run as non-root")
			}
			c := pod.Containers[0]
			if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
				t.Error("the manager's root filesystem must be read-only")
			}
			if c.LivenessProbe == nil || c.ReadinessProbe == nil || c.Resources.Requests.Cpu().IsZero() {
				t.Error("the manager needs probes and resource requests")
			}
			if !slices.Contains(c.Args, "--leader-elect") {
				t.Error("the manager must run with leader election")
			}
		}
	}
}

func checkWebhook(t *testing.T, name string, cc admissionregistrationv1.WebhookClientConfig, policy *admissionregistrationv1.FailurePolicyType, services map[string]bool) {
	t.Helper()
	if cc.Service == nil || !services[cc.Service.Namespace+"/"+cc.Service.Name] {
		t.Errorf("webhook %s does not point at a rendered Service: %+v", name, cc.Service)
	}
	if policy == nil || *policy != admissionregistrationv1.Fail {
		t.Errorf("webhook %s: failurePolicy must be Fail", name)
	}
}

func TestCustomerRoles(t *testing.T) {
	roles := map[string]*rbacv1.ClusterRole{}
	for _, o := range render(t, "config/customer-roles") {
		roles[o.GetName()] = convert[rbacv1.ClusterRole](t, o)
	}
	allows := func(role, resource, verb string) bool {
		for _, rule := range roles[role].Rules {
			if slices.Contains(rule.Resources, resource) && slices.Contains(rule.Verbs, verb) {
				return true
			}
		}
		return false
	}
	// A few cells of the matrix each way, including every column's limits.
	cases := []struct {
		role, resource, verb string
		want                 bool
	}{
		{"pro-manager", "rooms/resetkey", "create", true},
		{"site-lead", "rooms/resetkey", "create", false},
		{"site-lead", "rooms", "create", true},
		{"site-tech", "rooms", "create", false},
		{"site-tech", "rooms/key", "get", true},
		{"site-tech", "roomgroups", "get", false},
		{"site-lead", "settings", "get", false},
		{"pro-manager", "settings", "patch", true},
		{"site-lead", "partnerroles", "get", false},
		{"pro-manager", "partnerinvitations", "create", true},
		{"partners-view", "partnerlinks", "list", true},
		{"partners-edit", "partnerlinks", "create", false},
	}
	for _, tc := range cases {
		if roles[tc.role] == nil {
			t.Fatalf("no ClusterRole %s", tc.role)
		}
		if got := allows(tc.role, tc.resource, tc.verb); got != tc.want {
			t.Errorf("%s %s %s = %v, want %v", tc.role, tc.verb, tc.resource, got, tc.want)
		}
	}
	for name, role := range roles {
		for _, rule := range role.Rules {
			if slices.Contains(rule.Verbs, "*") || slices.Contains(rule.Resources, "*") {
				t.Errorf("%s has a wildcard rule", name)
			}
		}
	}
}
