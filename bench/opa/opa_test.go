package opa

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authz"
)

// size is one world of the benchmark.
type size struct{ rooms, partners, users int }

func (s size) String() string { return fmt.Sprintf("rooms=%d/partners=%d", s.rooms, s.partners) }

var sizes = []size{{1_000, 10, 100}, {10_000, 100, 1_000}}

// loaded is a world with both engines ready.
type loaded struct {
	*World
	opa *Engine
}

var (
	worldsMu sync.Mutex
	worlds   = map[size]*loaded{}
)

// worldOf builds each size once per process: tests, benchmarks and the
// ratio table share them.
func worldOf(tb testing.TB, s size) *loaded {
	tb.Helper()
	worldsMu.Lock()
	defer worldsMu.Unlock()
	if w, ok := worlds[s]; ok {
		return w
	}
	w := NewWorld(s.rooms, s.partners, s.users)
	e, err := NewEngine(context.Background(), w.Data)
	if err != nil {
		tb.Fatal(err)
	}
	worlds[s] = &loaded{World: w, opa: e}
	return worlds[s]
}

// decideAt has both engines decide r with the index's clock at clock: the
// index at r.At or, when it is zero, by its clock; OPA with input.now the
// same moment.
func (w *loaded) decideAt(tb testing.TB, r *authz.Request, clock time.Time) (authz.Decision, authz.Verdict) {
	tb.Helper()
	w.Clock.SetTime(clock)
	now := clock
	if !r.At.IsZero() {
		now = r.At
	}
	return w.Index.Decide(r), w.opaVerdict(tb, Input(r, now))
}

// opaVerdict is the OPA engine's answer as an authz.Verdict.
func (w *loaded) opaVerdict(tb testing.TB, input map[string]any) authz.Verdict {
	tb.Helper()
	v, err := w.opa.Verdict(context.Background(), input)
	if err != nil {
		tb.Fatal(err)
	}
	switch v {
	case "Allow":
		return authz.Allow
	case "Deny":
		return authz.Deny
	case "NoOpinion":
		return authz.NoOpinion
	}
	tb.Fatalf("unknown verdict %q", v)
	return 0
}

// benchCase is one benchmarked request and the verdict both engines must give.
type benchCase struct {
	name string
	req  func(w *World) *authz.Request
	want authz.Verdict
}

// The cases act for partner p = partners/2. room-<p> is the partner's and in
// the site-techs' names; room-<p+partners> is the partner's but not named;
// room-<p+1> is another partner's.
var cases = []benchCase{
	{"get-room-allowed", func(w *World) *authz.Request {
		return roomReq(admin(w), nil, "get", "", roomOf(w, 0))
	}, authz.Allow},
	{"get-room-out-of-scope", func(w *World) *authz.Request {
		return roomReq(admin(w), nil, "get", "", fmt.Sprintf("room-%d", w.Partners/2+1))
	}, authz.Deny},
	{"patch-room-group-member", func(w *World) *authz.Request {
		return roomReq(tech(w), techGroups(w), "patch", "", roomOf(w, 0))
	}, authz.Allow},
	{"patch-room-group-out-of-scope", func(w *World) *authz.Request {
		return roomReq(tech(w), techGroups(w), "patch", "", roomOf(w, 1))
	}, authz.Deny},
	// The site-techs role lists rooms.resetKey, outside the primary-admin
	// set: it must not be granted.
	{"reset-key-group-member", func(w *World) *authz.Request {
		return roomReq(tech(w), techGroups(w), "create", "resetkey", roomOf(w, 0))
	}, authz.Deny},
	{"create-ticket-admin", func(w *World) *authz.Request {
		return roomReq(admin(w), nil, "create", "tickets", roomOf(w, 0))
	}, authz.Allow},
	{"list-with-label", func(w *World) *authz.Request {
		r := roomReq(admin(w), nil, "list", "", "")
		r.LabelSelector = []authz.Requirement{{Key: v1alpha1.AccessLabel(PartnerDomain(w.Partners / 2)), Operator: "Exists"}}
		return r
	}, authz.Allow},
	{"list-without-label", func(w *World) *authz.Request {
		return roomReq(admin(w), nil, "list", "", "")
	}, authz.Deny},
	{"not-a-partner", func(w *World) *authz.Request {
		return roomReq("alice@customer.example", []string{"system:authenticated"}, "get", "", roomOf(w, 0))
	}, authz.NoOpinion},
	// Partner partners/2+1 has a session policy (both keys), a window on
	// its site-techs' by-name assignment (T0±1d) and an autoExtend
	// relationship whose expiresAt is T0+30d; the benchmarks decide at T0.
	{"patch-room-policy-window", func(w *World) *authz.Request {
		q := w.Partners/2 + 1
		r := roomReq("tech@"+PartnerDomain(q), []string{"system:authenticated", PartnerDomain(q) + ":site-techs"}, "patch", "", fmt.Sprintf("room-%d", q))
		r.Extra = FullSession()
		return r
	}, authz.Allow},
	{"get-room-policy-unmet", func(w *World) *authz.Request {
		q := w.Partners/2 + 1
		return roomReq(fmt.Sprintf("u%d@%s", q, PartnerDomain(q)), nil, "get", "", fmt.Sprintf("room-%d", q))
	}, authz.Deny},
}

func admin(w *World) string {
	p := w.Partners / 2
	return fmt.Sprintf("u%d@%s", p, PartnerDomain(p))
}

func tech(w *World) string { return "tech@" + PartnerDomain(w.Partners/2) }

func techGroups(w *World) []string {
	return []string{"system:authenticated", PartnerDomain(w.Partners/2) + ":site-techs"}
}

// roomOf names the k-th room of partner partners/2.
func roomOf(w *World, k int) string { return fmt.Sprintf("room-%d", w.Partners/2+k*w.Partners) }

func roomReq(user string, groups []string, verb, sub, name string) *authz.Request {
	return &authz.Request{User: user, Groups: groups, Namespace: Namespace, Verb: verb,
		Group: authz.Group, Resource: "rooms", Subresource: sub, Name: name}
}

