package authz

import (
	"fmt"
	"testing"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// benchWorld builds one namespace with rooms rooms and partners partners;
// partner i has an Active link whose assignment selects the rooms labelled
// partner=p<i>, and a primary admin admin@p<i>.example.com.
func benchWorld(b *testing.B, rooms, partners int) *Index {
	b.Helper()
	x := NewIndex()
	for r := range rooms {
		x.Upsert(roomObj(ns, fmt.Sprintf("room-%d", r), map[string]string{"partner": fmt.Sprintf("p%d", r%partners)}))
	}
	for p := range partners {
		domain := fmt.Sprintf("p%d.example.com", p)
		link := fmt.Sprintf("p%d", p)
		x.Upsert(invitationObj(ns, link, domain, v1alpha1.InvitationAccepted))
		x.Upsert(activeLinkObj(ns, link, domain))
		x.Upsert(assignmentObj(ns, link+"-invitation", link, selector(map[string]string{"partner": link})))
		x.Upsert(roleObj(ns, link+"-primary-admins", link, v1alpha1.PrimaryAdminPermissions, v1alpha1.RoomScope{}, user("admin@"+domain)))
	}
	x.SetSynced(true)
	return x
}

// BenchmarkDecideRoom is the in-process cost of one room-scoped decision.
// Run: go test ./internal/authz -run '^$' -bench DecideRoom -benchmem
func BenchmarkDecideRoom(b *testing.B) {
	for _, size := range []struct{ rooms, partners int }{{1000, 10}, {10000, 1000}} {
		b.Run(fmt.Sprintf("rooms=%d/partners=%d", size.rooms, size.partners), func(b *testing.B) {
			x := benchWorld(b, size.rooms, size.partners)
			p := size.partners / 2
			allowed := &Request{User: fmt.Sprintf("admin@p%d.example.com", p), Namespace: ns, Verb: "get",
				Group: Group, Resource: "rooms", Name: fmt.Sprintf("room-%d", p)}
			denied := *allowed
			denied.Name = fmt.Sprintf("room-%d", p+1)
			if d := x.Decide(allowed); d.Verdict != Allow {
				b.Fatalf("in scope: %s (%s)", d.Verdict, d.Reason)
			}
			if d := x.Decide(&denied); d.Verdict != Deny {
				b.Fatalf("out of scope: %s (%s)", d.Verdict, d.Reason)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				x.Decide(allowed)
			}
		})
	}
}
