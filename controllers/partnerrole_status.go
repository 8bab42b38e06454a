package controllers

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// roleStatus is the status of a role whose link (nil when it does not exist)
// is as read, at the moment now: each assignment's window is judged against
// it. The role controller is its only writer. Pure.
func roleStatus(role *v1alpha1.PartnerRole, link *v1alpha1.PartnerLink, now time.Time) v1alpha1.PartnerRoleStatus {
	status := *role.Status.DeepCopy()
	status.ObservedGeneration = role.Generation
	status.Assignments = assignmentWindows(role, now)
	if !linkNotInEffect(&status.Conditions, role, role.Spec.PartnerLink, link) {
		setCondition(&status.Conditions, role, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonInEffect,
			fmt.Sprintf("grants %d permission(s) to %d member(s) within the scope of %s",
				len(role.Spec.Permissions), primaryAdminCount(role), link.Spec.PartnerDomain))
	}
	return status
}

// windowAt is where now lies against an assignment's window [validFrom,
// validUntil): the same half-open interval the authorization index decides
// by, so that status and decisions agree to the second.
func windowAt(a v1alpha1.RoleAssignment, now time.Time) v1alpha1.Window {
	switch {
	case a.ValidFrom != nil && now.Before(a.ValidFrom.Time):
		return v1alpha1.WindowUpcoming
	case a.ValidUntil != nil && !now.Before(a.ValidUntil.Time):
		return v1alpha1.WindowExpired
	}
	return v1alpha1.WindowActive
}

// assignmentWindows is status.assignments: one entry per assignment, in
// the spec's order; nil for a role without assignments.
func assignmentWindows(role *v1alpha1.PartnerRole, now time.Time) []v1alpha1.AssignmentStatus {
	if len(role.Spec.Assignments) == 0 {
		return nil
	}
	out := make([]v1alpha1.AssignmentStatus, 0, len(role.Spec.Assignments))
	for _, a := range role.Spec.Assignments {
		out = append(out, v1alpha1.AssignmentStatus{Name: a.Name, Window: windowAt(a, now)})
	}
	return out
}

// nextWindowChange is the first boundary (a validFrom or validUntil) after
// now at which an assignment's window changes, and false when none is to
// come: the moment the controller must reconcile the role again.
func nextWindowChange(role *v1alpha1.PartnerRole, now time.Time) (time.Time, bool) {
	var next time.Time
	found := false
	for _, a := range role.Spec.Assignments {
		for _, t := range []*metav1.Time{a.ValidFrom, a.ValidUntil} {
			if t != nil && t.After(now) && (!found || t.Time.Before(next)) {
				next, found = t.Time, true
			}
		}
	}
	return next, found
}

// windowTransition is an assignment whose window the new status records in
// another state than the stored one did.
type windowTransition struct {
	Assignment v1alpha1.RoleAssignment
	To         v1alpha1.Window
}

// windowTransitions lists the assignments that became Active or Expired
// between the stored status (before) and the new one (after), in the
// spec's order. Only windowed assignments count: an assignment without a
// window is Active from its creation, which the role's own audit records.
// Derived from the stored status, so a transition is reported once however
// often the role is reconciled, and again by no other replica. Pure.
func windowTransitions(role *v1alpha1.PartnerRole, before, after []v1alpha1.AssignmentStatus) []windowTransition {
	was := make(map[string]v1alpha1.Window, len(before))
	for _, s := range before {
		was[s.Name] = s.Window
	}
	var out []windowTransition
	for i, s := range after {
		a := role.Spec.Assignments[i]
		if !a.Windowed() {
			continue
		}
		if s.Window == was[s.Name] || s.Window == v1alpha1.WindowUpcoming {
			continue
		}
		out = append(out, windowTransition{Assignment: a, To: s.Window})
	}
	return out
}

// describeWindow is an assignment's window in words, for Events.
func describeWindow(a v1alpha1.RoleAssignment) string {
	from, until := "its creation", "no end"
	if a.ValidFrom != nil {
		from = formatTime(a.ValidFrom.Time)
	}
	if a.ValidUntil != nil {
		until = formatTime(a.ValidUntil.Time)
	}
	return fmt.Sprintf("[%s, %s)", from, until)
}
