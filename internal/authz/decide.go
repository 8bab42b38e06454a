package authz

import (
	"fmt"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// Decide answers one request. Every request passes once through the same
// stages, in the order of DESIGN.md:
//
//  1. who asks: the caller, resolved once per index generation
//     (callers.go); only a well-formed partner user goes on, and only
//     while the index is current (SetStale).
//  2. what it needs: the request mapped to nothing (discovery, self
//     reviews), to the tenant-manager rules, or to a permission of the
//     matrix (request.go); partners may make no other request.
//  3. the session: the customer's session policy for the partner in the
//     namespace (session.go), met by the request's user extra.
//  4. where: whether the caller's grants give the permission on what the
//     request acts on (decideScope, scope.go).
//
// A request on one named room, nearly every review, is decided by the one
// scan of the caller's grants that stage 4 makes anyway: a probe of the
// caller cache, then one of the room per grant.
func (x *Index) Decide(r *Request) Decision {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.synced {
		return starting(r)
	}
	c := x.caller(r)
	if d, decided := decideClass(c); decided {
		return d
	}
	// A stale index may still hold a grant the cluster has revoked; the
	// classes above are answered from it all the same, as before a change.
	if reason := x.stale.Load(); reason != nil {
		return deny(IndexStale, *reason)
	}
	n := required(r)
	switch n.kind {
	case never:
		return forbidden(r)
	case discovery:
		return allow("discovery")
	case selfReview:
		return allow("self review")
	}
	// Every request in a namespace meets the customer's session policy
	// there; discovery and self reviews are cluster-wide, in no namespace.
	if d, denied := c.policy.check(r); denied {
		return d
	}
	switch n.kind {
	case tenantManagement:
		return x.tenantOf(r.Namespace).decideTenantManager(c.id, r, x.tenantManagerGroup)
	case changeRequests:
		return x.tenantOf(r.Namespace).decideChangeRequest(c, r, x.tenantManagerGroup)
	}
	return x.decideScope(c, r, n)
}

// starting answers until the index has synced. It cannot tell partner
// domains yet, so every name with a domain is denied: fail closed.
func starting(r *Request) Decision {
	if _, named := NormalizedDomain(r.User); !named {
		return noOpinion(reasonNotAnIdentity)
	}
	return deny(IndexNotSynced, "the partner-operator is starting: its decision index has not synced yet")
}

// decideClass answers every caller that is not a well-formed partner user
// by its class alone. decided is false for a Partner.
func decideClass(c *caller) (d Decision, decided bool) {
	switch c.class {
	case NotAnIdentity:
		return noOpinion(reasonNotAnIdentity), true
	case Customer:
		return noOpinion(reasonNotPartner), true
	case Malformed:
		return deny(MalformedUser, malformedReason(c.id.Domain)), true
	}
	return Decision{}, false
}

// tenantOf returns the namespace's tenant. A namespace the index knows
// nothing of is answered as an empty one, with the same reasons (see
// decideScope).
func (x *Index) tenantOf(namespace string) *tenant {
	if t := x.tenants[namespace]; t != nil {
		return t
	}
	return noTenant
}

// noTenant stands for every namespace the index holds nothing of. It is
// never written.
var noTenant = newTenant("", nil)

// malformedReason denies a name that falls under a partner domain without
// being one of its well-formed users.
func malformedReason(domain string) string {
	return fmt.Sprintf("the username falls under the partner domain %s but is not a well-formed user of a partner domain (name@<partner-domain>, no prefix, no sub-domain): it is denied", domain)
}

// Reasons of the decisions on the hot path: constants, so that deciding
// allocates nothing. The apiserver's Forbidden message names the user, verb,
// resource and object already.
const (
	reasonGranted       = "a role of the partner grants it"
	reasonNotAnIdentity = "not a partner identity"
	// reasonNotPartner answers the customer's own staff, when they sign in
	// with UPNs: likely the most frequent review of all.
	reasonNotPartner      = "the user's domain is not a partner domain"
	reasonRoomOutOfScope  = "the room is not in the scope of the caller's roles"
	reasonPartialScope    = "the caller's roles cover only part of the partner's rooms: get rooms by name"
	reasonOtherLinksRoles = "the PartnerRole belongs to a partner link on which the caller's roles do not grant it"
	reasonRolesListHint   = "list PartnerRoles of one partner link with the field selector spec.partnerLink=<link> (kubectl get partnerroles --field-selector spec.partnerLink=<link>)"
	reasonNoRoleOwner     = "no partner link of the caller owns a PartnerRole of this name: a role's name starts with its PartnerLink's name and a dash"
	reasonAllLinksList    = "the partner has more than one partner link in this namespace and the caller's roles do not cover all of them: get rooms by name"
	// The reason of an unknown ticket or report is that of one out of
	// scope: the answers never reveal which exist.
	reasonTicketOutOfScope     = "the ticket is not about a room in the scope of the caller's roles (or does not exist)"
	reasonReportOutOfScope     = "the room report is not about a room in the scope of the caller's roles (or does not exist)"
	reasonListedRoomOutOfScope = "the label selector partners.roompro.io/room names a room outside the scope of the caller's roles: name only rooms the roles cover"
	reasonAllLinksRoomObjects  = "the partner has more than one partner link in this namespace and the caller's roles do not cover all of them: list with the label selector partners.roompro.io/room=<room>"
	reasonRingOutOfScope       = "the update ring holds rooms outside the scope of the caller's roles (updateRings.modify must cover every room whose spec.updateRing names it): ask the customer to change the ring"
)

// noGrantReasons holds one constant reason per permission, so that denying
// allocates nothing. The apiserver's Forbidden message names the user and
// the namespace already.
var noGrantReasons = func() map[v1alpha1.Permission]string {
	reasons := make(map[v1alpha1.Permission]string, len(v1alpha1.AllPermissions))
	for _, p := range v1alpha1.AllPermissions {
		reasons[p] = noRoleGrantsReason(p)
	}
	return reasons
}()

func noRoleGrants(p v1alpha1.Permission) string {
	if reason, ok := noGrantReasons[p]; ok {
		return reason
	}
	return noRoleGrantsReason(p)
}

func noRoleGrantsReason(p v1alpha1.Permission) string {
	return "no role of the caller grants " + string(p)
}

// forbidden denies a request partners may never make. It is a function of
// its own so that Decide, on every review's path, keeps a small frame.
func forbidden(r *Request) Decision {
	what := r.Path
	if what == "" {
		what = resourceName(r)
	}
	return deny(NeverForPartners, fmt.Sprintf("partner users may not %s %s", r.Verb, what))
}

func resourceName(r *Request) string {
	name := r.Resource
	if r.Subresource != "" {
		name += "/" + r.Subresource
	}
	if r.Group != "" {
		name += "." + r.Group
	}
	return name
}
