package scope

import (
	"reflect"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func room(name string, labels map[string]string) *v1alpha1.Room {
	return &v1alpha1.Room{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func mustCompile(t *testing.T, s v1alpha1.RoomScope) *Matcher {
	t.Helper()
	m, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMatcher(t *testing.T) {
	us := &metav1.LabelSelector{MatchLabels: map[string]string{"country": "us"}}
	cases := []struct {
		name  string
		scope v1alpha1.RoomScope
		room  *v1alpha1.Room
		want  bool
	}{
		{"by name", v1alpha1.RoomScope{Names: []string{"a"}}, room("a", nil), true},
		{"other name", v1alpha1.RoomScope{Names: []string{"a"}}, room("b", nil), false},
		{"by label", v1alpha1.RoomScope{Selector: us}, room("b", map[string]string{"country": "us"}), true},
		{"label mismatch", v1alpha1.RoomScope{Selector: us}, room("b", map[string]string{"country": "de"}), false},
		{"name or label", v1alpha1.RoomScope{Names: []string{"a"}, Selector: us}, room("a", map[string]string{"country": "de"}), true},
		{"empty selector selects all", v1alpha1.RoomScope{Selector: &metav1.LabelSelector{}}, room("z", nil), true},
		{"empty scope selects none", v1alpha1.RoomScope{}, room("z", nil), false},
		{"expression", v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "site", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"ber"}}}}}, room("x", map[string]string{"site": "nyc"}), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustCompile(t, tc.scope).Matches(tc.room); got != tc.want {
				t.Errorf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCompileRejectsBadSelector(t *testing.T) {
	_, err := Compile(v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "site", Operator: "Like", Values: []string{"x"}}}}})
	if err == nil {
		t.Fatal("Compile accepted operator Like")
	}
}

func TestMissingNames(t *testing.T) {
	present := map[string]struct{}{"a": {}, "b": {}}
	got := MissingNames(v1alpha1.RoomScope{Names: []string{"z", "a", "c", "z"}}, present)
	if want := []string{"c", "z"}; !slices.Equal(got, want) {
		t.Errorf("MissingNames = %v, want %v", got, want)
	}
}

func TestPartnersOfIsTheSortedUnionOfReach(t *testing.T) {
	reach := []Reach{
		{Domain: "fabrikam.com", Matcher: mustCompile(t, v1alpha1.RoomScope{Names: []string{"a"}})},
		{Domain: "contoso.com", Matcher: mustCompile(t, v1alpha1.RoomScope{Names: []string{"a", "b"}})},
		{Domain: "contoso.com", Matcher: mustCompile(t, v1alpha1.RoomScope{Selector: &metav1.LabelSelector{}})},
	}
	if got, want := PartnersOf(room("a", nil), reach), []string{"contoso.com", "fabrikam.com"}; !slices.Equal(got, want) {
		t.Errorf("PartnersOf(a) = %v, want %v", got, want)
	}
	if got := PartnersOf(room("a", nil), nil); len(got) != 0 {
		t.Errorf("PartnersOf without reach = %v, want none", got)
	}
}

func TestAccessLabels(t *testing.T) {
	current := map[string]string{
		"site":                              "nyc",
		v1alpha1.AccessLabel("old.com"):     "true",
		v1alpha1.AccessLabel("contoso.com"): "true",
	}
	r := room("a", current)
	if AccessLabelsMatch(r, []string{"contoso.com"}) {
		t.Error("AccessLabelsMatch ignored a stale label")
	}
	if !AccessLabelsMatch(r, []string{"contoso.com", "old.com"}) {
		t.Error("AccessLabelsMatch rejected the exact set")
	}
	got := WithAccessLabels(current, []string{"contoso.com", "new.com"})
	want := map[string]string{"site": "nyc", v1alpha1.AccessLabel("contoso.com"): "true", v1alpha1.AccessLabel("new.com"): "true"}
	if len(got) != len(want) {
		t.Fatalf("WithAccessLabels = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("WithAccessLabels[%s] = %q, want %q", k, got[k], v)
		}
	}
	if !AccessLabelsMatch(room("a", got), []string{"contoso.com", "new.com"}) {
		t.Error("labels written by WithAccessLabels do not match their domains")
	}
	if AccessLabelsMatch(room("a", map[string]string{v1alpha1.AccessLabel("x.com"): "false"}), []string{"x.com"}) {
		t.Error("a label with a value other than true counted as access")
	}
}

// TestAnchorFindsEveryRoomTheScopeSelects: an index that looks rooms up by
// the anchor must miss none the matcher selects.
func TestAnchorFindsEveryRoomTheScopeSelects(t *testing.T) {
	in := func(key string, values ...string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: key, Operator: metav1.LabelSelectorOpIn, Values: values}
	}
	scopes := map[string]v1alpha1.RoomScope{
		"names":            {Names: []string{"a", "b"}},
		"matchLabels":      {Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"country": "us", "site": "nyc"}}},
		"names and labels": {Names: []string{"c"}, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"country": "de"}}},
		"in one value":     {Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{in("site", "nyc")}}},
		"in two values":    {Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{in("site", "nyc", "sea")}}},
		"everything":       {Selector: &metav1.LabelSelector{}},
	}
	wantAnchor := map[string]Anchor{
		"names":            {Names: []string{"a", "b"}},
		"matchLabels":      {Label: &Label{"country", "us"}},
		"names and labels": {Names: []string{"c"}, Label: &Label{"country", "de"}},
		"in one value":     {Label: &Label{"site", "nyc"}},
		"in two values":    {Any: true},
		"everything":       {Any: true},
	}
	var rooms []*v1alpha1.Room
	for _, name := range []string{"a", "b", "c", "d"} {
		for _, country := range []string{"", "us", "de"} {
			for _, site := range []string{"", "nyc", "sea"} {
				labels := map[string]string{}
				if country != "" {
					labels["country"] = country
				}
				if site != "" {
					labels["site"] = site
				}
				rooms = append(rooms, room(name, labels))
			}
		}
	}
	for name, s := range scopes {
		m := mustCompile(t, s)
		a := m.Anchor()
		if !reflect.DeepEqual(a, wantAnchor[name]) {
			t.Errorf("%s: anchor %+v, want %+v", name, a, wantAnchor[name])
		}
		for _, r := range rooms {
			candidate := a.Any || slices.Contains(a.Names, r.Name) || a.Label != nil && r.Labels[a.Label.Key] == a.Label.Value
			if m.Matches(r) && !candidate {
				t.Errorf("%s: selects room %s %v, which the anchor %+v misses", name, r.Name, r.Labels, a)
			}
		}
	}
}
