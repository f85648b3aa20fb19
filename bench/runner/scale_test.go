package runner

import (
	"context"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestScaleSmoke runs small versions of the notify and hotchurn scenarios
// against the ssekit server of this tree: every returning client must get
// exactly what it was owed with no reset, and the hot topic must lose
// nothing while clients churn.
func TestScaleSmoke(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the load generator needs Linux")
	}
	if _, err := RaiseNoFile(); err != nil {
		t.Fatal(err)
	}
	modDir, err := ModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	servers, err := Build(ctx, modDir, t.TempDir(), []string{"ssekit"})
	if err != nil {
		t.Fatal(err)
	}
	srv := servers[0]
	if !srv.Info.Topics {
		t.Fatal("the ssekit server does not say it serves topics")
	}
	o := &Options{Workers: 2, SourceAddrs: 2, Plan: QuickPlan()}
	pl := &o.Plan
	pl.NotifyStreams, pl.NotifyRate, pl.NotifySeconds, pl.NotifyBackSeconds = 200, 400, 3, 1.5
	pl.NotifyReconnect, pl.NotifyBroadcastEvery = 100, 20
	r := notify(ctx, o, srv)
	if r.Error != "" || r.Notify == nil {
		t.Fatalf("notify: %s", r.Error)
	}
	n := r.Notify
	if n.Published != 1200 || n.Broadcast != 60 || n.LiveDelivered != n.LiveExpected || n.LiveExpected == 0 {
		t.Errorf("storm: %d published, %d broadcast, %d of %d delivered", n.Published, n.Broadcast, n.LiveDelivered, n.LiveExpected)
	}
	if n.Resumed != 100 || n.ResetClients != 0 || n.SilentGaps != 0 || n.Unexpected != 0 || n.FailedConnects != 0 ||
		n.Replayed != n.ReplayExpected || n.Replayed < 100*20 || n.ResumeP99Ms <= 0 {
		t.Errorf("resume: %+v", n)
	}

	pl.HotSubs, pl.HotRate, pl.HotSeconds, pl.HotChurn, pl.HotHoldSeconds = 100, 20, 2, 50, 0.2
	r = hotChurn(ctx, o, srv)
	if r.Error != "" || r.Churn == nil {
		t.Fatalf("hotchurn: %s", r.Error)
	}
	c := r.Churn
	if r.Deliveries != 100*40 || r.Losses != 0 || r.Disconnects != 0 {
		t.Errorf("hot topic: %d deliveries, %d losses, %d closed", r.Deliveries, r.Losses, r.Disconnects)
	}
	if c.Connects < 50 || c.Failed != 0 || c.ConnectP99Ms <= 0 || c.Probes == 0 || c.StatsMaxUs <= 0 || c.SubsMaxUs <= 0 {
		t.Errorf("churn: %+v", c)
	}
}

// TestBuildBefore builds the ssekit server against the core of the
// default before commit, which must keep building with this tree's server
// code, and leaves no worktree behind.
func TestBuildBefore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an older core")
	}
	modDir, err := ModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name, full, err := CanonicalName(ctx, modDir, "ssekit@"+DefaultBefore)
	if err != nil {
		t.Skipf("no commit %s here (a shallow clone?): %v", DefaultBefore, err)
	}
	if !strings.HasPrefix(full, DefaultBefore) || name != "ssekit@"+DefaultBefore {
		t.Fatalf("CanonicalName: %s, %s", name, full)
	}
	tmp := t.TempDir()
	servers, err := BuildServers(ctx, modDir, tmp, []string{name}, true)
	if err != nil {
		t.Fatal(err)
	}
	s := servers[0]
	if s.Commit != full || s.Info.Name != "ssekit" || !s.Info.Topics || s.CoreTest != "" {
		t.Errorf("built %+v", s)
	}
	out, err := exec.Command("git", "-C", repoRoot(modDir), "worktree", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), tmp) {
		t.Errorf("a worktree is left in %s:\n%s", tmp, out)
	}
	r := storeMem(ctx, &Options{}, s)
	if r.Error != "" || r.Store == nil || len(r.Store.Cases) != 3 || r.Store.Cases[0].Retained != 4096 {
		t.Errorf("store of %s: %+v %s", DefaultBefore, r.Store, r.Error)
	}
}

// TestScaleReport renders the scale section from two builds' results:
// before and after columns, and their ratio.
func TestScaleReport(t *testing.T) {
	pl := FullPlan()
	rep := &Report{Plan: pl, Env: map[string]string{},
		Servers: []ServerInfo{{Name: "ssekit"}, {Name: "naive"}, {Name: "ssekit@b78c6c4", Commit: "b78c6c4d"}}}
	rep.Results = []Result{
		{Server: "ssekit", Scenario: ScIdle, RSSPerConnKiB: 27},
		{Server: "naive", Scenario: ScIdle, RSSPerConnKiB: 26},
		{Server: "ssekit@b78c6c4", Scenario: ScNotify, Notify: &NotifyResult{Reconnect: 5000, ResetClients: 5000,
			Resets: map[string]int{"evicted": 5000}, StormCPUPct: 100, LiveP99Ms: 200}},
		{Server: "ssekit", Scenario: ScNotify, Notify: &NotifyResult{Reconnect: 5000, Resumed: 5000, StormCPUPct: 80,
			LiveP99Ms: 100, ResumeP50Ms: 2500, ReplayCPUUs: 3}},
		{Server: "ssekit@b78c6c4", Scenario: ScHotChurn, Churn: &ChurnResult{ConnectP99Ms: 900}},
		{Server: "ssekit", Scenario: ScHotChurn, Churn: &ChurnResult{ConnectP99Ms: 300}},
	}
	md := Markdown(rep, Links{JSON: "x.json", README: "r.md"})
	for _, want := range []string{
		"| | before: ssekit@b78c6c4 | after: ssekit (this tree) | after ÷ before |",
		"| **resumed without a reset** | **0 of 5 000** | **5 000 of 5 000** | |",
		"| resets, by reason | evicted: 5 000 | none | |",
		"| storm: server CPU, % of one core | 100 % | 80 % | 0.80 |",
		"| **connect latency p99 ms** | 900 | 300 | 0.33 |",
		"| ssekit@b78c6c4 |  | notify, hotchurn |",
		"| naive |  | all |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("no line %q in:\n%s", want, md)
		}
	}
}
