package runner

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestEveryAdapterServerIsPlanned: each router adapter server under
// servers/ (ginsse, echosse-v4, fibersse-v2, …: a name with "sse" after a
// router's name) runs the adapter scenarios in both plans and has its place
// in the report's order, so that a server added for a new framework major
// is measured beside the others.
func TestEveryAdapterServerIsPlanned(t *testing.T) {
	modDir, err := ModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := os.ReadDir(filepath.Join(modDir, "servers"))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, d := range dirs {
		name := d.Name()
		if i := strings.Index(name, "sse"); i > 0 && name != "gosse" && !strings.HasPrefix(name, "ssekit") {
			found = append(found, name)
		}
	}
	if len(found) < 6 {
		t.Fatalf("found only the adapter servers %q", found)
	}
	for _, name := range found {
		for _, pl := range []Plan{QuickPlan(), FullPlan()} {
			if !slices.Equal(pl.ServerScenarios[name], adapterScenarios) {
				t.Errorf("%s: scenarios %q, want %q", name, pl.ServerScenarios[name], adapterScenarios)
			}
		}
		if order := serverOrder([]string{"zzz", name}); order[0] != name {
			t.Errorf("%s is not a known server: order %q", name, order)
		}
	}
	for name := range QuickPlan().ServerScenarios {
		if !slices.Contains(found, name) {
			t.Errorf("the plan names %s, which has no server", name)
		}
	}
}
