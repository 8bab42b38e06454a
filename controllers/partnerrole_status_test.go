package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func TestRoleStatus(t *testing.T) {
	role := &v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Name: "contoso-helpdesk", Generation: 4},
		Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso", Permissions: []v1alpha1.Permission{v1alpha1.TicketsView}}}
	active := &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Name: "contoso"}, Spec: v1alpha1.PartnerLinkSpec{PartnerDomain: "contoso.com"},
		Status: v1alpha1.PartnerLinkStatus{Phase: v1alpha1.LinkActive}}
	pending := active.DeepCopy()
	pending.Status.Phase = ""
	for _, tc := range []struct {
		name   string
		link   *v1alpha1.PartnerLink
		status metav1.ConditionStatus
		reason string
	}{
		{"no link", nil, metav1.ConditionFalse, v1alpha1.ReasonPartnerLinkNotFound},
		{"a pending link", pending, metav1.ConditionFalse, v1alpha1.ReasonPartnerLinkNotActive},
		{"an active link", active, metav1.ConditionTrue, v1alpha1.ReasonInEffect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := roleStatus(role, tc.link)
			if s.ObservedGeneration != 4 {
				t.Errorf("observedGeneration = %d", s.ObservedGeneration)
			}
			wantCondition(t, s.Conditions, v1alpha1.ConditionReady, tc.status, tc.reason)
		})
	}
}
