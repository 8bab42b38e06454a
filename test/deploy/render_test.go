// Package deploy checks the install manifests as kustomize renders them:
// what a platform team applies with `make deploy`.
package deploy

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
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
			checkClientCA(t, pod)
		}
	}
	if !grants(t, objs, "partner-operator-manager-role", "authentication.k8s.io", "tokenreviews", "create") ||
		!grants(t, objs, "partner-operator-manager-role", "authorization.k8s.io", "subjectaccessreviews", "create") {
		t.Error("the manager cannot review its webhook callers' tokens (tokenreviews and subjectaccessreviews create)")
	}
}

// checkClientCA: the webhook server authenticates the apiserver with a CA
// file that a volume provides, and does not opt out of it.
func checkClientCA(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	c := pod.Containers[0]
	if slices.Contains(c.Args, "--insecure-allow-unauthenticated-admission-callers") {
		t.Error("the manager lets unauthenticated callers reach the admission webhooks")
	}
	file := argValue(c.Args, "--webhook-client-ca-file")
	if file == "" {
		t.Fatal("the manager has no --webhook-client-ca-file")
	}
	if argValue(c.Args, "--webhook-client-allowed-names") == "" {
		t.Error("the manager names no allowed client certificate")
	}
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(file, m.MountPath+"/") {
			return
		}
	}
	t.Errorf("no volume is mounted where --webhook-client-ca-file=%s is", file)
}

func argValue(args []string, flag string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// grants reports whether the ClusterRole name of objs allows verb on
// group/resource.
func grants(t *testing.T, objs []*unstructured.Unstructured, name, group, resource, verb string) bool {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" || o.GetName() != name {
			continue
		}
		for _, rule := range convert[rbacv1.ClusterRole](t, o).Rules {
			if slices.Contains(rule.APIGroups, group) && slices.Contains(rule.Resources, resource) && slices.Contains(rule.Verbs, verb) {
				return true
			}
		}
	}
	return false
}

// With cert-manager, the apiserver's client certificate comes from a CA of
// its own, with the name the manager allows, and the manager trusts that
// CA's certificate (never its key).
func TestCertManagerIssuesTheAPIServersClientCertificate(t *testing.T) {
	objs := render(t, "config/cert-manager")
	byName := map[string]*unstructured.Unstructured{}
	var pod corev1.PodSpec
	for _, o := range objs {
		byName[o.GetKind()+"/"+o.GetName()] = o
		if o.GetKind() == "Deployment" {
			pod = convert[appsv1.Deployment](t, o).Spec.Template.Spec
		}
	}
	checkClientCA(t, pod)
	cert := byName["Certificate/partner-operator-webhook-client"]
	if cert == nil {
		t.Fatal("no client Certificate partner-operator-webhook-client")
	}
	cn, _, _ := unstructured.NestedString(cert.Object, "spec", "commonName")
	if allowed := strings.Split(argValue(pod.Containers[0].Args, "--webhook-client-allowed-names"), ","); !slices.Contains(allowed, cn) {
		t.Errorf("the client certificate's name %q is not among the manager's allowed names %v", cn, allowed)
	}
	usages, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "usages")
	if !slices.Contains(usages, "client auth") || slices.Contains(usages, "server auth") {
		t.Errorf("the client certificate's usages %v: want client auth only", usages)
	}
	issuer, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "name")
	caSecret, _, _ := unstructured.NestedString(byName["Issuer/"+issuer].Object, "spec", "ca", "secretName")
	if caSecret == "" {
		t.Fatalf("the client certificate's issuer %s is not a CA Issuer", issuer)
	}
	for _, v := range pod.Volumes {
		if v.Name != "webhook-client-ca" {
			continue
		}
		if v.Secret == nil || v.Secret.SecretName != caSecret {
			t.Errorf("the manager's client CA volume %+v is not the issuer's CA Secret %s", v.VolumeSource, caSecret)
		} else if len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != "ca.crt" {
			t.Errorf("the manager mounts %v of the CA Secret, want ca.crt alone (never the CA's key)", v.Secret.Items)
		}
		return
	}
	t.Error("the manager mounts no webhook-client-ca volume")
}

