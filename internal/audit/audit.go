// Package audit records every partner-relevant change twice: as a Kubernetes
// Event on the object (what `kubectl describe` shows) and as one JSON line
// with the fields of the Teams Rooms Pro audit log (what a log pipeline ships).
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Category is what kind of thing changed.
type Category string

// The categories of the Teams Rooms Pro audit log.
const (
	CategoryUser              Category = "User"
	CategoryAssignment        Category = "Assignment"
	CategoryPartnerInvitation Category = "PartnerInvitation"
	CategoryRole              Category = "Role"
	// CategoryChangeRequest is a PartnerChangeRequest's life: the request,
	// the customer's decision, the operator's apply or its failure.
	CategoryChangeRequest Category = "ChangeRequest"
)

// Operation is what happened to it.
type Operation string

// The operations of the audit log.
const (
	OperationCreate Operation = "Create"
	OperationUpdate Operation = "Update"
	OperationDelete Operation = "Delete"
)

// Result says whether the change took effect.
type Result string

// The results of the audit log.
const (
	Successful Result = "Successful"
	Failed     Result = "Failed"
)

// OperatorUser is the userId of changes the operator makes on its own
// (expiry, restoring a role, offboarding clean-up).
const OperatorUser = "system:partner-operator"

// Line is one audit record, serialised as one line of JSON.
type Line struct {
	Category     Category  `json:"category"`
	ObjectName   string    `json:"objectName"`
	Operation    Operation `json:"operation"`
	ResultStatus Result    `json:"resultStatus"`
	TenantID     string    `json:"tenantId"`
	CreationTime string    `json:"creationTime"`
	UserID       string    `json:"userId"`
	UserTenantID string    `json:"userTenantId"`
	// Detail is the human sentence of the matching Event.
	Detail string `json:"detail,omitempty"`
}

// Change is what a controller reports.
type Change struct {
	Category  Category
	Operation Operation
	Result    Result
	// UserID is who made the change; OperatorUser when nobody asked for it.
	UserID string
	// Reason is the Event's reason, in CamelCase (InvitationExpired, ...).
	Reason string
	// Message is the Event's note: a sentence a person understands.
	Message string
	// Related is an optional second object the change concerns.
	Related runtime.Object
	// Warning makes the Event a Warning even when the change succeeded: the
	// operator repaired something that should not have happened.
	Warning bool
	// AlsoOn, when set, receives the same Event as the object recorded on
	// (a change request's target): one change, one audit line, an Event on
	// each object it concerns.
	AlsoOn client.Object
}

// Recorder writes the Event and the audit line of each change.
type Recorder struct {
	events events.EventRecorder
	clock  clock.PassiveClock

	mu  sync.Mutex
	out io.Writer
}

// NewRecorder returns a Recorder that emits Events through events and audit
// lines to out.
func NewRecorder(rec events.EventRecorder, out io.Writer, clk clock.PassiveClock) *Recorder {
	return &Recorder{events: rec, out: out, clock: clk}
}

// Record emits the change on obj.
func (r *Recorder) Record(obj client.Object, c Change) {
	eventType := corev1.EventTypeNormal
	if c.Result == Failed || c.Warning {
		eventType = corev1.EventTypeWarning
	}
	r.events.Eventf(obj, c.Related, eventType, c.Reason, string(c.Operation), "%s", c.Message)
	if c.AlsoOn != nil {
		r.events.Eventf(c.AlsoOn, obj, eventType, c.Reason, string(c.Operation), "%s", c.Message)
	}

	line := Line{
		Category:     c.Category,
		ObjectName:   obj.GetName(),
		Operation:    c.Operation,
		ResultStatus: c.Result,
		TenantID:     obj.GetNamespace(),
		CreationTime: r.clock.Now().UTC().Format(time.RFC3339),
		UserID:       c.UserID,
		UserTenantID: UserTenant(c.UserID),
		Detail:       c.Message,
	}
	data, err := json.Marshal(line)
	if err != nil { // cannot happen: Line holds only strings
		panic(fmt.Sprintf("marshal audit line: %v", err))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.out.Write(append(data, '\n'))
}

// UserTenant is the tenant of a user: the domain of a UPN (lower-cased), and
// empty for every other identity.
func UserTenant(user string) string {
	_, domain, ok := strings.Cut(user, "@")
	if !ok {
		return ""
	}
	return strings.ToLower(domain)
}
