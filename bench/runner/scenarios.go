package runner

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"
)

// Plan sizes every scenario.
type Plan struct {
	EventSize int `json:"event_size"` // data bytes of an event (all but the stalled scenario)

	// A phase ends when every stream has every event, or when no event
	// arrived for IdleSeconds after the publish request returned. A publish
	// request that has not returned GraceSeconds after its last event was
	// due counts as blocked.
	IdleSeconds  float64 `json:"idle_seconds"`
	GraceSeconds float64 `json:"grace_seconds"`

	IdleConns int `json:"idle_conns"`

	FanoutSubs   []int `json:"fanout_subs"`
	FanoutEvents []int `json:"fanout_events"` // per FanoutSubs entry; published as fast as possible

	MaxRateSubs  int       `json:"maxrate_subs"`
	MaxRateSteps []float64 `json:"maxrate_steps"` // events/s
	StepSeconds  float64   `json:"step_seconds"`
	MaxP99Ms     float64   `json:"max_p99_ms"`
	// StepOn keeps stepping past the first failure (for the plot) while
	// nothing is lost and p99 stays under a second.
	StepOn bool `json:"step_on"`

	SteadySubs    int     `json:"steady_subs"`
	SteadyRate    float64 `json:"steady_rate"`
	SteadySeconds float64 `json:"steady_seconds"`

	StalledHealthy int     `json:"stalled_healthy"`
	StalledCounts  []int   `json:"stalled_counts"`
	StalledRate    float64 `json:"stalled_rate"`
	StalledSeconds float64 `json:"stalled_seconds"`
	StalledSize    int     `json:"stalled_size"`

	StormConns int `json:"storm_conns"`

	ResumeClients int `json:"resume_clients"`
	ResumeFirst   int `json:"resume_first"` // events before the clients drop
	ResumeBack    int `json:"resume_back"`  // events published while they are away

	// The scale scenarios (ScaleScenarios) run, when the runner picks the
	// servers, against ScaleServers and against the servers built at
	// another commit ("ssekit@b78c6c4"), which run nothing else.
	ScaleServers []string `json:"scale_servers,omitempty"`

	// notify: NotifyStreams streams, stream i on the topics "user/i" and
	// "broadcast"; NotifyRate events/s for NotifySeconds, one in
	// NotifyBroadcastEvery to "broadcast", the others to a user topic
	// picked by a hash of the event's sequence number; each stream's last
	// event ID NotifyBackSeconds before the end is kept; then
	// NotifyReconnect of the streams (every other one) leave and come back
	// at once with those IDs.
	NotifyStreams        int     `json:"notify_streams,omitempty"`
	NotifyRate           float64 `json:"notify_rate,omitempty"`
	NotifySeconds        float64 `json:"notify_seconds,omitempty"`
	NotifyBackSeconds    float64 `json:"notify_back_seconds,omitempty"`
	NotifyReconnect      int     `json:"notify_reconnect,omitempty"`
	NotifyBroadcastEvery int     `json:"notify_broadcast_every,omitempty"`
	NotifySize           int     `json:"notify_size,omitempty"`

	// hotchurn: HotSubs streams on the topic "hot", HotRate events/s of
	// EventSize bytes for HotSeconds, while other clients of "hot" connect
	// at HotChurn per second, each leaving HotHoldSeconds after it
	// connected.
	HotSubs        int     `json:"hot_subs,omitempty"`
	HotRate        float64 `json:"hot_rate,omitempty"`
	HotSeconds     float64 `json:"hot_seconds,omitempty"`
	HotChurn       float64 `json:"hot_churn,omitempty"`
	HotHoldSeconds float64 `json:"hot_hold_seconds,omitempty"`

	// ServerScenarios limits the servers it names to the scenarios it
	// lists for them (in the plan's run order, whatever the order here);
	// servers it does not name run every scenario. It keeps the full run
	// within its time budget as servers are added. Run applies it only to
	// servers it picked itself: a server named in Options.Servers (the
	// -servers flag) runs every scenario asked for.
	ServerScenarios map[string][]string `json:"server_scenarios,omitempty"`
}

