package controllers

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/changecontrol"
	"github.com/roompro/partner-operator/internal/deadline"
	"github.com/roompro/partner-operator/internal/metrics"
)

// The change request controller reads requests, writes their status, and
// writes the approved changes with the operator's own credentials: room
// updates, role creates, updates and deletes, ticket creates and updates
// (the server-side dry runs of the preview need the same verbs). Targets
// are read live (get); tickets are also watched, so that a ticket's change
// refreshes the previews of its requests.
// +kubebuilder:rbac:groups=partners.roompro.io,resources=partnerchangerequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=partners.roompro.io,resources=partnerchangerequests/status,verbs=patch
// +kubebuilder:rbac:groups=partners.roompro.io,resources=rooms,verbs=get;update
// +kubebuilder:rbac:groups=partners.roompro.io,resources=partnerroles,verbs=update
// +kubebuilder:rbac:groups=partners.roompro.io,resources=tickets,verbs=get;list;watch;create;update

// indexChangeTarget indexes change requests by "<kind>/<name>" of their
// target, so that a target's events refresh the previews of its requests.
const indexChangeTarget = "spec.target"

func changeTargetKey(kind, name string) string { return kind + "/" + name }

// PartnerChangeRequestReconciler drives a PartnerChangeRequest through its
// life: it records the request (requester, expiry) and previews it by a
// server-side dry run while it is pending, records the customer's decision,
// applies an approved change exactly once after re-checking the requester
// and the target's version, fails the requests of an offboarded partner,
// and expires a pending request at its deadline, woken by Deadlines.
type PartnerChangeRequestReconciler struct {
	client.Client
	// APIReader reads the targets and, before an apply, the link around the
	// cache: an apply judged on a stale copy could overwrite a change.
	APIReader client.Reader
	Clock     clock.PassiveClock
	Audit     *audit.Recorder
	Deadlines *deadline.Scheduler
	// Recheck says whether the requester may still make the write at the
	// moment of the apply.
	Recheck changecontrol.Recheck
}

// Reconcile brings one change request one step further.
func (r *PartnerChangeRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pcr := &v1alpha1.PartnerChangeRequest{}
	if err := r.Get(ctx, req.NamespacedName, pcr); err != nil {
		if apierrors.IsNotFound(err) {
			r.Deadlines.Cancel(&v1alpha1.PartnerChangeRequest{ObjectMeta: metav1.ObjectMeta{Name: req.Name, Namespace: req.Namespace}})
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if terminalChange(pcr.Status.Phase) {
		r.Deadlines.Cancel(pcr)
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, r.reconcileNormal(ctx, pcr)
}

func (r *PartnerChangeRequestReconciler) reconcileNormal(ctx context.Context, pcr *v1alpha1.PartnerChangeRequest) error {
	link := &v1alpha1.PartnerLink{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: pcr.Namespace, Name: pcr.Spec.PartnerLink}, link); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading PartnerLink %q: %w", pcr.Spec.PartnerLink, err)
		}
		link = nil
	}
	facts := changeRequestFacts{LinkGone: linkGone(pcr, link)}
	if pcr.Status.ExpiresAt == nil && link != nil {
		days, err := r.expiryDays(ctx, link)
		if err != nil {
			return err
		}
		facts.ExpiryDays = days
	}
	target, err := r.liveTarget(ctx, pcr)
	if err != nil {
		return err
	}
	switch {
	case pcr.Status.Phase == v1alpha1.ChangeApproved && facts.LinkGone == "":
		if facts.Apply, target, err = r.apply(ctx, pcr, target); err != nil {
			return err
		}
	case pcr.Spec.Decision == "" && facts.LinkGone == "":
		facts.Preview = r.preview(ctx, pcr, target)
	}

	now := r.Clock.Now()
	status := changeRequestStatus(pcr, facts, now)
	if status.Phase == v1alpha1.ChangePending {
		r.Deadlines.At(pcr, status.ExpiresAt.Time)
	} else {
		r.Deadlines.Cancel(pcr)
	}
	before := pcr.DeepCopy()
	pcr.Status = status
	if written, err := patchStatus(ctx, r.Client, before, pcr); !written || err != nil {
		return err
	}
	r.recordTransition(pcr, before.Status.Phase, target)
	return nil
}

