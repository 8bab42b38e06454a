package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/lifecycle"
)

// ensureChild creates obj, a child of the link, and reports an existing
// object of its name that the link does not control: a child the link did
// not create is not the link's, whoever made it.
func (r *LinkReconciler) ensureChild(ctx context.Context, link *v1alpha1.PartnerLink, obj client.Object) (*lifecycle.Refusal, error) {
	created, err := r.createChild(ctx, link, obj)
	if err != nil || created {
		return nil, err
	}
	existing := obj.DeepCopyObject().(client.Object)
	if err := liveReader(r.APIReader, r.Client).Get(ctx, client.ObjectKeyFromObject(obj), existing); err != nil {
		// Gone since the create failed: the next reconcile creates it.
		return nil, fmt.Errorf("reading the existing %s: %w", obj.GetName(), err)
	}
	if metav1.IsControlledBy(existing, link) {
		return nil, nil
	}
	kind, err := apiutil.GVKForObject(obj, r.Scheme())
	if err != nil {
		return nil, err
	}
	return childTaken(kind.Kind, existing), nil
}

// childTaken is the refusal of a link whose child's name another object holds.
func childTaken(kind string, obj client.Object) *lifecycle.Refusal {
	owner := "it was not created by this link"
	if ref := metav1.GetControllerOf(obj); ref != nil {
		owner = fmt.Sprintf("it belongs to %s %q", ref.Kind, ref.Name)
	}
	return &lifecycle.Refusal{Reason: v1alpha1.ReasonChildNameTaken, Message: fmt.Sprintf(
		"%s %q holds the name of this link's own %s, but %s: its members and rooms are not this partner's; the customer deletes it, and the link then creates its own",
		kind, obj.GetName(), strings.ToLower(kind), owner)}
}

// createChild creates obj owned by the link; an existing one is left as it
// is, and created says which happened. The role and assignment controllers
// audit the creation when they first see the object; the annotation names the
// operator as its author.
func (r *LinkReconciler) createChild(ctx context.Context, link *v1alpha1.PartnerLink, obj client.Object) (created bool, err error) {
	if err := controllerutil.SetControllerReference(link, obj, r.Scheme()); err != nil {
		return false, fmt.Errorf("owning %s: %w", obj.GetName(), err)
	}
	obj.SetAnnotations(map[string]string{v1alpha1.AnnotationRequestedBy: audit.OperatorUser})
	switch err := r.Create(ctx, obj); {
	case apierrors.IsAlreadyExists(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("creating %T %q: %w", obj, obj.GetName(), err)
	}
	return true, nil
}

func initialAssignment(link *v1alpha1.PartnerLink, inv *v1alpha1.PartnerInvitation) *v1alpha1.RoomAssignment {
	return &v1alpha1.RoomAssignment{
		ObjectMeta: metav1.ObjectMeta{Name: link.Name + initialAssignmentSuffix, Namespace: link.Namespace},
		Spec:       v1alpha1.RoomAssignmentSpec{PartnerLink: link.Name, Rooms: *inv.Spec.Rooms.DeepCopy()},
	}
}

func primaryAdminRole(link *v1alpha1.PartnerLink) *v1alpha1.PartnerRole {
	return &v1alpha1.PartnerRole{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.PrimaryAdminRoleName(link.Name), Namespace: link.Namespace},
		Spec: v1alpha1.PartnerRoleSpec{
			PartnerLink: link.Name,
			Builtin:     v1alpha1.BuiltinPrimaryAdmin,
			Permissions: slices.Clone(v1alpha1.PrimaryAdminPermissions),
			Assignments: []v1alpha1.RoleAssignment{{
				Name:    primaryAdminAssignment,
				Members: slices.Clone(link.Spec.PrimaryAdmins),
			}},
		},
	}
}
