package runner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ssekit/ssekit/bench/loadgen"
	"github.com/ssekit/ssekit/bench/serverkit"
)

// The scale scenarios: what one process holds up to with many topics and
// streams (notify), a hot topic whose subscribers come and go (hotchurn),
// and what the store's history costs (store). They run against servers
// with topics (serverkit.Info.Topics), and are meant to compare two builds
// of the ssekit server in one run: this tree's and one against an older
// core ("ssekit@b78c6c4", see worktree.go).

// churnGiveUp is how long a churning client waits for its head before it
// is closed (and counted as abandoned).
const churnGiveUp = 20 * time.Second

func needsTopics(r *Result, srv *Server) bool {
	if !srv.Info.Topics {
		r.Skipped = "server has no topics"
		return false
	}
	return true
}

// notify is the notification feed: NotifyStreams streams, stream i on
// "user/i" and "broadcast"; a storm of NotifyRate events/s for
// NotifySeconds, mostly to user topics; the streams' last IDs
// NotifyBackSeconds before its end; then NotifyReconnect of the streams
// leave and come back at once with those IDs. Every event the server
// published is in its log (GET /debug/published), so each returning
// client's events are checked against exactly what it was owed: the events
// of its two topics after its ID.
func notify(ctx context.Context, o *Options, srv *Server) Result {
	pl := &o.Plan
	count := int(pl.NotifyRate * pl.NotifySeconds)
	r := Result{Server: srv.Name, Scenario: ScNotify, Conns: pl.NotifyStreams, Events: count, Rate: pl.NotifyRate, Size: pl.NotifySize}
	if !needsDelivery(&r, srv) || !needsTopics(&r, srv) {
		return r
	}
	n := &NotifyResult{Streams: pl.NotifyStreams, Rate: pl.NotifyRate, Seconds: pl.NotifySeconds,
		BroadcastEvery: pl.NotifyBroadcastEvery, BackSeconds: pl.NotifyBackSeconds, Reconnect: pl.NotifyReconnect}
	r.Notify = n
	s, err := newSession(ctx, o, srv, nil, inflight)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer s.close()
	s.connPath = func(i int) string {
		return "/events?topic=" + serverkit.UserTopic(i) + "&topic=" + serverkit.BroadcastTopic
	}
	// The barrier publishes on the broadcast topic, which every stream
	// follows, and logs its events too: a stream's first IDs are theirs.
	s.pubQuery = "&topic=" + serverkit.BroadcastTopic + "&log=1"
	if _, _, err := s.connect(pl.NotifyStreams, connectTimeout); err != nil {
		r.Error = err.Error()
		return r
	}
	if err := s.barrier(); err != nil {
		r.Error = err.Error()
		return r
	}

	// The storm.
	lo := s.nextSeq
	hi := lo + uint64(count) - 1
	s.gen.Mark(lo, hi, math.MaxInt32) // count what each stream gets; none "completes"
	st0 := s.gen.Stats()
	resets0 := sumResets(s.gen.Resets())
	cpu0, _ := procCPU(s.p.Pid())
	gcpu0 := selfCPU()
	busy0 := machineBusy()
	start := time.Now()
	d := secs(pl.NotifySeconds)
	type pubOut struct {
		res serverkit.PublishResult
		err error
	}
	done := make(chan pubOut, 1)
	go func() {
		q := fmt.Sprintf("&users=%d&broadcast_every=%d&log=1", pl.NotifyStreams, pl.NotifyBroadcastEvery)
		res, err := s.p.PublishQuery(count, pl.NotifyRate, pl.NotifySize, q, pl.pubTimeout(d)+30*time.Second)
		done <- pubOut{res, err}
	}()
	s.nextSeq = hi + 1
	// Each client keeps the last ID it has NotifyBackSeconds before the end.
	var ids []string
	select {
	case <-time.After(time.Until(start.Add(secs(pl.NotifySeconds - pl.NotifyBackSeconds)))):
		ids = s.gen.LastIDs()
		n.IDsSnapshotSec = time.Since(start).Seconds()
	case <-ctx.Done():
		r.Error = "run timeout"
		return r
	}
	out := <-done
	if out.err != nil || out.res.First != lo || out.res.Last != hi || out.res.Errors > 0 {
		r.Error = fmt.Sprintf("storm publish: %d..%d of %d..%d, %d errors (%s), %v", out.res.First, out.res.Last, lo, hi,
			out.res.Errors, out.res.FirstError, out.err)
		return r
	}
	n.Published = out.res.Sent
	if out.res.ElapsedNS > 0 {
		n.PublishRate = float64(out.res.Sent) / time.Duration(out.res.ElapsedNS).Seconds()
	}
	// Delivery ends when nothing arrived for a second.
	waitQuiet(ctx, func() int64 { _, _, _, del := s.gen.Progress(); return del }, time.Second, 30*time.Second)
	cpu1, _ := procCPU(s.p.Pid())
	n.StormWallSec = time.Since(start).Seconds()
	n.StormCPUSec = (cpu1 - cpu0).Seconds()
	n.StormCPUPct = 100 * n.StormCPUSec / n.StormWallSec
	genCPU := selfCPU() - gcpu0
	n.GenCPUPct = 100 * genCPU.Seconds() / n.StormWallSec
	n.OtherCPUPct = 100 * max(0, (machineBusy()-busy0-(cpu1-cpu0)-genCPU).Seconds()) / n.StormWallSec
	ph := s.gen.Phase()
	n.LiveP50Ms, n.LiveP99Ms, n.LiveMaxMs = ms(ph.Latency.Quantile(0.5)), ms(ph.Latency.Quantile(0.99)), ms(ph.Latency.Max())
	st1 := s.gen.Stats()
	n.StormClosed = st1.PeerClosed - st0.PeerClosed
	n.StormResets = sumResets(s.gen.Resets()) - resets0
	r.ServerCPUSec = n.StormCPUSec
	n.RSSKiB, _ = procRSS(s.p.Pid())
	var mem serverkit.Mem
	if err := s.p.getJSON("/debug/mem", &mem); err == nil {
		n.HeapKiB = int64(mem.HeapAlloc >> 10)
	}

	// What the server published, per topic.
	log, err := s.p.publishedLog()
	if err != nil {
		r.Error = "published log: " + err.Error()
		return r
	}
	n.Broadcast = len(log.inRange(serverkit.BroadcastTopic, lo, hi))
	got := s.gen.Got()
	for i := range pl.NotifyStreams {
		owed := int64(len(log.inRange(serverkit.UserTopic(i), lo, hi)) + n.Broadcast)
		n.LiveExpected += owed
		n.LiveDelivered += min(owed, int64(got[i]))
	}
	r.Expected, r.Deliveries, r.Losses = n.LiveExpected, n.LiveDelivered, n.LiveExpected-n.LiveDelivered
	r.P50Ms, r.P99Ms, r.MaxMs = n.LiveP50Ms, n.LiveP99Ms, n.LiveMaxMs

	// The resume storm: every other stream (spread evenly) leaves and
	// comes back at once with the ID it had NotifyBackSeconds before the
	// end; it is owed every event of its two topics after that ID.
	back := make([]int, 0, pl.NotifyReconnect)
	for k := range min(pl.NotifyReconnect, pl.NotifyStreams) {
		back = append(back, k*pl.NotifyStreams/min(pl.NotifyReconnect, pl.NotifyStreams))
	}
	backIDs := make([]string, len(back))
	for k, i := range back {
		backIDs[k] = ids[i]
	}
	s.gen.CloseConns(back)
	time.Sleep(300 * time.Millisecond)
	s.gen.Expect(back, func(k int) [][]uint64 {
		after := log.seqOf[backIDs[k]] // 0 for an ID the log lacks: owed everything
		return [][]uint64{log.after(serverkit.UserTopic(back[k]), after), log.after(serverkit.BroadcastTopic, after)}
	})
	s.gen.SetMaxInflight(0)
	st0 = s.gen.Stats()
	cpu0, _ = procCPU(s.p.Pid())
	start = time.Now()
	s.gen.ReconnectConns(back, backIDs)
	progress := func() int64 {
		var v int64
		for _, e := range s.gen.Expectations(back) {
			v += int64(e.Got + e.Resets + e.Odd)
		}
		return v
	}
	// Polled every 100 ms: each poll locks every returning connection, and
	// the latencies come from the generator's own clock anyway.
	lastChange := waitUntil(ctx, func() bool {
		expecting, finished, closed := s.gen.ExpectProgress()
		return finished+closed >= expecting
	}, progress, 3*time.Second, 90*time.Second, 100*time.Millisecond)
	cpu1, _ = procCPU(s.p.Pid())
	n.ResumeWallSec = lastChange.Sub(start).Seconds()
	n.ResumeCPUSec = (cpu1 - cpu0).Seconds()
	n.FailedConnects = s.gen.Stats().Failed - st0.Failed
	var lat loadgen.Hist
	n.Resets = map[string]int{}
	for _, e := range s.gen.Expectations(back) {
		n.ReplayExpected += int64(e.Expected)
		n.Replayed += int64(e.Got)
		n.Unexpected += int64(e.Odd)
		missing := int64(e.Expected - e.Got)
		if e.Resets > 0 {
			n.ResetClients++
			n.Resets[e.Reason] += e.Resets
			n.MissedAfterReset += missing
			continue
		}
		n.SilentGaps += missing
		if missing > 0 {
			n.ClientsShort++
		}
		if e.Done {
			n.Resumed++
			lat.Record(e.Latency.Nanoseconds())
		}
	}
	n.ResumeP50Ms, n.ResumeP99Ms, n.ResumeMaxMs = ms(lat.Quantile(0.5)), ms(lat.Quantile(0.99)), ms(lat.Max())
	if n.Replayed > 0 {
		n.ReplayCPUUs = 1e6 * n.ResumeCPUSec / float64(n.Replayed)
	}
	r.CatchP50, r.CatchP99, r.CatchMax = n.ResumeP50Ms, n.ResumeP99Ms, n.ResumeMaxMs
	r.Failed = n.FailedConnects
	return r
}

