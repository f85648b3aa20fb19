package micro

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseadapter"
)

// BenchmarkFanOutLockWait measures what waits for a fan-out to a hot
// topic: one op publishes one event to N subscribers of that topic and
// waits until every one of them has written it (a write syscall per
// stream and batch, to /dev/null, as a stream does to its socket). Beside
// the publishes, a goroutine opens a new stream of the same topic every
// millisecond and ends it 20 ms later (register and unregister, as
// clients that come and go), and another calls Hub.Subscribers and
// Hub.Stats every millisecond. Reported: the Publish call itself
// (publish-µs: the hub holds its fan-out lock for most of it), and the
// p99 and maximum time of Accept (which registers), Subscribers and
// Stats, in µs.
//
// With one lock over the whole fan-out, Accept and Subscribers wait up to
// a Publish; a hub whose registration does not wait for a fan-out in
// progress shows their p99 and maximum near their time without load
// (N=1 is that baseline). GOMAXPROCS matters: -cpu 1,2.
func BenchmarkFanOutLockWait(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) { lockWait(b, n) })
	}
}

// nullStream is a StreamWriter that writes each batch to /dev/null and
// counts its events.
type nullStream struct {
	f       *os.File
	d       *deliveries
	opened  *sync.WaitGroup
	started bool
}

func (s *nullStream) Start() error { return nil }

func (s *nullStream) Write(p []byte, _ time.Duration) error {
	_, err := s.f.Write(p)
	if !s.started {
		s.started = true
		if s.opened != nil {
			s.opened.Done()
		}
		return err
	}
	if s.d != nil {
		s.d.got(int64(bytes.Count(p, dataField)))
	}
	return err
}

// timings collects durations from several goroutines.
type timings struct {
	mu sync.Mutex
	d  []time.Duration
}

func (t *timings) add(d time.Duration) {
	t.mu.Lock()
	t.d = append(t.d, d)
	t.mu.Unlock()
}

// report adds name-p99-µs and name-max-µs.
func (t *timings) report(b *testing.B, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.d) == 0 {
		return
	}
	slices.Sort(t.d)
	p99 := t.d[max(int(math.Ceil(0.99*float64(len(t.d))))-1, 0)]
	b.ReportMetric(float64(p99.Nanoseconds())/1000, name+"-p99-µs")
	b.ReportMetric(float64(t.d[len(t.d)-1].Nanoseconds())/1000, name+"-max-µs")
}

func lockWait(b *testing.B, n int) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	hub, err := sse.NewHub(sse.Options{HeartbeatInterval: time.Hour, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	d := newDeliveries()
	ctx, cancel := context.WithCancel(context.Background())
	var opened, ended sync.WaitGroup
	opts := sse.HandlerOptions{Topics: sse.Topics("hot")}
	accept := func() *sseadapter.Session {
		s := sseadapter.Accept(hub, httptest.NewRecorder(), httptest.NewRequest("GET", "/events", nil), opts)
		if s == nil {
			b.Fatal("stream refused")
		}
		return s
	}
	for range n {
		sess := accept()
		opened.Add(1)
		ended.Add(1)
		go func() {
			defer ended.Done()
			sess.Serve(ctx, &nullStream{f: null, d: d, opened: &opened})
		}()
	}
	opened.Wait()

	var accepts, subs, stats timings
	stop := make(chan struct{})
	var side sync.WaitGroup
	side.Add(2)
	go func() { // churn: a stream every millisecond, each for 20 ms
		defer side.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			t0 := time.Now()
			sess := accept()
			accepts.add(time.Since(t0))
			sctx, scancel := context.WithTimeout(ctx, 20*time.Millisecond)
			ended.Add(1)
			go func() {
				defer ended.Done()
				defer scancel()
				sess.Serve(sctx, &nullStream{f: null})
			}()
		}
	}()
	go func() { // the probe
		defer side.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			t0 := time.Now()
			hub.Subscribers("hot")
			subs.add(time.Since(t0))
			t0 = time.Now()
			hub.Stats()
			stats.add(time.Since(t0))
		}
	}()

	ev := sse.Event{Type: benchType, Data: []byte(benchData)}
	var publish time.Duration
	b.ResetTimer()
	for b.Loop() {
		d.expect(n)
		t0 := time.Now()
		if _, err := hub.Publish(ctx, "hot", ev); err != nil {
			b.Fatal(err)
		}
		publish += time.Since(t0)
		if err := d.wait(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	side.Wait()
	cancel()
	ended.Wait()
	_ = hub.Shutdown(context.Background())
	b.ReportMetric(float64(publish.Nanoseconds())/float64(b.N)/1000, "publish-µs")
	accepts.report(b, "accept")
	subs.report(b, "subscribers")
	stats.report(b, "stats")
}
