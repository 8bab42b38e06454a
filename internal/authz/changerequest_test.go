package authz

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func changeRequestObj(namespace, name, link string) *v1alpha1.PartnerChangeRequest {
	return &v1alpha1.PartnerChangeRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{v1alpha1.LabelPartnerLink: link}},
		Spec: v1alpha1.PartnerChangeRequestSpec{PartnerLink: link, Category: v1alpha1.CategoryRooms, Operation: v1alpha1.OperationUpdate,
			Target: v1alpha1.ChangeTarget{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Room", Name: "nyc"}, BaseResourceVersion: "1"},
	}
}

// changeWorld is world() with a change request of each link, and a second
// link of contoso.com (contoso-2, pending) with its own request.
func changeWorld() *Index {
	x := world()
	for _, o := range []any{
		changeRequestObj(ns, "contoso-rename-nyc", "contoso"),
		changeRequestObj(ns, "fabrikam-rename-ber", "fabrikam"),
		changeRequestObj("tenant-b", "contoso-rename-nyc", "contoso"),
		func() any {
			l := activeLinkObj(ns, "contoso-2", "contoso.com")
			l.Status.Phase = v1alpha1.LinkPending
			return l
		}(),
		changeRequestObj(ns, "contoso-2-request", "contoso-2"),
	} {
		x.Upsert(o)
	}
	return x
}

func pcr(u string, groups []string, verb, name string) *Request {
	return res(u, groups, verb, "partnerchangerequests", "", name)
}

func pcrList(u string, groups []string, verb string, selector ...Requirement) *Request {
	r := pcr(u, groups, verb, "")
	r.LabelSelector = selector
	return r
}

func linkLabel(op string, links ...string) Requirement {
	return Requirement{Key: v1alpha1.LabelPartnerLink, Operator: op, Values: links}
}

