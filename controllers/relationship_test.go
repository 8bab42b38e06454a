package controllers_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
)

const day = 24 * time.Hour

// boundedLink creates an invitation whose relationship lasts days (and
// autoExtends), its link and a room in its scope, and waits for the link to
// be Active and the room to carry the partner's label.
func boundedLink(ns, name, domain string, days int32, autoExtend bool) (*v1alpha1.PartnerInvitation, *v1alpha1.PartnerLink) {
	GinkgoHelper()
	inv := invitation(ns, name, domain, 30)
	inv.Spec.Relationship = &v1alpha1.Relationship{DurationDays: &days, AutoExtend: autoExtend}
	create(inv)
	if !roomExists(ns, "nyc") {
		create(room(ns, "nyc", map[string]string{"country": "us"}))
	}
	l := admitted(link(ns, name, domain), inv)
	create(l)
	Eventually(fetch(l)).Should(WithTransform(linkPhase, Equal(v1alpha1.LinkActive)))
	Eventually(roomPartners(ns, "nyc")).Should(ContainElement(domain))
	return inv, l
}

func roomExists(ns, name string) bool {
	return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &v1alpha1.Room{}) == nil
}

func expiresAt(l *v1alpha1.PartnerLink) time.Time {
	if l.Status.ExpiresAt == nil {
		return time.Time{}
	}
	return l.Status.ExpiresAt.Time
}

func expiringReason(l *v1alpha1.PartnerLink) string {
	if c := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionExpiring); c != nil && c.Status == metav1.ConditionTrue {
		return c.Reason
	}
	return ""
}

// noticeLines counts the audit lines of the link's notice that opens with
// says (one per raised notice: the audit log, unlike Events, has no series
// that would fold a second one into the first).
func noticeLines(ns, name, says string) func() int {
	return func() int {
		n := 0
		for _, l := range auditLines() {
			if l.TenantID == ns && l.ObjectName == name && strings.HasPrefix(l.Detail, says) {
				n++
			}
		}
		return n
	}
}

func editRelationship(inv *v1alpha1.PartnerInvitation, edit func(*v1alpha1.PartnerInvitation)) {
	GinkgoHelper()
	Eventually(func() error {
		current := &v1alpha1.PartnerInvitation{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(inv), current); err != nil {
			return err
		}
		edit(current)
		return k8sClient.Update(ctx, current)
	}).Should(Succeed())
}

func childrenOf(ns, linkName string) func() int {
	return func() int {
		roles := &v1alpha1.PartnerRoleList{}
		assignments := &v1alpha1.RoomAssignmentList{}
		Expect(k8sClient.List(ctx, roles, client.InNamespace(ns))).To(Succeed())
		Expect(k8sClient.List(ctx, assignments, client.InNamespace(ns))).To(Succeed())
		n := 0
		for _, r := range roles.Items {
			if r.Spec.PartnerLink == linkName {
				n++
			}
		}
		for _, a := range assignments.Items {
			if a.Spec.PartnerLink == linkName {
				n++
			}
		}
		return n
	}
}

