package controllers

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func TestRoomStatus(t *testing.T) {
	room := &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: "nyc", Generation: 5}}
	s := roomStatus(room, []string{"contoso.com", "fabrikam.com"})
	if len(s.Partners) != 2 || s.ObservedGeneration != 5 {
		t.Errorf("status = %+v", s)
	}
	wantCondition(t, s.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAccessReconciled)
	if msg := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady).Message; msg != "reachable by contoso.com, fabrikam.com" {
		t.Errorf("message = %q", msg)
	}
	if msg := meta.FindStatusCondition(roomStatus(room, nil).Conditions, v1alpha1.ConditionReady).Message; msg != "no partner may reach this room" {
		t.Errorf("message without partners = %q", msg)
	}
}
