package authz

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// This file holds a second implementation of the decision rules of
// DESIGN.md: deliberately naive (plain loops over every object, its own
// selector matching, its own request table), so that the index and the model
// can only agree by both following the rules. FuzzIndexAgreesWithModel
// generates random worlds and requests and compares their verdicts.

type modelWorld struct {
	invitations []*v1alpha1.PartnerInvitation
	links       []*v1alpha1.PartnerLink
	assignments []*v1alpha1.RoomAssignment
	roles       []*v1alpha1.PartnerRole
	rooms       []*v1alpha1.Room

	// organizations register partner domains (cluster-scoped).
	organizations []*v1alpha1.PartnerOrganization

	changeRequests []*v1alpha1.PartnerChangeRequest

	tickets []*v1alpha1.Ticket
	reports []*v1alpha1.RoomReport

	// now is the moment of the request being decided.
	now time.Time
}

func modelSelects(s v1alpha1.RoomScope, room *v1alpha1.Room) bool {
	if slices.Contains(s.Names, room.Name) {
		return true
	}
	if s.Selector == nil {
		return false
	}
	for k, v := range s.Selector.MatchLabels {
		if got, ok := room.Labels[k]; !ok || got != v {
			return false
		}
	}
	for _, e := range s.Selector.MatchExpressions {
		got, ok := room.Labels[e.Key]
		switch e.Operator {
		case metav1.LabelSelectorOpIn:
			if !ok || !slices.Contains(e.Values, got) {
				return false
			}
		case metav1.LabelSelectorOpNotIn:
			if ok && slices.Contains(e.Values, got) {
				return false
			}
		case metav1.LabelSelectorOpExists:
			if !ok {
				return false
			}
		case metav1.LabelSelectorOpDoesNotExist:
			if ok {
				return false
			}
		}
	}
	return true
}

func modelActive(l *v1alpha1.PartnerLink) bool {
	return l.Status.Phase == v1alpha1.LinkActive && l.DeletionTimestamp == nil
}

// grantsNow: the assignment grants at w.now when now is inside its
// [validFrom, validUntil) and its link has not ended: no expiresAt, now
// before it, or the link's invitation extends automatically.
func (w *modelWorld) grantsNow(l *v1alpha1.PartnerLink, ra v1alpha1.RoleAssignment) bool {
	if ra.ValidFrom != nil && w.now.Before(ra.ValidFrom.Time) || ra.ValidUntil != nil && !w.now.Before(ra.ValidUntil.Time) {
		return false
	}
	if l.Status.ExpiresAt == nil || w.now.Before(l.Status.ExpiresAt.Time) {
		return true
	}
	for _, i := range w.invitations {
		// The worlds' objects have no creation times: the link's record
		// of the invitation's UID alone tells a replaced invitation.
		uid, recorded := l.Annotations[v1alpha1.AnnotationInvitationUID]
		if i.Namespace == l.Namespace && i.Name == l.Spec.Invitation && (!recorded || types.UID(uid) == i.UID) &&
			i.Spec.Relationship != nil && i.Spec.Relationship.AutoExtend {
			return true
		}
	}
	return false
}

func (w *modelWorld) link(ns, name string) *v1alpha1.PartnerLink {
	for _, l := range w.links {
		if l.Namespace == ns && l.Name == name {
			return l
		}
	}
	return nil
}

// inLinkScope: some live assignment of the active link selects the room.
func (w *modelWorld) inLinkScope(l *v1alpha1.PartnerLink, roomName string) bool {
	for _, r := range w.rooms {
		if r.Namespace != l.Namespace || r.Name != roomName {
			continue
		}
		for _, a := range w.assignments {
			if a.Namespace == l.Namespace && a.Spec.PartnerLink == l.Name && a.DeletionTimestamp == nil && modelSelects(a.Spec.Rooms, r) {
				return true
			}
		}
	}
	return false
}

// modelPermission is the request table of DESIGN.md, written out.
func modelPermission(r *Request) (perm string, roomScoped, rolesReq, ok bool) {
	if r.Group != Group {
		return "", false, false, false
	}
	type row struct{ resource, sub, verb, perm string }
	table := []row{
		{"rooms", "", "get", "rooms.view"}, {"rooms", "", "list", "rooms.view"}, {"rooms", "", "watch", "rooms.view"},
		{"rooms", "", "update", "rooms.modify"}, {"rooms", "", "patch", "rooms.modify"},
		{"rooms", "", "create", "rooms.create"}, {"rooms", "", "delete", "rooms.unenroll"},
		{"rooms", "key", "get", "rooms.downloadKey"}, {"rooms", "resetkey", "create", "rooms.resetKey"},
		{"rooms", "tickets", "create", "tickets.create"}, {"rooms", "tickets", "get", "tickets.view"}, {"rooms", "tickets", "list", "tickets.view"},
		{"rooms", "tickets", "update", "tickets.update"}, {"rooms", "tickets", "patch", "tickets.update"},
		{"rooms", "reports", "get", "reports.view"},
	}
	for _, f := range []struct{ resource, feature string }{{"roomgroups", "groups"}, {"settings", "settings"}} {
		for _, v := range []string{"get", "list", "watch"} {
			table = append(table, row{f.resource, "", v, f.feature + ".view"})
		}
		table = append(table, row{f.resource, "", "update", f.feature + ".modify"}, row{f.resource, "", "patch", f.feature + ".modify"},
			row{f.resource, "", "create", f.feature + ".create"})
	}
	for _, v := range []string{"get", "list", "watch"} {
		table = append(table, row{"partnerroles", "", v, "roles.view"})
	}
	for _, v := range []string{"create", "update", "patch", "delete"} {
		table = append(table, row{"partnerroles", "", v, "roles.modify"})
	}
	for _, t := range table {
		if t.resource == r.Resource && t.sub == r.Subresource && t.verb == r.Verb {
			return t.perm, t.resource == "rooms" && !(t.sub == "" && t.verb == "create"), t.resource == "partnerroles", true
		}
	}
	return "", false, false, false
}

