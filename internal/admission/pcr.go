package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/changecontrol"
)

// ApproveVerb is the custom verb RBAC must grant on partnerchangerequests
// for a user to decide one (the CertificateSigningRequest approval pattern).
const ApproveVerb = "approve"

// ApproverClusterRole is the ClusterRole that grants ApproveVerb, named in
// the refusal of a decision.
const ApproverClusterRole = "partner-approver"

// The operator creates the requests that hold partners' writes, and asks
// RBAC (SubjectAccessReview, granted with the webhook authentication) who
// may decide one.
// +kubebuilder:rbac:groups=partners.roompro.io,resources=partnerchangerequests,verbs=get;create

// +kubebuilder:webhook:path=/mutate-partners-roompro-io-v1alpha1-partnerchangerequest,mutating=true,failurePolicy=fail,sideEffects=None,groups=partners.roompro.io,resources=partnerchangerequests,verbs=create;update,versions=v1alpha1,name=mpartnerchangerequest.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-partners-roompro-io-v1alpha1-partnerchangerequest,mutating=false,failurePolicy=fail,sideEffects=None,groups=partners.roompro.io,resources=partnerchangerequests,verbs=create;update,versions=v1alpha1,name=vpartnerchangerequest.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5

// pcrStamper is the mutating webhook of PartnerChangeRequests. On create it
// records the requester from userInfo (requested-by, requested-by-groups)
// and the link label from spec.partnerLink, overwriting whatever the body
// said; a request the operator creates to hold a partner's write keeps the
// partner's identity the operator set. On the update that sets
// spec.decision it records who decided and when. It patches those keys and
// nothing else (see stamper).
type pcrStamper struct{ opts Options }

// pcrMeta is what the stamper reads of a request.
type pcrMeta struct {
	Metadata struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		PartnerLink string `json:"partnerLink"`
		Decision    string `json:"decision"`
	} `json:"spec"`
}

func (s pcrStamper) Handle(_ context.Context, req admission.Request) admission.Response {
	var obj pcrMeta
	if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	var patches []jsonpatch.JsonPatchOperation
	switch req.Operation {
	case admissionv1.Create:
		if obj.Spec.PartnerLink != "" {
			patches = append(patches, setKey("labels", obj.Metadata.Labels, v1alpha1.LabelPartnerLink, obj.Spec.PartnerLink)...)
		}
		if req.UserInfo.Username != s.opts.OperatorUser || s.opts.OperatorUser == "" {
			patches = append(patches, setKeys("annotations", obj.Metadata.Annotations, map[string]string{
				v1alpha1.AnnotationRequestedBy:       req.UserInfo.Username,
				v1alpha1.AnnotationRequestedByGroups: strings.Join(req.UserInfo.Groups, ","),
			})...)
		}
	case admissionv1.Update:
		var old pcrMeta
		if err := json.Unmarshal(req.OldObject.Raw, &old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		if old.Spec.Decision == "" && obj.Spec.Decision != "" {
			patches = append(patches, setKeys("annotations", obj.Metadata.Annotations, map[string]string{
				v1alpha1.AnnotationDecidedBy: req.UserInfo.Username,
				v1alpha1.AnnotationDecidedAt: s.opts.Clock.Now().UTC().Format(time.RFC3339),
			})...)
		}
	}
	if len(patches) == 0 {
		return admission.Allowed("")
	}
	return admission.Patched("recorded the requesting or deciding user", patches...)
}

func setKey(where string, current map[string]string, key, value string) []jsonpatch.JsonPatchOperation {
	return setKeys(where, current, map[string]string{key: value})
}

// setKeys patches keys of metadata.<where> (labels or annotations) to values.
func setKeys(where string, current map[string]string, values map[string]string) []jsonpatch.JsonPatchOperation {
	if current == nil {
		return []jsonpatch.JsonPatchOperation{jsonpatch.NewOperation("add", "/metadata/"+where, values)}
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []jsonpatch.JsonPatchOperation
	for _, k := range keys {
		if v, ok := current[k]; ok && v == values[k] {
			continue
		}
		out = append(out, jsonpatch.NewOperation("add", "/metadata/"+where+"/"+escapePointer(k), values[k]))
	}
	return out
}

// pcrValidator admits a partner's own request only when it could make the
// write directly, and a decision only by a customer user whom RBAC grants
// approve on the request.
type pcrValidator struct {
	changes
	// reviews creates SubjectAccessReviews (the operator's client).
	reviews client.Writer
}

func (v *pcrValidator) ValidateCreate(ctx context.Context, pcr *v1alpha1.PartnerChangeRequest) (admission.Warnings, error) {
	who, err := v.opts.requester(ctx)
	if err != nil {
		return nil, err
	}
	if who.is(v.opts.OperatorUser) {
		return nil, nil // a hold: the write was checked as the direct write it is
	}
	if who.partner == nil {
		return nil, forbidden(pcr, "partnerchangerequests",
			"change requests are made by partner users, by a write in a Manual category or by creating one; the customer writes directly")
	}
	var errs field.ErrorList
	if pcr.Spec.Decision != "" {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "decision"), "a new request is pending: the customer decides it, never the requester"))
	}
	if got := pcr.Annotations[v1alpha1.AnnotationRequestedBy]; got != who.name {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "annotations").Key(v1alpha1.AnnotationRequestedBy), got,
			fmt.Sprintf("must be %s, the requesting user, which the admission webhook records", who.name)))
	}
	live, err := v.target(ctx, pcr)
	if err != nil {
		return nil, err
	}
	more, err := v.checkChange(ctx, who, pcr, live)
	if err != nil {
		return nil, err
	}
	return nil, invalid(pcr, "PartnerChangeRequest", append(errs, more...))
}

