// Package lifecycle holds the pure rules of a partner relationship: when an
// invitation expires and whether a PartnerLink may accept it. No client, no
// clock of its own: callers pass the objects and the current time.
package lifecycle

import (
	"fmt"
	"time"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// ExpiresAt is the last moment the invitation can be accepted:
// creationTimestamp + expiryDays. It depends only on stored fields, so every
// replica and every restart computes the same deadline.
func ExpiresAt(inv *v1alpha1.PartnerInvitation) time.Time {
	return inv.CreationTimestamp.Add(time.Duration(inv.Spec.ExpiryDays) * 24 * time.Hour)
}

// Phase is the phase the invitation has at now. Accepted and Expired are
// final: an accepted invitation never expires, an expired one is never
// accepted.
func Phase(inv *v1alpha1.PartnerInvitation, now time.Time) v1alpha1.InvitationPhase {
	switch {
	case inv.Status.Phase == v1alpha1.InvitationAccepted || inv.Status.Phase == v1alpha1.InvitationExpired:
		return inv.Status.Phase
	case !now.Before(ExpiresAt(inv)):
		return v1alpha1.InvitationExpired
	default:
		return v1alpha1.InvitationPending
	}
}

// Reasons a link is not activated; they are the Ready condition's reason.
const (
	ReasonInvitationNotFound        = "InvitationNotFound"
	ReasonInvitationExpired         = "InvitationExpired"
	ReasonInvitationAlreadyAccepted = "InvitationAlreadyAccepted"
	ReasonDomainMismatch            = "PartnerDomainMismatch"
)

// Refusal says why a link may not accept its invitation.
type Refusal struct {
	Reason  string
	Message string
}

func (r *Refusal) Error() string { return r.Reason + ": " + r.Message }

// CheckAcceptance decides whether link may accept inv (nil when the invitation
// does not exist) at now. It returns nil when the link may go on, which
// includes a link that already accepted the invitation (see AcceptedBy).
func CheckAcceptance(inv *v1alpha1.PartnerInvitation, link *v1alpha1.PartnerLink, now time.Time) *Refusal {
	if inv == nil {
		return &Refusal{ReasonInvitationNotFound, fmt.Sprintf("PartnerInvitation %q does not exist in this namespace", link.Spec.Invitation)}
	}
	if AcceptedBy(inv, link) {
		return nil
	}
	if inv.Spec.PartnerDomain != link.Spec.PartnerDomain {
		return &Refusal{ReasonDomainMismatch, fmt.Sprintf("the invitation is for %s, not %s", inv.Spec.PartnerDomain, link.Spec.PartnerDomain)}
	}
	switch Phase(inv, now) {
	case v1alpha1.InvitationAccepted:
		return &Refusal{ReasonInvitationAlreadyAccepted, fmt.Sprintf("the invitation was accepted at %s by an earlier link; the customer must send a new invitation", formatTime(inv.Status.AcceptedAt.Time))}
	case v1alpha1.InvitationExpired:
		return &Refusal{ReasonInvitationExpired, fmt.Sprintf("the invitation expired at %s", formatTime(ExpiresAt(inv)))}
	}
	return nil
}

// AcceptedBy reports whether inv records its acceptance by this very link, as
// opposed to an earlier link of the same name that was deleted. The link
// stamps status.establishedAt before it marks the invitation Accepted with the
// same time, so a crash between the two steps resumes instead of refusing,
// and a link recreated later (with an empty status) is refused.
func AcceptedBy(inv *v1alpha1.PartnerInvitation, link *v1alpha1.PartnerLink) bool {
	return inv.Status.Phase == v1alpha1.InvitationAccepted &&
		inv.Status.PartnerLink == link.Name &&
		inv.Status.AcceptedAt != nil && link.Status.EstablishedAt != nil &&
		inv.Status.AcceptedAt.Equal(link.Status.EstablishedAt)
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