func TestDecideChangeRequests(t *testing.T) {
	x := changeWorld()
	cases := []struct {
		name  string
		req   *Request
		want  Verdict
		cause DenialCause
	}{
		// Proposing.
		{"admin proposes a change", pcr(alice, nil, "create", ""), Allow, NoCause},
		{"a role member proposes a change", pcr(carol, helpdesk, "create", ""), Allow, NoCause},
		{"a partner user without roles proposes (admission checks the write)", pcr("dave@contoso.com", nil, "create", ""), Allow, NoCause},
		{"a named create (server-side apply)", pcr(alice, nil, "create", "contoso-new"), Allow, NoCause},
		{"a proposal where the partner has no link", func() *Request { r := pcr(alice, nil, "create", ""); r.Namespace = "tenant-b"; return r }(), Deny, NoActiveLink},

		// Reading one request.
		{"admin gets its link's request", pcr(alice, nil, "get", "contoso-rename-nyc"), Allow, NoCause},
		{"admin watches its link's request by name", pcr(alice, nil, "watch", "contoso-rename-nyc"), Allow, NoCause},
		{"admin lists its link's request by name", pcr(alice, nil, "list", "contoso-rename-nyc"), Allow, NoCause},
		{"a scoped role member gets its link's request", pcr(carol, helpdesk, "get", "contoso-rename-nyc"), Allow, NoCause},
		{"a tenant manager gets its partner's request", pcr(tm, tenantManagers, "get", "contoso-rename-nyc"), Allow, NoCause},
		{"admin gets another partner's request", pcr(alice, nil, "get", "fabrikam-rename-ber"), Deny, OtherLinksRequest},
		{"a tenant manager gets another partner's request", pcr(tm, tenantManagers, "get", "fabrikam-rename-ber"), Deny, OtherLinksRequest},
		{"fabrikam's admin gets contoso's request", pcr(bob, nil, "get", "contoso-rename-nyc"), Deny, OtherLinksRequest},
		{"a partner user without roles gets its partner's request", pcr("dave@contoso.com", nil, "get", "contoso-rename-nyc"), Deny, OtherLinksRequest},
		{"admin gets a request of its partner's pending link", pcr(alice, nil, "get", "contoso-2-request"), Deny, OtherLinksRequest},
		{"a tenant manager gets a request of a pending link", pcr(tm, tenantManagers, "get", "contoso-2-request"), Deny, OtherLinksRequest},
		{"admin gets a request the index does not know", pcr(alice, nil, "get", "contoso-unseen"), Deny, OtherLinksRequest},
		{"admin gets without a name", pcr(alice, nil, "get", ""), Deny, UnconfinedList},
		{"a request of the same name in a namespace without a partnership", func() *Request {
			r := pcr(alice, nil, "get", "contoso-rename-nyc")
			r.Namespace = "tenant-b"
			return r
		}(), Deny, OtherLinksRequest},

		// Listing.
		{"admin lists its link's requests", pcrList(alice, nil, "list", linkLabel("In", "contoso")), Allow, NoCause},
		{"admin watches its link's requests with ==", pcrList(alice, nil, "watch", linkLabel("Equals", "contoso")), Allow, NoCause},
		{"a tenant manager lists its partner's requests", pcrList(tm, tenantManagers, "list", linkLabel("In", "contoso")), Allow, NoCause},
		{"a scoped role member lists its link's requests", pcrList(carol, helpdesk, "list", linkLabel("In", "contoso")), Allow, NoCause},
		{"admin lists without a selector", pcrList(alice, nil, "list"), Deny, UnconfinedList},
		{"admin lists by Exists", pcrList(alice, nil, "list", linkLabel("Exists")), Deny, UnconfinedList},
		{"admin lists by NotIn", pcrList(alice, nil, "list", linkLabel("NotIn", "fabrikam")), Deny, UnconfinedList},
		{"admin lists by In without values", pcrList(alice, nil, "list", linkLabel("In")), Deny, UnconfinedList},
		{"admin lists by another key", pcrList(alice, nil, "list", Requirement{Key: "partner-link", Operator: "In", Values: []string{"contoso"}}), Deny, UnconfinedList},
		{"admin lists by the field spec.partnerLink", func() *Request {
			r := pcrList(alice, nil, "list")
			r.FieldSelector = []Requirement{{Key: "spec.partnerLink", Operator: "In", Values: []string{"contoso"}}}
			return r
		}(), Deny, UnconfinedList},
		{"admin lists another partner's requests", pcrList(alice, nil, "list", linkLabel("In", "fabrikam")), Deny, OtherLinksRequest},
		{"admin lists its own and another partner's", pcrList(alice, nil, "list", linkLabel("In", "contoso", "fabrikam")), Deny, OtherLinksRequest},
		{"admin lists with a second requirement that confines it", pcrList(alice, nil, "list",
			linkLabel("In", "contoso", "fabrikam"), linkLabel("In", "contoso")), Allow, NoCause},
		{"admin lists its partner's pending link", pcrList(alice, nil, "list", linkLabel("In", "contoso-2")), Deny, OtherLinksRequest},
		{"a partner user without roles lists its partner's link", pcrList("dave@contoso.com", nil, "list", linkLabel("In", "contoso")), Deny, OtherLinksRequest},
		{"admin lists in a namespace without a partnership", func() *Request {
			r := pcrList(alice, nil, "list", linkLabel("In", "contoso"))
			r.Namespace = "tenant-b"
			return r
		}(), Deny, OtherLinksRequest},

		// Never: the customer decides, the operator applies.
		{"admin approves", pcr(alice, nil, "approve", "contoso-rename-nyc"), Deny, NeverForPartners},
		{"admin updates its request", pcr(alice, nil, "update", "contoso-rename-nyc"), Deny, NeverForPartners},
		{"admin patches its request", pcr(alice, nil, "patch", "contoso-rename-nyc"), Deny, NeverForPartners},
		{"admin deletes its request", pcr(alice, nil, "delete", "contoso-rename-nyc"), Deny, NeverForPartners},
		{"admin deletes every request", pcr(alice, nil, "deletecollection", ""), Deny, NeverForPartners},
		{"admin patches the status", res(alice, nil, "patch", "partnerchangerequests", "status", "contoso-rename-nyc"), Deny, NeverForPartners},
		{"admin gets the status", res(alice, nil, "get", "partnerchangerequests", "status", "contoso-rename-nyc"), Deny, NeverForPartners},
		{"a tenant manager approves", pcr(tm, tenantManagers, "approve", "contoso-rename-nyc"), Deny, NeverForPartners},
		{"a tenant manager deletes", pcr(tm, tenantManagers, "delete", "contoso-rename-nyc"), Deny, NeverForPartners},

		// Others: RBAC decides, approve included.
		{"customer staff approves", pcr("admin@customer.org", nil, "approve", "contoso-rename-nyc"), NoOpinion, NoCause},
		{"customer staff updates", pcr("jane", nil, "update", "contoso-rename-nyc"), NoOpinion, NoCause},
		{"a malformed partner name gets", pcr("System:alice@contoso.com", nil, "get", "contoso-rename-nyc"), Deny, MalformedUser},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := x.Decide(tc.req)
			if d.Verdict != tc.want || d.Cause != tc.cause {
				t.Errorf("Decide = %s %s (%s), want %s %s", d.Verdict, d.Cause, d.Reason, tc.want, tc.cause)
			}
			if d.Reason == "" {
				t.Error("every decision must say why")
			}
		})
	}
}

