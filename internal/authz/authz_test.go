package authz

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

const ns = "tenant-a"

func roomObj(namespace, name string, labels map[string]string) *v1alpha1.Room {
	return &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels}}
}

func activeLinkObj(namespace, name, domain string) *v1alpha1.PartnerLink {
	return &v1alpha1.PartnerLink{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       v1alpha1.PartnerLinkSpec{Invitation: name, PartnerDomain: v1alpha1.Domain(domain)},
		Status:     v1alpha1.PartnerLinkStatus{Phase: v1alpha1.LinkActive},
	}
}

func invitationObj(namespace, name, domain string, phase v1alpha1.InvitationPhase) *v1alpha1.PartnerInvitation {
	return &v1alpha1.PartnerInvitation{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       v1alpha1.PartnerInvitationSpec{PartnerDomain: v1alpha1.Domain(domain)},
		Status:     v1alpha1.PartnerInvitationStatus{Phase: phase},
	}
}

func orgObj(domain string) *v1alpha1.PartnerOrganization {
	return &v1alpha1.PartnerOrganization{
		ObjectMeta: metav1.ObjectMeta{Name: domain},
		Spec:       v1alpha1.PartnerOrganizationSpec{Domain: v1alpha1.Domain(domain), DisplayName: domain},
	}
}

func assignmentObj(namespace, name, link string, rooms v1alpha1.RoomScope) *v1alpha1.RoomAssignment {
	return &v1alpha1.RoomAssignment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       v1alpha1.RoomAssignmentSpec{PartnerLink: link, Rooms: rooms},
	}
}

func roleObj(namespace, name, link string, perms []v1alpha1.Permission, scope v1alpha1.RoomScope, members ...v1alpha1.Subject) *v1alpha1.PartnerRole {
	return &v1alpha1.PartnerRole{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: v1alpha1.PartnerRoleSpec{PartnerLink: link, Permissions: perms,
			Assignments: []v1alpha1.RoleAssignment{{Name: "a", Members: members, Scope: scope}}},
	}
}

func user(name string) v1alpha1.Subject {
	return v1alpha1.Subject{Kind: v1alpha1.UserSubject, Name: name}
}
func group(name string) v1alpha1.Subject {
	return v1alpha1.Subject{Kind: v1alpha1.GroupSubject, Name: name}
}

func selector(labels map[string]string) v1alpha1.RoomScope {
	return v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchLabels: labels}}
}

// world is the fixture of the decision tests:
//
//	tenant-a: rooms nyc (us, site nyc), sea (us, site sea), ber (de)
//	  contoso.com: Active link, scope country=us; alice is primary admin;
//	    contoso.com:helpdesk holds tickets.* and rooms.view on site=nyc only;
//	    a pending second invitation "contoso-2" for contoso.com
//	  fabrikam.com: Active link, scope ber; bob is primary admin
//	tenant-b: room nyc-b (us); contoso.com has nothing there
func world(opts ...Option) *Index {
	x := NewIndex(opts...)
	for _, o := range []any{
		roomObj(ns, "nyc", map[string]string{"country": "us", "site": "nyc"}),
		roomObj(ns, "sea", map[string]string{"country": "us", "site": "sea"}),
		roomObj(ns, "ber", map[string]string{"country": "de", "site": "ber"}),
		roomObj("tenant-b", "nyc-b", map[string]string{"country": "us"}),
		orgObj("contoso.com"), orgObj("fabrikam.com"),
		invitationObj(ns, "contoso", "contoso.com", v1alpha1.InvitationAccepted),
		invitationObj(ns, "contoso-2", "contoso.com", v1alpha1.InvitationPending),
		invitationObj(ns, "fabrikam", "fabrikam.com", v1alpha1.InvitationAccepted),
		activeLinkObj(ns, "contoso", "contoso.com"),
		activeLinkObj(ns, "fabrikam", "fabrikam.com"),
		assignmentObj(ns, "contoso-invitation", "contoso", selector(map[string]string{"country": "us"})),
		assignmentObj(ns, "fabrikam-invitation", "fabrikam", v1alpha1.RoomScope{Names: []string{"ber"}}),
		roleObj(ns, "contoso-primary-admins", "contoso", v1alpha1.PrimaryAdminPermissions, v1alpha1.RoomScope{}, user("alice@contoso.com")),
		roleObj(ns, "contoso-helpdesk", "contoso",
			[]v1alpha1.Permission{v1alpha1.RoomsView, v1alpha1.TicketsCreate, v1alpha1.TicketsView, v1alpha1.TicketsUpdate},
			selector(map[string]string{"site": "nyc"}), group("contoso.com:helpdesk")),
		roleObj(ns, "fabrikam-primary-admins", "fabrikam", v1alpha1.PrimaryAdminPermissions, v1alpha1.RoomScope{}, user("bob@fabrikam.com")),
	} {
		x.Upsert(o)
	}
	x.SetSynced(true)
	return x
}

