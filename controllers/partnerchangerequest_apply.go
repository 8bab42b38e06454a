package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/changecontrol"
)

// apply writes an approved change, exactly once, or says why it must not:
// the link is gone, the target is gone or moved on from baseResourceVersion
// (Conflict), or the requester may no longer make the write. live is the
// target as read around the cache (nil: it does not exist). It returns the
// outcome and the target as it is after the step (the written object after a
// Create or Update, nil after a Delete).
//
// Exactly once: the operator's write carries the request's name
// (AnnotationChangeRequest), so a target that carries it is applied already
// (a crash after the write, or a second reconcile) and nothing is written
// again; an Update is guarded by baseResourceVersion, a Create by the name,
// a Delete by the resourceVersion precondition, so of two writers one wins.
// A Delete leaves no annotation behind: the request claims it first
// (Applied Unknown, Applying, a status write guarded by the request's
// version), and a target gone after the claim is recorded as applied.
func (r *PartnerChangeRequestReconciler) apply(ctx context.Context, pcr *v1alpha1.PartnerChangeRequest, live *unstructured.Unstructured) (*applyOutcome, *unstructured.Unstructured, error) {
	what := describeChange(pcr)
	link := &v1alpha1.PartnerLink{}
	if err := liveReader(r.APIReader, r.Client).Get(ctx, client.ObjectKey{Namespace: pcr.Namespace, Name: pcr.Spec.PartnerLink}, link); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, live, fmt.Errorf("reading PartnerLink %q: %w", pcr.Spec.PartnerLink, err)
		}
		link = nil
	}
	if gone := linkGone(pcr, link); gone != "" {
		return failed(ReasonLinkGone, fmt.Sprintf("the %s was approved but not applied when %s", what, gone)), live, nil
	}
	claimed := conditionReason(pcr.Status.Conditions, ConditionChangeApplied) == ReasonChangeApplying

	if outcome := judgeTarget(pcr, live, claimed); outcome != nil {
		if outcome.Applied && pcr.Spec.Operation == v1alpha1.OperationDelete {
			return outcome, nil, nil
		}
		return outcome, live, nil
	}

	var liveObj client.Object
	if live != nil {
		liveObj = live
	}
	switch err := r.Recheck(ctx, requester(pcr), pcr, liveObj); {
	case changecontrol.IsRefusal(err):
		return failed(ReasonNoLongerAuthorized, fmt.Sprintf("%s may no longer make this write: %s", orUnknown(pcr.Annotations[v1alpha1.AnnotationRequestedBy]), err.Error())), live, nil
	case err != nil:
		return nil, live, fmt.Errorf("re-checking the requester of %s: %w", pcr.Name, err)
	}

	if pcr.Spec.Operation == v1alpha1.OperationDelete {
		if !claimed {
			return &applyOutcome{Applying: true}, live, nil
		}
		err := r.Delete(ctx, live, client.Preconditions{UID: ptrUID(live), ResourceVersion: &pcr.Spec.BaseResourceVersion})
		switch {
		case err == nil || apierrors.IsNotFound(err):
			return &applyOutcome{Applied: true}, live, nil
		case apierrors.IsConflict(err):
			return failed(ReasonConflict, fmt.Sprintf("%s changed while the operator deleted it", targetName(pcr))), live, nil
		}
		return nil, live, fmt.Errorf("deleting %s: %w", targetName(pcr), err)
	}

	obj, err := intendedObject(pcr, live, pcr.Spec.BaseResourceVersion)
	if err != nil {
		return failed(ReasonInvalidObject, err.Error()), live, nil
	}
	if pcr.Spec.Operation == v1alpha1.OperationCreate {
		err = r.Create(ctx, obj)
	} else {
		err = r.Update(ctx, obj)
	}
	switch {
	case err == nil:
		return &applyOutcome{Applied: true}, obj, nil
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		// Someone wrote between the read and the write: an earlier apply of
		// this very request, or another writer.
		again, readErr := r.liveTarget(ctx, pcr)
		if readErr != nil {
			return nil, live, readErr
		}
		if again != nil && appliedBy(again, pcr) {
			return &applyOutcome{Applied: true}, again, nil
		}
		return failed(ReasonConflict, fmt.Sprintf("%s changed while the operator applied the change", targetName(pcr))), again, nil
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		return failed(ReasonInvalidObject, fmt.Sprintf("the apiserver refused the held object: %v", err)), live, nil
	}
	return nil, live, fmt.Errorf("writing %s: %w", targetName(pcr), err)
}

// judgeTarget is the verdict on the live target (nil: it does not exist)
// before any write: applied already, or failed with the reason, or nil when
// the write may go ahead. Pure.
func judgeTarget(pcr *v1alpha1.PartnerChangeRequest, live *unstructured.Unstructured, claimed bool) *applyOutcome {
	switch pcr.Spec.Operation {
	case v1alpha1.OperationCreate:
		if live != nil {
			if appliedBy(live, pcr) {
				return &applyOutcome{Applied: true}
			}
			return failed(ReasonConflict, fmt.Sprintf("%s was created by someone else after the request was made", targetName(pcr)))
		}
	case v1alpha1.OperationUpdate, v1alpha1.OperationDelete:
		if live == nil || !live.GetDeletionTimestamp().IsZero() {
			if claimed && pcr.Spec.Operation == v1alpha1.OperationDelete {
				return &applyOutcome{Applied: true}
			}
			return failed(ReasonTargetGone, fmt.Sprintf("%s no longer exists (or is being deleted)", targetName(pcr)))
		}
		if appliedBy(live, pcr) && pcr.Spec.Operation == v1alpha1.OperationUpdate {
			return &applyOutcome{Applied: true}
		}
		if live.GetResourceVersion() != pcr.Spec.BaseResourceVersion {
			return failed(ReasonConflict, fmt.Sprintf("%s changed after the request was made (it is at resourceVersion %s, the request was made against %s); ask for the change again against its current version",
				targetName(pcr), live.GetResourceVersion(), pcr.Spec.BaseResourceVersion))
		}
	}
	return nil
}

