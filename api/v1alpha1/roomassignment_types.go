package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RoomAssignmentSpec gives a partner some rooms of the customer's namespace.
type RoomAssignmentSpec struct {
	// partnerLink names the PartnerLink (in this namespace) whose scope this
	// assignment adds to. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="partnerLink is immutable; create another RoomAssignment for another partner"
	PartnerLink string `json:"partnerLink"`

	// rooms selects the rooms assigned, by name and/or label selector.
	// +required
	// +kubebuilder:validation:XValidation:rule="(has(self.names) && size(self.names) > 0) || has(self.selector)",message="rooms needs names, a selector, or both"
	// +kubebuilder:validation:XValidation:rule="!has(self.selector) || !has(self.selector.matchExpressions) || self.selector.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="selector.matchExpressions[].operator must be one of In, NotIn, Exists, DoesNotExist"
	// +kubebuilder:validation:XValidation:rule="!has(self.selector) || !has(self.selector.matchExpressions) || self.selector.matchExpressions.all(e, e.operator in ['In', 'NotIn'] ? has(e.values) && size(e.values) > 0 : !has(e.values) || size(e.values) == 0)",message="selector.matchExpressions[].values must be non-empty for In and NotIn and empty for Exists and DoesNotExist"
	Rooms RoomScope `json:"rooms"`
}

// RoomAssignmentStatus is maintained by the operator.
type RoomAssignmentStatus struct {
	// matchedRooms is how many rooms the assignment currently selects.
	// +optional
	MatchedRooms int32 `json:"matchedRooms"`

	// observedGeneration is the generation the operator last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, and RoomsFound (False names the rooms that do not exist).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// RoomAssignment is written by the customer only: it puts rooms into a
// partner's scope. A partner's scope is the union of its assignments.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:selectablefield:JSONPath=`.spec.partnerLink`
// +kubebuilder:resource:shortName=rassign,categories=roompro
// +kubebuilder:printcolumn:name="Link",type=string,JSONPath=`.spec.partnerLink`
// +kubebuilder:printcolumn:name="Rooms",type=integer,JSONPath=`.status.matchedRooms`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="!self.metadata.name.endsWith('-invitation') || self.metadata.name == self.spec.partnerLink + '-invitation'",fieldPath=".spec.partnerLink",message="a RoomAssignment named <link>-invitation is the initial assignment of PartnerLink <link> and must name that link: names ending in -invitation are reserved for the assignments links create when they accept their invitation"
type RoomAssignment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RoomAssignmentSpec `json:"spec"`
	// +optional
	Status RoomAssignmentStatus `json:"status,omitempty"`
}

// RoomAssignmentList is a list of RoomAssignments.
// +kubebuilder:object:root=true
type RoomAssignmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RoomAssignment `json:"items"`
}

func init() {
	register(&RoomAssignment{}, &RoomAssignmentList{})
}
