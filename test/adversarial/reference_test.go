package adversarial

import (
	"regexp"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// The reference: what DESIGN.md says a partner user may do, written as
// plainly as possible and independently of internal/authz. Every class that
// asks the authorizer compares its answer with allowedByDesign.

var primaryAdmin = func() map[v1alpha1.Permission]bool {
	set := map[v1alpha1.Permission]bool{}
	for _, p := range v1alpha1.PrimaryAdminPermissions {
		set[p] = true
	}
	return set
}()

// permissionKind says how a request's permission is checked.
type permissionKind int

const (
	never      permissionKind = iota // partners may never make the request
	perRoom                          // needs the permission on the named room
	perTenant                        // needs the permission in the namespace (no room to scope it to)
	perOwnRole                       // needs the permission on the role's own link
	perRoomOf                        // a Ticket or RoomReport: needs the permission on its spec.room
	perRing                          // an UpdateRing: needs the permission on every room of the ring
)

// requiredPermission is DESIGN.md's request → permission table.
func requiredPermission(a *authorizationv1.ResourceAttributes) (v1alpha1.Permission, permissionKind) {
	if a.Group != v1alpha1.GroupVersion.Group {
		return "", never
	}
	read := a.Verb == "get" || a.Verb == "list" || a.Verb == "watch"
	switch a.Resource + "/" + a.Subresource {
	case "rooms/":
		switch {
		case read:
			return v1alpha1.RoomsView, perRoom
		case a.Verb == "update" || a.Verb == "patch":
			return v1alpha1.RoomsModify, perRoom
		case a.Verb == "create":
			return v1alpha1.RoomsCreate, perTenant
		case a.Verb == "delete":
			return v1alpha1.RoomsUnenroll, perRoom
		}
	case "rooms/key":
		if a.Verb == "get" {
			return v1alpha1.RoomsDownloadKey, perRoom
		}
	case "rooms/resetkey":
		if a.Verb == "create" {
			return v1alpha1.RoomsResetKey, perRoom
		}
	case "rooms/tickets":
		switch a.Verb {
		case "create":
			return v1alpha1.TicketsCreate, perRoom
		case "get", "list":
			return v1alpha1.TicketsView, perRoom
		case "update", "patch":
			return v1alpha1.TicketsUpdate, perRoom
		}
	case "rooms/reports":
		if a.Verb == "get" {
			return v1alpha1.ReportsView, perRoom
		}
	case "tickets/":
		switch {
		case a.Verb == "create":
			return v1alpha1.TicketsCreate, perTenant // admission checks spec.room
		case read:
			return v1alpha1.TicketsView, perRoomOf
		case a.Verb == "update" || a.Verb == "patch":
			return v1alpha1.TicketsUpdate, perRoomOf
		}
	case "roomreports/":
		if read {
			return v1alpha1.ReportsView, perRoomOf
		}
	case "updaterings/":
		switch {
		case read:
			return v1alpha1.UpdateRingsView, perTenant
		case a.Verb == "update" || a.Verb == "patch":
			return v1alpha1.UpdateRingsModify, perRing
		}
	case "roomgroups/", "settings/":
		feature := map[string]string{"roomgroups": "groups", "settings": "settings"}[a.Resource]
		switch {
		case read:
			return v1alpha1.Permission(feature + ".view"), perTenant
		case a.Verb == "update" || a.Verb == "patch":
			return v1alpha1.Permission(feature + ".modify"), perTenant
		case a.Verb == "create":
			return v1alpha1.Permission(feature + ".create"), perTenant
		}
	case "partnerroles/":
		switch {
		case read:
			return v1alpha1.RolesView, perOwnRole
		case a.Verb == "create" || a.Verb == "update" || a.Verb == "patch" || a.Verb == "delete":
			return v1alpha1.RolesModify, perOwnRole
		}
	}
	return "", never
}

// allowedByDesign is the verdict DESIGN.md gives a partner user of the
// tables (one of partnerUsers) for a resource request.
func allowedByDesign(user string, a *authorizationv1.ResourceAttributes) bool {
	if isSelfReview(a) {
		return true
	}
	if a.Group == v1alpha1.GroupVersion.Group && a.Resource == "partnerchangerequests" {
		return allowedChangeRequest(user, nil, a) // the table's partner users are in no partner group
	}
	p, kind := requiredPermission(a)
	// rooms.create/unenroll/resetKey/downloadKey and settings.* are not in
	// the primary-admin set, so no partner role can ever hold them.
	if kind == never || !primaryAdmin[p] {
		return false
	}
	var held []grant
	for _, g := range grantsOf(user) {
		if g.ns == a.Namespace && g.perms[p] {
			held = append(held, g)
		}
	}
	switch kind {
	case perTenant:
		return len(held) > 0
	case perRing:
		// The world's rooms name no ring: a named ring changes no room.
		return a.Name != "" && len(held) > 0
	case perRoomOf:
		if a.Name == "" {
			list := a.Verb == "list" || a.Verb == "watch"
			return list && (selectsOwnRooms(a.LabelSelector, domainOf(user)) && slices.ContainsFunc(held, func(g grant) bool { return g.whole }) ||
				selectsCoveredRooms(a.LabelSelector, held))
		}
		// The world holds no tickets or reports: a name is unknown, and
		// denied as one out of scope.
		return false
	case perRoom:
		if a.Name == "" {
			// Only a list or watch of rooms may name none, and only when
			// its selector confines it to the partner's rooms and a role
			// covers the partner's whole scope (else the list would show
			// rooms outside the role's scope).
			list := a.Subresource == "" && (a.Verb == "list" || a.Verb == "watch")
			return list && selectsOwnRooms(a.LabelSelector, domainOf(user)) &&
				slices.ContainsFunc(held, func(g grant) bool { return g.whole })
		}
		return slices.ContainsFunc(held, func(g grant) bool { return g.rooms[a.Name] })
	case perOwnRole:
		switch a.Verb {
		case "list", "watch":
			// Confined to the caller's link by the field selector, or to one
			// role by name (the apiserver names the object of a list or
			// watch with metadata.name=<name>, as kubectl get -w does).
			if a.Name != "" {
				link := roleLink(a.Namespace, a.Name)
				return link != "" && slices.ContainsFunc(held, func(g grant) bool { return g.link == link })
			}
			return slices.ContainsFunc(held, func(g grant) bool { return fieldSelectsLink(a.FieldSelector, g.link) })
		case "create":
			if a.Name == "" {
				// The authorizer cannot see the body: admission checks
				// the link a new role names.
				return len(held) > 0
			}
			fallthrough // a named create (server-side apply) is judged by the name
		default:
			// A role that exists belongs to its link. A name no role has
			// may belong to every link whose name and a dash it starts
			// with (the CRD requires <link>-<name>; <link>-primary-admins
			// is that link's): the caller must hold the permission on all
			// of them, so that no race shows it another link's role.
			owners := []string{roleLink(a.Namespace, a.Name)}
			if owners[0] == "" {
				owners = nameOwners(a.Namespace, a.Name)
			}
			return len(owners) > 0 && !slices.ContainsFunc(owners, func(link string) bool {
				return !slices.ContainsFunc(held, func(g grant) bool { return g.link == link })
			})
		}
	}
	return false
}

// nameOwners: the links that may own a role of this name that does not exist.
func nameOwners(ns, name string) []string {
	if link, ok := strings.CutSuffix(name, "-primary-admins"); ok {
		return []string{link}
	}
	var owners []string
	for _, l := range linkDefs {
		if l.ns == ns && strings.HasPrefix(name, l.name+"-") {
			owners = append(owners, l.name)
		}
	}
	return owners
}

func isSelfReview(a *authorizationv1.ResourceAttributes) bool {
	return a.Verb == "create" && a.Subresource == "" &&
		(a.Group == "authorization.k8s.io" && (a.Resource == "selfsubjectaccessreviews" || a.Resource == "selfsubjectrulesreviews") ||
			a.Group == "authentication.k8s.io" && a.Resource == "selfsubjectreviews")
}

// selectsOwnRooms: the selector requires the partner's own access label,
// with Exists or with In and the single value "true" (what `-l key` and
// `-l key=true` arrive as). Other requirements only narrow the list.
func selectsOwnRooms(s *authorizationv1.LabelSelectorAttributes, domain string) bool {
	if s == nil {
		return false
	}
	return slices.ContainsFunc(s.Requirements, func(r metav1.LabelSelectorRequirement) bool {
		return r.Key == v1alpha1.AccessLabel(domain) &&
			(r.Operator == metav1.LabelSelectorOpExists || r.Operator == metav1.LabelSelectorOpIn && slices.Equal(r.Values, []string{"true"}))
	})
}

// fieldSelectsLink: the field selector confines a list of roles to one link:
// spec.partnerLink=<link> (In with that single value).
func fieldSelectsLink(s *authorizationv1.FieldSelectorAttributes, link string) bool {
	if s == nil {
		return false
	}
	return slices.ContainsFunc(s.Requirements, func(r metav1.FieldSelectorRequirement) bool {
		return r.Key == "spec.partnerLink" && r.Operator == metav1.FieldSelectorOpIn && slices.Equal(r.Values, []string{link})
	})
}

// discoveryShape: the exact shapes of discovery and version information,
// which every client reads before its real request.
var discoveryShape = regexp.MustCompile(`^(/api|/api/v1|/apis|/apis/[a-z0-9.-]+|/apis/[a-z0-9.-]+/v[0-9]+((alpha|beta)[0-9]+)?|/version|/openapi/v2|/openapi/v3|/openapi/v3/api/v1|/openapi/v3/apis/[a-z0-9.-]+/v[0-9]+((alpha|beta)[0-9]+)?)$`)

func allowedNonResource(a *authorizationv1.NonResourceAttributes) bool {
	return (a.Verb == "get" || a.Verb == "head") && discoveryShape.MatchString(a.Path)
}

// selectsCoveredRooms: the selector requires partners.roompro.io/room in
// (v1, ..., vn) with every vi a room some held grant covers.
func selectsCoveredRooms(s *authorizationv1.LabelSelectorAttributes, held []grant) bool {
	if s == nil {
		return false
	}
	return slices.ContainsFunc(s.Requirements, func(r metav1.LabelSelectorRequirement) bool {
		if r.Key != v1alpha1.LabelRoom || r.Operator != metav1.LabelSelectorOpIn || len(r.Values) == 0 {
			return false
		}
		for _, room := range r.Values {
			if !slices.ContainsFunc(held, func(g grant) bool { return g.rooms[room] }) {
				return false
			}
		}
		return true
	})
}
