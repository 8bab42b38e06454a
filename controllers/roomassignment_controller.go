package controllers

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
	"github.com/roompro/partner-operator/internal/scope"
)

// Condition of a RoomAssignment: False names the rooms that do not exist.
const conditionRoomsFound = "RoomsFound"

// AssignmentReconciler reports what a RoomAssignment selects: how many rooms,
// which named rooms are missing, and whether it is in effect (its link is
// Active). The room labels themselves are RoomAccessReconciler's job.
type AssignmentReconciler struct {
	client.Client
	// APIReader reads around the cache where a stale read would delete too
	// much (see removeIfOrphaned). Default: Client.
	APIReader client.Reader
	Audit     *audit.Recorder

	scopes *scopeIndex
}

// Reconcile brings one assignment's status up to date.
func (r *AssignmentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	a := &v1alpha1.RoomAssignment{}
	if err := r.Get(ctx, req.NamespacedName, a); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !a.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	link, removed, err := linkOf(ctx, r.Client, r.APIReader, r.Audit, a, a.Spec.PartnerLink, audit.CategoryAssignment)
	if removed || err != nil {
		return ctrl.Result{}, err
	}

	status := a.Status.DeepCopy()
	status.ObservedGeneration = a.Generation
	matcher, compileErr := scope.Compile(a.Spec.Rooms)
	selected := map[string]struct{}{}
	if compileErr == nil {
		if selected, err = roomsOf(ctx, r.Client, a.Namespace, []*scope.Matcher{matcher}); err != nil {
			return ctrl.Result{}, err
		}
	}
	status.MatchedRooms = int32(len(selected))
	// A named room is selected whenever it exists.
	missing := scope.MissingNames(a.Spec.Rooms, selected)
	if len(missing) > 0 {
		setCondition(&status.Conditions, a, conditionRoomsFound, metav1.ConditionFalse, "RoomsNotFound",
			fmt.Sprintf("no room named %s in this namespace; it joins the scope once it is created", strings.Join(missing, ", ")))
	} else {
		setCondition(&status.Conditions, a, conditionRoomsFound, metav1.ConditionTrue, "AllRoomsFound", "every named room exists")
	}
	switch {
	case compileErr != nil:
		setCondition(&status.Conditions, a, v1alpha1.ConditionReady, metav1.ConditionFalse, "InvalidSelector", compileErr.Error())
	case link == nil:
		setCondition(&status.Conditions, a, v1alpha1.ConditionReady, metav1.ConditionFalse, "PartnerLinkNotFound",
			fmt.Sprintf("PartnerLink %q does not exist in this namespace", a.Spec.PartnerLink))
	case !linkGrantsAccess(link):
		setCondition(&status.Conditions, a, v1alpha1.ConditionReady, metav1.ConditionFalse, "PartnerLinkNotActive",
			fmt.Sprintf("PartnerLink %q is %s, not Active", link.Name, orPending(link.Status.Phase)))
	default:
		setCondition(&status.Conditions, a, v1alpha1.ConditionReady, metav1.ConditionTrue, "InScope",
			fmt.Sprintf("%d room(s) are in the scope of %s", status.MatchedRooms, link.Spec.PartnerDomain))
	}
	if equality.Semantic.DeepEqual(*status, a.Status) {
		return ctrl.Result{}, nil
	}
	previousGeneration := a.Status.ObservedGeneration
	a.Status = *status
	if err := r.Status().Update(ctx, a); err != nil {
		return ctrl.Result{}, ignoreStale(err, "updating the assignment status")
	}
	recordGenerationChange(r.Audit, a, previousGeneration, audit.CategoryAssignment,
		fmt.Sprintf("assigns %d room(s) to PartnerLink %q", a.Status.MatchedRooms, a.Spec.PartnerLink))
	return ctrl.Result{}, nil
}

// SetupWithManager registers the controller. A room event wakes only the
// assignments whose scopes could select the room, before or after the event:
// the controller files each assignment's scope by anchor as it sees it.
func (r *AssignmentReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.scopes = newScopeIndex()
	return ctrl.NewControllerManagedBy(mgr).
		Named("roomassignment").
		WithOptions(controller.Options{MaxConcurrentReconciles: objectWorkers}).
		Watches(&v1alpha1.RoomAssignment{}, r.scopes.filing(func(o client.Object) *scope.Matcher {
			m, _ := scope.Compile(o.(*v1alpha1.RoomAssignment).Spec.Rooms)
			return m
		})).
		Watches(&v1alpha1.Room{}, r.scopes.selecting()).
		Watches(&v1alpha1.PartnerLink{}, enqueueByPartnerLink(r.Client, func() client.ObjectList { return &v1alpha1.RoomAssignmentList{} })).
		Complete(r)
}

// recordGenerationChange audits a spec the controller sees for the first time
// (Create) or in a new generation (Update).
func recordGenerationChange(rec *audit.Recorder, obj client.Object, previousGeneration int64, category audit.Category, message string) {
	if previousGeneration == obj.GetGeneration() {
		return
	}
	op, reason := audit.OperationUpdate, "SpecChanged"
	if previousGeneration == 0 {
		op, reason = audit.OperationCreate, "Observed"
	}
	rec.Record(obj, audit.Change{
		Category: category, Operation: op, Result: audit.Successful,
		UserID: obj.GetAnnotations()[v1alpha1.AnnotationRequestedBy], Reason: reason, Message: message,
	})
}

func orPending(p v1alpha1.LinkPhase) string {
	if p == "" {
		return string(v1alpha1.LinkPending)
	}
	return string(p)
}
