package authz

import (
	"slices"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/scope"
)

// This file keeps what decisions read: per subject, the grants it holds, and
// per grant, the rooms it covers. Every update recomputes only what the
// changed object can affect, so that a decision is one map probe for the
// subject and one for the room, whatever the size of the world.

// subjectKey names a holder of grants in one namespace: a lower-cased UPN or
// a lower-cased "<domain>:<group>", with its kind and partner domain, so that
// a group member of one partner and a user of another can never share a key
// whatever their names. One struct key makes the decision's lookup a single
// map probe where namespace-then-subject would take two.
type subjectKey struct {
	namespace string
	kind      subjectKind
	domain    string
	name      string
}

// subjectKind tells users and groups apart in a subjectKey.
type subjectKind uint8

const (
	// userSubject and groupSubject are the kinds of subjectKey.
	userSubject subjectKind = iota + 1
	groupSubject
)

// grant is one role assignment of a role: the permissions it gives and the
// rooms they apply to.
type grant struct {
	link        *linkState
	domain      string
	permissions permissionSet
	// scope narrows the link's scope; nil means the link's whole scope.
	// source is the RoomScope it was compiled from.
	scope  *scope.Matcher
	source v1alpha1.RoomScope
	// rooms of a scoped grant: those of the link's scope that scope selects,
	// kept current with the link's. Unscoped grants read link.rooms.
	rooms   map[string]struct{}
	holders []subjectKey
	// window is its assignment's validFrom/validUntil (window.go).
	window window
}

// covers reports whether the grant applies to the named room.
func (g *grant) covers(room string) bool {
	rooms := g.rooms
	if g.scope == nil {
		rooms = g.link.rooms
	}
	_, ok := rooms[room]
	return ok
}

// linkState is what an active link grants access to.
type linkState struct {
	name     string
	domain   string              // the link's partner domain, lower-cased
	matchers []*scope.Matcher    // the scopes of its live assignments
	rooms    map[string]struct{} // the rooms they select
	scoped   map[*grant]struct{} // its grants with a scope, whose rooms follow rooms
	// until is the moment the relationship ends (linkUntil): from then on
	// its grants grant nothing.
	until int64
}

// tenant is one namespace: the objects as fed, and what is derived from them.
type tenant struct {
	invitations map[string]*v1alpha1.PartnerInvitation
	// policies holds, per lower-cased partner domain, the session policy
	// of its invitations here (session.go); no entry: none.
	policies    map[string]*sessionPolicy
	links       map[string]*v1alpha1.PartnerLink
	assignments map[string]*v1alpha1.RoomAssignment
	roles       map[string]*v1alpha1.PartnerRole
	rooms       map[string]*v1alpha1.Room
	// changeRequests holds the spec.partnerLink of each PartnerChangeRequest
	// by name: the link whose request it is (changerequest.go).
	changeRequests map[string]string
	// tickets and reports hold the spec.room of each Ticket and RoomReport
	// by name: the room a request on it acts on.
	tickets, reports map[string]string
	// ringRooms holds, per UpdateRing name, the rooms whose spec.updateRing
	// names it: an update of the ring paces all of them.
	ringRooms map[string]map[string]struct{}

	rolesOfLink       map[string]map[string]struct{}
	assignmentsOfLink map[string]map[string]struct{}
	// roomsByLabel and anchors find the rooms a scope can select and the
	// links a room can be in without testing every pair (scope.Anchor).
	roomsByLabel map[scope.Label]map[string]struct{}
	anchors      *scope.Anchors[string] // active link names
	active       map[string]*linkState  // by link name; only active links
	// activeLinksOf counts the active links of each partner domain: a room
	// list by the domain's access label selects the rooms of all of them.
	activeLinksOf map[string]int
	roleGrants    map[string][]*grant // by role name
	namespace     string
	// subjects is the Index's: the tenant files its grants there.
	subjects map[subjectKey][]*grant
}

func newTenant(namespace string, subjects map[subjectKey][]*grant) *tenant {
	return &tenant{
		invitations:       map[string]*v1alpha1.PartnerInvitation{},
		policies:          map[string]*sessionPolicy{},
		links:             map[string]*v1alpha1.PartnerLink{},
		assignments:       map[string]*v1alpha1.RoomAssignment{},
		roles:             map[string]*v1alpha1.PartnerRole{},
		rooms:             map[string]*v1alpha1.Room{},
		changeRequests:    map[string]string{},
		tickets:           map[string]string{},
		reports:           map[string]string{},
		ringRooms:         map[string]map[string]struct{}{},
		rolesOfLink:       map[string]map[string]struct{}{},
		roomsByLabel:      map[scope.Label]map[string]struct{}{},
		anchors:           scope.NewAnchors[string](),
		assignmentsOfLink: map[string]map[string]struct{}{},
		active:            map[string]*linkState{},
		activeLinksOf:     map[string]int{},
		roleGrants:        map[string][]*grant{},
		namespace:         namespace,
		subjects:          subjects,
	}
}

