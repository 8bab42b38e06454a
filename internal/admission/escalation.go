package admission

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authz"
)

// validateNoEscalation applies the RBAC escalation rule to a partner's role
// write: every permission the role grants, in every assignment, the writer
// must hold itself, on a scope that contains the assignment's, for at least
// as long (a writer holding it until a validUntil grants it only with a
// validUntil no later). held is what the writer holds on the role's link.
func validateNoEscalation(held []authz.Holding, spec v1alpha1.PartnerRoleSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, a := range spec.Assignments {
		var missing []string
		for _, p := range spec.Permissions {
			if !slices.ContainsFunc(held, func(h authz.Holding) bool {
				return slices.Contains(h.Permissions, p) && scopeWithin(a.Scope, h.Scope) && endsBy(a, h.Until)
			}) {
				missing = append(missing, string(p))
			}
		}
		if len(missing) > 0 && heldOnlyForAWhile(held, spec.Permissions, a.Scope) {
			errs = append(errs, field.Forbidden(path.Child("assignments").Index(i).Child("validUntil"), fmt.Sprintf(
				"grants %s for longer than the writer holds them: the writer's own assignment ends at its validUntil, so this assignment needs a validUntil no later than that",
				strings.Join(missing, ", "))))
			continue
		}
		if len(missing) > 0 {
			errs = append(errs, field.Forbidden(path.Child("assignments").Index(i).Child("scope"), fmt.Sprintf(
				"grants %s on rooms where the writer does not hold them: a role writer grants only permissions it holds, on a scope within its own (the same names, or its selector with more requirements)",
				strings.Join(missing, ", "))))
		}
	}
	return errs
}

// endsBy reports whether the assignment ends no later than until (nil: no
// end to keep to).
func endsBy(a v1alpha1.RoleAssignment, until *time.Time) bool {
	return until == nil || a.ValidUntil != nil && !a.ValidUntil.After(*until)
}

// heldOnlyForAWhile reports whether every permission is held on the scope,
// but some only with an end: the refusal is then about time, not scope.
func heldOnlyForAWhile(held []authz.Holding, perms []v1alpha1.Permission, scope v1alpha1.RoomScope) bool {
	for _, p := range perms {
		if !slices.ContainsFunc(held, func(h authz.Holding) bool {
			return slices.Contains(h.Permissions, p) && scopeWithin(scope, h.Scope)
		}) {
			return false
		}
	}
	return true
}

// scopeWithin reports whether every room inner can select, outer selects
// too, judged from the scopes alone (as RBAC judges rules), never from the
// rooms' labels of the moment, which may change. outer nil is the link's
// whole scope. A name is within outer when outer names it; a selector is
// within when it has every requirement of outer's selector.
func scopeWithin(inner v1alpha1.RoomScope, outer *v1alpha1.RoomScope) bool {
	if outer == nil {
		return true
	}
	if len(inner.Names) == 0 && inner.Selector == nil {
		return false // the whole link scope
	}
	for _, n := range inner.Names {
		if !slices.Contains(outer.Names, n) {
			return false
		}
	}
	if inner.Selector == nil {
		return true
	}
	if outer.Selector == nil {
		return false
	}
	innerReqs, ok := requirementStrings(inner.Selector)
	outerReqs, ok2 := requirementStrings(outer.Selector)
	if !ok || !ok2 {
		return false
	}
	for _, r := range outerReqs {
		if !slices.Contains(innerReqs, r) {
			return false
		}
	}
	return true
}

// requirementStrings is a selector's requirements in the apiserver's
// canonical form (sorted values, one form per operator).
func requirementStrings(s *metav1.LabelSelector) ([]string, bool) {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return nil, false
	}
	reqs, _ := sel.Requirements()
	out := make([]string, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, r.String())
	}
	return out, true
}

// holds reports whether any holding gives p.
func holds(held []authz.Holding, p v1alpha1.Permission) bool {
	return slices.ContainsFunc(held, func(h authz.Holding) bool { return slices.Contains(h.Permissions, p) })
}
