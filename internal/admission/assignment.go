package admission

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// assignmentValidator: only the customer decides which rooms a partner gets.
type assignmentValidator struct {
	reader client.Reader
	opts   Options
}

func (v *assignmentValidator) ValidateCreate(ctx context.Context, a *v1alpha1.RoomAssignment) (admission.Warnings, error) {
	return nil, v.validate(ctx, nil, a)
}

func (v *assignmentValidator) ValidateUpdate(ctx context.Context, oldA, a *v1alpha1.RoomAssignment) (admission.Warnings, error) {
	return nil, v.validate(ctx, oldA, a)
}

func (v *assignmentValidator) ValidateDelete(ctx context.Context, a *v1alpha1.RoomAssignment) (admission.Warnings, error) {
	who, err := v.opts.requester(ctx)
	if err != nil {
		return nil, err
	}
	if who.partner != nil {
		return nil, forbidden(a, "roomassignments", "RoomAssignments are written by the customer only")
	}
	return nil, nil
}

func (v *assignmentValidator) validate(ctx context.Context, oldA, a *v1alpha1.RoomAssignment) error {
	who, err := v.opts.requester(ctx)
	if err != nil {
		return err
	}
	if who.partner != nil {
		return forbidden(a, "roomassignments", "RoomAssignments are written by the customer only")
	}
	errs := validateScope(a.Spec.Rooms, field.NewPath("spec", "rooms"))
	if oldA == nil {
		// A link that is being deleted takes its assignments with it.
		link := &v1alpha1.PartnerLink{}
		err := v.reader.Get(ctx, client.ObjectKey{Namespace: a.Namespace, Name: a.Spec.PartnerLink}, link)
		switch {
		case apierrors.IsNotFound(err) || err == nil && !link.DeletionTimestamp.IsZero():
			errs = append(errs, field.NotFound(field.NewPath("spec", "partnerLink"), a.Spec.PartnerLink))
		case err != nil:
			return fmt.Errorf("reading PartnerLink %q: %w", a.Spec.PartnerLink, err)
		}
	} else {
		errs = append(errs, requestedByUnchanged(who, v.opts, oldA, a)...)
	}
	return invalid(a, "RoomAssignment", errs)
}
