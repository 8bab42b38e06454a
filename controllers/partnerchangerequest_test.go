package controllers_test

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/changecontrol"
)

// refusals holds, per namespace, the refusal the fake re-check answers; a
// namespace without one is allowed. The suite runs no admission webhooks,
// so the specs stand in for the admission package's re-check.
var refusals sync.Map

func fakeRecheck(_ context.Context, _ changecontrol.Requester, pcr *v1alpha1.PartnerChangeRequest, _ client.Object) error {
	if m, ok := refusals.Load(pcr.Namespace); ok {
		return &changecontrol.Refusal{Message: m.(string)}
	}
	return nil
}

const (
	requesterUser = "alice@contoso.com"
	approverUser  = "bob@customer.example"
)

// settledRoom creates a room outside every partner's scope and waits for
// the operator's status write, so that its resourceVersion holds still.
func settledRoom(ns, name string) *v1alpha1.Room {
	GinkgoHelper()
	r := room(ns, name, map[string]string{"floor": "3"})
	create(r)
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(r), r)).To(Succeed())
		c := meta.FindStatusCondition(r.Status.Conditions, v1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.ObservedGeneration).To(Equal(r.Generation))
	}).Should(Succeed())
	return r
}

// roomChange is a request, as admission would have made it, to update room
// to what change makes of it.
func roomChange(ns, name, linkName string, r *v1alpha1.Room, change func(*v1alpha1.Room)) *v1alpha1.PartnerChangeRequest {
	GinkgoHelper()
	intended := r.DeepCopy()
	change(intended)
	intended.APIVersion, intended.Kind = "partners.roompro.io/v1alpha1", "Room"
	intended.Status = v1alpha1.RoomStatus{}
	intended.ManagedFields = nil
	raw, err := json.Marshal(intended)
	Expect(err).NotTo(HaveOccurred())
	return &v1alpha1.PartnerChangeRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{
			v1alpha1.AnnotationRequestedBy: requesterUser, v1alpha1.AnnotationRequestedByGroups: "contoso.com:helpdesk",
		}, Labels: map[string]string{v1alpha1.LabelPartnerLink: linkName}},
		Spec: v1alpha1.PartnerChangeRequestSpec{
			PartnerLink: linkName, Category: v1alpha1.CategoryRooms, Operation: v1alpha1.OperationUpdate,
			Target: v1alpha1.ChangeTarget{APIVersion: "partners.roompro.io/v1alpha1", Kind: "Room", Name: r.Name},
			Object: &runtime.RawExtension{Raw: raw}, BaseResourceVersion: r.ResourceVersion, Reason: "rename for the move",
		},
	}
}

// decide sets the decision as the customer would, with the stamps the
// admission webhook adds.
func decide(pcr *v1alpha1.PartnerChangeRequest, decision v1alpha1.ChangeDecision) {
	GinkgoHelper()
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pcr), pcr)).To(Succeed())
	before := pcr.DeepCopy()
	pcr.Spec.Decision = decision
	pcr.Spec.DecisionMessage = "ok by facilities"
	pcr.Annotations[v1alpha1.AnnotationDecidedBy] = approverUser
	pcr.Annotations[v1alpha1.AnnotationDecidedAt] = fakeClock.Now().UTC().Format(time.RFC3339)
	// A merge patch: the operator's status writes do not conflict with it.
	Expect(k8sClient.Patch(ctx, pcr, client.MergeFrom(before))).To(Succeed())
}

func pcrPhase(p *v1alpha1.PartnerChangeRequest) v1alpha1.ChangeRequestPhase { return p.Status.Phase }

func appliedReason(p *v1alpha1.PartnerChangeRequest) string {
	if c := meta.FindStatusCondition(p.Status.Conditions, "Applied"); c != nil {
		return c.Reason
	}
	return ""
}

func liveRoom(ns, name string) *v1alpha1.Room {
	GinkgoHelper()
	r := &v1alpha1.Room{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, r)).To(Succeed())
	return r
}

// changeLines are the ChangeRequest audit lines of one request.
func changeLines(ns, name string) func() []audit.Line {
	return func() []audit.Line {
		var out []audit.Line
		for _, l := range auditLines() {
			if l.Category == audit.CategoryChangeRequest && l.TenantID == ns && l.ObjectName == name {
				out = append(out, l)
			}
		}
		return out
	}
}

