package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PartnerLinkSpec is the partner's acceptance of an invitation.
// +kubebuilder:validation:XValidation:rule="self.primaryAdmins.all(s, s.kind == 'User' ? s.name.lowerAscii().endsWith('@' + self.partnerDomain) : s.name.lowerAscii().startsWith(self.partnerDomain + ':'))",message="primaryAdmins must be users (name@<partnerDomain>) or groups (<partnerDomain>:<group>) of the link's own partnerDomain"
type PartnerLinkSpec struct {
	// invitation names the PartnerInvitation this link accepts. It must equal
	// the link's own name, so that the first acceptance wins. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="invitation is immutable"
	Invitation string `json:"invitation"`

	// partnerDomain is the accepting partner's domain; it must be the
	// invitation's. Immutable.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="partnerDomain is immutable"
	PartnerDomain Domain `json:"partnerDomain"`

	// primaryAdmins are the partner's first primary admins: users or groups
	// of partnerDomain. At least one.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	PrimaryAdmins []Subject `json:"primaryAdmins"`
}

// LinkPhase is where a partner relationship is in its life.
// +kubebuilder:validation:Enum=Pending;Active;Expired;Terminating
type LinkPhase string

const (
	// LinkPending is a link the operator has not activated (yet): its Ready
	// condition says why.
	LinkPending LinkPhase = "Pending"
	// LinkActive is an established relationship.
	LinkActive LinkPhase = "Active"
	// LinkExpired reached its status.expiresAt: the partner is offboarded and
	// the link stays as a record. It is never reactivated; a new invitation
	// starts a new relationship.
	LinkExpired LinkPhase = "Expired"
	// LinkTerminating is being offboarded: every decision for the partner is Deny.
	LinkTerminating LinkPhase = "Terminating"
)

// Condition types of a PartnerLink.
const (
	// ConditionPrimaryAdminPresent is True while the built-in primary-admin
	// role of the link has at least one member.
	ConditionPrimaryAdminPresent = "PrimaryAdminPresent"
	// ConditionExpiring is True from 30 days before the relationship's
	// expiresAt; its reason says which notice (30, 7 or 1 days) was raised.
	ConditionExpiring = "Expiring"
	// ConditionExpired is True once the relationship reached its expiresAt.
	ConditionExpired = "Expired"
)

// LinkExtension records one automatic extension of a relationship.
type LinkExtension struct {
	// at is when the operator extended the relationship.
	// +required
	At metav1.Time `json:"at"`
	// from is the expiresAt before the extension.
	// +required
	From metav1.Time `json:"from"`
	// to is the expiresAt after it.
	// +required
	To metav1.Time `json:"to"`
}

// PartnerLinkStatus is maintained by the operator.
type PartnerLinkStatus struct {
	// phase is Pending, Active, Expired or Terminating.
	// +optional
	Phase LinkPhase `json:"phase,omitempty"`

	// rooms is how many rooms are in the partner's scope.
	// +optional
	Rooms int32 `json:"rooms"`

	// establishedBy is the user who created the link (accepted the invitation).
	// +optional
	EstablishedBy string `json:"establishedBy,omitempty"`

	// establishedAt is when the link became Active.
	// +optional
	EstablishedAt *metav1.Time `json:"establishedAt,omitempty"`

	// expiresAt is when the relationship ends: establishedAt plus the
	// invitation's relationship.durationDays, plus 180 days per extension.
	// Absent: no end. From this second on, every decision for the partner's
	// users is Deny (unless the invitation's autoExtend is on).
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// extensions record the automatic extensions, oldest first (the last 16).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Extensions []LinkExtension `json:"extensions,omitempty"`

	// extensionCount is how many times the relationship was extended in
	// all: expiresAt counts 180 days for each, also for those extensions no
	// longer listed.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ExtensionCount int32 `json:"extensionCount,omitempty"`

	// observedGeneration is the generation the operator last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready and PrimaryAdminPresent.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PartnerLink is an established relationship with a partner organisation.
// A tenant manager of the partner creates it, named like the invitation it
// accepts; deleting it (either side may) offboards the partner.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=plink,categories=roompro
// +kubebuilder:validation:XValidation:rule="self.metadata.name == self.spec.invitation",message="spec.invitation must equal metadata.name: a PartnerLink is named like the invitation it accepts"
// +kubebuilder:printcolumn:name="Partner",type=string,JSONPath=`.spec.partnerDomain`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Rooms",type=integer,JSONPath=`.status.rooms`
// +kubebuilder:printcolumn:name="Expires",type=string,format=date-time,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Established By",type=string,JSONPath=`.status.establishedBy`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PartnerLink struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec PartnerLinkSpec `json:"spec"`
	// +optional
	Status PartnerLinkStatus `json:"status,omitempty"`
}

// PartnerLinkList is a list of PartnerLinks.
// +kubebuilder:object:root=true
type PartnerLinkList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PartnerLink `json:"items"`
}

func init() {
	register(&PartnerLink{}, &PartnerLinkList{})
}
