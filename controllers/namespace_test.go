package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func TestNoEventIsRecordedInANamespaceThatIsBeingDeleted(t *testing.T) {
	now := metav1.Now()
	namespaces := fake.NewClientBuilder().WithObjects(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "live"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "leaving", DeletionTimestamp: &now, Finalizers: []string{"kubernetes"}},
			Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
	).Build()
	recorded := events.NewFakeRecorder(10)
	rec := eventsOutsideTerminatingNamespaces(recorded, namespaces)

	for _, obj := range []*v1alpha1.PartnerLink{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "live", Name: "recorded"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "leaving", Name: "dropped"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "gone", Name: "dropped"}},
	} {
		rec.Eventf(obj, nil, corev1.EventTypeNormal, "Reason", "Action", "%s", obj.Name)
	}
	// A cluster-scoped object has no namespace to be deleted.
	rec.Eventf(&v1alpha1.PartnerOrganization{ObjectMeta: metav1.ObjectMeta{Name: "contoso.com"}}, nil, corev1.EventTypeNormal, "Reason", "Action", "%s", "recorded")

	close(recorded.Events)
	var got []string
	for e := range recorded.Events {
		got = append(got, e)
	}
	want := []string{"Normal Reason recorded", "Normal Reason recorded"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("events = %q, want %q", got, want)
	}
}
