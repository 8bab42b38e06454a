package e2e

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

var _ = Describe("the customer's session policy", Ordered, func() {
	const ns = "session-policy"
	staff := "megan@fourthcoffee.com"
	getRoom := func(c client.Client, name string) error { return c.Get(ctx, key(ns, name), &v1alpha1.Room{}) }

	BeforeAll(func() {
		partnership(ns)
		// The customer's own staff read rooms through RBAC, with the
		// shipped partners-view role.
		view := shippedClusterRole("partners-view")
		Expect(admin.Create(ctx, view)).To(Or(Succeed(), WithTransform(apierrors.IsAlreadyExists, BeTrue())))
		Expect(admin.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "staff-view", Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: view.Name},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: staff}},
		})).To(Succeed())
		Eventually(func() error { return getRoom(as(alice), "nyc") }).Should(Succeed(), "before the policy")

		inv := &v1alpha1.PartnerInvitation{}
		Expect(admin.Get(ctx, key(ns, "contoso"), inv)).To(Succeed())
		patch := client.MergeFrom(inv.DeepCopy())
		inv.Spec.SessionPolicy = &v1alpha1.SessionPolicy{RequiredExtra: map[string]v1alpha1.ExtraValues{"amr": {"mfa"}}}
		Expect(admin.Patch(ctx, inv, patch)).To(Succeed())
	})

	It("denies a partner user whose session lacks the required extra, naming the requirement", func() {
		Eventually(func() error { return getRoom(as(alice), "nyc") }).Should(
			WithTransform(apierrors.IsForbidden, BeTrue()), "the policy takes effect")
		expectForbidden(getRoom(as(alice), "nyc"), `requires the user extra "amr" to hold one of [mfa]`)
		expectForbidden(getRoom(asSession(alice, map[string][]string{"amr": {"pwd"}}), "nyc"), "spec.sessionPolicy.requiredExtra")
		expectForbidden(getRoom(asSession(carol, map[string][]string{"acr": {"mfa"}}, domain+":helpdesk"), "nyc"), `"amr"`)
	})

	It("allows one whose session carries it, within the partner's scope and no further", func() {
		mfa := map[string][]string{"amr": {"pwd", "mfa"}}
		Expect(getRoom(asSession(alice, mfa), "nyc")).To(Succeed())
		expectForbidden(getRoom(asSession(alice, mfa), "no-such-room"), "not in the scope")
	})

	It("leaves the customer's staff to RBAC", func() {
		Eventually(func() error { return getRoom(as(staff), "nyc") }).Should(Succeed(), "the RoleBinding takes effect")
		Expect(getRoom(as(staff), "ber")).To(Succeed(), "a room outside the partner's scope")
	})
})
