// Package churn proves that the operator keeps no state a crash can lose:
// managers are started and killed at random moments while invitations,
// links, roles, assignments and room labels churn, and a fresh manager then
// converges to the state an uninterrupted run reaches.
//
// The default run makes 150 changes; CHURN_CHANGES=1000 makes the long run.
package churn

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/controllers"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/lifecycle"
	"github.com/roompro/partner-operator/internal/scope"
	"github.com/roompro/partner-operator/internal/testenv"
)

const ns = "churn"

var scheme = testenv.NewScheme()

func TestCrashAndRestartConverges(t *testing.T) {
	changes := 150
	if v, err := strconv.Atoi(os.Getenv("CHURN_CHANGES")); err == nil && v > 0 {
		changes = v
	}
	cp, c := testenv.StartControlPlane(t, controlplane.Options{})
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}

	// Managers come and go while the changes are made.
	done := make(chan struct{})
	crashes := make(chan int, 1)
	go func() {
		rng := rand.New(rand.NewPCG(7, 7))
		n := 0
		for {
			select {
			case <-done:
				crashes <- n
				return
			default:
			}
			stop := startManager(t, cp)
			time.Sleep(time.Duration(50+rng.IntN(600)) * time.Millisecond)
			stop() // a crash: no graceful hand-over of anything
			n++
		}
	}()
	firstLinks := churn(t, c, changes, rand.New(rand.NewPCG(42, uint64(changes))))
	close(done)
	t.Logf("%d changes, %d manager crashes", changes, <-crashes)

	stop := startManager(t, cp)
	defer stop()
	deadline := time.Now().Add(90 * time.Second)
	var problems []string
	for {
		if problems = check(ctx, c, firstLinks); len(problems) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no convergence after the crashes:\n%v", problems)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func startManager(t *testing.T, cp *controlplane.ControlPlane) (stop func()) {
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: config.Controller{SkipNameValidation: new(true)},
	})
	if err != nil {
		t.Error(err)
		return func() {}
	}
	if err := controllers.SetupWithManager(mgr, controllers.Options{Clock: clock.RealClock{}, AuditLog: io.Discard}); err != nil {
		t.Error(err)
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	go func() { defer close(exited); _ = mgr.Start(ctx) }()
	return func() { cancel(); <-exited }
}

// churn makes random changes of every kind, as customers and partners would.
// An offboarded partner may accept its invitation again; that link must be
// refused. churn returns the UID of the first link it created under each
// name: only that one can have accepted the invitation.
func churn(t *testing.T, c client.Client, changes int, rng *rand.Rand) (firstLinks map[string]types.UID) {
	firstLinks = map[string]types.UID{}
	ctx := context.Background()
	countries := []string{"us", "de", "fr"}
	for i := range 30 {
		if err := c.Create(ctx, &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("room-%d", i), Namespace: ns,
			Labels: map[string]string{"country": countries[i%3]}}, Spec: v1alpha1.RoomSpec{DisplayName: "room"}}); err != nil {
			t.Fatal(err)
		}
	}
	var invitations, links []string
	ignore := func(err error) {
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsAlreadyExists(err) && !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
	for i := range changes {
		switch op := rng.IntN(10); {
		case op < 3 || len(invitations) == 0: // invite
			name := fmt.Sprintf("p%d", i)
			ignore(c.Create(ctx, &v1alpha1.PartnerInvitation{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec: v1alpha1.PartnerInvitationSpec{PartnerDomain: v1alpha1.Domain(name + ".example.com"), ExpiryDays: int32(1 + rng.IntN(30)),
					TermsAccepted: true, Rooms: v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"country": countries[rng.IntN(3)]}}}}}))
			invitations = append(invitations, name)
		case op < 6: // accept
			name := invitations[rng.IntN(len(invitations))]
			if slices.Contains(links, name) {
				continue
			}
			link := &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec: v1alpha1.PartnerLinkSpec{Invitation: name, PartnerDomain: v1alpha1.Domain(name + ".example.com"),
					PrimaryAdmins: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "admin@" + name + ".example.com"}}}}
			ignore(c.Create(ctx, link))
			if _, seen := firstLinks[name]; !seen && link.UID != "" {
				firstLinks[name] = link.UID
			}
			links = append(links, name)
		case op < 7 && len(links) > 0: // a custom role
			link := links[rng.IntN(len(links))]
			ignore(c.Create(ctx, &v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-role-%d", link, i), Namespace: ns},
				Spec: v1alpha1.PartnerRoleSpec{PartnerLink: link, Permissions: []v1alpha1.Permission{v1alpha1.TicketsView},
					Assignments: []v1alpha1.RoleAssignment{{Name: "a", Members: []v1alpha1.Subject{{Kind: v1alpha1.GroupSubject, Name: link + ".example.com:helpdesk"}}}}}}))
		case op < 8 && len(links) > 0: // an extra assignment
			link := links[rng.IntN(len(links))]
			ignore(c.Create(ctx, &v1alpha1.RoomAssignment{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-extra-%d", link, i), Namespace: ns},
				Spec: v1alpha1.RoomAssignmentSpec{PartnerLink: link, Rooms: v1alpha1.RoomScope{Names: []string{fmt.Sprintf("room-%d", rng.IntN(30))}}}}))
		case op < 9 && len(links) > 0: // offboard
			j := rng.IntN(len(links))
			ignore(c.Delete(ctx, &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Name: links[j], Namespace: ns}}))
			links = slices.Delete(links, j, j+1)
		default: // relabel a room
			r := &v1alpha1.Room{}
			ignore(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("room-%d", rng.IntN(30))}, r))
			r.Labels["country"] = countries[rng.IntN(3)]
			ignore(c.Update(ctx, r))
		}
	}
	return firstLinks
}

