package authz

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// benchWorld builds one namespace with rooms rooms, partners partners and
// users partner users in all. Partner i has an Active link whose assignment
// selects the rooms labelled partner=p<i>; its users u<j>@p<i>.example.com
// are primary admins, and the group p<i>.example.com:site-techs holds a role
// narrowed to the rooms labelled floor=1.
func benchWorld(b *testing.B, rooms, partners, users int) *Index {
	b.Helper()
	x := NewIndex()
	for r := range rooms {
		x.Upsert(roomObj(ns, fmt.Sprintf("room-%d", r), map[string]string{"partner": fmt.Sprintf("p%d", r%partners), "floor": fmt.Sprint(r / partners % 2)}))
	}
	for p := range partners {
		domain := fmt.Sprintf("p%d.example.com", p)
		link := fmt.Sprintf("p%d", p)
		var admins []v1alpha1.Subject
		for u := p; u < users; u += partners {
			admins = append(admins, user(fmt.Sprintf("u%d@%s", u, domain)))
		}
		x.Upsert(invitationObj(ns, link, domain, v1alpha1.InvitationAccepted))
		x.Upsert(activeLinkObj(ns, link, domain))
		x.Upsert(assignmentObj(ns, link+"-invitation", link, selector(map[string]string{"partner": link})))
		x.Upsert(roleObj(ns, link+"-primary-admins", link, v1alpha1.PrimaryAdminPermissions, v1alpha1.RoomScope{}, admins...))
		x.Upsert(roleObj(ns, link+"-site-techs", link, []v1alpha1.Permission{v1alpha1.RoomsView, v1alpha1.RoomsModify},
			selector(map[string]string{"floor": "1"}), group(domain+":site-techs")))
	}
	x.SetSynced(true)
	return x
}

// benchSizes span two orders of magnitude in rooms, partners and users: the
// cost of a decision must not follow them.
var benchSizes = []struct{ rooms, partners, users int }{
	{1_000, 10, 100},
	{10_000, 100, 1_000},
	{100_000, 1_000, 10_000},
}

// BenchmarkDecideRoom is the in-process cost of one room-scoped decision.
// Run: go test ./internal/authz -run '^$' -bench DecideRoom -benchmem
func BenchmarkDecideRoom(b *testing.B) {
	for _, size := range benchSizes {
		x := benchWorld(b, size.rooms, size.partners, size.users)
		p := size.partners / 2
		domain := fmt.Sprintf("p%d.example.com", p)
		admin := fmt.Sprintf("u%d@%s", p, domain)
		groups := []string{"system:authenticated", domain + ":site-techs"}
		// room-<p> belongs to partner p (floor 0); room-<p+partners> too (floor 1).
		cases := []benchCase{
			{"allowed", Request{User: admin, Namespace: ns, Verb: "get", Group: Group, Resource: "rooms", Name: fmt.Sprintf("room-%d", p)}, Allow},
			{"out-of-scope", Request{User: admin, Namespace: ns, Verb: "get", Group: Group, Resource: "rooms", Name: fmt.Sprintf("room-%d", p+1)}, Deny},
			{"group-allowed", Request{User: "tech@" + domain, Groups: groups, Namespace: ns, Verb: "update", Group: Group,
				Resource: "rooms", Name: fmt.Sprintf("room-%d", p+size.partners)}, Allow},
			{"group-out-of-scope", Request{User: "tech@" + domain, Groups: groups, Namespace: ns, Verb: "update", Group: Group,
				Resource: "rooms", Name: fmt.Sprintf("room-%d", p)}, Deny},
			// The customer's own staff reach the webhook too when they sign in with UPNs.
			{"staff-no-opinion", Request{User: "megan@fourthcoffee.com", Groups: []string{"system:authenticated"}, Namespace: ns, Verb: "get",
				Group: Group, Resource: "rooms", Name: fmt.Sprintf("room-%d", p)}, NoOpinion},
		}
		b.Run(fmt.Sprintf("rooms=%d/partners=%d/users=%d/case=group-allowed-first-time", size.rooms, size.partners, size.users), func(b *testing.B) {
			benchFirstDecisions(b, x, domain, fmt.Sprintf("room-%d", p+size.partners))
		})
		benchDecisions(b, x, size.rooms, size.partners, size.users, cases)
	}
}

// benchCase is one request of a decision benchmark and the verdict it
// must get.
type benchCase struct {
	name string
	req  Request
	want Verdict
}

// benchDecisions times each case in the world x, after checking its
// verdict.
func benchDecisions(b *testing.B, x *Index, rooms, partners, users int, cases []benchCase) {
	for _, c := range cases {
		b.Run(fmt.Sprintf("rooms=%d/partners=%d/users=%d/case=%s", rooms, partners, users, c.name), func(b *testing.B) {
			if d := x.Decide(&c.req); d.Verdict != c.want {
				b.Fatalf("%s: got %s (%s), want %s", c.name, d.Verdict, d.Reason, c.want)
			}
			// Building a world leaves garbage whose collection would run
			// during the timed loop and charge it to the decisions.
			runtime.GC()
			b.ReportAllocs()
			for b.Loop() {
				x.Decide(&c.req)
			}
		})
	}
}