// ruleCases are requests on the edge cases of the small world (see
// NewWorld and addEdgeCases), one or more per rule, and the verdict both
// engines must give. u0 and u10 are primary admins of p0; only u0 is one of
// p0-2 as well. u1 is a primary admin of p1, whose second link p1-2 is
// Pending. TestAgreement decides them at T0.
var ruleCases = []struct {
	name string
	req  *authz.Request
	want authz.Verdict
}{
	// Identities: by the normalised domain.
	{"upper-case UPN", roomReq("U0@P0.EXAMPLE.COM", nil, "get", "", "room-0"), authz.Allow},
	{"two @", roomReq("x@u0@p0.example.com", nil, "get", "", "room-0"), authz.Deny},
	{"empty local part", roomReq("@p0.example.com", nil, "get", "", "room-0"), authz.Deny},
	{"System: prefix", roomReq("System:u0@p0.example.com", nil, "get", "", "room-0"), authz.Deny},
	{"issuer prefix", roomReq("oidc:u0@p0.example.com", nil, "get", "", "room-0"), authz.Deny},
	{"trailing dot", roomReq("u0@p0.example.com.", nil, "get", "", "room-0"), authz.Deny},
	{"leading space", roomReq(" u0@p0.example.com", nil, "get", "", "room-0"), authz.Deny},
	{"sub-domain of a partner domain", roomReq("ops@eu.p0.example.com", nil, "get", "", "room-0"), authz.Deny},
	{"colon in the local part", roomReq("a:b@p0.example.com", nil, "get", "", "room-0"), authz.Deny},
	{"sub-domain of a customer domain", roomReq("u0@eu.customer.example", nil, "get", "", "room-0"), authz.NoOpinion},
	{"a domain ending like a partner's", roomReq("u0@xp0.example.com", nil, "get", "", "room-0"), authz.NoOpinion},
	{"parent of partner domains", roomReq("u0@example.com", nil, "get", "", "room-0"), authz.NoOpinion},
	{"two @ under a customer domain", roomReq("x@y@customer.example", nil, "get", "", "room-0"), authz.NoOpinion},
	{"invited, not registered", roomReq("u0@unregistered.example.com", nil, "get", "", "room-0"), authz.NoOpinion},
	{"nothing after @", roomReq("u0@", nil, "get", "", "room-0"), authz.NoOpinion},

	// Discovery: get or head of exact shapes.
	{"get /apis/<g>/<v>", pathReq("get", "/apis/partners.roompro.io/v1alpha1"), authz.Allow},
	{"head /version", pathReq("head", "/version"), authz.Allow},
	{"openapi of a group version", pathReq("get", "/openapi/v3/apis/partners.roompro.io/v1alpha1"), authz.Allow},
	{"openapi of a core version", pathReq("get", "/openapi/v3/api/v1"), authz.Allow},
	{"post to discovery", pathReq("post", "/apis"), authz.Deny},
	{"below a group version", pathReq("get", "/apis/partners.roompro.io/v1alpha1/rooms"), authz.Deny},
	{"glued to the openapi prefix", pathReq("get", "/openapi/v3apis/x"), authz.Deny},
	{"dot-dot segment", pathReq("get", "/apis/../metrics"), authz.Deny},
	{"trailing slash", pathReq("get", "/api/v1/"), authz.Deny},
	{"upper-case segment", pathReq("get", "/apis/Partners.roompro.io"), authz.Deny},
	{"openapi of /api itself", pathReq("get", "/openapi/v3/api"), authz.Deny},

	// A namespace the index knows nothing of.
	{"room in an unknown namespace", func() *authz.Request {
		r := roomReq("u0@p0.example.com", nil, "get", "", "room-0")
		r.Namespace = "tenant-b"
		return r
	}(), authz.Deny},
	{"roles in an unknown namespace", func() *authz.Request {
		r := rolesReq("u0@p0.example.com", "create", "")
		r.Namespace = "tenant-b"
		return r
	}(), authz.Deny},

	// Partner roles: by the link that owns them.
	{"roles list of its link", rolesReq("u10@p0.example.com", "list", "", fieldReq("In", "p0")), authz.Allow},
	{"roles watch of its link with ==", rolesReq("u10@p0.example.com", "watch", "", fieldReq("Equals", "p0")), authz.Allow},
	{"roles list of another link", rolesReq("u10@p0.example.com", "list", "", fieldReq("In", "p0-2")), authz.Deny},
	{"roles list of two links", rolesReq("u0@p0.example.com", "list", "", fieldReq("In", "p0", "p0-2")), authz.Deny},
	{"roles list without a field selector", rolesReq("u0@p0.example.com", "list", ""), authz.Deny},
	{"roles list by NotIn", rolesReq("u0@p0.example.com", "list", "", fieldReq("NotIn", "p1")), authz.Deny},
	{"roles list, no grant of roles.view", rolesReq("tech@p0.example.com", "list", "", fieldReq("In", "p0")), authz.Deny},
	{"roles create", rolesReq("u10@p0.example.com", "create", ""), authz.Allow},
	{"roles delete without a name", rolesReq("u10@p0.example.com", "delete", ""), authz.Deny},
	{"known role of another link", rolesReq("u10@p0.example.com", "get", "p0-2-primary-admins"), authz.Deny},
	{"known role of its second link", rolesReq("u0@p0.example.com", "get", "p0-2-primary-admins"), authz.Allow},
	{"known role being deleted", rolesReq("u1@p1.example.com", "get", "p1-leaving"), authz.Allow},
	{"unknown name of its link", rolesReq("u10@p0.example.com", "get", "p0-new"), authz.Allow},
	{"unknown name of two links, one held", rolesReq("u10@p0.example.com", "patch", "p0-2-new"), authz.Deny},
	{"unknown name of two links, both held", rolesReq("u0@p0.example.com", "patch", "p0-2-new"), authz.Allow},
	{"unknown name of a Pending link too", rolesReq("u1@p1.example.com", "get", "p1-2-new"), authz.Deny},
	{"unknown built-in name of no link", rolesReq("u0@p0.example.com", "get", "p0-x-primary-admins"), authz.Deny},
	{"unknown name of no link", rolesReq("u0@p0.example.com", "get", "helpdesk"), authz.Deny},

	// Room lists by the access label: every active link of the domain.
	{"room list, both links' whole scope", labelList("u0@p0.example.com", nil, "p0.example.com"), authz.Allow},
	{"room list, one link of two", labelList("u10@p0.example.com", nil, "p0.example.com"), authz.Deny},
	{"room list, the other link Pending", labelList("u1@p1.example.com", nil, "p1.example.com"), authz.Allow},
	{"room list, scoped grants only", labelList("tech@p0.example.com", []string{"p0.example.com:site-techs"}, "p0.example.com"), authz.Deny},

	// Change requests: proposed where the domain has an active link, read
	// by the members of the link's roles and the partner's tenant managers,
	// listed by the label partners.roompro.io/partner-link, never decided.
	{"propose a change", changeReq("u10@p0.example.com", nil, "create", ""), authz.Allow},
	{"propose a change, a user without roles", changeReq("nobody@p0.example.com", nil, "create", ""), authz.Allow},
	{"propose a change, no link", changeReq("tm@pending.example.com", []string{"pending.example.com:tenant-managers"}, "create", ""), authz.Deny},
	{"propose a change, a Terminating link", changeReq("admin@gone.example.com", nil, "create", ""), authz.Deny},
	{"get its link's request", changeReq("u10@p0.example.com", nil, "get", "p0-change"), authz.Allow},
	{"watch its link's request by name", changeReq("u10@p0.example.com", nil, "watch", "p0-change"), authz.Allow},
	{"get another partner's request", changeReq("u10@p0.example.com", nil, "get", "p1-change"), authz.Deny},
	{"get its second link's request, a member", changeReq("u0@p0.example.com", nil, "get", "p0-2-change"), authz.Allow},
	{"get its second link's request, no role there", changeReq("u10@p0.example.com", nil, "get", "p0-2-change"), authz.Deny},
	{"get a Pending link's request", changeReq("u1@p1.example.com", nil, "get", "p1-2-change"), authz.Deny},
	{"get a Terminating link's request", changeReq("admin@gone.example.com", nil, "get", "gone-change"), authz.Deny},
	{"get a request of no link", changeReq("u0@p0.example.com", nil, "get", "orphan-change"), authz.Deny},
	{"get a request the index does not know", changeReq("u0@p0.example.com", nil, "get", "p0-unseen"), authz.Deny},
	{"get a request as a scoped member", changeReq("tech@p0.example.com", []string{"p0.example.com:site-techs"}, "get", "p0-change"), authz.Allow},
	{"get a request, member by an invalid scope only", changeReq("tech@p0.example.com", []string{"p0.example.com:broken-techs"}, "get", "p0-change"), authz.Deny},
	{"get a request, member of a role being deleted only", changeReq("tech@p1.example.com", []string{"p1.example.com:ring-techs"}, "get", "p1-change"), authz.Deny},
	{"get a request as the partner's tenant manager", changeReq("tm@p0.example.com", []string{"p0.example.com:tenant-managers"}, "get", "p0-2-change"), authz.Allow},
	{"get a request as another partner's tenant manager", changeReq("tm@p1.example.com", []string{"p1.example.com:tenant-managers"}, "get", "p0-change"), authz.Deny},
	{"list its link's requests", changeList("u10@p0.example.com", "In", "p0"), authz.Allow},
	{"watch its link's requests with ==", changeList("u10@p0.example.com", "Equals", "p0"), authz.Allow},
	{"list both links' requests, a member of both", changeList("u0@p0.example.com", "In", "p0", "p0-2"), authz.Allow},
	{"list both links' requests, a member of one", changeList("u10@p0.example.com", "In", "p0", "p0-2"), authz.Deny},
	{"list another partner's requests", changeList("u10@p0.example.com", "In", "p1"), authz.Deny},
	{"list by NotIn", changeList("u10@p0.example.com", "NotIn", "p1"), authz.Deny},
	{"list by Exists", changeList("u10@p0.example.com", "Exists"), authz.Deny},
	{"list without a selector", changeReq("u10@p0.example.com", nil, "list", ""), authz.Deny},
	{"approve its link's request", changeReq("u10@p0.example.com", nil, "approve", "p0-change"), authz.Deny},
	{"patch its link's request", changeReq("u10@p0.example.com", nil, "patch", "p0-change"), authz.Deny},
	{"delete its link's request", changeReq("tm@p0.example.com", []string{"p0.example.com:tenant-managers"}, "delete", "p0-change"), authz.Deny},
	{"update a request's status", func() *authz.Request {
		r := changeReq("u10@p0.example.com", nil, "update", "p0-change")
		r.Subresource = "status"
		return r
	}(), authz.Deny},
	{"the customer approves", changeReq("alice@customer.example", nil, "approve", "p0-change"), authz.NoOpinion},

	// Session policies (the other rule cases carry FullSession, which meets
	// every one). p1: amr in {mfa, hwk} and, from its pending invitation
	// p1-2, example.com/device in {managed, byod}.
	{"session: none", session(roomReq("u1@p1.example.com", nil, "get", "", "room-1"), nil), authz.Deny},
	{"session: both keys", session(roomReq("u1@p1.example.com", nil, "get", "", "room-1"), extra(amrKey, "hwk", deviceKey, "byod")), authz.Allow},
	{"session: one invitation's key only", session(roomReq("u1@p1.example.com", nil, "get", "", "room-1"), extra(amrKey, "mfa")), authz.Deny},
	{"session: the key in another case", session(roomReq("u1@p1.example.com", nil, "get", "", "room-1"), extra("AMR", "mfa", deviceKey, "managed")), authz.Deny},
	{"session: the value in another case", session(roomReq("u1@p1.example.com", nil, "get", "", "room-1"), extra(amrKey, "MFA", deviceKey, "managed")), authz.Deny},
	{"session: met, out of scope", session(roomReq("u1@p1.example.com", nil, "get", "", "room-2"), FullSession()), authz.Deny},
	{"session: an Expired invitation's policy", session(roomReq("u0@p0.example.com", nil, "get", "", "room-0"), nil), authz.Allow},
	{"session: a tenant manager without it", session(&authz.Request{User: "tm@pending.example.com", Groups: []string{"pending.example.com:tenant-managers"},
		Namespace: Namespace, Verb: "create", Group: authz.Group, Resource: "partnerlinks"}, extra(amrKey, "hwk")), authz.Deny},
	{"session: a tenant manager with it", session(&authz.Request{User: "tm@pending.example.com", Groups: []string{"pending.example.com:tenant-managers"},
		Namespace: Namespace, Verb: "create", Group: authz.Group, Resource: "partnerlinks"}, extra(amrKey, "mfa")), authz.Allow},
	{"session: a change request without it", session(changeReq("u1@p1.example.com", nil, "create", ""), nil), authz.Deny},
	{"session: discovery is in no namespace", session(&authz.Request{User: "u1@p1.example.com", Verb: "get", Path: "/apis"}, nil), authz.Allow},
	{"session: a self review is in no namespace", session(&authz.Request{User: "u1@p1.example.com", Verb: "create", Group: "authorization.k8s.io",
		Resource: "selfsubjectaccessreviews"}, nil), authz.Allow},
	{"session: the customer's staff", session(roomReq("alice@customer.example", nil, "get", "", "room-1"), nil), authz.NoOpinion},
	{"session: another namespace", session(func() *authz.Request {
		r := roomReq("u1@p1.example.com", nil, "get", "", "room-1")
		r.Namespace = "tenant-b"
		return r
	}(), FullSession()), authz.Deny},

	// Members by kind and domain.
	{"group named like another partner's user", roomReq("tech@p1.example.com", []string{"p1.example.com:ops@p0.example.com"}, "get", "", "room-11"), authz.Allow},
	{"user named like that group", roomReq("p1.example.com:ops@p0.example.com", nil, "get", "", "room-11"), authz.Deny},
	{"user member of another domain's link", roomReq("u0@p0.example.com", nil, "get", "", "room-11"), authz.Deny},
}

