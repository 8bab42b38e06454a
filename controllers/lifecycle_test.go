package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/controllers"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/deadline"
	"github.com/roompro/partner-operator/internal/lifecycle"
)

var ctx = context.Background()

func init() {
	SetDefaultEventuallyTimeout(15 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	SetDefaultConsistentlyDuration(time.Second)
}

const tenantManager = "tm@contoso.com"

func invitation(ns, name, domain string, days int32) *v1alpha1.PartnerInvitation {
	return &v1alpha1.PartnerInvitation{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.PartnerInvitationSpec{
			PartnerDomain: v1alpha1.Domain(domain), ExpiryDays: days, TermsAccepted: true,
			Rooms: v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"country": "us"}}},
		},
	}
}

func link(ns, name, domain string) *v1alpha1.PartnerLink {
	return &v1alpha1.PartnerLink{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Annotations: map[string]string{v1alpha1.AnnotationRequestedBy: tenantManager}},
		Spec: v1alpha1.PartnerLinkSpec{
			Invitation: name, PartnerDomain: v1alpha1.Domain(domain),
			PrimaryAdmins: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "alice@" + domain}},
		},
	}
}

func room(ns, name string, roomLabels map[string]string) *v1alpha1.Room {
	return &v1alpha1.Room{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: roomLabels},
		Spec:       v1alpha1.RoomSpec{DisplayName: name},
	}
}

func create(objs ...client.Object) {
	GinkgoHelper()
	for _, o := range objs {
		Expect(k8sClient.Create(ctx, o)).To(Succeed())
	}
}

// fetch returns a function that reads obj afresh, for Eventually.
func fetch[T client.Object](obj T) func() T {
	return func() T {
		GinkgoHelper()
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		return obj
	}
}

func linkPhase(l *v1alpha1.PartnerLink) v1alpha1.LinkPhase            { return l.Status.Phase }
func invPhase(i *v1alpha1.PartnerInvitation) v1alpha1.InvitationPhase { return i.Status.Phase }

func readyReason(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

func accessLabel(domain string) string { return v1alpha1.AccessLabel(domain) }

// partnersOf reads which partner labels the room carries.
func partnersOf(ns, name string) []string {
	GinkgoHelper()
	r := &v1alpha1.Room{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, r)).To(Succeed())
	return accessDomainsOf(r.Labels)
}

func roomPartners(ns, name string) func() []string {
	return func() []string { return partnersOf(ns, name) }
}

// admitted records on l the invitation it is created for, as the link's
// mutating webhook does (this suite runs no webhooks).
func admitted(l *v1alpha1.PartnerLink, inv *v1alpha1.PartnerInvitation) *v1alpha1.PartnerLink {
	l.Annotations[v1alpha1.AnnotationInvitationUID] = string(inv.UID)
	return l
}

// activeLink creates an invitation and its link, and waits for the link to be Active.
func activeLink(ns, name, domain string) *v1alpha1.PartnerLink {
	GinkgoHelper()
	inv := invitation(ns, name, domain, 30)
	create(inv)
	l := admitted(link(ns, name, domain), inv)
	create(l)
	Eventually(fetch(l)).Should(WithTransform(linkPhase, Equal(v1alpha1.LinkActive)))
	return l
}

func auditLines() []audit.Line {
	var lines []audit.Line
	for s := range strings.SplitSeq(strings.TrimSpace(auditLog.String()), "\n") {
		var l audit.Line
		if s != "" && json.Unmarshal([]byte(s), &l) == nil {
			lines = append(lines, l)
		}
	}
	return lines
}

func eventReasons(ns string) []string {
	GinkgoHelper()
	events := &corev1.EventList{}
	Expect(k8sClient.List(ctx, events, client.InNamespace(ns))).To(Succeed())
	var reasons []string
	for _, e := range events.Items {
		reasons = append(reasons, e.Reason)
	}
	return reasons
}