// active reports whether a link grants anything: Active, and not being
// deleted (from the moment a delete is accepted, every decision is Deny).
func active(l *v1alpha1.PartnerLink) bool {
	return l.Status.Phase == v1alpha1.LinkActive && l.DeletionTimestamp == nil
}

// setLink records a link change: its scope, and the grants of its roles,
// which exist only while it is active.
func (t *tenant) setLink(l *v1alpha1.PartnerLink, remove bool) {
	put(t.links, l.Name, l, remove)
	domain := lower(string(l.Spec.PartnerDomain)) // immutable
	if remove || !active(l) {
		if link := t.active[l.Name]; link != nil {
			t.fileAnchors(link, false)
			if t.activeLinksOf[domain]--; t.activeLinksOf[domain] <= 0 {
				delete(t.activeLinksOf, domain)
			}
		}
		delete(t.active, l.Name)
	} else if t.active[l.Name] == nil {
		t.active[l.Name] = &linkState{name: l.Name, domain: domain, scoped: map[*grant]struct{}{}}
		t.activeLinksOf[domain]++
	}
	t.setLinkUntil(l.Name)
	t.rescopeLink(l.Name)
	for role := range t.rolesOfLink[l.Name] {
		t.regrant(role)
	}
}

// setLinkUntil recomputes when an active link ends, from the link and its
// invitation (either may have changed). Its grants read it when a caller
// is resolved, and every change starts a new generation of callers.
func (t *tenant) setLinkUntil(name string) {
	if link := t.active[name]; link != nil {
		link.until = linkUntil(t.links[name], t.invitations[t.links[name].Spec.Invitation])
	}
}

// setAssignment records an assignment change: it moves the scope of its
// link (and of its former link, should the reference have changed).
func (t *tenant) setAssignment(a *v1alpha1.RoomAssignment, remove bool) {
	if old, ok := t.assignments[a.Name]; ok {
		setMember(t.assignmentsOfLink, old.Spec.PartnerLink, a.Name, false)
		if old.Spec.PartnerLink != a.Spec.PartnerLink {
			defer t.rescopeLink(old.Spec.PartnerLink)
		}
	}
	put(t.assignments, a.Name, a, remove)
	setMember(t.assignmentsOfLink, a.Spec.PartnerLink, a.Name, !remove)
	t.rescopeLink(a.Spec.PartnerLink)
}

// setRole records a role change: it replaces the role's grants.
func (t *tenant) setRole(r *v1alpha1.PartnerRole, remove bool) {
	if old, ok := t.roles[r.Name]; ok {
		setMember(t.rolesOfLink, old.Spec.PartnerLink, r.Name, false)
	}
	put(t.roles, r.Name, r, remove)
	setMember(t.rolesOfLink, r.Spec.PartnerLink, r.Name, !remove)
	t.regrant(r.Name)
}

// setRoom records a room change: it moves the room in or out of the scope
// of each link and scoped grant that could select it, before or after. It
// costs those links, not the namespace's rooms or links.
func (t *tenant) setRoom(room *v1alpha1.Room, remove bool) {
	candidates := map[string]struct{}{}
	addCandidate := func(link string) { candidates[link] = struct{}{} }
	if old, ok := t.rooms[room.Name]; ok {
		t.anchors.Candidates(old, addCandidate)
		t.indexLabels(old, false)
		if old.Spec.UpdateRing != "" {
			setMember(t.ringRooms, old.Spec.UpdateRing, room.Name, false)
		}
	}
	put(t.rooms, room.Name, room, remove)
	if !remove {
		t.anchors.Candidates(room, addCandidate)
		t.indexLabels(room, true)
		if room.Spec.UpdateRing != "" {
			setMember(t.ringRooms, room.Spec.UpdateRing, room.Name, true)
		}
	}
	for name := range candidates {
		link := t.active[name]
		if link == nil {
			continue
		}
		inLink := !remove && matchesAny(link.matchers, room)
		setRoomMember(link.rooms, room.Name, inLink)
		for g := range link.scoped {
			setRoomMember(g.rooms, room.Name, inLink && g.scope.Matches(room))
		}
	}
}

func (t *tenant) indexLabels(room *v1alpha1.Room, present bool) {
	for k, v := range room.Labels {
		setMember(t.roomsByLabel, scope.Label{Key: k, Value: v}, room.Name, present)
	}
}

// candidateRooms calls f with every room the matcher could select.
func (t *tenant) candidateRooms(m *scope.Matcher, f func(*v1alpha1.Room)) {
	a := m.Anchor()
	if a.Any {
		for _, room := range t.rooms {
			f(room)
		}
		return
	}
	for _, name := range a.Names {
		if room, ok := t.rooms[name]; ok {
			f(room)
		}
	}
	if a.Label != nil {
		for name := range t.roomsByLabel[*a.Label] {
			f(t.rooms[name])
		}
	}
}

