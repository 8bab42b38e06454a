package admission

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// requestedByDefaulter stamps, on create, the annotation that records who
// created the object, overwriting whatever the request said.
type requestedByDefaulter struct{}

func (requestedByDefaulter) stamp(ctx context.Context, obj client.Object) error {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return fmt.Errorf("reading the admission request: %w", err)
	}
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[v1alpha1.AnnotationRequestedBy] = req.UserInfo.Username
	obj.SetAnnotations(annotations)
	return nil
}

// typedDefaulter adapts the stamp to admission.Defaulter[T].
type typedDefaulter[T client.Object] struct{ d requestedByDefaulter }

func defaulterOf[T client.Object](d requestedByDefaulter) admission.Defaulter[T] {
	return typedDefaulter[T]{d: d}
}

func (t typedDefaulter[T]) Default(ctx context.Context, obj T) error {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return err
	}
	if req.Operation != "CREATE" {
		return nil
	}
	return t.d.stamp(ctx, obj)
}