// routerAdapters are the servers of ssekit's router adapters, one per
// framework major, in the report's order.
var routerAdapters = []string{"ginsse", "echosse-v4", "echosse-v5", "chisse", "fibersse-v2", "fibersse-v3"}

// adapterScenarios is what the router adapters (routerAdapters) run: they
// serve the same Hub as the ssekit server, so the
// scenarios that measure the hub itself (maximum rate, stalled clients,
// connect storm, resume) would repeat ssekit's numbers at a cost of
// minutes. Idle memory, fan-out and the steady rate show what each router
// and HTTP stack adds per stream and per delivery.
var adapterScenarios = []string{ScIdle, ScFanout, ScSteady}

func adapterSelection() map[string][]string {
	m := make(map[string][]string)
	for _, a := range routerAdapters {
		m[a] = adapterScenarios
	}
	return m
}

// Runs reports whether the plan has server run scenario sc (before
// Options.Servers lifts the selection).
func (pl *Plan) Runs(server, sc string) bool {
	_, _, at := splitAt(server)
	if slices.Contains(ScaleScenarios, sc) {
		return at || slices.Contains(pl.ScaleServers, server)
	}
	if at {
		return false
	}
	only, ok := pl.ServerScenarios[server]
	return !ok || slices.Contains(only, sc)
}

// setScale copies the scale scenarios' sizes from o.
func (pl *Plan) setScale(o *Plan) {
	pl.ScaleServers = o.ScaleServers
	pl.NotifyStreams, pl.NotifyRate, pl.NotifySeconds = o.NotifyStreams, o.NotifyRate, o.NotifySeconds
	pl.NotifyBackSeconds, pl.NotifyReconnect = o.NotifyBackSeconds, o.NotifyReconnect
	pl.NotifyBroadcastEvery, pl.NotifySize = o.NotifyBroadcastEvery, o.NotifySize
	pl.HotSubs, pl.HotRate, pl.HotSeconds, pl.HotChurn, pl.HotHoldSeconds = o.HotSubs, o.HotRate, o.HotSeconds, o.HotChurn, o.HotHoldSeconds
	if pl.EventSize == 0 {
		pl.EventSize = o.EventSize
	}
}

// FullPlan is the published run: under 10 minutes on 2 cores.
func FullPlan() Plan {
	return Plan{
		EventSize:   256,
		IdleSeconds: 2, GraceSeconds: 5,
		IdleConns:    10000,
		FanoutSubs:   []int{1000, 5000},
		FanoutEvents: []int{1000, 400},
		MaxRateSubs:  2000,
		MaxRateSteps: []float64{50, 100, 200, 400, 800, 1600, 3200},
		StepSeconds:  2, MaxP99Ms: 100, StepOn: true,
		SteadySubs: 5000, SteadyRate: 10, SteadySeconds: 6,
		StalledHealthy: 200, StalledCounts: []int{0, 1, 10}, StalledRate: 100, StalledSeconds: 8, StalledSize: 16 << 10,
		StormConns:    10000,
		ResumeClients: 1000, ResumeFirst: 100, ResumeBack: 300,
		ServerScenarios: adapterSelection(),
		ScaleServers:    []string{"ssekit"},
		NotifyStreams:   10000, NotifyRate: 2000, NotifySeconds: 60, NotifyBackSeconds: 30, NotifyReconnect: 5000,
		NotifyBroadcastEvery: 200, NotifySize: 200,
		HotSubs: 10000, HotRate: 20, HotSeconds: 40, HotChurn: 200, HotHoldSeconds: 1,
	}
}

