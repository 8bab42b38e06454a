package e2e

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// The specs of this file step the suite's one fakeClock, which every other
// spec shares and specs run in random order: each window starts from
// fakeClock.Now() and the clock only moves forward. The apiserver stores
// times to the second, so windows are on whole seconds.

// windowStart is a moment d after the suite's clock, on a whole second.
func windowStart(d time.Duration) time.Time { return fakeClock.Now().Truncate(time.Second).Add(d) }

// ticketsAllowed asks the apiserver whether user may verb the tickets of
// room (the rooms/tickets attributes a portal backend asks by).
func ticketsAllowed(ns, room, verb, user string) bool {
	GinkgoHelper()
	return review(&authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: v1alpha1.GroupVersion.Group,
		Resource: "rooms", Subresource: "tickets", Name: room}, user).Status.Allowed
}

// assignmentWindows is a role's status.assignments as "name=Window".
func assignmentWindows(ns, name string) func() []string {
	return func() []string {
		GinkgoHelper()
		r := &v1alpha1.PartnerRole{}
		Expect(admin.Get(ctx, key(ns, name), r)).To(Succeed())
		var out []string
		for _, s := range r.Status.Assignments {
			out = append(out, s.Name+"="+string(s.Window))
		}
		return out
	}
}

// roleEventReasons lists the reasons of the Events on a role.
func roleEventReasons(ns, name string) func() []string {
	return func() []string {
		GinkgoHelper()
		list := &corev1.EventList{}
		Expect(admin.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		var out []string
		for _, e := range list.Items {
			if e.InvolvedObject.Kind == "PartnerRole" && e.InvolvedObject.Name == name {
				out = append(out, e.Reason)
			}
		}
		return out
	}
}

var _ = Describe("just-in-time role windows", Ordered, func() {
	const ns = "role-windows"
	const (
		walt  = "walt@contoso.com"  // holds the windowed assignment only
		probe = "probe@contoso.com" // holds the unwindowed one: the index has seen the role
	)
	var from, until time.Time
	BeforeAll(func() { partnership(ns) })

	It("grants from validFrom to the second before validUntil, decided against the clock", func() {
		from = windowStart(time.Hour)
		until = from.Add(4 * time.Hour)
		role := &v1alpha1.PartnerRole{
			ObjectMeta: metav1.ObjectMeta{Name: "contoso-jit", Namespace: ns},
			Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso", Permissions: []v1alpha1.Permission{v1alpha1.RoomsView},
				Assignments: []v1alpha1.RoleAssignment{
					{Name: "walt", Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: walt}},
						Scope:     v1alpha1.RoomScope{Names: []string{"nyc"}},
						ValidFrom: &metav1.Time{Time: from}, ValidUntil: &metav1.Time{Time: until}},
					{Name: "probe", Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: probe}}},
				}},
		}
		Expect(as(alice).Create(ctx, role)).To(Succeed())
		Eventually(func() bool { return roomAllowed(ns, "nyc", probe) }).Should(BeTrue(), "the index has the role")
		Eventually(assignmentWindows(ns, role.Name)).Should(Equal([]string{"walt=Upcoming", "probe=Active"}))

		// Each decision right after the step, without waiting: the webhook
		// reads the clock, no reconcile has to run first.
		fakeClock.SetTime(from.Add(-time.Second))
		Expect(roomAllowed(ns, "nyc", walt)).To(BeFalse(), "a second before validFrom")
		fakeClock.SetTime(from)
		Expect(roomAllowed(ns, "nyc", walt)).To(BeTrue(), "at validFrom")
		Expect(roomAllowed(ns, "sea", walt)).To(BeFalse(), "a room outside the assignment's scope, inside the window")
		fakeClock.SetTime(until.Add(-time.Second))
		Expect(roomAllowed(ns, "nyc", walt)).To(BeTrue(), "a second before validUntil")
		fakeClock.SetTime(until)
		Expect(roomAllowed(ns, "nyc", walt)).To(BeFalse(), "at validUntil")
		fakeClock.SetTime(until.Add(time.Second))
		Expect(roomAllowed(ns, "nyc", walt)).To(BeFalse(), "a second after validUntil")
		Expect(roomAllowed(ns, "nyc", probe)).To(BeTrue(), "the unwindowed assignment of the same role")
	})

	It("reports the windows in the role's status, with one Event when it opened and one when it closed", func() {
		Eventually(assignmentWindows(ns, "contoso-jit")).Should(Equal([]string{"walt=Expired", "probe=Active"}))
		Eventually(roleEventReasons(ns, "contoso-jit")).Should(And(
			ContainElement(v1alpha1.ReasonAssignmentActive), ContainElement(v1alpha1.ReasonAssignmentExpired)))
		reasons := roleEventReasons(ns, "contoso-jit")()
		count := func(reason string) int {
			n := 0
			for _, r := range reasons {
				if r == reason {
					n++
				}
			}
			return n
		}
		Expect(count(v1alpha1.ReasonAssignmentActive)).To(Equal(1))
		Expect(count(v1alpha1.ReasonAssignmentExpired)).To(Equal(1))
	})

	It("lets a partner's primary admin window an assignment of the built-in role, keeping an unwindowed one", func() {
		role := &v1alpha1.PartnerRole{}
		Expect(admin.Get(ctx, key(ns, "contoso-primary-admins"), role)).To(Succeed())
		patch := client.MergeFrom(role.DeepCopy())
		role.Spec.Assignments[0].ValidUntil = &metav1.Time{Time: windowStart(time.Hour)}
		err := as(alice).Patch(ctx, role, patch)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
		Expect(err.Error()).To(ContainSubstring("spec.assignments"))
		Expect(err.Error()).To(ContainSubstring("without validFrom or validUntil"))

		Expect(admin.Get(ctx, key(ns, "contoso-primary-admins"), role)).To(Succeed())
		patch = client.MergeFrom(role.DeepCopy())
		role.Spec.Assignments = append(role.Spec.Assignments, v1alpha1.RoleAssignment{Name: "standby",
			Members:    []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: walt}},
			ValidUntil: &metav1.Time{Time: windowStart(time.Hour)}})
		Expect(as(alice).Patch(ctx, role, patch)).To(Succeed())
		Eventually(func() bool { return roomAllowed(ns, "sea", walt) }).Should(BeTrue(), "a windowed primary admin, inside the window")
	})
})

