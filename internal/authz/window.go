package authz

import (
	"math"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/lifecycle"
)

// This file holds time: role assignments that grant only inside a window
// (validFrom, validUntil) and relationships that end (a link's
// status.expiresAt). Both are decided against the index's clock when a
// request arrives, never by a reconcile: a grant's window is part of the
// grant, and a resolved caller remembers the interval of time in which the
// grants it kept are exactly the active ones (callers.go).

// window is the half-open interval [from, until) of Unix nanoseconds in
// which something grants. always is unbounded on both sides.
type window struct{ from, until int64 }

var always = window{from: math.MinInt64, until: math.MaxInt64}

// bounded reports whether the window ever starts or ends.
func (w window) bounded() bool { return w != always }

// contains reports whether the moment now is inside the window.
func (w window) contains(now int64) bool { return w.from <= now && now < w.until }

// windowOf is an assignment's window; an absent bound is no bound.
func windowOf(a v1alpha1.RoleAssignment) window {
	w := always
	if a.ValidFrom != nil {
		w.from = a.ValidFrom.UnixNano()
	}
	if a.ValidUntil != nil {
		w.until = a.ValidUntil.UnixNano()
	}
	return w
}

// linkUntil is the moment from which a link grants nothing: its expiresAt,
// unless its invitation extends it automatically (the operator then
// extends the relationship at that moment, and the partner keeps access
// without a gap). A link whose invitation is gone, or was replaced by
// another of the same name, ends at expiresAt, as the operator judges it
// (lifecycle.CreatedFor): the index assumes no extension the operator would
// not make.
func linkUntil(l *v1alpha1.PartnerLink, invitation *v1alpha1.PartnerInvitation) int64 {
	if l.Status.ExpiresAt == nil {
		return math.MaxInt64
	}
	if invitation != nil && lifecycle.CreatedFor(invitation, l) && invitation.Spec.Relationship != nil && invitation.Spec.Relationship.AutoExtend {
		return math.MaxInt64
	}
	return l.Status.ExpiresAt.UnixNano()
}

// effective is the window in which a grant grants: its assignment's,
// ended by its link's end.
func (g *grant) effective() window {
	return window{from: g.window.from, until: min(g.window.until, g.link.until)}
}

// activeAt keeps the grants active at now and returns the interval around
// now in which exactly those are active: from the last boundary of any
// grant at or before now to the first after it.
func activeAt(grants []*grant, now int64) ([]*grant, window) {
	valid := always
	kept := grants[:0]
	for _, g := range grants {
		w := g.effective()
		switch {
		case now < w.from:
			valid.until = min(valid.until, w.from)
		case now < w.until:
			kept = append(kept, g)
			valid.from = max(valid.from, w.from)
			valid.until = min(valid.until, w.until)
		default:
			valid.from = max(valid.from, w.until)
		}
	}
	return kept, valid
}
