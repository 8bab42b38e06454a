package deadline

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func inv(name string) *v1alpha1.PartnerInvitation {
	return &v1alpha1.PartnerInvitation{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "t"}}
}

func TestFiresAtTheDeadlineAndNotBefore(t *testing.T) {
	start := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	s := New(clk)
	s.At(inv("a"), start.Add(time.Hour))
	s.At(inv("a"), start.Add(time.Hour)) // idempotent: still one timer

	clk.Step(time.Hour - time.Nanosecond)
	select {
	case e := <-s.events:
		t.Fatalf("fired early for %s", e.Object.GetName())
	case <-time.After(50 * time.Millisecond):
	}
	clk.Step(time.Nanosecond)
	select {
	case e := <-s.events:
		if e.Object.GetName() != "a" || e.Object.GetNamespace() != "t" {
			t.Errorf("woke %s/%s", e.Object.GetNamespace(), e.Object.GetName())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not fire at the deadline")
	}
	select {
	case <-s.events:
		t.Fatal("fired twice")
	case <-time.After(50 * time.Millisecond):
	}
	if s.Pending() != 0 {
		t.Errorf("Pending = %d after firing, want 0", s.Pending())
	}
}

func TestRescheduleAndCancel(t *testing.T) {
	start := time.Now()
	clk := clocktesting.NewFakeClock(start)
	s := New(clk)
	s.At(inv("a"), start.Add(time.Hour))
	s.At(inv("a"), start.Add(2*time.Hour)) // replaces the first
	s.At(inv("b"), start.Add(time.Hour))
	s.Cancel(inv("b"))

	clk.Step(90 * time.Minute)
	select {
	case e := <-s.events:
		t.Fatalf("a replaced or cancelled deadline fired for %s", e.Object.GetName())
	case <-time.After(50 * time.Millisecond):
	}
	clk.Step(30 * time.Minute)
	select {
	case e := <-s.events:
		if e.Object.GetName() != "a" {
			t.Errorf("woke %s, want a", e.Object.GetName())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the rescheduled deadline did not fire")
	}
}
