// Package testenv holds what the suites that run against a real apiserver
// share beyond internal/controlplane: the client scheme, whether benchmarks
// were asked for, and the partner registrations their invitations need.
package testenv

import (
	"context"
	"flag"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/operator"
)

// NewScheme returns the operator's scheme (operator.NewScheme), for the
// suites' own clients.
func NewScheme() *runtime.Scheme {
	return operator.NewScheme()
}

// BenchmarksRequested reports whether `go test -bench` was given, for a
// TestMain that starts a control plane only for its benchmarks. Call it after
// flag.Parse.
func BenchmarksRequested() bool {
	f := flag.Lookup("test.bench")
	return f != nil && f.Value.String() != ""
}

// StartControlPlane starts a control plane for one test, stopped when the
// test ends, and returns it with an admin client.
func StartControlPlane(tb testing.TB, opts controlplane.Options) (*controlplane.ControlPlane, client.Client) {
	tb.Helper()
	cp, err := controlplane.Start(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cp.Stop() })
	admin, err := client.New(cp.Config, client.Options{Scheme: NewScheme()})
	if err != nil {
		tb.Fatal(err)
	}
	return cp, admin
}

// RegisterPartners registers each domain as a PartnerOrganization (named by
// its domain), as the platform team would before any customer invites it:
// the admission webhooks refuse invitations and links of unregistered
// domains, and only registered domains are partner domains. A domain that
// is registered already is left as it is.
func RegisterPartners(ctx context.Context, c client.Client, domains ...string) error {
	for _, d := range domains {
		org := &v1alpha1.PartnerOrganization{
			ObjectMeta: metav1.ObjectMeta{Name: d},
			Spec:       v1alpha1.PartnerOrganizationSpec{Domain: v1alpha1.Domain(d), DisplayName: d},
		}
		if err := c.Create(ctx, org); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("registering the partner %s: %w", d, err)
		}
	}
	return nil
}