// QuickPlan is the smoke run: everything, small, under 2 minutes.
func QuickPlan() Plan {
	return Plan{
		EventSize:   256,
		IdleSeconds: 1, GraceSeconds: 2,
		IdleConns:    500,
		FanoutSubs:   []int{200, 1000},
		FanoutEvents: []int{200, 100},
		MaxRateSubs:  500,
		MaxRateSteps: []float64{100, 400, 1600, 6400},
		StepSeconds:  1, MaxP99Ms: 100,
		SteadySubs: 1000, SteadyRate: 20, SteadySeconds: 1.5,
		StalledHealthy: 50, StalledCounts: []int{0, 1, 10}, StalledRate: 50, StalledSeconds: 2, StalledSize: 64 << 10,
		StormConns:    1000,
		ResumeClients: 200, ResumeFirst: 50, ResumeBack: 300,
		ServerScenarios: adapterSelection(),
		ScaleServers:    []string{"ssekit"},
		NotifyStreams:   2000, NotifyRate: 1000, NotifySeconds: 9, NotifyBackSeconds: 6, NotifyReconnect: 1000,
		NotifyBroadcastEvery: 100, NotifySize: 200,
		HotSubs: 2000, HotRate: 50, HotSeconds: 8, HotChurn: 200, HotHoldSeconds: 1,
	}
}

// Scenario names, in run order.
const (
	ScIdle    = "idle"
	ScFanout  = "fanout"
	ScMaxRate = "maxrate"
	ScSteady  = "steady"
	ScStalled = "stalled"
	ScStorm   = "storm"
	ScResume  = "resume"

	// The scale scenarios (scale.go).
	ScNotify   = "notify"
	ScHotChurn = "hotchurn"
	ScStore    = "store"
)

// Scenarios lists every scenario in run order.
var Scenarios = []string{ScIdle, ScFanout, ScMaxRate, ScSteady, ScStalled, ScStorm, ScResume, ScNotify, ScHotChurn, ScStore}

// ScaleScenarios are the scenarios of "scale inside one process": a
// notification feed's resume storm, a hot topic under connection churn,
// and the store's memory, run against the ssekit server built from this
// tree and from an earlier commit.
var ScaleScenarios = []string{ScNotify, ScHotChurn, ScStore}

const (
	connectTimeout = 30 * time.Second
	inflight       = 128 // connects in flight per worker, outside the storm
)

// runScenario runs one scenario against one server; it returns one result
// per variant (fan-out sizes, stalled counts).
func runScenario(ctx context.Context, o *Options, name string, srv *Server) []Result {
	pl := &o.Plan
	switch name {
	case ScIdle:
		return []Result{idle(ctx, o, srv, pl.IdleConns)}
	case ScFanout:
		var out []Result
		for i, n := range pl.FanoutSubs {
			out = append(out, fanout(ctx, o, srv, n, pl.FanoutEvents[i]))
		}
		return out
	case ScMaxRate:
		return []Result{maxRate(ctx, o, srv)}
	case ScSteady:
		return []Result{steady(ctx, o, srv)}
	case ScStalled:
		var out []Result
		for _, n := range pl.StalledCounts {
			out = append(out, stalled(ctx, o, srv, n))
		}
		return out
	case ScStorm:
		return []Result{storm(ctx, o, srv)}
	case ScResume:
		return []Result{resume(ctx, o, srv)}
	case ScNotify:
		return []Result{notify(ctx, o, srv)}
	case ScHotChurn:
		return []Result{hotChurn(ctx, o, srv)}
	case ScStore:
		return []Result{storeMem(ctx, o, srv)}
	}
	return []Result{{Server: srv.Name, Scenario: name, Error: "unknown scenario"}}
}

func (pl *Plan) idle() time.Duration { return secs(pl.IdleSeconds) }

// pubTimeout is how long a publish of d worth of events may take.
func (pl *Plan) pubTimeout(d time.Duration) time.Duration { return d + secs(pl.GraceSeconds) }

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func needsDelivery(r *Result, srv *Server) bool {
	if !srv.Info.Delivers {
		r.Skipped = "server delivers no events"
		return false
	}
	return true
}

