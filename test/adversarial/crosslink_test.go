package adversarial

import (
	"fmt"
	"slices"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// Class 5: cross-link and cross-tenant writes. A partner writes roles only
// on links where it holds roles.modify, never grants more than it holds
// (permissions and scope), never writes assignments, invitations or links,
// and cannot reach a namespace where it has no partnership. A second
// partnership of one domain in one namespace is refused. After a refused
// write the target is as it was.

var writers = []string{alice, carol, dave, frank}

// holdsOn returns the writer's grant holding p on a link, if any.
func holdsOn(user, ns, link string, p v1alpha1.Permission) (grant, bool) {
	for _, g := range grantsOf(user) {
		if g.ns == ns && g.link == link && g.perms[p] {
			return g, true
		}
	}
	return grant{}, false
}

// mayGrant is the escalation rule: a writer may write a role on a link only
// when it holds roles.modify there with a grant whose permissions include
// every permission of the role and whose rooms include every room of the
// role's scope (an empty scope is the link's whole scope).
func mayGrant(user, ns, link string, perms []v1alpha1.Permission, scope v1alpha1.RoomScope) bool {
	for _, g := range grantsOf(user) {
		if g.ns != ns || g.link != link || !g.perms[v1alpha1.RolesModify] {
			continue
		}
		if !slices.ContainsFunc(perms, func(p v1alpha1.Permission) bool { return !g.perms[p] }) && scopeWithin(scope, g) {
			return true
		}
	}
	return false
}

func scopeWithin(scope v1alpha1.RoomScope, g grant) bool {
	if len(scope.Names) == 0 && scope.Selector == nil {
		return g.whole
	}
	if g.whole {
		return true
	}
	// Judged from the scopes alone, as RBAC judges rules, never from the
	// rooms' labels of the moment (a room named now may leave the writer's
	// selector later). The only scoped writer of the tables, carol, holds
	// the selector site=nyc: a selector that requires site=nyc is within
	// it, names are not.
	return len(scope.Names) == 0 && scope.Selector != nil && scope.Selector.MatchLabels["site"] == "nyc"
}

type crossTarget struct{ ns, link string }

// crossTargets: every namespace × every link name, including contoso-2 (a
// second contoso partnership, which must not exist) and links a namespace
// does not have.
var crossTargets = func() []crossTarget {
	var out []crossTarget
	for _, ns := range []string{tenantA, tenantB} {
		for _, link := range []string{"contoso", "fabrikam", "contoso-2"} {
			out = append(out, crossTarget{ns, link})
		}
	}
	return out
}()

func linkExists(ns, link string) bool {
	return slices.ContainsFunc(linkDefs, func(l linkDef) bool { return l.ns == ns && l.name == link })
}

func domainOfLink(link string) string {
	if link == "fabrikam" {
		return fabrikam
	}
	return contoso
}

func testCrossLink(t *testing.T) {
	t.Run("second-partnership-of-a-domain", testSecondPartnership)
	t.Run("writes", testCrossWrites)
	t.Run("escalation", testEscalation)
	t.Run("denial-reasons-do-not-enumerate-namespaces", testDenialReasons)
}

// testSecondPartnership: the customer invites contoso.com again in tenant-a
// and its tenant manager accepts. One of the two must be refused.
func testSecondPartnership(t *testing.T) {
	inv := newInvitation(tenantA, "contoso-2", contoso, v1alpha1.RoomScope{Names: []string{"par-1"}})
	if err := admin.Create(ctx, inv); err != nil {
		return // refused at the invitation: the rule holds
	}
	defer func() { _ = opUser.Delete(ctx, inv) }()
	link := &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: "contoso-2"},
		Spec: v1alpha1.PartnerLinkSpec{Invitation: "contoso-2", PartnerDomain: contoso,
			PrimaryAdmins: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "mallory@contoso.com"}}}}
	var err error
	_ = eventually(10*time.Second, func() error { err = as(tmC, tenantManagers(contoso)).Create(ctx, link); return err })
	if err == nil {
		t.Errorf("a second partnership of %s in %s was established (invitation and link contoso-2 admitted)", contoso, tenantA)
		// Offboard it again and wait until the world is as buildWorld made
		// it: the access label is per domain, so the offboarding touches
		// contoso's other rooms too.
		_ = admin.Delete(ctx, link)
		if err := eventually(30*time.Second, absent(link)); err != nil {
			t.Fatalf("offboarding contoso-2: %v", err)
		}
		if err := waitRoomsLabelled(); err != nil {
			t.Fatalf("after offboarding contoso-2: %v", err)
		}
		waitAllowed(t, alice, tenantA, "nyc-1")
	}
}

