package testenv

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// linkFinalizer is the operator's finalizer on a PartnerLink
// (controllers.linkFinalizer): a link carries it from its first reconcile.
const linkFinalizer = "partners.roompro.io/offboard"

// CreateCustomerData writes what customers and the platform team have in a
// cluster once partnerships exist: a PartnerOrganization, and in each tenant
// namespace (created here) rooms, an invitation, the link that accepted it
// (with the operator's finalizer, as a reconciled link has), a partner role
// and a room assignment, a change request, a ticket, a room report, a room
// group and an update ring: one object of every kind of the API. It returns the
// objects as stored (with their UIDs), namespaces first, for
// CustomerDataLost. No operator need run: with admission webhooks off (no
// process serves them) the CRDs' own validation admits them.
func CreateCustomerData(ctx context.Context, c client.Client, tenants ...string) ([]client.Object, error) {
	const domain, link = "contoso.com", "contoso" // the link is named like its invitation
	const room = "nyc-conf-a"                     // in the invitation's scope; tickets and reports are about it
	objs := make([]client.Object, 0, 1+13*len(tenants))
	objs = append(objs, &v1alpha1.PartnerOrganization{
		ObjectMeta: metav1.ObjectMeta{Name: domain},
		Spec:       v1alpha1.PartnerOrganizationSpec{Domain: domain, DisplayName: "Contoso Ltd."},
	})
	day := metav1.NewTime(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	for _, ns := range tenants {
		named := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }
		scope := v1alpha1.RoomScope{Names: []string{room}}
		linkMeta := named(link)
		linkMeta.Finalizers = []string{linkFinalizer}
		objs = append(objs,
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
			&v1alpha1.Room{ObjectMeta: named(room), Spec: v1alpha1.RoomSpec{DisplayName: "New York — Conference A", Site: "nyc", Country: "US"}},
			&v1alpha1.Room{ObjectMeta: named("ber-board"), Spec: v1alpha1.RoomSpec{DisplayName: "Berlin — Boardroom", Site: "ber", Country: "DE"}},
			&v1alpha1.PartnerInvitation{ObjectMeta: named(link), Spec: v1alpha1.PartnerInvitationSpec{
				PartnerDomain: domain, ExpiryDays: 14, Rooms: scope, TermsAccepted: true,
			}},
			&v1alpha1.PartnerLink{ObjectMeta: linkMeta, Spec: v1alpha1.PartnerLinkSpec{
				Invitation: link, PartnerDomain: domain,
				PrimaryAdmins: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "alice@contoso.com"}},
			}},
			&v1alpha1.PartnerRole{ObjectMeta: named("contoso-helpdesk"), Spec: v1alpha1.PartnerRoleSpec{
				PartnerLink: link, Permissions: []v1alpha1.Permission{v1alpha1.RoomsView},
				Assignments: []v1alpha1.RoleAssignment{{Name: "helpdesk", Members: []v1alpha1.Subject{{Kind: v1alpha1.GroupSubject, Name: domain + ":helpdesk"}}}},
			}},
			&v1alpha1.RoomAssignment{ObjectMeta: named("contoso-berlin"), Spec: v1alpha1.RoomAssignmentSpec{
				PartnerLink: link, Rooms: v1alpha1.RoomScope{Names: []string{"ber-board"}},
			}},
			&v1alpha1.PartnerChangeRequest{ObjectMeta: named("contoso-rename-berlin"), Spec: v1alpha1.PartnerChangeRequestSpec{
				PartnerLink: link, Category: v1alpha1.CategoryRooms, Operation: v1alpha1.OperationUpdate,
				Target:              v1alpha1.ChangeTarget{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Room", Name: "ber-board"},
				Object:              &runtime.RawExtension{Raw: []byte(`{"apiVersion":"partners.roompro.io/v1alpha1","kind":"Room","metadata":{"name":"ber-board"},"spec":{"displayName":"Berlin — Board","site":"ber","country":"DE"}}`)},
				BaseResourceVersion: "1", Reason: "a shorter name",
			}},
			&v1alpha1.Ticket{ObjectMeta: named("nyc-conf-a-display"), Spec: v1alpha1.TicketSpec{
				Room: room, Title: "The display stays dark", Severity: v1alpha1.SeverityHigh,
			}},
			&v1alpha1.RoomReport{ObjectMeta: named("nyc-conf-a-2026-12-01"), Spec: v1alpha1.RoomReportSpec{
				Room: room, AvailabilityPercent: 99, CallQualityScore: 91, Meetings: 14,
				Period: v1alpha1.ReportPeriod{Start: day, End: metav1.NewTime(day.AddDate(0, 0, 1))},
			}},
			&v1alpha1.RoomGroup{ObjectMeta: named("nyc-floor-1"), Spec: v1alpha1.RoomGroupSpec{DisplayName: "New York — first floor"}},
			&v1alpha1.UpdateRing{ObjectMeta: named("general"), Spec: v1alpha1.UpdateRingSpec{DisplayName: "General", DeferralDays: 14}},
		)
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return nil, fmt.Errorf("creating %T %s: %w", o, client.ObjectKeyFromObject(o), err)
		}
	}
	return objs, nil
}

// CustomerDataLost reads every object of CreateCustomerData again and says,
// for each one that is gone, was replaced (another UID) or is being deleted,
// what became of it; nothing when every object is as it was.
func CustomerDataLost(ctx context.Context, c client.Client, objs []client.Object) ([]string, error) {
	var lost []string
	for _, want := range objs {
		key := client.ObjectKeyFromObject(want)
		got, ok := want.DeepCopyObject().(client.Object)
		if !ok {
			return nil, fmt.Errorf("copying %T %s", want, key)
		}
		err := c.Get(ctx, key, got)
		kind := fmt.Sprintf("%T", want)
		switch {
		case apierrors.IsNotFound(err) || meta.IsNoMatchError(err): // the object, or its CRD, is gone
			lost = append(lost, fmt.Sprintf("%s %s is gone", kind, key))
		case err != nil:
			return nil, fmt.Errorf("reading %s %s: %w", kind, key, err)
		case got.GetUID() != want.GetUID():
			lost = append(lost, fmt.Sprintf("%s %s was deleted and created again", kind, key))
		case got.GetDeletionTimestamp() != nil:
			lost = append(lost, fmt.Sprintf("%s %s is being deleted (finalizers %v)", kind, key, got.GetFinalizers()))
		}
	}
	return lost, nil
}
