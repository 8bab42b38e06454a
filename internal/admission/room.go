package admission

import (
	"context"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// roomValidator keeps the access labels the operator's and lets a partner
// change only a room's spec: labels decide scopes, including other partners'.
type roomValidator struct{ opts Options }

func (v *roomValidator) ValidateCreate(ctx context.Context, room *v1alpha1.Room) (admission.Warnings, error) {
	return nil, v.validate(ctx, &v1alpha1.Room{}, room)
}

func (v *roomValidator) ValidateUpdate(ctx context.Context, oldRoom, room *v1alpha1.Room) (admission.Warnings, error) {
	return nil, v.validate(ctx, oldRoom, room)
}

func (v *roomValidator) ValidateDelete(context.Context, *v1alpha1.Room) (admission.Warnings, error) {
	return nil, nil
}

func (v *roomValidator) validate(ctx context.Context, oldRoom, room *v1alpha1.Room) error {
	who, err := v.opts.requester(ctx)
	if err != nil {
		return err
	}
	if who.is(v.opts.OperatorUser) {
		return nil
	}
	labels := field.NewPath("metadata", "labels")
	var errs field.ErrorList
	for _, key := range changedKeys(oldRoom.Labels, room.Labels) {
		if strings.HasPrefix(key, v1alpha1.AccessLabelPrefix) {
			errs = append(errs, field.Forbidden(labels.Key(key), "access labels are maintained by the partner-operator"))
		}
	}
	if who.partner != nil {
		errs = append(errs, validatePartnerMetadata(specOnly, oldRoom, room)...)
	}
	if oldRoom.Name != "" {
		errs = append(errs, requestedByUnchanged(who, v.opts, oldRoom, room)...)
	}
	return invalid(room, "Room", errs)
}

// changedKeys lists the keys added, removed or changed between two maps.
func changedKeys(before, after map[string]string) []string {
	var keys []string
	for k, v := range after {
		if old, ok := before[k]; !ok || old != v {
			keys = append(keys, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // one order for the same change, so messages are stable
	return keys
}
