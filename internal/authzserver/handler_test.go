package authzserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authz"
)

func index() *authz.Index {
	x := authz.NewIndex()
	x.Upsert(&v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "nyc", Labels: map[string]string{"country": "us"}}})
	x.Upsert(&v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "contoso"},
		Spec: v1alpha1.PartnerLinkSpec{PartnerDomain: "contoso.com"}, Status: v1alpha1.PartnerLinkStatus{Phase: v1alpha1.LinkActive}})
	x.Upsert(&v1alpha1.RoomAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "a"},
		Spec: v1alpha1.RoomAssignmentSpec{PartnerLink: "contoso", Rooms: v1alpha1.RoomScope{Names: []string{"nyc"}}}})
	x.Upsert(&v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "r"},
		Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso", Permissions: v1alpha1.PrimaryAdminPermissions,
			Assignments: []v1alpha1.RoleAssignment{{Name: "a", Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "alice@contoso.com"}}}}}})
	x.SetSynced(true)
	return x
}

func post(t *testing.T, body string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	(&Handler{Index: index()}).ServeHTTP(w, httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body)))
	return w
}

func review(user, verb, name string, selector *authorizationv1.LabelSelectorAttributes) string {
	sar := authorizationv1.SubjectAccessReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview"},
		Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: "t", Verb: verb, Group: authz.Group, Resource: "rooms", Name: name, LabelSelector: selector}},
	}
	data, _ := json.Marshal(sar)
	return string(data)
}

func status(t *testing.T, w *httptest.ResponseRecorder) authorizationv1.SubjectAccessReviewStatus {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var out authorizationv1.SubjectAccessReview
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Kind != "SubjectAccessReview" || out.APIVersion != "authorization.k8s.io/v1" {
		t.Errorf("response is %s %s, want the review back", out.APIVersion, out.Kind)
	}
	return out.Status
}

func TestVerdicts(t *testing.T) {
	if s := status(t, post(t, review("alice@contoso.com", "get", "nyc", nil))); !s.Allowed || s.Denied {
		t.Errorf("in scope: %+v, want allowed", s)
	}
	if s := status(t, post(t, review("alice@contoso.com", "get", "ber", nil))); s.Allowed || !s.Denied || s.Reason == "" {
		t.Errorf("out of scope: %+v, want denied with a reason", s)
	}
	if s := status(t, post(t, review("admin", "get", "ber", nil))); s.Allowed || s.Denied {
		t.Errorf("customer staff: %+v, want no opinion", s)
	}
}

func TestListSelectors(t *testing.T) {
	label := v1alpha1.AccessLabel("contoso.com")
	structured := &authorizationv1.LabelSelectorAttributes{Requirements: []metav1.LabelSelectorRequirement{{Key: label, Operator: metav1.LabelSelectorOpExists}}}
	if s := status(t, post(t, review("alice@contoso.com", "list", "", structured))); !s.Allowed {
		t.Errorf("structured selector: %+v, want allowed", s)
	}
	for _, raw := range []string{label, label + "=true", label + " in (true)"} {
		if s := status(t, post(t, review("alice@contoso.com", "list", "", &authorizationv1.LabelSelectorAttributes{RawSelector: raw}))); !s.Allowed {
			t.Errorf("raw selector %q: %+v, want allowed", raw, s)
		}
	}
	if s := status(t, post(t, review("alice@contoso.com", "list", "", &authorizationv1.LabelSelectorAttributes{RawSelector: label + "=false"}))); s.Allowed {
		t.Errorf("raw selector =false: %+v, want denied", s)
	}
}

func TestMalformedReviewsAreRejected(t *testing.T) {
	cases := map[string]string{
		"not JSON":         "{",
		"wrong apiVersion": strings.Replace(review("alice@contoso.com", "get", "nyc", nil), "authorization.k8s.io/v1", "authorization.k8s.io/v1beta1", 1),
		"wrong kind":       strings.Replace(review("alice@contoso.com", "get", "nyc", nil), `"SubjectAccessReview"`, `"TokenReview"`, 1),
		"missing user":     review("", "get", "nyc", nil),
		"no attributes":    `{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"alice@contoso.com"}}`,
		"huge body":        `{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"` + strings.Repeat("a", MaxBodyBytes) + `"}}`,
		// Strict decoding (codec.go): encoding/json took each of these
		// as a review.
		"repeated member":     strings.Replace(review("alice@contoso.com", "get", "nyc", nil), `"user":`, `"user":"admin","user":`, 1),
		"case-folded name":    strings.Replace(review("alice@contoso.com", "get", "nyc", nil), `"user":`, `"User":`, 1),
		"invalid UTF-8":       strings.Replace(review("alice@contoso.com", "get", "nyc", nil), `"nyc"`, "\"nyc\xff\"", 1),
		"data after it":       review("alice@contoso.com", "get", "nyc", nil) + `{}`,
		"repeated in unknown": strings.Replace(review("alice@contoso.com", "get", "nyc", nil), `"spec":`, `"x":{"a":1,"a":2},"spec":`, 1),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			w := post(t, body)
			if w.Code != http.StatusBadRequest {
				t.Errorf("status %d, want 400", w.Code)
			}
			if bytes.Contains(w.Body.Bytes(), []byte(`"allowed":true`)) {
				t.Error("a malformed review was allowed")
			}
			if strings.TrimSpace(w.Body.String()) == "" {
				t.Error("a 400 must say what is wrong")
			}
			if name == "huge body" && !strings.Contains(w.Body.String(), "larger than") {
				t.Errorf("a huge body gets %q, want it said that it is too large", w.Body)
			}
		})
	}
	w := httptest.NewRecorder()
	(&Handler{Index: index()}).ServeHTTP(w, httptest.NewRequest(http.MethodGet, Path, nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", w.Code)
	}
}
