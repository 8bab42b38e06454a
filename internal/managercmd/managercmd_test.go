package managercmd

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/roompro/partner-operator/internal/webhookauth"
)

// run parses args as the manager's command line and runs it against an
// apiserver that is not there: every case is refused before it is asked.
func run(t *testing.T, args ...string) error {
	t.Helper()
	var o Options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Run(context.Background(), &rest.Config{Host: "https://127.0.0.1:1"}, o)
}

// An unknown --cert-provisioning is refused before the manager talks to any
// apiserver.
func TestRunRefusesUnknownCertProvisioning(t *testing.T) {
	err := run(t, "--cert-provisioning=manual", "--insecure-allow-unauthenticated-admission-callers")
	if err == nil || !strings.Contains(err.Error(), `--cert-provisioning="manual"`) {
		t.Fatalf("Run: %v, want the flag's value refused", err)
	}
}

// Without a client CA for the apiserver and without the explicit opt-out,
// the manager does not start, and says which flags would let it.
func TestRunRefusesToServeUnauthenticatedCallers(t *testing.T) {
	err := run(t)
	if !errors.Is(err, webhookauth.ErrNoCallerAuthentication) {
		t.Fatalf("Run: %v, want %v", err, webhookauth.ErrNoCallerAuthentication)
	}
	for _, name := range []string{"--webhook-client-ca-file", "--insecure-allow-unauthenticated-admission-callers"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the refusal does not name %s: %v", name, err)
		}
	}
	if err := run(t, "--webhook-client-ca-file=/ca.crt", "--webhook-client-allowed-names= , "); err == nil ||
		!strings.Contains(err.Error(), "--webhook-client-allowed-names") {
		t.Errorf("Run with no allowed name: %v, want it refused", err)
	}
}
