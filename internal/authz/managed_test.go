package authz

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func ticketObj(namespace, name, room string) *v1alpha1.Ticket {
	return &v1alpha1.Ticket{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{v1alpha1.LabelRoom: room}},
		Spec:       v1alpha1.TicketSpec{Room: room},
	}
}

func reportObj(namespace, name, room string) *v1alpha1.RoomReport {
	return &v1alpha1.RoomReport{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{v1alpha1.LabelRoom: room}},
		Spec:       v1alpha1.RoomReportSpec{Room: room},
	}
}

func ringRoomObj(namespace, name, ring string, labels map[string]string) *v1alpha1.Room {
	r := roomObj(namespace, name, labels)
	r.Spec.UpdateRing = ring
	return r
}

var ringers = []string{"contoso.com:ringers", "system:authenticated"}

// managedWorld is world() with the managed resources:
//
//	tickets t-nyc, t-sea, t-ber and reports rep-nyc, rep-ber of those rooms;
//	rings: nyc and sea in "us", ber in "de"; ring "empty" has no room;
//	contoso.com:ringers holds updateRings.modify on site=nyc only.
func managedWorld() *Index {
	x := world()
	for _, o := range []any{
		ringRoomObj(ns, "nyc", "us", map[string]string{"country": "us", "site": "nyc"}),
		ringRoomObj(ns, "sea", "us", map[string]string{"country": "us", "site": "sea"}),
		ringRoomObj(ns, "ber", "de", map[string]string{"country": "de", "site": "ber"}),
		ticketObj(ns, "t-nyc", "nyc"), ticketObj(ns, "t-sea", "sea"), ticketObj(ns, "t-ber", "ber"),
		reportObj(ns, "rep-nyc", "nyc"), reportObj(ns, "rep-ber", "ber"),
		roleObj(ns, "contoso-ringers", "contoso", []v1alpha1.Permission{v1alpha1.UpdateRingsView, v1alpha1.UpdateRingsModify},
			selector(map[string]string{"site": "nyc"}), group("contoso.com:ringers")),
	} {
		x.Upsert(o)
	}
	return x
}

func byRoom(op string, rooms ...string) Requirement {
	return Requirement{Key: v1alpha1.LabelRoom, Operator: op, Values: rooms}
}

func list(u string, groups []string, resource string, selector ...Requirement) *Request {
	r := res(u, groups, "list", resource, "", "")
	r.LabelSelector = selector
	return r
}

var contosoAccess = Requirement{Key: v1alpha1.AccessLabel("contoso.com"), Operator: "Exists"}

