package admission

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authz"
	"github.com/roompro/partner-operator/internal/changecontrol"
)

// ticketOpts: alice may create tickets for room nyc and update ticket
// t-nyc; late@contoso.com meets an index that has not synced; everything
// else is out of scope.
var ticketOpts = func() Options {
	o := opts
	o.Decide = func(r *authz.Request) authz.Decision {
		switch {
		case r.Group != authz.Group:
			return authz.Decision{Verdict: authz.Deny, Reason: "wrong API group"}
		case r.User == "late@contoso.com":
			return authz.Decision{Verdict: authz.Deny, Cause: authz.IndexNotSynced, Reason: "starting"}
		case r.User == alice && r.Verb == "create" && r.Resource == "rooms" && r.Subresource == "tickets" && r.Name == "nyc":
			return authz.Decision{Verdict: authz.Allow}
		case r.User == alice && r.Verb == "update" && r.Resource == "tickets" && r.Subresource == "" && r.Name == "t-nyc":
			return authz.Decision{Verdict: authz.Allow}
		}
		return authz.Decision{Verdict: authz.Deny, Cause: authz.RoomOutOfScope, Reason: "the room is not in the scope of the caller's roles"}
	}
	return o
}()

// ticket is a ticket about room, labelled as the mutating webhook labels it.
func ticket(name, room string) *v1alpha1.Ticket {
	return &v1alpha1.Ticket{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{v1alpha1.LabelRoom: room}},
		Spec:       v1alpha1.TicketSpec{Room: room, Title: "the screen is dark", Severity: v1alpha1.SeverityMedium, State: v1alpha1.TicketOpen},
	}
}

// liveTicket is ticket t-nyc as stored, with the access label of contoso.
func liveTicket() *v1alpha1.Ticket {
	t := ticket("t-nyc", "nyc")
	t.ResourceVersion, t.UID = "11", "ticket-uid"
	t.Labels[v1alpha1.AccessLabel("contoso.com")] = "true"
	return t
}

func TestRoomLabeler(t *testing.T) {
	label := func(op admissionv1.Operation, raw string) map[string]any {
		t.Helper()
		return applyPatches(t, roomLabeler{}.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			Operation: op, UserInfo: authenticationv1.UserInfo{Username: alice}, Object: runtime.RawExtension{Raw: []byte(raw)},
		}}), raw)
	}
	for name, tc := range map[string]struct {
		op   admissionv1.Operation
		raw  string
		want string
	}{
		"a create without labels":        {admissionv1.Create, `{"metadata":{"name":"t"},"spec":{"room":"nyc"}}`, "nyc"},
		"a create with other labels":     {admissionv1.Create, `{"metadata":{"name":"t","labels":{"team":"a"}},"spec":{"room":"nyc"}}`, "nyc"},
		"a create naming another room":   {admissionv1.Create, `{"metadata":{"name":"t","labels":{"partners.roompro.io/room":"sea"}},"spec":{"room":"nyc"}}`, "nyc"},
		"an update that drops the label": {admissionv1.Update, `{"metadata":{"name":"t","labels":{}},"spec":{"room":"nyc"}}`, "nyc"},
		"an update that keeps it":        {admissionv1.Update, `{"metadata":{"name":"t","labels":{"partners.roompro.io/room":"nyc"}},"spec":{"room":"nyc"}}`, "nyc"},
		"a room of the wrong type":       {admissionv1.Create, `{"metadata":{"name":"t"},"spec":{"room":7}}`, ""},
		"no room":                        {admissionv1.Create, `{"metadata":{"name":"t"},"spec":{}}`, ""},
		"a room too long for a label":    {admissionv1.Create, `{"metadata":{"name":"t"},"spec":{"room":"` + strings.Repeat("a", 64) + `"}}`, ""},
		"a delete is not the webhook's":  {admissionv1.Delete, `{"metadata":{"name":"t"},"spec":{"room":"nyc"}}`, ""},
		"a connect is not the webhook.s": {admissionv1.Connect, `{"metadata":{"name":"t"},"spec":{"room":"nyc"}}`, ""},
	} {
		t.Run(name, func(t *testing.T) {
			obj := label(tc.op, tc.raw)
			if got := metaKey(obj, "labels", v1alpha1.LabelRoom); got != tc.want {
				t.Errorf("room label %q, want %q (object %v)", got, tc.want, obj["metadata"])
			}
			if strings.Contains(tc.raw, `"team":"a"`) && metaKey(obj, "labels", "team") != "a" {
				t.Errorf("the other labels went: %v", obj["metadata"])
			}
		})
	}
}

