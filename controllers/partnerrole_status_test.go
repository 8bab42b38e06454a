package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func TestRoleStatus(t *testing.T) {
	role := &v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Name: "contoso-helpdesk", Generation: 4},
		Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso", Permissions: []v1alpha1.Permission{v1alpha1.TicketsView}}}
	active := &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Name: "contoso"}, Spec: v1alpha1.PartnerLinkSpec{PartnerDomain: "contoso.com"},
		Status: v1alpha1.PartnerLinkStatus{Phase: v1alpha1.LinkActive}}
	pending := active.DeepCopy()
	pending.Status.Phase = ""
	for _, tc := range []struct {
		name   string
		link   *v1alpha1.PartnerLink
		status metav1.ConditionStatus
		reason string
	}{
		{"no link", nil, metav1.ConditionFalse, v1alpha1.ReasonPartnerLinkNotFound},
		{"a pending link", pending, metav1.ConditionFalse, v1alpha1.ReasonPartnerLinkNotActive},
		{"an active link", active, metav1.ConditionTrue, v1alpha1.ReasonInEffect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := roleStatus(role, tc.link, time.Now())
			if s.ObservedGeneration != 4 {
				t.Errorf("observedGeneration = %d", s.ObservedGeneration)
			}
			wantCondition(t, s.Conditions, v1alpha1.ConditionReady, tc.status, tc.reason)
		})
	}
}

// windowed is an assignment with the window [from, until); a zero time is
// no bound.
func windowed(name string, from, until time.Time) v1alpha1.RoleAssignment {
	a := v1alpha1.RoleAssignment{Name: name, Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "carol@contoso.com"}}}
	if !from.IsZero() {
		a.ValidFrom = &metav1.Time{Time: from}
	}
	if !until.IsZero() {
		a.ValidUntil = &metav1.Time{Time: until}
	}
	return a
}

func TestAssignmentWindowsAreHalfOpenToTheSecond(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	a := windowed("jit", t0, t0.Add(4*time.Hour))
	for _, tc := range []struct {
		at   time.Time
		want v1alpha1.Window
	}{
		{t0.Add(-time.Second), v1alpha1.WindowUpcoming},
		{t0, v1alpha1.WindowActive},
		{t0.Add(4*time.Hour - time.Second), v1alpha1.WindowActive},
		{t0.Add(4 * time.Hour), v1alpha1.WindowExpired},
		{t0.Add(4*time.Hour + time.Second), v1alpha1.WindowExpired},
	} {
		if got := windowAt(a, tc.at); got != tc.want {
			t.Errorf("at %s: %s, want %s", tc.at.Format(time.RFC3339), got, tc.want)
		}
	}
	if got := windowAt(windowed("always", time.Time{}, time.Time{}), t0); got != v1alpha1.WindowActive {
		t.Errorf("no window: %s, want Active", got)
	}
	if got := windowAt(windowed("from-only", t0, time.Time{}), t0.Add(1000*time.Hour)); got != v1alpha1.WindowActive {
		t.Errorf("validFrom only, long after: %s, want Active", got)
	}
	if got := windowAt(windowed("until-only", time.Time{}, t0), t0.Add(-1000*time.Hour)); got != v1alpha1.WindowActive {
		t.Errorf("validUntil only, long before: %s, want Active", got)
	}
}

