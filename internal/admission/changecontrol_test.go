package admission

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authz"
	"github.com/roompro/partner-operator/internal/changecontrol"
)

// ccOpts: alice may update room nyc; late@contoso.com meets an index that
// has not synced.
var ccOpts = func() Options {
	o := opts
	o.Decide = func(r *authz.Request) authz.Decision {
		switch {
		case r.User == "late@contoso.com":
			return authz.Decision{Verdict: authz.Deny, Cause: authz.IndexNotSynced, Reason: "starting"}
		case r.User == alice && r.Verb == "update" && r.Resource == "rooms" && r.Name == "nyc":
			return authz.Decision{Verdict: authz.Allow}
		}
		return authz.Decision{Verdict: authz.Deny, Cause: authz.RoomOutOfScope, Reason: "room nyc is not in the scope of your roles"}
	}
	return o
}()

// asReq is the context of an admission request by user.
func asReq(user string, op admissionv1.Operation, dry bool, groups ...string) context.Context {
	return admission.NewContextWithRequest(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: op, DryRun: &dry,
		UserInfo: authenticationv1.UserInfo{Username: user, Groups: groups},
	}})
}

// cluster is a fake cluster with objs; approve decides SubjectAccessReviews.
func cluster(approve func(*authorizationv1.SubjectAccessReview) bool, objs ...client.Object) client.Client {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, corev1.AddToScheme, authorizationv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	objs = append(objs, organization("contoso.com"), organization("fabrikam.com"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, o ...client.CreateOption) error {
			if sar, ok := obj.(*authorizationv1.SubjectAccessReview); ok {
				sar.Status.Allowed = approve != nil && approve(sar)
				return nil
			}
			return c.Create(ctx, obj, o...)
		},
	}).Build()
}

// modes is invitation contoso with the given approvals, the one link("contoso") accepted.
func modes(rooms, roles v1alpha1.ApprovalMode) *v1alpha1.PartnerInvitation {
	inv := invitation("contoso", "contoso.com", v1alpha1.InvitationAccepted)
	inv.Spec.Approvals = v1alpha1.Approvals{Rooms: rooms, Roles: roles}
	return inv
}

func nycRoom() *v1alpha1.Room {
	return &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: "nyc", Namespace: ns, ResourceVersion: "42", UID: "room-uid",
		Labels: map[string]string{"country": "us"}, CreationTimestamp: metav1.NewTime(created)},
		Spec: v1alpha1.RoomSpec{DisplayName: "NYC"}}
}

