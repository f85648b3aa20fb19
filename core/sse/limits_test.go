package sse_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// attempt is a stream request answered with 200: either an admitted stream
// (its body starts with ": ok") or a TryLater (its body is only a retry
// hint).
type attempt struct {
	resp  *http.Response
	first string // the body's first line
	body  *bufio.Reader
	stop  func()
}

func (a *attempt) admitted() bool { return a.first == ": ok" }

// tryOpen sends a stream request and reads the first line of a 200 body.
// The request ends when the test does, or with a.stop.
func tryOpen(t *testing.T, url string, h http.Header) *attempt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	a := &attempt{resp: resp, body: bufio.NewReader(resp.Body)}
	var once sync.Once
	a.stop = func() { once.Do(func() { resp.Body.Close(); cancel() }) }
	t.Cleanup(a.stop)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	line, err := a.body.ReadString('\n')
	if err != nil {
		t.Fatalf("GET %s: reading the first line: %q, %v", url, line, err)
	}
	a.first = strings.TrimSuffix(line, "\n")
	return a
}

// checkTryLater checks that a is a TryLater: a 200 event stream with only
// a retry hint within [lo, hi], then the end. It returns the hint.
func checkTryLater(t *testing.T, a *attempt, lo, hi time.Duration) time.Duration {
	t.Helper()
	if ct := a.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	ms, ok := strings.CutPrefix(a.first, "retry: ")
	n, err := strconv.Atoi(ms)
	if !ok || err != nil {
		t.Fatalf("first line %q, want a retry hint", a.first)
	}
	retry := time.Duration(n) * time.Millisecond
	if retry < lo || retry > hi {
		t.Errorf("retry hint %v, want %v to %v", retry, lo, hi)
	}
	rest, err := io.ReadAll(a.body)
	if err != nil || string(rest) != "\n" {
		t.Errorf("after the retry hint: %q, %v; want an empty line and the end", rest, err)
	}
	return retry
}

func TestMaxStreams(t *testing.T) {
	testkit.CheckGoroutines(t)
	h := ssetest.NewHub(t, sse.Options{MaxStreams: 2})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	first := connect(t, srv.URL, "")
	second := connect(t, srv.URL, "")
	testkit.WaitStreams(t, h, 2)

	// The default answer: a 200 that browsers come back after, 5 to 10 s.
	retries := map[time.Duration]bool{}
	for range 5 {
		a := tryOpen(t, srv.URL, nil)
		if a.admitted() {
			t.Fatal("a third stream was admitted with MaxStreams 2")
		}
		retries[checkTryLater(t, a, 5*time.Second, 10*time.Second)] = true
	}
	if len(retries) < 2 {
		t.Errorf("5 refusals all got the same retry hint %v: no jitter", retries)
	}
	if n := h.Stats().Streams; n != 2 {
		t.Errorf("%d streams", n)
	}

	// The open streams are not affected.
	testkit.Publish(t, h, "t", "still here")
	for _, st := range []*ssetest.Stream{first, second} {
		if ev := next(t, st); ev.Data != "still here" {
			t.Errorf("got %+v", ev)
		}
	}

	// Once a stream has closed, its place is free.
	first.Close()
	var third *attempt
	testkit.Eventually(t, "a free place", func() bool {
		third = tryOpen(t, srv.URL, nil)
		if !third.admitted() {
			third.stop()
		}
		return third.admitted()
	})
	testkit.WaitStreams(t, h, 2)
	if a := tryOpen(t, srv.URL, nil); a.admitted() {
		t.Error("a third stream was admitted after a place was taken again")
	}
}

// overLimitRecorder is an Options.OverLimit that records the reasons it
// is asked about and answers TryLater(7s).
type overLimitRecorder struct {
	mu      sync.Mutex
	reasons []sse.RefusalReason
}

func (o *overLimitRecorder) overLimit(_ *http.Request, reason sse.RefusalReason) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reasons = append(o.reasons, reason)
	return sse.TryLater(7 * time.Second)
}

func (o *overLimitRecorder) take() []sse.RefusalReason {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.reasons
	o.reasons = nil
	return r
}

