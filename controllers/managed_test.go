package controllers_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func ticket(ns, name, roomName string) *v1alpha1.Ticket {
	return &v1alpha1.Ticket{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1alpha1.TicketSpec{Room: roomName, Title: "the display is dark"},
	}
}

func report(ns, name, roomName string) *v1alpha1.RoomReport {
	end := time.Now().Truncate(time.Second)
	return &v1alpha1.RoomReport{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.RoomReportSpec{Room: roomName, AvailabilityPercent: 99, CallQualityScore: 87,
			Period: v1alpha1.ReportPeriod{Start: metav1.NewTime(end.Add(-24 * time.Hour)), End: metav1.NewTime(end)}},
	}
}

// accessOf reads the partner domains whose access label obj carries, any
// value counted, so that a label the controller should remove is seen.
func accessOf[T client.Object](obj T) func() []string {
	return func() []string {
		GinkgoHelper()
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		return accessDomainsOf(obj.GetLabels())
	}
}

// accessDomainsOf returns the domains of the access labels among l, any
// value counted.
func accessDomainsOf(l map[string]string) []string {
	var domains []string
	for k := range l {
		if d, ok := strings.CutPrefix(k, v1alpha1.AccessLabelPrefix); ok {
			domains = append(domains, d)
		}
	}
	return domains
}

func condition(conds []metav1.Condition, kind string) metav1.Condition {
	if c := meta.FindStatusCondition(conds, kind); c != nil {
		return *c
	}
	return metav1.Condition{}
}

var _ = Describe("tickets and reports", func() {
	It("carry the access of their room: into the scope, out of it, for a room created late, and none after offboarding", func() {
		ns := newNamespace()
		create(room(ns, "nyc", map[string]string{"country": "us"}), room(ns, "ber", map[string]string{"country": "de"}))
		l := activeLink(ns, "contoso", "contoso.com")
		nycTicket, berTicket, lateTicket := ticket(ns, "nyc-display", "nyc"), ticket(ns, "ber-display", "ber"), ticket(ns, "sea-display", "sea")
		nycReport := report(ns, "nyc-week", "nyc")
		create(nycTicket, berTicket, lateTicket, nycReport)

		By("a ticket and a report of a room in scope carry its access label and say so")
		Eventually(accessOf(nycTicket)).Should(ConsistOf("contoso.com"))
		Eventually(accessOf(nycReport)).Should(ConsistOf("contoso.com"))
		Eventually(fetch(nycTicket)).Should(HaveField("Status.Partners", Equal([]string{"contoso.com"})))
		ready := condition(nycTicket.Status.Conditions, v1alpha1.ConditionReady)
		Expect(ready.Status).To(Equal(metav1.ConditionTrue))
		Expect(ready.Reason).To(Equal(v1alpha1.ReasonRoomAccessCopied))
		Expect(ready.Message).To(Equal(`reachable, as room "nyc" is, by contoso.com`))
		Expect(ready.ObservedGeneration).To(Equal(nycTicket.Generation))
		Eventually(fetch(nycReport)).Should(HaveField("Status.Partners", Equal([]string{"contoso.com"})))

		By("a ticket of a room out of scope carries none; one of a missing room says so in a condition and an event")
		Eventually(fetch(berTicket)).Should(HaveField("Status.Conditions", ContainElement(HaveField("Reason", v1alpha1.ReasonRoomAccessCopied))))
		Expect(accessDomainsOf(berTicket.Labels)).To(BeEmpty())
		Eventually(fetch(lateTicket)).Should(HaveField("Status.Conditions", ContainElement(And(
			HaveField("Reason", v1alpha1.ReasonRoomNotFound), HaveField("Status", metav1.ConditionFalse),
			HaveField("Message", ContainSubstring(`room "sea" does not exist`))))))
		Expect(accessDomainsOf(lateTicket.Labels)).To(BeEmpty())
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement(v1alpha1.ReasonRoomNotFound))

		By("the room created later brings its access to the ticket that waited for it")
		create(room(ns, "sea", map[string]string{"country": "us"}))
		Eventually(accessOf(lateTicket)).Should(ConsistOf("contoso.com"))

		By("an access label written by anyone else is taken off: the controller is its one writer")
		forged := &v1alpha1.Ticket{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(berTicket), forged)).To(Succeed())
		patch := client.MergeFrom(forged.DeepCopy())
		forged.Labels = map[string]string{accessLabel("fabrikam.com"): "true"}
		Expect(k8sClient.Patch(ctx, forged, patch)).To(Succeed())
		Eventually(accessOf(berTicket)).Should(BeEmpty())

		By("the room leaving the scope takes its tickets and reports out at once")
		nyc := &v1alpha1.Room{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "nyc"}, nyc)).To(Succeed())
		roomPatch := client.MergeFrom(nyc.DeepCopy())
		nyc.Labels["country"] = "ca"
		Expect(k8sClient.Patch(ctx, nyc, roomPatch)).To(Succeed())
		Eventually(accessOf(nycTicket)).Should(BeEmpty())
		Eventually(accessOf(nycReport)).Should(BeEmpty())
		Eventually(fetch(nycTicket)).Should(HaveField("Status.Partners", BeEmpty()))

		By("after offboarding, no ticket or report carries an access label")
		Expect(k8sClient.Delete(ctx, l)).To(Succeed())
		Eventually(func() []string {
			var labelled []string
			tickets := &v1alpha1.TicketList{}
			Expect(k8sClient.List(ctx, tickets, client.InNamespace(ns))).To(Succeed())
			for _, t := range tickets.Items {
				if len(accessDomainsOf(t.Labels)) > 0 {
					labelled = append(labelled, "ticket "+t.Name)
				}
			}
			reports := &v1alpha1.RoomReportList{}
			Expect(k8sClient.List(ctx, reports, client.InNamespace(ns))).To(Succeed())
			for _, r := range reports.Items {
				if len(accessDomainsOf(r.Labels)) > 0 {
					labelled = append(labelled, "report "+r.Name)
				}
			}
			return labelled
		}).Should(BeEmpty())
	})
})

