package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func changeRequestAt(created time.Time) *v1alpha1.PartnerChangeRequest {
	return &v1alpha1.PartnerChangeRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "rename", Namespace: "t", Generation: 1, CreationTimestamp: metav1.NewTime(created),
			Annotations: map[string]string{v1alpha1.AnnotationRequestedBy: "alice@contoso.com"}},
		Spec: v1alpha1.PartnerChangeRequestSpec{PartnerLink: "contoso", Category: v1alpha1.CategoryRooms, Operation: v1alpha1.OperationUpdate,
			Target: v1alpha1.ChangeTarget{APIVersion: "partners.roompro.io/v1alpha1", Kind: "Room", Name: "nyc"}, BaseResourceVersion: "7"},
	}
}

func decided(pcr *v1alpha1.PartnerChangeRequest, d v1alpha1.ChangeDecision, at time.Time) *v1alpha1.PartnerChangeRequest {
	pcr = pcr.DeepCopy()
	pcr.Spec.Decision = d
	pcr.Annotations[v1alpha1.AnnotationDecidedBy] = "bob@customer.example"
	pcr.Annotations[v1alpha1.AnnotationDecidedAt] = at.UTC().Format(time.RFC3339)
	return pcr
}

func withStatus(pcr *v1alpha1.PartnerChangeRequest, s v1alpha1.PartnerChangeRequestStatus) *v1alpha1.PartnerChangeRequest {
	pcr = pcr.DeepCopy()
	pcr.Status = s
	return pcr
}

func TestChangeRequestStatusPendingPreviewAndExpiry(t *testing.T) {
	created := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	pcr := changeRequestAt(created)
	preview := &changePreview{Changes: []v1alpha1.FieldChange{{Path: "/spec/displayName", Before: `"a"`, After: `"b"`}}}

	pending := changeRequestStatus(pcr, changeRequestFacts{ExpiryDays: 3, Preview: preview}, created)
	if pending.Phase != v1alpha1.ChangePending || pending.RequestedBy != "alice@contoso.com" || !pending.RequestedAt.Equal(&pcr.CreationTimestamp) ||
		!pending.ExpiresAt.Time.Equal(created.Add(72*time.Hour)) || len(pending.Preview) != 1 || pending.ObservedGeneration != 1 {
		t.Errorf("pending = %+v", pending)
	}
	wantCondition(t, pending.Conditions, ConditionChangeApplied, metav1.ConditionFalse, ReasonChangePending)
	wantCondition(t, pending.Conditions, ConditionChangePreviewed, metav1.ConditionTrue, ReasonPreviewed)

	defaulted := changeRequestStatus(pcr, changeRequestFacts{}, created)
	if !defaulted.ExpiresAt.Time.Equal(created.Add(7 * 24 * time.Hour)) {
		t.Errorf("default expiry = %v", defaulted.ExpiresAt)
	}

	// expiresAt is fixed at first sight: a later TTL does not move it.
	seen := withStatus(pcr, pending)
	if again := changeRequestStatus(seen, changeRequestFacts{ExpiryDays: 30}, created); !again.ExpiresAt.Equal(pending.ExpiresAt) {
		t.Errorf("expiresAt moved to %v", again.ExpiresAt)
	}

	failedPreview := changeRequestStatus(pcr, changeRequestFacts{Preview: &changePreview{Err: "room nyc does not exist"}}, created)
	wantCondition(t, failedPreview.Conditions, ConditionChangePreviewed, metav1.ConditionFalse, ReasonPreviewFailed)

	deadline := pending.ExpiresAt.Time
	if s := changeRequestStatus(seen, changeRequestFacts{}, deadline.Add(-time.Second)); s.Phase != v1alpha1.ChangePending {
		t.Errorf("a second before the deadline: %s", s.Phase)
	}
	expired := changeRequestStatus(seen, changeRequestFacts{}, deadline)
	if expired.Phase != v1alpha1.ChangeExpired {
		t.Errorf("at the deadline: %s", expired.Phase)
	}
	wantCondition(t, expired.Conditions, ConditionChangeApplied, metav1.ConditionFalse, ReasonChangeExpired)

	// A decision made at the deadline comes too late.
	late := changeRequestStatus(decided(seen, v1alpha1.DecisionApproved, deadline), changeRequestFacts{}, deadline)
	if late.Phase != v1alpha1.ChangeExpired || late.DecidedBy != "" {
		t.Errorf("late decision = %+v", late)
	}

	gone := changeRequestStatus(seen, changeRequestFacts{LinkGone: `PartnerLink "contoso" is being deleted`}, created)
	if gone.Phase != v1alpha1.ChangeFailed {
		t.Errorf("link gone: %s", gone.Phase)
	}
	wantCondition(t, gone.Conditions, ConditionChangeApplied, metav1.ConditionFalse, ReasonLinkGone)
}

