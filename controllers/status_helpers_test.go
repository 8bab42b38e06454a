package controllers

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// wantCondition fails unless conds has condType with status and reason.
func wantCondition(t *testing.T, conds []metav1.Condition, condType string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	c := meta.FindStatusCondition(conds, condType)
	if c == nil || c.Status != status || c.Reason != reason || c.Message == "" {
		t.Errorf("%s = %+v, want %s, %s, with a message", condType, c, status, reason)
	}
}
