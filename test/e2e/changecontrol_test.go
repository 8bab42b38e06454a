package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/controlplane"
)

// The customer's staff of the change-control specs: approver holds the
// shipped partner-approver ClusterRole in the namespace, reviewer may
// update change requests but holds no approve.
const (
	approver = "pat.approver"
	reviewer = "rob.reviewer"
)

var heldRequest = regexp.MustCompile(`held for the customer's approval as partnerchangerequest/([a-z0-9.-]+)`)

// held asserts that a write was refused because it is held, and returns the
// name of the request it produced.
func held(err error) string {
	GinkgoHelper()
	Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want Forbidden naming the request, got %v", err)
	m := heldRequest.FindStringSubmatch(err.Error())
	Expect(m).NotTo(BeNil(), "the refusal names the request: %v", err)
	return m[1]
}

// shippedClusterRole reads a ClusterRole of config/customer-roles, so the
// specs exercise the role a customer installs.
func shippedClusterRole(name string) *rbacv1.ClusterRole {
	GinkgoHelper()
	root, err := controlplane.RepositoryRoot()
	Expect(err).NotTo(HaveOccurred())
	files, err := filepath.Glob(filepath.Join(root, "config", "customer-roles", "*.yaml"))
	Expect(err).NotTo(HaveOccurred())
	for _, f := range files {
		data, err := os.ReadFile(f)
		Expect(err).NotTo(HaveOccurred())
		decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			role := &rbacv1.ClusterRole{}
			if decoder.Decode(role) != nil {
				break
			}
			if role.Kind == "ClusterRole" && role.Name == name {
				return role
			}
		}
	}
	Fail("config/customer-roles has no ClusterRole " + name)
	return nil
}

// changeRequest reads a request.
func changeRequest(ns, name string) *v1alpha1.PartnerChangeRequest {
	GinkgoHelper()
	pcr := &v1alpha1.PartnerChangeRequest{}
	Expect(admin.Get(ctx, key(ns, name), pcr)).To(Succeed())
	return pcr
}

func phaseOf(ns, name string) func() v1alpha1.ChangeRequestPhase {
	return func() v1alpha1.ChangeRequestPhase { return changeRequest(ns, name).Status.Phase }
}

// decide sets the decision of a request as user.
func decide(user, ns, name string, d v1alpha1.ChangeDecision, message string) error {
	pcr := &v1alpha1.PartnerChangeRequest{}
	Expect(admin.Get(ctx, key(ns, name), pcr)).To(Succeed())
	patch := client.MergeFrom(pcr.DeepCopy())
	pcr.Spec.Decision, pcr.Spec.DecisionMessage = d, message
	return as(user).Patch(ctx, pcr, patch)
}

// renameRoom patches a room's displayName as user.
func renameRoom(c client.Client, ns, name, to string, opts ...client.PatchOption) error {
	r := &v1alpha1.Room{}
	Expect(admin.Get(ctx, key(ns, name), r)).To(Succeed())
	patch := client.MergeFrom(r.DeepCopy())
	r.Spec.DisplayName = to
	return c.Patch(ctx, r, patch, opts...)
}

func displayName(ns, name string) func() string {
	return func() string {
		r := &v1alpha1.Room{}
		Expect(admin.Get(ctx, key(ns, name), r)).To(Succeed())
		return r.Spec.DisplayName
	}
}

// roomAllowed asks the apiserver whether user may get a room.
func roomAllowed(ns, name, user string, groups ...string) bool {
	GinkgoHelper()
	return review(&authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Group: v1alpha1.GroupVersion.Group, Resource: "rooms", Name: name}, user, groups...).Status.Allowed
}

// manualPartnership makes a partnership of contoso.com in ns with rooms and
// roles Manual, binds the approver and the reviewer.
func manualPartnership(ns string) {
	GinkgoHelper()
	partnership(ns)
	inv := &v1alpha1.PartnerInvitation{}
	Expect(admin.Get(ctx, key(ns, "contoso"), inv)).To(Succeed())
	patch := client.MergeFrom(inv.DeepCopy())
	inv.Spec.Approvals.Rooms, inv.Spec.Approvals.Roles = v1alpha1.ApprovalManual, v1alpha1.ApprovalManual
	Expect(admin.Patch(ctx, inv, patch)).To(Succeed())

	role := shippedClusterRole("partner-approver")
	if err := admin.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role.Name}, Rules: role.Rules}); !apierrors.IsAlreadyExists(err) {
		Expect(err).NotTo(HaveOccurred())
	}
	Expect(admin.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "change-reviewer", Namespace: ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"partnerchangerequests"},
			Verbs: []string{"get", "list", "watch", "update", "patch"}}},
	})).To(Succeed())
	for _, b := range []struct{ user, kind, role string }{{approver, "ClusterRole", role.Name}, {reviewer, "Role", "change-reviewer"}} {
		Expect(admin.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: b.user, Namespace: ns},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: b.user}},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: b.kind, Name: b.role},
		})).To(Succeed())
	}
}

