package e2e

import (
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/operator"
)

// These specs run on the suite's kube-controller-manager: its namespace
// controller empties a deleted namespace and its garbage collector follows
// owner references, as on a real cluster, each as its own ServiceAccount
// (system:serviceaccount:kube-system:namespace-controller and
// ...:generic-garbage-collector), through the operator's admission webhooks.

const offboardFinalizer = "partners.roompro.io/offboard"

// partnership gives namespace ns a partnership of contoso.com in every part:
// rooms, an accepted invitation, an active link with its built-in role and
// initial assignment, a role of the partner's own, and an assignment the
// customer added; it returns once every room in scope carries the label.
func partnership(ns string) {
	GinkgoHelper()
	Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	for _, r := range []*v1alpha1.Room{room(ns, "nyc", "us"), room(ns, "sea", "us"), room(ns, "ber", "de")} {
		Expect(admin.Create(ctx, r)).To(Succeed())
	}
	Expect(admin.Create(ctx, invitation(ns, "contoso", domain, 30))).To(Succeed())
	accept(ns, "contoso")
	Eventually(func() v1alpha1.LinkPhase {
		l := &v1alpha1.PartnerLink{}
		Expect(admin.Get(ctx, key(ns, "contoso"), l)).To(Succeed())
		return l.Status.Phase
	}).Should(Equal(v1alpha1.LinkActive))

	Expect(admin.Create(ctx, &v1alpha1.RoomAssignment{
		ObjectMeta: metav1.ObjectMeta{Name: "contoso-berlin", Namespace: ns},
		Spec:       v1alpha1.RoomAssignmentSpec{PartnerLink: "contoso", Rooms: v1alpha1.RoomScope{Names: []string{"ber"}}},
	})).To(Succeed())
	helpdesk := &v1alpha1.PartnerRole{
		ObjectMeta: metav1.ObjectMeta{Name: "contoso-helpdesk", Namespace: ns},
		Spec: v1alpha1.PartnerRoleSpec{
			PartnerLink: "contoso",
			Permissions: []v1alpha1.Permission{v1alpha1.TicketsCreate, v1alpha1.TicketsView},
			Assignments: []v1alpha1.RoleAssignment{{Name: "helpdesk",
				Members: []v1alpha1.Subject{{Kind: v1alpha1.GroupSubject, Name: domain + ":helpdesk"}}}},
		},
	}
	Eventually(func() error { return as(alice).Create(ctx, helpdesk) }).Should(Succeed())
	Eventually(func() []string { return labelledRooms(ns) }).Should(ConsistOf("nyc", "sea", "ber"))
	// Settled: the controllers have seen every object (and recorded its
	// Event) before a spec deletes anything.
	for _, obj := range []client.Object{helpdesk, &v1alpha1.RoomAssignment{ObjectMeta: metav1.ObjectMeta{Name: "contoso-berlin", Namespace: ns}}} {
		Eventually(func() bool {
			Expect(admin.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
			return observedGeneration(obj) == obj.GetGeneration()
		}).Should(BeTrue(), "%s not reconciled", obj.GetName())
	}
}

// observedGeneration is the status.observedGeneration of a role or an
// assignment.
func observedGeneration(obj client.Object) int64 {
	switch o := obj.(type) {
	case *v1alpha1.PartnerRole:
		return o.Status.ObservedGeneration
	case *v1alpha1.RoomAssignment:
		return o.Status.ObservedGeneration
	}
	panic("no observedGeneration")
}

// labelledRooms names the rooms of ns that carry contoso.com's access label.
func labelledRooms(ns string) []string {
	GinkgoHelper()
	rooms := &v1alpha1.RoomList{}
	Expect(admin.List(ctx, rooms, client.InNamespace(ns), client.HasLabels{v1alpha1.AccessLabel(domain)})).To(Succeed())
	names := []string{}
	for _, r := range rooms.Items {
		names = append(names, r.Name)
	}
	return names
}

// gone is a matcher argument: whether obj no longer exists.
func gone(obj client.Object) func() bool {
	return func() bool {
		err := admin.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if err != nil && !apierrors.IsNotFound(err) {
			Fail("reading " + obj.GetName() + ": " + err.Error())
		}
		return apierrors.IsNotFound(err)
	}
}

// errorLoops are the error-level lines of log about namespace ns that show
// the operator retrying in vain: any reconcile error (the controller retries
// it), and any other error logged twice (timestamps aside). An Event
// refused once, because the namespace turned Terminating while it was in
// flight, is no loop.
func errorLoops(log, ns string) []string {
	var loops []string
	seen := map[string]bool{}
	for line := range strings.Lines(log) {
		if !strings.Contains(line, "\tERROR\t") || !strings.Contains(line, ns) {
			continue
		}
		GinkgoWriter.Printf("an error about %s: %s", ns, line)
		_, msg, _ := strings.Cut(line, "\t") // drops the timestamp
		if strings.Contains(msg, "Reconciler error") || seen[msg] {
			loops = append(loops, line)
		}
		seen[msg] = true
	}
	return loops
}

// offboardings are the audit lines of the offboarding of link name in ns.
func offboardings(ns, name string) []audit.Line {
	GinkgoHelper()
	var found []audit.Line
	for line := range strings.Lines(auditLog.String()) {
		var l audit.Line
		Expect(json.Unmarshal([]byte(line), &l)).To(Succeed(), line)
		if l.TenantID == ns && l.ObjectName == name && l.Category == audit.CategoryPartnerInvitation &&
			l.Operation == audit.OperationDelete && strings.HasPrefix(l.Detail, "offboarded ") {
			found = append(found, l)
		}
	}
	return found
}

var _ = Describe("a tenant namespace deleted with a partnership in it", Ordered, func() {
	const ns = "tenant-deleted"
	BeforeAll(func() { partnership(ns) })

	It("goes within a minute: the partner is offboarded, no finalizer stays, no delete is refused and nothing loops on errors", func() {
		logStart := len(managerLog.String())
		started := time.Now()
		Expect(admin.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())

		// The namespace controller reports refused deletes in these
		// conditions (and retries); none may be seen.
		refused := map[corev1.NamespaceConditionType]string{}
		Eventually(func() bool {
			n := &corev1.Namespace{}
			if err := admin.Get(ctx, client.ObjectKey{Name: ns}, n); apierrors.IsNotFound(err) {
				return true
			} else if err != nil {
				Fail(err.Error())
			}
			for _, c := range n.Status.Conditions {
				switch c.Type {
				case corev1.NamespaceDeletionContentFailure, corev1.NamespaceDeletionDiscoveryFailure, corev1.NamespaceDeletionGVParsingFailure:
					if c.Status == corev1.ConditionTrue {
						refused[c.Type] = c.Message
					}
				}
			}
			return false
		}, time.Minute, 100*time.Millisecond).Should(BeTrue(), "namespace %s still there a minute after its delete", ns)
		GinkgoWriter.Printf("namespace %s went %s after its delete\n", ns, time.Since(started).Round(time.Millisecond))

		Expect(refused).To(BeEmpty(), "the namespace controller's deletes were refused")
		// The link, the last object with a finalizer, went through its
		// offboarding: only the operator removes that finalizer.
		Expect(offboardings(ns, "contoso")).To(HaveLen(1))
		links := &v1alpha1.PartnerLinkList{}
		Expect(admin.List(ctx, links, client.InNamespace(ns))).To(Succeed())
		Expect(links.Items).To(BeEmpty())
		Expect(errorLoops(managerLog.String()[logStart:], ns)).To(BeEmpty(), "the operator retried in vain in the deleted namespace")
	})
})

var _ = Describe("garbage collection while no replica of the operator leads", Ordered, Serial, func() {
	const ns = "tenant-collected"
	BeforeAll(func() { partnership(ns) })

	It("deletes the link's own children in the foreground, and the finalizer still removes every access label", func() {
		// Another replica holds the lease: the one started here serves the
		// webhooks, which the garbage collector's deletes go through (with
		// no replica at all, failurePolicy Fail refuses them), but
		// reconciles nothing.
		lease := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: operator.LeaderElectionID, Namespace: metav1.NamespaceDefault},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: new("a-replica-that-hangs"), LeaseDurationSeconds: new(int32(3600)),
				RenewTime: &metav1.MicroTime{Time: time.Now()}},
		}
		Expect(admin.Create(ctx, lease)).To(Succeed())
		running.stop()
		follower := startOperator(&operator.LeaderElection{Namespace: metav1.NamespaceDefault})
		// lead stops the follower and gives the suite its operator back.
		leading := false
		lead := func() {
			follower.stop()
			Expect(admin.Delete(ctx, lease)).To(Succeed())
			running, leading = startOperator(nil), true
		}
		DeferCleanup(func() {
			if !leading {
				lead()
			}
		})

		l := &v1alpha1.PartnerLink{}
		Expect(admin.Get(ctx, key(ns, "contoso"), l)).To(Succeed())
		Expect(admin.Delete(ctx, l, client.PropagationPolicy(metav1.DeletePropagationForeground))).To(Succeed())

		// The garbage collector deletes what the link owns, the built-in
		// role included, while the link waits on the finalizer...
		Eventually(gone(&v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Name: "contoso-primary-admins", Namespace: ns}}), time.Minute).Should(BeTrue())
		Eventually(gone(&v1alpha1.RoomAssignment{ObjectMeta: metav1.ObjectMeta{Name: "contoso-invitation", Namespace: ns}}), time.Minute).Should(BeTrue())
		Eventually(func() []string {
			Expect(admin.Get(ctx, key(ns, "contoso"), l)).To(Succeed())
			return l.Finalizers
		}, time.Minute).Should(Equal([]string{offboardFinalizer}), "the garbage collector is done with the link; the operator's finalizer holds it")
		// ...and nothing it does not own: the partner's role and the
		// customer's assignment name the link but have no owner.
		Expect(admin.Get(ctx, key(ns, "contoso-helpdesk"), &v1alpha1.PartnerRole{})).To(Succeed())
		Expect(admin.Get(ctx, key(ns, "contoso-berlin"), &v1alpha1.RoomAssignment{})).To(Succeed())
		// The labels are the operator's to remove: still there, but the
		// partner is denied from the moment of the delete.
		Expect(labelledRooms(ns)).To(ConsistOf("nyc", "sea", "ber"))
		expectForbidden(as(alice).Get(ctx, key(ns, "nyc"), &v1alpha1.Room{}), "")

		// The operator leads again and finishes the offboarding.
		lead()
		Eventually(gone(l), time.Minute).Should(BeTrue())
		Expect(labelledRooms(ns)).To(BeEmpty())
		Expect(gone(&v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Name: "contoso-helpdesk", Namespace: ns}})()).To(BeTrue())
		Expect(gone(&v1alpha1.RoomAssignment{ObjectMeta: metav1.ObjectMeta{Name: "contoso-berlin", Namespace: ns}})()).To(BeTrue())
		Expect(offboardings(ns, "contoso")).To(HaveLen(1))
	})
})