var _ = Describe("PartnerInvitation expiry", func() {
	It("stays Pending until the deadline and turns Expired at it", func() {
		ns := newNamespace()
		inv := invitation(ns, "contoso", "contoso.com", 1)
		create(inv)
		Eventually(fetch(inv)).Should(WithTransform(invPhase, Equal(v1alpha1.InvitationPending)))
		deadline := lifecycle.ExpiresAt(inv)
		Expect(inv.Status.ExpiresAt.Time).To(BeTemporally("==", deadline))
		Expect(deadline).To(BeTemporally("==", inv.CreationTimestamp.Add(24*time.Hour)))
		Expect(readyReason(inv.Status.Conditions)).To(Equal("AwaitingAcceptance"))

		fakeClock.SetTime(deadline.Add(-time.Second))
		Consistently(fetch(inv)).Should(WithTransform(invPhase, Equal(v1alpha1.InvitationPending)))

		fakeClock.SetTime(deadline)
		Eventually(fetch(inv)).Should(WithTransform(invPhase, Equal(v1alpha1.InvitationExpired)))
		Expect(readyReason(inv.Status.Conditions)).To(Equal(v1alpha1.ReasonInvitationExpired))
		// The audit line follows the status write: wait for it as well.
		Eventually(auditLines).Should(ContainElement(And(
			HaveField("ObjectName", "contoso"), HaveField("TenantID", ns),
			HaveField("Category", audit.CategoryPartnerInvitation), HaveField("Operation", audit.OperationUpdate),
			HaveField("UserID", audit.OperatorUser), HaveField("Detail", ContainSubstring("can no longer be accepted")))))
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement(v1alpha1.ReasonInvitationExpired))
	})
})