func requests(t *testing.T, c client.Client) []v1alpha1.PartnerChangeRequest {
	t.Helper()
	var list v1alpha1.PartnerChangeRequestList
	if err := c.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func TestRoomHold(t *testing.T) {
	old := nycRoom()
	old.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate}}
	renamed := old.DeepCopy()
	renamed.Spec.DisplayName = "New York"

	t.Run("Manual holds the write, once", func(t *testing.T) {
		c := cluster(nil, link("contoso"), modes(v1alpha1.ApprovalManual, ""))
		v := &roomValidator{changes{reader: c, writer: c, opts: ccOpts}}
		_, err := v.ValidateUpdate(asReq(alice, admissionv1.Update, false, "contoso.com:admins"), old, renamed)
		expect(t, err, "held for the customer's approval as partnerchangerequest/contoso-rooms-")
		if !apierrors.IsForbidden(err) {
			t.Errorf("want Forbidden, got %v", err)
		}
		got := requests(t, c)
		if len(got) != 1 {
			t.Fatalf("%d requests, want 1", len(got))
		}
		pcr := got[0]
		if !strings.Contains(err.Error(), "partnerchangerequest/"+pcr.Name) {
			t.Errorf("refusal %q does not name %s", err, pcr.Name)
		}
		if pcr.Spec.PartnerLink != "contoso" || pcr.Spec.Category != v1alpha1.CategoryRooms || pcr.Spec.Operation != v1alpha1.OperationUpdate ||
			pcr.Spec.Target != (v1alpha1.ChangeTarget{APIVersion: "partners.roompro.io/v1alpha1", Kind: "Room", Name: "nyc"}) || pcr.Spec.BaseResourceVersion != "42" {
			t.Errorf("spec %+v", pcr.Spec)
		}
		if pcr.Annotations[v1alpha1.AnnotationRequestedBy] != alice || pcr.Annotations[v1alpha1.AnnotationRequestedByGroups] != "contoso.com:admins" ||
			pcr.Labels[v1alpha1.LabelPartnerLink] != "contoso" {
			t.Errorf("metadata %v %v", pcr.Labels, pcr.Annotations)
		}
		var obj map[string]any
		if err := json.Unmarshal(pcr.Spec.Object.Raw, &obj); err != nil {
			t.Fatal(err)
		}
		meta := obj["metadata"].(map[string]any)
		for _, k := range []string{"resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"} {
			if _, ok := meta[k]; ok {
				t.Errorf("the held object keeps metadata.%s", k)
			}
		}
		if _, ok := obj["status"]; ok {
			t.Error("the held object keeps status")
		}
		if obj["kind"] != "Room" || obj["spec"].(map[string]any)["displayName"] != "New York" || meta["labels"].(map[string]any)["country"] != "us" {
			t.Errorf("held object %s", pcr.Spec.Object.Raw)
		}

		// A retry is the same request; so is the same write by the same
		// user with other groups.
		_, again := v.ValidateUpdate(asReq(alice, admissionv1.Update, false), old, renamed)
		if again == nil || again.Error() != err.Error() {
			t.Errorf("retry: %v, want %v", again, err)
		}
		if n := len(requests(t, c)); n != 1 {
			t.Errorf("%d requests after a retry, want 1", n)
		}
		// Another change is another request.
		other := old.DeepCopy()
		other.Spec.DisplayName = "Big Apple"
		_, err = v.ValidateUpdate(asReq(alice, admissionv1.Update, false), old, other)
		expect(t, err, "held for the customer's approval")
		if n := len(requests(t, c)); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
	})

	t.Run("a dry run creates nothing", func(t *testing.T) {
		c := cluster(nil, link("contoso"), modes(v1alpha1.ApprovalManual, ""))
		v := &roomValidator{changes{reader: c, writer: c, opts: ccOpts}}
		_, err := v.ValidateUpdate(asReq(alice, admissionv1.Update, true), old, renamed)
		expect(t, err, "would be held for the customer's approval as partnerchangerequest/contoso-rooms-|dry run")
		if n := len(requests(t, c)); n != 0 {
			t.Errorf("%d requests, want 0", n)
		}
	})

	t.Run("not held", func(t *testing.T) {
		for name, tc := range map[string]struct {
			user string
			inv  *v1alpha1.PartnerInvitation
		}{
			"Auto":                             {alice, modes(v1alpha1.ApprovalAuto, v1alpha1.ApprovalManual)},
			"the invitation is gone":           {alice, nil},
			"the customer's staff, Manual":     {customer, modes(v1alpha1.ApprovalManual, "")},
			"the operator's own write, Manual": {operator, modes(v1alpha1.ApprovalManual, "")},
		} {
			t.Run(name, func(t *testing.T) {
				objs := []client.Object{link("contoso")}
				if tc.inv != nil {
					objs = append(objs, tc.inv)
				}
				c := cluster(nil, objs...)
				v := &roomValidator{changes{reader: c, writer: c, opts: ccOpts}}
				_, err := v.ValidateUpdate(asReq(tc.user, admissionv1.Update, false), old, renamed)
				expect(t, err, "")
				if n := len(requests(t, c)); n != 0 {
					t.Errorf("%d requests, want 0", n)
				}
			})
		}
	})

	t.Run("an invalid write is refused, not held", func(t *testing.T) {
		c := cluster(nil, link("contoso"), modes(v1alpha1.ApprovalManual, ""))
		v := &roomValidator{changes{reader: c, writer: c, opts: ccOpts}}
		relabelled := renamed.DeepCopy()
		relabelled.Labels["country"] = "de"
		_, err := v.ValidateUpdate(asReq(alice, admissionv1.Update, false), old, relabelled)
		expect(t, err, "metadata.labels[country]|not its labels")
		if n := len(requests(t, c)); n != 0 {
			t.Errorf("%d requests, want 0", n)
		}
	})

	t.Run("the change reason goes to the request", func(t *testing.T) {
		c := cluster(nil, link("contoso"), modes(v1alpha1.ApprovalManual, ""))
		v := &roomValidator{changes{reader: c, writer: c, opts: ccOpts}}
		why := renamed.DeepCopy()
		why.Annotations = map[string]string{v1alpha1.AnnotationChangeReason: "ticket 7"}
		_, err := v.ValidateUpdate(asReq(alice, admissionv1.Update, false), old, why)
		expect(t, err, "held for the customer's approval")
		got := requests(t, c)
		if len(got) != 1 || got[0].Spec.Reason != "ticket 7" || strings.Contains(string(got[0].Spec.Object.Raw), "change-reason") {
			t.Fatalf("requests %+v", got)
		}
		// Not held, the reason is refused like any key of this API.
		auto := cluster(nil, link("contoso"), modes(v1alpha1.ApprovalAuto, ""))
		_, err = (&roomValidator{changes{reader: auto, writer: auto, opts: ccOpts}}).ValidateUpdate(asReq(alice, admissionv1.Update, false), old, why)
		expect(t, err, "metadata.annotations[partners.roompro.io/change-reason]|not held")
	})

	t.Run("an existing request of that name holding another change", func(t *testing.T) {
		c := cluster(nil, link("contoso"), modes(v1alpha1.ApprovalManual, ""))
		v := &roomValidator{changes{reader: c, writer: c, opts: ccOpts}}
		_, err := v.ValidateUpdate(asReq(alice, admissionv1.Update, true), old, renamed)
		name := strings.Fields(err.Error()[strings.Index(err.Error(), "partnerchangerequest/")+len("partnerchangerequest/"):])[0]
		squatter := &v1alpha1.PartnerChangeRequest{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.PartnerChangeRequestSpec{PartnerLink: "contoso", Category: v1alpha1.CategoryRooms, Operation: v1alpha1.OperationUpdate,
				Target: v1alpha1.ChangeTarget{APIVersion: "partners.roompro.io/v1alpha1", Kind: "Room", Name: "other"}, BaseResourceVersion: "1"}}
		if err := c.Create(context.Background(), squatter); err != nil {
			t.Fatal(err)
		}
		_, err = v.ValidateUpdate(asReq(alice, admissionv1.Update, false), old, renamed)
		expect(t, err, "holds another change|hash collision")
	})
}

