package e2e

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// The specs here step the suite's shared clock forward only, by a day and a
// second each, and create their objects relative to fakeClock.Now(): the
// invitations of other specs last 30 days and are not moved past their
// deadlines.
var _ = Describe("a time-bound partnership", func() {
	const day = 24 * time.Hour

	// bounded creates a namespace with a room in scope, an invitation whose
	// relationship lasts one day (autoExtend or not) and its link, accepted
	// by the tenant manager, and waits until the primary admin may get the
	// room. It returns the link's expiresAt.
	bounded := func(ns string, autoExtend bool) time.Time {
		GinkgoHelper()
		Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		Expect(admin.Create(ctx, room(ns, "nyc", "us"))).To(Succeed())
		inv := invitation(ns, "contoso", domain, 30)
		inv.Spec.Relationship = &v1alpha1.Relationship{DurationDays: new(int32(1)), AutoExtend: autoExtend}
		Expect(admin.Create(ctx, inv)).To(Succeed())
		accept(ns, "contoso")
		l := &v1alpha1.PartnerLink{}
		Eventually(func() *metav1.Time {
			Expect(admin.Get(ctx, key(ns, "contoso"), l)).To(Succeed())
			return l.Status.ExpiresAt
		}).ShouldNot(BeNil())
		Expect(l.Status.ExpiresAt.Time).To(BeTemporally("==", l.Status.EstablishedAt.Add(day)))
		Eventually(func() bool { return allowed(ns) }).Should(BeTrue())
		return l.Status.ExpiresAt.Time
	}

	linkOf := func(ns string) *v1alpha1.PartnerLink {
		GinkgoHelper()
		l := &v1alpha1.PartnerLink{}
		Expect(admin.Get(ctx, key(ns, "contoso"), l)).To(Succeed())
		return l
	}

	It("denies the partner from the second of expiresAt on, offboards it and keeps the link Expired", func() {
		const ns = "relationship-ends"
		end := bounded(ns, false)

		fakeClock.SetTime(end.Add(-time.Second))
		Expect(allowed(ns)).To(BeTrue(), "a second before the end")

		// Decided against the clock: the first review at the end is denied,
		// before any reconcile has offboarded anything.
		fakeClock.SetTime(end)
		Expect(allowed(ns)).To(BeFalse(), "at the end")

		Eventually(func() v1alpha1.LinkPhase { return linkOf(ns).Status.Phase }).Should(Equal(v1alpha1.LinkExpired))
		l := linkOf(ns)
		Expect(meta.IsStatusConditionTrue(l.Status.Conditions, v1alpha1.ConditionExpired)).To(BeTrue())
		Expect(meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionExpired).Message).To(ContainSubstring(end.UTC().Format(time.RFC3339)))
		Eventually(func() bool {
			return apierrors.IsNotFound(admin.Get(ctx, key(ns, v1alpha1.PrimaryAdminRoleName("contoso")), &v1alpha1.PartnerRole{}))
		}).Should(BeTrue(), "the built-in role is deleted")
		Eventually(func() map[string]string {
			r := &v1alpha1.Room{}
			Expect(admin.Get(ctx, key(ns, "nyc"), r)).To(Succeed())
			return r.Labels
		}).ShouldNot(HaveKey(v1alpha1.AccessLabel(domain)))

		By("the customer lengthening the relationship does not restore it")
		Expect(retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			inv := &v1alpha1.PartnerInvitation{}
			Expect(admin.Get(ctx, key(ns, "contoso"), inv)).To(Succeed())
			inv.Spec.Relationship = &v1alpha1.Relationship{DurationDays: new(int32(700)), AutoExtend: true}
			return admin.Update(ctx, inv)
		})).To(Succeed())
		Consistently(func() v1alpha1.LinkPhase { return linkOf(ns).Status.Phase }, 2*time.Second).Should(Equal(v1alpha1.LinkExpired))
		Expect(allowed(ns)).To(BeFalse())

		By("a new invitation starts a new relationship next to the expired record")
		Expect(admin.Create(ctx, invitation(ns, "contoso-again", domain, 30))).To(Succeed())
		accept(ns, "contoso-again")
		Eventually(func() bool { return allowed(ns) }).Should(BeTrue())
		Expect(linkOf(ns).Status.Phase).To(Equal(v1alpha1.LinkExpired))
	})

	It("extends an autoExtend partnership at its end, and the partner keeps access without a gap", func() {
		const ns = "relationship-extends"
		end := bounded(ns, true)

		for _, at := range []time.Duration{-time.Second, 0, time.Second} {
			fakeClock.SetTime(end.Add(at))
			Expect(allowed(ns)).To(BeTrue(), "at expiresAt %+v", at)
		}
		Eventually(func() *metav1.Time { return linkOf(ns).Status.ExpiresAt }).Should(
			WithTransform(func(t *metav1.Time) time.Time { return t.Time }, BeTemporally("==", end.Add(v1alpha1.AutoExtendDays*day))))
		l := linkOf(ns)
		Expect(l.Status.Phase).To(Equal(v1alpha1.LinkActive))
		Expect(l.Status.Extensions).To(HaveLen(1))
		Expect(l.Status.Extensions[0].From.Time).To(BeTemporally("==", end))
		Consistently(func() bool { return allowed(ns) }, 2*time.Second).Should(BeTrue())
	})
})

// allowed asks the apiserver whether the primary admin may get room nyc of ns.
func allowed(ns string) bool {
	GinkgoHelper()
	return review(&authorizationv1.ResourceAttributes{
		Namespace: ns, Verb: "get", Group: v1alpha1.GroupVersion.Group, Resource: "rooms", Name: "nyc",
	}, alice).Status.Allowed
}