func TestChangeRequestStatusDecisionAndApply(t *testing.T) {
	created := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	decidedAt := created.Add(time.Hour)
	now := decidedAt.Add(time.Second)
	pending := withStatus(changeRequestAt(created), changeRequestStatus(changeRequestAt(created), changeRequestFacts{}, created))

	denied := changeRequestStatus(decided(pending, v1alpha1.DecisionDenied, decidedAt), changeRequestFacts{}, now)
	if denied.Phase != v1alpha1.ChangeDenied || denied.DecidedBy != "bob@customer.example" || !denied.DecidedAt.Time.Equal(decidedAt) {
		t.Errorf("denied = %+v", denied)
	}
	wantCondition(t, denied.Conditions, ConditionChangeApplied, metav1.ConditionFalse, ReasonChangeDenied)

	approvedPCR := decided(pending, v1alpha1.DecisionApproved, decidedAt)
	approved := changeRequestStatus(approvedPCR, changeRequestFacts{}, now)
	if approved.Phase != v1alpha1.ChangeApproved || approved.AppliedAt != nil {
		t.Errorf("approved = %+v", approved)
	}
	wantCondition(t, approved.Conditions, ConditionChangeApplied, metav1.ConditionFalse, ReasonChangeApproved)
	approvedPCR = withStatus(approvedPCR, approved)

	applied := changeRequestStatus(approvedPCR, changeRequestFacts{Apply: &applyOutcome{Applied: true}}, now)
	if applied.Phase != v1alpha1.ChangeApplied || !applied.AppliedAt.Time.Equal(now) {
		t.Errorf("applied = %+v", applied)
	}
	wantCondition(t, applied.Conditions, ConditionChangeApplied, metav1.ConditionTrue, ReasonChangeApplied)

	applying := changeRequestStatus(approvedPCR, changeRequestFacts{Apply: &applyOutcome{Applying: true}}, now)
	if applying.Phase != v1alpha1.ChangeApproved {
		t.Errorf("applying = %+v", applying)
	}
	wantCondition(t, applying.Conditions, ConditionChangeApplied, metav1.ConditionUnknown, ReasonChangeApplying)

	for _, reason := range []string{ReasonConflict, ReasonNoLongerAuthorized, ReasonTargetGone, ReasonLinkGone, ReasonInvalidObject} {
		s := changeRequestStatus(approvedPCR, changeRequestFacts{Apply: failed(reason, "why")}, now)
		if s.Phase != v1alpha1.ChangeFailed || s.AppliedAt != nil {
			t.Errorf("%s: %+v", reason, s)
		}
		wantCondition(t, s.Conditions, ConditionChangeApplied, metav1.ConditionFalse, reason)
	}

	// A final phase never changes.
	final := withStatus(approvedPCR, applied)
	if again := changeRequestStatus(final, changeRequestFacts{LinkGone: "gone", Apply: failed(ReasonConflict, "x")}, now.Add(30*24*time.Hour)); again.Phase != v1alpha1.ChangeApplied {
		t.Errorf("final phase changed to %s", again.Phase)
	}
	if approvedPCR.Status.Phase != v1alpha1.ChangeApproved || pending.Status.Phase != v1alpha1.ChangePending {
		t.Error("changeRequestStatus changed the request it was given")
	}
}
