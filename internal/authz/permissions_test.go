package authz

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/matrix"
)

// The mapping of requests to permissions is the table "What each permission
// allows" of docs/permissions.md, both ways: every request the table lists
// needs its permission, and no other request on those resources needs any
// permission (partners may never make it).
func TestRequestsMapToTheDocumentedPermissions(t *testing.T) {
	m, err := matrix.ParseFile("../../docs/permissions.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]v1alpha1.Permission{} // "verb resource" → permission
	resources := map[string]bool{}
	for p, grants := range m.Allows {
		for _, g := range grants {
			resources[g.Resource] = true
			for _, verb := range g.Verbs {
				key := verb + " " + g.Resource
				if other, ok := documented[key]; ok {
					t.Errorf("%s is documented for both %s and %s", key, other, p)
				}
				documented[key] = p
			}
		}
	}
	verbs := []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "approve", "escalate", "bind", "impersonate"}
	for resource := range resources {
		for _, subresource := range []string{"", "status", "key", "resetkey", "tickets", "reports"} {
			full := resource
			if subresource != "" {
				if strings.Contains(resource, "/") {
					continue
				}
				full += "/" + subresource
			}
			name, sub, _ := strings.Cut(full, "/")
			for _, verb := range verbs {
				got := required(&Request{Group: Group, Verb: verb, Resource: name, Subresource: sub})
				want, ok := documented[verb+" "+full]
				switch {
				case ok && (got.kind != permission || got.permission != want):
					t.Errorf("%s %s needs %+v, want the permission %s (docs/permissions.md)", verb, full, got, want)
				case !ok && got.kind == permission:
					t.Errorf("%s %s needs %s, which docs/permissions.md does not document", verb, full, got.permission)
				}
			}
		}
	}
	// Every permission of the API allows something documented.
	for _, p := range v1alpha1.AllPermissions {
		if len(m.Allows[p]) == 0 {
			t.Errorf("docs/permissions.md says nothing %s allows", p)
		}
	}
	if got := m.Columns["primary admin"]; !sets.New(got...).Equal(sets.New(v1alpha1.PrimaryAdminPermissions...)) {
		t.Errorf("the primary admin column is %v, want v1alpha1.PrimaryAdminPermissions %v", got, v1alpha1.PrimaryAdminPermissions)
	}
}