func TestMaxStreamsPerPrincipal(t *testing.T) {
	var rec overLimitRecorder
	h := ssetest.NewHub(t, sse.Options{MaxStreamsPerPrincipal: 2, OverLimit: rec.overLimit})
	srv := serve(t, h, sse.HandlerOptions{
		Topics: sse.Topics("t"),
		Auth:   &sse.Auth{Authenticate: tokenAuth, Optional: true},
	})
	alice := hdr("Authorization", "Bearer tok-alice")
	bob := hdr("Authorization", "Bearer tok-bob")
	a1 := tryOpen(t, srv.URL, alice)
	tryOpen(t, srv.URL, alice)
	a3 := tryOpen(t, srv.URL, alice)
	if a3.admitted() {
		t.Fatal("alice's third stream was admitted")
	}
	checkTryLater(t, a3, 7*time.Second, 7*time.Second)
	if got := rec.take(); len(got) != 1 || got[0] != sse.RefusedPrincipalLimit {
		t.Errorf("OverLimit reasons %v, want [principal limit]", got)
	}
	for i := range 2 {
		if !tryOpen(t, srv.URL, bob).admitted() {
			t.Errorf("bob's stream %d was refused", i+1)
		}
	}
	// Anonymous streams (the zero Principal) are not counted per principal.
	for i := range 3 {
		if !tryOpen(t, srv.URL, nil).admitted() {
			t.Errorf("anonymous stream %d was refused", i+1)
		}
	}
	testkit.WaitStreams(t, h, 7)
	a1.stop()
	testkit.Eventually(t, "alice's place to free up", func() bool {
		a := tryOpen(t, srv.URL, alice)
		a.stop()
		return a.admitted()
	})
}

func TestMaxStreamsPerIP(t *testing.T) {
	var rec overLimitRecorder
	h := ssetest.NewHub(t, sse.Options{
		MaxStreamsPerIP: 1,
		OverLimit:       rec.overLimit,
		ClientIP:        func(r *http.Request) string { return r.Header.Get("X-Test-Client") },
	})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	ip1 := hdr("X-Test-Client", "192.0.2.1")
	ip2 := hdr("X-Test-Client", "192.0.2.2")
	if !tryOpen(t, srv.URL, ip1).admitted() {
		t.Fatal("first stream of 192.0.2.1 refused")
	}
	if a := tryOpen(t, srv.URL, ip1); a.admitted() {
		t.Fatal("second stream of 192.0.2.1 admitted")
	} else {
		checkTryLater(t, a, 7*time.Second, 7*time.Second)
	}
	if !tryOpen(t, srv.URL, ip2).admitted() {
		t.Fatal("first stream of 192.0.2.2 refused")
	}
	if got := rec.take(); len(got) != 1 || got[0] != sse.RefusedIPLimit {
		t.Errorf("OverLimit reasons %v, want [ip limit]", got)
	}
}

func TestOverLimitAnswers(t *testing.T) {
	tests := []struct {
		name   string
		answer error
		status int
		body   string
	}{
		{"Refuse 429", sse.Refuse(http.StatusTooManyRequests, "busy"), 429, "busy\n"},
		{"Refuse 503", sse.Refuse(http.StatusServiceUnavailable, "try elsewhere"), 503, "try elsewhere\n"},
		{"plain error", errors.New("boom"), 503, "too many streams\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []sse.RefusalReason
			var mu sync.Mutex
			h := ssetest.NewHub(t, sse.Options{MaxStreams: 1, OverLimit: func(r *http.Request, reason sse.RefusalReason) error {
				mu.Lock()
				got = append(got, reason)
				mu.Unlock()
				return tt.answer
			}})
			srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
			connect(t, srv.URL, "")
			rep := request(t, http.MethodGet, srv.URL, nil)
			checkNoStream(t, rep)
			if rep.status != tt.status || rep.body != tt.body {
				t.Errorf("got %d %q, want %d %q", rep.status, rep.body, tt.status, tt.body)
			}
			mu.Lock()
			if len(got) != 1 || got[0] != sse.RefusedStreamLimit {
				t.Errorf("OverLimit reasons %v", got)
			}
			mu.Unlock()
		})
	}
}

func TestRequestsAfterShutdownTryLater(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{CloseRetry: 100 * time.Millisecond, MaxStreams: 1})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	st := connect(t, srv.URL, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Next(); err != io.EOF {
		t.Errorf("open stream after Shutdown: %v, want EOF", err)
	}
	for range 3 {
		a := tryOpen(t, srv.URL, nil)
		if a.admitted() {
			t.Fatal("stream admitted after Shutdown")
		}
		checkTryLater(t, a, 100*time.Millisecond, 200*time.Millisecond)
	}
}

