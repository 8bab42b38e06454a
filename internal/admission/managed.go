package admission

import (
	"context"
	"encoding/json"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// The webhooks of the managed resources. A Ticket and a RoomReport are about
// one room (spec.room), and carry it as the label partners.roompro.io/room
// (v1alpha1.LabelRoom): a partner whose roles cover only some rooms lists
// their tickets with -l partners.roompro.io/room in (<rooms>), and the
// authorization webhook trusts the label to mean spec.room. So the mutating
// webhook sets it on every write, whoever writes, and the validating
// webhook refuses any other value.
//
// +kubebuilder:webhook:path=/mutate-partners-roompro-io-v1alpha1-ticket,mutating=true,failurePolicy=fail,sideEffects=None,groups=partners.roompro.io,resources=tickets,verbs=create;update,versions=v1alpha1,name=mticket.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-partners-roompro-io-v1alpha1-roomreport,mutating=true,failurePolicy=fail,sideEffects=None,groups=partners.roompro.io,resources=roomreports,verbs=create;update,versions=v1alpha1,name=mroomreport.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-partners-roompro-io-v1alpha1-ticket,mutating=false,failurePolicy=fail,sideEffects=NoneOnDryRun,groups=partners.roompro.io,resources=tickets,verbs=create;update;delete,versions=v1alpha1,name=vticket.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-partners-roompro-io-v1alpha1-roomreport,mutating=false,failurePolicy=fail,sideEffects=None,groups=partners.roompro.io,resources=roomreports,verbs=create;update;delete,versions=v1alpha1,name=vroomreport.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-partners-roompro-io-v1alpha1-updatering,mutating=false,failurePolicy=fail,sideEffects=None,groups=partners.roompro.io,resources=updaterings,verbs=create;update,versions=v1alpha1,name=vupdatering.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5

// roomLabeler is the mutating webhook of Tickets and RoomReports: on create
// and update it sets the room label to spec.room, overwriting whatever the
// write said. Like stamper it patches that label and nothing else. A
// spec.room the schema will refuse (absent, not a string, not a label
// value) gets no label: the refusal then names spec.room alone.
type roomLabeler struct{}

func (roomLabeler) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	var obj struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Room any `json:"room"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
		return admission.Allowed("") // not an object the apiserver will store
	}
	room, ok := obj.Spec.Room.(string)
	if !ok || room == "" || len(validation.IsValidLabelValue(room)) > 0 {
		return admission.Allowed("")
	}
	patches := setKey("labels", obj.Metadata.Labels, v1alpha1.LabelRoom, room)
	if len(patches) == 0 {
		return admission.Allowed("")
	}
	return admission.Patched("labelled with its room", patches...)
}

// roomLabelErrs refuses a room label other than spec.room.
func roomLabelErrs(obj metav1.Object, room string) field.ErrorList {
	got, ok := obj.GetLabels()[v1alpha1.LabelRoom]
	if ok && got == room {
		return nil
	}
	return field.ErrorList{field.Invalid(field.NewPath("metadata", "labels").Key(v1alpha1.LabelRoom), got,
		fmt.Sprintf("must be %q, spec.room: the label says which room the object is about, and the admission webhook sets it on every write", room))}
}

// ticketValidator keeps a ticket labelled with its room and its access
// labels the operator's; a partner creates tickets only for rooms on which
// its roles grant tickets.create, changes only a ticket's spec, and never
// deletes one. A partner's create or update in the tickets category, Manual
// on its invitation, is held for the customer's approval.
type ticketValidator struct{ changes }

func (v *ticketValidator) ValidateCreate(ctx context.Context, t *v1alpha1.Ticket) (admission.Warnings, error) {
	return nil, v.validate(ctx, nil, t)
}

func (v *ticketValidator) ValidateUpdate(ctx context.Context, old, t *v1alpha1.Ticket) (admission.Warnings, error) {
	return nil, v.validate(ctx, old, t)
}

// ValidateDelete refuses a partner's delete, which the authorization
// webhook denies already: admission never loosens that.
func (v *ticketValidator) ValidateDelete(ctx context.Context, t *v1alpha1.Ticket) (admission.Warnings, error) {
	who, err := v.opts.requester(ctx)
	if err != nil {
		return nil, err
	}
	if who.partner != nil {
		return nil, forbidden(t, resourceTickets, "partners never delete tickets; set spec.state to Closed instead")
	}
	return nil, nil
}

func (v *ticketValidator) validate(ctx context.Context, old, t *v1alpha1.Ticket) error {
	who, err := v.opts.requester(ctx)
	if err != nil {
		return err
	}
	prior := old
	if prior == nil {
		prior = &v1alpha1.Ticket{} // a create
	}
	if who.partner == nil {
		// Never held: the customer's writes and the operator's. Customer
		// staff may open a ticket for any room name; a room that does not
		// exist shows in the ticket's Ready condition.
		return invalid(t, "Ticket", ticketErrs(who, v.opts, prior, t))
	}
	checked, reason, reasonSet := withoutReason(old, t, old == nil)
	if errs := ticketErrs(who, v.opts, prior, checked); len(errs) > 0 {
		return invalid(t, "Ticket", errs)
	}
	if old == nil {
		// The authorization webhook allowed the create on tickets.create
		// held anywhere: the apiserver's review has no body, so the room
		// is checked here, by the same index.
		errs, err := v.decideTicketCreate(who, t.Namespace, t.Spec.Room, field.NewPath("spec", "room"))
		if err != nil {
			return err
		}
		if len(errs) > 0 {
			return invalid(t, "Ticket", errs)
		}
	}
	held := false
	if old == nil || !equality.Semantic.DeepEqual(old.Spec, checked.Spec) { // a write that changes nothing holds nothing
		link, err := v.roomLink(ctx, t.Namespace, who)
		if err != nil {
			return err
		}
		if link != nil {
			if held, err = v.manual(ctx, link, v1alpha1.CategoryTickets); err != nil {
				return err
			}
		}
		if held {
			w := write{
				who: who, link: link.Name, category: v1alpha1.CategoryTickets, operation: v1alpha1.OperationCreate,
				resource: resourceTickets, kind: kindTicket, name: t.Name, namespace: t.Namespace,
				object: checked, reason: reason, dryRun: dryRun(ctx),
			}
			if old != nil {
				w.operation, w.base = v1alpha1.OperationUpdate, old.ResourceVersion
			}
			return v.hold(ctx, w)
		}
	}
	if reasonSet {
		return invalid(t, "Ticket", reasonNotHeld())
	}
	return nil
}

// ticketErrs lists what a write of a ticket by who may not do: give the
// room label another value than spec.room, change the access labels (the
// operator's), and for a partner change anything but the spec. For a
// create, old is an empty ticket.
func ticketErrs(who requester, opts Options, old, t *v1alpha1.Ticket) field.ErrorList {
	errs := roomLabelErrs(t, t.Spec.Room)
	errs = append(errs, accessLabelsUnchanged(who, opts, old, t)...)
	if who.partner != nil {
		errs = append(errs, validatePartnerMetadata(specOnly, old, t, v1alpha1.LabelRoom)...)
	}
	return errs
}

// reportValidator keeps a report labelled with its room and its access
// labels the operator's. Reports are the customer's telemetry: the
// authorization webhook denies every partner write, and should one reach
// admission it is refused here too.
type reportValidator struct{ opts Options }

func (v *reportValidator) ValidateCreate(ctx context.Context, r *v1alpha1.RoomReport) (admission.Warnings, error) {
	return nil, v.validate(ctx, &v1alpha1.RoomReport{}, r)
}

func (v *reportValidator) ValidateUpdate(ctx context.Context, old, r *v1alpha1.RoomReport) (admission.Warnings, error) {
	return nil, v.validate(ctx, old, r)
}

func (v *reportValidator) ValidateDelete(ctx context.Context, r *v1alpha1.RoomReport) (admission.Warnings, error) {
	who, err := v.opts.requester(ctx)
	if err != nil {
		return nil, err
	}
	if who.partner != nil {
		return nil, forbidden(r, "roomreports", reportsMessage)
	}
	return nil, nil
}

// reportsMessage refuses a partner's write of a report.
const reportsMessage = "room reports are written by the customer only; partners read them with reports.view"

func (v *reportValidator) validate(ctx context.Context, old, r *v1alpha1.RoomReport) error {
	who, err := v.opts.requester(ctx)
	if err != nil {
		return err
	}
	if who.partner != nil {
		return forbidden(r, "roomreports", reportsMessage)
	}
	errs := roomLabelErrs(r, r.Spec.Room)
	errs = append(errs, accessLabelsUnchanged(who, v.opts, old, r)...)
	return invalid(r, "RoomReport", errs)
}

// ringValidator lets a partner change only an update ring's spec: the
// authorization webhook allows a partner's update of a ring whose rooms its
// updateRings.modify covers, and cannot see what the update changes;
// labels, annotations, finalizers and owner references are the customer's.
// Partners never create rings (nor delete them: the authorization webhook
// denies it, and this webhook is not asked).
type ringValidator struct{ opts Options }

func (v *ringValidator) ValidateCreate(ctx context.Context, ring *v1alpha1.UpdateRing) (admission.Warnings, error) {
	who, err := v.opts.requester(ctx)
	if err != nil {
		return nil, err
	}
	if who.partner != nil {
		return nil, forbidden(ring, "updaterings", "update rings are created by the customer only; partners with updateRings.modify change a ring's spec")
	}
	return nil, nil
}

func (v *ringValidator) ValidateUpdate(ctx context.Context, old, ring *v1alpha1.UpdateRing) (admission.Warnings, error) {
	who, err := v.opts.requester(ctx)
	if err != nil {
		return nil, err
	}
	if who.partner == nil {
		return nil, nil
	}
	return nil, invalid(ring, "UpdateRing", validatePartnerMetadata(specOnly, old, ring))
}

func (v *ringValidator) ValidateDelete(context.Context, *v1alpha1.UpdateRing) (admission.Warnings, error) {
	return nil, nil
}