// linkGone says why the request's link is out of effect, or "".
func linkGone(pcr *v1alpha1.PartnerChangeRequest, link *v1alpha1.PartnerLink) string {
	switch {
	case link == nil:
		return fmt.Sprintf("PartnerLink %q does not exist (the partner is offboarded)", pcr.Spec.PartnerLink)
	case !link.DeletionTimestamp.IsZero():
		return fmt.Sprintf("PartnerLink %q is being deleted (the partner is being offboarded)", pcr.Spec.PartnerLink)
	}
	return ""
}

// expiryDays is the requestExpiryDays of the link's invitation, 0 when the
// invitation is gone (the default applies).
func (r *PartnerChangeRequestReconciler) expiryDays(ctx context.Context, link *v1alpha1.PartnerLink) (int32, error) {
	inv := &v1alpha1.PartnerInvitation{}
	switch err := r.Get(ctx, client.ObjectKey{Namespace: link.Namespace, Name: link.Spec.Invitation}, inv); {
	case apierrors.IsNotFound(err):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("reading PartnerInvitation %q: %w", link.Spec.Invitation, err)
	}
	return inv.Spec.Approvals.RequestExpiryDays, nil
}

func targetGVK(pcr *v1alpha1.PartnerChangeRequest) schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(pcr.Spec.Target.APIVersion, pcr.Spec.Target.Kind)
}

// liveTarget reads the request's target around the cache: nil when it does
// not exist (or its kind is not served yet).
func (r *PartnerChangeRequestReconciler) liveTarget(ctx context.Context, pcr *v1alpha1.PartnerChangeRequest) (*unstructured.Unstructured, error) {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(targetGVK(pcr))
	err := liveReader(r.APIReader, r.Client).Get(ctx, client.ObjectKey{Namespace: pcr.Namespace, Name: pcr.Spec.Target.Name}, live)
	switch {
	case apierrors.IsNotFound(err) || isNoKind(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", targetName(pcr), err)
	}
	return live, nil
}

// requester is the user whose write produced the request, as admission
// stamped it.
func requester(pcr *v1alpha1.PartnerChangeRequest) changecontrol.Requester {
	who := changecontrol.Requester{Name: pcr.Annotations[v1alpha1.AnnotationRequestedBy]}
	if groups := pcr.Annotations[v1alpha1.AnnotationRequestedByGroups]; groups != "" {
		who.Groups = strings.Split(groups, ",")
	}
	return who
}

// SetupWithManager registers the controller: a request wakes on its own
// events, on its deadline, on the events of its link (offboarding) and on
// those of its target (the preview follows the live object).
func (r *PartnerChangeRequestReconciler) SetupWithManager(mgr ctrl.Manager) error {
	ctx := context.Background()
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(ctx, &v1alpha1.PartnerChangeRequest{}, indexPartnerLink, func(o client.Object) []string {
		return []string{o.(*v1alpha1.PartnerChangeRequest).Spec.PartnerLink}
	}); err != nil {
		return fmt.Errorf("indexing PartnerChangeRequests by partnerLink: %w", err)
	}
	if err := indexer.IndexField(ctx, &v1alpha1.PartnerChangeRequest{}, indexChangeTarget, func(o client.Object) []string {
		t := o.(*v1alpha1.PartnerChangeRequest).Spec.Target
		return []string{changeTargetKey(t.Kind, t.Name)}
	}); err != nil {
		return fmt.Errorf("indexing PartnerChangeRequests by target: %w", err)
	}
	requests := func() client.ObjectList { return &v1alpha1.PartnerChangeRequestList{} }
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.PartnerChangeRequest{}).
		Watches(&v1alpha1.PartnerLink{}, enqueueByPartnerLink(mgr.GetClient(), requests)).
		Watches(&v1alpha1.Room{}, r.enqueueByTarget(mgr.GetClient(), "Room")).
		Watches(&v1alpha1.PartnerRole{}, r.enqueueByTarget(mgr.GetClient(), "PartnerRole")).
		Watches(&v1alpha1.Ticket{}, r.enqueueByTarget(mgr.GetClient(), "Ticket")).
		WatchesRawSource(r.Deadlines.Source()).
		Named("partnerchangerequest").
		Complete(r)
}

