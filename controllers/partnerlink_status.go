package controllers

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/lifecycle"
)

// The statuses a PartnerLink moves through. Each is a pure function of the
// link and what the link controller read; the controller is their only
// writer.

// refusedLinkStatus: the link is not activated, for the refusal's reason.
func refusedLinkStatus(link *v1alpha1.PartnerLink, refusal *lifecycle.Refusal) v1alpha1.PartnerLinkStatus {
	status := *link.Status.DeepCopy()
	status.Phase = v1alpha1.LinkPending
	status.EstablishedAt, status.EstablishedBy = nil, ""
	status.ObservedGeneration = link.Generation
	setCondition(&status.Conditions, link, v1alpha1.ConditionReady, metav1.ConditionFalse, refusal.Reason, refusal.Message)
	return status
}

// activeLinkStatus: the link's children exist and the partner manages its
// rooms from now on; established by whoever created the link.
// Its relationship's end, if the invitation sets one, counts from now.
func activeLinkStatus(link *v1alpha1.PartnerLink, inv *v1alpha1.PartnerInvitation, now time.Time) v1alpha1.PartnerLinkStatus {
	status := *link.Status.DeepCopy()
	status.Phase = v1alpha1.LinkActive
	status.EstablishedAt = &metav1.Time{Time: now}
	status.ExpiresAt, status.Extensions, status.ExtensionCount = nil, nil, 0
	if r := inv.Spec.Relationship; r != nil && r.DurationDays != nil {
		status.ExpiresAt = &metav1.Time{Time: endOf(now, *r.DurationDays, 0)}
	}
	status.EstablishedBy = link.Annotations[v1alpha1.AnnotationRequestedBy]
	status.ObservedGeneration = link.Generation
	setActive(&status.Conditions, link, v1alpha1.PrimaryAdminRoleName(link.Name), len(link.Spec.PrimaryAdmins))
	return status
}

// setActive sets the conditions of an active link whose built-in role (of
// that name) has members primary admins.
func setActive(conds *[]metav1.Condition, link *v1alpha1.PartnerLink, role string, members int) {
	setCondition(conds, link, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonActive,
		fmt.Sprintf("%s manages the rooms of its RoomAssignments", link.Spec.PartnerDomain))
	setCondition(conds, link, v1alpha1.ConditionPrimaryAdminPresent, metav1.ConditionTrue, v1alpha1.ReasonPrimaryAdminFound,
		fmt.Sprintf("PartnerRole %q has %d primary admin(s)", role, members))
}

// maintainedLinkStatus: an active link with its built-in role as read (a
// role the link does not control is not its own, whatever its members) and
// the number of rooms in its scope.
func maintainedLinkStatus(link *v1alpha1.PartnerLink, role *v1alpha1.PartnerRole, rooms int32) v1alpha1.PartnerLinkStatus {
	status := *link.Status.DeepCopy()
	status.Rooms = rooms
	status.ObservedGeneration = link.Generation
	// Only members without a window count: a windowed member is no
	// primary admin outside its window, and the invariant holds at all times.
	switch members := role.Spec.PermanentMembers(); {
	case !metav1.IsControlledBy(role, link):
		taken := childTaken("PartnerRole", role)
		setCondition(&status.Conditions, link, v1alpha1.ConditionReady, metav1.ConditionFalse, taken.Reason, taken.Message)
		setCondition(&status.Conditions, link, v1alpha1.ConditionPrimaryAdminPresent, metav1.ConditionFalse, taken.Reason, taken.Message)
	case members > 0:
		setActive(&status.Conditions, link, role.Name, members)
	default:
		setCondition(&status.Conditions, link, v1alpha1.ConditionPrimaryAdminPresent, metav1.ConditionFalse, v1alpha1.ReasonNoPrimaryAdmin,
			fmt.Sprintf("PartnerRole %q has no member: the partner has no primary admin", role.Name))
	}
	return status
}

// terminatingLinkStatus: the link was deleted and is being offboarded.
func terminatingLinkStatus(link *v1alpha1.PartnerLink) v1alpha1.PartnerLinkStatus {
	status := *link.Status.DeepCopy()
	status.Phase = v1alpha1.LinkTerminating
	setCondition(&status.Conditions, link, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonOffboarding,
		fmt.Sprintf("removing the roles, assignments and room labels of %s", link.Spec.PartnerDomain))
	return status
}

func primaryAdminCount(role *v1alpha1.PartnerRole) int {
	n := 0
	for _, a := range role.Spec.Assignments {
		n += len(a.Members)
	}
	return n
}