// session gives r the extra e; an empty map, not nil, so that TestAgreement
// leaves it as it is.
func session(r *authz.Request, e map[string]authorizationv1.ExtraValue) *authz.Request {
	if e == nil {
		e = map[string]authorizationv1.ExtraValue{}
	}
	r.Extra = e
	return r
}

// extra is a user extra from keys and values in turn, one value per key.
func extra(kv ...string) map[string]authorizationv1.ExtraValue {
	e := map[string]authorizationv1.ExtraValue{}
	for i := 0; i+1 < len(kv); i += 2 {
		e[kv[i]] = append(e[kv[i]], kv[i+1])
	}
	return e
}

// clockCases are requests on the world's windows and relationship ends
// (timesOf, addEdgeCases), each decided at a moment, without a session
// when Extra is nil (see TestAgreement): a second or a nanosecond on either
// side of a bound, at it, far from it.
var clockCases = []struct {
	name string
	req  *authz.Request
	at   time.Duration // after T0
	want authz.Verdict
}{
	// p8: site-techs by name from T0+1h, floor-techs until T0-2h.
	{"a second before validFrom", roomReq("tech@p8.example.com", []string{"p8.example.com:site-techs"}, "get", "", "room-8"), time.Hour - time.Second, authz.Deny},
	{"a nanosecond before validFrom", roomReq("tech@p8.example.com", []string{"p8.example.com:site-techs"}, "get", "", "room-8"), time.Hour - 1, authz.Deny},
	{"at validFrom", roomReq("tech@p8.example.com", []string{"p8.example.com:site-techs"}, "get", "", "room-8"), time.Hour, authz.Allow},
	{"before validUntil", roomReq("tech@p8.example.com", []string{"p8.example.com:floor-techs"}, "get", "", "room-18"), -2*time.Hour - 1, authz.Allow},
	{"at validUntil", roomReq("tech@p8.example.com", []string{"p8.example.com:floor-techs"}, "get", "", "room-18"), -2 * time.Hour, authz.Deny},
	{"a window ends, another grant stays", roomReq("tech@p8.example.com", []string{"p8.example.com:floor-techs", "p8.example.com:site-techs"},
		"get", "", "room-8"), 400 * 24 * time.Hour, authz.Allow},
	// p2: site-techs by name for [T0-1d, T0+1d); the relationship's end,
	// T0-3h, is extended.
	{"a nanosecond before a window", roomReq("tech@p2.example.com", []string{"p2.example.com:site-techs"}, "get", "", "room-2"), -24*time.Hour - 1, authz.Deny},
	{"at the start of a window", roomReq("tech@p2.example.com", []string{"p2.example.com:site-techs"}, "get", "", "room-2"), -24 * time.Hour, authz.Allow},
	{"a second before the end of a window", roomReq("tech@p2.example.com", []string{"p2.example.com:site-techs"}, "get", "", "room-2"), 24*time.Hour - time.Second, authz.Allow},
	{"at the end of a window", roomReq("tech@p2.example.com", []string{"p2.example.com:site-techs"}, "get", "", "room-2"), 24 * time.Hour, authz.Deny},
	{"far before a window", roomReq("tech@p2.example.com", []string{"p2.example.com:site-techs"}, "get", "", "room-2"), -1000 * 24 * time.Hour, authz.Deny},
	{"far past an autoExtend expiresAt", roomReq("u2@p2.example.com", nil, "get", "", "room-2"), 1000 * 24 * time.Hour, authz.Allow},
	// p1: the relationship ends at T0+7d.
	{"a second before expiresAt", roomReq("u1@p1.example.com", nil, "get", "", "room-1"), 7*24*time.Hour - time.Second, authz.Allow},
	{"at expiresAt", roomReq("u1@p1.example.com", nil, "get", "", "room-1"), 7 * 24 * time.Hour, authz.Deny},
	{"past expiresAt, roles", rolesReq("u1@p1.example.com", "get", "p1-ops"), 8 * 24 * time.Hour, authz.Deny},
	// p0-2 ends at T0+45m (no invitation extends it); p0 does not end. The
	// ended link still counts among those a list must cover.
	{"before the end of a link without invitation", roomReq("u0@p0.example.com", nil, "get", "", "room-1"), 45*time.Minute - 1, authz.Allow},
	{"at the end of a link without invitation", roomReq("u0@p0.example.com", nil, "get", "", "room-1"), 45 * time.Minute, authz.Deny},
	{"the other link goes on", roomReq("u0@p0.example.com", nil, "get", "", "room-0"), 45 * time.Minute, authz.Allow},
	{"room list, one of two links ended", labelList("u0@p0.example.com", nil, "p0.example.com"), 45 * time.Minute, authz.Deny},
	{"change requests of an ended link", changeReq("u0@p0.example.com", nil, "get", "p0-2-change"), 45 * time.Minute, authz.Deny},
	// p0's ring-techs until T0+1s.
	{"a nanosecond before a second after T0", roomReq("tech@p0.example.com", []string{"p0.example.com:ring-techs"}, "get", "", "room-0"), time.Second - 1, authz.Allow},
	{"a second after T0", roomReq("tech@p0.example.com", []string{"p0.example.com:ring-techs"}, "get", "", "room-0"), time.Second, authz.Deny},
	// An Expired link, before its expiresAt and with autoExtend.
	{"an Expired link", roomReq("admin@lapsed.example.com", nil, "get", "", "room-0"), 0, authz.Deny},
	{"an Expired link's roles", rolesReq("admin@lapsed.example.com", "list", "", fieldReq("In", "lapsed")), 0, authz.Deny},
}

