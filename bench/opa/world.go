// Package opa compares the operator's in-process authorization decision
// (internal/authz) with Open Policy Agent evaluating policy.rego, a Rego
// policy that implements the same rules, over the same objects.
package opa

import (
	"fmt"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authz"
)

// Namespace is the customer tenant of every generated world.
const Namespace = "tenant-a"

const (
	// primaryAdmins is the assignment of a link's built-in role that the
	// operator's PartnerLink controller keeps.
	primaryAdmins = "primary-admins"
	// partnerLabel is the room label the invitations' assignments select on.
	partnerLabel = "partner"
	// floorLabel is the room label the narrowed roles select on.
	floorLabel = "floor"
	// deletingField is the field of the policy's documents that tells an
	// object is Terminating (policy.rego reads it).
	deletingField = "deleting"
)

// World is one set of objects, loaded into both engines.
type World struct {
	Rooms, Partners, Users int
	Objects                []any
	Index                  *authz.Index
	// Data is the OPA data document derived from Objects (see Document).
	Data map[string]any
	// Clock is the index's: set it to decide at a moment, and give the
	// policy the same moment (Input). NewWorld sets it to T0.
	Clock *clocktesting.FakePassiveClock
	// Bounds are the moments at which a grant starts or ends: BoundsOf
	// every partner, each once.
	Bounds []Bound
}

// T0 is the moment the world's windows and relationship ends are laid out
// around (see timesOf), a whole second as every time the apiserver stores.
// Every moment of the world is a whole second too.
var T0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// Bound is a moment at which a grant of the world starts or ends, and what
// starts or ends it.
type Bound struct {
	At   time.Time
	Kind BoundKind
}

// BoundKind says what a Bound is.
type BoundKind string

const (
	ValidFrom  BoundKind = "validFrom"
	ValidUntil BoundKind = "validUntil"
	ExpiresAt  BoundKind = "expiresAt"
	// ExtendedAt is the expiresAt of a link whose invitation has autoExtend:
	// nothing ends there.
	ExtendedAt BoundKind = "expiresAt with autoExtend"
)

// The ends of two grants of addEdgeCases.
var (
	// ringTechsUntil ends p0's ring-techs assignment not-p2.
	ringTechsUntil = T0.Add(time.Second)
	// p02ExpiresAt ends p0's second link p0-2.
	p02ExpiresAt = T0.Add(45 * time.Minute)
)

// BoundsOf are the moments at which partner p's grants start or end (see
// timesOf and addEdgeCases). timesOf gives each moment one kind, so that a
// verdict that changes there tells which rule changed it.
func BoundsOf(p, partners int) []Bound {
	pt := timesOf(p, partners)
	var bounds []Bound
	for _, w := range []window{pt.byName, pt.byFloor} {
		if w.from != nil {
			bounds = append(bounds, Bound{*w.from, ValidFrom})
		}
		if w.until != nil {
			bounds = append(bounds, Bound{*w.until, ValidUntil})
		}
	}
	if pt.expiresAt != nil {
		kind := ExpiresAt
		if pt.extended() {
			kind = ExtendedAt
		}
		bounds = append(bounds, Bound{*pt.expiresAt, kind})
	}
	if p == 0 {
		bounds = append(bounds, Bound{ringTechsUntil, ValidUntil}, Bound{p02ExpiresAt, ExpiresAt})
	}
	return bounds
}

// window is an assignment's [validFrom, validUntil); a nil bound is none.
type window struct{ from, until *time.Time }

func (w window) of(a v1alpha1.RoleAssignment) v1alpha1.RoleAssignment {
	if w.from != nil {
		a.ValidFrom = at(*w.from)
	}
	if w.until != nil {
		a.ValidUntil = at(*w.until)
	}
	return a
}

// partnerTimes are the windows of partner p's site-techs assignments and
// the end of its relationship.
type partnerTimes struct {
	byName, byFloor window
	expiresAt       *time.Time
	autoExtend      bool
	// record is how the link records the invitation it accepted.
	record linkRecord
}

// linkRecord is how a link tells the invitation it accepted from an
// earlier one of the same name (lifecycle.CreatedFor): only the
// invitation it accepted extends it.
type linkRecord int

const (
	// byUID: the link's invitation-uid annotation names the invitation.
	byUID linkRecord = iota
	// olderInvitation: no annotation; the invitation is not newer than the
	// link: created in the same second, which creation timestamps cannot
	// tell apart.
	olderInvitation
	// otherUID: the annotation names an earlier invitation of the name.
	otherUID
	// newerInvitation: no annotation; the invitation is newer than the link.
	newerInvitation
)

