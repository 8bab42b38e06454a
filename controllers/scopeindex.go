package controllers

import (
	"context"
	"sync"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/scope"
)

// roomCountDelay coalesces the recounts that room events cause. A room event
// changes only the counts in a link's or an assignment's status; while rooms
// are created or relabelled by the thousand, recounting each object once per
// delay instead of once per room keeps the apiserver's writes for the rooms
// themselves. The delaying queue keeps one pending request per object.
const roomCountDelay = 2 * time.Second

// scopeIndex files the scopes of a controller's objects by anchor, so that a
// room event wakes only the objects that could select the room. The
// controller's own watch of the objects files them before it enqueues them,
// so an object missing here when a room event arrives is reconciled later
// and then reads the room from the cache.
type scopeIndex struct {
	mu         sync.RWMutex
	matchers   map[client.ObjectKey]*scope.Matcher
	namespaces map[string]*scope.Anchors[string] // object names
}

func newScopeIndex() *scopeIndex {
	return &scopeIndex{matchers: map[client.ObjectKey]*scope.Matcher{}, namespaces: map[string]*scope.Anchors[string]{}}
}

// set files (m non-nil) or unfiles (m nil) the scope of the object at key.
func (s *scopeIndex) set(key client.ObjectKey, m *scope.Matcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	anchors := s.namespaces[key.Namespace]
	if anchors == nil {
		anchors = scope.NewAnchors[string]()
		s.namespaces[key.Namespace] = anchors
	}
	if old := s.matchers[key]; old != nil {
		anchors.Remove(key.Name, old)
		delete(s.matchers, key)
	}
	if m != nil {
		anchors.Add(key.Name, m)
		s.matchers[key] = m
	}
}

// filing is the handler of the objects themselves: it files each one's scope
// (compiled by scopeOf; nil selects nothing) and enqueues it.
func (s *scopeIndex) filing(scopeOf func(client.Object) *scope.Matcher) handler.EventHandler {
	file := func(obj client.Object, present bool, q queue) {
		key := client.ObjectKeyFromObject(obj)
		if present {
			s.set(key, scopeOf(obj))
		} else {
			s.set(key, nil)
		}
		q.Add(ctrl.Request{NamespacedName: key})
	}
	return handler.Funcs{
		CreateFunc:  func(_ context.Context, e event.CreateEvent, q queue) { file(e.Object, true, q) },
		UpdateFunc:  func(_ context.Context, e event.UpdateEvent, q queue) { file(e.ObjectNew, true, q) },
		DeleteFunc:  func(_ context.Context, e event.DeleteEvent, q queue) { file(e.Object, false, q) },
		GenericFunc: func(_ context.Context, e event.GenericEvent, q queue) { file(e.Object, true, q) },
	}
}

// selecting is the handler of rooms: it enqueues the objects whose scopes
// could select the room, before or after the event, after roomCountDelay.
func (s *scopeIndex) selecting() handler.EventHandler {
	enqueue := func(q queue, rooms ...client.Object) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		for _, obj := range rooms {
			room := obj.(*v1alpha1.Room)
			if anchors := s.namespaces[room.Namespace]; anchors != nil {
				anchors.Candidates(room, func(name string) {
					q.AddAfter(ctrl.Request{NamespacedName: client.ObjectKey{Namespace: room.Namespace, Name: name}}, roomCountDelay)
				})
			}
		}
	}
	return handler.Funcs{
		CreateFunc:  func(_ context.Context, e event.CreateEvent, q queue) { enqueue(q, e.Object) },
		UpdateFunc:  func(_ context.Context, e event.UpdateEvent, q queue) { enqueue(q, e.ObjectOld, e.ObjectNew) },
		DeleteFunc:  func(_ context.Context, e event.DeleteEvent, q queue) { enqueue(q, e.Object) },
		GenericFunc: func(_ context.Context, e event.GenericEvent, q queue) { enqueue(q, e.Object) },
	}
}
