package controllers

// The condition types of a PartnerChangeRequest, the reasons of its
// conditions, and the reasons of the Events and audit lines that record its
// life. A person reads the messages that go with them; scripts and alerts
// read these.
const (
	// ConditionChangeApplied is True once the operator wrote the approved
	// change; False with the reason why not (yet); Unknown while the
	// operator is writing it.
	ConditionChangeApplied = "Applied"
	// ConditionChangePreviewed is True when status.preview lists what the
	// change would change against the live target.
	ConditionChangePreviewed = "Previewed"
)

// Reasons of the Applied condition.
const (
	// ReasonChangePending: the request waits for the customer's decision.
	ReasonChangePending = "Pending"
	// ReasonChangeApproved: approved, the operator is about to write it.
	ReasonChangeApproved = "Approved"
	// ReasonChangeApplying: the operator claimed the write (a Delete) and
	// records its outcome next.
	ReasonChangeApplying = "Applying"
	// ReasonChangeApplied: the operator wrote the change.
	ReasonChangeApplied = "Applied"
	// ReasonChangeDenied: the customer denied the change; nothing was written.
	ReasonChangeDenied = "Denied"
	// ReasonChangeExpired: nobody decided before expiresAt; nothing was written.
	ReasonChangeExpired = "Expired"
	// ReasonConflict: the target is no longer at baseResourceVersion (or,
	// for a Create, the name is taken); nothing was written.
	ReasonConflict = "Conflict"
	// ReasonNoLongerAuthorized: the requester may no longer make the write
	// (link, role or scope changed); nothing was written.
	ReasonNoLongerAuthorized = "NoLongerAuthorized"
	// ReasonTargetGone: the object to update or delete does not exist any
	// more; nothing was written.
	ReasonTargetGone = "TargetGone"
	// ReasonLinkGone: the partner's link is gone or being deleted (the
	// partner is offboarded); nothing was written.
	ReasonLinkGone = "LinkGone"
	// ReasonInvalidObject: the held object cannot be written as it is (it
	// does not decode, or the apiserver refuses it); nothing was written.
	ReasonInvalidObject = "InvalidObject"
)

// Reasons of the Previewed condition.
const (
	// ReasonPreviewed: status.preview is current.
	ReasonPreviewed = "Previewed"
	// ReasonPreviewFailed: the server-side dry run refused the change.
	ReasonPreviewFailed = "PreviewFailed"
)

// Reasons of the Events and audit lines of a change request's life.
const (
	// ReasonChangeRequested: a partner's change waits for approval.
	ReasonChangeRequested = "Requested"
	// ReasonChangeDecisionApproved / ReasonChangeDecisionDenied: the
	// customer decided.
	ReasonChangeDecisionApproved = "Approved"
	ReasonChangeDecisionDenied   = "Denied"
	// ReasonChangeRequestApplied: the operator wrote the change.
	ReasonChangeRequestApplied = "ChangeApplied"
	// ReasonChangeRequestFailed: the approved change was not written.
	ReasonChangeRequestFailed = "ChangeFailed"
	// ReasonChangeRequestExpired: the request expired undecided.
	ReasonChangeRequestExpired = "ChangeExpired"
)
