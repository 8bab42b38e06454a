package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authz"
)

const (
	ns       = "tenant-a"
	operator = "system:serviceaccount:partner-operator-system:partner-operator-controller-manager"
	tm       = "tm@contoso.com"
	alice    = "alice@contoso.com"
	customer = "admin@customer.org"
)

var (
	created = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	clk     = clocktesting.NewFakePassiveClock(created.Add(time.Hour))
	opts    = Options{OperatorUser: operator, Clock: clk, TenantManagerGroup: "tenant-managers", IsPartnerDomain: func(d string) bool { return d == "contoso.com" || d == "fabrikam.com" },
		Holdings: testHoldings}
)

// testHoldings: alice is contoso's primary admin; carol@contoso.com holds
// roles.modify, roles.view, rooms.view and tickets.view on site=nyc.
func testHoldings(_, user string, _ []string, link string) []authz.Holding {
	switch {
	case link == "contoso" && user == alice:
		return []authz.Holding{{Permissions: v1alpha1.PrimaryAdminPermissions}}
	case link == "contoso" && user == carol:
		return []authz.Holding{{Permissions: []v1alpha1.Permission{v1alpha1.RolesModify, v1alpha1.RolesView, v1alpha1.RoomsView, v1alpha1.TicketsView},
			Scope: &v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"site": "nyc"}}}}}
	}
	return nil
}

const carol = "carol@contoso.com"

// as is the context of an admission request by user.
func as(user string, groups ...string) context.Context {
	return admission.NewContextWithRequest(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: admissionv1.Create,
		UserInfo:  authenticationv1.UserInfo{Username: user, Groups: groups},
	}})
}

func reader(objs ...client.Object) client.Reader {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	// The domains opts treats as partners' are registered, as in a cluster,
	// and the tenant's namespace exists (unless objs holds one).
	objs = append(objs, organization("contoso.com"), organization("fabrikam.com"))
	if !slices.ContainsFunc(objs, func(o client.Object) bool { _, ok := o.(*corev1.Namespace); return ok }) {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
}

func organization(domain string) *v1alpha1.PartnerOrganization {
	return &v1alpha1.PartnerOrganization{
		ObjectMeta: metav1.ObjectMeta{Name: domain},
		Spec:       v1alpha1.PartnerOrganizationSpec{Domain: v1alpha1.Domain(domain), DisplayName: domain},
	}
}

func invitation(name, domain string, phase v1alpha1.InvitationPhase) *v1alpha1.PartnerInvitation {
	return &v1alpha1.PartnerInvitation{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(created)},
		Spec:       v1alpha1.PartnerInvitationSpec{PartnerDomain: v1alpha1.Domain(domain), ExpiryDays: 1, TermsAccepted: true},
		Status:     v1alpha1.PartnerInvitationStatus{Phase: phase},
	}
}

// link is a link as the mutating webhook hands it to validation, with the
// UID of invitation(name) recorded.
func link(name string) *v1alpha1.PartnerLink {
	return &v1alpha1.PartnerLink{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Annotations: map[string]string{v1alpha1.AnnotationInvitationUID: "uid-" + name}},
		Spec: v1alpha1.PartnerLinkSpec{Invitation: name, PartnerDomain: "contoso.com",
			PrimaryAdmins: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: alice}}},
	}
}

func role(name string, members ...v1alpha1.Subject) *v1alpha1.PartnerRole {
	return &v1alpha1.PartnerRole{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso", Permissions: []v1alpha1.Permission{v1alpha1.TicketsView},
			Assignments: []v1alpha1.RoleAssignment{{Name: "a", Members: members}}},
	}
}

// scopedRole is a tickets.view role for carol on a scope.
func scopedRole(sel *metav1.LabelSelector, names []string) *v1alpha1.PartnerRole {
	r := role("x", user(carol))
	r.Spec.Assignments[0].Scope = v1alpha1.RoomScope{Selector: sel, Names: names}
	return r
}

func user(n string) v1alpha1.Subject  { return v1alpha1.Subject{Kind: v1alpha1.UserSubject, Name: n} }
func group(n string) v1alpha1.Subject { return v1alpha1.Subject{Kind: v1alpha1.GroupSubject, Name: n} }

// expect asserts err is nil (want == "") or contains every part of want,
// separated by "|".
func expect(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("rejected: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("accepted, want an error with %q", want)
	}
	for part := range strings.SplitSeq(want, "|") {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not contain %q", err, part)
		}
	}
}

