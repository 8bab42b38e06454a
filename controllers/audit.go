package controllers

import (
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
)

// recordGenerationChange audits a spec the controller sees for the first time
// (Create) or in a new generation (Update).
func recordGenerationChange(rec *audit.Recorder, obj client.Object, previousGeneration int64, category audit.Category, message string) {
	if previousGeneration == obj.GetGeneration() {
		return
	}
	op, reason := audit.OperationUpdate, v1alpha1.ReasonSpecChanged
	if previousGeneration == 0 {
		op, reason = audit.OperationCreate, v1alpha1.ReasonObserved
	}
	rec.Record(obj, audit.Change{
		Category: category, Operation: op, Result: audit.Successful,
		UserID: obj.GetAnnotations()[v1alpha1.AnnotationRequestedBy], Reason: reason, Message: message,
	})
}
