package rbac

import (
	"fmt"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/testenv"
)

// The customer roles as shipped (config/customer-roles), each bound with a
// RoleBinding in the tenant's namespace to a customer user, and asked of
// the apiserver's RBAC what admission asks it before a decision (the custom
// verb approve on partnerchangerequests) and what a reviewer needs: only
// partner-approver and pro-manager decide; site-lead and site-tech neither
// read nor decide requests; view (partners-view) reads them and decides
// nothing; and a binding in one namespace decides nothing in another.
func TestTheCustomerRolesDecideChangeRequests(t *testing.T) {
	_, admin := testenv.StartControlPlane(t, controlplane.Options{})
	create(t, admin, render(t, "config/customer-roles"))
	const elsewhere = "other-tenant"
	for _, ns := range []string{tenant, elsewhere} {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	user := func(role string) string { return role + "@fourth-coffee.com" }
	roles := []string{"partner-approver", "pro-manager", "site-lead", "site-tech", "partners-view", "partners-edit"}
	for _, role := range roles {
		if err := admin.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user(role)}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	allowed := func(t *testing.T, who, namespace, verb string) bool {
		t.Helper()
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: who,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: namespace, Verb: verb, Group: v1alpha1.GroupVersion.Group,
				Resource: "partnerchangerequests", Name: "rooms-nyc-conf-a-1",
			},
		}}
		if err := admin.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		return sar.Status.Allowed
	}
	want := map[string]map[string]bool{
		"partner-approver": {"approve": true, "patch": true, "update": true, "get": true, "list": true, "watch": true, "create": false, "delete": false},
		"pro-manager":      {"approve": true, "patch": true, "update": true, "get": true, "list": true, "watch": true, "create": false, "delete": false},
		"site-lead":        {"approve": false, "patch": false, "update": false, "get": false, "list": false},
		"site-tech":        {"approve": false, "patch": false, "update": false, "get": false, "list": false},
		"partners-view":    {"approve": false, "patch": false, "get": true, "list": true, "watch": true},
		"partners-edit":    {"approve": false, "patch": false, "update": false, "create": false},
	}
	for _, role := range roles {
		for verb, w := range want[role] {
			t.Run(fmt.Sprintf("%s/%s", role, verb), func(t *testing.T) {
				if got := allowed(t, user(role), tenant, verb); got != w {
					t.Errorf("%s may %s partnerchangerequests in %s: %v, want %v", role, verb, tenant, got, w)
				}
				if allowed(t, user(role), elsewhere, verb) {
					t.Errorf("%s, bound in %s, may %s partnerchangerequests in %s", role, tenant, verb, elsewhere)
				}
			})
		}
	}
}