func TestRoleStatusReportsEveryAssignmentInSpecOrder(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	role := &v1alpha1.PartnerRole{Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso", Assignments: []v1alpha1.RoleAssignment{
		windowed("later", t0.Add(time.Hour), t0.Add(2*time.Hour)),
		windowed("now", t0.Add(-time.Hour), t0.Add(time.Hour)),
		windowed("past", t0.Add(-2*time.Hour), t0.Add(-time.Hour)),
		windowed("always", time.Time{}, time.Time{}),
	}}}
	got := roleStatus(role, nil, t0).Assignments
	want := []v1alpha1.AssignmentStatus{
		{Name: "later", Window: v1alpha1.WindowUpcoming}, {Name: "now", Window: v1alpha1.WindowActive},
		{Name: "past", Window: v1alpha1.WindowExpired}, {Name: "always", Window: v1alpha1.WindowActive},
	}
	if len(got) != len(want) {
		t.Fatalf("assignments = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("assignments[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if s := roleStatus(&v1alpha1.PartnerRole{}, nil, t0); s.Assignments != nil {
		t.Errorf("a role without assignments reports %v", s.Assignments)
	}
}

func TestNextWindowChange(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	role := &v1alpha1.PartnerRole{Spec: v1alpha1.PartnerRoleSpec{Assignments: []v1alpha1.RoleAssignment{
		windowed("a", t0.Add(3*time.Hour), t0.Add(5*time.Hour)),
		windowed("b", t0.Add(-time.Hour), t0.Add(2*time.Hour)),
		windowed("always", time.Time{}, time.Time{}),
	}}}
	for _, tc := range []struct {
		now  time.Time
		want time.Time // zero: none
	}{
		{t0, t0.Add(2 * time.Hour)},
		{t0.Add(2 * time.Hour), t0.Add(3 * time.Hour)}, // a boundary at now is passed already
		{t0.Add(4 * time.Hour), t0.Add(5 * time.Hour)},
		{t0.Add(5 * time.Hour), time.Time{}},
	} {
		got, ok := nextWindowChange(role, tc.now)
		if ok != !tc.want.IsZero() || ok && !got.Equal(tc.want) {
			t.Errorf("at %s: %s %v, want %s", tc.now.Format(time.RFC3339), got.Format(time.RFC3339), ok, tc.want.Format(time.RFC3339))
		}
	}
}

func TestWindowTransitionsAreReportedOncePerChangeOfTheStoredStatus(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	role := &v1alpha1.PartnerRole{Spec: v1alpha1.PartnerRoleSpec{Assignments: []v1alpha1.RoleAssignment{
		windowed("jit", t0, t0.Add(4*time.Hour)),
		windowed("always", time.Time{}, time.Time{}),
	}}}
	transitions := func(before []v1alpha1.AssignmentStatus, at time.Time) []windowTransition {
		return windowTransitions(role, before, assignmentWindows(role, at))
	}
	names := func(ts []windowTransition) []string {
		var out []string
		for _, tr := range ts {
			out = append(out, tr.Assignment.Name+"="+string(tr.To))
		}
		return out
	}
	created := transitions(nil, t0.Add(-time.Hour))
	if len(created) != 0 {
		t.Errorf("a new role with an upcoming window and an unwindowed assignment: %v, want none", names(created))
	}
	upcoming := assignmentWindows(role, t0.Add(-time.Hour))
	if got := names(transitions(upcoming, t0)); len(got) != 1 || got[0] != "jit=Active" {
		t.Errorf("at validFrom: %v, want [jit=Active]", got)
	}
	active := assignmentWindows(role, t0)
	if got := transitions(active, t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("reconciled again inside the window: %v, want none", names(got))
	}
	if got := names(transitions(active, t0.Add(4*time.Hour))); len(got) != 1 || got[0] != "jit=Expired" {
		t.Errorf("at validUntil: %v, want [jit=Expired]", got)
	}
	expired := assignmentWindows(role, t0.Add(4*time.Hour))
	if got := transitions(expired, t0.Add(5*time.Hour)); len(got) != 0 {
		t.Errorf("reconciled again after the window: %v, want none", names(got))
	}
	if got := names(transitions(upcoming, t0.Add(5*time.Hour))); len(got) != 1 || got[0] != "jit=Expired" {
		t.Errorf("the window passed between two reconciles: %v, want [jit=Expired] only", got)
	}
}

func TestPermanentMemberCountLeavesOutWindowedMembers(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	role := &v1alpha1.PartnerRole{Spec: v1alpha1.PartnerRoleSpec{Assignments: []v1alpha1.RoleAssignment{
		windowed("jit", t0, t0.Add(time.Hour)), windowed("until", time.Time{}, t0), windowed("always", time.Time{}, time.Time{}),
	}}}
	if got := role.Spec.PermanentMembers(); got != 1 {
		t.Errorf("PermanentMembers = %d, want 1 (of %d members)", got, primaryAdminCount(role))
	}
}