func TestTicket(t *testing.T) {
	c := cluster(nil, link("contoso"), modes("", ""))
	v := &ticketValidator{changes{reader: c, writer: c, opts: ticketOpts}}

	// The customer opens tickets for any room name; the operator too.
	for _, who := range []string{customer, operator} {
		_, err := v.ValidateCreate(as(who), ticket("t1", "ghost"))
		expect(t, err, "")
	}
	unlabelled := ticket("t1", "nyc")
	unlabelled.Labels = nil
	_, err := v.ValidateCreate(as(customer), unlabelled)
	expect(t, err, `metadata.labels[partners.roompro.io/room]: Invalid value: "": must be "nyc", spec.room`)
	mislabelled := ticket("t1", "nyc")
	mislabelled.Labels[v1alpha1.LabelRoom] = "sea"
	_, err = v.ValidateCreate(as(operator), mislabelled)
	expect(t, err, `metadata.labels[partners.roompro.io/room]: Invalid value: "sea": must be "nyc"`)

	// The access labels are the operator's.
	old := liveTicket()
	grabbed := old.DeepCopy()
	grabbed.Labels[v1alpha1.AccessLabel("fabrikam.com")] = "true"
	_, err = v.ValidateUpdate(asReq(customer, admissionv1.Update, false), old, grabbed)
	expect(t, err, "metadata.labels[access.partners.roompro.io/fabrikam.com]|maintained by the partner-operator")
	_, err = v.ValidateUpdate(asReq(operator, admissionv1.Update, false), old, grabbed)
	expect(t, err, "")

	// A partner's create: tickets.create on spec.room, nothing else.
	_, err = v.ValidateCreate(as(alice), ticket("t1", "nyc"))
	expect(t, err, "")
	_, err = v.ValidateCreate(as(alice), ticket("t1", "sea"))
	expect(t, err, `spec.room: Forbidden: alice@contoso.com may not create a ticket for room "sea" (that needs tickets.create on room "sea"): the room is not in the scope of the caller's roles`)
	if !apierrors.IsInvalid(err) {
		t.Errorf("want Invalid, got %v", err)
	}
	_, err = v.ValidateCreate(as(carol), ticket("t1", "nyc"))
	expect(t, err, `carol@contoso.com may not create a ticket for room "nyc"`)
	_, err = v.ValidateCreate(as("late@contoso.com"), ticket("t1", "nyc"))
	if err == nil || apierrors.IsInvalid(err) {
		t.Errorf("an index that cannot tell: %v, want an error that is no verdict on the ticket", err)
	}
	expect(t, err, "cannot check the write now|starting")
	labelled := ticket("t1", "nyc")
	labelled.Labels["team"] = "ops"
	_, err = v.ValidateCreate(as(alice), labelled)
	expect(t, err, "metadata.labels[team]|partners may change a ticket's spec, not its labels")
	withReason := ticket("t1", "nyc")
	withReason.Annotations = map[string]string{v1alpha1.AnnotationChangeReason: "why"}
	_, err = v.ValidateCreate(as(alice), withReason)
	expect(t, err, "metadata.annotations[partners.roompro.io/change-reason]|not held")

	// A partner's update: the spec only (the authorization webhook checked
	// tickets.update on the ticket's room).
	progressed := old.DeepCopy()
	progressed.Spec.State = v1alpha1.TicketInProgress
	_, err = v.ValidateUpdate(asReq(alice, admissionv1.Update, false), old, progressed)
	expect(t, err, "")
	for name, tc := range map[string]struct {
		mutate func(*v1alpha1.Ticket)
		want   string
	}{
		"a label":                      {func(t *v1alpha1.Ticket) { t.Labels["team"] = "ops" }, "metadata.labels[team]|a ticket's spec"},
		"an access label":              {func(t *v1alpha1.Ticket) { delete(t.Labels, v1alpha1.AccessLabel("contoso.com")) }, "metadata.labels[access.partners.roompro.io/contoso.com]"},
		"the room label":               {func(t *v1alpha1.Ticket) { t.Labels[v1alpha1.LabelRoom] = "sea" }, `metadata.labels[partners.roompro.io/room]: Invalid value: "sea"`},
		"an annotation":                {func(t *v1alpha1.Ticket) { t.Annotations = map[string]string{"note": "x"} }, "metadata.annotations|not its annotations"},
		"a finalizer":                  {func(t *v1alpha1.Ticket) { t.Finalizers = []string{"contoso.com/keep"} }, "metadata.finalizers"},
		"an owner reference":           {func(t *v1alpha1.Ticket) { t.OwnerReferences = []metav1.OwnerReference{{Kind: "Room", Name: "nyc"}} }, "metadata.ownerReferences"},
		"a reason, not held":           {func(t *v1alpha1.Ticket) { t.Annotations = map[string]string{v1alpha1.AnnotationChangeReason: "x"} }, "change-reason]|not held"},
		"the spec alone (the control)": {nil, ""},
	} {
		t.Run(name, func(t *testing.T) {
			changed := progressed.DeepCopy()
			if tc.mutate != nil {
				tc.mutate(changed)
			}
			_, err := v.ValidateUpdate(asReq(alice, admissionv1.Update, false), old, changed)
			expect(t, err, tc.want)
		})
	}

	// Partners never delete tickets; the customer does.
	_, err = v.ValidateDelete(asReq(alice, admissionv1.Delete, false), old)
	expect(t, err, "partners never delete tickets")
	if !apierrors.IsForbidden(err) {
		t.Errorf("want Forbidden, got %v", err)
	}
	_, err = v.ValidateDelete(asReq(customer, admissionv1.Delete, false), old)
	expect(t, err, "")
}

