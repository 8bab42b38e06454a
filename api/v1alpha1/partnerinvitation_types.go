package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ApprovalMode says whether a partner's changes of one category take effect at
// once (Auto) or wait for the customer (Manual).
// +kubebuilder:validation:Enum=Auto;Manual
type ApprovalMode string

const (
	// ApprovalAuto applies a partner's changes at once.
	ApprovalAuto ApprovalMode = "Auto"
	// ApprovalManual holds a partner's changes for the customer's approval.
	ApprovalManual ApprovalMode = "Manual"
)

// Approvals sets the approval mode per category of partner change.
type Approvals struct {
	// rooms covers changes to rooms.
	// +optional
	// +kubebuilder:default=Auto
	Rooms ApprovalMode `json:"rooms,omitempty"`
	// roles covers changes to the partner's roles and their members.
	// +optional
	// +kubebuilder:default=Auto
	Roles ApprovalMode `json:"roles,omitempty"`
	// tickets covers support tickets.
	// +optional
	// +kubebuilder:default=Auto
	Tickets ApprovalMode `json:"tickets,omitempty"`
	// settings covers tenant settings.
	// +optional
	// +kubebuilder:default=Auto
	Settings ApprovalMode `json:"settings,omitempty"`
	// requestExpiryDays is how many days a PartnerChangeRequest of a Manual
	// category waits for a decision before it expires: 1 to 30.
	// +optional
	// +kubebuilder:default=7
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=30
	RequestExpiryDays int32 `json:"requestExpiryDays,omitempty"`
}

// ExtraValues are the accepted values of one key of a user's extra: the
// request must carry at least one of them.
// +kubebuilder:validation:MinItems=1
// +kubebuilder:validation:MaxItems=16
// +kubebuilder:validation:items:MinLength=1
// +kubebuilder:validation:items:MaxLength=256
// +listType=set
type ExtraValues []string

// SessionPolicy is what the customer requires of a partner user's session,
// read from the user's extra in each SubjectAccessReview: what the
// cluster's authentication put there (an OIDC claim through an
// AuthenticationConfiguration's claimMappings.extra, for example).
type SessionPolicy struct {
	// requiredExtra maps a key of the user's extra (lower case, as the
	// apiserver passes it: e.g. amr or example.com/amr) to the values of
	// which the request must carry at least one. Every key must be met;
	// otherwise the partner's request is denied with a reason naming the
	// key. The customer's own staff are never affected.
	// +required
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 253 && k.matches('^[a-z0-9]([-a-z0-9._/]*[a-z0-9])?$'))",message="keys must be lower case (the apiserver lower-cases extra keys), at most 253 characters of a-z, 0-9, '-', '.', '_' and '/', starting and ending with a letter or digit"
	RequiredExtra map[string]ExtraValues `json:"requiredExtra"`
}

// AutoExtendDays is how far an autoExtend relationship is extended at its end.
const AutoExtendDays = 180

// Relationship bounds the partnership an accepted invitation starts.
type Relationship struct {
	// durationDays is how many days the partnership lasts from the moment
	// its PartnerLink becomes Active: 1 to 730. Absent: no end. The customer
	// may change it at any time; the link's status.expiresAt follows. At
	// that moment every decision for the partner is Deny and the partner is
	// offboarded; the link stays as an Expired record.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=730
	DurationDays *int32 `json:"durationDays,omitempty"`

	// autoExtend extends the partnership by 180 days at each end instead of
	// ending it. The customer may turn it off at any time.
	// +optional
	AutoExtend bool `json:"autoExtend,omitempty"`
}

