package authz

import (
	"fmt"
	"strings"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// Decide answers one request. Every request passes once through the same
// stages, in the order of DESIGN.md:
//
//  1. who asks: the caller, resolved once per index generation
//     (callers.go); only a well-formed partner user goes on.
//  2. what it needs: the request mapped to nothing (discovery, self
//     reviews), to the tenant-manager rules, or to a permission of the
//     matrix (request.go); partners may make no other request.
//  3. where: whether the caller's grants give the permission on what the
//     request acts on (decideScope).
//
// A request on one named room, nearly every review, is decided by the one
// scan of the caller's grants that stage 3 makes anyway: a probe of the
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
	n := required(r)
	switch n.kind {
	case never:
		return Decision{Deny, fmt.Sprintf("partner users may not %s %s", r.Verb, requested(r))}
	case anyone:
		return Decision{Allow, n.reason}
	case tenantManagement:
		return x.tenantOf(r.Namespace).decideTenantManager(c.id, r, x.tenantManagerGroup)
	}
	return x.decideScope(c, r, n)
}

// starting answers until the index has synced. It cannot tell partner
// domains yet, so every name with a domain is denied: fail closed.
func starting(r *Request) Decision {
	if _, named := NormalizedDomain(r.User); !named {
		return Decision{NoOpinion, reasonNotAnIdentity}
	}
	return Decision{Deny, "the partner-operator is starting: its decision index has not synced yet"}
}

// decideClass answers every caller that is not a well-formed partner user
// by its class alone. decided is false for a Partner.
func decideClass(c *caller) (d Decision, decided bool) {
	switch c.class {
	case NotAnIdentity:
		return Decision{NoOpinion, reasonNotAnIdentity}, true
	case Customer:
		return Decision{NoOpinion, reasonNotPartner}, true
	case Malformed:
		return Decision{Deny, malformedReason(c.id.Domain)}, true
	}
	return Decision{}, false
}

// decideScope is stage 3: some grant of the caller must give the permission
// the request needs, and, for a room or a role, give it where the request
// acts.
func (x *Index) decideScope(c *caller, r *Request, n need) Decision {
	room := ""
	if n.room {
		room = r.Name
	}
	held, inScope := scan(c.grants, n.permission, room)
	switch {
	case !held:
		// The same answer in every namespace where the caller holds
		// nothing, whether another partner is there or the namespace
		// exists at all: a partner cannot tell the customer's namespaces
		// from the answers.
		return Decision{Deny, noRoleGrants(n.permission)}
	case inScope:
		return Decision{Allow, reasonGranted}
	case room != "":
		return Decision{Deny, reasonRoomOutOfScope}
	case n.roles:
		return decideRoles(x.tenantOf(r.Namespace), c.grants, r, n)
	case n.room:
		return decideUnnamedRooms(x.tenantOf(r.Namespace), c.grants, x.domainRefs[c.id.Domain], r, n)
	}
	return Decision{Allow, reasonGranted}
}

