package adversarial

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/testenv"
)

// The world: every object the suite starts from is in these tables, and the
// reference function's grants are computed from them, not listed again.

const (
	tenantA = "tenant-a"
	tenantB = "tenant-b"
	tenantC = "tenant-c" // a customer namespace with no partnership at all
	ghostNS = "no-such-namespace"

	contoso  = "contoso.com"
	fabrikam = "fabrikam.com"
	buecher  = "xn--bcher-kva.example" // invited, never accepted: a partner domain with no link

	alice  = "alice@contoso.com"  // contoso's primary admin
	carol  = "carol@contoso.com"  // role contoso-nyc: roles.*, rooms.* on site=nyc
	dave   = "dave@contoso.com"   // role contoso-dave: rooms.view on nyc-1
	frank  = "frank@fabrikam.com" // fabrikam's primary admin, in tenant-a and tenant-b
	helper = "helper@contoso.com" // the member of contoso-meta, the role the metadata class writes
	tmC    = "tm@contoso.com"
	tmF    = "tm@fabrikam.com"

	authenticated = "system:authenticated"
)

func tenantManagers(domain string) string { return domain + ":tenant-managers" }

// partnerUsers are the users whose verdicts the reference function computes.
var partnerUsers = []string{alice, carol, dave, frank}

// domainOf is the domain of a well-formed partner user of the tables.
func domainOf(user string) string {
	for i := len(user) - 1; i >= 0; i-- {
		if user[i] == '@' {
			return user[i+1:]
		}
	}
	return ""
}

type roomDef struct{ ns, name, site string }

var roomDefs = []roomDef{
	{tenantA, "nyc-1", "nyc"}, {tenantA, "nyc-2", "nyc"}, {tenantA, "ber-1", "ber"}, {tenantA, "sea-1", "sea"},
	{tenantA, "par-1", "par"}, // in no partner's scope
	// The same names in tenant-b: a name alone never says which tenant.
	{tenantB, "nyc-1", "nyc"}, {tenantB, "sea-1", "sea"},
}

// roomNames are the names the request matrix asks about: for each user, one
// in its role's scope, one in the link's scope outside the role's, one
// outside the link's scope, another partner's, one that does not exist, and
// none.
var roomNames = []string{"nyc-1", "nyc-2", "ber-1", "sea-1", "par-1", "ghost", ""}

func roomLabels(d roomDef) map[string]string {
	return map[string]string{"site": d.site, "team": "facilities"}
}

func newRoom(d roomDef) *v1alpha1.Room {
	return &v1alpha1.Room{
		ObjectMeta: metav1.ObjectMeta{Namespace: d.ns, Name: d.name, Labels: roomLabels(d),
			Annotations: map[string]string{"facilities.example.com/owner": "ops"}},
		Spec: v1alpha1.RoomSpec{DisplayName: d.name, Site: d.site},
	}
}

type linkDef struct {
	ns, name, domain string
	scope            v1alpha1.RoomScope // the invitation's rooms, so the link's scope
	admin            string
}

var linkDefs = []linkDef{
	{tenantA, "contoso", contoso, v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "site", Operator: metav1.LabelSelectorOpIn, Values: []string{"nyc", "ber"}}}}}, alice},
	{tenantA, "fabrikam", fabrikam, v1alpha1.RoomScope{Names: []string{"sea-1"}}, frank},
	{tenantB, "fabrikam", fabrikam, v1alpha1.RoomScope{Names: []string{"sea-1"}}, frank},
}

type roleDef struct {
	ns, name, link string
	perms          []v1alpha1.Permission
	member         string
	scope          v1alpha1.RoomScope // empty: the link's whole scope
	builtin        bool
}

func siteScope(site string) v1alpha1.RoomScope {
	return v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"site": site}}}
}

// roleDefs: the built-in roles the controller makes, then the roles the
// primary admins make in buildWorld.
var roleDefs = func() []roleDef {
	var roles []roleDef
	for _, l := range linkDefs {
		roles = append(roles, roleDef{ns: l.ns, name: l.name + "-primary-admins", link: l.name,
			perms: v1alpha1.PrimaryAdminPermissions, member: l.admin, builtin: true})
	}
	return append(roles,
		roleDef{ns: tenantA, name: "contoso-nyc", link: "contoso", member: carol, scope: siteScope("nyc"),
			perms: []v1alpha1.Permission{v1alpha1.RolesView, v1alpha1.RolesModify, v1alpha1.RoomsView, v1alpha1.RoomsModify}},
		roleDef{ns: tenantA, name: "contoso-dave", link: "contoso", member: dave, scope: v1alpha1.RoomScope{Names: []string{"nyc-1"}},
			perms: []v1alpha1.Permission{v1alpha1.RoomsView}},
		roleDef{ns: tenantA, name: "contoso-meta", link: "contoso", member: helper, scope: v1alpha1.RoomScope{Names: []string{"nyc-1"}},
			perms: []v1alpha1.Permission{v1alpha1.RoomsView}},
		roleDef{ns: tenantA, name: "fabrikam-helpdesk", link: "fabrikam", member: "ops@fabrikam.com",
			perms: []v1alpha1.Permission{v1alpha1.TicketsView}},
		roleDef{ns: tenantB, name: "fabrikam-helpdesk", link: "fabrikam", member: "ops@fabrikam.com",
			perms: []v1alpha1.Permission{v1alpha1.TicketsView}},
	)
}()

