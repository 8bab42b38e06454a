package controllers_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
)

// windowsOf is a role's status.assignments as "name=Window".
func windowsOf(r *v1alpha1.PartnerRole) []string {
	var out []string
	for _, s := range r.Status.Assignments {
		out = append(out, s.Name+"="+string(s.Window))
	}
	return out
}

// roleEvents counts the Events of reason on a role, a repeat of one Event
// (its series) counting each time.
func roleEvents(ns, name, reason string) func() int {
	return func() int {
		GinkgoHelper()
		list := &corev1.EventList{}
		Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		n := 0
		for _, e := range list.Items {
			if e.InvolvedObject.Kind == "PartnerRole" && e.InvolvedObject.Name == name && e.Reason == reason {
				n += max(1, int(e.Count))
				if e.Series != nil {
					n += int(e.Series.Count) - 1
				}
			}
		}
		return n
	}
}

// windowAuditLines counts the role's audit lines whose detail says a
// window opened or closed.
func windowAuditLines(ns, name, detail string) int {
	n := 0
	for _, l := range auditLines() {
		if l.TenantID == ns && l.ObjectName == name && l.Category == audit.CategoryRole && l.UserID == audit.OperatorUser &&
			strings.Contains(l.Detail, detail) {
			n++
		}
	}
	return n
}

var _ = Describe("PartnerRole assignment windows", func() {
	It("turns Upcoming, Active and Expired at validFrom and validUntil, with one Event each", func() {
		ns := newNamespace()
		activeLink(ns, "contoso", "contoso.com")
		// The API stores times to the second: the window is on whole seconds.
		from := fakeClock.Now().Truncate(time.Second).Add(time.Hour)
		until := from.Add(4 * time.Hour)
		role := &v1alpha1.PartnerRole{
			ObjectMeta: metav1.ObjectMeta{Name: "contoso-jit", Namespace: ns},
			Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso", Permissions: []v1alpha1.Permission{v1alpha1.TicketsView},
				Assignments: []v1alpha1.RoleAssignment{
					{Name: "carol", Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "carol@contoso.com"}},
						ValidFrom: &metav1.Time{Time: from}, ValidUntil: &metav1.Time{Time: until}},
					{Name: "always", Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "dave@contoso.com"}}},
				}},
		}
		create(role)
		Eventually(fetch(role)).Should(WithTransform(windowsOf, Equal([]string{"carol=Upcoming", "always=Active"})))
		Expect(roleEvents(ns, role.Name, v1alpha1.ReasonAssignmentActive)()).To(BeZero(), "neither an upcoming nor an unwindowed assignment has an Event")

		fakeClock.SetTime(from.Add(-time.Second))
		Consistently(fetch(role), "500ms").Should(WithTransform(windowsOf, ContainElement("carol=Upcoming")))

		// No poll: the deadline armed at the role's reconcile fires at validFrom.
		fakeClock.SetTime(from)
		Eventually(fetch(role)).Should(WithTransform(windowsOf, Equal([]string{"carol=Active", "always=Active"})))
		Eventually(roleEvents(ns, role.Name, v1alpha1.ReasonAssignmentActive)).Should(Equal(1))
		Eventually(func() int {
			return windowAuditLines(ns, role.Name, `assignment "carol" grants [tickets.view] to 1 member(s) from now on`)
		}).Should(Equal(1))

		// More reconciles inside the window (a label change wakes the
		// controller) record nothing more.
		patch := client.MergeFrom(role.DeepCopy())
		role.Labels = map[string]string{"touched": "yes"}
		Expect(k8sClient.Patch(ctx, role, patch)).To(Succeed())
		fakeClock.SetTime(until.Add(-time.Second))
		Consistently(fetch(role), "500ms").Should(WithTransform(windowsOf, ContainElement("carol=Active")))
		Expect(roleEvents(ns, role.Name, v1alpha1.ReasonAssignmentActive)()).To(Equal(1))

		fakeClock.SetTime(until)
		Eventually(fetch(role)).Should(WithTransform(windowsOf, Equal([]string{"carol=Expired", "always=Active"})))
		Eventually(roleEvents(ns, role.Name, v1alpha1.ReasonAssignmentExpired)).Should(Equal(1))
		Eventually(func() int { return windowAuditLines(ns, role.Name, `assignment "carol" grants nothing any more`) }).Should(Equal(1))

		patch = client.MergeFrom(role.DeepCopy())
		role.Labels = map[string]string{"touched": "again"}
		Expect(k8sClient.Patch(ctx, role, patch)).To(Succeed())
		fakeClock.SetTime(until.Add(time.Hour))
		Consistently(roleEvents(ns, role.Name, v1alpha1.ReasonAssignmentExpired), "500ms").Should(Equal(1))
		Expect(roleEvents(ns, role.Name, v1alpha1.ReasonAssignmentActive)()).To(Equal(1))
		Expect(fetch(role)()).To(WithTransform(windowsOf, Equal([]string{"carol=Expired", "always=Active"})))
	})

	It("follows a window moved by an edit: the new boundary wakes the role, the old one is forgotten", func() {
		ns := newNamespace()
		activeLink(ns, "contoso", "contoso.com")
		from := fakeClock.Now().Truncate(time.Second).Add(time.Hour)
		role := &v1alpha1.PartnerRole{
			ObjectMeta: metav1.ObjectMeta{Name: "contoso-jit", Namespace: ns},
			Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso", Permissions: []v1alpha1.Permission{v1alpha1.TicketsView},
				Assignments: []v1alpha1.RoleAssignment{{Name: "carol",
					Members:   []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "carol@contoso.com"}},
					ValidFrom: &metav1.Time{Time: from}}}},
		}
		create(role)
		Eventually(fetch(role)).Should(WithTransform(windowsOf, Equal([]string{"carol=Upcoming"})))

		patch := client.MergeFrom(role.DeepCopy())
		role.Spec.Assignments[0].ValidFrom = &metav1.Time{Time: from.Add(time.Hour)}
		Expect(k8sClient.Patch(ctx, role, patch)).To(Succeed())
		Eventually(fetch(role)).Should(HaveField("Status.ObservedGeneration", role.Generation))

		fakeClock.SetTime(from)
		Consistently(fetch(role), "500ms").Should(WithTransform(windowsOf, Equal([]string{"carol=Upcoming"})))
		fakeClock.SetTime(from.Add(time.Hour))
		Eventually(fetch(role)).Should(WithTransform(windowsOf, Equal([]string{"carol=Active"})))
		Eventually(roleEvents(ns, role.Name, v1alpha1.ReasonAssignmentActive)).Should(Equal(1))
	})
})