// readRotating reads events like a browser: when the stream ends it checks
// the retry hint and reconnects with the parser's last event ID. onEnd runs
// after each end. It stops when stop returns true for an event.
func readRotating(t *testing.T, url string, st *ssetest.Stream, onEnd func(lived time.Duration), stop func(ssetest.Event) bool) []string {
	t.Helper()
	var got []string
	opened := time.Now()
	for {
		ev, err := st.Next()
		if err == io.EOF {
			onEnd(time.Since(opened))
			if _, ok := st.Parser().Retry(); !ok {
				t.Fatal("the stream ended without a retry hint")
			}
			id := st.LastEventID()
			if id == "" {
				t.Fatal("the stream ended and left the client without an id to resume from")
			}
			st.Close()
			opened = time.Now()
			st = connect(t, url, id)
			continue
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if stop(ev) {
			return got
		}
		got = append(got, ev.Data)
	}
}

func TestMaxStreamAgeEndsStreamCleanly(t *testing.T) {
	testkit.CheckGoroutines(t)
	const age = 300 * time.Millisecond
	h := ssetest.NewHub(t, sse.Options{MaxStreamAge: age, Retry: 5 * time.Second, CloseRetry: 20 * time.Millisecond})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	start := time.Now()
	st := connect(t, srv.URL, "")
	testkit.WaitStreams(t, h, 1)
	testkit.Publish(t, h, "t", "before the end")
	if ev := next(t, st); ev.Data != "before the end" {
		t.Fatalf("got %+v", ev)
	}
	done := make(chan error, 1)
	go func() { _, err := st.Next(); done <- err }()
	select {
	case err := <-done:
		if err != io.EOF {
			t.Fatalf("stream ended with %v, want a clean end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end within 5s of a 300ms MaxStreamAge")
	}
	lived := time.Since(start)
	if lived < age*9/10-10*time.Millisecond || lived > 3*time.Second {
		t.Errorf("the stream lived %v, want about %v", lived, age)
	}
	// The closing hint replaces the opening one (5s).
	if r, ok := st.Parser().Retry(); !ok || r < 20*time.Millisecond || r > 40*time.Millisecond {
		t.Errorf("retry hint %v, %v; want CloseRetry to twice that", r, ok)
	}
	testkit.WaitStreams(t, h, 0)
}

// TestMaxStreamAgeRotationLosesNothing: a client that reconnects after each
// rotation, as a browser does, gets every event exactly once while a
// publisher runs.
func TestMaxStreamAgeRotationLosesNothing(t *testing.T) {
	testkit.CheckGoroutines(t)
	const age = 300 * time.Millisecond
	h := ssetest.NewHub(t, sse.Options{MaxStreamAge: age, CloseRetry: time.Millisecond})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	st := connect(t, srv.URL, "")

	stop := make(chan struct{})
	var published []string
	var count atomic.Int64 // len(published), for the test goroutine
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			data := strconv.Itoa(i)
			if _, err := h.Publish(context.Background(), "t", sse.Event{Data: []byte(data)}); err != nil {
				t.Error(err)
				return
			}
			published = append(published, data)
			count.Add(1)
			time.Sleep(time.Millisecond)
		}
	})
	rotations := 0
	var before int64
	got := readRotating(t, srv.URL, st, func(lived time.Duration) {
		rotations++
		if lived > 3*time.Second {
			t.Errorf("stream %d lived %v with a MaxStreamAge of %v", rotations, lived, age)
		}
		if n := count.Load(); rotations <= 3 && n == before {
			t.Errorf("nothing was published during stream %d: the test does not test rotation under load", rotations)
		} else {
			before = n
		}
		if rotations == 3 {
			close(stop)
			wg.Wait()
			testkit.Publish(t, h, "t", "end")
		}
	}, func(ev ssetest.Event) bool { return ev.Data == "end" })
	if rotations < 3 {
		t.Fatalf("%d rotations", rotations)
	}
	if strings.Join(got, ",") != strings.Join(published, ",") {
		t.Errorf("got %d events, want the %d published, each once, in order\n got %v\nwant %v", len(got), len(published), got, published)
	}
}

// TestEventLargerThanQueueBound: an event larger than MaxQueueBytes would
// count as a full queue for every subscriber; Publish refuses it.
func TestEventLargerThanQueueBound(t *testing.T) {
	for _, policy := range []sse.SlowConsumerPolicy{sse.SlowConsumerDisconnect, sse.SlowConsumerDropOldest} {
		t.Run(fmt.Sprint(policy), func(t *testing.T) {
			h := ssetest.NewHub(t, sse.Options{MaxQueueBytes: 16 << 10, SlowConsumer: policy})
			srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
			st := connect(t, srv.URL, "")
			_, err := h.Publish(context.Background(), "t", sse.Event{Data: []byte(strings.Repeat("x", 64<<10))})
			if !errors.Is(err, sse.ErrEventTooLarge) {
				t.Errorf("Publish of 64 KiB with MaxQueueBytes 16 KiB: %v, want ErrEventTooLarge", err)
			}
			// The largest event allowed (a quarter of the queue by default)
			// and another one both arrive.
			big := strings.Repeat("y", 4<<10-100)
			ids := []string{testkit.Publish(t, h, "t", big), testkit.Publish(t, h, "t", "after")}
			for i, want := range []string{big, "after"} {
				if ev := next(t, st); ev.Data != want || ev.LastEventID != ids[i] {
					t.Fatalf("got type %q, %d bytes, id %q; want %d bytes with id %s", ev.Type, len(ev.Data), ev.LastEventID, len(want), ids[i])
				}
			}
		})
	}
}

