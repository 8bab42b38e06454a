package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func TestInvitationStatus(t *testing.T) {
	created := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	inv := &v1alpha1.PartnerInvitation{
		ObjectMeta: metav1.ObjectMeta{Name: "contoso", UID: "inv", Generation: 2, CreationTimestamp: metav1.NewTime(created)},
		Spec:       v1alpha1.PartnerInvitationSpec{PartnerDomain: "contoso.com", ExpiryDays: 1},
	}
	link := &v1alpha1.PartnerLink{
		ObjectMeta: metav1.ObjectMeta{Name: "contoso", UID: "link", CreationTimestamp: metav1.NewTime(created.Add(time.Hour)),
			Annotations: map[string]string{v1alpha1.AnnotationInvitationUID: "inv", v1alpha1.AnnotationRequestedBy: "tm@contoso.com"}},
		Spec: v1alpha1.PartnerLinkSpec{Invitation: "contoso", PartnerDomain: "contoso.com"},
	}

	pending := invitationStatus(inv, nil, created)
	if pending.Phase != v1alpha1.InvitationPending || !pending.ExpiresAt.Time.Equal(created.Add(24*time.Hour)) || pending.ObservedGeneration != 2 {
		t.Errorf("pending = %+v", pending)
	}
	wantCondition(t, pending.Conditions, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAwaitingAcceptance)

	expired := invitationStatus(inv, nil, created.Add(24*time.Hour))
	if expired.Phase != v1alpha1.InvitationExpired {
		t.Errorf("expired = %+v", expired)
	}
	wantCondition(t, expired.Conditions, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvitationExpired)

	accepted := invitationStatus(inv, link, created.Add(48*time.Hour))
	if accepted.Phase != v1alpha1.InvitationAccepted || accepted.AcceptedBy != "tm@contoso.com" || accepted.PartnerLink != "contoso" ||
		accepted.PartnerLinkUID != "link" || !accepted.AcceptedAt.Equal(&link.CreationTimestamp) {
		t.Errorf("accepted = %+v", accepted)
	}
	wantCondition(t, accepted.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAccepted)

	if inv.Status.Phase != "" {
		t.Error("invitationStatus changed the invitation it was given")
	}
}
