package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func TestRecordWritesOneJSONLineAndAnEvent(t *testing.T) {
	var out bytes.Buffer
	fakeEvents := events.NewFakeRecorder(1)
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 24, 10, 0, 0, 0, time.FixedZone("CET", 3600)))
	r := NewRecorder(fakeEvents, &out, clk)

	inv := &v1alpha1.PartnerInvitation{ObjectMeta: metav1.ObjectMeta{Name: "contoso", Namespace: "tenant-a"}}
	r.Record(inv, Change{
		Category: CategoryPartnerInvitation, Operation: OperationUpdate, Result: Successful,
		UserID: "TM@Contoso.com", Reason: "InvitationAccepted", Message: "accepted by TM@Contoso.com",
	})

	if !strings.HasSuffix(out.String(), "\n") || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("want exactly one line, got %q", out.String())
	}
	var got Line
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := Line{
		Category: CategoryPartnerInvitation, ObjectName: "contoso", Operation: OperationUpdate,
		ResultStatus: Successful, TenantID: "tenant-a", CreationTime: "2026-11-24T09:00:00Z",
		UserID: "TM@Contoso.com", UserTenantID: "contoso.com", Detail: "accepted by TM@Contoso.com",
	}
	if got != want {
		t.Errorf("line = %+v\nwant  %+v", got, want)
	}
	if event := <-fakeEvents.Events; !strings.Contains(event, "Normal InvitationAccepted accepted by TM@Contoso.com") {
		t.Errorf("event = %q", event)
	}
}

func TestFailedChangesAreWarnings(t *testing.T) {
	fakeEvents := events.NewFakeRecorder(1)
	r := NewRecorder(fakeEvents, &bytes.Buffer{}, clocktesting.NewFakePassiveClock(time.Now()))
	r.Record(&v1alpha1.PartnerLink{}, Change{Result: Failed, Reason: "InvitationExpired", Message: "m"})
	if event := <-fakeEvents.Events; !strings.HasPrefix(event, "Warning InvitationExpired") {
		t.Errorf("event = %q", event)
	}
}

func TestUserTenant(t *testing.T) {
	for user, want := range map[string]string{
		"alice@Contoso.COM":         "contoso.com",
		OperatorUser:                "",
		"system:serviceaccount:a:b": "",
		"":                          "",
	} {
		if got := UserTenant(user); got != want {
			t.Errorf("UserTenant(%q) = %q, want %q", user, got, want)
		}
	}
}

func TestAlsoOnEventsTheSecondObjectWithOneLine(t *testing.T) {
	var out bytes.Buffer
	fakeEvents := events.NewFakeRecorder(2)
	r := NewRecorder(fakeEvents, &out, clocktesting.NewFakePassiveClock(time.Now()))
	pcr := &v1alpha1.PartnerChangeRequest{ObjectMeta: metav1.ObjectMeta{Name: "req", Namespace: "t"}}
	room := &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: "nyc", Namespace: "t"}}
	r.Record(pcr, Change{
		Category: CategoryChangeRequest, Operation: OperationUpdate, Result: Successful,
		UserID: "alice@contoso.com", Reason: "ChangeApplied", Message: "applied", AlsoOn: room,
	})
	if n := strings.Count(out.String(), "\n"); n != 1 {
		t.Fatalf("want one audit line, got %d: %q", n, out.String())
	}
	if !strings.Contains(out.String(), `"category":"ChangeRequest"`) {
		t.Errorf("line = %q", out.String())
	}
	for range 2 {
		if event := <-fakeEvents.Events; !strings.HasPrefix(event, "Normal ChangeApplied applied") {
			t.Errorf("event = %q", event)
		}
	}
}