func TestDecideManagedResources(t *testing.T) {
	x := managedWorld()
	cases := []struct {
		name  string
		req   *Request
		want  Verdict
		cause DenialCause
	}{
		// Tickets: on the ticket's room.
		{"admin gets a ticket of a room in scope", res(alice, nil, "get", "tickets", "", "t-nyc"), Allow, NoCause},
		{"admin watches a ticket by name", res(alice, nil, "watch", "tickets", "", "t-sea"), Allow, NoCause},
		{"admin patches a ticket in scope", res(alice, nil, "patch", "tickets", "", "t-sea"), Allow, NoCause},
		{"admin updates a ticket in scope", res(alice, nil, "update", "tickets", "", "t-nyc"), Allow, NoCause},
		{"admin gets a ticket of a room out of scope", res(alice, nil, "get", "tickets", "", "t-ber"), Deny, RoomOutOfScope},
		{"admin patches a ticket out of scope", res(alice, nil, "patch", "tickets", "", "t-ber"), Deny, RoomOutOfScope},
		{"an unknown ticket is denied as out of scope", res(alice, nil, "get", "tickets", "", "t-none"), Deny, RoomOutOfScope},
		{"a ticket named like a room in scope is still unknown", res(alice, nil, "get", "tickets", "", "nyc"), Deny, RoomOutOfScope},
		{"admin creates a ticket (admission checks spec.room)", res(alice, nil, "create", "tickets", "", ""), Allow, NoCause},
		{"partners never delete tickets", res(alice, nil, "delete", "tickets", "", "t-nyc"), Deny, NeverForPartners},
		{"partners never delete collections of tickets", res(alice, nil, "deletecollection", "tickets", "", ""), Deny, NeverForPartners},
		{"partners never write a ticket's status", res(alice, nil, "patch", "tickets", "status", "t-nyc"), Deny, NeverForPartners},
		{"partners never read a ticket's status", res(alice, nil, "get", "tickets", "status", "t-nyc"), Deny, NeverForPartners},
		{"helpdesk gets a ticket of its room", res(carol, helpdesk, "get", "tickets", "", "t-nyc"), Allow, NoCause},
		{"helpdesk gets a ticket of the link's room outside its role", res(carol, helpdesk, "get", "tickets", "", "t-sea"), Deny, RoomOutOfScope},
		{"helpdesk updates its room's ticket", res(carol, helpdesk, "update", "tickets", "", "t-nyc"), Allow, NoCause},
		{"a get without a name", res(alice, nil, "get", "tickets", "", ""), Deny, UnconfinedList},
		{"fabrikam gets its ticket", res(bob, nil, "get", "tickets", "", "t-ber"), Allow, NoCause},
		{"fabrikam gets contoso's ticket", res(bob, nil, "get", "tickets", "", "t-nyc"), Deny, RoomOutOfScope},
		{"a ticket of another namespace", &Request{User: alice, Namespace: "tenant-b", Verb: "get", Group: Group, Resource: "tickets", Name: "t-nyc"}, Deny, NoRoleGrants},
		{"a user without roles", res("dave@contoso.com", nil, "get", "tickets", "", "t-nyc"), Deny, NoRoleGrants},
		{"customer staff", res("admin@customer.org", nil, "delete", "tickets", "", "t-nyc"), NoOpinion, NoCause},

		// Ticket lists: (b) by the room label, (a) by the access label.
		{"helpdesk lists its room's tickets", list(carol, helpdesk, "tickets", byRoom("In", "nyc")), Allow, NoCause},
		{"helpdesk lists with ==", list(carol, helpdesk, "tickets", byRoom("Equals", "nyc")), Allow, NoCause},
		{"helpdesk watches its room's tickets", func() *Request {
			r := list(carol, helpdesk, "tickets", byRoom("In", "nyc"))
			r.Verb = "watch"
			return r
		}(), Allow, NoCause},
		{"helpdesk lists another room's tickets", list(carol, helpdesk, "tickets", byRoom("In", "sea")), Deny, RoomOutOfScope},
		{"helpdesk lists its room and another", list(carol, helpdesk, "tickets", byRoom("In", "nyc", "sea")), Deny, RoomOutOfScope},
		{"helpdesk lists by the access label alone", list(carol, helpdesk, "tickets", contosoAccess), Deny, UnconfinedList},
		{"helpdesk lists by the access label and its room", list(carol, helpdesk, "tickets", contosoAccess, byRoom("In", "nyc")), Allow, NoCause},
		{"helpdesk lists with NotIn", list(carol, helpdesk, "tickets", byRoom("NotIn", "sea")), Deny, UnconfinedList},
		{"helpdesk lists with Exists", list(carol, helpdesk, "tickets", Requirement{Key: v1alpha1.LabelRoom, Operator: "Exists"}), Deny, UnconfinedList},
		{"helpdesk lists with In and no value", list(carol, helpdesk, "tickets", byRoom("In")), Deny, UnconfinedList},
		{"helpdesk lists without a selector", list(carol, helpdesk, "tickets"), Deny, UnconfinedList},
		{"admin lists by the access label", list(alice, nil, "tickets", contosoAccess), Allow, NoCause},
		{"admin lists two rooms of its scope", list(alice, nil, "tickets", byRoom("In", "nyc", "sea")), Allow, NoCause},
		{"admin lists an unknown room", list(alice, nil, "tickets", byRoom("In", "nowhere")), Deny, RoomOutOfScope},
		{"admin lists by another partner's access label", list(alice, nil, "tickets", Requirement{Key: v1alpha1.AccessLabel("fabrikam.com"), Operator: "Exists"}), Deny, UnconfinedList},
		{"fabrikam lists contoso's room", list(bob, nil, "tickets", byRoom("In", "nyc")), Deny, RoomOutOfScope},

		// Reports: read on their room, never written.
		{"admin gets a report in scope", res(alice, nil, "get", "roomreports", "", "rep-nyc"), Allow, NoCause},
		{"admin gets a report out of scope", res(alice, nil, "get", "roomreports", "", "rep-ber"), Deny, RoomOutOfScope},
		{"admin gets an unknown report", res(alice, nil, "get", "roomreports", "", "rep-none"), Deny, RoomOutOfScope},
		{"a ticket's name is no report", res(alice, nil, "get", "roomreports", "", "t-nyc"), Deny, RoomOutOfScope},
		{"admin lists reports of a room", list(alice, nil, "roomreports", byRoom("In", "nyc")), Allow, NoCause},
		{"admin lists reports by the access label", list(alice, nil, "roomreports", contosoAccess), Allow, NoCause},
		{"admin lists reports out of scope", list(alice, nil, "roomreports", byRoom("In", "ber")), Deny, RoomOutOfScope},
		{"helpdesk holds no reports.view", res(carol, helpdesk, "get", "roomreports", "", "rep-nyc"), Deny, NoRoleGrants},
		{"partners never create reports", res(alice, nil, "create", "roomreports", "", ""), Deny, NeverForPartners},
		{"partners never patch reports", res(alice, nil, "patch", "roomreports", "", "rep-nyc"), Deny, NeverForPartners},
		{"partners never delete reports", res(alice, nil, "delete", "roomreports", "", "rep-nyc"), Deny, NeverForPartners},
		{"partners never write a report's status", res(alice, nil, "update", "roomreports", "status", "rep-nyc"), Deny, NeverForPartners},

		// Room groups: read with groups.view; never written.
		{"admin gets a room group", res(alice, nil, "get", "roomgroups", "", "g"), Allow, NoCause},
		{"admin watches room groups", res(alice, nil, "watch", "roomgroups", "", ""), Allow, NoCause},
		{"admin patches a room group", res(alice, nil, "patch", "roomgroups", "", "g"), Deny, NoRoleGrants},
		{"admin creates a room group", res(alice, nil, "create", "roomgroups", "", ""), Deny, NoRoleGrants},
		{"admin deletes a room group", res(alice, nil, "delete", "roomgroups", "", "g"), Deny, NeverForPartners},
		{"admin writes a room group's status", res(alice, nil, "patch", "roomgroups", "status", "g"), Deny, NeverForPartners},
		{"helpdesk holds no groups.view", res(carol, helpdesk, "list", "roomgroups", "", ""), Deny, NoRoleGrants},

		// Update rings: an update needs every room of the ring covered.
		{"admin gets a ring", res(alice, nil, "get", "updaterings", "", "de"), Allow, NoCause},
		{"admin lists rings", res(alice, nil, "list", "updaterings", "", ""), Allow, NoCause},
		{"admin patches a ring of its rooms", res(alice, nil, "patch", "updaterings", "", "us"), Allow, NoCause},
		{"admin patches a ring with a room out of scope", res(alice, nil, "patch", "updaterings", "", "de"), Deny, RoomOutOfScope},
		{"admin updates a ring without rooms", res(alice, nil, "update", "updaterings", "", "empty"), Allow, NoCause},
		{"a narrowed role patches a ring with a room outside its role", res("erin@contoso.com", ringers, "patch", "updaterings", "", "us"), Deny, RoomOutOfScope},
		{"fabrikam patches the ring of its room", res(bob, nil, "patch", "updaterings", "", "de"), Allow, NoCause},
		{"fabrikam patches contoso's ring", res(bob, nil, "patch", "updaterings", "", "us"), Deny, RoomOutOfScope},
		{"partners never create rings", res(alice, nil, "create", "updaterings", "", ""), Deny, NeverForPartners},
		{"partners never delete rings", res(alice, nil, "delete", "updaterings", "", "us"), Deny, NeverForPartners},
		{"partners never write a ring's status", res(alice, nil, "patch", "updaterings", "status", "us"), Deny, NeverForPartners},
		{"helpdesk holds no updateRings.modify", res(carol, helpdesk, "patch", "updaterings", "", "empty"), Deny, NoRoleGrants},
		{"customer staff patch a ring", res("admin@customer.org", nil, "patch", "updaterings", "", "de"), NoOpinion, NoCause},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := x.Decide(tc.req)
			if d.Verdict != tc.want || d.Cause != tc.cause {
				t.Errorf("Decide = %s/%s (%s), want %s/%s", d.Verdict, d.Cause, d.Reason, tc.want, tc.cause)
			}
			if d.Reason == "" {
				t.Error("every decision must say why")
			}
		})
	}
}