// roleNames are the names the request matrix asks about for partnerroles.
var roleNames = []string{"contoso-primary-admins", "contoso-nyc", "fabrikam-primary-admins", "fabrikam-helpdesk", "ghost", ""}

func newRole(d roleDef) *v1alpha1.PartnerRole {
	return &v1alpha1.PartnerRole{
		ObjectMeta: metav1.ObjectMeta{Namespace: d.ns, Name: d.name},
		Spec: v1alpha1.PartnerRoleSpec{PartnerLink: d.link, Permissions: slices.Clone(d.perms),
			Assignments: []v1alpha1.RoleAssignment{{Name: "members", Scope: d.scope,
				Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: d.member}}}}},
	}
}

// matches reports whether a scope selects a room (names or selector).
func matches(s v1alpha1.RoomScope, d roomDef) bool {
	if slices.Contains(s.Names, d.name) {
		return true
	}
	if s.Selector == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(s.Selector)
	if err != nil {
		panic(err)
	}
	return sel.Matches(labels.Set(roomLabels(d)))
}

// linkRooms is a link's scope: the rooms of its namespace its invitation selects.
func linkRooms(ns, link string) map[string]bool {
	rooms := map[string]bool{}
	for _, l := range linkDefs {
		if l.ns != ns || l.name != link {
			continue
		}
		for _, r := range roomDefs {
			if r.ns == ns && matches(l.scope, r) {
				rooms[r.name] = true
			}
		}
	}
	return rooms
}

// accessLabels are the labels the operator must keep on a room: one per
// partner whose link reaches it.
func accessLabels(d roomDef) map[string]string {
	out := map[string]string{}
	for _, l := range linkDefs {
		if l.ns == d.ns && linkRooms(l.ns, l.name)[d.name] {
			out[v1alpha1.AccessLabel(l.domain)] = "true"
		}
	}
	return out
}

// grant is what one role gives one user: permissions on the rooms of the
// role's scope within the link's scope.
type grant struct {
	ns, link string
	perms    map[v1alpha1.Permission]bool
	rooms    map[string]bool
	whole    bool // the role is unscoped: it covers the link's whole scope
}

func grantsOf(user string) []grant {
	var out []grant
	for _, r := range roleDefs {
		if r.member != user {
			continue
		}
		g := grant{ns: r.ns, link: r.link, perms: map[v1alpha1.Permission]bool{}, rooms: map[string]bool{},
			whole: len(r.scope.Names) == 0 && r.scope.Selector == nil}
		for _, p := range r.perms {
			g.perms[p] = true
		}
		for name := range linkRooms(r.ns, r.link) {
			if g.whole || matches(r.scope, roomDefs[slices.IndexFunc(roomDefs, func(d roomDef) bool { return d.ns == r.ns && d.name == name })]) {
				g.rooms[name] = true
			}
		}
		out = append(out, g)
	}
	return out
}

// roleLink is the link of a role of the tables, "" for a role that does not exist.
func roleLink(ns, name string) string {
	for _, r := range roleDefs {
		if r.ns == ns && r.name == name {
			return r.link
		}
	}
	return ""
}

