package authz

import (
	"fmt"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// Decide answers one request.
func (x *Index) Decide(r *Request) Decision {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.synced && r.Path == "" && r.Name != "" && r.Group == Group && r.Resource == "rooms" {
		if d, decided := x.decideNamedRoom(r); decided {
			return d
		}
	}
	return x.decide(r)
}

// decideNamedRoom is the hot path: a request on one room, by a partner user
// (or by the customer's staff, who get no opinion). decided is false for
// the rare requests whose answer decide words.
//
// The caller is resolved once per index generation (callers.go); after that
// a decision is a probe of the caller cache and one of the room.
func (x *Index) decideNamedRoom(r *Request) (d Decision, decided bool) {
	p, ok := roomPermission(r.Verb, r.Subresource)
	if !ok || r.Subresource == "" && r.Verb == "create" {
		return Decision{}, false
	}
	c := x.caller(r)
	switch {
	case !c.identity:
		return Decision{}, false // decide says why
	case !c.partner:
		return Decision{NoOpinion, reasonNotPartner}, true
	}
	bit := bitOf(p)
	held := false
	for _, g := range c.grants {
		if g.permissions&bit != 0 {
			if g.covers(r.Name) {
				return Decision{Allow, reasonGranted}, true
			}
			held = true
		}
	}
	switch {
	case held:
		return Decision{Deny, reasonRoomOutOfScope}, true
	case x.tenants[r.Namespace] == nil:
		return Decision{}, false // decide says which namespace
	}
	return Decision{Deny, noRoleGrants(p)}, true
}

// decide applies every rule, in the order of DESIGN.md.
func (x *Index) decide(r *Request) Decision {
	id, ok := ParseIdentity(r.User, r.Groups)
	if !ok {
		return Decision{NoOpinion, "not a partner identity"}
	}
	if !x.synced {
		return Decision{Deny, "the partner-operator is starting: its decision index has not synced yet"}
	}
	partner := x.domainRefs[id.Domain]
	if partner == nil {
		return Decision{NoOpinion, reasonNotPartner}
	}
	if r.Path != "" {
		if isDiscovery(r.Path) {
			return Decision{Allow, "discovery"}
		}
		return Decision{Deny, fmt.Sprintf("partner users may not access %s", r.Path)}
	}
	if isSelfReview(r) {
		return Decision{Allow, "self review"}
	}
	t := x.tenants[r.Namespace]
	if t == nil {
		return Decision{Deny, fmt.Sprintf("%s has no partnership in namespace %q", id.Domain, r.Namespace)}
	}
	if d, decided := t.decideTenantManager(id, r, x.tenantManagerGroup); decided {
		return d
	}
	n, ok := required(r)
	if !ok {
		return Decision{Deny, fmt.Sprintf("partner users may not %s %s", r.Verb, resourceName(r))}
	}
	grants := x.caller(r).grants
	if find(grants, n.permission, anyGrant) == nil {
		return Decision{Deny, noRoleGrants(n.permission)}
	}
	switch {
	case n.roles:
		return decideRoles(t, grants, r, n)
	case n.room:
		return decideRoom(grants, partner, r, n)
	}
	return Decision{Allow, reasonGranted}
}

// find returns the first of a caller's grants (caller.grants) that holds p
// and satisfies ok, or nil. It allocates nothing.
func find(grants []*grant, p v1alpha1.Permission, ok func(*grant) bool) *grant {
	bit := bitOf(p)
	for _, g := range grants {
		if g.permissions&bit != 0 && ok(g) {
			return g
		}
	}
	return nil
}

func anyGrant(*grant) bool { return true }

// Reasons of the decisions on the hot path: constants, so that deciding
// allocates nothing. The apiserver's Forbidden message names the user, verb,
// resource and object already.
const (
	reasonGranted = "a role of the partner grants it"
	// reasonNotPartner answers the customer's own staff, when they sign in
	// with UPNs: likely the most frequent review of all.
	reasonNotPartner      = "the user's domain is not a partner domain"
	reasonRoomOutOfScope  = "the room is not in the scope of the caller's roles"
	reasonPartialScope    = "the caller's roles cover only part of the partner's rooms: get rooms by name"
	reasonOtherLinksRoles = "the PartnerRole belongs to another partner link"
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

// decideRoom allows a request on a named room in the link's scope and in the
// assignment's scope; a list or watch only when its label selector confines
// it to the partner's rooms and a grant covers the link's whole scope.
func decideRoom(grants []*grant, partner *partnerDomain, r *Request, n need) Decision {
	if r.Name == "" {
		if r.Subresource == "" && (r.Verb == "list" || r.Verb == "watch") {
			if !requiresAccessLabel(r.LabelSelector, partner.accessLabel) {
				return Decision{Deny, partner.listHint}
			}
			if find(grants, n.permission, func(g *grant) bool { return g.scope == nil }) != nil {
				return Decision{Allow, reasonGranted}
			}
			return Decision{Deny, reasonPartialScope}
		}
		return Decision{Deny, fmt.Sprintf("%s %s needs a room name", r.Verb, resourceName(r))}
	}
	if find(grants, n.permission, func(g *grant) bool { return g.covers(r.Name) }) != nil {
		return Decision{Allow, reasonGranted}
	}
	return Decision{Deny, reasonRoomOutOfScope}
}

// decideRoles allows requests on the roles of the caller's own links.
func decideRoles(t *tenant, grants []*grant, r *Request, n need) Decision {
	role, named := t.roles[r.Name]
	if find(grants, n.permission, func(g *grant) bool { return r.Name == "" || !named || role.Spec.PartnerLink == g.link.name }) != nil {
		return Decision{Allow, reasonGranted}
	}
	return Decision{Deny, reasonOtherLinksRoles}
}

// decideTenantManager applies the rights of a partner's tenant managers:
// read and decline (delete) their domain's invitations, accept one by
// creating a PartnerLink, and read or end (delete) their links. decided is
// false for every other request.
func (t *tenant) decideTenantManager(id Identity, r *Request, managers string) (d Decision, decided bool) {
	if r.Group != Group || r.Subresource != "" || (r.Resource != "partnerinvitations" && r.Resource != "partnerlinks") {
		return Decision{}, false
	}
	if !id.InGroup(managers) {
		return Decision{Deny, fmt.Sprintf("only members of %s:%s may %s %s", id.Domain, managers, r.Verb, r.Resource)}, true
	}
	switch {
	case r.Resource == "partnerinvitations" && (r.Verb == "get" || r.Verb == "delete"):
		if inv, ok := t.invitations[r.Name]; ok && string(inv.Spec.PartnerDomain) == id.Domain {
			return Decision{Allow, "tenant manager of the invited partner"}, true
		}
		return Decision{Deny, fmt.Sprintf("no invitation %q for %s in namespace %q", r.Name, id.Domain, r.Namespace)}, true
	case r.Resource == "partnerlinks" && r.Verb == "create":
		for _, inv := range t.invitations {
			if string(inv.Spec.PartnerDomain) == id.Domain && inv.Status.Phase != v1alpha1.InvitationAccepted && inv.Status.Phase != v1alpha1.InvitationExpired {
				return Decision{Allow, "tenant manager accepting an invitation; the admission webhook checks which"}, true
			}
		}
		return Decision{Deny, fmt.Sprintf("no pending invitation for %s in namespace %q", id.Domain, r.Namespace)}, true
	case r.Resource == "partnerlinks" && (r.Verb == "get" || r.Verb == "delete"):
		if l, ok := t.links[r.Name]; ok && string(l.Spec.PartnerDomain) == id.Domain {
			return Decision{Allow, "tenant manager of the linked partner"}, true
		}
		// kubectl apply reads the link before it creates it: a link that
		// does not exist yet may be read under the name of an invitation.
		if inv, ok := t.invitations[r.Name]; ok && r.Verb == "get" && string(inv.Spec.PartnerDomain) == id.Domain {
			return Decision{Allow, "tenant manager of the invited partner"}, true
		}
		return Decision{Deny, fmt.Sprintf("no PartnerLink %q of %s in namespace %q", r.Name, id.Domain, r.Namespace)}, true
	}
	return Decision{Deny, fmt.Sprintf("tenant managers may not %s %s", r.Verb, r.Resource)}, true
}

// requiresAccessLabel reports whether a selector confines a list to the
// rooms labelled with a partner's access label (key): with Exists, or with
// In (or Equals) and the single value "true".
func requiresAccessLabel(selector []Requirement, key string) bool {
	for _, req := range selector {
		if req.Key != key {
			continue
		}
		switch req.Operator {
		case "Exists":
			return true
		case "In", "Equals":
			if len(req.Values) == 1 && req.Values[0] == "true" {
				return true
			}
		}
	}
	return false
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