func TestRoleHold(t *testing.T) {
	c := cluster(nil, link("contoso"), modes("", v1alpha1.ApprovalManual))
	v := &roleValidator{changes{reader: c, writer: c, opts: ccOpts}}
	newRole := role("helpdesk", user(carol))
	_, err := v.ValidateCreate(asReq(alice, admissionv1.Create, false), newRole)
	expect(t, err, "held for the customer's approval as partnerchangerequest/contoso-roles-")
	got := requests(t, c)
	if len(got) != 1 || got[0].Spec.Operation != v1alpha1.OperationCreate || got[0].Spec.BaseResourceVersion != "" || got[0].Spec.Object == nil {
		t.Fatalf("requests %+v", got)
	}

	// An invalid role is refused with its field errors, not held.
	_, err = v.ValidateCreate(asReq(alice, admissionv1.Create, false), role("x", user("bob@fabrikam.com")))
	expect(t, err, "spec.assignments[0].members[0].name")
	// A writer without roles.modify is refused, not held.
	_, err = v.ValidateCreate(asReq("dave@contoso.com", admissionv1.Create, false), role("x", user("dave@contoso.com")))
	expect(t, err, "holds no roles.modify")

	existing := role("helpdesk", user(carol))
	existing.ResourceVersion = "7"
	_, err = v.ValidateDelete(asReq(alice, admissionv1.Delete, false), existing)
	expect(t, err, "held for the customer's approval as partnerchangerequest/contoso-roles-")
	var del *v1alpha1.PartnerChangeRequest
	for _, p := range requests(t, c) {
		if p.Spec.Operation == v1alpha1.OperationDelete {
			del = &p
		}
	}
	if del == nil || del.Spec.Object != nil || del.Spec.BaseResourceVersion != "7" {
		t.Fatalf("delete request %+v", del)
	}
	// The customer's delete is not held.
	_, err = v.ValidateDelete(asReq(customer, admissionv1.Delete, false), existing)
	expect(t, err, "")
	// A metadata-only change grants nothing and is not held.
	relabelled := existing.DeepCopy()
	relabelled.Labels = map[string]string{"team": "ops"}
	_, err = v.ValidateUpdate(asReq(alice, admissionv1.Update, false), existing, relabelled)
	expect(t, err, "")
}