// res builds a resource request of the partners.roompro.io group in tenant-a.
func res(u string, groups []string, verb, resource, sub, name string) *Request {
	return &Request{User: u, Groups: groups, Namespace: ns, Verb: verb, Group: Group, Resource: resource, Subresource: sub, Name: name}
}

const (
	alice = "alice@contoso.com"
	carol = "carol@contoso.com" // in contoso.com:helpdesk
	bob   = "bob@fabrikam.com"
	tm    = "tm@contoso.com" // in contoso.com:tenant-managers
)

var (
	helpdesk       = []string{"contoso.com:helpdesk", "system:authenticated"}
	tenantManagers = []string{"contoso.com:tenant-managers", "system:authenticated"}
)

func TestDecide(t *testing.T) {
	x := world()
	cases := []struct {
		name string
		req  *Request
		want Verdict
	}{
		// The primary admin, every row of the request table.
		{"admin gets a room in scope", res(alice, nil, "get", "rooms", "", "nyc"), Allow},
		{"admin gets a room out of scope", res(alice, nil, "get", "rooms", "", "ber"), Deny},
		{"admin gets an unknown room", res(alice, nil, "get", "rooms", "", "nowhere"), Deny},
		{"admin watches a room in scope", res(alice, nil, "watch", "rooms", "", "nyc"), Allow},
		{"admin patches a room in scope", res(alice, nil, "patch", "rooms", "", "nyc"), Allow},
		{"admin updates a room in scope", res(alice, nil, "update", "rooms", "", "sea"), Allow},
		{"admin patches a room out of scope", res(alice, nil, "patch", "rooms", "", "ber"), Deny},
		{"admin creates a room (rooms.create)", res(alice, nil, "create", "rooms", "", ""), Deny},
		{"admin deletes a room (rooms.unenroll)", res(alice, nil, "delete", "rooms", "", "nyc"), Deny},
		{"admin downloads a key (rooms.downloadKey)", res(alice, nil, "get", "rooms", "key", "nyc"), Deny},
		{"admin resets a key (rooms.resetKey)", res(alice, nil, "create", "rooms", "resetkey", "nyc"), Deny},
		{"admin creates a ticket", res(alice, nil, "create", "rooms", "tickets", "nyc"), Allow},
		{"admin gets tickets", res(alice, nil, "get", "rooms", "tickets", "nyc"), Allow},
		{"admin lists tickets", res(alice, nil, "list", "rooms", "tickets", "nyc"), Allow},
		{"admin updates a ticket", res(alice, nil, "update", "rooms", "tickets", "nyc"), Allow},
		{"admin patches a ticket", res(alice, nil, "patch", "rooms", "tickets", "nyc"), Allow},
		{"admin creates a ticket out of scope", res(alice, nil, "create", "rooms", "tickets", "ber"), Deny},
		{"admin gets a report", res(alice, nil, "get", "rooms", "reports", "nyc"), Allow},
		{"admin gets a report out of scope", res(alice, nil, "get", "rooms", "reports", "ber"), Deny},
		{"admin views room groups", res(alice, nil, "list", "roomgroups", "", ""), Allow},
		{"admin modifies room groups", res(alice, nil, "patch", "roomgroups", "", "g"), Deny},
		{"admin creates room groups", res(alice, nil, "create", "roomgroups", "", ""), Deny},
		{"admin views update rings", res(alice, nil, "get", "updaterings", "", "general"), Allow},
		{"admin modifies update rings", res(alice, nil, "update", "updaterings", "", "general"), Allow},
		{"admin creates update rings", res(alice, nil, "create", "updaterings", "", ""), Deny},
		{"admin views settings", res(alice, nil, "get", "settings", "", "tenant"), Deny},
		{"admin modifies settings", res(alice, nil, "patch", "settings", "", "tenant"), Deny},
		{"admin lists its link's roles", rolesList(alice, "contoso"), Allow},
		{"admin lists roles without a field selector", res(alice, nil, "list", "partnerroles", "", ""), Deny},
		{"admin lists another link's roles", rolesList(alice, "fabrikam"), Deny},
		{"admin lists with two link requirements, one its own", func() *Request {
			r := rolesList(alice, "fabrikam")
			r.FieldSelector = append(r.FieldSelector, Requirement{Key: "spec.partnerLink", Operator: "In", Values: []string{"contoso"}})
			return r
		}(), Allow},
		{"admin gets a role of its link the index has not seen", res(alice, nil, "get", "partnerroles", "", "contoso-new"), Allow},
		{"admin gets an unseen name that no link of its owns", res(alice, nil, "get", "partnerroles", "", "fabrikam-new"), Deny},
		{"admin gets an unseen name of no link at all", res(alice, nil, "get", "partnerroles", "", "helpdesk"), Deny},
		{"admin gets another link's unseen built-in role", res(alice, nil, "get", "partnerroles", "", "fabrikam-2-primary-admins"), Deny},
		{"admin gets its role", res(alice, nil, "get", "partnerroles", "", "contoso-helpdesk"), Allow},
		{"admin creates a role", res(alice, nil, "create", "partnerroles", "", ""), Allow},
		{"admin patches its role", res(alice, nil, "patch", "partnerroles", "", "contoso-helpdesk"), Allow},
		{"admin deletes its role", res(alice, nil, "delete", "partnerroles", "", "contoso-helpdesk"), Allow},
		{"admin gets another partner's role", res(alice, nil, "get", "partnerroles", "", "fabrikam-primary-admins"), Deny},
		{"admin patches another partner's role", res(alice, nil, "patch", "partnerroles", "", "fabrikam-primary-admins"), Deny},
		{"admin edits a RoomAssignment", res(alice, nil, "patch", "roomassignments", "", "contoso-invitation"), Deny},
		{"admin creates an invitation", res(alice, nil, "create", "partnerinvitations", "", ""), Deny},
		{"admin reads pods", &Request{User: alice, Namespace: ns, Verb: "get", Resource: "pods", Name: "p"}, Deny},
		{"admin reads a room of another group", &Request{User: alice, Namespace: ns, Verb: "get", Group: "other.io", Resource: "rooms", Name: "nyc"}, Deny},
		{"admin gets a room in another namespace", &Request{User: alice, Namespace: "tenant-b", Verb: "get", Group: Group, Resource: "rooms", Name: "nyc-b"}, Deny},
		{"upper-case UPN is the same user", res("Alice@Contoso.COM", nil, "get", "rooms", "", "nyc"), Allow},

		// A custom role with a narrowed scope.
		{"helpdesk creates a ticket in its scope", res(carol, helpdesk, "create", "rooms", "tickets", "nyc"), Allow},
		{"helpdesk views a room in its scope", res(carol, helpdesk, "get", "rooms", "", "nyc"), Allow},
		{"helpdesk creates a ticket outside its assignment scope", res(carol, helpdesk, "create", "rooms", "tickets", "sea"), Deny},
		{"helpdesk cannot patch a room", res(carol, helpdesk, "patch", "rooms", "", "nyc"), Deny},
		{"helpdesk cannot read reports", res(carol, helpdesk, "get", "rooms", "reports", "nyc"), Deny},
		{"helpdesk cannot view roles", rolesList(carol, "contoso"), Deny},
		{"helpdesk cannot list by the partner label", &Request{User: carol, Groups: helpdesk, Namespace: ns, Verb: "list", Group: Group, Resource: "rooms",
			LabelSelector: []Requirement{{Key: v1alpha1.AccessLabel("contoso.com"), Operator: "Exists"}}}, Deny},
		{"a contoso user without roles", res("dave@contoso.com", nil, "get", "rooms", "", "nyc"), Deny},

		// A user of another partner.
		{"fabrikam admin gets its own room", res(bob, nil, "get", "rooms", "", "ber"), Allow},
		{"fabrikam admin gets a contoso room", res(bob, nil, "get", "rooms", "", "nyc"), Deny},
		{"fabrikam admin gets contoso's roles", res(bob, nil, "get", "partnerroles", "", "contoso-helpdesk"), Deny},
		{"contoso user in a fabrikam group gets nothing from it", res("dave@contoso.com", []string{"fabrikam.com:tenant-managers"}, "get", "partnerinvitations", "", "fabrikam"), Deny},

		// Tenant managers.
		{"tenant manager gets its invitation", res(tm, tenantManagers, "get", "partnerinvitations", "", "contoso-2"), Allow},
		{"tenant manager declines its invitation", res(tm, tenantManagers, "delete", "partnerinvitations", "", "contoso-2"), Allow},
		{"tenant manager gets another domain's invitation", res(tm, tenantManagers, "get", "partnerinvitations", "", "fabrikam"), Deny},
		{"tenant manager lists invitations", res(tm, tenantManagers, "list", "partnerinvitations", "", ""), Deny},
		{"tenant manager accepts (creates a link)", res(tm, tenantManagers, "create", "partnerlinks", "", ""), Allow},
		{"tenant manager gets its link", res(tm, tenantManagers, "get", "partnerlinks", "", "contoso"), Allow},
		{"tenant manager ends its link", res(tm, tenantManagers, "delete", "partnerlinks", "", "contoso"), Allow},
		{"tenant manager reads the link it is about to create (kubectl apply)", res(tm, tenantManagers, "get", "partnerlinks", "", "contoso-2"), Allow},
		{"tenant manager reads a link of another domain's invitation", res(tm, tenantManagers, "get", "partnerlinks", "", "fabrikam"), Deny},
		{"tenant manager ends another partner's link", res(tm, tenantManagers, "delete", "partnerlinks", "", "fabrikam"), Deny},
		{"a non-manager creates a link", res(alice, nil, "create", "partnerlinks", "", ""), Deny},
		{"a non-manager gets an invitation", res(alice, nil, "get", "partnerinvitations", "", "contoso-2"), Deny},

		// Identities that are not partners: RBAC decides.
		{"customer staff UPN", res("admin@customer.org", nil, "get", "rooms", "", "nyc"), NoOpinion},
		{"a user without @", res("admin", []string{"system:masters"}, "get", "rooms", "", "nyc"), NoOpinion},
		{"a service account", res("system:serviceaccount:tenant-a:portal", nil, "get", "rooms", "", "nyc"), NoOpinion},
		{"a domain without a dot", res("alice@contoso", nil, "get", "rooms", "", "nyc"), NoOpinion},
		{"a UPN of a sub-domain of a customer domain", res("ops@eu.customer.org", nil, "get", "pods", "", "p"), NoOpinion},

		// Names under a partner domain that are not well-formed partner
		// users: denied, never handed to RBAC.
		{"a UPN with two @", res("a@b@contoso.com", nil, "get", "rooms", "", "nyc"), Deny},
		{"an empty local part", res("@contoso.com", nil, "get", "rooms", "", "nyc"), Deny},
		{"a system: prefix in another case", res("System:alice@contoso.com", nil, "get", "pods", "", "p"), Deny},
		{"an issuer prefix", res("oidc:alice@contoso.com", nil, "get", "pods", "", "p"), Deny},
		{"a trailing dot", res("alice@contoso.com.", nil, "get", "pods", "", "p"), Deny},
		{"surrounding spaces", res(" alice@contoso.com ", nil, "get", "pods", "", "p"), Deny},
		{"a sub-domain of a partner domain", res("ops@eu.contoso.com", nil, "get", "pods", "", "p"), Deny},
		{"a group-shaped local part", res("fabrikam.com:ops@contoso.com", nil, "get", "rooms", "", "ber"), Deny},

		// Discovery and self review.
		{"discovery /apis", &Request{User: alice, Verb: "get", Path: "/apis"}, Allow},
		{"discovery /api/v1", &Request{User: alice, Verb: "get", Path: "/api/v1"}, Allow},
		{"discovery of a group version", &Request{User: alice, Verb: "get", Path: "/apis/partners.roompro.io/v1alpha1"}, Allow},
		{"openapi", &Request{User: alice, Verb: "get", Path: "/openapi/v3"}, Allow},
		{"openapi of a group version", &Request{User: alice, Verb: "get", Path: "/openapi/v3/apis/partners.roompro.io/v1alpha1"}, Allow},
		{"version", &Request{User: alice, Verb: "head", Path: "/version"}, Allow},
		{"a post to discovery", &Request{User: alice, Verb: "post", Path: "/apis"}, Deny},
		{"a resource path as a non-resource request", &Request{User: alice, Verb: "get", Path: "/api/v1/namespaces/tenant-a/pods"}, Deny},
		{"a path below a group version", &Request{User: alice, Verb: "get", Path: "/apis/partners.roompro.io/v1alpha1/rooms"}, Deny},
		{"a dot-dot path", &Request{User: alice, Verb: "get", Path: "/apis/../metrics"}, Deny},
		{"a path without its leading slash", &Request{User: alice, Verb: "get", Path: "api/v1"}, Deny},
		{"a path glued to the OpenAPI prefix", &Request{User: alice, Verb: "get", Path: "/openapi/v3apis/x"}, Deny},
		{"metrics", &Request{User: alice, Verb: "get", Path: "/metrics"}, Deny},
		{"self subject access review", &Request{User: alice, Verb: "create", Group: "authorization.k8s.io", Resource: "selfsubjectaccessreviews"}, Allow},
		{"self subject review", &Request{User: alice, Verb: "create", Group: "authentication.k8s.io", Resource: "selfsubjectreviews"}, Allow},
		{"subject access review about others", &Request{User: alice, Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"}, Deny},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := x.Decide(tc.req)
			if d.Verdict != tc.want {
				t.Errorf("Decide = %s (%s), want %s", d.Verdict, d.Reason, tc.want)
			}
			if d.Reason == "" {
				t.Error("every decision must say why")
			}
		})
	}
}

