package authz

import (
	"time"

	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// Group is the API group whose requests partners are authorised for.
const Group = "partners.roompro.io"

// Request is what a SubjectAccessReview asks, reduced to what the rules use.
type Request struct {
	User   string
	Groups []string

	// Path is set for a non-resource request (/api, /version, ...).
	Path string

	Namespace   string
	Verb        string
	Group       string
	Resource    string
	Subresource string
	Name        string
	// LabelSelector and FieldSelector are the selectors of a list or watch.
	LabelSelector []Requirement
	FieldSelector []Requirement

	// Extra is the user's extra, as the authenticator set it: the session
	// policy reads it.
	Extra map[string]authorizationv1.ExtraValue
	// SessionVerified is set by a caller that decides on behalf of a
	// request the apiserver has already authorised, session included (the
	// admission webhooks), or of a requester recorded then: the session
	// policy is not asked again. The zero value asks it.
	SessionVerified bool
	// At is the moment the request is decided at: role windows and
	// relationship ends are judged by it. The webhook sets it from the one
	// clock reading it takes per review anyway (its latency metric), so a
	// decision reads no clock of its own; zero: the index's clock, read
	// only when the caller has a grant that starts or ends.
	At time.Time
}

// Requirement is one requirement of a label selector.
type Requirement struct {
	Key      string
	Operator string // In, NotIn, Exists, DoesNotExist (and Equals, for robustness)
	Values   []string
}

// opEquals is the operator some callers send for key=value, which the
// apiserver sends as In: both are accepted.
const opEquals = "Equals"

// Verdict is the answer's kind.
type Verdict int

const (
	// NoOpinion: not a partner identity; RBAC decides.
	NoOpinion Verdict = iota
	// Allow: a role grants it.
	Allow
	// Deny: a partner identity that no rule allows; RBAC is not asked.
	Deny
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "Allow"
	case Deny:
		return "Deny"
	default:
		return "NoOpinion"
	}
}

// Decision is a verdict with the reason a person can read and, for a
// denial, its cause.
type Decision struct {
	Verdict Verdict
	// Cause classifies a denial (NoCause otherwise): metrics count denials
	// by it, since the reason names objects and is not a bounded label.
	Cause  DenialCause
	Reason string
}

// DenialCause is why a partner user was denied, one of a small fixed set.
type DenialCause uint8

// The causes of a denial. Their String is the value of the metric label.
const (
	// NoCause: the decision is not a denial.
	NoCause DenialCause = iota
	// IndexNotSynced: the operator is starting and cannot tell partners yet.
	IndexNotSynced
	// IndexStale: the index has fallen behind the apiserver (its heartbeat
	// has not come back in time) and may hold revoked grants.
	IndexStale
	// MalformedUser: a name under a partner domain that is not name@domain.
	MalformedUser
	// NeverForPartners: a request no partner user may make.
	NeverForPartners
	// NoRoleGrants: no role of the caller grants the permission.
	NoRoleGrants
	// RoomOutOfScope: the room is not in the scope of the caller's roles,
	// the denial a person most likely wants to hear of.
	RoomOutOfScope
	// UnconfinedList: a list or watch wider than the caller's scope, or a
	// request that needs a name and has none.
	UnconfinedList
	// OtherLinksRole: a PartnerRole of a link the caller holds nothing on.
	OtherLinksRole
	// NotTenantManager: tenant management by someone who is not the
	// partner's tenant manager, or of an object that does not exist.
	NotTenantManager
	// OtherLinksRequest: a PartnerChangeRequest (or a list of them) of a
	// link that is not the caller's to read: another partner's, one the
	// caller holds no role on, or a name the index does not know.
	OtherLinksRequest
	// NoActiveLink: a PartnerChangeRequest proposed where the caller's
	// partner has no active link.
	NoActiveLink
	// SessionPolicyUnmet: the request's user extra misses what the
	// customer's session policy requires.
	SessionPolicyUnmet

	// causeCount bounds the causes; it is not one.
	causeCount
)

// causeNames are the label values of the causes.
var causeNames = [causeCount]string{
	NoCause: "", IndexNotSynced: "index_not_synced", IndexStale: "index_stale", MalformedUser: "malformed_user",
	NeverForPartners: "never_for_partners", NoRoleGrants: "no_role_grants", RoomOutOfScope: "room_out_of_scope",
	UnconfinedList: "unconfined_list", OtherLinksRole: "other_links_role", NotTenantManager: "not_tenant_manager",
	OtherLinksRequest: "other_links_request", NoActiveLink: "no_active_link", SessionPolicyUnmet: "session_policy_unmet",
}

