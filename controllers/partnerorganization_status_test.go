package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func TestOrganizationStatus(t *testing.T) {
	org := &v1alpha1.PartnerOrganization{ObjectMeta: metav1.ObjectMeta{Name: "contoso.com", Generation: 1}, Spec: v1alpha1.PartnerOrganizationSpec{Domain: "contoso.com"}}
	s := organizationStatus(org, 2, 1)
	if s.Invitations != 2 || s.Links != 1 || s.ObservedGeneration != 1 {
		t.Errorf("status = %+v", s)
	}
	wantCondition(t, s.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRegistered)
}