func TestListRoomsNeedsThePartnerLabelSelector(t *testing.T) {
	x := world()
	label := v1alpha1.AccessLabel("contoso.com")
	cases := []struct {
		name     string
		selector []Requirement
		want     Verdict
	}{
		{"-l key", []Requirement{{Key: label, Operator: "Exists"}}, Allow},
		{"-l key=true", []Requirement{{Key: label, Operator: "In", Values: []string{"true"}}}, Allow},
		{"with other requirements too", []Requirement{{Key: "site", Operator: "In", Values: []string{"nyc"}}, {Key: label, Operator: "Exists"}}, Allow},
		{"no selector", nil, Deny},
		{"key=false", []Requirement{{Key: label, Operator: "In", Values: []string{"false"}}}, Deny},
		{"key in (true,false)", []Requirement{{Key: label, Operator: "In", Values: []string{"true", "false"}}}, Deny},
		{"!key", []Requirement{{Key: label, Operator: "DoesNotExist"}}, Deny},
		{"another partner's label", []Requirement{{Key: v1alpha1.AccessLabel("fabrikam.com"), Operator: "Exists"}}, Deny},
	}
	for _, verb := range []string{"list", "watch"} {
		for _, tc := range cases {
			t.Run(verb+" "+tc.name, func(t *testing.T) {
				r := res(alice, nil, verb, "rooms", "", "")
				r.LabelSelector = tc.selector
				if d := x.Decide(r); d.Verdict != tc.want {
					t.Errorf("Decide = %s (%s), want %s", d.Verdict, d.Reason, tc.want)
				}
			})
		}
	}
}