func TestRoomReport(t *testing.T) {
	v := &reportValidator{opts: opts}
	report := &v1alpha1.RoomReport{ObjectMeta: metav1.ObjectMeta{Name: "r1", Namespace: ns, Labels: map[string]string{v1alpha1.LabelRoom: "nyc"}},
		Spec: v1alpha1.RoomReportSpec{Room: "nyc", AvailabilityPercent: 99}}
	_, err := v.ValidateCreate(as(customer), report)
	expect(t, err, "")
	mislabelled := report.DeepCopy()
	mislabelled.Labels[v1alpha1.LabelRoom] = "sea"
	_, err = v.ValidateCreate(as(customer), mislabelled)
	expect(t, err, `metadata.labels[partners.roompro.io/room]: Invalid value: "sea": must be "nyc", spec.room`)
	grabbed := report.DeepCopy()
	grabbed.Labels[v1alpha1.AccessLabel("contoso.com")] = "true"
	_, err = v.ValidateUpdate(asReq(customer, admissionv1.Update, false), report, grabbed)
	expect(t, err, "maintained by the partner-operator")
	_, err = v.ValidateUpdate(asReq(operator, admissionv1.Update, false), report, grabbed)
	expect(t, err, "")

	// A partner's write never gets through, whatever it holds.
	for name, call := range map[string]func() error{
		"create": func() error { _, err := v.ValidateCreate(as(alice), report); return err },
		"update": func() error {
			_, err := v.ValidateUpdate(asReq(alice, admissionv1.Update, false), report, report.DeepCopy())
			return err
		},
		"delete": func() error { _, err := v.ValidateDelete(asReq(alice, admissionv1.Delete, false), report); return err },
	} {
		err := call()
		expect(t, err, "room reports are written by the customer only")
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: want Forbidden, got %v", name, err)
		}
	}
	_, err = v.ValidateDelete(asReq(customer, admissionv1.Delete, false), report)
	expect(t, err, "")
}

