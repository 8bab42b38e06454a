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

// Each replica writes its heartbeat Lease (internal/freshness) in its own
// namespace, named after its Pod, which owns it: a namespaced Role bound to
// the manager's ServiceAccount allows exactly that, and the Pod gets its
// name, UID and namespace from the downward API.
func TestTheHeartbeatIsAllowedInTheManagersNamespaceOnly(t *testing.T) {
	const namespace = "partner-operator-system"
	var role *rbacv1.Role
	var bound bool
	var env []string
	for _, o := range render(t, "config/default") {
		switch {
		case o.GetKind() == "Role" && o.GetName() == "partner-operator-manager-role":
			role = convert[rbacv1.Role](t, o)
		case o.GetKind() == "RoleBinding" && o.GetName() == "partner-operator-manager-rolebinding":
			b := convert[rbacv1.RoleBinding](t, o)
			bound = b.Namespace == namespace && b.RoleRef.Kind == "Role" && b.RoleRef.Name == "partner-operator-manager-role" &&
				len(b.Subjects) == 1 && b.Subjects[0].Kind == "ServiceAccount" && b.Subjects[0].Name == "partner-operator-controller-manager" &&
				b.Subjects[0].Namespace == namespace
		case o.GetKind() == "ClusterRole" && o.GetName() == "partner-operator-manager-role":
			for _, rule := range convert[rbacv1.ClusterRole](t, o).Rules {
				if slices.Contains(rule.Resources, "leases") {
					t.Errorf("the manager's ClusterRole grants leases cluster-wide: %+v", rule)
				}
			}
		case o.GetKind() == "Deployment":
			for _, e := range convert[appsv1.Deployment](t, o).Spec.Template.Spec.Containers[0].Env {
				if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
					env = append(env, e.Name+"="+e.ValueFrom.FieldRef.FieldPath)
				}
			}
		}
	}
	if role == nil || role.Namespace != namespace {
		t.Fatalf("no Role partner-operator-manager-role in %s: %+v", namespace, role)
	}
	for _, verb := range []string{"create", "patch", "list", "watch", "delete"} {
		if !slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.APIGroups, "coordination.k8s.io") && slices.Contains(r.Resources, "leases") && slices.Contains(r.Verbs, verb)
		}) {
			t.Errorf("the manager's Role does not allow %s on leases", verb)
		}
	}
	if !bound {
		t.Error("no RoleBinding binds the manager's Role to its ServiceAccount in its namespace")
	}
	for _, want := range []string{"POD_NAMESPACE=metadata.namespace", "POD_NAME=metadata.name", "POD_UID=metadata.uid"} {
		if !slices.Contains(env, want) {
			t.Errorf("the manager's env lacks %s: %v", want, env)
		}
	}
}