func TestMaxEventBytes(t *testing.T) {
	if _, err := sse.NewHub(sse.Options{MaxQueueBytes: 1 << 10, MaxEventBytes: 2 << 10}); err == nil {
		t.Error("NewHub accepted MaxEventBytes > MaxQueueBytes")
	}
	h := ssetest.NewHub(t, sse.Options{MaxEventBytes: 1 << 10})
	_, err := h.Publish(context.Background(), "t", sse.Event{Data: []byte(strings.Repeat("x", 2<<10))})
	if !errors.Is(err, sse.ErrEventTooLarge) {
		t.Fatalf("Publish of 2 KiB with MaxEventBytes 1 KiB: %v, want ErrEventTooLarge", err)
	}
	if _, err := h.Publish(context.Background(), "t", sse.Event{Data: []byte(strings.Repeat("x", 512))}); err != nil {
		t.Fatalf("Publish of 512 bytes: %v", err)
	}
}

// TestMaxEventBytesDefault: without MaxEventBytes, the largest event is a
// quarter of MaxQueueBytes, whatever sets MaxQueueBytes.
func TestMaxEventBytesDefault(t *testing.T) {
	for _, c := range []struct{ queue, ok, tooLarge int }{{0, 1<<20 - 100, 1<<20 + 1}, {64 << 10, 16<<10 - 100, 16<<10 + 1}} {
		h := ssetest.NewHub(t, sse.Options{MaxQueueBytes: c.queue})
		if _, err := h.Publish(context.Background(), "t", sse.Event{Data: make([]byte, c.ok)}); err != nil {
			t.Errorf("MaxQueueBytes %d: Publish of %d bytes: %v", c.queue, c.ok, err)
		}
		if _, err := h.Publish(context.Background(), "t", sse.Event{Data: make([]byte, c.tooLarge)}); !errors.Is(err, sse.ErrEventTooLarge) {
			t.Errorf("MaxQueueBytes %d: Publish of %d bytes: %v, want ErrEventTooLarge", c.queue, c.tooLarge, err)
		}
	}
}

// TestReplayLimit: a Last-Event-ID from long ago (or forged) gets at most
// MaxReplayEvents events or MaxReplayBytes bytes, then the reset event
// with reason "replay-limit", then live events.
func TestReplayLimit(t *testing.T) {
	for _, c := range []struct {
		name string
		opts sse.Options
		size int
		want int // events replayed before the reset
	}{
		{"events", sse.Options{MaxQueueEvents: 10, MaxReplayEvents: 40}, 10, 40},
		{"bytes", sse.Options{MaxQueueBytes: 10 << 10, MaxReplayBytes: 20 << 10}, 1000, 20}, // 1000 bytes of data is 1024 on the wire
	} {
		t.Run(c.name, func(t *testing.T) {
			h := ssetest.NewHub(t, c.opts)
			srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
			first := testkit.Publish(t, h, "t", "first")
			for range 100 {
				testkit.Publish(t, h, "t", strings.Repeat("x", c.size))
			}
			st := connect(t, srv.URL, first)
			got := 0
			for {
				ev := next(t, st)
				if ev.Type == "sse-reset" {
					if ev.Data != `{"reason":"replay-limit"}` {
						t.Fatalf("reset %q", ev.Data)
					}
					break
				}
				got++
			}
			if got != c.want {
				t.Errorf("%d events before the reset, want %d", got, c.want)
			}
			live := testkit.Publish(t, h, "t", "live")
			if ev := next(t, st); ev.Data != "live" || ev.LastEventID != live {
				t.Errorf("after the reset: %+v, want the live event", ev)
			}
			// The reset's ID resumes without another reset.
			st.Close()
			st = connect(t, srv.URL, live)
			again := testkit.Publish(t, h, "t", "again")
			if ev := next(t, st); ev.Data != "again" || ev.LastEventID != again {
				t.Errorf("resuming after the reset: %+v", ev)
			}
		})
	}
	if _, err := sse.NewHub(sse.Options{MaxQueueEvents: 100, MaxReplayEvents: 50}); err == nil {
		t.Error("NewHub accepted MaxReplayEvents < MaxQueueEvents")
	}
}
