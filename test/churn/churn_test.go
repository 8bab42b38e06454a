// Package churn proves that the operator keeps no state a crash can lose:
// managers are started and killed at random moments while invitations,
// links, roles, assignments and room labels churn, and a fresh manager then
// converges to the state an uninterrupted run reaches.
//
// The changes include the lifecycle races: invitations deleted and created
// again under the same name (a link accepts only the invitation it was
// created for), roles and assignments created under the names of other
// links' built-in children (the schema refuses them), and acceptance right at
// the deadline with the reconcile late: the managers' clock runs a day less
// acceptanceWindow ahead, so a one-day invitation expires, for the
// controllers, acceptanceWindow after it is created, while links created
// after that are still, by their stored creation, in time. Every crash is a
// leader failing over in the middle of whatever it was doing.
//
// The default run makes 150 changes; CHURN_CHANGES=1000 makes the long run.
package churn

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/lifecycle"
	"github.com/roompro/partner-operator/internal/operator"
	"github.com/roompro/partner-operator/internal/scope"
	"github.com/roompro/partner-operator/internal/testenv"
)

const ns = "churn"

// acceptanceWindow is how long after its creation a one-day invitation
// expires on the managers' clock.
const acceptanceWindow = 15 * time.Second

// managerClock is the real clock, a day less acceptanceWindow ahead.
type managerClock struct{ clock.RealClock }

func (managerClock) Now() time.Time { return time.Now().Add(24*time.Hour - acceptanceWindow) }

func (c managerClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

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

	// Managers come and go while the changes are made; they all write one
	// audit log.
	auditLog := &testenv.SyncBuffer{}
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
			stop := startManager(t, cp, auditLog)
			time.Sleep(time.Duration(50+rng.IntN(600)) * time.Millisecond)
			stop() // a crash: no graceful hand-over of anything
			n++
		}
	}()
	created := churn(t, c, changes, rand.New(rand.NewPCG(42, uint64(changes))))
	close(done)
	t.Logf("%d changes, %d manager crashes; created %v", changes, <-crashes, created.counts())

	stop := startManager(t, cp, auditLog)
	defer stop()
	deadline := time.Now().Add(90 * time.Second)
	var problems []string
	for {
		if problems = check(ctx, c); len(problems) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no convergence after the crashes:\n%v", problems)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if problems := auditedOnce(auditLog.String(), created); len(problems) > 0 {
		t.Fatalf("audit lines recorded more often than the changes they record:\n%v", problems)
	}
}

