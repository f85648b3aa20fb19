package sse_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

type obsClosed struct {
	info   sse.StreamInfo
	reason sse.EndReason
	sent   int
}

type obsRefused struct {
	path   string
	reason sse.RefusalReason
	status int
}

type obsDelivered struct {
	topic                    string
	queued, dropped, evicted int
}

type obsReplayed struct {
	outcome sse.ReplayOutcome
	events  int
	reason  sse.ResetReason
}

// obsLog records what an Observer is told. Hooks run on many goroutines.
type obsLog struct {
	mu        sync.Mutex
	opened    []sse.StreamInfo
	closed    []obsClosed
	refused   []obsRefused
	published []string
	delivered []obsDelivered
	replayed  []obsReplayed
}

func (l *obsLog) observer() sse.Observer {
	return sse.Observer{
		StreamOpened: func(info sse.StreamInfo) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.opened = append(l.opened, info)
		},
		StreamClosed: func(info sse.StreamInfo, reason sse.EndReason, sent int) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.closed = append(l.closed, obsClosed{info, reason, sent})
		},
		Refused: func(r *http.Request, reason sse.RefusalReason, status int) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.refused = append(l.refused, obsRefused{r.URL.Path, reason, status})
		},
		Published: func(topic string) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.published = append(l.published, topic)
		},
		Delivered: func(topic string, queued, dropped, evicted int) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.delivered = append(l.delivered, obsDelivered{topic, queued, dropped, evicted})
		},
		Replayed: func(outcome sse.ReplayOutcome, events int, reason sse.ResetReason) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.replayed = append(l.replayed, obsReplayed{outcome, events, reason})
		},
	}
}

// wait waits until cond, run under the log's lock, holds.
func (l *obsLog) wait(t *testing.T, what string, cond func(l *obsLog) bool) {
	t.Helper()
	testkit.Eventually(t, what, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return cond(l)
	})
}

// waitClosed waits for the n-th StreamClosed and returns it.
func (l *obsLog) waitClosed(t *testing.T, n int) obsClosed {
	t.Helper()
	l.wait(t, fmt.Sprintf("%d closed streams", n), func(l *obsLog) bool { return len(l.closed) >= n })
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed[n-1]
}

// stalledClient opens a stream over raw TCP and never reads from it.
func stalledClient(t *testing.T, srv *httptest.Server, path string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n", path)
	return conn
}