// extended reports whether the relationship never ends at its expiresAt.
func (pt partnerTimes) extended() bool {
	return pt.autoExtend && (pt.record == byUID || pt.record == olderInvitation)
}

// timesOf lays out partner p's times around T0 (each moment is one of
// BoundsOf): the site-techs windows by p mod 5 (none; by-name from T0-1h
// and by-floor until T0+90m; by-name for T0±1d; by-name from T0+1h and
// by-floor until T0-2h; by-floor for [T0, T0+2h)), the relationship's end
// by p mod 4: none; T0+7d; T0-3h with autoExtend, so never (the link
// records its invitation by UID, or, p mod 8 = 2, not at all and the
// invitation is not newer); T0+30m with autoExtend on an invitation the link
// did not accept, so at T0+30m (the annotation names another UID, or, p mod
// 8 = 7, none and the invitation is newer). The benchmark partner
// partners/2 has none; partners/2+1 has the by-name window T0±1d and an
// autoExtend relationship whose expiresAt is T0+30d.
func timesOf(p, partners int) partnerTimes {
	t := func(d time.Duration) *time.Time { at := T0.Add(d); return &at }
	const day = 24 * time.Hour
	switch p {
	case partners / 2:
		return partnerTimes{}
	case partners/2 + 1:
		return partnerTimes{byName: window{t(-day), t(day)}, expiresAt: t(30 * day), autoExtend: true}
	}
	var pt partnerTimes
	switch p % 5 {
	case 1:
		pt.byName, pt.byFloor = window{from: t(-time.Hour)}, window{until: t(90 * time.Minute)}
	case 2:
		pt.byName = window{t(-day), t(day)}
	case 3:
		pt.byName, pt.byFloor = window{from: t(time.Hour)}, window{until: t(-2 * time.Hour)}
	case 4:
		pt.byFloor = window{t(0), t(2 * time.Hour)}
	}
	switch p % 4 {
	case 1:
		pt.expiresAt = t(7 * day)
	case 2:
		pt.expiresAt, pt.autoExtend = t(-3*time.Hour), true
		if p%8 == 2 {
			pt.record = olderInvitation
		}
	case 3:
		pt.expiresAt, pt.autoExtend, pt.record = t(30*time.Minute), true, otherUID
		if p%8 == 7 {
			pt.record = newerInvitation
		}
	}
	return pt
}

func at(t time.Time) *metav1.Time { return &metav1.Time{Time: t} }

