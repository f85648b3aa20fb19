package runner

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// TestSmoke keeps the harness honest: against ssekit, the naive server and
// two of the router adapters (chisse on net/http, fibersse-v2 on fasthttp), 20
// streams must receive 50 events each (once as fast as possible, once
// paced), with no loss, gap, duplicate or stray event, and with latencies
// that make sense. The servers that resume must also bring 20 clients that
// come back 30 events behind up to date, with nothing lost or repeated.
func TestSmoke(t *testing.T) {
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
	servers, err := Build(ctx, modDir, t.TempDir(), []string{"ssekit", "naive", "chisse", "fibersse-v2"})
	if err != nil {
		t.Fatal(err)
	}
	o := &Options{Workers: 2, SourceAddrs: 2, Plan: QuickPlan()}
	const conns, events = 20, 50
	for _, srv := range servers {
		t.Run(srv.Name, func(t *testing.T) {
			var r Result
			s, ok := open(ctx, o, srv, nil, conns, &r)
			if !ok {
				t.Fatal(r.Error)
			}
			defer s.close()
			for _, rate := range []float64{0, 1000} {
				p := s.phase(events, rate, 128, 10*time.Second, 5*time.Second, 30*time.Second)
				if p.pubErr != nil {
					t.Fatalf("rate %g: publish: %v", rate, p.pubErr)
				}
				if p.Marked != conns || p.Complete != conns || p.Closed != 0 {
					t.Errorf("rate %g: %d streams marked, %d complete, %d closed; want %d, %d, 0", rate, p.Marked, p.Complete, p.Closed, conns, conns)
				}
				if p.Delivered != conns*events || p.Expected != conns*events || p.Losses != 0 {
					t.Errorf("rate %g: delivered %d of %d, %d losses", rate, p.Delivered, p.Expected, p.Losses)
				}
				if p.Gaps != 0 || p.Dups != 0 || p.Other != 0 {
					t.Errorf("rate %g: %d gaps, %d duplicates, %d other events", rate, p.Gaps, p.Dups, p.Other)
				}
				if n := p.Latency.Count(); n != conns*events {
					t.Errorf("rate %g: %d latencies recorded", rate, n)
				}
				if mx := p.Latency.Max(); mx <= 0 || mx > 10*time.Second {
					t.Errorf("rate %g: max latency %v", rate, mx)
				}
			}
			if !srv.Info.Resume {
				return
			}
			ro := *o
			ro.Plan.ResumeClients, ro.Plan.ResumeFirst, ro.Plan.ResumeBack = conns, 10, 30
			r = resume(ctx, &ro, srv)
			if r.Error != "" || r.Skipped != "" {
				t.Fatalf("resume: %s%s", r.Error, r.Skipped)
			}
			if r.Deliveries != conns*30 || r.Losses != 0 || r.Dups != 0 || r.Other != 0 || r.Failed != 0 {
				t.Errorf("resume: delivered %d of %d, %d losses, %d duplicates, %d other events, %d failed connects",
					r.Deliveries, conns*30, r.Losses, r.Dups, r.Other, r.Failed)
			}
		})
	}
}
