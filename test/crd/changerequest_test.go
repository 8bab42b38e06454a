package crd_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The messages of the PartnerChangeRequest's CEL rules
// (api/v1alpha1/partnerchangerequest_types.go), each on spec.
const (
	pcrIdentityImmutable = "partnerLink, category, operation and target are immutable; create a new request for another change"
	pcrObjectImmutable   = "object is immutable; create a new request for another change"
	pcrBaseImmutable     = "baseResourceVersion and reason are immutable; create a new request for another change"
	pcrDecisionFinal     = "a decision is final: decision and decisionMessage cannot change once decision is set"
	pcrMessageNeedsOne   = "decisionMessage goes with a decision: set both in one write"
	pcrObjectPerOp       = "object is required for Create and Update, and must be absent for Delete"
	pcrBasePerOp         = "baseResourceVersion is required for Update and Delete (the target's metadata.resourceVersion the change was made against), and must be absent for Create"
	pcrCategoryAndTarget = "category and target must agree: rooms updates a Room; roles creates, updates or deletes a PartnerRole; tickets creates or updates a Ticket"
)

// A partner's room patch held for approval: the whole intended room, the
// room's resourceVersion it was made against, and the partner's words.
const validRoomChange = `
apiVersion: partners.roompro.io/v1alpha1
kind: PartnerChangeRequest
metadata:
  name: rooms-conf-a
  labels:
    partners.roompro.io/partner-link: contoso
spec:
  partnerLink: contoso
  category: rooms
  operation: Update
  target:
    apiVersion: partners.roompro.io/v1alpha1
    kind: Room
    name: conf-a
  object:
    apiVersion: partners.roompro.io/v1alpha1
    kind: Room
    metadata:
      name: conf-a
    spec:
      displayName: Conference A
      site: nyc
      country: US
      updateRing: preview
  baseResourceVersion: "4711"
  reason: move conf-a to the preview ring
`

// A partner's new role, proposed directly.
const validRoleCreate = `
apiVersion: partners.roompro.io/v1alpha1
kind: PartnerChangeRequest
metadata:
  name: roles-contoso-rings
spec:
  partnerLink: contoso
  category: roles
  operation: Create
  target:
    apiVersion: partners.roompro.io/v1alpha1
    kind: PartnerRole
    name: contoso-rings
  object:
    apiVersion: partners.roompro.io/v1alpha1
    kind: PartnerRole
    metadata:
      name: contoso-rings
    spec:
      partnerLink: contoso
      permissions: [rooms.view, updateRings.view, updateRings.modify]
      assignments:
      - name: ring-managers
        members:
        - kind: Group
          name: contoso.com:ring-managers
`

// A partner's delete of one of its roles.
const validRoleDelete = `
apiVersion: partners.roompro.io/v1alpha1
kind: PartnerChangeRequest
metadata:
  name: roles-contoso-helpdesk-delete
spec:
  partnerLink: contoso
  category: roles
  operation: Delete
  target:
    apiVersion: partners.roompro.io/v1alpha1
    kind: PartnerRole
    name: contoso-helpdesk
  baseResourceVersion: "815"
`

// A ticket opened by a partner.
const validTicketCreate = `
apiVersion: partners.roompro.io/v1alpha1
kind: PartnerChangeRequest
metadata:
  name: tickets-conf-a
spec:
  partnerLink: contoso
  category: tickets
  operation: Create
  target:
    apiVersion: partners.roompro.io/v1alpha1
    kind: Ticket
    name: conf-a-display
  object:
    apiVersion: partners.roompro.io/v1alpha1
    kind: Ticket
    metadata:
      name: conf-a-display
    spec:
      room: conf-a
      title: the front-of-room display flickers
      severity: Medium
      state: Open
`

// as the change of a Create to an Update: baseResourceVersion added.
func asUpdate(create string) string {
	return with(with(create, "operation: Create", "operation: Update"), "\n  target:", "\n  baseResourceVersion: \"99\"\n  target:")
}

