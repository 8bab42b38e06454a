// Package authz decides whether a partner user may make a Kubernetes request,
// by the permission model of DESIGN.md. It is pure: the Index is fed objects
// by the caller (informer event handlers in the manager) and answers from
// memory, with no client and no I/O.
package authz

import (
	"strings"
	"unicode"

	"golang.org/x/net/idna"
)

// DefaultTenantManagerGroup marks the group of a partner's tenant managers:
// <partner-domain>:tenant-managers, unless configured otherwise.
const DefaultTenantManagerGroup = "tenant-managers"

// Identity is a user as the authenticator names it, parsed as a partner user.
type Identity struct {
	// Domain is the lower-cased domain of the UPN.
	Domain string
	// User is the lower-cased UPN.
	User string
	// groups are the groups as the authenticator gave them; only those of
	// the user's own domain count (see Groups and InGroup).
	groups []string
}

// Class is what a username is to the partner rules.
type Class int

const (
	// NotAnIdentity: no domain at all (no @): service accounts, system
	// users, the customer's plain usernames. RBAC decides.
	NotAnIdentity Class = iota
	// Customer: a name whose domain is not a partner domain, nor a
	// sub-domain of one. RBAC decides.
	Customer
	// Partner: a well-formed UPN name@<partner-domain>.
	Partner
	// Malformed: a name whose normalised domain is a partner domain or a
	// sub-domain of one, but that is not a well-formed UPN of a partner
	// domain (x@y@contoso.com, System:bob@contoso.com, ops@eu.contoso.com,
	// alice@contoso.com., the Unicode form of an xn-- domain, ...). It is
	// denied, never handed to RBAC: a binding to system:authenticated must
	// not reach a partner's staff under a name the rules do not know.
	Malformed
)

// Classify reads a username. isPartner reports whether a lower-case ASCII
// domain is a partner domain. id is the parsed identity of every well-formed
// UPN (Partner, and Customer when the name parses); for Malformed, only
// id.Domain is set: the partner domain the name falls under.
func Classify(user string, groups []string, isPartner func(domain string) bool) (id Identity, class Class) {
	if parsed, ok := ParseIdentity(user, groups); ok {
		if isPartner(parsed.Domain) {
			return parsed, Partner
		}
		if parent, ok := partnerParent(parsed.Domain, isPartner); ok {
			return Identity{Domain: parent}, Malformed
		}
		return parsed, Customer
	}
	domain, ok := NormalizedDomain(user)
	if !ok {
		return Identity{}, NotAnIdentity
	}
	if isPartner(domain) {
		return Identity{Domain: domain}, Malformed
	}
	if parent, ok := partnerParent(domain, isPartner); ok {
		return Identity{Domain: parent}, Malformed
	}
	return Identity{}, Customer
}

// partnerParent returns the nearest parent domain of domain that is a
// partner domain: ops@eu.contoso.com falls under contoso.com.
func partnerParent(domain string, isPartner func(string) bool) (string, bool) {
	for {
		dot := strings.IndexByte(domain, '.')
		if dot < 0 {
			return "", false
		}
		domain = domain[dot+1:]
		if strings.IndexByte(domain, '.') < 0 {
			return "", false // a top-level domain is never a partner's
		}
		if isPartner(domain) {
			return domain, true
		}
	}
}

// NormalizedDomain is the domain a username is classified by: the part after
// its last @, lower-cased, without a trailing dot, in IDNA ASCII form. ok is
// false when the name has no @ or nothing after it.
func NormalizedDomain(user string) (string, bool) {
	_, after, found := strings.CutLast(user, "@")
	if !found {
		return "", false
	}
	domain := strings.TrimSuffix(strings.TrimSpace(strings.ToLower(after)), ".")
	if domain == "" {
		return "", false
	}
	if ascii, err := idna.Lookup.ToASCII(domain); err == nil {
		return ascii, true
	}
	// Not a valid IDNA name: classify by the lower-cased form, which a
	// partner domain (ASCII, validated) never equals, so a sub-domain test
	// still applies to its labels.
	return domain, true
}

// ParseIdentity reads a user as a well-formed partner UPN name@domain: a
// local part without @, colon, control or space characters, and a lower-case
// ASCII DNS domain with a dot (compared case-insensitively). ok is false for
// every other name; Classify says which of those are still a partner's.
// It does not allocate for a user name that is already lower-case.
func ParseIdentity(user string, groups []string) (id Identity, ok bool) {
	user = lower(user)
	at := strings.IndexByte(user, '@')
	if at <= 0 || !isLocalPart(user[:at]) || !isDomain(user[at+1:]) {
		return Identity{}, false
	}
	return Identity{Domain: user[at+1:], User: user, groups: groups}, true
}

// isLocalPart reports whether s can be the name part of a partner UPN. A
// colon is refused so that no user name can read as a group
// (<domain>:<group>) or carry a prefix (system:, oidc:).
func isLocalPart(s string) bool {
	for _, c := range s {
		if c == '@' || c == ':' || unicode.IsSpace(c) || unicode.IsControl(c) || c == utf8RuneError {
			return false
		}
	}
	return true
}

const utf8RuneError = '\uFFFD'

// ownGroup returns the group name of raw ("<domain>:<name>", compared
// case-insensitively) when it is of the identity's own domain.
func (id Identity) ownGroup(raw string) (key string, ok bool) {
	key = lower(raw)
	if len(key) <= len(id.Domain)+1 || key[len(id.Domain)] != ':' || key[:len(id.Domain)] != id.Domain {
		return "", false
	}
	return key, true
}

// Groups returns the user's groups of its own domain, lower-cased, without
// the "<domain>:" prefix. Groups of other domains grant nothing.
func (id Identity) Groups() []string {
	var out []string
	for _, g := range id.groups {
		if key, ok := id.ownGroup(g); ok {
			out = append(out, key[len(id.Domain)+1:])
		}
	}
	return out
}

// InGroup reports whether the identity is in the group <its domain>:<group>.
func (id Identity) InGroup(group string) bool {
	want := lower(group)
	for _, g := range id.groups {
		if key, ok := id.ownGroup(g); ok && key[len(id.Domain)+1:] == want {
			return true
		}
	}
	return false
}

// lower is strings.ToLower, which returns its argument (no allocation) when
// there is nothing to lower.
func lower(s string) string { return strings.ToLower(s) }

// isDomain reports whether s is a DNS name with at least one dot.
func isDomain(s string) bool {
	if len(s) < 3 || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	start := 0 // of the current label; scanned in place, without splitting
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
			continue
		}
		label := s[start:i]
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		start = i + 1
	}
	return true
}
