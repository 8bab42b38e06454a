package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ChangeCategory is the approval category a change falls under
// (PartnerInvitation.spec.approvals).
// +kubebuilder:validation:Enum=rooms;roles;tickets
type ChangeCategory string

const (
	// CategoryRooms is a partner's update or patch of a Room.
	CategoryRooms ChangeCategory = "rooms"
	// CategoryRoles is a partner's create, update or delete of a PartnerRole.
	CategoryRoles ChangeCategory = "roles"
	// CategoryTickets is a partner's create or update of a Ticket.
	CategoryTickets ChangeCategory = "tickets"
)

// ChangeOperation is the write a change request holds.
// +kubebuilder:validation:Enum=Create;Update;Delete
type ChangeOperation string

const (
	OperationCreate ChangeOperation = "Create"
	OperationUpdate ChangeOperation = "Update"
	OperationDelete ChangeOperation = "Delete"
)

// ChangeDecision is the customer's answer to a change request.
// +kubebuilder:validation:Enum=Approved;Denied
type ChangeDecision string

const (
	DecisionApproved ChangeDecision = "Approved"
	DecisionDenied   ChangeDecision = "Denied"
)

// ChangeTarget names the object a change request writes, in the request's
// namespace.
type ChangeTarget struct {
	// apiVersion of the target: partners.roompro.io/v1alpha1.
	// +required
	// +kubebuilder:validation:Enum=partners.roompro.io/v1alpha1
	APIVersion string `json:"apiVersion"`
	// kind of the target: Room for rooms, PartnerRole for roles, Ticket for
	// tickets.
	// +required
	// +kubebuilder:validation:Enum=Room;PartnerRole;Ticket
	Kind string `json:"kind"`
	// name of the target.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// PartnerChangeRequestSpec is a partner's change held for the customer's
// approval, and the customer's decision. Everything but decision and
// decisionMessage is immutable; a decision is final.
// +kubebuilder:validation:XValidation:rule="self.partnerLink == oldSelf.partnerLink && self.category == oldSelf.category && self.operation == oldSelf.operation && self.target == oldSelf.target",message="partnerLink, category, operation and target are immutable; create a new request for another change"
// +kubebuilder:validation:XValidation:rule="has(self.object) == has(oldSelf.object) && (!has(self.object) || self.object == oldSelf.object)",message="object is immutable; create a new request for another change"
// +kubebuilder:validation:XValidation:rule="has(self.baseResourceVersion) == has(oldSelf.baseResourceVersion) && (!has(self.baseResourceVersion) || self.baseResourceVersion == oldSelf.baseResourceVersion) && has(self.reason) == has(oldSelf.reason) && (!has(self.reason) || self.reason == oldSelf.reason)",message="baseResourceVersion and reason are immutable; create a new request for another change"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.decision) || (has(self.decision) && self.decision == oldSelf.decision && has(self.decisionMessage) == has(oldSelf.decisionMessage) && (!has(self.decisionMessage) || self.decisionMessage == oldSelf.decisionMessage))",message="a decision is final: decision and decisionMessage cannot change once decision is set"
// +kubebuilder:validation:XValidation:rule="has(self.decision) || !has(self.decisionMessage)",message="decisionMessage goes with a decision: set both in one write"
// +kubebuilder:validation:XValidation:rule="self.operation == 'Delete' ? !has(self.object) : has(self.object)",message="object is required for Create and Update, and must be absent for Delete"
// +kubebuilder:validation:XValidation:rule="self.operation == 'Create' ? !has(self.baseResourceVersion) : has(self.baseResourceVersion)",message="baseResourceVersion is required for Update and Delete (the target's metadata.resourceVersion the change was made against), and must be absent for Create"
// +kubebuilder:validation:XValidation:rule="self.category == 'rooms' ? self.target.kind == 'Room' && self.operation == 'Update' : self.category == 'roles' ? self.target.kind == 'PartnerRole' : self.target.kind == 'Ticket' && self.operation != 'Delete'",message="category and target must agree: rooms updates a Room; roles creates, updates or deletes a PartnerRole; tickets creates or updates a Ticket"
type PartnerChangeRequestSpec struct {
	// partnerLink is the PartnerLink of the partner whose change this is.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	PartnerLink string `json:"partnerLink"`

	// category is the approval category of the change.
	// +required
	Category ChangeCategory `json:"category"`

	// operation is the write: Create, Update or Delete.
	// +required
	Operation ChangeOperation `json:"operation"`

	// target is the object written, in this request's namespace.
	// +required
	Target ChangeTarget `json:"target"`

	// object is the whole intended object for Create and Update, as the
	// partner would have written it; absent for Delete.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:EmbeddedResource
	Object *runtime.RawExtension `json:"object,omitempty"`

	// baseResourceVersion is the target's metadata.resourceVersion the change
	// was made against: the change applies only to that version.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	BaseResourceVersion string `json:"baseResourceVersion,omitempty"`

	// reason is the partner's words for the change.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`

	// decision is the customer's: Approved or Denied. Only a user whom RBAC
	// grants the verb approve on partnerchangerequests may set it, never a
	// partner user. Final once set.
	// +optional
	Decision ChangeDecision `json:"decision,omitempty"`

	// decisionMessage is the customer's words for the decision.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	DecisionMessage string `json:"decisionMessage,omitempty"`
}

// ChangeRequestPhase is where a change request is in its life.
// +kubebuilder:validation:Enum=Pending;Approved;Denied;Applied;Failed;Expired
type ChangeRequestPhase string

const (
	// ChangePending waits for the customer's decision.
	ChangePending ChangeRequestPhase = "Pending"
	// ChangeApproved is approved and not applied yet.
	ChangeApproved ChangeRequestPhase = "Approved"
	// ChangeDenied was denied: nothing was written.
	ChangeDenied ChangeRequestPhase = "Denied"
	// ChangeApplied was approved and written by the operator.
	ChangeApplied ChangeRequestPhase = "Applied"
	// ChangeFailed was approved but could not be applied (the Applied
	// condition says why): nothing was written.
	ChangeFailed ChangeRequestPhase = "Failed"
	// ChangeExpired was not decided before expiresAt: nothing was written.
	ChangeExpired ChangeRequestPhase = "Expired"
)

// FieldChange is one field a change request would change.
type FieldChange struct {
	// path of the field, as JSON Pointer (RFC 6901), e.g. /spec/displayName.
	Path string `json:"path"`
	// before is the live value, as JSON; empty when the field is added.
	// +optional
	Before string `json:"before,omitempty"`
	// after is the intended value, as JSON; empty when the field is removed.
	// +optional
	After string `json:"after,omitempty"`
}

// PartnerChangeRequestStatus is written by the operator only.
type PartnerChangeRequestStatus struct {
	// phase is Pending, Approved, Denied, Applied, Failed or Expired.
	// +optional
	Phase ChangeRequestPhase `json:"phase,omitempty"`
	// requestedBy is the user whose write produced the request, from the
	// apiserver's userInfo, never from the request's body.
	// +optional
	RequestedBy string `json:"requestedBy,omitempty"`
	// requestedAt is when the request was made.
	// +optional
	RequestedAt *metav1.Time `json:"requestedAt,omitempty"`
	// decidedBy is the user who set spec.decision, from the apiserver's
	// userInfo.
	// +optional
	DecidedBy string `json:"decidedBy,omitempty"`
	// decidedAt is when spec.decision was set.
	// +optional
	DecidedAt *metav1.Time `json:"decidedAt,omitempty"`
	// appliedAt is when the operator wrote the approved change.
	// +optional
	AppliedAt *metav1.Time `json:"appliedAt,omitempty"`
	// expiresAt is when a pending request expires.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// preview lists the fields the change would change against the live
	// target, computed by the operator while the request is pending.
	// +optional
	// +listType=atomic
	Preview []FieldChange `json:"preview,omitempty"`
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Applied (True once written; False with the reason:
	// Pending, Denied, Conflict, NoLongerAuthorized, TargetGone, LinkGone,
	// Expired) and Previewed.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PartnerChangeRequest is a partner's change that waits for the customer's
// approval (the category is Manual on the partner's invitation); the
// operator applies it once approved.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pcr,categories=roompro
// +kubebuilder:printcolumn:name="Partner",type=string,JSONPath=`.spec.partnerLink`
// +kubebuilder:printcolumn:name="Category",type=string,JSONPath=`.spec.category`
// +kubebuilder:printcolumn:name="Operation",type=string,JSONPath=`.spec.operation`
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.target.name`
// +kubebuilder:printcolumn:name="Requested By",type=string,JSONPath=`.status.requestedBy`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Decided By",type=string,JSONPath=`.status.decidedBy`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.spec.reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PartnerChangeRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec PartnerChangeRequestSpec `json:"spec"`
	// +optional
	Status PartnerChangeRequestStatus `json:"status,omitempty"`
}

// PartnerChangeRequestList is a list of PartnerChangeRequests.
// +kubebuilder:object:root=true
type PartnerChangeRequestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PartnerChangeRequest `json:"items"`
}

func init() {
	register(&PartnerChangeRequest{}, &PartnerChangeRequestList{})
}
