package e2e

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/lifecycle"
)

const (
	tenantA = "tenant-a"
	tenantB = "tenant-b"
	domain  = "contoso.com"
	alice   = "alice@contoso.com" // the primary admin
	tm      = "tm@contoso.com"    // a tenant manager
	carol   = "carol@contoso.com" // in contoso.com:helpdesk
)

var tenantManagers = domain + ":tenant-managers"

func invitation(ns, name, partner string, days int32) *v1alpha1.PartnerInvitation {
	return &v1alpha1.PartnerInvitation{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.PartnerInvitationSpec{
			PartnerDomain: v1alpha1.Domain(partner), ExpiryDays: days, TermsAccepted: true,
			Rooms: v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"country": "us"}}},
		},
	}
}

func link(ns, name string) *v1alpha1.PartnerLink {
	return &v1alpha1.PartnerLink{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.PartnerLinkSpec{Invitation: name, PartnerDomain: domain,
			PrimaryAdmins: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: alice}}},
	}
}

// accept creates the link that accepts invitation name, as the partner's
// tenant manager does: after reading the invitation.
func accept(ns, name string) {
	GinkgoHelper()
	acceptAs(tm, tenantManagers, link(ns, name))
}

// acceptAs is accept by user of the group managers, with the link l.
func acceptAs(user, managers string, l *v1alpha1.PartnerLink) {
	GinkgoHelper()
	awaitInvitation(user, managers, l.Namespace, l.Spec.Invitation)
	Expect(as(user, managers).Create(ctx, l)).To(Succeed())
}

// awaitInvitation waits until the partner's tenant manager may read
// invitation name. The authorization webhook decides from its index, which
// sees an invitation a moment after its create returns; an accept sent in
// that moment is refused ("no pending invitation"), as it would be for a
// person who had not seen the invitation yet.
func awaitInvitation(user, managers, ns, name string) {
	GinkgoHelper()
	Eventually(func() error { return as(user, managers).Get(ctx, key(ns, name), &v1alpha1.PartnerInvitation{}) }).Should(Succeed())
}

func room(ns, name, country string) *v1alpha1.Room {
	return &v1alpha1.Room{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"country": country}},
		Spec:       v1alpha1.RoomSpec{DisplayName: name},
	}
}

