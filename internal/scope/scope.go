// Package scope decides which rooms a RoomScope selects and which partners may
// reach a room. It is pure: no client, no I/O, so the controllers and their
// tests share one definition of "in scope".
package scope

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// Matcher is a compiled RoomScope.
type Matcher struct {
	names    map[string]struct{}
	selector labels.Selector // nil when the scope has no selector
	anchor   Anchor
}

// Anchor tells an index which rooms a scope can select without testing every
// room: the rooms it names and, when Label is set, the rooms that carry it
// (every room its selector selects does). Any means the selector can select
// rooms without a common label, so every room is a candidate.
type Anchor struct {
	Names []string
	Label *Label
	Any   bool
}

// Label is one label, key and value.
type Label struct{ Key, Value string }

// Anchor returns where the rooms of the scope can be found.
func (m *Matcher) Anchor() Anchor { return m.anchor }

// anchorOf picks, of a selector, one label that every selected room carries:
// the first matchLabels key in order, else an In expression of one value.
func anchorOf(s *metav1.LabelSelector) (*Label, bool) {
	if len(s.MatchLabels) > 0 {
		keys := slices.Sorted(maps.Keys(s.MatchLabels))
		return &Label{Key: keys[0], Value: s.MatchLabels[keys[0]]}, true
	}
	for _, e := range s.MatchExpressions {
		if e.Operator == metav1.LabelSelectorOpIn && len(e.Values) == 1 {
			return &Label{Key: e.Key, Value: e.Values[0]}, true
		}
	}
	return nil, false
}

// Compile turns a RoomScope into a Matcher. An invalid selector is an error;
// the CRD and the webhook reject those, so it means a stale or foreign object.
func Compile(s v1alpha1.RoomScope) (*Matcher, error) {
	m := &Matcher{names: make(map[string]struct{}, len(s.Names))}
	for _, n := range s.Names {
		m.names[n] = struct{}{}
	}
	m.anchor.Names = slices.Clone(s.Names)
	if s.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(s.Selector)
		if err != nil {
			return nil, fmt.Errorf("invalid room selector: %w", err)
		}
		m.selector = sel
		label, ok := anchorOf(s.Selector)
		m.anchor.Label, m.anchor.Any = label, !ok
	}
	return m, nil
}

// Matches reports whether the scope selects the room: by name, or by labels.
func (m *Matcher) Matches(room *v1alpha1.Room) bool {
	if _, ok := m.names[room.Name]; ok {
		return true
	}
	return m.selector != nil && m.selector.Matches(labels.Set(room.Labels))
}

// MissingNames returns the names of the scope that are not among the
// present rooms' names, sorted and without repeats.
func MissingNames(s v1alpha1.RoomScope, present map[string]struct{}) []string {
	var missing []string
	for _, n := range s.Names {
		if _, ok := present[n]; !ok {
			missing = append(missing, n)
		}
	}
	slices.Sort(missing)
	return slices.Compact(missing)
}

// Reach is one active link's assignment: the partner domain it gives rooms to
// and the rooms it selects.
type Reach struct {
	Domain  string
	Matcher *Matcher
}

// PartnersOf returns the sorted, distinct domains whose reach selects
// the room: the partners that may reach it.
func PartnersOf(room *v1alpha1.Room, reach []Reach) []string {
	var domains []string
	for _, g := range reach {
		if !slices.Contains(domains, g.Domain) && g.Matcher.Matches(room) {
			domains = append(domains, g.Domain)
		}
	}
	slices.Sort(domains)
	return domains
}

// AccessLabelsMatch reports whether the room's access labels are exactly the
// given domains (each with the value "true").
func AccessLabelsMatch(room *v1alpha1.Room, domains []string) bool {
	n := 0
	for k, v := range room.Labels {
		if domain, ok := strings.CutPrefix(k, v1alpha1.AccessLabelPrefix); ok {
			if v != "true" || !slices.Contains(domains, domain) {
				return false
			}
			n++
		}
	}
	return n == len(domains)
}

// WithAccessLabels returns the room's labels with the access labels replaced by
// one per domain. Other labels are kept as they are.
func WithAccessLabels(current map[string]string, domains []string) map[string]string {
	out := make(map[string]string, len(current)+len(domains))
	for k, v := range current {
		if !strings.HasPrefix(k, v1alpha1.AccessLabelPrefix) {
			out[k] = v
		}
	}
	for _, d := range domains {
		out[v1alpha1.AccessLabel(d)] = "true"
	}
	return out
}

// Anchors files values (links, reach) under the anchors of their matchers,
// so that a room change finds the values whose scopes could select the room
// without testing every one. A value filed twice must be removed twice.
type Anchors[T comparable] struct {
	byName  map[string]map[T]int
	byLabel map[Label]map[T]int
	any     map[T]int
}

// NewAnchors returns an empty Anchors.
func NewAnchors[T comparable]() *Anchors[T] {
	return &Anchors[T]{byName: map[string]map[T]int{}, byLabel: map[Label]map[T]int{}, any: map[T]int{}}
}

// Add files v under m's anchor.
func (a *Anchors[T]) Add(v T, m *Matcher) { a.file(v, m, 1) }

// Remove unfiles v from m's anchor.
func (a *Anchors[T]) Remove(v T, m *Matcher) { a.file(v, m, -1) }

func (a *Anchors[T]) file(v T, m *Matcher, delta int) {
	for _, name := range m.anchor.Names {
		count(a.byName, name, v, delta)
	}
	if m.anchor.Label != nil {
		count(a.byLabel, *m.anchor.Label, v, delta)
	}
	if m.anchor.Any {
		if a.any[v] += delta; a.any[v] <= 0 {
			delete(a.any, v)
		}
	}
}

func count[K, T comparable](sets map[K]map[T]int, key K, v T, delta int) {
	set := sets[key]
	if set == nil {
		set = map[T]int{}
		sets[key] = set
	}
	if set[v] += delta; set[v] <= 0 {
		delete(set, v)
		if len(set) == 0 {
			delete(sets, key)
		}
	}
}

// Candidates calls f for every value whose matcher could select the room,
// possibly more than once; the caller still asks the matcher.
func (a *Anchors[T]) Candidates(room *v1alpha1.Room, f func(T)) {
	for v := range a.byName[room.Name] {
		f(v)
	}
	for k, val := range room.Labels {
		for v := range a.byLabel[Label{Key: k, Value: val}] {
			f(v)
		}
	}
	for v := range a.any {
		f(v)
	}
}