// The NetworkPolicies select the manager's pods and open only its webhook
// and metrics ports, each to named sources: nothing is open to everyone.
func TestNetworkPolicies(t *testing.T) {
	var pod *corev1.PodTemplateSpec
	for _, o := range render(t, "config/default") {
		if o.GetKind() == "Deployment" {
			pod = &convert[appsv1.Deployment](t, o).Spec.Template
		}
	}
	ports := map[string]int32{}
	for _, p := range pod.Spec.Containers[0].Ports {
		ports[p.Name] = p.ContainerPort
	}
	policies := map[string]*networkingv1.NetworkPolicy{}
	for _, o := range render(t, "config/network-policy") {
		if o.GetKind() != "NetworkPolicy" || o.GetNamespace() != "partner-operator-system" {
			t.Errorf("unexpected %s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
			continue
		}
		policies[o.GetName()] = convert[networkingv1.NetworkPolicy](t, o)
	}
	for name, port := range map[string]int32{
		"partner-operator-allow-webhook-traffic": ports["webhook-server"],
		"partner-operator-allow-metrics-traffic": ports["metrics"],
	} {
		p := policies[name]
		if p == nil {
			t.Errorf("no NetworkPolicy %s", name)
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			t.Errorf("%s does not select the manager's pods (%v)", name, p.Spec.PodSelector)
		}
		for _, rule := range p.Spec.Ingress {
			if len(rule.From) == 0 {
				t.Errorf("%s lets every source in", name)
			}
			for _, peer := range rule.From {
				if peer.IPBlock != nil && (peer.IPBlock.CIDR == "0.0.0.0/0" || peer.IPBlock.CIDR == "::/0") {
					t.Errorf("%s lets every address in", name)
				}
			}
			if len(rule.Ports) != 1 || rule.Ports[0].Port == nil || rule.Ports[0].Port.IntVal != port {
				t.Errorf("%s opens %v, want port %d alone", name, rule.Ports, port)
			}
		}
	}
	hasIPBlock := false
	for _, rule := range policies["partner-operator-allow-webhook-traffic"].Spec.Ingress {
		for _, peer := range rule.From {
			hasIPBlock = hasIPBlock || peer.IPBlock != nil
		}
	}
	if !hasIPBlock {
		t.Error("the webhook policy has no ipBlock for the kube-apiserver, which runs on the hosts' network")
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
		{"partner-decision-client", "subjectaccessreviews", "create", true},
		{"partner-decision-client", "rooms", "get", false},
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

// The ValidatingAdmissionPolicy that confines the manager's writes of its
// webhook configurations to their caBundle names the manager's
// ServiceAccount and both configurations as they render (kustomize rewrites
// no CEL), and is bound; with cert-manager, which writes the caBundle, the
// manager holds no role on Secrets or webhook configurations at all.
func TestTheWebhookConfigurationsAreTheManagersForTheirCABundleOnly(t *testing.T) {
	for _, overlay := range []string{"config/default", "config/cert-manager"} {
		objs := render(t, overlay)
		var policy *admissionregistrationv1.ValidatingAdmissionPolicy
		var binding *admissionregistrationv1.ValidatingAdmissionPolicyBinding
		var pod corev1.PodSpec
		var namespace string
		var configurations []string
		for _, o := range objs {
			switch o.GetKind() {
			case "ValidatingAdmissionPolicy":
				policy = convert[admissionregistrationv1.ValidatingAdmissionPolicy](t, o)
			case "ValidatingAdmissionPolicyBinding":
				binding = convert[admissionregistrationv1.ValidatingAdmissionPolicyBinding](t, o)
			case "Deployment":
				pod, namespace = convert[appsv1.Deployment](t, o).Spec.Template.Spec, o.GetNamespace()
			case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
				configurations = append(configurations, o.GetName())
			}
		}
		if policy == nil || binding == nil {
			t.Fatalf("%s: no ValidatingAdmissionPolicy and binding for the webhook configurations", overlay)
		}
		if binding.Spec.PolicyName != policy.Name || !slices.Equal(binding.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}) ||
			binding.Namespace != "" || policy.Namespace != "" {
			t.Errorf("%s: the binding %+v does not deny by the policy %s (both cluster-scoped)", overlay, binding.Spec, policy.Name)
		}
		if policy.Spec.FailurePolicy == nil || *policy.Spec.FailurePolicy != admissionregistrationv1.Fail {
			t.Errorf("%s: the policy must fail closed", overlay)
		}
		user := "'system:serviceaccount:" + namespace + ":" + pod.ServiceAccountName + "'"
		if len(policy.Spec.MatchConditions) != 1 || !strings.Contains(policy.Spec.MatchConditions[0].Expression, user) {
			t.Errorf("%s: the policy does not match the manager's user %s: %+v", overlay, user, policy.Spec.MatchConditions)
		}
		own := ""
		for _, v := range policy.Spec.Variables {
			if v.Name == "own" {
				own = v.Expression
			}
		}
		for _, name := range configurations {
			if !strings.Contains(own, "'"+name+"'") {
				t.Errorf("%s: the policy's own configurations %s lack %s", overlay, own, name)
			}
		}
		if overlay != "config/cert-manager" {
			continue
		}
		for _, o := range objs {
			if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
				continue
			}
			for _, rule := range convert[rbacv1.ClusterRole](t, o).Rules {
				for _, r := range rule.Resources {
					if r == "secrets" || strings.HasSuffix(r, "webhookconfigurations") {
						t.Errorf("%s: %s %s grants %v on %s, which cert-manager writes", overlay, o.GetKind(), o.GetName(), rule.Verbs, r)
					}
				}
			}
		}
	}
}
