package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/lifecycle"
)

func TestLinkStatuses(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	link := &v1alpha1.PartnerLink{
		ObjectMeta: metav1.ObjectMeta{Name: "contoso", UID: "link", Generation: 3,
			Annotations: map[string]string{v1alpha1.AnnotationRequestedBy: "tm@contoso.com"}},
		Spec: v1alpha1.PartnerLinkSpec{PartnerDomain: "contoso.com", PrimaryAdmins: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "alice@contoso.com"}}},
	}

	t.Run("refused", func(t *testing.T) {
		claimed := link.DeepCopy()
		claimed.Status.EstablishedAt = &metav1.Time{Time: now}
		s := refusedLinkStatus(claimed, &lifecycle.Refusal{Reason: v1alpha1.ReasonInvitationReplaced, Message: "why"})
		if s.Phase != v1alpha1.LinkPending || s.EstablishedAt != nil || s.ObservedGeneration != 3 {
			t.Errorf("status = %+v", s)
		}
		wantCondition(t, s.Conditions, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvitationReplaced)
	})
	t.Run("active", func(t *testing.T) {
		s := activeLinkStatus(link, &v1alpha1.PartnerInvitation{}, now)
		if s.Phase != v1alpha1.LinkActive || !s.EstablishedAt.Time.Equal(now) || s.EstablishedBy != "tm@contoso.com" || s.ExpiresAt != nil {
			t.Errorf("status = %+v", s)
		}
		bounded := &v1alpha1.PartnerInvitation{Spec: v1alpha1.PartnerInvitationSpec{Relationship: &v1alpha1.Relationship{DurationDays: new(int32(10))}}}
		if s := activeLinkStatus(link, bounded, now); s.ExpiresAt == nil || !s.ExpiresAt.Time.Equal(now.Add(10*24*time.Hour)) {
			t.Errorf("expiresAt = %v, want establishedAt + 10 days", s.ExpiresAt)
		}
		wantCondition(t, s.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonActive)
		wantCondition(t, s.Conditions, v1alpha1.ConditionPrimaryAdminPresent, metav1.ConditionTrue, v1alpha1.ReasonPrimaryAdminFound)
	})

	owned := primaryAdminRole(link)
	owned.OwnerReferences = []metav1.OwnerReference{{Kind: "PartnerLink", Name: "contoso", UID: "link", Controller: new(true)}}
	empty := owned.DeepCopy()
	empty.Spec.Assignments = nil
	stray := owned.DeepCopy()
	stray.OwnerReferences[0].UID = "an-earlier-link"
	for _, tc := range []struct {
		name          string
		role          *v1alpha1.PartnerRole
		ready         metav1.ConditionStatus
		readyReason   string
		present       metav1.ConditionStatus
		presentReason string
	}{
		{"its own role with a member", owned, metav1.ConditionTrue, v1alpha1.ReasonActive, metav1.ConditionTrue, v1alpha1.ReasonPrimaryAdminFound},
		{"a role that is not its own", stray, metav1.ConditionFalse, v1alpha1.ReasonChildNameTaken, metav1.ConditionFalse, v1alpha1.ReasonChildNameTaken},
	} {
		t.Run("maintained: "+tc.name, func(t *testing.T) {
			s := maintainedLinkStatus(link, tc.role, 7)
			if s.Rooms != 7 || s.ObservedGeneration != 3 {
				t.Errorf("status = %+v", s)
			}
			wantCondition(t, s.Conditions, v1alpha1.ConditionReady, tc.ready, tc.readyReason)
			wantCondition(t, s.Conditions, v1alpha1.ConditionPrimaryAdminPresent, tc.present, tc.presentReason)
		})
	}
	t.Run("maintained: its own role without members", func(t *testing.T) {
		s := maintainedLinkStatus(link, empty, 0)
		wantCondition(t, s.Conditions, v1alpha1.ConditionPrimaryAdminPresent, metav1.ConditionFalse, v1alpha1.ReasonNoPrimaryAdmin)
	})
	t.Run("maintained: its own role whose only members are windowed", func(t *testing.T) {
		windowed := owned.DeepCopy()
		windowed.Spec.Assignments[0].ValidUntil = &metav1.Time{Time: now.Add(time.Hour)}
		s := maintainedLinkStatus(link, windowed, 0)
		wantCondition(t, s.Conditions, v1alpha1.ConditionPrimaryAdminPresent, metav1.ConditionFalse, v1alpha1.ReasonNoPrimaryAdmin)
	})
	t.Run("terminating", func(t *testing.T) {
		s := terminatingLinkStatus(link)
		if s.Phase != v1alpha1.LinkTerminating {
			t.Errorf("status = %+v", s)
		}
		wantCondition(t, s.Conditions, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonOffboarding)
	})
}