func TestUpdateRing(t *testing.T) {
	v := &ringValidator{opts: opts}
	ring := &v1alpha1.UpdateRing{ObjectMeta: metav1.ObjectMeta{Name: "general", Namespace: ns, Labels: map[string]string{"tier": "1"}},
		Spec: v1alpha1.UpdateRingSpec{DisplayName: "General", DeferralDays: 7}}
	_, err := v.ValidateCreate(as(customer), ring)
	expect(t, err, "")
	_, err = v.ValidateCreate(as(alice), ring)
	expect(t, err, "update rings are created by the customer only")

	deferred := ring.DeepCopy()
	deferred.Spec.DeferralDays, deferred.Spec.Paused = 30, true
	_, err = v.ValidateUpdate(asReq(alice, admissionv1.Update, false), ring, deferred)
	expect(t, err, "")
	for name, tc := range map[string]struct {
		mutate func(*v1alpha1.UpdateRing)
		want   string
	}{
		"a label":            {func(r *v1alpha1.UpdateRing) { r.Labels["tier"] = "2" }, "metadata.labels[tier]|partners may change an update ring's spec, not its labels"},
		"an annotation":      {func(r *v1alpha1.UpdateRing) { r.Annotations = map[string]string{"x": "y"} }, "metadata.annotations|an update ring's spec"},
		"a finalizer":        {func(r *v1alpha1.UpdateRing) { r.Finalizers = []string{"contoso.com/keep"} }, "metadata.finalizers"},
		"an owner reference": {func(r *v1alpha1.UpdateRing) { r.OwnerReferences = []metav1.OwnerReference{{Kind: "Room", Name: "nyc"}} }, "metadata.ownerReferences"},
	} {
		t.Run(name, func(t *testing.T) {
			changed := deferred.DeepCopy()
			tc.mutate(changed)
			_, err := v.ValidateUpdate(asReq(alice, admissionv1.Update, false), ring, changed)
			expect(t, err, tc.want)
			_, err = v.ValidateUpdate(asReq(customer, admissionv1.Update, false), ring, changed)
			expect(t, err, "")
		})
	}
}

// ticketModes is invitation contoso with tickets: Manual.
func ticketModes() *v1alpha1.PartnerInvitation {
	inv := modes("", "")
	inv.Spec.Approvals.Tickets = v1alpha1.ApprovalManual
	return inv
}

func TestTicketHold(t *testing.T) {
	t.Run("Manual holds a partner's create", func(t *testing.T) {
		c := cluster(nil, link("contoso"), ticketModes())
		v := &ticketValidator{changes{reader: c, writer: c, opts: ticketOpts}}
		why := ticket("t1", "nyc")
		why.Annotations = map[string]string{v1alpha1.AnnotationChangeReason: "the screen is dark again"}
		_, err := v.ValidateCreate(asReq(alice, admissionv1.Create, false, "contoso.com:helpdesk"), why)
		expect(t, err, "held for the customer's approval as partnerchangerequest/contoso-tickets-")
		if !apierrors.IsForbidden(err) {
			t.Errorf("want Forbidden, got %v", err)
		}
		got := requests(t, c)
		if len(got) != 1 {
			t.Fatalf("%d requests, want 1", len(got))
		}
		pcr := got[0]
		if pcr.Spec.PartnerLink != "contoso" || pcr.Spec.Category != v1alpha1.CategoryTickets || pcr.Spec.Operation != v1alpha1.OperationCreate ||
			pcr.Spec.Target != (v1alpha1.ChangeTarget{APIVersion: "partners.roompro.io/v1alpha1", Kind: "Ticket", Name: "t1"}) ||
			pcr.Spec.BaseResourceVersion != "" || pcr.Spec.Reason != "the screen is dark again" {
			t.Errorf("spec %+v", pcr.Spec)
		}
		if pcr.Annotations[v1alpha1.AnnotationRequestedBy] != alice || pcr.Annotations[v1alpha1.AnnotationRequestedByGroups] != "contoso.com:helpdesk" {
			t.Errorf("annotations %v", pcr.Annotations)
		}
		held := &v1alpha1.Ticket{}
		if err := json.Unmarshal(pcr.Spec.Object.Raw, held); err != nil {
			t.Fatal(err)
		}
		if held.Kind != "Ticket" || held.Spec.Room != "nyc" || held.Spec.Title != "the screen is dark" ||
			held.Labels[v1alpha1.LabelRoom] != "nyc" || len(held.Annotations) != 0 {
			t.Errorf("held object %s", pcr.Spec.Object.Raw)
		}
		// The held create passes the request's own checks, as the recheck
		// before the apply makes them.
		expect(t, NewRecheck(c, ticketOpts)(context.Background(), changecontrol.Requester{Name: alice}, &pcr, nil), "")
	})

	t.Run("a create out of scope is refused, not held", func(t *testing.T) {
		c := cluster(nil, link("contoso"), ticketModes())
		v := &ticketValidator{changes{reader: c, writer: c, opts: ticketOpts}}
		_, err := v.ValidateCreate(asReq(alice, admissionv1.Create, false), ticket("t1", "sea"))
		expect(t, err, `spec.room|tickets.create on room "sea"`)
		if n := len(requests(t, c)); n != 0 {
			t.Errorf("%d requests, want 0", n)
		}
	})

	t.Run("Manual holds a partner's update against its version", func(t *testing.T) {
		old := liveTicket()
		c := cluster(nil, link("contoso"), ticketModes(), old)
		v := &ticketValidator{changes{reader: c, writer: c, opts: ticketOpts}}
		resolved := old.DeepCopy()
		resolved.Spec.State = v1alpha1.TicketResolved
		_, err := v.ValidateUpdate(asReq(alice, admissionv1.Update, false), old, resolved)
		expect(t, err, "held for the customer's approval as partnerchangerequest/contoso-tickets-")
		got := requests(t, c)
		if len(got) != 1 || got[0].Spec.Operation != v1alpha1.OperationUpdate || got[0].Spec.BaseResourceVersion != "11" ||
			got[0].Spec.Target.Kind != "Ticket" || got[0].Spec.Target.Name != "t-nyc" {
			t.Fatalf("requests %+v", got)
		}
		expect(t, NewRecheck(c, ticketOpts)(context.Background(), changecontrol.Requester{Name: alice}, &got[0], old), "")

		// A dry run holds nothing; a write that changes no spec is not held.
		_, err = v.ValidateUpdate(asReq(alice, admissionv1.Update, true), old, resolved)
		expect(t, err, "would be held|dry run")
		_, err = v.ValidateUpdate(asReq(alice, admissionv1.Update, false), old, old.DeepCopy())
		expect(t, err, "")
		if n := len(requests(t, c)); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})

	t.Run("not held", func(t *testing.T) {
		for name, tc := range map[string]struct {
			user string
			inv  *v1alpha1.PartnerInvitation
		}{
			"Auto":                   {alice, modes(v1alpha1.ApprovalManual, v1alpha1.ApprovalManual)},
			"the invitation is gone": {alice, nil},
			"the customer, Manual":   {customer, ticketModes()},
			"the operator, Manual":   {operator, ticketModes()},
		} {
			t.Run(name, func(t *testing.T) {
				objs := []client.Object{link("contoso")}
				if tc.inv != nil {
					objs = append(objs, tc.inv)
				}
				c := cluster(nil, objs...)
				v := &ticketValidator{changes{reader: c, writer: c, opts: ticketOpts}}
				_, err := v.ValidateCreate(asReq(tc.user, admissionv1.Create, false), ticket("t1", "nyc"))
				expect(t, err, "")
				if n := len(requests(t, c)); n != 0 {
					t.Errorf("%d requests, want 0", n)
				}
			})
		}
	})
}