func TestLinkCreate(t *testing.T) {
	pending := invitation("contoso", "contoso.com", v1alpha1.InvitationPending)
	managers := "contoso.com:tenant-managers"
	cases := []struct {
		name string
		ctx  context.Context
		objs []client.Object
		link *v1alpha1.PartnerLink
		want string
	}{
		{"a tenant manager accepts a pending invitation", as(tm, managers), []client.Object{pending}, link("contoso"), ""},
		{"a user who is not a tenant manager", as(alice), []client.Object{pending}, link("contoso"), "only members of contoso.com:tenant-managers may accept"},
		{"a tenant manager of another domain", as("tm@fabrikam.com", "fabrikam.com:tenant-managers"), []client.Object{pending}, link("contoso"), "only members of contoso.com:tenant-managers"},
		{"a contoso user in fabrikam's managers group", as(alice, "fabrikam.com:tenant-managers"), []client.Object{pending}, link("contoso"), "only members of contoso.com:tenant-managers"},
		{"the customer's admin", as(customer, "system:masters"), []client.Object{pending}, link("contoso"), "only members of contoso.com:tenant-managers"},
		{"a missing invitation", as(tm, managers), nil, link("contoso"), `spec.invitation: Not found: "contoso"`},
		{"a second partnership of the domain in the namespace", as(tm, managers),
			[]client.Object{invitation("contoso-2", "contoso.com", v1alpha1.InvitationPending), link("contoso")}, func() *v1alpha1.PartnerLink {
				l := link("contoso-2")
				return l
			}(), `contoso.com already has a partnership in namespace|PartnerLink "contoso"`},
		{"a partnership after the first one is being deleted", as(tm, managers),
			[]client.Object{invitation("contoso-2", "contoso.com", v1alpha1.InvitationPending), func() *v1alpha1.PartnerLink {
				l := link("contoso")
				now := metav1.Now()
				l.DeletionTimestamp, l.Finalizers = &now, []string{v1alpha1.GroupVersion.Group + "/offboard"}
				return l
			}()}, link("contoso-2"), ""},
		{"a new relationship next to an expired one", as(tm, managers),
			[]client.Object{invitation("contoso-2", "contoso.com", v1alpha1.InvitationPending), func() *v1alpha1.PartnerLink {
				l := link("contoso")
				l.Status.Phase = v1alpha1.LinkExpired
				return l
			}()}, link("contoso-2"), ""},
		{"an invitation of another domain", as(tm, managers), []client.Object{invitation("contoso", "fabrikam.com", "")}, link("contoso"), "spec.partnerDomain|is for fabrikam.com"},
		{"an accepted invitation", as(tm, managers), []client.Object{invitation("contoso", "contoso.com", v1alpha1.InvitationAccepted)}, link("contoso"), "spec.invitation|already accepted"},
		{"an invitation marked expired", as(tm, managers), []client.Object{invitation("contoso", "contoso.com", v1alpha1.InvitationExpired)}, link("contoso"), "spec.invitation|expired at 2026-11-02T00:00:00Z"},
		{"an invitation replaced after the mutating webhook read it", as(tm, managers), []client.Object{func() *v1alpha1.PartnerInvitation {
			again := pending.DeepCopy()
			again.UID = "uid-contoso-again"
			return again
		}()}, link("contoso"), `metadata.annotations[partners.roompro.io/invitation-uid]|the invitation was replaced`},
		{"a primary admin of another domain", as(tm, managers), []client.Object{pending}, func() *v1alpha1.PartnerLink {
			l := link("contoso")
			l.Spec.PrimaryAdmins = append(l.Spec.PrimaryAdmins, user("bob@fabrikam.com"))
			return l
		}(), "spec.primaryAdmins[1].name|name@contoso.com"},
		{"a tenant manager of an unregistered domain", as("tm@northwind.com", "northwind.com:tenant-managers"),
			[]client.Object{invitation("northwind", "northwind.com", "")}, func() *v1alpha1.PartnerLink {
				l := link("northwind")
				l.Spec.PartnerDomain = "northwind.com"
				l.Spec.PrimaryAdmins = []v1alpha1.Subject{user("alice@northwind.com")}
				return l
			}(), `spec.partnerDomain: Invalid value: "northwind.com": not a registered partner organization; registered: contoso.com, fabrikam.com`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&linkValidator{reader: reader(tc.objs...), opts: opts}).ValidateCreate(tc.ctx, tc.link)
			expect(t, err, tc.want)
		})
	}

	t.Run("an invitation past its deadline but not yet marked", func(t *testing.T) {
		late := opts
		late.Clock = clocktesting.NewFakePassiveClock(created.Add(25 * time.Hour))
		_, err := (&linkValidator{reader: reader(pending), opts: late}).ValidateCreate(as(tm, managers), link("contoso"))
		expect(t, err, "expired at")
	})
}