var _ = Describe("PartnerLink acceptance", func() {
	It("activates a valid link: invitation Accepted, exactly one assignment and one built-in role", func() {
		ns := newNamespace()
		create(room(ns, "nyc", map[string]string{"country": "us"}), room(ns, "ber", map[string]string{"country": "de"}))
		l := activeLink(ns, "contoso", "contoso.com")

		Expect(meta.IsStatusConditionTrue(l.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
		Expect(l.Status.EstablishedBy).To(Equal(tenantManager))
		Expect(l.Status.EstablishedAt).NotTo(BeNil())

		inv := &v1alpha1.PartnerInvitation{ObjectMeta: metav1.ObjectMeta{Name: "contoso", Namespace: ns}}
		Eventually(fetch(inv)).Should(WithTransform(invPhase, Equal(v1alpha1.InvitationAccepted)))
		Expect(inv.Status.AcceptedBy).To(Equal(tenantManager))
		Expect(inv.Status.PartnerLink).To(Equal("contoso"))
		Expect(inv.Status.PartnerLinkUID).To(Equal(l.UID))
		Expect(inv.Status.AcceptedAt.Equal(&l.CreationTimestamp)).To(BeTrue(), "accepted when the link was created")

		assignments := &v1alpha1.RoomAssignmentList{}
		Expect(k8sClient.List(ctx, assignments, client.InNamespace(ns))).To(Succeed())
		Expect(assignments.Items).To(HaveLen(1))
		Expect(assignments.Items[0].Spec.PartnerLink).To(Equal("contoso"))
		Expect(assignments.Items[0].Spec.Rooms).To(Equal(inv.Spec.Rooms))
		Expect(metav1.IsControlledBy(&assignments.Items[0], l)).To(BeTrue())

		roles := &v1alpha1.PartnerRoleList{}
		Expect(k8sClient.List(ctx, roles, client.InNamespace(ns))).To(Succeed())
		Expect(roles.Items).To(HaveLen(1))
		role := roles.Items[0]
		Expect(role.Name).To(Equal("contoso-primary-admins"))
		Expect(role.Spec.Builtin).To(Equal(v1alpha1.BuiltinPrimaryAdmin))
		Expect(role.Spec.Permissions).To(Equal(v1alpha1.PrimaryAdminPermissions))
		Expect(role.Spec.Assignments).To(HaveLen(1))
		Expect(role.Spec.Assignments[0].Members).To(Equal(l.Spec.PrimaryAdmins))
		Expect(metav1.IsControlledBy(&role, l)).To(BeTrue())

		Eventually(fetch(l)).Should(HaveField("Status.Rooms", BeEquivalentTo(1)))
		Expect(meta.IsStatusConditionTrue(l.Status.Conditions, v1alpha1.ConditionPrimaryAdminPresent)).To(BeTrue())
		Eventually(roomPartners(ns, "nyc")).Should(ConsistOf("contoso.com"))
		Expect(partnersOf(ns, "ber")).To(BeEmpty())
		Eventually(auditLines).Should(ContainElement(And(
			HaveField("ObjectName", "contoso"), HaveField("TenantID", ns), HaveField("UserID", tenantManager),
			HaveField("UserTenantID", "contoso.com"), HaveField("ResultStatus", audit.Successful))))
	})

	DescribeTable("never activates a link whose invitation is not acceptable",
		func(prepare func(ns string) *v1alpha1.PartnerLink, reason string) {
			ns := newNamespace()
			l := prepare(ns)
			Eventually(fetch(l)).Should(WithTransform(func(l *v1alpha1.PartnerLink) string { return readyReason(l.Status.Conditions) }, Equal(reason)))
			Consistently(fetch(l)).ShouldNot(WithTransform(linkPhase, Equal(v1alpha1.LinkActive)))
			Expect(meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady).Message).NotTo(BeEmpty())

			roles := &v1alpha1.PartnerRoleList{}
			Expect(k8sClient.List(ctx, roles, client.InNamespace(ns))).To(Succeed())
			Expect(roles.Items).To(BeEmpty(), "a refused link gets no role")
			Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement(reason))
			Eventually(auditLines).Should(ContainElement(And(HaveField("TenantID", ns), HaveField("ResultStatus", audit.Failed))))
		},
		Entry("missing invitation", func(ns string) *v1alpha1.PartnerLink {
			l := link(ns, "ghost", "contoso.com")
			create(l)
			return l
		}, v1alpha1.ReasonInvitationNotFound),
		Entry("invitation of another domain", func(ns string) *v1alpha1.PartnerLink {
			create(invitation(ns, "fabrikam", "fabrikam.com", 30))
			l := link(ns, "fabrikam", "contoso.com")
			create(l)
			return l
		}, v1alpha1.ReasonDomainMismatch),
		Entry("an invitation created after the link, under its name", func(ns string) *v1alpha1.PartnerLink {
			// The link was admitted against an earlier invitation of the
			// name, since deleted. (Deleting a real one here would race the
			// manager's cache, which may still hold it when the link comes.)
			l := link(ns, "again", "contoso.com")
			l.Annotations[v1alpha1.AnnotationInvitationUID] = "uid-of-an-earlier-invitation"
			create(invitation(ns, "again", "contoso.com", 30), l)
			return l
		}, v1alpha1.ReasonInvitationReplaced),
		Entry("invitation accepted by an earlier link of the same name", func(ns string) *v1alpha1.PartnerLink {
			first := activeLink(ns, "again", "contoso.com")
			Expect(k8sClient.Delete(ctx, first)).To(Succeed())
			Eventually(func() bool { return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(first), first)) }).Should(BeTrue())
			l := link(ns, "again", "contoso.com")
			create(l)
			return l
		}, v1alpha1.ReasonInvitationAlreadyAccepted),
	)
})