// isPartnerDomain: a registered domain, or one a link names (a link whose
// registration went in a race); invitations make none.
func (w *modelWorld) isPartnerDomain(domain string) bool {
	for _, o := range w.organizations {
		if string(o.Spec.Domain) == domain {
			return true
		}
	}
	for _, l := range w.links {
		if string(l.Spec.PartnerDomain) == domain {
			return true
		}
	}
	return false
}

// modelIdentity classifies a username as DESIGN.md's "Identities" says: by
// the part after its last @, lower-cased, without a trailing dot (the
// model's names are ASCII; TestClassify covers IDNA). A name under a
// partner domain (it or a sub-domain) that is not exactly local@domain is
// denied.
func (w *modelWorld) modelIdentity(raw string) (user, domain string, v Verdict, decided bool) {
	_, after, found := strings.CutLast(raw, "@")
	if !found {
		return "", "", NoOpinion, true
	}
	normalised := strings.TrimSuffix(strings.TrimSpace(strings.ToLower(after)), ".")
	under := w.isPartnerDomain(normalised)
	for _, d := range []string{"contoso.com", "fabrikam.com", "northwind.com"} {
		under = under || strings.HasSuffix(normalised, "."+d) && w.isPartnerDomain(d)
	}
	if !under {
		return "", "", NoOpinion, true
	}
	user = strings.ToLower(raw)
	local, domain, _ := strings.Cut(user, "@")
	if local == "" || strings.ContainsAny(local, "@: \t") || domain != normalised || !w.isPartnerDomain(domain) {
		return "", "", Deny, true
	}
	return user, domain, 0, false
}

// modelDiscovery: get or head of the discovery documents, by their shapes.
func modelDiscovery(path, verb string) bool {
	if verb != "get" && verb != "head" {
		return false
	}
	segment := func(s string) bool {
		return s != "" && s != "." && s != ".." && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-.") == ""
	}
	parts := strings.Split(path, "/")[1:]
	if len(parts) >= 2 && parts[0] == "openapi" && parts[1] == "v3" {
		if len(parts) == 2 {
			return true
		}
		parts = parts[2:]
	}
	for _, p := range parts {
		if !segment(p) {
			return false
		}
	}
	switch {
	case path == "/version" || path == "/openapi/v2" || path == "/api" || path == "/apis":
		return true
	case parts[0] == "api":
		return len(parts) == 2
	case parts[0] == "apis":
		return len(parts) == 2 || len(parts) == 3
	}
	return false
}

func (w *modelWorld) decide(r *Request) Verdict {
	user, domain, v, decided := w.modelIdentity(r.User)
	if decided {
		return v
	}
	inGroup := func(group string) bool {
		for _, g := range r.Groups {
			if strings.ToLower(g) == strings.ToLower(group) { //nolint:staticcheck // SA6005: the model lower-cases as DESIGN.md says; case folding is another rule
				return true
			}
		}
		return false
	}
	if r.Path != "" {
		if modelDiscovery(r.Path, r.Verb) {
			return Allow
		}
		return Deny
	}
	if r.Verb == "create" && (r.Group == "authorization.k8s.io" && (r.Resource == "selfsubjectaccessreviews" || r.Resource == "selfsubjectrulesreviews") ||
		r.Group == "authentication.k8s.io" && r.Resource == "selfsubjectreviews") {
		return Allow
	}

	if !w.sessionMeets(r, domain) {
		return Deny
	}

	if r.Group == Group && r.Subresource == "" && (r.Resource == "partnerinvitations" || r.Resource == "partnerlinks") {
		if !inGroup(domain + ":tenant-managers") {
			return Deny
		}
		for _, i := range w.invitations {
			if i.Namespace != r.Namespace || string(i.Spec.PartnerDomain) != domain {
				continue
			}
			switch {
			case r.Resource == "partnerinvitations" && (r.Verb == "get" || r.Verb == "delete") && i.Name == r.Name:
				return Allow
			case r.Resource == "partnerlinks" && r.Verb == "create" && i.Status.Phase != v1alpha1.InvitationAccepted && i.Status.Phase != v1alpha1.InvitationExpired:
				return Allow
			case r.Resource == "partnerlinks" && r.Verb == "get" && i.Name == r.Name:
				return Allow
			}
		}
		for _, l := range w.links {
			if l.Namespace == r.Namespace && string(l.Spec.PartnerDomain) == domain && l.Name == r.Name &&
				r.Resource == "partnerlinks" && (r.Verb == "get" || r.Verb == "delete") {
				return Allow
			}
		}
		return Deny
	}

	if r.Group == Group && r.Resource == "partnerchangerequests" {
		return w.decideChangeRequest(r, user, domain, inGroup)
	}

	if r.Group == Group && (r.Resource == "tickets" || r.Resource == "roomreports" || r.Resource == "updaterings") {
		return w.decideManaged(r, user, domain, inGroup)
	}

	perm, roomScoped, rolesReq, ok := modelPermission(r)
	if !ok {
		return Deny
	}
	// heldOn: the links on which an assignment of the caller gives perm;
	// wholeOn: those where one gives it on the link's whole scope.
	heldOn, wholeOn := map[string]bool{}, map[string]bool{}
	for _, role := range w.roles {
		if role.Namespace != r.Namespace || role.DeletionTimestamp != nil {
			continue
		}
		l := w.link(role.Namespace, role.Spec.PartnerLink)
		if l == nil || !modelActive(l) || string(l.Spec.PartnerDomain) != domain {
			continue
		}
		holds := false
		for _, p := range role.Spec.Permissions {
			holds = holds || (string(p) == perm && slices.Contains(v1alpha1.PrimaryAdminPermissions, p))
		}
		if !holds {
			continue
		}
		for _, ra := range role.Spec.Assignments {
			if !modelMember(ra, user, domain, inGroup) || !w.grantsNow(l, ra) {
				continue
			}
			whole := ra.Scope.Selector == nil && len(ra.Scope.Names) == 0
			heldOn[l.Name] = true
			wholeOn[l.Name] = wholeOn[l.Name] || whole
			if roomScoped && r.Name != "" && w.inLinkScope(l, r.Name) {
				if whole {
					return Allow
				}
				for _, room := range w.rooms {
					if room.Namespace == r.Namespace && room.Name == r.Name && modelSelects(ra.Scope, room) {
						return Allow
					}
				}
			}
		}
	}
	switch {
	case len(heldOn) == 0:
		return Deny
	case rolesReq:
		return w.decideRoles(r, heldOn)
	case roomScoped && r.Name == "":
		if r.Subresource != "" || (r.Verb != "list" && r.Verb != "watch") || !modelSelectorConfines(r.LabelSelector, domain) {
			return Deny
		}
		// The access label is the domain's: the caller must cover the whole
		// scope of every active link of its domain in the namespace.
		for _, l := range w.links {
			if l.Namespace == r.Namespace && modelActive(l) && string(l.Spec.PartnerDomain) == domain && !wholeOn[l.Name] {
				return Deny
			}
		}
		return Allow
	case roomScoped:
		return Deny
	}
	return Allow
}