var _ = Describe("groups and rings", func() {
	It("count the rooms that name them, as rooms join, move and go", func() {
		ns := newNamespace()
		group := &v1alpha1.RoomGroup{ObjectMeta: metav1.ObjectMeta{Name: "boardrooms", Namespace: ns}, Spec: v1alpha1.RoomGroupSpec{DisplayName: "Boardrooms"}}
		ring := &v1alpha1.UpdateRing{ObjectMeta: metav1.ObjectMeta{Name: "early", Namespace: ns}, Spec: v1alpha1.UpdateRingSpec{DisplayName: "Early"}}
		create(group, ring)
		Eventually(fetch(group)).Should(HaveField("Status.Conditions", ContainElement(HaveField("Reason", v1alpha1.ReasonRoomsCounted))))
		Expect(group.Status.Rooms).To(BeEquivalentTo(0))

		a := room(ns, "a", nil)
		a.Spec.Groups, a.Spec.UpdateRing = []string{"boardrooms"}, "early"
		b := room(ns, "b", nil)
		b.Spec.Groups = []string{"boardrooms"}
		create(a, b)
		Eventually(fetch(group)).Should(HaveField("Status.Rooms", BeEquivalentTo(2)))
		Eventually(fetch(ring)).Should(HaveField("Status.Rooms", BeEquivalentTo(1)))
		Expect(condition(ring.Status.Conditions, v1alpha1.ConditionReady).Message).To(Equal("1 room(s) name it"))

		By("a room moving into the ring counts there")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), b)).To(Succeed())
		patch := client.MergeFrom(b.DeepCopy())
		b.Spec.UpdateRing = "early"
		Expect(k8sClient.Patch(ctx, b, patch)).To(Succeed())
		Eventually(fetch(ring)).Should(HaveField("Status.Rooms", BeEquivalentTo(2)))

		By("a deleted room counts no more")
		Expect(k8sClient.Delete(ctx, a)).To(Succeed())
		Eventually(fetch(group)).Should(HaveField("Status.Rooms", BeEquivalentTo(1)))
		Eventually(fetch(ring)).Should(HaveField("Status.Rooms", BeEquivalentTo(1)))
		Expect(ring.Status.ObservedGeneration).To(Equal(ring.Generation))
	})

	It("are reported on a room that names one that does not exist, until it does", func() {
		ns := newNamespace()
		r := room(ns, "nyc", nil)
		r.Spec.Groups, r.Spec.UpdateRing = []string{"boardrooms", "lobby"}, "early"
		create(r)
		resolved := func() metav1.Condition {
			return condition(fetch(r)().Status.Conditions, v1alpha1.ConditionReferencesResolved)
		}
		Eventually(resolved).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonDanglingReferences),
			HaveField("Message", Equal("the room names RoomGroup boardrooms, lobby and UpdateRing early, which do not exist in this namespace"))))

		create(&v1alpha1.RoomGroup{ObjectMeta: metav1.ObjectMeta{Name: "boardrooms", Namespace: ns}, Spec: v1alpha1.RoomGroupSpec{DisplayName: "Boardrooms"}},
			&v1alpha1.UpdateRing{ObjectMeta: metav1.ObjectMeta{Name: "early", Namespace: ns}, Spec: v1alpha1.UpdateRingSpec{DisplayName: "Early"}})
		Eventually(resolved).Should(HaveField("Message", Equal("the room names RoomGroup lobby, which do not exist in this namespace")))

		create(&v1alpha1.RoomGroup{ObjectMeta: metav1.ObjectMeta{Name: "lobby", Namespace: ns}, Spec: v1alpha1.RoomGroupSpec{DisplayName: "Lobby"}})
		Eventually(resolved).Should(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonReferencesResolved)))

		By("deleting a group it names makes the reference dangle again")
		Expect(k8sClient.Delete(ctx, &v1alpha1.RoomGroup{ObjectMeta: metav1.ObjectMeta{Name: "lobby", Namespace: ns}})).To(Succeed())
		Eventually(resolved).Should(HaveField("Reason", v1alpha1.ReasonDanglingReferences))
		Expect(meta.IsStatusConditionTrue(r.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue(), "a dangling reference does not make the room unready")
	})
})
