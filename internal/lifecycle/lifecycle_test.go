package lifecycle

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

var created = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func invitation(days int32) *v1alpha1.PartnerInvitation {
	return &v1alpha1.PartnerInvitation{
		ObjectMeta: metav1.ObjectMeta{Name: "contoso", UID: "inv-1", CreationTimestamp: metav1.NewTime(created)},
		Spec:       v1alpha1.PartnerInvitationSpec{PartnerDomain: "contoso.com", ExpiryDays: days},
	}
}

// link is a link admitted against invitation(…) (UID inv-1) at createdAt.
func link(createdAt time.Time) *v1alpha1.PartnerLink {
	return &v1alpha1.PartnerLink{
		ObjectMeta: metav1.ObjectMeta{Name: "contoso", UID: "link-1", CreationTimestamp: metav1.NewTime(createdAt),
			Annotations: map[string]string{v1alpha1.AnnotationInvitationUID: "inv-1", v1alpha1.AnnotationRequestedBy: "tm@contoso.com"}},
		Spec: v1alpha1.PartnerLinkSpec{Invitation: "contoso", PartnerDomain: "contoso.com"},
	}
}

func acceptedBy(inv *v1alpha1.PartnerInvitation, l *v1alpha1.PartnerLink) *v1alpha1.PartnerInvitation {
	inv.Status = v1alpha1.PartnerInvitationStatus{Phase: v1alpha1.InvitationAccepted, PartnerLink: l.Name, PartnerLinkUID: l.UID,
		AcceptedAt: &l.CreationTimestamp}
	return inv
}

func TestExpiresAtIsCreationPlusDays(t *testing.T) {
	if got, want := ExpiresAt(invitation(14)), created.Add(14*24*time.Hour); !got.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", got, want)
	}
}

func TestCheckAcceptance(t *testing.T) {
	deadline := created.Add(24 * time.Hour)
	inTime := link(created.Add(time.Hour))

	replaced := invitation(14) // deleted and created again under the same name
	replaced.UID, replaced.CreationTimestamp = "inv-2", metav1.NewTime(created.Add(2*time.Hour))
	unrecordedLater := link(created.Add(time.Hour)) // admitted before the UID was recorded
	delete(unrecordedLater.Annotations, v1alpha1.AnnotationInvitationUID)
	other := invitation(14)
	other.Spec.PartnerDomain = "fabrikam.com"
	secondLink := link(created.Add(2 * time.Hour))
	secondLink.UID = "link-2"
	legacyLink := link(created.Add(time.Hour))
	legacyLink.Status.EstablishedAt = &metav1.Time{Time: created.Add(90 * time.Minute)}
	legacy := invitation(14)
	legacy.Status = v1alpha1.PartnerInvitationStatus{Phase: v1alpha1.InvitationAccepted, PartnerLink: "contoso", AcceptedAt: legacyLink.Status.EstablishedAt.DeepCopy()}
	noAcceptedAt := invitation(14)
	noAcceptedAt.Status = v1alpha1.PartnerInvitationStatus{Phase: v1alpha1.InvitationAccepted, PartnerLink: "someone"}
	expiredMarked := invitation(1) // the invitation controller got there first
	expiredMarked.Status.Phase = v1alpha1.InvitationExpired

	cases := []struct {
		name string
		inv  *v1alpha1.PartnerInvitation
		link *v1alpha1.PartnerLink
		want string // the refusal's reason, "" for none
	}{
		{"pending invitation", invitation(14), inTime, ""},
		{"missing invitation", nil, inTime, v1alpha1.ReasonInvitationNotFound},
		{"link created a second before the deadline", invitation(1), link(deadline.Add(-time.Second)), ""},
		{"link created at the deadline", invitation(1), link(deadline), v1alpha1.ReasonInvitationExpired},
		{"admitted in time, the invitation marked Expired before the link was seen", expiredMarked, link(deadline.Add(-time.Second)), ""},
		{"other domain", other, inTime, v1alpha1.ReasonDomainMismatch},
		{"an invitation of the same name created after the link was admitted", replaced, inTime, v1alpha1.ReasonInvitationReplaced},
		{"the same, for a link without the recorded UID", replaced, unrecordedLater, v1alpha1.ReasonInvitationReplaced},
		{"a link without the recorded UID, invitation older than it", invitation(14), unrecordedLater, ""},
		{"accepted by this link", acceptedBy(invitation(14), inTime), inTime, ""},
		{"accepted by an earlier link of the same name", acceptedBy(invitation(14), inTime), secondLink, v1alpha1.ReasonInvitationAlreadyAccepted},
		{"accepted by this link before UIDs were recorded", legacy, legacyLink, ""},
		{"accepted without acceptedAt (hand-written status)", noAcceptedAt, inTime, v1alpha1.ReasonInvitationAlreadyAccepted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			refusal := CheckAcceptance(tc.inv, tc.link)
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

func TestJudge(t *testing.T) {
	deadline := created.Add(24 * time.Hour)
	inTime := link(deadline.Add(-2 * time.Second))
	expiredMarked := invitation(1)
	expiredMarked.Status.Phase = v1alpha1.InvitationExpired
	replaced := invitation(1)
	replaced.UID = types.UID("inv-2")

	cases := []struct {
		name     string
		inv      *v1alpha1.PartnerInvitation
		link     *v1alpha1.PartnerLink
		now      time.Time
		want     v1alpha1.InvitationPhase
		accepted bool // an acceptance to record
	}{
		{"no link, before the deadline", invitation(1), nil, deadline.Add(-time.Nanosecond), v1alpha1.InvitationPending, false},
		{"no link, at the deadline", invitation(1), nil, deadline, v1alpha1.InvitationExpired, false},
		{"a link admitted in time, judged late", invitation(1), inTime, deadline.Add(5 * time.Second), v1alpha1.InvitationAccepted, true},
		{"a link admitted in time wins over an Expired already written", expiredMarked, inTime, deadline.Add(time.Hour), v1alpha1.InvitationAccepted, true},
		{"a link created after the deadline", invitation(1), link(deadline.Add(time.Second)), deadline.Add(time.Minute), v1alpha1.InvitationExpired, false},
		{"a link created for an earlier invitation of the name", replaced, inTime, created, v1alpha1.InvitationPending, false},
		{"accepted stays accepted when the link is gone", acceptedBy(invitation(1), inTime), nil, deadline.Add(time.Hour), v1alpha1.InvitationAccepted, false},
		{"expired stays expired", expiredMarked, nil, created, v1alpha1.InvitationExpired, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			phase, acc := Judge(tc.inv, tc.link, tc.now)
			if phase != tc.want || (acc != nil) != tc.accepted {
				t.Fatalf("Judge = %s, acceptance %+v; want %s, acceptance %v", phase, acc, tc.want, tc.accepted)
			}
			if acc != nil && (acc.Link != tc.link.Name || acc.LinkUID != tc.link.UID || !acc.At.Equal(tc.link.CreationTimestamp.Time) || acc.By != "tm@contoso.com") {
				t.Errorf("acceptance %+v does not record link %s created at %s by tm@contoso.com", acc, tc.link.UID, tc.link.CreationTimestamp)
			}
		})
	}
}
