package e2e

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/testenv"
)

// Issue 11, finding 5: one tenant must not change how another tenant's users
// are authorised. The tenant "fourthcoffee" has its own staff at
// fourthcoffee.com; the tenant "tailspin" is another customer of the cluster.
var _ = Describe("only a registered PartnerOrganization makes a domain a partner domain", Ordered, func() {
	const (
		staffNS   = "fourthcoffee" // bob's own tenant
		otherNS   = "tailspin"     // another tenant
		staffOrg  = "fourthcoffee.com"
		bob       = "bob@fourthcoffee.com"
		staffTM   = "tm@fourthcoffee.com"
		staffTMs  = "fourthcoffee.com:tenant-managers"
		unrelated = "northwind.com" // registered, invited by nobody
	)
	registration := func(d string) *v1alpha1.PartnerOrganization {
		return &v1alpha1.PartnerOrganization{ObjectMeta: metav1.ObjectMeta{Name: d}}
	}
	// bobGetsPods is RBAC's question for bob: the RoleBinding below grants it.
	bobGetsPods := func() authorizationv1.SubjectAccessReviewStatus {
		return review(&authorizationv1.ResourceAttributes{Namespace: staffNS, Verb: "get", Resource: "pods", Name: "x"}, bob).Status
	}

	BeforeAll(func() {
		for _, ns := range []string{staffNS, otherNS} {
			Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		}
		Expect(admin.Create(ctx, room(otherNS, "nyc-t", "us"))).To(Succeed())
		Expect(admin.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: staffNS, Name: "pod-reader"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}})).To(Succeed())
		Expect(admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: staffNS, Name: "bob-reads-pods"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: bob}}})).To(Succeed())
		Expect(bobGetsPods().Allowed).To(BeTrue(), "test premise: RBAC lets bob get pods")
	})

	It("refuses another tenant's invitation of an unregistered domain, naming the field and the registered domains", func() {
		inv := invitation(otherNS, "lockout", staffOrg, 30)
		err := admin.Create(ctx, inv)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
		Expect(err.Error()).To(ContainSubstring(`spec.partnerDomain: Invalid value: "fourthcoffee.com": not a registered partner organization; registered: `))
		Expect(err.Error()).To(ContainSubstring("contoso.com, fabrikam.com"))
		Expect(apierrors.IsNotFound(admin.Get(ctx, client.ObjectKeyFromObject(inv), inv))).To(BeTrue(), "nothing may be stored")
		Expect(bobGetsPods().Allowed).To(BeTrue(), "RBAC still decides for bob")
	})

	It("keeps a registration that a pending invitation or a link names, and lets it go after", func() {
		// The platform team registers fourthcoffee.com (say by mistake): its
		// users are partner users from then on.
		Expect(testenv.RegisterPartners(ctx, admin, staffOrg)).To(Succeed())
		Eventually(func() bool { return bobGetsPods().Denied }).Should(BeTrue())

		Expect(admin.Create(ctx, invitation(otherNS, "fourthcoffee", staffOrg, 30))).To(Succeed())
		err := admin.Delete(ctx, registration(staffOrg))
		expectForbidden(err, "fourthcoffee.com is still named by PartnerInvitation tailspin/fourthcoffee; delete them first")

		l := link(otherNS, "fourthcoffee")
		l.Spec.PartnerDomain = staffOrg
		l.Spec.PrimaryAdmins = []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "alice@fourthcoffee.com"}}
		acceptAs(staffTM, staffTMs, l)
		Eventually(func() v1alpha1.InvitationPhase {
			inv := &v1alpha1.PartnerInvitation{}
			Expect(admin.Get(ctx, key(otherNS, "fourthcoffee"), inv)).To(Succeed())
			return inv.Status.Phase
		}).Should(Equal(v1alpha1.InvitationAccepted))
		err = admin.Delete(ctx, registration(staffOrg))
		expectForbidden(err, "fourthcoffee.com is still named by PartnerLink tailspin/fourthcoffee; delete them first")

		Expect(admin.Delete(ctx, l)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(admin.Get(ctx, client.ObjectKeyFromObject(l), l)) }).Should(BeTrue())
		// The accepted invitation stays as a record and does not hold the
		// registration.
		Expect(admin.Delete(ctx, registration(staffOrg))).To(Succeed())
	})

	It("gives another tenant's own staff no opinion although an invitation names their domain", func() {
		// tailspin's accepted invitation of fourthcoffee.com is still stored:
		// before the fix it made fourthcoffee.com a partner domain, so every
		// request of bob was denied, whatever his own tenant's RBAC said.
		Expect(admin.Get(ctx, key(otherNS, "fourthcoffee"), &v1alpha1.PartnerInvitation{})).To(Succeed())
		Eventually(func() authorizationv1.SubjectAccessReviewStatus { return bobGetsPods() }).Should(
			And(HaveField("Allowed", BeTrue()), HaveField("Denied", BeFalse())))
		// RBAC decides: what it does not grant is not allowed, but no
		// authorizer denied it outright (the webhook has no opinion).
		s := review(&authorizationv1.ResourceAttributes{Namespace: staffNS, Verb: "delete", Resource: "pods", Name: "x"}, bob).Status
		Expect(s.Allowed).To(BeFalse())
		Expect(s.Denied).To(BeFalse())
	})

	It("makes the users of a registered domain partner users although no invitation names it", func() {
		Expect(testenv.RegisterPartners(ctx, admin, unrelated)).To(Succeed())
		DeferCleanup(func() { Expect(admin.Delete(ctx, registration(unrelated))).To(Succeed()) })
		Eventually(func() bool {
			return review(&authorizationv1.ResourceAttributes{Namespace: otherNS, Verb: "get", Group: v1alpha1.GroupVersion.Group,
				Resource: "rooms", Name: "nyc-t"}, "alice@"+unrelated).Status.Denied
		}).Should(BeTrue())
	})
})
