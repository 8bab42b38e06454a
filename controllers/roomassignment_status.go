package controllers

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// selection is what an assignment's scope selects in its namespace.
type selection struct {
	// rooms is how many rooms it selects.
	rooms int
	// missing are the names it lists of rooms that do not exist.
	missing []string
	// invalid is why the scope does not compile, if it does not.
	invalid error
}

// assignmentStatus is the status of an assignment that selects what sel
// says, whose link (nil when it does not exist) is as read. The assignment
// controller is its only writer.
func assignmentStatus(a *v1alpha1.RoomAssignment, link *v1alpha1.PartnerLink, sel selection) v1alpha1.RoomAssignmentStatus {
	status := *a.Status.DeepCopy()
	status.ObservedGeneration = a.Generation
	status.MatchedRooms = int32(sel.rooms)
	if len(sel.missing) > 0 {
		setCondition(&status.Conditions, a, v1alpha1.ConditionRoomsFound, metav1.ConditionFalse, v1alpha1.ReasonRoomsNotFound,
			fmt.Sprintf("no room named %s in this namespace; it joins the scope once it is created", strings.Join(sel.missing, ", ")))
	} else {
		setCondition(&status.Conditions, a, v1alpha1.ConditionRoomsFound, metav1.ConditionTrue, v1alpha1.ReasonAllRoomsFound, "every named room exists")
	}
	switch {
	case sel.invalid != nil:
		setCondition(&status.Conditions, a, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidSelector, sel.invalid.Error())
	case linkNotInEffect(&status.Conditions, a, a.Spec.PartnerLink, link):
	default:
		setCondition(&status.Conditions, a, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonInScope,
			fmt.Sprintf("%d room(s) are in the scope of %s", status.MatchedRooms, link.Spec.PartnerDomain))
	}
	return status
}
