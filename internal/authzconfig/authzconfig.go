// Package authzconfig renders the kube-apiserver's AuthorizationConfiguration
// (apiserver.config.k8s.io/v1) for a cluster with the partner-operator: its
// webhook authorizer first, with matchConditions that send the webhook only
// the names under a registered partner domain, then Node and RBAC.
//
// What the webhook gets is what internal/authz would not leave to RBAC: a
// name whose normalised domain (authz.NormalizedDomain) is a partner domain
// or a sub-domain of one is a partner user or a forged one, and both are
// decided by the operator. Every other UPN (the customer's own staff,
// however they sign in) never reaches the webhook, so its outage
// (failurePolicy: Deny) denies them nothing. The package is pure: the
// caller reads the partner domains from the cluster (kubectl partner
// authz-config).
package authzconfig

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"text/template"

	"k8s.io/apimachinery/pkg/util/validation/field"
	apiserverapi "k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/apis/apiserver/validation"
	authorizationcel "k8s.io/apiserver/pkg/authorization/cel"
)

// DefaultWebhookKubeconfig is where docs/authorization-webhook.md puts the
// kubeconfig with which the apiserver reaches the webhook.
const DefaultWebhookKubeconfig = "/etc/kubernetes/partner-operator/authorization-webhook.kubeconfig"

// NotSystem keeps the apiserver's own identities (system:...) away from the
// webhook, as the shipped configuration always did: no authenticator mints
// them for a partner's staff.
const NotSystem = "!request.user.startsWith('system:')"

// Options are what Render needs besides the partner domains.
type Options struct {
	// WebhookKubeconfig is the absolute path, on the control-plane hosts,
	// of the kubeconfig that reaches the webhook. Default:
	// DefaultWebhookKubeconfig.
	WebhookKubeconfig string
}

