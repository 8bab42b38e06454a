package authzconfig

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	apiserverapi "k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/apis/apiserver/load"
	"k8s.io/apiserver/pkg/apis/apiserver/validation"
	authorizationcel "k8s.io/apiserver/pkg/authorization/cel"

	"github.com/roompro/partner-operator/internal/authz"
)

var partners = []string{"contoso.com", "fabrikam.com", "xn--bcher-kva.example"}

// sent evaluates the matchConditions for domains as the apiserver does:
// true when the request goes to the webhook.
func sent(t testing.TB, matcher *authorizationcel.CELMatcher, user string) bool {
	t.Helper()
	ok, err := matcher.Eval(context.Background(), &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Group: "partners.roompro.io", Resource: "rooms", Namespace: "fourth-coffee"}}})
	if err != nil {
		t.Fatalf("evaluating the matchConditions for %q: %v", user, err)
	}
	return ok
}

func compile(t testing.TB, domains []string) *authorizationcel.CELMatcher {
	t.Helper()
	matcher, errs := CompileMatchConditions(domains)
	if len(errs) > 0 {
		t.Fatalf("the apiserver's CEL compiler refuses the matchConditions of %q: %v", domains, errs)
	}
	return matcher
}

// decidedByTheWebhook is what the matchConditions must send: every name
// internal/authz decides itself (a partner user, or a name under a partner
// domain that it denies), but for the apiserver's own system: names; and
// the names with a non-ASCII domain, which CEL cannot map by IDNA.
func decidedByTheWebhook(user string, domains []string) bool {
	if strings.HasPrefix(user, "system:") {
		return false
	}
	_, class := authz.Classify(user, nil, func(d string) bool { return slices.Contains(domains, d) })
	if class == authz.Partner || class == authz.Malformed {
		return true
	}
	at := strings.LastIndexByte(user, '@')
	return at >= 0 && len(domains) > 0 && !isASCII(user[at+1:])
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func TestMatchConditions(t *testing.T) {
	matcher := compile(t, partners)
	for user, want := range map[string]bool{
		"alice@contoso.com":                    true,
		"ALICE@CONTOSO.COM":                    true,
		"Alice@Contoso.com.":                   true,
		" alice@contoso.com\t":                 true,
		"alice@contoso.com. ":                  true,
		"a@b@contoso.com":                      true,
		"@contoso.com":                         true,
		"alice@eu.contoso.com":                 true,
		"alice@a.b.fabrikam.com":               true,
		"alice@.contoso.com":                   true,
		"System:alice@contoso.com":             true,
		"oidc:alice@contoso.com":               true,
		"fabrikam.com:ops@contoso.com":         true,
		"alice@fabrikam.com@contoso.com":       true,
		"alice@bücher.example":                 true, // the Unicode form of a registered xn-- domain
		"alice@ｃｏｎｔｏｓｏ.com":                    true, // full-width
		"alice@xn--bcher-kva.example":          true,
		"admin@fourth-coffee.com":              false, // the customer's own staff
		"bob@eu.fourth-coffee.com":             false,
		"alice@evilcontoso.com":                false,
		"alice@contoso.com.evil.example":       false,
		"alice@contoso.com@fourth-coffee.com":  false, // classified by the last @
		"alice@contoso.com..":                  false, // normalised to contoso.com., no partner's
		"alice@contoso.com .":                  false,
		"alice@contoso.co":                     false,
		"alice@com":                            false,
		"jane":                                 false,
		"contoso.com":                          false,
		"system:alice@contoso.com":             false, // the apiserver's own names never depend on the operator
		"system:serviceaccount:tenant-a:robot": false,
		"system:kube-controller-manager":       false,
		"kubernetes-admin":                     false, // the break-glass admin of a kubeadm cluster
	} {
		if got := sent(t, matcher, user); got != want {
			t.Errorf("%q sent to the webhook: %v, want %v", user, got, want)
		}
		if got := decidedByTheWebhook(user, partners); got != want {
			t.Errorf("the reference says %q goes to the webhook: %v, want %v (the table is wrong)", user, got, want)
		}
	}
}

func TestNoPartnerSendsNobody(t *testing.T) {
	matcher := compile(t, nil)
	for _, user := range []string{"alice@contoso.com", "a@b@contoso.com", "alice@bücher.example", "jane"} {
		if sent(t, matcher, user) {
			t.Errorf("%q sent to the webhook with no partner registered", user)
		}
	}
}

// usernames are shapes of names around the partner domains: every
// transform of test/adversarial's usernames, and more.
func usernames(domains []string) []string {
	locals := []string{"alice", "", "a@b", "System:alice", "system:alice", "oidc:alice", " alice", "ALICE"}
	hosts := []string{"", "eu.", "a.b.", ".", "evil", "EU.", " ", "\t"}
	tails := []string{"", ".", "..", " ", ". ", " .", "\t", ".x", "@fourth-coffee.com", "\u00a0", "\u200b"}
	var out []string
	for _, d := range append(slices.Clone(domains), "fourth-coffee.com", "contoso.co", "com") {
		for _, spelled := range []string{d, strings.ToUpper(d), strings.ToUpper(d[:1]) + d[1:], strings.Replace(d, "o", "\u043e", 1), strings.Replace(d, "c", "\u212a", 1)} {
			for _, l := range locals {
				for _, h := range hosts {
					for _, tail := range tails {
						out = append(out, l+"@"+h+spelled+tail)
					}
				}
			}
		}
	}
	return append(out, "jane", "system:kube-scheduler", "@", "alice@", "alice@bücher.example", "alice@BÜCHER.example")
}

// TestMatchConditionsAgreeWithClassify: the apiserver sends the webhook
// exactly the names internal/authz decides itself (and the non-ASCII
// domains), so no name the webhook would deny as a forged partner name
// is left to RBAC, and no customer name depends on the operator.
func TestMatchConditionsAgreeWithClassify(t *testing.T) {
	for _, domains := range [][]string{partners, {"contoso.com"}, {"eu.contoso.com"}, {"a-b.example", "b.example"}} {
		matcher := compile(t, domains)
		for _, user := range usernames(domains) {
			if got, want := sent(t, matcher, user), decidedByTheWebhook(user, domains); got != want {
				_, class := authz.Classify(user, nil, func(d string) bool { return slices.Contains(domains, d) })
				t.Errorf("domains %q: %q sent to the webhook: %v, want %v (authz class %d)", domains, user, got, want, class)
			}
		}
	}
}

func FuzzMatchConditionsAgreeWithClassify(f *testing.F) {
	// A sample of the shapes: the whole list is TestMatchConditionsAgreeWithClassify's,
	// and the fuzzer's baseline run would spend its time on it.
	for i, user := range usernames(partners) {
		if i%97 == 0 {
			f.Add(user)
		}
	}
	matcher := compile(f, partners)
	f.Fuzz(func(t *testing.T, user string) {
		if !utf8.ValidString(user) {
			// The apiserver's authenticators and impersonation carry
			// names in JSON and HTTP headers: valid UTF-8.
			return
		}
		if got, want := sent(t, matcher, user), decidedByTheWebhook(user, partners); got != want {
			t.Errorf("%q sent to the webhook: %v, want %v", user, got, want)
		}
	})
}

func TestDomains(t *testing.T) {
	got, errs := Domains([]string{"fabrikam.com", "contoso.com", "Contoso.com", "fabrikam.com"})
	if len(errs) > 0 || !slices.Equal(got, []string{"contoso.com", "fabrikam.com"}) {
		t.Errorf("Domains = %q, %v; want contoso.com, fabrikam.com", got, errs)
	}
	for _, bad := range []string{"com", "contoso..com", "-contoso.com", "contoso.com|x", "(.*)", "a.b@c.d", "contoso.com\n", "bücher.example"} {
		if _, errs := Domains([]string{bad}); len(errs) != 1 {
			t.Errorf("Domains(%q): %v, want one error", bad, errs)
		}
	}
	if _, err := Render([]string{"contoso.com|.*"}, Options{}); err == nil {
		t.Error("Render took a domain that is no DNS name")
	}
	if _, err := Render([]string{"fabrikam.com", "contoso.com"}, Options{}); err == nil {
		t.Error("Render took unsorted domains")
	}
	if _, err := Render(partners, Options{WebhookKubeconfig: "relative/kubeconfig"}); err == nil {
		t.Error("Render took a relative kubeconfig path")
	}
}

// TestRenderIsWhatTheAPIServerLoads loads the rendered file with the
// kube-apiserver's own loader and validation, and evaluates the
// matchConditions it holds.
func TestRenderIsWhatTheAPIServerLoads(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "authorization-webhook.kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := Render(partners, Options{WebhookKubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	config, err := load.LoadFromData(out)
	if err != nil {
		t.Fatalf("the apiserver cannot load the rendered configuration: %v\n%s", err, out)
	}
	compiler := authorizationcel.NewDefaultCompiler()
	if errs := validation.ValidateAuthorizationConfiguration(compiler, nil, config,
		sets.New("Webhook", "Node", "RBAC", "AlwaysAllow", "AlwaysDeny"), sets.New("Webhook")); len(errs) > 0 {
		t.Fatalf("the apiserver refuses the rendered configuration: %v\n%s", errs, out)
	}
	var types []string
	for _, a := range config.Authorizers {
		types = append(types, string(a.Type))
	}
	if !slices.Equal(types, []string{"Webhook", "Node", "RBAC"}) {
		t.Fatalf("authorizers %q, want the webhook, then Node and RBAC", types)
	}
	w := config.Authorizers[0].Webhook
	if config.Authorizers[0].Name != "partner-operator" || w.FailurePolicy != apiserverapi.FailurePolicyDeny ||
		w.CacheAuthorizedRequests || w.CacheUnauthorizedRequests || *w.ConnectionInfo.KubeConfigFile != kubeconfig {
		t.Errorf("webhook %s: %+v, want partner-operator, failurePolicy Deny, no cache, the kubeconfig %s", config.Authorizers[0].Name, w, kubeconfig)
	}
	matcher, errs := validation.ValidateAndCompileMatchConditions(compiler, w.MatchConditions)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for user, want := range map[string]bool{"alice@contoso.com": true, "a@b@fabrikam.com": true, "admin@fourth-coffee.com": false, "system:x@contoso.com": false} {
		if got := sent(t, matcher, user); got != want {
			t.Errorf("the loaded file sends %q to the webhook: %v, want %v", user, got, want)
		}
	}
	if !strings.Contains(string(out), "# Partner domains: contoso.com, fabrikam.com, xn--bcher-kva.example\n") {
		t.Errorf("the header does not list the partner domains:\n%s", out)
	}
}
