package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// stamper is the mutating webhook of every kind: on create it records who
// asked, in the requested-by annotation, overwriting whatever the request
// said; for a PartnerLink it also records the UID of the invitation the link
// is admitted against. It patches those annotations and nothing else, unlike
// a typed defaulter, which would re-encode the object and add every
// zero-valued field the user left out (turning a missing field's "Required
// value" into a misleading error, and writing fields nobody set).
type stamper struct {
	// more returns the kind's own annotations to record; nil for none.
	more func(ctx context.Context, req admission.Request) (map[string]string, error)
}

func (s stamper) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create {
		return admission.Allowed("")
	}
	var obj struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	stamps := map[string]string{v1alpha1.AnnotationRequestedBy: req.UserInfo.Username}
	if s.more != nil {
		more, err := s.more(ctx, req)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		maps.Copy(stamps, more)
	}
	if obj.Metadata.Annotations == nil {
		return admission.Patched("recorded the requesting user", jsonpatch.NewOperation("add", "/metadata/annotations", stamps))
	}
	patches := make([]jsonpatch.JsonPatchOperation, 0, len(stamps))
	for _, key := range slices.Sorted(maps.Keys(stamps)) {
		patches = append(patches, jsonpatch.NewOperation("add", "/metadata/annotations/"+escapePointer(key), stamps[key]))
	}
	return admission.Patched("recorded the requesting user", patches...)
}

// linkInvitationUID records the UID of the invitation a new PartnerLink
// names, read live: the link accepts that invitation and no later one of the
// same name (lifecycle.CreatedFor). With no such invitation it records
// nothing, and validation refuses the link.
func linkInvitationUID(reader client.Reader) func(context.Context, admission.Request) (map[string]string, error) {
	return func(ctx context.Context, req admission.Request) (map[string]string, error) {
		var link struct {
			Spec struct {
				Invitation string `json:"invitation"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(req.Object.Raw, &link); err != nil || link.Spec.Invitation == "" {
			return nil, nil // the schema refuses it
		}
		inv := &v1alpha1.PartnerInvitation{}
		switch err := reader.Get(ctx, client.ObjectKey{Namespace: req.Namespace, Name: link.Spec.Invitation}, inv); {
		case apierrors.IsNotFound(err):
			return map[string]string{v1alpha1.AnnotationInvitationUID: ""}, nil
		case err != nil:
			return nil, fmt.Errorf("reading PartnerInvitation %q: %w", link.Spec.Invitation, err)
		}
		return map[string]string{v1alpha1.AnnotationInvitationUID: string(inv.UID)}, nil
	}
}

// escapePointer escapes a JSON pointer segment (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
