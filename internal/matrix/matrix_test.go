package matrix

import (
	"slices"
	"strings"
	"testing"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func TestParseTheDocument(t *testing.T) {
	m, err := ParseFile("../../docs/permissions.md")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Columns["pro manager"]; !slices.Equal(got, v1alpha1.AllPermissions) {
		t.Errorf("pro manager = %v, want every permission in the API's order %v", got, v1alpha1.AllPermissions)
	}
	if got := m.Columns["site tech"]; !slices.Equal(got, []v1alpha1.Permission{
		v1alpha1.RoomsView, v1alpha1.RoomsModify, v1alpha1.RoomsDownloadKey, v1alpha1.RoomsUnenroll,
		v1alpha1.TicketsCreate, v1alpha1.TicketsView, v1alpha1.TicketsUpdate,
	}) {
		t.Errorf("site tech = %v", got)
	}
	if got := m.Allows[v1alpha1.TicketsView]; len(got) != 2 || got[1].Resource != "rooms/tickets" || !slices.Equal(got[1].Verbs, []string{"get", "list"}) {
		t.Errorf("tickets.view allows %v", got)
	}
	if len(m.Relationship) != 4 {
		t.Errorf("relationship = %v, want 4 resources", m.Relationship)
	}
}

func TestParseRejects(t *testing.T) {
	const allows = "| permission | resource | verbs |\n|---|---|---|\n| rooms.view | rooms | get |\n"
	const relationship = "| resource | verbs |\n|---|---|\n| partnerlinks | get |\n"
	const matrix = "| feature | permission | pro manager |\n|---|---|---|\n| rooms | view | ✔ |\n"
	doc := func(tables ...string) string { return strings.Join(tables, "\n") }
	cases := map[string]struct{ doc, want string }{
		"unknown permission":   {doc(strings.Replace(matrix, "view", "peek", 1), allows, relationship), `"rooms.peek" is not a permission`},
		"unknown in allows":    {doc(matrix, strings.Replace(allows, "rooms.view", "rooms.see", 1), relationship), `"rooms.see" is not a permission`},
		"a cell that is not ✔": {doc(strings.Replace(matrix, "✔", "yes", 1), allows, relationship), `"yes" is neither ✔ nor empty`},
		"a short row":          {doc(matrix, allows, relationship+"| a |\n"), "has 1 cells, want 2"},
		"no matrix":            {doc(allows, relationship), `no table headed ["feature" "permission"]`},
		"no relationship":      {doc(matrix, allows), `no table headed ["resource" "verbs"]`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