func TestLinkKeepsItsInvitationUID(t *testing.T) {
	old := link("contoso")
	changed := old.DeepCopy()
	changed.Annotations[v1alpha1.AnnotationInvitationUID] = "uid-of-a-later-invitation"
	for _, u := range []string{tm, customer, operator} {
		_, err := (&linkValidator{reader: reader(), opts: opts}).ValidateUpdate(as(u), old, changed)
		expect(t, err, "metadata.annotations[partners.roompro.io/invitation-uid]|cannot be changed")
	}
}

// The link's mutating webhook records the UID of the invitation it reads,
// whatever the request said.
func TestLinkStampRecordsTheInvitationUID(t *testing.T) {
	inv := invitation("contoso", "contoso.com", v1alpha1.InvitationPending)
	for name, tc := range map[string]struct{ raw, want string }{
		"no annotations":       {`{"metadata":{"name":"contoso"},"spec":{"invitation":"contoso"}}`, "uid-contoso"},
		"a forged UID":         {`{"metadata":{"name":"contoso","annotations":{"partners.roompro.io/invitation-uid":"forged"}},"spec":{"invitation":"contoso"}}`, "uid-contoso"},
		"a missing invitation": {`{"metadata":{"name":"ghost","annotations":{"partners.roompro.io/invitation-uid":"forged"}},"spec":{"invitation":"ghost"}}`, ""},
	} {
		t.Run(name, func(t *testing.T) {
			resp := stamper{more: linkInvitationUID(reader(inv))}.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
				Operation: admissionv1.Create, Namespace: ns, UserInfo: authenticationv1.UserInfo{Username: tm},
				Object: runtime.RawExtension{Raw: []byte(tc.raw)},
			}})
			if !resp.Allowed {
				t.Fatalf("response %+v", resp)
			}
			patched, err := jsonpatch.DecodePatch(mustJSON(t, resp.Patches))
			if err != nil {
				t.Fatal(err)
			}
			out, err := patched.Apply([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			var obj struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			if err := json.Unmarshal(out, &obj); err != nil {
				t.Fatal(err)
			}
			if got := obj.Metadata.Annotations[v1alpha1.AnnotationInvitationUID]; got != tc.want {
				t.Errorf("invitation-uid = %q, want %q", got, tc.want)
			}
			if got := obj.Metadata.Annotations[v1alpha1.AnnotationRequestedBy]; got != tm {
				t.Errorf("requested-by = %q, want %q", got, tm)
			}
		})
	}
}

func TestInvitation(t *testing.T) {
	// Every category may be Manual: tickets are held since the Ticket kind
	// exists, and settings holds nothing (no partner role can hold a
	// settings permission).
	allManual := invitation("contoso", "contoso.com", "")
	allManual.Spec.Approvals = v1alpha1.Approvals{Rooms: v1alpha1.ApprovalManual, Roles: v1alpha1.ApprovalManual,
		Settings: v1alpha1.ApprovalManual, Tickets: v1alpha1.ApprovalManual}
	_, err := (&invitationValidator{reader: reader(), opts: opts}).ValidateCreate(as(customer), allManual)
	expect(t, err, "")

	badSelector := invitation("contoso", "contoso.com", "")
	badSelector.Spec.Rooms.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"bad key!": "x"}}
	_, err = (&invitationValidator{reader: reader(), opts: opts}).ValidateCreate(as(customer), badSelector)
	expect(t, err, "spec.rooms.selector.matchLabels")

	_, err = (&invitationValidator{reader: reader(), opts: opts}).ValidateCreate(as(alice), invitation("x", "contoso.com", ""))
	expect(t, err, "invitations are written by the customer only")

	_, err = (&invitationValidator{reader: reader(), opts: opts}).ValidateCreate(as(customer), invitation("x", "contoso.com", ""))
	expect(t, err, "")
}

