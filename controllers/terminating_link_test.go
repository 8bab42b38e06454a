package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// namespaceTerminating is the apiserver's refusal (the NamespaceLifecycle
// admission plugin) of a create in a namespace that is being deleted.
func namespaceTerminating(obj client.Object) error {
	err := apierrors.NewForbidden(schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: "partnerroles"}, obj.GetName(),
		fmt.Errorf("unable to create new content in namespace %s because it is being terminated", obj.GetNamespace()))
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
		Type: corev1.NamespaceTerminatingCause, Field: "metadata.namespace",
		Message: fmt.Sprintf("namespace %s is being terminated", obj.GetNamespace()),
	})
	return err
}

// The namespace controller may delete the built-in role before the link. The
// link controller then cannot restore it, and must not retry: the namespace
// takes the link too.
func TestALinkWhoseNamespaceIsBeingDeletedIsNotRepairedNorRetried(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	established := metav1.NewTime(now.Add(-time.Minute))
	inv := invitation("tenant", "contoso", "contoso.com", 30)
	inv.CreationTimestamp = established
	inv.Status = v1alpha1.PartnerInvitationStatus{Phase: v1alpha1.InvitationAccepted, PartnerLink: "contoso", AcceptedAt: &established}
	l := link("tenant", "contoso", "contoso.com")
	l.UID, l.Finalizers, l.CreationTimestamp = "link-uid", []string{"partners.roompro.io/offboard"}, established
	l.Status = v1alpha1.PartnerLinkStatus{Phase: v1alpha1.LinkActive, EstablishedAt: &established}

	creates := 0
	apiserver := fakeAPIBuilder(l, inv).
		WithInterceptorFuncs(interceptor.Funcs{Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
			creates++
			return namespaceTerminating(obj)
		}}).Build()
	r, recorded := linkReconcilerOn(apiserver, apiserver, now)

	result, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(l)})
	if err != nil {
		t.Fatalf("Reconcile: %v, want no error: a retry cannot create anything in the namespace", err)
	}
	if result.RequeueAfter != 0 {
		t.Errorf("requeued after %s, want no retry", result.RequeueAfter)
	}
	if creates != 1 {
		t.Errorf("%d creates, want the one attempt at restoring the built-in role", creates)
	}
	if n := len(recorded.Events); n != 0 {
		t.Errorf("%d events recorded, want none: nothing was restored", n)
	}
}
