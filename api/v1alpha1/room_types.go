package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RoomSpec describes a meeting room of the customer's inventory.
type RoomSpec struct {
	// displayName is the name people see for the room.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	DisplayName string `json:"displayName"`

	// site is the building or campus the room is in.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Site string `json:"site,omitempty"`

	// country is the ISO 3166-1 alpha-2 code of the room's country, for example US.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Z]{2}$')",message="must be an ISO 3166-1 alpha-2 country code of two upper-case letters, for example US"
	// +kubebuilder:validation:MaxLength=64
	Country string `json:"country,omitempty"`

	// groups are the metadata.names of the RoomGroups the room belongs to.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	Groups []string `json:"groups,omitempty"`

	// updateRing is the metadata.name of the UpdateRing that paces the room's
	// software updates.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	UpdateRing string `json:"updateRing,omitempty"`
}

// RoomStatus is maintained by the operator.
type RoomStatus struct {
	// partners lists the domains of the partners that may reach this room. The
	// room carries the label access.partners.roompro.io/<domain>: "true" for each.
	// +optional
	// +listType=set
	Partners []string `json:"partners,omitempty"`

	// observedGeneration is the generation the operator last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready is True once the operator has brought the room's
	// access labels and partners up to date with its current generation;
	// ReferencesResolved is False while spec.groups or spec.updateRing names
	// a RoomGroup or UpdateRing that does not exist (the message names them).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Room is a meeting room of the customer's inventory: the resource partners are
// scoped to.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=roompro
// +kubebuilder:selectablefield:JSONPath=`.spec.updateRing`
// +kubebuilder:printcolumn:name="Display Name",type=string,JSONPath=`.spec.displayName`
// +kubebuilder:printcolumn:name="Site",type=string,JSONPath=`.spec.site`
// +kubebuilder:printcolumn:name="Country",type=string,JSONPath=`.spec.country`
// +kubebuilder:printcolumn:name="Ring",type=string,JSONPath=`.spec.updateRing`,priority=1
// +kubebuilder:printcolumn:name="Partners",type=string,JSONPath=`.status.partners`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Room struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RoomSpec `json:"spec"`
	// +optional
	Status RoomStatus `json:"status,omitempty"`
}

// RoomList is a list of Rooms.
// +kubebuilder:object:root=true
type RoomList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Room `json:"items"`
}

func init() {
	register(&Room{}, &RoomList{})
}
