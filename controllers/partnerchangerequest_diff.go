package controllers

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// operatorAnnotations are the annotations the operator and its admission
// webhooks own: a preview never lists them, and the written object keeps
// the operator's values, not the partner's.
var operatorAnnotations = map[string]bool{
	v1alpha1.AnnotationRequestedBy:       true,
	v1alpha1.AnnotationRequestedByGroups: true,
	v1alpha1.AnnotationInvitationUID:     true,
	v1alpha1.AnnotationDecidedBy:         true,
	v1alpha1.AnnotationDecidedAt:         true,
	v1alpha1.AnnotationChangeRequest:     true,
	v1alpha1.AnnotationChangeRequestedBy: true,
	v1alpha1.AnnotationChangeApprovedBy:  true,
}

// operatorLabel says whether a label is the operator's: the access labels it
// keeps on rooms.
func operatorLabel(key string) bool { return strings.HasPrefix(key, v1alpha1.AccessLabelPrefix) }

// previewChanges lists the fields a reviewer approves that differ between
// live and intended, two objects as JSON maps (intended as the apiserver's
// dry run defaulted it): metadata.labels, metadata.annotations and spec,
// without the operator's labels and annotations or any field the server
// owns. live is nil for a Create (everything is added), intended nil for a
// Delete (everything is removed). Paths are JSON Pointers (RFC 6901),
// sorted; lists compare whole, as one field. Pure.
func previewChanges(live, intended map[string]any) []v1alpha1.FieldChange {
	var changes []v1alpha1.FieldChange
	for _, section := range []struct {
		path string
		get  func(map[string]any) map[string]any
	}{
		{"/metadata/labels", func(o map[string]any) map[string]any {
			return withoutKeys(nested(o, "metadata", "labels"), operatorLabel)
		}},
		{"/metadata/annotations", func(o map[string]any) map[string]any {
			return withoutKeys(nested(o, "metadata", "annotations"), func(k string) bool { return operatorAnnotations[k] })
		}},
		{"/spec", func(o map[string]any) map[string]any { return nested(o, "spec") }},
	} {
		diffValues(&changes, section.path, section.get(live), section.get(intended), true, true)
	}
	return changes
}

// diffValues appends the changes from before to after at path. Maps recurse
// key by key; a key on one side only is one change with its whole value.
func diffValues(changes *[]v1alpha1.FieldChange, path string, before, after any, hasBefore, hasAfter bool) {
	bm, bIsMap := before.(map[string]any)
	am, aIsMap := after.(map[string]any)
	if bIsMap && aIsMap {
		keys := slices.Sorted(maps.Keys(bm))
		for k := range am {
			if _, ok := bm[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			b, hb := bm[k]
			a, ha := am[k]
			diffValues(changes, path+"/"+pointerToken(k), b, a, hb, ha)
		}
		return
	}
	if hasBefore == hasAfter && jsonText(before) == jsonText(after) {
		return
	}
	change := v1alpha1.FieldChange{Path: path}
	if hasBefore {
		change.Before = jsonText(before)
	}
	if hasAfter {
		change.After = jsonText(after)
	}
	*changes = append(*changes, change)
}

// nested returns the map at fields of obj, or an empty map: a section that
// is absent compares as empty, so its fields are listed one by one.
func nested(obj map[string]any, fields ...string) map[string]any {
	cur := obj
	for _, f := range fields {
		next, _ := cur[f].(map[string]any)
		if next == nil {
			return map[string]any{}
		}
		cur = next
	}
	return cur
}

func withoutKeys(m map[string]any, drop func(string) bool) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if !drop(k) {
			out[k] = v
		}
	}
	return out
}

// pointerToken escapes a key as a JSON Pointer reference token.
func pointerToken(key string) string {
	return strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}

func jsonText(v any) string {
	data, err := json.Marshal(v)
	if err != nil { // cannot happen: the values come from decoded JSON
		return ""
	}
	return string(data)
}