func applyPatches(t *testing.T, resp admission.Response, raw string) map[string]any {
	t.Helper()
	if !resp.Allowed {
		t.Fatalf("response %+v", resp)
	}
	out := []byte(raw)
	if len(resp.Patches) > 0 {
		patch, err := jsonpatch.DecodePatch(mustJSON(t, resp.Patches))
		if err != nil {
			t.Fatal(err)
		}
		if out, err = patch.Apply(out); err != nil {
			t.Fatal(err)
		}
	}
	var obj map[string]any
	if err := json.Unmarshal(out, &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func metaKey(obj map[string]any, where, key string) string {
	m, _ := obj["metadata"].(map[string]any)[where].(map[string]any)
	s, _ := m[key].(string)
	return s
}

func TestPCRStamps(t *testing.T) {
	forged := `{"metadata":{"name":"r","labels":{"partners.roompro.io/partner-link":"fabrikam"},"annotations":{"partners.roompro.io/requested-by":"mallory@contoso.com","partners.roompro.io/requested-by-groups":"admins"}},"spec":{"partnerLink":"contoso"}}`
	stamp := func(user string, op admissionv1.Operation, raw, old string) map[string]any {
		return applyPatches(t, pcrStamper{opts: opts}.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			Operation: op, UserInfo: authenticationv1.UserInfo{Username: user, Groups: []string{"contoso.com:admins", "system:authenticated"}},
			Object: runtime.RawExtension{Raw: []byte(raw)}, OldObject: runtime.RawExtension{Raw: []byte(old)},
		}}), raw)
	}
	obj := stamp(alice, admissionv1.Create, forged, "")
	if metaKey(obj, "annotations", v1alpha1.AnnotationRequestedBy) != alice ||
		metaKey(obj, "annotations", v1alpha1.AnnotationRequestedByGroups) != "contoso.com:admins,system:authenticated" ||
		metaKey(obj, "labels", v1alpha1.LabelPartnerLink) != "contoso" {
		t.Errorf("a partner's request: %v", obj["metadata"])
	}
	obj = stamp(alice, admissionv1.Create, `{"metadata":{"name":"r"},"spec":{"partnerLink":"contoso"}}`, "")
	if metaKey(obj, "annotations", v1alpha1.AnnotationRequestedBy) != alice || metaKey(obj, "labels", v1alpha1.LabelPartnerLink) != "contoso" {
		t.Errorf("no metadata: %v", obj["metadata"])
	}
	// The operator's hold keeps the partner's identity it recorded.
	obj = stamp(operator, admissionv1.Create, forged, "")
	if metaKey(obj, "annotations", v1alpha1.AnnotationRequestedBy) != "mallory@contoso.com" || metaKey(obj, "labels", v1alpha1.LabelPartnerLink) != "contoso" {
		t.Errorf("the operator's hold: %v", obj["metadata"])
	}
	pending := `{"metadata":{"name":"r","annotations":{"partners.roompro.io/decided-by":"forged"}},"spec":{"partnerLink":"contoso"}}`
	decided := `{"metadata":{"name":"r","annotations":{"partners.roompro.io/decided-by":"forged"}},"spec":{"partnerLink":"contoso","decision":"Approved"}}`
	obj = stamp(customer, admissionv1.Update, decided, pending)
	if metaKey(obj, "annotations", v1alpha1.AnnotationDecidedBy) != customer || metaKey(obj, "annotations", v1alpha1.AnnotationDecidedAt) != clk.Now().UTC().Format("2006-01-02T15:04:05Z07:00") {
		t.Errorf("the decision: %v", obj["metadata"])
	}
	obj = stamp(customer, admissionv1.Update, decided, decided)
	if metaKey(obj, "annotations", v1alpha1.AnnotationDecidedBy) != "forged" {
		t.Errorf("a later update re-stamped the decision: %v", obj["metadata"])
	}
}