var _ = Describe("acceptance races", func() {
	It("accepts a link admitted before the deadline even when it is reconciled after it", func() {
		// The webhook admitted the link in time; the controllers got to it
		// only after the deadline (a failover, a backlog). The invitation
		// controller has even expired the invitation, not having seen the
		// link. Acceptance is judged at the link's creation.
		ns := newNamespace()
		inv := invitation(ns, "contoso", "contoso.com", 1)
		create(inv)
		Eventually(fetch(inv)).Should(WithTransform(invPhase, Equal(v1alpha1.InvitationPending)))
		fakeClock.SetTime(lifecycle.ExpiresAt(inv).Add(5 * time.Second))
		Eventually(fetch(inv)).Should(WithTransform(invPhase, Equal(v1alpha1.InvitationExpired)))

		l := admitted(link(ns, "contoso", "contoso.com"), inv) // created, in real time, long before the deadline
		create(l)
		Eventually(fetch(l)).Should(WithTransform(linkPhase, Equal(v1alpha1.LinkActive)))
		Eventually(fetch(inv)).Should(And(WithTransform(invPhase, Equal(v1alpha1.InvitationAccepted)), HaveField("Status.PartnerLinkUID", l.UID)))
	})

	It("never lets a refused link accept a later invitation of its name", func() {
		// The link's invitation is deleted (refused: not found); the
		// customer then invites the partner again under the same name. No
		// tenant manager has accepted the new invitation: the old link must
		// not take it, with its old user and primary admins.
		ns := newNamespace()
		l := link(ns, "contoso", "contoso.com")
		l.Annotations[v1alpha1.AnnotationInvitationUID] = "uid-of-the-deleted-invitation"
		create(l)
		Eventually(fetch(l)).Should(WithTransform(func(l *v1alpha1.PartnerLink) string { return readyReason(l.Status.Conditions) }, Equal(v1alpha1.ReasonInvitationNotFound)))

		second := invitation(ns, "contoso", "contoso.com", 30)
		create(second)
		Eventually(fetch(l)).Should(WithTransform(func(l *v1alpha1.PartnerLink) string { return readyReason(l.Status.Conditions) }, Equal(v1alpha1.ReasonInvitationReplaced)))
		// The link controller may refuse the link before the invitation
		// controller has written the new invitation's first status.
		Eventually(fetch(second)).Should(WithTransform(invPhase, Equal(v1alpha1.InvitationPending)))
		Consistently(fetch(second)).Should(WithTransform(invPhase, Equal(v1alpha1.InvitationPending)))
		Expect(fetch(l)().Status.Phase).To(Equal(v1alpha1.LinkPending))
		roles := &v1alpha1.PartnerRoleList{}
		Expect(k8sClient.List(ctx, roles, client.InNamespace(ns))).To(Succeed())
		Expect(roles.Items).To(BeEmpty())
	})
})

var _ = Describe("room scoping", func() {
	It("follows room labels and assignments into and out of the scope", func() {
		ns := newNamespace()
		create(room(ns, "nyc", map[string]string{"country": "us"}))
		l := activeLink(ns, "contoso", "contoso.com")
		Eventually(roomPartners(ns, "nyc")).Should(ConsistOf("contoso.com"))

		By("a new room with a matching label joins the scope")
		create(room(ns, "sea", map[string]string{"country": "us"}))
		Eventually(roomPartners(ns, "sea")).Should(ConsistOf("contoso.com"))
		seaRoom := fetch(&v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: "sea", Namespace: ns}})
		Eventually(seaRoom).Should(HaveField("Status.Partners", ConsistOf("contoso.com")))
		Expect(meta.IsStatusConditionTrue(seaRoom().Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
		Expect(meta.FindStatusCondition(seaRoom().Status.Conditions, v1alpha1.ConditionReady).Message).To(Equal("reachable by contoso.com"))
		Eventually(fetch(l)).Should(HaveField("Status.Rooms", BeEquivalentTo(2)))

		By("removing the label takes it out")
		sea := &v1alpha1.Room{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "sea"}, sea)).To(Succeed())
		patch := client.MergeFrom(sea.DeepCopy())
		delete(sea.Labels, "country")
		Expect(k8sClient.Patch(ctx, sea, patch)).To(Succeed())
		Eventually(roomPartners(ns, "sea")).Should(BeEmpty())
		Eventually(fetch(sea)).Should(HaveField("Status.Partners", BeEmpty()))
		Eventually(fetch(l)).Should(HaveField("Status.Rooms", BeEquivalentTo(1)))

		By("an extra assignment by name adds a room; a missing name is reported, not retried in a loop")
		create(room(ns, "ber", map[string]string{"country": "de"}))
		extra := &v1alpha1.RoomAssignment{
			ObjectMeta: metav1.ObjectMeta{Name: "contoso-berlin", Namespace: ns},
			Spec:       v1alpha1.RoomAssignmentSpec{PartnerLink: "contoso", Rooms: v1alpha1.RoomScope{Names: []string{"ber", "nowhere"}}},
		}
		create(extra)
		Eventually(roomPartners(ns, "ber")).Should(ConsistOf("contoso.com"))
		Eventually(fetch(extra)).Should(HaveField("Status.MatchedRooms", BeEquivalentTo(1)))
		found := meta.FindStatusCondition(extra.Status.Conditions, "RoomsFound")
		Expect(found).NotTo(BeNil())
		Expect(found.Status).To(Equal(metav1.ConditionFalse))
		Expect(found.Message).To(ContainSubstring("nowhere"))
		Expect(meta.IsStatusConditionTrue(extra.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())

		By("deleting the assignment takes its rooms out")
		Expect(k8sClient.Delete(ctx, extra)).To(Succeed())
		Eventually(roomPartners(ns, "ber")).Should(BeEmpty())
		Expect(partnersOf(ns, "nyc")).To(ConsistOf("contoso.com"))
	})

	It("labels a room for every partner that has it in scope", func() {
		ns := newNamespace()
		create(room(ns, "nyc", map[string]string{"country": "us"}))
		activeLink(ns, "contoso", "contoso.com")
		activeLink(ns, "fabrikam", "fabrikam.com")
		Eventually(roomPartners(ns, "nyc")).Should(ConsistOf("contoso.com", "fabrikam.com"))
		Eventually(fetch(&v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: "nyc", Namespace: ns}})).
			Should(HaveField("Status.Partners", Equal([]string{"contoso.com", "fabrikam.com"})))
	})
})

