package authz

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/scope"
)

// Index holds what decisions need, fed by informer event handlers. Decide
// reads it under a read lock and costs a handful of map lookups whatever the
// number of rooms, partners and users; updates pay instead, recomputing only
// what the changed object can affect in its own namespace.
type Index struct {
	mu     sync.RWMutex
	synced bool
	// tenantManagerGroup: members of <domain>:<tenantManagerGroup> are the
	// partner's tenant managers.
	tenantManagerGroup string
	// domainRefs holds, per partner domain, the invitations and links that
	// name it anywhere in the cluster: what makes a UPN a partner user.
	domainRefs map[string]map[string]struct{}
	tenants    map[string]*tenant
}

// tenant is one namespace: the objects as fed, and what is derived from them.
type tenant struct {
	invitations map[string]*v1alpha1.PartnerInvitation
	links       map[string]*v1alpha1.PartnerLink
	assignments map[string]*v1alpha1.RoomAssignment
	roles       map[string]*v1alpha1.PartnerRole
	rooms       map[string]*v1alpha1.Room

	// Derived: kept up to date by regrant, rescopeLink and rescopeRoom.
	userGrants  map[string][]grant             // lower-cased UPN -> what it is granted
	groupGrants map[string][]grant             // lower-cased "<domain>:<group>" -> what it is granted
	linkScopes  map[string][]*scope.Matcher    // active link -> its assignments' scopes
	linkRooms   map[string]map[string]struct{} // active link -> rooms in its scope
}

// grant is one role assignment as it applies to one subject.
type grant struct {
	link        string
	domain      string
	permissions permissionSet
	// scope narrows the link's scope; nil means the link's whole scope.
	scope *scope.Matcher
}

// permissionSet is a bit set over v1alpha1.AllPermissions.
type permissionSet uint32

// bitOf is the bit of a permission: its position in v1alpha1.AllPermissions.
// A switch, not a map: it is on the path of every decision.
func bitOf(p v1alpha1.Permission) permissionSet {
	switch p {
	case v1alpha1.RoomsView:
		return 1 << 0
	case v1alpha1.RoomsModify:
		return 1 << 1
	case v1alpha1.RoomsResetKey:
		return 1 << 2
	case v1alpha1.RoomsDownloadKey:
		return 1 << 3
	case v1alpha1.RoomsUnenroll:
		return 1 << 4
	case v1alpha1.RoomsCreate:
		return 1 << 5
	case v1alpha1.GroupsView:
		return 1 << 6
	case v1alpha1.GroupsModify:
		return 1 << 7
	case v1alpha1.GroupsCreate:
		return 1 << 8
	case v1alpha1.UpdateRingsView:
		return 1 << 9
	case v1alpha1.UpdateRingsModify:
		return 1 << 10
	case v1alpha1.ReportsView:
		return 1 << 11
	case v1alpha1.TicketsCreate:
		return 1 << 12
	case v1alpha1.TicketsView:
		return 1 << 13
	case v1alpha1.TicketsUpdate:
		return 1 << 14
	case v1alpha1.SettingsView:
		return 1 << 15
	case v1alpha1.SettingsModify:
		return 1 << 16
	case v1alpha1.RolesView:
		return 1 << 17
	case v1alpha1.RolesModify:
		return 1 << 18
	}
	return 0 // not a permission of the matrix: holds nothing
}

func (s permissionSet) has(p v1alpha1.Permission) bool { b := bitOf(p); return b != 0 && s&b != 0 }

// Option configures an Index.
type Option func(*Index)

// WithTenantManagerGroup sets the group suffix of tenant managers (default
// DefaultTenantManagerGroup).
func WithTenantManagerGroup(group string) Option {
	return func(x *Index) {
		if group != "" {
			x.tenantManagerGroup = group
		}
	}
}

// NewIndex returns an empty index that answers Deny to partner users until
// SetSynced(true).
func NewIndex(opts ...Option) *Index {
	x := &Index{domainRefs: map[string]map[string]struct{}{}, tenants: map[string]*tenant{}, tenantManagerGroup: DefaultTenantManagerGroup}
	for _, o := range opts {
		o(x)
	}
	return x
}

