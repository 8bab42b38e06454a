package e2e

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// These specs walk the managed resources of the permission matrix —
// Tickets, RoomGroups, UpdateRings and RoomReports — through the real
// apiserver as impersonated partner users: the authorization webhook
// decides by the index, the admission webhooks check what it cannot see
// (a ticket's room on create), and the operator copies each room's access
// labels onto its tickets and reports.

func ticket(ns, name, room string) *v1alpha1.Ticket {
	return &v1alpha1.Ticket{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1alpha1.TicketSpec{Room: room, Title: "the display stays dark", Severity: v1alpha1.SeverityHigh},
	}
}

func report(ns, name, room string) *v1alpha1.RoomReport {
	start := metav1.NewTime(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC))
	return &v1alpha1.RoomReport{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.RoomReportSpec{Room: room, AvailabilityPercent: 99, CallQualityScore: 87, Meetings: 12,
			Period: v1alpha1.ReportPeriod{Start: start, End: metav1.NewTime(start.Add(24 * time.Hour))}},
	}
}

// names lists the names of a list's items.
func names[T client.Object](items []T) []string {
	out := []string{}
	for _, item := range items {
		out = append(out, item.GetName())
	}
	return out
}

// ticketNames lists the tickets c sees in ns with opts.
func ticketNames(c client.Client, ns string, opts ...client.ListOption) ([]string, error) {
	list := &v1alpha1.TicketList{}
	if err := c.List(ctx, list, append(opts, client.InNamespace(ns))...); err != nil {
		return nil, err
	}
	return names(ptrs(list.Items)), nil
}

// accessLabelled lists the tickets and reports of ns that carry the
// partner's access label, as "Kind/name".
func accessLabelled(ns string) []string {
	GinkgoHelper()
	out := []string{}
	tickets := &v1alpha1.TicketList{}
	Expect(admin.List(ctx, tickets, client.InNamespace(ns), client.HasLabels{v1alpha1.AccessLabel(domain)})).To(Succeed())
	for _, t := range tickets.Items {
		out = append(out, "Ticket/"+t.Name)
	}
	reports := &v1alpha1.RoomReportList{}
	Expect(admin.List(ctx, reports, client.InNamespace(ns), client.HasLabels{v1alpha1.AccessLabel(domain)})).To(Succeed())
	for _, r := range reports.Items {
		out = append(out, "RoomReport/"+r.Name)
	}
	return out
}

// setState moves a ticket to state as c, by a merge patch.
func setState(c client.Client, ns, name string, state v1alpha1.TicketState) error {
	t := &v1alpha1.Ticket{}
	Expect(admin.Get(ctx, key(ns, name), t)).To(Succeed())
	patch := client.MergeFrom(t.DeepCopy())
	t.Spec.State = state
	return c.Patch(ctx, t, patch)
}

// deferRing sets a ring's deferral days as c, by a merge patch.
func deferRing(c client.Client, ns, name string, days int32) error {
	r := &v1alpha1.UpdateRing{}
	Expect(admin.Get(ctx, key(ns, name), r)).To(Succeed())
	patch := client.MergeFrom(r.DeepCopy())
	r.Spec.DeferralDays = days
	return c.Patch(ctx, r, patch)
}

