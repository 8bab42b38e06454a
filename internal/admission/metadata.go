package admission

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// Which parts of an object's metadata a partner's write may change. The
// apiserver owns resourceVersion, generation, uid, creationTimestamp and
// managedFields; everything else in metadata decides something a partner's
// permission does not cover: owner references hand the object to the
// garbage collector (a delete without rooms.unenroll), finalizers block the
// customer's and the operator's deletes, labels decide scopes.
type metadataRule int

const (
	// specOnly: the object is the customer's (a Room, a Ticket, an
	// UpdateRing); a partner changes its spec and nothing of its metadata.
	specOnly metadataRule = iota
	// ownLabels: the object is the partner's own (a PartnerRole); it may
	// carry the partner's labels and annotations (GitOps tools track
	// objects by them), but never keys of this API, owner references or
	// finalizers.
	ownLabels
)

// validatePartnerMetadata lists what a partner's write changed in metadata
// that rule does not let it change. For a create, oldObj is an empty object.
// stamped are the labels the mutating webhook sets from the spec on every
// write (a ticket's room label): the partner did not write them, and their
// own rule checks their value.
func validatePartnerMetadata(rule metadataRule, oldObj, newObj metav1.Object, stamped ...string) field.ErrorList {
	meta := field.NewPath("metadata")
	var errs field.ErrorList
	switch rule {
	case specOnly:
		whose := possessive(newObj)
		for _, key := range changedKeys(oldObj.GetLabels(), newObj.GetLabels()) {
			if !slices.Contains(stamped, key) {
				errs = append(errs, field.Forbidden(meta.Child("labels").Key(key), "partners may change "+whose+" spec, not its labels"))
			}
		}
		if keys := changedKeys(oldObj.GetAnnotations(), newObj.GetAnnotations()); len(keys) > 0 {
			errs = append(errs, field.Forbidden(meta.Child("annotations"), "partners may change "+whose+" spec, not its annotations"))
		}
	case ownLabels:
		for _, key := range changedKeys(oldObj.GetLabels(), newObj.GetLabels()) {
			if reservedKey(key) {
				errs = append(errs, field.Forbidden(meta.Child("labels").Key(key), "keys of partners.roompro.io are set by the customer or the operator"))
			}
		}
		for _, key := range changedKeys(oldObj.GetAnnotations(), newObj.GetAnnotations()) {
			// The requested-by stamp is the mutating webhook's, written
			// on create and guarded by requestedByUnchanged after.
			if reservedKey(key) && key != v1alpha1.AnnotationRequestedBy {
				errs = append(errs, field.Forbidden(meta.Child("annotations").Key(key), "keys of partners.roompro.io are set by the customer or the operator"))
			}
		}
	}
	if !equality.Semantic.DeepEqual(oldObj.GetOwnerReferences(), newObj.GetOwnerReferences()) {
		errs = append(errs, field.Forbidden(meta.Child("ownerReferences"), "partners may not change owner references: they would hand the object to the garbage collector"))
	}
	if !equality.Semantic.DeepEqual(oldObj.GetFinalizers(), newObj.GetFinalizers()) {
		errs = append(errs, field.Forbidden(meta.Child("finalizers"), "partners may not change finalizers: they would block deletes"))
	}
	if oldObj.GetGenerateName() != newObj.GetGenerateName() && oldObj.GetName() != "" {
		errs = append(errs, field.Forbidden(meta.Child("generateName"), "partners may not change generateName"))
	}
	return errs
}

// possessive names the kind of a customer object in a refusal ("a room's").
func possessive(obj metav1.Object) string {
	switch obj.(type) {
	case *v1alpha1.Ticket:
		return "a ticket's"
	case *v1alpha1.UpdateRing:
		return "an update ring's"
	}
	return "a room's"
}

// reservedKey reports whether a label or annotation key is of this API
// (partners.roompro.io or any sub-domain of it, such as the access labels).
func reservedKey(key string) bool {
	prefix, _, found := strings.Cut(key, "/")
	if !found {
		return false
	}
	return prefix == v1alpha1.GroupVersion.Group || strings.HasSuffix(prefix, "."+v1alpha1.GroupVersion.Group)
}
