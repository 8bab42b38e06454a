package admission

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// requestedByStamper is the mutating webhook of every kind: on create it
// records who asked, in the requested-by annotation, overwriting whatever the
// request said. It patches that one annotation and nothing else, unlike a
// typed defaulter, which would re-encode the object and add every zero-valued
// field the user left out (turning a missing field's "Required value" into a
// misleading error, and writing fields nobody set).
type requestedByStamper struct{}

func (requestedByStamper) Handle(_ context.Context, req admission.Request) admission.Response {
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
	user := req.UserInfo.Username
	var patch jsonpatch.JsonPatchOperation
	if obj.Metadata.Annotations == nil {
		patch = jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{v1alpha1.AnnotationRequestedBy: user})
	} else {
		patch = jsonpatch.NewOperation("add", "/metadata/annotations/"+escapePointer(v1alpha1.AnnotationRequestedBy), user)
	}
	return admission.Patched("recorded the requesting user", patch)
}

// escapePointer escapes a JSON pointer segment (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
