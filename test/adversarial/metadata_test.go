package adversarial

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// Class 1: a partner's write changes only what its permission covers — a
// room's spec, a role's spec — never metadata that is the customer's or the
// operator's. Every metadata field a write can carry, as a merge patch, a
// JSON patch and a full update; refused (Invalid or Forbidden, naming the
// field) and nothing stored. The same write of the spec is allowed, so the
// class fails if everything is refused.

// mutation changes one thing of an object; field is the path the refusal
// must name ("" for a control that must be admitted).
type mutation struct {
	name  string
	field string
	apply func(client.Object)
}

func setLabel(k, v string) func(client.Object) {
	return func(o client.Object) { o.SetLabels(with(o.GetLabels(), k, v)) }
}
func dropLabel(k string) func(client.Object) {
	return func(o client.Object) { o.SetLabels(without(o.GetLabels(), k)) }
}
func setAnnotation(k, v string) func(client.Object) {
	return func(o client.Object) { o.SetAnnotations(with(o.GetAnnotations(), k, v)) }
}
func dropAnnotation(k string) func(client.Object) {
	return func(o client.Object) { o.SetAnnotations(without(o.GetAnnotations(), k)) }
}

func with(m map[string]string, k, v string) map[string]string {
	m = maps.Clone(m)
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

func without(m map[string]string, k string) map[string]string {
	m = maps.Clone(m)
	delete(m, k)
	return m
}

const (
	fieldLabels      = "metadata.labels"
	fieldAnnotations = "metadata.annotations"
)

// metadataMutations are the writes of metadata every kind refuses a partner.
var metadataMutations = []mutation{
	{"ownerReferences-add-configmap", "metadata.ownerReferences", func(o client.Object) {
		o.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "00000000-0000-0000-0000-000000000001"}})
	}},
	{"ownerReferences-add-controller", "metadata.ownerReferences", func(o client.Object) {
		yes := true
		o.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "partners.roompro.io/v1alpha1", Kind: "PartnerLink", Name: "contoso",
			UID: "00000000-0000-0000-0000-000000000002", Controller: &yes, BlockOwnerDeletion: &yes}})
	}},
	{"finalizers-add", "metadata.finalizers", func(o client.Object) { o.SetFinalizers(append(o.GetFinalizers(), "contoso.com/keep")) }},
	{"finalizers-add-operator-like", "metadata.finalizers", func(o client.Object) {
		o.SetFinalizers(append(o.GetFinalizers(), "partners.roompro.io/offboarding"))
	}},
	{"generateName-set", "metadata.generateName", func(o client.Object) { o.SetGenerateName("evil-") }},
	{"annotation-requested-by-change", fieldAnnotations, setAnnotation(v1alpha1.AnnotationRequestedBy, "someone-else")},
	{"annotation-requested-by-remove", fieldAnnotations, dropAnnotation(v1alpha1.AnnotationRequestedBy)},
	{"annotation-reserved-add", fieldAnnotations, setAnnotation("partners.roompro.io/note", "x")},
	{"label-access-other-partner-add", fieldLabels, setLabel(v1alpha1.AccessLabel(fabrikam), "true")},
	{"label-access-made-up-add", fieldLabels, setLabel(v1alpha1.AccessLabel("evil.example"), "true")},
	{"label-reserved-add", fieldLabels, setLabel("partners.roompro.io/x", "y")},
	{"label-reserved-subdomain-add", fieldLabels, setLabel("foo.partners.roompro.io/bar", "y")},
}