// open starts a session and opens n streams, and makes sure (barrier) that
// they are all subscribed.
func open(ctx context.Context, o *Options, srv *Server, env []string, n int, r *Result) (*session, bool) {
	s, err := newSession(ctx, o, srv, env, inflight)
	if err != nil {
		r.Error = err.Error()
		return nil, false
	}
	if _, _, err := s.connect(n, connectTimeout); err != nil {
		r.Error = err.Error()
		s.close()
		return nil, false
	}
	if srv.Info.Delivers {
		if err := s.barrier(); err != nil {
			r.Error = err.Error()
			s.close()
			return nil, false
		}
	}
	return s, true
}

func idle(ctx context.Context, o *Options, srv *Server, n int) Result {
	r := Result{Server: srv.Name, Scenario: ScIdle, Conns: n}
	s, err := newSession(ctx, o, srv, nil, inflight)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer s.close()
	time.Sleep(300 * time.Millisecond)
	r.RSSBeforeKiB, _ = procRSS(s.p.Pid())
	r.GoroutinesBefore, _ = s.p.Goroutines()
	if _, _, err := s.connect(n, connectTimeout); err != nil {
		r.Error = err.Error()
		return r
	}
	if srv.Info.Delivers {
		if err := s.barrier(); err != nil {
			r.Error = err.Error()
			return r
		}
	}
	time.Sleep(time.Second)
	r.RSSAfterKiB, _ = procRSS(s.p.Pid())
	r.GoroutinesAfter, _ = s.p.Goroutines()
	r.RSSPerConnKiB = float64(r.RSSAfterKiB-r.RSSBeforeKiB) / float64(n)
	r.GoroutinesPerConn = float64(r.GoroutinesAfter-r.GoroutinesBefore) / float64(n)
	if rss, err := procRSS(os.Getpid()); err == nil {
		r.GenRSSKiB = rss
	}
	return r
}

func fanout(ctx context.Context, o *Options, srv *Server, subs, events int) Result {
	r := Result{Server: srv.Name, Scenario: ScFanout, Conns: subs, Events: events, Size: o.Plan.EventSize}
	if !needsDelivery(&r, srv) {
		return r
	}
	s, ok := open(ctx, o, srv, nil, subs, &r)
	if !ok {
		return r
	}
	defer s.close()
	p := s.phase(events, 0, r.Size, 60*time.Second, o.Plan.idle(), 90*time.Second)
	r.fill(p)
	return r
}