func failed(reason, message string) *applyOutcome {
	return &applyOutcome{Reason: reason, Message: message}
}

// appliedBy says whether obj carries the mark of pcr's apply.
func appliedBy(obj client.Object, pcr *v1alpha1.PartnerChangeRequest) bool {
	return obj.GetAnnotations()[v1alpha1.AnnotationChangeRequest] == pcr.Name
}

func ptrUID(obj client.Object) *types.UID {
	uid := obj.GetUID()
	return &uid
}

// intendedObject is the object the operator writes for pcr (a Create or an
// Update) at resourceVersion (ignored for a Create): the held object, in the
// request's namespace under the target's name and kind, with the server's
// metadata and status dropped, the operator's labels and annotations kept as
// live has them, the live object's owner references and finalizers kept
// (a partner does not manage them), and the marks of who asked, who
// approved and which request.
func intendedObject(pcr *v1alpha1.PartnerChangeRequest, live *unstructured.Unstructured, resourceVersion string) (*unstructured.Unstructured, error) {
	if pcr.Spec.Object == nil || len(pcr.Spec.Object.Raw) == 0 {
		return nil, errors.New("the request holds no object to write")
	}
	held := map[string]any{}
	if err := json.Unmarshal(pcr.Spec.Object.Raw, &held); err != nil {
		return nil, fmt.Errorf("the held object is not a JSON object: %w", err)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{}}
	for k, v := range held {
		if k != "metadata" && k != "status" {
			obj.Object[k] = v
		}
	}
	heldMeta := &unstructured.Unstructured{Object: map[string]any{"metadata": nested(held, "metadata")}}
	obj.SetGroupVersionKind(targetGVK(pcr))
	obj.SetNamespace(pcr.Namespace)
	obj.SetName(pcr.Spec.Target.Name)

	labels := map[string]string{}
	for k, v := range heldMeta.GetLabels() {
		if !operatorLabel(k) {
			labels[k] = v
		}
	}
	annotations := map[string]string{}
	for k, v := range heldMeta.GetAnnotations() {
		if !operatorAnnotations[k] {
			annotations[k] = v
		}
	}
	if live != nil {
		for k, v := range live.GetLabels() {
			if operatorLabel(k) {
				labels[k] = v
			}
		}
		for k, v := range live.GetAnnotations() {
			if operatorAnnotations[k] {
				annotations[k] = v
			}
		}
		obj.SetOwnerReferences(live.GetOwnerReferences())
		obj.SetFinalizers(live.GetFinalizers())
		obj.SetResourceVersion(resourceVersion)
	}
	annotations[v1alpha1.AnnotationChangeRequest] = pcr.Name
	annotations[v1alpha1.AnnotationChangeRequestedBy] = pcr.Annotations[v1alpha1.AnnotationRequestedBy]
	annotations[v1alpha1.AnnotationChangeApprovedBy] = pcr.Annotations[v1alpha1.AnnotationDecidedBy]
	if len(labels) > 0 {
		obj.SetLabels(labels)
	}
	obj.SetAnnotations(annotations)
	return obj, nil
}

// preview dry-runs the held change as the operator would write it and
// lists what it would change against live (nil: the target does not exist).
func (r *PartnerChangeRequestReconciler) preview(ctx context.Context, pcr *v1alpha1.PartnerChangeRequest, live *unstructured.Unstructured) *changePreview {
	var liveMap map[string]any
	if live != nil {
		liveMap = live.Object
	}
	switch pcr.Spec.Operation {
	case v1alpha1.OperationDelete:
		if live == nil {
			return &changePreview{Err: targetName(pcr) + " does not exist"}
		}
		return &changePreview{Changes: previewChanges(liveMap, nil)}
	case v1alpha1.OperationUpdate:
		if live == nil {
			return &changePreview{Err: targetName(pcr) + " does not exist"}
		}
	case v1alpha1.OperationCreate:
		if live != nil {
			return &changePreview{Err: targetName(pcr) + " exists already"}
		}
	}
	resourceVersion := ""
	if live != nil {
		// Against the live version, so that the preview shows the change
		// even when the target moved on (the apply will then fail Conflict).
		resourceVersion = live.GetResourceVersion()
	}
	obj, err := intendedObject(pcr, live, resourceVersion)
	if err != nil {
		return &changePreview{Err: err.Error()}
	}
	if pcr.Spec.Operation == v1alpha1.OperationCreate {
		err = r.Create(ctx, obj, client.DryRunAll)
	} else {
		err = r.Update(ctx, obj, client.DryRunAll)
	}
	if err != nil {
		return &changePreview{Err: err.Error()}
	}
	return &changePreview{Changes: previewChanges(liveMap, obj.Object)}
}

// isNoKind says whether err is the REST mapper's answer for a kind the
// apiserver does not serve (a target kind of a later API).
func isNoKind(err error) bool { return meta.IsNoMatchError(err) }
