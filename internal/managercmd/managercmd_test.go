package managercmd

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

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

// The heartbeat is named after the Pod, which owns its Lease only when the
// Lease is in the Pod's own namespace: an owner the garbage collector
// cannot find there would have the Lease deleted at once.
func TestHeartbeatOptionsFromTheFlags(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "partner-operator-system")
	t.Setenv("POD_NAME", "manager-7d9c-x2")
	t.Setenv("POD_UID", "0b1c")
	parse := func(args ...string) Options {
		t.Helper()
		var o Options
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		o.BindFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return o
	}

	f := parse().freshness()
	if f.Namespace != "partner-operator-system" || f.Period != time.Second || f.MaxStaleness != 5*time.Second {
		t.Errorf("defaults: %+v", f)
	}
	if !strings.HasPrefix(f.Identity, "manager-7d9c-x2-") {
		t.Errorf("identity %q, want the Pod's name and a suffix", f.Identity)
	}
	if f.Owner == nil || f.Owner.Kind != "Pod" || f.Owner.Name != "manager-7d9c-x2" || f.Owner.UID != "0b1c" {
		t.Errorf("owner %+v, want the Pod", f.Owner)
	}

	f = parse("--namespace=elsewhere", "--heartbeat-period=2s", "--max-index-staleness=10s").freshness()
	if f.Namespace != "elsewhere" || f.Period != 2*time.Second || f.MaxStaleness != 10*time.Second {
		t.Errorf("flags: %+v", f)
	}
	if f.Owner != nil {
		t.Errorf("a Lease outside the Pod's namespace is owned by the Pod: %+v", f.Owner)
	}
}