var _ = Describe("the whole permission matrix through the apiserver", Ordered, func() {
	const ns = "matrix"
	dave := "dave@" + domain // the narrowed help desk
	helpdesk := func() client.Client { return as(dave) }

	BeforeAll(func() {
		Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		// The partner's scope is the US rooms: nyc and sea. ber is not.
		for _, r := range []*v1alpha1.Room{room(ns, "nyc", "us"), room(ns, "sea", "us"), room(ns, "ber", "de")} {
			Expect(admin.Create(ctx, r)).To(Succeed())
		}
		Expect(admin.Create(ctx, invitation(ns, "contoso", domain, 30))).To(Succeed())
		accept(ns, "contoso")
		Eventually(func() []string { return labelledRooms(ns) }).Should(ConsistOf("nyc", "sea"))

		// The primary admin narrows a help desk role to New York.
		Eventually(func() error {
			return as(alice).Create(ctx, &v1alpha1.PartnerRole{
				ObjectMeta: metav1.ObjectMeta{Name: "contoso-helpdesk-nyc", Namespace: ns},
				Spec: v1alpha1.PartnerRoleSpec{
					PartnerLink: "contoso",
					Permissions: []v1alpha1.Permission{v1alpha1.TicketsCreate, v1alpha1.TicketsView, v1alpha1.TicketsUpdate},
					Assignments: []v1alpha1.RoleAssignment{{Name: "new-york",
						Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: dave}},
						Scope:   v1alpha1.RoomScope{Names: []string{"nyc"}}}},
				},
			})
		}).Should(Succeed())

		// The customer's own tickets, reports, groups and rings.
		for _, t := range []*v1alpha1.Ticket{ticket(ns, "sea-projector", "sea"), ticket(ns, "ber-camera", "ber")} {
			Expect(admin.Create(ctx, t)).To(Succeed())
		}
		for _, r := range []*v1alpha1.RoomReport{report(ns, "nyc-2026-11-30", "nyc"), report(ns, "ber-2026-11-30", "ber")} {
			Expect(admin.Create(ctx, r)).To(Succeed())
		}
		Expect(admin.Create(ctx, &v1alpha1.RoomGroup{ObjectMeta: metav1.ObjectMeta{Name: "boardrooms", Namespace: ns},
			Spec: v1alpha1.RoomGroupSpec{DisplayName: "Boardrooms"}})).To(Succeed())
		for _, ring := range []string{"us-early", "worldwide"} {
			Expect(admin.Create(ctx, &v1alpha1.UpdateRing{ObjectMeta: metav1.ObjectMeta{Name: ring, Namespace: ns},
				Spec: v1alpha1.UpdateRingSpec{DisplayName: ring}})).To(Succeed())
		}
		// us-early holds only rooms of the partner's scope; worldwide one
		// outside it too.
		for roomName, ring := range map[string]string{"nyc": "us-early", "sea": "us-early", "ber": "worldwide"} {
			r := &v1alpha1.Room{}
			Expect(admin.Get(ctx, key(ns, roomName), r)).To(Succeed())
			patch := client.MergeFrom(r.DeepCopy())
			r.Spec.UpdateRing, r.Spec.Groups = ring, []string{"boardrooms"}
			Expect(admin.Patch(ctx, r, patch)).To(Succeed())
		}
	})

	It("lets a help desk narrowed to one room open a ticket only for that room", func() {
		Eventually(func() error { return helpdesk().Create(ctx, ticket(ns, "nyc-display", "nyc")) }).Should(Succeed())
		created := &v1alpha1.Ticket{}
		Expect(admin.Get(ctx, key(ns, "nyc-display"), created)).To(Succeed())
		Expect(created.Labels).To(HaveKeyWithValue(v1alpha1.LabelRoom, "nyc"), "the admission webhook labels a ticket with its room")
		Expect(created.Spec.State).To(Equal(v1alpha1.TicketOpen), "a new ticket is Open")

		for _, other := range []string{"sea", "ber"} {
			err := helpdesk().Create(ctx, ticket(ns, other+"-by-the-help-desk", other))
			Expect(err).To(HaveOccurred(), "a ticket for %s", other)
			Expect(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			Expect(err.Error()).To(ContainSubstring("spec.room"))
			Expect(apierrors.IsNotFound(admin.Get(ctx, key(ns, other+"-by-the-help-desk"), &v1alpha1.Ticket{}))).To(BeTrue(), "nothing stored")
		}
	})

	It("lets it read and update only those tickets, list exactly them, and delete none", func() {
		Expect(helpdesk().Get(ctx, key(ns, "nyc-display"), &v1alpha1.Ticket{})).To(Succeed())
		Expect(setState(helpdesk(), ns, "nyc-display", v1alpha1.TicketInProgress)).To(Succeed())
		got := &v1alpha1.Ticket{}
		Expect(admin.Get(ctx, key(ns, "nyc-display"), got)).To(Succeed())
		Expect(got.Spec.State).To(Equal(v1alpha1.TicketInProgress))

		for _, other := range []string{"sea-projector", "ber-camera", "no-such-ticket"} {
			expectForbidden(helpdesk().Get(ctx, key(ns, other), &v1alpha1.Ticket{}), "")
		}
		expectForbidden(setState(helpdesk(), ns, "sea-projector", v1alpha1.TicketClosed), "")

		Expect(ticketNames(helpdesk(), ns, client.MatchingLabels{v1alpha1.LabelRoom: "nyc"})).To(ConsistOf("nyc-display"))
		_, err := ticketNames(helpdesk(), ns, client.MatchingLabels{v1alpha1.LabelRoom: "sea"})
		expectForbidden(err, "")
		_, err = ticketNames(helpdesk(), ns, client.HasLabels{v1alpha1.AccessLabel(domain)})
		// Its role covers only New York: the access label selects more.
		expectForbidden(err, "")
		_, err = ticketNames(helpdesk(), ns)
		expectForbidden(err, "")

		expectForbidden(helpdesk().Delete(ctx, ticket(ns, "nyc-display", "nyc")), "")
		expectForbidden(as(alice).Delete(ctx, ticket(ns, "nyc-display", "nyc")), "")
		Expect(admin.Get(ctx, key(ns, "nyc-display"), &v1alpha1.Ticket{})).To(Succeed(), "the ticket is still there")
	})

	It("lets the primary admin list the tickets of its whole scope by the access label", func() {
		Eventually(func() ([]string, error) {
			return ticketNames(as(alice), ns, client.HasLabels{v1alpha1.AccessLabel(domain)})
		}).Should(ConsistOf("nyc-display", "sea-projector"))
	})

	It("lets the primary admin read groups, rings and the reports of its rooms", func() {
		Expect(as(alice).Get(ctx, key(ns, "boardrooms"), &v1alpha1.RoomGroup{})).To(Succeed())
		Expect(as(alice).List(ctx, &v1alpha1.RoomGroupList{}, client.InNamespace(ns))).To(Succeed())
		rings := &v1alpha1.UpdateRingList{}
		Expect(as(alice).List(ctx, rings, client.InNamespace(ns))).To(Succeed())
		Expect(rings.Items).To(HaveLen(2))
		Expect(as(alice).Get(ctx, key(ns, "nyc-2026-11-30"), &v1alpha1.RoomReport{})).To(Succeed())
		expectForbidden(as(alice).Get(ctx, key(ns, "ber-2026-11-30"), &v1alpha1.RoomReport{}), "")
		Eventually(func() []string {
			reports := &v1alpha1.RoomReportList{}
			Expect(as(alice).List(ctx, reports, client.InNamespace(ns), client.HasLabels{v1alpha1.AccessLabel(domain)})).To(Succeed())
			return names(ptrs(reports.Items))
		}).Should(ConsistOf("nyc-2026-11-30"))
		// The help desk holds no reports.view.
		expectForbidden(helpdesk().Get(ctx, key(ns, "nyc-2026-11-30"), &v1alpha1.RoomReport{}), "reports.view")
	})

	It("lets the primary admin modify a ring whose rooms are all in scope, and no other ring or group", func() {
		Eventually(func() error { return deferRing(as(alice), ns, "us-early", 7) }).Should(Succeed())
		expectForbidden(deferRing(as(alice), ns, "worldwide", 7), "")
		ring := &v1alpha1.UpdateRing{}
		Expect(admin.Get(ctx, key(ns, "worldwide"), ring)).To(Succeed())
		Expect(ring.Spec.DeferralDays).To(BeZero(), "the refused write changed nothing")

		group := &v1alpha1.RoomGroup{}
		Expect(admin.Get(ctx, key(ns, "boardrooms"), group)).To(Succeed())
		patch := client.MergeFrom(group.DeepCopy())
		group.Spec.DisplayName = "renamed by the partner"
		expectForbidden(as(alice).Patch(ctx, group, patch), "groups.modify")
		expectForbidden(as(alice).Create(ctx, &v1alpha1.RoomGroup{ObjectMeta: metav1.ObjectMeta{Name: "partner-group", Namespace: ns},
			Spec: v1alpha1.RoomGroupSpec{DisplayName: "by the partner"}}), "groups.create")
		expectForbidden(as(alice).Delete(ctx, ring), "")
		expectForbidden(as(alice).Create(ctx, &v1alpha1.UpdateRing{ObjectMeta: metav1.ObjectMeta{Name: "partner-ring", Namespace: ns},
			Spec: v1alpha1.UpdateRingSpec{DisplayName: "by the partner"}}), "")
	})

	It("takes a ticket out of reach once its room leaves the scope", func() {
		sea := &v1alpha1.Room{}
		Expect(admin.Get(ctx, key(ns, "sea"), sea)).To(Succeed())
		patch := client.MergeFrom(sea.DeepCopy())
		sea.Labels["country"] = "ca"
		Expect(admin.Patch(ctx, sea, patch)).To(Succeed())
		Eventually(func() error { return as(alice).Get(ctx, key(ns, "sea-projector"), &v1alpha1.Ticket{}) }).Should(
			WithTransform(apierrors.IsForbidden, BeTrue()))
		Eventually(func() []string { return accessLabelled(ns) }).ShouldNot(ContainElement("Ticket/sea-projector"))
		// The ring sea is in now holds a room outside the scope.
		Eventually(func() error { return deferRing(as(alice), ns, "us-early", 3) }).Should(WithTransform(apierrors.IsForbidden, BeTrue()))
	})

	It("reaches no ticket, report, group or ring after offboarding, and leaves no access label", func() {
		Expect(accessLabelled(ns)).To(ContainElements("Ticket/nyc-display", "RoomReport/nyc-2026-11-30"))
		l := &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Name: "contoso", Namespace: ns}}
		Expect(admin.Delete(ctx, l)).To(Succeed())
		Eventually(gone(l), time.Minute).Should(BeTrue())
		// The finalizer let the link go only once no label was left.
		Expect(accessLabelled(ns)).To(BeEmpty())

		for _, c := range []client.Client{as(alice), helpdesk()} {
			expectForbidden(c.Get(ctx, key(ns, "nyc-display"), &v1alpha1.Ticket{}), "")
			expectForbidden(c.Get(ctx, key(ns, "nyc-2026-11-30"), &v1alpha1.RoomReport{}), "")
			expectForbidden(c.Get(ctx, key(ns, "boardrooms"), &v1alpha1.RoomGroup{}), "")
			expectForbidden(c.Get(ctx, key(ns, "us-early"), &v1alpha1.UpdateRing{}), "")
			_, err := ticketNames(c, ns, client.MatchingLabels{v1alpha1.LabelRoom: "nyc"})
			expectForbidden(err, "")
		}
		Expect(admin.Get(ctx, key(ns, "nyc-display"), &v1alpha1.Ticket{})).To(Succeed(), "offboarding keeps the customer's tickets")
	})
})

// ptrs returns pointers to the elements of a slice, for names.
func ptrs[T any](items []T) []*T {
	out := make([]*T, 0, len(items))
	for i := range items {
		out = append(out, &items[i])
	}
	return out
}
