package controllers

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// roleStatus is the status of a role whose link (nil when it does not exist)
// is as read. The role controller is its only writer.
func roleStatus(role *v1alpha1.PartnerRole, link *v1alpha1.PartnerLink) v1alpha1.PartnerRoleStatus {
	status := *role.Status.DeepCopy()
	status.ObservedGeneration = role.Generation
	if !linkNotInEffect(&status.Conditions, role, role.Spec.PartnerLink, link) {
		setCondition(&status.Conditions, role, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonInEffect,
			fmt.Sprintf("grants %d permission(s) to %d member(s) within the scope of %s",
				len(role.Spec.Permissions), primaryAdminCount(role), link.Spec.PartnerDomain))
	}
	return status
}
