// Package lifecycle holds the pure rules of a partner relationship: when an
// invitation expires and whether a PartnerLink accepts it. No client, no
// clock of its own: callers pass the objects and the current time.
//
// Acceptance is judged at the moment it was made, the link's creation, never
// when a controller gets to it: the admission webhook admits a link against a
// pending invitation on any replica, and the controllers (on the leader, after
// a failover or a backlog) reach the same verdict from the stored objects
// alone. Both the invitation controller (which records the acceptance on the
// invitation) and the link controller (which activates the link) apply
// CheckAcceptance, so they never disagree.
package lifecycle

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// ExpiresAt is the end of the invitation's acceptance window:
// creationTimestamp + expiryDays. It depends only on stored fields, so every
// replica and every restart computes the same deadline.
func ExpiresAt(inv *v1alpha1.PartnerInvitation) time.Time {
	return inv.CreationTimestamp.Add(time.Duration(inv.Spec.ExpiryDays) * 24 * time.Hour)
}

// Refusal says why a link may not accept its invitation.
type Refusal struct {
	Reason  string
	Message string
}

func (r *Refusal) Error() string { return r.Reason + ": " + r.Message }

// CheckAcceptance decides whether link accepts inv (nil when the invitation
// does not exist). It returns nil when the link may go on, which includes a
// link that the invitation already records as its acceptance (AcceptedBy).
//
// It does not read the clock: a link created before the deadline accepted in
// time, however late it is reconciled, and a link created at or after it did
// not (the admission webhook refuses such a create; this catches one that
// bypassed it).
func CheckAcceptance(inv *v1alpha1.PartnerInvitation, link *v1alpha1.PartnerLink) *Refusal {
	if inv == nil {
		return &Refusal{v1alpha1.ReasonInvitationNotFound, fmt.Sprintf("PartnerInvitation %q does not exist in this namespace", link.Spec.Invitation)}
	}
	if !CreatedFor(inv, link) {
		return &Refusal{v1alpha1.ReasonInvitationReplaced, fmt.Sprintf(
			"PartnerInvitation %q was created after this link, which accepted an earlier invitation of that name: a link accepts only the invitation it was created for; delete this link and create it again to accept the new invitation",
			inv.Name)}
	}
	if inv.Status.Phase == v1alpha1.InvitationAccepted {
		if AcceptedBy(inv, link) {
			return nil
		}
		return &Refusal{v1alpha1.ReasonInvitationAlreadyAccepted, fmt.Sprintf(
			"the invitation was accepted%s by an earlier link; the customer must send a new invitation", at(inv.Status.AcceptedAt))}
	}
	if inv.Spec.PartnerDomain != link.Spec.PartnerDomain {
		return &Refusal{v1alpha1.ReasonDomainMismatch, fmt.Sprintf("the invitation is for %s, not %s", inv.Spec.PartnerDomain, link.Spec.PartnerDomain)}
	}
	if !link.CreationTimestamp.Time.Before(ExpiresAt(inv)) {
		return &Refusal{v1alpha1.ReasonInvitationExpired, fmt.Sprintf("the invitation expired at %s, before this link was created at %s",
			formatTime(ExpiresAt(inv)), formatTime(link.CreationTimestamp.Time))}
	}
	return nil
}

// CreatedFor reports whether link was created to accept this very invitation,
// not an earlier one of the same name that was deleted. The admission webhook
// records the admitted invitation's UID on the link; a link without that
// record (admitted before the operator kept it, or created without the
// webhook) answers no invitation created after it. Creation timestamps have
// whole seconds, so that fallback cannot tell apart an invitation replaced
// within the second the link was created.
func CreatedFor(inv *v1alpha1.PartnerInvitation, link *v1alpha1.PartnerLink) bool {
	if uid, ok := link.Annotations[v1alpha1.AnnotationInvitationUID]; ok {
		return types.UID(uid) == inv.UID
	}
	return !inv.CreationTimestamp.After(link.CreationTimestamp.Time)
}

// AcceptedBy reports whether inv records its acceptance by this very link, as
// opposed to an earlier link of the same name that was deleted.
func AcceptedBy(inv *v1alpha1.PartnerInvitation, link *v1alpha1.PartnerLink) bool {
	if inv.Status.Phase != v1alpha1.InvitationAccepted || inv.Status.PartnerLink != link.Name {
		return false
	}
	if inv.Status.PartnerLinkUID != "" {
		return inv.Status.PartnerLinkUID == link.UID
	}
	// Recorded before the UID was: the link stamped status.establishedAt and
	// the invitation's acceptedAt with the same time.
	return inv.Status.AcceptedAt != nil && link.Status.EstablishedAt != nil &&
		inv.Status.AcceptedAt.Equal(link.Status.EstablishedAt)
}

// Acceptance is what an invitation records of the link that accepted it.
type Acceptance struct {
	// By is who created the link (its requested-by annotation).
	By string
	// At is the link's creation: the moment of acceptance.
	At time.Time
	// Link and LinkUID name the link.
	Link    string
	LinkUID types.UID
}

// Judge returns the phase the invitation has at now, given the link of its
// name (nil when there is none), and, when that link accepts it, the
// acceptance to record. Accepted is final: an accepted invitation keeps its
// record even after its link is gone. An expired one is never accepted by a
// link created after the deadline, but a link created before it wins, even
// when the invitation was marked Expired because the link was not yet seen.
func Judge(inv *v1alpha1.PartnerInvitation, link *v1alpha1.PartnerLink, now time.Time) (v1alpha1.InvitationPhase, *Acceptance) {
	if inv.Status.Phase == v1alpha1.InvitationAccepted {
		return v1alpha1.InvitationAccepted, nil
	}
	if link != nil && CheckAcceptance(inv, link) == nil {
		return v1alpha1.InvitationAccepted, &Acceptance{
			By: link.Annotations[v1alpha1.AnnotationRequestedBy], At: link.CreationTimestamp.Time,
			Link: link.Name, LinkUID: link.UID,
		}
	}
	if inv.Status.Phase == v1alpha1.InvitationExpired || !now.Before(ExpiresAt(inv)) {
		return v1alpha1.InvitationExpired, nil
	}
	return v1alpha1.InvitationPending, nil
}

// Open reports whether a new link may still accept inv at now: it is
// neither accepted nor past its deadline.
func Open(inv *v1alpha1.PartnerInvitation, now time.Time) bool {
	phase, _ := Judge(inv, nil, now)
	return phase == v1alpha1.InvitationPending
}

// at says when, if it is recorded: a hand-written Accepted status may lack
// acceptedAt.
func at(t *metav1.Time) string {
	if t == nil {
		return ""
	}
	return " at " + formatTime(t.Time)
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
