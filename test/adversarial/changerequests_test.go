package adversarial

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// Class 5: PartnerChangeRequests (DESIGN.md, "Change control"). A partner
// user proposes (create) where its domain has an active link; reads the
// requests of the links it holds a role on, or of its partner's links as a
// tenant manager, one by name or listed by the label
// partners.roompro.io/partner-link=<link>; and never decides (approve),
// changes, deletes or writes the status of one. The matrix (class 2) asks
// every verb on every request name; this class asks the selectors, the
// tenant managers, and makes the real reads and writes.

// changeRequestDef is one request of the world. The suite creates them as
// the customer, with the label the admission webhook would set, so that
// they exist whatever admission does with a partner's proposal.
type changeRequestDef struct{ ns, name, link, room string }

var changeRequestDefs = []changeRequestDef{
	{tenantA, "contoso-rename-nyc", "contoso", "nyc-1"},
	{tenantA, "fabrikam-rename-sea", "fabrikam", "sea-1"},
	{tenantB, "fabrikam-rename-sea", "fabrikam", "sea-1"},
	// The name of contoso's request in tenant-a, in tenant-b, where contoso
	// has no link: a name alone never says which tenant or link.
	{tenantB, "contoso-rename-nyc", "fabrikam", "nyc-1"},
}

// changeRequestNames are the names the matrix asks about.
var changeRequestNames = []string{"contoso-rename-nyc", "fabrikam-rename-sea", "ghost", ""}

func newChangeRequest(d changeRequestDef) *v1alpha1.PartnerChangeRequest {
	object := fmt.Sprintf(`{"apiVersion":"partners.roompro.io/v1alpha1","kind":"Room","metadata":{"name":%q},"spec":{"displayName":"renamed","site":"x"}}`, d.room)
	return &v1alpha1.PartnerChangeRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: d.ns, Name: d.name, Labels: map[string]string{v1alpha1.LabelPartnerLink: d.link}},
		Spec: v1alpha1.PartnerChangeRequestSpec{PartnerLink: d.link, Category: v1alpha1.CategoryRooms, Operation: v1alpha1.OperationUpdate,
			Target:              v1alpha1.ChangeTarget{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Room", Name: d.room},
			Object:              &runtime.RawExtension{Raw: []byte(object)},
			BaseResourceVersion: "1", Reason: "adversarial"},
	}
}

func changeRequestLink(ns, name string) string {
	for _, d := range changeRequestDefs {
		if d.ns == ns && d.name == name {
			return d.link
		}
	}
	return ""
}

// readsChangeRequests: the user may read the requests of a link when it
// is an active link of the user's domain in ns and the user is a member of
// one of its roles, or in the tenant managers' group of its domain.
func readsChangeRequests(user string, groups []string, ns, link string) bool {
	if !slices.ContainsFunc(linkDefs, func(l linkDef) bool { return l.ns == ns && l.name == link && l.domain == domainOf(user) }) {
		return false
	}
	return slices.Contains(groups, tenantManagers(domainOf(user))) ||
		slices.ContainsFunc(roleDefs, func(r roleDef) bool { return r.ns == ns && r.link == link && r.member == user })
}

// allowedChangeRequest is the reference's verdict on partnerchangerequests.
func allowedChangeRequest(user string, groups []string, a *authorizationv1.ResourceAttributes) bool {
	if a.Subresource != "" {
		return false // status is the operator's
	}
	switch a.Verb {
	case "create":
		return slices.ContainsFunc(linkDefs, func(l linkDef) bool { return l.ns == a.Namespace && l.domain == domainOf(user) })
	case "get", "list", "watch":
		if a.Name != "" {
			link := changeRequestLink(a.Namespace, a.Name)
			return link != "" && readsChangeRequests(user, groups, a.Namespace, link)
		}
		if a.Verb == "get" || a.LabelSelector == nil {
			return false
		}
		// One requirement that confines the list to readable links is
		// enough: requirements are ANDed.
		return slices.ContainsFunc(a.LabelSelector.Requirements, func(r metav1.LabelSelectorRequirement) bool {
			return r.Key == v1alpha1.LabelPartnerLink && r.Operator == metav1.LabelSelectorOpIn && len(r.Values) > 0 &&
				!slices.ContainsFunc(r.Values, func(link string) bool { return !readsChangeRequests(user, groups, a.Namespace, link) })
		})
	}
	return false // update, patch, delete, deletecollection, approve: the customer decides
}