// NewWorld builds one namespace with the given number of rooms, partners and
// partner users in all:
//
//   - room-<r> is labelled partner=p<r mod partners> and floor=<(r/partners) mod 2>,
//     and every seventh retired=true;
//   - partner i (domain p<i>.example.com) has an accepted invitation, an Active
//     link p<i>, an assignment selecting partner=p<i>, the built-in role
//     p<i>-primary-admins with PrimaryAdminPermissions for users
//     u<j>@p<i>.example.com (j ≡ i mod partners), and the narrowed role
//     p<i>-site-techs: group p<i>.example.com:site-techs on five of the
//     partner's rooms by name, group p<i>.example.com:floor-techs on floor=1
//     by selector. It lists rooms.resetKey, which no partner may hold: both
//     engines must drop it;
//   - pending.example.com has a pending invitation only (its tenant managers
//     may accept it), expired.example.com an expired one, gone.example.com a
//     Terminating link whose role must grant nothing;
//   - every domain but gone.example.com is registered (a PartnerOrganization):
//     gone.example.com is a partner domain by its link alone, and
//     unregistered.example.com, which only an invitation names, is none;
//   - session policies (PartnerInvitation spec.sessionPolicy): by partner,
//     none, amr in {mfa, hwk}, or amr=mfa and example.com/device=managed
//     (sessionPolicyOf); p1's pending invitation p1-2 adds a device
//     requirement, p0's Expired invitation p0-old one that no longer
//     applies, and pending.example.com's tenant managers need amr=mfa;
//   - time (around T0; the moments are Bounds): windows on the
//     site-techs assignments and relationship ends, some with autoExtend, by
//     partner (timesOf); p0's ring-techs assignment ends a second after T0,
//     p0-2 ends at T0+45m with no invitation to extend it, and
//     lapsed.example.com has an Expired link, whose role grants nothing;
//   - every link L has the PartnerChangeRequest L-change, and orphan-change
//     names a link that does not exist;
//   - partners 0 and 1 carry the rarer rules (addEdgeCases); the benchmark
//     cases act for partner partners/2, which has none of them.
func NewWorld(rooms, partners, users int) *World {
	w := &World{Rooms: rooms, Partners: partners, Users: users}
	add := func(o any) { w.Objects = append(w.Objects, o) }
	for r := range rooms {
		labels := map[string]string{partnerLabel: fmt.Sprintf("p%d", r%partners), floorLabel: fmt.Sprint(r / partners % 2)}
		if r%7 == 3 {
			labels["retired"] = "true" // for a DoesNotExist selector
		}
		rm := room(fmt.Sprintf("room-%d", r), labels)
		// Rings: most of a partner's rooms in the partner's ring, some in
		// ring "mixed" with the rooms of every partner.
		rm.Spec.UpdateRing = fmt.Sprintf("ring-p%d", r%partners)
		if r%11 == 5 {
			rm.Spec.UpdateRing = "mixed"
		}
		add(rm)
		// One ticket per room, a report of every other one; ticket-none
		// and report-none name no object.
		add(&v1alpha1.Ticket{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: fmt.Sprintf("ticket-%d", r)},
			Spec: v1alpha1.TicketSpec{Room: rm.Name}})
		if r%2 == 0 {
			add(&v1alpha1.RoomReport{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: fmt.Sprintf("report-%d", r)},
				Spec: v1alpha1.RoomReportSpec{Room: rm.Name}})
		}
	}
	for p := range partners {
		link, domain := fmt.Sprintf("p%d", p), PartnerDomain(p)
		var admins []v1alpha1.Subject
		for u := p; u < users; u += partners {
			admins = append(admins, subject(v1alpha1.UserSubject, fmt.Sprintf("u%d@%s", u, domain)))
		}
		named := make([]string, 0, 5)
		for k := range 5 {
			named = append(named, fmt.Sprintf("room-%d", p+2*k*partners))
		}
		times := timesOf(p, partners)
		add(organization(domain))
		inv := invitation(link, domain, v1alpha1.InvitationAccepted)
		inv.Spec.SessionPolicy = sessionPolicyOf(p, partners)
		l := partnerLink(link, domain, v1alpha1.LinkActive)
		if times.expiresAt != nil {
			days := int32(30)
			inv.Spec.Relationship = &v1alpha1.Relationship{DurationDays: &days, AutoExtend: times.autoExtend}
			l.Status.ExpiresAt = at(*times.expiresAt)
		}
		switch times.record {
		case olderInvitation:
			delete(l.Annotations, v1alpha1.AnnotationInvitationUID)
			inv.CreationTimestamp = l.CreationTimestamp
		case otherUID:
			l.Annotations[v1alpha1.AnnotationInvitationUID] = "an-earlier-invitation"
		case newerInvitation:
			delete(l.Annotations, v1alpha1.AnnotationInvitationUID)
			inv.CreationTimestamp = metav1.NewTime(l.CreationTimestamp.Add(time.Second))
		}
		add(inv)
		add(l)
		add(assignment(link+"-invitation", link, byLabels(map[string]string{partnerLabel: link})))
		add(role(v1alpha1.PrimaryAdminRoleName(link), link, v1alpha1.PrimaryAdminPermissions,
			v1alpha1.RoleAssignment{Name: primaryAdmins, Members: admins}))
		add(changeRequest(link))
		add(role(link+"-site-techs", link,
			[]v1alpha1.Permission{v1alpha1.RoomsView, v1alpha1.RoomsModify, v1alpha1.RoomsResetKey, v1alpha1.TicketsCreate},
			times.byName.of(v1alpha1.RoleAssignment{Name: "by-name", Members: []v1alpha1.Subject{subject(v1alpha1.GroupSubject, domain+":site-techs")},
				Scope: v1alpha1.RoomScope{Names: named}}),
			times.byFloor.of(v1alpha1.RoleAssignment{Name: "by-floor", Members: []v1alpha1.Subject{subject(v1alpha1.GroupSubject, domain+":floor-techs")},
				Scope: byLabels(map[string]string{floorLabel: "1"})})))
	}
	addEdgeCases(add)
	for _, link := range []string{"p0-2", "p1-2", "gone", "nowhere"} {
		add(changeRequest(link))
	}
	add(organization("pending.example.com"))
	add(organization("expired.example.com"))
	// The tenant managers of pending.example.com accept its invitation
	// only with the session it requires.
	pending := invitation("pending", "pending.example.com", v1alpha1.InvitationPending)
	pending.Spec.SessionPolicy = &v1alpha1.SessionPolicy{RequiredExtra: map[string]v1alpha1.ExtraValues{amrKey: {mfa}}}
	add(pending)
	add(invitation("expired", "expired.example.com", v1alpha1.InvitationExpired))
	add(invitation("unregistered", "unregistered.example.com", v1alpha1.InvitationPending))
	// An Expired link is a record: its role grants nothing, whatever the
	// clock and autoExtend say.
	add(organization("lapsed.example.com"))
	lapsedInv := invitation("lapsed", "lapsed.example.com", v1alpha1.InvitationAccepted)
	lapsedDays := int32(1)
	lapsedInv.Spec.Relationship = &v1alpha1.Relationship{DurationDays: &lapsedDays, AutoExtend: true}
	add(lapsedInv)
	lapsed := partnerLink("lapsed", "lapsed.example.com", v1alpha1.LinkExpired)
	lapsed.Status.ExpiresAt = at(T0.Add(30 * 24 * time.Hour))
	add(lapsed)
	add(assignment("lapsed-invitation", "lapsed", v1alpha1.RoomScope{Selector: &metav1.LabelSelector{}}))
	add(role(v1alpha1.PrimaryAdminRoleName("lapsed"), "lapsed", v1alpha1.PrimaryAdminPermissions,
		v1alpha1.RoleAssignment{Name: primaryAdmins, Members: []v1alpha1.Subject{subject(v1alpha1.UserSubject, "admin@lapsed.example.com")}}))
	add(invitation("gone", "gone.example.com", v1alpha1.InvitationAccepted))
	add(partnerLink("gone", "gone.example.com", v1alpha1.LinkTerminating))
	add(assignment("gone-invitation", "gone", v1alpha1.RoomScope{Selector: &metav1.LabelSelector{}}))
	add(role(v1alpha1.PrimaryAdminRoleName("gone"), "gone", v1alpha1.PrimaryAdminPermissions,
		v1alpha1.RoleAssignment{Name: primaryAdmins, Members: []v1alpha1.Subject{subject(v1alpha1.UserSubject, "admin@gone.example.com")}}))

	seen := map[Bound]bool{}
	for p := range partners {
		for _, b := range BoundsOf(p, partners) {
			if !seen[b] {
				seen[b] = true
				w.Bounds = append(w.Bounds, b)
			}
		}
	}
	w.Clock = clocktesting.NewFakePassiveClock(T0)
	w.Index = authz.NewIndex(authz.WithClock(w.Clock))
	for _, o := range w.Objects {
		w.Index.Upsert(o)
	}
	w.Index.SetSynced(true)
	w.Data = Document(w.Objects)
	return w
}

