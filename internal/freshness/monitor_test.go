package freshness

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/roompro/partner-operator/internal/metrics"
)

// marker records what the index is told.
type marker struct {
	mu     sync.Mutex
	reason string
}

func (m *marker) SetStale(reason string) { m.mu.Lock(); defer m.mu.Unlock(); m.reason = reason }

func (m *marker) stale() string { m.mu.Lock(); defer m.mu.Unlock(); return m.reason }

func TestMonitor(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC))
	index := &marker{}
	m := NewMonitor(clk, 5*time.Second, index, logr.Discard())
	expect := func(what string, stale bool) {
		t.Helper()
		if got := index.stale(); (got != "") != stale {
			t.Fatalf("%s: the index is told %q, want stale=%v", what, got, stale)
		}
		if err := m.Ready(nil); (err != nil) != stale {
			t.Fatalf("%s: readiness %v, want failing=%v", what, err, stale)
		}
	}
	expect("before any heartbeat", true)
	if r := index.stale(); !strings.Contains(r, "not yet seen") {
		t.Errorf("reason before the first heartbeat: %q", r)
	}

	first := m.Stamp()
	clk.Step(300 * time.Millisecond) // the write and the watch take a while
	m.Saw(first.Time)
	expect("once the first heartbeat is back", false)

	clk.Step(4700 * time.Millisecond)
	m.Check()
	expect("5s after it was written", false)

	staleBefore := testutil.ToFloat64(metrics.IndexStaleTotal)
	lost := m.Stamp() // written, never seen: the watch stopped
	clk.Step(time.Millisecond)
	m.Check()
	expect("5.001s after the last heartbeat seen", true)
	if r := index.stale(); !strings.Contains(r, "5s ago") {
		t.Errorf("reason %q does not say how stale the index is", r)
	}
	if n := testutil.ToFloat64(metrics.IndexStaleTotal) - staleBefore; n != 1 {
		t.Errorf("stale transitions counted: %v, want 1", n)
	}
	if g := testutil.ToFloat64(metrics.IndexStalenessSeconds); g != 5.001 {
		t.Errorf("staleness gauge %v, want 5.001", g)
	}

	// What was seen already, or never stamped, proves nothing.
	clk.Step(time.Second)
	m.Saw(first.Time)
	expect("the first heartbeat delivered again", true)
	m.Saw(clk.Now())
	expect("a heartbeat this monitor did not stamp", true)

	// The watch delivers again: a heartbeat written during the outage counts
	// from when it was written; an older one arriving after it is ignored.
	late := m.Stamp()
	clk.Step(2 * time.Second)
	m.Saw(late.Time)
	expect("a heartbeat written 2s ago came back", false)
	m.Saw(lost.Time)
	clk.Step(3500 * time.Millisecond)
	m.Check()
	expect("an older heartbeat arriving late does not count", true)
}

// The monitor remembers a bounded number of heartbeats while none comes
// back; one it forgot is ignored when it does.
func TestMonitorForgetsTheOldestUnseenHeartbeats(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC))
	index := &marker{}
	m := NewMonitor(clk, 5*time.Second, index, logr.Discard())
	oldest := m.Stamp()
	for range maxPending {
		clk.Step(time.Millisecond)
		m.Stamp()
	}
	m.Saw(oldest.Time)
	if index.stale() == "" {
		t.Fatal("a forgotten heartbeat made the index current")
	}
	if len(m.pending) != maxPending {
		t.Errorf("%d heartbeats remembered, want at most %d", len(m.pending), maxPending)
	}
}