// roomOnlyMutations: labels and annotations of a room decide scopes (the
// customer's selectors match them), so a partner changes none at all.
var roomOnlyMutations = []mutation{
	{"label-ordinary-add", fieldLabels, setLabel("contoso-was-here", "true")},
	{"label-ordinary-change", fieldLabels, setLabel("team", "contoso")},
	{"label-scope-change-site", fieldLabels, setLabel("site", "ber")},
	{"label-ordinary-remove", fieldLabels, dropLabel("team")},
	{"label-access-own-change", fieldLabels, setLabel(v1alpha1.AccessLabel(contoso), "false")},
	{"label-access-own-remove", fieldLabels, dropLabel(v1alpha1.AccessLabel(contoso))},
	{"annotation-ordinary-add", fieldAnnotations, setAnnotation("contoso.com/note", "x")},
	{"annotation-ordinary-change", fieldAnnotations, setAnnotation("facilities.example.com/owner", "contoso")},
	{"annotation-ordinary-remove", fieldAnnotations, dropAnnotation("facilities.example.com/owner")},
}

// writeMethods send the difference a mutation makes in three ways.
var writeMethods = []struct {
	name  string
	write func(c client.Client, before, after client.Object) error
}{
	{"merge-patch", func(c client.Client, before, after client.Object) error {
		return c.Patch(ctx, after, client.MergeFrom(before))
	}},
	{"json-patch", func(c client.Client, before, after client.Object) error {
		a, _ := json.Marshal(before)
		b, _ := json.Marshal(after)
		ops, err := jsonpatch.CreatePatch(a, b)
		if err != nil {
			return err
		}
		data, _ := json.Marshal(ops)
		return c.Patch(ctx, after, client.RawPatch(types.JSONPatchType, data))
	}},
	{"update", func(c client.Client, _, after client.Object) error { return c.Update(ctx, after) }},
}

type metadataTarget struct {
	kind    string
	key     client.ObjectKey
	newObj  func() client.Object
	writers []string
	muts    []mutation
	control mutation // a spec change the writers may make
}

func testMetadata(t *testing.T) {
	targets := []metadataTarget{
		{"room", client.ObjectKey{Namespace: tenantA, Name: "nyc-1"}, func() client.Object { return &v1alpha1.Room{} },
			[]string{alice, carol}, append(slices.Clone(metadataMutations), roomOnlyMutations...),
			mutation{"control-spec-displayName", "", func(o client.Object) { o.(*v1alpha1.Room).Spec.DisplayName = "renamed by a partner" }}},
		{"partnerrole", client.ObjectKey{Namespace: tenantA, Name: "contoso-meta"}, func() client.Object { return &v1alpha1.PartnerRole{} },
			[]string{alice}, metadataMutations,
			mutation{"control-spec-permissions", "", func(o client.Object) {
				r := o.(*v1alpha1.PartnerRole)
				r.Spec.Permissions = append(r.Spec.Permissions, v1alpha1.ReportsView)
			}}},
	}
	for _, tg := range targets {
		for _, writer := range tg.writers {
			for _, m := range append(slices.Clone(tg.muts), tg.control) {
				for _, method := range writeMethods {
					t.Run(fmt.Sprintf("%s/%s/%s/%s", tg.kind, writer, m.name, method.name), func(t *testing.T) {
						before := settled(t, tg.newObj, tg.key)
						defer restore(t, tg, before)
						after := before.DeepCopyObject().(client.Object)
						m.apply(after)
						err := method.write(as(writer), before, after)
						stored := tg.newObj()
						if getErr := admin.Get(ctx, tg.key, stored); getErr != nil {
							t.Fatalf("reading %s back: %v (the write returned %v)", tg.key, getErr, err)
						}
						if m.field == "" { // the control
							if err != nil {
								t.Fatalf("a spec write the role grants was refused: %v", err)
							}
							return
						}
						if err == nil {
							t.Errorf("admitted: %s changed %s of %s %s; stored %s", writer, m.field, tg.kind, tg.key, metaSummary(stored))
							return
						}
						if !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) {
							t.Errorf("want Invalid or Forbidden, got %v", err)
						} else if apierrors.IsInvalid(err) && !strings.Contains(err.Error(), m.field) {
							t.Errorf("the refusal does not name %s: %v", m.field, err)
						}
						if stored.GetResourceVersion() != before.GetResourceVersion() || !sameMeta(before, stored) {
							t.Errorf("a refused write changed the stored object: before %s, after %s", metaSummary(before), metaSummary(stored))
						}
					})
				}
			}
		}
	}
	for _, c := range []struct {
		user  string
		obj   client.Object
		patch string
	}{
		{alice, &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: "nyc-1"}}, `{"status":{"partners":["contoso.com","evil.example"]}}`},
		{carol, &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: "nyc-1"}}, `{"status":{"partners":["contoso.com","evil.example"]}}`},
		{alice, &v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: "contoso-meta"}}, `{"status":{"observedGeneration":99}}`},
		{carol, &v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: "contoso-meta"}}, `{"status":{"observedGeneration":99}}`},
	} {
		kind := fmt.Sprintf("%T", c.obj)[len("*v1alpha1."):]
		t.Run(fmt.Sprintf("status/%s/%s-status-merge-patch", c.user, kind), func(t *testing.T) {
			err := as(c.user).Status().Patch(ctx, c.obj.DeepCopyObject().(client.Object), client.RawPatch(types.MergePatchType, []byte(c.patch)))
			if !apierrors.IsForbidden(err) {
				t.Errorf("a partner patched the status of %s %s: want Forbidden, got %v", kind, c.obj.GetName(), err)
			}
		})
	}
}

