package runner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/ssekit/ssekit/bench/loadgen"
)

// session is one server process and one generator, for one scenario.
type session struct {
	ctx     context.Context
	p       *Proc
	gen     *loadgen.Gen
	nextSeq uint64 // sequence number of the next event the server builds
	stalled []net.Conn
	opts    *Options

	// For a server with topics: the request path of the i-th stream
	// connect opens (nil: /events), and the query that publishes (the
	// barrier's, phase's) add ("&topic=hot").
	connPath func(i int) string
	pubQuery string
}

func newSession(ctx context.Context, o *Options, s *Server, env []string, maxInflight int) (*session, error) {
	p, err := Start(ctx, s, env)
	if err != nil {
		return nil, err
	}
	g, err := loadgen.New(loadgen.Config{
		Addr: p.Addr, Workers: o.Workers, SourceAddrs: o.SourceAddrs, MaxInflight: maxInflight,
	})
	if err != nil {
		p.Kill()
		return nil, err
	}
	return &session{ctx: ctx, p: p, gen: g, nextSeq: 1, opts: o}, nil
}

func (s *session) close() {
	for _, c := range s.stalled {
		_ = c.Close()
	}
	s.p.Kill()
	s.gen.Close()
}

// connect opens n streams and waits until each is open or failed.
func (s *session) connect(n int, timeout time.Duration) (opened int, elapsed time.Duration, err error) {
	before := s.gen.Stats()
	start := time.Now()
	s.gen.ConnectPath(n, s.connPath, nil)
	deadline := start.Add(timeout)
	for {
		st := s.gen.Stats()
		opened = int(st.Opened - before.Opened)
		failed := int(st.Failed - before.Failed)
		if opened+failed >= n {
			elapsed = time.Duration(st.LastOpenAt - start.UnixNano())
			if failed > 0 {
				return opened, elapsed, fmt.Errorf("%d of %d connections failed", failed, n)
			}
			return opened, elapsed, nil
		}
		if s.ctx.Err() != nil {
			return opened, time.Since(start), fmt.Errorf("run timeout with %d of %d streams open", opened, n)
		}
		if time.Now().After(deadline) {
			return opened, time.Since(start), fmt.Errorf("%d of %d streams open after %v", opened, n, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// barrier publishes single events until every open stream has received
// one: then every subscriber is registered, whatever order the library
// registers and flushes in.
func (s *session) barrier() error {
	s.gen.Mark(s.nextSeq, math.MaxUint64, 1)
	for try := 0; try < 50; try++ {
		if _, err := s.p.PublishQuery(1, 0, 64, s.pubQuery, 5*time.Second); err != nil {
			return fmt.Errorf("barrier publish: %w", err)
		}
		s.nextSeq++
		deadline := time.Now().Add(200 * time.Millisecond)
		for time.Now().Before(deadline) {
			marked, complete, closed, _ := s.gen.Progress()
			if closed > 0 {
				return fmt.Errorf("barrier: %d streams closed", closed)
			}
			if complete == marked {
				return nil
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	marked, complete, _, _ := s.gen.Progress()
	return fmt.Errorf("barrier: %d of %d streams got no event", marked-complete, marked)
}

// warmUp publishes a quarter second of events at rate, unmeasured, so
// that stream goroutines, buffers and the heap have grown before the
// measured phases.
func (s *session) warmUp(rate float64, size int) {
	n := max(int(rate/4), 5)
	_ = s.phase(n, rate, size, 10*time.Second, time.Second, 15*time.Second)
}

// phaseResult is one publish-and-deliver phase.
type phaseResult struct {
	loadgen.Phase
	pubStart  time.Time
	pub       time.Duration // publish loop time, as the server measured it
	blocked   bool
	pubErr    error
	serverCPU time.Duration
	genCPU    time.Duration
	otherCPU  time.Duration // used by every other process on the machine
	wall      time.Duration
}

// phase publishes count events at rate and waits until every stream has
// them, or until no event arrived for idle after the publish request
// ended, or until limit.
func (s *session) phase(count int, rate float64, size int, pubTimeout, idle, limit time.Duration) phaseResult {
	lo := s.nextSeq
	hi := lo + uint64(count) - 1
	s.gen.Mark(lo, hi, count)
	cpu0, _ := procCPU(s.p.Pid())
	gcpu0 := selfCPU()
	busy0 := machineBusy()
	r := phaseResult{pubStart: time.Now()}
	type pubOut struct {
		d   time.Duration
		err error
	}
	done := make(chan pubOut, 1)
	go func() {
		res, err := s.p.PublishQuery(count, rate, size, s.pubQuery, pubTimeout)
		if err == nil && (res.First != lo || res.Last != hi) {
			err = fmt.Errorf("server published %d..%d, expected %d..%d", res.First, res.Last, lo, hi)
		}
		done <- pubOut{time.Duration(res.ElapsedNS), err}
	}()
	s.nextSeq = hi + 1
	var pubDone bool
	lastDelivered, lastChange := int64(-1), time.Now()
	for {
		select {
		case out := <-done:
			pubDone = true
			r.pub, r.pubErr = out.d, out.err
			r.blocked = errors.Is(out.err, errPublishTimeout)
			lastChange = time.Now()
		default:
		}
		marked, complete, closed, delivered := s.gen.Progress()
		now := time.Now()
		if delivered != lastDelivered {
			lastDelivered, lastChange = delivered, now
		}
		if pubDone && complete+closed >= marked {
			break
		}
		if pubDone && now.Sub(lastChange) > idle {
			break
		}
		if now.Sub(r.pubStart) > limit || s.ctx.Err() != nil {
			break
		}
		time.Sleep(3 * time.Millisecond)
	}
	r.Phase = s.gen.Phase()
	cpu1, _ := procCPU(s.p.Pid())
	r.serverCPU = cpu1 - cpu0
	r.genCPU = selfCPU() - gcpu0
	r.otherCPU = max(0, machineBusy()-busy0-r.serverCPU-r.genCPU)
	r.wall = time.Since(r.pubStart)
	return r
}

// fill copies a phase's measures into a result.
func (r *Result) fill(p phaseResult) {
	r.Deliveries, r.Expected, r.Losses = p.Delivered, p.Expected, p.Losses
	r.Gaps, r.Dups, r.Other, r.Disconnects = p.Gaps, p.Dups, p.Other, p.Closed
	if p.LastEventAt > 0 {
		if d := time.Duration(p.LastEventAt - p.pubStart.UnixNano()); d > 0 {
			r.DeliveriesSec = float64(p.Delivered) / d.Seconds()
		}
	}
	r.P50Ms, r.P99Ms, r.MaxMs = ms(p.Latency.Quantile(0.5)), ms(p.Latency.Quantile(0.99)), ms(p.Latency.Max())
	r.PublishSec = p.pub.Seconds()
	if p.pub > 0 {
		r.PublishRate = float64(r.Events) / p.pub.Seconds()
	}
	r.PublishBlocked = p.blocked
	if p.pubErr != nil && !p.blocked {
		r.Error = p.pubErr.Error()
	}
	r.ServerCPUSec = p.serverCPU.Seconds()
	if p.Delivered > 0 {
		r.CPUPerMillionSec = p.serverCPU.Seconds() / (float64(p.Delivered) / 1e6)
	}
	r.GenCPUSec = p.genCPU.Seconds()
	r.WallSec = p.wall.Seconds()
	if p.wall > 0 {
		r.GenCPUPercent = 100 * p.genCPU.Seconds() / p.wall.Seconds()
		r.OtherCPUPercent = 100 * p.otherCPU.Seconds() / p.wall.Seconds()
	}
	if rss, err := procRSS(os.Getpid()); err == nil {
		r.GenRSSKiB = rss
	}
}

// addStalled opens n streams that send their request and never read, with
// a 4 KiB receive buffer so that they stall soon.
func (s *session) addStalled(n int) error {
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	for range n {
		c, err := d.DialContext(s.ctx, "tcp4", s.p.Addr)
		if err != nil {
			return err
		}
		s.stalled = append(s.stalled, c)
		req := "GET /events HTTP/1.1\r\nHost: " + s.p.Addr + "\r\nAccept: text/event-stream\r\n\r\n"
		if _, err := c.Write([]byte(req)); err != nil {
			return err
		}
	}
	return nil
}