// SetSynced marks whether the index holds every object of the cluster (the
// informers have synced). Until then partner users are denied: fail closed.
func (x *Index) SetSynced(synced bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.synced = synced
}

// Synced reports whether SetSynced(true) was called.
func (x *Index) Synced() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.synced
}

// IsPartnerDomain reports whether an invitation or a link names the domain.
// Until the index has synced it answers true for every domain: callers that
// treat partners more strictly than the customer's staff then fail closed.
func (x *Index) IsPartnerDomain(domain string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, partner := x.domainRefs[strings.ToLower(domain)]
	return partner || !x.synced
}

// Upsert adds or replaces an object of one of the kinds the index keeps.
// Other kinds are ignored.
func (x *Index) Upsert(obj any) { x.apply(obj, false) }

// Delete removes an object from the index.
func (x *Index) Delete(obj any) { x.apply(obj, true) }

func (x *Index) apply(obj any, remove bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch o := obj.(type) {
	case *v1alpha1.PartnerInvitation:
		t := x.tenant(o.Namespace)
		x.setDomainRef(string(o.Spec.PartnerDomain), "inv/"+o.Namespace+"/"+o.Name, !remove)
		put(t.invitations, o.Name, o, remove)
		// Invitations feed no derived map: tenant-manager rules read them directly.
	case *v1alpha1.PartnerLink:
		t := x.tenant(o.Namespace)
		x.setDomainRef(string(o.Spec.PartnerDomain), "link/"+o.Namespace+"/"+o.Name, !remove)
		put(t.links, o.Name, o, remove)
		t.rescopeLink(o.Name)
		t.regrant()
	case *v1alpha1.RoomAssignment:
		t := x.tenant(o.Namespace)
		if old, ok := t.assignments[o.Name]; ok && old.Spec.PartnerLink != o.Spec.PartnerLink {
			defer t.rescopeLink(old.Spec.PartnerLink)
		}
		put(t.assignments, o.Name, o, remove)
		t.rescopeLink(o.Spec.PartnerLink)
	case *v1alpha1.PartnerRole:
		t := x.tenant(o.Namespace)
		put(t.roles, o.Name, o, remove)
		t.regrant()
	case *v1alpha1.Room:
		t := x.tenant(o.Namespace)
		put(t.rooms, o.Name, o, remove)
		t.rescopeRoom(o, remove)
	}
}

func put[T any](m map[string]T, name string, obj T, remove bool) {
	if remove {
		delete(m, name)
	} else {
		m[name] = obj
	}
}

func (x *Index) tenant(ns string) *tenant {
	t, ok := x.tenants[ns]
	if !ok {
		t = &tenant{
			invitations: map[string]*v1alpha1.PartnerInvitation{},
			links:       map[string]*v1alpha1.PartnerLink{},
			assignments: map[string]*v1alpha1.RoomAssignment{},
			roles:       map[string]*v1alpha1.PartnerRole{},
			rooms:       map[string]*v1alpha1.Room{},
			userGrants:  map[string][]grant{},
			groupGrants: map[string][]grant{},
			linkScopes:  map[string][]*scope.Matcher{},
			linkRooms:   map[string]map[string]struct{}{},
		}
		x.tenants[ns] = t
	}
	return t
}

// setDomainRef records (or drops) that ref names the domain. The partner
// domain of invitations and links is immutable, so a ref never moves.
func (x *Index) setDomainRef(domain, ref string, present bool) {
	domain = strings.ToLower(domain)
	refs := x.domainRefs[domain]
	if present {
		if refs == nil {
			refs = map[string]struct{}{}
			x.domainRefs[domain] = refs
		}
		refs[ref] = struct{}{}
		return
	}
	delete(refs, ref)
	if len(refs) == 0 {
		delete(x.domainRefs, domain)
	}
}

// active reports whether a link grants anything: Active, and not being
// deleted (from the moment a delete is accepted, every decision is Deny).
func active(l *v1alpha1.PartnerLink) bool {
	return l.Status.Phase == v1alpha1.LinkActive && l.DeletionTimestamp == nil
}