func TestFailsClosedUntilSynced(t *testing.T) {
	x := world()
	x.SetSynced(false)
	if d := x.Decide(res(alice, nil, "get", "rooms", "", "nyc")); d.Verdict != Deny {
		t.Errorf("partner before sync: %s, want Deny", d.Verdict)
	}
	if d := x.Decide(res("admin", nil, "get", "rooms", "", "nyc")); d.Verdict != NoOpinion {
		t.Errorf("non-partner before sync: %s, want NoOpinion", d.Verdict)
	}
}

// While the index is stale (its watch of the apiserver may have stopped
// delivering), every partner request is denied with the reason, discovery
// included, and everyone else is answered as before; marking it current
// again restores the decisions.
func TestDeniesPartnersWhileStale(t *testing.T) {
	x := world()
	const reason = "the decision index is stale: test"
	x.SetStale(reason)
	if got := x.Stale(); got != reason {
		t.Fatalf("Stale() = %q, want %q", got, reason)
	}
	for _, r := range []*Request{
		res(alice, nil, "get", "rooms", "", "nyc"),
		res("tm@contoso.com", []string{"contoso.com:tenant-managers"}, "get", "partnerinvitations", "", "contoso-2"),
		{User: alice, Verb: "get", Path: "/apis"},
	} {
		if d := x.Decide(r); d.Verdict != Deny || d.Reason != reason {
			t.Errorf("partner %s %s %s while stale: %s (%s), want Deny (%s)", r.User, r.Verb, r.Resource+r.Path, d.Verdict, d.Reason, reason)
		}
	}
	for _, u := range []string{"admin", "megan@fourthcoffee.com"} {
		if d := x.Decide(res(u, nil, "get", "rooms", "", "nyc")); d.Verdict != NoOpinion {
			t.Errorf("%s while stale: %s (%s), want NoOpinion", u, d.Verdict, d.Reason)
		}
	}
	if d := x.Decide(res("a@b@contoso.com", nil, "get", "rooms", "", "nyc")); d.Verdict != Deny || d.Reason == reason {
		t.Errorf("malformed partner name while stale: %s (%s), want its own Deny", d.Verdict, d.Reason)
	}

	x.SetStale("")
	if x.Stale() != "" {
		t.Fatalf("Stale() after SetStale(\"\") = %q", x.Stale())
	}
	if d := x.Decide(res(alice, nil, "get", "rooms", "", "nyc")); d.Verdict != Allow {
		t.Errorf("partner once current again: %s (%s), want Allow", d.Verdict, d.Reason)
	}
}

