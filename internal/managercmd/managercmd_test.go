package managercmd

import (
	"context"
	"flag"
	"strings"
	"testing"

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