func sumResets(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// waitQuiet waits until value has not changed for quiet, or limit passed.
func waitQuiet(ctx context.Context, value func() int64, quiet, limit time.Duration) {
	waitUntil(ctx, func() bool { return false }, value, quiet, limit, 20*time.Millisecond)
}

// waitUntil waits until done, or until value has not changed for quiet,
// or until limit, looking every poll; it returns when value last changed
// (or when done held).
func waitUntil(ctx context.Context, done func() bool, value func() int64, quiet, limit, poll time.Duration) time.Time {
	start := time.Now()
	last, lastChange := value(), start
	for {
		now := time.Now()
		if done() {
			return now
		}
		if v := value(); v != last {
			last, lastChange = v, now
		}
		if now.Sub(lastChange) > quiet || now.Sub(start) > limit || ctx.Err() != nil {
			return lastChange
		}
		time.Sleep(poll)
	}
}

// pubLog is a server's GET /debug/published: per topic, the sequence
// numbers published on it (ascending), and the sequence number of each ID.
type pubLog struct {
	byTopic map[string][]uint64
	seqOf   map[string]uint64
}

func (p *Proc) publishedLog() (*pubLog, error) {
	b, err := p.get("/debug/published", 60*time.Second)
	if err != nil {
		return nil, err
	}
	l := &pubLog{byTopic: map[string][]uint64{}, seqOf: map[string]uint64{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			return nil, fmt.Errorf("bad line %q", sc.Text())
		}
		seq, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad line %q", sc.Text())
		}
		l.byTopic[f[1]] = append(l.byTopic[f[1]], seq)
		l.seqOf[f[2]] = seq
	}
	return l, sc.Err()
}