// benchFirstDecisions times the decision for a caller the index does not
// remember yet (callers.go): requests cycle through 16 times more group
// members than the index has slots for callers, so nearly every one
// resolves its caller again.
func benchFirstDecisions(b *testing.B, x *Index, domain, room string) {
	groups := []string{"system:authenticated", domain + ":site-techs"}
	reqs := make([]Request, 16*callerSlots)
	for i := range reqs {
		reqs[i] = Request{User: fmt.Sprintf("tech%d@%s", i, domain), Groups: groups, Namespace: ns, Verb: "update",
			Group: Group, Resource: "rooms", Name: room}
	}
	if d := x.Decide(&reqs[0]); d.Verdict != Allow {
		b.Fatalf("got %s (%s), want Allow", d.Verdict, d.Reason)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		x.Decide(&reqs[i%len(reqs)])
		i++
	}
}

// BenchmarkDecideChangeRequest is the in-process cost of a decision on
// PartnerChangeRequests, in the worlds of BenchmarkDecideRoom with ten
// requests per partner link.
// Run: go test ./internal/authz -run '^$' -bench DecideChangeRequest -benchmem
func BenchmarkDecideChangeRequest(b *testing.B) {
	for _, size := range benchSizes {
		x := benchWorld(b, size.rooms, size.partners, size.users)
		for p := range size.partners {
			for i := range 10 {
				x.Upsert(changeRequestObj(ns, fmt.Sprintf("p%d-change-%d", p, i), fmt.Sprintf("p%d", p)))
			}
		}
		p := size.partners / 2
		domain := fmt.Sprintf("p%d.example.com", p)
		admin := fmt.Sprintf("u%d@%s", p, domain)
		groups := []string{"system:authenticated", domain + ":site-techs"}
		cases := []benchCase{
			{"get-allowed", Request{User: admin, Namespace: ns, Verb: "get", Group: Group, Resource: "partnerchangerequests", Name: fmt.Sprintf("p%d-change-3", p)}, Allow},
			{"get-other-partner", Request{User: admin, Namespace: ns, Verb: "get", Group: Group, Resource: "partnerchangerequests", Name: fmt.Sprintf("p%d-change-3", p+1)}, Deny},
			{"group-get-allowed", Request{User: "tech@" + domain, Groups: groups, Namespace: ns, Verb: "get", Group: Group,
				Resource: "partnerchangerequests", Name: fmt.Sprintf("p%d-change-3", p)}, Allow},
			{"list-by-link", Request{User: admin, Namespace: ns, Verb: "list", Group: Group, Resource: "partnerchangerequests",
				LabelSelector: []Requirement{{Key: v1alpha1.LabelPartnerLink, Operator: "In", Values: []string{fmt.Sprintf("p%d", p)}}}}, Allow},
			{"approve", Request{User: admin, Namespace: ns, Verb: "approve", Group: Group, Resource: "partnerchangerequests", Name: fmt.Sprintf("p%d-change-3", p)}, Deny},
		}
		benchDecisions(b, x, size.rooms, size.partners, size.users, cases)
	}
}

// BenchmarkDecideTicket is the in-process cost of a decision on a named
// ticket next to the same decision on its room, in the worlds of
// BenchmarkDecideRoom with one ticket per room (ticket-<r> is about
// room-<r>): a ticket costs one more map probe than its room.
// Run: go test ./internal/authz -run '^$' -bench DecideTicket -benchmem
func BenchmarkDecideTicket(b *testing.B) {
	for _, size := range benchSizes {
		x := benchWorld(b, size.rooms, size.partners, size.users)
		for r := range size.rooms {
			x.Upsert(ticketObj(ns, fmt.Sprintf("ticket-%d", r), fmt.Sprintf("room-%d", r)))
		}
		p := size.partners / 2
		domain := fmt.Sprintf("p%d.example.com", p)
		admin := fmt.Sprintf("u%d@%s", p, domain)
		get := func(resource, name string) Request {
			return Request{User: admin, Namespace: ns, Verb: "get", Group: Group, Resource: resource, Name: name}
		}
		cases := []benchCase{
			{"room-allowed", get("rooms", fmt.Sprintf("room-%d", p)), Allow},
			{"ticket-allowed", get("tickets", fmt.Sprintf("ticket-%d", p)), Allow},
			{"room-out-of-scope", get("rooms", fmt.Sprintf("room-%d", p+1)), Deny},
			{"ticket-out-of-scope", get("tickets", fmt.Sprintf("ticket-%d", p+1)), Deny},
			{"ticket-unknown", get("tickets", "ticket-none"), Deny},
			{"ticket-list-by-room", Request{User: admin, Namespace: ns, Verb: "list", Group: Group, Resource: "tickets",
				LabelSelector: []Requirement{{Key: v1alpha1.LabelRoom, Operator: "In", Values: []string{fmt.Sprintf("room-%d", p)}}}}, Allow},
		}
		benchDecisions(b, x, size.rooms, size.partners, size.users, cases)
	}
}

