package runner

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSelectionAndSkips renders a report in which an adapter ran only part
// of the scenarios: its skipped scenarios get no table row (no zeros), are
// named under the table, and the plot leaves it out.
func TestSelectionAndSkips(t *testing.T) {
	pl := QuickPlan()
	if !pl.Runs("ssekit", ScStalled) || pl.Runs("chisse", ScStalled) || !pl.Runs("chisse", ScFanout) {
		t.Fatal("Plan.Runs does not follow ServerScenarios")
	}
	rep := &Report{Plan: pl, Env: map[string]string{}, Servers: []ServerInfo{{Name: "ssekit"}, {Name: "chisse"}}}
	for _, sc := range Scenarios {
		rep.Results = append(rep.Results, Result{Server: "ssekit", Scenario: sc, Conns: 7, OpenSec: 0.5,
			RSSPerConnKiB: 12, Steps: []Step{{Rate: 100, DeliveriesSec: 1e5, P99Ms: 5, Pass: true}}})
		r := Result{Server: "chisse", Scenario: sc, Conns: 7, RSSPerConnKiB: 13}
		if !pl.Runs("chisse", sc) {
			r = Result{Server: "chisse", Scenario: sc, Skipped: SkipNotSelected}
		}
		rep.Results = append(rep.Results, r)
	}
	md := Markdown(rep, Links{JSON: "x.json", README: "r.md"})
	if !strings.Contains(md, "| chisse |  | idle, fanout, steady |") || !strings.Contains(md, "| ssekit |  | all |") {
		t.Errorf("servers table lacks the scenario column:\n%s", md)
	}
	for _, sec := range []string{"## Connect storm", "## Stalled clients", "## Resume storm", "## Maximum sustainable rate"} {
		i := strings.Index(md, sec)
		if i < 0 {
			t.Fatalf("no section %q", sec)
		}
		body := md[i:]
		body = body[:strings.Index(body[3:], "\n## ")+3]
		if strings.Contains(body, "| chisse |") {
			t.Errorf("%s has a row for chisse, which skipped it", sec)
		}
		if !strings.Contains(body, "Not run: chisse ("+SkipNotSelected+")") {
			t.Errorf("%s does not say chisse did not run:\n%s", sec, body)
		}
	}
	if !strings.Contains(md, "| chisse | 0.0 | 0.0 | 13.0 |") {
		t.Errorf("idle table lacks chisse's row")
	}
	if got := serversIn(rep, ScMaxRate); len(got) != 1 || got[0] != "ssekit" {
		t.Errorf("plot servers %v, want [ssekit]", got)
	}
	if err := WritePlot(filepath.Join(t.TempDir(), "p.png"), rep); err != nil {
		t.Fatal(err)
	}
}

// TestTargets: the targets table compares each of ssekit's servers with
// the baseline each target names, and says which targets are met.
func TestTargets(t *testing.T) {
	pl := QuickPlan()
	pl.FanoutSubs = []int{100}
	rep := &Report{Plan: pl, Env: map[string]string{}}
	rep.Results = []Result{
		{Server: "ssekit", Scenario: ScIdle, RSSPerConnKiB: 27},
		{Server: "ssekit-detached", Scenario: ScIdle, RSSPerConnKiB: 3},
		{Server: "bare", Scenario: ScIdle, RSSPerConnKiB: 25},
		{Server: "ssekit", Scenario: ScSteady, CPUPerMillionSec: 12, P99Ms: 40},
		{Server: "ssekit-detached", Scenario: ScSteady, CPUPerMillionSec: 10, P99Ms: 30},
		{Server: "naive", Scenario: ScSteady, CPUPerMillionSec: 10, P99Ms: 35},
		{Server: "ssekit", Scenario: ScMaxRate, SustainedDeliv: 3e6},
		{Server: "r3labs", Scenario: ScMaxRate, SustainedDeliv: 1e6},
		{Server: "gosse", Scenario: ScMaxRate, SustainedDeliv: 2e6},
	}
	md := Markdown(rep, Links{JSON: "x.json", README: "r.md"})
	for _, want := range []string{
		"| idle RSS per stream ≤ 1.1× bare blocking handler | ssekit | 27 KiB | bare: 25 KiB | 1.08 | met |",
		"| detached: idle RSS per stream ≤ 8 KiB | ssekit-detached | 3.00 KiB | ssekit attached: 27 KiB | 0.11 | met |",
		"| moderate rate (1000 × 20/s): CPU per M deliveries ≤ 1.05× naive | ssekit | 12 s | naive: 10 s | 1.20 | short |",
		"| moderate rate (1000 × 20/s): CPU per M deliveries ≤ 1.05× naive | ssekit-detached | 10 s | naive: 10 s | 1.00 | met |",
		"| p99 latency at 1000 subscribers ≤ naive | ssekit | 40 ms | naive: 35 ms | 1.14 | short |",
		"| max sustainable deliveries/s ≥ 2× best peer | ssekit | 3000000 /s | gosse: 2000000 /s | 1.50 | short |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("no row %q in:\n%s", want, md[strings.Index(md, "## Targets"):])
		}
	}
}
