package runner

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// scaleRow is one line of a scale table: a value per server, or a text.
type scaleRow struct {
	label string
	val   func(*Result) (float64, bool)
	text  func(*Result) string // instead of val
	fmt   func(float64) string
	ratio bool // show after ÷ before
}

// scaleSection writes "Scale inside one process": the notify, hotchurn and
// store scenarios, one column per server that ran them (the builds at
// other commits, "before", first), and the ratio of the last to the first
// when there are two.
func scaleSection(rep *Report, w func(string, ...any)) {
	pl := &rep.Plan
	var servers []string
	for _, s := range rep.Servers {
		for _, sc := range ScaleScenarios {
			if rep.find(s.Name, sc, nil) != nil && !slices.Contains(servers, s.Name) {
				servers = append(servers, s.Name)
			}
		}
	}
	if len(servers) == 0 {
		return
	}
	// Builds at another commit first: "before".
	slices.SortStableFunc(servers, func(a, b string) int {
		_, _, atA := splitAt(a)
		_, _, atB := splitAt(b)
		switch {
		case atA && !atB:
			return -1
		case atB && !atA:
			return 1
		}
		return 0
	})
	ratio := len(servers) == 2
	head := func(name string) string {
		if _, _, at := splitAt(name); at {
			return "before: " + name
		}
		if len(servers) > 1 {
			return "after: " + name + " (this tree)"
		}
		return name
	}
	table := func(sc string, rows []scaleRow) {
		w("| |")
		for _, s := range servers {
			w(" %s |", head(s))
		}
		if ratio {
			w(" after ÷ before |")
		}
		w("\n|---|")
		for range servers {
			w("---:|")
		}
		if ratio {
			w("---:|")
		}
		w("\n")
		results := make([]*Result, len(servers))
		for i, s := range servers {
			results[i] = rep.find(s, sc, nil)
		}
		for _, row := range rows {
			w("| %s |", row.label)
			vals := make([]float64, len(servers))
			oks := make([]bool, len(servers))
			for i, r := range results {
				switch {
				case r == nil:
					w(" – |")
				case row.text != nil:
					w(" %s |", row.text(r))
				default:
					vals[i], oks[i] = row.val(r)
					if oks[i] {
						w(" %s |", row.fmt(vals[i]))
					} else {
						w(" – |")
					}
				}
			}
			if ratio {
				if row.ratio && oks[0] && oks[1] && vals[0] != 0 {
					w(" %s |", ratioText(vals[1]/vals[0]))
				} else {
					w(" |")
				}
			}
			w("\n")
		}
		w("\n")
		var failed []string
		for i, r := range results {
			if r == nil {
				for _, x := range rep.Results {
					if x.Server == servers[i] && x.Scenario == sc && (x.Error != "" || x.Skipped != "") {
						failed = append(failed, fmt.Sprintf("%s: %s%s", x.Server, x.Error, x.Skipped))
					}
				}
			}
		}
		if len(failed) > 0 {
			w("No result: %s.\n\n", strings.ReplaceAll(strings.Join(failed, "; "), "|", "/"))
		}
	}

	w("## Scale inside one process\n\n")
	for _, p := range rep.Parts {
		if slices.ContainsFunc(p.Scenarios, func(sc string) bool { return slices.Contains(ScaleScenarios, sc) }) {
			w("These results come from a separate run of %s on %s (%.0f s, commit %s, load average %s at its start and %s at its end),\n",
				strings.Join(p.Scenarios, ", "), p.Started.Format(time.DateOnly), p.Seconds, orDash(p.Env["commit"]),
				orDash(p.Env["loadavg_start"]), orDash(p.Env["loadavg_end"]))
			w("merged into this report (`cmd/run -merge`).\n")
		}
	}
	w("The ssekit server (default `Options`, topics from `?topic=`), built twice in the same run: **before**, this bench's\n")
	w("server code on the core of an earlier commit (`ssekit@<commit>`, built from a temporary `git worktree`; `-before`\n")
	w("picks the commit), and **after**, on this tree's core. Same machine, same generator, one after the other.\n")
	w("Ratios are after ÷ before: below 1 is less time, memory or CPU (and, for kept events, fewer).\n")
	busiest := 0.0
	for _, r := range rep.Results {
		switch {
		case r.Notify != nil && slices.Contains(servers, r.Server):
			busiest = max(busiest, r.Notify.OtherCPUPct)
		case r.Churn != nil && slices.Contains(servers, r.Server):
			busiest = max(busiest, r.OtherCPUPercent)
		}
	}
	if busiest > 25 {
		w("**Other processes used up to %.0f %% of a core during these scenarios** (the \"other\" rows): their latencies,\n", busiest)
		w("CPU shares and ratios say more about that load than about the builds. The counts (resumed, resets, gaps,\n")
		w("losses, kept events) and the store's memory do not depend on it.\n")
	}
	w("\n")

	pct := func(v float64) string { return fmt.Sprintf("%.0f %%", v) }
	msf := func(v float64) string { return f1(v) }
	cnt := func(v float64) string { return numZero(v) }
	if hasAny(rep, servers, ScNotify) {
		n := pl.NotifyStreams
		w("### Notification feed: a resume storm\n\n")
		w("%s streams, stream *i* on the topics `user/i` and `broadcast` (`GET /events?topic=user/i&topic=broadcast`).\n", num(float64(n)))
		w("For %g s the server publishes %s events/s of %d bytes: one in %d to `broadcast`, each of the others to\n",
			pl.NotifySeconds, num(pl.NotifyRate), pl.NotifySize, pl.NotifyBroadcastEvery)
		w("`user/k` with *k* from a hash of its sequence number (so each user gets about %.2f events/s, and `broadcast` %.1f/s,\n",
			pl.NotifyRate*(1-1/float64(max(pl.NotifyBroadcastEvery, 1)))/float64(n), pl.NotifyRate/float64(max(pl.NotifyBroadcastEvery, 1)))
		w("%s deliveries/s to all streams). %g s before the end every client keeps the last event ID it has. When\n",
			num(pl.NotifyRate/float64(max(pl.NotifyBroadcastEvery, 1))*float64(n)+pl.NotifyRate), pl.NotifyBackSeconds)
		w("delivery is over, %s of the streams (every other one) disconnect and reconnect at once with those IDs.\n", num(float64(pl.NotifyReconnect)))
		w("The server logs the ID and topic of every event it publishes (`GET /debug/published`); each returning client is\n")
		w("owed exactly the events of its two topics after its ID, and the generator checks what arrives against that list.\n")
		w("A client **resumed** when it got every owed event, in order, and no reset (`sse-reset`); a **silent gap** is an\n")
		w("owed event that a client without a reset never got. Resume latency: from the client's connect to its last owed\n")
		w("event. Replay CPU: the server's CPU from the reconnect until the last client was done, per replayed event.\n\n")
		get := func(f func(*NotifyResult) float64) func(*Result) (float64, bool) {
			return func(r *Result) (float64, bool) {
				if r.Notify == nil {
					return 0, false
				}
				return f(r.Notify), true
			}
		}
		positive := func(f func(*NotifyResult) float64) func(*Result) (float64, bool) {
			return func(r *Result) (float64, bool) {
				if r.Notify == nil || f(r.Notify) <= 0 {
					return 0, false
				}
				return f(r.Notify), true
			}
		}
		table(ScNotify, []scaleRow{
			{label: "storm: events published (to `broadcast`)", text: func(r *Result) string {
				if r.Notify == nil {
					return "–"
				}
				return fmt.Sprintf("%s (%s)", num(float64(r.Notify.Published)), num(float64(r.Notify.Broadcast)))
			}},
			{label: "storm: publisher reached, events/s", val: get(func(n *NotifyResult) float64 { return n.PublishRate }), fmt: num},
			{label: "storm: server CPU, % of one core", val: get(func(n *NotifyResult) float64 { return n.StormCPUPct }), fmt: pct, ratio: true},
			{label: "storm: generator CPU, % of one core", val: get(func(n *NotifyResult) float64 { return n.GenCPUPct }), fmt: pct},
			{label: "storm: other processes' CPU, % of one core", val: get(func(n *NotifyResult) float64 { return n.OtherCPUPct }), fmt: pct},
			{label: "storm: publish → delivery p50 ms", val: get(func(n *NotifyResult) float64 { return n.LiveP50Ms }), fmt: msf, ratio: true},
			{label: "storm: publish → delivery p99 ms", val: get(func(n *NotifyResult) float64 { return n.LiveP99Ms }), fmt: msf, ratio: true},
			{label: "storm: deliveries lost (of owed)", text: func(r *Result) string {
				if r.Notify == nil {
					return "–"
				}
				return fmt.Sprintf("%s of %s", numZero(float64(r.Notify.LiveExpected-r.Notify.LiveDelivered)), num(float64(r.Notify.LiveExpected)))
			}},
			{label: "storm: streams the server closed", val: get(func(n *NotifyResult) float64 { return float64(n.StormClosed) }), fmt: cnt},
			{label: "server RSS after the storm, MiB", val: get(func(n *NotifyResult) float64 { return float64(n.RSSKiB) / 1024 }), fmt: f1, ratio: true},
			{label: "server Go heap after the storm, MiB", val: get(func(n *NotifyResult) float64 { return float64(n.HeapKiB) / 1024 }), fmt: f1, ratio: true},
			{label: "**resumed without a reset**", text: func(r *Result) string {
				if r.Notify == nil {
					return "–"
				}
				return fmt.Sprintf("**%s of %s**", numZero(float64(r.Notify.Resumed)), num(float64(r.Notify.Reconnect)))
			}},
			{label: "resets, by reason", text: func(r *Result) string {
				if r.Notify == nil || len(r.Notify.Resets) == 0 {
					return "none"
				}
				var parts []string
				for _, k := range slices.Sorted(maps.Keys(r.Notify.Resets)) {
					parts = append(parts, fmt.Sprintf("%s: %s", orDash(k), num(float64(r.Notify.Resets[k]))))
				}
				return strings.Join(parts, ", ")
			}},
			{label: "**silent gaps** (owed events missing, no reset)", val: get(func(n *NotifyResult) float64 { return float64(n.SilentGaps) }), fmt: cnt},
			{label: "owed events not sent after a reset", val: get(func(n *NotifyResult) float64 { return float64(n.MissedAfterReset) }), fmt: cnt},
			{label: "events not owed (or twice)", val: get(func(n *NotifyResult) float64 { return float64(n.Unexpected) }), fmt: cnt},
			{label: "failed reconnects", val: get(func(n *NotifyResult) float64 { return float64(n.FailedConnects) }), fmt: cnt},
			{label: "events replayed (of owed)", text: func(r *Result) string {
				if r.Notify == nil {
					return "–"
				}
				return fmt.Sprintf("%s of %s", numZero(float64(r.Notify.Replayed)), num(float64(r.Notify.ReplayExpected)))
			}},
			{label: "resume latency p50 ms", val: positive(func(n *NotifyResult) float64 { return n.ResumeP50Ms }), fmt: msf, ratio: true},
			{label: "resume latency p99 ms", val: positive(func(n *NotifyResult) float64 { return n.ResumeP99Ms }), fmt: msf, ratio: true},
			{label: "resume latency max ms", val: positive(func(n *NotifyResult) float64 { return n.ResumeMaxMs }), fmt: msf, ratio: true},
			{label: "resume: server CPU s", val: get(func(n *NotifyResult) float64 { return n.ResumeCPUSec }), fmt: func(v float64) string { return fmt.Sprintf("%.2f", v) }},
			{label: "resume: server CPU µs per replayed event", val: positive(func(n *NotifyResult) float64 { return n.ReplayCPUUs }), fmt: f1},
		})
	}

	if hasAny(rep, servers, ScHotChurn) {
		w("### A hot topic under connection churn\n\n")
		w("%s streams on the topic `hot` receive %g events/s of %d bytes for %g s (%s deliveries/s) while other clients of `hot`\n",
			num(float64(pl.HotSubs)), pl.HotRate, pl.EventSize, pl.HotSeconds, num(pl.HotRate*float64(pl.HotSubs)))
		w("connect at %g per second, each disconnecting %g s after its response head: every connect and disconnect registers or\n", pl.HotChurn, pl.HotHoldSeconds)
		w("unregisters a subscriber of the topic being fanned out. Connect latency is the churning clients' time from\n")
		w("sending the request to receiving the response head (the hub registers the stream before the head). Every\n")
		w("50 ms the runner asks the server to time a `Hub.Stats()` call and a `Hub.Subscribers(\"hot\")` call\n")
		w("(`GET /debug/hub`; an older core without `Subscribers` leaves that row empty).\n\n")
		get := func(f func(*Result) float64) func(*Result) (float64, bool) {
			return func(r *Result) (float64, bool) {
				if r.Churn == nil {
					return 0, false
				}
				return f(r), true
			}
		}
		positive := func(f func(*Result) float64) func(*Result) (float64, bool) {
			return func(r *Result) (float64, bool) {
				if r.Churn == nil || f(r) <= 0 {
					return 0, false
				}
				return f(r), true
			}
		}
		us := func(v float64) string {
			if v < 1 {
				return fmt.Sprintf("%.2f", v)
			}
			return f1(v)
		}
		table(ScHotChurn, []scaleRow{
			{label: "hot topic: deliveries (lost)", text: func(r *Result) string {
				return fmt.Sprintf("%s (%s)", num(float64(r.Deliveries)), numZero(float64(r.Losses)))
			}},
			{label: "hot topic: streams the server closed", val: get(func(r *Result) float64 { return float64(r.Disconnects) }), fmt: cnt},
			{label: "publisher", text: func(r *Result) string { return publisher(r, pl.GraceSeconds) }},
			{label: "publish → delivery p50 ms", val: get(func(r *Result) float64 { return r.P50Ms }), fmt: msf, ratio: true},
			{label: "publish → delivery p99 ms", val: get(func(r *Result) float64 { return r.P99Ms }), fmt: msf, ratio: true},
			{label: "publish → delivery max ms", val: get(func(r *Result) float64 { return r.MaxMs }), fmt: msf, ratio: true},
			{label: "churn: connects answered (failed)", text: func(r *Result) string {
				if r.Churn == nil {
					return "–"
				}
				return fmt.Sprintf("%s (%s)", num(float64(r.Churn.Connects)), numZero(float64(r.Churn.Failed)))
			}},
			{label: "**connect latency p50 ms**", val: get(func(r *Result) float64 { return r.Churn.ConnectP50Ms }), fmt: msf, ratio: true},
			{label: "**connect latency p99 ms**", val: get(func(r *Result) float64 { return r.Churn.ConnectP99Ms }), fmt: msf, ratio: true},
			{label: "connect latency max ms", val: get(func(r *Result) float64 { return r.Churn.ConnectMaxMs }), fmt: msf, ratio: true},
			{label: "probes", val: get(func(r *Result) float64 { return float64(r.Churn.Probes) }), fmt: cnt},
			{label: "`Hub.Stats()` p50 µs", val: positive(func(r *Result) float64 { return r.Churn.StatsP50Us }), fmt: us, ratio: true},
			{label: "`Hub.Stats()` p99 µs", val: positive(func(r *Result) float64 { return r.Churn.StatsP99Us }), fmt: us, ratio: true},
			{label: "`Hub.Stats()` max µs", val: positive(func(r *Result) float64 { return r.Churn.StatsMaxUs }), fmt: us, ratio: true},
			{label: "`Hub.Subscribers()` p50 µs", val: positive(func(r *Result) float64 { return r.Churn.SubsP50Us }), fmt: us, ratio: true},
			{label: "`Hub.Subscribers()` p99 µs", val: positive(func(r *Result) float64 { return r.Churn.SubsP99Us }), fmt: us, ratio: true},
			{label: "`Hub.Subscribers()` max µs", val: positive(func(r *Result) float64 { return r.Churn.SubsMaxUs }), fmt: us, ratio: true},
			{label: "server CPU, % of one core", val: get(func(r *Result) float64 { return r.Churn.ServerCPUPct }), fmt: pct, ratio: true},
			{label: "server CPU s per M deliveries", val: get(func(r *Result) float64 { return r.CPUPerMillionSec }), fmt: f1, ratio: true},
			{label: "other CPU, % of one core", val: get(func(r *Result) float64 { return r.OtherCPUPercent }), fmt: pct},
		})
	}

	if hasAny(rep, servers, ScStore) {
		w("### Store memory\n\n")
		w("The server binary of each build, started with `BENCH_STOREMEM=<case>`, fills a `MemoryStore` with default options\n")
		w("through the `Store` interface (a fresh copy of each event, as publishes give it) and reports the Go heap's growth\n")
		w("after GC. *Kept* events are counted from outside: the lowest position `After` resumes from without\n")
		w("`ErrEvicted` (both stores drop the oldest events first in these fills). Cases: **events**, 100 000\n")
		w("notifications (89 bytes of JSON, type `notification`) in 1000 topics; **topics**, 500 000 of them in 100 000\n")
		w("topics (5 each); **bound**, 2 000 000 events of 1 KiB in 100 000 topics. The default `MaxBytes` is 64 MiB\n")
		w("(67.1 MB): a heap ÷ 64 MiB above 1 means the store held more than its bound. The store before has no byte\n")
		w("bound, only its 4096 events. Append times are not like for like: the per-topic store encodes each event's frame\n")
		w("in `Append` (and keeps that copy), which the hub did before.\n\n")
		caseVal := func(name string, f func(*StoreCase) float64) func(*Result) (float64, bool) {
			return func(r *Result) (float64, bool) {
				if r.Store == nil {
					return 0, false
				}
				for i := range r.Store.Cases {
					if c := &r.Store.Cases[i]; c.Case == name {
						return f(c), true
					}
				}
				return 0, false
			}
		}
		kept := func(c *StoreCase) float64 { return float64(c.Retained) }
		heap := func(c *StoreCase) float64 { return float64(c.HeapBytes) / (1 << 20) }
		per := func(c *StoreCase) float64 { return c.BytesPerRetained }
		share := func(c *StoreCase) float64 { return float64(max(c.HeapBytes, c.PeakHeapBytes)) / (64 << 20) }
		appendNS := func(c *StoreCase) float64 { return c.AppendNS }
		ratioFmt := func(v float64) string { return fmt.Sprintf("%.3f", v) }
		table(ScStore, []scaleRow{
			{label: "events: kept (of 100 000)", val: caseVal("events", kept), fmt: cnt, ratio: true},
			{label: "events: heap MiB", val: caseVal("events", heap), fmt: f1, ratio: true},
			{label: "**events: bytes per kept event**", val: caseVal("events", per), fmt: f1, ratio: true},
			{label: "events: Append ns", val: caseVal("events", appendNS), fmt: f1, ratio: true},
			{label: "topics: kept (of 500 000)", val: caseVal("topics", kept), fmt: cnt, ratio: true},
			{label: "**topics: heap MiB at 100 000 topics**", val: caseVal("topics", heap), fmt: f1, ratio: true},
			{label: "topics: bytes per kept event", val: caseVal("topics", per), fmt: f1, ratio: true},
			{label: "topics: heap ÷ 64 MiB", val: caseVal("topics", share), fmt: ratioFmt},
			{label: "bound: kept (of 2 000 000)", val: caseVal("bound", kept), fmt: cnt, ratio: true},
			{label: "bound: heap MiB (largest of 4 samples)", val: caseVal("bound", func(c *StoreCase) float64 {
				return float64(max(c.HeapBytes, c.PeakHeapBytes)) / (1 << 20)
			}), fmt: f1, ratio: true},
			{label: "**bound: heap ÷ 64 MiB**", val: caseVal("bound", share), fmt: ratioFmt},
			{label: "bound: Append ns", val: caseVal("bound", appendNS), fmt: f1, ratio: true},
		})
		for _, s := range servers {
			r := rep.find(s, ScStore, nil)
			if r == nil || r.Store == nil {
				continue
			}
			if len(r.Store.CoreBench) == 0 {
				if r.Store.CoreNote != "" {
					w("%s: %s.\n\n", s, r.Store.CoreNote)
				}
				continue
			}
			w("The core's own `BenchmarkMemoryStoreMemory` (`go test -run '^$' -bench BenchmarkMemoryStoreMemory -benchtime 1x ./sse`\n")
			w("in `core/`) on the core of %s, which reads the store's internal counts:\n\n", s)
			w("| sub-benchmark | metrics |\n|---|---|\n")
			for _, sub := range slices.Sorted(maps.Keys(r.Store.CoreBench)) {
				m := r.Store.CoreBench[sub]
				var parts []string
				for _, unit := range slices.Sorted(maps.Keys(m)) {
					if unit == "ns/op" {
						continue
					}
					parts = append(parts, fmt.Sprintf("%s %s", trimFloat(m[unit]), unit))
				}
				w("| %s | %s |\n", sub, strings.Join(parts, ", "))
			}
			w("\n")
		}
	}
}

func hasAny(rep *Report, servers []string, sc string) bool {
	return slices.ContainsFunc(servers, func(s string) bool { return rep.find(s, sc, nil) != nil })
}

// numZero is num that writes 0 as "0".
func numZero(v float64) string {
	if v == 0 {
		return "0"
	}
	return num(v)
}

func ratioText(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