// sessionMeets: the request's extra holds, for every key of the session
// policy of every invitation of the domain in the namespace that is not
// Expired, one of its values.
func (w *modelWorld) sessionMeets(r *Request, domain string) bool {
	for _, i := range w.invitations {
		if i.Namespace != r.Namespace || string(i.Spec.PartnerDomain) != domain || i.Status.Phase == v1alpha1.InvitationExpired || i.Spec.SessionPolicy == nil {
			continue
		}
		for key, values := range i.Spec.SessionPolicy.RequiredExtra {
			met := false
			for _, v := range r.Extra[key] {
				met = met || slices.Contains(values, v)
			}
			if !met {
				return false
			}
		}
	}
	return true
}

// modelGrant is one role assignment of the caller that gives a permission.
type modelGrant struct {
	link  *v1alpha1.PartnerLink
	scope v1alpha1.RoomScope
	whole bool
}

// grantsOf lists the caller's role assignments in the request's namespace
// that give perm.
func (w *modelWorld) grantsOf(r *Request, user, domain string, inGroup func(string) bool, perm string) []modelGrant {
	var out []modelGrant
	for _, role := range w.roles {
		if role.Namespace != r.Namespace || role.DeletionTimestamp != nil {
			continue
		}
		l := w.link(role.Namespace, role.Spec.PartnerLink)
		if l == nil || !modelActive(l) || string(l.Spec.PartnerDomain) != domain {
			continue
		}
		holds := false
		for _, p := range role.Spec.Permissions {
			holds = holds || (string(p) == perm && slices.Contains(v1alpha1.PrimaryAdminPermissions, p))
		}
		if !holds {
			continue
		}
		for _, ra := range role.Spec.Assignments {
			if modelMember(ra, user, domain, inGroup) && w.grantsNow(l, ra) {
				out = append(out, modelGrant{link: l, scope: ra.Scope, whole: ra.Scope.Selector == nil && len(ra.Scope.Names) == 0})
			}
		}
	}
	return out
}

// modelCovers: some grant gives its permission on the named room.
func (w *modelWorld) modelCovers(grants []modelGrant, ns, roomName string) bool {
	for _, g := range grants {
		if !w.inLinkScope(g.link, roomName) {
			continue
		}
		if g.whole {
			return true
		}
		for _, room := range w.rooms {
			if room.Namespace == ns && room.Name == roomName && modelSelects(g.scope, room) {
				return true
			}
		}
	}
	return false
}

// decideManaged: tickets, room reports and update rings, as DESIGN.md
// writes them out.
func (w *modelWorld) decideManaged(r *Request, user, domain string, inGroup func(string) bool) Verdict {
	if r.Subresource != "" {
		return Deny
	}
	read := r.Verb == "get" || r.Verb == "list" || r.Verb == "watch"
	var perm string
	switch {
	case r.Resource == "tickets" && r.Verb == "create":
		perm = "tickets.create"
	case r.Resource == "tickets" && read:
		perm = "tickets.view"
	case r.Resource == "tickets" && (r.Verb == "update" || r.Verb == "patch"):
		perm = "tickets.update"
	case r.Resource == "roomreports" && read:
		perm = "reports.view"
	case r.Resource == "updaterings" && read:
		perm = "updateRings.view"
	case r.Resource == "updaterings" && (r.Verb == "update" || r.Verb == "patch"):
		perm = "updateRings.modify"
	default:
		return Deny
	}
	grants := w.grantsOf(r, user, domain, inGroup, perm)
	switch {
	case len(grants) == 0:
		return Deny
	case perm == "tickets.create" || perm == "updateRings.view":
		return Allow
	case perm == "updateRings.modify":
		if r.Name == "" {
			return Deny
		}
		for _, room := range w.rooms {
			if room.Namespace == r.Namespace && room.Spec.UpdateRing == r.Name && !w.modelCovers(grants, r.Namespace, room.Name) {
				return Deny
			}
		}
		return Allow
	}
	if r.Name != "" {
		roomName := ""
		for _, t := range w.tickets {
			if r.Resource == "tickets" && t.Namespace == r.Namespace && t.Name == r.Name {
				roomName = t.Spec.Room
			}
		}
		for _, rep := range w.reports {
			if r.Resource == "roomreports" && rep.Namespace == r.Namespace && rep.Name == r.Name {
				roomName = rep.Spec.Room
			}
		}
		if roomName != "" && w.modelCovers(grants, r.Namespace, roomName) {
			return Allow
		}
		return Deny
	}
	if r.Verb != "list" && r.Verb != "watch" {
		return Deny
	}
	for _, q := range r.LabelSelector {
		if q.Key != v1alpha1.LabelRoom || (q.Operator != "In" && q.Operator != "Equals") || len(q.Values) == 0 {
			continue
		}
		all := true
		for _, v := range q.Values {
			all = all && w.modelCovers(grants, r.Namespace, v)
		}
		if all {
			return Allow
		}
	}
	if !modelSelectorConfines(r.LabelSelector, domain) {
		return Deny
	}
	for _, l := range w.links {
		if l.Namespace != r.Namespace || !modelActive(l) || string(l.Spec.PartnerDomain) != domain {
			continue
		}
		whole := false
		for _, g := range grants {
			whole = whole || g.link == l && g.whole
		}
		if !whole {
			return Deny
		}
	}
	return Allow
}