func TestObserverStreamOpenedAndClosed(t *testing.T) {
	t.Run("client gone", func(t *testing.T) {
		var log obsLog
		h := ssetest.NewHub(t, sse.Options{Observer: log.observer()})
		srv := serve(t, h, sse.HandlerOptions{Auth: &sse.Auth{Authenticate: tokenAuth}})
		before := time.Now()
		st := connectWith(t, srv.URL+"?topic=a&topic=b&topic=a", "", hdr("Authorization", "Bearer tok-alice"))
		log.wait(t, "StreamOpened", func(l *obsLog) bool { return len(l.opened) == 1 })
		log.mu.Lock()
		opened := log.opened[0]
		log.mu.Unlock()
		if opened.Principal.ID != "alice" || !slices.Equal(opened.Topics, []string{"a", "b"}) || opened.ClientIP != "127.0.0.1" {
			t.Errorf("StreamOpened %+v", opened)
		}
		if opened.Started.Before(before) || opened.Started.After(time.Now()) {
			t.Errorf("Started %v, not during the request", opened.Started)
		}
		for i := range 3 {
			testkit.Publish(t, h, []string{"a", "b"}[i%2], "x")
			next(t, st)
		}
		st.Close()
		c := log.waitClosed(t, 1)
		if c.reason != sse.EndClientGone || c.sent != 3 {
			t.Errorf("StreamClosed %v, sent %d; want client gone, 3", c.reason, c.sent)
		}
		if c.info.Principal.ID != "alice" || !slices.Equal(c.info.Topics, opened.Topics) || !c.info.Started.Equal(opened.Started) {
			t.Errorf("StreamClosed info %+v, want the opened one %+v", c.info, opened)
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		var log obsLog
		h := ssetest.NewHub(t, sse.Options{Observer: log.observer()})
		srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
		st := connect(t, srv.URL, "")
		testkit.WaitStreams(t, h, 1)
		testkit.Publish(t, h, "t", "1")
		testkit.Publish(t, h, "t", "2")
		next(t, st)
		next(t, st)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		// Shutdown waits for the handlers, so the hook has run.
		log.mu.Lock()
		defer log.mu.Unlock()
		if len(log.closed) != 1 || log.closed[0].reason != sse.EndShutdown || log.closed[0].sent != 2 {
			t.Errorf("StreamClosed %+v, want one, shutdown, 2 sent", log.closed)
		}
	})

	t.Run("slow consumer", func(t *testing.T) {
		var log obsLog
		h := ssetest.NewHub(t, sse.Options{Observer: log.observer(), MaxQueueEvents: 1, WriteTimeout: 2 * time.Second})
		srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
		stalledClient(t, srv, "/")
		testkit.WaitStreams(t, h, 1)
		// Publish in bursts until the queue overflows before the stream
		// goroutine takes it.
		evicted := func(l *obsLog) bool {
			return slices.ContainsFunc(l.delivered, func(p obsDelivered) bool { return p.evicted > 0 })
		}
		for i := 0; ; i++ {
			for range 200 {
				testkit.Publish(t, h, "t", "burst")
			}
			log.mu.Lock()
			done := evicted(&log)
			log.mu.Unlock()
			if done {
				break
			}
			if i == 100 {
				t.Fatal("no eviction after 20000 events with MaxQueueEvents 1")
			}
		}
		c := log.waitClosed(t, 1)
		if c.reason != sse.EndSlowConsumer {
			t.Errorf("StreamClosed reason %v, want slow consumer", c.reason)
		}
		log.mu.Lock()
		defer log.mu.Unlock()
		evictions := 0
		for _, p := range log.delivered {
			evictions += p.evicted
			if p.dropped != 0 || p.queued+p.evicted > 1 {
				t.Errorf("Published %+v with one subscriber and policy SlowConsumerDisconnect", p)
			}
		}
		if evictions != 1 {
			t.Errorf("%d evictions reported, want 1", evictions)
		}
	})

	t.Run("max age", func(t *testing.T) {
		var log obsLog
		h := ssetest.NewHub(t, sse.Options{Observer: log.observer(), MaxStreamAge: 100 * time.Millisecond})
		srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
		st := connect(t, srv.URL, "")
		testkit.WaitStreams(t, h, 1)
		testkit.Publish(t, h, "t", "1")
		next(t, st)
		if _, err := st.Next(); err != io.EOF {
			t.Fatalf("Next: %v, want the end", err)
		}
		c := log.waitClosed(t, 1)
		if c.reason != sse.EndMaxAge || c.sent != 1 {
			t.Errorf("StreamClosed %v, sent %d; want max age, 1", c.reason, c.sent)
		}
	})
}

func TestObserverRefused(t *testing.T) {
	var log obsLog
	h := ssetest.NewHub(t, sse.Options{Observer: log.observer(), MaxStreams: 1})
	mux := http.NewServeMux()
	mux.Handle("/auth", h.Handler(sse.HandlerOptions{Auth: &sse.Auth{
		Authenticate: tokenAuth,
		Authorize: func(_ context.Context, _ sse.Principal, topics []string) error {
			if slices.Contains(topics, "secret") {
				return errors.New("no")
			}
			return nil
		},
	}}))
	mux.Handle("/cors", h.Handler(sse.HandlerOptions{CORS: &sse.CORS{AllowedOrigins: []string{"https://ok.example"}}}))
	mux.Handle("/custom", h.Handler(sse.HandlerOptions{Topics: func(*http.Request) ([]string, error) {
		return nil, sse.Refuse(http.StatusConflict, "not now")
	}}))
	mux.Handle("/fail", h.Handler(sse.HandlerOptions{Topics: func(*http.Request) ([]string, error) {
		return nil, errors.New("database down")
	}}))
	mux.Handle("/", h.Handler(sse.HandlerOptions{}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	connect(t, srv.URL+"/?topic=t", "") // takes the only place

	down := ssetest.NewHub(t, sse.Options{Observer: log.observer()})
	downSrv := serve(t, down, sse.HandlerOptions{Topics: sse.Topics("t")})
	if err := down.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	limits := ssetest.NewHub(t, sse.Options{
		Observer:               log.observer(),
		MaxStreamsPerPrincipal: 1,
		MaxStreamsPerIP:        1,
		ClientIP:               func(r *http.Request) string { return r.Header.Get("X-Test-Client") },
	})
	limitsSrv := serve(t, limits, sse.HandlerOptions{Topics: sse.Topics("t"), Auth: &sse.Auth{Authenticate: tokenAuth}})
	connectWith(t, limitsSrv.URL+"/limits", "", hdr("Authorization", "Bearer tok-alice", "X-Test-Client", "ip1"))

	tests := []struct {
		name, method, url string
		h                 http.Header
		reason            sse.RefusalReason
		status            int
	}{
		{"no token", "GET", srv.URL + "/auth?topic=t", nil, sse.RefusedUnauthenticated, 401},
		{"bad token", "GET", srv.URL + "/auth?topic=t", hdr("Authorization", "Bearer x"), sse.RefusedUnauthenticated, 401},
		{"forbidden", "GET", srv.URL + "/auth?topic=secret", hdr("Authorization", "Bearer tok-a"), sse.RefusedForbidden, 403},
		{"origin", "GET", srv.URL + "/cors?topic=t", hdr("Origin", "https://evil.example"), sse.RefusedOrigin, 403},
		{"stream limit", "GET", srv.URL + "/?topic=t", nil, sse.RefusedStreamLimit, 200},
		{"method", "POST", srv.URL + "/?topic=t", nil, sse.RefusedBadRequest, 405},
		{"invalid topic", "GET", srv.URL + "/?topic=", nil, sse.RefusedBadRequest, 400},
		{"too many topics", "GET", srv.URL + "/?topic=" + strings.Repeat("x&topic=", 40) + "x", nil, sse.RefusedBadRequest, 400},
		{"no topic parameter", "GET", srv.URL + "/", nil, sse.RefusedBadRequest, 400},
		{"Topics refused", "GET", srv.URL + "/custom", nil, sse.RefusedOther, 409},
		{"Topics failed", "GET", srv.URL + "/fail", nil, sse.RefusedOther, 500},
		{"shutdown", "GET", downSrv.URL + "/down", nil, sse.RefusedShutdown, 200},
		{"principal limit", "GET", limitsSrv.URL + "/limits", hdr("Authorization", "Bearer tok-alice", "X-Test-Client", "ip2"), sse.RefusedPrincipalLimit, 200},
		{"ip limit", "GET", limitsSrv.URL + "/limits", hdr("Authorization", "Bearer tok-bob", "X-Test-Client", "ip1"), sse.RefusedIPLimit, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log.mu.Lock()
			log.refused = nil
			log.mu.Unlock()
			rep := request(t, tt.method, tt.url, tt.h)
			if rep.status != tt.status {
				t.Errorf("status %d %q, want %d", rep.status, rep.body, tt.status)
			}
			log.wait(t, "Refused", func(l *obsLog) bool { return len(l.refused) > 0 })
			time.Sleep(5 * time.Millisecond) // a second call would show now
			log.mu.Lock()
			defer log.mu.Unlock()
			u, _ := url.Parse(tt.url)
			want := obsRefused{u.Path, tt.reason, tt.status}
			if len(log.refused) != 1 || log.refused[0] != want {
				t.Errorf("Refused %+v, want [%+v]", log.refused, want)
			}
		})
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.opened) != 2 {
		t.Errorf("%d StreamOpened calls, want 2 (no refused request opens a stream)", len(log.opened))
	}
}

func TestObserverPublished(t *testing.T) {
	var log obsLog
	h := ssetest.NewHub(t, sse.Options{Observer: log.observer()})
	srv := serve(t, h, sse.HandlerOptions{})
	testkit.Publish(t, h, "t", "nobody")
	connect(t, srv.URL+"?topic=t", "")
	connect(t, srv.URL+"?topic=t&topic=u", "")
	connect(t, srv.URL+"?topic=u", "")
	testkit.WaitStreams(t, h, 3)
	testkit.Publish(t, h, "t", "two")
	testkit.Publish(t, h, "u", "two")
	testkit.Publish(t, h, "v", "none")
	log.mu.Lock()
	defer log.mu.Unlock()
	want := []obsDelivered{{"t", 0, 0, 0}, {"t", 2, 0, 0}, {"u", 2, 0, 0}, {"v", 0, 0, 0}}
	if !slices.Equal(log.delivered, want) {
		t.Errorf("Delivered %+v, want %+v", log.delivered, want)
	}
	if want := []string{"t", "t", "u", "v"}; !slices.Equal(log.published, want) {
		t.Errorf("Published %q, want %q", log.published, want)
	}
}

func TestObserverPublishedDropOldest(t *testing.T) {
	var log obsLog
	h := ssetest.NewHub(t, sse.Options{Observer: log.observer(), MaxQueueEvents: 1, SlowConsumer: sse.SlowConsumerDropOldest, WriteTimeout: 2 * time.Second})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	stalledClient(t, srv, "/")
	testkit.WaitStreams(t, h, 1)
	dropped := func() bool {
		log.mu.Lock()
		defer log.mu.Unlock()
		return slices.ContainsFunc(log.delivered, func(p obsDelivered) bool { return p.dropped > 0 })
	}
	for i := 0; !dropped(); i++ {
		if i == 100 {
			t.Fatal("nothing dropped after 20000 events with MaxQueueEvents 1")
		}
		for range 200 {
			testkit.Publish(t, h, "t", "burst")
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, p := range log.delivered {
		if p.queued != 1 || p.evicted != 0 || p.dropped > 1 {
			t.Fatalf("Delivered %+v: with SlowConsumerDropOldest every event is queued, none evicts", p)
		}
	}
	if h.Stats().Streams != 1 {
		t.Error("SlowConsumerDropOldest ended the stream")
	}
}

func TestObserverReplayed(t *testing.T) {
	store, err := sse.NewMemoryStore(sse.MemoryStoreOptions{MaxEvents: 5})
	if err != nil {
		t.Fatal(err)
	}
	var log obsLog
	h := ssetest.NewHub(t, sse.Options{Observer: log.observer(), Store: store})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	var ids []string
	for i := range 4 {
		ids = append(ids, testkit.Publish(t, h, "t", fmt.Sprint(i)))
	}
	testkit.Publish(t, h, "other", "not replayed to t")
	tests := []struct {
		name, lastID string
		want         obsReplayed
	}{
		{"hit", ids[0], obsReplayed{sse.ReplayHit, 3, ""}},
		{"hit, nothing missed", ids[3], obsReplayed{sse.ReplayHit, 0, ""}},
		{"unknown id", "no-such-id", obsReplayed{sse.ReplayReset, 0, "unknown-id"}},
		{"other epoch", "deadbeef-1", obsReplayed{sse.ReplayReset, 0, "unknown-id"}},
		{"evicted", "", obsReplayed{sse.ReplayReset, 0, "evicted"}}, // lastID set below
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lastID := tt.lastID
			if tt.name == "evicted" {
				for range 10 {
					testkit.Publish(t, h, "t", "more")
				}
				lastID = ids[0]
			}
			log.mu.Lock()
			log.replayed = nil
			log.mu.Unlock()
			st := connect(t, srv.URL, lastID)
			for range tt.want.events {
				next(t, st)
			}
			if tt.want.outcome == sse.ReplayReset {
				if ev := next(t, st); ev.Type != "sse-reset" {
					t.Errorf("first event %+v, want a reset", ev)
				}
			}
			log.wait(t, "Replayed", func(l *obsLog) bool { return len(l.replayed) > 0 })
			log.mu.Lock()
			defer log.mu.Unlock()
			if len(log.replayed) != 1 || log.replayed[0] != tt.want {
				t.Errorf("Replayed %+v, want [%+v]", log.replayed, tt.want)
			}
		})
	}
	// A stream without an ID replays nothing and reports nothing.
	log.mu.Lock()
	log.replayed = nil
	log.mu.Unlock()
	st := connect(t, srv.URL, "")
	testkit.Publish(t, h, "t", "sync")
	if ev := next(t, st); ev.Data != "sync" {
		t.Fatalf("got %+v", ev)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.replayed) != 0 {
		t.Errorf("Replayed %+v for a stream without Last-Event-ID", log.replayed)
	}
}

// TestObserverPublishedMayPublish: Observer's documentation says hooks run
// "never under the hub's locks", but Published runs inside Publish with
// pubMu held, so a hook that publishes (an audit or metrics topic)
// deadlocks the hub.
func TestObserverPublishedMayPublish(t *testing.T) {
	var h *sse.Hub
	var mu sync.Mutex
	var audit []string
	h = ssetest.NewHub(t, sse.Options{Observer: sse.Observer{Published: func(topic string) {
		if topic == "audit" {
			return
		}
		mu.Lock()
		audit = append(audit, topic)
		mu.Unlock()
		_, _ = h.Publish(context.Background(), "audit", sse.Event{Data: []byte(topic)})
	}}})
	done := make(chan error, 1)
	go func() {
		_, err := h.Publish(context.Background(), "orders", sse.Event{Data: []byte("x")})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Publish from an Observer.Published hook deadlocked: the hook runs under the hub's publish lock")
	}
}

func TestEndReasonString(t *testing.T) {
	tests := map[sse.EndReason]string{
		sse.EndClientGone:   "client gone",
		sse.EndSlowConsumer: "slow consumer",
		sse.EndWriteTimeout: "write timeout",
		sse.EndWriteError:   "write error",
		sse.EndMaxAge:       "max age",
		sse.EndShutdown:     "shutdown",
		sse.EndDeadline:     "deadline",
		sse.EndRequested:    "requested",
		0:                   "unknown",
		-1:                  "unknown",
		sse.EndComplete + 1: "unknown",
		1 << 30:             "unknown",
	}
	for r, want := range tests {
		if got := r.String(); got != want {
			t.Errorf("EndReason(%d).String() = %q, want %q", int(r), got, want)
		}
	}
}

func TestRefusalReasonString(t *testing.T) {
	tests := map[sse.RefusalReason]string{
		sse.RefusedOther:           "other",
		sse.RefusedBadRequest:      "bad request",
		sse.RefusedCannotFlush:     "cannot flush",
		sse.RefusedUnauthenticated: "unauthenticated",
		sse.RefusedForbidden:       "forbidden",
		sse.RefusedOrigin:          "origin",
		sse.RefusedStreamLimit:     "stream limit",
		sse.RefusedPrincipalLimit:  "principal limit",
		sse.RefusedIPLimit:         "ip limit",
		sse.RefusedShutdown:        "shutdown",
		0:                          "unknown",
		-3:                         "unknown",
		sse.RefusedShutdown + 1:    "unknown",
		1 << 30:                    "unknown",
	}
	for r, want := range tests {
		if got := r.String(); got != want {
			t.Errorf("RefusalReason(%d).String() = %q, want %q", int(r), got, want)
		}
	}
}

func TestReplayOutcomeString(t *testing.T) {
	tests := map[sse.ReplayOutcome]string{
		sse.ReplayHit:   "hit",
		sse.ReplayReset: "reset",
		0:               "unknown",
		-1:              "unknown",
		3:               "unknown",
	}
	for o, want := range tests {
		if got := o.String(); got != want {
			t.Errorf("ReplayOutcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}

// TestObserverPublishedOncePerEvent: with a Broadcaster, Published fires on
// the hub that published only, so that a sum across instances counts each
// event once; Delivered fires on every hub with streams of the topic.
func TestObserverPublishedOncePerEvent(t *testing.T) {
	bus := newMemBus(newTestStore(t))
	logs := make([]*obsLog, 3)
	hubs := make([]*sse.Hub, 3)
	for i := range hubs {
		logs[i] = &obsLog{}
		hubs[i] = ssetest.NewHub(t, sse.Options{Store: bus, Observer: logs[i].observer()})
		// A hub fans out only the topics its streams follow.
		connect(t, serve(t, hubs[i], sse.HandlerOptions{Topics: sse.Topics("t", "u")}).URL, "")
		testkit.WaitStreams(t, hubs[i], 1)
	}
	testkit.Publish(t, hubs[0], "t", "x")
	testkit.Publish(t, hubs[2], "u", "y")
	for i, l := range logs {
		l.wait(t, "both events delivered", func(l *obsLog) bool { return len(l.delivered) == 2 })
		l.mu.Lock()
		want := map[int][]string{0: {"t"}, 1: nil, 2: {"u"}}[i]
		if !slices.Equal(l.published, want) {
			t.Errorf("hub %d: Published %q, want %q", i, l.published, want)
		}
		l.mu.Unlock()
	}
}
