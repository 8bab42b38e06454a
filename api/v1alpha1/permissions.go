package v1alpha1

// Permission names one right of the permission matrix: <feature>.<action>.
// +kubebuilder:validation:Enum=rooms.view;rooms.modify;rooms.resetKey;rooms.downloadKey;rooms.unenroll;rooms.create;groups.view;groups.modify;groups.create;updateRings.view;updateRings.modify;reports.view;tickets.create;tickets.view;tickets.update;settings.view;settings.modify;roles.view;roles.modify
type Permission string

// The permissions of the matrix in DESIGN.md.
const (
	RoomsView         Permission = "rooms.view"
	RoomsModify       Permission = "rooms.modify"
	RoomsResetKey     Permission = "rooms.resetKey"
	RoomsDownloadKey  Permission = "rooms.downloadKey"
	RoomsUnenroll     Permission = "rooms.unenroll"
	RoomsCreate       Permission = "rooms.create"
	GroupsView        Permission = "groups.view"
	GroupsModify      Permission = "groups.modify"
	GroupsCreate      Permission = "groups.create"
	UpdateRingsView   Permission = "updateRings.view"
	UpdateRingsModify Permission = "updateRings.modify"
	ReportsView       Permission = "reports.view"
	TicketsCreate     Permission = "tickets.create"
	TicketsView       Permission = "tickets.view"
	TicketsUpdate     Permission = "tickets.update"
	SettingsView      Permission = "settings.view"
	SettingsModify    Permission = "settings.modify"
	RolesView         Permission = "roles.view"
	RolesModify       Permission = "roles.modify"
)

// AllPermissions lists every permission of the matrix, in its order.
var AllPermissions = []Permission{
	RoomsView, RoomsModify, RoomsResetKey, RoomsDownloadKey, RoomsUnenroll, RoomsCreate,
	GroupsView, GroupsModify, GroupsCreate, UpdateRingsView, UpdateRingsModify,
	ReportsView, TicketsCreate, TicketsView, TicketsUpdate,
	SettingsView, SettingsModify, RolesView, RolesModify,
}

// PrimaryAdminPermissions is the "primary admin" column of the matrix: the most
// a partner can hold. Every partner role's permissions are a subset of it; the
// CEL rule on PartnerRoleSpec.Permissions repeats this list and a test keeps
// the two in step.
var PrimaryAdminPermissions = []Permission{
	RoomsView, RoomsModify, GroupsView, UpdateRingsView, UpdateRingsModify,
	ReportsView, TicketsCreate, TicketsView, TicketsUpdate, RolesView, RolesModify,
}