func changeReq(user string, groups []string, verb, name string) *authz.Request {
	return &authz.Request{User: user, Groups: groups, Namespace: Namespace, Verb: verb, Group: authz.Group,
		Resource: "partnerchangerequests", Name: name}
}

func changeList(user, op string, links ...string) *authz.Request {
	r := changeReq(user, nil, "list", "")
	r.LabelSelector = []authz.Requirement{{Key: v1alpha1.LabelPartnerLink, Operator: op, Values: links}}
	return r
}

func pathReq(verb, path string) *authz.Request {
	return &authz.Request{User: "u0@p0.example.com", Verb: verb, Path: path}
}

func rolesReq(user, verb, name string, fieldSelector ...authz.Requirement) *authz.Request {
	return &authz.Request{User: user, Namespace: Namespace, Verb: verb, Group: authz.Group, Resource: "partnerroles",
		Name: name, FieldSelector: fieldSelector}
}

func fieldReq(op string, values ...string) authz.Requirement {
	return authz.Requirement{Key: "spec.partnerLink", Operator: op, Values: values}
}

func labelList(user string, groups []string, domain string) *authz.Request {
	r := roomReq(user, groups, "list", "", "")
	r.LabelSelector = []authz.Requirement{{Key: v1alpha1.AccessLabel(domain), Operator: "Exists"}}
	return r
}

// TestBoundsAreOfOneKind checks what the clock coverage of TestAgreement
// relies on: no moment of the world both starts or ends one kind of grant
// and another.
func TestBoundsAreOfOneKind(t *testing.T) {
	for _, s := range sizes {
		kinds := map[time.Time]BoundKind{}
		for _, b := range worldOf(t, s).Bounds {
			if k, ok := kinds[b.At]; ok && k != b.Kind {
				t.Errorf("%s: %s is a %s and a %s", s, b.At.Format(time.RFC3339), k, b.Kind)
			}
			kinds[b.At] = b.Kind
		}
		if len(kinds) < 4 {
			t.Errorf("%s: only %d bounds: %v", s, len(kinds), kinds)
		}
	}
}

// agreementRequests is how many random requests TestAgreement draws:
// OPA_AGREEMENT_REQUESTS, or 12000, which keeps the default run short.
// The long run: OPA_AGREEMENT_REQUESTS=1000000 go test ./opa -run TestAgreement -count=1 -v
func agreementRequests(t *testing.T) int {
	v := os.Getenv("OPA_AGREEMENT_REQUESTS")
	if v == "" {
		return 12000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("OPA_AGREEMENT_REQUESTS=%q: want a positive number", v)
	}
	return n
}

