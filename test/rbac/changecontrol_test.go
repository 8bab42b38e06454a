package rbac

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/controlplane"
)

// The samples' approver, whom change-control/00-approver-rolebinding.yaml
// binds to partner-approver.
const approver = "lee@fourth-coffee.com"

var heldRequest = regexp.MustCompile(`held for the customer's approval as partnerchangerequest/([a-z0-9.-]+)`)

// changeControl follows config/samples/change-control as its README does,
// each file as the user its header names, after the delegation: the
// customer binds the approver (00) and sets rooms and roles Manual on the
// invitation (10); the primary admin's room patch is held (20), and held as
// the same request when sent again; the primary admin proposes a role (30);
// the approver approves the room change (40), which the operator previewed
// by a server-side dry run and now re-checks and applies, and denies the
// role (41). Then the primary admin's update of the role it delegated is
// held and approved, so that the operator updates a role as well.
func changeControl(t *testing.T, cp *controlplane.ControlPlane, admin client.Client) {
	t.Helper()
	alice := as(t, cp, "alice@"+domain)
	lee := as(t, cp, approver)
	if err := createFile(admin, "change-control/00-approver-rolebinding.yaml"); err != nil {
		t.Fatal(err)
	}
	applyFile(t, admin, "change-control/10-partnerinvitation-manual.yaml")

	// 20: the partner's room patch is held, and the room is unchanged.
	room := &v1alpha1.Room{}
	room.Namespace, room.Name = tenant, "nyc-conf-a"
	before := &v1alpha1.Room{}
	if err := admin.Get(ctx, client.ObjectKeyFromObject(room), before); err != nil {
		t.Fatal(err)
	}
	const roomPatch = "change-control/20-room-patch.patch.yaml"
	roomRequest := heldAs(t, patchFile(t, alice, room.DeepCopy(), roomPatch))
	after := &v1alpha1.Room{}
	if err := admin.Get(ctx, client.ObjectKeyFromObject(room), after); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before.Spec, after.Spec) {
		t.Fatalf("the held patch changed the room: %+v, was %+v", after.Spec, before.Spec)
	}
	// The same patch again names the same request (the webhook reads it).
	if again := heldAs(t, patchFile(t, alice, room.DeepCopy(), roomPatch)); again != roomRequest {
		t.Fatalf("the same patch again is held as %s, first as %s", again, roomRequest)
	}
	awaitPreview(t, admin, roomRequest)

	// 30: the partner proposes a role; it does not exist until approved.
	const roleRequestFile = "change-control/30-partnerchangerequest-role.yaml"
	if err := createFile(alice, roleRequestFile); err != nil {
		t.Fatal(err)
	}
	proposed, err := sampleFile(roleRequestFile)
	if err != nil {
		t.Fatal(err)
	}
	roleRequest := proposed[0].GetName()
	proposedRole, _, _ := unstructured.NestedString(proposed[0].Object, "spec", "target", "name")
	awaitPhase(t, admin, roleRequest, v1alpha1.ChangePending)
	noRole(t, admin, proposedRole)

	// 40: the approver approves the room change; the operator applies it.
	decideWithFile(t, lee, roomRequest, "change-control/40-approve.patch.yaml")
	awaitPhase(t, admin, roomRequest, v1alpha1.ChangeApplied)
	eventually(t, 30*time.Second, "the room has the approved change", func() error {
		return hasPatch(admin, room, roomPatch)
	})

	// 41: the approver denies the role; it is never created.
	decideWithFile(t, lee, roleRequest, "change-control/41-deny.patch.yaml")
	awaitPhase(t, admin, roleRequest, v1alpha1.ChangeDenied)
	noRole(t, admin, proposedRole)

	// The primary admin adds a group to the role it delegated
	// (delegate/partnerrole.yaml): the update is held, approved, and the
	// operator writes it.
	delegated, err := sampleFile("delegate/partnerrole.yaml")
	if err != nil {
		t.Fatal(err)
	}
	role := &v1alpha1.PartnerRole{}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: tenant, Name: delegated[0].GetName()}, role); err != nil {
		t.Fatal(err)
	}
	added := v1alpha1.Subject{Kind: v1alpha1.GroupSubject, Name: domain + ":helpdesk-night-shift"}
	role.Spec.Assignments[0].Members = append(role.Spec.Assignments[0].Members, added)
	roleUpdate := heldAs(t, alice.Update(ctx, role))
	awaitPreview(t, admin, roleUpdate)
	decide(t, lee, roleUpdate, []byte(`{"spec":{"decision":"Approved","decisionMessage":"the night shift helps too"}}`))
	awaitPhase(t, admin, roleUpdate, v1alpha1.ChangeApplied)
	eventually(t, 30*time.Second, "the role has the approved member", func() error {
		live := &v1alpha1.PartnerRole{}
		if err := admin.Get(ctx, client.ObjectKeyFromObject(role), live); err != nil {
			return err
		}
		if !slices.Contains(live.Spec.Assignments[0].Members, added) {
			return fmt.Errorf("the role's members are %v", live.Spec.Assignments[0].Members)
		}
		return nil
	})

	// tickets: Manual. The help desk opens a ticket for New York
	// (tickets/ticket.yaml): held, approved, created by the operator; then
	// takes it (tickets/20-in-progress.patch.yaml): held, approved, updated.
	carol := as(t, cp, "carol@"+domain, domain+":helpdesk")
	ticketCreate := heldAs(t, createFile(carol, "tickets/ticket.yaml"))
	decide(t, lee, ticketCreate, []byte(`{"spec":{"decision":"Approved"}}`))
	awaitPhase(t, admin, ticketCreate, v1alpha1.ChangeApplied)
	opened, err := sampleFile("tickets/ticket.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ticket := &v1alpha1.Ticket{}
	ticket.Namespace, ticket.Name = tenant, opened[0].GetName()
	eventually(t, 30*time.Second, "the ticket carries its room's access label", func() error {
		if err := admin.Get(ctx, client.ObjectKeyFromObject(ticket), ticket); err != nil {
			return err
		}
		if ticket.Labels[v1alpha1.AccessLabel(domain)] != "true" {
			return fmt.Errorf("the ticket's labels are %v", ticket.Labels)
		}
		return nil
	})
	const ticketPatch = "tickets/20-in-progress.patch.yaml"
	ticketUpdate := heldAs(t, patchFile(t, carol, ticket.DeepCopy(), ticketPatch))
	decide(t, lee, ticketUpdate, []byte(`{"spec":{"decision":"Approved"}}`))
	awaitPhase(t, admin, ticketUpdate, v1alpha1.ChangeApplied)
	eventually(t, 30*time.Second, "the ticket has the approved state", func() error {
		return hasPatch(admin, ticket, ticketPatch)
	})
}