// roomRequest is alice's request to rename room nyc, as stamped.
func roomRequest() *v1alpha1.PartnerChangeRequest {
	obj := nycRoom()
	obj.TypeMeta = metav1.TypeMeta{APIVersion: "partners.roompro.io/v1alpha1", Kind: "Room"}
	obj.ResourceVersion, obj.UID, obj.ManagedFields, obj.CreationTimestamp = "", "", nil, metav1.Time{}
	obj.Spec.DisplayName = "New York"
	raw, _ := heldObject(obj, "Room")
	return &v1alpha1.PartnerChangeRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "rename-nyc", Namespace: ns,
			Labels:      map[string]string{v1alpha1.LabelPartnerLink: "contoso"},
			Annotations: map[string]string{v1alpha1.AnnotationRequestedBy: alice, v1alpha1.AnnotationRequestedByGroups: ""}},
		Spec: v1alpha1.PartnerChangeRequestSpec{PartnerLink: "contoso", Category: v1alpha1.CategoryRooms, Operation: v1alpha1.OperationUpdate,
			Target:              v1alpha1.ChangeTarget{APIVersion: "partners.roompro.io/v1alpha1", Kind: "Room", Name: "nyc"},
			Object:              &runtime.RawExtension{Raw: raw},
			BaseResourceVersion: "42"},
	}
}

