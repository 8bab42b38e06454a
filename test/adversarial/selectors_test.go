package adversarial

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// Class 4: list and watch with generated selectors. Rooms: allowed exactly
// when the label selector requires the caller's own access label (Exists,
// or In/= "true") and its role covers the link's whole scope. Roles: only
// with the field selector spec.partnerLink=<a link of the caller>.

// labelAtom is one requirement, named for the subtest; own is replaced by
// the caller's access label and other by another partner's.
type labelAtom struct {
	name string
	req  func(own, other string) metav1.LabelSelectorRequirement
}

func atom(name, key string, op metav1.LabelSelectorOperator, values ...string) labelAtom {
	return labelAtom{name, func(own, other string) metav1.LabelSelectorRequirement {
		k := map[string]string{"own": own, "other": other}[key]
		if k == "" {
			k = key
		}
		return metav1.LabelSelectorRequirement{Key: k, Operator: op, Values: values}
	}}
}

var labelAtoms = []labelAtom{
	atom("own-exists", "own", metav1.LabelSelectorOpExists),
	atom("own-eq-true", "own", metav1.LabelSelectorOpIn, "true"),
	atom("own-in-true-false", "own", metav1.LabelSelectorOpIn, "true", "false"),
	atom("own-in-false", "own", metav1.LabelSelectorOpIn, "false"),
	atom("own-neq-false", "own", metav1.LabelSelectorOpNotIn, "false"),
	atom("own-notin-false", "own", metav1.LabelSelectorOpNotIn, "false", "no"),
	atom("own-does-not-exist", "own", metav1.LabelSelectorOpDoesNotExist),
	atom("other-exists", "other", metav1.LabelSelectorOpExists),
	atom("other-eq-true", "other", metav1.LabelSelectorOpIn, "true"),
	atom("site-nyc", "site", metav1.LabelSelectorOpIn, "nyc"),
	atom("team-exists", "team", metav1.LabelSelectorOpExists),
}

// labelSelectors: no selector, every atom alone, and every pair of atoms
// (the access label combined with other requirements, in either order).
func labelSelectors() [][]labelAtom {
	out := [][]labelAtom{nil}
	for _, a := range labelAtoms {
		out = append(out, []labelAtom{a})
	}
	for i, a := range labelAtoms {
		for _, b := range labelAtoms[i+1:] {
			out = append(out, []labelAtom{a, b}, []labelAtom{b, a})
		}
	}
	return out
}

func selectorName(atoms []labelAtom) string {
	if len(atoms) == 0 {
		return "no-selector"
	}
	var names []string
	for _, a := range atoms {
		names = append(names, a.name)
	}
	return strings.Join(names, "+")
}

func requirements(atoms []labelAtom, domain string) []metav1.LabelSelectorRequirement {
	var reqs []metav1.LabelSelectorRequirement
	for _, a := range atoms {
		reqs = append(reqs, a.req(v1alpha1.AccessLabel(domain), v1alpha1.AccessLabel(otherPartner(domain))))
	}
	return reqs
}

// rawSelector is the selector as kubectl -l would write it.
func rawSelector(reqs []metav1.LabelSelectorRequirement) string {
	if len(reqs) == 0 {
		return ""
	}
	sel, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchExpressions: reqs})
	if err != nil {
		panic(err)
	}
	return sel.String()
}

