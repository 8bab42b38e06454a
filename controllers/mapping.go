package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// enqueueByPartnerLink maps an event of a PartnerLink to a request for every
// object of newList's kind whose spec.partnerLink names it.
func enqueueByPartnerLink(c client.Reader, newList func() client.ObjectList) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []ctrl.Request {
		return listRequests(ctx, c, newList(), client.InNamespace(obj.GetNamespace()), client.MatchingFields{indexPartnerLink: obj.GetName()})
	})
}

// enqueueNamed maps an event to a request for the object of the same
// namespace named by name(obj), when it names one.
func enqueueNamed(name func(client.Object) string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []ctrl.Request {
		if n := name(obj); n != "" {
			return []ctrl.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: n}}}
		}
		return nil
	})
}

func listRequests(ctx context.Context, c client.Reader, list client.ObjectList, opts ...client.ListOption) []ctrl.Request {
	if err := c.List(ctx, list, opts...); err != nil {
		// Only a cache that is not started fails here; the object's own
		// watch reconciles it once the cache is up.
		log.FromContext(ctx).Error(err, "listing objects to enqueue")
		return nil
	}
	var requests []ctrl.Request
	_ = meta.EachListItem(list, func(o runtime.Object) error {
		obj := o.(client.Object)
		requests = append(requests, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
		return nil
	})
	return requests
}
