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
	"github.com/prometheus/client_golang/prometheus/testutil"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/roompro/partner-operator/internal/authz"
	"github.com/roompro/partner-operator/internal/metrics"
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

// At the production level (INFO, V(0)) a decision writes no log line: a
// partner reaching for a room out of its scope is counted by cause instead.
func TestDenialsAreCountedByCauseNotLogged(t *testing.T) {
	var logs bytes.Buffer
	logger := funcr.New(func(prefix, args string) { logs.WriteString(prefix + args + "\n") }, funcr.Options{Verbosity: 0})
	outOfScope := metrics.Denials.WithLabelValues(authz.RoomOutOfScope.String())
	before := testutil.ToFloat64(outOfScope)

	req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(review("alice@contoso.com", "get", "ber-board", nil))).
		WithContext(log.IntoContext(context.Background(), logger))
	w := httptest.NewRecorder()
	(&Handler{Index: index()}).ServeHTTP(w, req)
	if got := status(t, w); !got.Denied {
		t.Fatalf("a room out of scope was not denied: %+v", got)
	}
	if got := testutil.ToFloat64(outOfScope) - before; got != 1 {
		t.Errorf("denials with cause %s rose by %v, want 1", authz.RoomOutOfScope, got)
	}
	if logs.Len() != 0 {
		t.Errorf("a decision was logged at V(0): %q", logs.String())
	}
}