func testSelectors(t *testing.T) {
	t.Run("rooms-reviews", func(t *testing.T) {
		var cases []sarCase
		for _, user := range partnerUsers {
			for _, atoms := range labelSelectors() {
				reqs := requirements(atoms, domainOf(user))
				cases = append(cases, labelSelectorReviews(user, "rooms", reqs, selectorName(atoms))...)
			}
		}
		runReviews(t, cases)
	})

	t.Run("rooms-lists", func(t *testing.T) {
		// The real list, through the impersonated user: what the apiserver
		// returns when the webhook allows must be exactly the rooms the
		// selector picks among the partner's.
		for _, user := range partnerUsers {
			for _, atoms := range labelSelectors() {
				if len(atoms) > 1 && atoms[0].name != "own-exists" && atoms[1].name != "own-exists" {
					continue // the single atoms and own-exists with each other requirement are enough here
				}
				reqs := requirements(atoms, domainOf(user))
				t.Run(fmt.Sprintf("%s/%s", user, selectorName(atoms)), func(t *testing.T) {
					want := allowedByDesign(user, &authorizationv1.ResourceAttributes{Namespace: tenantA, Verb: "list", Group: pg, Resource: "rooms",
						LabelSelector: &authorizationv1.LabelSelectorAttributes{Requirements: reqs}})
					sel, _ := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchExpressions: reqs})
					rooms := &v1alpha1.RoomList{}
					err := as(user).List(ctx, rooms, client.InNamespace(tenantA), client.MatchingLabelsSelector{Selector: sel})
					if !want {
						if !apierrors.IsForbidden(err) {
							t.Errorf("selector %q: want Forbidden, got %v (%d rooms: %v)", sel, err, len(rooms.Items), roomItemNames(rooms))
						}
						return
					}
					if err != nil {
						t.Fatalf("selector %q: want the partner's rooms, got %v", sel, err)
					}
					if got, want := roomItemNames(rooms), expectedListed(user, tenantA, sel); !slices.Equal(got, want) {
						t.Errorf("selector %q: listed %v, want exactly %v", sel, got, want)
					}
				})
			}
		}
	})

	t.Run("roles-reviews", func(t *testing.T) {
		type fieldSel struct {
			name string
			sel  *authorizationv1.FieldSelectorAttributes
		}
		in := func(values ...string) []metav1.FieldSelectorRequirement {
			return []metav1.FieldSelectorRequirement{{Key: "spec.partnerLink", Operator: metav1.FieldSelectorOpIn, Values: values}}
		}
		sels := []fieldSel{{"no-selector", nil}, {"other-field", &authorizationv1.FieldSelectorAttributes{Requirements: []metav1.FieldSelectorRequirement{
			{Key: "metadata.name", Operator: metav1.FieldSelectorOpIn, Values: []string{"contoso-nyc"}}}}}}
		for _, link := range []string{"contoso", "fabrikam", "ghost"} {
			sels = append(sels,
				fieldSel{"link=" + link, &authorizationv1.FieldSelectorAttributes{Requirements: in(link)}},
				fieldSel{"raw-link=" + link, &authorizationv1.FieldSelectorAttributes{RawSelector: "spec.partnerLink=" + link}},
				fieldSel{"link!=" + link, &authorizationv1.FieldSelectorAttributes{Requirements: []metav1.FieldSelectorRequirement{
					{Key: "spec.partnerLink", Operator: metav1.FieldSelectorOpNotIn, Values: []string{link}}}}})
		}
		sels = append(sels, fieldSel{"link-in-contoso-fabrikam", &authorizationv1.FieldSelectorAttributes{Requirements: in("contoso", "fabrikam")}})
		var cases []sarCase
		for _, user := range partnerUsers {
			for _, s := range sels {
				for _, verb := range []string{"list", "watch"} {
					for _, ns := range []string{tenantA, tenantB} {
						// The raw form names the same single link as the
						// requirement form.
						ref := s.sel
						if ref != nil && ref.RawSelector != "" {
							ref = &authorizationv1.FieldSelectorAttributes{Requirements: in(strings.TrimPrefix(ref.RawSelector, "spec.partnerLink="))}
						}
						want := allowedByDesign(user, &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: pg, Resource: "partnerroles", FieldSelector: ref})
						cases = append(cases, sarCase{
							name: fmt.Sprintf("%s/%s_partnerroles_in_%s/%s", user, verb, ns, s.name),
							spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{authenticated},
								ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: pg, Resource: "partnerroles", FieldSelector: s.sel}},
							check: partnerVerdict(want),
						})
					}
				}
			}
		}
		runReviews(t, cases)
	})

	t.Run("roles-lists", func(t *testing.T) {
		for _, c := range []struct{ user, ns, link string }{{alice, tenantA, "contoso"}, {carol, tenantA, "contoso"}, {frank, tenantA, "fabrikam"}, {frank, tenantB, "fabrikam"}} {
			t.Run(fmt.Sprintf("%s/%s/field-selector-own-link", c.user, c.ns), func(t *testing.T) {
				roles := &v1alpha1.PartnerRoleList{}
				if err := as(c.user).List(ctx, roles, client.InNamespace(c.ns), client.MatchingFields{"spec.partnerLink": c.link}); err != nil {
					t.Fatalf("--field-selector spec.partnerLink=%s: %v", c.link, err)
				}
				var got, want []string
				for _, r := range roles.Items {
					got = append(got, r.Name)
				}
				for _, r := range roleDefs {
					if r.ns == c.ns && r.link == c.link {
						want = append(want, r.name)
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("listed %v, want exactly the roles of link %s: %v", got, c.link, want)
				}
			})
			t.Run(fmt.Sprintf("%s/%s/plain-list", c.user, c.ns), func(t *testing.T) {
				roles := &v1alpha1.PartnerRoleList{}
				err := as(c.user).List(ctx, roles, client.InNamespace(c.ns))
				if !apierrors.IsForbidden(err) {
					t.Errorf("a list of every role: want Forbidden, got %v with %d roles (%v)", err, len(roles.Items), roleItemNames(roles))
				}
			})
			t.Run(fmt.Sprintf("%s/%s/field-selector-other-link", c.user, c.ns), func(t *testing.T) {
				other := map[string]string{"contoso": "fabrikam", "fabrikam": "contoso"}[c.link]
				roles := &v1alpha1.PartnerRoleList{}
				err := as(c.user).List(ctx, roles, client.InNamespace(c.ns), client.MatchingFields{"spec.partnerLink": other})
				if !apierrors.IsForbidden(err) {
					t.Errorf("--field-selector spec.partnerLink=%s: want Forbidden, got %v with %v", other, err, roleItemNames(roles))
				}
			})
		}
	})
}