// sameMeta compares what the class writes.
func sameMeta(a, b client.Object) bool {
	return maps.Equal(a.GetLabels(), b.GetLabels()) && maps.Equal(a.GetAnnotations(), b.GetAnnotations()) &&
		equality.Semantic.DeepEqual(a.GetOwnerReferences(), b.GetOwnerReferences()) &&
		slices.Equal(a.GetFinalizers(), b.GetFinalizers()) && a.GetGenerateName() == b.GetGenerateName()
}

func metaSummary(o client.Object) string {
	return fmt.Sprintf("{rv=%s labels=%v annotations=%v ownerReferences=%v finalizers=%v generateName=%q}",
		o.GetResourceVersion(), o.GetLabels(), o.GetAnnotations(), o.GetOwnerReferences(), o.GetFinalizers(), o.GetGenerateName())
}

// restore puts back what a case changed (a hole, or the control), as the
// operator's user, which admission lets write everything, and waits until
// the rooms carry their access labels again.
func restore(t *testing.T, tg metadataTarget, before client.Object) {
	t.Helper()
	err := eventually(10*time.Second, func() error {
		cur := tg.newObj()
		if err := opUser.Get(ctx, tg.key, cur); err != nil {
			return err
		}
		if sameMeta(before, cur) && equality.Semantic.DeepEqual(specOf(before), specOf(cur)) {
			return nil
		}
		fixed := before.DeepCopyObject().(client.Object)
		fixed.SetResourceVersion(cur.GetResourceVersion())
		return opUser.Update(ctx, fixed)
	})
	if err == nil && tg.kind == "room" {
		err = waitRoomsLabelled()
	}
	if err == nil {
		settled(t, tg.newObj, tg.key)
	}
	if err != nil {
		t.Fatalf("restoring %s: %v", tg.key, err)
	}
}

func specOf(o client.Object) any {
	switch o := o.(type) {
	case *v1alpha1.Room:
		return o.Spec
	case *v1alpha1.PartnerRole:
		return o.Spec
	}
	return nil
}

// settled reads an object once the operator has observed its generation, so
// that no status write of the operator is still on its way: a case compares
// resourceVersions, and a write from a stale read would conflict.
func settled(t *testing.T, newObj func() client.Object, key client.ObjectKey) client.Object {
	t.Helper()
	var obj client.Object
	err := eventually(10*time.Second, func() error {
		obj = newObj()
		if err := admin.Get(ctx, key, obj); err != nil {
			return err
		}
		var observed int64
		switch o := obj.(type) {
		case *v1alpha1.Room:
			observed = o.Status.ObservedGeneration
		case *v1alpha1.PartnerRole:
			observed = o.Status.ObservedGeneration
		}
		if observed != obj.GetGeneration() {
			return fmt.Errorf("%s: observedGeneration %d, generation %d", key, observed, obj.GetGeneration())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return obj
}
