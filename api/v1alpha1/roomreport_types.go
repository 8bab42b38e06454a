package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReportPeriod is the time a report covers: from start (inclusive) to end
// (exclusive).
// +kubebuilder:validation:XValidation:rule="self.start < self.end",message="end must be after start"
type ReportPeriod struct {
	// start of the period (RFC 3339).
	// +required
	Start metav1.Time `json:"start"`
	// end of the period (RFC 3339), after start.
	// +required
	End metav1.Time `json:"end"`
}

// RoomReportSpec holds a few figures about one room over one period, written
// by the customer's telemetry.
type RoomReportSpec struct {
	// room is the metadata.name of the Room, in the report's namespace, the
	// report is about. It decides who may read the report: a partner user
	// whose roles grant reports.view on that room. Immutable.
	// At most 63 characters: it is also the value of the label
	// partners.roompro.io/room, and a label value is at most 63.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="room is immutable: write a new report for another room"
	Room string `json:"room"`

	// period is the time the figures cover.
	// +required
	Period ReportPeriod `json:"period"`

	// availabilityPercent is the share of the period the room was usable,
	// 0 to 100.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	AvailabilityPercent int32 `json:"availabilityPercent"`

	// callQualityScore is the mean call quality over the period, 0 (worst)
	// to 100 (best).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	CallQualityScore int32 `json:"callQualityScore"`

	// meetings is how many meetings the room hosted in the period.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Meetings int32 `json:"meetings"`

	// incidents is how many incidents the room's devices reported.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Incidents int32 `json:"incidents"`
}

// RoomReportStatus is maintained by the operator.
type RoomReportStatus struct {
	// partners lists the domains of the partners that may reach the report's
	// room; the report carries their access labels, as the room does.
	// +optional
	// +listType=set
	Partners []string `json:"partners,omitempty"`

	// observedGeneration is the generation the operator last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready is True once the report's access labels are those
	// of its room; False with RoomNotFound while the room does not exist.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// RoomReport is a read-only report about one room. Partner users with
// reports.view on the room read it; only the customer writes it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rr,categories=roompro
// +kubebuilder:printcolumn:name="Room",type=string,JSONPath=`.spec.room`
// +kubebuilder:printcolumn:name="Start",type=date,JSONPath=`.spec.period.start`
// +kubebuilder:printcolumn:name="End",type=date,JSONPath=`.spec.period.end`
// +kubebuilder:printcolumn:name="Availability",type=integer,JSONPath=`.spec.availabilityPercent`
// +kubebuilder:printcolumn:name="Call Quality",type=integer,JSONPath=`.spec.callQualityScore`
// +kubebuilder:printcolumn:name="Partners",type=string,JSONPath=`.status.partners`,priority=1
type RoomReport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RoomReportSpec `json:"spec"`
	// +optional
	Status RoomReportStatus `json:"status,omitempty"`
}

// RoomReportList is a list of RoomReports.
// +kubebuilder:object:root=true
type RoomReportList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RoomReport `json:"items"`
}

func init() {
	register(&RoomReport{}, &RoomReportList{})
}
