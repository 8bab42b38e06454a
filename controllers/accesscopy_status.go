package controllers

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// accessCopyStatus is the status of a Ticket or RoomReport about room
// (found: it exists) whose access labels are now those of partners.
func accessCopyStatus(obj client.Object, current v1alpha1.TicketStatus, room string, found bool, partners []string) v1alpha1.TicketStatus {
	status := *current.DeepCopy()
	status.Partners = partners
	status.ObservedGeneration = obj.GetGeneration()
	if !found {
		setCondition(&status.Conditions, obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonRoomNotFound,
			fmt.Sprintf("room %q does not exist in this namespace: no partner reaches this object until it does", room))
		return status
	}
	message := fmt.Sprintf("no partner may reach room %q", room)
	if len(partners) > 0 {
		message = fmt.Sprintf("reachable, as room %q is, by %s", room, strings.Join(partners, ", "))
	}
	setCondition(&status.Conditions, obj, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRoomAccessCopied, message)
	return status
}

func readyMessage(s v1alpha1.TicketStatus) string {
	if c := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}
