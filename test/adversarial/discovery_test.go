package adversarial

import (
	"fmt"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
)

// Class 6: non-resource requests of partner users. Discovery shapes are
// allowed for get only; everything else is denied by the webhook.

var discoveryPaths = []string{
	"/api", "/apis", "/version", "/api/v1", "/apis/partners.roompro.io", "/apis/partners.roompro.io/v1alpha1",
	"/apis/apps", "/apis/apps/v1",
	"/openapi/v2", "/openapi/v3", "/openapi/v3/apis/partners.roompro.io/v1alpha1", "/openapi/v3/api/v1",
}

var nonDiscoveryPaths = []string{
	"/api/v1/namespaces/x/pods", "/api/v1/namespaces/tenant-a/secrets/s", "/apis/x/y/z/extra",
	"/apis/partners.roompro.io/v1alpha1/namespaces/tenant-a/rooms", "/apis/partners.roompro.io/v1alpha1/../../../metrics",
	"/metrics", "/logs", "/logs/kube-apiserver.log", "/debug/pprof", "/debug/pprof/profile", "/healthz/../metrics",
	"/api/../metrics", "/version/../metrics", "/openapi/v2/../../metrics", "/openapi/v3/apis/x/y/z",
	"/healthz", "/livez", "/readyz", "/", "", "/API", "/apis/", "/api/v1/", "/openapi", "/.well-known/openid-configuration",
}

var nonResourceVerbs = []string{"get", "post", "put", "delete", "patch", "head", "options"}

func testDiscovery(t *testing.T) {
	var cases []sarCase
	for _, user := range partnerUsers {
		for _, path := range append(append([]string{}, discoveryPaths...), nonDiscoveryPaths...) {
			for _, verb := range nonResourceVerbs {
				a := &authorizationv1.NonResourceAttributes{Path: path, Verb: verb}
				cases = append(cases, sarCase{
					name:  fmt.Sprintf("%s/%s_%q", user, verb, path),
					spec:  authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{authenticated}, NonResourceAttributes: a},
					check: partnerVerdict(allowedNonResource(a)),
				})
			}
		}
	}
	runReviews(t, cases)
}