var _ = Describe("a just-in-time role through change control", Ordered, func() {
	const ns = "jit-change"
	const name = "contoso-carol-nyc"
	var from, until time.Time
	var request string
	BeforeAll(func() {
		manualPartnership(ns)
		Expect(admin.Create(ctx, ticket(ns, "nyc-display", "nyc"))).To(Succeed())
	})

	It("holds the partner's request for four hours of tickets on room nyc, the window in the preview", func() {
		// Carol asks, the approver approves, within a minute: the window
		// is the four hours from then.
		from = windowStart(time.Minute)
		until = from.Add(4 * time.Hour)
		role := &v1alpha1.PartnerRole{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
				Annotations: map[string]string{v1alpha1.AnnotationChangeReason: "carol fixes the display of nyc today"}},
			Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso",
				Permissions: []v1alpha1.Permission{v1alpha1.TicketsView, v1alpha1.TicketsUpdate},
				Assignments: []v1alpha1.RoleAssignment{{Name: "carol",
					Members:   []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: carol}},
					Scope:     v1alpha1.RoomScope{Names: []string{"nyc"}},
					ValidFrom: &metav1.Time{Time: from}, ValidUntil: &metav1.Time{Time: until}}}},
		}
		request = held(as(alice).Create(ctx, role))
		Expect(apierrors.IsNotFound(admin.Get(ctx, key(ns, name), &v1alpha1.PartnerRole{}))).To(BeTrue())
		Expect(ticketsAllowed(ns, "nyc", "get", carol)).To(BeFalse(), "nothing before the approval")

		Eventually(func() []v1alpha1.FieldChange { return changeRequest(ns, request).Status.Preview }).Should(ContainElement(And(
			HaveField("Path", "/spec/assignments"),
			HaveField("After", And(
				ContainSubstring(`"validFrom":"`+from.UTC().Format(time.RFC3339)+`"`),
				ContainSubstring(`"validUntil":"`+until.UTC().Format(time.RFC3339)+`"`),
				ContainSubstring(`"names":["nyc"]`))))))
	})

	It("applies it once the customer approves, window and all", func() {
		Expect(decide(approver, ns, request, v1alpha1.DecisionApproved, "four hours, nyc only")).To(Succeed())
		Eventually(phaseOf(ns, request)).Should(Equal(v1alpha1.ChangeApplied))
		role := &v1alpha1.PartnerRole{}
		Expect(admin.Get(ctx, key(ns, name), role)).To(Succeed())
		Expect(role.Spec.Assignments).To(HaveLen(1))
		Expect(role.Spec.Assignments[0].ValidFrom.Time).To(BeTemporally("==", from))
		Expect(role.Spec.Assignments[0].ValidUntil.Time).To(BeTemporally("==", until))
		Expect(role.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationChangeRequest, request))
		Eventually(assignmentWindows(ns, name)).Should(Equal([]string{"carol=Upcoming"}))
	})

	It("lets carol work the tickets of nyc inside the window, and nowhere and never else", func() {
		Expect(ticketsAllowed(ns, "nyc", "get", carol)).To(BeFalse(), "approved, but before validFrom")

		// The index is fed by the informers, a moment behind the apply:
		// at validFrom, wait for it once; every later moment is judged at
		// once, the webhook reading the clock.
		fakeClock.SetTime(from)
		Eventually(func() bool { return ticketsAllowed(ns, "nyc", "get", carol) }).Should(BeTrue(), "at validFrom")
		Expect(ticketsAllowed(ns, "nyc", "update", carol)).To(BeTrue(), "tickets.update at validFrom")
		Expect(ticketsAllowed(ns, "sea", "get", carol)).To(BeFalse(), "another room")
		Expect(as(carol).Get(ctx, key(ns, "nyc-display"), &v1alpha1.Ticket{})).To(Succeed())
		Expect(setState(as(carol), ns, "nyc-display", v1alpha1.TicketInProgress)).To(Succeed())
		Eventually(assignmentWindows(ns, name)).Should(Equal([]string{"carol=Active"}))

		fakeClock.SetTime(until.Add(-time.Second))
		Expect(ticketsAllowed(ns, "nyc", "update", carol)).To(BeTrue(), "a second before validUntil")
		fakeClock.SetTime(until)
		Expect(ticketsAllowed(ns, "nyc", "get", carol)).To(BeFalse(), "at validUntil")
		err := as(carol).Get(ctx, key(ns, "nyc-display"), &v1alpha1.Ticket{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want Forbidden, got %v", err)
		Eventually(assignmentWindows(ns, name)).Should(Equal([]string{"carol=Expired"}))
		Eventually(roleEventReasons(ns, name)).Should(ContainElement(v1alpha1.ReasonAssignmentExpired))
		Expect(strings.Join(roleEventReasons(ns, name)(), ",")).To(ContainSubstring(v1alpha1.ReasonAssignmentActive))
	})
})