// heldAs returns the name of the request that the refusal err names.
func heldAs(t *testing.T, err error) string {
	t.Helper()
	if !apierrors.IsForbidden(err) {
		t.Fatalf("want Forbidden naming the request that holds the write, got %v", err)
	}
	m := heldRequest.FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("the refusal names no request: %v", err)
	}
	return m[1]
}

// awaitPhase waits until request name is in phase.
func awaitPhase(t *testing.T, admin client.Client, name string, phase v1alpha1.ChangeRequestPhase) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("partnerchangerequest/%s is %s", name, phase), func() error {
		pcr := &v1alpha1.PartnerChangeRequest{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: tenant, Name: name}, pcr); err != nil {
			return err
		}
		if pcr.Status.Phase != phase {
			return fmt.Errorf("it is %q (%+v)", pcr.Status.Phase, pcr.Status.Conditions)
		}
		return nil
	})
}

// awaitPreview waits until request name is pending with a preview: what
// the reviewer sees (kubectl describe pcr) before deciding.
func awaitPreview(t *testing.T, admin client.Client, name string) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("partnerchangerequest/%s is previewed", name), func() error {
		pcr := &v1alpha1.PartnerChangeRequest{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: tenant, Name: name}, pcr); err != nil {
			return err
		}
		if pcr.Status.Phase != v1alpha1.ChangePending || len(pcr.Status.Preview) == 0 {
			return fmt.Errorf("it is %q with the preview %v (%+v)", pcr.Status.Phase, pcr.Status.Preview, pcr.Status.Conditions)
		}
		return nil
	})
}

