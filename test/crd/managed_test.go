package crd_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The kinds of the permission matrix beyond rooms: their schema alone (no
// webhook runs in this suite) refuses what no object of theirs may hold.

const validTicket = `
apiVersion: partners.roompro.io/v1alpha1
kind: Ticket
metadata:
  name: conf-a-display
spec:
  room: conf-a
  title: The display is dark
  description: Since this morning.
  severity: High
`

const validReport = `
apiVersion: partners.roompro.io/v1alpha1
kind: RoomReport
metadata:
  name: conf-a-week-48
spec:
  room: conf-a
  period: {start: "2026-11-23T00:00:00Z", end: "2026-11-30T00:00:00Z"}
  availabilityPercent: 99
  callQualityScore: 87
  meetings: 41
`

const validGroup = `
apiVersion: partners.roompro.io/v1alpha1
kind: RoomGroup
metadata:
  name: floor-1
spec:
  displayName: First floor
`

const validRing = `
apiVersion: partners.roompro.io/v1alpha1
kind: UpdateRing
metadata:
  name: general
spec:
  displayName: General
  deferralDays: 7
`

var _ = Describe("tickets, reports, groups and rings", func() {
	It("store a ticket with state defaulted to Open, and keep its severity", func() {
		t := expectAccepted(manifest(validTicket))
		Expect(field(t, "spec", "state")).To(Equal("Open"))
		Expect(field(t, "spec", "severity")).To(Equal("High"))
		t2 := expectAccepted(manifest(with(with(validTicket, "name: conf-a-display", "name: conf-a-cable"), "  severity: High\n", "")))
		Expect(field(t2, "spec", "severity")).To(Equal("Medium"))
	})

	It("store a report, a group and a ring (deferral defaulted to 0)", func() {
		r := expectAccepted(manifest(validReport))
		Expect(field(r, "spec", "callQualityScore")).To(BeEquivalentTo(87))
		expectAccepted(manifest(validGroup))
		ring := expectAccepted(manifest(with(validRing, "  deferralDays: 7\n", "")))
		Expect(field(ring, "spec", "deferralDays")).To(BeEquivalentTo(0))
	})

	It("never move a ticket or a report to another room", func() {
		for _, y := range []string{with(validTicket, "name: conf-a-display", "name: moving-ticket"), with(validReport, "name: conf-a-week-48", "name: moving-report")} {
			obj := expectAccepted(manifest(y))
			Expect(unstructured.SetNestedField(obj.Object, "conf-b", "spec", "room")).To(Succeed())
			err := k8sClient.Update(ctx, obj)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			Expect(err.Error()).To(ContainSubstring("spec.room"))
			Expect(err.Error()).To(ContainSubstring("room is immutable"))
			stored := &unstructured.Unstructured{}
			stored.SetGroupVersionKind(obj.GroupVersionKind())
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), stored)).To(Succeed())
			Expect(field(stored, "spec", "room")).To(Equal("conf-a"))
		}
	})
})

var _ = DescribeTable("invalid tickets, reports, groups and rings are rejected with the field named, and nothing is stored",
	func(y, field, reason string) { expectRejected(manifest(y), field, reason) },

	Entry("a ticket without a room", with(validTicket, "  room: conf-a\n", ""), "spec.room", "Required value"),
	Entry("a ticket whose room is a number", with(validTicket, "room: conf-a", "room: 42"), "spec.room", "must be of type string"),
	Entry("a ticket whose room is no object name", with(validTicket, "room: conf-a", "room: Conf A"), "spec.room", "should match"),
	Entry("a ticket room longer than a label value", with(validTicket, "room: conf-a", "room: "+strings.Repeat("a", 64)), "spec.room", "may not be more than 63"),
	Entry("a ticket without a title", with(validTicket, "  title: The display is dark\n", ""), "spec.title", "Required value"),
	Entry("a ticket title over 200 characters", with(validTicket, "title: The display is dark", "title: "+strings.Repeat("x", 201)), "spec.title", "may not be more than 200"),
	Entry("a ticket description over 8192 characters", with(validTicket, "description: Since this morning.", "description: "+strings.Repeat("x", 8193)), "spec.description", "may not be more than 8192"),
	Entry("an unknown severity", with(validTicket, "severity: High", "severity: Urgent"), "spec.severity", `supported values: "Low", "Medium", "High", "Critical"`),
	Entry("an unknown state", with(validTicket, "severity: High", "severity: High\n  state: Done"), "spec.state", `supported values: "Open", "InProgress", "Resolved", "Closed"`),
	Entry("a report without a room", with(validReport, "  room: conf-a\n", ""), "spec.room", "Required value"),
	Entry("a report without a period", with(validReport, `  period: {start: "2026-11-23T00:00:00Z", end: "2026-11-30T00:00:00Z"}`+"\n", ""), "spec.period", "Required value"),
	Entry("a report ending before it starts", with(validReport, `end: "2026-11-30T00:00:00Z"`, `end: "2026-11-22T00:00:00Z"`), "spec.period", "end must be after start"),
	Entry("a report whose start is no time", with(validReport, `start: "2026-11-23T00:00:00Z"`, `start: "last monday"`), "spec.period.start", "date-time"),
	Entry("availability over 100", with(validReport, "availabilityPercent: 99", "availabilityPercent: 101"), "spec.availabilityPercent", "less than or equal to 100"),
	Entry("a negative call quality", with(validReport, "callQualityScore: 87", "callQualityScore: -1"), "spec.callQualityScore", "greater than or equal to 0"),
	Entry("meetings of the wrong type", with(validReport, "meetings: 41", "meetings: many"), "spec.meetings", "must be of type integer"),
	Entry("a group without a display name", with(validGroup, "  displayName: First floor\n", "  description: x\n"), "spec.displayName", "Required value"),
	Entry("a group display name over 256 characters", with(validGroup, "displayName: First floor", "displayName: "+strings.Repeat("x", 257)), "spec.displayName", "may not be more than 256"),
	Entry("a ring deferral over 180 days", with(validRing, "deferralDays: 7", "deferralDays: 181"), "spec.deferralDays", "less than or equal to 180"),
	Entry("a negative ring deferral", with(validRing, "deferralDays: 7", "deferralDays: -1"), "spec.deferralDays", "greater than or equal to 0"),
	Entry("a ring paused with a string", with(validRing, "deferralDays: 7", "deferralDays: 7\n  paused: \"yes\""), "spec.paused", "must be of type boolean"),
)