var _ = Describe("an accepted invitation deleted", Ordered, func() {
	const ns = "tenant-uninvited"
	BeforeAll(func() { partnership(ns) })

	It("never deletes its link, with the garbage collector running", func() {
		inv := &v1alpha1.PartnerInvitation{}
		Expect(admin.Get(ctx, key(ns, "contoso"), inv)).To(Succeed())
		// A ConfigMap the invitation owns: once it is gone, the garbage
		// collector has acted on the invitation's deletion.
		owned := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owned-by-the-invitation", Namespace: ns,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PartnerInvitation", Name: inv.Name, UID: inv.UID}}}}
		Expect(admin.Create(ctx, owned)).To(Succeed())

		Expect(admin.Delete(ctx, inv, client.PropagationPolicy(metav1.DeletePropagationForeground))).To(Succeed())
		Eventually(gone(owned), time.Minute).Should(BeTrue())
		Eventually(gone(inv), time.Minute).Should(BeTrue())

		Consistently(func(g Gomega) {
			l := &v1alpha1.PartnerLink{}
			g.Expect(admin.Get(ctx, key(ns, "contoso"), l)).To(Succeed())
			g.Expect(l.DeletionTimestamp).To(BeNil())
			g.Expect(l.Status.Phase).To(Equal(v1alpha1.LinkActive))
		}, 3*time.Second, 200*time.Millisecond).Should(Succeed())
		Expect(admin.Get(ctx, key(ns, "contoso-primary-admins"), &v1alpha1.PartnerRole{})).To(Succeed())
		Expect(admin.Get(ctx, key(ns, "contoso-invitation"), &v1alpha1.RoomAssignment{})).To(Succeed())
		Expect(as(alice).Get(ctx, key(ns, "nyc"), &v1alpha1.Room{})).To(Succeed())
	})
})