func startManager(t *testing.T, cp *controlplane.ControlPlane, auditLog io.Writer) (stop func()) {
	// The control plane asks no webhooks: the controllers run alone, one
	// manager after another.
	mgr, err := operator.New(context.Background(), cp.Config, operator.Options{
		Clock: managerClock{}, AuditLog: auditLog, ControllersOnly: true, SkipControllerNameValidation: true,
	})
	if err != nil {
		t.Error(err)
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	go func() { defer close(exited); _ = mgr.Start(ctx) }()
	return func() { cancel(); <-exited }
}

// creates counts, by name, the objects churn created, for auditedOnce: a
// name is used again after a delete.
type creates struct{ invitations, links map[string]int }

func (c creates) counts() string {
	sum := func(m map[string]int) (n int) {
		for _, v := range m {
			n += v
		}
		return n
	}
	return fmt.Sprintf("%d invitations and %d links", sum(c.invitations), sum(c.links))
}

// churn makes random changes of every kind, as customers and partners would.
// Links record the invitation they are created for as the admission webhook
// does (this test runs the controllers alone): the UID of the invitation of
// their name as churn last created it.
func churn(t *testing.T, c client.Client, changes int, rng *rand.Rand) creates {
	made := creates{invitations: map[string]int{}, links: map[string]int{}}
	ctx := context.Background()
	countries := []string{"us", "de", "fr"}
	for i := range 30 {
		if err := c.Create(ctx, &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("room-%d", i), Namespace: ns,
			Labels: map[string]string{"country": countries[i%3]}}, Spec: v1alpha1.RoomSpec{DisplayName: "room"}}); err != nil {
			t.Fatal(err)
		}
	}
	var invitations, links []string
	invitationUID := map[string]types.UID{}
	ignore := func(err error) bool {
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsAlreadyExists(err) && !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
		return err == nil
	}
	invite := func(name string) {
		inv := &v1alpha1.PartnerInvitation{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.PartnerInvitationSpec{PartnerDomain: v1alpha1.Domain(name + ".example.com"), ExpiryDays: int32(1 + rng.IntN(2)*rng.IntN(30)),
				TermsAccepted: true, Rooms: v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"country": countries[rng.IntN(3)]}}}}}
		if ignore(c.Create(ctx, inv)) {
			invitationUID[name] = inv.UID
			made.invitations[name]++
		}
	}
	for i := range changes {
		switch op := rng.IntN(12); {
		case op < 3 || len(invitations) == 0: // invite; half of them for one day
			name := fmt.Sprintf("p%d", i)
			invite(name)
			invitations = append(invitations, name)
		case op < 6: // accept
			name := invitations[rng.IntN(len(invitations))]
			if slices.Contains(links, name) {
				continue
			}
			link := &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
				Annotations: map[string]string{v1alpha1.AnnotationInvitationUID: string(invitationUID[name])}},
				Spec: v1alpha1.PartnerLinkSpec{Invitation: name, PartnerDomain: v1alpha1.Domain(name + ".example.com"),
					PrimaryAdmins: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "admin@" + name + ".example.com"}}}}
			if ignore(c.Create(ctx, link)) {
				made.links[name]++
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
		case op < 10: // invite again under the same name
			name := invitations[rng.IntN(len(invitations))]
			ignore(c.Delete(ctx, &v1alpha1.PartnerInvitation{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}))
			invite(name)
		case op < 11 && len(links) > 0: // squat on another link's built-in children
			squatter, victim := links[rng.IntN(len(links))], invitations[rng.IntN(len(invitations))]
			if squatter == victim {
				continue
			}
			for _, obj := range []client.Object{
				&v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.PrimaryAdminRoleName(victim), Namespace: ns},
					Spec: v1alpha1.PartnerRoleSpec{PartnerLink: squatter, Permissions: []v1alpha1.Permission{v1alpha1.RolesModify},
						Assignments: []v1alpha1.RoleAssignment{{Name: "a", Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "mallory@" + squatter + ".example.com"}}}}}},
				&v1alpha1.RoomAssignment{ObjectMeta: metav1.ObjectMeta{Name: victim + "-invitation", Namespace: ns},
					Spec: v1alpha1.RoomAssignmentSpec{PartnerLink: squatter, Rooms: v1alpha1.RoomScope{Names: []string{"room-0"}}}},
			} {
				if err := c.Create(ctx, obj); !apierrors.IsInvalid(err) {
					t.Fatalf("%T %s for PartnerLink %s: err = %v, want Invalid: the name belongs to PartnerLink %s's own child", obj, obj.GetName(), squatter, err, victim)
				}
			}
		default: // relabel a room
			r := &v1alpha1.Room{}
			ignore(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("room-%d", rng.IntN(30))}, r))
			r.Labels["country"] = countries[rng.IntN(3)]
			ignore(c.Update(ctx, r))
		}
	}
	return made
}

