// Package testenv holds what the suites that run against a real apiserver
// share beyond internal/controlplane: the client scheme, and whether
// benchmarks were asked for.
package testenv

import (
	"flag"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/controlplane"
)

// NewScheme returns a scheme with the built-in kinds and the operator's.
func NewScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	return scheme
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
