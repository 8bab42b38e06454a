package rbac

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/roompro/partner-operator/internal/controlplane"
)

// The operator's identity in a cluster, as config/default names it.
const (
	operatorNamespace      = "partner-operator-system"
	operatorServiceAccount = "partner-operator-controller-manager"
	operatorUser           = "system:serviceaccount:" + operatorNamespace + ":" + operatorServiceAccount
)

var ctx = context.Background()

// authorizations records every authorization check the kube-apiserver makes
// for the operator's user: it is a webhook authorizer placed before RBAC
// that has no opinion, so RBAC decides as it would without it, and it sees
// the checks of admission plugins (OwnerReferencesPermissionEnforcement's
// of a finalizers subresource) as well as those of the requests themselves.
type authorizations struct {
	server *httptest.Server
	mu     sync.Mutex
	seen   []authorizationv1.ResourceAttributes
}

func recordAuthorizations(t *testing.T) *authorizations {
	t.Helper()
	a := &authorizations{}
	a.server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		review := &authorizationv1.SubjectAccessReview{}
		if err := json.NewDecoder(r.Body).Decode(review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if review.Spec.User == operatorUser && review.Spec.ResourceAttributes != nil {
			a.mu.Lock()
			a.seen = append(a.seen, *review.Spec.ResourceAttributes)
			a.mu.Unlock()
		}
		// No opinion: the next authorizer (RBAC) decides.
		review.Status = authorizationv1.SubjectAccessReviewStatus{}
		_ = json.NewEncoder(w).Encode(review)
	}))
	t.Cleanup(a.server.Close)
	return a
}

// checks returns the checks recorded so far.
func (a *authorizations) checks() []authorizationv1.ResourceAttributes {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen)
}

// authorizationConfig writes the shipped AuthorizationConfiguration with the
// recorder inserted before its Node and RBAC authorizers, for the operator's
// user only, and returns its path (controlplane.Options.AuthorizationConfig).
func (a *authorizations) authorizationConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters["recorder"] = &clientcmdapi.Cluster{
		Server:                   a.server.URL,
		CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.server.Certificate().Raw}),
	}
	kubeconfig.AuthInfos["recorder"] = &clientcmdapi.AuthInfo{}
	kubeconfig.Contexts["recorder"] = &clientcmdapi.Context{Cluster: "recorder", AuthInfo: "recorder"}
	kubeconfig.CurrentContext = "recorder"
	kubeconfigPath := filepath.Join(dir, "recorder.kubeconfig")
	if err := clientcmd.WriteToFile(*kubeconfig, kubeconfigPath); err != nil {
		t.Fatal(err)
	}
	root, err := controlplane.RepositoryRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "authorization", "authorization-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	config := map[string]any{}
	if err := yaml.Unmarshal(data, &config); err != nil {
		t.Fatal(err)
	}
	authorizers, _ := config["authorizers"].([]any)
	at := slices.IndexFunc(authorizers, func(a any) bool {
		m, _ := a.(map[string]any)
		return m["type"] == "Node" || m["type"] == "RBAC"
	})
	if at < 0 {
		t.Fatal("the shipped AuthorizationConfiguration has no Node or RBAC authorizer")
	}
	recorder := map[string]any{
		"type": "Webhook", "name": "rbac-test-recorder",
		"webhook": map[string]any{
			"timeout": "3s", "failurePolicy": "NoOpinion",
			"subjectAccessReviewVersion": "v1", "matchConditionSubjectAccessReviewVersion": "v1",
			"cacheAuthorizedRequests": false, "cacheUnauthorizedRequests": false,
			"connectionInfo":  map[string]any{"type": "KubeConfigFile", "kubeConfigFile": kubeconfigPath},
			"matchConditions": []any{map[string]any{"expression": fmt.Sprintf("request.user == %q", operatorUser)}},
		},
	}
	config["authorizers"] = slices.Insert(authorizers, at, any(recorder))
	out, err := yaml.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "authorization-config.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// refusals records every request of a client that the apiserver refused
// (401 or 403), through a RoundTripper.
type refusals struct {
	mu   sync.Mutex
	seen []string
}

func (r *refusals) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized) {
			r.mu.Lock()
			r.seen = append(r.seen, fmt.Sprintf("%s %s: %d", req.Method, req.URL.RequestURI(), resp.StatusCode))
			r.mu.Unlock()
		}
		return resp, err
	})
}

func (r *refusals) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// render returns the objects of `kubectl kustomize dir`.
func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	out, err := controlplane.Kustomize(dir)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode(out)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return objs
}

