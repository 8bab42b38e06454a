package freshness

import (
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/roompro/partner-operator/internal/metrics"
)

// Marker is told the reason to deny partner users while the index is
// stale, and "" once it is current (authz.Index.SetStale).
type Marker interface {
	SetStale(reason string)
}

// Monitor keeps what Judge needs and tells the index its judgement. It
// learns of each heartbeat twice: when it is stamped, before the write, and
// when it comes back through the watch. Safe for concurrent use.
type Monitor struct {
	clock        clock.PassiveClock
	maxStaleness time.Duration
	index        Marker
	log          logr.Logger

	mu      sync.Mutex
	started time.Time
	// pending holds the heartbeats stamped and not yet seen, oldest first.
	pending []stamped
	// lastSeen is when the latest heartbeat seen was stamped, by this
	// process's clock.
	lastSeen time.Time
	judged   Judgement
}

// stamped is one heartbeat: the renewTime it carries, as it comes back
// (Unix microseconds, the precision of a MicroTime), and the clock's
// reading when it was stamped. Ages are taken from that reading, not from
// the wall time in the Lease, so that a step of the wall clock neither
// hides a stale index nor fakes one (a real clock's reading is monotonic).
type stamped struct {
	micros int64
	at     time.Time
}

// maxPending bounds the heartbeats remembered while none comes back. One
// forgotten and seen later is ignored: the index stays stale until a newer
// one comes back, which fails closed.
const maxPending = 64

// NewMonitor returns a monitor that has seen no heartbeat yet: the index is
// marked stale at once, until the first one comes back.
func NewMonitor(clk clock.PassiveClock, maxStaleness time.Duration, index Marker, log logr.Logger) *Monitor {
	m := &Monitor{clock: clk, maxStaleness: maxStaleness, index: index, log: log, started: clk.Now()}
	m.Check()
	return m
}

// Stamp returns the renewTime of the next heartbeat, and remembers it.
func (m *Monitor) Stamp() metav1.MicroTime {
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pending) == maxPending {
		m.pending = slices.Delete(m.pending, 0, 1)
	}
	m.pending = append(m.pending, stamped{micros: now.UnixMicro(), at: now})
	return metav1.NewMicroTime(now)
}

// Saw records a heartbeat that came back through the watch, by its
// renewTime, and judges again. A renewTime this monitor did not stamp, or
// saw already (an informer delivers the object again after a relist), is
// ignored: it proves nothing about the watch now.
func (m *Monitor) Saw(renewTime time.Time) {
	micros := renewTime.UnixMicro()
	m.mu.Lock()
	i := slices.IndexFunc(m.pending, func(s stamped) bool { return s.micros == micros })
	if i >= 0 {
		m.lastSeen = m.pending[i].at
		// It and every older one: an older one arriving later proves less.
		m.pending = slices.Delete(m.pending, 0, i+1)
	}
	m.mu.Unlock()
	if i >= 0 {
		m.Check()
	}
}

// Check judges the index now and tells it. The heartbeat loop calls it
// between heartbeats too, since a watch that stops delivering sends no
// event to judge on.
func (m *Monitor) Check() Judgement {
	m.mu.Lock()
	defer m.mu.Unlock()
	j := Judge(m.clock.Now(), m.started, m.lastSeen, m.maxStaleness)
	was := m.judged
	m.judged = j
	// Told on every check, not only on a change, so that the reason a
	// partner is given says how stale the index is now.
	m.index.SetStale(j.Reason(m.maxStaleness))
	metrics.IndexStalenessSeconds.Set(j.Age.Seconds())
	switch {
	case j.Stale && !was.Stale && was.Seen:
		metrics.IndexStaleTotal.Inc()
		m.log.Info("the authorization index is stale: denying partner requests until the watch delivers heartbeats again",
			"sinceLastHeartbeat", j.Age.String(), "maxStaleness", m.maxStaleness.String())
	case !j.Stale && was.Stale:
		m.log.Info("the authorization index is current: its watch delivers this replica's heartbeats",
			"sinceLastHeartbeat", j.Age.String())
	}
	return j
}

// Ready is a readiness check (healthz.Checker): it fails while the index
// is stale, so that a Service sends the apiserver's reviews to a replica
// whose index is current.
func (m *Monitor) Ready(*http.Request) error {
	if j := m.Check(); j.Stale {
		return errors.New(j.Reason(m.maxStaleness))
	}
	return nil
}