// scan is the one pass over the caller's grants that every permission check
// makes. held reports whether some grant gives the permission; when the
// request names a room (room is not ""), inScope reports whether some grant
// gives it on that room. Without a room the scan stops at the first grant
// that holds it. It allocates nothing: a caller holds few grants.
func scan(grants []*grant, p v1alpha1.Permission, room string) (held, inScope bool) {
	bit := bitOf(p)
	for _, g := range grants {
		if g.permissions&bit == 0 {
			continue
		}
		if room == "" {
			return true, false
		}
		if g.covers(room) {
			return true, true
		}
		held = true
	}
	return held, false
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

// decideUnnamedRooms decides a request on rooms that names none (a named
// one is decided by decideScope's scan): a list or watch is allowed only
// when its label selector confines it to the partner's rooms and the
// caller's grants cover the whole scope of every active link of its domain
// in the namespace (the access label is per domain, so it selects the rooms
// of all of them).
func decideUnnamedRooms(t *tenant, grants []*grant, partner *partnerDomain, r *Request, n need) Decision {
	if r.Subresource != "" || r.Verb != "list" && r.Verb != "watch" {
		return Decision{Deny, fmt.Sprintf("%s %s needs a room name", r.Verb, resourceName(r))}
	}
	if !requiresAccessLabel(r.LabelSelector, partner.accessLabel) {
		return Decision{Deny, partner.listHint}
	}
	covered := wholeLinksCovered(grants, n.permission)
	switch {
	case covered == 0:
		return Decision{Deny, reasonPartialScope}
	case covered < t.activeLinksOf[partner.domain]:
		return Decision{Deny, reasonAllLinksList}
	}
	return Decision{Allow, reasonGranted}
}

// wholeLinksCovered counts the links on whose whole scope some grant gives
// p. It allocates nothing: a caller holds few grants.
func wholeLinksCovered(grants []*grant, p v1alpha1.Permission) int {
	bit, n := bitOf(p), 0
	for i, g := range grants {
		if g.scope != nil || g.permissions&bit == 0 {
			continue
		}
		seen := false
		for _, h := range grants[:i] {
			if h.link == g.link && h.scope == nil && h.permissions&bit != 0 {
				seen = true
				break
			}
		}
		if !seen {
			n++
		}
	}
	return n
}

// decideRoles allows requests on the roles of the links on which the
// caller's grants give the permission: a named role by the link that owns
// it, a list or watch by the field selector that confines it to one link,
// and a create for any such link (the admission webhook checks the role's).
func decideRoles(t *tenant, grants []*grant, r *Request, n need) Decision {
	holds := func(link string) bool {
		return find(grants, n.permission, func(g *grant) bool { return g.link.name == link }) != nil
	}
	if r.Name == "" {
		switch r.Verb {
		case "create":
			return Decision{Allow, reasonGranted}
		case "list", "watch":
			// Requirements are ANDed: one that confines the list to a link
			// the caller holds the permission on is enough.
			confined := false
			for _, req := range r.FieldSelector {
				if link, ok := singleValue(req, "spec.partnerLink"); ok {
					if holds(link) {
						return Decision{Allow, reasonGranted}
					}
					confined = true
				}
			}
			if confined {
				return Decision{Deny, reasonOtherLinksRoles}
			}
			return Decision{Deny, reasonRolesListHint}
		}
		return Decision{Deny, fmt.Sprintf("%s %s needs a name", r.Verb, resourceName(r))}
	}
	if role, known := t.roles[r.Name]; known {
		if holds(role.Spec.PartnerLink) {
			return Decision{Allow, reasonGranted}
		}
		return Decision{Deny, reasonOtherLinksRoles}
	}
	// A role the index has not seen: it does not exist, or it was created
	// a moment ago. Its name says which links may own it (the CRD requires
	// <link>-<name>); the caller must hold the permission on every one, so
	// that no race lets it read another link's role.
	owners := 0
	for _, link := range t.roleOwners(r.Name) {
		if !holds(link) {
			return Decision{Deny, reasonOtherLinksRoles}
		}
		owners++
	}
	if owners == 0 {
		return Decision{Deny, reasonNoRoleOwner}
	}
	return Decision{Allow, reasonGranted}
}

// roleOwners lists the links that may own a role of this name: the link of
// a built-in role's name, or else every link whose name, with a dash, the
// name starts with.
func (t *tenant) roleOwners(role string) []string {
	if link, ok := strings.CutSuffix(role, v1alpha1.PrimaryAdminRoleSuffix); ok {
		return []string{link}
	}
	var owners []string
	for link := range t.links {
		if strings.HasPrefix(role, link+"-") {
			owners = append(owners, link)
		}
	}
	return owners
}

// singleValue returns the single value a requirement requires of key
// (key=v, key==v or key in (v)).
func singleValue(req Requirement, key string) (string, bool) {
	if req.Key == key && (req.Operator == "In" || req.Operator == "Equals") && len(req.Values) == 1 {
		return req.Values[0], true
	}
	return "", false
}

// decideTenantManager applies the rights of a partner's tenant managers to
// a request on invitations or links (see required): read and decline
// (delete) their domain's invitations, accept one by creating a
// PartnerLink, and read or end (delete) their links.
func (t *tenant) decideTenantManager(id Identity, r *Request, managers string) Decision {
	if !id.InGroup(managers) {
		return Decision{Deny, fmt.Sprintf("only members of %s:%s may %s %s", id.Domain, managers, r.Verb, r.Resource)}
	}
	switch {
	case r.Resource == "partnerinvitations" && (r.Verb == "get" || r.Verb == "delete"):
		if inv, ok := t.invitations[r.Name]; ok && string(inv.Spec.PartnerDomain) == id.Domain {
			return Decision{Allow, "tenant manager of the invited partner"}
		}
		return Decision{Deny, fmt.Sprintf("no invitation %q for %s in namespace %q", r.Name, id.Domain, r.Namespace)}
	case r.Resource == "partnerlinks" && r.Verb == "create":
		for _, inv := range t.invitations {
			if string(inv.Spec.PartnerDomain) == id.Domain && inv.Status.Phase != v1alpha1.InvitationAccepted && inv.Status.Phase != v1alpha1.InvitationExpired {
				return Decision{Allow, "tenant manager accepting an invitation; the admission webhook checks which"}
			}
		}
		return Decision{Deny, fmt.Sprintf("no pending invitation for %s in namespace %q", id.Domain, r.Namespace)}
	case r.Resource == "partnerlinks" && (r.Verb == "get" || r.Verb == "delete"):
		if l, ok := t.links[r.Name]; ok && string(l.Spec.PartnerDomain) == id.Domain {
			return Decision{Allow, "tenant manager of the linked partner"}
		}
		// kubectl apply reads the link before it creates it: a link that
		// does not exist yet may be read under the name of an invitation.
		if inv, ok := t.invitations[r.Name]; ok && r.Verb == "get" && string(inv.Spec.PartnerDomain) == id.Domain {
			return Decision{Allow, "tenant manager of the invited partner"}
		}
		return Decision{Deny, fmt.Sprintf("no PartnerLink %q of %s in namespace %q", r.Name, id.Domain, r.Namespace)}
	}
	return Decision{Deny, fmt.Sprintf("tenant managers may not %s %s", r.Verb, r.Resource)}
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

// requested names what a request acts on, for a denial: its path, or its
// resource.
func requested(r *Request) string {
	if r.Path != "" {
		return r.Path
	}
	return resourceName(r)
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
