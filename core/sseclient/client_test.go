package sseclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sseclient"
)

// server is an httptest.Server whose handler answers the n-th request
// (from 0) with handlers[n], or the last handler, and records requests.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
}

func newServer(t *testing.T, handlers ...http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		n := len(s.requests)
		s.requests = append(s.requests, r.Clone(context.Background()))
		s.bodies = append(s.bodies, string(body))
		s.mu.Unlock()
		handlers[min(n, len(handlers)-1)](w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// header returns header k of every request so far, "-" where it is absent.
func (s *server) header(k string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var hs []string
	for _, r := range s.requests {
		if v, ok := r.Header[http.CanonicalHeaderKey(k)]; ok {
			hs = append(hs, strings.Join(v, ","))
		} else {
			hs = append(hs, "-")
		}
	}
	return hs
}

func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// stream answers with a stream made of frames, flushed one by one, then
// ends the response.
func stream(frames ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for _, f := range frames {
			io.WriteString(w, f)
			w.(http.Flusher).Flush()
		}
	}
}

// hold answers with a stream made of frames and keeps it open until the
// client goes away.
func hold(frames ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		stream(frames...)(w, r)
		<-r.Context().Done()
	}
}

// status answers with code, header key-value pairs and body.
func status(code int, body string, kv ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Set(kv[i], kv[i+1])
		}
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter, r *http.Request) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		c.Close()
	}
}

// fast returns options with tiny waits, so that tests reconnect at once.
func fast() *sseclient.Options {
	return &sseclient.Options{InitialDelay: time.Millisecond, MaxDelay: time.Millisecond}
}

// result is what an iteration yielded.
type result struct {
	ev  sseclient.Event
	err error
}

// collect iterates c's events until n results came (then it cancels) or
// the iteration ends, within 10 s.
func collect(t *testing.T, c *sseclient.Client, n int) []result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []result
	for ev, err := range c.Events(ctx) {
		got = append(got, result{ev, err})
		if len(got) == n {
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("timed out after %d results: %v", len(got), got)
	}
	return got
}

// all returns everything seq yields.
func all(seq iter.Seq2[sseclient.Event, error]) []result {
	var got []result
	for ev, err := range seq {
		got = append(got, result{ev, err})
	}
	return got
}

func msg(data, id string) sseclient.Event {
	return sseclient.Event{Type: "message", Data: data, LastEventID: id}
}