func TestUnknownTicketsAndReportsAreDeniedLikeOutOfScope(t *testing.T) {
	x := managedWorld()
	for _, pair := range [][2]*Request{
		{res(alice, nil, "get", "tickets", "", "t-ber"), res(alice, nil, "get", "tickets", "", "t-none")},
		{res(alice, nil, "patch", "tickets", "", "t-ber"), res(alice, nil, "patch", "tickets", "", "t-none")},
		{res(alice, nil, "get", "roomreports", "", "rep-ber"), res(alice, nil, "get", "roomreports", "", "rep-none")},
	} {
		if out, unknown := x.Decide(pair[0]), x.Decide(pair[1]); out != unknown {
			t.Errorf("%s %s: out of scope %+v, unknown %+v: must be alike", pair[0].Verb, pair[0].Resource, out, unknown)
		}
	}
}

func TestTicketFollowsItsRoom(t *testing.T) {
	x := managedWorld()
	get := res(alice, nil, "get", "tickets", "", "t-nyc")
	if d := x.Decide(get); d.Verdict != Allow {
		t.Fatalf("before: %s (%s)", d.Verdict, d.Reason)
	}
	// nyc leaves the link's scope (country=us): its ticket at once.
	x.Upsert(ringRoomObj(ns, "nyc", "us", map[string]string{"country": "de", "site": "nyc"}))
	if d := x.Decide(get); d.Verdict != Deny || d.Cause != RoomOutOfScope {
		t.Errorf("after the room left the scope: %s/%s (%s), want Deny/room_out_of_scope", d.Verdict, d.Cause, d.Reason)
	}
	// The ring "us" now holds nyc, out of scope.
	if d := x.Decide(res(alice, nil, "patch", "updaterings", "", "us")); d.Verdict != Deny {
		t.Errorf("ring with a room out of scope: %s (%s), want Deny", d.Verdict, d.Reason)
	}
	// nyc moves to ring "de": "us" holds only sea again.
	x.Upsert(ringRoomObj(ns, "nyc", "de", map[string]string{"country": "de", "site": "nyc"}))
	if d := x.Decide(res(alice, nil, "patch", "updaterings", "", "us")); d.Verdict != Allow {
		t.Errorf("ring after its room moved: %s (%s), want Allow", d.Verdict, d.Reason)
	}
	// A deleted ticket is unknown.
	x.Upsert(ringRoomObj(ns, "nyc", "us", map[string]string{"country": "us", "site": "nyc"}))
	x.Delete(ticketObj(ns, "t-nyc", "nyc"))
	if d := x.Decide(get); d.Verdict != Deny || d.Cause != RoomOutOfScope {
		t.Errorf("deleted ticket: %s/%s (%s), want Deny/room_out_of_scope", d.Verdict, d.Cause, d.Reason)
	}
	// A deleted room leaves its ring.
	x.Delete(ringRoomObj(ns, "ber", "de", nil))
	if d := x.Decide(res(alice, nil, "patch", "updaterings", "", "de")); d.Verdict != Allow {
		t.Errorf("ring of a deleted room: %s (%s), want Allow", d.Verdict, d.Reason)
	}
}

