package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AccessLabelPrefix is the prefix of the label that the operator keeps on every
// Room a partner may reach: access.partners.roompro.io/<partner-domain>: "true".
const AccessLabelPrefix = "access.partners.roompro.io/"

// AccessLabel returns the key of the label that marks the rooms in the scope of
// the partner with the given (lower-case) domain.
func AccessLabel(domain string) string { return AccessLabelPrefix + domain }

// AnnotationRequestedBy records the user whose request created the object:
// the customer who sent an invitation, the tenant manager who accepted it with
// a PartnerLink. The admission webhook sets it on create and overwrites any
// value the request carried; the controllers copy it into status and the audit
// log (status.establishedBy, status.acceptedBy, userId).
const AnnotationRequestedBy = "partners.roompro.io/requested-by"

// AnnotationInvitationUID records, on a PartnerLink, the UID of the
// invitation it was created to accept. The admission webhook sets it on
// create from the invitation it admitted the link against, overwriting any
// value the request carried, and nobody may change it: a link accepts only
// that invitation, never a later one created under the same name.
const AnnotationInvitationUID = "partners.roompro.io/invitation-uid"

// AnnotationRequestedByGroups records, on a PartnerChangeRequest, the groups
// of the user in requested-by (comma-separated), from the apiserver's
// userInfo: the operator re-checks that user's authorization, groups
// included, when it applies the change.
const AnnotationRequestedByGroups = "partners.roompro.io/requested-by-groups"

// AnnotationDecidedBy records, on a PartnerChangeRequest, the user who set
// spec.decision, from the apiserver's userInfo; AnnotationDecidedAt when.
// The admission webhook stamps both on the write that sets the decision and
// nobody may change them.
const (
	AnnotationDecidedBy = "partners.roompro.io/decided-by"
	AnnotationDecidedAt = "partners.roompro.io/decided-at"
)

// AnnotationChangeRequest, AnnotationChangeRequestedBy and
// AnnotationChangeApprovedBy record, on an object the operator wrote for an
// approved PartnerChangeRequest, that request's name, who asked and who
// approved. The operator also reads the first to know the change is applied.
const (
	AnnotationChangeRequest     = "partners.roompro.io/change-request"
	AnnotationChangeRequestedBy = "partners.roompro.io/change-requested-by"
	AnnotationChangeApprovedBy  = "partners.roompro.io/change-approved-by"
)

// AnnotationChangeReason is the partner's words for a write held for the
// customer's approval (a Manual category): the admission webhook copies it
// into the PartnerChangeRequest's spec.reason and leaves it out of the held
// object. On a write that is not held it is refused like any other key of
// this API.
const AnnotationChangeReason = "partners.roompro.io/change-reason"

// LabelPartnerLink marks a PartnerChangeRequest with the PartnerLink it
// belongs to, so partner users list their link's requests with
// -l partners.roompro.io/partner-link=<link>. The admission webhook sets it
// from spec.partnerLink.
const LabelPartnerLink = "partners.roompro.io/partner-link"

// RoomScope selects rooms of the customer's namespace by name, by label, or both
// (a room matches when either matches).
//
// The CEL rules on the selector sit on the top-level scope fields of
// PartnerInvitation and RoomAssignment, not here: inside the lists of a
// PartnerRole their estimated cost exceeds the apiserver's budget, so the
// admission webhook validates role scopes instead.
type RoomScope struct {
	// names lists rooms by their metadata.name.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Names []string `json:"names,omitempty"`

	// selector selects rooms by their labels. An empty selector ({}) selects
	// every room of the namespace.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// SubjectKind is the kind of a Subject.
// +kubebuilder:validation:Enum=User;Group
type SubjectKind string

const (
	// UserSubject is a partner user, named by its UPN: name@<partner-domain>.
	UserSubject SubjectKind = "User"
	// GroupSubject is a partner group: <partner-domain>:<group>.
	GroupSubject SubjectKind = "Group"
)

// Subject is a partner user or group as the cluster's authenticator names it.
// +kubebuilder:validation:XValidation:rule="self.kind != 'User' || self.name.matches('^[^@:[:space:]]+@[^@:[:space:]]+[.][^@:[:space:]]+$')",message="a User subject is named by a UPN name@<partner-domain>, for example alice@contoso.com"
// +kubebuilder:validation:XValidation:rule="self.kind != 'Group' || self.name.matches('^[^@:[:space:]]+[.][^@:[:space:]]+:[^[:space:]]+$')",message="a Group subject is named <partner-domain>:<group>, for example contoso.com:helpdesk"
// +kubebuilder:validation:XValidation:rule="!self.name.lowerAscii().startsWith('system:')",message="system: users and groups are never partner subjects"
type Subject struct {
	// kind is User or Group.
	// +required
	Kind SubjectKind `json:"kind"`

	// name is the user's UPN (alice@contoso.com) or the group's name
	// (contoso.com:helpdesk).
	// +required
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`
}

// Condition types and reasons shared by the kinds of this API.
const (
	// ConditionReady is True when the object is fully reconciled and in effect.
	ConditionReady = "Ready"
)

// Domain is a partner organisation's DNS domain, lower-case, with at least one
// dot. It is at most 63 characters long because it becomes the name part of the
// room label access.partners.roompro.io/<domain>, which Kubernetes limits to 63.
// +kubebuilder:validation:MinLength=3
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:XValidation:rule="self.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?[.])+[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="must be a lower-case DNS domain name with at least one dot, for example contoso.com"
type Domain string
