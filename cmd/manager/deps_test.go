package main

import (
	"os/exec"
	"strings"
	"testing"
)

// forbidden are packages of test code, by import-path prefix: the local
// control plane (envtest and what it runs on) and the suites' helpers. They
// belong in cmd/local and the tests, never in the binary that ships.
var forbidden = []string{
	"sigs.k8s.io/controller-runtime/pkg/envtest",
	"sigs.k8s.io/controller-runtime/pkg/internal/testing",
	"github.com/roompro/partner-operator/internal/controlplane",
	"github.com/roompro/partner-operator/internal/testenv",
	"k8s.io/client-go/testing",
	"k8s.io/utils/clock/testing",
	"github.com/onsi/",
}

// linkedAnyway are the importers of a forbidden package that no build of a
// controller-runtime manager can avoid: every typed client of client-go
// (leader election, events) builds on client-go's gentype, whose fake client
// is in a non-test file and imports k8s.io/client-go/testing.
var linkedAnyway = map[string]string{
	"k8s.io/client-go/gentype": "k8s.io/client-go/testing",
}

// TestLinksNoTestCode fails when a package of test code comes back into the
// manager's dependencies, as envtest did when the manager could start a
// local control plane.
func TestLinksNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, ".").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list -deps: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list -deps: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		// A package is linked through its importers: judging the edges
		// lets linkedAnyway name the one importer that may bring it.
		pkg, imports := fields[0], fields[1:]
		for _, imp := range imports {
			if isForbidden(imp) && linkedAnyway[pkg] != imp {
				t.Errorf("%s imports %s into the manager", pkg, imp)
			}
		}
	}
}

func isForbidden(pkg string) bool {
	for _, prefix := range forbidden {
		if strings.HasPrefix(pkg, prefix) {
			return true
		}
	}
	return false
}