var _ = Describe("a PartnerChangeRequest", func() {
	It("is stored for every operation with the object and base version that operation needs", func() {
		room := expectAccepted(manifest(validRoomChange))
		Expect(field(room, "spec", "object", "spec", "updateRing")).To(Equal("preview"))
		Expect(field(room, "spec", "baseResourceVersion")).To(Equal("4711"))
		Expect(room.GetLabels()).To(HaveKeyWithValue("partners.roompro.io/partner-link", "contoso"))

		create := expectAccepted(manifest(validRoleCreate))
		Expect(field(create, "spec", "object", "spec", "permissions")).To(ConsistOf("rooms.view", "updateRings.view", "updateRings.modify"))
		_, hasBase, _ := unstructured.NestedString(create.Object, "spec", "baseResourceVersion")
		Expect(hasBase).To(BeFalse())

		update := expectAccepted(manifest(with(asUpdate(validRoleCreate), "name: roles-contoso-rings\n", "name: roles-contoso-rings-update\n")))
		Expect(field(update, "spec", "baseResourceVersion")).To(Equal("99"))

		del := expectAccepted(manifest(validRoleDelete))
		_, hasObject, _ := unstructured.NestedMap(del.Object, "spec", "object")
		Expect(hasObject).To(BeFalse())

		expectAccepted(manifest(validTicketCreate))
		expectAccepted(manifest(with(asUpdate(validTicketCreate), "name: tickets-conf-a\n", "name: tickets-conf-a-update\n")))
	})

	It("shows partner, category, operation, target, requester, phase and age in kubectl get, decider and reason with -o wide", func() {
		expectAccepted(manifest(with(validRoomChange, "name: rooms-conf-a\n", "name: rooms-conf-a-columns\n")))
		httpClient, err := rest.HTTPClientFor(cp.Config)
		Expect(err).NotTo(HaveOccurred())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			strings.TrimSuffix(cp.Config.Host, "/")+"/apis/partners.roompro.io/v1alpha1/namespaces/"+namespace+"/partnerchangerequests/rooms-conf-a-columns", nil)
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
		resp, err := httpClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			Fail(fmt.Sprintf("GET %s: %s: %s", req.URL, resp.Status, body))
		}
		table := &metav1.Table{}
		Expect(json.NewDecoder(resp.Body).Decode(table)).To(Succeed())
		var columns, wide []string
		for _, c := range table.ColumnDefinitions {
			if c.Priority == 0 {
				columns = append(columns, c.Name)
			} else {
				wide = append(wide, c.Name)
			}
		}
		Expect(columns).To(Equal([]string{"Name", "Partner", "Category", "Operation", "Target", "Requested By", "Phase", "Age"}))
		Expect(wide).To(Equal([]string{"Decided By", "Reason"}))
		Expect(table.Rows).NotTo(BeEmpty())
		Expect(table.Rows[0].Cells[1:5]).To(Equal([]any{"contoso", "rooms", "Update", "conf-a"}))
	})
})

