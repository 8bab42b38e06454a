package authz

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/utils/clock"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// Index holds what decisions need, fed by informer event handlers. Decide
// reads it under a read lock: a room-scoped decision is one probe for the
// caller, whose grants the index remembers (callers.go), and one for the room
// per grant, whatever the number of rooms, partners and users. Updates pay
// instead, recomputing only what the changed object can affect (derived.go).
type Index struct {
	mu     sync.RWMutex
	synced bool
	// stale, when set, is why the index may be behind the cluster (its
	// informers' watch is not delivering): partner users are denied with
	// it. An atomic pointer, not a field under mu, so that a decision pays
	// one load for it and the freshness monitor never waits for the lock.
	stale atomic.Pointer[string]
	// tenantManagerGroup: members of <domain>:<tenantManagerGroup> are the
	// partner's tenant managers.
	tenantManagerGroup string
	// domainRefs holds, per partner domain, the PartnerOrganization that
	// registers it and the links that name it anywhere in the cluster: what
	// makes a UPN a partner user. Invitations do not count: any tenant may
	// write one, and no tenant may turn another tenant's staff into partners.
	// A link does count: admission creates one only for a registered domain,
	// so a link without its registration exists only when the registration
	// was deleted in a race, and keeping the domain a partner's fails closed.
	domainRefs map[string]*partnerDomain
	tenants    map[string]*tenant
	// subjects holds, per namespace and subject, the grants it holds.
	subjects map[subjectKey][]*grant
	// generation counts the changes that can change what a caller resolves
	// to; callers remembers the resolutions of the current generation.
	generation uint64
	callers    *callerCache
	// clock is what role windows and relationship ends are decided
	// against, read only for callers with a grant that starts or ends.
	clock clock.PassiveClock
}

// permissionSet is a bit set over v1alpha1.AllPermissions.
type permissionSet uint32

// bitOf is the bit of a permission: its position in v1alpha1.AllPermissions.
// A switch, not a map: it is on the path of every decision.
func bitOf(p v1alpha1.Permission) permissionSet {
	switch p {
	case v1alpha1.RoomsView:
		return 1 << 0
	case v1alpha1.RoomsModify:
		return 1 << 1
	case v1alpha1.RoomsResetKey:
		return 1 << 2
	case v1alpha1.RoomsDownloadKey:
		return 1 << 3
	case v1alpha1.RoomsUnenroll:
		return 1 << 4
	case v1alpha1.RoomsCreate:
		return 1 << 5
	case v1alpha1.GroupsView:
		return 1 << 6
	case v1alpha1.GroupsModify:
		return 1 << 7
	case v1alpha1.GroupsCreate:
		return 1 << 8
	case v1alpha1.UpdateRingsView:
		return 1 << 9
	case v1alpha1.UpdateRingsModify:
		return 1 << 10
	case v1alpha1.ReportsView:
		return 1 << 11
	case v1alpha1.TicketsCreate:
		return 1 << 12
	case v1alpha1.TicketsView:
		return 1 << 13
	case v1alpha1.TicketsUpdate:
		return 1 << 14
	case v1alpha1.SettingsView:
		return 1 << 15
	case v1alpha1.SettingsModify:
		return 1 << 16
	case v1alpha1.RolesView:
		return 1 << 17
	case v1alpha1.RolesModify:
		return 1 << 18
	}
	return 0 // not a permission of the matrix: holds nothing
}

func (s permissionSet) has(p v1alpha1.Permission) bool { b := bitOf(p); return b != 0 && s&b != 0 }

// Option configures an Index.
type Option func(*Index)

// WithTenantManagerGroup sets the group suffix of tenant managers (default
// DefaultTenantManagerGroup).
func WithTenantManagerGroup(group string) Option {
	return func(x *Index) {
		if group != "" {
			x.tenantManagerGroup = group
		}
	}
}

// WithClock sets the clock that windows and relationship ends are decided
// against (default: the real clock).
func WithClock(c clock.PassiveClock) Option {
	return func(x *Index) {
		if c != nil {
			x.clock = c
		}
	}
}

// Clock is the clock the index decides windows and relationship ends by:
// a caller that reads it once per request passes the reading in
// Request.At.
func (x *Index) Clock() clock.PassiveClock { return x.clock }

// NewIndex returns an empty index that answers Deny to partner users until
// SetSynced(true).
func NewIndex(opts ...Option) *Index {
	x := &Index{
		domainRefs:         map[string]*partnerDomain{},
		tenants:            map[string]*tenant{},
		subjects:           map[subjectKey][]*grant{},
		tenantManagerGroup: DefaultTenantManagerGroup,
		callers:            newCallerCache(callerSlots),
		clock:              clock.RealClock{},
	}
	for _, o := range opts {
		o(x)
	}
	return x
}

// SetSynced marks whether the index holds every object of the cluster (the
// informers have synced). Until then partner users are denied: fail closed.
func (x *Index) SetSynced(synced bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.synced = synced
}

// Synced reports whether SetSynced(true) was called.
func (x *Index) Synced() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.synced
}

// SetStale marks the index as possibly behind the cluster, with the reason
// partner users are denied until SetStale("") marks it current again. The
// customer's staff keep getting no opinion: the index still tells partner
// domains from others, as of the last change it saw.
func (x *Index) SetStale(reason string) {
	if reason == "" {
		x.stale.Store(nil)
		return
	}
	x.stale.Store(&reason)
}

