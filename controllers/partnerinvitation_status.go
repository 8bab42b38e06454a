package controllers

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/lifecycle"
)

// invitationStatus is the status inv has at now, given the link of its name
// (nil when there is none). The invitation controller is its only writer: the
// link controller activates a link by the same rule (lifecycle.CheckAcceptance)
// and writes only the link.
func invitationStatus(inv *v1alpha1.PartnerInvitation, link *v1alpha1.PartnerLink, now time.Time) v1alpha1.PartnerInvitationStatus {
	phase, acceptance := lifecycle.Judge(inv, link, now)
	expiresAt := lifecycle.ExpiresAt(inv)
	status := *inv.Status.DeepCopy()
	status.Phase = phase
	status.ExpiresAt = &metav1.Time{Time: expiresAt}
	status.ObservedGeneration = inv.Generation
	if acceptance != nil {
		status.AcceptedBy = acceptance.By
		status.AcceptedAt = &metav1.Time{Time: acceptance.At}
		status.PartnerLink = acceptance.Link
		status.PartnerLinkUID = acceptance.LinkUID
	}
	switch phase {
	case v1alpha1.InvitationPending:
		setCondition(&status.Conditions, inv, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAwaitingAcceptance,
			fmt.Sprintf("waiting for a tenant manager of %s to create PartnerLink %q before %s", inv.Spec.PartnerDomain, inv.Name, formatTime(expiresAt)))
	case v1alpha1.InvitationExpired:
		setCondition(&status.Conditions, inv, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvitationExpired,
			fmt.Sprintf("expired unaccepted at %s; create a new invitation to invite %s again", formatTime(expiresAt), inv.Spec.PartnerDomain))
	case v1alpha1.InvitationAccepted:
		setCondition(&status.Conditions, inv, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAccepted,
			fmt.Sprintf("accepted by %s through PartnerLink %q", orUnknown(status.AcceptedBy), status.PartnerLink))
	}
	return status
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
