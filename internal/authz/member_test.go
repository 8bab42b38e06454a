package authz

import (
	"testing"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func TestParseMember(t *testing.T) {
	user := func(n string) v1alpha1.Subject { return v1alpha1.Subject{Kind: v1alpha1.UserSubject, Name: n} }
	group := func(n string) v1alpha1.Subject { return v1alpha1.Subject{Kind: v1alpha1.GroupSubject, Name: n} }
	for _, tc := range []struct {
		subject   v1alpha1.Subject
		key       string // "" for refused
		field     string
		forbidden bool
	}{
		{user("Alice@Contoso.com"), "alice@contoso.com", "", false},
		{user("alice@fabrikam.com"), "", "name", false},
		{user("alice@eu.contoso.com"), "", "name", false},
		{user("a@b@contoso.com"), "", "name", false},
		{user(" alice@contoso.com"), "", "name", false},
		{user("System:alice@contoso.com"), "", "name", true},
		{group("Contoso.com:HelpDesk"), "contoso.com:helpdesk", "", false},
		{group("contoso.com:"), "", "name", false},
		{group("contoso.com:help desk"), "", "name", false},
		{group("fabrikam.com:helpdesk"), "", "name", false},
		{group("system:masters"), "", "name", true},
		{v1alpha1.Subject{Kind: "ServiceAccount", Name: "x@contoso.com"}, "", "kind", false},
	} {
		key, err := ParseMember(tc.subject, "contoso.com")
		switch {
		case tc.key != "" && (err != nil || key != tc.key):
			t.Errorf("%+v: key %q, err %v; want %q", tc.subject, key, err, tc.key)
		case tc.key == "" && (err == nil || err.Field != tc.field || err.Forbidden != tc.forbidden || err.Detail == ""):
			t.Errorf("%+v: err %+v; want a refusal of %s (forbidden %v)", tc.subject, err, tc.field, tc.forbidden)
		}
	}
}
