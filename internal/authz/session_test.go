package authz

import (
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// withPolicy returns contoso's accepted invitation of world() with a
// session policy.
func withPolicy(name string, phase v1alpha1.InvitationPhase, required map[string]v1alpha1.ExtraValues) *v1alpha1.PartnerInvitation {
	inv := invitationObj(ns, name, "contoso.com", phase)
	inv.Spec.SessionPolicy = &v1alpha1.SessionPolicy{RequiredExtra: required}
	return inv
}

func withExtra(r *Request, extra map[string]authorizationv1.ExtraValue) *Request {
	r.Extra = extra
	return r
}

func TestSessionPolicy(t *testing.T) {
	x := world()
	x.Upsert(withPolicy("contoso", v1alpha1.InvitationAccepted, map[string]v1alpha1.ExtraValues{"amr": {"mfa", "hwk"}}))
	mfa := map[string]authorizationv1.ExtraValue{"amr": {"pwd", "mfa"}}
	cases := []struct {
		name       string
		req        *Request
		want       Verdict
		wantReason string
	}{
		{"a partner user without the extra is denied", res(alice, nil, "get", "rooms", "", "nyc"), Deny, `requires the user extra "amr" to hold one of [mfa, hwk]`},
		{"with another value of the key", withExtra(res(alice, nil, "get", "rooms", "", "nyc"), map[string]authorizationv1.ExtraValue{"amr": {"pwd"}}), Deny, "PartnerInvitation contoso"},
		{"with the value under another key", withExtra(res(alice, nil, "get", "rooms", "", "nyc"), map[string]authorizationv1.ExtraValue{"AMR": {"mfa"}}), Deny, "amr"},
		{"with one of the values", withExtra(res(alice, nil, "get", "rooms", "", "nyc"), mfa), Allow, ""},
		{"with the other value", withExtra(res(alice, nil, "get", "rooms", "", "nyc"), map[string]authorizationv1.ExtraValue{"amr": {"hwk"}}), Allow, ""},
		{"the policy does not widen scope", withExtra(res(alice, nil, "get", "rooms", "", "ber"), mfa), Deny, reasonRoomOutOfScope},
		{"a tenant manager without it is denied", res(tm, tenantManagers, "get", "partnerlinks", "", "contoso"), Deny, "session policy"},
		{"a group member without it is denied", res(carol, helpdesk, "get", "rooms", "", "nyc"), Deny, "session policy"},
		{"another partner is not affected", res(bob, nil, "get", "rooms", "", "ber"), Allow, ""},
		{"customer staff are not affected", res("admin@customer.org", nil, "get", "rooms", "", "nyc"), NoOpinion, ""},
		{"discovery is in no namespace", &Request{User: alice, Path: "/apis", Verb: "get"}, Allow, ""},
		{"another namespace has no policy", &Request{User: alice, Namespace: "tenant-b", Verb: "get", Group: Group, Resource: "rooms", Name: "nyc-b"}, Deny, noRoleGrants(v1alpha1.RoomsView)},
		{"a decision the apiserver already authorised", func() *Request {
			r := res(alice, nil, "update", "rooms", "", "nyc")
			r.SessionVerified = true
			return r
		}(), Allow, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := x.Decide(c.req)
			if d.Verdict != c.want || !strings.Contains(d.Reason, c.wantReason) {
				t.Fatalf("got %s (%q), want %s with a reason containing %q", d.Verdict, d.Reason, c.want, c.wantReason)
			}
			if d.Verdict == Deny && strings.Contains(d.Reason, "session policy") && d.Cause != SessionPolicyUnmet {
				t.Fatalf("cause %s, want %s", d.Cause, SessionPolicyUnmet)
			}
		})
	}
}

func TestSessionPoliciesOfADomainAllApply(t *testing.T) {
	x := world()
	x.Upsert(withPolicy("contoso", v1alpha1.InvitationAccepted, map[string]v1alpha1.ExtraValues{"amr": {"mfa"}}))
	x.Upsert(withPolicy("contoso-2", v1alpha1.InvitationPending, map[string]v1alpha1.ExtraValues{"example.com/device": {"managed"}}))
	r := withExtra(res(alice, nil, "get", "rooms", "", "nyc"), map[string]authorizationv1.ExtraValue{"amr": {"mfa"}})
	if d := x.Decide(r); d.Verdict != Deny || !strings.Contains(d.Reason, `"example.com/device"`) || !strings.Contains(d.Reason, "contoso-2") {
		t.Fatalf("the second invitation's policy: got %s (%q)", d.Verdict, d.Reason)
	}
	r.Extra["example.com/device"] = authorizationv1.ExtraValue{"managed"}
	if d := x.Decide(r); d.Verdict != Allow {
		t.Fatalf("both met: got %s (%q)", d.Verdict, d.Reason)
	}
	// An expired invitation is a record: its policy no longer applies.
	x.Upsert(withPolicy("contoso-2", v1alpha1.InvitationExpired, map[string]v1alpha1.ExtraValues{"example.com/device": {"managed"}}))
	delete(r.Extra, "example.com/device")
	if d := x.Decide(r); d.Verdict != Allow {
		t.Fatalf("expired invitation's policy: got %s (%q)", d.Verdict, d.Reason)
	}
}

func TestSessionPolicyChangesTakeEffectOnTheNextDecision(t *testing.T) {
	x := world()
	r := res(alice, nil, "get", "rooms", "", "nyc")
	if d := x.Decide(r); d.Verdict != Allow {
		t.Fatalf("before the policy: got %s (%q)", d.Verdict, d.Reason)
	}
	x.Upsert(withPolicy("contoso", v1alpha1.InvitationAccepted, map[string]v1alpha1.ExtraValues{"amr": {"mfa"}}))
	if d := x.Decide(r); d.Verdict != Deny {
		t.Fatalf("after the policy: got %s (%q)", d.Verdict, d.Reason)
	}
	x.Upsert(invitationObj(ns, "contoso", "contoso.com", v1alpha1.InvitationAccepted))
	if d := x.Decide(r); d.Verdict != Allow {
		t.Fatalf("after the policy was removed: got %s (%q)", d.Verdict, d.Reason)
	}
}
