package authz

import (
	"fmt"
	"strings"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// This file is stage 3 of a decision (Decide): whether the grants of a
// partner user give the permission a request needs where the request acts.

// decideScope is stage 3: some grant of the caller must give the permission
// the request needs, and, for a room or a role, give it where the request
// acts.
func (x *Index) decideScope(c *caller, r *Request, n need) Decision {
	room := ""
	if n.room {
		room = r.Name
		if n.via != direct && room != "" {
			// A named ticket or report costs one more map probe than a
			// named room: its room, then the same scan.
			room = c.tenant.roomOf(n.via, room)
		}
	}
	held, inScope := scan(c.grants, n.permission, room)
	switch {
	case !held:
		// The same answer in every namespace where the caller holds
		// nothing, whether another partner is there or the namespace
		// exists at all: a partner cannot tell the customer's namespaces
		// from the answers.
		return deny(NoRoleGrants, noRoleGrants(n.permission))
	case inScope:
		return allow(reasonGranted)
	case room != "":
		return deny(RoomOutOfScope, outOfScopeReason(n.via))
	case n.roles:
		return decideRoles(x.tenantOf(r.Namespace), c.grants, r, n)
	case n.ring:
		return decideRing(x.tenantOf(r.Namespace), c.grants, r, n)
	case n.room && n.via != direct:
		return decideUnnamedRoomObjects(x.tenantOf(r.Namespace), c.grants, x.domainRefs[c.id.Domain], r, n)
	case n.room:
		return decideUnnamedRooms(x.tenantOf(r.Namespace), c.grants, x.domainRefs[c.id.Domain], r, n)
	}
	return allow(reasonGranted)
}

// unknownRoom stands for the room of a ticket or report the index does not
// know: no room has this name (names are DNS subdomains), so no grant
// covers it and the request is denied exactly as one out of scope. A
// partner cannot tell from the answers which tickets exist.
const unknownRoom = "\x00"

// roomOf returns the room a named ticket or report is about, or unknownRoom.
func (t *tenant) roomOf(via viaKind, name string) string {
	objects := t.tickets
	if via == viaReport {
		objects = t.reports
	}
	if room, ok := objects[name]; ok {
		return room
	}
	return unknownRoom
}

func outOfScopeReason(via viaKind) string {
	switch via {
	case viaTicket:
		return reasonTicketOutOfScope
	case viaReport:
		return reasonReportOutOfScope
	}
	return reasonRoomOutOfScope
}

// decideUnnamedRoomObjects decides a request on tickets or reports that
// names none: a list or watch is allowed when its label selector confines
// it to rooms the caller's grants give the permission on, either
//
//   - by partners.roompro.io/room In (v1, ..., vn) with every vi covered
//     (how a role narrowed to some rooms lists exactly their tickets), or
//   - by the domain's access label, as a list of rooms
//     (decideUnnamedRooms): the grants cover every active link's scope.
func decideUnnamedRoomObjects(t *tenant, grants []*grant, partner *partnerDomain, r *Request, n need) Decision {
	if r.Verb != "list" && r.Verb != "watch" {
		return deny(UnconfinedList, fmt.Sprintf("%s %s needs a name", r.Verb, resourceName(r)))
	}
	// Requirements are ANDed: one that confines the list to covered rooms
	// is enough.
	confined := false
	for _, req := range r.LabelSelector {
		if req.Key != v1alpha1.LabelRoom || req.Operator != "In" && req.Operator != opEquals || len(req.Values) == 0 {
			continue
		}
		if allCovered(grants, n.permission, req.Values) {
			return allow(reasonGranted)
		}
		confined = true
	}
	hint := partner.ticketsListHint
	if n.via == viaReport {
		hint = partner.reportsListHint
	}
	if !requiresAccessLabel(r.LabelSelector, partner.accessLabel) {
		if confined {
			return deny(RoomOutOfScope, reasonListedRoomOutOfScope)
		}
		return deny(UnconfinedList, hint)
	}
	covered := wholeLinksCovered(grants, n.permission)
	switch {
	case covered == 0:
		return deny(UnconfinedList, hint)
	case covered < t.activeLinksOf[partner.domain]:
		return deny(UnconfinedList, reasonAllLinksRoomObjects)
	}
	return allow(reasonGranted)
}

// allCovered reports whether every room is covered by some grant that
// gives p. It allocates nothing.
func allCovered(grants []*grant, p v1alpha1.Permission, rooms []string) bool {
	for _, room := range rooms {
		if _, inScope := scan(grants, p, room); !inScope {
			return false
		}
	}
	return true
}

// decideRing decides an update of a named UpdateRing: it paces every room
// whose spec.updateRing names it, so the caller's grants must give the
// permission on each of them. This costs the ring's rooms times the
// caller's grants, unlike every other decision; updates of rings are rare,
// and a ring holds at most the namespace's rooms. A ring no room names
// changes no room and is allowed.
func decideRing(t *tenant, grants []*grant, r *Request, n need) Decision {
	if r.Name == "" {
		return deny(UnconfinedList, fmt.Sprintf("%s %s needs a name", r.Verb, resourceName(r)))
	}
	for room := range t.ringRooms[r.Name] {
		if _, inScope := scan(grants, n.permission, room); !inScope {
			return deny(RoomOutOfScope, reasonRingOutOfScope)
		}
	}
	return allow(reasonGranted)
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

// decideUnnamedRooms decides a request on rooms that names none (a named
// one is decided by decideScope's scan): a list or watch is allowed only
// when its label selector confines it to the partner's rooms and the
// caller's grants cover the whole scope of every active link of its domain
// in the namespace (the access label is per domain, so it selects the rooms
// of all of them).
func decideUnnamedRooms(t *tenant, grants []*grant, partner *partnerDomain, r *Request, n need) Decision {
	if r.Subresource != "" || r.Verb != "list" && r.Verb != "watch" {
		return deny(UnconfinedList, fmt.Sprintf("%s %s needs a room name", r.Verb, resourceName(r)))
	}
	if !requiresAccessLabel(r.LabelSelector, partner.accessLabel) {
		return deny(UnconfinedList, partner.listHint)
	}
	covered := wholeLinksCovered(grants, n.permission)
	switch {
	case covered == 0:
		return deny(UnconfinedList, reasonPartialScope)
	case covered < t.activeLinksOf[partner.domain]:
		return deny(UnconfinedList, reasonAllLinksList)
	}
	return allow(reasonGranted)
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
		case "In", opEquals:
			if len(req.Values) == 1 && req.Values[0] == "true" {
				return true
			}
		}
	}
	return false
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
			return allow(reasonGranted)
		case "list", "watch":
			// Requirements are ANDed: one that confines the list to a link
			// the caller holds the permission on is enough.
			confined := false
			for _, req := range r.FieldSelector {
				if link, ok := singleValue(req, "spec.partnerLink"); ok {
					if holds(link) {
						return allow(reasonGranted)
					}
					confined = true
				}
			}
			if confined {
				return deny(OtherLinksRole, reasonOtherLinksRoles)
			}
			return deny(UnconfinedList, reasonRolesListHint)
		}
		return deny(UnconfinedList, fmt.Sprintf("%s %s needs a name", r.Verb, resourceName(r)))
	}
	if role, known := t.roles[r.Name]; known {
		if holds(role.Spec.PartnerLink) {
			return allow(reasonGranted)
		}
		return deny(OtherLinksRole, reasonOtherLinksRoles)
	}
	// A role the index has not seen: it does not exist, or it was created
	// a moment ago. Its name says which links may own it (the CRD requires
	// <link>-<name>); the caller must hold the permission on every one, so
	// that no race lets it read another link's role.
	owners := 0
	for _, link := range t.roleOwners(r.Name) {
		if !holds(link) {
			return deny(OtherLinksRole, reasonOtherLinksRoles)
		}
		owners++
	}
	if owners == 0 {
		return deny(OtherLinksRole, reasonNoRoleOwner)
	}
	return allow(reasonGranted)
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
	if req.Key == key && (req.Operator == "In" || req.Operator == opEquals) && len(req.Values) == 1 {
		return req.Values[0], true
	}
	return "", false
}