var _ = Describe("manual change control of rooms", Ordered, func() {
	const ns = "cc-rooms"
	BeforeAll(func() { manualPartnership(ns) })

	It("holds a primary admin's room patch, previews it, and applies it once the customer approves", func() {
		name := held(renameRoom(as(alice), ns, "nyc", "New York, by the partner"))
		Expect(displayName(ns, "nyc")()).To(Equal("nyc"), "the held write changed nothing")

		pcr := changeRequest(ns, name)
		Expect(pcr.Spec.PartnerLink).To(Equal("contoso"))
		Expect(pcr.Spec.Category).To(Equal(v1alpha1.CategoryRooms))
		Expect(pcr.Spec.Operation).To(Equal(v1alpha1.OperationUpdate))
		Expect(pcr.Spec.Target).To(Equal(v1alpha1.ChangeTarget{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Room", Name: "nyc"}))
		Expect(pcr.Spec.BaseResourceVersion).NotTo(BeEmpty())
		Eventually(func() []v1alpha1.FieldChange { return changeRequest(ns, name).Status.Preview }).Should(ContainElement(
			v1alpha1.FieldChange{Path: "/spec/displayName", Before: `"nyc"`, After: `"New York, by the partner"`}))
		pcr = changeRequest(ns, name)
		Expect(pcr.Status.Phase).To(Equal(v1alpha1.ChangePending))
		Expect(pcr.Status.RequestedBy).To(Equal(alice))
		Expect(pcr.Status.ExpiresAt).NotTo(BeNil())
		Expect(pcr.Status.Preview).To(HaveLen(1), "only the displayName changes: %v", pcr.Status.Preview)

		Expect(decide(approver, ns, name, v1alpha1.DecisionApproved, "ok for the renovation")).To(Succeed())
		Eventually(displayName(ns, "nyc")).Should(Equal("New York, by the partner"))
		Eventually(phaseOf(ns, name)).Should(Equal(v1alpha1.ChangeApplied))
		pcr = changeRequest(ns, name)
		Expect(pcr.Status.DecidedBy).To(Equal(approver))
		Expect(pcr.Status.AppliedAt).NotTo(BeNil())
		r := &v1alpha1.Room{}
		Expect(admin.Get(ctx, key(ns, "nyc"), r)).To(Succeed())
		Expect(r.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationChangeRequest, name))
		Expect(r.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationChangeRequestedBy, alice))
		Expect(r.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationChangeApprovedBy, approver))
	})

	It("writes nothing for a denied request", func() {
		name := held(renameRoom(as(alice), ns, "sea", "Seattle, by the partner"))
		Expect(decide(approver, ns, name, v1alpha1.DecisionDenied, "not now")).To(Succeed())
		Eventually(phaseOf(ns, name)).Should(Equal(v1alpha1.ChangeDenied))
		Consistently(displayName(ns, "sea"), "1s").Should(Equal("sea"))
		// A decision is final.
		Expect(decide(approver, ns, name, v1alpha1.DecisionApproved, "changed my mind")).NotTo(Succeed())
	})

	It("lets nobody but a customer user with approve decide, and ignores a requester the body names", func() {
		name := held(renameRoom(as(alice), ns, "sea", "Seattle, again"))
		Expect(decide(alice, ns, name, v1alpha1.DecisionApproved, "")).To(Satisfy(apierrors.IsForbidden), "the requester cannot approve")
		Expect(decide(tm, ns, name, v1alpha1.DecisionApproved, "")).To(Satisfy(apierrors.IsForbidden), "a tenant manager of the partner cannot approve")
		err := decide(reviewer, ns, name, v1alpha1.DecisionApproved, "")
		Expect(err).To(HaveOccurred(), "a customer user without approve cannot decide")
		Expect(err.Error()).To(ContainSubstring("approve"))
		Expect(changeRequest(ns, name).Spec.Decision).To(BeEmpty())

		// A partner-authored request names someone else as its requester.
		pcr := changeRequest(ns, name)
		forged := &v1alpha1.PartnerChangeRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "forged-requester", Namespace: ns,
				Annotations: map[string]string{v1alpha1.AnnotationRequestedBy: "ceo@contoso.com"}},
			Spec: v1alpha1.PartnerChangeRequestSpec{PartnerLink: "contoso", Category: v1alpha1.CategoryRooms,
				Operation: v1alpha1.OperationUpdate, Target: pcr.Spec.Target, Object: pcr.Spec.Object,
				BaseResourceVersion: pcr.Spec.BaseResourceVersion, Reason: "the body says someone else asked"},
		}
		forged.Status.RequestedBy = "ceo@contoso.com"
		Expect(as(alice).Create(ctx, forged)).To(Succeed())
		Expect(changeRequest(ns, "forged-requester").Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationRequestedBy, alice))
		Eventually(func() string { return changeRequest(ns, "forged-requester").Status.RequestedBy }).Should(Equal(alice))
	})

	It("fails a request whose room changed since, and writes nothing", func() {
		name := held(renameRoom(as(alice), ns, "sea", "Seattle, stale"))
		Expect(renameRoom(admin, ns, "sea", "Seattle, by the customer")).To(Succeed())
		Expect(decide(approver, ns, name, v1alpha1.DecisionApproved, "")).To(Succeed())
		Eventually(phaseOf(ns, name)).Should(Equal(v1alpha1.ChangeFailed))
		Expect(changeRequest(ns, name).Status.Conditions).To(ContainElement(And(
			HaveField("Type", "Applied"), HaveField("Status", metav1.ConditionFalse), HaveField("Reason", "Conflict"))))
		Expect(displayName(ns, "sea")()).To(Equal("Seattle, by the customer"))
	})

	It("fails a request whose requester lost the role before approval, and writes nothing", func() {
		const dave = "dave@contoso.com"
		role := &v1alpha1.PartnerRole{
			ObjectMeta: metav1.ObjectMeta{Name: "contoso-room-editors", Namespace: ns},
			Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso",
				Permissions: []v1alpha1.Permission{v1alpha1.RoomsView, v1alpha1.RoomsModify},
				Assignments: []v1alpha1.RoleAssignment{{Name: "editors", Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: dave}}}}},
		}
		Expect(admin.Create(ctx, role)).To(Succeed(), "the customer's own role writes are never held")
		Eventually(func() bool { return roomAllowed(ns, "sea", dave) }).Should(BeTrue())
		name := held(renameRoom(as(dave), ns, "sea", "Seattle, by dave"))
		Expect(admin.Delete(ctx, role)).To(Succeed())
		Eventually(func() bool { return roomAllowed(ns, "sea", dave) }).Should(BeFalse())

		Expect(decide(approver, ns, name, v1alpha1.DecisionApproved, "")).To(Succeed())
		Eventually(phaseOf(ns, name)).Should(Equal(v1alpha1.ChangeFailed))
		Expect(changeRequest(ns, name).Status.Conditions).To(ContainElement(And(
			HaveField("Type", "Applied"), HaveField("Reason", "NoLongerAuthorized"))))
		Expect(displayName(ns, "sea")()).To(Equal("Seattle, by the customer"))
	})

	It("applies a request once when two approvers race", func() {
		name := held(renameRoom(as(alice), ns, "nyc", "New York, raced"))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() { errs[i] = decide(approver, ns, name, v1alpha1.DecisionApproved, "") })
		}
		wg.Wait()
		Expect(errs).To(ContainElement(BeNil()))
		Eventually(phaseOf(ns, name)).Should(Equal(v1alpha1.ChangeApplied))
		// The audit line follows the status write that records the apply.
		Eventually(func() int { return appliedAuditLines(ns, name) }).Should(Equal(1))
		Consistently(func() int { return appliedAuditLines(ns, name) }, "1s").Should(Equal(1))
	})

	It("applies later writes directly once the customer switches rooms to Auto, and leaves pending requests pending", func() {
		name := held(renameRoom(as(alice), ns, "nyc", "New York, pending"))
		inv := &v1alpha1.PartnerInvitation{}
		Expect(admin.Get(ctx, key(ns, "contoso"), inv)).To(Succeed())
		patch := client.MergeFrom(inv.DeepCopy())
		inv.Spec.Approvals.Rooms = v1alpha1.ApprovalAuto
		Expect(admin.Patch(ctx, inv, patch)).To(Succeed())
		Expect(renameRoom(as(alice), ns, "nyc", "New York, direct")).To(Succeed())
		Expect(displayName(ns, "nyc")()).To(Equal("New York, direct"))
		Consistently(phaseOf(ns, name), "1s").Should(Equal(v1alpha1.ChangePending))
	})
})

