package controllers

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/lifecycle"
)

// The end of a time-bound relationship (the invitation's spec.relationship),
// as pure functions of the link's status, the invitation's terms and the
// clock. The link controller is the only writer of status.expiresAt,
// status.extensions and the Expiring and Expired conditions.

const (
	day = 24 * time.Hour
	// extension is how far autoExtend moves expiresAt at each end.
	extension = v1alpha1.AutoExtendDays * day
	// maxExtensionsListed is the schema's bound of status.extensions.
	maxExtensionsListed = 16
)

// notices are the Expiring stages, most urgent first: a link with at most
// `before` left has reached `reason`.
var notices = []struct {
	before time.Duration
	reason string
	// says is how the notice's message begins (the audit line has no
	// reason field: the sentence tells the notices apart).
	says string
}{
	{1 * day, v1alpha1.ReasonExpiresIn1Day, "1 day or less left"},
	{7 * day, v1alpha1.ReasonExpiresIn7Days, "7 days or less left"},
	{30 * day, v1alpha1.ReasonExpiresIn30Days, "30 days or less left"},
}

// noticeSays is the opening of the message of the notice reason.
func noticeSays(reason string) string {
	for _, n := range notices {
		if n.reason == reason {
			return n.says
		}
	}
	return reason
}

// terms is what the link's invitation says of the relationship's end.
type terms struct {
	// durationDays is nil for a relationship without an end.
	durationDays *int32
	autoExtend   bool
}

// termsOf reads the terms of inv for link. An invitation that is gone, or
// that is not the one the link accepted (deleted and created again), sets no
// terms the link follows: known is false, and the link keeps the expiresAt it
// has (a deleted invitation cannot lengthen or remove the end, nor extend it).
func termsOf(inv *v1alpha1.PartnerInvitation, link *v1alpha1.PartnerLink) (t terms, known bool) {
	if inv == nil || !lifecycle.CreatedFor(inv, link) {
		return terms{}, false
	}
	if r := inv.Spec.Relationship; r != nil {
		t.durationDays, t.autoExtend = r.DurationDays, r.AutoExtend
	}
	return t, true
}

// relationship is the end of an active link as judged at one moment.
type relationship struct {
	expiresAt      *metav1.Time
	extensions     []v1alpha1.LinkExtension
	extensionCount int32
	// extended are the extensions made by this judgement (for their Events).
	extended []v1alpha1.LinkExtension
	// expired: expiresAt is reached and the terms do not extend it.
	expired bool
	// notice is the Expiring stage reached (a Reason), "" for none.
	notice string
	// next is the next moment the judgement changes by itself (a notice or
	// the end); zero when nothing is due.
	next time.Time
}

// judgeRelationship computes the end of an active link at now:
// establishedAt + durationDays + 180 days per extension, extended (as many
// times as needed) when it is reached and autoExtend is on. Without known
// terms the recorded expiresAt stands.
func judgeRelationship(status *v1alpha1.PartnerLinkStatus, t terms, known bool, now time.Time) relationship {
	rel := relationship{
		expiresAt:      status.ExpiresAt.DeepCopy(),
		extensions:     append([]v1alpha1.LinkExtension(nil), status.Extensions...),
		extensionCount: status.ExtensionCount,
	}
	if known {
		rel.expiresAt = nil
		if t.durationDays != nil && status.EstablishedAt != nil {
			rel.expiresAt = &metav1.Time{Time: endOf(status.EstablishedAt.Time, *t.durationDays, status.ExtensionCount)}
		}
	}
	if rel.expiresAt == nil {
		return rel
	}
	for t.autoExtend && known && !now.Before(rel.expiresAt.Time) {
		ext := v1alpha1.LinkExtension{At: metav1.Time{Time: now}, From: *rel.expiresAt, To: metav1.Time{Time: rel.expiresAt.Add(extension)}}
		rel.extended = append(rel.extended, ext)
		rel.extensions = append(rel.extensions, ext)
		rel.extensionCount++
		rel.expiresAt = ext.To.DeepCopy()
	}
	if len(rel.extensions) > maxExtensionsListed {
		rel.extensions = rel.extensions[len(rel.extensions)-maxExtensionsListed:]
	}
	end := rel.expiresAt.Time
	if !now.Before(end) {
		rel.expired = true
		return rel
	}
	left := end.Sub(now)
	for _, n := range notices {
		if left <= n.before {
			rel.notice = n.reason
			break
		}
	}
	rel.next = end
	for _, n := range notices {
		if at := end.Add(-n.before); now.Before(at) {
			rel.next = at // notices are most urgent first: the last one before now wins
		}
	}
	return rel
}

// endOf is the end of a relationship established at established, of
// durationDays, extended extensions times.
func endOf(established time.Time, durationDays, extensions int32) time.Time {
	return established.Add(time.Duration(durationDays)*day + time.Duration(extensions)*extension)
}

// setRelationship writes the judged end into an active link's status and
// its Expiring condition (absent while no notice is reached).
func setRelationship(status *v1alpha1.PartnerLinkStatus, link *v1alpha1.PartnerLink, rel relationship, autoExtend bool) {
	status.ExpiresAt, status.Extensions, status.ExtensionCount = rel.expiresAt, rel.extensions, rel.extensionCount
	if rel.notice == "" {
		meta.RemoveStatusCondition(&status.Conditions, v1alpha1.ConditionExpiring)
		return
	}
	then := "every decision for its users is Deny and it is offboarded; the link stays as an Expired record"
	if autoExtend {
		then = fmt.Sprintf("it is extended by %d days (relationship.autoExtend)", v1alpha1.AutoExtendDays)
	}
	setCondition(&status.Conditions, link, v1alpha1.ConditionExpiring, metav1.ConditionTrue, rel.notice,
		fmt.Sprintf("%s: the relationship with %s ends at %s, then %s", noticeSays(rel.notice), link.Spec.PartnerDomain, formatTime(rel.expiresAt.Time), then))
}

// expiredLinkStatus: the relationship reached its end. The link is never
// reactivated; its children and its partner's labels go.
func expiredLinkStatus(link *v1alpha1.PartnerLink, expiresAt time.Time) v1alpha1.PartnerLinkStatus {
	status := *link.Status.DeepCopy()
	status.Phase = v1alpha1.LinkExpired
	status.ExpiresAt = &metav1.Time{Time: expiresAt}
	status.ObservedGeneration = link.Generation
	msg := fmt.Sprintf("the relationship with %s ended at %s: the partner is offboarded; a new invitation starts a new relationship",
		link.Spec.PartnerDomain, formatTime(expiresAt))
	setCondition(&status.Conditions, link, v1alpha1.ConditionExpired, metav1.ConditionTrue, v1alpha1.ReasonRelationshipExpired, msg)
	setCondition(&status.Conditions, link, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonRelationshipExpired, msg)
	setCondition(&status.Conditions, link, v1alpha1.ConditionPrimaryAdminPresent, metav1.ConditionFalse, v1alpha1.ReasonRelationshipExpired,
		"the relationship ended: the built-in role is deleted")
	meta.RemoveStatusCondition(&status.Conditions, v1alpha1.ConditionExpiring)
	return status
}

// noticeRaised reports whether moving the Expiring reason from previous to
// current raises a notice: a stage is raised once, when it is first
// reached, and the persisted condition remembers it across restarts.
func noticeRaised(previous, current string) bool {
	return current != "" && current != previous
}