// createChangeRequests makes the world's requests and waits until the
// webhook's index knows each one: the link's primary admin may get it.
func createChangeRequests() error {
	// As the operator, which creates the requests of held writes: the
	// customer's own writes are never held, and admission refuses requests
	// the customer makes.
	for _, d := range changeRequestDefs {
		if err := opUser.Create(ctx, newChangeRequest(d)); err != nil {
			return fmt.Errorf("change request %s/%s: %w", d.ns, d.name, err)
		}
	}
	for _, d := range changeRequestDefs {
		reader := linkDefs[slices.IndexFunc(linkDefs, func(l linkDef) bool { return l.ns == d.ns && l.name == d.link })].admin
		spec := authorizationv1.SubjectAccessReviewSpec{User: reader, Groups: []string{authenticated},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: d.ns, Verb: "get", Group: pg, Resource: "partnerchangerequests", Name: d.name}}
		if err := eventually(20*time.Second, func() error {
			st, err := review(spec)
			if err == nil && !st.Allowed {
				err = fmt.Errorf("%s may not yet get change request %s/%s: %s", reader, d.ns, d.name, st.Reason)
			}
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// linkLabelAtoms are requirements on partners.roompro.io/partner-link;
// own is replaced by the caller's link in the namespace, other by the
// other partner's.
var linkLabelAtoms = []labelAtom{
	atom("own-link", "own", metav1.LabelSelectorOpIn, "$own"),
	atom("other-link", "own", metav1.LabelSelectorOpIn, "$other"),
	atom("own-and-other-link", "own", metav1.LabelSelectorOpIn, "$own", "$other"),
	atom("ghost-link", "own", metav1.LabelSelectorOpIn, "ghost"),
	atom("not-other-link", "own", metav1.LabelSelectorOpNotIn, "$other"),
	atom("link-exists", "own", metav1.LabelSelectorOpExists),
	atom("link-does-not-exist", "own", metav1.LabelSelectorOpDoesNotExist),
	atom("access-label", "other", metav1.LabelSelectorOpExists),
	atom("team", "team", metav1.LabelSelectorOpIn, "facilities"),
}

// linkRequirements builds the atoms for a user: own is the label key, the
// values $own and $other the user's link and the other partner's.
func linkRequirements(atoms []labelAtom, user string) []metav1.LabelSelectorRequirement {
	own := map[string]string{contoso: "contoso", fabrikam: "fabrikam"}[domainOf(user)]
	other := map[string]string{"contoso": "fabrikam", "fabrikam": "contoso"}[own]
	var reqs []metav1.LabelSelectorRequirement
	for _, a := range atoms {
		r := a.req(v1alpha1.LabelPartnerLink, v1alpha1.AccessLabel(domainOf(user)))
		r.Values = slices.Clone(r.Values)
		for i, v := range r.Values {
			r.Values[i] = map[string]string{"$own": own, "$other": other}[v]
			if r.Values[i] == "" {
				r.Values[i] = v
			}
		}
		reqs = append(reqs, r)
	}
	return reqs
}

func testChangeRequests(t *testing.T) {
	t.Run("selector-reviews", func(t *testing.T) {
		selectors := [][]labelAtom{nil}
		for i, a := range linkLabelAtoms {
			selectors = append(selectors, []labelAtom{a})
			for _, b := range linkLabelAtoms[i+1:] {
				selectors = append(selectors, []labelAtom{a, b}, []labelAtom{b, a})
			}
		}
		var cases []sarCase
		for _, user := range partnerUsers {
			for _, atoms := range selectors {
				reqs := linkRequirements(atoms, user)
				cases = append(cases, labelSelectorReviews(user, "partnerchangerequests", reqs, selectorName(atoms))...)
			}
		}
		runReviews(t, cases)
	})

	t.Run("tenant-managers", func(t *testing.T) {
		// Tenant managers hold no role: they read their partner's requests
		// as managers, and decide nothing either.
		var cases []sarCase
		for _, tm := range []struct{ user, domain string }{{tmC, contoso}, {tmF, fabrikam}} {
			for _, groups := range [][]string{{authenticated, tenantManagers(tm.domain)}, {authenticated}, {authenticated, tenantManagers(otherPartner(tm.domain))}} {
				for _, ns := range []string{tenantA, tenantB, ghostNS} {
					for _, verb := range matrixVerbs {
						for _, name := range changeRequestNames {
							a := &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: pg, Resource: "partnerchangerequests", Name: name}
							cases = append(cases, sarCase{
								name:  fmt.Sprintf("%s%v/%s", tm.user, groups[1:], describe(a)),
								spec:  authorizationv1.SubjectAccessReviewSpec{User: tm.user, Groups: groups, ResourceAttributes: a},
								check: partnerVerdict(allowedChangeRequest(tm.user, groups, a)),
							})
						}
					}
					for _, link := range []string{"contoso", "fabrikam"} {
						a := &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "list", Group: pg, Resource: "partnerchangerequests",
							LabelSelector: &authorizationv1.LabelSelectorAttributes{RawSelector: v1alpha1.LabelPartnerLink + "=" + link}}
						want := allowedChangeRequest(tm.user, groups, &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "list", Group: pg, Resource: "partnerchangerequests",
							LabelSelector: &authorizationv1.LabelSelectorAttributes{Requirements: []metav1.LabelSelectorRequirement{
								{Key: v1alpha1.LabelPartnerLink, Operator: metav1.LabelSelectorOpIn, Values: []string{link}}}}})
						cases = append(cases, sarCase{
							name:  fmt.Sprintf("%s%v/list_partnerchangerequests_in_%s/link=%s", tm.user, groups[1:], ns, link),
							spec:  authorizationv1.SubjectAccessReviewSpec{User: tm.user, Groups: groups, ResourceAttributes: a},
							check: partnerVerdict(want),
						})
					}
				}
			}
		}
		runReviews(t, cases)
	})

	t.Run("reads", func(t *testing.T) {
		// Through the impersonated user: what the apiserver returns when the
		// webhook allows is exactly the link's requests.
		for _, c := range []struct {
			user   string
			groups []string
			ns     string
			link   string
		}{{alice, nil, tenantA, "contoso"}, {carol, nil, tenantA, "contoso"}, {frank, nil, tenantA, "fabrikam"}, {frank, nil, tenantB, "fabrikam"},
			{tmC, []string{tenantManagers(contoso)}, tenantA, "contoso"}} {
			other := map[string]string{"contoso": "fabrikam", "fabrikam": "contoso"}[c.link]
			caller := as(c.user, c.groups...)
			t.Run(fmt.Sprintf("%s/%s/label-own-link", c.user, c.ns), func(t *testing.T) {
				list := &v1alpha1.PartnerChangeRequestList{}
				if err := caller.List(ctx, list, client.InNamespace(c.ns), client.MatchingLabels{v1alpha1.LabelPartnerLink: c.link}); err != nil {
					t.Fatalf("-l %s=%s: %v", v1alpha1.LabelPartnerLink, c.link, err)
				}
				var got, want []string
				for _, r := range list.Items {
					got = append(got, r.Name)
				}
				for _, d := range changeRequestDefs {
					if d.ns == c.ns && d.link == c.link {
						want = append(want, d.name)
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("listed %v, want exactly the requests of link %s: %v", got, c.link, want)
				}
			})
			t.Run(fmt.Sprintf("%s/%s/plain-list", c.user, c.ns), func(t *testing.T) {
				list := &v1alpha1.PartnerChangeRequestList{}
				err := caller.List(ctx, list, client.InNamespace(c.ns))
				if !apierrors.IsForbidden(err) {
					t.Errorf("a list of every request: want Forbidden, got %v with %d requests", err, len(list.Items))
				}
			})
			t.Run(fmt.Sprintf("%s/%s/label-other-link", c.user, c.ns), func(t *testing.T) {
				list := &v1alpha1.PartnerChangeRequestList{}
				err := caller.List(ctx, list, client.InNamespace(c.ns), client.MatchingLabels{v1alpha1.LabelPartnerLink: other})
				if !apierrors.IsForbidden(err) {
					t.Errorf("-l %s=%s: want Forbidden, got %v with %d requests", v1alpha1.LabelPartnerLink, other, err, len(list.Items))
				}
			})
			for _, d := range changeRequestDefs {
				if d.ns != c.ns {
					continue
				}
				t.Run(fmt.Sprintf("%s/%s/get-%s", c.user, c.ns, d.name), func(t *testing.T) {
					err := caller.Get(ctx, client.ObjectKey{Namespace: d.ns, Name: d.name}, &v1alpha1.PartnerChangeRequest{})
					switch want := d.link == c.link; {
					case want && err != nil:
						t.Errorf("its link's request: %v", err)
					case !want && !apierrors.IsForbidden(err):
						t.Errorf("another link's request: want Forbidden, got %v", err)
					}
				})
			}
		}
	})

	t.Run("writes", func(t *testing.T) {
		// Every write a partner user may make on a request it can read is
		// refused, and the request stays as it was: only the customer
		// decides, only the operator writes status.
		d := changeRequestDefs[0]
		key := client.ObjectKey{Namespace: d.ns, Name: d.name}
		decide := func(pcr *v1alpha1.PartnerChangeRequest) {
			pcr.Spec.Decision, pcr.Spec.DecisionMessage = v1alpha1.DecisionApproved, "approved by the partner itself"
		}
		for _, c := range []struct{ user, groups string }{{alice, ""}, {carol, ""}, {tmC, tenantManagers(contoso)}} {
			var caller client.Client
			if c.groups == "" {
				caller = as(c.user)
			} else {
				caller = as(c.user, c.groups)
			}
			writes := map[string]func(*v1alpha1.PartnerChangeRequest) error{
				"update-decision": func(live *v1alpha1.PartnerChangeRequest) error { decide(live); return caller.Update(ctx, live) },
				"merge-patch-decision": func(live *v1alpha1.PartnerChangeRequest) error {
					return caller.Patch(ctx, live, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"decision":"Approved"}}`)))
				},
				"status-update": func(live *v1alpha1.PartnerChangeRequest) error {
					live.Status.Phase = v1alpha1.ChangeApplied
					return caller.Status().Update(ctx, live)
				},
				"delete": func(live *v1alpha1.PartnerChangeRequest) error { return caller.Delete(ctx, live) },
				"delete-collection": func(*v1alpha1.PartnerChangeRequest) error {
					return caller.DeleteAllOf(ctx, &v1alpha1.PartnerChangeRequest{}, client.InNamespace(d.ns))
				},
			}
			for _, name := range slices.Sorted(maps.Keys(writes)) {
				t.Run(fmt.Sprintf("%s/%s", c.user, name), func(t *testing.T) {
					before := &v1alpha1.PartnerChangeRequest{}
					if err := admin.Get(ctx, key, before); err != nil {
						t.Fatal(err)
					}
					if err := writes[name](before.DeepCopy()); !apierrors.IsForbidden(err) {
						t.Errorf("want Forbidden, got %v", err)
					}
					after := &v1alpha1.PartnerChangeRequest{}
					if err := admin.Get(ctx, key, after); err != nil {
						restoreChangeRequests(t)
						t.Fatalf("the request is gone: %v", err)
					}
					if after.ResourceVersion != before.ResourceVersion {
						t.Errorf("the request changed: decision %q, phase %q", after.Spec.Decision, after.Status.Phase)
					}
				})
			}
		}
		restoreChangeRequests(t)
	})
}

// restoreChangeRequests re-creates a request a hole deleted, so that later
// cases see the world buildWorld made.
func restoreChangeRequests(t *testing.T) {
	t.Helper()
	for _, d := range changeRequestDefs {
		err := admin.Get(ctx, client.ObjectKey{Namespace: d.ns, Name: d.name}, &v1alpha1.PartnerChangeRequest{})
		if apierrors.IsNotFound(err) {
			if err := admin.Create(ctx, newChangeRequest(d)); err != nil {
				t.Errorf("restoring %s/%s: %v", d.ns, d.name, err)
			}
		}
	}
}