var _ = Describe("the primary-admin invariant", func() {
	It("restores a deleted built-in role from spec.primaryAdmins with a warning event", func() {
		ns := newNamespace()
		l := activeLink(ns, "contoso", "contoso.com")
		role := &v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Name: "contoso-primary-admins", Namespace: ns}}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(role), role)).To(Succeed())
		oldUID := role.UID
		Expect(k8sClient.Delete(ctx, role)).To(Succeed())

		Eventually(func() types.UID {
			r := &v1alpha1.PartnerRole{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(role), r); err != nil {
				return ""
			}
			return r.UID
		}).ShouldNot(Or(BeEmpty(), Equal(oldUID)))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(role), role)).To(Succeed())
		Expect(role.Spec.Assignments[0].Members).To(Equal(l.Spec.PrimaryAdmins))
		Expect(role.Spec.Builtin).To(Equal(v1alpha1.BuiltinPrimaryAdmin))

		Eventually(func() []corev1.Event {
			events := &corev1.EventList{}
			Expect(k8sClient.List(ctx, events, client.InNamespace(ns))).To(Succeed())
			return events.Items
			// Events are written asynchronously and a failed write is retried
			// after 10 s (client-go tools/events): allow one retry.
		}).WithTimeout(30 * time.Second).Should(ContainElement(And(HaveField("Reason", "PrimaryAdminRoleRestored"), HaveField("Type", corev1.EventTypeWarning))))
		Expect(meta.IsStatusConditionTrue(fetch(l)().Status.Conditions, v1alpha1.ConditionPrimaryAdminPresent)).To(BeTrue())
	})
})