func TestRevocationTakesEffectOnTheNextDecision(t *testing.T) {
	get := res(alice, nil, "get", "rooms", "", "nyc")

	t.Run("link deletion accepted", func(t *testing.T) {
		x := world()
		l := activeLinkObj(ns, "contoso", "contoso.com")
		now := metav1.Now()
		l.DeletionTimestamp = &now
		x.Upsert(l)
		if d := x.Decide(get); d.Verdict != Deny {
			t.Errorf("after the delete: %s, want Deny", d.Verdict)
		}
	})
	t.Run("member removed", func(t *testing.T) {
		x := world()
		x.Upsert(roleObj(ns, "contoso-primary-admins", "contoso", v1alpha1.PrimaryAdminPermissions, v1alpha1.RoomScope{}, user("eve@contoso.com")))
		if d := x.Decide(get); d.Verdict != Deny {
			t.Errorf("after removing alice: %s, want Deny", d.Verdict)
		}
	})
	t.Run("assignment narrowed", func(t *testing.T) {
		x := world()
		x.Upsert(assignmentObj(ns, "contoso-invitation", "contoso", v1alpha1.RoomScope{Names: []string{"sea"}}))
		if d := x.Decide(get); d.Verdict != Deny {
			t.Errorf("after narrowing: %s, want Deny", d.Verdict)
		}
	})
	t.Run("room relabelled out of scope", func(t *testing.T) {
		x := world()
		x.Upsert(roomObj(ns, "nyc", map[string]string{"country": "ca"}))
		if d := x.Decide(get); d.Verdict != Deny {
			t.Errorf("after relabelling: %s, want Deny", d.Verdict)
		}
	})
	t.Run("objects deleted", func(t *testing.T) {
		x := world()
		x.Delete(assignmentObj(ns, "contoso-invitation", "", v1alpha1.RoomScope{}))
		if d := x.Decide(get); d.Verdict != Deny {
			t.Errorf("after deleting the assignment: %s, want Deny", d.Verdict)
		}
	})
	t.Run("the domain's last object deleted: no longer a partner", func(t *testing.T) {
		x := world()
		x.Delete(activeLinkObj(ns, "fabrikam", "fabrikam.com"))
		x.Delete(orgObj("fabrikam.com"))
		if d := x.Decide(res(bob, nil, "get", "rooms", "", "ber")); d.Verdict != NoOpinion {
			t.Errorf("bob after fabrikam.com is gone: %s, want NoOpinion", d.Verdict)
		}
	})
}

