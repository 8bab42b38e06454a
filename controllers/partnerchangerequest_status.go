package controllers

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// defaultRequestExpiryDays is how long a change request waits for a
// decision when the link's invitation does not say (the API's default).
const defaultRequestExpiryDays = 7

// changeRequestFacts is what the change request controller read and did in
// one reconcile, the input of changeRequestStatus.
type changeRequestFacts struct {
	// ExpiryDays is the requestExpiryDays of the link's invitation; 0 for
	// the default. Read only until status.expiresAt is set.
	ExpiryDays int32
	// LinkGone says, in words, why the request's link is out of effect (it
	// does not exist or is being deleted); "" while it is in effect.
	LinkGone string
	// Preview is the dry run of a pending request; nil when none was made.
	Preview *changePreview
	// Apply is the outcome of the apply step of an approved request; nil
	// when none was attempted.
	Apply *applyOutcome
}

// changePreview is the outcome of a dry run of the held change.
type changePreview struct {
	Changes []v1alpha1.FieldChange
	// Err is why the dry run did not succeed, in words; "" when it did.
	Err string
}

// applyOutcome is the outcome of the apply step.
type applyOutcome struct {
	// Applied: the change is written (now, or by an earlier reconcile).
	Applied bool
	// Applying: the operator claims the write before it deletes (the
	// claim tells its own delete from someone else's after a crash).
	Applying bool
	// Reason and Message say why the change is not written: the request
	// fails. Reason is one of the reasons of partnerchangerequest_reasons.go.
	Reason, Message string
}

// terminalChange says whether a phase is final: the controller writes
// nothing more once a request reaches it.
func terminalChange(phase v1alpha1.ChangeRequestPhase) bool {
	switch phase {
	case v1alpha1.ChangeDenied, v1alpha1.ChangeApplied, v1alpha1.ChangeFailed, v1alpha1.ChangeExpired:
		return true
	}
	return false
}

