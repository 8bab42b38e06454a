package authz

import (
	"math"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// t0 is a whole second, as every time the apiserver stores is.
var t0 = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)

// jitRole is carol's role of contoso: rooms.view on nyc for [from, until).
func jitRole(from, until time.Time) *v1alpha1.PartnerRole {
	r := roleObj(ns, "contoso-jit", "contoso", []v1alpha1.Permission{v1alpha1.RoomsView}, v1alpha1.RoomScope{Names: []string{"nyc"}}, user(carol))
	r.Spec.Assignments[0].ValidFrom = &metav1.Time{Time: from}
	r.Spec.Assignments[0].ValidUntil = &metav1.Time{Time: until}
	return r
}

// verdictAt steps the clock to at and decides r.
func verdictAt(x *Index, c *clocktesting.FakePassiveClock, at time.Time, r *Request) Verdict {
	c.SetTime(at)
	return x.Decide(r).Verdict
}

func TestRoleWindowGrantsToTheSecond(t *testing.T) {
	c := clocktesting.NewFakePassiveClock(t0.Add(-time.Hour))
	x := world(WithClock(c))
	x.Upsert(jitRole(t0, t0.Add(4*time.Hour)))
	nyc := res(carol, nil, "get", "rooms", "", "nyc")
	steps := []struct {
		at   time.Time
		want Verdict
	}{
		{t0.Add(-time.Second), Deny},
		{t0.Add(-time.Nanosecond), Deny},
		{t0, Allow},
		{t0.Add(2 * time.Hour), Allow},
		{t0.Add(4*time.Hour - time.Second), Allow},
		{t0.Add(4 * time.Hour), Deny},
		{t0.Add(4*time.Hour + time.Second), Deny},
		// The clock may go back (a test's, or an NTP step): the cached
		// caller is resolved again outside its interval either way.
		{t0.Add(time.Hour), Allow},
		{t0.Add(-time.Second), Deny},
	}
	for _, s := range steps {
		if got := verdictAt(x, c, s.at, nyc); got != s.want {
			t.Fatalf("at %s: %s, want %s", s.at.Format(time.RFC3339Nano), got, s.want)
		}
	}
	// Inside the window the role still grants only its scope.
	c.SetTime(t0)
	if d := x.Decide(res(carol, nil, "get", "rooms", "", "sea")); d.Verdict != Deny {
		t.Fatalf("a windowed role widened the scope: %s (%s)", d.Verdict, d.Reason)
	}
}

func TestRoleWindowLeavesOtherGrantsAlone(t *testing.T) {
	c := clocktesting.NewFakePassiveClock(t0.Add(5 * time.Hour))
	x := world(WithClock(c))
	x.Upsert(jitRole(t0, t0.Add(4*time.Hour)))
	// carol's helpdesk group grants rooms.view on nyc without a window.
	r := &Request{User: carol, Groups: helpdesk, Namespace: ns, Verb: "get", Group: Group, Resource: "rooms", Name: "nyc"}
	if got := x.Decide(r).Verdict; got != Allow {
		t.Fatalf("an expired window took away an unwindowed grant: %s", got)
	}
}

func linkExpiringAt(at time.Time) *v1alpha1.PartnerLink {
	l := activeLinkObj(ns, "contoso", "contoso.com")
	l.Status.ExpiresAt = &metav1.Time{Time: at}
	return l
}

func autoExtend(on bool) *v1alpha1.PartnerInvitation {
	inv := invitationObj(ns, "contoso", "contoso.com", v1alpha1.InvitationAccepted)
	days := int32(1)
	inv.Spec.Relationship = &v1alpha1.Relationship{DurationDays: &days, AutoExtend: on}
	return inv
}

func TestRelationshipEndsAtExpiresAt(t *testing.T) {
	c := clocktesting.NewFakePassiveClock(t0)
	x := world(WithClock(c))
	x.Upsert(linkExpiringAt(t0.Add(24 * time.Hour)))
	nyc := res(alice, nil, "get", "rooms", "", "nyc")
	if got := verdictAt(x, c, t0.Add(24*time.Hour-time.Second), nyc); got != Allow {
		t.Fatalf("a second before expiresAt: %s, want Allow", got)
	}
	if got := verdictAt(x, c, t0.Add(24*time.Hour), nyc); got != Deny {
		t.Fatalf("at expiresAt: %s, want Deny (no reconcile has run: the clock decides)", got)
	}
	// Another partner of the namespace is not affected.
	if got := x.Decide(res(bob, nil, "get", "rooms", "", "ber")).Verdict; got != Allow {
		t.Fatalf("fabrikam after contoso's end: %s, want Allow", got)
	}

	// With autoExtend the operator extends at that moment: no gap.
	x.Upsert(autoExtend(true))
	if got := x.Decide(nyc).Verdict; got != Allow {
		t.Fatalf("autoExtend at expiresAt: %s, want Allow", got)
	}
	// The customer turns autoExtend off: the relationship ends at once.
	x.Upsert(autoExtend(false))
	if got := x.Decide(nyc).Verdict; got != Deny {
		t.Fatalf("autoExtend off after expiresAt: %s, want Deny", got)
	}
	// An Expired link is a record: nothing, whatever the clock says.
	expired := linkExpiringAt(t0.Add(24 * time.Hour))
	expired.Status.Phase = v1alpha1.LinkExpired
	x.Upsert(expired)
	if got := verdictAt(x, c, t0, nyc); got != Deny {
		t.Fatalf("an Expired link before its expiresAt: %s, want Deny", got)
	}
}