func TestRoleNeverExceedsThePrimaryAdminSet(t *testing.T) {
	x := world()
	// The CRD rejects this role; the index must not trust it either.
	x.Upsert(roleObj(ns, "too-much", "contoso", []v1alpha1.Permission{v1alpha1.RoomsResetKey}, v1alpha1.RoomScope{}, user("mallory@contoso.com")))
	if d := x.Decide(res("mallory@contoso.com", nil, "create", "rooms", "resetkey", "nyc")); d.Verdict != Deny {
		t.Errorf("rooms.resetKey through a forged role: %s, want Deny", d.Verdict)
	}
}

func TestMembersOfAnotherDomainAreIgnored(t *testing.T) {
	x := world()
	x.Upsert(roleObj(ns, "cross", "contoso", v1alpha1.PrimaryAdminPermissions, v1alpha1.RoomScope{}, user("bob@fabrikam.com"), group("fabrikam.com:admins")))
	if d := x.Decide(res(bob, []string{"fabrikam.com:admins"}, "get", "rooms", "", "nyc")); d.Verdict != Deny {
		t.Errorf("fabrikam user through a contoso role: %s, want Deny", d.Verdict)
	}
}

type wantIdentity struct {
	Domain, User string
	Groups       []string
}

func TestParseIdentity(t *testing.T) {
	cases := []struct {
		user   string
		groups []string
		ok     bool
		want   wantIdentity
	}{
		{"alice@contoso.com", []string{"contoso.com:helpdesk", "fabrikam.com:tenant-managers", "system:authenticated"}, true,
			wantIdentity{Domain: "contoso.com", User: "alice@contoso.com", Groups: []string{"helpdesk"}}},
		{"Alice@CONTOSO.com", []string{"Contoso.com:Tenant-Managers", " contoso.com:helpdesk"}, true,
			wantIdentity{Domain: "contoso.com", User: "alice@contoso.com", Groups: []string{"tenant-managers"}}},
		{" alice@contoso.com", nil, false, wantIdentity{}},
		{"alice@contoso.com.", nil, false, wantIdentity{}},
		{"fabrikam.com:ops@contoso.com", nil, false, wantIdentity{}},
		{"al\tice@contoso.com", nil, false, wantIdentity{}},
		{"a@b@contoso.com", nil, false, wantIdentity{}},
		{"@contoso.com", nil, false, wantIdentity{}},
		{"alice@contoso", nil, false, wantIdentity{}},
		{"alice@", nil, false, wantIdentity{}},
		{"alice@-contoso.com", nil, false, wantIdentity{}},
		{"alice@contoso..com", nil, false, wantIdentity{}},
		{"system:serviceaccount:ns:sa", nil, false, wantIdentity{}},
		{"system:admin@contoso.com", nil, false, wantIdentity{}},
		{"admin", nil, false, wantIdentity{}},
	}
	for _, tc := range cases {
		id, ok := ParseIdentity(tc.user, tc.groups)
		if ok != tc.ok {
			t.Errorf("ParseIdentity(%q) ok = %v, want %v", tc.user, ok, tc.ok)
			continue
		}
		if ok && (id.Domain != tc.want.Domain || id.User != tc.want.User || len(id.Groups()) != len(tc.want.Groups)) {
			t.Errorf("ParseIdentity(%q) = %+v, want %+v", tc.user, id, tc.want)
			continue
		}
		for i, g := range id.Groups() {
			if g != tc.want.Groups[i] {
				t.Errorf("ParseIdentity(%q).Groups = %v, want %v", tc.user, id.Groups(), tc.want.Groups)
			}
		}
	}
	if id, _ := ParseIdentity("tm@contoso.com", []string{"fabrikam.com:tenant-managers"}); id.InGroup(DefaultTenantManagerGroup) {
		t.Error("a tenant-managers group of another domain made a tenant manager")
	}
}

func TestIsPartnerDomain(t *testing.T) {
	x := world()
	if !x.IsPartnerDomain("Contoso.com") || x.IsPartnerDomain("customer.org") {
		t.Error("IsPartnerDomain does not follow the registrations and links")
	}
	x.SetSynced(false)
	if !x.IsPartnerDomain("customer.org") {
		t.Error("before sync every domain must count as a partner's (fail closed)")
	}
}