// modelMember: the caller (user, of domain, in the groups inGroup says) is
// a member of the role assignment.
func modelMember(ra v1alpha1.RoleAssignment, user, domain string, inGroup func(string) bool) bool {
	for _, m := range ra.Members {
		name := strings.ToLower(m.Name)
		if m.Kind == v1alpha1.UserSubject && name == user ||
			m.Kind == v1alpha1.GroupSubject && strings.HasPrefix(name, domain+":") && len(name) > len(domain)+1 && inGroup(name) {
			return true
		}
	}
	return false
}

// decideChangeRequest is DESIGN.md's "Change control" for a partner user:
// it may propose (create) where its domain has an active link, read the
// requests of an active link of its domain when it is a member of one of
// that link's roles or a tenant manager of the domain (a list only by the
// label partners.roompro.io/partner-link, In or = links it may all read),
// and nothing else: never decide (approve), change, delete or write status.
func (w *modelWorld) decideChangeRequest(r *Request, user, domain string, inGroup func(string) bool) Verdict {
	if r.Subresource != "" {
		return Deny
	}
	if r.Verb == "create" {
		for _, l := range w.links {
			if l.Namespace == r.Namespace && modelActive(l) && string(l.Spec.PartnerDomain) == domain {
				return Allow
			}
		}
		return Deny
	}
	if r.Verb != "get" && r.Verb != "list" && r.Verb != "watch" {
		return Deny
	}
	readable := func(link string) bool {
		l := w.link(r.Namespace, link)
		if l == nil || !modelActive(l) || string(l.Spec.PartnerDomain) != domain {
			return false
		}
		if inGroup(domain + ":tenant-managers") {
			return true
		}
		for _, role := range w.roles {
			if role.Namespace != r.Namespace || role.Spec.PartnerLink != link || role.DeletionTimestamp != nil {
				continue
			}
			for _, ra := range role.Spec.Assignments {
				if modelMember(ra, user, domain, inGroup) && w.grantsNow(l, ra) {
					return true
				}
			}
		}
		return false
	}
	if r.Name != "" {
		for _, c := range w.changeRequests {
			if c.Namespace == r.Namespace && c.Name == r.Name {
				if readable(c.Spec.PartnerLink) {
					return Allow
				}
				return Deny
			}
		}
		return Deny
	}
	if r.Verb == "get" {
		return Deny
	}
	for _, q := range r.LabelSelector {
		if q.Key != v1alpha1.LabelPartnerLink || (q.Operator != "In" && q.Operator != "Equals") || len(q.Values) == 0 {
			continue
		}
		all := true
		for _, v := range q.Values {
			all = all && readable(v)
		}
		if all {
			return Allow
		}
	}
	return Deny
}

// decideRoles: a role belongs to its spec.partnerLink; a name no role has
// yet may belong to every link whose name and a dash it starts with (or,
// for <link>-primary-admins, to that link): the caller must hold the
// permission on all of them.
func (w *modelWorld) decideRoles(r *Request, heldOn map[string]bool) Verdict {
	if r.Name == "" {
		switch r.Verb {
		case "create":
			return Allow
		case "list", "watch":
			for _, q := range r.FieldSelector {
				if q.Key == "spec.partnerLink" && (q.Operator == "In" || q.Operator == "Equals") && len(q.Values) == 1 && heldOn[q.Values[0]] {
					return Allow
				}
			}
		}
		return Deny
	}
	for _, role := range w.roles {
		if role.Namespace == r.Namespace && role.Name == r.Name {
			if heldOn[role.Spec.PartnerLink] {
				return Allow
			}
			return Deny
		}
	}
	var owners []string
	if link, ok := strings.CutSuffix(r.Name, "-primary-admins"); ok {
		owners = []string{link}
	} else {
		for _, l := range w.links {
			if l.Namespace == r.Namespace && strings.HasPrefix(r.Name, l.Name+"-") {
				owners = append(owners, l.Name)
			}
		}
	}
	for _, o := range owners {
		if !heldOn[o] {
			return Deny
		}
	}
	if len(owners) == 0 {
		return Deny
	}
	return Allow
}

func modelSelectorConfines(reqs []Requirement, domain string) bool {
	for _, q := range reqs {
		if q.Key == "access.partners.roompro.io/"+domain &&
			(q.Operator == "Exists" || (q.Operator == "In" || q.Operator == "Equals") && len(q.Values) == 1 && q.Values[0] == "true") {
			return true
		}
	}
	return false
}