func TestPCRCreate(t *testing.T) {
	c := cluster(nil, link("contoso"), nycRoom())
	v := &pcrValidator{changes: changes{reader: c, writer: c, opts: ccOpts}, reviews: c}
	_, err := v.ValidateCreate(as(alice), roomRequest())
	expect(t, err, "")

	for name, tc := range map[string]struct {
		user   string
		mutate func(*v1alpha1.PartnerChangeRequest)
		want   string
	}{
		"the customer":                     {customer, nil, "change requests are made by partner users"},
		"a room out of the writer's scope": {carol, func(p *v1alpha1.PartnerChangeRequest) { p.Annotations[v1alpha1.AnnotationRequestedBy] = carol }, "spec.target|may not update room \"nyc\"|not in the scope"},
		"another partner's link": {"bob@fabrikam.com", func(p *v1alpha1.PartnerChangeRequest) {
			p.Annotations[v1alpha1.AnnotationRequestedBy] = "bob@fabrikam.com"
		}, "spec.partnerLink|own partner links"},
		"a missing link":         {alice, func(p *v1alpha1.PartnerChangeRequest) { p.Spec.PartnerLink = "gone" }, `spec.partnerLink: Not found: "gone"`},
		"a pre-approved request": {alice, func(p *v1alpha1.PartnerChangeRequest) { p.Spec.Decision = v1alpha1.DecisionApproved }, "spec.decision|never the requester"},
		"an object of another name": {alice, func(p *v1alpha1.PartnerChangeRequest) {
			p.Spec.Object.Raw = []byte(strings.Replace(string(p.Spec.Object.Raw), `"name":"nyc"`, `"name":"ber"`, 1))
		}, `spec.object.metadata.name|must be "nyc"`},
		"an object that relabels the room": {alice, func(p *v1alpha1.PartnerChangeRequest) {
			p.Spec.Object.Raw = []byte(strings.Replace(string(p.Spec.Object.Raw), `"country":"us"`, `"country":"de"`, 1))
		}, "spec.object.metadata.labels[country]"},
		"a target other than the object": {alice, func(p *v1alpha1.PartnerChangeRequest) {
			p.Spec.Target.Name = "ghost"
		}, `spec.object.metadata.name|must be "ghost"`},
	} {
		t.Run(name, func(t *testing.T) {
			p := roomRequest()
			if tc.mutate != nil {
				tc.mutate(p)
			}
			_, err := v.ValidateCreate(as(tc.user), p)
			expect(t, err, tc.want)
		})
	}

	noRoom := cluster(nil, link("contoso"))
	_, err = (&pcrValidator{changes: changes{reader: noRoom, opts: ccOpts}, reviews: noRoom}).ValidateCreate(as(alice), roomRequest())
	expect(t, err, `spec.target.name: Not found: "nyc"`)

	// Roles: the writer's roles.modify and no escalation.
	helpdesk := role("helpdesk", user(carol))
	helpdesk.TypeMeta = metav1.TypeMeta{APIVersion: "partners.roompro.io/v1alpha1", Kind: "PartnerRole"}
	raw, _ := heldObject(helpdesk, "PartnerRole")
	roleReq := func(by string) *v1alpha1.PartnerChangeRequest {
		return &v1alpha1.PartnerChangeRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "new-role", Namespace: ns, Annotations: map[string]string{v1alpha1.AnnotationRequestedBy: by}},
			Spec: v1alpha1.PartnerChangeRequestSpec{PartnerLink: "contoso", Category: v1alpha1.CategoryRoles, Operation: v1alpha1.OperationCreate,
				Target: v1alpha1.ChangeTarget{APIVersion: "partners.roompro.io/v1alpha1", Kind: "PartnerRole", Name: "helpdesk"},
				Object: &runtime.RawExtension{Raw: raw}},
		}
	}
	_, err = v.ValidateCreate(as(alice), roleReq(alice))
	expect(t, err, "")
	_, err = v.ValidateCreate(as(carol), roleReq(carol))
	expect(t, err, "spec.object.spec.assignments[0].scope|tickets.view")
	_, err = v.ValidateCreate(as("dave@contoso.com"), roleReq("dave@contoso.com"))
	expect(t, err, "holds no roles.modify")
	withRole := cluster(nil, link("contoso"), helpdesk)
	_, err = (&pcrValidator{changes: changes{reader: withRole, opts: ccOpts}, reviews: withRole}).ValidateCreate(as(alice), roleReq(alice))
	expect(t, err, `spec.target.name: Duplicate value: "helpdesk"`)
}