var _ = Describe("Relationship duration", func() {
	It("sets expiresAt at activation and follows the customer's edits of durationDays", func() {
		ns := newNamespace()
		inv, l := boundedLink(ns, "contoso", "contoso.com", 100, false)
		established := l.Status.EstablishedAt.Time
		Expect(expiresAt(l)).To(BeTemporally("==", established.Add(100*day)))
		Expect(expiringReason(l)).To(BeEmpty(), "100 days left: no notice")

		By("shortening it to 10 days: the 30-day notice is due at once")
		editRelationship(inv, func(i *v1alpha1.PartnerInvitation) { i.Spec.Relationship.DurationDays = new(int32(10)) })
		Eventually(fetch(l)).Should(WithTransform(expiresAt, BeTemporally("==", established.Add(10*day))))
		Eventually(fetch(l)).Should(WithTransform(expiringReason, Equal(v1alpha1.ReasonExpiresIn30Days)))
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement(v1alpha1.ReasonExpiresIn30Days))

		By("removing durationDays: no end, no notice")
		editRelationship(inv, func(i *v1alpha1.PartnerInvitation) { i.Spec.Relationship = nil })
		Eventually(fetch(l)).Should(WithTransform(expiresAt, BeZero()))
		Expect(meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionExpiring)).To(BeNil())
		Expect(l.Status.Phase).To(Equal(v1alpha1.LinkActive))
	})

	It("raises the 30, 7 and 1 day notices once each, also across an operator restart", func() {
		ns := newNamespace()
		_, l := boundedLink(ns, "contoso", "contoso.com", 40, false)
		end := expiresAt(l)
		Expect(expiringReason(l)).To(BeEmpty())

		for _, stage := range []struct {
			before time.Duration
			reason string
			says   string
		}{
			{30 * day, v1alpha1.ReasonExpiresIn30Days, "30 days or less left"},
			{7 * day, v1alpha1.ReasonExpiresIn7Days, "7 days or less left"},
		} {
			fakeClock.SetTime(end.Add(-stage.before - time.Second))
			Consistently(fetch(l)).ShouldNot(WithTransform(expiringReason, Equal(stage.reason)), "a second early")
			fakeClock.SetTime(end.Add(-stage.before))
			Eventually(fetch(l)).Should(WithTransform(expiringReason, Equal(stage.reason)))
			Eventually(noticeLines(ns, l.Name, stage.says)).Should(Equal(1))
			Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement(stage.reason))
		}

		By("restarting the operator with the clock past the 7-day notice already raised")
		fakeClock.SetTime(end.Add(-7*day + time.Hour))
		restartManager()
		// The new operator reconciles every link when its cache syncs: the
		// rooms' status shows it is running before the Consistently.
		create(room(ns, "seattle", map[string]string{"country": "us"}))
		Eventually(roomPartners(ns, "seattle")).Should(ContainElement("contoso.com"))
		Consistently(noticeLines(ns, l.Name, "7 days or less left"), 2*time.Second).Should(Equal(1))
		Expect(noticeLines(ns, l.Name, "30 days or less left")()).To(Equal(1))

		By("the 1-day notice, once, from the new operator's deadline")
		fakeClock.SetTime(end.Add(-day))
		Eventually(fetch(l)).Should(WithTransform(expiringReason, Equal(v1alpha1.ReasonExpiresIn1Day)))
		Eventually(noticeLines(ns, l.Name, "1 day or less left")).Should(Equal(1))
		Consistently(noticeLines(ns, l.Name, "1 day or less left")).Should(Equal(1))
		Expect(eventReasons(ns)).To(ContainElement(v1alpha1.ReasonExpiresIn1Day))
	})

	It("expires the link at expiresAt, offboards the partner, keeps the link and never reactivates it", func() {
		ns := newNamespace()
		inv, l := boundedLink(ns, "contoso", "contoso.com", 1, false)
		end := expiresAt(l)

		fakeClock.SetTime(end.Add(-time.Second))
		Consistently(fetch(l)).Should(WithTransform(linkPhase, Equal(v1alpha1.LinkActive)))

		fakeClock.SetTime(end)
		Eventually(fetch(l)).Should(WithTransform(linkPhase, Equal(v1alpha1.LinkExpired)))
		expired := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionExpired)
		Expect(expired).NotTo(BeNil())
		Expect(expired.Status).To(Equal(metav1.ConditionTrue))
		Expect(expired.Reason).To(Equal(v1alpha1.ReasonRelationshipExpired))
		Expect(expired.Message).To(ContainSubstring(end.UTC().Format(time.RFC3339)))
		Expect(readyReason(l.Status.Conditions)).To(Equal(v1alpha1.ReasonRelationshipExpired))
		Expect(meta.IsStatusConditionFalse(l.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())

		By("offboarded as a termination is: children deleted, labels removed; the link stays")
		Eventually(childrenOf(ns, l.Name)).Should(BeZero())
		Eventually(roomPartners(ns, "nyc")).Should(BeEmpty())
		Expect(fetch(l)().DeletionTimestamp).To(BeNil())
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement(v1alpha1.ReasonRelationshipExpired))
		Eventually(auditLines).Should(ContainElement(And(
			HaveField("ObjectName", l.Name), HaveField("TenantID", ns), HaveField("Operation", audit.OperationDelete),
			HaveField("UserID", audit.OperatorUser), HaveField("Detail", ContainSubstring("stays as an Expired record")))))

		By("the customer lengthening it, turning on autoExtend and editing the link reactivate nothing")
		editRelationship(inv, func(i *v1alpha1.PartnerInvitation) {
			i.Spec.Relationship = &v1alpha1.Relationship{DurationDays: new(int32(700)), AutoExtend: true}
		})
		Eventually(func() error {
			current := fetch(l)()
			current.Spec.PrimaryAdmins = append(current.Spec.PrimaryAdmins, v1alpha1.Subject{Kind: v1alpha1.UserSubject, Name: "bob@contoso.com"})
			return k8sClient.Update(ctx, current)
		}).Should(Succeed())
		Consistently(fetch(l)).Should(And(
			WithTransform(linkPhase, Equal(v1alpha1.LinkExpired)),
			WithTransform(expiresAt, BeTemporally("==", end))))
		Expect(childrenOf(ns, l.Name)()).To(BeZero())
		Expect(partnersOf(ns, "nyc")).To(BeEmpty())

		By("a new invitation starts a new relationship of the same partner next to the record")
		_, again := boundedLink(ns, "contoso-2", "contoso.com", 30, false)
		Consistently(roomPartners(ns, "nyc")).Should(ContainElement("contoso.com"))
		Expect(fetch(l)().Status.Phase).To(Equal(v1alpha1.LinkExpired))
		Expect(fetch(again)().Status.Phase).To(Equal(v1alpha1.LinkActive))

		By("deleting the expired link works as today")
		Expect(k8sClient.Delete(ctx, l)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(l), &v1alpha1.PartnerLink{}))
		}).Should(BeTrue())
	})

	It("extends an autoExtend relationship at its end by 180 days without expiring it", func() {
		ns := newNamespace()
		_, l := boundedLink(ns, "contoso", "contoso.com", 1, true)
		end := expiresAt(l)

		fakeClock.SetTime(end)
		Eventually(fetch(l)).Should(WithTransform(expiresAt, BeTemporally("==", end.Add(180*day))))
		Expect(l.Status.Phase).To(Equal(v1alpha1.LinkActive))
		Expect(l.Status.ExtensionCount).To(Equal(int32(1)))
		Expect(l.Status.Extensions).To(HaveLen(1))
		Expect(l.Status.Extensions[0].From.Time).To(BeTemporally("==", end))
		Expect(l.Status.Extensions[0].To.Time).To(BeTemporally("==", end.Add(180*day)))
		Expect(l.Status.Extensions[0].At.Time).To(BeTemporally("~", end, time.Second))
		Expect(meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionExpired)).To(BeNil())
		Expect(expiringReason(l)).To(BeEmpty(), "180 days left")

		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement(v1alpha1.ReasonExtended))
		Eventually(auditLines).Should(ContainElement(And(
			HaveField("ObjectName", l.Name), HaveField("TenantID", ns), HaveField("UserID", audit.OperatorUser),
			HaveField("Detail", ContainSubstring("extended by 180 days")))))
		Consistently(fetch(l)).Should(WithTransform(linkPhase, Equal(v1alpha1.LinkActive)))
		Expect(eventReasons(ns)).NotTo(ContainElement(v1alpha1.ReasonRelationshipExpired))
		Expect(childrenOf(ns, l.Name)()).To(Equal(2))
		Expect(partnersOf(ns, "nyc")).To(ContainElement("contoso.com"))
	})
})