// Extra keys of the session policies and their values.
const (
	amrKey    = "amr"
	deviceKey = "example.com/device"
	mfa       = "mfa"
	managed   = "managed"
)

// FullSession is a user extra that meets every session policy of the world.
func FullSession() map[string]authorizationv1.ExtraValue {
	return map[string]authorizationv1.ExtraValue{amrKey: {"pwd", mfa}, deviceKey: {managed}}
}

// sessionPolicyOf is the session policy of partner p's invitation: none,
// one key with two accepted values, or two keys, by p mod 3. The benchmark
// partner partners/2 has none (its cases are those of the world without
// policies); partners/2+1, the partner of the benchmark cases with a
// policy, requires both keys.
func sessionPolicyOf(p, partners int) *v1alpha1.SessionPolicy {
	both := map[string]v1alpha1.ExtraValues{amrKey: {mfa}, deviceKey: {managed}}
	switch {
	case p == partners/2:
		return nil
	case p == partners/2+1:
		return &v1alpha1.SessionPolicy{RequiredExtra: both}
	case p%3 == 1:
		return &v1alpha1.SessionPolicy{RequiredExtra: map[string]v1alpha1.ExtraValues{amrKey: {mfa, "hwk"}}}
	case p%3 == 2:
		return &v1alpha1.SessionPolicy{RequiredExtra: both}
	}
	return nil
}

