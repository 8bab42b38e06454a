package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Every reconciler writes status the same way: it computes the object's new
// status with a pure function of what it read (<kind>_status.go), sets it on
// the object, and hands the object and a copy taken before to patchStatus.

// patchStatus writes obj's status when it differs from before's, as a merge
// patch of the status subresource guarded by before's resourceVersion: the
// status is computed from that version, so a write based on a stale read is
// refused rather than applied. written says whether the status was stored;
// a stale write (a conflict: the newer version's event reconciles again) and
// an object that is gone are not errors. Callers record an Event or an audit
// line only when written is true, so that of two reconciles computing the
// same change, one records it.
func patchStatus(ctx context.Context, c client.Client, before, obj client.Object) (written bool, err error) {
	if equality.Semantic.DeepEqual(before, obj) {
		return false, nil
	}
	if err := c.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("writing the status of %s: %w", obj.GetName(), err)
	}
	return true, nil
}

// ignoreStale drops the errors of a write based on a stale version: a
// conflict (the newer version's watch event reconciles again) or NotFound
// (the object is gone). It wraps any other error.
func ignoreStale(err error, doing string) error {
	if err == nil || apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// setCondition sets one condition, keeping its lastTransitionTime when the
// status does not change.
func setCondition(conds *[]metav1.Condition, obj client.Object, condType string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: condType, Status: status, Reason: reason, Message: message,
		ObservedGeneration: obj.GetGeneration(),
	})
}

// conditionReason is the reason of a condition, or "" when it is not set.
func conditionReason(conds []metav1.Condition, condType string) string {
	if c := meta.FindStatusCondition(conds, condType); c != nil {
		return c.Reason
	}
	return ""
}