// rescopeLink recomputes the rooms of an active link and of its scoped
// grants: it costs the namespace's rooms times the link's assignments.
func (t *tenant) rescopeLink(name string) {
	link := t.active[name]
	if link == nil {
		return
	}
	t.fileAnchors(link, false)
	link.matchers = nil
	for a := range t.assignmentsOfLink[name] {
		if as := t.assignments[a]; as.DeletionTimestamp == nil {
			if m, err := scope.Compile(as.Spec.Rooms); err == nil { // an invalid selector grants nothing
				link.matchers = append(link.matchers, m)
			}
		}
	}
	t.fileAnchors(link, true)
	link.rooms = map[string]struct{}{}
	for _, m := range link.matchers {
		t.candidateRooms(m, func(room *v1alpha1.Room) {
			if m.Matches(room) {
				link.rooms[room.Name] = struct{}{}
			}
		})
	}
	for g := range link.scoped {
		t.fillScopedRooms(g)
	}
}

// fileAnchors files (or unfiles) an active link under its scopes' anchors.
func (t *tenant) fileAnchors(link *linkState, present bool) {
	for _, m := range link.matchers {
		if present {
			t.anchors.Add(link.name, m)
		} else {
			t.anchors.Remove(link.name, m)
		}
	}
}

// fillScopedRooms computes the rooms of a scoped grant from its link's.
func (t *tenant) fillScopedRooms(g *grant) {
	g.rooms = map[string]struct{}{}
	for roomName := range g.link.rooms {
		if g.scope.Matches(t.rooms[roomName]) {
			g.rooms[roomName] = struct{}{}
		}
	}
}

// regrant replaces the grants of one role: after a change of the role or of
// its link. Other roles are untouched.
func (t *tenant) regrant(roleName string) {
	for _, g := range t.roleGrants[roleName] {
		t.dropGrant(g)
	}
	delete(t.roleGrants, roleName)

	role, ok := t.roles[roleName]
	if !ok || role.DeletionTimestamp != nil {
		return
	}
	link := t.active[role.Spec.PartnerLink]
	if link == nil {
		return
	}
	domain := string(t.links[link.name].Spec.PartnerDomain)
	var perms permissionSet
	for _, p := range role.Spec.Permissions {
		// A role never exceeds the primary-admin set, whatever it says.
		if slices.Contains(v1alpha1.PrimaryAdminPermissions, p) {
			perms |= bitOf(p)
		}
	}
	for _, ra := range role.Spec.Assignments {
		g := &grant{link: link, domain: domain, permissions: perms, window: windowOf(ra)}
		if ra.Scope.Selector != nil || len(ra.Scope.Names) > 0 {
			m, err := scope.Compile(ra.Scope)
			if err != nil {
				continue // an invalid scope grants nothing
			}
			g.scope, g.source = m, ra.Scope
			t.fillScopedRooms(g)
			link.scoped[g] = struct{}{}
		}
		for _, member := range ra.Members {
			if kind, name, ok := memberKey(member, domain); ok {
				key := subjectKey{namespace: t.namespace, kind: kind, domain: domain, name: name}
				g.holders = append(g.holders, key)
				t.subjects[key] = append(t.subjects[key], g)
			}
		}
		t.roleGrants[roleName] = append(t.roleGrants[roleName], g)
	}
}

// dropGrant removes a grant from its holders and its link.
func (t *tenant) dropGrant(g *grant) {
	delete(g.link.scoped, g)
	for _, key := range g.holders {
		held := slices.DeleteFunc(t.subjects[key], func(h *grant) bool { return h == g })
		if len(held) == 0 {
			delete(t.subjects, key)
		} else {
			t.subjects[key] = held
		}
	}
}

// memberKey returns the kind and name under which a role member's grants
// are kept, or false for a member outside the link's own domain (the webhook
// rejects those; the index ignores them).
func memberKey(s v1alpha1.Subject, domain string) (subjectKind, string, bool) {
	name, err := ParseMember(s, domain)
	if err != nil {
		return 0, "", false
	}
	if s.Kind == v1alpha1.UserSubject {
		return userSubject, name, true
	}
	return groupSubject, name, true
}

func matchesAny(matchers []*scope.Matcher, room *v1alpha1.Room) bool {
	for _, m := range matchers {
		if m.Matches(room) {
			return true
		}
	}
	return false
}

func put[T any](m map[string]T, name string, obj T, remove bool) {
	if remove {
		delete(m, name)
	} else {
		m[name] = obj
	}
}

// setMember adds or removes member in the set sets[key].
func setMember[K comparable](sets map[K]map[string]struct{}, key K, member string, present bool) {
	set := sets[key]
	switch {
	case present && set == nil:
		sets[key] = map[string]struct{}{member: {}}
	case present:
		set[member] = struct{}{}
	default:
		delete(set, member)
		if len(set) == 0 {
			delete(sets, key)
		}
	}
}

func setRoomMember(rooms map[string]struct{}, room string, present bool) {
	if present {
		rooms[room] = struct{}{}
	} else {
		delete(rooms, room)
	}
}