// addEdgeCases adds, for partners p0 and p1, objects that exercise rules the
// regular partners do not: every selector operator, a second assignment
// (the link's scope is the union), an invalid selector, objects being
// deleted, a domain with two links, members keyed by kind and domain.
func addEdgeCases(add func(any)) {
	deleted := metav1.Now()
	expr := func(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	group := func(name string) []v1alpha1.Subject {
		return []v1alpha1.Subject{subject(v1alpha1.GroupSubject, name)}
	}
	// p0 also reaches the floor-0 rooms, not retired, of the partners but p1.
	add(assignment("p0-extra", "p0", v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		expr(floorLabel, metav1.LabelSelectorOpIn, "0"), expr(partnerLabel, metav1.LabelSelectorOpNotIn, "p1"),
		expr(partnerLabel, metav1.LabelSelectorOpExists), expr("retired", metav1.LabelSelectorOpDoesNotExist)}}}))
	add(role("p0-ring-techs", "p0", []v1alpha1.Permission{v1alpha1.RoomsView, v1alpha1.TicketsView, v1alpha1.RolesView},
		// Until a second after T0.
		v1alpha1.RoleAssignment{Name: "not-p2", Members: group("p0.example.com:ring-techs"), ValidUntil: at(ringTechsUntil),
			Scope: v1alpha1.RoomScope{Names: []string{"room-0"}, Selector: &metav1.LabelSelector{
				MatchLabels:      map[string]string{floorLabel: "0"},
				MatchExpressions: []metav1.LabelSelectorRequirement{expr(partnerLabel, metav1.LabelSelectorOpNotIn, "p2", "p3")}}}},
		// In without values is invalid: the assignment grants nothing.
		v1alpha1.RoleAssignment{Name: "broken", Members: group("p0.example.com:broken-techs"),
			Scope: v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				expr(floorLabel, metav1.LabelSelectorOpIn)}}}},
		// A member of another domain is ignored.
		v1alpha1.RoleAssignment{Name: "foreign", Members: group("p1.example.com:ring-techs")}))
	// Being deleted: neither the assignment nor the role grants anything.
	gone := assignment("p1-everything", "p1", v1alpha1.RoomScope{Selector: &metav1.LabelSelector{}})
	gone.DeletionTimestamp = &deleted
	add(gone)
	goneRole := role("p1-leaving", "p1", v1alpha1.PrimaryAdminPermissions,
		v1alpha1.RoleAssignment{Name: "all", Members: group("p1.example.com:ring-techs")})
	goneRole.DeletionTimestamp = &deleted
	add(goneRole)

	// A second Active link of p0.example.com (admission now refuses a second
	// live partnership, but the index is fed what exists): a list by the
	// domain's access label needs the whole scope of both links, which only
	// u0 holds. Its name starts with p0's and a dash, so a role name no role
	// has yet, p0-2-<x>, may belong to either link.
	// It ends at T0+45m: no invitation p0-2 says autoExtend.
	p02 := partnerLink("p0-2", "p0.example.com", v1alpha1.LinkActive)
	p02.Status.ExpiresAt = at(p02ExpiresAt)
	add(p02)
	add(assignment("p0-2-invitation", "p0-2", v1alpha1.RoomScope{Names: []string{"room-1", "room-2", "room-10"}}))
	add(role(v1alpha1.PrimaryAdminRoleName("p0-2"), "p0-2", v1alpha1.PrimaryAdminPermissions,
		v1alpha1.RoleAssignment{Name: primaryAdmins, Members: []v1alpha1.Subject{subject(v1alpha1.UserSubject, "u0@p0.example.com")}}))
	// A second link of p1.example.com that is not active: it grants nothing
	// and does not count among the domain's links a list must cover, but it
	// may own a role name no role has yet (p1-2-<x>).
	add(partnerLink("p1-2", "p1.example.com", v1alpha1.LinkPending))
	// Session policies combine: p1's users need p1's amr and the device
	// that the pending invitation p1-2 requires. An Expired invitation's
	// policy no longer applies: p0's users need nothing.
	p12 := invitation("p1-2", "p1.example.com", v1alpha1.InvitationPending)
	p12.Spec.SessionPolicy = &v1alpha1.SessionPolicy{RequiredExtra: map[string]v1alpha1.ExtraValues{deviceKey: {managed, "byod"}}}
	add(p12)
	p0old := invitation("p0-old", "p0.example.com", v1alpha1.InvitationExpired)
	p0old.Spec.SessionPolicy = &v1alpha1.SessionPolicy{RequiredExtra: map[string]v1alpha1.ExtraValues{"acr": {"never"}}}
	add(p0old)
	// Members are keyed by kind and domain: on a p1 link, a group named like
	// a p0 user is p1's group, and a p0 user (or a user named like the
	// group) is no member at all.
	add(role("p1-ops", "p1", []v1alpha1.Permission{v1alpha1.RoomsView, v1alpha1.RolesView},
		v1alpha1.RoleAssignment{Name: "ops", Members: []v1alpha1.Subject{
			subject(v1alpha1.GroupSubject, "p1.example.com:ops@p0.example.com"),
			subject(v1alpha1.UserSubject, "p1.example.com:ops@p0.example.com"),
			subject(v1alpha1.UserSubject, "u0@p0.example.com")}}))
}