// TestOnlyRegistrationsMakePartnerDomains: a tenant's invitation of another
// tenant's domain changes nothing for that domain's users; a registration
// does, and a link outlives its registration (fail closed).
func TestOnlyRegistrationsMakePartnerDomains(t *testing.T) {
	x := world()
	staff := res("bob@fourthcoffee.com", nil, "get", "pods", "", "x")
	staff.Group = ""
	verdict := func() Verdict { return x.Decide(staff).Verdict }

	inv := invitationObj("tenant-b", "lockout", "fourthcoffee.com", v1alpha1.InvitationPending)
	x.Upsert(inv)
	if x.IsPartnerDomain("fourthcoffee.com") || verdict() != NoOpinion {
		t.Fatalf("an invitation of an unregistered domain made its users partners: %s", verdict())
	}

	org := orgObj("fourthcoffee.com")
	x.Upsert(org)
	if !x.IsPartnerDomain("fourthcoffee.com") || verdict() != Deny {
		t.Fatalf("a registered domain's user is not a partner: %s", verdict())
	}
	x.Delete(inv)
	if verdict() != Deny {
		t.Fatalf("a registered domain with no invitation: %s, want Deny", verdict())
	}

	// The registration deleted in a race with an acceptance: the link keeps
	// the domain a partner's until the link goes too.
	l := activeLinkObj("tenant-b", "lockout", "fourthcoffee.com")
	x.Upsert(l)
	x.Delete(org)
	if verdict() != Deny {
		t.Fatalf("a link of a domain whose registration went: %s, want Deny", verdict())
	}
	x.Delete(l)
	if x.IsPartnerDomain("fourthcoffee.com") || verdict() != NoOpinion {
		t.Fatalf("neither registration nor link: %s, want NoOpinion", verdict())
	}
}

func TestTenantManagerGroupIsConfigurable(t *testing.T) {
	x := NewIndex(WithTenantManagerGroup("partner-admins"))
	for _, o := range []any{orgObj("contoso.com"), invitationObj(ns, "contoso-2", "contoso.com", v1alpha1.InvitationPending)} {
		x.Upsert(o)
	}
	x.SetSynced(true)
	get := func(groups ...string) Verdict {
		return x.Decide(res(tm, groups, "get", "partnerinvitations", "", "contoso-2")).Verdict
	}
	if v := get("contoso.com:partner-admins"); v != Allow {
		t.Errorf("configured group: %s, want Allow", v)
	}
	if v := get("contoso.com:tenant-managers"); v != Deny {
		t.Errorf("default group after reconfiguration: %s, want Deny", v)
	}
}

func rolesList(u, link string) *Request {
	r := res(u, nil, "list", "partnerroles", "", "")
	r.FieldSelector = []Requirement{{Key: "spec.partnerLink", Operator: "In", Values: []string{link}}}
	return r
}

func TestClassify(t *testing.T) {
	partners := map[string]bool{"contoso.com": true, "xn--bcher-kva.example": true}
	isPartner := func(d string) bool { return partners[d] }
	cases := []struct {
		user   string
		class  Class
		domain string
	}{
		{"alice@contoso.com", Partner, "contoso.com"},
		{"Alice@CONTOSO.COM", Partner, "contoso.com"},
		{"alice@xn--bcher-kva.example", Partner, "xn--bcher-kva.example"},
		{"admin", NotAnIdentity, ""},
		{"system:serviceaccount:ns:sa", NotAnIdentity, ""},
		{"bob@fourthcoffee.com", Customer, "fourthcoffee.com"},
		{"bob@eu.fourthcoffee.com", Customer, "eu.fourthcoffee.com"},
		{"x@y@fourthcoffee.com", Customer, ""},
		{"x@y@contoso.com", Malformed, "contoso.com"},
		{"@contoso.com", Malformed, "contoso.com"},
		{"SYSTEM:bob@contoso.com", Malformed, "contoso.com"},
		{"System:alice@contoso.com", Malformed, "contoso.com"},
		{"oidc:alice@contoso.com", Malformed, "contoso.com"},
		{"alice@contoso.com.", Malformed, "contoso.com"},
		{"alice@CONTOSO.com.", Malformed, "contoso.com"},
		{" alice@contoso.com ", Malformed, "contoso.com"},
		{"ops@eu.contoso.com", Malformed, "contoso.com"},
		{"ops@a.b.eu.contoso.com", Malformed, "contoso.com"},
		{"alice@bücher.example", Malformed, "xn--bcher-kva.example"},
		{"alice@BÜCHER.example.", Malformed, "xn--bcher-kva.example"},
		{"fabrikam.com:ops@contoso.com", Malformed, "contoso.com"},
		{"alice@contoso", Customer, ""},
	}
	for _, tc := range cases {
		id, class := Classify(tc.user, nil, isPartner)
		if class != tc.class || (tc.domain != "" && id.Domain != tc.domain) {
			t.Errorf("Classify(%q) = %v %q, want %v %q", tc.user, class, id.Domain, tc.class, tc.domain)
		}
	}
}