var _ = Describe("offboarding", func() {
	It("leaves no role, no assignment and no partner label behind", func() {
		ns := newNamespace()
		create(room(ns, "nyc", map[string]string{"country": "us"}), room(ns, "ber", map[string]string{"country": "de"}))
		l := activeLink(ns, "contoso", "contoso.com")
		create(&v1alpha1.PartnerRole{
			ObjectMeta: metav1.ObjectMeta{Name: "contoso-helpdesk", Namespace: ns},
			Spec:       v1alpha1.PartnerRoleSpec{PartnerLink: "contoso", Permissions: []v1alpha1.Permission{v1alpha1.TicketsView}},
		}, &v1alpha1.RoomAssignment{
			ObjectMeta: metav1.ObjectMeta{Name: "extra", Namespace: ns},
			Spec:       v1alpha1.RoomAssignmentSpec{PartnerLink: "contoso", Rooms: v1alpha1.RoomScope{Names: []string{"ber"}}},
		})
		Eventually(roomPartners(ns, "ber")).Should(ConsistOf("contoso.com"))
		Eventually(roomPartners(ns, "nyc")).Should(ConsistOf("contoso.com"))

		Expect(k8sClient.Delete(ctx, l)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(l), l)) }).Should(BeTrue())

		roles := &v1alpha1.PartnerRoleList{}
		Expect(k8sClient.List(ctx, roles, client.InNamespace(ns))).To(Succeed())
		Expect(roles.Items).To(BeEmpty())
		assignments := &v1alpha1.RoomAssignmentList{}
		Expect(k8sClient.List(ctx, assignments, client.InNamespace(ns))).To(Succeed())
		Expect(assignments.Items).To(BeEmpty())
		Expect(partnersOf(ns, "nyc")).To(BeEmpty())
		Expect(partnersOf(ns, "ber")).To(BeEmpty())
		Eventually(fetch(&v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: "nyc", Namespace: ns}})).Should(HaveField("Status.Partners", BeEmpty()))
		offboarded := func() []audit.Line {
			var lines []audit.Line
			for _, line := range auditLines() {
				if line.TenantID == ns && line.Operation == audit.OperationDelete && line.ObjectName == "contoso" {
					lines = append(lines, line)
				}
			}
			return lines
		}
		Eventually(offboarded).ShouldNot(BeEmpty())
		Consistently(offboarded).Should(HaveLen(1), "one offboarding, one audit line")
	})

	It("keeps the link when its invitation is deleted", func() {
		ns := newNamespace()
		l := activeLink(ns, "contoso", "contoso.com")
		Expect(k8sClient.Delete(ctx, &v1alpha1.PartnerInvitation{ObjectMeta: metav1.ObjectMeta{Name: "contoso", Namespace: ns}})).To(Succeed())
		Consistently(fetch(l)).Should(And(WithTransform(linkPhase, Equal(v1alpha1.LinkActive)), HaveField("DeletionTimestamp", BeNil())))
	})
})

var _ = Describe("idempotency", func() {
	It("changes nothing when every object is reconciled again", func() {
		ns := newNamespace()
		create(room(ns, "nyc", map[string]string{"country": "us"}))
		l := activeLink(ns, "contoso", "contoso.com")

		// Wait for the state every controller converges to, each object's
		// status naming the generation it was computed from. (Waiting for
		// two equal snapshots proved nothing: the room's status write could
		// come after them.)
		observed := func(g Gomega, obj client.Object, gen int64, conds []metav1.Condition, reason string) {
			g.Expect(gen).To(Equal(obj.GetGeneration()), "%T %s: observedGeneration", obj, obj.GetName())
			g.Expect(readyReason(conds)).To(Equal(reason), "%T %s: Ready reason", obj, obj.GetName())
		}
		Eventually(func(g Gomega) {
			link := fetch(l)()
			g.Expect(link.Status.Rooms).To(BeEquivalentTo(1))
			g.Expect(meta.IsStatusConditionTrue(link.Status.Conditions, v1alpha1.ConditionPrimaryAdminPresent)).To(BeTrue())
			observed(g, link, link.Status.ObservedGeneration, link.Status.Conditions, v1alpha1.ReasonActive)
			inv := fetch(&v1alpha1.PartnerInvitation{ObjectMeta: metav1.ObjectMeta{Name: "contoso", Namespace: ns}})()
			observed(g, inv, inv.Status.ObservedGeneration, inv.Status.Conditions, v1alpha1.ReasonAccepted)
			role := fetch(&v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Name: "contoso-primary-admins", Namespace: ns}})()
			observed(g, role, role.Status.ObservedGeneration, role.Status.Conditions, v1alpha1.ReasonInEffect)
			a := fetch(&v1alpha1.RoomAssignment{ObjectMeta: metav1.ObjectMeta{Name: "contoso-invitation", Namespace: ns}})()
			g.Expect(a.Status.MatchedRooms).To(BeEquivalentTo(1))
			observed(g, a, a.Status.ObservedGeneration, a.Status.Conditions, v1alpha1.ReasonInScope)
			room := fetch(&v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: "nyc", Namespace: ns}})()
			g.Expect(room.Status.Partners).To(Equal([]string{"contoso.com"}))
			g.Expect(room.Labels).To(HaveKey(accessLabel("contoso.com")))
			observed(g, room, room.Status.ObservedGeneration, room.Status.Conditions, v1alpha1.ReasonAccessReconciled)
		}).Should(Succeed())

		settled := func() map[string]string {
			versions := map[string]string{}
			for _, list := range []client.ObjectList{&v1alpha1.RoomList{}, &v1alpha1.PartnerInvitationList{},
				&v1alpha1.PartnerLinkList{}, &v1alpha1.PartnerRoleList{}, &v1alpha1.RoomAssignmentList{}} {
				Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
				Expect(meta.EachListItem(list, func(o runtime.Object) error {
					obj := o.(client.Object)
					versions[fmt.Sprintf("%T/%s", obj, obj.GetName())] = obj.GetResourceVersion()
					return nil
				})).To(Succeed())
			}
			return versions
		}
		// Reconcile every object twice more, straight against the
		// apiserver: nothing may be written.
		before := settled()
		for range 2 {
			reconcileAll(ns)
		}
		Expect(settled()).To(Equal(before))
	})
})

