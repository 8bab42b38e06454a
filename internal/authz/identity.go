// Package authz decides whether a partner user may make a Kubernetes request,
// by the permission model of DESIGN.md. It is pure: the Index is fed objects
// by the caller (informer event handlers in the manager) and answers from
// memory, with no client and no I/O.
package authz

import (
	"slices"
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
	// Groups are the user's groups of its own domain, lower-cased, without
	// the "<domain>:" prefix. Groups of other domains grant nothing.
	Groups []string
}

// ParseIdentity reads a user as a UPN name@domain. ok is false for every
// identity that cannot be a partner user: system: users, service accounts,
// names without exactly one @, an empty local part, or a domain without a dot.
func ParseIdentity(user string, groups []string) (id Identity, ok bool) {
	user = strings.ToLower(strings.TrimSpace(user))
	if strings.HasPrefix(user, "system:") {
		return Identity{}, false
	}
	local, domain, found := strings.Cut(user, "@")
	if !found || local == "" || strings.Contains(domain, "@") || !isDomain(domain) {
		return Identity{}, false
	}
	id = Identity{Domain: domain, User: user}
	prefix := domain + ":"
	for _, g := range groups {
		g = strings.ToLower(strings.TrimSpace(g))
		if name, own := strings.CutPrefix(g, prefix); own && name != "" {
			id.Groups = append(id.Groups, name)
		}
	}
	return id, true
}

// InGroup reports whether the identity is in the group <its domain>:<group>.
func (id Identity) InGroup(group string) bool {
	return slices.Contains(id.Groups, strings.ToLower(group))
}

// isDomain reports whether s is a DNS name with at least one dot.
func isDomain(s string) bool {
	if len(s) < 3 || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// subjectKey is how role members are keyed in the index: "u:<upn>" for
// users and "g:<domain>:<group>" for groups, lower-cased.
func userKey(upn string) string            { return "u:" + upn }
func groupKey(domain, group string) string { return "g:" + domain + ":" + group }