// ticketRequest is alice's request for op on a ticket about room, as a
// partner would create it (the room label may be missing: the operator's
// write gets it).
func ticketRequest(op v1alpha1.ChangeOperation, name, room string) *v1alpha1.PartnerChangeRequest {
	obj := ticket(name, room)
	obj.Labels = nil
	obj.TypeMeta = metav1.TypeMeta{APIVersion: "partners.roompro.io/v1alpha1", Kind: "Ticket"}
	if op == v1alpha1.OperationUpdate {
		obj.Labels = liveTicket().Labels
		obj.Spec.State = v1alpha1.TicketResolved
	}
	raw, _ := heldObject(obj, "Ticket")
	pcr := &v1alpha1.PartnerChangeRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "ticket-change", Namespace: ns,
			Annotations: map[string]string{v1alpha1.AnnotationRequestedBy: alice}},
		Spec: v1alpha1.PartnerChangeRequestSpec{PartnerLink: "contoso", Category: v1alpha1.CategoryTickets, Operation: op,
			Target: v1alpha1.ChangeTarget{APIVersion: "partners.roompro.io/v1alpha1", Kind: "Ticket", Name: name},
			Object: &runtime.RawExtension{Raw: raw}},
	}
	if op != v1alpha1.OperationCreate {
		pcr.Spec.BaseResourceVersion = "11"
	}
	return pcr
}