func (c DenialCause) String() string {
	if c < causeCount {
		return causeNames[c]
	}
	return "unknown"
}

// DenialCauses lists every cause of a denial, for metrics that start each
// label at zero.
func DenialCauses() []DenialCause {
	out := make([]DenialCause, 0, causeCount-1)
	for c := NoCause + 1; c < causeCount; c++ {
		out = append(out, c)
	}
	return out
}

func allow(reason string) Decision     { return Decision{Verdict: Allow, Reason: reason} }
func noOpinion(reason string) Decision { return Decision{Verdict: NoOpinion, Reason: reason} }
func deny(cause DenialCause, reason string) Decision {
	return Decision{Verdict: Deny, Cause: cause, Reason: reason}
}

// need is what a request needs of a partner user (stage 2 of Decide). It
// is kept small: it is returned and passed on every decision.
type need struct {
	kind needKind
	// permission is the permission a permission request needs.
	permission v1alpha1.Permission
	// room: the request acts on the room it names and is allowed only for
	// rooms in scope.
	room bool
	// roles: a request on partnerroles; allowed only on the caller's links.
	roles bool
	// via: the request names a Ticket or RoomReport, and acts on the room
	// the index maps that name to (room is set too).
	via viaKind
	// ring: an update of a named UpdateRing, allowed only when the grants
	// cover every room of the ring.
	ring bool
}

// viaKind says through which of the index's name → room maps a request
// reaches its room.
type viaKind uint8

const (
	// direct: the request names the room itself.
	direct viaKind = iota
	viaTicket
	viaReport
)

// needKind says which rules decide a request.
type needKind uint8

const (
	// never: partners may never make the request. The zero need, so that
	// every request the mapping does not name is denied.
	never needKind = iota
	// discovery and selfReview: every partner user may.
	discovery
	selfReview
	// tenantManagement: a request on invitations or links, which the
	// rights of tenant managers decide.
	tenantManagement
	// permission: a permission of the matrix, where the request acts.
	permission
	// changeRequests: a request on partnerchangerequests, which the rules
	// of change control decide (changerequest.go).
	changeRequests
)

func isRead(verb string) bool { return verb == "get" || verb == "list" || verb == "watch" }

// required maps a request to what it needs (the table "How a request maps
// to a permission" of DESIGN.md, after the requests every partner user and
// the tenant managers may make).
func required(r *Request) need {
	switch {
	case r.Path != "":
		if isDiscovery(r.Path, r.Verb) {
			return need{kind: discovery}
		}
		return need{}
	case r.Group != Group:
		if isSelfReview(r) {
			return need{kind: selfReview}
		}
		return need{}
	}
	switch r.Resource {
	case "rooms":
		return roomNeed(r.Verb, r.Subresource)
	case "tickets":
		return ticketNeed(r.Verb, r.Subresource)
	case "roomreports":
		// Reports are written by the customer's own systems only.
		if r.Subresource == "" && isRead(r.Verb) {
			return need{kind: permission, permission: v1alpha1.ReportsView, room: true, via: viaReport}
		}
		return need{}
	case "roomgroups":
		if r.Subresource != "" {
			return need{}
		}
		return featureNeed("groups", r.Verb)
	case "updaterings":
		return ringNeed(r.Verb, r.Subresource)
	case "settings":
		if r.Subresource != "" {
			return need{}
		}
		return featureNeed("settings", r.Verb)
	case "partnerroles":
		if r.Subresource != "" {
			return need{}
		}
		if isRead(r.Verb) {
			return need{kind: permission, permission: v1alpha1.RolesView, roles: true}
		}
		switch r.Verb {
		case "create", "update", "patch", "delete":
			return need{kind: permission, permission: v1alpha1.RolesModify, roles: true}
		}
	case "partnerchangerequests":
		return need{kind: changeRequests}
	case "partnerinvitations", "partnerlinks":
		if r.Subresource == "" {
			return need{kind: tenantManagement}
		}
	}
	return need{}
}