// target reads the request's target live; nil when it does not exist.
func (v *pcrValidator) target(ctx context.Context, pcr *v1alpha1.PartnerChangeRequest) (client.Object, error) {
	var obj client.Object
	switch pcr.Spec.Target.Kind {
	case kindRoom:
		obj = &v1alpha1.Room{}
	case kindPartnerRole:
		obj = &v1alpha1.PartnerRole{}
	case kindTicket:
		obj = &v1alpha1.Ticket{}
	default:
		return nil, nil // checkChange refuses it
	}
	if err := v.reader.Get(ctx, client.ObjectKey{Namespace: pcr.Namespace, Name: pcr.Spec.Target.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading %s %q: %w", pcr.Spec.Target.Kind, pcr.Spec.Target.Name, err)
	}
	return obj, nil
}

func (v *pcrValidator) ValidateUpdate(ctx context.Context, old, pcr *v1alpha1.PartnerChangeRequest) (admission.Warnings, error) {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the admission request: %w", err)
	}
	who, err := v.opts.requester(ctx)
	if err != nil {
		return nil, err
	}
	deciding := old.Spec.Decision == "" && pcr.Spec.Decision != ""
	annotations := field.NewPath("metadata", "annotations")
	var errs field.ErrorList
	if !who.is(v.opts.OperatorUser) {
		for _, key := range []string{v1alpha1.AnnotationRequestedBy, v1alpha1.AnnotationRequestedByGroups, v1alpha1.AnnotationDecidedBy, v1alpha1.AnnotationDecidedAt} {
			before, had := old.Annotations[key]
			after, has := pcr.Annotations[key]
			if deciding && (key == v1alpha1.AnnotationDecidedBy || key == v1alpha1.AnnotationDecidedAt) {
				if key == v1alpha1.AnnotationDecidedBy && after != who.name || !has {
					errs = append(errs, field.Invalid(annotations.Key(key), after,
						"records who decided and when, from the apiserver's userInfo: the admission webhook stamps it on the write that sets spec.decision"))
				}
				continue
			}
			if had != has || before != after {
				errs = append(errs, field.Forbidden(annotations.Key(key), "is recorded by the admission webhook; it cannot be changed"))
			}
		}
		if key := v1alpha1.LabelPartnerLink; old.Labels[key] != pcr.Labels[key] {
			errs = append(errs, field.Forbidden(field.NewPath("metadata", "labels").Key(key), "is recorded by the admission webhook from spec.partnerLink; it cannot be changed"))
		}
	}
	if len(errs) > 0 {
		return nil, invalid(pcr, "PartnerChangeRequest", errs)
	}
	if !deciding {
		return nil, nil
	}
	if who.partner != nil {
		return nil, forbidden(pcr, "partnerchangerequests", fmt.Sprintf(
			"%s may not decide: a partner identity never decides a change request; the customer's approvers do", who.name))
	}
	switch old.Status.Phase {
	case v1alpha1.ChangeExpired, v1alpha1.ChangeFailed, v1alpha1.ChangeApplied:
		return nil, forbidden(pcr, "partnerchangerequests", fmt.Sprintf("the request is %s: it can no longer be decided", old.Status.Phase))
	}
	allowed, err := v.mayApprove(ctx, req, pcr)
	if err != nil {
		return nil, err
	}
	if !allowed {
		return nil, forbidden(pcr, "partnerchangerequests", fmt.Sprintf(
			"%s may not decide: RBAC grants no '%s' on partnerchangerequests in namespace %s; bind ClusterRole %s",
			who.name, ApproveVerb, pcr.Namespace, ApproverClusterRole))
	}
	return nil, nil
}

