package admission

import (
	"context"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// roomValidator keeps the access labels the operator's and lets a partner
// change only a room's spec: labels decide scopes, including other partners'.
// A partner's update in the rooms category, Manual on its invitation, is
// held for the customer's approval.
type roomValidator struct{ changes }

func (v *roomValidator) ValidateCreate(ctx context.Context, room *v1alpha1.Room) (admission.Warnings, error) {
	return nil, v.validate(ctx, nil, room)
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
	if who.partner == nil || oldRoom == nil {
		// Never held: the customer's writes, and creates (a partner never
		// creates rooms; the authorization webhook says so).
		if oldRoom == nil {
			oldRoom = &v1alpha1.Room{}
		}
		return invalid(room, "Room", roomErrs(who, v.opts, oldRoom, room))
	}
	checked, reason, reasonSet := withoutReason(oldRoom, room, false)
	if errs := roomErrs(who, v.opts, oldRoom, checked); len(errs) > 0 {
		return invalid(room, "Room", errs)
	}
	held := false
	var link *v1alpha1.PartnerLink
	if !equality.Semantic.DeepEqual(oldRoom.Spec, checked.Spec) { // a write that changes nothing holds nothing
		if link, err = v.roomLink(ctx, room.Namespace, who); err != nil {
			return err
		}
		if link != nil {
			if held, err = v.manual(ctx, link, v1alpha1.CategoryRooms); err != nil {
				return err
			}
		}
	}
	if !held {
		if reasonSet {
			return invalid(room, "Room", reasonNotHeld())
		}
		return nil
	}
	return v.hold(ctx, write{
		who: who, link: link.Name, category: v1alpha1.CategoryRooms, operation: v1alpha1.OperationUpdate,
		resource: "rooms", kind: kindRoom, name: room.Name, namespace: room.Namespace,
		object: checked, base: oldRoom.ResourceVersion, reason: reason, dryRun: dryRun(ctx),
	})
}

// roomErrs lists what a write of a room by who may not change: the access
// labels (the operator's), and for a partner anything but the spec. For a
// create, oldRoom is an empty room.
func roomErrs(who requester, opts Options, oldRoom, room *v1alpha1.Room) field.ErrorList {
	if who.is(opts.OperatorUser) {
		return nil
	}
	errs := accessLabelsUnchanged(who, opts, oldRoom, room)
	if who.partner != nil {
		errs = append(errs, validatePartnerMetadata(specOnly, oldRoom, room)...)
	}
	if oldRoom.Name != "" {
		errs = append(errs, requestedByUnchanged(who, opts, oldRoom, room)...)
	}
	return errs
}

// accessLabelsUnchanged refuses a change of the access labels by anyone but
// the operator: they decide which partners reach the object (a room's are
// the operator's reach of its links; a ticket's and a report's copy their
// room's).
func accessLabelsUnchanged(who requester, opts Options, oldObj, obj metav1.Object) field.ErrorList {
	if who.is(opts.OperatorUser) {
		return nil
	}
	labels := field.NewPath("metadata", "labels")
	var errs field.ErrorList
	for _, key := range changedKeys(oldObj.GetLabels(), obj.GetLabels()) {
		if strings.HasPrefix(key, v1alpha1.AccessLabelPrefix) {
			errs = append(errs, field.Forbidden(labels.Key(key), "access labels are maintained by the partner-operator"))
		}
	}
	return errs
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