func TestRole(t *testing.T) {
	objs := []client.Object{link("contoso")}
	v := &roleValidator{changes{reader: reader(objs...), opts: opts}}
	cases := []struct {
		name string
		ctx  context.Context
		role *v1alpha1.PartnerRole
		want string
	}{
		{"a help-desk role by a primary admin", as(alice), role("helpdesk", group("contoso.com:helpdesk"), user("carol@contoso.com")), ""},
		{"a member of another domain", as(alice), role("x", user("bob@fabrikam.com")), "spec.assignments[0].members[0].name|name@contoso.com"},
		{"a group of another domain", as(alice), role("x", group("fabrikam.com:helpdesk")), "spec.assignments[0].members[0].name|contoso.com:<group>"},
		{"a system: group", as(alice), role("x", group("system:authenticated")), "spec.assignments[0].members[0].name|never partner members"},
		{"a service account", as(alice), role("x", user("system:serviceaccount:a:b")), "never partner members"},
		{"a permission partners cannot hold", as(alice), func() *v1alpha1.PartnerRole {
			r := role("x", user("carol@contoso.com"))
			r.Spec.Permissions = []v1alpha1.Permission{v1alpha1.RoomsResetKey}
			return r
		}(), "spec.permissions[0]|rooms.resetKey"},
		{"a missing link", as(alice), func() *v1alpha1.PartnerRole {
			r := role("x", user("carol@contoso.com"))
			r.Spec.PartnerLink = "gone"
			return r
		}(), `spec.partnerLink: Not found: "gone"`},
		{"a partner writing another partner's role", as("bob@fabrikam.com"), role("x", user("carol@contoso.com")), "may only write roles of its own partner links"},
		{"a partner without roles.modify on the link", as("dave@contoso.com"), role("x", user("dave@contoso.com")), "holds no roles.modify on PartnerLink \"contoso\""},
		{"a malformed name under the partner domain", as("System:alice@contoso.com"), role("x", user("carol@contoso.com")), "holds no roles.modify"},
		{"a scoped writer grants its own permission on its own selector, narrowed", as(carol), scopedRole(&metav1.LabelSelector{MatchLabels: map[string]string{"site": "nyc", "floor": "3"}}, nil), ""},
		{"a scoped writer grants on the whole scope", as(carol), role("x", user(carol)), "spec.assignments[0].scope|tickets.view|within its own"},
		{"a scoped writer grants on another selector", as(carol), scopedRole(&metav1.LabelSelector{MatchLabels: map[string]string{"site": "ber"}}, nil), "spec.assignments[0].scope|tickets.view"},
		{"a scoped writer grants by name", as(carol), scopedRole(nil, []string{"nyc-1"}), "spec.assignments[0].scope"},
		{"a scoped writer grants what it lacks", as(carol), func() *v1alpha1.PartnerRole {
			r := scopedRole(&metav1.LabelSelector{MatchLabels: map[string]string{"site": "nyc"}}, nil)
			r.Spec.Permissions = []v1alpha1.Permission{v1alpha1.RoomsView, v1alpha1.UpdateRingsModify}
			return r
		}(), "spec.assignments[0].scope|grants updateRings.modify on"},
		{"a partner sets an owner reference", as(alice), func() *v1alpha1.PartnerRole {
			r := role("x", user(carol))
			r.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "1"}}
			return r
		}(), "metadata.ownerReferences"},
		{"a partner sets a finalizer", as(alice), func() *v1alpha1.PartnerRole {
			r := role("x", user(carol))
			r.Finalizers = []string{"example.com/block"}
			return r
		}(), "metadata.finalizers"},
		{"a partner sets a label of this API", as(alice), func() *v1alpha1.PartnerRole {
			r := role("x", user(carol))
			r.Labels = map[string]string{"access.partners.roompro.io/contoso.com": "true"}
			return r
		}(), "metadata.labels[access.partners.roompro.io/contoso.com]"},
		{"a partner sets its own tracking label", as(alice), func() *v1alpha1.PartnerRole {
			r := role("x", user(carol))
			r.Labels = map[string]string{"app.kubernetes.io/instance": "helpdesk"}
			r.Annotations = map[string]string{"argocd.argoproj.io/tracking-id": "x", v1alpha1.AnnotationRequestedBy: alice} // the mutating webhook stamps it
			return r
		}(), ""},
		{"builtin set by a user", as(alice), func() *v1alpha1.PartnerRole {
			r := role("contoso-primary-admins", user(alice))
			r.Spec.Builtin = v1alpha1.BuiltinPrimaryAdmin
			return r
		}(), "spec.builtin|set by the operator only"},
		{"builtin set by the operator", as(operator), func() *v1alpha1.PartnerRole {
			r := role("contoso-primary-admins", user(alice))
			r.Spec.Builtin = v1alpha1.BuiltinPrimaryAdmin
			return r
		}(), ""},
		{"a bad scope selector", as(alice), func() *v1alpha1.PartnerRole {
			r := role("x", user("carol@contoso.com"))
			r.Spec.Assignments[0].Scope.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "site", Operator: "Like"}}}
			return r
		}(), "spec.assignments[0].scope.selector.matchExpressions[0].operator"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.ValidateCreate(tc.ctx, tc.role)
			expect(t, err, tc.want)
		})
	}
}

