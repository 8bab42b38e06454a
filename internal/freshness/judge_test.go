package freshness

import (
	"strings"
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC)
	const maxStaleness = 5 * time.Second
	for _, c := range []struct {
		name               string
		now, started, seen time.Time
		want               Judgement
	}{
		{"nothing seen yet, at once", t0, t0, time.Time{}, Judgement{Age: 0, Stale: true}},
		{"nothing seen yet, later", t0.Add(7 * time.Second), t0, time.Time{}, Judgement{Age: 7 * time.Second, Stale: true}},
		{"just seen", t0.Add(time.Second), t0, t0.Add(time.Second), Judgement{Age: 0, Seen: true}},
		{"at the maximum", t0.Add(6 * time.Second), t0, t0.Add(time.Second), Judgement{Age: 5 * time.Second, Seen: true}},
		{"past the maximum", t0.Add(6*time.Second + time.Millisecond), t0, t0.Add(time.Second),
			Judgement{Age: 5*time.Second + time.Millisecond, Seen: true, Stale: true}},
		// A heartbeat stamped after now (a clock that went back) is no
		// older than now.
		{"seen in the future", t0, t0, t0.Add(time.Second), Judgement{Age: 0, Seen: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Judge(c.now, c.started, c.seen, maxStaleness); got != c.want {
				t.Errorf("Judge = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestReasonNamesTheStaleness(t *testing.T) {
	if r := (Judgement{Seen: true, Age: time.Second}).Reason(5 * time.Second); r != "" {
		t.Errorf("a current index has the reason %q, want none", r)
	}
	stale := Judgement{Seen: true, Stale: true, Age: 7260 * time.Millisecond}.Reason(5 * time.Second)
	for _, want := range []string{"stale", "7.3s ago", "more than the 5s allowed"} {
		if !strings.Contains(stale, want) {
			t.Errorf("reason %q does not say %q", stale, want)
		}
	}
	if r := (Judgement{Stale: true, Age: time.Second}).Reason(5 * time.Second); !strings.Contains(r, "stale") || !strings.Contains(r, "not yet seen") {
		t.Errorf("reason before the first heartbeat %q, want it to say the index is stale and no heartbeat was seen", r)
	}
}