// crossOp is one write a writer attempts on a target; it returns whether
// the design allows it, verify (which checks the stored state after a
// refusal), and the write's error.
type crossOp struct {
	name string
	run  func(t *testing.T, writer string, tg crossTarget) (allowed bool, verify func() error, err error)
}

var crossOps = []crossOp{
	{"create-role-full-permissions-self-member", func(t *testing.T, w string, tg crossTarget) (bool, func() error, error) {
		role := newRole(roleDef{ns: tg.ns, name: tg.link + "-x-" + userLocal(w), link: tg.link, perms: v1alpha1.PrimaryAdminPermissions, member: w})
		err := as(w).Create(ctx, role)
		t.Cleanup(func() { _ = opUser.Delete(ctx, role) })
		return linkExists(tg.ns, tg.link) && mayGrant(w, tg.ns, tg.link, v1alpha1.PrimaryAdminPermissions, v1alpha1.RoomScope{}), absent(role), err
	}},
	{"update-role-add-member", func(t *testing.T, w string, tg crossTarget) (bool, func() error, error) {
		d, ok := victimRole(tg)
		if !ok {
			t.Skip("no role on this link")
		}
		patch := fmt.Sprintf(`[{"op":"add","path":"/spec/assignments/0/members/-","value":{"kind":"User","name":"extra@%s"}}]`, domainOfLink(tg.link))
		before := get(t, &v1alpha1.PartnerRole{}, tg.ns, d.name)
		err := as(w).Patch(ctx, &v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Namespace: tg.ns, Name: d.name}}, client.RawPatch(types.JSONPatchType, []byte(patch)))
		t.Cleanup(func() { restoreRole(before) })
		return mayGrant(w, tg.ns, tg.link, d.perms, d.scope), unchanged(before), err
	}},
	{"delete-role", func(t *testing.T, w string, tg crossTarget) (bool, func() error, error) {
		if !linkExists(tg.ns, tg.link) {
			t.Skip("no such link")
		}
		// A fresh victim each time, within every role writer's range
		// (rooms.view on one room of the link's scope).
		room := map[string]string{"contoso": "nyc-1", "fabrikam": "sea-1"}[tg.link]
		victim := roleDef{ns: tg.ns, name: tg.link + "-victim-" + userLocal(w), link: tg.link, perms: []v1alpha1.Permission{v1alpha1.RoomsView},
			member: "extra@" + domainOfLink(tg.link), scope: v1alpha1.RoomScope{Names: []string{room}}}
		obj := newRole(victim)
		if err := opUser.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = opUser.Delete(ctx, obj) })
		waitAllowed(t, victim.member, tg.ns, room)
		before := get(t, &v1alpha1.PartnerRole{}, tg.ns, victim.name)
		err := as(w).Delete(ctx, before.DeepCopy())
		_, holds := holdsOn(w, tg.ns, tg.link, v1alpha1.RolesModify)
		return holds, unchanged(before), err
	}},
	{"delete-builtin-role", func(t *testing.T, w string, tg crossTarget) (bool, func() error, error) {
		if !linkExists(tg.ns, tg.link) {
			t.Skip("no such link")
		}
		before := get(t, &v1alpha1.PartnerRole{}, tg.ns, tg.link+"-primary-admins")
		err := as(w).Delete(ctx, before.DeepCopy())
		if err == nil {
			// The controller restores it; wait, so later cases see the world.
			t.Cleanup(func() {
				waitAllowed(t, linkAdmin(tg), tg.ns, map[string]string{"contoso": "nyc-1", "fabrikam": "sea-1"}[tg.link])
			})
		}
		return false, unchanged(before), err
	}},
	{"create-roomassignment", func(t *testing.T, w string, tg crossTarget) (bool, func() error, error) {
		a := &v1alpha1.RoomAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: tg.ns, Name: "grab-" + userLocal(w)},
			Spec: v1alpha1.RoomAssignmentSpec{PartnerLink: tg.link, Rooms: v1alpha1.RoomScope{Names: []string{"par-1"}}}}
		err := as(w).Create(ctx, a)
		t.Cleanup(func() { _ = opUser.Delete(ctx, a) })
		return false, absent(a), err
	}},
	{"update-invitation", func(t *testing.T, w string, tg crossTarget) (bool, func() error, error) {
		if !linkExists(tg.ns, tg.link) {
			t.Skip("no such invitation")
		}
		before := get(t, &v1alpha1.PartnerInvitation{}, tg.ns, tg.link)
		err := as(w).Patch(ctx, before.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"rooms":{"names":["par-1"]}}}`)))
		return false, unchanged(before), err
	}},
	{"delete-invitation", func(t *testing.T, w string, tg crossTarget) (bool, func() error, error) {
		if !linkExists(tg.ns, tg.link) {
			t.Skip("no such invitation")
		}
		before := get(t, &v1alpha1.PartnerInvitation{}, tg.ns, tg.link)
		err := as(w).Delete(ctx, before.DeepCopy())
		return false, unchanged(before), err
	}},
	{"create-partnerlink", func(t *testing.T, w string, tg crossTarget) (bool, func() error, error) {
		l := &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Namespace: tg.ns, Name: tg.link + "-by-" + userLocal(w)},
			Spec: v1alpha1.PartnerLinkSpec{Invitation: tg.link, PartnerDomain: v1alpha1.Domain(domainOf(w)),
				PrimaryAdmins: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: w}}}}
		err := as(w).Create(ctx, l)
		t.Cleanup(func() { _ = opUser.Delete(ctx, l) })
		return false, absent(l), err
	}},
}

func testCrossWrites(t *testing.T) {
	for _, w := range writers {
		for _, tg := range crossTargets {
			for _, op := range crossOps {
				t.Run(fmt.Sprintf("%s/%s/%s/%s", w, tg.ns, tg.link, op.name), func(t *testing.T) {
					allowed, verify, err := op.run(t, w, tg)
					switch {
					case allowed && err != nil:
						t.Errorf("want allowed, got %v", err)
					case !allowed && err == nil:
						t.Errorf("want refused, got admitted")
					case !allowed:
						if verr := verify(); verr != nil {
							t.Errorf("refused (%v), but the stored state changed: %v", err, verr)
						}
					}
				})
			}
		}
	}
}

// testEscalation: each role writer creates roles with generated permission
// sets and scopes on its own link; admitted exactly when within what the
// writer holds.
func testEscalation(t *testing.T) {
	permSets := map[string][]v1alpha1.Permission{
		"rooms.view":                 {v1alpha1.RoomsView},
		"carols-set":                 {v1alpha1.RolesView, v1alpha1.RolesModify, v1alpha1.RoomsView, v1alpha1.RoomsModify},
		"rooms.view+tickets.view":    {v1alpha1.RoomsView, v1alpha1.TicketsView},
		"rooms.view+updateRings.mod": {v1alpha1.RoomsView, v1alpha1.UpdateRingsModify},
		"primary-admin-set":          v1alpha1.PrimaryAdminPermissions,
	}
	scopes := map[string]v1alpha1.RoomScope{
		"unscoped":        {},
		"site=nyc":        siteScope("nyc"),
		"site=ber":        siteScope("ber"),
		"names=nyc-1":     {Names: []string{"nyc-1"}},
		"names=ber-1":     {Names: []string{"ber-1"}},
		"names=nyc-1,ber": {Names: []string{"nyc-1", "ber-1"}},
	}
	for _, w := range []string{alice, carol, dave} {
		for _, pn := range sortedKeys(permSets) {
			for _, sn := range sortedKeys(scopes) {
				t.Run(fmt.Sprintf("%s/%s/%s", w, pn, sn), func(t *testing.T) {
					role := newRole(roleDef{ns: tenantA, name: "contoso-esc-" + userLocal(w), link: "contoso", perms: permSets[pn], member: "helper2@contoso.com", scope: scopes[sn]})
					err := as(w).Create(ctx, role)
					if err == nil {
						_ = opUser.Delete(ctx, role)
						_ = eventually(10*time.Second, absent(role))
					}
					want := mayGrant(w, tenantA, "contoso", permSets[pn], scopes[sn])
					if want && err != nil {
						t.Errorf("a role within what %s holds was refused: %v", w, err)
					} else if !want && err == nil {
						t.Errorf("%s created a role granting more than it holds (%s on %s)", w, pn, sn)
					}
				})
			}
		}
	}
}

// testDenialReasons: for each request, the reason a partner is denied is
// the same in a namespace with no partnership, one that does not exist and
// one with only another partner's partnership, so that denials do not tell
// which namespaces are customers'.
func testDenialReasons(t *testing.T) {
	requests := []authorizationv1.ResourceAttributes{
		{Verb: "get", Group: pg, Resource: "rooms", Name: "nyc-1"},
		{Verb: "list", Group: pg, Resource: "rooms"},
		{Verb: "get", Group: pg, Resource: "partnerroles", Name: "contoso-nyc"},
		{Verb: "create", Group: pg, Resource: "partnerroles"},
		{Verb: "get", Resource: "pods"},
		{Verb: "get", Group: pg, Resource: "partnerlinks", Name: "contoso"},
	}
	for _, user := range []string{alice, dave} {
		for _, req := range requests {
			t.Run(fmt.Sprintf("%s/%s", user, describe(&req)), func(t *testing.T) {
				reasons := map[string]string{}
				for _, ns := range []string{tenantC, ghostNS, tenantB} {
					a := req
					a.Namespace = ns
					st, err := review(authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{authenticated}, ResourceAttributes: &a})
					if err != nil {
						t.Fatal(err)
					}
					if st.Allowed || !st.Denied {
						t.Errorf("%s: want denied, got allowed=%v denied=%v", ns, st.Allowed, st.Denied)
					}
					reasons[ns] = st.Reason
				}
				if reasons[tenantC] != reasons[ghostNS] || reasons[ghostNS] != reasons[tenantB] {
					t.Errorf("the reasons differ by namespace: no partnership %q; no namespace %q; another partner's %q", reasons[tenantC], reasons[ghostNS], reasons[tenantB])
				}
			})
		}
	}
}

func userLocal(u string) string { return u[:len(u)-len(domainOf(u))-1] }

func linkAdmin(tg crossTarget) string {
	return linkDefs[slices.IndexFunc(linkDefs, func(l linkDef) bool { return l.ns == tg.ns && l.name == tg.link })].admin
}

// victimRole: a role of the link that is not built in.
func victimRole(tg crossTarget) (roleDef, bool) {
	i := slices.IndexFunc(roleDefs, func(r roleDef) bool {
		return r.ns == tg.ns && r.link == tg.link && !r.builtin && r.name != "contoso-meta"
	})
	if i < 0 {
		return roleDef{}, false
	}
	return roleDefs[i], true
}

func get[T client.Object](t *testing.T, obj T, ns, name string) T {
	t.Helper()
	if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func absent(obj client.Object) func() error {
	return func() error {
		err := admin.Get(ctx, client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object))
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("%s exists (get: %v)", obj.GetName(), err)
	}
}

func unchanged(before client.Object) func() error {
	return func() error {
		now := before.DeepCopyObject().(client.Object)
		if err := admin.Get(ctx, client.ObjectKeyFromObject(before), now); err != nil {
			return fmt.Errorf("%s: %w", before.GetName(), err)
		}
		// The generation (spec) and metadata, not the resourceVersion: the
		// operator may write a new role's status meanwhile.
		if now.GetGeneration() != before.GetGeneration() || now.GetDeletionTimestamp() != nil || !sameMeta(before, now) {
			return fmt.Errorf("%s: before %s generation %d, after %s generation %d deleting=%v", before.GetName(),
				metaSummary(before), before.GetGeneration(), metaSummary(now), now.GetGeneration(), now.GetDeletionTimestamp() != nil)
		}
		return nil
	}
}

// restoreRole puts a role of the tables back as it was, as the operator.
func restoreRole(before *v1alpha1.PartnerRole) {
	_ = eventually(10*time.Second, func() error {
		cur := &v1alpha1.PartnerRole{}
		if err := opUser.Get(ctx, client.ObjectKeyFromObject(before), cur); err != nil {
			return err
		}
		if cur.ResourceVersion == before.ResourceVersion {
			return nil
		}
		cur.Spec = before.Spec
		return opUser.Update(ctx, cur)
	})
}

// waitAllowed waits until the webhook lets user get a room: the index has
// caught up with a role just created or restored.
func waitAllowed(t *testing.T, user, ns, room string) {
	t.Helper()
	err := eventually(20*time.Second, func() error {
		st, err := review(authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{authenticated},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Group: pg, Resource: "rooms", Name: room}})
		if err == nil && !st.Allowed {
			err = fmt.Errorf("%s may not get %s/%s yet: %s", user, ns, room, st.Reason)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
