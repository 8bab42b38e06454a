package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A tenant's namespace being deleted.
//
// The namespace controller of kube-controller-manager deletes every object
// in a deleted namespace, PartnerLinks included, in no particular order,
// and until the namespace is gone the apiserver refuses to create anything
// in it (the NamespaceLifecycle admission plugin, cause
// NamespaceTerminating). The operator then does what lets its objects go
// and nothing else:
//
//   - a deleted link is offboarded as always: its roles and assignments are
//     deleted, no room keeps its label (the rooms go too), the finalizer is
//     removed and the audit line is written;
//   - a link that is not deleted yet is neither activated nor repaired: a
//     missing child or built-in role is not created again, since the
//     namespace's deletion is about to take the link as well (the
//     admission webhook admits that delete of the built-in role, see
//     internal/admission);
//   - no Event is recorded in the namespace (the audit line still is).
//
// Retrying a refused create would hold nothing up, but would fill the log
// with errors until the link's turn came.

// namespaceTerminating reports whether err is the apiserver's refusal to
// create an object in a namespace that is being deleted.
func namespaceTerminating(err error) bool {
	return apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)
}

// namespaceEventTimeout bounds the cache read of an event's namespace.
const namespaceEventTimeout = 5 * time.Second

// eventsOutsideTerminatingNamespaces records through rec every Event but
// those about an object in a namespace that is being deleted or gone: the
// apiserver would refuse them, and the event broadcaster would log each refusal
// as an error.
func eventsOutsideTerminatingNamespaces(rec events.EventRecorder, namespaces client.Reader) events.EventRecorder {
	return &namespaceGatedEvents{EventRecorder: rec, namespaces: namespaces}
}

type namespaceGatedEvents struct {
	events.EventRecorder
	namespaces client.Reader
}

func (e *namespaceGatedEvents) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	if obj, ok := regarding.(client.Object); ok && e.terminating(obj.GetNamespace()) {
		ctrl.Log.WithName("events").V(1).Info("not recording an Event in a namespace that is being deleted",
			"namespace", obj.GetNamespace(), "name", obj.GetName(), "reason", reason)
		return
	}
	e.EventRecorder.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

// terminating reads the namespace from the cache: gone or deleted means
// terminating. When the read fails, the Event is recorded: a refused Event
// costs a log line, a lost one an audit trail.
func (e *namespaceGatedEvents) terminating(name string) bool {
	if name == "" {
		return false // a cluster-scoped object
	}
	ctx, cancel := context.WithTimeout(context.Background(), namespaceEventTimeout)
	defer cancel()
	ns := &corev1.Namespace{}
	if err := e.namespaces.Get(ctx, client.ObjectKey{Name: name}, ns); err != nil {
		return apierrors.IsNotFound(err)
	}
	return !ns.DeletionTimestamp.IsZero() || ns.Status.Phase == corev1.NamespaceTerminating
}
