package authzserver

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/roompro/partner-operator/internal/authz"
)

// A review carries the user's groups and extra (which may hold tokens or
// claims): decisions are logged with the username only.
func TestDecisionLogsCarryNoSecrets(t *testing.T) {
	var logs bytes.Buffer
	logger := funcr.New(func(prefix, args string) { logs.WriteString(prefix + args + "\n") }, funcr.Options{Verbosity: 10})
	sar := authorizationv1.SubjectAccessReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview"},
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: "alice@contoso.com", Groups: []string{"contoso.com:secret-group"}, UID: "uid-secret",
			Extra:              map[string]authorizationv1.ExtraValue{"authentication.kubernetes.io/credential-id": {"JTI=secret-token"}},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "t", Verb: "get", Group: authz.Group, Resource: "rooms", Name: "nyc"},
		},
	}
	body, _ := json.Marshal(sar)
	req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body)).WithContext(log.IntoContext(context.Background(), logger))
	w := httptest.NewRecorder()
	(&Handler{Index: index()}).ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if !strings.Contains(logs.String(), "alice@contoso.com") {
		t.Fatalf("the decision was not logged: %q", logs.String())
	}
	if strings.Contains(logs.String(), "secret") {
		t.Errorf("the log carries groups, extra or uid: %q", logs.String())
	}
}