// TestAgreement checks that both engines give the same verdict: for the
// benchmark cases on every size, the rule and clock cases, and random
// requests at random moments over the small world.
func TestAgreement(t *testing.T) {
	for _, s := range sizes {
		w := worldOf(t, s)
		for _, c := range cases {
			d, got := w.decideAt(t, c.req(w.World), T0)
			if d.Verdict != c.want {
				t.Errorf("%s/%s: operator says %s (%s), want %s", s, c.name, d.Verdict, d.Reason, c.want)
			}
			if got != c.want {
				t.Errorf("%s/%s: opa says %s, want %s", s, c.name, got, c.want)
			}
		}
	}

	w := worldOf(t, sizes[0])
	// The benchmarks share the world: leave its clock where they expect it.
	t.Cleanup(func() { w.Clock.SetTime(T0) })
	check := func(name string, req *authz.Request, at time.Time, want authz.Verdict) {
		r := *req
		if r.Extra == nil {
			r.Extra = FullSession()
		}
		d, got := w.decideAt(t, &r, at)
		if d.Verdict != want {
			t.Errorf("%s: operator says %s (%s), want %s", name, d.Verdict, d.Reason, want)
		}
		if got != want {
			t.Errorf("%s: opa says %s, want %s", name, got, want)
		}
	}
	for _, c := range ruleCases {
		check(c.name, c.req, T0, c.want)
	}
	for _, c := range clockCases {
		check(c.name, c.req, T0.Add(c.at), c.want)
	}

	known := map[string]bool{} // the names of the world's roles
	for _, o := range w.Objects {
		if r, ok := o.(*v1alpha1.PartnerRole); ok {
			known[r.Name] = true
		}
	}
	// The domains whose users a session policy binds in the namespace.
	policed := map[string]bool{}
	for _, o := range w.Objects {
		if inv, ok := o.(*v1alpha1.PartnerInvitation); ok && inv.Spec.SessionPolicy != nil && inv.Status.Phase != v1alpha1.InvitationExpired {
			policed[string(inv.Spec.PartnerDomain)] = true
		}
	}
	// The domains whose links' relationships autoExtend extends.
	extendedAt := map[string]time.Time{}
	for p := range w.Partners {
		for _, b := range BoundsOf(p, w.Partners) {
			if b.Kind == ExtendedAt {
				extendedAt[PartnerDomain(p)] = b.At
			}
		}
	}
	n := agreementRequests(t)
	rng := rand.New(rand.NewPCG(1, 2)) // fixed: a failure reproduces
	seen := map[authz.Verdict]int{}
	reached := map[string]int{}
	decisions, disagreements := 0, 0
	// agree decides r at now: by the index's clock or, when byAt, by
	// Request.At, with the clock at a moment that would decide otherwise.
	agree := func(i int, r *authz.Request, now time.Time, byAt bool) authz.Decision {
		clock := now
		if byAt {
			r.At, clock = now, T0.Add(-5000*24*time.Hour)
		}
		d, got := w.decideAt(t, r, clock)
		decisions++
		if got != d.Verdict {
			disagreements++
			if disagreements <= 50 {
				t.Errorf("request %d %+v at %s: operator says %s (%s), opa says %s", i, *r, now.Format(time.RFC3339Nano), d.Verdict, d.Reason, got)
			}
		}
		return d
	}
	start := time.Now()
	for i := range n {
		var r *authz.Request
		var now time.Time
		var bound *Bound
		if rng.IntN(4) == 0 {
			var p int
			r, p = randomTimedRequest(rng, w.World)
			now, bound = nearBound(rng, BoundsOf(p, w.Partners))
		} else {
			r = randomRequest(rng, w.World)
			now, bound = randomClock(rng, w.World, r)
		}
		byAt := rng.IntN(4) == 0
		d := agree(i, r, now, byAt)
		seen[d.Verdict]++
		if c := coverage(r, d, known); c != "" {
			reached[c]++
		}
		domain, _ := authz.NormalizedDomain(r.User)
		if d.Verdict == authz.Allow && r.Namespace == Namespace && policed[domain] {
			reached["session policy met: Allow"]++
		}
		// At a bound, the moment before it too: a verdict that changes
		// there shows the bound decided it.
		if bound != nil {
			if before := agree(i, r, now.Add(-time.Nanosecond), byAt); before.Verdict != d.Verdict {
				reached["clock: the verdict changes at "+string(bound.Kind)]++
			}
		}
		if since, ok := extendedAt[domain]; ok && !now.Before(since) && d.Verdict == authz.Allow && r.Path == "" && r.Resource == "rooms" {
			reached["clock: a room allowed past an autoExtend expiresAt"]++
		}
	}
	if disagreements > 0 {
		t.Errorf("%d of %d decisions disagree", disagreements, decisions)
	}
	// The random requests are only worth something if they reach every
	// verdict, and each rule both ways.
	for _, v := range []authz.Verdict{authz.Allow, authz.Deny, authz.NoOpinion} {
		if seen[v] < 50 {
			t.Errorf("only %d random requests got %s: %v", seen[v], v, seen)
		}
	}
	for _, c := range coverageWanted {
		if reached[c] < 5 {
			t.Errorf("only %d random requests reached %q: %v", reached[c], c, reached)
		}
	}
	t.Logf("%d random requests, %d decisions by each engine (a request at a bound is decided a nanosecond before it too), %d disagreements, in %s",
		n, decisions, disagreements, time.Since(start).Round(time.Millisecond))
	t.Logf("random verdicts: %v", seen)
	t.Logf("rules reached: %v", reached)
}

// randomClock draws the moment of a request: T0, far before or after it
// (up to 1000 days), or near a bound of the world (nearBound); mostly a
// bound of the partner whose domain the user names, if it has any.
func randomClock(rng *rand.Rand, w *World, r *authz.Request) (now time.Time, bound *Bound) {
	const day = 24 * time.Hour
	switch rng.IntN(10) {
	case 0, 1, 2, 3:
		return T0, nil
	case 4:
		return T0.Add(-time.Duration(1+rng.IntN(1000)) * day), nil
	case 5:
		return T0.Add(time.Duration(1+rng.IntN(1000)) * day), nil
	}
	bounds := w.Bounds
	if domain, _ := authz.NormalizedDomain(r.User); rng.IntN(4) > 0 {
		var p int
		if _, err := fmt.Sscanf(domain, "p%d.example.com", &p); err == nil && PartnerDomain(p) == domain && p < w.Partners {
			if own := BoundsOf(p, w.Partners); len(own) > 0 {
				bounds = own
			}
		}
	}
	return nearBound(rng, bounds)
}

// nearBound draws a moment at one of bounds, or a nanosecond or a second
// beside it; T0 when bounds is empty. bound is the Bound the moment is
// exactly at, or nil.
func nearBound(rng *rand.Rand, bounds []Bound) (now time.Time, bound *Bound) {
	if len(bounds) == 0 {
		return T0, nil
	}
	b := bounds[rng.IntN(len(bounds))]
	offsets := []time.Duration{0, 0, 0, -time.Second, time.Second, -time.Nanosecond, time.Nanosecond}
	if off := offsets[rng.IntN(len(offsets))]; off != 0 {
		return b.At.Add(off), nil
	}
	return b.At, &b
}

// coverageWanted are the rules (see coverage) the random requests must
// reach, each at least a few times.
var coverageWanted = []string{
	"malformed name under a partner domain: Deny",
	"discovery: Allow", "discovery: Deny",
	"other namespace: Deny",
	"roles list: Allow", "roles list: Deny",
	"known role: Allow", "known role: Deny",
	"unknown role name: Allow", "unknown role name: Deny",
	"room list by the access label: Allow",
	"room list by the access label: Deny, not every link of the domain covered",
	"room list by the access label: Deny, no link's whole scope",
	"change request by name: Allow", "change request by name: Deny",
	"change request list: Allow", "change request list: Deny",
	"change request create: Allow", "change request create: Deny",
	"change request, never: Deny",
	"session policy: Deny", "session policy met: Allow",
	"clock: the verdict changes at " + string(ValidFrom), "clock: the verdict changes at " + string(ValidUntil),
	"clock: the verdict changes at " + string(ExpiresAt), "clock: a room allowed past an autoExtend expiresAt",
}