// linkMatchers compiles the scopes of a link's live assignments; nil when the
// link does not grant access (missing, not Active, or being deleted).
func (t *tenant) linkMatchers(link string) []*scope.Matcher {
	l, ok := t.links[link]
	if !ok || !active(l) {
		return nil
	}
	var matchers []*scope.Matcher
	for _, a := range t.assignments {
		if a.Spec.PartnerLink != link || a.DeletionTimestamp != nil {
			continue
		}
		if m, err := scope.Compile(a.Spec.Rooms); err == nil { // an invalid selector grants nothing
			matchers = append(matchers, m)
		}
	}
	return matchers
}

// rescopeLink recomputes the rooms in one link's scope: after a change of the
// link or of one of its assignments. It costs rooms x the link's assignments.
func (t *tenant) rescopeLink(link string) {
	delete(t.linkRooms, link)
	delete(t.linkScopes, link)
	matchers := t.linkMatchers(link)
	if len(matchers) == 0 {
		return
	}
	t.linkScopes[link] = matchers
	rooms := map[string]struct{}{}
	for name, r := range t.rooms {
		for _, m := range matchers {
			if m.Matches(r) {
				rooms[name] = struct{}{}
				break
			}
		}
	}
	t.linkRooms[link] = rooms
}

// rescopeRoom moves one room in or out of each link's scope after the room
// changed: it costs the namespace's assignments, not its rooms.
func (t *tenant) rescopeRoom(room *v1alpha1.Room, removed bool) {
	for link, matchers := range t.linkScopes {
		inScope := false
		if !removed {
			for _, m := range matchers {
				if m.Matches(room) {
					inScope = true
					break
				}
			}
		}
		rooms := t.linkRooms[link]
		switch {
		case inScope && rooms == nil:
			t.linkRooms[link] = map[string]struct{}{room.Name: {}}
		case inScope:
			rooms[room.Name] = struct{}{}
		case rooms != nil:
			delete(rooms, room.Name)
		}
	}
}

// regrant recomputes, per subject, what the namespace's roles grant: after a
// change of a role or a link. Rooms do not affect it.
func (t *tenant) regrant() {
	t.userGrants, t.groupGrants = map[string][]grant{}, map[string][]grant{}
	for _, role := range t.roles {
		l, ok := t.links[role.Spec.PartnerLink]
		if !ok || !active(l) || role.DeletionTimestamp != nil {
			continue
		}
		domain := string(l.Spec.PartnerDomain)
		var perms permissionSet
		for _, p := range role.Spec.Permissions {
			// A role never exceeds the primary-admin set, whatever it says.
			if slices.Contains(v1alpha1.PrimaryAdminPermissions, p) {
				perms |= bitOf(p)
			}
		}
		for _, ra := range role.Spec.Assignments {
			g := grant{link: l.Name, domain: domain, permissions: perms}
			if ra.Scope.Selector != nil || len(ra.Scope.Names) > 0 {
				m, err := scope.Compile(ra.Scope)
				if err != nil {
					continue
				}
				g.scope = m
			}
			for _, member := range ra.Members {
				if grants, key, ok := t.memberGrants(member, domain); ok {
					grants[key] = append(grants[key], g)
				}
			}
		}
	}
}

// memberGrants returns the map and key under which a role member's grants
// are kept, or false for a member outside the link's own domain (the webhook
// rejects those; the index ignores them).
func (t *tenant) memberGrants(s v1alpha1.Subject, domain string) (map[string][]grant, string, bool) {
	name := lower(strings.TrimSpace(s.Name))
	switch s.Kind {
	case v1alpha1.UserSubject:
		if id, ok := ParseIdentity(name, nil); ok && id.Domain == domain {
			return t.userGrants, id.User, true
		}
	case v1alpha1.GroupSubject:
		if group, ok := strings.CutPrefix(name, domain+":"); ok && group != "" {
			return t.groupGrants, name, true
		}
	}
	return nil, "", false
}