// check compares the stored state with what an uninterrupted run reaches,
// by the rules of internal/lifecycle applied to the stored objects.
func check(ctx context.Context, c client.Client) []string {
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
	for i := range links.Items {
		l := &links.Items[i]
		linkByName[l.Name] = l
		inv := invByName[l.Spec.Invitation]
		refusal := lifecycle.CheckAcceptance(inv, l)
		ready := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady)
		switch {
		case !l.DeletionTimestamp.IsZero():
			fail("link %s is stuck deleting (finalizers %v)", l.Name, l.Finalizers)
		case l.Status.Phase == v1alpha1.LinkActive:
			// It accepted its invitation; when that one is still there, the
			// invitation records this link.
			if inv != nil && lifecycle.CreatedFor(inv, l) && !lifecycle.AcceptedBy(inv, l) {
				fail("link %s is Active, yet its invitation records %q (%s)", l.Name, inv.Status.Phase, inv.Status.PartnerLinkUID)
			}
		case refusal == nil:
			fail("link %s accepts its invitation, yet it is %q (Ready %v)", l.Name, l.Status.Phase, ready)
		case ready == nil || ready.Reason != refusal.Reason:
			fail("link %s: Ready %v, want the refusal %s", l.Name, ready, refusal.Reason)
		}
	}
	now := managerClock{}.Now()
	for i := range invs.Items {
		inv := &invs.Items[i]
		l := linkByName[inv.Name]
		switch {
		case inv.Status.ExpiresAt == nil || !inv.Status.ExpiresAt.Time.Equal(lifecycle.ExpiresAt(inv)):
			fail("invitation %s: expiresAt %v, want %v", inv.Name, inv.Status.ExpiresAt, lifecycle.ExpiresAt(inv))
		case inv.Status.Phase == v1alpha1.InvitationAccepted:
			if inv.Status.PartnerLinkUID == "" || inv.Status.AcceptedAt == nil {
				fail("invitation %s is Accepted without recording its link: %+v", inv.Name, inv.Status)
			}
		case l != nil && lifecycle.CheckAcceptance(inv, l) == nil:
			fail("link %s accepts invitation %s, yet it is %q", l.Name, inv.Name, inv.Status.Phase)
		case !now.Before(lifecycle.ExpiresAt(inv)) && inv.Status.Phase != v1alpha1.InvitationExpired:
			fail("invitation %s is %q after its deadline", inv.Name, inv.Status.Phase)
		case now.Before(lifecycle.ExpiresAt(inv)) && inv.Status.Phase != v1alpha1.InvitationPending:
			fail("invitation %s is %q before its deadline, with no link accepting it", inv.Name, inv.Status.Phase)
		}
	}
	builtins := map[string]int{}
	for i := range roles.Items {
		r := &roles.Items[i]
		l := linkByName[r.Spec.PartnerLink]
		if l == nil {
			fail("role %s outlives its link %s", r.Name, r.Spec.PartnerLink)
			continue
		}
		if r.Spec.Builtin == v1alpha1.BuiltinPrimaryAdmin && metav1.IsControlledBy(r, l) {
			builtins[r.Spec.PartnerLink]++
		}
	}
	var reach []scope.Reach
	for _, a := range assignments.Items {
		l := linkByName[a.Spec.PartnerLink]
		if l == nil {
			fail("assignment %s outlives its link %s", a.Name, a.Spec.PartnerLink)
			continue
		}
		if l.Status.Phase != v1alpha1.LinkActive {
			continue // a link that is not Active reach nothing
		}
		m, err := scope.Compile(a.Spec.Rooms)
		if err != nil {
			fail("assignment %s: %v", a.Name, err)
			continue
		}
		reach = append(reach, scope.Reach{Domain: string(l.Spec.PartnerDomain), Matcher: m})
	}
	for name, l := range linkByName {
		// A refused link has none, unless it was refused after it created
		// its children (its invitation deleted in the middle of activation);
		// it reach nothing either way.
		if active := l.Status.Phase == v1alpha1.LinkActive; active && builtins[name] != 1 || !active && builtins[name] > 1 {
			fail("link %s (%s) has %d built-in roles", name, l.Status.Phase, builtins[name])
		}
	}
	for i := range rooms.Items {
		r := &rooms.Items[i]
		want := scope.PartnersOf(r, reach)
		if !scope.AccessLabelsMatch(r, want) || !slices.Equal(r.Status.Partners, want) {
			fail("room %s: labels %v / partners %v, want %v", r.Name, r.Labels, r.Status.Partners, want)
		}
	}
	return problems
}

// auditedOnce finds audit lines recorded more often than the changes they
// record could have happened: at most once per object churn created under a
// name. (A crash between a change and its line may lose the line; nothing
// may repeat it.)
func auditedOnce(log string, made creates) []string {
	kinds := []struct {
		detail string
		limit  map[string]int
	}{
		{"; the invitation expires at", made.invitations},
		{" accepted the invitation by ", made.invitations},
		{" did not accept before ", made.invitations},
		{" is now a partner of this tenant", made.links},
		{"offboarded ", made.links},
	}
	counts := map[string]int{}
	var problems []string
	for text := range strings.SplitSeq(log, "\n") {
		var line audit.Line
		if text == "" || json.Unmarshal([]byte(text), &line) != nil {
			continue
		}
		for _, k := range kinds {
			if strings.Contains(line.Detail, k.detail) {
				key := k.detail + "\x00" + line.ObjectName
				if counts[key]++; counts[key] == k.limit[line.ObjectName]+1 {
					problems = append(problems, fmt.Sprintf("%q recorded more than %d time(s) for %s", k.detail, k.limit[line.ObjectName], line.ObjectName))
				}
			}
		}
	}
	return problems
}