// coverage names the rule a request and its decision exercise, or "". Two
// rules are told apart by the operator's reason, which the verdicts do not
// show: should its wording change, update the substrings here.
func coverage(r *authz.Request, d authz.Decision, known map[string]bool) string {
	rule := ""
	switch {
	case strings.Contains(d.Reason, "not a well-formed user of a partner domain"):
		return "malformed name under a partner domain: " + d.Verdict.String()
	case d.Verdict == authz.NoOpinion:
		return ""
	case d.Cause == authz.SessionPolicyUnmet:
		return "session policy: Deny"
	case r.Path != "":
		rule = "discovery"
	case r.Namespace != Namespace && r.Group == authz.Group:
		rule = "other namespace"
	case r.Group == authz.Group && r.Resource == "partnerchangerequests":
		switch {
		case r.Subresource != "" || r.Verb != "get" && r.Verb != "list" && r.Verb != "watch" && r.Verb != "create":
			rule = "change request, never"
		case r.Verb == "create":
			rule = "change request create"
		case r.Name != "":
			rule = "change request by name"
		default:
			rule = "change request list"
		}
	case r.Group == authz.Group && r.Resource == "partnerroles" && r.Name == "" && (r.Verb == "list" || r.Verb == "watch"):
		rule = "roles list"
	case r.Group == authz.Group && r.Resource == "partnerroles" && r.Name != "" && known[r.Name]:
		rule = "known role"
	case r.Group == authz.Group && r.Resource == "partnerroles" && r.Name != "":
		rule = "unknown role name"
	case r.Group == authz.Group && r.Resource == "rooms" && r.Name == "" && r.Subresource == "" && (r.Verb == "list" || r.Verb == "watch") &&
		len(r.LabelSelector) > 0 && strings.HasPrefix(r.LabelSelector[0].Key, "access.partners.roompro.io/"):
		rule = "room list by the access label"
		switch {
		case strings.Contains(d.Reason, "more than one partner link"):
			return rule + ": Deny, not every link of the domain covered"
		case strings.Contains(d.Reason, "cover only part of the partner's rooms"):
			return rule + ": Deny, no link's whole scope"
		}
	default:
		return ""
	}
	return rule + ": " + d.Verdict.String()
}

// randomRequest draws a request over the world: partner users, their groups
// (own, other domains', odd spellings), non-partners, and every resource,
// subresource and verb of the permission table plus some that map to none.
func randomRequest(rng *rand.Rand, w *World) *authz.Request {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	p := rng.IntN(w.Partners)
	if rng.IntN(3) == 0 {
		p = rng.IntN(2) // partners 0 and 1 carry the rarer rules
	}
	domain := PartnerDomain(p)
	other := PartnerDomain((p + 1) % w.Partners)

	var user string
	var groups []string
	switch rng.IntN(11) {
	case 0, 1, 2, 3: // a primary admin, sometimes under another domain
		u := p + w.Partners*rng.IntN(w.Users/w.Partners)
		user = fmt.Sprintf("u%d@%s", u, pick(domain, domain, other))
	case 4, 5, 6: // a member of groups
		user = "tech@" + domain
		for _, g := range []string{domain + ":site-techs", domain + ":floor-techs", domain + ":tenant-managers",
			domain + ":ring-techs", domain + ":broken-techs", other + ":site-techs", " " + domain + ":SITE-TECHS",
			domain + ":", "system:authenticated", domain + ":ops@" + PartnerDomain(0)} {
			if rng.IntN(4) == 0 {
				groups = append(groups, g)
			}
		}
	case 7:
		d := pick(domain, "pending.example.com", "expired.example.com", "gone.example.com", "unregistered.example.com")
		user = pick("tm@", "admin@") + d
		groups = []string{d + ":tenant-managers"}
	default: // not partner identities, or odd spellings of one
		user = pick("alice@customer.example", "system:serviceaccount:tenant-a:ci", "system:admin", "bob",
			"@"+domain, "a@b@"+domain, "U0@P0.EXAMPLE.COM", " u0@p0.example.com ", "system:u0@p0.example.com", "x@-bad-.example.com", "x@localhost",
			"u0@"+domain+".", "ops@eu."+domain, "oidc:u0@"+domain, "System:u0@"+domain, "p1.example.com:ops@"+domain, "u0@eu.customer.example", "u\t0@"+domain,
			// Malformed names under a partner domain or a sub-domain of one:
			// denied. Names merely near one: the customer's, no opinion.
			" u0@"+domain, "u0@"+domain+" ", "U0@"+strings.ToUpper(domain)+".", "u0@a.b.eu."+domain, "a:b@"+domain, "u0@-bad-."+domain,
			"u0@."+domain, "x@y@"+strings.ToUpper(domain), "u0@eu.gone.example.com", "u0@gone.example.com.",
			"x@y@customer.example", "alice@", "alice@.", "u0@unregistered.example.com", "u0@eu.unregistered.example.com",
			"u0@example.com", "u0@x"+domain, "u0@"+domain+"x")
	}

	r := &authz.Request{User: user, Groups: groups, Extra: randomExtra(rng, pick), Namespace: Namespace, Group: authz.Group,
		Verb: pick("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")}
	switch rng.IntN(20) {
	case 0:
		r.Namespace = "tenant-b"
	case 1:
		r.Path = pick(discoveryPaths...)
		r.Namespace, r.Group, r.Verb = "", "", pick("get", "get", "get", "head", "post", "delete", "list", "GET")
		return r
	case 2:
		r.Group, r.Resource = pick("authorization.k8s.io", "authentication.k8s.io", ""),
			pick("selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews", "pods")
		return r
	}

	switch rng.IntN(13) {
	case 11, 12:
		randomChangeRequest(rng, pick, r, p, w)
	case 0:
		r.Resource = pick("roomgroups", "updaterings", "updaterings", "settings")
		r.Name = pick("", "general", fmt.Sprintf("ring-p%d", p), fmt.Sprintf("ring-p%d", (p+1)%w.Partners), "mixed")
		if rng.IntN(8) == 0 {
			r.Subresource = "status"
		}
	case 3:
		// Tickets and reports: by name (this partner's, a neighbour's, an
		// unknown one), or lists by the room label or the access label.
		r.Resource = pick("tickets", "tickets", "roomreports")
		kind := map[string]string{"tickets": "ticket", "roomreports": "report"}[r.Resource]
		owner := (p + rng.IntN(4)) % w.Partners
		room := func() string { return fmt.Sprintf("room-%d", owner+w.Partners*rng.IntN(20)) }
		r.Name = pick(fmt.Sprintf("%s-%d", kind, owner+w.Partners*rng.IntN(20)), fmt.Sprintf("%s-%d", kind, rng.IntN(w.Rooms)), kind+"-none", room(), "")
		if rng.IntN(10) == 0 {
			r.Subresource = "status"
		}
		if r.Name == "" && rng.IntN(3) > 0 {
			r.Verb = pick("list", "watch")
		}
		switch rng.IntN(5) {
		case 0:
			r.LabelSelector = []authz.Requirement{{Key: v1alpha1.AccessLabel(pick(domain, other)), Operator: "Exists"}}
		case 1, 2:
			values := []string{room()}
			if rng.IntN(3) == 0 {
				values = append(values, room())
			}
			r.LabelSelector = []authz.Requirement{{Key: v1alpha1.LabelRoom, Operator: pick("In", "In", "Equals", "NotIn", "Exists"), Values: values}}
		}
	case 1, 10:
		r.Resource = "partnerroles"
		link, next := fmt.Sprintf("p%d", p), fmt.Sprintf("p%d", (p+1)%w.Partners)
		// A list or watch, or a request on one name: a role the index knows
		// (p1-leaving is being deleted) or a name no role has, <link>-x,
		// whose owners are every link it starts with (p0-2-x: p0 and p0-2;
		// p1-2-x: p1 and the Pending p1-2) or the link of a built-in role's.
		if rng.IntN(3) == 0 {
			r.Verb = pick("list", "watch")
			r.FieldSelector = randomFieldSelector(rng, pick, link, next)
			break
		}
		r.Name = pick("", link+"-primary-admins", link+"-primary-admins", link+"-site-techs", next+"-site-techs", "none", link+"-new", next+"-new",
			"gone-primary-admins", "gone-new", "p0-2-new", "p0-2-primary-admins", "p1-2-new", "p1-2-primary-admins",
			"p1-leaving", "p1-ops", "-primary-admins", link+"-", link+"-x-primary-admins", link)
		if rng.IntN(4) == 0 {
			r.FieldSelector = randomFieldSelector(rng, pick, link, next) // read by no named request
		}
	case 2:
		r.Resource = pick("partnerinvitations", "partnerlinks")
		r.Name = pick("", fmt.Sprintf("p%d", p), fmt.Sprintf("p%d", (p+1)%w.Partners), "pending", "expired", "gone", "p0-2", "p1-2")
	default:
		r.Resource = "rooms"
		r.Subresource = pick("", "", "", "key", "resetkey", "tickets", "reports", "status")
		// Mostly rooms of this partner or its neighbours, where scopes meet.
		owner := (p + rng.IntN(4)) % w.Partners
		r.Name = pick(fmt.Sprintf("room-%d", owner+w.Partners*rng.IntN(20)), fmt.Sprintf("room-%d", rng.IntN(w.Rooms)), "", "nowhere")
		if r.Name == "" && rng.IntN(3) > 0 {
			r.Verb = pick("list", "watch")
			if rng.IntN(3) > 0 {
				r.Subresource = ""
			}
		}
		switch rng.IntN(4) {
		case 0, 1:
			r.LabelSelector = []authz.Requirement{{Key: v1alpha1.AccessLabel(pick(domain, other)), Operator: "Exists"}}
		case 2:
			r.LabelSelector = []authz.Requirement{{Key: v1alpha1.AccessLabel(domain), Operator: pick("In", "Equals", "NotIn"),
				Values: []string{pick("true", "false")}}}
		}
	}
	return r
}