// eventsOn are the reasons of the Events about one object.
func eventsOn(ns, kind, name string) func() []string {
	return func() []string {
		GinkgoHelper()
		list := &corev1.EventList{}
		Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		var reasons []string
		for _, e := range list.Items {
			if e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name {
				reasons = append(reasons, e.Reason)
			}
		}
		return reasons
	}
}

var _ = Describe("PartnerChangeRequest", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		activeLink(ns, "contoso", "contoso.com")
	})

	It("previews exactly the changed fields, and applies an approved room update once, marked with who asked and who approved", func() {
		r := settledRoom(ns, "nyc")
		pcr := roomChange(ns, "rename-nyc", "contoso", r, func(r *v1alpha1.Room) {
			r.Spec.DisplayName = "New York"
			r.Spec.Site = "HQ"
		})
		create(pcr)
		Eventually(fetch(pcr)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangePending)))
		Eventually(func() []v1alpha1.FieldChange { return fetch(pcr)().Status.Preview }).Should(Equal([]v1alpha1.FieldChange{
			{Path: "/spec/displayName", Before: `"nyc"`, After: `"New York"`},
			{Path: "/spec/site", After: `"HQ"`},
		}))
		Expect(pcr.Status.RequestedBy).To(Equal(requesterUser))
		Expect(pcr.Status.RequestedAt.Equal(&pcr.CreationTimestamp)).To(BeTrue())
		Expect(pcr.Status.ExpiresAt.Time).To(BeTemporally("==", pcr.CreationTimestamp.Add(7*24*time.Hour)))
		Expect(meta.IsStatusConditionTrue(pcr.Status.Conditions, "Previewed")).To(BeTrue())
		Expect(liveRoom(ns, "nyc").Spec.DisplayName).To(Equal("nyc"), "a pending request writes nothing")

		decide(pcr, v1alpha1.DecisionApproved)
		Eventually(fetch(pcr)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangeApplied)))
		Expect(pcr.Status.DecidedBy).To(Equal(approverUser))
		Expect(pcr.Status.AppliedAt).NotTo(BeNil())
		Expect(meta.IsStatusConditionTrue(pcr.Status.Conditions, "Applied")).To(BeTrue())
		applied := liveRoom(ns, "nyc")
		Expect(applied.Spec.DisplayName).To(Equal("New York"))
		Expect(applied.Spec.Site).To(Equal("HQ"))
		Expect(applied.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationChangeRequest, "rename-nyc"))
		Expect(applied.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationChangeRequestedBy, requesterUser))
		Expect(applied.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationChangeApprovedBy, approverUser))
		Expect(applied.Labels).To(HaveKeyWithValue("floor", "3"))

		// Once: the room is written once, each step audited and evented once.
		Eventually(changeLines(ns, "rename-nyc")).Should(HaveLen(3))
		Consistently(changeLines(ns, "rename-nyc")).Should(HaveLen(3))
		lines := changeLines(ns, "rename-nyc")()
		Expect(lines[0]).To(And(HaveField("UserID", requesterUser), HaveField("Operation", audit.OperationUpdate), HaveField("ResultStatus", audit.Successful)))
		Expect(lines[1]).To(And(HaveField("UserID", approverUser), HaveField("ResultStatus", audit.Successful)))
		Expect(lines[2]).To(And(HaveField("UserID", requesterUser), HaveField("ResultStatus", audit.Successful), HaveField("Detail", ContainSubstring("applied"))))
		want := ConsistOf("Requested", "Approved", "ChangeApplied")
		Eventually(eventsOn(ns, "PartnerChangeRequest", "rename-nyc")).Should(want)
		Eventually(eventsOn(ns, "Room", "nyc")).Should(want)
		Consistently(eventsOn(ns, "Room", "nyc")).Should(want)
		Expect(liveRoom(ns, "nyc").Generation).To(Equal(applied.Generation), "written once")
	})

	It("writes nothing for a denied request", func() {
		r := settledRoom(ns, "nyc")
		pcr := roomChange(ns, "deny-me", "contoso", r, func(r *v1alpha1.Room) { r.Spec.DisplayName = "Denied" })
		create(pcr)
		Eventually(fetch(pcr)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangePending)))
		decide(pcr, v1alpha1.DecisionDenied)
		Eventually(fetch(pcr)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangeDenied)))
		Expect(appliedReason(pcr)).To(Equal("Denied"))
		Consistently(func() string { return liveRoom(ns, "nyc").Spec.DisplayName }).Should(Equal("nyc"))
		Expect(changeLines(ns, "deny-me")()).To(ConsistOf(
			HaveField("UserID", requesterUser),
			And(HaveField("UserID", approverUser), HaveField("ResultStatus", audit.Failed))))
	})

	It("fails Conflict, writing nothing, when the room changed after the request", func() {
		r := settledRoom(ns, "nyc")
		pcr := roomChange(ns, "stale", "contoso", r, func(r *v1alpha1.Room) { r.Spec.DisplayName = "Stale" })
		create(pcr)
		Eventually(fetch(pcr)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangePending)))
		moved := liveRoom(ns, "nyc")
		moved.Spec.Site = "moved by the customer"
		Expect(k8sClient.Update(ctx, moved)).To(Succeed())
		decide(pcr, v1alpha1.DecisionApproved)
		Eventually(fetch(pcr)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangeFailed)))
		Expect(appliedReason(pcr)).To(Equal("Conflict"))
		now := liveRoom(ns, "nyc")
		Expect(now.Spec.DisplayName).To(Equal("nyc"))
		Expect(now.Annotations).NotTo(HaveKey(v1alpha1.AnnotationChangeRequest))
		Eventually(changeLines(ns, "stale")).Should(ContainElement(And(HaveField("ResultStatus", audit.Failed), HaveField("Detail", ContainSubstring("Conflict")))))
	})

	It("fails TargetGone when the room was deleted", func() {
		r := settledRoom(ns, "nyc")
		pcr := roomChange(ns, "gone", "contoso", r, func(r *v1alpha1.Room) { r.Spec.DisplayName = "Gone" })
		create(pcr)
		Eventually(fetch(pcr)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangePending)))
		Expect(k8sClient.Delete(ctx, r)).To(Succeed())
		decide(pcr, v1alpha1.DecisionApproved)
		Eventually(fetch(pcr)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangeFailed)))
		Expect(appliedReason(pcr)).To(Equal("TargetGone"))
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(r), &v1alpha1.Room{}))).To(BeTrue())
	})

	It("fails NoLongerAuthorized, writing nothing, when the re-check refuses the requester", func() {
		r := settledRoom(ns, "nyc")
		pcr := roomChange(ns, "revoked", "contoso", r, func(r *v1alpha1.Room) { r.Spec.DisplayName = "Revoked" })
		create(pcr)
		Eventually(fetch(pcr)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangePending)))
		refusals.Store(ns, "no role of alice@contoso.com grants rooms.update on room nyc")
		DeferCleanup(func() { refusals.Delete(ns) })
		decide(pcr, v1alpha1.DecisionApproved)
		Eventually(fetch(pcr)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangeFailed)))
		Expect(appliedReason(pcr)).To(Equal("NoLongerAuthorized"))
		Expect(meta.FindStatusCondition(pcr.Status.Conditions, "Applied").Message).To(ContainSubstring("no role of alice@contoso.com grants rooms.update"))
		Consistently(func() string { return liveRoom(ns, "nyc").Spec.DisplayName }).Should(Equal("nyc"))
	})

	It("fails the pending requests of a deleted link LinkGone", func() {
		r := settledRoom(ns, "nyc")
		pcr := roomChange(ns, "offboarded", "contoso", r, func(r *v1alpha1.Room) { r.Spec.DisplayName = "Offboarded" })
		create(pcr)
		Eventually(fetch(pcr)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangePending)))
		Expect(k8sClient.Delete(ctx, &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "contoso"}})).To(Succeed())
		Eventually(fetch(pcr)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangeFailed)))
		Expect(appliedReason(pcr)).To(Equal("LinkGone"))
		Eventually(changeLines(ns, "offboarded")).Should(ContainElement(And(HaveField("UserID", audit.OperatorUser), HaveField("ResultStatus", audit.Failed))))
		Expect(liveRoom(ns, "nyc").Spec.DisplayName).To(Equal("nyc"))
	})

	It("expires a pending request at expiresAt and not a second before", func() {
		r := settledRoom(ns, "nyc")
		pcr := roomChange(ns, "expiring", "contoso", r, func(r *v1alpha1.Room) { r.Spec.DisplayName = "Late" })
		create(pcr)
		Eventually(fetch(pcr)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangePending)))
		deadline := pcr.Status.ExpiresAt.Time
		fakeClock.SetTime(deadline.Add(-time.Second))
		Consistently(fetch(pcr)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangePending)))
		fakeClock.SetTime(deadline)
		Eventually(fetch(pcr)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangeExpired)))
		Expect(appliedReason(pcr)).To(Equal("Expired"))
		Eventually(changeLines(ns, "expiring")).Should(ContainElement(And(HaveField("UserID", audit.OperatorUser), HaveField("ResultStatus", audit.Failed))))
		Expect(liveRoom(ns, "nyc").Spec.DisplayName).To(Equal("nyc"))
	})

	It("creates an approved role, then deletes it for an approved Delete, each once", func() {
		role := &v1alpha1.PartnerRole{
			TypeMeta:   metav1.TypeMeta{APIVersion: "partners.roompro.io/v1alpha1", Kind: "PartnerRole"},
			ObjectMeta: metav1.ObjectMeta{Name: "contoso-helpdesk", Namespace: ns},
			Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso", Permissions: []v1alpha1.Permission{v1alpha1.RoomsView},
				Assignments: []v1alpha1.RoleAssignment{{Name: "desk", Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "carol@contoso.com"}}}}},
		}
		raw, err := json.Marshal(role)
		Expect(err).NotTo(HaveOccurred())
		request := func(name string, op v1alpha1.ChangeOperation) *v1alpha1.PartnerChangeRequest {
			return &v1alpha1.PartnerChangeRequest{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{v1alpha1.AnnotationRequestedBy: requesterUser}},
				Spec: v1alpha1.PartnerChangeRequestSpec{PartnerLink: "contoso", Category: v1alpha1.CategoryRoles, Operation: op,
					Target: v1alpha1.ChangeTarget{APIVersion: "partners.roompro.io/v1alpha1", Kind: "PartnerRole", Name: "contoso-helpdesk"}},
			}
		}
		add := request("add-helpdesk", v1alpha1.OperationCreate)
		add.Spec.Object = &runtime.RawExtension{Raw: raw}
		create(add)
		Eventually(func(g Gomega) {
			got := fetch(add)()
			g.Expect(got.Status.Preview).To(ContainElement(v1alpha1.FieldChange{Path: "/spec/permissions", After: `["rooms.view"]`}), "conditions: %+v", got.Status.Conditions)
		}).Should(Succeed())
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(role), &v1alpha1.PartnerRole{}))).To(BeTrue(), "a dry run creates nothing")
		decide(add, v1alpha1.DecisionApproved)
		Eventually(fetch(add)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangeApplied)))
		created := &v1alpha1.PartnerRole{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(role), created)).To(Succeed())
		Expect(created.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationChangeRequest, "add-helpdesk"))
		Expect(created.Spec.Permissions).To(Equal([]v1alpha1.Permission{v1alpha1.RoomsView}))

		// The role controller's status write moves the resourceVersion:
		// request the delete against the settled role.
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(role), created)).To(Succeed())
			c := meta.FindStatusCondition(created.Status.Conditions, v1alpha1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.ObservedGeneration).To(Equal(created.Generation))
		}).Should(Succeed())
		remove := request("remove-helpdesk", v1alpha1.OperationDelete)
		remove.Spec.BaseResourceVersion = created.ResourceVersion
		create(remove)
		Eventually(func() []v1alpha1.FieldChange { return fetch(remove)().Status.Preview }).Should(ContainElement(
			v1alpha1.FieldChange{Path: "/spec/permissions", Before: `["rooms.view"]`}))
		decide(remove, v1alpha1.DecisionApproved)
		Eventually(fetch(remove)).Should(WithTransform(pcrPhase, Equal(v1alpha1.ChangeApplied)))
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(role), &v1alpha1.PartnerRole{}))).To(BeTrue())
		Eventually(changeLines(ns, "remove-helpdesk")).Should(HaveLen(3))
		Consistently(changeLines(ns, "remove-helpdesk")).Should(HaveLen(3))
	})
})