// withWindow sets the window of a role's first assignment; a zero time is
// no bound.
func withWindow(r *v1alpha1.PartnerRole, from, until time.Time) *v1alpha1.PartnerRole {
	if !from.IsZero() {
		r.Spec.Assignments[0].ValidFrom = &metav1.Time{Time: from}
	}
	if !until.IsZero() {
		r.Spec.Assignments[0].ValidUntil = &metav1.Time{Time: until}
	}
	return r
}

func TestRoleWindows(t *testing.T) {
	v := &roleValidator{changes{reader: reader(link("contoso")), opts: opts}}
	t0 := created.Add(2 * time.Hour)
	nycWriter := func() *v1alpha1.PartnerRole {
		return scopedRole(&metav1.LabelSelector{MatchLabels: map[string]string{"site": "nyc"}}, nil)
	}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		role *v1alpha1.PartnerRole
		want string
	}{
		{"a primary admin grants for four hours", as(alice), withWindow(role("x", user(carol)), t0, t0.Add(4*time.Hour)), ""},
		{"a window that starts only", as(alice), withWindow(role("x", user(carol)), t0, time.Time{}), ""},
		{"a window that ends only", as(alice), withWindow(role("x", user(carol)), time.Time{}, t0), ""},
		{"a window in the past grants nothing, and is no error", as(alice), withWindow(role("x", user(carol)), created.Add(-2*time.Hour), created.Add(-time.Hour)), ""},
		{"a scoped roles.modify holder windows its own grant", as(carol), withWindow(nycWriter(), t0, t0.Add(time.Hour)), ""},
		{"a window widens nothing: the scope is judged as without it", as(carol), withWindow(role("x", user(carol)), t0, t0.Add(time.Hour)), "spec.assignments[0].scope|tickets.view"},
		{"validFrom after validUntil", as(alice), withWindow(role("x", user(carol)), t0.Add(time.Hour), t0),
			"spec.assignments[0].validUntil|must be later than validFrom|[validFrom, validUntil)"},
		{"an empty window", as(alice), withWindow(role("x", user(carol)), t0, t0), "spec.assignments[0].validUntil|must be later than validFrom"},
		{"the customer is held to the same rule", as(customer), withWindow(role("x", user(carol)), t0, t0), "spec.assignments[0].validUntil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.ValidateCreate(tc.ctx, tc.role)
			expect(t, err, tc.want)
		})
	}
}

func TestPrimaryAdminInvariantCountsOnlyUnwindowedMembers(t *testing.T) {
	v := &roleValidator{changes{reader: reader(link("contoso")), opts: opts}}
	builtin := role("contoso-primary-admins", user(alice))
	builtin.Spec.Builtin = v1alpha1.BuiltinPrimaryAdmin
	t0 := created.Add(2 * time.Hour)

	for _, tc := range []struct {
		name  string
		edit  func(*v1alpha1.PartnerRole)
		want  string
		field string
	}{
		{"its only member windowed", func(r *v1alpha1.PartnerRole) { withWindow(r, t0, t0.Add(time.Hour)) },
			"without validFrom or validUntil|whatever the time", "spec.assignments: Required value"},
		{"its only member with an end", func(r *v1alpha1.PartnerRole) { withWindow(r, time.Time{}, t0) },
			"without validFrom or validUntil", "spec.assignments: Required value"},
		{"a windowed primary admin added beside the permanent one", func(r *v1alpha1.PartnerRole) {
			r.Spec.Assignments = append(r.Spec.Assignments, v1alpha1.RoleAssignment{Name: "jit", Members: []v1alpha1.Subject{user(carol)},
				ValidFrom: &metav1.Time{Time: t0}, ValidUntil: &metav1.Time{Time: t0.Add(time.Hour)}})
		}, "", ""},
		{"the permanent one removed, a windowed one left", func(r *v1alpha1.PartnerRole) {
			r.Spec.Assignments = []v1alpha1.RoleAssignment{{Name: "jit", Members: []v1alpha1.Subject{user(carol)}, ValidUntil: &metav1.Time{Time: t0}}}
		}, "must keep at least one member in an assignment without validFrom or validUntil", "spec.assignments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edited := builtin.DeepCopy()
			tc.edit(edited)
			_, err := v.ValidateUpdate(as(alice), builtin, edited)
			expect(t, err, tc.want)
			if tc.field != "" {
				expect(t, err, tc.field)
			}
		})
	}
}

