// Package runner runs the benchmark scenarios: it builds every server in
// bench/servers, starts each as a child process per scenario, drives it
// with the load generator, and writes the results (JSON, a markdown report
// and a plot).
package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options configures Run.
type Options struct {
	ModDir      string   // the bench module; found from the working directory when empty
	Servers     []string // servers to run; all directories under servers/ when empty
	Scenarios   []string // scenarios to run; all when empty
	Plan        Plan
	Quick       bool
	Workers     int // generator epoll goroutines
	SourceAddrs int // spread client connections over 127.0.0.1..127.0.0.N
	Timeout     time.Duration
	Log         io.Writer // progress; os.Stderr when nil
	// Before is the commit whose core the scale scenarios compare this
	// tree's with: when the runner picks the servers and runs a scale
	// scenario, it adds "ssekit@<Before>" (see worktree.go). "" for none.
	Before string
}

// Run builds the servers and runs the scenarios. Scenarios left when
// Timeout expires are recorded as skipped.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Workers == 0 {
		o.Workers = 2
	}
	if o.SourceAddrs == 0 {
		o.SourceAddrs = 4
	}
	if o.ModDir == "" {
		dir, err := ModuleDir()
		if err != nil {
			return nil, err
		}
		o.ModDir = dir
	}
	all, err := ServerNames(o.ModDir)
	if err != nil {
		return nil, err
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = Scenarios
	}
	for _, sc := range o.Scenarios {
		if !slices.Contains(Scenarios, sc) {
			return nil, fmt.Errorf("no scenario %q (have %s)", sc, strings.Join(Scenarios, ", "))
		}
	}
	// The plan's per-server scenario selection applies to the servers the
	// runner picks; servers named explicitly run every scenario asked for.
	picked := len(o.Servers) == 0
	if picked {
		o.Servers = serverOrder(all)
		scale := slices.ContainsFunc(o.Scenarios, func(sc string) bool { return slices.Contains(ScaleScenarios, sc) })
		if scale && o.Before != "" {
			o.Servers = append(o.Servers, "ssekit@"+o.Before)
		}
	}
	for i, n := range o.Servers {
		canon, _, err := CanonicalName(ctx, o.ModDir, n)
		if err != nil {
			return nil, err
		}
		o.Servers[i] = canon
		if base, _, _ := splitAt(canon); !slices.Contains(all, base) {
			return nil, fmt.Errorf("no server %q under servers/ (have %s)", base, strings.Join(all, ", "))
		}
	}
	o.Servers = serverOrder(o.Servers)
	if picked {
		// Build only the servers that run something.
		o.Servers = slices.DeleteFunc(o.Servers, func(n string) bool {
			return !slices.ContainsFunc(o.Scenarios, func(sc string) bool { return o.Plan.Runs(n, sc) })
		})
	}
	limit, err := RaiseNoFile()
	if err != nil {
		return nil, fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
	}
	need := max(o.Plan.IdleConns, o.Plan.StormConns, o.Plan.SteadySubs, slices.Max(append(o.Plan.FanoutSubs, 0)),
		o.Plan.NotifyStreams, o.Plan.HotSubs+int(o.Plan.HotChurn*o.Plan.HotHoldSeconds)) + 200
	if limit < uint64(need) {
		return nil, fmt.Errorf("open-file limit %d is below the %d this plan needs; raise the hard limit (ulimit -Hn)", limit, need)
	}

	rep := &Report{Started: time.Now().UTC(), Quick: o.Quick, Plan: o.Plan, Env: environment(limit, &o),
		Generator: fmt.Sprintf("epoll, %d workers, %d source addresses, 16 KiB read buffer per worker", o.Workers, o.SourceAddrs)}
	tmp, err := os.MkdirTemp("", "ssekit-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(o.Log, "building %s\n", strings.Join(o.Servers, ", "))
	t0 := time.Now()
	servers, err := BuildServers(ctx, o.ModDir, tmp, o.Servers, slices.Contains(o.Scenarios, ScStore))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "built in %.1fs\n", time.Since(t0).Seconds())
	for _, s := range servers {
		rep.Servers = append(rep.Servers, ServerInfo{Name: s.Name, Delivers: s.Info.Delivers, Resume: s.Info.Resume, Notes: s.Info.Notes, Commit: s.Commit})
	}

	if la, err := strconv.ParseFloat(rep.Env["loadavg_start"], 64); err == nil && la > 1.5 {
		fmt.Fprintf(o.Log, "warning: load average %.1f: other work is running, results will be noisy\n", la)
	}
	start := time.Now()
	runCtx := ctx
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	for _, sc := range o.Scenarios {
		for _, s := range servers {
			if picked && !o.Plan.Runs(s.Name, sc) {
				// The scale scenarios' servers are named in their own
				// section; the others' selection is listed per table.
				_, _, at := splitAt(s.Name)
				if !at && !slices.Contains(ScaleScenarios, sc) {
					rep.Results = append(rep.Results, Result{Server: s.Name, Scenario: sc, Skipped: SkipNotSelected})
				}
				continue
			}
			if runCtx.Err() != nil {
				rep.Results = append(rep.Results, Result{Server: s.Name, Scenario: sc, Skipped: "run timeout"})
				continue
			}
			t := time.Now()
			rs := runScenario(runCtx, &o, sc, s)
			for _, r := range rs {
				rep.Results = append(rep.Results, r)
				fmt.Fprintf(o.Log, "%-8s %-7s %s\n", sc, s.Name, summary(&r))
			}
			fmt.Fprintf(o.Log, "%-8s %-7s %.1fs\n", sc, s.Name, time.Since(t).Seconds())
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.Env["loadavg_end"] = loadAvg()
	return rep, nil
}

// SkipNotSelected is the Skipped reason of a scenario that the plan's
// ServerScenarios leaves out for a server.
const SkipNotSelected = "left out by the scenario selection"

// serverOrder puts the known servers first, in the report's order, and
// any new one after them; a server built at another commit
// ("ssekit@b78c6c4") comes right before the server it is a build of, so
// that every scenario runs "before", then "after".
func serverOrder(names []string) []string {
	known := slices.Concat([]string{"ssekit", "ssekit-detached"}, routerAdapters, []string{"naive", "r3labs", "gosse", "gin", "bare"})
	var out []string
	add := func(n string) {
		for _, a := range names {
			if base, _, at := splitAt(a); at && base == n && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		if slices.Contains(names, n) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, k := range known {
		add(k)
	}
	for _, n := range names {
		base, _, _ := splitAt(n)
		add(base)
	}
	return out
}

func environment(limit uint64, o *Options) map[string]string {
	env := map[string]string{
		"go":         runtime.Version(),
		"goos":       runtime.GOOS + "/" + runtime.GOARCH,
		"cpus":       fmt.Sprint(runtime.NumCPU()),
		"nofile":     fmt.Sprint(limit),
		"gomaxprocs": fmt.Sprint(runtime.GOMAXPROCS(0)),
	}
	env["loadavg_start"] = loadAvg()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		env["kernel"] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				env["cpu"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if out, err := exec.Command("git", "-C", o.ModDir, "rev-parse", "--short", "HEAD").Output(); err == nil {
		env["commit"] = strings.TrimSpace(string(out))
	}
	return env
}

// summary is the progress line of a result.
func summary(r *Result) string {
	switch {
	case r.Skipped != "":
		return "skipped: " + r.Skipped
	case r.Error != "" && r.Deliveries == 0:
		return "error: " + r.Error
	}
	var s string
	switch r.Scenario {
	case ScIdle:
		s = fmt.Sprintf("n=%d rss/conn=%.1fKiB goroutines/conn=%.2f", r.Conns, r.RSSPerConnKiB, r.GoroutinesPerConn)
	case ScStorm:
		s = fmt.Sprintf("n=%d open in %.2fs failed=%d", r.Conns, r.OpenSec, r.Failed)
	case ScMaxRate:
		s = fmt.Sprintf("n=%d sustained %g ev/s (%.0f deliveries/s) stop: %s", r.Conns, r.SustainedRate, r.SustainedDeliv, r.StopReason)
	case ScResume:
		s = fmt.Sprintf("n=%d delivered=%d losses=%d dups=%d other=%d catch-up p99=%.0fms", r.Conns, r.Deliveries, r.Losses, r.Dups, r.Other, r.CatchP99)
	case ScNotify:
		if n := r.Notify; n != nil {
			s = fmt.Sprintf("n=%d storm: %d events (%d broadcast) cpu=%.0f%% live p99=%.0fms losses=%d closed=%d; resume: %d of %d without reset, resets=%v silent gaps=%d replayed=%d p50=%.0fms p99=%.0fms cpu=%.2fs (%.1fµs/event)",
				n.Streams, n.Published, n.Broadcast, n.StormCPUPct, n.LiveP99Ms, n.LiveExpected-n.LiveDelivered, n.StormClosed,
				n.Resumed, n.Reconnect, n.Resets, n.SilentGaps, n.Replayed, n.ResumeP50Ms, n.ResumeP99Ms, n.ResumeCPUSec, n.ReplayCPUUs)
		}
	case ScHotChurn:
		if c := r.Churn; c != nil {
			s = fmt.Sprintf("n=%d %g ev/s delivered=%d losses=%d closed=%d p50=%.1fms p99=%.1fms; churn %d connects (%d failed) connect p50=%.2fms p99=%.2fms; Stats p99=%.0fµs cpu=%.0f%%",
				r.Conns, r.Rate, r.Deliveries, r.Losses, r.Disconnects, r.P50Ms, r.P99Ms, c.Connects, c.Failed, c.ConnectP50Ms, c.ConnectP99Ms, c.StatsP99Us, c.ServerCPUPct)
		}
	case ScStore:
		if st := r.Store; st != nil {
			for _, c := range st.Cases {
				s += fmt.Sprintf("%s: %d kept, %.1f MiB, %.0f B/kept; ", c.Case, c.Retained, float64(c.HeapBytes)/(1<<20), c.BytesPerRetained)
			}
			if st.CoreNote != "" {
				s += st.CoreNote
			}
		}
	default:
		s = fmt.Sprintf("n=%d stalled=%d delivered=%d losses=%d %.0f/s p50=%.1fms p99=%.1fms max=%.1fms cpu/M=%.2fs gen=%.0f%%",
			r.Conns, r.Stalled, r.Deliveries, r.Losses, r.DeliveriesSec, r.P50Ms, r.P99Ms, r.MaxMs, r.CPUPerMillionSec, r.GenCPUPercent)
		if r.PublishBlocked {
			s += " PUBLISHER BLOCKED"
		}
	}
	if r.Error != "" {
		s += " (error: " + r.Error + ")"
	}
	return s
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// loadAvg returns the 1-minute load average, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// ReadJSON reads a results file written by WriteJSON.
func ReadJSON(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &rep, nil
}

// Merge puts the results of part, a run of some scenarios, into base: they
// replace base's results of those scenarios, part's servers and its plan
// of the scale scenarios are added, and part is listed in base.Parts. It
// is how a run of a few scenarios updates the published report without
// rerunning the others (cmd/run -merge).
func Merge(base, part *Report) error {
	if base.Quick != part.Quick {
		return fmt.Errorf("cannot merge a quick run and a full one")
	}
	var scenarios []string
	for _, r := range part.Results {
		if !slices.Contains(scenarios, r.Scenario) {
			scenarios = append(scenarios, r.Scenario)
		}
	}
	base.Results = slices.DeleteFunc(base.Results, func(r Result) bool { return slices.Contains(scenarios, r.Scenario) })
	base.Results = append(base.Results, part.Results...)
	var servers []string
	for _, s := range part.Servers {
		servers = append(servers, s.Name)
		i := slices.IndexFunc(base.Servers, func(b ServerInfo) bool { return b.Name == s.Name })
		if i < 0 {
			base.Servers = append(base.Servers, s)
		}
	}
	base.Plan.setScale(&part.Plan)
	base.Parts = slices.DeleteFunc(base.Parts, func(p Part) bool {
		return !slices.ContainsFunc(p.Scenarios, func(sc string) bool { return !slices.Contains(scenarios, sc) })
	})
	base.Parts = append(base.Parts, Part{Started: part.Started, Quick: part.Quick, Seconds: part.Seconds, Env: part.Env,
		Scenarios: scenarios, Servers: servers})
	return nil
}
