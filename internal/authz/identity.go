// Package authz decides whether a partner user may make a Kubernetes request,
// by the permission model of DESIGN.md. It is pure: the Index is fed objects
// by the caller (informer event handlers in the manager) and answers from
// memory, with no client and no I/O.
package authz

import (
	"strings"
)

// DefaultTenantManagerGroup marks the group of a partner's tenant managers:
// <partner-domain>:tenant-managers, unless configured otherwise.
const DefaultTenantManagerGroup = "tenant-managers"

// Identity is a user as the authenticator names it, parsed as a partner user.
type Identity struct {
	// Domain is the lower-cased domain of the UPN.
	Domain string
	// User is the lower-cased, trimmed UPN.
	User string
	// groups are the groups as the authenticator gave them; only those of
	// the user's own domain count (see Groups and InGroup).
	groups []string
}

// ParseIdentity reads a user as a UPN name@domain. ok is false for every
// identity that cannot be a partner user: system: users, service accounts,
// names without exactly one @, an empty local part, or a domain without a dot.
// It does not allocate for a user name that is already trimmed and lower-case.
func ParseIdentity(user string, groups []string) (id Identity, ok bool) {
	user = lower(strings.TrimSpace(user))
	if strings.HasPrefix(user, "system:") {
		return Identity{}, false
	}
	at := strings.IndexByte(user, '@')
	if at <= 0 || strings.IndexByte(user[at+1:], '@') >= 0 || !isDomain(user[at+1:]) {
		return Identity{}, false
	}
	return Identity{Domain: user[at+1:], User: user, groups: groups}, true
}

// ownGroup returns the group name of raw ("<domain>:<name>", compared
// case-insensitively after trimming) when it is of the identity's own domain.
func (id Identity) ownGroup(raw string) (key string, ok bool) {
	key = lower(strings.TrimSpace(raw))
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