// A partner with two links in one namespace: the access label is the
// domain's, so listing by it needs the whole scope of both links.
func TestListingByTheAccessLabelNeedsEveryLinkOfTheDomain(t *testing.T) {
	x := world()
	list := &Request{User: alice, Namespace: ns, Verb: "list", Group: Group, Resource: "rooms",
		LabelSelector: []Requirement{{Key: v1alpha1.AccessLabel("contoso.com"), Operator: "Exists"}}}
	if d := x.Decide(list); d.Verdict != Allow {
		t.Fatalf("one link: %s (%s), want Allow", d.Verdict, d.Reason)
	}
	x.Upsert(activeLinkObj(ns, "contoso-2", "contoso.com"))
	x.Upsert(assignmentObj(ns, "contoso-2-invitation", "contoso-2", v1alpha1.RoomScope{Names: []string{"ber"}}))
	if d := x.Decide(list); d.Verdict != Deny {
		t.Fatalf("a second link the caller holds nothing on: %s (%s), want Deny", d.Verdict, d.Reason)
	}
	x.Upsert(roleObj(ns, "contoso-2-primary-admins", "contoso-2", v1alpha1.PrimaryAdminPermissions, v1alpha1.RoomScope{}, user(alice)))
	if d := x.Decide(list); d.Verdict != Allow {
		t.Fatalf("whole scope of both links: %s (%s), want Allow", d.Verdict, d.Reason)
	}
}

// A group member of one partner and a user of another never share grants,
// whatever their names.
func TestSubjectKeysDoNotCollideAcrossKindsAndDomains(t *testing.T) {
	x := world()
	x.Upsert(roleObj(ns, "fabrikam-ops", "fabrikam", v1alpha1.PrimaryAdminPermissions, v1alpha1.RoomScope{},
		group("fabrikam.com:ops@contoso.com")))
	// The group's members are fabrikam's: ber is in fabrikam's scope only.
	if d := x.Decide(res("eve@fabrikam.com", []string{"fabrikam.com:ops@contoso.com"}, "get", "rooms", "", "ber")); d.Verdict != Allow {
		t.Fatalf("the group's own member: %s (%s), want Allow", d.Verdict, d.Reason)
	}
	if d := x.Decide(res("fabrikam.com:ops@contoso.com", nil, "get", "rooms", "", "ber")); d.Verdict != Deny {
		t.Fatalf("a contoso name equal to the group's: %s (%s), want Deny", d.Verdict, d.Reason)
	}
	k1 := subjectKey{namespace: ns, kind: groupSubject, domain: "fabrikam.com", name: "fabrikam.com:ops@contoso.com"}
	k2 := subjectKey{namespace: ns, kind: userSubject, domain: "contoso.com", name: "fabrikam.com:ops@contoso.com"}
	if k1 == k2 {
		t.Fatal("keys of a group and a user of the same name are equal")
	}
}

// Every namespace where the caller holds nothing gets the same answer,
// whether it exists, has another partner in it, or not.
func TestOutOfPartnershipDenialsAreAlike(t *testing.T) {
	x := world()
	x.Upsert(activeLinkObj("tenant-c", "fabrikam", "fabrikam.com"))
	for _, req := range []func(ns string) *Request{
		func(ns string) *Request {
			return &Request{User: alice, Namespace: ns, Verb: "get", Group: Group, Resource: "rooms", Name: "nyc"}
		},
		func(ns string) *Request {
			return &Request{User: alice, Namespace: ns, Verb: "list", Group: Group, Resource: "partnerroles"}
		},
		func(ns string) *Request {
			return &Request{User: tm, Groups: tenantManagers, Namespace: ns, Verb: "create", Group: Group, Resource: "partnerlinks"}
		},
		func(ns string) *Request {
			return &Request{User: alice, Namespace: ns, Verb: "get", Resource: "pods", Name: "p"}
		},
	} {
		var reasons []string
		for _, n := range []string{"tenant-b", "tenant-c", "does-not-exist"} {
			d := x.Decide(req(n))
			if d.Verdict != Deny {
				t.Fatalf("%+v: %s, want Deny", *req(n), d.Verdict)
			}
			reasons = append(reasons, strings.ReplaceAll(d.Reason, n, "<ns>"))
		}
		if reasons[0] != reasons[1] || reasons[1] != reasons[2] {
			t.Errorf("reasons differ between namespaces: %q", reasons)
		}
	}
}

func TestHoldings(t *testing.T) {
	x := world()
	admin := x.Holdings(ns, alice, nil, "contoso")
	if len(admin) != 1 || admin[0].Scope != nil || len(admin[0].Permissions) != len(v1alpha1.PrimaryAdminPermissions) {
		t.Errorf("primary admin holds %+v, want the primary-admin set on the whole scope", admin)
	}
	if got := x.Holdings(ns, alice, nil, "fabrikam"); len(got) != 0 {
		t.Errorf("alice holds %+v on fabrikam, want nothing", got)
	}
	helpdesk := x.Holdings(ns, carol, helpdesk, "contoso")
	if len(helpdesk) != 1 || helpdesk[0].Scope == nil {
		t.Errorf("carol holds %+v, want one scoped holding", helpdesk)
	}
	if got := x.Holdings(ns, "System:alice@contoso.com", nil, "contoso"); len(got) != 0 {
		t.Errorf("a malformed name holds %+v, want nothing", got)
	}
}