// PartnerInvitationSpec is the customer's invitation of a partner organisation.
type PartnerInvitationSpec struct {
	// partnerDomain is the DNS domain of the invited partner. Immutable.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="partnerDomain is immutable; create a new invitation for another partner"
	PartnerDomain Domain `json:"partnerDomain"`

	// expiryDays is how many days after its creation the invitation can be
	// accepted: 1 to 30. Immutable.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=30
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="expiryDays is immutable; create a new invitation for another deadline"
	ExpiryDays int32 `json:"expiryDays"`

	// approvals sets, per category, whether the partner's changes apply
	// automatically (Auto, the default) or wait for approval (Manual).
	// +optional
	// +kubebuilder:default={}
	Approvals Approvals `json:"approvals,omitempty"`

	// rooms is the partner's initial room scope, copied into a RoomAssignment
	// when the invitation is accepted.
	// +required
	// +kubebuilder:validation:XValidation:rule="(has(self.names) && size(self.names) > 0) || has(self.selector)",message="rooms needs names, a selector, or both"
	// +kubebuilder:validation:XValidation:rule="!has(self.selector) || !has(self.selector.matchExpressions) || self.selector.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="selector.matchExpressions[].operator must be one of In, NotIn, Exists, DoesNotExist"
	// +kubebuilder:validation:XValidation:rule="!has(self.selector) || !has(self.selector.matchExpressions) || self.selector.matchExpressions.all(e, e.operator in ['In', 'NotIn'] ? has(e.values) && size(e.values) > 0 : !has(e.values) || size(e.values) == 0)",message="selector.matchExpressions[].values must be non-empty for In and NotIn and empty for Exists and DoesNotExist"
	Rooms RoomScope `json:"rooms"`

	// relationship bounds the partnership in time. Absent: no end.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!self.autoExtend || has(self.durationDays)",message="autoExtend needs durationDays: a partnership without an end has nothing to extend"
	Relationship *Relationship `json:"relationship,omitempty"`

	// sessionPolicy is what the partner's users' sessions must carry for
	// any request in this namespace (multi-factor sign-in, for example).
	// The customer may change it at any time; it applies to the next
	// request.
	// +optional
	SessionPolicy *SessionPolicy `json:"sessionPolicy,omitempty"`

	// termsAccepted records that the customer accepted the terms of partner
	// management. It must be true.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == true",message="must be true: the customer accepts the partner-management terms by setting it"
	TermsAccepted bool `json:"termsAccepted"`
}

// InvitationPhase is where an invitation is in its life.
// +kubebuilder:validation:Enum=Pending;Accepted;Expired
type InvitationPhase string

const (
	// InvitationPending can still be accepted.
	InvitationPending InvitationPhase = "Pending"
	// InvitationAccepted was accepted by a PartnerLink; it stays as a record.
	InvitationAccepted InvitationPhase = "Accepted"
	// InvitationExpired passed its expiresAt unaccepted; it stays as a record.
	InvitationExpired InvitationPhase = "Expired"
)

// PartnerInvitationStatus is maintained by the operator.
type PartnerInvitationStatus struct {
	// phase is Pending, Accepted or Expired.
	// +optional
	Phase InvitationPhase `json:"phase,omitempty"`

	// expiresAt is creationTimestamp + expiryDays: the last moment the
	// invitation can be accepted.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// acceptedBy is the user who accepted the invitation.
	// +optional
	AcceptedBy string `json:"acceptedBy,omitempty"`

	// acceptedAt is when the invitation was accepted: the creation of the
	// PartnerLink that accepted it.
	// +optional
	AcceptedAt *metav1.Time `json:"acceptedAt,omitempty"`

	// partnerLink names the PartnerLink that accepted the invitation.
	// +optional
	PartnerLink string `json:"partnerLink,omitempty"`

	// partnerLinkUID is the UID of that PartnerLink: a later link of the
	// same name is another acceptance, and is refused.
	// +optional
	PartnerLinkUID types.UID `json:"partnerLinkUID,omitempty"`

	// observedGeneration is the generation the operator last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions describe the invitation's state.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PartnerInvitation invites a partner organisation, by domain, to manage some
// of the customer's rooms. A tenant manager of the partner accepts it by
// creating a PartnerLink of the same name, before it expires.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pinv,categories=roompro
// +kubebuilder:printcolumn:name="Partner",type=string,JSONPath=`.spec.partnerDomain`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Expires",type=string,format=date-time,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Accepted By",type=string,JSONPath=`.status.acceptedBy`,priority=1
// +kubebuilder:printcolumn:name="Link",type=string,JSONPath=`.status.partnerLink`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PartnerInvitation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec PartnerInvitationSpec `json:"spec"`
	// +optional
	Status PartnerInvitationStatus `json:"status,omitempty"`
}

// PartnerInvitationList is a list of PartnerInvitations.
// +kubebuilder:object:root=true
type PartnerInvitationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PartnerInvitation `json:"items"`
}

func init() {
	register(&PartnerInvitation{}, &PartnerInvitationList{})
}