var _ = DescribeTable("an invalid PartnerChangeRequest is rejected on spec with the rule's message, and nothing is stored",
	func(y, field, reason string) { expectRejected(manifest(y), field, reason) },

	// object per operation
	Entry("an Update without object", with(validRoomChange, "  object:\n", "  other:\n"), "spec", pcrObjectPerOp),
	Entry("a Create without object", with(validRoleCreate, "  object:\n", "  other:\n"), "spec", pcrObjectPerOp),
	Entry("a Delete with an object", with(validRoleDelete, "  baseResourceVersion:", "  object: {apiVersion: partners.roompro.io/v1alpha1, kind: PartnerRole, metadata: {name: contoso-helpdesk}}\n  baseResourceVersion:"), "spec", pcrObjectPerOp),

	// baseResourceVersion per operation
	Entry("an Update without baseResourceVersion", with(validRoomChange, `  baseResourceVersion: "4711"`+"\n", ""), "spec", pcrBasePerOp),
	Entry("a Delete without baseResourceVersion", with(validRoleDelete, `  baseResourceVersion: "815"`+"\n", ""), "spec", pcrBasePerOp),
	Entry("a Create with a baseResourceVersion", with(validRoleCreate, "  operation: Create\n", "  operation: Create\n  baseResourceVersion: \"12\"\n"), "spec", pcrBasePerOp),

	// category and target agree
	Entry("rooms targeting a PartnerRole", with(validRoomChange, "    kind: Room\n    name: conf-a", "    kind: PartnerRole\n    name: conf-a"), "spec", pcrCategoryAndTarget),
	Entry("rooms creating a Room", with(with(validRoomChange, "operation: Update", "operation: Create"), `  baseResourceVersion: "4711"`+"\n", ""), "spec", pcrCategoryAndTarget),
	Entry("rooms deleting a Room", with(with(validRoleDelete, "category: roles", "category: rooms"), "    kind: PartnerRole\n    name: contoso-helpdesk", "    kind: Room\n    name: conf-a"), "spec", pcrCategoryAndTarget),
	Entry("roles targeting a Room", with(validRoleDelete, "    kind: PartnerRole\n    name: contoso-helpdesk", "    kind: Room\n    name: conf-a"), "spec", pcrCategoryAndTarget),
	Entry("tickets targeting a Room", with(validTicketCreate, "    kind: Ticket\n    name: conf-a-display", "    kind: Room\n    name: conf-a"), "spec", pcrCategoryAndTarget),
	Entry("tickets deleting a Ticket", with(with(validRoleDelete, "category: roles", "category: tickets"), "    kind: PartnerRole\n    name: contoso-helpdesk", "    kind: Ticket\n    name: conf-a-display"), "spec", pcrCategoryAndTarget),

	// decisionMessage goes with a decision
	Entry("a decisionMessage without a decision", with(validRoomChange, "  reason:", "  decisionMessage: fine by me\n  reason:"), "spec", pcrMessageNeedsOne),

	// the schema
	Entry("an unknown category", with(validRoomChange, "category: rooms", "category: settings"), "spec.category", `supported values: "rooms", "roles", "tickets"`),
	Entry("an unknown operation", with(validRoomChange, "operation: Update", "operation: Patch"), "spec.operation", `supported values: "Create", "Update", "Delete"`),
	Entry("an unknown decision", with(validRoomChange, "  reason:", "  decision: Maybe\n  reason:"), "spec.decision", `supported values: "Approved", "Denied"`),
	Entry("a target of another API", with(validRoomChange, "  target:\n    apiVersion: partners.roompro.io/v1alpha1", "  target:\n    apiVersion: v1"), "spec.target.apiVersion", `supported values: "partners.roompro.io/v1alpha1"`),
	Entry("a target of an unknown kind", with(validRoomChange, "    kind: Room\n    name: conf-a", "    kind: Secret\n    name: conf-a"), "spec.target.kind", `supported values: "Room", "PartnerRole", "Ticket"`),
	Entry("a target without a name", with(validRoomChange, "    kind: Room\n    name: conf-a", "    kind: Room"), "spec.target.name", "Required value"),
	Entry("a request without a partnerLink", with(validRoomChange, "  partnerLink: contoso\n", ""), "spec.partnerLink", "Required value"),
	Entry("an object without a kind", with(validRoomChange, "  object:\n    apiVersion: partners.roompro.io/v1alpha1\n    kind: Room\n", "  object:\n    apiVersion: partners.roompro.io/v1alpha1\n"), "spec.object.kind", "Required value"),
	Entry("a reason longer than 1024 characters", with(validRoomChange, "reason: move conf-a to the preview ring", "reason: "+strings.Repeat("x", 1025)), "spec.reason", "Too long"),

	// the invitation's request expiry
	Entry("requestExpiryDays 0", with(validInvitation, "termsAccepted: true", "termsAccepted: true\n  approvals:\n    rooms: Manual\n    requestExpiryDays: 0"), "spec.approvals.requestExpiryDays", "greater than or equal to 1"),
	Entry("requestExpiryDays 31", with(validInvitation, "termsAccepted: true", "termsAccepted: true\n  approvals:\n    rooms: Manual\n    requestExpiryDays: 31"), "spec.approvals.requestExpiryDays", "less than or equal to 30"),
)

