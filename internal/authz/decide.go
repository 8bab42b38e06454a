package authz

import (
	"fmt"
	"strings"

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
	switch c.class {
	case Customer:
		return Decision{NoOpinion, reasonNotPartner}, true
	case NotAnIdentity, Malformed:
		return Decision{}, false // decide says why
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
	if held {
		return Decision{Deny, reasonRoomOutOfScope}, true
	}
	// The same answer in every namespace where the caller holds nothing,
	// whether another partner is there or the namespace exists at all: a
	// partner cannot tell the customer's namespaces from the answers.
	return Decision{Deny, noRoleGrants(p)}, true
}

// decide applies every rule, in the order of DESIGN.md.
func (x *Index) decide(r *Request) Decision {
	if !x.synced {
		if _, named := NormalizedDomain(r.User); !named {
			return Decision{NoOpinion, reasonNotAnIdentity}
		}
		return Decision{Deny, "the partner-operator is starting: its decision index has not synced yet"}
	}
	c := x.caller(r)
	switch c.class {
	case NotAnIdentity:
		return Decision{NoOpinion, reasonNotAnIdentity}
	case Customer:
		return Decision{NoOpinion, reasonNotPartner}
	case Malformed:
		return Decision{Deny, malformedReason(c.id.Domain)}
	}
	if r.Path != "" {
		if isDiscovery(r.Path, r.Verb) {
			return Decision{Allow, "discovery"}
		}
		return Decision{Deny, fmt.Sprintf("partner users may not %s %s", r.Verb, r.Path)}
	}
	if isSelfReview(r) {
		return Decision{Allow, "self review"}
	}
	// A namespace the index knows nothing of is answered as an empty one,
	// with the same reasons (see decideNamedRoom).
	t := x.tenants[r.Namespace]
	if t == nil {
		t = noTenant
	}
	if d, decided := t.decideTenantManager(c.id, r, x.tenantManagerGroup); decided {
		return d
	}
	n, ok := required(r)
	if !ok {
		return Decision{Deny, fmt.Sprintf("partner users may not %s %s", r.Verb, resourceName(r))}
	}
	grants := c.grants
	if find(grants, n.permission, anyGrant) == nil {
		return Decision{Deny, noRoleGrants(n.permission)}
	}
	switch {
	case n.roles:
		return decideRoles(t, grants, r, n)
	case n.room:
		return decideRoom(t, grants, x.domainRefs[c.id.Domain], r, n)
	}
	return Decision{Allow, reasonGranted}
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

func anyGrant(*grant) bool { return true }

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

// decideRoom allows a request on a named room in the link's scope and in the
// assignment's scope; a list or watch only when its label selector confines
// it to the partner's rooms and the caller's grants cover the whole scope of
// every active link of its domain in the namespace (the access label is per
// domain, so it selects the rooms of all of them).
func decideRoom(t *tenant, grants []*grant, partner *partnerDomain, r *Request, n need) Decision {
	if r.Name == "" {
		if r.Subresource == "" && (r.Verb == "list" || r.Verb == "watch") {
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
		return Decision{Deny, fmt.Sprintf("%s %s needs a room name", r.Verb, resourceName(r))}
	}
	if find(grants, n.permission, func(g *grant) bool { return g.covers(r.Name) }) != nil {
		return Decision{Allow, reasonGranted}
	}
	return Decision{Deny, reasonRoomOutOfScope}
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
