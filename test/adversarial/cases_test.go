package adversarial

import (
	"fmt"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
)

// sarCase is one generated question to the apiserver's authorizer chain and
// what its answer must be.
type sarCase struct {
	name  string
	spec  authorizationv1.SubjectAccessReviewSpec
	check func(authorizationv1.SubjectAccessReviewStatus) error
}

// runReviews posts every case's review (concurrently), then reports each
// as its own subtest, so that a failure names the case.
func runReviews(t *testing.T, cases []sarCase) {
	t.Helper()
	specs := make([]authorizationv1.SubjectAccessReviewSpec, len(cases))
	for i, c := range cases {
		specs[i] = c.spec
	}
	statuses, errs := reviewAll(specs)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if errs[i] != nil {
				t.Fatalf("posting the review: %v", errs[i])
			}
			if err := c.check(statuses[i]); err != nil {
				t.Error(err)
			}
		})
	}
}

// partnerVerdict is the check for a partner user: allowed exactly when the
// reference says so, and otherwise denied by the webhook (denied: true), so
// that no RBAC binding can grant it.
func partnerVerdict(want bool) func(authorizationv1.SubjectAccessReviewStatus) error {
	return func(st authorizationv1.SubjectAccessReviewStatus) error {
		switch {
		case st.Allowed != want:
			return fmt.Errorf("want allowed=%v, got allowed=%v denied=%v reason=%q", want, st.Allowed, st.Denied, st.Reason)
		case !want && !st.Denied:
			return fmt.Errorf("want denied by the webhook (denied=true), got no opinion (allowed=false denied=false reason=%q): an RBAC binding would decide", st.Reason)
		}
		return nil
	}
}

// describe names a request for a subtest: verb resource[/sub] [name] in ns.
func describe(a *authorizationv1.ResourceAttributes) string {
	r := a.Resource
	if a.Subresource != "" {
		r += "/" + a.Subresource
	}
	if a.Group != "" && !strings.HasPrefix(a.Group, "partners.") {
		r += "." + a.Group
	}
	name := a.Name
	if name == "" {
		name = "(no-name)"
	}
	return fmt.Sprintf("%s_%s_%s_in_%s", a.Verb, r, name, a.Namespace)
}