func TestEvents(t *testing.T) {
	testkit.CheckGoroutines(t)
	s := newServer(t, hold(
		": hello\n\nid: pos-0\n\n", // an id without data sets the position
		"retry: 5000\n\nid: 1\nevent: add\ndata: {\"n\":1}\n\n",
		"data: a\ndata: b\n\n",
		"id\ndata: c\n\n",
	))
	opts := fast()
	opts.Header = http.Header{"Authorization": {"Bearer tok"}}
	c := sseclient.New(s.URL+"/events", opts)
	got := collect(t, c, 3)
	want := []result{
		{ev: sseclient.Event{Type: "add", Data: `{"n":1}`, LastEventID: "1"}},
		{ev: msg("a\nb", "1")},
		{ev: msg("c", "")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	for k, v := range map[string]string{"Accept": "text/event-stream", "Cache-Control": "no-cache", "Authorization": "Bearer tok", "Last-Event-ID": "-"} {
		if h := s.header(k); !slices.Equal(h, []string{v}) {
			t.Errorf("header %s: %q, want %q", k, h, v)
		}
	}
	if id := c.LastEventID(); id != "" {
		t.Errorf("LastEventID() = %q, want empty", id)
	}
}

func TestOwnHeadersWin(t *testing.T) {
	s := newServer(t, stream("data: a\n\n"))
	opts := fast()
	opts.Header = http.Header{"accept": {"text/event-stream, */*"}, "Cache-Control": {"max-age=0"}}
	collect(t, sseclient.New(s.URL, opts), 1)
	if h := s.header("Accept"); h[0] != "text/event-stream, */*" {
		t.Errorf("Accept %q", h)
	}
	if h := s.header("Cache-Control"); h[0] != "max-age=0" {
		t.Errorf("Cache-Control %q", h)
	}
}

// TestLastEventIDOnReconnect ends the stream after every frame: each
// reconnection carries the last event ID, whether an event set it or an
// id without data, and none after an empty id.
func TestLastEventIDOnReconnect(t *testing.T) {
	testkit.CheckGoroutines(t)
	s := newServer(t,
		stream("id: 1\ndata: a\n\n"),
		stream("id: 2\n\n"),                       // position only
		stream("data: b\n\nid: 3\ndata: c\n"),     // the id of an unfinished event does not count
		stream("id\n\n"),                          // forget
		stream("data: d\n\n"),                     // no id to send
		stream("id: 4\ndata: e\n\nid: x\x00\n\n"), // NUL: ignored
		hold("data: f\n\n"),
	)
	opts := fast()
	opts.LastEventID = "0"
	c := sseclient.New(s.URL, opts)
	var ids []string
	for _, r := range collect(t, c, 4) {
		if r.err != nil {
			t.Fatal(r.err)
		}
		ids = append(ids, r.ev.Data+"@"+r.ev.LastEventID)
	}
	if want := []string{"a@1", "b@2", "d@", "e@4"}; !slices.Equal(ids, want) {
		t.Errorf("events %q, want %q", ids, want)
	}
	want := []string{"0", "1", "2", "2", "-", "-", "4"}
	if h := s.header("Last-Event-ID"); !slices.Equal(h, want[:len(h)]) || len(h) < 6 {
		t.Errorf("Last-Event-ID headers %q, want %q", h, want)
	}
}

// TestWaits checks the waits before reconnections, with the random part
// at its largest: doubling from InitialDelay up to MaxDelay while streams
// fail, back to InitialDelay after a stream stayed open for ResetAfter,
// and a retry field or Retry-After on top.
func TestWaits(t *testing.T) {
	testkit.CheckGoroutines(t)
	const ms = time.Millisecond
	long := func(w http.ResponseWriter, r *http.Request) { // healthy: open for ResetAfter
		stream()(w, r)
		time.Sleep(60 * ms)
	}
	s := newServer(t,
		hangUp, hangUp, hangUp, hangUp, hangUp, // 1, 2, 4, 8, 8
		long,                                    // then 1 again
		stream("data: a\n\n"),                   // a short stream: 2
		status(503, "busy", "Retry-After", "0"), // 0 + 4
		stream("retry: 3\n\n"),                  // 3 + 8
		stream(),                                // 3 + 8 (a hang-up on this reused connection would be retried by the Transport)
		hold("data: end\n\n"),
	)
	var delays []time.Duration
	var errs []error
	opts := &sseclient.Options{
		InitialDelay: ms, MaxDelay: 8 * ms, ResetAfter: 50 * ms,
		OnRetry: func(ri sseclient.RetryInfo) {
			delays = append(delays, ri.Delay)
			errs = append(errs, ri.Err)
			if ri.Retry != len(delays) && ri.Retry != len(delays)-5 && ri.Retry != len(delays)-6 {
				t.Errorf("retry %d is number %d", ri.Retry, len(delays))
			}
		},
	}
	c := sseclient.New(s.URL, opts)
	sseclient.SetJitter(c, func(d time.Duration) time.Duration { return d })
	got := collect(t, c, 2)
	if got[1].ev.Data != "end" {
		t.Fatalf("got %+v", got)
	}
	want := []time.Duration{1 * ms, 2 * ms, 4 * ms, 8 * ms, 8 * ms, 1 * ms, 2 * ms, 4 * ms, 11 * ms, 11 * ms}
	if !slices.Equal(delays, want) {
		t.Errorf("delays %v, want %v", delays, want)
	}
	var se *sseclient.StatusError
	if len(errs) != len(want) || !errors.As(errs[7], &se) || se.StatusCode != 503 || errs[5] != io.EOF {
		t.Errorf("errors %v", errs)
	}
}

func TestJitterIsRandomAndBounded(t *testing.T) {
	s := newServer(t, hangUp, hangUp, hangUp, hangUp, hangUp, hangUp, hangUp, hangUp, hold("data: a\n\n"))
	var delays []time.Duration
	opts := &sseclient.Options{InitialDelay: 4 * time.Millisecond, MaxDelay: 4 * time.Millisecond,
		OnRetry: func(ri sseclient.RetryInfo) { delays = append(delays, ri.Delay) }}
	collect(t, sseclient.New(s.URL, opts), 1)
	if len(delays) != 8 {
		t.Fatalf("%d delays", len(delays))
	}
	for _, d := range delays {
		if d < 0 || d > 4*time.Millisecond {
			t.Errorf("delay %v out of [0, 4ms]", d)
		}
	}
	if slices.Min(delays) == slices.Max(delays) {
		t.Errorf("delays %v are all the same", delays)
	}
}

func TestStatus(t *testing.T) {
	big := strings.Repeat("x", 5000)
	tests := []struct {
		name     string
		h        http.HandlerFunc
		opts     func(*sseclient.Options)
		requests int
		check    func(t *testing.T, err error)
	}{
		{"204 stops without error", status(204, ""), nil, 1, func(t *testing.T, err error) {
			if err != nil {
				t.Errorf("error %v, want none", err)
			}
		}},
		{"401", status(401, "who are you?"), nil, 1, wantStatus(401, "who are you?")},
		{"404", status(404, "no"), nil, 1, wantStatus(404, "no")},
		{"500, body cut", status(500, big), nil, 1, wantStatus(500, big[:1024])},
		{"429 without Retry-After", status(429, "slow down"), nil, 1, wantStatus(429, "slow down")},
		{"503 without Retry-After", status(503, ""), nil, 1, wantStatus(503, "")},
		{"503 with a bad Retry-After", status(503, "", "Retry-After", "soon"), nil, 1, wantStatus(503, "")},
		{"502 retried when asked", status(502, "bad gateway"), func(o *sseclient.Options) {
			o.RetryStatus = func(code int) bool { return code == 502 }
			o.MaxRetries = 2
		}, 3, func(t *testing.T, err error) {
			wantStatus(502, "bad gateway")(t, err)
			if err == nil || !strings.Contains(err.Error(), "giving up after 2 reconnections") {
				t.Errorf("error %v", err)
			}
		}},
		{"wrong Content-Type", status(200, "data: a\n\n", "Content-Type", "text/plain"), nil, 1, func(t *testing.T, err error) {
			var ce *sseclient.ContentTypeError
			if !errors.As(err, &ce) || ce.ContentType != "text/plain" {
				t.Errorf("error %v, want a ContentTypeError", err)
			}
		}},
		{"no Content-Type", status(200, ""), nil, 1, func(t *testing.T, err error) {
			var ce *sseclient.ContentTypeError
			if !errors.As(err, &ce) {
				t.Errorf("error %v, want a ContentTypeError", err)
			}
		}},
		{"network errors retried", hangUp, func(o *sseclient.Options) { o.MaxRetries = 3 }, 4, func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "giving up after 3") {
				t.Errorf("error %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			s := newServer(t, tt.h)
			opts := fast()
			if tt.opts != nil {
				tt.opts(opts)
			}
			got := collect(t, sseclient.New(s.URL, opts), -1)
			var err error
			switch {
			case len(got) > 1:
				t.Fatalf("got %+v", got)
			case len(got) == 1:
				err = got[0].err
			}
			tt.check(t, err)
			if n := s.count(); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
		})
	}
}

func wantStatus(code int, body string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var se *sseclient.StatusError
		if !errors.As(err, &se) || se.StatusCode != code || se.Body != body {
			t.Errorf("error %v, want a StatusError %d with body %.20q", err, code, body)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		code  int
		value string
	}{{429, "1"}, {503, "1"}, {503, "date"}} {
		t.Run(fmt.Sprint(tt.code, " ", tt.value), func(t *testing.T) {
			if tt.value == "date" {
				tt.value = time.Now().Add(1500 * time.Millisecond).UTC().Format(http.TimeFormat)
			}
			s := newServer(t, status(tt.code, "", "Retry-After", tt.value), hold("data: a\n\n"))
			var delay time.Duration
			opts := fast()
			opts.OnRetry = func(ri sseclient.RetryInfo) { delay = ri.Delay }
			c := sseclient.New(s.URL, opts)
			sseclient.SetJitter(c, func(time.Duration) time.Duration { return 0 })
			start := time.Now()
			if got := collect(t, c, 1); got[0].err != nil {
				t.Fatal(got[0].err)
			}
			if took := time.Since(start); delay < 500*time.Millisecond || delay > 1500*time.Millisecond || took < delay {
				t.Errorf("waited %v (took %v), want the Retry-After", delay, took)
			}
		})
	}
}

func TestRetryField(t *testing.T) {
	s := newServer(t, stream("retry: 150\n\n"), stream("data: a\n\n"), hold("data: b\n\n"))
	var delays []time.Duration
	opts := fast()
	opts.OnRetry = func(ri sseclient.RetryInfo) { delays = append(delays, ri.Delay) }
	c := sseclient.New(s.URL, opts)
	sseclient.SetJitter(c, func(time.Duration) time.Duration { return 0 })
	start := time.Now()
	collect(t, c, 2)
	// The reconnection time stays set for later reconnections.
	if want := []time.Duration{150 * time.Millisecond, 150 * time.Millisecond}; !slices.Equal(delays, want) {
		t.Errorf("delays %v, want %v", delays, want)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("took %v", took)
	}
}

func TestReadTimeout(t *testing.T) {
	testkit.CheckGoroutines(t)
	const timeout = 200 * time.Millisecond
	beats := func(w http.ResponseWriter, r *http.Request) { // a comment every 50 ms for 600 ms
		stream("data: beating\n\n")(w, r)
		for range 12 {
			time.Sleep(50 * time.Millisecond)
			io.WriteString(w, ":\n")
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, "data: after beats\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
	silentHead := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	s := newServer(t, hold("data: a\n\n"), silentHead, beats, hold("data: slow consumer\n\n", "data: next\n\n"))
	var ends []error
	var retries []error
	opts := fast()
	opts.ReadTimeout = timeout
	opts.OnDisconnect = func(di sseclient.DisconnectInfo) { ends = append(ends, di.Err) }
	opts.OnRetry = func(ri sseclient.RetryInfo) { retries = append(retries, ri.Err) }
	c := sseclient.New(s.URL, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var data []string
	start := time.Now()
	for ev, err := range c.Events(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, ev.Data)
		if ev.Data == "slow consumer" {
			time.Sleep(3 * timeout) // the time a caller spends does not count
		}
		if ev.Data == "next" {
			break
		}
	}
	if want := []string{"a", "beating", "after beats", "slow consumer", "next"}; !slices.Equal(data, want) {
		t.Errorf("events %q, want %q", data, want)
	}
	if len(ends) != 3 || ends[0] != sseclient.ErrReadTimeout || ends[1] != sseclient.ErrReadTimeout || ends[2] != nil {
		t.Errorf("streams ended with %v, want ErrReadTimeout twice, then nil (the loop broke)", ends)
	}
	if len(retries) != 3 || retries[1] != sseclient.ErrReadTimeout {
		t.Errorf("retries after %v; want the silent response head to time out", retries)
	}
	if took := time.Since(start); took < 3*timeout+600*time.Millisecond {
		t.Errorf("took only %v", took)
	}
}

func TestReset(t *testing.T) {
	s := newServer(t, hold(
		"id: e-3\nevent: sse-reset\ndata: {\"reason\":\"evicted\"}\n\n",
		"id: e-4\ndata: live\n\n",
		"event: sse-reset\ndata: not json\n\n",
		"event: gone\ndata: {\"reason\":\"unknown-id\"}\n\n",
	))
	got := collect(t, sseclient.New(s.URL, fast()), 4)
	var r0, r2 *sseclient.ResetError
	if !errors.As(got[0].err, &r0) || r0.Reason != "evicted" || r0.Event != (sseclient.Event{Type: "sse-reset", Data: `{"reason":"evicted"}`, LastEventID: "e-3"}) || got[0].ev != r0.Event {
		t.Errorf("first: %+v", got[0])
	}
	if got[1] != (result{ev: msg("live", "e-4")}) {
		t.Errorf("second: %+v", got[1])
	}
	if !errors.As(got[2].err, &r2) || r2.Reason != "" || !strings.Contains(r2.Error(), "no reason given") {
		t.Errorf("third: %+v", got[2])
	}
	if got[3].err != nil || got[3].ev.Type != "gone" {
		t.Errorf("fourth: %+v", got[3])
	}

	// Another type, when configured.
	opts := fast()
	opts.ResetEventType = "gone"
	got = collect(t, sseclient.New(s.URL, opts), 4)
	var r3 *sseclient.ResetError
	if got[0].err != nil || got[2].err != nil || !errors.As(got[3].err, &r3) || r3.Reason != "unknown-id" {
		t.Errorf("with ResetEventType gone: %+v", got)
	}
	if msg := r3.Error(); msg != "sseclient: stream reset (unknown-id): events may have been missed" {
		t.Errorf("Error() = %q", msg)
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		opts  sseclient.Options
		want  error
	}{
		{"event over the default", "data: " + strings.Repeat("x", 1<<20+1) + "\n\n", sseclient.Options{}, sseclient.ErrEventTooLarge},
		{"line over the default", ":" + strings.Repeat("x", 1<<20+1) + "\n\n", sseclient.Options{}, sseclient.ErrLineTooLong},
		{"event over a set limit", "data: 12345\ndata: 6\n\n", sseclient.Options{MaxEventSize: 6}, sseclient.ErrEventTooLarge},
		{"line over a set limit", "event: abcdef\n", sseclient.Options{MaxLineSize: 10}, sseclient.ErrLineTooLong},
		{"no limits", "data: " + strings.Repeat("x", 3<<20) + "\n\n", sseclient.Options{MaxEventSize: -1, MaxLineSize: -1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, hold("data: first\n\n", tt.frame))
			opts := tt.opts
			opts.InitialDelay = time.Millisecond
			got := collect(t, sseclient.New(s.URL, &opts), 2)
			if len(got) != 2 || got[0] != (result{ev: msg("first", "")}) {
				t.Fatalf("got %.100v", got)
			}
			if tt.want == nil {
				if got[1].err != nil || len(got[1].ev.Data) != 3<<20 {
					t.Errorf("second: error %v, %d bytes", got[1].err, len(got[1].ev.Data))
				}
				return
			}
			if !errors.Is(got[1].err, tt.want) {
				t.Errorf("error %v, want %v", got[1].err, tt.want)
			}
			if n := s.count(); n != 1 {
				t.Errorf("%d requests: a stream over a limit must not be retried", n)
			}
		})
	}
}

func TestContextCancel(t *testing.T) {
	testkit.CheckGoroutines(t)
	t.Run("while streaming", func(t *testing.T) {
		s := newServer(t, hold("data: a\n\n"))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var errs []error
		var ends []error
		opts := fast()
		opts.OnDisconnect = func(di sseclient.DisconnectInfo) { ends = append(ends, di.Err) }
		for ev, err := range sseclient.New(s.URL, opts).Events(ctx) {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if ev.Data == "a" {
				time.AfterFunc(20*time.Millisecond, cancel)
			}
		}
		if len(errs) != 1 || errs[0] != context.Canceled || len(ends) != 1 || ends[0] != context.Canceled {
			t.Errorf("errors %v, ends %v; want context.Canceled", errs, ends)
		}
	})
	t.Run("while waiting", func(t *testing.T) {
		s := newServer(t, stream("retry: 100000\n\n"))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		opts := fast()
		opts.OnRetry = func(sseclient.RetryInfo) { time.AfterFunc(20*time.Millisecond, cancel) }
		start := time.Now()
		got := all(sseclient.New(s.URL, opts).Events(ctx))
		if len(got) != 1 || got[0].err != context.Canceled || time.Since(start) > 5*time.Second {
			t.Errorf("got %v after %v", got, time.Since(start))
		}
	})
	t.Run("before", func(t *testing.T) {
		s := newServer(t, hold("data: a\n\n"))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		got := all(sseclient.New(s.URL, fast()).Events(ctx))
		if len(got) != 1 || got[0].err != context.Canceled {
			t.Errorf("got %v", got)
		}
	})
}
