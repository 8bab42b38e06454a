package authz

import (
	"time"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// Holding is one grant a partner user holds on a link: its permissions, on
// the link's whole scope (Scope nil) or on the rooms Scope selects within it.
// A holding of a just-in-time assignment ends at Until: what the holder
// grants must end by then too, or a window would outlive itself.
type Holding struct {
	Permissions []v1alpha1.Permission
	Scope       *v1alpha1.RoomScope
	// Until is the assignment's validUntil; nil: no end of its own (the
	// link's end ends every grant on it alike, so it is not counted).
	Until *time.Time
}

// Holdings returns what a well-formed partner user (with its groups) holds
// on one link of a namespace, for the admission webhooks: a role writer may
// write roles only of a link it holds roles.modify on, and grant only what
// it holds (the RBAC escalation rule). Only what is active now counts.
// Anyone else holds nothing.
func (x *Index) Holdings(namespace, user string, groups []string, link string) []Holding {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.synced {
		return nil
	}
	c := x.caller(&Request{User: user, Groups: groups, Namespace: namespace})
	var out []Holding
	for _, g := range c.grants {
		if g.link.name != link {
			continue
		}
		h := Holding{}
		for _, p := range v1alpha1.AllPermissions {
			if g.permissions.has(p) {
				h.Permissions = append(h.Permissions, p)
			}
		}
		if g.scope != nil {
			h.Scope = g.source.DeepCopy()
		}
		if g.window.until != always.until {
			until := time.Unix(0, g.window.until).UTC()
			h.Until = &until
		}
		out = append(out, h)
	}
	return out
}