// Decide answers one request.
func (x *Index) Decide(r *Request) Decision {
	id, ok := ParseIdentity(r.User, r.Groups)
	if !ok {
		return Decision{NoOpinion, "not a partner identity"}
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.synced {
		return Decision{Deny, "the partner-operator is starting: its decision index has not synced yet"}
	}
	if _, partner := x.domainRefs[id.Domain]; !partner {
		return Decision{NoOpinion, fmt.Sprintf("%s is not a partner domain", id.Domain)}
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
	if t.find(id, n.permission, anyGrant) == nil {
		return Decision{Deny, fmt.Sprintf("no role grants %s to %s in namespace %q", n.permission, id.User, r.Namespace)}
	}
	switch {
	case n.roles:
		return t.decideRoles(id, r, n)
	case n.room:
		return t.decideRoom(id, r, n)
	}
	return Decision{Allow, reasonGranted}
}

// find returns the first grant of the user or one of its own-domain groups
// that holds p and satisfies ok, or nil. It allocates nothing.
func (t *tenant) find(id Identity, p v1alpha1.Permission, ok func(*grant) bool) *grant {
	bit := bitOf(p)
	for i := range t.userGrants[id.User] {
		if g := &t.userGrants[id.User][i]; g.domain == id.Domain && g.permissions&bit != 0 && ok(g) {
			return g
		}
	}
	for _, raw := range id.groups {
		key, own := id.ownGroup(raw)
		if !own {
			continue
		}
		for i := range t.groupGrants[key] {
			if g := &t.groupGrants[key][i]; g.domain == id.Domain && g.permissions&bit != 0 && ok(g) {
				return g
			}
		}
	}
	return nil
}

func anyGrant(*grant) bool { return true }

// Reasons of the decisions on the hot path: constants, so that deciding
// allocates nothing. The apiserver's Forbidden message names the user, verb,
// resource and object already.
const (
	reasonGranted         = "a role of the partner grants it"
	reasonRoomOutOfScope  = "the room is not in the scope of the caller's roles"
	reasonPartialScope    = "the caller's roles cover only part of the partner's rooms: get rooms by name"
	reasonOtherLinksRoles = "the PartnerRole belongs to another partner link"
)

// decideRoom allows a request on a named room in the link's scope and in the
// assignment's scope; a list or watch only when its label selector confines
// it to the partner's rooms and a grant covers the link's whole scope.
func (t *tenant) decideRoom(id Identity, r *Request, n need) Decision {
	if r.Name == "" {
		if r.Subresource == "" && (r.Verb == "list" || r.Verb == "watch") {
			if !requiresAccessLabel(r.LabelSelector, id.Domain) {
				label := v1alpha1.AccessLabel(id.Domain)
				return Decision{Deny, fmt.Sprintf("list rooms with the label selector %s (kubectl get rooms -l %s)", label, label)}
			}
			if t.find(id, n.permission, func(g *grant) bool { return g.scope == nil }) != nil {
				return Decision{Allow, reasonGranted}
			}
			return Decision{Deny, reasonPartialScope}
		}
		return Decision{Deny, fmt.Sprintf("%s %s needs a room name", r.Verb, resourceName(r))}
	}
	room := t.rooms[r.Name]
	inScope := func(g *grant) bool {
		_, inLink := t.linkRooms[g.link][r.Name]
		return inLink && (g.scope == nil || room != nil && g.scope.Matches(room))
	}
	if t.find(id, n.permission, inScope) != nil {
		return Decision{Allow, reasonGranted}
	}
	return Decision{Deny, reasonRoomOutOfScope}
}

// decideRoles allows requests on the roles of the caller's own links.
func (t *tenant) decideRoles(id Identity, r *Request, n need) Decision {
	role, named := t.roles[r.Name]
	if t.find(id, n.permission, func(g *grant) bool { return r.Name == "" || !named || role.Spec.PartnerLink == g.link }) != nil {
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
// rooms labelled for the domain: access.partners.roompro.io/<domain> with
// Exists, or with In (or Equals) and the single value "true".
func requiresAccessLabel(selector []Requirement, domain string) bool {
	key := v1alpha1.AccessLabel(domain)
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
