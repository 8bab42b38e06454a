// Package testenv holds what the suites that run against a real apiserver
// share beyond internal/controlplane: the client scheme, and whether
// benchmarks were asked for.
package testenv

import (
	"flag"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/roompro/partner-operator/api/v1alpha1"
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
