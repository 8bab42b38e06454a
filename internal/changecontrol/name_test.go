package changecontrol

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func TestName(t *testing.T) {
	target := v1alpha1.ChangeTarget{APIVersion: "partners.roompro.io/v1alpha1", Kind: "Room", Name: "nyc"}
	obj := []byte(`{"spec":{"displayName":"New York"},"apiVersion":"partners.roompro.io/v1alpha1"}`)
	same := []byte(`{ "apiVersion": "partners.roompro.io/v1alpha1", "spec": {"displayName": "New York"} }`)
	name := func(link, user, base string, o []byte) string {
		t.Helper()
		n, err := Name(link, v1alpha1.CategoryRooms, user, v1alpha1.OperationUpdate, target, base, o)
		if err != nil {
			t.Fatal(err)
		}
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
			t.Errorf("%q is not a DNS subdomain: %v", n, errs)
		}
		return n
	}
	a := name("contoso", "alice@contoso.com", "42", obj)
	if !strings.HasPrefix(a, "contoso-rooms-") || len(a) != len("contoso-rooms-")+10 {
		t.Errorf("name %q, want contoso-rooms-<10 hex>", a)
	}
	if b := name("contoso", "alice@contoso.com", "42", same); b != a {
		t.Errorf("the same object encoded otherwise: %q, want %q", b, a)
	}
	for what, other := range map[string]string{
		"another user":    name("contoso", "carol@contoso.com", "42", obj),
		"another base":    name("contoso", "alice@contoso.com", "43", obj),
		"another object":  name("contoso", "alice@contoso.com", "42", []byte(`{"spec":{"displayName":"NYC"}}`)),
		"no object":       name("contoso", "alice@contoso.com", "42", nil),
		"a shifted value": name("contoso", "alice@contoso.com4", "2", obj),
	} {
		if other == a {
			t.Errorf("%s gives the same name %q", what, a)
		}
	}
	long := strings.Repeat("a", 62) + "." + strings.Repeat("b", 62) + "." + strings.Repeat("c", 62) + "." + strings.Repeat("d", 61)
	for _, link := range []string{long, long[:240] + "-x", strings.Repeat("a", 237) + ".b" + strings.Repeat("c", 14)} {
		if n := name(link, "alice@contoso.com", "42", obj); len(n) > 253 {
			t.Errorf("len %d > 253", len(n))
		}
	}
	if _, err := Name("contoso", v1alpha1.CategoryRooms, "a", v1alpha1.OperationUpdate, target, "1", []byte("{not json")); err == nil {
		t.Error("a broken object gave a name")
	}
}
