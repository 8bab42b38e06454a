package controllers

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func TestAssignmentStatus(t *testing.T) {
	a := &v1alpha1.RoomAssignment{ObjectMeta: metav1.ObjectMeta{Name: "extra", Generation: 2}, Spec: v1alpha1.RoomAssignmentSpec{PartnerLink: "contoso"}}
	active := &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Name: "contoso"}, Spec: v1alpha1.PartnerLinkSpec{PartnerDomain: "contoso.com"},
		Status: v1alpha1.PartnerLinkStatus{Phase: v1alpha1.LinkActive}}

	s := assignmentStatus(a, active, selection{rooms: 3})
	if s.MatchedRooms != 3 || s.ObservedGeneration != 2 {
		t.Errorf("status = %+v", s)
	}
	wantCondition(t, s.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonInScope)
	wantCondition(t, s.Conditions, v1alpha1.ConditionRoomsFound, metav1.ConditionTrue, v1alpha1.ReasonAllRoomsFound)

	s = assignmentStatus(a, nil, selection{rooms: 1, missing: []string{"ber", "par"}})
	wantCondition(t, s.Conditions, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonPartnerLinkNotFound)
	wantCondition(t, s.Conditions, v1alpha1.ConditionRoomsFound, metav1.ConditionFalse, v1alpha1.ReasonRoomsNotFound)
	if msg := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionRoomsFound).Message; !strings.Contains(msg, "ber, par") {
		t.Errorf("RoomsFound message %q does not name the missing rooms", msg)
	}

	s = assignmentStatus(a, active, selection{invalid: errors.New("bad selector")})
	wantCondition(t, s.Conditions, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidSelector)
}
