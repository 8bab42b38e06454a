package v1alpha1

// Condition types beyond Ready (common_types.go) and PrimaryAdminPresent
// (partnerlink_types.go).
const (
	// ConditionRoomsFound says whether every room a RoomAssignment names exists.
	ConditionRoomsFound = "RoomsFound"
	// ConditionReferencesResolved says whether every RoomGroup and
	// UpdateRing a Room names exists.
	ConditionReferencesResolved = "ReferencesResolved"
)

// Reasons of conditions and of the Events and audit lines that record a
// change. They are part of the API: users match on them (kubectl wait
// --for=jsonpath, alerts, GitOps health checks), so a reason is renamed only
// with a new API version.
const (
	// PartnerInvitation.

	// ReasonAwaitingAcceptance: the invitation waits for its PartnerLink.
	ReasonAwaitingAcceptance = "AwaitingAcceptance"
	// ReasonAccepted: a PartnerLink accepted the invitation in time.
	ReasonAccepted = "Accepted"
	// ReasonInvitationSent is the audit reason of a new invitation.
	ReasonInvitationSent = "InvitationSent"
	// ReasonInvitationAccepted is the audit reason of an acceptance.
	ReasonInvitationAccepted = "InvitationAccepted"
	// ReasonInvitationExpired: nobody accepted the invitation before its
	// deadline; also a link's refusal for a link created after it.
	ReasonInvitationExpired = "InvitationExpired"

	// PartnerLink: why a link is not activated (its Ready condition).

	// ReasonInvitationNotFound: the link's invitation does not exist.
	ReasonInvitationNotFound = "InvitationNotFound"
	// ReasonInvitationReplaced: the invitation of the link's name is not
	// the one the link was created for (it was deleted and created again).
	ReasonInvitationReplaced = "InvitationReplaced"
	// ReasonInvitationAlreadyAccepted: another link accepted the invitation.
	ReasonInvitationAlreadyAccepted = "InvitationAlreadyAccepted"
	// ReasonDomainMismatch: the invitation is for another partner domain.
	ReasonDomainMismatch = "PartnerDomainMismatch"
	// ReasonChildNameTaken: an object the link does not control holds the
	// name of one of the link's own children (its built-in role or its
	// initial assignment).
	ReasonChildNameTaken = "ChildNameTaken"

	// PartnerLink: its life.

	// ReasonActivating: the link is creating its children.
	ReasonActivating = "Activating"
	// ReasonActive: the partner manages the rooms of its assignments.
	ReasonActive = "Active"
	// ReasonPartnerLinkActive is the audit reason of an activation.
	ReasonPartnerLinkActive = "PartnerLinkActive"
	// ReasonOffboarding: the deleted link waits for its children and room
	// labels to go.
	ReasonOffboarding = "Offboarding"
	// ReasonPartnerOffboarded is the audit reason of a finished offboarding.
	ReasonPartnerOffboarded = "PartnerOffboarded"
	// ReasonPrimaryAdminFound / ReasonNoPrimaryAdmin: the link's
	// PrimaryAdminPresent condition.
	ReasonPrimaryAdminFound = "PrimaryAdminFound"
	ReasonNoPrimaryAdmin    = "NoPrimaryAdmin"
	// ReasonPrimaryAdminRoleRestored is the warning of a built-in role the
	// operator recreated from the link's spec.primaryAdmins.
	ReasonPrimaryAdminRoleRestored = "PrimaryAdminRoleRestored"

	// PartnerLink: the end of a time-bound relationship.

	// ReasonExpiresIn30Days, ReasonExpiresIn7Days, ReasonExpiresIn1Day: the
	// link's Expiring condition and its Warning Events, the notice reached.
	ReasonExpiresIn30Days = "ExpiresIn30Days"
	ReasonExpiresIn7Days  = "ExpiresIn7Days"
	ReasonExpiresIn1Day   = "ExpiresIn1Day"
	// ReasonExtended is the Event and audit reason of an automatic
	// extension (the invitation's relationship.autoExtend).
	ReasonExtended = "Extended"
	// ReasonRelationshipExpired: the relationship reached its expiresAt; the
	// partner is offboarded and the link stays as an Expired record.
	ReasonRelationshipExpired = "RelationshipExpired"

	// PartnerRole and RoomAssignment.

	// ReasonPartnerLinkNotFound / ReasonPartnerLinkNotActive: the object's
	// link does not exist, or grants nothing yet or any more.
	ReasonPartnerLinkNotFound  = "PartnerLinkNotFound"
	ReasonPartnerLinkNotActive = "PartnerLinkNotActive"
	// ReasonInEffect: the role grants its permissions.
	ReasonInEffect = "InEffect"
	// ReasonInScope: the assignment's rooms are in the partner's scope.
	ReasonInScope = "InScope"
	// ReasonInvalidSelector: the assignment's selector does not compile.
	ReasonInvalidSelector = "InvalidSelector"
	// ReasonRoomsNotFound / ReasonAllRoomsFound: the RoomsFound condition.
	ReasonRoomsNotFound = "RoomsNotFound"
	ReasonAllRoomsFound = "AllRoomsFound"
	// ReasonObserved / ReasonSpecChanged are the audit reasons of a role or
	// assignment the operator sees first, or in a new generation.
	ReasonObserved    = "Observed"
	ReasonSpecChanged = "SpecChanged"
	// ReasonOrphanRemoved: a role or assignment outlived its link.
	ReasonOrphanRemoved = "OrphanRemoved"
	// ReasonAssignmentActive / ReasonAssignmentExpired: the Events of a
	// role assignment whose window (validFrom, validUntil) opened or
	// closed, as status.assignments records it.
	ReasonAssignmentActive  = "AssignmentActive"
	ReasonAssignmentExpired = "AssignmentExpired"

	// PartnerOrganization.

	// ReasonRegistered: the registration makes its domain a partner domain.
	ReasonRegistered = "Registered"

	// Room.

	// ReasonAccessReconciled: the room's labels name the partners that
	// may reach it.
	ReasonAccessReconciled = "AccessReconciled"

	// ReasonReferencesResolved / ReasonDanglingReferences: the room's
	// ReferencesResolved condition.
	ReasonReferencesResolved = "ReferencesResolved"
	ReasonDanglingReferences = "DanglingReferences"

	// Ticket and RoomReport.

	// ReasonRoomAccessCopied: the object carries its room's access labels.
	ReasonRoomAccessCopied = "RoomAccessCopied"
	// ReasonRoomNotFound: the object's room does not exist; it carries no
	// access label, so no partner reaches it.
	ReasonRoomNotFound = "RoomNotFound"

	// RoomGroup and UpdateRing.

	// ReasonRoomsCounted: status.rooms counts the rooms that name it.
	ReasonRoomsCounted = "RoomsCounted"
)