var _ = Describe("manual change control of roles", Ordered, func() {
	const ns = "cc-roles"
	const erin = "erin@contoso.com"
	BeforeAll(func() { manualPartnership(ns) })

	editors := func(name string) *v1alpha1.PartnerRole {
		return &v1alpha1.PartnerRole{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso",
				Permissions: []v1alpha1.Permission{v1alpha1.RoomsView},
				Assignments: []v1alpha1.RoleAssignment{{Name: "viewers", Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: erin}}}}},
		}
	}

	It("grants a new role's member nothing until the customer approves", func() {
		name := held(as(alice).Create(ctx, editors("contoso-viewers")))
		Expect(apierrors.IsNotFound(admin.Get(ctx, key(ns, "contoso-viewers"), &v1alpha1.PartnerRole{}))).To(BeTrue())
		Expect(roomAllowed(ns, "nyc", erin)).To(BeFalse())
		Expect(changeRequest(ns, name).Spec.Operation).To(Equal(v1alpha1.OperationCreate))

		Expect(decide(approver, ns, name, v1alpha1.DecisionApproved, "")).To(Succeed())
		Eventually(phaseOf(ns, name)).Should(Equal(v1alpha1.ChangeApplied))
		Eventually(func() bool { return roomAllowed(ns, "nyc", erin) }).Should(BeTrue())
	})

	It("never lets a denied role grant anything", func() {
		const frank = "frank@contoso.com"
		role := editors("contoso-denied")
		role.Spec.Assignments[0].Members[0].Name = frank
		name := held(as(alice).Create(ctx, role))
		Expect(decide(approver, ns, name, v1alpha1.DecisionDenied, "")).To(Succeed())
		Eventually(phaseOf(ns, name)).Should(Equal(v1alpha1.ChangeDenied))
		Consistently(func() bool { return roomAllowed(ns, "nyc", frank) }, "1s").Should(BeFalse())
		Expect(apierrors.IsNotFound(admin.Get(ctx, key(ns, "contoso-denied"), &v1alpha1.PartnerRole{}))).To(BeTrue())
	})

	It("keeps another partner out of the requests", func() {
		name := held(as(alice).Create(ctx, editors("contoso-other")))
		const bob = "bob@fabrikam.com"
		Expect(admin.Create(ctx, invitation(ns, "fabrikam", "fabrikam.com", 30))).To(Succeed())
		fab := link(ns, "fabrikam")
		fab.Spec.PartnerDomain = "fabrikam.com"
		fab.Spec.PrimaryAdmins = []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: bob}}
		acceptAs("tm@fabrikam.com", "fabrikam.com:tenant-managers", fab)
		Eventually(func() v1alpha1.LinkPhase {
			l := &v1alpha1.PartnerLink{}
			Expect(admin.Get(ctx, key(ns, "fabrikam"), l)).To(Succeed())
			return l.Status.Phase
		}).Should(Equal(v1alpha1.LinkActive))

		Eventually(func() error { return as(alice).Get(ctx, key(ns, name), &v1alpha1.PartnerChangeRequest{}) }).Should(Succeed(), "the requester reads its own request")
		Expect(as(bob).Get(ctx, key(ns, name), &v1alpha1.PartnerChangeRequest{})).To(Satisfy(apierrors.IsForbidden))
		Expect(as(bob).List(ctx, &v1alpha1.PartnerChangeRequestList{}, client.InNamespace(ns),
			client.MatchingLabels{v1alpha1.LabelPartnerLink: "contoso"})).To(Satisfy(apierrors.IsForbidden))
		Expect(decide(bob, ns, name, v1alpha1.DecisionApproved, "")).To(Satisfy(apierrors.IsForbidden))
		list := &v1alpha1.PartnerChangeRequestList{}
		Expect(as(alice).List(ctx, list, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelPartnerLink: "contoso"})).To(Succeed())
		Expect(list.Items).NotTo(BeEmpty())
		Expect(as(alice).List(ctx, list, client.InNamespace(ns))).To(Satisfy(apierrors.IsForbidden), "a list without the link's selector")
	})

	It("fails the pending requests of an offboarded partner", func() {
		name := held(as(alice).Create(ctx, editors("contoso-late")))
		Expect(admin.Delete(ctx, &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Name: "contoso", Namespace: ns}})).To(Succeed())
		Eventually(phaseOf(ns, name)).Should(Equal(v1alpha1.ChangeFailed))
		Expect(changeRequest(ns, name).Status.Conditions).To(ContainElement(HaveField("Reason", "LinkGone")))
	})
})

// appliedAuditLines counts the audit lines saying the operator applied
// request name in ns.
func appliedAuditLines(ns, name string) int {
	GinkgoHelper()
	n := 0
	for line := range strings.Lines(auditLog.String()) {
		var l audit.Line
		Expect(json.Unmarshal([]byte(line), &l)).To(Succeed(), line)
		if l.TenantID == ns && l.ObjectName == name && l.Category == audit.CategoryChangeRequest &&
			strings.HasPrefix(l.Detail, "the operator applied ") {
			n++
		}
	}
	return n
}
