package adversarial

import (
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// Class 7: time. A just-in-time grant ends at its validUntil, to the
// second, and nothing its holder writes outlives it: no role it grants
// without an end or with a later one, no edit of its own window. No partner
// identity moves the end of a relationship or of a window (the link's
// status, the invitation, the built-in role's members). It runs last: it
// steps the operator's clock.

const grace = "grace@contoso.com" // holds contoso-jit: roles.modify and rooms.view on site=nyc, for an hour

func testTime(t *testing.T) {
	start := fakeClock.Now().Truncate(time.Second)
	end := start.Add(time.Hour)
	jit := newRole(roleDef{ns: tenantA, name: "contoso-jit", link: "contoso", member: grace, scope: siteScope("nyc"),
		perms: []v1alpha1.Permission{v1alpha1.RolesModify, v1alpha1.RoomsView}})
	jit.Spec.Assignments[0].ValidFrom = &metav1.Time{Time: start.Add(-time.Minute)}
	jit.Spec.Assignments[0].ValidUntil = &metav1.Time{Time: end}
	if err := eventually(20*time.Second, func() error { return as(alice).Create(ctx, jit) }); err != nil {
		t.Fatalf("alice grants grace an hour: %v", err)
	}
	defer func() { _ = opUser.Delete(ctx, jit) }()
	if err := eventually(20*time.Second, func() error { return mayGet(grace, "nyc-1", true) }); err != nil {
		t.Fatal(err)
	}

	t.Run("a just-in-time holder grants only within its window", func(t *testing.T) {
		delegated := func(name string, until *time.Time) *v1alpha1.PartnerRole {
			r := newRole(roleDef{ns: tenantA, name: name, link: "contoso", member: dave, scope: siteScope("nyc"),
				perms: []v1alpha1.Permission{v1alpha1.RoomsView}})
			if until != nil {
				r.Spec.Assignments[0].ValidUntil = &metav1.Time{Time: *until}
			}
			return r
		}
		later, earlier := end.Add(time.Second), end.Add(-time.Minute)
		for _, c := range []struct {
			name  string
			role  *v1alpha1.PartnerRole
			allow bool
		}{
			{"without an end", delegated("contoso-grace-forever", nil), false},
			{"a second past its own end", delegated("contoso-grace-later", &later), false},
			{"ending before its own end", delegated("contoso-grace-earlier", &earlier), true},
		} {
			t.Run(c.name, func(t *testing.T) {
				err := as(grace).Create(ctx, c.role)
				defer func() { _ = opUser.Delete(ctx, c.role) }()
				switch {
				case c.allow && err != nil:
					t.Fatalf("refused: %v", err)
				case !c.allow && err == nil:
					t.Fatalf("admitted: a holder until %s granted rooms.view past it", end.Format(time.RFC3339))
				case !c.allow && !strings.Contains(err.Error(), "validUntil"):
					t.Fatalf("refused without naming validUntil: %v", err)
				case !c.allow:
					if err := opUser.Get(ctx, client.ObjectKeyFromObject(c.role), &v1alpha1.PartnerRole{}); err == nil {
						t.Fatal("refused, yet the role is stored")
					}
				}
			})
		}
	})

	t.Run("a just-in-time holder cannot lift its own end", func(t *testing.T) {
		patch := []byte(`[{"op":"remove","path":"/spec/assignments/0/validUntil"}]`)
		err := as(grace).Patch(ctx, jit.DeepCopy(), client.RawPatch(types.JSONPatchType, patch))
		if err == nil {
			t.Fatal("grace removed the validUntil of her own assignment")
		}
		stored := &v1alpha1.PartnerRole{}
		if err := opUser.Get(ctx, client.ObjectKeyFromObject(jit), stored); err != nil {
			t.Fatal(err)
		}
		if u := stored.Spec.Assignments[0].ValidUntil; u == nil || !u.Time.Equal(end) {
			t.Fatalf("validUntil is %v after a refused patch, want %s", u, end)
		}
	})

	t.Run("no partner identity moves an end", func(t *testing.T) {
		inTwoYears := fmt.Sprintf(`{"status":{"expiresAt":%q}}`, start.Add(2*365*24*time.Hour).Format(time.RFC3339))
		attempts := []struct {
			who    string
			groups []string
			obj    client.Object
			sub    bool
			patch  string
		}{
			{tmC, []string{tenantManagers(contoso)}, &v1alpha1.PartnerLink{}, true, inTwoYears},
			{alice, nil, &v1alpha1.PartnerLink{}, true, inTwoYears},
			{tmC, []string{tenantManagers(contoso)}, &v1alpha1.PartnerInvitation{}, false, `{"spec":{"relationship":{"durationDays":730,"autoExtend":true}}}`},
			{alice, nil, &v1alpha1.PartnerRole{}, false, `{"spec":{"assignments":[{"name":"members","members":[{"kind":"User","name":"alice@contoso.com"}],"validUntil":"` + end.Format(time.RFC3339) + `"}]}}`},
		}
		for _, a := range attempts {
			name := "contoso"
			if _, isRole := a.obj.(*v1alpha1.PartnerRole); isRole {
				name = "contoso-primary-admins"
			}
			a.obj.SetNamespace(tenantA)
			a.obj.SetName(name)
			c := as(a.who, a.groups...)
			var err error
			if a.sub {
				err = c.Status().Patch(ctx, a.obj, client.RawPatch(types.MergePatchType, []byte(a.patch)))
			} else {
				err = c.Patch(ctx, a.obj, client.RawPatch(types.MergePatchType, []byte(a.patch)))
			}
			if err == nil {
				t.Errorf("%s patched %T %s with %s", a.who, a.obj, name, a.patch)
			}
		}
	})

	t.Run("a window ends to the second, whatever the reconciles", func(t *testing.T) {
		fakeClock.SetTime(end.Add(-time.Second))
		if err := mayGet(grace, "nyc-1", true); err != nil {
			t.Fatalf("a second before validUntil: %v", err)
		}
		fakeClock.SetTime(end)
		if err := mayGet(grace, "nyc-1", false); err != nil {
			t.Fatalf("at validUntil: %v", err)
		}
	})
}

// mayGet asks the apiserver once whether user may get a room of tenant-a
// and returns an error unless the answer is allowed.
func mayGet(user, room string, allowed bool) error {
	st, err := review(authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{authenticated},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: tenantA, Verb: "get",
			Group: v1alpha1.GroupVersion.Group, Resource: "rooms", Name: room}})
	if err != nil {
		return err
	}
	if st.Allowed != allowed {
		return fmt.Errorf("%s get room %s/%s: allowed=%t (%s), want %t", user, tenantA, room, st.Allowed, st.Reason, allowed)
	}
	return nil
}