var _ = Describe("a stored PartnerChangeRequest", func() {
	// refused updates the stored request with change and asserts that the
	// apiserver refuses it on spec with message, and that the stored request
	// is unchanged: nothing half-written.
	refused := func(stored *unstructured.Unstructured, message string, change func(spec map[string]any)) {
		GinkgoHelper()
		before := &unstructured.Unstructured{}
		before.SetGroupVersionKind(stored.GroupVersionKind())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(stored), before)).To(Succeed())
		updated := before.DeepCopy()
		spec, _, _ := unstructured.NestedMap(updated.Object, "spec")
		change(spec)
		Expect(unstructured.SetNestedMap(updated.Object, spec, "spec")).To(Succeed())
		err := k8sClient.Update(ctx, updated)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
		Expect(err.Error()).To(ContainSubstring("spec: Invalid value"))
		Expect(err.Error()).To(ContainSubstring(message))
		after := &unstructured.Unstructured{}
		after.SetGroupVersionKind(stored.GroupVersionKind())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(stored), after)).To(Succeed())
		Expect(after.GetResourceVersion()).To(Equal(before.GetResourceVersion()), "the refused update stored something")
		Expect(after.Object["spec"]).To(Equal(before.Object["spec"]))
	}
	accepted := func(stored *unstructured.Unstructured, change func(spec map[string]any)) *unstructured.Unstructured {
		GinkgoHelper()
		current := &unstructured.Unstructured{}
		current.SetGroupVersionKind(stored.GroupVersionKind())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(stored), current)).To(Succeed())
		spec, _, _ := unstructured.NestedMap(current.Object, "spec")
		change(spec)
		Expect(unstructured.SetNestedMap(current.Object, spec, "spec")).To(Succeed())
		Expect(k8sClient.Update(ctx, current)).To(Succeed())
		return current
	}
	set := func(path ...string) func(value any) func(map[string]any) {
		return func(value any) func(map[string]any) {
			return func(spec map[string]any) { Expect(unstructured.SetNestedField(spec, value, path...)).To(Succeed()) }
		}
	}
	remove := func(path ...string) func(map[string]any) {
		return func(spec map[string]any) { unstructured.RemoveNestedField(spec, path...) }
	}

	It("keeps partnerLink, category, operation and target", func() {
		pcr := expectAccepted(manifest(with(validRoomChange, "name: rooms-conf-a\n", "name: rooms-conf-a-identity\n")))
		refused(pcr, pcrIdentityImmutable, set("partnerLink")("fabrikam"))
		refused(pcr, pcrIdentityImmutable, func(spec map[string]any) {
			spec["category"] = "roles"
			Expect(unstructured.SetNestedField(spec, "PartnerRole", "target", "kind")).To(Succeed())
		})
		refused(pcr, pcrIdentityImmutable, set("category")("tickets"))
		refused(pcr, pcrIdentityImmutable, set("operation")("Delete"))
		refused(pcr, pcrIdentityImmutable, set("target", "name")("conf-b"))
	})

	It("keeps object, baseResourceVersion and reason, present or absent", func() {
		pcr := expectAccepted(manifest(with(validRoomChange, "name: rooms-conf-a\n", "name: rooms-conf-a-object\n")))
		refused(pcr, pcrObjectImmutable, set("object", "spec", "updateRing")("general"))
		refused(pcr, pcrObjectImmutable, set("object", "metadata", "labels")(map[string]any{"site": "nyc"}))
		refused(pcr, pcrObjectImmutable, remove("object"))
		refused(pcr, pcrBaseImmutable, set("baseResourceVersion")("4712"))
		refused(pcr, pcrBaseImmutable, remove("baseResourceVersion"))
		refused(pcr, pcrBaseImmutable, set("reason")("another reason"))
		refused(pcr, pcrBaseImmutable, remove("reason"))

		del := expectAccepted(manifest(validRoleDelete))
		refused(del, pcrObjectImmutable, set("object")(map[string]any{
			"apiVersion": "partners.roompro.io/v1alpha1", "kind": "PartnerRole", "metadata": map[string]any{"name": "contoso-helpdesk"},
		}))
		refused(del, pcrBaseImmutable, set("reason")("added afterwards"))
	})

	It("takes a decision with its message in one write, and keeps it: a decision is final", func() {
		pcr := expectAccepted(manifest(with(validRoomChange, "name: rooms-conf-a\n", "name: rooms-conf-a-decision\n")))
		refused(pcr, pcrMessageNeedsOne, set("decisionMessage")("looks fine"))
		decided := accepted(pcr, func(spec map[string]any) {
			spec["decision"] = "Approved"
			spec["decisionMessage"] = "ok for the pilot"
		})
		Expect(field(decided, "spec", "decision")).To(Equal("Approved"))
		refused(pcr, pcrDecisionFinal, set("decision")("Denied"))
		refused(pcr, pcrDecisionFinal, remove("decision"))
		refused(pcr, pcrDecisionFinal, set("decisionMessage")("changed my mind"))
		refused(pcr, pcrDecisionFinal, remove("decisionMessage"))
		refused(pcr, pcrDecisionFinal, func(spec map[string]any) {
			delete(spec, "decision")
			delete(spec, "decisionMessage")
		})
		// Writing the same decision again is no change.
		accepted(pcr, func(map[string]any) {})

		// A decision without a message stays without one.
		denied := expectAccepted(manifest(validRoleCreate))
		accepted(denied, set("decision")("Denied"))
		refused(denied, pcrDecisionFinal, set("decisionMessage")("and here is why"))
		refused(denied, pcrDecisionFinal, set("decision")("Approved"))
	})

	It("changes metadata and status without touching the spec rules", func() {
		pcr := expectAccepted(manifest(with(validRoomChange, "name: rooms-conf-a\n", "name: rooms-conf-a-metadata\n")))
		pcr.SetAnnotations(map[string]string{"example.com/ticket": "CHG-1"})
		Expect(k8sClient.Update(ctx, pcr)).To(Succeed())
		Expect(unstructured.SetNestedField(pcr.Object, "Pending", "status", "phase")).To(Succeed())
		Expect(k8sClient.Status().Update(ctx, pcr)).To(Succeed())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pcr), pcr)).To(Succeed())
		Expect(field(pcr, "status", "phase")).To(Equal("Pending"))
	})
})