// PartnerDomain is the domain of partner p.
func PartnerDomain(p int) string { return fmt.Sprintf("p%d.example.com", p) }

// Document converts objects into the OPA data document read by policy.rego,
// under data.partner. It keeps the objects' fields as they are, with three
// kinds of preparation that anyone loading data into OPA would do so that a
// decision does not scan every object:
//
//   - lookup indices: partner domains (lower-cased, cluster-wide), and per
//     namespace the links of a domain, the invitations of a (lower-cased)
//     domain that carry a session policy, and the assignments and roles of
//     a link;
//   - lists that the policy probes for membership become sets (JSON objects
//     with the value true): scope names, role permissions, role members;
//   - role members are keyed "user:<name>" / "group:<name>", lower-cased as
//     the authenticator's names are compared (not trimmed: a name with
//     spaces matches no well-formed caller). The kind is in the key; the
//     domain need not be, since a caller's grants are read from the links of
//     its own domain only.
//
// Everything else is evaluated by the policy per request, from the raw
// fields: whether a link is active, whether an assignment or a role is being
// deleted, whether an invitation's session policy applies (its phase) and
// whether the request's extra meets it, whether an assignment's window and
// its link's relationship hold at input.now (moments are Unix nanoseconds,
// null where there is no bound; creation timestamps, whole seconds as the
// apiserver sets them, Unix seconds), which rooms a selector matches (from the
// room's labels), the clamp of role permissions to the primary-admin set,
// identity parsing. Nothing is precomputed per room or per moment.
func Document(objects []any) map[string]any {
	domains := map[string]any{}
	namespaces := map[string]map[string]any{}
	tenant := func(ns string) map[string]any {
		t, ok := namespaces[ns]
		if !ok {
			t = map[string]any{}
			for _, k := range []string{"rooms", "invitations", "links", "assignments", "roles", "linksOfDomain", "policiesOfDomain", "assignmentsOfLink", "rolesOfLink", "changeRequests",
				"tickets", "reports", "ringRooms"} {
				t[k] = map[string]any{}
			}
			namespaces[ns] = t
		}
		return t
	}
	// index appends name to t[kind][key], a list.
	index := func(t map[string]any, kind, key, name string) {
		m := t[kind].(map[string]any)
		list, _ := m[key].([]any)
		m[key] = append(list, name)
	}
	for _, obj := range objects {
		switch o := obj.(type) {
		case *v1alpha1.Room:
			labels := map[string]any{}
			for k, v := range o.Labels {
				labels[k] = v
			}
			tenant(o.Namespace)["rooms"].(map[string]any)[o.Name] = map[string]any{"labels": labels}
			if o.Spec.UpdateRing != "" {
				index(tenant(o.Namespace), "ringRooms", o.Spec.UpdateRing, o.Name)
			}
		case *v1alpha1.Ticket:
			// A ticket or report by name: the room it is about.
			tenant(o.Namespace)["tickets"].(map[string]any)[o.Name] = o.Spec.Room
		case *v1alpha1.RoomReport:
			tenant(o.Namespace)["reports"].(map[string]any)[o.Name] = o.Spec.Room
		case *v1alpha1.PartnerOrganization:
			// Partner domains are the registered ones and those a link
			// names; an invitation makes none.
			domains[strings.ToLower(string(o.Spec.Domain))] = true
		case *v1alpha1.PartnerInvitation:
			t := tenant(o.Namespace)
			doc := map[string]any{"partnerDomain": string(o.Spec.PartnerDomain), "phase": string(o.Status.Phase),
				"autoExtend": o.Spec.Relationship != nil && o.Spec.Relationship.AutoExtend,
				"uid":        string(o.UID), "created": o.CreationTimestamp.Unix()}
			if o.Spec.SessionPolicy != nil {
				required := map[string]any{}
				for key, values := range o.Spec.SessionPolicy.RequiredExtra {
					vs := make([]any, 0, len(values))
					for _, v := range values {
						vs = append(vs, v)
					}
					required[key] = vs
				}
				doc["requiredExtra"] = required
				index(t, "policiesOfDomain", strings.ToLower(string(o.Spec.PartnerDomain)), o.Name)
			}
			t["invitations"].(map[string]any)[o.Name] = doc
		case *v1alpha1.PartnerLink:
			domains[strings.ToLower(string(o.Spec.PartnerDomain))] = true
			t := tenant(o.Namespace)
			t["links"].(map[string]any)[o.Name] = map[string]any{
				"partnerDomain": string(o.Spec.PartnerDomain), "phase": string(o.Status.Phase), deletingField: o.DeletionTimestamp != nil,
				"invitation": o.Spec.Invitation, "expiresAt": unixNano(o.Status.ExpiresAt),
				"invitationUID": invitationUIDOf(o), "created": o.CreationTimestamp.Unix()}
			index(t, "linksOfDomain", string(o.Spec.PartnerDomain), o.Name)
		case *v1alpha1.RoomAssignment:
			t := tenant(o.Namespace)
			t["assignments"].(map[string]any)[o.Name] = map[string]any{
				"partnerLink": o.Spec.PartnerLink, deletingField: o.DeletionTimestamp != nil, "rooms": scopeDoc(o.Spec.Rooms)}
			index(t, "assignmentsOfLink", o.Spec.PartnerLink, o.Name)
		case *v1alpha1.PartnerRole:
			t := tenant(o.Namespace)
			perms := map[string]any{}
			for _, p := range o.Spec.Permissions {
				perms[string(p)] = true
			}
			assignments := make([]any, 0, len(o.Spec.Assignments))
			for _, a := range o.Spec.Assignments {
				members := map[string]any{}
				for _, m := range a.Members {
					name := strings.ToLower(m.Name)
					switch m.Kind {
					case v1alpha1.UserSubject:
						members["user:"+name] = true
					case v1alpha1.GroupSubject:
						members["group:"+name] = true
					}
				}
				assignments = append(assignments, map[string]any{"members": members, "scope": scopeDoc(a.Scope),
					"validFrom": unixNano(a.ValidFrom), "validUntil": unixNano(a.ValidUntil)})
			}
			t["roles"].(map[string]any)[o.Name] = map[string]any{
				"partnerLink": o.Spec.PartnerLink, deletingField: o.DeletionTimestamp != nil,
				"permissions": perms, "assignments": assignments}
			index(t, "rolesOfLink", o.Spec.PartnerLink, o.Name)
		case *v1alpha1.PartnerChangeRequest:
			// A request by name: the link it belongs to.
			tenant(o.Namespace)["changeRequests"].(map[string]any)[o.Name] = o.Spec.PartnerLink
		}
	}
	nsDoc := map[string]any{}
	for ns, t := range namespaces {
		nsDoc[ns] = t
	}
	return map[string]any{"partner": map[string]any{"synced": true, "domains": domains, "namespaces": nsDoc}}
}