// Domains returns the partner domains among names (PartnerOrganizations'
// spec.domain, PartnerLinks' spec.partnerDomain), lower-cased, sorted and
// without repeats. Every one must be a lower-case DNS name with a dot, as
// the CRDs require: it goes into a regular expression.
func Domains(names []string) ([]string, field.ErrorList) {
	var errs field.ErrorList
	var out []string
	for i, name := range names {
		d := strings.ToLower(name)
		if !isDomain(d) {
			errs = append(errs, field.Invalid(field.NewPath("domains").Index(i), name, "not a DNS name with a dot"))
			continue
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return slices.Compact(out), errs
}

// PartnerDomainCondition is the CEL expression that is true for exactly the
// usernames internal/authz decides itself (authz.Partner and
// authz.Malformed) under one of domains: those whose part after the last @,
// without the white space around it and one trailing dot, is a domain or
// ends in "."+domain, compared ASCII case-insensitively. A name with a
// non-ASCII character after its last @ is sent too: the webhook maps such
// a domain by IDNA (the Unicode form of an xn-- domain, full-width letters),
// which CEL cannot, so the webhook decides it. With no domain it is false:
// nobody is a partner.
func PartnerDomainCondition(domains []string) string {
	if len(domains) == 0 {
		return "false"
	}
	quoted := make([]string, len(domains))
	for i, d := range domains {
		quoted[i] = strings.ReplaceAll(d, ".", "[.]")
	}
	// The white space strings.TrimSpace removes (the non-ASCII kinds are
	// caught by the second branch). RE2's $ is the end of the text.
	const space = `[\t\n\v\f\r ]*`
	return `request.user.lowerAscii().matches(r"@` + space + `([^@]*[.])?(` + strings.Join(quoted, "|") + `)[.]?` + space + `$")` +
		"\n" + `|| request.user.matches(r"@[^@]*[^\x00-\x7F][^@]*$")`
}

// MatchConditions are the partner-operator webhook's matchConditions for
// domains. The apiserver ANDs them.
func MatchConditions(domains []string) []apiserverapi.WebhookMatchCondition {
	return []apiserverapi.WebhookMatchCondition{{Expression: NotSystem}, {Expression: PartnerDomainCondition(domains)}}
}

// CompileMatchConditions compiles the matchConditions of domains with the
// kube-apiserver's own CEL environment and checks, returning the matcher
// the apiserver would evaluate.
func CompileMatchConditions(domains []string) (*authorizationcel.CELMatcher, field.ErrorList) {
	return validation.ValidateAndCompileMatchConditions(authorizationcel.NewDefaultCompiler(), MatchConditions(domains))
}

// Render returns the AuthorizationConfiguration for the partner domains
// (as Domains returns them), with comments for the admin who installs it.
// It refuses domains that Domains would not return, and matchConditions
// that the apiserver's CEL compiler does not accept.
func Render(domains []string, opts Options) ([]byte, error) {
	if checked, errs := Domains(domains); len(errs) > 0 {
		return nil, fmt.Errorf("rendering the authorization configuration: %w", errs.ToAggregate())
	} else if !slices.Equal(checked, domains) {
		return nil, fmt.Errorf("rendering the authorization configuration: the domains %q are not lower-case, sorted and unique", domains)
	}
	if _, errs := CompileMatchConditions(domains); len(errs) > 0 {
		return nil, fmt.Errorf("compiling the matchConditions: %w", errs.ToAggregate())
	}
	kubeconfig := opts.WebhookKubeconfig
	if kubeconfig == "" {
		kubeconfig = DefaultWebhookKubeconfig
	}
	if !strings.HasPrefix(kubeconfig, "/") || strings.ContainsAny(kubeconfig, "\n\"\\") {
		return nil, fmt.Errorf("the webhook kubeconfig %q must be an absolute path, without quotes, backslashes or line breaks", kubeconfig)
	}
	var out bytes.Buffer
	err := configTemplate.Execute(&out, map[string]any{
		"Domains":    domains,
		"Kubeconfig": kubeconfig,
		"NotSystem":  NotSystem,
		"Partners":   indent(PartnerDomainCondition(domains), "        "),
	})
	if err != nil {
		return nil, fmt.Errorf("rendering the authorization configuration: %w", err)
	}
	return out.Bytes(), nil
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

var configTemplate = template.Must(template.New("authorization-config").Parse(`# The kube-apiserver's authorization chain with the partner-operator first,
# generated by ` + "`kubectl partner authz-config`" + ` from the cluster's partner
# registry. Pass it with --authorization-config (it replaces
# --authorization-mode); the apiserver re-reads it when it changes. Run the
# command again after registering or removing a PartnerOrganization:
# until then, the users of a newly registered partner get RBAC's answer.
# See docs/authorization-webhook.md.
#
# Partner domains: {{if .Domains}}{{range $i, $d := .Domains}}{{if $i}}, {{end}}{{$d}}{{end}}{{else}}none{{end}}
apiVersion: apiserver.config.k8s.io/v1
kind: AuthorizationConfiguration
authorizers:
- type: Webhook
  name: partner-operator
  webhook:
    # A partner request the operator cannot answer in time is denied.
    timeout: 3s
    failurePolicy: Deny
    subjectAccessReviewVersion: v1
    matchConditionSubjectAccessReviewVersion: v1
    # No decision cache: a revoked partner (deleted link, removed member,
    # narrowed assignment) is denied on its very next request.
    cacheAuthorizedRequests: false
    cacheUnauthorizedRequests: false
    connectionInfo:
      type: KubeConfigFile
      kubeConfigFile: "{{.Kubeconfig}}"
    # Only names under a partner domain reach the webhook: a partner's
    # users, and names that fall under a partner domain without being one
    # of its users (a@b@contoso.com, Alice@Contoso.com., ops@eu.contoso.com),
    # which the operator denies. Everyone else (the customer's own staff,
    # service accounts, the control plane) goes straight to Node and RBAC,
    # also while the operator is down.
    matchConditions:
    - expression: "{{.NotSystem}}"
    - expression: |-
{{.Partners}}
- type: Node
  name: node
- type: RBAC
  name: rbac
`))

// isDomain reports whether s is a lower-case ASCII DNS name with a dot.
func isDomain(s string) bool {
	if len(s) < 3 || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
