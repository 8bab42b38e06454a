package controllers

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func mustJSONMap(t *testing.T, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPreviewChangesListsExactlyTheChangedFields(t *testing.T) {
	live := mustJSONMap(t, `{
		"apiVersion": "partners.roompro.io/v1alpha1", "kind": "Room",
		"metadata": {"name": "nyc", "resourceVersion": "7", "uid": "u", "generation": 3,
			"labels": {"country": "us", "access.partners.roompro.io/contoso.com": "true", "floor": "3"},
			"annotations": {"partners.roompro.io/change-request": "older", "note": "a/b"}},
		"spec": {"displayName": "NYC", "site": "HQ", "groups": ["a", "b"], "nested": {"x": 1, "y": 2}},
		"status": {"partners": ["contoso.com"]}}`)
	intended := mustJSONMap(t, `{
		"apiVersion": "partners.roompro.io/v1alpha1", "kind": "Room",
		"metadata": {"name": "nyc", "resourceVersion": "8", "uid": "u", "generation": 4,
			"labels": {"country": "us", "floor": "4", "wing/east": "yes"},
			"annotations": {"partners.roompro.io/change-request": "this", "note": "a/b"}},
		"spec": {"displayName": "New York", "groups": ["a", "c"], "nested": {"x": 1, "y": 3}, "country": "US"},
		"status": {}}`)
	got := previewChanges(live, intended)
	want := []v1alpha1.FieldChange{
		{Path: "/metadata/labels/floor", Before: `"3"`, After: `"4"`},
		{Path: "/metadata/labels/wing~1east", After: `"yes"`},
		{Path: "/spec/country", After: `"US"`},
		{Path: "/spec/displayName", Before: `"NYC"`, After: `"New York"`},
		{Path: "/spec/groups", Before: `["a","b"]`, After: `["a","c"]`},
		{Path: "/spec/nested/y", Before: `2`, After: `3`},
		{Path: "/spec/site", Before: `"HQ"`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("preview = %+v\nwant %+v", got, want)
	}
	if got := previewChanges(live, live); len(got) != 0 {
		t.Errorf("an unchanged object previews %v", got)
	}
}

func TestPreviewOfACreateAddsAndOfADeleteRemovesEverything(t *testing.T) {
	obj := mustJSONMap(t, `{"metadata": {"name": "r", "labels": {"a": "1"}},
		"spec": {"partnerLink": "contoso", "permissions": ["rooms.view"]}}`)
	created := previewChanges(nil, obj)
	wantCreated := []v1alpha1.FieldChange{
		{Path: "/metadata/labels/a", After: `"1"`},
		{Path: "/spec/partnerLink", After: `"contoso"`},
		{Path: "/spec/permissions", After: `["rooms.view"]`},
	}
	if !reflect.DeepEqual(created, wantCreated) {
		t.Errorf("create preview = %+v\nwant %+v", created, wantCreated)
	}
	deleted := previewChanges(obj, nil)
	wantDeleted := []v1alpha1.FieldChange{
		{Path: "/metadata/labels/a", Before: `"1"`},
		{Path: "/spec/partnerLink", Before: `"contoso"`},
		{Path: "/spec/permissions", Before: `["rooms.view"]`},
	}
	if !reflect.DeepEqual(deleted, wantDeleted) {
		t.Errorf("delete preview = %+v\nwant %+v", deleted, wantDeleted)
	}
}

func TestPointerToken(t *testing.T) {
	for in, want := range map[string]string{"a": "a", "a/b": "a~1b", "m~n": "m~0n", "~/": "~0~1"} {
		if got := pointerToken(in); got != want {
			t.Errorf("pointerToken(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIntendedObjectKeepsTheOperatorsMetadataAndMarksTheChange(t *testing.T) {
	pcr := changeRequestAt(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	pcr.Annotations[v1alpha1.AnnotationDecidedBy] = "bob@customer.example"
	pcr.Spec.Object = &runtime.RawExtension{Raw: []byte(`{"apiVersion": "partners.roompro.io/v1alpha1", "kind": "Room",
		"metadata": {"name": "elsewhere", "namespace": "other", "uid": "x", "resourceVersion": "1",
			"labels": {"floor": "4", "access.partners.roompro.io/evil.com": "true"},
			"annotations": {"note": "n", "partners.roompro.io/change-request": "forged"}},
		"spec": {"displayName": "New York"}, "status": {"partners": ["evil.com"]}}`)}
	live := &unstructured.Unstructured{Object: map[string]any{}}
	live.SetLabels(map[string]string{"floor": "3", "access.partners.roompro.io/contoso.com": "true"})
	live.SetAnnotations(map[string]string{v1alpha1.AnnotationRequestedBy: "admin@customer.example"})
	live.SetFinalizers([]string{"keep"})

	obj, err := intendedObject(pcr, live, "7")
	if err != nil {
		t.Fatal(err)
	}
	if obj.GetName() != "nyc" || obj.GetNamespace() != "t" || obj.GetKind() != "Room" || obj.GetResourceVersion() != "7" || obj.GetUID() != "" {
		t.Errorf("identity = %s/%s %s rv=%s uid=%s", obj.GetNamespace(), obj.GetName(), obj.GetKind(), obj.GetResourceVersion(), obj.GetUID())
	}
	if want := map[string]string{"floor": "4", "access.partners.roompro.io/contoso.com": "true"}; !reflect.DeepEqual(obj.GetLabels(), want) {
		t.Errorf("labels = %v, want %v", obj.GetLabels(), want)
	}
	want := map[string]string{
		"note": "n", v1alpha1.AnnotationRequestedBy: "admin@customer.example",
		v1alpha1.AnnotationChangeRequest: "rename", v1alpha1.AnnotationChangeRequestedBy: "alice@contoso.com",
		v1alpha1.AnnotationChangeApprovedBy: "bob@customer.example",
	}
	if !reflect.DeepEqual(obj.GetAnnotations(), want) {
		t.Errorf("annotations = %v, want %v", obj.GetAnnotations(), want)
	}
	if _, ok := obj.Object["status"]; ok {
		t.Error("status is written")
	}
	if !reflect.DeepEqual(obj.GetFinalizers(), []string{"keep"}) {
		t.Errorf("finalizers = %v", obj.GetFinalizers())
	}
}

// A role change that adds a window shows it to the reviewer: assignments
// compare whole (a list), so the window is in the field's after value, in
// the RFC 3339 the apply writes.
func TestPreviewOfARoleWindowShowsValidFromAndValidUntil(t *testing.T) {
	live := mustJSONMap(t, `{"metadata": {"name": "contoso-carol"},
		"spec": {"partnerLink": "contoso", "permissions": ["tickets.view"],
			"assignments": [{"name": "carol", "members": [{"kind": "User", "name": "carol@contoso.com"}]}]}}`)
	intended := mustJSONMap(t, `{"metadata": {"name": "contoso-carol"},
		"spec": {"partnerLink": "contoso", "permissions": ["tickets.view", "tickets.update"],
			"assignments": [{"name": "carol", "members": [{"kind": "User", "name": "carol@contoso.com"}],
				"scope": {"names": ["nyc"]}, "validFrom": "2026-12-03T13:00:00Z", "validUntil": "2026-12-03T17:00:00Z"}]}}`)
	got := previewChanges(live, intended)
	want := []v1alpha1.FieldChange{
		{Path: "/spec/assignments",
			Before: `[{"members":[{"kind":"User","name":"carol@contoso.com"}],"name":"carol"}]`,
			After:  `[{"members":[{"kind":"User","name":"carol@contoso.com"}],"name":"carol","scope":{"names":["nyc"]},"validFrom":"2026-12-03T13:00:00Z","validUntil":"2026-12-03T17:00:00Z"}]`},
		{Path: "/spec/permissions", Before: `["tickets.view"]`, After: `["tickets.view","tickets.update"]`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("preview = %+v\nwant %+v", got, want)
	}
}
