package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authz"
	"github.com/roompro/partner-operator/internal/changecontrol"
)

// changes is what the validators of a partner's direct writes share with
// the PartnerChangeRequest webhooks and the operator's recheck: the live
// reads of links and invitations, the hold of a write in a Manual category,
// and the checks of a held write.
type changes struct {
	// reader reads live (the API reader): a request created a moment ago
	// is found, and a recheck sees the link as it is.
	reader client.Reader
	// modes reads the links and invitations that tell whether a write is
	// held: the manager's cache, which also feeds the authorization index
	// that allowed the write. A write in an Auto category so costs no API
	// call; the mode is the one the cache holds when the write arrives,
	// behind the customer's change of it by the watch's delay (what the
	// authorization index knows of a link is behind by as much). nil reads
	// with reader.
	modes client.Reader
	// writer is the operator's own client: it creates the held requests
	// (the webhook runs as the operator).
	writer client.Writer
	opts   Options
}

// The kinds a change request targets.
const (
	kindRoom        = "Room"
	kindPartnerRole = "PartnerRole"
	kindTicket      = "Ticket"
)

// resourceTickets is both the real resource of Tickets and the rooms
// subresource of the matrix (rooms/tickets) that a ticket create is decided
// by.
const resourceTickets = "tickets"

func (c changes) modeReader() client.Reader {
	if c.modes != nil {
		return c.modes
	}
	return c.reader
}

// approvalMode is the mode of category in approvals; unset is Auto.
func approvalMode(a v1alpha1.Approvals, category v1alpha1.ChangeCategory) v1alpha1.ApprovalMode {
	switch category {
	case v1alpha1.CategoryRooms:
		return a.Rooms
	case v1alpha1.CategoryRoles:
		return a.Roles
	case v1alpha1.CategoryTickets:
		return a.Tickets
	}
	return v1alpha1.ApprovalAuto
}

// manual reports whether category is Manual on the invitation the link
// accepted, read from the cache (modes). An invitation that is gone, or
// replaced by a later one of the same name (its UID is not the one the link
// recorded), holds no approvals for this link: its categories are Auto, the
// default.
func (c changes) manual(ctx context.Context, link *v1alpha1.PartnerLink, category v1alpha1.ChangeCategory) (bool, error) {
	inv := &v1alpha1.PartnerInvitation{}
	if err := c.modeReader().Get(ctx, client.ObjectKey{Namespace: link.Namespace, Name: link.Spec.Invitation}, inv); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("reading PartnerInvitation %q for its approval modes: %w", link.Spec.Invitation, err)
	}
	if uid := link.Annotations[v1alpha1.AnnotationInvitationUID]; uid != "" && uid != string(inv.UID) {
		return false, nil
	}
	return approvalMode(inv.Spec.Approvals, category) == v1alpha1.ApprovalManual, nil
}

// roomLink returns the link a partner user writes a namespace's rooms
// through: its domain's link there that is not being deleted (a domain has
// one live partnership per namespace, linkValidator.onePartnership; should
// a race have admitted two, the first by name on which the user holds a
// grant). nil when there is none.
func (c changes) roomLink(ctx context.Context, namespace string, who requester) (*v1alpha1.PartnerLink, error) {
	var links v1alpha1.PartnerLinkList
	if err := c.modeReader().List(ctx, &links, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing the PartnerLinks of namespace %q: %w", namespace, err)
	}
	var live []*v1alpha1.PartnerLink
	for i := range links.Items {
		l := &links.Items[i]
		if string(l.Spec.PartnerDomain) == who.partner.Domain && l.DeletionTimestamp.IsZero() && l.Status.Phase != v1alpha1.LinkExpired {
			live = append(live, l)
		}
	}
	slices.SortFunc(live, func(a, b *v1alpha1.PartnerLink) int { return strings.Compare(a.Name, b.Name) })
	if len(live) > 1 {
		for _, l := range live {
			if len(c.opts.Holdings(namespace, who.name, who.groups, l.Name)) > 0 {
				return l, nil
			}
		}
	}
	if len(live) == 0 {
		return nil, nil
	}
	return live[0], nil
}

// write is a partner's direct write that passed every check, for hold.
type write struct {
	who       requester
	link      string
	category  v1alpha1.ChangeCategory
	operation v1alpha1.ChangeOperation
	// resource is the written resource's plural, for the refusal.
	resource string
	// kind and name are the target's.
	kind, name, namespace string
	// object is the intended object (nil for a Delete).
	object client.Object
	// base is the old object's resourceVersion ("" for a Create).
	base   string
	reason string
	dryRun bool
}