// ticketNeed maps a request on tickets: a create is decided by admission
// (spec.room; the review has no body), a read or write of a named ticket on
// its room. Partners never delete tickets nor touch a subresource (status
// is the operator's).
func ticketNeed(verb, subresource string) need {
	if subresource != "" {
		return need{}
	}
	switch verb {
	case "create":
		return need{kind: permission, permission: v1alpha1.TicketsCreate}
	case "get", "list", "watch":
		return need{kind: permission, permission: v1alpha1.TicketsView, room: true, via: viaTicket}
	case "update", "patch":
		return need{kind: permission, permission: v1alpha1.TicketsUpdate, room: true, via: viaTicket}
	}
	return need{}
}

// ringNeed maps a request on updaterings: reads by updateRings.view; an
// update of a named ring by updateRings.modify on every room of the ring.
// Rings are the customer's to create and delete.
func ringNeed(verb, subresource string) need {
	switch {
	case subresource != "":
		return need{}
	case isRead(verb):
		return need{kind: permission, permission: v1alpha1.UpdateRingsView}
	case verb == "update" || verb == "patch":
		return need{kind: permission, permission: v1alpha1.UpdateRingsModify, ring: true}
	}
	return need{}
}

func roomNeed(verb, subresource string) need {
	p, ok := roomPermission(verb, subresource)
	if !ok {
		return need{}
	}
	// A create names no room yet (rooms.create, rooms/tickets are per room).
	return need{kind: permission, permission: p, room: !(subresource == "" && verb == "create")}
}

func roomPermission(verb, subresource string) (v1alpha1.Permission, bool) {
	switch subresource {
	case "":
		switch verb {
		case "get", "list", "watch":
			return v1alpha1.RoomsView, true
		case "update", "patch":
			return v1alpha1.RoomsModify, true
		case "create":
			return v1alpha1.RoomsCreate, true
		case "delete":
			return v1alpha1.RoomsUnenroll, true
		}
	case "key":
		if verb == "get" {
			return v1alpha1.RoomsDownloadKey, true
		}
	case "resetkey":
		if verb == "create" {
			return v1alpha1.RoomsResetKey, true
		}
	case "tickets":
		switch verb {
		case "create":
			return v1alpha1.TicketsCreate, true
		case "get", "list":
			return v1alpha1.TicketsView, true
		case "update", "patch":
			return v1alpha1.TicketsUpdate, true
		}
	case "reports":
		if verb == "get" {
			return v1alpha1.ReportsView, true
		}
	}
	return "", false
}

func featureNeed(feature, verb string) need {
	var action string
	switch {
	case isRead(verb):
		action = "view"
	case verb == "update" || verb == "patch":
		action = "modify"
	case verb == "create":
		action = "create"
	default:
		return need{}
	}
	p := v1alpha1.Permission(feature + "." + action)
	if !slices.Contains(v1alpha1.AllPermissions, p) {
		// settings.create: the tenant's settings are never created.
		return need{}
	}
	return need{kind: permission, permission: p}
}

// isDiscovery reports whether a non-resource request reads discovery or
// version information, which every client needs before its real request:
// get (or head) of exactly /api, /api/<version>, /apis, /apis/<group>,
// /apis/<group>/<version>, /version, /openapi/v2, /openapi/v3 and the
// OpenAPI v3 document of one group version. Nothing else, whatever prefix
// it shares with them.
func isDiscovery(path, verb string) bool {
	if verb != "get" && verb != "head" || !strings.HasPrefix(path, "/") {
		return false
	}
	switch path {
	case "/api", "/apis", "/version", "/openapi/v2", "/openapi/v3":
		return true
	}
	if rest, ok := strings.CutPrefix(path, "/openapi/v3/"); ok {
		path = "/" + rest
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if slices.ContainsFunc(parts, func(p string) bool { return !isPathSegment(p) }) {
		return false
	}
	switch parts[0] {
	case "api":
		return len(parts) == 2
	case "apis":
		return len(parts) == 2 || len(parts) == 3
	}
	return false
}

// isPathSegment reports whether s is a group or version name: DNS label
// characters and dots, not "." or "..".
func isPathSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// isSelfReview reports whether the request asks about the caller itself.
func isSelfReview(r *Request) bool {
	switch {
	case r.Group == "authorization.k8s.io" && (r.Resource == "selfsubjectaccessreviews" || r.Resource == "selfsubjectrulesreviews"):
		return r.Verb == "create"
	case r.Group == "authentication.k8s.io" && r.Resource == "selfsubjectreviews":
		return r.Verb == "create"
	}
	return false
}
