package admission

import (
	"context"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// invitationValidator: only the customer invites, and only a registered
// partner organisation.
type invitationValidator struct {
	reader client.Reader
	opts   Options
}

func (v *invitationValidator) ValidateCreate(ctx context.Context, inv *v1alpha1.PartnerInvitation) (admission.Warnings, error) {
	return nil, v.validate(ctx, nil, inv)
}

func (v *invitationValidator) ValidateUpdate(ctx context.Context, oldInv, inv *v1alpha1.PartnerInvitation) (admission.Warnings, error) {
	return nil, v.validate(ctx, oldInv, inv)
}

func (v *invitationValidator) ValidateDelete(context.Context, *v1alpha1.PartnerInvitation) (admission.Warnings, error) {
	return nil, nil // the authorization webhook decides who may decline
}

func (v *invitationValidator) validate(ctx context.Context, oldInv, inv *v1alpha1.PartnerInvitation) error {
	who, err := v.opts.requester(ctx)
	if err != nil {
		return err
	}
	if who.partner != nil {
		return forbidden(inv, "partnerinvitations", "invitations are written by the customer only")
	}
	errs := validateScope(inv.Spec.Rooms, field.NewPath("spec", "rooms"))
	if oldInv != nil {
		errs = append(errs, requestedByUnchanged(who, v.opts, oldInv, inv)...)
	} else {
		// On create only: the domain is immutable, and an invitation whose
		// registration went later must still be declinable and expire.
		regErrs, err := registered(ctx, v.reader, string(inv.Spec.PartnerDomain), field.NewPath("spec", "partnerDomain"))
		if err != nil {
			return err
		}
		errs = append(errs, regErrs...)
	}
	return invalid(inv, "PartnerInvitation", errs)
}