// randomWorld builds a small world from rng: few names, so that requests
// often hit the objects.
func randomWorld(rng *rand.Rand) *modelWorld {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	namespaces := []string{"t1", "t2"}
	domains := []string{"contoso.com", "fabrikam.com"}
	roomNames := []string{"r1", "r2", "r3", "r4"}
	labelValues := []string{"us", "de", "fr"}
	scope := func(allowEmpty bool) v1alpha1.RoomScope {
		var s v1alpha1.RoomScope
		switch rng.IntN(5) {
		case 0:
			if allowEmpty {
				return s
			}
			fallthrough
		case 1:
			s.Names = []string{pick(roomNames...)}
		case 2:
			s.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"country": pick(labelValues...)}}
		case 3:
			op := []metav1.LabelSelectorOperator{metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist}[rng.IntN(4)]
			e := metav1.LabelSelectorRequirement{Key: pick("country", "site"), Operator: op}
			if op == metav1.LabelSelectorOpIn || op == metav1.LabelSelectorOpNotIn {
				e.Values = []string{pick(labelValues...), pick("nyc", "ber")}
			}
			s.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{e}}
		case 4:
			s.Names = []string{pick(roomNames...)}
			s.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"site": pick("nyc", "ber")}}
		}
		return s
	}
	// moment is a whole second around modelEpoch, where the requests'
	// clocks are (randomClock), or nil: a window's or relationship's bound.
	moment := func() *metav1.Time {
		if rng.IntN(3) == 0 {
			return nil
		}
		return &metav1.Time{Time: modelEpoch.Add(time.Duration(rng.IntN(5)-2) * time.Hour)}
	}
	w := &modelWorld{}
	// Most worlds register both invited domains, some only one or none
	// (invitations of unregistered domains, or links whose registration
	// went), and some register northwind.com, which nothing invites.
	for _, d := range append(domains, "northwind.com") {
		if rng.IntN(4) != 0 {
			w.organizations = append(w.organizations, &v1alpha1.PartnerOrganization{
				ObjectMeta: metav1.ObjectMeta{Name: d},
				Spec:       v1alpha1.PartnerOrganizationSpec{Domain: v1alpha1.Domain(d), DisplayName: d},
			})
		}
	}
	now := metav1.Now()
	for _, ns := range namespaces {
		for _, name := range roomNames {
			if rng.IntN(4) == 0 {
				continue
			}
			labels := map[string]string{"country": pick(labelValues...)}
			if rng.IntN(2) == 0 {
				labels["site"] = pick("nyc", "ber")
			}
			room := roomObj(ns, name, labels)
			room.Spec.UpdateRing = pick("", "ring-a", "ring-a", "ring-b")
			w.rooms = append(w.rooms, room)
		}
		// Tickets and reports of the rooms, and of a room that does not
		// exist; the same names in both namespaces on other rooms.
		for i := range rng.IntN(5) {
			w.tickets = append(w.tickets, &v1alpha1.Ticket{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("t%d", i)},
				Spec:       v1alpha1.TicketSpec{Room: pick(append(roomNames, "r9")...)},
			})
		}
		for i := range rng.IntN(4) {
			w.reports = append(w.reports, &v1alpha1.RoomReport{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p%d", i)},
				Spec:       v1alpha1.RoomReportSpec{Room: pick(append(roomNames, "r9")...)},
			})
		}
		for i := range 1 + rng.IntN(3) {
			domain := pick(domains...)
			name := fmt.Sprintf("l%d", i)
			phase := []v1alpha1.InvitationPhase{v1alpha1.InvitationPending, v1alpha1.InvitationAccepted, v1alpha1.InvitationExpired}[rng.IntN(3)]
			inv := invitationObj(ns, name, domain, phase)
			if rng.IntN(3) == 0 {
				required := map[string]v1alpha1.ExtraValues{"amr": {pick("mfa", "hwk")}}
				if rng.IntN(3) == 0 {
					required["example.com/device"] = v1alpha1.ExtraValues{"managed", pick("managed", "byod")}
				}
				inv.Spec.SessionPolicy = &v1alpha1.SessionPolicy{RequiredExtra: required}
			}
			if rng.IntN(3) == 0 {
				days := int32(1)
				inv.Spec.Relationship = &v1alpha1.Relationship{DurationDays: &days, AutoExtend: rng.IntN(2) == 0}
			}
			w.invitations = append(w.invitations, inv)
			l := activeLinkObj(ns, name, domain)
			if rng.IntN(2) == 0 {
				l.Status.ExpiresAt = moment()
			}
			// The link records the invitation it accepted; sometimes that
			// one was deleted and this is another of the same name.
			inv.UID = types.UID(fmt.Sprintf("uid-%s-%s", ns, name))
			if rng.IntN(2) == 0 {
				l.Annotations = map[string]string{v1alpha1.AnnotationInvitationUID: pick(string(inv.UID), "uid-of-a-deleted-one")}
			}
			switch rng.IntN(6) {
			case 0:
				if rng.IntN(2) == 0 {
					continue // an invitation without a link
				}
			case 1:
				l.Status.Phase = v1alpha1.LinkPending
			case 2:
				l.DeletionTimestamp = &now
			case 3:
				l.Status.Phase = v1alpha1.LinkExpired
			}
			w.links = append(w.links, l)
			for j := range rng.IntN(3) {
				a := assignmentObj(ns, fmt.Sprintf("%s-a%d", name, j), name, scope(false))
				if rng.IntN(8) == 0 {
					a.DeletionTimestamp = &now
				}
				w.assignments = append(w.assignments, a)
			}
			for j := range rng.IntN(3) {
				var perms []v1alpha1.Permission
				for _, p := range v1alpha1.AllPermissions {
					if rng.IntN(2) == 0 {
						perms = append(perms, p)
					}
				}
				role := &v1alpha1.PartnerRole{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-role%d", name, j)},
					Spec:       v1alpha1.PartnerRoleSpec{PartnerLink: name, Permissions: perms},
				}
				for k := range 1 + rng.IntN(2) {
					var members []v1alpha1.Subject
					for range 1 + rng.IntN(2) {
						d := pick(append(domains, domain, domain)...)
						if rng.IntN(2) == 0 {
							members = append(members, user(pick("alice", "bob", "Carol")+"@"+d))
						} else {
							members = append(members, group(d+":"+pick("helpdesk", "admins", "tenant-managers")))
						}
					}
					ra := v1alpha1.RoleAssignment{Name: fmt.Sprintf("a%d", k), Members: members, Scope: scope(true)}
					if rng.IntN(2) == 0 {
						// Bounds in any order: the schema refuses
						// validFrom >= validUntil, the index grants
						// nothing for them all the same.
						ra.ValidFrom, ra.ValidUntil = moment(), moment()
					}
					role.Spec.Assignments = append(role.Spec.Assignments, ra)
				}
				w.roles = append(w.roles, role)
			}
		}
	}
	// Change requests: of the namespace's links, of a link that does not
	// exist, the same name in both namespaces on other links.
	for _, ns := range namespaces {
		for i := range 1 + rng.IntN(4) {
			link := pick("l0", "l0", "l0", "l1", "l2", "gone")
			w.changeRequests = append(w.changeRequests, &v1alpha1.PartnerChangeRequest{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("c%d", i), Labels: map[string]string{v1alpha1.LabelPartnerLink: link}},
				Spec:       v1alpha1.PartnerChangeRequestSpec{PartnerLink: link, Category: v1alpha1.CategoryRooms, Operation: v1alpha1.OperationUpdate},
			})
		}
	}
	return w
}