// randomTimedRequest draws a request that a grant starting or ending at
// some moment may decide: a partner's primary admin (its relationship may
// end), a member of its site-techs or floor-techs (their assignments may
// have windows) or, for p0, of ring-techs or p0-2's admins; on a room the
// grant names or selects or another of the partner's, on the partner's
// roles, or on its change request.
func randomTimedRequest(rng *rand.Rand, w *World) (r *authz.Request, p int) {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	p = rng.IntN(w.Partners)
	domain, link := PartnerDomain(p), fmt.Sprintf("p%d", p)
	r = &authz.Request{Namespace: Namespace, Group: authz.Group, Extra: randomExtra(rng, pick)}
	rooms := []string{
		fmt.Sprintf("room-%d", p+2*rng.IntN(5)*w.Partners),                // named by site-techs
		fmt.Sprintf("room-%d", p+(2*rng.IntN(10)+1)*w.Partners),           // on floor 1
		fmt.Sprintf("room-%d", p+rng.IntN(w.Rooms/w.Partners)*w.Partners), // any of the partner's
	}
	switch rng.IntN(3) {
	case 0:
		r.User = fmt.Sprintf("u%d@%s", p, domain)
	case 1:
		r.User, r.Groups = "tech@"+domain, []string{domain + ":site-techs"}
	default:
		r.User, r.Groups = "tech@"+domain, []string{domain + ":floor-techs"}
	}
	if p == 0 && rng.IntN(2) == 0 {
		if rng.IntN(2) == 0 {
			r.User, r.Groups, rooms = "tech@"+domain, []string{domain + ":ring-techs"}, []string{"room-0", "room-20"}
		} else {
			r.User, r.Groups, rooms = "u0@"+domain, nil, []string{"room-1", "room-2", "room-10"}
		}
	}
	switch rng.IntN(6) {
	case 0:
		r.Resource, r.Verb, r.Name = "partnerroles", pick("get", "update"), pick(link+"-site-techs", link+"-primary-admins", "p0-2-primary-admins")
	case 1:
		r.Resource, r.Verb, r.Name = "partnerchangerequests", "get", pick(link+"-change", "p0-2-change")
	default:
		r.Resource, r.Verb, r.Name = "rooms", pick("get", "get", "patch", "create"), pick(rooms...)
		if r.Verb == "create" {
			r.Subresource = "tickets"
		}
	}
	return r, p
}

// randomExtra draws the user extra of a session: none, one that meets every
// policy of the world (two times in three), or one to three keys, each with one or two values:
// the policies' keys, a key spelled in another case or that no policy
// names, and right and wrong values (one in another case).
func randomExtra(rng *rand.Rand, pick func(...string) string) map[string]authorizationv1.ExtraValue {
	switch rng.IntN(6) {
	case 0:
		return nil
	case 1, 2, 3, 4:
		return FullSession()
	}
	extra := map[string]authorizationv1.ExtraValue{}
	for range 1 + rng.IntN(3) {
		key := pick(amrKey, amrKey, deviceKey, deviceKey, "AMR", "acr")
		for range 1 + rng.IntN(2) {
			extra[key] = append(extra[key], pick("mfa", "mfa", "hwk", "pwd", "managed", "managed", "byod", "MFA"))
		}
	}
	return extra
}

// randomChangeRequest makes r a request on partnerchangerequests: every
// verb (approve too) and the status subresource, the names of the world's
// requests (this partner's, its neighbour's, p0-2's, p1-2's, gone's, the
// orphan's) and one none has, lists by name, and label selectors on
// partners.roompro.io/partner-link with each operator and one or two links.
func randomChangeRequest(rng *rand.Rand, pick func(...string) string, r *authz.Request, p int, w *World) {
	r.Resource = "partnerchangerequests"
	link, next := fmt.Sprintf("p%d", p), fmt.Sprintf("p%d", (p+1)%w.Partners)
	r.Verb = pick("get", "get", "list", "list", "watch", "create", "create", "update", "patch", "delete", "deletecollection", "approve")
	if rng.IntN(10) == 0 {
		r.Subresource = "status"
	}
	r.Name = pick("", link+"-change", link+"-change", next+"-change", "p0-2-change", "p1-2-change", "gone-change", "orphan-change", link+"-unseen")
	if (r.Verb == "list" || r.Verb == "watch") && rng.IntN(3) > 0 {
		r.Name = ""
	}
	if r.Name != "" || rng.IntN(5) == 0 {
		return
	}
	value := func() string {
		return pick(link, link, link, link, link, next, "p0", "p0-2", "p1-2", "gone", "nowhere")
	}
	values := []string{value()}
	switch rng.IntN(5) {
	case 0:
		values = append(values, value())
	case 1:
		values = nil
	}
	r.LabelSelector = []authz.Requirement{{Key: pick(v1alpha1.LabelPartnerLink, v1alpha1.LabelPartnerLink, v1alpha1.LabelPartnerLink, "partner-link"),
		Operator: pick("In", "In", "In", "Equals", "NotIn", "Exists"), Values: values}}
	if rng.IntN(4) == 0 {
		r.LabelSelector = append([]authz.Requirement{{Key: v1alpha1.LabelPartnerLink, Operator: "In", Values: []string{value(), value()}}}, r.LabelSelector...)
	}
}