func TestTicketChangeRequest(t *testing.T) {
	c := cluster(nil, link("contoso"), liveTicket())
	v := &pcrValidator{changes: changes{reader: c, writer: c, opts: ticketOpts}, reviews: c}
	_, err := v.ValidateCreate(as(alice), ticketRequest(v1alpha1.OperationCreate, "t1", "nyc"))
	expect(t, err, "")
	_, err = v.ValidateCreate(as(alice), ticketRequest(v1alpha1.OperationUpdate, "t-nyc", "nyc"))
	expect(t, err, "")

	for name, tc := range map[string]struct {
		pcr  *v1alpha1.PartnerChangeRequest
		want string
	}{
		"a create out of scope": {ticketRequest(v1alpha1.OperationCreate, "t1", "sea"),
			`spec.object.spec.room: Forbidden: alice@contoso.com may not create a ticket for room "sea" (that needs tickets.create on room "sea")`},
		"a create of an existing ticket": {ticketRequest(v1alpha1.OperationCreate, "t-nyc", "nyc"), `spec.target.name: Duplicate value: "t-nyc"`},
		"an update of a missing ticket":  {ticketRequest(v1alpha1.OperationUpdate, "t2", "nyc"), `spec.target.name: Not found: "t2"`},
		"an update that moves the ticket": {func() *v1alpha1.PartnerChangeRequest {
			p := ticketRequest(v1alpha1.OperationUpdate, "t-nyc", "nyc")
			p.Spec.Object.Raw = []byte(strings.Replace(string(p.Spec.Object.Raw), `"room":"nyc"`, `"room":"sea"`, 1))
			return p
		}(), `spec.object.spec.room|room is immutable`},
		"an update that relabels the ticket": {func() *v1alpha1.PartnerChangeRequest {
			p := ticketRequest(v1alpha1.OperationUpdate, "t-nyc", "nyc")
			p.Spec.Object.Raw = []byte(strings.Replace(string(p.Spec.Object.Raw), `"labels":{`, `"labels":{"team":"ops",`, 1))
			return p
		}(), `spec.object.metadata.labels[team]|a ticket's spec`},
		"a delete": {func() *v1alpha1.PartnerChangeRequest {
			p := ticketRequest(v1alpha1.OperationUpdate, "t-nyc", "nyc")
			p.Spec.Operation, p.Spec.Object = v1alpha1.OperationDelete, nil
			return p
		}(), `spec.operation: Unsupported value: "Delete"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.ValidateCreate(as(alice), tc.pcr)
			expect(t, err, tc.want)
		})
	}
	// An update by someone whose roles do not cover the ticket's room.
	byCarol := ticketRequest(v1alpha1.OperationUpdate, "t-nyc", "nyc")
	byCarol.Annotations[v1alpha1.AnnotationRequestedBy] = carol
	_, err = v.ValidateCreate(as(carol), byCarol)
	expect(t, err, `spec.target: Forbidden: carol@contoso.com may not update ticket "t-nyc" (that needs tickets.update on its room "nyc")`)
}

func TestTicketRecheck(t *testing.T) {
	live := liveTicket()
	recheck := NewRecheck(cluster(nil, link("contoso"), live), ticketOpts)
	ctx := context.Background()
	expect(t, recheck(ctx, changecontrol.Requester{Name: alice}, ticketRequest(v1alpha1.OperationCreate, "t1", "nyc"), nil), "")
	expect(t, recheck(ctx, changecontrol.Requester{Name: alice}, ticketRequest(v1alpha1.OperationUpdate, "t-nyc", "nyc"), live), "")

	err := recheck(ctx, changecontrol.Requester{Name: carol}, ticketRequest(v1alpha1.OperationCreate, "t1", "nyc"), nil)
	if !changecontrol.IsRefusal(err) {
		t.Errorf("a create out of scope: %v, want a refusal", err)
	}
	expect(t, err, `carol@contoso.com may no longer make this change|tickets.create on room "nyc"`)
	err = recheck(ctx, changecontrol.Requester{Name: carol}, ticketRequest(v1alpha1.OperationUpdate, "t-nyc", "nyc"), live)
	if !changecontrol.IsRefusal(err) {
		t.Errorf("an update out of scope: %v, want a refusal", err)
	}
	expect(t, err, `tickets.update on its room "nyc"`)
	err = recheck(ctx, changecontrol.Requester{Name: "late@contoso.com"}, ticketRequest(v1alpha1.OperationCreate, "t1", "nyc"), nil)
	if err == nil || changecontrol.IsRefusal(err) {
		t.Errorf("an index that cannot tell: %v, want an error that is not a refusal", err)
	}
}