func TestPrimaryAdminInvariant(t *testing.T) {
	builtin := role("contoso-primary-admins", user(alice))
	builtin.Spec.Builtin = v1alpha1.BuiltinPrimaryAdmin
	emptied := builtin.DeepCopy()
	emptied.Spec.Assignments[0].Members = nil

	v := &roleValidator{changes{reader: reader(link("contoso")), opts: opts}}
	_, err := v.ValidateUpdate(as(alice), builtin, emptied)
	expect(t, err, "removing the last primary admin is not allowed")

	_, err = v.ValidateDelete(as(alice), builtin)
	expect(t, err, `cannot be deleted while PartnerLink "contoso" exists`)
	_, err = v.ValidateDelete(as(customer), builtin)
	expect(t, err, "cannot be deleted while PartnerLink")
	_, err = v.ValidateDelete(as(operator), builtin)
	expect(t, err, "")

	terminating := link("contoso")
	now := metav1.Now()
	terminating.DeletionTimestamp, terminating.Finalizers = &now, []string{"partners.roompro.io/offboard"}
	_, err = (&roleValidator{changes{reader: reader(terminating), opts: opts}}).ValidateDelete(as(customer), builtin)
	expect(t, err, "")

	_, err = v.ValidateDelete(as(customer), role("helpdesk", user("carol@contoso.com")))
	expect(t, err, "")

	// The namespace's deletion takes the link too: the namespace controller
	// deletes the role, before or after the link, and is not refused.
	deleted := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, DeletionTimestamp: &now, Finalizers: []string{"kubernetes"}},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	inDeletedNamespace := &roleValidator{changes{reader: reader(link("contoso"), deleted), opts: opts}}
	_, err = inDeletedNamespace.ValidateDelete(as("system:serviceaccount:kube-system:namespace-controller", "system:serviceaccounts"), builtin)
	expect(t, err, "")
	// The exception is the namespace's deletion's, not the partner's.
	_, err = inDeletedNamespace.ValidateDelete(as(alice), builtin)
	expect(t, err, "cannot be deleted while PartnerLink")

	// A role created for a leaving link would outlive its offboarding.
	for _, u := range []string{alice, customer} {
		_, err = (&roleValidator{changes{reader: reader(terminating), opts: opts}}).ValidateCreate(as(u), role("contoso-helpdesk", user(carol)))
		expect(t, err, `spec.partnerLink: Not found: "contoso"`)
	}
}

func TestAssignment(t *testing.T) {
	a := &v1alpha1.RoomAssignment{ObjectMeta: metav1.ObjectMeta{Name: "extra", Namespace: ns},
		Spec: v1alpha1.RoomAssignmentSpec{PartnerLink: "contoso", Rooms: v1alpha1.RoomScope{Names: []string{"ber"}}}}
	v := &assignmentValidator{reader: reader(link("contoso")), opts: opts}
	_, err := v.ValidateCreate(as(customer), a)
	expect(t, err, "")
	_, err = v.ValidateCreate(as(alice), a)
	expect(t, err, "RoomAssignments are written by the customer only")
	_, err = v.ValidateUpdate(as(alice), a, a)
	expect(t, err, "RoomAssignments are written by the customer only")
	_, err = v.ValidateDelete(as(alice), a)
	expect(t, err, "RoomAssignments are written by the customer only")
	stale := a.DeepCopy()
	stale.Spec.PartnerLink = "gone"
	_, err = v.ValidateCreate(as(customer), stale)
	expect(t, err, `spec.partnerLink: Not found: "gone"`)
}

