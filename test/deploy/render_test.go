// Package deploy checks the install manifests as kustomize renders them:
// what a platform team applies with `make deploy`.
package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"

	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/managercmd"
	"github.com/roompro/partner-operator/internal/matrix"
	"github.com/roompro/partner-operator/internal/webhookserver"
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
		"CustomResourceDefinition": 11, "Deployment": 1, "ServiceAccount": 1, "Namespace": 1,
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
		{"partners-view", "tickets", "watch", true},
		{"partners-view", "updaterings", "list", true},
		{"partners-edit", "tickets", "delete", true},
		{"partners-edit", "roomgroups", "create", true},
		// Reports are written by the customer's telemetry, with a role of
		// its own; no matrix column writes one.
		{"room-report-writer", "roomreports", "create", true},
		{"room-report-writer", "roomreports", "patch", true},
		{"room-report-writer", "tickets", "get", false},
		{"room-report-writer", "rooms", "get", false},
		{"pro-manager", "roomreports", "create", false},
		{"partner-decision-client", "subjectaccessreviews", "create", true},
		{"partner-decision-client", "rooms", "get", false},
		// Change control: partner-approver and pro-manager decide (the
		// custom verb approve, which admission asks RBAC about), read and
		// write the decision; view reads requests; no site role reads or
		// decides them, and neither view nor edit/admin decides.
		{"partner-approver", "partnerchangerequests", "approve", true},
		{"partner-approver", "partnerchangerequests", "patch", true},
		{"partner-approver", "partnerchangerequests", "list", true},
		{"partner-approver", "partnerchangerequests", "create", false},
		{"partner-approver", "partnerchangerequests", "delete", false},
		{"pro-manager", "partnerchangerequests", "approve", true},
		{"pro-manager", "partnerchangerequests", "update", true},
		{"site-lead", "partnerchangerequests", "approve", false},
		{"site-lead", "partnerchangerequests", "get", false},
		{"site-tech", "partnerchangerequests", "approve", false},
		{"site-tech", "partnerchangerequests", "get", false},
		{"partners-view", "partnerchangerequests", "list", true},
		{"partners-view", "partnerchangerequests", "approve", false},
		{"partners-edit", "partnerchangerequests", "approve", false},
		{"partners-edit", "partnerchangerequests", "update", false},
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
			// Only the deciders hold approve, and on nothing else.
			if slices.Contains(rule.Verbs, "approve") {
				if name != "partner-approver" && name != "pro-manager" {
					t.Errorf("%s grants approve: only partner-approver and pro-manager decide partner change requests", name)
				}
				if !slices.Equal(rule.Resources, []string{"partnerchangerequests"}) || len(rule.ResourceNames) > 0 ||
					!slices.Equal(rule.APIGroups, []string{"partners.roompro.io"}) {
					t.Errorf("%s grants approve on %v %v %v: want partnerchangerequests.partners.roompro.io, every name", name, rule.APIGroups, rule.Resources, rule.ResourceNames)
				}
			}
		}
	}
	// pro-manager holds every rule of partner-approver (written out, not
	// aggregated: see config/customer-roles/roles.yaml).
	for _, rule := range roles["partner-approver"].Rules {
		for _, resource := range rule.Resources {
			for _, verb := range rule.Verbs {
				if !allows("pro-manager", resource, verb) {
					t.Errorf("pro-manager lacks %s %s of partner-approver", verb, resource)
				}
			}
		}
	}
}