// after returns topic's sequence numbers above seq.
func (l *pubLog) after(topic string, seq uint64) []uint64 {
	list := l.byTopic[topic]
	i, _ := slices.BinarySearch(list, seq+1)
	return list[i:]
}

// inRange returns topic's sequence numbers in lo..hi.
func (l *pubLog) inRange(topic string, lo, hi uint64) []uint64 {
	list := l.after(topic, lo-1)
	j, _ := slices.BinarySearch(list, hi+1)
	return list[:j]
}

// hotChurn: HotSubs streams on the topic "hot" take HotRate events/s for
// HotSeconds while other clients of "hot" connect at HotChurn per second,
// each leaving HotHoldSeconds later: every connect and disconnect
// registers and unregisters a subscriber of the topic that is being fanned
// out. Measured: the hot topic's publish-to-delivery latency, the churning
// clients' connect latency (request sent to response head), and the time
// of Hub.Stats and Hub.Subscribers calls (GET /debug/hub, every 50 ms).
func hotChurn(ctx context.Context, o *Options, srv *Server) Result {
	pl := &o.Plan
	count := int(pl.HotRate * pl.HotSeconds)
	r := Result{Server: srv.Name, Scenario: ScHotChurn, Conns: pl.HotSubs, Events: count, Rate: pl.HotRate, Size: pl.EventSize}
	if !needsDelivery(&r, srv) || !needsTopics(&r, srv) {
		return r
	}
	c := &ChurnResult{Rate: pl.HotChurn, HoldSeconds: pl.HotHoldSeconds}
	r.Churn = c
	const path = "/events?topic=hot"
	s, err := newSession(ctx, o, srv, nil, inflight)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer s.close()
	s.connPath = func(int) string { return path }
	s.pubQuery = "&topic=hot"
	if _, _, err := s.connect(pl.HotSubs, connectTimeout); err != nil {
		r.Error = err.Error()
		return r
	}
	if err := s.barrier(); err != nil {
		r.Error = err.Error()
		return r
	}
	s.warmUp(pl.HotRate, r.Size)
	churn, err := loadgen.New(loadgen.Config{Addr: s.p.Addr, Path: path, Workers: 1, SourceAddrs: o.SourceAddrs})
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer churn.Close()

	d := secs(pl.HotSeconds)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	// The churn: connects paced at HotChurn/s, each closed HotHoldSeconds
	// after its head came (so that a slow connect is measured, not cut
	// short), or abandoned if none came within churnGiveUp; bounded by
	// stop and by the phase's own limit.
	go func() {
		defer wg.Done()
		type open struct {
			idx    int
			at     time.Time // connect
			headAt time.Time // zero until the head came
		}
		var live []open
		hold := secs(pl.HotHoldSeconds)
		start := time.Now()
		started := 0
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
			case <-ctx.Done():
			case now := <-tick.C:
				if now.Sub(start) > 2*d+30*time.Second {
					return
				}
				if due := int(now.Sub(start).Seconds() * pl.HotChurn); due > started {
					first := churn.Connect(due-started, nil)
					for i := first; i < first+due-started; i++ {
						live = append(live, open{idx: i, at: now})
					}
					started = due
				}
				var waiting []int
				for _, o := range live {
					if o.headAt.IsZero() {
						waiting = append(waiting, o.idx)
					}
				}
				heads := churn.Open(waiting)
				var done []int
				kept, j := live[:0], 0
				for _, o := range live {
					if o.headAt.IsZero() {
						if heads[j] {
							o.headAt = now
						}
						j++
					}
					if (!o.headAt.IsZero() && now.Sub(o.headAt) >= hold) || now.Sub(o.at) > churnGiveUp {
						done = append(done, o.idx)
					} else {
						kept = append(kept, o)
					}
				}
				live = kept
				churn.CloseConns(done)
				continue
			}
			return
		}
	}()
	// The probe.
	var stats, subs []int64
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				var hp struct {
					StatsNS       int64 `json:"stats_ns"`
					Subscribers   int   `json:"subscribers"`
					SubscribersNS int64 `json:"subscribers_ns"`
				}
				if s.p.getJSON("/debug/hub?topic=hot", &hp) == nil {
					stats = append(stats, hp.StatsNS)
					if hp.Subscribers >= 0 {
						subs = append(subs, hp.SubscribersNS)
					}
				}
			}
		}
	}()
	_ = churn.TakeHeadLatency()
	cst0 := churn.Stats()
	p := s.phase(count, pl.HotRate, r.Size, pl.pubTimeout(d), pl.idle(), 2*d+20*time.Second)
	close(stop)
	wg.Wait()
	r.fill(p)
	cst := churn.Stats()
	c.Connects, c.Failed, c.Abandoned = cst.Opened-cst0.Opened, cst.Failed-cst0.Failed, cst.Abandoned-cst0.Abandoned
	h := churn.TakeHeadLatency()
	c.ConnectP50Ms, c.ConnectP99Ms, c.ConnectMaxMs = ms(h.Quantile(0.5)), ms(h.Quantile(0.99)), ms(h.Max())
	c.Probes = len(stats)
	c.StatsP50Us, c.StatsP99Us, c.StatsMaxUs = quantilesUs(stats)
	c.SubsP50Us, c.SubsP99Us, c.SubsMaxUs = quantilesUs(subs)
	if p.wall > 0 {
		c.ServerCPUPct = 100 * p.serverCPU.Seconds() / p.wall.Seconds()
	}
	return r
}