// check compares the stored state with what an uninterrupted run reaches,
// computed from the stored specs, the invitations' acceptance and which
// link churn created first under each name.
func check(ctx context.Context, c client.Client, firstLinks map[string]types.UID) []string {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	invs, links := &v1alpha1.PartnerInvitationList{}, &v1alpha1.PartnerLinkList{}
	roles, assignments, rooms := &v1alpha1.PartnerRoleList{}, &v1alpha1.RoomAssignmentList{}, &v1alpha1.RoomList{}
	for _, l := range []client.ObjectList{invs, links, roles, assignments, rooms} {
		if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
			return []string{err.Error()}
		}
	}
	invByName := map[string]*v1alpha1.PartnerInvitation{}
	for i := range invs.Items {
		invByName[invs.Items[i].Name] = &invs.Items[i]
	}
	linkByName := map[string]*v1alpha1.PartnerLink{}
	refused := map[string]bool{} // links whose invitation an earlier link accepted
	for i := range links.Items {
		l := &links.Items[i]
		linkByName[l.Name] = l
		inv := invByName[l.Spec.Invitation]
		switch {
		case !l.DeletionTimestamp.IsZero():
			fail("link %s is stuck deleting (finalizers %v)", l.Name, l.Finalizers)
		case inv != nil && inv.Status.Phase == v1alpha1.InvitationAccepted && !lifecycle.AcceptedBy(inv, l):
			refused[l.Name] = true
			ready := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady)
			if l.UID == firstLinks[l.Name] {
				fail("link %s is the first under its name, yet its invitation records another acceptance", l.Name)
			} else if l.Status.Phase != v1alpha1.LinkPending || ready == nil || ready.Reason != lifecycle.ReasonInvitationAlreadyAccepted {
				fail("link %s re-accepts an accepted invitation: phase %q, Ready %v, want Pending, %s",
					l.Name, l.Status.Phase, ready, lifecycle.ReasonInvitationAlreadyAccepted)
			}
		case l.Status.Phase != v1alpha1.LinkActive:
			fail("link %s is %q, not Active", l.Name, l.Status.Phase)
		}
	}
	for _, inv := range invs.Items {
		switch {
		case inv.Status.ExpiresAt == nil || !inv.Status.ExpiresAt.Time.Equal(lifecycle.ExpiresAt(&inv)):
			fail("invitation %s: expiresAt %v, want %v", inv.Name, inv.Status.ExpiresAt, lifecycle.ExpiresAt(&inv))
		case inv.Status.Phase == v1alpha1.InvitationExpired:
			fail("invitation %s expired before its deadline", inv.Name)
		case linkByName[inv.Name] != nil && inv.Status.Phase != v1alpha1.InvitationAccepted:
			fail("invitation %s of an active link is %q", inv.Name, inv.Status.Phase)
		case inv.Status.Phase == "":
			fail("invitation %s has no phase", inv.Name)
		}
	}
	builtins := map[string]int{}
	for _, r := range roles.Items {
		if linkByName[r.Spec.PartnerLink] == nil {
			fail("role %s outlives its link %s", r.Name, r.Spec.PartnerLink)
		}
		if r.Spec.Builtin == v1alpha1.BuiltinPrimaryAdmin {
			builtins[r.Spec.PartnerLink]++
		}
	}
	var grants []scope.Grant
	for _, a := range assignments.Items {
		l := linkByName[a.Spec.PartnerLink]
		if l == nil {
			fail("assignment %s outlives its link %s", a.Name, a.Spec.PartnerLink)
			continue
		}
		if refused[l.Name] {
			continue // a refused link grants nothing
		}
		m, err := scope.Compile(a.Spec.Rooms)
		if err != nil {
			fail("assignment %s: %v", a.Name, err)
			continue
		}
		grants = append(grants, scope.Grant{Domain: string(l.Spec.PartnerDomain), Matcher: m})
	}
	for name := range linkByName {
		want := 1
		if refused[name] {
			want = 0
		}
		if builtins[name] != want {
			fail("link %s has %d built-in roles, want %d", name, builtins[name], want)
		}
	}
	for i := range rooms.Items {
		r := &rooms.Items[i]
		want := scope.PartnersOf(r, grants)
		if !scope.AccessLabelsMatch(r, want) || !slices.Equal(r.Status.Partners, want) {
			fail("room %s: labels %v / partners %v, want %v", r.Name, r.Labels, r.Status.Partners, want)
		}
	}
	return problems
}
