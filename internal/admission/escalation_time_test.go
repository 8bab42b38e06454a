package admission

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authz"
)

// A writer who holds a permission only until a moment grants it only until
// then: a just-in-time holder cannot make its window outlive itself.
func TestEscalationInTime(t *testing.T) {
	end := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	held := []authz.Holding{{Permissions: []v1alpha1.Permission{v1alpha1.RoomsView, v1alpha1.RolesModify}, Until: &end}}
	role := func(until *time.Time) v1alpha1.PartnerRoleSpec {
		a := v1alpha1.RoleAssignment{Name: "a", Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "dave@contoso.com"}}}
		if until != nil {
			a.ValidUntil = &metav1.Time{Time: *until}
		}
		return v1alpha1.PartnerRoleSpec{PartnerLink: "contoso", Permissions: []v1alpha1.Permission{v1alpha1.RoomsView}, Assignments: []v1alpha1.RoleAssignment{a}}
	}
	earlier, later := end.Add(-time.Hour), end.Add(time.Second)
	cases := []struct {
		name    string
		spec    v1alpha1.PartnerRoleSpec
		wantErr string
	}{
		{"no end", role(nil), "spec.assignments[0].validUntil"},
		{"a second longer", role(&later), "for longer than the writer holds them"},
		{"the same end", role(&end), ""},
		{"an earlier end", role(&earlier), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := validateNoEscalation(held, c.spec, field.NewPath("spec"))
			if c.wantErr == "" {
				if len(errs) > 0 {
					t.Fatalf("refused: %v", errs)
				}
				return
			}
			if len(errs) != 1 || !strings.Contains(errs.ToAggregate().Error(), c.wantErr) {
				t.Fatalf("got %v, want one error containing %q", errs, c.wantErr)
			}
		})
	}
	// A holder without an end grants any window, and none.
	if errs := validateNoEscalation([]authz.Holding{{Permissions: []v1alpha1.Permission{v1alpha1.RoomsView}}}, role(nil), field.NewPath("spec")); len(errs) > 0 {
		t.Fatalf("an unwindowed holder was refused: %v", errs)
	}
}