// reconcileAll runs every reconciler once on every object of the namespace,
// with a client that reads the apiserver directly (no cache lag).
func reconcileAll(ns string) {
	GinkgoHelper()
	rec := audit.NewRecorder(discardEvents{}, GinkgoWriter, fakeClock)
	k8sClient := directClient{k8sClient}
	kinds := []struct {
		list client.ObjectList
		r    reconcile.Reconciler
	}{
		{&v1alpha1.PartnerInvitationList{}, &controllers.InvitationReconciler{Client: k8sClient, Clock: fakeClock, Audit: rec, Deadlines: deadline.New(fakeClock)}},
		{&v1alpha1.PartnerLinkList{}, &controllers.LinkReconciler{Client: k8sClient, Clock: fakeClock, Audit: rec, Deadlines: deadline.New(fakeClock)}},
		{&v1alpha1.RoomAssignmentList{}, &controllers.AssignmentReconciler{Client: k8sClient, Audit: rec}},
		{&v1alpha1.PartnerRoleList{}, &controllers.RoleReconciler{Client: k8sClient, Clock: fakeClock, Audit: rec, Deadlines: deadline.New(fakeClock)}},
		{&v1alpha1.RoomList{}, &controllers.RoomAccessReconciler{Client: k8sClient}},
	}
	for _, k := range kinds {
		Expect(k8sClient.List(ctx, k.list, client.InNamespace(ns))).To(Succeed())
		Expect(meta.EachListItem(k.list, func(o runtime.Object) error {
			_, err := k.r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(o.(client.Object))})
			return err
		})).To(Succeed())
	}
}

// directClient reads the apiserver directly. The manager's cache indexes
// rooms by "key=value" label pairs under "metadata.labels", a field the
// apiserver does not know: those lookups become label selectors here.
type directClient struct{ client.Client }

func (c directClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	if lo.FieldSelector != nil {
		if pair, ok := lo.FieldSelector.RequiresExactMatch("metadata.labels"); ok {
			key, value, _ := strings.Cut(pair, "=")
			lo.FieldSelector, lo.LabelSelector = nil, labels.SelectorFromSet(labels.Set{key: value})
		}
	}
	return c.Client.List(ctx, list, lo)
}

// discardEvents is an events.EventRecorder that records nothing.
type discardEvents struct{}

func (discardEvents) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...any) {}

var _ = Describe("orphans", func() {
	It("removes roles and assignments whose link no longer exists", func() {
		ns := newNamespace()
		role := &v1alpha1.PartnerRole{
			ObjectMeta: metav1.ObjectMeta{Name: "gone-stray", Namespace: ns},
			Spec:       v1alpha1.PartnerRoleSpec{PartnerLink: "gone", Permissions: []v1alpha1.Permission{v1alpha1.TicketsView}},
		}
		assignment := &v1alpha1.RoomAssignment{
			ObjectMeta: metav1.ObjectMeta{Name: "stray", Namespace: ns},
			Spec:       v1alpha1.RoomAssignmentSpec{PartnerLink: "gone", Rooms: v1alpha1.RoomScope{Names: []string{"r"}}},
		}
		create(role, assignment)
		for _, obj := range []client.Object{role, assignment} {
			Eventually(func() bool { return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)) }).Should(BeTrue())
		}
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement("OrphanRemoved"))
	})
})
