package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LabelRoom marks a Ticket or RoomReport with the room it is about
// (spec.room), so that a partner whose roles cover only some rooms lists
// their tickets with -l partners.roompro.io/room in (<rooms>). The
// admission webhook sets it from spec.room on every write; nobody may give
// it another value.
const LabelRoom = "partners.roompro.io/room"

// TicketSeverity is how badly an incident hurts the room's users.
// +kubebuilder:validation:Enum=Low;Medium;High;Critical
type TicketSeverity string

const (
	SeverityLow      TicketSeverity = "Low"
	SeverityMedium   TicketSeverity = "Medium"
	SeverityHigh     TicketSeverity = "High"
	SeverityCritical TicketSeverity = "Critical"
)

// TicketState is where a ticket is in its life.
// +kubebuilder:validation:Enum=Open;InProgress;Resolved;Closed
type TicketState string

const (
	TicketOpen       TicketState = "Open"
	TicketInProgress TicketState = "InProgress"
	TicketResolved   TicketState = "Resolved"
	TicketClosed     TicketState = "Closed"
)

// TicketSpec is an incident about one room.
type TicketSpec struct {
	// room is the metadata.name of the Room, in the ticket's namespace, the
	// incident is about. It decides who may reach the ticket: a partner user
	// whose roles grant tickets.* on that room. Immutable: open a new ticket
	// for another room.
	// At most 63 characters: it is also the value of the label
	// partners.roompro.io/room, and a label value is at most 63.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="room is immutable: open a new ticket for another room"
	Room string `json:"room"`

	// title says in one line what is wrong.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	Title string `json:"title"`

	// description tells the whole story.
	// +optional
	// +kubebuilder:validation:MaxLength=8192
	Description string `json:"description,omitempty"`

	// severity is Low, Medium (the default), High or Critical.
	// +optional
	// +kubebuilder:default=Medium
	Severity TicketSeverity `json:"severity,omitempty"`

	// state is Open (the default), InProgress, Resolved or Closed.
	// +optional
	// +kubebuilder:default=Open
	State TicketState `json:"state,omitempty"`
}

// TicketStatus is maintained by the operator.
type TicketStatus struct {
	// partners lists the domains of the partners that may reach the ticket's
	// room. The ticket carries the label access.partners.roompro.io/<domain>:
	// "true" for each, as the room does.
	// +optional
	// +listType=set
	Partners []string `json:"partners,omitempty"`

	// observedGeneration is the generation the operator last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready is True once the ticket's access labels are those of
	// its room; False with RoomNotFound while the room does not exist.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Ticket is a customer incident about one room. A partner user reaches it
// when its roles grant tickets.create, tickets.view or tickets.update on the
// ticket's room; partners never delete tickets.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ticket,categories=roompro
// +kubebuilder:printcolumn:name="Room",type=string,JSONPath=`.spec.room`
// +kubebuilder:printcolumn:name="Severity",type=string,JSONPath=`.spec.severity`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.spec.state`
// +kubebuilder:printcolumn:name="Title",type=string,JSONPath=`.spec.title`
// +kubebuilder:printcolumn:name="Partners",type=string,JSONPath=`.status.partners`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Ticket struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec TicketSpec `json:"spec"`
	// +optional
	Status TicketStatus `json:"status,omitempty"`
}

// TicketList is a list of Tickets.
// +kubebuilder:object:root=true
type TicketList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Ticket `json:"items"`
}

func init() {
	register(&Ticket{}, &TicketList{})
}