// Stale returns the reason SetStale gave, or "" while the index is current.
func (x *Index) Stale() string {
	if reason := x.stale.Load(); reason != nil {
		return *reason
	}
	return ""
}

// IsPartnerDomain reports whether a PartnerOrganization registers the
// domain or a link names it.
// Until the index has synced it answers true for every domain: callers that
// treat partners more strictly than the customer's staff then fail closed.
func (x *Index) IsPartnerDomain(domain string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, partner := x.domainRefs[strings.ToLower(domain)]
	return partner || !x.synced
}

// isPartnerDomain reports whether a lower-case domain is a partner domain.
// It must be called under x.mu.
func (x *Index) isPartnerDomain(domain string) bool {
	_, ok := x.domainRefs[domain]
	return ok
}

// Upsert adds or replaces an object of one of the kinds the index keeps.
// Other kinds are ignored.
func (x *Index) Upsert(obj any) { x.apply(obj, false) }

// Delete removes an object from the index.
func (x *Index) Delete(obj any) { x.apply(obj, true) }

func (x *Index) apply(obj any, remove bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	// A room changes only the room sets that grants read when they decide
	// (grant.covers) and the rooms of its update ring, a change request
	// only which link it belongs to, and a ticket or report only which room
	// it is about, never which grants a caller holds: resolved callers stay
	// valid. Every other kind may change them.
	switch obj.(type) {
	case *v1alpha1.Room, *v1alpha1.PartnerChangeRequest, *v1alpha1.Ticket, *v1alpha1.RoomReport:
	default:
		x.generation++
	}
	switch o := obj.(type) {
	case *v1alpha1.PartnerOrganization:
		x.setDomainRef(string(o.Spec.Domain), "porg/"+o.Name, !remove)
	case *v1alpha1.PartnerInvitation:
		// Invitations make no domain a partner's (see domainRefs):
		// tenant-manager rules read them, and session policies come from
		// them.
		x.tenant(o.Namespace).setInvitation(o, remove)
	case *v1alpha1.PartnerLink:
		x.setDomainRef(string(o.Spec.PartnerDomain), "link/"+o.Namespace+"/"+o.Name, !remove)
		x.tenant(o.Namespace).setLink(o, remove)
	case *v1alpha1.RoomAssignment:
		x.tenant(o.Namespace).setAssignment(o, remove)
	case *v1alpha1.PartnerRole:
		x.tenant(o.Namespace).setRole(o, remove)
	case *v1alpha1.Room:
		x.tenant(o.Namespace).setRoom(o, remove)
	case *v1alpha1.PartnerChangeRequest:
		// Only its link: spec.partnerLink is immutable (CEL), so a request
		// never moves to another link.
		put(x.tenant(o.Namespace).changeRequests, o.Name, o.Spec.PartnerLink, remove)
	case *v1alpha1.Ticket:
		// Only its room: spec.room is immutable (CEL), so a ticket never
		// moves to another room; which partners reach it follows the room.
		put(x.tenant(o.Namespace).tickets, o.Name, o.Spec.Room, remove)
	case *v1alpha1.RoomReport:
		put(x.tenant(o.Namespace).reports, o.Name, o.Spec.Room, remove)
	}
}

func (x *Index) tenant(ns string) *tenant {
	t, ok := x.tenants[ns]
	if !ok {
		t = newTenant(ns, x.subjects)
		x.tenants[ns] = t
	}
	return t
}

// setDomainRef records (or drops) that ref names the domain. The domain of
// registrations and links is immutable, so a ref never moves.
func (x *Index) setDomainRef(domain, ref string, present bool) {
	domain = strings.ToLower(domain)
	d := x.domainRefs[domain]
	if present {
		if d == nil {
			d = newPartnerDomain(domain)
			x.domainRefs[domain] = d
		}
		d.refs[ref] = struct{}{}
		return
	}
	if d == nil {
		return
	}
	delete(d.refs, ref)
	if len(d.refs) == 0 {
		delete(x.domainRefs, domain)
	}
}

// partnerDomain is a domain a registration or a link names.
type partnerDomain struct {
	domain string
	refs   map[string]struct{} // "porg/<name>" and "link/<ns>/<name>"
	// accessLabel is the label of the rooms the partner may reach, and
	// listHint denies a list of rooms without it, naming the selector to
	// use. Both are built once here, not on every list, as are the hints
	// of the lists of tickets and reports.
	accessLabel, listHint            string
	ticketsListHint, reportsListHint string
}

func newPartnerDomain(domain string) *partnerDomain {
	label := v1alpha1.AccessLabel(domain)
	return &partnerDomain{
		domain:      domain,
		refs:        map[string]struct{}{},
		accessLabel: label,
		listHint:    fmt.Sprintf("list rooms with the label selector %s (kubectl get rooms -l %s)", label, label),
		ticketsListHint: fmt.Sprintf("list tickets with the label selector %s=<room> (kubectl get tickets -l %s=<room>), or, when the caller's roles cover all the partner's rooms, %s",
			v1alpha1.LabelRoom, v1alpha1.LabelRoom, label),
		reportsListHint: fmt.Sprintf("list room reports with the label selector %s=<room> (kubectl get roomreports -l %s=<room>), or, when the caller's roles cover all the partner's rooms, %s",
			v1alpha1.LabelRoom, v1alpha1.LabelRoom, label),
	}
}