func maxRate(ctx context.Context, o *Options, srv *Server) Result {
	pl := &o.Plan
	r := Result{Server: srv.Name, Scenario: ScMaxRate, Conns: pl.MaxRateSubs, Size: pl.EventSize}
	if !needsDelivery(&r, srv) {
		return r
	}
	s, ok := open(ctx, o, srv, nil, pl.MaxRateSubs, &r)
	if !ok {
		return r
	}
	defer s.close()
	step := secs(pl.StepSeconds)
	s.warmUp(pl.MaxRateSteps[0], r.Size)
	run := func(rate float64) (Step, Result, bool) {
		count := int(rate * pl.StepSeconds)
		p := s.phase(count, rate, r.Size, pl.pubTimeout(step), pl.idle(), 2*step+15*time.Second)
		var one Result
		one.Events = count
		one.fill(p)
		st := Step{
			Rate: rate, PublishRate: one.PublishRate, DeliveriesSec: one.DeliveriesSec, Losses: one.Losses,
			P50Ms: one.P50Ms, P99Ms: one.P99Ms, MaxMs: one.MaxMs, CPUPerMillion: one.CPUPerMillionSec,
			OtherCPU: one.OtherCPUPercent,
		}
		onlyLatency := false
		switch {
		case p.blocked:
			st.Why = "publisher blocked"
		case p.pubErr != nil:
			st.Why = p.pubErr.Error()
		case one.Losses > 0:
			st.Why = fmt.Sprintf("%d losses", one.Losses)
		case one.PublishRate < 0.9*rate:
			st.Why = fmt.Sprintf("publisher reached %.0f/s", one.PublishRate)
		case one.P99Ms >= pl.MaxP99Ms:
			st.Why = fmt.Sprintf("p99 %.0f ms", one.P99Ms)
			onlyLatency = true
		default:
			st.Pass = true
		}
		return st, one, onlyLatency
	}
	for _, rate := range pl.MaxRateSteps {
		if ctx.Err() != nil {
			r.StopReason += "; run timeout"
			break
		}
		st, one, onlyLatency := run(rate)
		if onlyLatency {
			// A stall from other load on the machine fails a step on p99
			// alone; such a step gets a second try.
			st.Why += ", tried again"
			st.Retried = true
			r.Steps = append(r.Steps, st)
			st, one, onlyLatency = run(rate)
		}
		r.Steps = append(r.Steps, st)
		if st.Pass {
			r.SustainedRate, r.SustainedDeliv = rate, one.DeliveriesSec
			r.P50Ms, r.P99Ms, r.MaxMs = one.P50Ms, one.P99Ms, one.MaxMs
			r.CPUPerMillionSec = one.CPUPerMillionSec
			continue
		}
		if r.StopReason == "" {
			r.StopReason = fmt.Sprintf("%g/s: %s", rate, st.Why)
		}
		// Past the first failure, keep stepping for the plot while the
		// server still delivers everything and p99 stays under a second.
		if !pl.StepOn || !onlyLatency || st.P99Ms > 1000 {
			break
		}
	}
	if r.StopReason == "" {
		r.StopReason = "passed every step"
	}
	return r
}

func steady(ctx context.Context, o *Options, srv *Server) Result {
	pl := &o.Plan
	count := int(pl.SteadyRate * pl.SteadySeconds)
	r := Result{Server: srv.Name, Scenario: ScSteady, Conns: pl.SteadySubs, Events: count, Rate: pl.SteadyRate, Size: pl.EventSize}
	if !needsDelivery(&r, srv) {
		return r
	}
	s, ok := open(ctx, o, srv, nil, pl.SteadySubs, &r)
	if !ok {
		return r
	}
	defer s.close()
	d := secs(pl.SteadySeconds)
	s.warmUp(pl.SteadyRate, r.Size)
	r.fill(s.phase(count, pl.SteadyRate, r.Size, pl.pubTimeout(d), pl.idle(), 2*d+20*time.Second))
	return r
}

func stalled(ctx context.Context, o *Options, srv *Server, n int) Result {
	pl := &o.Plan
	count := int(pl.StalledRate * pl.StalledSeconds)
	r := Result{Server: srv.Name, Scenario: ScStalled, Conns: pl.StalledHealthy, Stalled: n,
		Events: count, Rate: pl.StalledRate, Size: pl.StalledSize}
	if !needsDelivery(&r, srv) {
		return r
	}
	s, err := newSession(ctx, o, srv, nil, inflight)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer s.close()
	if err := s.addStalled(n); err != nil {
		r.Error = "stalled clients: " + err.Error()
		return r
	}
	if _, _, err := s.connect(pl.StalledHealthy, connectTimeout); err != nil {
		r.Error = err.Error()
		return r
	}
	if err := s.barrier(); err != nil {
		r.Error = err.Error()
		return r
	}
	d := secs(pl.StalledSeconds)
	r.fill(s.phase(count, pl.StalledRate, r.Size, pl.pubTimeout(d), pl.idle(), d+20*time.Second))
	return r
}