func randomRequest(rng *rand.Rand) *Request {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	r := &Request{User: pick("alice", "bob", "Carol", " ALICE") + pick("@contoso.com", "@fabrikam.com", "@Contoso.com", "@northwind.com")}
	switch rng.IntN(8) {
	case 0: // malformed, foreign or system identities
		r.User = pick("alice", "", "a@b", "fabrikam.com:ops", "al ice") + pick("@customer.org", "@contoso", "", "@x@contoso.com", "@.com", "@eu.contoso.com", "@contoso.com.", "@eu.customer.org")
	case 1:
		r.User = pick("system:serviceaccount:t1:sa", "admin", "system:admin", "system:admin@contoso.com", "System:alice@contoso.com", "oidc:alice@contoso.com")
	}
	for range rng.IntN(4) {
		r.Groups = append(r.Groups, pick("contoso.com", "fabrikam.com", "Contoso.com")+":"+pick("helpdesk", "admins", "tenant-managers"))
	}
	// Extra of a session: often what the policies ask, sometimes part of
	// it, another value, another key, or its case.
	if rng.IntN(4) != 0 {
		r.Extra = map[string]authorizationv1.ExtraValue{}
		for range 1 + rng.IntN(3) {
			key := pick("amr", "amr", "example.com/device", "AMR", "acr")
			r.Extra[key] = append(r.Extra[key], pick("mfa", "hwk", "pwd", "managed", "byod", "MFA"))
		}
	}
	if rng.IntN(15) == 0 {
		r.Path = pick("/api", "/api/v1", "/apis/partners.roompro.io/v1alpha1", "/apis/partners.roompro.io/v1alpha1/rooms", "/version", "/openapi/v3",
			"/openapi/v3/apis/partners.roompro.io/v1alpha1", "/openapi/v2/x", "/openapi/v3apis/x", "/openapi/v3/", "/metrics", "/logs", "/api/v1/namespaces/t1/pods", "/apis/../metrics")
		r.Verb = pick("get", "get", "head", "post", "delete")
		return r
	}
	r.Namespace = pick("t1", "t2", "t1", "t2", "t3")
	r.Verb = pick("get", "list", "watch", "create", "update", "patch", "delete")
	r.Group = Group
	if rng.IntN(12) == 0 {
		r.Group = pick("", "authorization.k8s.io", "authentication.k8s.io")
		r.Resource = pick("pods", "selfsubjectaccessreviews", "selfsubjectreviews", "subjectaccessreviews")
		return r
	}
	r.Resource = pick("rooms", "rooms", "rooms", "roomgroups", "updaterings", "settings", "partnerroles", "partnerinvitations", "partnerlinks", "roomassignments",
		"partnerchangerequests", "partnerchangerequests", "tickets", "tickets", "roomreports", "updaterings")
	switch r.Resource {
	case "partnerchangerequests":
		return randomChangeRequestRequest(rng, r)
	case "tickets", "roomreports", "updaterings", "roomgroups":
		return randomManagedRequest(rng, r)
	}
	if r.Resource == "rooms" && rng.IntN(3) == 0 {
		r.Subresource = pick("key", "resetkey", "tickets", "reports", "status")
	}
	switch r.Resource {
	case "partnerroles":
		r.Name = pick("", "l0-role0", "l1-role1", "l0-role1", "missing", "l0-new", "l1-primary-admins", "l2-primary-admins")
	case "partnerinvitations", "partnerlinks":
		r.Name = pick("", "l0", "l1", "l2")
	default:
		r.Name = pick("", "r1", "r2", "r3", "r4", "r9")
	}
	if r.Verb == "list" || r.Verb == "watch" {
		r.Name = ""
		switch rng.IntN(4) {
		case 0:
			r.LabelSelector = []Requirement{{Key: "access.partners.roompro.io/" + pick("contoso.com", "fabrikam.com"), Operator: "Exists"}}
		case 1:
			r.LabelSelector = []Requirement{{Key: "access.partners.roompro.io/contoso.com", Operator: "In", Values: []string{pick("true", "false")}}}
		case 2:
			r.LabelSelector = []Requirement{{Key: "country", Operator: "In", Values: []string{"us"}}}
		}
		if rng.IntN(2) == 0 {
			r.FieldSelector = []Requirement{{Key: pick("spec.partnerLink", "metadata.name"), Operator: pick("In", "In", "NotIn"), Values: []string{pick("l0", "l1", "l2")}}}
		}
	}
	return r
}

