package controllers

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func TestRoomStatus(t *testing.T) {
	room := &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: "nyc", Generation: 5}}
	s := roomStatus(room, []string{"contoso.com", "fabrikam.com"}, references{})
	if len(s.Partners) != 2 || s.ObservedGeneration != 5 {
		t.Errorf("status = %+v", s)
	}
	wantCondition(t, s.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAccessReconciled)
	if msg := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady).Message; msg != "reachable by contoso.com, fabrikam.com" {
		t.Errorf("message = %q", msg)
	}
	if msg := meta.FindStatusCondition(roomStatus(room, nil, references{}).Conditions, v1alpha1.ConditionReady).Message; msg != "no partner may reach this room" {
		t.Errorf("message without partners = %q", msg)
	}
}

func TestRoomReferences(t *testing.T) {
	room := &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: "nyc", Generation: 2},
		Spec: v1alpha1.RoomSpec{Groups: []string{"east", "lobby"}, UpdateRing: "early"}}
	known := func(names ...string) func(string) bool {
		return func(n string) bool { return slices.Contains(names, n) }
	}
	missing := missingReferences(room, known("east"), known())
	s := roomStatus(room, nil, missing)
	wantCondition(t, s.Conditions, v1alpha1.ConditionReferencesResolved, metav1.ConditionFalse, v1alpha1.ReasonDanglingReferences)
	msg := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReferencesResolved).Message
	if !strings.Contains(msg, "RoomGroup lobby") || !strings.Contains(msg, "UpdateRing early") || strings.Contains(msg, "east") {
		t.Errorf("message = %q, want it to name lobby and early only", msg)
	}
	s = roomStatus(room, nil, missingReferences(room, known("east", "lobby"), known("early")))
	wantCondition(t, s.Conditions, v1alpha1.ConditionReferencesResolved, metav1.ConditionTrue, v1alpha1.ReasonReferencesResolved)
}
