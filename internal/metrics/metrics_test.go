package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func TestStateCollector(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: "t", Name: name} }
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		&v1alpha1.PartnerInvitation{ObjectMeta: meta("a"), Status: v1alpha1.PartnerInvitationStatus{Phase: v1alpha1.InvitationPending}},
		&v1alpha1.PartnerInvitation{ObjectMeta: meta("b"), Status: v1alpha1.PartnerInvitationStatus{Phase: v1alpha1.InvitationPending}},
		&v1alpha1.PartnerInvitation{ObjectMeta: meta("c"), Status: v1alpha1.PartnerInvitationStatus{Phase: v1alpha1.InvitationExpired}},
		&v1alpha1.PartnerLink{ObjectMeta: meta("a"), Status: v1alpha1.PartnerLinkStatus{Phase: v1alpha1.LinkActive}},
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
	registry.MustRegister(&StateCollector{Reader: reader})
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
partner_operator_links{namespace="t",phase="Active"} 1
# HELP partner_operator_rooms_in_scope Rooms a partner may reach, by namespace and partner domain.
# TYPE partner_operator_rooms_in_scope gauge
partner_operator_rooms_in_scope{namespace="t",partner="contoso.com"} 2
partner_operator_rooms_in_scope{namespace="t",partner="fabrikam.com"} 1
`
	if err := testutil.GatherAndCompare(registry, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