func TestRoom(t *testing.T) {
	old := &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: "nyc", Namespace: ns, Labels: map[string]string{"country": "us"}},
		Spec: v1alpha1.RoomSpec{DisplayName: "NYC"}}
	v := &roomValidator{changes{reader: reader(), opts: opts}}

	renamed := old.DeepCopy()
	renamed.Spec.DisplayName = "New York"
	_, err := v.ValidateUpdate(as(alice), old, renamed)
	expect(t, err, "")

	relabelled := old.DeepCopy()
	relabelled.Labels["country"] = "de"
	_, err = v.ValidateUpdate(as(alice), old, relabelled)
	expect(t, err, "metadata.labels[country]|partners may change a room's spec, not its labels")
	_, err = v.ValidateUpdate(as(customer), old, relabelled)
	expect(t, err, "")

	grabbed := old.DeepCopy()
	grabbed.Labels[v1alpha1.AccessLabel("contoso.com")] = "true"
	_, err = v.ValidateUpdate(as(customer), old, grabbed)
	expect(t, err, "metadata.labels[access.partners.roompro.io/contoso.com]|maintained by the partner-operator")
	_, err = v.ValidateUpdate(as(operator), old, grabbed)
	expect(t, err, "")
	_, err = v.ValidateCreate(as(customer), grabbed)
	expect(t, err, "maintained by the partner-operator")

	// Every part of metadata is the customer's or the operator's: a
	// partner's write that touches one is refused, whoever it is.
	for name, tc := range map[string]struct {
		mutate func(*v1alpha1.Room)
		want   string
	}{
		"an owner reference": {func(r *v1alpha1.Room) {
			r.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "00000000-0000-0000-0000-000000000001"}}
		}, "metadata.ownerReferences|garbage collector"},
		"a finalizer":     {func(r *v1alpha1.Room) { r.Finalizers = []string{"example.com/block"} }, "metadata.finalizers|block deletes"},
		"an annotation":   {func(r *v1alpha1.Room) { r.Annotations = map[string]string{"x": "y"} }, "metadata.annotations"},
		"a generateName":  {func(r *v1alpha1.Room) { r.GenerateName = "x-" }, "metadata.generateName"},
		"a removed label": {func(r *v1alpha1.Room) { delete(r.Labels, "country") }, "metadata.labels[country]"},
	} {
		t.Run(name, func(t *testing.T) {
			changed := old.DeepCopy()
			tc.mutate(changed)
			for _, u := range []string{alice, "System:alice@contoso.com", "ops@eu.contoso.com"} {
				_, err := v.ValidateUpdate(as(u), old, changed)
				expect(t, err, tc.want)
			}
			_, err := v.ValidateUpdate(as(customer), old, changed)
			expect(t, err, "")
		})
	}
}