// hold turns a write into a PartnerChangeRequest and refuses the write with
// the request's name. The name is a function of the write (changecontrol.
// Name): a retry, or many identical writes at once, make one request. A
// dry run creates nothing. hold always returns an error: the refusal, or
// why the request could not be made.
func (c changes) hold(ctx context.Context, w write) error {
	target := v1alpha1.ChangeTarget{APIVersion: v1alpha1.GroupVersion.String(), Kind: w.kind, Name: w.name}
	var raw []byte
	if w.object != nil {
		var err error
		if raw, err = heldObject(w.object, w.kind); err != nil {
			return err
		}
	}
	name, err := changecontrol.Name(w.link, w.category, w.who.name, w.operation, target, w.base, raw)
	if err != nil {
		return err
	}
	refuse := func(format string, args ...any) error {
		return apierrors.NewForbidden(schemaGroupResource(w.resource), w.name, fmt.Errorf(format, args...))
	}
	if w.dryRun {
		return refuse("would be held for the customer's approval as partnerchangerequest/%s (a dry run: no request was created)", name)
	}
	pcr := &v1alpha1.PartnerChangeRequest{}
	pcr.Name, pcr.Namespace = name, w.namespace
	pcr.Labels = map[string]string{v1alpha1.LabelPartnerLink: w.link}
	pcr.Annotations = map[string]string{
		v1alpha1.AnnotationRequestedBy:       w.who.name,
		v1alpha1.AnnotationRequestedByGroups: strings.Join(w.who.groups, ","),
	}
	pcr.Spec = v1alpha1.PartnerChangeRequestSpec{
		PartnerLink: w.link, Category: w.category, Operation: w.operation, Target: target,
		BaseResourceVersion: w.base, Reason: w.reason,
	}
	if raw != nil {
		pcr.Spec.Object = &runtime.RawExtension{Raw: raw}
	}
	err = c.writer.Create(ctx, pcr)
	if err == nil {
		return refuse("held for the customer's approval as partnerchangerequest/%s", name)
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating PartnerChangeRequest %q to hold the write: %w", name, err)
	}
	existing := &v1alpha1.PartnerChangeRequest{}
	if err := c.reader.Get(ctx, client.ObjectKeyFromObject(pcr), existing); err != nil {
		return fmt.Errorf("reading PartnerChangeRequest %q, which holds this write already: %w", name, err)
	}
	same, err := sameChange(existing, pcr)
	if err != nil {
		return err
	}
	if !same {
		return fmt.Errorf("PartnerChangeRequest %q exists and holds another change (a hash collision of change-request names); nothing was held, retry the write with another change-reason", name)
	}
	if state := decided(existing); state != "" {
		return refuse("held for the customer's approval as partnerchangerequest/%s, which is %s already: the same write again is the same request; change the write to ask again", name, state)
	}
	return refuse("held for the customer's approval as partnerchangerequest/%s", name)
}

// decided says what became of a request that is no longer pending: its
// phase, or its decision while the operator has not acted yet; "" for a
// pending one.
func decided(pcr *v1alpha1.PartnerChangeRequest) string {
	switch pcr.Status.Phase {
	case v1alpha1.ChangeApplied, v1alpha1.ChangeFailed, v1alpha1.ChangeExpired, v1alpha1.ChangeDenied:
		return string(pcr.Status.Phase)
	}
	return string(pcr.Spec.Decision)
}

// sameChange reports whether an existing request holds the change want
// would: the same link, category, operation, target, base, object and
// requester (the reason may differ: it is the partner's words, not part of
// the change).
func sameChange(existing, want *v1alpha1.PartnerChangeRequest) (bool, error) {
	a, b := existing.Spec, want.Spec
	if a.PartnerLink != b.PartnerLink || a.Category != b.Category || a.Operation != b.Operation || a.Target != b.Target ||
		a.BaseResourceVersion != b.BaseResourceVersion ||
		existing.Annotations[v1alpha1.AnnotationRequestedBy] != want.Annotations[v1alpha1.AnnotationRequestedBy] {
		return false, nil
	}
	if (a.Object == nil) != (b.Object == nil) {
		return false, nil
	}
	if a.Object == nil {
		return true, nil
	}
	x, err := changecontrol.Canonical(a.Object.Raw)
	if err != nil {
		return false, err
	}
	y, err := changecontrol.Canonical(b.Object.Raw)
	if err != nil {
		return false, err
	}
	return string(x) == string(y), nil
}

// heldObject is the canonical JSON of the intended object as a request
// holds it: the whole object, without what the apiserver owns (status,
// managedFields, resourceVersion, uid, creationTimestamp, generation) and
// without the change-reason annotation, which becomes spec.reason.
func heldObject(obj client.Object, kind string) ([]byte, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding the held %s: %w", kind, err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decoding the held %s: %w", kind, err)
	}
	delete(m, "status")
	m["apiVersion"], m["kind"] = v1alpha1.GroupVersion.String(), kind
	if meta, ok := m["metadata"].(map[string]any); ok {
		for _, k := range []string{"managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"} {
			delete(meta, k)
		}
		if ann, ok := meta["annotations"].(map[string]any); ok {
			delete(ann, v1alpha1.AnnotationChangeReason)
			if len(ann) == 0 {
				delete(meta, "annotations")
			}
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding the held %s: %w", kind, err)
	}
	return changecontrol.Canonical(out)
}

