package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BuiltinRole marks a role the operator owns.
// +kubebuilder:validation:Enum=PrimaryAdmin
type BuiltinRole string

const (
	// BuiltinPrimaryAdmin is the role <link>-primary-admins that holds the
	// partner's primary admins. It always has at least one member.
	BuiltinPrimaryAdmin BuiltinRole = "PrimaryAdmin"
)

// PrimaryAdminRoleSuffix ends the name of every built-in primary-admin role,
// and of no other role.
const PrimaryAdminRoleSuffix = "-primary-admins"

// PrimaryAdminRoleName is the name of a link's built-in primary-admin role.
func PrimaryAdminRoleName(link string) string { return link + PrimaryAdminRoleSuffix }

// RoleAssignment grants a role's permissions to members, on a scope, for an
// optional window of time (just-in-time access).
// +kubebuilder:validation:XValidation:rule="!has(self.validFrom) || !has(self.validUntil) || timestamp(self.validFrom) < timestamp(self.validUntil)",fieldPath=".validUntil",message="validUntil must be later than validFrom: the window is [validFrom, validUntil)"
type RoleAssignment struct {
	// name identifies the assignment within the role.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// members are users and groups of the link's own partner domain.
	// +optional
	// Use a group for more people than this.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Members []Subject `json:"members,omitempty"`

	// scope narrows the rooms the members may act on. An empty scope means the
	// partner's whole scope; a scope never widens it.
	// +optional
	Scope RoomScope `json:"scope,omitempty"`

	// validFrom is the first second at which the assignment grants anything
	// (RFC 3339). Absent: from the moment it is written.
	// +optional
	ValidFrom *metav1.Time `json:"validFrom,omitempty"`

	// validUntil is the first second at which the assignment grants nothing
	// any more (RFC 3339): the window is [validFrom, validUntil). Absent: no
	// end. The authorization webhook decides against the clock, so the window
	// holds to the second whatever the operator's reconciles are doing.
	// +optional
	ValidUntil *metav1.Time `json:"validUntil,omitempty"`
}

// Windowed reports whether the assignment has a validFrom or a validUntil.
func (a RoleAssignment) Windowed() bool { return a.ValidFrom != nil || a.ValidUntil != nil }

// PermanentMembers counts the members of the assignments without a window:
// those the primary-admin invariant counts, since they hold at every moment.
func (s PartnerRoleSpec) PermanentMembers() int {
	n := 0
	for _, a := range s.Assignments {
		if !a.Windowed() {
			n += len(a.Members)
		}
	}
	return n
}

// Window says whether a RoleAssignment grants at a moment: before, inside or
// after its [validFrom, validUntil) window.
type Window string

const (
	// WindowActive: the assignment grants now.
	WindowActive Window = "Active"
	// WindowUpcoming: validFrom is still to come.
	WindowUpcoming Window = "Upcoming"
	// WindowExpired: validUntil has passed; the assignment grants nothing again.
	WindowExpired Window = "Expired"
)

// PartnerRoleSpec is a partner's delegation of rights inside its room scope.
// +kubebuilder:validation:XValidation:rule="has(self.builtin) == has(oldSelf.builtin) && (!has(self.builtin) || self.builtin == oldSelf.builtin)",message="builtin is immutable"
// +kubebuilder:validation:XValidation:rule="!has(self.builtin) || (has(self.assignments) && self.assignments.exists(a, has(a.members) && size(a.members) > 0 && !has(a.validFrom) && !has(a.validUntil)))",fieldPath=".assignments",message="the built-in primary-admin role must keep at least one member in an assignment without validFrom or validUntil: a partner always has a primary admin, whatever the time"
type PartnerRoleSpec struct {
	// partnerLink names the PartnerLink (in this namespace) the role belongs to. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="partnerLink is immutable"
	PartnerLink string `json:"partnerLink"`

	// builtin is PrimaryAdmin on the role the operator creates for a link's
	// primary admins, and empty on every other role. Only the operator sets it.
	// +optional
	Builtin BuiltinRole `json:"builtin,omitempty"`

	// permissions the role grants: a subset of the primary-admin permissions.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=19
	// +kubebuilder:validation:XValidation:rule="self.all(p, p in ['rooms.view', 'rooms.modify', 'groups.view', 'updateRings.view', 'updateRings.modify', 'reports.view', 'tickets.create', 'tickets.view', 'tickets.update', 'roles.view', 'roles.modify'])",message="a partner role may hold only the primary-admin permissions: rooms.view, rooms.modify, groups.view, updateRings.view, updateRings.modify, reports.view, tickets.create, tickets.view, tickets.update, roles.view, roles.modify"
	Permissions []Permission `json:"permissions,omitempty"`

	// assignments grant the permissions to members, each on a scope.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Assignments []RoleAssignment `json:"assignments,omitempty"`
}

// PartnerRoleStatus is maintained by the operator.
type PartnerRoleStatus struct {
	// observedGeneration is the generation the operator last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions describe whether the role is in effect.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// assignments say, per assignment, whether its window is Active,
	// Upcoming or Expired, as of the operator's last reconcile. The
	// authorization webhook does not read it: it decides against the clock.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Assignments []AssignmentStatus `json:"assignments,omitempty"`
}

// AssignmentStatus is the state of one assignment's window.
type AssignmentStatus struct {
	// name is the assignment's.
	// +required
	Name string `json:"name"`
	// window is Active, Upcoming or Expired.
	// +required
	// +kubebuilder:validation:Enum=Active;Upcoming;Expired
	Window Window `json:"window"`
}

// PartnerRole delegates rights inside a partner's room scope to the partner's
// users and groups. The primary admins of a link manage its roles. Its name
// starts with its link's name and a dash (contoso-helpdesk for link
// contoso): the authorization webhook decides by the name alone for a role
// it has not seen yet, and no partner can take a name that another link's
// role will need.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:selectablefield:JSONPath=`.spec.partnerLink`
// +kubebuilder:resource:shortName=prole,categories=roompro
// +kubebuilder:validation:XValidation:rule="!has(self.spec.builtin) || self.metadata.name == self.spec.partnerLink + '-primary-admins'",message="the built-in PrimaryAdmin role must be named <partnerLink>-primary-admins"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.startsWith(self.spec.partnerLink + '-')",fieldPath=".spec.partnerLink",message="a PartnerRole is named <partnerLink>-<name>: its name starts with its link's name and a dash, so that the name alone says which partner it belongs to"
// +kubebuilder:validation:XValidation:rule="has(self.spec.builtin) || !self.metadata.name.endsWith('-primary-admins')",message="names ending in -primary-admins belong to the built-in roles of partner links"
// +kubebuilder:printcolumn:name="Link",type=string,JSONPath=`.spec.partnerLink`
// +kubebuilder:printcolumn:name="Builtin",type=string,JSONPath=`.spec.builtin`
// +kubebuilder:printcolumn:name="Permissions",type=string,JSONPath=`.spec.permissions`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PartnerRole struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec PartnerRoleSpec `json:"spec"`
	// +optional
	Status PartnerRoleStatus `json:"status,omitempty"`
}

// PartnerRoleList is a list of PartnerRoles.
// +kubebuilder:object:root=true
type PartnerRoleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PartnerRole `json:"items"`
}

func init() {
	register(&PartnerRole{}, &PartnerRoleList{})
}
