package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RoomGroupSpec describes a group of rooms. Rooms join a group by naming it
// in Room.spec.groups: the group does not list its rooms.
type RoomGroupSpec struct {
	// displayName is the name people see for the group.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	DisplayName string `json:"displayName"`

	// description says what the rooms of the group have in common.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`
}

// RoomGroupStatus is maintained by the operator, derived from the rooms.
type RoomGroupStatus struct {
	// rooms counts the rooms whose spec.groups names this group.
	// +optional
	Rooms int32 `json:"rooms"`

	// observedGeneration is the generation the operator last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready is True once rooms counts the group's rooms.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// RoomGroup is a named group of the customer's rooms (groups.* of the
// permission matrix). Partner users with groups.view read every group of a
// namespace they manage rooms in; only the customer writes them.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rg,categories=roompro
// +kubebuilder:printcolumn:name="Display Name",type=string,JSONPath=`.spec.displayName`
// +kubebuilder:printcolumn:name="Rooms",type=integer,JSONPath=`.status.rooms`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RoomGroup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RoomGroupSpec `json:"spec"`
	// +optional
	Status RoomGroupStatus `json:"status,omitempty"`
}

// RoomGroupList is a list of RoomGroups.
// +kubebuilder:object:root=true
type RoomGroupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RoomGroup `json:"items"`
}

func init() {
	register(&RoomGroup{}, &RoomGroupList{})
}