// randomManagedRequest fills in a request on tickets, room reports, update
// rings or room groups: every verb, the status subresource, the names of
// the world's objects and others, lists by the room label (rooms in and out
// of scope, one or two, each operator) and by the access label.
func randomManagedRequest(rng *rand.Rand, r *Request) *Request {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	r.Verb = pick("get", "get", "list", "list", "watch", "create", "update", "update", "patch", "delete", "deletecollection")
	if rng.IntN(10) == 0 {
		r.Subresource = "status"
	}
	if rng.IntN(2) == 0 {
		r.User, r.Namespace = pick("alice", "bob", "Carol")+pick("@contoso.com", "@fabrikam.com"), pick("t1", "t2")
	}
	switch r.Resource {
	case "tickets":
		r.Name = pick("", "t0", "t1", "t2", "t3", "t9", "r1")
	case "roomreports":
		r.Name = pick("", "p0", "p1", "p2", "p9", "r1")
	default:
		r.Name = pick("", "ring-a", "ring-b", "ring-c", "g")
	}
	if r.Verb == "list" || r.Verb == "watch" {
		r.Name = ""
		room := func() string { return pick("r1", "r2", "r3", "r4", "r9") }
		byRoom := Requirement{Key: pick(v1alpha1.LabelRoom, v1alpha1.LabelRoom, v1alpha1.LabelRoom, "room"),
			Operator: pick("In", "In", "Equals", "NotIn", "Exists"), Values: []string{room()}}
		if rng.IntN(3) == 0 {
			byRoom.Values = append(byRoom.Values, room())
		}
		access := Requirement{Key: "access.partners.roompro.io/" + pick("contoso.com", "fabrikam.com"), Operator: "Exists"}
		switch rng.IntN(5) {
		case 0:
		case 1:
			r.LabelSelector = []Requirement{access}
		case 2:
			r.LabelSelector = []Requirement{access, byRoom}
		default:
			r.LabelSelector = []Requirement{byRoom}
		}
	}
	return r
}

// randomChangeRequestRequest fills in a request on partnerchangerequests:
// every verb a partner may and may not use, the status subresource, the
// names of the world's requests and others, lists by name (a field
// selector metadata.name arrives as the name) and label selectors on
// partners.roompro.io/partner-link with each operator, one or two links,
// or none, sometimes after another requirement.
func randomChangeRequestRequest(rng *rand.Rand, r *Request) *Request {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	r.Verb = pick("get", "get", "list", "list", "watch", "create", "create", "update", "patch", "delete", "deletecollection", "approve")
	if rng.IntN(10) == 0 {
		r.Subresource = pick("status", "approval")
	}
	// Mostly a well-formed user of a linked domain where links are, often
	// a tenant manager of its own domain, who reads every request of its
	// active links without a role.
	if rng.IntN(2) == 0 {
		r.User, r.Namespace = pick("alice", "bob", "Carol")+pick("@contoso.com", "@fabrikam.com"), pick("t1", "t2")
	}
	if _, domain, ok := strings.Cut(r.User, "@"); ok && rng.IntN(2) == 0 {
		r.Groups = append(r.Groups, pick(domain, strings.ToLower(domain), "contoso.com")+":tenant-managers")
	}
	r.Name = pick("", "c0", "c0", "c1", "c1", "c2", "c3", "c9")
	if (r.Verb == "list" || r.Verb == "watch") && rng.IntN(3) > 0 {
		r.Name = ""
	}
	if r.Name == "" && (r.Verb == "list" || r.Verb == "watch") || rng.IntN(8) == 0 {
		link := func() string { return pick("l0", "l0", "l0", "l1", "l2", "gone") }
		values := []string{link()}
		switch rng.IntN(5) {
		case 0:
			values = append(values, link())
		case 1:
			values = nil
		}
		main := Requirement{Key: pick(v1alpha1.LabelPartnerLink, v1alpha1.LabelPartnerLink, v1alpha1.LabelPartnerLink, "partner-link", "spec.partnerLink"),
			Operator: pick("In", "In", "Equals", "NotIn", "Exists"), Values: values}
		switch rng.IntN(6) {
		case 0:
			// none
		case 1:
			r.LabelSelector = []Requirement{{Key: v1alpha1.LabelPartnerLink, Operator: "In", Values: []string{link(), link()}}, main}
		case 2:
			r.FieldSelector = []Requirement{{Key: "spec.partnerLink", Operator: "In", Values: []string{link()}}}
		default:
			r.LabelSelector = []Requirement{main}
		}
	}
	return r
}

// requestsPerWorld is how many requests each generated world is asked.
const requestsPerWorld = 200

// modelEpoch is the middle of the moments of random worlds and clocks.
var modelEpoch = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// setMoment puts the request at the moment at: as the webhook does, in
// the request's At (the index's clock then shows another time, which must
// not count), or as the admission webhooks do, on the index's clock.
func setMoment(rng *rand.Rand, clock *clocktesting.FakePassiveClock, r *Request, at time.Time) {
	if rng.IntN(2) == 0 {
		r.At = at
		clock.SetTime(at.Add(time.Duration(rng.IntN(5)-2) * time.Hour))
	} else {
		r.At = time.Time{}
		clock.SetTime(at)
	}
}

