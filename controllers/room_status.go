package controllers

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// roomStatus is the status of a room that the partners (sorted, distinct
// domains) may reach. The room-access controller is its only writer.
// missing names the RoomGroups and UpdateRing the room names that do not
// exist (see missingReferences).
func roomStatus(room *v1alpha1.Room, partners []string, missing references) v1alpha1.RoomStatus {
	status := *room.Status.DeepCopy()
	status.Partners = partners
	status.ObservedGeneration = room.Generation
	message := "no partner may reach this room"
	if len(partners) > 0 {
		message = "reachable by " + strings.Join(partners, ", ")
	}
	setCondition(&status.Conditions, room, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAccessReconciled, message)
	if missing.none() {
		setCondition(&status.Conditions, room, v1alpha1.ConditionReferencesResolved, metav1.ConditionTrue, v1alpha1.ReasonReferencesResolved,
			"every RoomGroup and UpdateRing the room names exists")
	} else {
		setCondition(&status.Conditions, room, v1alpha1.ConditionReferencesResolved, metav1.ConditionFalse, v1alpha1.ReasonDanglingReferences,
			missing.String())
	}
	return status
}

// references are the names a room gives that do not exist.
type references struct {
	groups []string
	ring   string
}

func (r references) none() bool { return len(r.groups) == 0 && r.ring == "" }

func (r references) String() string {
	var parts []string
	if len(r.groups) > 0 {
		parts = append(parts, "RoomGroup "+strings.Join(r.groups, ", "))
	}
	if r.ring != "" {
		parts = append(parts, "UpdateRing "+r.ring)
	}
	return fmt.Sprintf("the room names %s, which do not exist in this namespace", strings.Join(parts, " and "))
}

// missingReferences are the groups and ring the room names for which
// groupExists or ringExists says no: a pure function of the room and the
// names that exist.
func missingReferences(room *v1alpha1.Room, groupExists, ringExists func(string) bool) references {
	var m references
	for _, g := range room.Spec.Groups {
		if !groupExists(g) {
			m.groups = append(m.groups, g)
		}
	}
	if room.Spec.UpdateRing != "" && !ringExists(room.Spec.UpdateRing) {
		m.ring = room.Spec.UpdateRing
	}
	return m
}