// mayApprove asks RBAC, with a SubjectAccessReview of the deciding user
// (name, groups, extra and uid from userInfo), whether it may approve this
// request.
func (v *pcrValidator) mayApprove(ctx context.Context, req admission.Request, pcr *v1alpha1.PartnerChangeRequest) (bool, error) {
	extra := make(map[string]authorizationv1.ExtraValue, len(req.UserInfo.Extra))
	for k, vals := range req.UserInfo.Extra {
		extra[k] = authorizationv1.ExtraValue(vals)
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: req.UserInfo.Username, Groups: req.UserInfo.Groups, Extra: extra, UID: req.UserInfo.UID,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: pcr.Namespace, Verb: ApproveVerb, Group: v1alpha1.GroupVersion.Group,
			Version: v1alpha1.GroupVersion.Version, Resource: "partnerchangerequests", Name: pcr.Name,
		},
	}}
	if err := v.reviews.Create(ctx, sar); err != nil {
		return false, fmt.Errorf("asking RBAC whether %s may approve: %w", req.UserInfo.Username, err)
	}
	return sar.Status.Allowed && !sar.Status.Denied, nil
}

func (v *pcrValidator) ValidateDelete(context.Context, *v1alpha1.PartnerChangeRequest) (admission.Warnings, error) {
	return nil, nil // the authorization webhook and RBAC decide who may delete
}

// checkChange judges the write a request holds as a direct write of who
// would be judged at this moment, against live (the target as it is; nil
// when it does not exist): the link, the role or the room scope, and the
// kind's own checks on the object. Refusals are field errors; an error is
// a failure to check.
func (c changes) checkChange(ctx context.Context, who requester, pcr *v1alpha1.PartnerChangeRequest, live client.Object) (field.ErrorList, error) {
	spec := field.NewPath("spec")
	if who.partner == nil {
		return field.ErrorList{field.Forbidden(spec, fmt.Sprintf("%s is not a partner identity: only partner users' changes are held", who.name))}, nil
	}
	link, err := getLink(ctx, c.reader, pcr.Namespace, pcr.Spec.PartnerLink)
	if err != nil {
		return nil, err
	}
	switch {
	case link == nil || !link.DeletionTimestamp.IsZero():
		return field.ErrorList{field.NotFound(spec.Child("partnerLink"), pcr.Spec.PartnerLink)}, nil
	case string(link.Spec.PartnerDomain) != who.partner.Domain:
		return field.ErrorList{field.Forbidden(spec.Child("partnerLink"), fmt.Sprintf(
			"%s may only request changes through its own partner links; %q is %s's", who.name, link.Name, link.Spec.PartnerDomain))}, nil
	}
	errs := checkObjectNames(pcr)
	if len(errs) > 0 {
		return errs, nil
	}
	targetName := spec.Child("target", "name")
	switch pcr.Spec.Category {
	case v1alpha1.CategoryRooms:
		if errs, err := c.decideRoomUpdate(who, pcr.Namespace, pcr.Spec.Target.Name, spec.Child("target")); err != nil || len(errs) > 0 {
			return errs, err
		}
		old, ok := live.(*v1alpha1.Room)
		if !ok || old == nil {
			return field.ErrorList{field.NotFound(targetName, pcr.Spec.Target.Name)}, nil
		}
		room := &v1alpha1.Room{}
		if err := decodeObject(pcr, room); err != nil {
			return field.ErrorList{err}, nil
		}
		return underObject(roomErrs(who, c.opts, old, room)), nil
	case v1alpha1.CategoryRoles:
		held, refusal := writerHoldings(c.opts, pcr.Namespace, link, who)
		if refusal != "" {
			return field.ErrorList{field.Forbidden(spec.Child("partnerLink"), refusal)}, nil
		}
		old, _ := live.(*v1alpha1.PartnerRole)
		switch {
		case pcr.Spec.Operation == v1alpha1.OperationCreate && old != nil:
			return field.ErrorList{field.Duplicate(targetName, pcr.Spec.Target.Name)}, nil
		case pcr.Spec.Operation != v1alpha1.OperationCreate && old == nil:
			return field.ErrorList{field.NotFound(targetName, pcr.Spec.Target.Name)}, nil
		}
		if old != nil && old.Spec.PartnerLink != link.Name {
			return field.ErrorList{field.Forbidden(targetName, fmt.Sprintf("PartnerRole %q belongs to PartnerLink %q, not %q", old.Name, old.Spec.PartnerLink, link.Name))}, nil
		}
		if pcr.Spec.Operation == v1alpha1.OperationDelete {
			if old.Spec.Builtin == v1alpha1.BuiltinPrimaryAdmin {
				return field.ErrorList{field.Forbidden(targetName, fmt.Sprintf(
					"the built-in primary-admin role cannot be deleted while PartnerLink %q exists: a partner always has a primary admin", link.Name))}, nil
			}
			return nil, nil
		}
		role := &v1alpha1.PartnerRole{}
		if err := decodeObject(pcr, role); err != nil {
			return field.ErrorList{err}, nil
		}
		if role.Spec.PartnerLink != link.Name {
			return field.ErrorList{field.Invalid(spec.Child("object", "spec", "partnerLink"), role.Spec.PartnerLink, fmt.Sprintf("must be %q, the request's spec.partnerLink", link.Name))}, nil
		}
		prior := old
		if prior == nil {
			prior = &v1alpha1.PartnerRole{}
		}
		errs := validatePartnerMetadata(ownLabels, prior, role)
		errs = append(errs, roleErrs(who, c.opts, old, role, link, held)...)
		return underObject(errs), nil
	case v1alpha1.CategoryTickets:
		old, _ := live.(*v1alpha1.Ticket)
		return c.checkTicketChange(who, pcr, old)
	}
	return field.ErrorList{field.NotSupported(spec.Child("category"), pcr.Spec.Category,
		[]string{string(v1alpha1.CategoryRooms), string(v1alpha1.CategoryRoles), string(v1alpha1.CategoryTickets)})}, nil
}

