// Package deadline wakes a controller up at a moment in time, through the
// injected clock: an invitation is reconciled at its expiresAt, not polled.
// With a fake clock, tests step time and the timers fire.
package deadline

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// Scheduler holds at most one timer per object and turns each one that fires
// into a reconcile request for that object.
type Scheduler struct {
	clock  clock.WithDelayedExecution
	events chan event.GenericEvent

	mu     sync.Mutex
	timers map[types.NamespacedName]scheduled
}

type scheduled struct {
	at    time.Time
	timer clock.Timer
}

// New returns a Scheduler driven by clk.
func New(clk clock.WithDelayedExecution) *Scheduler {
	return &Scheduler{
		clock:  clk,
		events: make(chan event.GenericEvent, 1024),
		timers: map[types.NamespacedName]scheduled{},
	}
}

// Source is the controller source of the scheduler's wake-ups.
func (s *Scheduler) Source() source.Source {
	return source.Channel(s.events, &handler.EnqueueRequestForObject{})
}

// At asks for obj to be reconciled at when. It replaces an earlier deadline of
// the same object; asking again for the same moment keeps the running timer,
// so that reconciling twice arms one timer, not two.
func (s *Scheduler) At(obj client.Object, when time.Time) {
	key := client.ObjectKeyFromObject(obj)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.timers[key]; ok {
		if old.at.Equal(when) {
			return
		}
		old.timer.Stop()
	}
	// The event carries a copy of the key only: the object may have changed by then.
	wake := obj.DeepCopyObject().(client.Object)
	var timer clock.Timer
	timer = s.clock.AfterFunc(when.Sub(s.clock.Now()), func() {
		s.mu.Lock()
		if current, ok := s.timers[key]; ok && current.timer == timer {
			delete(s.timers, key)
		}
		s.mu.Unlock()
		s.events <- event.GenericEvent{Object: wake}
	})
	s.timers[key] = scheduled{at: when, timer: timer}
}

// Cancel drops the deadline of obj, if any.
func (s *Scheduler) Cancel(obj client.Object) {
	key := client.ObjectKeyFromObject(obj)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.timers[key]; ok {
		old.timer.Stop()
		delete(s.timers, key)
	}
}

// Pending is how many deadlines are armed.
func (s *Scheduler) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.timers)
}