func TestTicketsAndReportsDoNotBumpTheGeneration(t *testing.T) {
	x := managedWorld()
	before := x.generation
	x.Upsert(ticketObj(ns, "t-new", "nyc"))
	x.Upsert(reportObj(ns, "rep-new", "nyc"))
	x.Delete(ticketObj(ns, "t-new", "nyc"))
	x.Upsert(ringRoomObj(ns, "sea", "de", map[string]string{"country": "us", "site": "sea"}))
	if x.generation != before {
		t.Errorf("generation moved from %d to %d: tickets, reports and rings change no caller's grants", before, x.generation)
	}
}

func TestManagedListHintsNameTheSelector(t *testing.T) {
	x := managedWorld()
	for resource, kubectl := range map[string]string{"tickets": "kubectl get tickets -l partners.roompro.io/room=<room>", "roomreports": "kubectl get roomreports -l partners.roompro.io/room=<room>"} {
		d := x.Decide(list(alice, nil, resource))
		if d.Verdict != Deny || !strings.Contains(d.Reason, kubectl) || !strings.Contains(d.Reason, v1alpha1.AccessLabel("contoso.com")) {
			t.Errorf("%s: %s (%s), want a Deny naming %q and the access label", resource, d.Verdict, d.Reason, kubectl)
		}
	}
	if d := x.Decide(res(alice, nil, "patch", "updaterings", "", "de")); !strings.Contains(d.Reason, "spec.updateRing") {
		t.Errorf("ring denial %q must say which rooms count", d.Reason)
	}
}

func TestManagedDecisionsDoNotAllocate(t *testing.T) {
	x := managedWorld()
	for _, r := range []*Request{
		res(alice, nil, "get", "tickets", "", "t-nyc"),
		res(alice, nil, "get", "tickets", "", "t-ber"),
		res(alice, nil, "get", "tickets", "", "t-none"),
		res(alice, nil, "patch", "tickets", "", "t-nyc"),
		res(alice, nil, "get", "roomreports", "", "rep-nyc"),
		list(carol, helpdesk, "tickets", byRoom("In", "nyc")),
		list(carol, helpdesk, "tickets", byRoom("In", "sea")),
		list(carol, helpdesk, "tickets"),
		list(alice, nil, "roomreports", contosoAccess),
		res(alice, nil, "patch", "updaterings", "", "us"),
		res(alice, nil, "patch", "updaterings", "", "de"),
	} {
		x.Decide(r) // resolve the caller once
		if n := testing.AllocsPerRun(100, func() { x.Decide(r) }); n != 0 {
			t.Errorf("%s %s %s: %v allocations per decision, want 0", r.Verb, r.Resource, r.Name, n)
		}
	}
}