func TestRequestedByIsStampedAndKept(t *testing.T) {
	for name, raw := range map[string]string{
		"no annotations":   `{"metadata":{"name":"contoso"},"spec":{}}`,
		"a forged stamp":   `{"metadata":{"name":"contoso","annotations":{"partners.roompro.io/requested-by":"someone-else","x":"y"}}}`,
		"other annotation": `{"metadata":{"name":"contoso","annotations":{"x":"y"}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			resp := stamper{}.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
				Operation: admissionv1.Create, UserInfo: authenticationv1.UserInfo{Username: customer},
				Object: runtime.RawExtension{Raw: []byte(raw)},
			}})
			if !resp.Allowed || len(resp.Patches) != 1 {
				t.Fatalf("response %+v, want one patch", resp)
			}
			patched, err := jsonpatch.DecodePatch(mustJSON(t, resp.Patches))
			if err != nil {
				t.Fatal(err)
			}
			out, err := patched.Apply([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			var obj struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
				Spec     *json.RawMessage  `json:"spec"`
			}
			if err := json.Unmarshal(out, &obj); err != nil {
				t.Fatal(err)
			}
			if got := obj.Metadata.Annotations[v1alpha1.AnnotationRequestedBy]; got != customer {
				t.Errorf("requested-by = %q, want %q", got, customer)
			}
			if strings.Contains(raw, `"x":"y"`) && obj.Metadata.Annotations["x"] != "y" {
				t.Error("the stamp dropped another annotation")
			}
		})
	}

	inv := invitation("contoso", "contoso.com", "")
	inv.Annotations = map[string]string{v1alpha1.AnnotationRequestedBy: customer}
	forged := inv.DeepCopy()
	forged.Annotations[v1alpha1.AnnotationRequestedBy] = "mallory"
	_, err := (&invitationValidator{reader: reader(), opts: opts}).ValidateUpdate(as(customer), inv, forged)
	expect(t, err, "metadata.annotations[partners.roompro.io/requested-by]|cannot be changed")
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestOrphanedRoleMetadataCanChange(t *testing.T) {
	old := role("helpdesk", user("carol@contoso.com"))
	relabelled := old.DeepCopy()
	relabelled.Labels = map[string]string{"team": "ops"}
	v := &roleValidator{changes{reader: reader(), opts: opts}} // the link is gone
	_, err := v.ValidateUpdate(as(customer), old, relabelled)
	expect(t, err, "")
	respec := relabelled.DeepCopy()
	respec.Spec.Permissions = []v1alpha1.Permission{v1alpha1.RoomsView}
	_, err = v.ValidateUpdate(as(customer), old, respec)
	expect(t, err, `spec.partnerLink: Not found: "contoso"`)
}

// TestInvitationNamesOnlyARegisteredPartner: no tenant makes a domain a
// partner's by inviting it; the refusal says which domains may be invited.
func TestInvitationNamesOnlyARegisteredPartner(t *testing.T) {
	_, err := (&invitationValidator{reader: reader(), opts: opts}).ValidateCreate(as(customer), invitation("x", "fourthcoffee.com", ""))
	expect(t, err, `spec.partnerDomain: Invalid value: "fourthcoffee.com": not a registered partner organization; registered: contoso.com, fabrikam.com`)

	// An update of an invitation whose registration went is still judged
	// (it must stay declinable and expire), not refused for the registration.
	old := invitation("x", "fourthcoffee.com", "")
	_, err = (&invitationValidator{reader: reader(), opts: opts}).ValidateUpdate(as(customer), old, old.DeepCopy())
	expect(t, err, "")
}

func TestValidateRegistered(t *testing.T) {
	path := field.NewPath("spec", "partnerDomain")
	if errs := validateRegistered("contoso.com", []string{"fabrikam.com", "contoso.com"}, path); len(errs) != 0 {
		t.Errorf("a registered domain: %v", errs)
	}
	for _, tc := range []struct {
		domains []string
		want    string
	}{
		{nil, "registered: none"},
		{[]string{"fabrikam.com", "contoso.com"}, "registered: contoso.com, fabrikam.com"},
		{func() []string {
			var many []string
			for i := range 25 {
				many = append(many, fmt.Sprintf("p%02d.example.com", i))
			}
			return many
		}(), "p19.example.com and 5 more"},
	} {
		errs := validateRegistered("fourthcoffee.com", tc.domains, path)
		if len(errs) != 1 || errs[0].Field != "spec.partnerDomain" || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("%v: got %v, want one error on spec.partnerDomain with %q", tc.domains, errs, tc.want)
		}
	}
}

// TestOrganizationDelete: a registration goes only when no link and no
// pending invitation names it.
func TestOrganizationDelete(t *testing.T) {
	contosoLink := &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-b", Name: "contoso"},
		Spec: v1alpha1.PartnerLinkSpec{Invitation: "contoso", PartnerDomain: "contoso.com"}}
	cases := []struct {
		name string
		objs []client.Object
		want string
	}{
		{"nothing names it", []client.Object{invitation("f", "fabrikam.com", "")}, ""},
		{"only accepted and expired invitations", []client.Object{
			invitation("a", "contoso.com", v1alpha1.InvitationAccepted), invitation("e", "contoso.com", v1alpha1.InvitationExpired),
		}, ""},
		{"a pending invitation past its deadline", []client.Object{func() *v1alpha1.PartnerInvitation {
			inv := invitation("late", "contoso.com", v1alpha1.InvitationPending)
			inv.CreationTimestamp = metav1.NewTime(created.Add(-48 * time.Hour))
			return inv
		}()}, ""},
		{"a pending invitation", []client.Object{invitation("p", "contoso.com", v1alpha1.InvitationPending)},
			"contoso.com is still named by PartnerInvitation tenant-a/p; delete them first"},
		{"a link of another namespace", []client.Object{contosoLink}, "is still named by PartnerLink tenant-b/contoso; delete them first"},
		{"many", []client.Object{contosoLink, invitation("p", "contoso.com", ""), invitation("q", "contoso.com", "")},
			"PartnerLink tenant-b/contoso and PartnerInvitation tenant-a/p and 1 more; delete them first"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&organizationValidator{reader: reader(tc.objs...), opts: opts}).ValidateDelete(as(customer), organization("contoso.com"))
			expect(t, err, tc.want)
			if tc.want != "" && !apierrors.IsForbidden(err) {
				t.Errorf("want Forbidden, got %v", err)
			}
		})
	}
}
