// Package freshness tells whether a replica's authorization index is
// current. The index is fed by the manager's informers; when their watch of
// the apiserver stops delivering (a connection that silently hangs is the
// hard case: nothing errors), the index keeps answering from what it last
// saw, and a revoked partner would keep its access. So each replica writes
// a heartbeat (a Lease of its own, every Period) and watches it come back
// through the same cache, over the same connection as the index's
// informers. The index is as far behind as the latest heartbeat seen is
// old; past MaxStaleness, partner users are denied until heartbeats come
// back.
//
// judge.go is the judgement, pure; monitor.go keeps its inputs and tells the
// index; heartbeat.go writes and watches the Lease.
package freshness

import (
	"fmt"
	"time"
)

// Defaults of Options.
const (
	DefaultPeriod       = time.Second
	DefaultMaxStaleness = 5 * time.Second
)

// Judgement is the freshness of the index at one moment.
type Judgement struct {
	// Age is how far behind the cluster the index may be: the time since
	// the replica wrote the latest heartbeat it has seen come back, or,
	// before the first, since it started waiting for one.
	Age time.Duration
	// Seen: a heartbeat has come back at least once.
	Seen bool
	// Stale: no heartbeat has come back yet, or the latest is older than the
	// maximum staleness. Partner users are denied.
	Stale bool
}

// Judge judges the index at now, from when the replica started waiting for
// heartbeats, when it wrote the latest one it has seen come back (zero for
// none) and the maximum staleness allowed. Until a first heartbeat comes
// back, nothing shows that the watch delivers: stale.
func Judge(now, started, lastSeen time.Time, maxStaleness time.Duration) Judgement {
	if lastSeen.IsZero() {
		return Judgement{Age: max(now.Sub(started), 0), Stale: true}
	}
	age := max(now.Sub(lastSeen), 0)
	return Judgement{Age: age, Seen: true, Stale: age > maxStaleness}
}

// Reason is what a partner user denied by a stale index is told (the
// apiserver puts it in its Forbidden message), and the readiness check's
// error. "" for an index that is current.
func (j Judgement) Reason(maxStaleness time.Duration) string {
	switch {
	case !j.Stale:
		return ""
	case !j.Seen:
		return fmt.Sprintf("the partner-operator's decision index is stale: this replica has not yet seen its heartbeat come back through its watch of the apiserver (waited %s), so partner requests are denied", j.Age.Round(100*time.Millisecond))
	}
	return fmt.Sprintf("the partner-operator's decision index is stale: its watch of the apiserver last delivered this replica's heartbeat %s ago, more than the %s allowed, so a recent revocation may not have reached it; partner requests are denied until the watch catches up",
		j.Age.Round(100*time.Millisecond), maxStaleness)
}
