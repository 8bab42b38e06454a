package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/controlplane"
)

// applySamples creates every object of the YAML files of config/samples/dir,
// in file order, as c.
func applySamples(c client.Client, dir string) {
	GinkgoHelper()
	root, err := controlplane.RepositoryRoot()
	Expect(err).NotTo(HaveOccurred())
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", dir, "*.yaml"))
	Expect(err).NotTo(HaveOccurred())
	Expect(files).NotTo(BeEmpty())
	slices.Sort(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		Expect(err).NotTo(HaveOccurred())
		decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			obj := &unstructured.Unstructured{}
			if decoder.Decode(&obj.Object) != nil {
				break
			}
			if len(obj.Object) == 0 {
				continue
			}
			err := c.Create(ctx, obj)
			// The suite registered the samples' partner already (every
			// container needs it); the sample's registration is the same.
			if obj.GetKind() == "PartnerOrganization" && apierrors.IsAlreadyExists(err) {
				continue
			}
			Expect(err).To(Succeed(), "%s: %s %s", f, obj.GetKind(), obj.GetName())
		}
	}
}

var _ = Describe("the samples walkthrough", Ordered, func() {
	const ns = "fourth-coffee"
	managers := []string{"contoso.com:tenant-managers"}
	room := func(name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

	It("applies as the README says, with the phases and decisions it shows", func() {
		By("the platform team registers contoso.com; the customer: namespace, rooms in two countries, an invitation for the US rooms")
		applySamples(admin, "")
		org := &v1alpha1.PartnerOrganization{}
		Eventually(func() string {
			Expect(admin.Get(ctx, client.ObjectKey{Name: "contoso.com"}, org)).To(Succeed())
			if c := meta.FindStatusCondition(org.Status.Conditions, v1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
				return c.Reason
			}
			return ""
		}).Should(Equal("Registered"))
		inv := &v1alpha1.PartnerInvitation{}
		Eventually(func() v1alpha1.InvitationPhase {
			Expect(admin.Get(ctx, room("contoso"), inv)).To(Succeed())
			return inv.Status.Phase
		}).Should(Equal(v1alpha1.InvitationPending))

		By("the partner's tenant manager reads the invitation and accepts")
		awaitInvitation("tm@contoso.com", managers[0], ns, "contoso")
		applySamples(as("tm@contoso.com", managers...), "accept")
		link := &v1alpha1.PartnerLink{}
		Eventually(func() v1alpha1.LinkPhase {
			Expect(admin.Get(ctx, room("contoso"), link)).To(Succeed())
			return link.Status.Phase
		}).Should(Equal(v1alpha1.LinkActive))
		Eventually(func() v1alpha1.InvitationPhase {
			Expect(admin.Get(ctx, room("contoso"), inv)).To(Succeed())
			return inv.Status.Phase
		}).Should(Equal(v1alpha1.InvitationAccepted))

		By("the primary admin sees the US rooms, not Berlin")
		Eventually(func() error { return as(alice).Get(ctx, room("nyc-conf-a"), &v1alpha1.Room{}) }).Should(Succeed())
		Expect(apierrors.IsForbidden(as(alice).Get(ctx, room("ber-board"), &v1alpha1.Room{}))).To(BeTrue())

		By("the primary admin delegates tickets on New York to the help desk")
		applySamples(as(alice), "delegate")
		ticket := func(name string) *authorizationv1.ResourceAttributes {
			return &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: v1alpha1.GroupVersion.Group,
				Resource: "rooms", Subresource: "tickets", Name: name}
		}
		Eventually(func() bool { return review(ticket("nyc-conf-a"), carol, "contoso.com:helpdesk").Status.Allowed }).Should(BeTrue())
		Expect(review(ticket("sea-huddle-1"), carol, "contoso.com:helpdesk").Status.Denied).To(BeTrue())

		By("the help desk opens a ticket for New York, takes it, and lists its tickets by the room")
		helpdesk := as(carol, "contoso.com:helpdesk")
		opened, _ := sampleFile("tickets/ticket.yaml")
		Eventually(func() error { return helpdesk.Create(ctx, opened.DeepCopy()) }).Should(Succeed())
		elsewhere := opened.DeepCopy()
		elsewhere.SetName("sea-huddle-1-display")
		Expect(unstructured.SetNestedField(elsewhere.Object, "sea-huddle-1", "spec", "room")).To(Succeed())
		err := helpdesk.Create(ctx, elsewhere)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring(`spec.room: Forbidden: carol@contoso.com may not create a ticket for room "sea-huddle-1"`))
		taken := &v1alpha1.Ticket{}
		Expect(admin.Get(ctx, room(opened.GetName()), taken)).To(Succeed())
		Expect(patchWithSample(helpdesk, taken, "tickets/20-in-progress.patch.yaml")).To(Succeed())
		carries(taken, "tickets/20-in-progress.patch.yaml")
		tickets := &v1alpha1.TicketList{}
		Expect(helpdesk.List(ctx, tickets, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelRoom: "nyc-conf-a"})).To(Succeed())
		Expect(names(ptrs(tickets.Items))).To(ConsistOf(opened.GetName()))

		By("the customer adds the Berlin room")
		applySamples(admin, "extend")
		Eventually(func() error { return as(alice).Get(ctx, room("ber-board"), &v1alpha1.Room{}) }).Should(Succeed())

		By("the partner's tenant manager ends the partnership")
		Expect(as("tm@contoso.com", managers...).Delete(ctx, link)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsForbidden(as(alice).Get(ctx, room("nyc-conf-a"), &v1alpha1.Room{}))
		}).Should(BeTrue())
		Eventually(func() bool { return apierrors.IsNotFound(admin.Get(ctx, room("contoso"), link)) }).Should(BeTrue())
		roles := &v1alpha1.PartnerRoleList{}
		Expect(admin.List(ctx, roles, client.InNamespace(ns))).To(Succeed())
		Expect(roles.Items).To(BeEmpty())
		rooms := &v1alpha1.RoomList{}
		Expect(admin.List(ctx, rooms, client.InNamespace(ns), client.HasLabels{v1alpha1.AccessLabel("contoso.com")})).To(Succeed())
		Expect(rooms.Items).To(BeEmpty())
	})
})