// panicClock fails a test that reads it.
type panicClock struct{}

func (panicClock) Now() time.Time                { panic("the clock was read") }
func (panicClock) Since(time.Time) time.Duration { panic("the clock was read") }

func TestUntimedCallersNeverReadTheClock(t *testing.T) {
	x := world(WithClock(panicClock{}))
	for _, r := range []*Request{
		res(alice, nil, "get", "rooms", "", "nyc"),
		res(carol, helpdesk, "get", "rooms", "", "nyc"),
		res(bob, nil, "get", "rooms", "", "nyc"),
		res("admin@customer.org", nil, "get", "rooms", "", "nyc"),
	} {
		x.Decide(r)
	}
}

func TestActiveAt(t *testing.T) {
	at := func(s int64) int64 { return t0.Add(time.Duration(s) * time.Second).UnixNano() }
	link := &linkState{until: math.MaxInt64}
	ending := &linkState{until: at(50)}
	upcoming := &grant{link: link, window: window{from: at(10), until: at(20)}}
	open := &grant{link: link, window: always}
	current := &grant{link: link, window: window{from: at(-5), until: at(30)}}
	past := &grant{link: link, window: window{from: at(-30), until: at(-10)}}
	endsWithLink := &grant{link: ending, window: window{from: math.MinInt64, until: at(100)}}

	kept, valid := activeAt([]*grant{upcoming, open, current, past, endsWithLink}, at(0))
	if len(kept) != 3 || kept[0] != open || kept[1] != current || kept[2] != endsWithLink {
		t.Fatalf("kept %v, want open, current and endsWithLink", kept)
	}
	// From the last boundary at or before now (current's start, after
	// past's end) to the first after it (upcoming's start).
	if want := (window{from: at(-5), until: at(10)}); valid != want {
		t.Fatalf("valid %+v, want %+v", valid, want)
	}
	if _, valid := activeAt([]*grant{endsWithLink}, at(0)); valid.until != at(50) {
		t.Fatalf("a grant's link ends it: valid until %d, want %d", valid.until, at(50))
	}
}

func TestRequestAtIsTheMomentOfTheDecision(t *testing.T) {
	c := clocktesting.NewFakePassiveClock(t0.Add(-time.Hour))
	x := world(WithClock(c))
	x.Upsert(jitRole(t0, t0.Add(4*time.Hour)))
	r := res(carol, nil, "get", "rooms", "", "nyc")
	r.At = t0
	if got := x.Decide(r).Verdict; got != Allow {
		t.Fatalf("At inside the window, clock before it: %s, want Allow", got)
	}
	r.At = t0.Add(4 * time.Hour)
	c.SetTime(t0)
	if got := x.Decide(r).Verdict; got != Deny {
		t.Fatalf("At at validUntil, clock inside the window: %s, want Deny", got)
	}
}

func TestHoldingsOfAWindowEndWithIt(t *testing.T) {
	c := clocktesting.NewFakePassiveClock(t0)
	x := world(WithClock(c))
	x.Upsert(jitRole(t0, t0.Add(4*time.Hour)))
	held := x.Holdings(ns, carol, nil, "contoso")
	if len(held) != 1 || held[0].Until == nil || !held[0].Until.Equal(t0.Add(4*time.Hour)) {
		t.Fatalf("holdings %+v, want one until %s", held, t0.Add(4*time.Hour))
	}
	c.SetTime(t0.Add(4 * time.Hour))
	if held := x.Holdings(ns, carol, nil, "contoso"); len(held) != 0 {
		t.Fatalf("holdings after the window: %+v, want none", held)
	}
	if held := x.Holdings(ns, alice, nil, "contoso"); len(held) != 1 || held[0].Until != nil {
		t.Fatalf("the primary admin's holdings: %+v, want one without an end", held)
	}
}
