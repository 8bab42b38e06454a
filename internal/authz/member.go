package authz

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// MemberError says why a subject is not a member a role of the domain's link
// may hold.
type MemberError struct {
	// Field is the subject's field at fault: "kind" or "name".
	Field string
	// Forbidden is set for a system: identity, which is never a member,
	// rather than malformed.
	Forbidden bool
	Detail    string
}

func (e *MemberError) Error() string { return e.Field + ": " + e.Detail }

// ParseMember is the one definition, in Go, of a partner role member: a
// User named by a UPN of the link's own domain, or a Group named
// "<domain>:<group>" of it. It returns the key under which the index files
// the member (lower-cased), or why the subject is not one. Admission refuses
// what it refuses, and the index ignores it; the CRD's CEL rules on Subject
// are the schema's first line of defence and refuse less (they cannot know
// the link's domain).
func ParseMember(s v1alpha1.Subject, domain string) (string, *MemberError) {
	name := lower(s.Name)
	if strings.HasPrefix(name, "system:") {
		return "", &MemberError{Field: "name", Forbidden: true, Detail: "system: users, groups and service accounts are never partner members"}
	}
	switch s.Kind {
	case v1alpha1.UserSubject:
		if id, ok := ParseIdentity(name, nil); ok && id.Domain == domain {
			return id.User, nil
		}
		return "", &MemberError{Field: "name", Detail: fmt.Sprintf("must be a user of the partner's own domain: name@%s", domain)}
	case v1alpha1.GroupSubject:
		if group, ok := strings.CutPrefix(name, domain+":"); ok && isGroupName(group) {
			return name, nil
		}
		return "", &MemberError{Field: "name", Detail: fmt.Sprintf("must be a group of the partner's own domain: %s:<group>", domain)}
	}
	return "", &MemberError{Field: "kind", Detail: fmt.Sprintf("must be %s or %s", v1alpha1.UserSubject, v1alpha1.GroupSubject)}
}

// isGroupName: a non-empty name without spaces or control characters (the
// CRD's rule for what follows the colon).
func isGroupName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return false
		}
	}
	return true
}
