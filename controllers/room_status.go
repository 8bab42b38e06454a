package controllers

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// roomStatus is the status of a room that the partners (sorted, distinct
// domains) may reach. The room-access controller is its only writer.
func roomStatus(room *v1alpha1.Room, partners []string) v1alpha1.RoomStatus {
	status := *room.Status.DeepCopy()
	status.Partners = partners
	status.ObservedGeneration = room.Generation
	message := "no partner may reach this room"
	if len(partners) > 0 {
		message = "reachable by " + strings.Join(partners, ", ")
	}
	setCondition(&status.Conditions, room, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAccessReconciled, message)
	return status
}
