package e2e

import (
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// heldAs is the name of the request a refusal says the write is held as.
func heldAs(err error, prefix string) string {
	GinkgoHelper()
	Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want Forbidden, got %v", err)
	msg := err.Error()
	i := strings.Index(msg, prefix+" partnerchangerequest/")
	Expect(i).To(BeNumerically(">=", 0), "%q does not say %q", msg, prefix)
	name := msg[i+len(prefix+" partnerchangerequest/"):]
	if end := strings.IndexAny(name, " ,()"); end >= 0 {
		name = name[:end]
	}
	return name
}

var _ = Describe("change control: a partner's room patch in a Manual category", Ordered, func() {
	const ns = "cc-hold"
	var base *v1alpha1.Room

	BeforeAll(func() {
		Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		Expect(admin.Create(ctx, room(ns, "nyc", "us"))).To(Succeed())
		inv := invitation(ns, "contoso", domain, 30)
		inv.Spec.Approvals.Rooms = v1alpha1.ApprovalManual
		Expect(admin.Create(ctx, inv)).To(Succeed())
		accept(ns, "contoso")
		// Settled: the link is active and the room carries the partner,
		// so nothing the operator writes moves the room's version.
		base = &v1alpha1.Room{}
		Eventually(func() []string {
			Expect(admin.Get(ctx, key(ns, "nyc"), base)).To(Succeed())
			return base.Status.Partners
		}).Should(Equal([]string{domain}))
		Eventually(func() error { return as(alice).Get(ctx, key(ns, "nyc"), &v1alpha1.Room{}) }).Should(Succeed())
		Expect(admin.Get(ctx, key(ns, "nyc"), base)).To(Succeed())
	})

	patchAs := func(displayName string, opts ...client.PatchOption) error {
		r := base.DeepCopy()
		patch := client.MergeFrom(r.DeepCopy())
		r.Spec.DisplayName = displayName
		return as(alice).Patch(ctx, r, patch, opts...)
	}
	requests := func() []v1alpha1.PartnerChangeRequest {
		GinkgoHelper()
		list := &v1alpha1.PartnerChangeRequestList{}
		Expect(admin.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		return list.Items
	}

	It("creates nothing on a dry run", func() {
		err := patchAs("New York", client.DryRunAll)
		heldAs(err, "would be held for the customer's approval as")
		Expect(requests()).To(BeEmpty())
	})

	It("refuses the patch naming the request, which holds the change, and leaves the room unchanged", func() {
		name := heldAs(patchAs("New York"), "held for the customer's approval as")
		pcr := &v1alpha1.PartnerChangeRequest{}
		Expect(admin.Get(ctx, key(ns, name), pcr)).To(Succeed())
		Expect(pcr.Spec.PartnerLink).To(Equal("contoso"))
		Expect(pcr.Spec.Category).To(Equal(v1alpha1.CategoryRooms))
		Expect(pcr.Spec.Operation).To(Equal(v1alpha1.OperationUpdate))
		Expect(pcr.Spec.Target).To(Equal(v1alpha1.ChangeTarget{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Room", Name: "nyc"}))
		Expect(pcr.Spec.BaseResourceVersion).To(Equal(base.ResourceVersion))
		Expect(pcr.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationRequestedBy, alice))
		Expect(pcr.Labels).To(HaveKeyWithValue(v1alpha1.LabelPartnerLink, "contoso"))
		Expect(pcr.Spec.Object).NotTo(BeNil())
		held := string(pcr.Spec.Object.Raw)
		Expect(held).To(ContainSubstring(`"displayName":"New York"`))
		Expect(held).NotTo(ContainSubstring("resourceVersion"))
		Expect(held).NotTo(ContainSubstring("managedFields"))

		now := &v1alpha1.Room{}
		Expect(admin.Get(ctx, key(ns, "nyc"), now)).To(Succeed())
		Expect(now.Spec.DisplayName).To(Equal("nyc"))
		Expect(now.ResourceVersion).To(Equal(base.ResourceVersion))

		By("a retry returns the same request")
		Expect(heldAs(patchAs("New York"), "held for the customer's approval as")).To(Equal(name))
		Expect(requests()).To(HaveLen(1))
	})

	It("makes one request of 50 concurrent identical patches", func() {
		names := make([]string, 50)
		errs := make([]error, 50)
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() { errs[i] = patchAs("Big Apple") })
		}
		wg.Wait()
		for i := range 50 {
			names[i] = heldAs(errs[i], "held for the customer's approval as")
		}
		for _, n := range names {
			Expect(n).To(Equal(names[0]))
		}
		var bigApple int
		for _, p := range requests() {
			if strings.Contains(string(p.Spec.Object.Raw), `"Big Apple"`) {
				bigApple++
				Expect(p.Name).To(Equal(names[0]))
			}
		}
		Expect(bigApple).To(Equal(1))
		Expect(requests()).To(HaveLen(2))
	})

	It("holds nothing once the customer sets rooms back to Auto", func() {
		inv := &v1alpha1.PartnerInvitation{}
		Expect(admin.Get(ctx, key(ns, "contoso"), inv)).To(Succeed())
		patch := client.MergeFrom(inv.DeepCopy())
		inv.Spec.Approvals.Rooms = v1alpha1.ApprovalAuto
		Expect(admin.Patch(ctx, inv, patch)).To(Succeed())
		Expect(patchAs("New York, Auto")).To(Succeed())
		Expect(requests()).To(HaveLen(2), "the pending requests stay")
	})
})
