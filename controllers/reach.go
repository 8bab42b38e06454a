package controllers

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/scope"
)

// linkGrantsAccess reports whether a link's assignments put rooms in scope:
// only an Active link that is not being deleted does.
func linkGrantsAccess(link *v1alpha1.PartnerLink) bool {
	return link.Status.Phase == v1alpha1.LinkActive && link.DeletionTimestamp.IsZero()
}

// reachIn returns the reach of every active link of the namespace, read
// from the cache. An assignment with a selector that does not compile reaches
// nothing (the CRD and the webhook reject those; failing closed is right).
func reachIn(ctx context.Context, c client.Reader, namespace string) ([]scope.Reach, error) {
	links := &v1alpha1.PartnerLinkList{}
	if err := c.List(ctx, links, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing PartnerLinks: %w", err)
	}
	domains := map[string]string{} // active link name -> partner domain
	for i := range links.Items {
		if linkGrantsAccess(&links.Items[i]) {
			domains[links.Items[i].Name] = string(links.Items[i].Spec.PartnerDomain)
		}
	}
	if len(domains) == 0 {
		return nil, nil
	}
	assignments := &v1alpha1.RoomAssignmentList{}
	if err := c.List(ctx, assignments, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing RoomAssignments: %w", err)
	}
	var reach []scope.Reach
	for i := range assignments.Items {
		a := &assignments.Items[i]
		domain, active := domains[a.Spec.PartnerLink]
		if !active || !a.DeletionTimestamp.IsZero() {
			continue
		}
		m, err := scope.Compile(a.Spec.Rooms)
		if err != nil {
			continue
		}
		reach = append(reach, scope.Reach{Domain: domain, Matcher: m})
	}
	return reach, nil
}

// namespaceReach is the reach of one namespace, filed by anchor so that a
// room is tested only against the scopes that could select it.
type namespaceReach struct {
	reach   []scope.Reach
	anchors *scope.Anchors[int] // index into reach
}

func newNamespaceReach(reach []scope.Reach) *namespaceReach {
	g := &namespaceReach{reach: reach, anchors: scope.NewAnchors[int]()}
	for i := range reach {
		g.anchors.Add(i, reach[i].Matcher)
	}
	return g
}

// partnersOf returns the sorted, distinct domains that may reach the room.
func (g *namespaceReach) partnersOf(room *v1alpha1.Room) []string {
	var candidates []scope.Reach
	seen := map[int]bool{}
	g.anchors.Candidates(room, func(i int) {
		if !seen[i] {
			seen[i] = true
			candidates = append(candidates, g.reach[i])
		}
	})
	return scope.PartnersOf(room, candidates)
}

// reachCache memoizes the reach of each namespace between changes of its
// links and assignments, so that relabelling 100k rooms compiles the scopes
// once, not once per room. The event handlers of links and assignments call
// invalidate before they enqueue rooms, and the informer has stored the new
// object before it calls them: a reconcile that follows an event recomputes
// from the changed cache. The generation keeps a computation that raced an
// invalidation from being remembered.
type reachCache struct {
	reader client.Reader

	mu          sync.Mutex
	namespaces  map[string]*namespaceReach
	generations map[string]uint64
}

func newReachCache(reader client.Reader) *reachCache {
	return &reachCache{reader: reader, namespaces: map[string]*namespaceReach{}, generations: map[string]uint64{}}
}

func (c *reachCache) forNamespace(ctx context.Context, namespace string) (*namespaceReach, error) {
	c.mu.Lock()
	g, generation := c.namespaces[namespace], c.generations[namespace]
	c.mu.Unlock()
	if g != nil {
		return g, nil
	}
	reach, err := reachIn(ctx, c.reader, namespace)
	if err != nil {
		return nil, err
	}
	g = newNamespaceReach(reach)
	c.mu.Lock()
	if c.generations[namespace] == generation {
		c.namespaces[namespace] = g
	}
	c.mu.Unlock()
	return g, nil
}

func (c *reachCache) invalidate(namespace string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.namespaces, namespace)
	c.generations[namespace]++
}

// enqueueRoomsOf adds to q every room of the namespace that the matcher
// could select, found through the cache's label index rather than a scan.
func enqueueRoomsOf(ctx context.Context, c client.Reader, q workqueue.TypedRateLimitingInterface[ctrl.Request], namespace string, m *scope.Matcher) {
	a := m.Anchor()
	for _, name := range a.Names {
		q.Add(ctrl.Request{NamespacedName: client.ObjectKey{Namespace: namespace, Name: name}})
	}
	rooms, err := roomsBySelectorAnchor(ctx, c, namespace, a)
	if err != nil {
		log.FromContext(ctx).Error(err, "listing the rooms of a scope to enqueue")
		return
	}
	for i := range rooms {
		q.Add(ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&rooms[i])})
	}
}

// roomsOf lists the rooms of the namespace that some matcher selects,
// testing only the candidates of each matcher's anchor.
func roomsOf(ctx context.Context, c client.Reader, namespace string, matchers []*scope.Matcher) (map[string]struct{}, error) {
	selected := map[string]struct{}{}
	for _, m := range matchers {
		a := m.Anchor()
		rooms, err := roomsBySelectorAnchor(ctx, c, namespace, a)
		if err != nil {
			return nil, err
		}
		for _, name := range a.Names {
			room := &v1alpha1.Room{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, room); client.IgnoreNotFound(err) != nil {
				return nil, fmt.Errorf("reading room %q: %w", name, err)
			} else if err == nil {
				rooms = append(rooms, *room)
			}
		}
		for i := range rooms {
			if m.Matches(&rooms[i]) {
				selected[rooms[i].Name] = struct{}{}
			}
		}
	}
	return selected, nil
}

// roomsBySelectorAnchor lists, read-only from the cache, the rooms the
// selector part of an anchor points at: those with its label (through the
// label index), or every room of the namespace for an unanchored selector.
// It lists nothing for a scope of names only.
func roomsBySelectorAnchor(ctx context.Context, c client.Reader, namespace string, a scope.Anchor) ([]v1alpha1.Room, error) {
	opts := []client.ListOption{client.InNamespace(namespace), client.UnsafeDisableDeepCopy}
	switch {
	case a.Any:
	case a.Label != nil:
		opts = append(opts, client.MatchingFields{indexRoomLabels: labelPair(a.Label.Key, a.Label.Value)})
	default:
		return nil, nil
	}
	rooms := &v1alpha1.RoomList{}
	if err := c.List(ctx, rooms, opts...); err != nil {
		return nil, fmt.Errorf("listing rooms: %w", err)
	}
	return rooms.Items, nil
}
