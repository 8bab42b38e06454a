package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/audit"
)

// linkOf reads the PartnerLink a role or assignment names, from the cache. It
// returns nil when the link does not exist, after removing obj if it is an
// orphan (removed is then true and obj is gone).
func linkOf(ctx context.Context, c client.Client, reader client.Reader, rec *audit.Recorder,
	obj client.Object, name string, category audit.Category) (link *v1alpha1.PartnerLink, removed bool, err error) {
	link = &v1alpha1.PartnerLink{}
	err = c.Get(ctx, client.ObjectKey{Namespace: obj.GetNamespace(), Name: name}, link)
	switch {
	case err == nil:
		return link, false, nil
	case !apierrors.IsNotFound(err):
		return nil, false, fmt.Errorf("reading PartnerLink %q: %w", name, err)
	}
	removed, err = removeIfOrphaned(ctx, c, reader, rec, obj, name, category)
	return nil, removed, err
}

// removeIfOrphaned deletes a role or assignment whose PartnerLink does not
// exist. The admission webhook refuses such objects, so they only arise when
// one is created while its link is being offboarded, after the finalizer
// listed the link's children: deleting it here closes that race, so no role
// or assignment ever outlives its partnership. The link is looked up with the
// API reader, not the cache, so that a link created a moment ago is not taken
// for a missing one; the delete is conditional on the object's UID.
func removeIfOrphaned(ctx context.Context, c client.Client, reader client.Reader, rec *audit.Recorder,
	obj client.Object, link string, category audit.Category) (removed bool, err error) {
	err = liveReader(reader, c).Get(ctx, client.ObjectKey{Namespace: obj.GetNamespace(), Name: link}, &v1alpha1.PartnerLink{})
	switch {
	case err == nil:
		return false, nil // the cache has not seen the link yet; its event reconciles again
	case !apierrors.IsNotFound(err):
		return false, fmt.Errorf("reading PartnerLink %q: %w", link, err)
	}
	uid := obj.GetUID()
	if err := c.Delete(ctx, obj, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		return false, fmt.Errorf("deleting %s, whose PartnerLink %q is gone: %w", obj.GetName(), link, err)
	}
	rec.Record(obj, audit.Change{
		Category: category, Operation: audit.OperationDelete, Result: audit.Successful, Warning: true,
		UserID: audit.OperatorUser, Reason: v1alpha1.ReasonOrphanRemoved,
		Message: fmt.Sprintf("PartnerLink %q no longer exists; removed what would have outlived the partnership", link),
	})
	return true, nil
}

// liveReader returns reader, which reads around the cache (the manager's API
// reader), or c when a reconciler was built without one.
func liveReader(reader client.Reader, c client.Client) client.Reader {
	if reader == nil {
		return c
	}
	return reader
}
