package runner

import (
	"fmt"
	"slices"
)

// peers are the other Go SSE libraries, the servers the targets compare
// ssekit with.
var peers = []string{"r3labs", "gosse", "gin"}

// find returns the first result of server in scenario sc that ran without
// error and that match (nil: any) accepts, or nil.
func (rep *Report) find(server, sc string, match func(*Result) bool) *Result {
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.Server == server && r.Scenario == sc && r.Skipped == "" && r.Error == "" && (match == nil || match(r)) {
			return r
		}
	}
	return nil
}

// targetSummary writes the project's performance targets with where each
// server of ssekit stands in this run, as ratios to the baseline the
// target names. A target whose results are missing is left out.
func targetSummary(rep *Report, w func(string, ...any)) {
	find := rep.find
	conns := func(n int) func(*Result) bool { return func(r *Result) bool { return r.Conns == n } }
	stalled := func(n int) func(*Result) bool { return func(r *Result) bool { return r.Stalled == n } }
	ours := []string{"ssekit", "ssekit-detached"}
	type row struct{ target, server, result, baseline, ratio, verdict string }
	var rows []row
	add := func(target, server string, v, base float64, baseName, unit string, ok bool) {
		verdict := "short"
		if ok {
			verdict = "met"
		}
		rows = append(rows, row{target, server, fmt.Sprintf("%s %s", f1(v), unit), fmt.Sprintf("%s: %s %s", baseName, f1(base), unit),
			fmt.Sprintf("%.2f", v/base), verdict})
	}
	// best returns the peer with the highest value of f in sc.
	best := func(sc string, match func(*Result) bool, f func(*Result) float64) (string, float64) {
		name, v := "", 0.0
		for _, p := range peers {
			if r := find(p, sc, match); r != nil && f(r) > v {
				name, v = p, f(r)
			}
		}
		return name, v
	}

	sustained := func(r *Result) float64 { return r.SustainedDeliv }
	ranPeers := 0
	for _, p := range peers {
		if find(p, ScMaxRate, nil) != nil {
			ranPeers++
		}
	}
	if peer, pv := best(ScMaxRate, nil, sustained); pv > 0 {
		for _, s := range ours {
			if r := find(s, ScMaxRate, nil); r != nil {
				add("max sustainable deliveries/s ≥ 2× best peer", s, r.SustainedDeliv, pv, peer, "/s", r.SustainedDeliv >= 2*pv)
			}
		}
	} else if ranPeers > 0 && len(rep.Plan.MaxRateSteps) > 0 {
		for _, s := range ours {
			if r := find(s, ScMaxRate, nil); r != nil && r.SustainedDeliv > 0 {
				verdict := "met"
				rows = append(rows, row{"max sustainable deliveries/s ≥ 2× best peer", s, fmt.Sprintf("%s /s", f1(r.SustainedDeliv)),
					fmt.Sprintf("no peer sustained the first step (%s events/s)", num(rep.Plan.MaxRateSteps[0])), "–", verdict})
			}
		}
	}
	for _, n := range rep.Plan.FanoutSubs {
		m := conns(n)
		rate := func(r *Result) float64 { return r.DeliveriesSec }
		if peer, pv := best(ScFanout, m, rate); pv > 0 {
			for _, s := range ours {
				if r := find(s, ScFanout, m); r != nil {
					add(fmt.Sprintf("saturation, %d subscribers: deliveries/s ≥ fastest peer", n), s, r.DeliveriesSec, pv, peer, "/s", r.DeliveriesSec >= pv)
				}
			}
		}
		if nv := find("naive", ScFanout, m); nv != nil {
			for _, s := range ours {
				if r := find(s, ScFanout, m); r != nil {
					add(fmt.Sprintf("saturation, %d subscribers: CPU per M deliveries ≤ 0.5× naive", n), s, r.CPUPerMillionSec, nv.CPUPerMillionSec, "naive", "s", r.CPUPerMillionSec <= 0.5*nv.CPUPerMillionSec)
				}
			}
		}
	}
	if nv := find("naive", ScSteady, nil); nv != nil {
		for _, s := range ours {
			if r := find(s, ScSteady, nil); r != nil {
				add(fmt.Sprintf("moderate rate (%d × %g/s): CPU per M deliveries ≤ 1.05× naive", rep.Plan.SteadySubs, rep.Plan.SteadyRate), s,
					r.CPUPerMillionSec, nv.CPUPerMillionSec, "naive", "s", r.CPUPerMillionSec <= 1.05*nv.CPUPerMillionSec)
			}
		}
		for _, s := range ours {
			if r := find(s, ScSteady, nil); r != nil {
				add(fmt.Sprintf("p99 latency at %d subscribers ≤ naive", rep.Plan.SteadySubs), s, r.P99Ms, nv.P99Ms, "naive", "ms", r.P99Ms <= nv.P99Ms)
			}
		}
	}
	if bare := find("bare", ScIdle, nil); bare != nil {
		for _, s := range ours {
			if r := find(s, ScIdle, nil); r != nil {
				add("idle RSS per stream ≤ 1.1× bare blocking handler", s, r.RSSPerConnKiB, bare.RSSPerConnKiB, "bare", "KiB", r.RSSPerConnKiB <= 1.1*bare.RSSPerConnKiB)
			}
		}
	}
	if r := find("ssekit-detached", ScIdle, nil); r != nil {
		if a := find("ssekit", ScIdle, nil); a != nil {
			add("detached: idle RSS per stream ≤ 8 KiB", "ssekit-detached", r.RSSPerConnKiB, a.RSSPerConnKiB, "ssekit attached", "KiB", r.RSSPerConnKiB <= 8)
		}
	}
	if counts := rep.Plan.StalledCounts; len(counts) > 1 && counts[0] == 0 {
		most := slices.Max(counts)
		for _, s := range ours {
			base, worst := find(s, ScStalled, stalled(0)), find(s, ScStalled, stalled(most))
			if base == nil || worst == nil {
				continue
			}
			add(fmt.Sprintf("%d stalled clients: healthy p99 ≤ 1.2× none stalled, no healthy loss", most), s, worst.P99Ms, base.P99Ms,
				"none stalled", "ms", worst.P99Ms <= 1.2*base.P99Ms && worst.Losses == 0 && !worst.PublishBlocked)
		}
	}
	if len(rows) == 0 {
		return
	}
	w("## Targets\n\n")
	w("The project's performance targets, each against the baseline it names, measured in this run.\n")
	w("Ratios are this run's; on this machine they move by tens of percent between runs, more when other work\n")
	w("was running (see each table's other CPU %%), so a verdict near the line can go either way.\n\n")
	w("| target | server | result | baseline | ratio | verdict |\n|---|---|---:|---:|---:|---|\n")
	for _, r := range rows {
		w("| %s | %s | %s | %s | %s | %s |\n", r.target, r.server, r.result, r.baseline, r.ratio, r.verdict)
	}
	w("\n")
}
