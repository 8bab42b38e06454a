package controllers

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// organizationStatus is the status of a registration that invitations and
// links name. The organization controller is its only writer.
func organizationStatus(org *v1alpha1.PartnerOrganization, invitations, links int) v1alpha1.PartnerOrganizationStatus {
	status := *org.Status.DeepCopy()
	status.Invitations = int32(invitations)
	status.Links = int32(links)
	status.ObservedGeneration = org.Generation
	setCondition(&status.Conditions, org, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRegistered,
		fmt.Sprintf("users of %s are partner users; customers may invite it", org.Spec.Domain))
	return status
}
