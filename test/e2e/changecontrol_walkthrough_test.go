package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/controlplane"
)

// sampleFile reads config/samples/<file>, which holds one document: as an
// object, and as JSON (a *.patch.yaml is a merge patch).
func sampleFile(file string) (obj *unstructured.Unstructured, asJSON []byte) {
	GinkgoHelper()
	root, err := controlplane.RepositoryRoot()
	Expect(err).NotTo(HaveOccurred())
	data, err := os.ReadFile(filepath.Join(root, "config", "samples", file))
	Expect(err).NotTo(HaveOccurred())
	asJSON, err = yaml.YAMLToJSON(data)
	Expect(err).NotTo(HaveOccurred(), file)
	obj = &unstructured.Unstructured{}
	Expect(json.Unmarshal(asJSON, &obj.Object)).To(Succeed(), file)
	return obj, asJSON
}

// patchWithSample sends the merge patch config/samples/<file> to obj as c.
func patchWithSample(c client.Client, obj client.Object, file string, opts ...client.PatchOption) error {
	GinkgoHelper()
	_, patch := sampleFile(file)
	return c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), opts...)
}

// carries fails unless the live object has every field that the merge patch
// config/samples/<file> sets, with the patch's value.
func carries(obj client.Object, file string) {
	GinkgoHelper()
	live, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	Expect(err).NotTo(HaveOccurred())
	_, data := sampleFile(file)
	patch := map[string]any{}
	Expect(json.Unmarshal(data, &patch)).To(Succeed())
	var walk func(live, want map[string]any, at string)
	walk = func(live, want map[string]any, at string) {
		for k, w := range want {
			if wm, ok := w.(map[string]any); ok {
				lm, _ := live[k].(map[string]any)
				walk(lm, wm, at+"/"+k)
				continue
			}
			Expect(live).To(HaveKeyWithValue(k, BeEquivalentTo(w)), "%s/%s of %s %s", at, k, obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName())
		}
	}
	walk(live, patch, "")
}

