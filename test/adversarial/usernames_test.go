package adversarial

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/idna"
	authorizationv1 "k8s.io/api/authorization/v1"
)

// Class 3: usernames an identity provider may mint for a partner's staff.
// Each variant is classified by its normalised domain (the part after the
// last @, lower case, trailing dot stripped, IDNA to ASCII): when that is a
// partner domain or a sub-domain of one, the webhook must either treat it
// as exactly the partner user or deny it — never pass it to RBAC, where the
// world's system:authenticated view binding would grant it pods and more.

// variant transforms a base user (local part, domain) into a username.
type variant struct {
	name string
	make func(local, domain string) string
}

var variants = []variant{
	{"exact", func(l, d string) string { return l + "@" + d }},
	{"upper", func(l, d string) string { return strings.ToUpper(l + "@" + d) }},
	{"mixed-case", func(l, d string) string { return strings.ToUpper(l[:1]) + l[1:] + "@" + strings.ToUpper(d[:1]) + d[1:] }},
	{"trailing-dot", func(l, d string) string { return l + "@" + d + "." }},
	{"upper-trailing-dot", func(l, d string) string { return strings.ToUpper(l+"@"+d) + "." }},
	{"surrounding-spaces", func(l, d string) string { return " " + l + "@" + d + " " }},
	{"trailing-space", func(l, d string) string { return l + "@" + d + " " }},
	{"leading-tab", func(l, d string) string { return "\t" + l + "@" + d }},
	{"system-prefix", func(l, d string) string { return "system:" + l + "@" + d }},
	{"System-prefix", func(l, d string) string { return "System:" + l + "@" + d }},
	{"SYSTEM-prefix", func(l, d string) string { return "SYSTEM:" + l + "@" + d }},
	{"serviceaccount-prefix", func(l, d string) string { return "system:serviceaccount:default:" + l + "@" + d }},
	{"double-at", func(l, d string) string { return l + "@b@" + d }},
	{"double-at-other-partner", func(l, d string) string { return l + "@" + otherPartner(d) + "@" + d }},
	{"double-at-same-domain", func(l, d string) string { return l + "@" + d + "@" + d }},
	{"empty-local", func(_, d string) string { return "@" + d }},
	{"sub-domain", func(l, d string) string { return l + "@eu." + d }},
	{"deep-sub-domain", func(l, d string) string { return l + "@a.b." + d }},
	{"upper-sub-domain", func(l, d string) string { return strings.ToUpper(l + "@EU." + d) }},
	{"issuer-prefix", func(l, d string) string { return "oidc:" + l + "@" + d }},
	{"issuer-url-prefix", func(l, d string) string { return "https://login.example.com#" + l + "@" + d }},
	{"colon-local-other-partner", func(_, d string) string { return otherPartner(d) + ":ops@" + d }},
	{"fullwidth-domain", func(l, d string) string { return l + "@" + fullwidth(d) }},
	{"zero-width-space", func(l, d string) string { return l + "@" + d[:2] + "\u200b" + d[2:] }},
	// Not the partner's domain after normalisation (a Cyrillic o): RBAC
	// decides, and these are the controls that show the binding works.
	{"cyrillic-lookalike", func(l, d string) string { return l + "@" + strings.Replace(d, "o", "\u043e", 1) }},
	{"suffix-not-subdomain", func(l, d string) string { return l + "@evil" + d }},
}

func otherPartner(d string) string {
	if d == fabrikam {
		return contoso
	}
	return fabrikam
}

// fullwidth maps ASCII letters to their fullwidth forms, which IDNA's UTS 46
// mapping folds back.
func fullwidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' {
			r = r - 'a' + '\uff41'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// normalisedDomain is DESIGN.md's classification of a username.
func normalisedDomain(user string) string {
	user = strings.TrimSpace(user)
	at := strings.LastIndex(user, "@")
	if at < 0 {
		return ""
	}
	d := strings.TrimSuffix(strings.ToLower(user[at+1:]), ".")
	if ascii, err := idna.Lookup.ToASCII(d); err == nil {
		d = ascii
	}
	return d
}

// canonical is a username as a well-formed partner UPN would be after
// normalisation: trimmed, lower case, trailing dot stripped, domain in ASCII.
func canonical(user string) string {
	user = strings.TrimSpace(user)
	at := strings.LastIndex(user, "@")
	if at < 0 {
		return user
	}
	return strings.ToLower(user[:at]) + "@" + normalisedDomain(user)
}

// apiserverIdentity: a name the shipped authorization config's
// matchConditions keep from the webhook (`!request.user.startsWith('system:')`).
func apiserverIdentity(user string) bool { return strings.HasPrefix(user, "system:") }

