package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// UpdateRingSpec describes how fast the rooms of a ring take software
// updates. Rooms join a ring by naming it in Room.spec.updateRing: the ring
// does not list its rooms.
type UpdateRingSpec struct {
	// displayName is the name people see for the ring.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	DisplayName string `json:"displayName"`

	// description says what the ring is for.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// deferralDays is how many days after its release an update reaches the
	// ring's rooms, 0 (at once, the default) to 180.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=180
	DeferralDays int32 `json:"deferralDays"`

	// paused stops updates to the ring's rooms while true.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// UpdateRingStatus is maintained by the operator, derived from the rooms.
type UpdateRingStatus struct {
	// rooms counts the rooms whose spec.updateRing names this ring
	// (kubectl get rooms --field-selector spec.updateRing=<ring> lists them).
	// +optional
	Rooms int32 `json:"rooms"`

	// observedGeneration is the generation the operator last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready is True once rooms counts the ring's rooms.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// UpdateRing paces the software updates of the rooms that name it
// (updateRings.* of the permission matrix). Partner users with
// updateRings.view read every ring of a namespace they manage rooms in; with
// updateRings.modify they change a ring only when every room in it is in
// the scope of their roles, so that no partner's write changes what happens
// to a room outside its scope. Only the customer creates and deletes rings.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ring,categories=roompro
// +kubebuilder:printcolumn:name="Display Name",type=string,JSONPath=`.spec.displayName`
// +kubebuilder:printcolumn:name="Deferral Days",type=integer,JSONPath=`.spec.deferralDays`
// +kubebuilder:printcolumn:name="Paused",type=boolean,JSONPath=`.spec.paused`
// +kubebuilder:printcolumn:name="Rooms",type=integer,JSONPath=`.status.rooms`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type UpdateRing struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec UpdateRingSpec `json:"spec"`
	// +optional
	Status UpdateRingStatus `json:"status,omitempty"`
}

// UpdateRingList is a list of UpdateRings.
// +kubebuilder:object:root=true
type UpdateRingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []UpdateRing `json:"items"`
}

func init() {
	register(&UpdateRing{}, &UpdateRingList{})
}