// labelSelectorReviews are the reviews of a list and a watch of resource
// in tenant-a and tenant-b with the label selector reqs, each compared with
// the reference. The reference reads requirements; the webhook gets the
// same whether the caller sent them or a raw selector the apiserver parsed,
// so both forms are asked.
func labelSelectorReviews(user, resource string, reqs []metav1.LabelSelectorRequirement, selName string) []sarCase {
	var cases []sarCase
	for _, verb := range []string{"list", "watch"} {
		for _, ns := range []string{tenantA, tenantB} {
			want := allowedByDesign(user, &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: pg, Resource: resource,
				LabelSelector: &authorizationv1.LabelSelectorAttributes{Requirements: reqs}})
			forms := map[string]*authorizationv1.LabelSelectorAttributes{"requirements": {Requirements: reqs}, "raw": {RawSelector: rawSelector(reqs)}}
			if len(reqs) == 0 {
				forms = map[string]*authorizationv1.LabelSelectorAttributes{"none": nil}
			}
			for _, form := range slices.Sorted(maps.Keys(forms)) {
				cases = append(cases, sarCase{
					name: fmt.Sprintf("%s/%s_%s_in_%s/%s/%s", user, verb, resource, ns, form, selName),
					spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{authenticated},
						ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: pg, Resource: resource, LabelSelector: forms[form]}},
					check: partnerVerdict(want),
				})
			}
		}
	}
	return cases
}

// expectedListed: the rooms of ns that carry the user's access label (per
// the tables) and that the selector picks, sorted.
func expectedListed(user, ns string, sel labels.Selector) []string {
	var out []string
	for _, d := range roomDefs {
		if d.ns != ns {
			continue
		}
		l := roomLabels(d)
		maps.Copy(l, accessLabels(d))
		if l[v1alpha1.AccessLabel(domainOf(user))] == "true" && sel.Matches(labels.Set(l)) {
			out = append(out, d.name)
		}
	}
	slices.Sort(out)
	return out
}

func roomItemNames(l *v1alpha1.RoomList) []string {
	var out []string
	for _, r := range l.Items {
		out = append(out, r.Name)
	}
	slices.Sort(out)
	return out
}

func roleItemNames(l *v1alpha1.PartnerRoleList) []string {
	var out []string
	for _, r := range l.Items {
		out = append(out, r.Name)
	}
	return out
}