// changeRequestStatus is the status pcr has at now, given facts. The change
// request controller is its only writer. A final phase never changes;
// requestedBy, requestedAt and expiresAt are fixed at first sight, decidedBy
// and decidedAt when the decision is first seen. A decision made at or after
// expiresAt comes too late: the request expires.
func changeRequestStatus(pcr *v1alpha1.PartnerChangeRequest, facts changeRequestFacts, now time.Time) v1alpha1.PartnerChangeRequestStatus {
	status := *pcr.Status.DeepCopy()
	if terminalChange(status.Phase) {
		return status
	}
	status.ObservedGeneration = pcr.Generation
	if status.RequestedBy == "" {
		status.RequestedBy = pcr.Annotations[v1alpha1.AnnotationRequestedBy]
	}
	if status.RequestedAt == nil {
		status.RequestedAt = pcr.CreationTimestamp.DeepCopy()
	}
	if status.ExpiresAt == nil {
		days := facts.ExpiryDays
		if days <= 0 {
			days = defaultRequestExpiryDays
		}
		status.ExpiresAt = &metav1.Time{Time: pcr.CreationTimestamp.Add(time.Duration(days) * 24 * time.Hour)}
	}
	if status.Phase == "" {
		status.Phase = v1alpha1.ChangePending
	}
	expiresAt := status.ExpiresAt.Time
	what := describeChange(pcr)

	if status.Phase == v1alpha1.ChangePending && facts.Preview != nil {
		if facts.Preview.Err != "" {
			setCondition(&status.Conditions, pcr, ConditionChangePreviewed, metav1.ConditionFalse, ReasonPreviewFailed,
				"the apiserver's dry run of the change failed: "+facts.Preview.Err)
		} else {
			status.Preview = facts.Preview.Changes
			setCondition(&status.Conditions, pcr, ConditionChangePreviewed, metav1.ConditionTrue, ReasonPreviewed,
				fmt.Sprintf("%d field(s) of %s would change against its live version", len(status.Preview), targetName(pcr)))
		}
	}
	if status.Phase == v1alpha1.ChangePending && pcr.Spec.Decision != "" {
		if decidedAt := decisionTime(pcr, now); decidedAt.Before(expiresAt) {
			status.DecidedBy = pcr.Annotations[v1alpha1.AnnotationDecidedBy]
			status.DecidedAt = &metav1.Time{Time: decidedAt}
			status.Phase = v1alpha1.ChangeApproved
			if pcr.Spec.Decision == v1alpha1.DecisionDenied {
				status.Phase = v1alpha1.ChangeDenied
			}
		}
	}

	fail := func(reason, message string) {
		status.Phase = v1alpha1.ChangeFailed
		setCondition(&status.Conditions, pcr, ConditionChangeApplied, metav1.ConditionFalse, reason, message+"; nothing was written")
	}
	switch status.Phase {
	case v1alpha1.ChangePending:
		switch {
		case facts.LinkGone != "":
			fail(ReasonLinkGone, fmt.Sprintf("the %s was still pending when %s", what, facts.LinkGone))
		case !now.Before(expiresAt):
			status.Phase = v1alpha1.ChangeExpired
			setCondition(&status.Conditions, pcr, ConditionChangeApplied, metav1.ConditionFalse, ReasonChangeExpired,
				fmt.Sprintf("nobody decided on the %s before %s; nothing was written", what, formatTime(expiresAt)))
		default:
			setCondition(&status.Conditions, pcr, ConditionChangeApplied, metav1.ConditionFalse, ReasonChangePending,
				fmt.Sprintf("the %s asked by %s waits for a customer user allowed to approve partnerchangerequests, until %s",
					what, orUnknown(status.RequestedBy), formatTime(expiresAt)))
		}
	case v1alpha1.ChangeDenied:
		setCondition(&status.Conditions, pcr, ConditionChangeApplied, metav1.ConditionFalse, ReasonChangeDenied,
			fmt.Sprintf("%s denied the %s%s; nothing was written", orUnknown(status.DecidedBy), what, inWords(pcr.Spec.DecisionMessage)))
	case v1alpha1.ChangeApproved:
		switch apply := facts.Apply; {
		case apply != nil && apply.Applied:
			status.Phase = v1alpha1.ChangeApplied
			if status.AppliedAt == nil {
				status.AppliedAt = &metav1.Time{Time: now}
			}
			setCondition(&status.Conditions, pcr, ConditionChangeApplied, metav1.ConditionTrue, ReasonChangeApplied,
				fmt.Sprintf("the operator applied the %s at %s, as asked by %s and approved by %s",
					what, formatTime(status.AppliedAt.Time), orUnknown(status.RequestedBy), orUnknown(status.DecidedBy)))
		case apply != nil && apply.Reason != "":
			fail(apply.Reason, apply.Message)
		case facts.LinkGone != "":
			fail(ReasonLinkGone, fmt.Sprintf("the %s was approved but not applied when %s", what, facts.LinkGone))
		case apply != nil && apply.Applying:
			setCondition(&status.Conditions, pcr, ConditionChangeApplied, metav1.ConditionUnknown, ReasonChangeApplying,
				fmt.Sprintf("the operator is applying the %s approved by %s", what, orUnknown(status.DecidedBy)))
		default:
			setCondition(&status.Conditions, pcr, ConditionChangeApplied, metav1.ConditionFalse, ReasonChangeApproved,
				fmt.Sprintf("%s approved the %s%s; the operator applies it", orUnknown(status.DecidedBy), what, inWords(pcr.Spec.DecisionMessage)))
		}
	}
	return status
}

// decisionTime is when the decision was made, as admission stamped it; now
// when the stamp is missing or unreadable.
func decisionTime(pcr *v1alpha1.PartnerChangeRequest, now time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339, pcr.Annotations[v1alpha1.AnnotationDecidedAt]); err == nil {
		return t
	}
	return now
}

// describeChange is the change in words: "update of Room nyc".
func describeChange(pcr *v1alpha1.PartnerChangeRequest) string {
	return fmt.Sprintf("%s of %s", strings.ToLower(string(pcr.Spec.Operation)), targetName(pcr))
}

func targetName(pcr *v1alpha1.PartnerChangeRequest) string {
	return fmt.Sprintf("%s %s", pcr.Spec.Target.Kind, pcr.Spec.Target.Name)
}

// inWords appends a person's words to a sentence: `: "words"`.
func inWords(words string) string {
	if words == "" {
		return ""
	}
	return fmt.Sprintf(": %q", words)
}