// invitationUIDOf is the UID a link records of the invitation it accepted,
// or nil (null) when it records none.
func invitationUIDOf(l *v1alpha1.PartnerLink) any {
	if uid, ok := l.Annotations[v1alpha1.AnnotationInvitationUID]; ok {
		return uid
	}
	return nil
}

// unixNano is a moment as the policy compares it, Unix nanoseconds, or nil
// (null: no bound).
func unixNano(t *metav1.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixNano()
}

// scopeDoc is a RoomScope as plain JSON: names as a set, the selector as
// its matchLabels and matchExpressions, or null.
func scopeDoc(s v1alpha1.RoomScope) map[string]any {
	names := map[string]any{}
	for _, n := range s.Names {
		names[n] = true
	}
	var selector any // nil: no selector, which selects nothing
	if s.Selector != nil {
		matchLabels := map[string]any{}
		for k, v := range s.Selector.MatchLabels {
			matchLabels[k] = v
		}
		expressions := make([]any, 0, len(s.Selector.MatchExpressions))
		for _, e := range s.Selector.MatchExpressions {
			values := make([]any, 0, len(e.Values))
			for _, v := range e.Values {
				values = append(values, v)
			}
			expressions = append(expressions, map[string]any{"key": e.Key, "operator": string(e.Operator), "values": values})
		}
		selector = map[string]any{"matchLabels": matchLabels, "matchExpressions": expressions}
	}
	return map[string]any{"names": names, "selector": selector}
}

// Input converts a request decided at the moment now into the policy's
// input document: the fields of a SubjectAccessReview that the rules read,
// and now in Unix nanoseconds (the moment the webhook decides at; the
// index reads it from its clock).
func Input(r *authz.Request, now time.Time) map[string]any {
	groups := make([]any, 0, len(r.Groups))
	for _, g := range r.Groups {
		groups = append(groups, g)
	}
	extra := make(map[string]any, len(r.Extra))
	for key, values := range r.Extra {
		vs := make([]any, 0, len(values))
		for _, v := range values {
			vs = append(vs, v)
		}
		extra[key] = vs
	}
	return map[string]any{
		"user": r.User, "groups": groups, "extra": extra, "now": now.UnixNano(), "path": r.Path,
		"namespace": r.Namespace, "verb": r.Verb, "group": r.Group, "resource": r.Resource,
		"subresource": r.Subresource, "name": r.Name,
		"labelSelector": requirementsDoc(r.LabelSelector), "fieldSelector": requirementsDoc(r.FieldSelector),
	}
}