var partnerDomains = []string{contoso, fabrikam, buecher}

// inPartnerDomain: the normalised domain is a partner domain or a sub-domain of one.
func inPartnerDomain(user string) bool {
	d := normalisedDomain(user)
	for _, p := range partnerDomains {
		if d == p || strings.HasSuffix(d, "."+p) {
			return true
		}
	}
	return false
}

// usernameBase is a partner user to vary, with rooms of tenant-a in and out
// of its scope.
type usernameBase struct {
	local, domain string
	inScope       []string
	outOfScope    []string
}

var usernameBases = []usernameBase{
	{"alice", contoso, []string{"nyc-1"}, []string{"sea-1", "par-1"}},
	{"frank", fabrikam, []string{"sea-1"}, []string{"nyc-1", "par-1"}},
	// bücher.example's U-label: a partner domain with no partnership.
	{"alice", "bücher.example", nil, []string{"nyc-1", "par-1"}},
	{"alice", buecher, nil, []string{"nyc-1", "par-1"}},
}

func testUsernames(t *testing.T) {
	var cases []sarCase
	for _, base := range usernameBases {
		for _, v := range variants {
			user := v.make(base.local, base.domain)
			prefix := fmt.Sprintf("%s@%s/%s", base.local, base.domain, v.name)
			groups := []string{authenticated}
			pods := &authorizationv1.ResourceAttributes{Namespace: tenantA, Verb: "get", Resource: "pods"}
			if apiserverIdentity(user) {
				// The apiserver's own identities (lower-case system:)
				// never reach the webhook: the shipped matchConditions keep
				// them out, so that the webhook being down never touches
				// them, and no authenticator mints them for a partner's
				// staff (JWT authenticators refuse system: usernames).
				cases = append(cases, sarCase{name: prefix + "/system-identity/get_pods_rbac_decides",
					spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: pods},
					check: func(st authorizationv1.SubjectAccessReviewStatus) error {
						if st.Denied || !strings.HasPrefix(st.Reason, "RBAC:") {
							return fmt.Errorf("user %q is a system: identity: want RBAC's answer, got allowed=%v denied=%v reason=%q", user, st.Allowed, st.Denied, st.Reason)
						}
						return nil
					}})
				continue
			}
			if !inPartnerDomain(user) {
				// A control: not a partner identity, so RBAC decides and
				// its view binding grants pods.
				cases = append(cases, sarCase{name: prefix + "/not-a-partner/get_pods_rbac_decides",
					spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: pods},
					check: func(st authorizationv1.SubjectAccessReviewStatus) error {
						if !st.Allowed || st.Denied {
							return fmt.Errorf("user %q (normalised domain %q) is not a partner user: want RBAC's allow, got allowed=%v denied=%v reason=%q", user, normalisedDomain(user), st.Allowed, st.Denied, st.Reason)
						}
						return nil
					}})
				continue
			}
			denied := func(st authorizationv1.SubjectAccessReviewStatus) error {
				if st.Allowed || !st.Denied {
					return fmt.Errorf("user %q (normalised domain %q): want denied=true by the webhook, got allowed=%v denied=%v reason=%q", user, normalisedDomain(user), st.Allowed, st.Denied, st.Reason)
				}
				return nil
			}
			cases = append(cases, sarCase{name: prefix + "/get_pods",
				spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: pods}, check: denied})
			for _, room := range base.outOfScope {
				a := &authorizationv1.ResourceAttributes{Namespace: tenantA, Verb: "get", Group: pg, Resource: "rooms", Name: room}
				cases = append(cases, sarCase{name: prefix + "/get_room_out_of_scope_" + room,
					spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: a}, check: denied})
			}
			for _, room := range base.inScope {
				a := &authorizationv1.ResourceAttributes{Namespace: tenantA, Verb: "get", Group: pg, Resource: "rooms", Name: room}
				cases = append(cases, sarCase{name: prefix + "/get_room_in_scope_" + room,
					spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: a},
					check: func(st authorizationv1.SubjectAccessReviewStatus) error {
						// A name that normalises to exactly the partner user
						// may be treated as it (allowed) or denied; any other
						// shape must be denied. Never RBAC's answer.
						if canonical(user) != canonical(base.local+"@"+base.domain) {
							return denied(st)
						}
						if !st.Allowed && !st.Denied {
							return fmt.Errorf("user %q (normalised domain %q): want allowed (as the partner user) or denied=true, got no opinion reason=%q", user, normalisedDomain(user), st.Reason)
						}
						return nil
					}})
			}
		}
	}
	runReviews(t, cases)
}