// storeMem measures the MemoryStore the server is built with: the
// server's BENCH_STOREMEM cases (servers/ssekit/storemem.go, the Store
// interface only, so the same code measures an older core), and the core's
// own BenchmarkMemoryStoreMemory where that core has it.
func storeMem(ctx context.Context, o *Options, srv *Server) Result {
	r := Result{Server: srv.Name, Scenario: ScStore}
	if base, _, _ := splitAt(srv.Name); base != "ssekit" {
		r.Skipped = "only the ssekit server measures its store"
		return r
	}
	st := &StoreResult{}
	r.Store = st
	for _, c := range []string{"events", "topics", "bound"} {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		cmd := exec.CommandContext(cctx, srv.Bin)
		cmd.Env = append(os.Environ(), "BENCH_STOREMEM="+c)
		cmd.SysProcAttr = childAttr()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		cancel()
		if err != nil {
			r.Error = fmt.Sprintf("BENCH_STOREMEM=%s: %v: %s", c, err, strings.TrimSpace(stderr.String()))
			return r
		}
		var sc StoreCase
		if err := json.Unmarshal(out, &sc); err != nil {
			r.Error = fmt.Sprintf("BENCH_STOREMEM=%s: %v", c, err)
			return r
		}
		st.Cases = append(st.Cases, sc)
	}
	if srv.CoreTest == "" {
		st.CoreNote = "this core has no BenchmarkMemoryStoreMemory"
		return r
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, srv.CoreTest, "-test.run", "^$", "-test.bench", "^BenchmarkMemoryStoreMemory$", "-test.benchtime", "1x")
	cmd.Dir = filepath.Dir(srv.CoreTest)
	cmd.SysProcAttr = childAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		st.CoreNote = fmt.Sprintf("BenchmarkMemoryStoreMemory: %v: %s", err, lastLines(string(out), 5))
		return r
	}
	st.CoreBench = parseBench(string(out), "BenchmarkMemoryStoreMemory/")
	if len(st.CoreBench) == 0 {
		st.CoreNote = "BenchmarkMemoryStoreMemory printed no results: " + lastLines(string(out), 5)
	}
	return r
}

// parseBench reads go test -bench output: for each line of a benchmark
// named prefix+<sub>-<procs>, its metrics by unit.
func parseBench(out, prefix string) map[string]map[string]float64 {
	res := map[string]map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], prefix) {
			continue
		}
		name := strings.TrimPrefix(f[0], prefix)
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
		res[name] = m
	}
	return res
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " / ")
}

// quantilesUs returns the median, 99th percentile and maximum of ns, in
// microseconds (exact: these are a few hundred probes, some well under a
// microsecond).
func quantilesUs(ns []int64) (p50, p99, mx float64) {
	if len(ns) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ns)
	at := func(q float64) float64 {
		i := max(int(math.Ceil(q*float64(len(ns))))-1, 0)
		return float64(ns[i]) / 1000
	}
	return at(0.5), at(0.99), float64(ns[len(ns)-1]) / 1000
}
