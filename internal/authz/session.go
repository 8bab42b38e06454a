package authz

import (
	"fmt"
	"slices"
	"strings"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// This file is the customer's session policy (PartnerInvitation
// spec.sessionPolicy): what the user extra of a partner user's request must
// carry in the namespace, whatever the request.

// sessionPolicy is what the live invitations of one partner domain in one
// namespace require together: every requirement of each of them. A
// partner's grants there may come from more than one of its links, and the
// customer wrote each policy for the whole partner: requiring them all is
// the reading that never opens a session one of them refuses.
type sessionPolicy struct {
	requirements []extraRequirement
}

// extraRequirement is one key of a requiredExtra: the request's extra must
// hold one of values under key.
type extraRequirement struct {
	key    string
	values []string
	// reason denies a request that misses it, built once so that denying
	// allocates nothing.
	reason string
}

// check denies a request whose extra misses a requirement of the policy,
// naming the first it misses. A nil policy requires nothing.
func (p *sessionPolicy) check(r *Request) (Decision, bool) {
	if p == nil || r.SessionVerified {
		return Decision{}, false
	}
	for i := range p.requirements {
		req := &p.requirements[i]
		if !holdsOneOf(r.Extra[req.key], req.values) {
			return deny(SessionPolicyUnmet, req.reason), true
		}
	}
	return Decision{}, false
}

func holdsOneOf(have, want []string) bool {
	for _, v := range have {
		if slices.Contains(want, v) {
			return true
		}
	}
	return false
}

// policyOf combines the session policies of the domain's invitations that
// are not Expired (an expired invitation is a record that grants nothing
// and accepts nothing), in the order of their names and keys so that the
// reason of a denial does not depend on the order of updates. nil when
// none has a policy.
func policyOf(invitations map[string]*v1alpha1.PartnerInvitation, domain string) *sessionPolicy {
	var names []string
	for name, inv := range invitations {
		if inv.Spec.SessionPolicy != nil && inv.Status.Phase != v1alpha1.InvitationExpired && lower(string(inv.Spec.PartnerDomain)) == domain {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	p := &sessionPolicy{}
	for _, name := range names {
		required := invitations[name].Spec.SessionPolicy.RequiredExtra
		keys := make([]string, 0, len(required))
		for key := range required {
			keys = append(keys, key)
		}
		slices.Sort(keys)
		for _, key := range keys {
			values := slices.Clone(required[key])
			p.requirements = append(p.requirements, extraRequirement{key: key, values: values, reason: sessionPolicyReason(name, key, values)})
		}
	}
	return p
}

func sessionPolicyReason(invitation, key string, values []string) string {
	return fmt.Sprintf("the customer's session policy (PartnerInvitation %s, spec.sessionPolicy.requiredExtra) requires the user extra %q to hold one of [%s], and this request's does not: sign in as the policy requires (the cluster's authentication sets extra, e.g. from an OIDC claim)",
		invitation, key, strings.Join(values, ", "))
}

// setInvitation records an invitation change: the tenant-manager rules read
// the invitations, and the session policy of its domain follows them.
func (t *tenant) setInvitation(inv *v1alpha1.PartnerInvitation, remove bool) {
	domain := lower(string(inv.Spec.PartnerDomain)) // immutable
	put(t.invitations, inv.Name, inv, remove)
	// A link accepts the invitation of its own name: its autoExtend
	// decides whether the link ends at its expiresAt.
	t.setLinkUntil(inv.Name)
	if p := policyOf(t.invitations, domain); p != nil {
		t.policies[domain] = p
	} else {
		delete(t.policies, domain)
	}
}