// decideWithFile sends the decision patch config/samples/<file> to request
// name as c.
func decideWithFile(t *testing.T, c client.Client, name, file string) {
	t.Helper()
	decide(t, c, name, patchData(t, file))
}

// decide sends a merge patch of a decision to request name as c; the
// approver's binding may take a moment to reach the apiserver's RBAC.
func decide(t *testing.T, c client.Client, name string, patch []byte) {
	t.Helper()
	eventually(t, 30*time.Second, "the approver decides partnerchangerequest/"+name, func() error {
		pcr := &v1alpha1.PartnerChangeRequest{}
		pcr.Namespace, pcr.Name = tenant, name
		return c.Patch(ctx, pcr, client.RawPatch(types.MergePatchType, patch))
	})
}

// noRole fails the test unless role name does not exist.
func noRole(t *testing.T, admin client.Client, name string) {
	t.Helper()
	if err := admin.Get(ctx, client.ObjectKey{Namespace: tenant, Name: name}, &v1alpha1.PartnerRole{}); !apierrors.IsNotFound(err) {
		t.Fatalf("role %s: %v, want it not found", name, err)
	}
}

// hasPatch reports, as an error, whether obj as it is live lacks a field
// that the merge patch config/samples/<file> sets.
func hasPatch(c client.Client, obj client.Object, file string) error {
	live := obj.DeepCopyObject().(client.Object)
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil {
		return err
	}
	have, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
	if err != nil {
		return err
	}
	patch := map[string]any{}
	data, err := patchBytes(file)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, &patch); err != nil {
		return err
	}
	return contains(have, patch, "")
}

// contains says which field of want has has not, with want's value.
func contains(has, want map[string]any, at string) error {
	for k, w := range want {
		h, ok := has[k]
		wm, wIsMap := w.(map[string]any)
		hm, hIsMap := h.(map[string]any)
		switch {
		case wIsMap && hIsMap:
			if err := contains(hm, wm, at+"/"+k); err != nil {
				return err
			}
		case !ok || fmt.Sprint(h) != fmt.Sprint(w):
			return fmt.Errorf("%s/%s is %v, want %v", at, k, h, w)
		}
	}
	return nil
}

// patchFile sends the merge patch config/samples/<file> to obj as c.
func patchFile(t *testing.T, c client.Client, obj client.Object, file string) error {
	t.Helper()
	return c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patchData(t, file)))
}

// patchData is the merge patch config/samples/<file>, as JSON.
func patchData(t *testing.T, file string) []byte {
	t.Helper()
	data, err := patchBytes(file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func patchBytes(file string) ([]byte, error) {
	root, err := controlplane.RepositoryRoot()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "samples", file))
	if err != nil {
		return nil, err
	}
	data, err = yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return data, nil
}

// applyFile writes the objects of config/samples/<file> over the live ones
// as c, as kubectl apply does to objects that exist: a merge patch of each.
func applyFile(t *testing.T, c client.Client, file string) {
	t.Helper()
	objs, err := sampleFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		data, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Patch(ctx, o.DeepCopy(), client.RawPatch(types.MergePatchType, data)); err != nil {
			t.Fatalf("%s: %s %s: %v", file, o.GetKind(), o.GetName(), err)
		}
	}
}

// createFile creates the objects of config/samples/<file> as c.
func createFile(c client.Client, file string) error {
	objs, err := sampleFile(file)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("%s: %s %s: %w", file, o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

// sampleFile reads the objects of config/samples/<file>.
func sampleFile(file string) ([]*unstructured.Unstructured, error) {
	root, err := controlplane.RepositoryRoot()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "samples", file))
	if err != nil {
		return nil, err
	}
	objs, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(objs) == 0 {
		return nil, errors.New(file + " holds no object")
	}
	return objs, nil
}