// decode parses a YAML stream of objects.
func decode(data []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := decoder.Decode(&obj.Object); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return nil, err
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}

// kinds keeps the objects of the given kinds.
func kinds(objs []*unstructured.Unstructured, want ...string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if slices.Contains(want, o.GetKind()) {
			out = append(out, o)
		}
	}
	return out
}

// create creates each object as c.
func create(t *testing.T, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(ctx, o.DeepCopy()); err != nil {
			t.Fatalf("creating %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

// rbacObjects are the kinds of a render that give the operator its
// identity and privileges.
var rbacObjects = []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

// serviceAccountConfig is a client configuration of the ServiceAccount
// namespace/name with a token from the TokenRequest API: what a pod of it
// holds.
func serviceAccountConfig(t *testing.T, cp *controlplane.ControlPlane, namespace, name string) *rest.Config {
	t.Helper()
	return &rest.Config{
		Host: cp.Config.Host, TLSClientConfig: rest.TLSClientConfig{CAData: cp.Config.CAData},
		BearerToken: serviceAccountToken(t, cp, namespace, name), QPS: cp.Config.QPS, Burst: cp.Config.Burst,
	}
}

func serviceAccountToken(t *testing.T, cp *controlplane.ControlPlane, namespace, name string) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token of %s/%s: %v", namespace, name, err)
	}
	return tr.Status.Token
}

// grant is one verb on one resource that a role bound to the operator
// grants: in namespace (every namespace when empty), on the names listed
// (every name when empty).
type grant struct {
	role      string
	namespace string
	group     string
	resource  string // with its subresource: "partnerlinks/finalizers"
	verb      string
	names     []string
}

func (g grant) String() string {
	s := fmt.Sprintf("%s: %s %s", g.role, g.verb, g.resource)
	if g.group != "" {
		s = fmt.Sprintf("%s: %s %s.%s", g.role, g.verb, g.resource, g.group)
	}
	if g.namespace != "" {
		s += " in " + g.namespace
	}
	if len(g.names) > 0 {
		s += " named " + strings.Join(g.names, ",")
	}
	return s
}

// usedBy reports whether the authorization check a is one that g allows.
func (g grant) usedBy(a authorizationv1.ResourceAttributes) bool {
	resource := a.Resource
	if a.Subresource != "" {
		resource += "/" + a.Subresource
	}
	return a.Group == g.group && resource == g.resource && a.Verb == g.verb &&
		(g.namespace == "" || a.Namespace == g.namespace) &&
		(len(g.names) == 0 || slices.Contains(g.names, a.Name))
}

// grants are the verbs that the rendered roles give the operator's
// ServiceAccount through the rendered bindings.
func grants(t *testing.T, objs []*unstructured.Unstructured) []grant {
	t.Helper()
	rules := map[string][]rbacv1.PolicyRule{} // by kind/namespace/name of the role
	for _, o := range kinds(objs, "ClusterRole", "Role") {
		role := &rbacv1.ClusterRole{}
		convert(t, o, role)
		rules[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] = role.Rules
	}
	var out []grant
	for _, o := range kinds(objs, "ClusterRoleBinding", "RoleBinding") {
		binding := &rbacv1.RoleBinding{}
		convert(t, o, binding)
		if !slices.ContainsFunc(binding.Subjects, func(s rbacv1.Subject) bool {
			return s.Kind == rbacv1.ServiceAccountKind && s.Namespace == operatorNamespace && s.Name == operatorServiceAccount
		}) {
			continue
		}
		roleNamespace := ""
		if binding.RoleRef.Kind == "Role" {
			roleNamespace = o.GetNamespace()
		}
		key := binding.RoleRef.Kind + "/" + roleNamespace + "/" + binding.RoleRef.Name
		bound, ok := rules[key]
		if !ok {
			t.Fatalf("%s %s binds %s, which the render lacks", o.GetKind(), o.GetName(), key)
		}
		for _, rule := range bound {
			for _, group := range rule.APIGroups {
				for _, resource := range rule.Resources {
					for _, verb := range rule.Verbs {
						out = append(out, grant{
							role: binding.RoleRef.Kind + " " + binding.RoleRef.Name, namespace: o.GetNamespace(),
							group: group, resource: resource, verb: verb, names: rule.ResourceNames,
						})
					}
				}
			}
		}
	}
	return out
}

func convert(t *testing.T, o *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into); err != nil {
		t.Fatal(err)
	}
}

// eventually polls check every 100 ms until it returns nil or timeout
// passes, then fails the test with its last error.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