// The change-control walkthrough (config/samples/change-control, its
// README): each file in order, as the user its header names, with what the
// header says to expect. The samples name the namespace fourth-coffee,
// which "the samples walkthrough" uses too and leaves offboarded: this
// container starts from a namespace of its own making and gives it back
// deleted, so that the two run in either order (ginkgo shuffles them).
var _ = Describe("the change-control walkthrough", Ordered, func() {
	const (
		ns       = "fourth-coffee"
		lee      = "lee@fourth-coffee.com"
		siteLead = "sam.sitelead@fourth-coffee.com"
		target   = "nyc-conf-a"
	)
	managers := []string{tenantManagers}
	var roomRequest, roleRequest string
	nycRoom := func() *v1alpha1.Room {
		GinkgoHelper()
		r := &v1alpha1.Room{}
		Expect(admin.Get(ctx, key(ns, target), r)).To(Succeed())
		return r
	}
	namespaceGone := func() {
		GinkgoHelper()
		err := admin.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		Expect(client.IgnoreNotFound(err)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(admin.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{}))
		}, "90s").Should(BeTrue(), "namespace %s is deleted", ns)
	}

	BeforeAll(func() {
		By("a fourth-coffee of its own: deleted if the samples walkthrough ran before, and deleted again after")
		namespaceGone()
		DeferCleanup(namespaceGone)
		// The customer roles a deployment installs (config/customer-roles).
		for _, name := range []string{"partner-approver", "site-lead"} {
			role := shippedClusterRole(name)
			err := admin.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role.Name}, Rules: role.Rules})
			if !apierrors.IsAlreadyExists(err) {
				Expect(err).NotTo(HaveOccurred())
			}
		}

		By("the README walkthrough it continues: config/samples/, accept/, delegate/")
		applySamples(admin, "")
		awaitInvitation(tm, tenantManagers, ns, "contoso")
		applySamples(as(tm, managers...), "accept")
		Eventually(func() v1alpha1.LinkPhase {
			l := &v1alpha1.PartnerLink{}
			Expect(admin.Get(ctx, key(ns, "contoso"), l)).To(Succeed())
			return l.Status.Phase
		}).Should(Equal(v1alpha1.LinkActive))
		Eventually(func() error { return as(alice).Get(ctx, key(ns, target), &v1alpha1.Room{}) }).Should(Succeed())
		applySamples(as(alice), "delegate")
		// Settled: the room carries the partner, so nothing the operator
		// writes moves its version under the held patch.
		Eventually(func() []string { return nycRoom().Status.Partners }).Should(Equal([]string{domain}))
		Expect(admin.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "site-leads", Namespace: ns},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: siteLead}},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "site-lead"},
		})).To(Succeed())
	})

	It("00: the customer binds the approver", func() {
		obj, _ := sampleFile("change-control/00-approver-rolebinding.yaml")
		Expect(admin.Create(ctx, obj)).To(Succeed(), "rolebinding %s created", obj.GetName())
	})

	It("10: the customer sets rooms and roles Manual on the invitation", func() {
		const file = "change-control/10-partnerinvitation-manual.yaml"
		obj, data := sampleFile(file)
		inv := &v1alpha1.PartnerInvitation{}
		inv.Namespace, inv.Name = obj.GetNamespace(), obj.GetName()
		Expect(admin.Get(ctx, client.ObjectKeyFromObject(inv), inv)).To(Succeed(), "the invitation exists: configured, not created")
		// kubectl apply of the whole invitation over the live one.
		Expect(admin.Patch(ctx, inv, client.RawPatch(types.MergePatchType, data))).To(Succeed())
		Expect(inv.Spec.Approvals.Rooms).To(Equal(v1alpha1.ApprovalManual))
		Expect(inv.Spec.Approvals.Roles).To(Equal(v1alpha1.ApprovalManual))
		Expect(inv.Status.Phase).To(Equal(v1alpha1.InvitationAccepted))
	})

	It("20: holds the partner's room patch, names the request, and leaves the room unchanged", func() {
		const file = "change-control/20-room-patch.patch.yaml"
		before := nycRoom()

		By("a server-side dry run holds nothing")
		err := patchWithSample(as(alice), before.DeepCopy(), file, client.DryRunAll)
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(ContainSubstring("would be held for the customer's approval"))
		requests := &v1alpha1.PartnerChangeRequestList{}
		Expect(admin.List(ctx, requests, client.InNamespace(ns))).To(Succeed())
		Expect(requests.Items).To(BeEmpty())

		By("the patch is refused, naming the request")
		err = patchWithSample(as(alice), before.DeepCopy(), file)
		roomRequest = held(err)
		Expect(err.Error()).To(ContainSubstring(`admission webhook "vroom.partners.roompro.io" denied the request`))
		Expect(nycRoom().Spec).To(Equal(before.Spec), "the room is unchanged")

		By("the same patch again names the same request")
		Expect(held(patchWithSample(as(alice), before.DeepCopy(), file))).To(Equal(roomRequest))
		Expect(admin.List(ctx, requests, client.InNamespace(ns))).To(Succeed())
		Expect(requests.Items).To(HaveLen(1))

		By("the request is Pending with a preview of /spec/updateRing")
		_, data := sampleFile(file)
		var patch struct {
			Spec struct {
				UpdateRing string `json:"updateRing"`
			} `json:"spec"`
		}
		Expect(json.Unmarshal(data, &patch)).To(Succeed())
		Eventually(func() []v1alpha1.FieldChange { return changeRequest(ns, roomRequest).Status.Preview }).Should(Equal([]v1alpha1.FieldChange{{
			Path: "/spec/updateRing", Before: `"` + before.Spec.UpdateRing + `"`, After: `"` + patch.Spec.UpdateRing + `"`,
		}}))
		pcr := changeRequest(ns, roomRequest)
		Expect(pcr.Status.Phase).To(Equal(v1alpha1.ChangePending))
		Expect(pcr.Status.RequestedBy).To(Equal(alice))
		Expect(pcr.Spec.Target.Name).To(Equal(target))

		By("the partner follows its link's requests")
		mine := &v1alpha1.PartnerChangeRequestList{}
		Expect(as(alice).List(ctx, mine, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelPartnerLink: "contoso"})).To(Succeed())
		Expect(mine.Items).To(ContainElement(HaveField("Name", roomRequest)))
	})

	It("30: takes the partner's proposed role as a request, stamped with the requester; no role yet", func() {
		const file = "change-control/30-partnerchangerequest-role.yaml"
		obj, _ := sampleFile(file)
		Expect(as(alice).Create(ctx, obj)).To(Succeed(), "partnerchangerequest %s created", obj.GetName())
		roleRequest = obj.GetName()
		Eventually(phaseOf(ns, roleRequest)).Should(Equal(v1alpha1.ChangePending))
		pcr := changeRequest(ns, roleRequest)
		Expect(pcr.Status.RequestedBy).To(Equal(alice))
		Expect(pcr.Labels).To(HaveKeyWithValue(v1alpha1.LabelPartnerLink, pcr.Spec.PartnerLink))
		Expect(apierrors.IsNotFound(admin.Get(ctx, key(ns, pcr.Spec.Target.Name), &v1alpha1.PartnerRole{}))).To(BeTrue(), "no role before approval")
	})

	It("40: applies the room change once the approver approves it", func() {
		const file = "change-control/40-approve.patch.yaml"
		By("the customer finds the request by its target")
		list := &v1alpha1.PartnerChangeRequestList{}
		Expect(admin.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		var byTarget []string
		for _, p := range list.Items {
			if p.Spec.Target.Name == target {
				byTarget = append(byTarget, p.Name)
			}
		}
		Expect(byTarget).To(Equal([]string{roomRequest}))

		By("nobody but the approver decides")
		pcr := &v1alpha1.PartnerChangeRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: roomRequest}}
		Expect(patchWithSample(as(alice), pcr.DeepCopy(), file)).To(Satisfy(apierrors.IsForbidden), "the partner never decides")
		Expect(patchWithSample(as(siteLead), pcr.DeepCopy(), file)).To(Satisfy(apierrors.IsForbidden), "a site lead has no approve")

		By("the approver approves; the operator applies")
		Eventually(func() error { return patchWithSample(as(lee), pcr.DeepCopy(), file) }).Should(Succeed())
		Eventually(phaseOf(ns, roomRequest)).Should(Equal(v1alpha1.ChangeApplied))
		Expect(changeRequest(ns, roomRequest).Status.DecidedBy).To(Equal(lee))
		carries(nycRoom(), "change-control/20-room-patch.patch.yaml")

		By("a decision is final")
		Expect(as(lee).Patch(ctx, pcr.DeepCopy(), client.RawPatch(types.MergePatchType,
			[]byte(`{"spec":{"decisionMessage":"on second thought"}}`)))).NotTo(Succeed())
	})

	It("41: denies the proposed role, which is never created", func() {
		const file = "change-control/41-deny.patch.yaml"
		pcr := &v1alpha1.PartnerChangeRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: roleRequest}}
		Expect(patchWithSample(as(alice), pcr.DeepCopy(), file)).To(Satisfy(apierrors.IsForbidden), "the partner never decides")
		Expect(patchWithSample(as(siteLead), pcr.DeepCopy(), file)).To(Satisfy(apierrors.IsForbidden), "a site lead has no approve")
		Expect(as(lee).Patch(ctx, pcr.DeepCopy(), client.RawPatch(types.MergePatchType,
			[]byte(`{"spec":{"reason":"reworded by the customer"}}`)))).NotTo(Succeed(), "nothing of a request's spec changes but the decision")
		Expect(patchWithSample(as(lee), pcr.DeepCopy(), file)).To(Succeed())
		Eventually(phaseOf(ns, roleRequest)).Should(Equal(v1alpha1.ChangeDenied))
		role := changeRequest(ns, roleRequest).Spec.Target.Name
		Consistently(func() bool {
			return apierrors.IsNotFound(admin.Get(ctx, key(ns, role), &v1alpha1.PartnerRole{}))
		}, "1s").Should(BeTrue(), "partnerroles %q not found", role)
	})
})
