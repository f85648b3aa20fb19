package runner

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShortAndTicks(t *testing.T) {
	for v, want := range map[float64]string{2e6: "2M", 5e5: "500k", 100: "100", 1.5e6: "1.5M"} {
		if got := short(v); got != want {
			t.Errorf("short(%v) = %q, want %q", v, got, want)
		}
	}
	var labels []string
	for _, tk := range (logTicks{}).Ticks(80, 1200) {
		labels = append(labels, tk.Label)
	}
	if got := strings.Join(labels, " "); got != "100 200 500 1k" {
		t.Errorf("ticks %q", got)
	}
}

// TestReport renders the markdown and the plot from a results file, when
// there is one.
func TestReport(t *testing.T) {
	rep, err := ReadJSON("../results/latest.json")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("no results/latest.json")
	}
	if err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(t.TempDir(), "p.png")
	if err := WritePlot(png, rep); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("BENCH_PLOT_OUT") != "" {
		b, _ := os.ReadFile(png)
		_ = os.WriteFile(os.Getenv("BENCH_PLOT_OUT"), b, 0o644)
	}
	md := Markdown(rep, Links{PNG: "p.png", JSON: "x.json", README: "r.md"})
	for _, want := range []string{"## Idle memory", "## Fan-out saturation", "## Caveats", "![p99"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}