// buildWorld makes the world of the tables, as the customer and the
// partners would, and waits until the operator has labelled the rooms and
// the authorization webhook answers for every partner user.
func buildWorld() error {
	for _, ns := range []string{tenantA, tenantB, tenantC} {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	for _, d := range roomDefs {
		if err := admin.Create(ctx, newRoom(d)); err != nil {
			return fmt.Errorf("room %s/%s: %w", d.ns, d.name, err)
		}
	}
	// Only registered domains are partner domains (DESIGN "Registered
	// partners"), and an invitation may name only one.
	if err := testenv.RegisterPartners(ctx, admin, contoso, fabrikam, buecher); err != nil {
		return fmt.Errorf("registering the partners: %w", err)
	}
	for _, l := range linkDefs {
		if err := admin.Create(ctx, newInvitation(l.ns, l.name, l.domain, l.scope)); err != nil {
			return fmt.Errorf("invitation %s/%s: %w", l.ns, l.name, err)
		}
	}
	// A partner domain with an invitation and no link: its users are
	// partner users with no partnership anywhere.
	if err := admin.Create(ctx, newInvitation(tenantA, "buecher", buecher, v1alpha1.RoomScope{Names: []string{"par-1"}})); err != nil {
		return fmt.Errorf("invitation buecher: %w", err)
	}
	for _, l := range linkDefs {
		tm := map[string]string{contoso: tmC, fabrikam: tmF}[l.domain]
		link := &v1alpha1.PartnerLink{
			ObjectMeta: metav1.ObjectMeta{Namespace: l.ns, Name: l.name},
			Spec: v1alpha1.PartnerLinkSpec{Invitation: l.name, PartnerDomain: v1alpha1.Domain(l.domain),
				PrimaryAdmins: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: l.admin}}},
		}
		// The webhook's index may not know the invitation yet: retry.
		if err := eventually(20*time.Second, func() error { return as(tm, tenantManagers(l.domain)).Create(ctx, link) }); err != nil {
			return fmt.Errorf("accepting %s/%s: %w", l.ns, l.name, err)
		}
	}
	for _, l := range linkDefs {
		if err := eventually(30*time.Second, func() error {
			link := &v1alpha1.PartnerLink{}
			if err := admin.Get(ctx, client.ObjectKey{Namespace: l.ns, Name: l.name}, link); err != nil {
				return err
			}
			if link.Status.Phase != v1alpha1.LinkActive {
				return fmt.Errorf("link %s/%s is %q", l.ns, l.name, link.Status.Phase)
			}
			return admin.Get(ctx, client.ObjectKey{Namespace: l.ns, Name: l.name + "-primary-admins"}, &v1alpha1.PartnerRole{})
		}); err != nil {
			return err
		}
	}
	// The primary admins delegate: the roles of the tables that are not built in.
	for _, r := range roleDefs {
		if r.builtin {
			continue
		}
		writer := linkDefs[slices.IndexFunc(linkDefs, func(l linkDef) bool { return l.ns == r.ns && l.name == r.link })].admin
		if err := eventually(20*time.Second, func() error { return as(writer).Create(ctx, newRole(r)) }); err != nil {
			return fmt.Errorf("role %s/%s by %s: %w", r.ns, r.name, writer, err)
		}
	}
	if err := waitRoomsLabelled(); err != nil {
		return err
	}
	// The customer's RBAC is as generous as it gets: everyone who signs in
	// (system:authenticated) may read everything everywhere and do
	// everything in tenant-a. A partner identity that the webhook passes to
	// RBAC (no opinion) gets all of it, which every class would see. (Own
	// roles rather than view/edit: they also cover this operator's kinds and
	// the custom verbs, so nothing depends on aggregation.)
	for _, obj := range []client.Object{
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "everyone-reads"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch"}}}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "everyone-does-everything"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "everyone-reads"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "everyone-reads"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: authenticated}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: "everyone-does-everything"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "everyone-does-everything"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: authenticated}}},
	} {
		if err := admin.Create(ctx, obj); err != nil {
			return err
		}
	}
	if err := waitDecisions(); err != nil {
		return err
	}
	return createChangeRequests()
}

func newInvitation(ns, name, domain string, rooms v1alpha1.RoomScope) *v1alpha1.PartnerInvitation {
	return &v1alpha1.PartnerInvitation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.PartnerInvitationSpec{PartnerDomain: v1alpha1.Domain(domain), ExpiryDays: 30,
			TermsAccepted: true, Rooms: rooms},
	}
}

// waitRoomsLabelled waits until every room carries exactly the access
// labels its partners' scopes give it.
func waitRoomsLabelled() error {
	return eventually(30*time.Second, func() error {
		var errs []error
		for _, d := range roomDefs {
			r := &v1alpha1.Room{}
			if err := admin.Get(ctx, client.ObjectKey{Namespace: d.ns, Name: d.name}, r); err != nil {
				return err
			}
			want := roomLabels(d)
			maps.Copy(want, accessLabels(d))
			if !maps.Equal(r.Labels, want) {
				errs = append(errs, fmt.Errorf("room %s/%s has labels %v, want %v", d.ns, d.name, r.Labels, want))
			}
		}
		return errors.Join(errs...)
	})
}

// waitDecisions waits until the webhook's index knows every grant of the
// tables: each user may view one room of each of its grants.
func waitDecisions() error {
	for _, user := range append(slices.Clone(partnerUsers), helper) {
		for _, g := range grantsOf(user) {
			for room := range g.rooms {
				if !g.perms[v1alpha1.RoomsView] {
					break
				}
				spec := authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{authenticated},
					ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: g.ns, Verb: "get",
						Group: v1alpha1.GroupVersion.Group, Resource: "rooms", Name: room}}
				if err := eventually(20*time.Second, func() error {
					st, err := review(spec)
					if err == nil && !st.Allowed {
						err = fmt.Errorf("%s may not yet get room %s/%s: %s", user, g.ns, room, st.Reason)
					}
					return err
				}); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}