// checkTicketChange judges a held ticket create or update (partners never
// delete tickets) as the direct write: a create by tickets.create on the
// ticket's spec.room, an update by tickets.update on the live ticket (its
// room), and the ticket webhook's checks of the object. old is the live
// ticket, nil when it does not exist.
func (c changes) checkTicketChange(who requester, pcr *v1alpha1.PartnerChangeRequest, old *v1alpha1.Ticket) (field.ErrorList, error) {
	spec := field.NewPath("spec")
	targetName := spec.Child("target", "name")
	switch pcr.Spec.Operation {
	case v1alpha1.OperationCreate:
		if old != nil {
			return field.ErrorList{field.Duplicate(targetName, pcr.Spec.Target.Name)}, nil
		}
	case v1alpha1.OperationUpdate:
		if old == nil {
			return field.ErrorList{field.NotFound(targetName, pcr.Spec.Target.Name)}, nil
		}
	default:
		return field.ErrorList{field.NotSupported(spec.Child("operation"), pcr.Spec.Operation,
			[]string{string(v1alpha1.OperationCreate), string(v1alpha1.OperationUpdate)})}, nil
	}
	ticket := &v1alpha1.Ticket{}
	if err := decodeObject(pcr, ticket); err != nil {
		return field.ErrorList{err}, nil
	}
	prior := old
	if old == nil {
		prior = &v1alpha1.Ticket{}
		if errs, err := c.decideTicketCreate(who, pcr.Namespace, ticket.Spec.Room, spec.Child("object", "spec", "room")); err != nil || len(errs) > 0 {
			return errs, err
		}
	} else {
		if errs, err := c.decideTicketUpdate(who, pcr.Namespace, old.Name, old.Spec.Room, spec.Child("target")); err != nil || len(errs) > 0 {
			return errs, err
		}
		if ticket.Spec.Room != old.Spec.Room {
			return field.ErrorList{field.Invalid(spec.Child("object", "spec", "room"), ticket.Spec.Room,
				fmt.Sprintf("room is immutable: the ticket is about room %q; open a new ticket for another room", old.Spec.Room))}, nil
		}
	}
	// The operator's write gets the room label from the mutating webhook,
	// as every write does: a held object without it is no partner's
	// relabelling.
	labels := maps.Clone(ticket.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[v1alpha1.LabelRoom] = ticket.Spec.Room
	ticket.Labels = labels
	return underObject(ticketErrs(who, c.opts, prior, ticket)), nil
}

// checkObjectNames checks that the held object is the target: its
// apiVersion, kind, name and namespace.
func checkObjectNames(pcr *v1alpha1.PartnerChangeRequest) field.ErrorList {
	if pcr.Spec.Object == nil {
		return nil
	}
	path := field.NewPath("spec", "object")
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(pcr.Spec.Object.Raw, &head); err != nil {
		return field.ErrorList{field.Invalid(path, "", "must be a JSON object: "+err.Error())}
	}
	var errs field.ErrorList
	t := pcr.Spec.Target
	if head.APIVersion != t.APIVersion {
		errs = append(errs, field.Invalid(path.Child("apiVersion"), head.APIVersion, fmt.Sprintf("must be %s, spec.target.apiVersion", t.APIVersion)))
	}
	if head.Kind != t.Kind {
		errs = append(errs, field.Invalid(path.Child("kind"), head.Kind, fmt.Sprintf("must be %s, spec.target.kind", t.Kind)))
	}
	if head.Metadata.Name != t.Name {
		errs = append(errs, field.Invalid(path.Child("metadata", "name"), head.Metadata.Name, fmt.Sprintf("must be %q, spec.target.name", t.Name)))
	}
	if head.Metadata.Namespace != "" && head.Metadata.Namespace != pcr.Namespace {
		errs = append(errs, field.Invalid(path.Child("metadata", "namespace"), head.Metadata.Namespace, fmt.Sprintf("must be %q, the request's namespace, or absent", pcr.Namespace)))
	}
	return errs
}

// decodeObject decodes the held object into obj, in the request's namespace.
func decodeObject(pcr *v1alpha1.PartnerChangeRequest, obj client.Object) *field.Error {
	if pcr.Spec.Object == nil {
		return field.Required(field.NewPath("spec", "object"), "the intended object of a Create or Update")
	}
	if err := json.Unmarshal(pcr.Spec.Object.Raw, obj); err != nil {
		return field.Invalid(field.NewPath("spec", "object"), "", fmt.Sprintf("is not a %s: %v", pcr.Spec.Target.Kind, err))
	}
	obj.SetNamespace(pcr.Namespace)
	return nil
}

// underObject puts the field errors of a held object under spec.object.
func underObject(errs field.ErrorList) field.ErrorList {
	for _, e := range errs {
		e.Field = "spec.object." + e.Field
	}
	return errs
}

// NewRecheck returns the check the PartnerChangeRequest controller makes
// before it applies an approved request: that the requester may, at this
// moment, make the write the request holds, as a direct write of that user
// is checked (the link exists, is of the user's domain and not being
// deleted; for rooms the decision index allows the user to update the
// room; for roles the user holds roles.modify on the link, grants nothing
// it does not hold, and the role passes the role webhook's checks; for
// tickets the index allows a create by tickets.create on the ticket's
// spec.room and an update by tickets.update on the ticket). A
// refusal is a *changecontrol.Refusal with a plain message; any other error
// is a failure to check (the index is starting or stale, a read failed).
// reader should read live (the manager's API reader).
func NewRecheck(reader client.Reader, opts Options) changecontrol.Recheck {
	c := changes{reader: reader, opts: opts.withDefaults()}
	return func(ctx context.Context, who changecontrol.Requester, pcr *v1alpha1.PartnerChangeRequest, live client.Object) error {
		r := c.opts.classify(who.Name, who.Groups)
		live, err := typedTarget(pcr, live)
		if err != nil {
			return fmt.Errorf("rechecking PartnerChangeRequest %q: %w", pcr.Name, err)
		}
		errs, err := c.checkChange(ctx, r, pcr, live)
		if err != nil {
			if errors.Is(err, errCannotCheck) {
				return err
			}
			return fmt.Errorf("rechecking PartnerChangeRequest %q: %w", pcr.Name, err)
		}
		if len(errs) > 0 {
			return &changecontrol.Refusal{Message: fmt.Sprintf("%s may no longer make this change: %s", who.Name, errs.ToAggregate().Error())}
		}
		return nil
	}
}

// typedTarget returns the live target as its API type: the controller reads
// targets of every kind as unstructured objects, the checks judge typed ones.
func typedTarget(pcr *v1alpha1.PartnerChangeRequest, live client.Object) (client.Object, error) {
	u, ok := live.(*unstructured.Unstructured)
	if !ok {
		return live, nil
	}
	var typed client.Object
	switch pcr.Spec.Target.Kind {
	case kindRoom:
		typed = &v1alpha1.Room{}
	case kindPartnerRole:
		typed = &v1alpha1.PartnerRole{}
	case kindTicket:
		typed = &v1alpha1.Ticket{}
	default:
		return live, nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, typed); err != nil {
		return nil, fmt.Errorf("decoding the live %s %q: %w", pcr.Spec.Target.Kind, u.GetName(), err)
	}
	return typed, nil
}
