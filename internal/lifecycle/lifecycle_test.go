package lifecycle

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

var created = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func invitation(days int32) *v1alpha1.PartnerInvitation {
	return &v1alpha1.PartnerInvitation{
		ObjectMeta: metav1.ObjectMeta{Name: "contoso", CreationTimestamp: metav1.NewTime(created)},
		Spec:       v1alpha1.PartnerInvitationSpec{PartnerDomain: "contoso.com", ExpiryDays: days},
	}
}

func link() *v1alpha1.PartnerLink {
	return &v1alpha1.PartnerLink{
		ObjectMeta: metav1.ObjectMeta{Name: "contoso"},
		Spec:       v1alpha1.PartnerLinkSpec{Invitation: "contoso", PartnerDomain: "contoso.com"},
	}
}

func TestExpiresAtIsCreationPlusDays(t *testing.T) {
	if got, want := ExpiresAt(invitation(14)), created.Add(14*24*time.Hour); !got.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", got, want)
	}
}

func TestPhase(t *testing.T) {
	deadline := created.Add(24 * time.Hour)
	accepted := invitation(1)
	accepted.Status.Phase = v1alpha1.InvitationAccepted
	expired := invitation(30)
	expired.Status.Phase = v1alpha1.InvitationExpired
	cases := []struct {
		name string
		inv  *v1alpha1.PartnerInvitation
		now  time.Time
		want v1alpha1.InvitationPhase
	}{
		{"before the deadline", invitation(1), deadline.Add(-time.Nanosecond), v1alpha1.InvitationPending},
		{"at the deadline", invitation(1), deadline, v1alpha1.InvitationExpired},
		{"after the deadline", invitation(1), deadline.Add(time.Hour), v1alpha1.InvitationExpired},
		{"accepted never expires", accepted, deadline.Add(time.Hour), v1alpha1.InvitationAccepted},
		{"expired stays expired", expired, created, v1alpha1.InvitationExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Phase(tc.inv, tc.now); got != tc.want {
				t.Errorf("Phase = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCheckAcceptance(t *testing.T) {
	stamp := metav1.NewTime(created.Add(time.Hour))
	acceptedByThis := invitation(14)
	acceptedByThis.Status = v1alpha1.PartnerInvitationStatus{Phase: v1alpha1.InvitationAccepted, PartnerLink: "contoso", AcceptedAt: &stamp}
	claimed := link()
	claimed.Status.EstablishedAt = &stamp
	other := invitation(14)
	other.Spec.PartnerDomain = "fabrikam.com"

	cases := []struct {
		name string
		inv  *v1alpha1.PartnerInvitation
		link *v1alpha1.PartnerLink
		now  time.Time
		want string // the refusal's reason, "" for none
	}{
		{"pending invitation", invitation(14), link(), created, ""},
		{"missing invitation", nil, link(), created, ReasonInvitationNotFound},
		{"expired invitation", invitation(1), link(), created.Add(25 * time.Hour), ReasonInvitationExpired},
		{"other domain", other, link(), created, ReasonDomainMismatch},
		{"accepted by an earlier link of the same name", acceptedByThis, link(), created, ReasonInvitationAlreadyAccepted},
		{"accepted by this link, resuming after a crash", acceptedByThis, claimed, created.Add(30 * 24 * time.Hour), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			refusal := CheckAcceptance(tc.inv, tc.link, tc.now)
			switch {
			case tc.want == "" && refusal != nil:
				t.Errorf("refused: %v", refusal)
			case tc.want != "" && refusal == nil:
				t.Errorf("accepted, want refusal %s", tc.want)
			case tc.want != "" && refusal.Reason != tc.want:
				t.Errorf("reason = %s, want %s", refusal.Reason, tc.want)
			case refusal != nil && refusal.Message == "":
				t.Error("a refusal must say why")
			}
		})
	}
}
