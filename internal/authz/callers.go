package authz

import (
	"hash/maphash"
	"slices"
	"strings"
	"sync/atomic"
)

// callerSlots is the number of callers an index remembers at once; a
// caller whose slot another took is resolved again, which costs one
// allocation. 4096 pointers are 32 KiB.
const callerSlots = 4096

// callerCache remembers what the index resolved for a caller: a namespace,
// user and groups exactly as the authenticator sent them. Resolving parses
// the UPN, checks its domain and probes the user and each group of its own
// domain; with the cache a decision hashes the caller and compares it
// instead, so a group member's decision costs what a user's does.
//
// The cache is direct-mapped, one entry per slot, replaced on a miss.
// Entries never change once published, so deciders share them through
// atomic pointers under the index's read lock. An entry is valid for one
// generation of the index (see Index.apply).
type callerCache struct {
	seed  maphash.Seed
	slots []atomic.Pointer[caller] // a power of two of them
}

// caller is one resolved caller.
type caller struct {
	generation uint64
	namespace  string
	user       string
	groups     []string
	// class is what the username is to the partner rules, and id what
	// Classify read of it (id.Domain: the partner domain when Partner or
	// Malformed). id holds the entry's own copies of the user and groups.
	class Class
	id    Identity
	// grants held in the namespace by the user and its own-domain groups.
	grants []*grant
	// tenant is the namespace's (noTenant when the index held nothing of
	// it), so that a ticket's room costs one map probe, not two. Tenants
	// are never dropped, and one created later than this entry holds no
	// grant of the caller (a grant comes with a role, which starts a new
	// generation): every rule that reads it asks for a grant first.
	tenant *tenant
	// policy is the session policy of the caller's domain in the
	// namespace (nil: none). An invitation change starts a new generation.
	policy *sessionPolicy
	// timed is set when one of the caller's grants starts or ends at some
	// moment (window.go); grants then holds only those active at the
	// moment of resolving, and valid is the interval in which that stays
	// true. An entry without timed grants never reads the clock.
	timed bool
	valid window
}

// newCallerCache returns a cache of slots slots, a power of two.
func newCallerCache(slots int) *callerCache {
	return &callerCache{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[caller], slots)}
}

// slot returns the slot of the request's caller.
func (c *callerCache) slot(r *Request) *atomic.Pointer[caller] {
	h := maphash.String(c.seed, r.User)
	h = combine(h, maphash.String(c.seed, r.Namespace))
	for _, g := range r.Groups {
		h = combine(h, maphash.String(c.seed, g))
	}
	return &c.slots[h&uint64(len(c.slots)-1)]
}

// combine mixes the hash of one more part into h, order-sensitively (the
// boost hash_combine): groups [a b] and [b a] land in different slots, and
// either way the entry's comparison decides.
func combine(h, part uint64) uint64 { return h ^ (part + 0x9e3779b97f4a7c15 + h<<6 + h>>2) }

// is reports whether e resolved this request's caller in this generation.
func (e *caller) is(generation uint64, r *Request) bool {
	return e.generation == generation && e.user == r.User && e.namespace == r.Namespace && slices.Equal(e.groups, r.Groups)
}

// instant is the moment r is decided at, in Unix nanoseconds: its At, or
// the index's clock now.
func (x *Index) instant(r *Request) int64 {
	if r.At.IsZero() {
		return x.clock.Now().UnixNano()
	}
	return r.At.UnixNano()
}

// caller returns the request's resolved caller, from the cache or resolved
// now. It must be called under x.mu's read lock.
func (x *Index) caller(r *Request) *caller {
	slot := x.callers.slot(r)
	if e := slot.Load(); e != nil && e.is(x.generation, r) && (!e.timed || e.valid.contains(x.instant(r))) {
		return e
	}
	e := x.resolve(r)
	slot.Store(e)
	return e
}

// resolve computes what caller caches.
func (x *Index) resolve(r *Request) *caller {
	e := copyCaller(r)
	e.generation = x.generation
	id, class := Classify(e.user, e.groups, x.isPartnerDomain)
	e.class, e.id = class, id
	e.tenant = x.tenantOf(r.Namespace)
	if class != Partner {
		return e
	}
	e.policy = e.tenant.policies[id.Domain]
	// Grants are filed under the kind and domain of their member
	// (memberKey), and ownGroup keeps the groups of the user's domain, so
	// every grant found here is of the user's domain.
	e.grants = append(e.grants, x.subjects[subjectKey{r.Namespace, userSubject, id.Domain, id.User}]...)
	for _, raw := range id.groups {
		if key, own := id.ownGroup(raw); own {
			e.grants = append(e.grants, x.subjects[subjectKey{r.Namespace, groupSubject, id.Domain, key}]...)
		}
	}
	// e.grants is the entry's own slice (appended to nil), so activeAt may
	// filter it in place.
	if slices.ContainsFunc(e.grants, func(g *grant) bool { return g.effective().bounded() }) {
		e.timed = true
		e.grants, e.valid = activeAt(e.grants, x.instant(r))
	}
	return e
}

// copyCaller returns an entry for the request's caller that owns its
// strings: the request's may share a buffer the webhook reuses, or pin a
// whole request body. They are copied into one string, in one allocation.
func copyCaller(r *Request) *caller {
	n := len(r.Namespace) + len(r.User)
	for _, g := range r.Groups {
		n += len(g)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(r.Namespace)
	b.WriteString(r.User)
	for _, g := range r.Groups {
		b.WriteString(g)
	}
	s := b.String()
	e := &caller{namespace: s[:len(r.Namespace)]}
	s = s[len(r.Namespace):]
	e.user, s = s[:len(r.User)], s[len(r.User):]
	if len(r.Groups) > 0 {
		e.groups = make([]string, len(r.Groups))
		for i, g := range r.Groups {
			e.groups[i], s = s[:len(g)], s[len(g):]
		}
	}
	return e
}