// withoutReason returns obj with the change-reason annotation as old had it
// (absent for a create), and the reason the write gave, so that the checks
// judge the write without it: the reason goes to the request, not to the
// object. changed reports whether the write set or changed it.
func withoutReason[T client.Object](old, obj T, isNil bool) (stripped T, reason string, changed bool) {
	reason, has := obj.GetAnnotations()[v1alpha1.AnnotationChangeReason]
	var before string
	var hadBefore bool
	if !isNil {
		before, hadBefore = old.GetAnnotations()[v1alpha1.AnnotationChangeReason]
	}
	if has == hadBefore && reason == before {
		return obj, "", false
	}
	stripped = obj.DeepCopyObject().(T)
	ann := maps.Clone(stripped.GetAnnotations())
	if hadBefore {
		ann[v1alpha1.AnnotationChangeReason] = before
	} else {
		delete(ann, v1alpha1.AnnotationChangeReason)
	}
	if len(ann) == 0 {
		ann = nil
	}
	stripped.SetAnnotations(ann)
	return stripped, reason, true
}

// reasonNotHeld refuses a change-reason annotation on a write that is not
// held: it is read only from a write held for approval.
func reasonNotHeld() field.ErrorList {
	return field.ErrorList{field.Forbidden(field.NewPath("metadata", "annotations").Key(v1alpha1.AnnotationChangeReason),
		"is the reason of a write held for the customer's approval, and this write is not held (its category is Auto on the partner's invitation, or it changes nothing held)")}
}

// dryRun reports whether the admission request is a dry run.
func dryRun(ctx context.Context) bool {
	req, err := admission.RequestFromContext(ctx)
	return err == nil && req.DryRun != nil && *req.DryRun
}

// errCannotCheck marks a check that could not be made (the decision index
// is starting or stale): not a refusal, the recheck is retried.
var errCannotCheck = errors.New("cannot check the write now")

// decide asks the decision index whether who may make r (its User and
// Groups are who's), as the authorization webhook would answer the
// apiserver: nil when it is Allowed, a field error at path saying that who
// may not do what, and why, when it is not; errCannotCheck while the index
// cannot tell. what is the write in words ("update room \"nyc\"").
func (c changes) decide(who requester, r *authz.Request, path *field.Path, what string) (field.ErrorList, error) {
	// The session was checked when the apiserver authorised the write;
	// a recheck at apply time has no session to check.
	r.User, r.Groups, r.Group, r.SessionVerified = who.name, who.groups, authz.Group, true
	d := c.opts.Decide(r)
	switch {
	case d.Verdict == authz.Allow:
		return nil, nil
	case d.Cause == authz.IndexNotSynced || d.Cause == authz.IndexStale:
		return nil, fmt.Errorf("%w: %s", errCannotCheck, d.Reason)
	}
	reason := d.Reason
	if reason == "" {
		reason = "no role grants it"
	}
	return field.ErrorList{field.Forbidden(path, fmt.Sprintf("%s may not %s: %s", who.name, what, reason))}, nil
}

// decideRoomUpdate asks whether who may update a room (rooms.modify on it).
func (c changes) decideRoomUpdate(who requester, namespace, room string, path *field.Path) (field.ErrorList, error) {
	return c.decide(who, &authz.Request{Namespace: namespace, Verb: "update", Resource: "rooms", Name: room},
		path, fmt.Sprintf("update room %q", room))
}

// decideTicketCreate asks whether who may create a ticket for a room: the
// rooms/tickets create request on the room, which the authorization webhook
// answers by tickets.create on that room. The apiserver's own review of a
// ticket create names no room (it has no body), so this is where the room
// is checked.
func (c changes) decideTicketCreate(who requester, namespace, room string, path *field.Path) (field.ErrorList, error) {
	return c.decide(who, &authz.Request{Namespace: namespace, Verb: "create", Resource: "rooms", Subresource: resourceTickets, Name: room},
		path, fmt.Sprintf("create a ticket for room %q (that needs tickets.create on room %q)", room, room))
}

// decideTicketUpdate asks whether who may update a ticket, as the
// authorization webhook answers the apiserver's review of the update: by
// tickets.update on the ticket's room.
func (c changes) decideTicketUpdate(who requester, namespace, ticket, room string, path *field.Path) (field.ErrorList, error) {
	return c.decide(who, &authz.Request{Namespace: namespace, Verb: "update", Resource: resourceTickets, Name: ticket},
		path, fmt.Sprintf("update ticket %q (that needs tickets.update on its room %q)", ticket, room))
}