// BenchmarkDecideSessionPolicy is BenchmarkDecideRoom's allowed and
// out-of-scope cases where every partner's invitation requires amr: mfa,
// with the extra an OIDC sign-in brings (a credential id and the amr
// claim), and the denial of a session without mfa.
// Run: go test ./internal/authz -run '^$' -bench DecideSessionPolicy -benchmem
func BenchmarkDecideSessionPolicy(b *testing.B) {
	mfa := map[string]authorizationv1.ExtraValue{
		"authentication.kubernetes.io/credential-id": {"JTI=7c9e6679-7425-40de-944b-e07fc1f90ae7"},
		"amr": {"pwd", "mfa"},
	}
	pwd := map[string]authorizationv1.ExtraValue{"amr": {"pwd"}}
	for _, size := range benchSizes {
		x := benchWorld(b, size.rooms, size.partners, size.users)
		for p := range size.partners {
			inv := invitationObj(ns, fmt.Sprintf("p%d", p), fmt.Sprintf("p%d.example.com", p), v1alpha1.InvitationAccepted)
			inv.Spec.SessionPolicy = &v1alpha1.SessionPolicy{RequiredExtra: map[string]v1alpha1.ExtraValues{"amr": {"mfa"}}}
			x.Upsert(inv)
		}
		p := size.partners / 2
		admin := fmt.Sprintf("u%d@p%d.example.com", p, p)
		named := func(room int, extra map[string]authorizationv1.ExtraValue) Request {
			return Request{User: admin, Namespace: ns, Verb: "get", Group: Group, Resource: "rooms", Name: fmt.Sprintf("room-%d", room), Extra: extra}
		}
		benchDecisions(b, x, size.rooms, size.partners, size.users, []benchCase{
			{"policy-met-allowed", named(p, mfa), Allow},
			{"policy-met-out-of-scope", named(p+1, mfa), Deny},
			{"policy-unmet", named(p, pwd), Deny},
		})
	}
}

// BenchmarkDecideTimeBound is BenchmarkDecideRoom's cases where every
// partner is time-bound as issue 18 allows: every link expires in 30 days,
// the site-techs' assignment holds a just-in-time window open for the next
// hour, and every invitation requires amr: mfa, which each request meets.
// Every caller then has timed grants: a decision compares the moment of
// the request (Request.At, the reading the webhook takes for its latency
// metric anyway) with the interval its caller is current for. The case
// clock-read leaves At out, so that the decision reads the real clock
// itself, as the admission webhooks' decisions do.
// Run: go test ./internal/authz -run '^$' -bench DecideTimeBound -benchmem
func BenchmarkDecideTimeBound(b *testing.B) {
	mfa := map[string]authorizationv1.ExtraValue{
		"authentication.kubernetes.io/credential-id": {"JTI=7c9e6679-7425-40de-944b-e07fc1f90ae7"},
		"amr": {"pwd", "mfa"},
	}
	now := time.Now()
	for _, size := range benchSizes {
		x := benchWorld(b, size.rooms, size.partners, size.users)
		for p := range size.partners {
			link, domain := fmt.Sprintf("p%d", p), fmt.Sprintf("p%d.example.com", p)
			inv := invitationObj(ns, link, domain, v1alpha1.InvitationAccepted)
			inv.Spec.SessionPolicy = &v1alpha1.SessionPolicy{RequiredExtra: map[string]v1alpha1.ExtraValues{"amr": {"mfa"}}}
			x.Upsert(inv)
			l := activeLinkObj(ns, link, domain)
			l.Status.ExpiresAt = &metav1.Time{Time: now.Add(30 * 24 * time.Hour)}
			x.Upsert(l)
			techs := roleObj(ns, link+"-site-techs", link, []v1alpha1.Permission{v1alpha1.RoomsView, v1alpha1.RoomsModify},
				selector(map[string]string{"floor": "1"}), group(domain+":site-techs"))
			techs.Spec.Assignments[0].ValidFrom = &metav1.Time{Time: now.Add(-time.Minute)}
			techs.Spec.Assignments[0].ValidUntil = &metav1.Time{Time: now.Add(time.Hour)}
			x.Upsert(techs)
		}
		p := size.partners / 2
		domain := fmt.Sprintf("p%d.example.com", p)
		admin := fmt.Sprintf("u%d@%s", p, domain)
		groups := []string{"system:authenticated", domain + ":site-techs"}
		room := func(user string, groups []string, verb string, r int) Request {
			return Request{User: user, Groups: groups, Namespace: ns, Verb: verb, Group: Group, Resource: "rooms", Name: fmt.Sprintf("room-%d", r), Extra: mfa, At: now}
		}
		clockRead := room(admin, nil, "get", p)
		clockRead.At = time.Time{}
		benchDecisions(b, x, size.rooms, size.partners, size.users, []benchCase{
			{"allowed", room(admin, nil, "get", p), Allow},
			{"out-of-scope", room(admin, nil, "get", p+1), Deny},
			{"group-allowed", room("tech@"+domain, groups, "update", p+size.partners), Allow},
			{"group-out-of-scope", room("tech@"+domain, groups, "update", p), Deny},
			{"clock-read", clockRead, Allow},
		})
	}
}