// discoveryPaths are the non-resource paths drawn: every discovery shape
// (allowed for get and head) and paths sharing a prefix with one, a
// malformed segment, a trailing or doubled slash (denied).
var discoveryPaths = []string{
	"/api", "/apis", "/version", "/openapi/v2", "/openapi/v3", "/api/v1", "/apis/partners.roompro.io",
	"/apis/partners.roompro.io/v1alpha1", "/openapi/v3/api/v1", "/openapi/v3/apis/partners.roompro.io",
	"/openapi/v3/apis/partners.roompro.io/v1alpha1", "/apis/a-b.0/v1.2",

	"/apis/partners.roompro.io/v1alpha1/rooms", "/api/v1/namespaces/tenant-a/pods", "/openapi/v3apis/x", "/openapi/v3/",
	"/openapi/v3/api", "/openapi/v3/version", "/openapi/v3/openapi/v3", "/openapi/v2/x", "/apis/../metrics", "/apis/./v1",
	"/api/..", "/api/.", "/api/v1/", "/apis/", "//api", "/api//v1", "/openapi/v3//api/v1", "/apis/Partners.roompro.io",
	"/apis/x_y", "/version/", "/healthz", "/metrics", "/logs/kube.log",
}

// randomFieldSelector draws the field selector of a partnerroles request:
// mostly one requirement, on spec.partnerLink or another field, with each
// operator and zero to two values; sometimes a second requirement after one
// that never confines the list to one link. (authz reads the first
// requirement that confines it, the policy any: two such requirements on
// different links are not drawn.)
func randomFieldSelector(rng *rand.Rand, pick func(...string) string, link, next string) []authz.Requirement {
	value := func() string { return pick(link, link, link, next, "p0-2", "p1-2", "gone", "nowhere", "") }
	values := func() []string {
		switch rng.IntN(6) {
		case 0:
			return nil
		case 1:
			return []string{value(), value()}
		}
		return []string{value()}
	}
	main := authz.Requirement{Key: pick("spec.partnerLink", "spec.partnerLink", "spec.partnerLink", "metadata.name", "spec.partnerlink"),
		Operator: pick("In", "In", "Equals", "NotIn", "Exists"), Values: values()}
	if rng.IntN(4) > 0 {
		return []authz.Requirement{main}
	}
	decoy := pick("metadata.name", "spec.partnerLink NotIn", "spec.partnerLink two", "spec.partnerLink Exists")
	first := authz.Requirement{Key: "metadata.name", Operator: "In", Values: []string{value()}}
	switch decoy {
	case "spec.partnerLink NotIn":
		first = authz.Requirement{Key: "spec.partnerLink", Operator: "NotIn", Values: []string{value()}}
	case "spec.partnerLink two":
		first = authz.Requirement{Key: "spec.partnerLink", Operator: "In", Values: []string{value(), value()}}
	case "spec.partnerLink Exists":
		first = authz.Requirement{Key: "spec.partnerLink", Operator: "Exists"}
	}
	return []authz.Requirement{first, main}
}

// BenchmarkDecision times one decision per case, engine and world size.
// Run: go test ./opa -run '^$' -bench . -benchmem
func BenchmarkDecision(b *testing.B) {
	for _, s := range sizes {
		b.Run(s.String(), func(b *testing.B) {
			w := worldOf(b, s)
			for _, c := range cases {
				b.Run("case="+c.name, func(b *testing.B) {
					b.Run("engine=operator", func(b *testing.B) { benchOperator(b, w, c) })
					b.Run("engine=opa", func(b *testing.B) { benchOPA(b, w, c) })
				})
			}
		})
	}
}

func benchOperator(b *testing.B, w *loaded, c benchCase) {
	w.Clock.SetTime(T0)
	r := c.req(w.World)
	if got := w.Index.Decide(r).Verdict; got != c.want {
		b.Fatalf("operator says %s, want %s", got, c.want)
	}
	b.ReportAllocs()
	for b.Loop() {
		w.Index.Decide(r)
	}
}

// benchOPA times Eval from an input already decoded into Go values, as a
// webhook holds it after reading the SubjectAccessReview: the conversion
// into OPA's values is part of OPA's cost, as building authz.Request is not
// timed for the operator either (it is built from the same decoded review).
func benchOPA(b *testing.B, w *loaded, c benchCase) {
	ctx := context.Background()
	input := Input(c.req(w.World), T0)
	if got := w.opaVerdict(b, input); got != c.want {
		b.Fatalf("opa says %s, want %s", got, c.want)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.opa.Verdict(ctx, input); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPrintRatios measures both engines per case in one process and prints
// a markdown table. Run: OPA_RATIOS=1 go test ./opa -run TestPrintRatios -v -count=1
// (-count=1: otherwise go test may replay a cached table from an earlier run).
//
// Each engine is measured in alternation, three times, and the fastest run
// counts: other load on the machine only ever slows a run down, and
// alternating keeps a burst of it from favouring one engine.
func TestPrintRatios(t *testing.T) {
	if os.Getenv("OPA_RATIOS") != "1" {
		t.Skip("set OPA_RATIOS=1 to measure")
	}
	const rounds = 3
	fmt.Println("| world | case | operator ns/op | opa ns/op | ratio | operator allocs/op | opa allocs/op |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|")
	for _, s := range sizes {
		w := worldOf(t, s)
		for _, c := range cases {
			measure := func(f func(*testing.B)) testing.BenchmarkResult {
				r := testing.Benchmark(f)
				if r.N == 0 {
					t.Fatalf("%s/%s: a benchmark failed (the engines disagree?)", s, c.name)
				}
				return r
			}
			var op, opa testing.BenchmarkResult
			for range rounds {
				op = faster(op, measure(func(b *testing.B) { benchOperator(b, w, c) }))
				opa = faster(opa, measure(func(b *testing.B) { benchOPA(b, w, c) }))
			}
			fmt.Printf("| %s | %s | %.0f | %.0f | %.0f× | %d | %d |\n", s, c.name,
				nsPerOp(op), nsPerOp(opa), nsPerOp(opa)/nsPerOp(op), op.AllocsPerOp(), opa.AllocsPerOp())
		}
	}
}

// faster returns the result with the lower time per operation; best is
// empty (N == 0) before the first round.
func faster(best, r testing.BenchmarkResult) testing.BenchmarkResult {
	if best.N == 0 || nsPerOp(r) < nsPerOp(best) {
		return r
	}
	return best
}

// nsPerOp is BenchmarkResult.NsPerOp without its rounding to whole
// nanoseconds, which matters for the operator's tens of nanoseconds.
func nsPerOp(r testing.BenchmarkResult) float64 { return float64(r.T.Nanoseconds()) / float64(r.N) }
