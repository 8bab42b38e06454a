package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"text/template"

	"sigs.k8s.io/yaml"

	"github.com/roompro/partner-operator/internal/controlplane"
)

// TestChartMatchesKustomize renders the committed chart (with Go templates,
// the subset Helm's engine shares; test/helm renders it with Helm) in both
// certificate modes, installed into partner-operator-system, and compares it
// object by object with the kustomize renders it was generated from: a chart
// that drifted from config/ fails here.
func TestChartMatchesKustomize(t *testing.T) {
	root, err := controlplane.RepositoryRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []struct{ values, overlay string }{
		{"self-signed", "config/default"},
		{"cert-manager", "config/cert-manager"},
	} {
		t.Run(mode.values, func(t *testing.T) {
			want := objects(t, kustomize(t, mode.overlay)+"\n---\n"+kustomize(t, "config/customer-roles"))
			got := objects(t, renderChart(t, filepath.Join(root, "dist", "chart"), mode.values))
			deployment := "Deployment/partner-operator-controller-manager"
			if !removeArg(got[deployment], "--tenant-manager-group-suffix=tenant-managers") {
				t.Error("the chart does not pass tenantManagerGroupSuffix to the manager")
			}
			for key, obj := range want {
				if !reflect.DeepEqual(obj, got[key]) {
					t.Errorf("%s differs between the chart and %s: run make helm-chart", key, mode.overlay)
				}
			}
			for key := range got {
				if _, ok := want[key]; !ok {
					t.Errorf("the chart has %s, which %s does not", key, mode.overlay)
				}
			}
		})
	}
}

func kustomize(t *testing.T, dir string) string {
	t.Helper()
	out, err := controlplane.Kustomize(dir)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func renderChart(t *testing.T, chart, mode string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{}
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	values["certificates"].(map[string]any)["mode"] = mode
	files, err := filepath.Glob(filepath.Join(chart, "templates", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, f := range files {
		tmpl, err := template.ParseFiles(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out.WriteString("\n---\n")
		// Installed into the namespace of config/default, the chart is it.
		release := map[string]any{"Namespace": "partner-operator-system"}
		if err := tmpl.Execute(&out, map[string]any{"Values": values, "Release": release}); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	return out.String()
}

// objects parses a YAML stream into objects keyed by kind/name.
func objects(t *testing.T, stream string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, doc := range splitDocs(stream) {
		obj := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("parsing %q: %v", doc[:min(len(doc), 200)], err)
		}
		if len(obj) == 0 {
			continue
		}
		meta, _ := obj["metadata"].(map[string]any)
		out[obj["kind"].(string)+"/"+meta["name"].(string)] = obj
	}
	return out
}

// removeArg drops one argument of the manager container and reports whether
// it was there.
func removeArg(deployment map[string]any, arg string) bool {
	if deployment == nil {
		return false
	}
	containers := deployment["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)
	c := containers[0].(map[string]any)
	args := c["args"].([]any)
	i := slices.Index(args, any(arg))
	if i < 0 {
		return false
	}
	c["args"] = slices.Delete(args, i, i+1)
	return true
}
