package authz

import (
	"fmt"
	"sync"
	"testing"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// callerWorld: contoso.com's link selects r1 and r2; the group
// contoso.com:techs may view r1. The index remembers slots callers: with
// one, every caller lands in the slot of the one before.
func callerWorld(slots int) *Index {
	x := NewIndex()
	x.callers = newCallerCache(slots)
	x.Upsert(orgObj("contoso.com"))
	x.Upsert(invitationObj(ns, "contoso", "contoso.com", v1alpha1.InvitationAccepted))
	x.Upsert(activeLinkObj(ns, "contoso", "contoso.com"))
	x.Upsert(assignmentObj(ns, "contoso-invitation", "contoso", v1alpha1.RoomScope{Names: []string{"r1", "r2"}}))
	x.Upsert(roomObj(ns, "r1", nil))
	x.Upsert(roomObj(ns, "r2", nil))
	x.Upsert(roleObj(ns, "techs", "contoso", []v1alpha1.Permission{v1alpha1.RoomsView},
		v1alpha1.RoomScope{Names: []string{"r1"}}, group("contoso.com:techs")))
	x.SetSynced(true)
	return x
}

func getRoom(user string, groups []string, room string) *Request {
	return &Request{User: user, Groups: groups, Namespace: ns, Verb: "get", Group: Group, Resource: "rooms", Name: room}
}

func wantVerdict(t *testing.T, x *Index, r *Request, want Verdict) {
	t.Helper()
	if d := x.Decide(r); d.Verdict != want {
		t.Errorf("%s %v %s: got %s (%s), want %s", r.User, r.Groups, r.Name, d.Verdict, d.Reason, want)
	}
}

// A caller resolved once must see every later change of its roles, links
// and rooms.
func TestRememberedCallerFollowsChanges(t *testing.T) {
	x := callerWorld(1)
	tech := getRoom("bob@contoso.com", []string{"system:authenticated", "contoso.com:techs"}, "r1")
	wantVerdict(t, x, tech, Allow)

	x.Upsert(roleObj(ns, "techs", "contoso", []v1alpha1.Permission{v1alpha1.RoomsView},
		v1alpha1.RoomScope{Names: []string{"r1"}}, group("contoso.com:others")))
	wantVerdict(t, x, tech, Deny) // the group left the role

	x.Upsert(roleObj(ns, "techs", "contoso", []v1alpha1.Permission{v1alpha1.RoomsView},
		v1alpha1.RoomScope{Names: []string{"r1"}}, group("contoso.com:techs")))
	wantVerdict(t, x, tech, Allow)

	x.Delete(roomObj(ns, "r1", nil)) // rooms keep the caller's grants but not the room
	wantVerdict(t, x, tech, Deny)
	x.Upsert(roomObj(ns, "r1", nil))
	wantVerdict(t, x, tech, Allow)

	x.Delete(activeLinkObj(ns, "contoso", "contoso.com"))
	wantVerdict(t, x, tech, Deny)
	x.Delete(orgObj("contoso.com"))
	wantVerdict(t, x, tech, NoOpinion) // contoso.com is no partner any more
}

// The webhook decodes each review into buffers it reuses: a caller the
// index remembers must not change when the request's slice does.
func TestRememberedCallerOwnsItsGroups(t *testing.T) {
	x := callerWorld(1)
	groups := []string{"system:authenticated", "contoso.com:techs"}
	wantVerdict(t, x, getRoom("bob@contoso.com", groups, "r1"), Allow)
	groups[1] = "contoso.com:visitors"
	wantVerdict(t, x, getRoom("bob@contoso.com", groups, "r1"), Deny)
	groups[1] = "contoso.com:techs"
	wantVerdict(t, x, getRoom("bob@contoso.com", groups, "r1"), Allow)
}

// More callers than slots: they evict each other, and each is resolved
// again, rightly, when it comes back.
func TestCallersSharingASlotAreEachRight(t *testing.T) {
	x := callerWorld(16)
	for range 2 {
		for i := range 64 {
			groups, want := []string{"contoso.com:visitors"}, Deny
			if i%2 == 0 {
				groups, want = []string{"contoso.com:techs"}, Allow
			}
			wantVerdict(t, x, getRoom(fmt.Sprintf("u%d@contoso.com", i), groups, "r1"), want)
		}
	}
}

// Deciders share remembered callers while the index changes; under -race
// this checks that they do so safely, and the last answers follow the last
// change.
func TestCallersAreSharedSafely(t *testing.T) {
	x := callerWorld(4)
	techs := func(member string) *v1alpha1.PartnerRole {
		return roleObj(ns, "techs", "contoso", []v1alpha1.Permission{v1alpha1.RoomsView},
			v1alpha1.RoomScope{Names: []string{"r1"}}, group(member))
	}
	requests := make([]*Request, 8)
	for i := range requests {
		requests[i] = getRoom(fmt.Sprintf("u%d@contoso.com", i), []string{"contoso.com:techs"}, "r1")
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 2000 {
				if d := x.Decide(requests[i%len(requests)]); d.Verdict != Allow && d.Verdict != Deny {
					t.Errorf("got %s (%s), want Allow or Deny", d.Verdict, d.Reason)
					return
				}
			}
		})
	}
	for i := range 200 {
		x.Upsert(techs([]string{"contoso.com:techs", "contoso.com:others"}[i%2]))
	}
	wg.Wait()
	for _, r := range requests {
		wantVerdict(t, x, r, Deny) // the last change gave the role to contoso.com:others
	}
}