// requirementsDoc is a selector's requirements as plain JSON.
func requirementsDoc(reqs []authz.Requirement) []any {
	out := make([]any, 0, len(reqs))
	for _, req := range reqs {
		values := make([]any, 0, len(req.Values))
		for _, v := range req.Values {
			values = append(values, v)
		}
		out = append(out, map[string]any{"key": req.Key, "operator": req.Operator, "values": values})
	}
	return out
}

func room(name string, labels map[string]string) *v1alpha1.Room {
	return &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name, Labels: labels}}
}

// Every invitation is created at T0-60d and every link a day later, with
// the UID of its invitation in its invitation-uid annotation (NewWorld
// varies this for some).
var (
	invitationCreated = metav1.NewTime(T0.Add(-60 * 24 * time.Hour))
	linkCreated       = metav1.NewTime(T0.Add(-59 * 24 * time.Hour))
)

func invitationUID(name string) types.UID { return types.UID("invitation-" + name) }

func invitation(name, domain string, phase v1alpha1.InvitationPhase) *v1alpha1.PartnerInvitation {
	return &v1alpha1.PartnerInvitation{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name, UID: invitationUID(name), CreationTimestamp: invitationCreated},
		Spec:       v1alpha1.PartnerInvitationSpec{PartnerDomain: v1alpha1.Domain(domain)},
		Status:     v1alpha1.PartnerInvitationStatus{Phase: phase},
	}
}

func organization(domain string) *v1alpha1.PartnerOrganization {
	return &v1alpha1.PartnerOrganization{
		ObjectMeta: metav1.ObjectMeta{Name: domain},
		Spec:       v1alpha1.PartnerOrganizationSpec{Domain: v1alpha1.Domain(domain), DisplayName: domain},
	}
}

func partnerLink(name, domain string, phase v1alpha1.LinkPhase) *v1alpha1.PartnerLink {
	return &v1alpha1.PartnerLink{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name, CreationTimestamp: linkCreated,
			Annotations: map[string]string{v1alpha1.AnnotationInvitationUID: string(invitationUID(name))}},
		Spec:   v1alpha1.PartnerLinkSpec{Invitation: name, PartnerDomain: v1alpha1.Domain(domain)},
		Status: v1alpha1.PartnerLinkStatus{Phase: phase},
	}
}

func assignment(name, link string, rooms v1alpha1.RoomScope) *v1alpha1.RoomAssignment {
	return &v1alpha1.RoomAssignment{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name},
		Spec:       v1alpha1.RoomAssignmentSpec{PartnerLink: link, Rooms: rooms},
	}
}

func role(name, link string, perms []v1alpha1.Permission, assignments ...v1alpha1.RoleAssignment) *v1alpha1.PartnerRole {
	r := &v1alpha1.PartnerRole{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name},
		Spec:       v1alpha1.PartnerRoleSpec{PartnerLink: link, Permissions: perms, Assignments: assignments},
	}
	if name == v1alpha1.PrimaryAdminRoleName(link) {
		r.Spec.Builtin = v1alpha1.BuiltinPrimaryAdmin
	}
	return r
}

// changeRequest is the request <link>-change of a link (orphan-change for
// the link nowhere, which does not exist).
func changeRequest(link string) *v1alpha1.PartnerChangeRequest {
	name := link + "-change"
	if link == "nowhere" {
		name = "orphan-change"
	}
	return &v1alpha1.PartnerChangeRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name, Labels: map[string]string{v1alpha1.LabelPartnerLink: link}},
		Spec: v1alpha1.PartnerChangeRequestSpec{PartnerLink: link, Category: v1alpha1.CategoryRooms, Operation: v1alpha1.OperationUpdate,
			Target: v1alpha1.ChangeTarget{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Room", Name: "room-0"}, BaseResourceVersion: "1"},
	}
}

func subject(kind v1alpha1.SubjectKind, name string) v1alpha1.Subject {
	return v1alpha1.Subject{Kind: kind, Name: name}
}

func byLabels(labels map[string]string) v1alpha1.RoomScope {
	return v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchLabels: labels}}
}