func TestChangeRequestReasonsSayWhatToDo(t *testing.T) {
	x := changeWorld()
	if d := x.Decide(pcrList(alice, nil, "list")); !strings.Contains(d.Reason, "-l partners.roompro.io/partner-link=<link>") {
		t.Errorf("an unconfined list says %q, want the selector to use", d.Reason)
	}
	for _, verb := range []string{"approve", "update", "patch", "delete"} {
		if d := x.Decide(pcr(alice, nil, verb, "contoso-rename-nyc")); !strings.Contains(d.Reason, "the customer decides") {
			t.Errorf("%s says %q, want that the customer decides", verb, d.Reason)
		}
	}
	// Another partner's request and a name that does not exist are denied
	// alike: the answer does not tell which names other partners use.
	other, unknown := x.Decide(pcr(alice, nil, "get", "fabrikam-rename-ber")), x.Decide(pcr(alice, nil, "get", "fabrikam-unseen"))
	if other != unknown {
		t.Errorf("another partner's request: %+v; an unknown name: %+v, want the same", other, unknown)
	}
}

// The index learns a request's link from the Feeder, and forgets it on
// delete; a change to the request does not change what callers resolve to.
func TestChangeRequestsFollowTheFeed(t *testing.T) {
	x := world()
	get := pcr(alice, nil, "get", "contoso-late")
	if d := x.Decide(get); d.Verdict != Deny {
		t.Fatalf("before the request is fed: %s (%s), want Deny", d.Verdict, d.Reason)
	}
	before := x.generation
	obj := changeRequestObj(ns, "contoso-late", "contoso")
	x.Upsert(obj)
	if d := x.Decide(get); d.Verdict != Allow {
		t.Fatalf("once fed: %s (%s), want Allow", d.Verdict, d.Reason)
	}
	if x.generation != before {
		t.Error("a change request changed the index's generation: every caller would be resolved again")
	}
	x.Delete(obj)
	if d := x.Decide(get); d.Verdict != Deny {
		t.Fatalf("once deleted: %s (%s), want Deny", d.Verdict, d.Reason)
	}
	// Offboarding: from the moment the link's delete is accepted, its
	// requests are denied to everyone of the partner.
	x.Upsert(obj)
	l := activeLinkObj(ns, "contoso", "contoso.com")
	now := metav1.Now()
	l.DeletionTimestamp = &now
	x.Upsert(l)
	for _, r := range []*Request{get, pcr(tm, tenantManagers, "get", "contoso-late"), pcrList(alice, nil, "list", linkLabel("In", "contoso")), pcr(alice, nil, "create", "")} {
		if d := x.Decide(r); d.Verdict != Deny {
			t.Errorf("%s %s of a terminating link: %s (%s), want Deny", r.User, r.Verb, d.Verdict, d.Reason)
		}
	}
}

// A proposal where the caller's partner has no active link is answered the
// same in every such namespace.
func TestChangeRequestDenialsAreAlikeOutOfPartnership(t *testing.T) {
	x := changeWorld()
	x.Upsert(activeLinkObj("tenant-c", "fabrikam", "fabrikam.com"))
	x.Upsert(changeRequestObj("tenant-c", "contoso-rename-nyc", "fabrikam"))
	for _, req := range []func(ns string) *Request{
		func(ns string) *Request { r := pcr(alice, nil, "create", ""); r.Namespace = ns; return r },
		func(ns string) *Request {
			r := pcr(alice, nil, "get", "contoso-rename-nyc")
			r.Namespace = ns
			return r
		},
		func(ns string) *Request {
			r := pcrList(tm, tenantManagers, "list", linkLabel("In", "contoso"))
			r.Namespace = ns
			return r
		},
	} {
		var reasons []string
		for _, n := range []string{"tenant-b", "tenant-c", "does-not-exist"} {
			d := x.Decide(req(n))
			if d.Verdict != Deny {
				t.Fatalf("%+v: %s, want Deny", *req(n), d.Verdict)
			}
			reasons = append(reasons, d.Reason)
		}
		if reasons[0] != reasons[1] || reasons[1] != reasons[2] {
			t.Errorf("reasons differ between namespaces: %q", reasons)
		}
	}
}

func TestChangeRequestDecisionsDoNotAllocate(t *testing.T) {
	x := changeWorld()
	for _, r := range []*Request{
		pcr(alice, nil, "get", "contoso-rename-nyc"),
		pcr(tm, tenantManagers, "get", "contoso-rename-nyc"),
		pcr(alice, nil, "get", "fabrikam-rename-ber"),
		pcrList(alice, nil, "list", linkLabel("In", "contoso")),
		pcrList(alice, nil, "list"),
		pcr(alice, nil, "create", ""),
		pcr(alice, nil, "approve", "contoso-rename-nyc"),
	} {
		x.Decide(r) // resolve the caller once
		if n := testing.AllocsPerRun(100, func() { x.Decide(r) }); n != 0 {
			t.Errorf("%s %s %s: %v allocations per decision, want 0", r.User, r.Verb, r.Name, n)
		}
	}
}