func key(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

// expectForbidden asserts a Forbidden error that carries the webhook's reason.
func expectForbidden(err error, reason string) {
	GinkgoHelper()
	Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want Forbidden, got %v", err)
	Expect(err.Error()).To(ContainSubstring(reason))
}

var _ = Describe("a partner confined to its rooms", Ordered, func() {
	BeforeAll(func() {
		for _, ns := range []string{tenantA, tenantB} {
			Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		}
		for _, r := range []*v1alpha1.Room{room(tenantA, "nyc", "us"), room(tenantA, "sea", "us"), room(tenantA, "ber", "de"), room(tenantB, "nyc-b", "us")} {
			Expect(admin.Create(ctx, r)).To(Succeed())
		}
		Expect(admin.Create(ctx, invitation(tenantA, "contoso", domain, 30))).To(Succeed())
	})

	It("lets only a tenant manager of the invited domain accept", func() {
		expectForbidden(as(alice).Create(ctx, link(tenantA, "contoso")), "tenant-managers")
		accept(tenantA, "contoso")

		l := &v1alpha1.PartnerLink{}
		Eventually(func() v1alpha1.LinkPhase {
			Expect(admin.Get(ctx, key(tenantA, "contoso"), l)).To(Succeed())
			return l.Status.Phase
		}).Should(Equal(v1alpha1.LinkActive))
		Expect(l.Status.EstablishedBy).To(Equal(tm), "the webhook records the accepting user")
		inv := &v1alpha1.PartnerInvitation{}
		Eventually(func() string {
			Expect(admin.Get(ctx, key(tenantA, "contoso"), inv)).To(Succeed())
			return inv.Status.AcceptedBy
		}).Should(Equal(tm))
		Expect(l.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationInvitationUID, string(inv.UID)), "the webhook records the invitation the link accepts")
		Expect(inv.Status.PartnerLinkUID).To(Equal(l.UID))

		// Nobody moves the link to another invitation afterwards. Each try
		// forges the stored link: the controllers may have written it since
		// it was read, and a conflict would say nothing about the rule.
		forge := func(c client.Client) error {
			return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
				forged := &v1alpha1.PartnerLink{}
				Expect(admin.Get(ctx, key(tenantA, "contoso"), forged)).To(Succeed())
				forged.Annotations[v1alpha1.AnnotationInvitationUID] = "a-later-invitation"
				return c.Update(ctx, forged)
			})
		}
		err := forge(as(tm, tenantManagers))
		Expect(apierrors.IsInvalid(err) || apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
		err = forge(admin)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("records the invitation the link was created to accept"))
		sea := &v1alpha1.Room{}
		Eventually(func() []string {
			Expect(admin.Get(ctx, key(tenantA, "sea"), sea)).To(Succeed())
			return sea.Status.Partners
		}).Should(Equal([]string{domain}))
		Expect(sea.Labels).To(HaveKeyWithValue(v1alpha1.AccessLabel(domain), "true"))
		// The manager caches rooms without spec or annotations: its writes
		// must not clear them.
		Expect(sea.Spec.DisplayName).To(Equal("sea"))
		Expect(sea.Annotations).To(HaveKey(v1alpha1.AnnotationRequestedBy))
	})

	It("refuses a second accept of the same invitation", func() {
		err := as(tm, tenantManagers).Create(ctx, link(tenantA, "contoso"))
		Expect(err).To(HaveOccurred())
		Expect(apierrors.IsAlreadyExists(err) || apierrors.IsInvalid(err) || apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
	})

	It("lets the primary admin get and patch a room in scope", func() {
		admin := as(alice)
		r := &v1alpha1.Room{}
		Eventually(func() error { return admin.Get(ctx, key(tenantA, "nyc"), r) }).Should(Succeed())
		patch := client.MergeFrom(r.DeepCopy())
		r.Spec.DisplayName = "New York, renamed by the partner"
		Expect(admin.Patch(ctx, r, patch)).To(Succeed())
	})

	It("forbids rooms out of scope and in another namespace", func() {
		expectForbidden(as(alice).Get(ctx, key(tenantA, "ber"), &v1alpha1.Room{}), "the room is not in the scope of the caller's roles")
		expectForbidden(as(alice).Get(ctx, key(tenantB, "nyc-b"), &v1alpha1.Room{}), `in the namespace "tenant-b": no role of the caller grants rooms.view`)
	})

	It("lists rooms only with the partner label selector", func() {
		rooms := &v1alpha1.RoomList{}
		Expect(as(alice).List(ctx, rooms, client.InNamespace(tenantA), client.HasLabels{v1alpha1.AccessLabel(domain)})).To(Succeed())
		var names []string
		for _, r := range rooms.Items {
			names = append(names, r.Name)
		}
		Expect(names).To(ConsistOf("nyc", "sea"))
		expectForbidden(as(alice).List(ctx, &v1alpha1.RoomList{}, client.InNamespace(tenantA)), "label selector")
	})

	It("keeps a tickets-only role off room changes", func() {
		helpdesk := &v1alpha1.PartnerRole{
			ObjectMeta: metav1.ObjectMeta{Name: "contoso-helpdesk", Namespace: tenantA},
			Spec: v1alpha1.PartnerRoleSpec{
				PartnerLink: "contoso",
				Permissions: []v1alpha1.Permission{v1alpha1.TicketsCreate, v1alpha1.TicketsView, v1alpha1.TicketsUpdate},
				Assignments: []v1alpha1.RoleAssignment{{Name: "helpdesk",
					Members: []v1alpha1.Subject{{Kind: v1alpha1.GroupSubject, Name: domain + ":helpdesk"}}}},
			},
		}
		Expect(as(alice).Create(ctx, helpdesk)).To(Succeed())
		ticket := &authorizationv1.ResourceAttributes{Namespace: tenantA, Verb: "create", Group: v1alpha1.GroupVersion.Group, Resource: "rooms", Subresource: "tickets", Name: "nyc"}
		Eventually(func() bool { return review(ticket, carol, domain+":helpdesk").Status.Allowed }).Should(BeTrue())

		r := &v1alpha1.Room{}
		Expect(admin.Get(ctx, key(tenantA, "nyc"), r)).To(Succeed())
		patch := client.MergeFrom(r.DeepCopy())
		r.Spec.DisplayName = "renamed by the help desk"
		expectForbidden(as(carol, domain+":helpdesk").Patch(ctx, r, patch), "no role of the caller grants rooms.modify")
	})

	It("rejects members of another domain, permissions partners cannot hold, and assignment edits", func() {
		outsider := &v1alpha1.PartnerRole{
			ObjectMeta: metav1.ObjectMeta{Name: "contoso-outsider", Namespace: tenantA},
			Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso", Permissions: []v1alpha1.Permission{v1alpha1.RoomsView},
				Assignments: []v1alpha1.RoleAssignment{{Name: "x", Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "mallory@fabrikam.com"}}}}},
		}
		err := as(alice).Create(ctx, outsider)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec.assignments[0].members[0]"))
		Expect(err.Error()).To(ContainSubstring(domain))

		resetKey := outsider.DeepCopy()
		resetKey.Spec.Permissions = []v1alpha1.Permission{v1alpha1.RoomsResetKey}
		resetKey.Spec.Assignments[0].Members[0].Name = "bob@" + domain
		err = as(alice).Create(ctx, resetKey)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("a partner role may hold only the primary-admin permissions"))

		a := &v1alpha1.RoomAssignment{}
		Expect(admin.Get(ctx, key(tenantA, "contoso-invitation"), a)).To(Succeed())
		patch := client.MergeFrom(a.DeepCopy())
		a.Spec.Rooms.Names = []string{"ber"}
		expectForbidden(as(alice).Patch(ctx, a, patch), "partner users may not patch roomassignments")
	})

	It("never lets the last primary admin go", func() {
		role := &v1alpha1.PartnerRole{}
		Expect(admin.Get(ctx, key(tenantA, "contoso-primary-admins"), role)).To(Succeed())
		patch := client.MergeFrom(role.DeepCopy())
		role.Spec.Assignments[0].Members = nil
		err := as(alice).Patch(ctx, role, patch)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("primary admin"))

		err = as(alice).Delete(ctx, role)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("cannot be deleted while PartnerLink"))
	})

	It("refuses an expired invitation", func() {
		late := invitation(tenantA, "late", domain, 1)
		fakeClock.SetTime(time.Now())
		Expect(admin.Create(ctx, late)).To(Succeed())
		Expect(admin.Get(ctx, key(tenantA, "late"), late)).To(Succeed())
		fakeClock.SetTime(lifecycle.ExpiresAt(late).Add(time.Minute))
		Eventually(func() v1alpha1.InvitationPhase {
			Expect(admin.Get(ctx, key(tenantA, "late"), late)).To(Succeed())
			return late.Status.Phase
		}).Should(Equal(v1alpha1.InvitationExpired))

		err := as(tm, tenantManagers).Create(ctx, link(tenantA, "late"))
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(Or(ContainSubstring("expired"), ContainSubstring("no pending invitation")))
	})

	It("denies the partner's next request once the link is deleted", func() {
		Expect(as(alice).Get(ctx, key(tenantA, "nyc"), &v1alpha1.Room{})).To(Succeed())
		Expect(as(tm, tenantManagers).Delete(ctx, &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Name: "contoso", Namespace: tenantA}})).To(Succeed())
		Eventually(func() error { return as(alice).Get(ctx, key(tenantA, "nyc"), &v1alpha1.Room{}) }, 2*time.Second).
			Should(Satisfy(apierrors.IsForbidden))
	})
})