func storm(ctx context.Context, o *Options, srv *Server) Result {
	n := o.Plan.StormConns
	r := Result{Server: srv.Name, Scenario: ScStorm, Conns: n}
	s, err := newSession(ctx, o, srv, nil, 0)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer s.close()
	time.Sleep(200 * time.Millisecond)
	cpu0, _ := procCPU(s.p.Pid())
	gcpu0 := selfCPU()
	opened, elapsed, err := s.connect(n, connectTimeout)
	if err != nil {
		r.Error = err.Error()
	}
	r.Failed = int64(n - opened)
	r.OpenSec = elapsed.Seconds()
	cpu1, _ := procCPU(s.p.Pid())
	r.ServerCPUSec = (cpu1 - cpu0).Seconds()
	r.GenCPUSec = (selfCPU() - gcpu0).Seconds()
	r.RSSAfterKiB, _ = procRSS(s.p.Pid())
	return r
}

func resume(ctx context.Context, o *Options, srv *Server) Result {
	pl := &o.Plan
	r := Result{Server: srv.Name, Scenario: ScResume, Conns: pl.ResumeClients, Events: pl.ResumeBack, Size: pl.EventSize}
	if !needsDelivery(&r, srv) {
		return r
	}
	if !srv.Info.Resume {
		r.Skipped = "server does not resume"
		return r
	}
	s, ok := open(ctx, o, srv, []string{"BENCH_REPLAY=1"}, pl.ResumeClients, &r)
	if !ok {
		return r
	}
	defer s.close()
	// Every client receives ResumeFirst events, then drops.
	if p := s.phase(pl.ResumeFirst, 0, r.Size, 30*time.Second, pl.idle(), 40*time.Second); p.Losses > 0 || p.pubErr != nil {
		r.Error = fmt.Sprintf("before the drop: %d losses, publish error %v", p.Losses, p.pubErr)
		return r
	}
	s.gen.CloseAll()
	time.Sleep(200 * time.Millisecond)
	// ResumeBack events while they are away.
	lo := s.nextSeq
	if _, err := s.p.Publish(pl.ResumeBack, 0, r.Size, 30*time.Second); err != nil {
		r.Error = "publish while away: " + err.Error()
		return r
	}
	s.nextSeq += uint64(pl.ResumeBack)
	// All come back at once with Last-Event-ID.
	s.gen.MarkAll(lo, lo+uint64(pl.ResumeBack)-1, pl.ResumeBack)
	cpu0, _ := procCPU(s.p.Pid())
	gcpu0 := selfCPU()
	start := time.Now()
	before := s.gen.Stats()
	s.gen.Reconnect()
	lastDelivered, lastChange := int64(-1), time.Now()
	for {
		marked, complete, closed, delivered := s.gen.Progress()
		if delivered != lastDelivered {
			lastDelivered, lastChange = delivered, time.Now()
		}
		if complete+closed >= marked || time.Since(lastChange) > 3*time.Second ||
			time.Since(start) > 60*time.Second || ctx.Err() != nil {
			break
		}
		time.Sleep(3 * time.Millisecond)
	}
	p := s.gen.Phase()
	cpu1, _ := procCPU(s.p.Pid())
	after := s.gen.Stats()
	r.Failed = after.Failed - before.Failed
	r.Deliveries, r.Expected, r.Losses = p.Delivered, p.Expected, p.Losses
	r.Gaps, r.Dups, r.Other, r.Disconnects = p.Gaps, p.Dups, p.Other, p.Closed
	r.CatchP50, r.CatchP99, r.CatchMax = ms(p.Completion.Quantile(0.5)), ms(p.Completion.Quantile(0.99)), ms(p.Completion.Max())
	if p.LastEventAt > 0 {
		r.WallSec = time.Duration(p.LastEventAt - start.UnixNano()).Seconds()
		r.DeliveriesSec = float64(p.Delivered) / r.WallSec
	}
	r.ServerCPUSec = (cpu1 - cpu0).Seconds()
	r.GenCPUSec = (selfCPU() - gcpu0).Seconds()
	return r
}