// enqueueByTarget maps an event of a kind's object to its change requests.
func (r *PartnerChangeRequestReconciler) enqueueByTarget(c client.Reader, kind string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []ctrl.Request {
		return listRequests(ctx, c, &v1alpha1.PartnerChangeRequestList{},
			client.InNamespace(obj.GetNamespace()), client.MatchingFields{indexChangeTarget: changeTargetKey(kind, obj.GetName())})
	})
}

// recordTransition records, once each, the steps the status write made:
// the request, the decision, and the outcome. target is the live target
// (the written one after an apply), nil when it does not exist.
func (r *PartnerChangeRequestReconciler) recordTransition(pcr *v1alpha1.PartnerChangeRequest, previous v1alpha1.ChangeRequestPhase, target *unstructured.Unstructured) {
	s := &pcr.Status
	if previous == s.Phase {
		return
	}
	op := audit.Operation(pcr.Spec.Operation)
	what := describeChange(pcr)
	var alsoOn client.Object
	if target != nil {
		alsoOn = target
	}
	record := func(user, reason string, result audit.Result, message string) {
		r.Audit.Record(pcr, audit.Change{
			Category: audit.CategoryChangeRequest, Operation: op, Result: result,
			UserID: user, Reason: reason, Message: message, AlsoOn: alsoOn,
		})
	}
	category := string(pcr.Spec.Category)
	if previous == "" {
		record(s.RequestedBy, ReasonChangeRequested, audit.Successful,
			fmt.Sprintf("%s asks for the %s%s; partnerchangerequest/%s waits for the customer's approval until %s",
				orUnknown(s.RequestedBy), what, inWords(pcr.Spec.Reason), pcr.Name, formatTime(s.ExpiresAt.Time)))
	}
	if (previous == "" || previous == v1alpha1.ChangePending) && s.DecidedAt != nil {
		metrics.ChangeRequestDecisionSeconds.WithLabelValues(category).Observe(nonNegativeSeconds(s.DecidedAt.Sub(s.RequestedAt.Time)))
		if pcr.Spec.Decision == v1alpha1.DecisionDenied {
			record(s.DecidedBy, ReasonChangeDecisionDenied, audit.Failed,
				fmt.Sprintf("%s denied the %s asked by %s%s; nothing was written", orUnknown(s.DecidedBy), what, orUnknown(s.RequestedBy), inWords(pcr.Spec.DecisionMessage)))
		} else {
			record(s.DecidedBy, ReasonChangeDecisionApproved, audit.Successful,
				fmt.Sprintf("%s approved the %s asked by %s%s", orUnknown(s.DecidedBy), what, orUnknown(s.RequestedBy), inWords(pcr.Spec.DecisionMessage)))
		}
	}
	switch s.Phase {
	case v1alpha1.ChangeApplied:
		metrics.ChangeRequestApplySeconds.WithLabelValues(category).Observe(nonNegativeSeconds(s.AppliedAt.Sub(s.DecidedAt.Time)))
		record(s.RequestedBy, ReasonChangeRequestApplied, audit.Successful,
			fmt.Sprintf("the operator applied the %s asked by %s and approved by %s (partnerchangerequest/%s)",
				what, orUnknown(s.RequestedBy), orUnknown(s.DecidedBy), pcr.Name))
	case v1alpha1.ChangeFailed:
		user := s.RequestedBy
		if conditionReason(s.Conditions, ConditionChangeApplied) == ReasonLinkGone {
			user = audit.OperatorUser
		}
		record(user, ReasonChangeRequestFailed, audit.Failed,
			fmt.Sprintf("partnerchangerequest/%s failed (%s): %s", pcr.Name, conditionReason(s.Conditions, ConditionChangeApplied), conditionMessage(s.Conditions, ConditionChangeApplied)))
	case v1alpha1.ChangeExpired:
		record(audit.OperatorUser, ReasonChangeRequestExpired, audit.Failed,
			fmt.Sprintf("nobody decided on the %s asked by %s before %s; nothing was written", what, orUnknown(s.RequestedBy), formatTime(s.ExpiresAt.Time)))
	}
}

func nonNegativeSeconds(d interface{ Seconds() float64 }) float64 {
	return max(d.Seconds(), 0)
}

func conditionMessage(conds []metav1.Condition, condType string) string {
	for _, c := range conds {
		if c.Type == condType {
			return c.Message
		}
	}
	return ""
}
