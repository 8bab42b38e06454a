package adversarial

import (
	"fmt"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
)

// Class 2: verbs × resources × subresources × names × namespaces, for every
// partner user, compared with the reference; and the same matrix for the
// customer's own users, whom the webhook must leave to RBAC.

var matrixVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection",
	"approve", "bind", "escalate", "impersonate"}

type resourceDef struct {
	group, resource, subresource string
	names                        []string // the names worth asking about
}

const pg = "partners.roompro.io"

// A name matters for room-scoped resources (the room) and for partnerroles
// (whose link); for every other resource the design ignores it, so one name
// and none are asked.
var someName = []string{"nyc-1", ""}

var matrixResources = []resourceDef{
	{pg, "rooms", "", roomNames}, {pg, "rooms", "status", roomNames}, {pg, "rooms", "key", roomNames},
	{pg, "rooms", "resetkey", roomNames}, {pg, "rooms", "tickets", roomNames}, {pg, "rooms", "reports", roomNames},
	{pg, "partnerroles", "", roleNames},
	{pg, "partnerchangerequests", "", changeRequestNames}, {pg, "partnerchangerequests", "status", changeRequestNames},
	{pg, "partnerlinks", "", []string{"contoso", "fabrikam", ""}},
	{pg, "partnerinvitations", "", []string{"contoso", "fabrikam", ""}},
	{pg, "roomassignments", "", []string{"contoso-invitation", ""}},
	{pg, "roomgroups", "", someName}, {pg, "updaterings", "", someName}, {pg, "settings", "", someName},
	{pg, "roomgroups", "status", someName}, {pg, "updaterings", "status", someName},
	// The world holds no tickets or reports: every name is unknown, as a
	// name another partner's ticket has would be.
	{pg, "tickets", "", []string{"nyc-1", "t-unknown", ""}}, {pg, "tickets", "status", someName},
	{pg, "roomreports", "", []string{"nyc-1", "r-unknown", ""}}, {pg, "roomreports", "status", someName},
	{pg, "partnerorganizations", "", []string{contoso, ""}},
	{"", "pods", "", someName}, {"", "secrets", "", someName}, {"", "configmaps", "", someName},
	{"", "namespaces", "", []string{tenantA, ""}}, {"", "serviceaccounts", "token", []string{"default", ""}},
	{"rbac.authorization.k8s.io", "rolebindings", "", someName},
	{"authorization.k8s.io", "subjectaccessreviews", "", someName},
}

var matrixNamespaces = []string{tenantA, tenantB, ghostNS}

// matrixRequests generates every request of the matrix.
func matrixRequests() []*authorizationv1.ResourceAttributes {
	var out []*authorizationv1.ResourceAttributes
	for _, ns := range matrixNamespaces {
		for _, res := range matrixResources {
			for _, verb := range matrixVerbs {
				for _, name := range res.names {
					out = append(out, &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb,
						Group: res.group, Resource: res.resource, Subresource: res.subresource, Name: name})
				}
			}
		}
	}
	return out
}

// customerUsers have no partnership: one with a UPN of a domain no partner
// has, one without an @ at all.
var customerUsers = []string{"bob@fourthcoffee.com", "jane"}

func testMatrix(t *testing.T) {
	requests := matrixRequests()
	t.Run("partners", func(t *testing.T) {
		// Every partner review carries system:authenticated, which the
		// world's RBAC binds to view (everywhere) and edit (tenant-a): what
		// RBAC grants must never leak past the webhook's Deny.
		var cases []sarCase
		for _, user := range partnerUsers {
			for _, a := range requests {
				want := allowedByDesign(user, a)
				cases = append(cases, sarCase{
					name:  fmt.Sprintf("%s/%s", user, describe(a)),
					spec:  authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{authenticated}, ResourceAttributes: a},
					check: partnerVerdict(want),
				})
			}
		}
		runReviews(t, cases)
	})
	t.Run("customers", func(t *testing.T) {
		// No groups, so no RBAC binding applies: not allowed, and never
		// denied by the webhook, whose Deny would shadow the customer's own
		// RBAC.
		var cases []sarCase
		for _, user := range customerUsers {
			for _, a := range requests {
				cases = append(cases, sarCase{
					name: fmt.Sprintf("%s/%s", user, describe(a)),
					spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: a},
					check: func(st authorizationv1.SubjectAccessReviewStatus) error {
						if st.Allowed || st.Denied || webhookDenialReason(st.Reason) {
							return fmt.Errorf("want RBAC's answer (allowed=false denied=false, no webhook reason), got allowed=%v denied=%v reason=%q", st.Allowed, st.Denied, st.Reason)
						}
						return nil
					},
				})
			}
		}
		runReviews(t, cases)
	})
	t.Run("customers-rbac-decides", func(t *testing.T) {
		// Control: with system:authenticated the customer's bindings do
		// apply, so the webhook really leaves customers to RBAC.
		var cases []sarCase
		for _, user := range customerUsers {
			for _, c := range []struct {
				a    authorizationv1.ResourceAttributes
				want bool
			}{
				{authorizationv1.ResourceAttributes{Namespace: tenantA, Verb: "get", Resource: "pods"}, true},
				{authorizationv1.ResourceAttributes{Namespace: tenantA, Verb: "create", Resource: "pods"}, true},
				{authorizationv1.ResourceAttributes{Namespace: tenantB, Verb: "get", Resource: "pods"}, true},
				{authorizationv1.ResourceAttributes{Namespace: tenantB, Verb: "create", Resource: "pods"}, false},
				{authorizationv1.ResourceAttributes{Namespace: tenantA, Verb: "delete", Group: pg, Resource: "rooms", Name: "nyc-1"}, true},
				{authorizationv1.ResourceAttributes{Namespace: tenantB, Verb: "delete", Group: pg, Resource: "rooms", Name: "nyc-1"}, false},
				// The customer decides change requests: approve is RBAC's.
				{authorizationv1.ResourceAttributes{Namespace: tenantA, Verb: "approve", Group: pg, Resource: "partnerchangerequests", Name: "contoso-rename-nyc"}, true},
				{authorizationv1.ResourceAttributes{Namespace: tenantB, Verb: "approve", Group: pg, Resource: "partnerchangerequests", Name: "fabrikam-rename-sea"}, false},
			} {
				a := c.a
				cases = append(cases, sarCase{
					name: fmt.Sprintf("%s/%s", user, describe(&a)),
					spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{authenticated}, ResourceAttributes: &a},
					check: func(st authorizationv1.SubjectAccessReviewStatus) error {
						if st.Allowed != c.want || st.Denied {
							return fmt.Errorf("want RBAC's allowed=%v, got allowed=%v denied=%v reason=%q", c.want, st.Allowed, st.Denied, st.Reason)
						}
						return nil
					},
				})
			}
		}
		runReviews(t, cases)
	})
}

// webhookDenialReason recognises the wording of the webhook's denials (a
// no-opinion reason may be passed through by the apiserver; a denial's may
// not reach a customer).
func webhookDenialReason(reason string) bool {
	for _, s := range []string{"partner users may not", "no role of the caller grants", "has no partnership", "not in the scope", "decision index"} {
		if strings.Contains(reason, s) {
			return true
		}
	}
	return false
}
