package managercmd

import (
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// An unknown --cert-provisioning is refused before the manager talks to any
// apiserver.
func TestRunRefusesUnknownCertProvisioning(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o.BindFlags(fs)
	if err := fs.Parse([]string{"--cert-provisioning=manual"}); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), &rest.Config{Host: "https://127.0.0.1:1"}, o)
	if err == nil || !strings.Contains(err.Error(), `--cert-provisioning="manual"`) {
		t.Fatalf("Run: %v, want the flag's value refused", err)
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