// The staff roles are the columns of docs/permissions.md, exactly: each
// holds the verbs its permissions allow, the pro manager the partner
// relationship besides, and nothing else.
func TestCustomerRolesAreTheMatrix(t *testing.T) {
	root, err := controlplane.RepositoryRoot()
	if err != nil {
		t.Fatal(err)
	}
	m, err := matrix.ParseFile(filepath.Join(root, "docs", "permissions.md"))
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]*rbacv1.ClusterRole{}
	for _, o := range render(t, "config/customer-roles") {
		roles[o.GetName()] = convert[rbacv1.ClusterRole](t, o)
	}
	for column, role := range map[string]string{"pro manager": "pro-manager", "site lead": "site-lead", "site tech": "site-tech"} {
		want := sets.New[string]()
		add := func(grants []matrix.Grant) {
			for _, g := range grants {
				for _, verb := range g.Verbs {
					want.Insert(verb + " " + g.Resource)
				}
			}
		}
		for _, p := range m.Columns[column] {
			add(m.Allows[p])
		}
		if role == "pro-manager" {
			add(m.Relationship)
		}
		if roles[role] == nil {
			t.Fatalf("no ClusterRole %s", role)
		}
		got := sets.New[string]()
		for _, rule := range roles[role].Rules {
			if !slices.Equal(rule.APIGroups, []string{"partners.roompro.io"}) || len(rule.ResourceNames) > 0 || len(rule.NonResourceURLs) > 0 {
				t.Errorf("%s has a rule %+v beyond partners.roompro.io resources", role, rule)
			}
			for _, resource := range rule.Resources {
				for _, verb := range rule.Verbs {
					got.Insert(verb + " " + resource)
				}
			}
		}
		if extra := sets.List(got.Difference(want)); len(extra) > 0 {
			t.Errorf("%s grants %v, which its column of docs/permissions.md does not", role, extra)
		}
		if missing := sets.List(want.Difference(got)); len(missing) > 0 {
			t.Errorf("%s lacks %v of its column of docs/permissions.md", role, missing)
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

// The manager answers the apiserver on the authorization and admission path,
// so a drain, a rollout, a node's loss or memory pressure must leave a
// replica answering, and a replica that stops must finish what it answers.
func TestTheManagerStaysAvailable(t *testing.T) {
	objs := render(t, "config/default")
	var d *appsv1.Deployment
	var pdb *policyv1.PodDisruptionBudget
	classes := map[string]*schedulingv1.PriorityClass{}
	var webhookTimeouts []string
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment":
			d = convert[appsv1.Deployment](t, o)
		case "PodDisruptionBudget":
			pdb = convert[policyv1.PodDisruptionBudget](t, o)
		case "PriorityClass":
			classes[o.GetName()] = convert[schedulingv1.PriorityClass](t, o)
		case "MutatingWebhookConfiguration":
			for _, w := range convert[admissionregistrationv1.MutatingWebhookConfiguration](t, o).Webhooks {
				webhookTimeouts = append(webhookTimeouts, timeoutBelowTheServers(w.Name, w.TimeoutSeconds))
			}
		case "ValidatingWebhookConfiguration":
			for _, w := range convert[admissionregistrationv1.ValidatingWebhookConfiguration](t, o).Webhooks {
				webhookTimeouts = append(webhookTimeouts, timeoutBelowTheServers(w.Name, w.TimeoutSeconds))
			}
		}
	}
	for _, problem := range webhookTimeouts {
		if problem != "" {
			t.Error(problem)
		}
	}
	pod := d.Spec.Template
	replicas := int(ptr.Deref(d.Spec.Replicas, 1))
	if replicas < 2 {
		t.Errorf("%d replica: a drain or a node's loss leaves none answering", replicas)
	}

	// Disruptions take one replica at a time, and never block on one that
	// is not ready.
	if pdb == nil {
		t.Error("no PodDisruptionBudget for the manager")
	} else {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			t.Errorf("the PodDisruptionBudget does not select the manager's pods (%v)", pdb.Spec.Selector)
		}
		switch {
		case pdb.Spec.MaxUnavailable != nil:
			if pdb.Spec.MaxUnavailable.IntValue() != 1 {
				t.Errorf("the PodDisruptionBudget lets %s replicas go at once, want 1", pdb.Spec.MaxUnavailable)
			}
		case pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || pdb.Spec.MinAvailable.IntValue() >= replicas:
			t.Errorf("the PodDisruptionBudget's minAvailable %v must keep one of %d replicas and let one go", pdb.Spec.MinAvailable, replicas)
		}
		if pdb.Spec.UnhealthyPodEvictionPolicy == nil || *pdb.Spec.UnhealthyPodEvictionPolicy != policyv1.AlwaysAllow {
			t.Error("a replica that is not ready must not block a drain (unhealthyPodEvictionPolicy: AlwaysAllow)")
		}
	}

	// A rollout and the scheduler keep replicas apart and answering.
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Error("a rollout must start a new replica before it stops an old one (maxUnavailable: 0)")
	}
	spread := slices.ContainsFunc(pod.Spec.TopologySpreadConstraints, func(c corev1.TopologySpreadConstraint) bool {
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		return c.TopologyKey == corev1.LabelHostname && c.WhenUnsatisfiable == corev1.DoNotSchedule && c.MaxSkew == 1 &&
			err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels))
	})
	antiAffine := pod.Spec.Affinity != nil && pod.Spec.Affinity.PodAntiAffinity != nil &&
		len(pod.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0
	if !spread && !antiAffine {
		t.Error("nothing keeps two replicas off one node (a topology spread over kubernetes.io/hostname, or pod anti-affinity)")
	}

	// A stopping replica is taken out of the endpoints first, then finishes
	// its requests, all before the kubelet kills it.
	c := pod.Spec.Containers[0]
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 5 {
		t.Fatal("the manager has no preStop delay (sleep of 5 s or more) for its endpoints to drain before it stops")
	}
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	shutdown := managercmd.DefaultGracefulShutdownTimeout
	if v := argValue(c.Args, "--graceful-shutdown-timeout"); v != "" {
		var err error
		if shutdown, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	if shutdown <= webhookserver.DefaultRequestTimeout {
		t.Errorf("the manager's graceful shutdown (%s) must outlast a request in flight (%s)", shutdown, webhookserver.DefaultRequestTimeout)
	}
	grace := time.Duration(ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, corev1.DefaultTerminationGracePeriodSeconds)) * time.Second
	if preStop+shutdown >= grace {
		t.Errorf("terminationGracePeriodSeconds (%s) must exceed the preStop delay (%s) plus the graceful shutdown (%s)", grace, preStop, shutdown)
	}

	// Scheduled ahead of ordinary workloads, with a class any cluster admits.
	class := classes[pod.Spec.PriorityClassName]
	switch {
	case pod.Spec.PriorityClassName == "":
		t.Error("the manager has no priorityClassName")
	case strings.HasPrefix(pod.Spec.PriorityClassName, "system-"):
		t.Errorf("priorityClassName %s: the system classes are kube-system's, refused elsewhere where quota limits them", pod.Spec.PriorityClassName)
	case class == nil:
		t.Errorf("priorityClassName %s is not rendered with the manager", pod.Spec.PriorityClassName)
	case class.Value <= 0 || class.Value > 1_000_000_000 || class.GlobalDefault:
		t.Errorf("PriorityClass %s: value %d (want above 0, at most one billion), globalDefault %v", class.Name, class.Value, class.GlobalDefault)
	}

	// The memory request covers what the 100,000-room benchmark measured.
	peak := benchmarkedPeakMiB(t)
	request, limit := c.Resources.Requests.Memory(), c.Resources.Limits.Memory()
	if request.Cmp(apiresource.MustParse(fmt.Sprintf("%dMi", peak))) < 0 {
		t.Errorf("the manager requests %s of memory; the 100k-room benchmark peaked at %d MiB (BENCHMARKS.md)", request, peak)
	}
	if limit.IsZero() || limit.Cmp(*request) < 0 {
		t.Errorf("the memory limit %s is below the request %s", limit, request)
	}
}

// timeoutBelowTheServers says what is wrong with an admission webhook's
// timeoutSeconds: the apiserver must give up before the webhook server's
// own deadline cuts the connection.
func timeoutBelowTheServers(name string, seconds *int32) string {
	timeout := time.Duration(ptr.Deref(seconds, 10)) * time.Second // the apiserver's default
	if timeout >= webhookserver.DefaultRequestTimeout {
		return fmt.Sprintf("webhook %s: timeoutSeconds %s is not below the webhook server's request deadline %s", name, timeout, webhookserver.DefaultRequestTimeout)
	}
	return ""
}

// benchmarkedPeakMiB is the operator's peak RSS at 100,000 rooms, from
// BENCHMARKS.md's table of targets.
func benchmarkedPeakMiB(t *testing.T) int {
	t.Helper()
	root, err := controlplane.RepositoryRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "BENCHMARKS.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`100k rooms: operator RSS[^|]*\| peak (\d+) MiB`).FindSubmatch(data)
	if m == nil {
		t.Fatal("BENCHMARKS.md no longer says the 100k-room run's peak RSS (\"100k rooms: operator RSS ... | peak N MiB\")")
	}
	peak, err := strconv.Atoi(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return peak
}