func TestPCRDecision(t *testing.T) {
	pending := roomRequest()
	decide := func(by string) *v1alpha1.PartnerChangeRequest {
		p := pending.DeepCopy()
		p.Spec.Decision = v1alpha1.DecisionApproved
		p.Annotations[v1alpha1.AnnotationDecidedBy] = by
		p.Annotations[v1alpha1.AnnotationDecidedAt] = "2026-11-01T01:00:00Z"
		return p
	}
	var asked *authorizationv1.SubjectAccessReview
	approvers := func(sar *authorizationv1.SubjectAccessReview) bool {
		asked = sar
		return sar.Spec.User == "approver@customer.org"
	}
	c := cluster(approvers)
	v := &pcrValidator{changes: changes{reader: c, opts: ccOpts}, reviews: c}

	_, err := v.ValidateUpdate(asReq(alice, admissionv1.Update, false), pending, decide(alice))
	expect(t, err, "alice@contoso.com may not decide|partner identity never decides")
	_, err = v.ValidateUpdate(asReq("System:alice@contoso.com", admissionv1.Update, false), pending, decide("System:alice@contoso.com"))
	expect(t, err, "may not decide|partner identity")
	_, err = v.ValidateUpdate(asReq(customer, admissionv1.Update, false), pending, decide(customer))
	expect(t, err, "admin@customer.org may not decide: RBAC grants no 'approve' on partnerchangerequests in namespace tenant-a; bind ClusterRole partner-approver")
	if asked == nil || asked.Spec.ResourceAttributes.Verb != "approve" || asked.Spec.ResourceAttributes.Name != "rename-nyc" ||
		asked.Spec.ResourceAttributes.Resource != "partnerchangerequests" || asked.Spec.ResourceAttributes.Group != "partners.roompro.io" || asked.Spec.User != customer {
		t.Errorf("SubjectAccessReview %+v", asked)
	}
	_, err = v.ValidateUpdate(asReq("approver@customer.org", admissionv1.Update, false), pending, decide("approver@customer.org"))
	expect(t, err, "")

	// decided-by is the decider's, not the body's.
	_, err = v.ValidateUpdate(asReq("approver@customer.org", admissionv1.Update, false), pending, decide(customer))
	expect(t, err, "metadata.annotations[partners.roompro.io/decided-by]")

	for _, phase := range []v1alpha1.ChangeRequestPhase{v1alpha1.ChangeExpired, v1alpha1.ChangeFailed, v1alpha1.ChangeApplied} {
		gone := pending.DeepCopy()
		gone.Status.Phase = phase
		_, err = v.ValidateUpdate(asReq("approver@customer.org", admissionv1.Update, false), gone, decide("approver@customer.org"))
		expect(t, err, "the request is "+string(phase)+": it can no longer be decided")
	}

	// The stamps are the webhook's: nobody but the operator changes them.
	forged := pending.DeepCopy()
	forged.Annotations[v1alpha1.AnnotationRequestedBy] = "mallory@contoso.com"
	_, err = v.ValidateUpdate(asReq(customer, admissionv1.Update, false), pending, forged)
	expect(t, err, "metadata.annotations[partners.roompro.io/requested-by]|cannot be changed")
	relinked := pending.DeepCopy()
	relinked.Labels[v1alpha1.LabelPartnerLink] = "fabrikam"
	_, err = v.ValidateUpdate(asReq(alice, admissionv1.Update, false), pending, relinked)
	expect(t, err, "metadata.labels[partners.roompro.io/partner-link]")
	_, err = v.ValidateUpdate(asReq(operator, admissionv1.Update, false), pending, forged)
	expect(t, err, "")
}