// randomClock is a request's moment: at a bound of the random worlds
// (whole hours around modelEpoch), a second or a nanosecond either side,
// or far from all of them.
func randomClock(rng *rand.Rand) time.Time {
	at := modelEpoch.Add(time.Duration(rng.IntN(5)-2) * time.Hour)
	switch rng.IntN(6) {
	case 0:
		return at.Add(-time.Second)
	case 1:
		return at.Add(-time.Nanosecond)
	case 2:
		return at.Add(time.Second)
	case 3:
		return at.Add(time.Duration(rng.IntN(2)*2-1) * 30 * 24 * time.Hour)
	}
	return at
}

// checkSeed builds the world of one seed into an index — in a shuffled
// order, with some objects first written in another version, then deleted
// and re-added — and compares index and model on requestsPerWorld requests.
// The index answers the same requests while it is built too, so that what
// it remembers of a caller (callers.go) must follow every change.
func checkSeed(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := randomWorld(rng)
	var objs []any
	for _, o := range w.organizations {
		objs = append(objs, o)
	}
	for _, o := range w.invitations {
		objs = append(objs, o)
	}
	for _, o := range w.links {
		objs = append(objs, o)
	}
	for _, o := range w.assignments {
		objs = append(objs, o)
	}
	for _, o := range w.roles {
		objs = append(objs, o)
	}
	for _, o := range w.rooms {
		objs = append(objs, o)
	}
	for _, o := range w.changeRequests {
		objs = append(objs, o)
	}
	for _, o := range w.tickets {
		objs = append(objs, o)
	}
	for _, o := range w.reports {
		objs = append(objs, o)
	}
	rng.Shuffle(len(objs), func(i, j int) { objs[i], objs[j] = objs[j], objs[i] })
	requests := make([]*Request, requestsPerWorld)
	clocks := make([]time.Time, requestsPerWorld)
	for i := range requests {
		requests[i], clocks[i] = randomRequest(rng), randomClock(rng)
	}
	clock := clocktesting.NewFakePassiveClock(modelEpoch)
	x := NewIndex(WithClock(clock))
	x.SetSynced(true)
	// decideSome decides a random request at its moment: what the index
	// remembers of a caller must follow the clock as well as every change.
	decideSome := func() {
		i := rng.IntN(len(requests))
		setMoment(rng, clock, requests[i], clocks[i])
		x.Decide(requests[i])
	}
	for _, o := range objs {
		if rng.IntN(6) == 0 { // an update history: a stale version, a delete, the final one
			if stale := staleVersion(rng, w, o); stale != nil {
				x.Upsert(stale)
				decideSome()
			}
			x.Upsert(o)
			x.Delete(o)
			decideSome()
		}
		x.Upsert(o)
		decideSome()
	}
	for i, r := range requests {
		setMoment(rng, clock, r, clocks[i])
		w.now = clocks[i]
		if got, want := x.Decide(r), w.decide(r); got.Verdict != want {
			t.Fatalf("seed %d: at %s, index %s (%s), model %s, for %+v", seed, clocks[i].Format(time.RFC3339Nano), got.Verdict, got.Reason, want, *r)
		}
	}
}

// staleVersion returns an earlier version of o that the index must forget
// entirely: a room with other labels, an assignment or a role of another
// object's link and content. nil for kinds it does not vary.
func staleVersion(rng *rand.Rand, w *modelWorld, o any) any {
	switch o := o.(type) {
	case *v1alpha1.Room:
		stale := roomObj(o.Namespace, o.Name, map[string]string{"country": "zz"})
		stale.Spec.UpdateRing = "ring-" + fmt.Sprint(rng.IntN(3))
		return stale
	case *v1alpha1.Ticket:
		// The room is immutable in the cluster; the index follows the
		// version it is fed all the same.
		stale := o.DeepCopy()
		stale.Spec.Room = "r" + fmt.Sprint(1+rng.IntN(4))
		return stale
	case *v1alpha1.RoomReport:
		stale := o.DeepCopy()
		stale.Spec.Room = "r" + fmt.Sprint(1+rng.IntN(4))
		return stale
	case *v1alpha1.RoomAssignment:
		stale := w.assignments[rng.IntN(len(w.assignments))].DeepCopy()
		stale.Namespace, stale.Name, stale.DeletionTimestamp = o.Namespace, o.Name, nil
		return stale
	case *v1alpha1.PartnerRole:
		stale := w.roles[rng.IntN(len(w.roles))].DeepCopy()
		stale.Namespace, stale.Name, stale.DeletionTimestamp = o.Namespace, o.Name, nil
		return stale
	case *v1alpha1.PartnerChangeRequest:
		// The link is immutable in the cluster; the index follows the
		// version it is fed all the same.
		stale := o.DeepCopy()
		stale.Spec.PartnerLink = "l" + fmt.Sprint(rng.IntN(3))
		return stale
	}
	return nil
}

// FuzzIndexAgreesWithModel: `make test` runs its seed corpus; a long run is
//
//	go test ./internal/authz -run '^$' -fuzz FuzzIndexAgreesWithModel -fuzztime 10m
//
// Each input checks requestsPerWorld requests against one random world.
func FuzzIndexAgreesWithModel(f *testing.F) {
	for seed := range uint64(64) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { checkSeed(t, seed) })
}

// TestIndexAgreesWithModel checks 5,000 worlds x requestsPerWorld requests,
// each at a random clock, on every run of the unit tests: a million.
func TestIndexAgreesWithModel(t *testing.T) {
	for seed := range uint64(5000) {
		checkSeed(t, seed+1_000_000)
	}
}
