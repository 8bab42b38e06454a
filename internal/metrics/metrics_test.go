package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func TestStateCollector(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: "t", Name: name} }
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		&v1alpha1.PartnerInvitation{ObjectMeta: meta("a"), Status: v1alpha1.PartnerInvitationStatus{Phase: v1alpha1.InvitationPending}},
		&v1alpha1.PartnerInvitation{ObjectMeta: meta("b"), Status: v1alpha1.PartnerInvitationStatus{Phase: v1alpha1.InvitationPending}},
		&v1alpha1.PartnerInvitation{ObjectMeta: meta("c"), Status: v1alpha1.PartnerInvitationStatus{Phase: v1alpha1.InvitationExpired}},
		&v1alpha1.PartnerLink{ObjectMeta: meta("a"), Status: v1alpha1.PartnerLinkStatus{Phase: v1alpha1.LinkActive}},
		&v1alpha1.PartnerLink{ObjectMeta: meta("bounded"), Status: v1alpha1.PartnerLinkStatus{Phase: v1alpha1.LinkActive,
			ExpiresAt: &metav1.Time{Time: now.Add(90 * time.Second)}}},
		&v1alpha1.PartnerLink{ObjectMeta: meta("ended"), Status: v1alpha1.PartnerLinkStatus{Phase: v1alpha1.LinkExpired,
			ExpiresAt: &metav1.Time{Time: now.Add(-time.Second)}}},
		&v1alpha1.Room{ObjectMeta: meta("r1"), Status: v1alpha1.RoomStatus{Partners: []string{"contoso.com", "fabrikam.com"}}},
		&v1alpha1.Room{ObjectMeta: meta("r2"), Status: v1alpha1.RoomStatus{Partners: []string{"contoso.com"}}},
		&v1alpha1.PartnerChangeRequest{ObjectMeta: meta("p1"), Spec: v1alpha1.PartnerChangeRequestSpec{Category: v1alpha1.CategoryRooms},
			Status: v1alpha1.PartnerChangeRequestStatus{Phase: v1alpha1.ChangePending}},
		&v1alpha1.PartnerChangeRequest{ObjectMeta: meta("p2"), Spec: v1alpha1.PartnerChangeRequestSpec{Category: v1alpha1.CategoryRooms}},
		&v1alpha1.PartnerChangeRequest{ObjectMeta: meta("p3"), Spec: v1alpha1.PartnerChangeRequestSpec{Category: v1alpha1.CategoryRoles},
			Status: v1alpha1.PartnerChangeRequestStatus{Phase: v1alpha1.ChangePending}},
		&v1alpha1.PartnerChangeRequest{ObjectMeta: meta("p4"), Spec: v1alpha1.PartnerChangeRequestSpec{Category: v1alpha1.CategoryRoles},
			Status: v1alpha1.PartnerChangeRequestStatus{Phase: v1alpha1.ChangeApplied}},
	).Build()

	registry := prometheus.NewPedanticRegistry()
	registry.MustRegister(&StateCollector{Reader: reader, Clock: clocktesting.NewFakePassiveClock(now)})
	want := `
# HELP partner_operator_change_requests_pending PartnerChangeRequests waiting for the customer's decision, by namespace and category.
# TYPE partner_operator_change_requests_pending gauge
partner_operator_change_requests_pending{category="roles",namespace="t"} 1
partner_operator_change_requests_pending{category="rooms",namespace="t"} 2
# HELP partner_operator_invitations PartnerInvitations by namespace and phase.
# TYPE partner_operator_invitations gauge
partner_operator_invitations{namespace="t",phase="Expired"} 1
partner_operator_invitations{namespace="t",phase="Pending"} 2
# HELP partner_operator_links PartnerLinks by namespace and phase.
# TYPE partner_operator_links gauge
partner_operator_links{namespace="t",phase="Active"} 2
partner_operator_links{namespace="t",phase="Expired"} 1
# HELP partner_operator_link_expiry_seconds Seconds until an active PartnerLink's relationship ends (status.expiresAt), by namespace and link.
# TYPE partner_operator_link_expiry_seconds gauge
partner_operator_link_expiry_seconds{link="bounded",namespace="t"} 90
# HELP partner_operator_rooms_in_scope Rooms a partner may reach, by namespace and partner domain.
# TYPE partner_operator_rooms_in_scope gauge
partner_operator_rooms_in_scope{namespace="t",partner="contoso.com"} 2
partner_operator_rooms_in_scope{namespace="t",partner="fabrikam.com"} 1
`
	if err := testutil.GatherAndCompare(registry, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