func TestRecheck(t *testing.T) {
	live := nycRoom()
	recheck := NewRecheck(cluster(nil, link("contoso"), live), ccOpts)
	ctx := context.Background()
	expect(t, recheck(ctx, changecontrol.Requester{Name: alice}, roomRequest(), live), "")

	err := recheck(ctx, changecontrol.Requester{Name: carol}, roomRequest(), live)
	if !changecontrol.IsRefusal(err) {
		t.Errorf("carol out of scope: %v, want a refusal", err)
	}
	expect(t, err, "carol@contoso.com may no longer make this change|not in the scope")

	err = recheck(ctx, changecontrol.Requester{Name: "late@contoso.com"}, roomRequest(), live)
	if err == nil || changecontrol.IsRefusal(err) {
		t.Errorf("an index that cannot tell: %v, want an error that is not a refusal", err)
	}

	err = NewRecheck(cluster(nil, live), ccOpts)(ctx, changecontrol.Requester{Name: alice}, roomRequest(), live)
	if !changecontrol.IsRefusal(err) {
		t.Errorf("the link is gone: %v, want a refusal", err)
	}
	expect(t, err, `spec.partnerLink: Not found: "contoso"`)

	err = recheck(ctx, changecontrol.Requester{Name: customer}, roomRequest(), live)
	if !changecontrol.IsRefusal(err) {
		t.Errorf("no partner identity: %v, want a refusal", err)
	}

	// A role delete by a writer who lost roles.modify.
	helpdesk := role("helpdesk", user(carol))
	del := &v1alpha1.PartnerChangeRequest{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: ns},
		Spec: v1alpha1.PartnerChangeRequestSpec{PartnerLink: "contoso", Category: v1alpha1.CategoryRoles, Operation: v1alpha1.OperationDelete,
			Target: v1alpha1.ChangeTarget{APIVersion: "partners.roompro.io/v1alpha1", Kind: "PartnerRole", Name: "helpdesk"}, BaseResourceVersion: "1"}}
	roles := NewRecheck(cluster(nil, link("contoso"), helpdesk), ccOpts)
	expect(t, roles(ctx, changecontrol.Requester{Name: alice}, del, helpdesk), "")
	err = roles(ctx, changecontrol.Requester{Name: "dave@contoso.com"}, del, helpdesk)
	if !changecontrol.IsRefusal(err) {
		t.Errorf("dave: %v, want a refusal", err)
	}
	expect(t, err, "holds no roles.modify")
}

func TestRoleHoldKeepsTheWindowAndTheRecheckJudgesIt(t *testing.T) {
	c := cluster(nil, link("contoso"), modes("", v1alpha1.ApprovalManual))
	v := &roleValidator{changes{reader: c, writer: c, opts: ccOpts}}
	from := created.Add(2 * time.Hour)
	jit := withWindow(role("contoso-carol-nyc", user(carol)), from, from.Add(4*time.Hour))
	_, err := v.ValidateCreate(asReq(alice, admissionv1.Create, false), jit)
	expect(t, err, "held for the customer's approval as partnerchangerequest/contoso-roles-")
	got := requests(t, c)
	if len(got) != 1 {
		t.Fatalf("requests %+v", got)
	}
	held := &v1alpha1.PartnerRole{}
	if err := json.Unmarshal(got[0].Spec.Object.Raw, held); err != nil {
		t.Fatal(err)
	}
	a := held.Spec.Assignments[0]
	if a.ValidFrom == nil || !a.ValidFrom.Equal(&metav1.Time{Time: from}) || a.ValidUntil == nil || !a.ValidUntil.Time.Equal(from.Add(4*time.Hour)) {
		t.Errorf("the held object's window is [%v, %v), want [%s, %s)", a.ValidFrom, a.ValidUntil, from, from.Add(4*time.Hour))
	}

	// At apply time the operator judges the held object as a direct write:
	// the window's rule and the primary-admin invariant included.
	recheck := NewRecheck(cluster(nil, link("contoso")), ccOpts)
	pcr := got[0].DeepCopy()
	expect(t, recheck(context.Background(), changecontrol.Requester{Name: alice}, pcr, nil), "")

	empty := withWindow(role("contoso-carol-nyc", user(carol)), from, from)
	empty.APIVersion, empty.Kind = v1alpha1.GroupVersion.String(), "PartnerRole"
	pcr.Spec.Object = &runtime.RawExtension{Raw: mustJSON(t, empty)}
	err = recheck(context.Background(), changecontrol.Requester{Name: alice}, pcr, nil)
	if !changecontrol.IsRefusal(err) {
		t.Errorf("an empty window: %v, want a refusal", err)
	}
	expect(t, err, "spec.object.spec.assignments[0].validUntil|must be later than validFrom")
}
