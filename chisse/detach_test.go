package chisse_test

import (
	"context"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/ssekit/ssekit/chisse"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/internal/testkit"
)

// TestDetachBehindMiddleware: behind middleware.Logger (whose
// WrapResponseWriter hijacks), Recoverer, Compress opted in for event
// streams, Timeout and the Auth middleware, Detach hands every stream over
// to the hub. Logger logs each request at the hand-over, with status 000;
// the stream goes out uncompressed, outlives Timeout's deadline, and
// nothing writes to the hijacked connection afterwards (net/http would log
// it).
func TestDetachBehindMiddleware(t *testing.T) {
	const timeout = 100 * time.Millisecond
	hub := ssetest.NewHub(t, sse.Options{})
	var logs, errorLog logBuffer
	auth := &sse.Auth{Authenticate: func(_ context.Context, token string) (sse.Principal, error) {
		return sse.Principal{ID: token}, nil
	}}
	r := chi.NewRouter()
	r.Use(middleware.RequestLogger(&middleware.DefaultLogFormatter{Logger: log.New(&logs, "", 0), NoColor: true}),
		middleware.Recoverer, middleware.Compress(5, "text/event-stream"), middleware.Timeout(timeout), chisse.Auth(hub, auth))
	r.Get("/events", chisse.Handler(hub, chisse.Detach(), chisse.TopicsFunc(func(r *http.Request) ([]string, error) {
		p, _ := chisse.Principal(r)
		return []string{"t", "user/" + p.ID}, nil
	})))
	srv := httptest.NewUnstartedServer(r)
	srv.Config.ErrorLog = log.New(&errorLog, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)

	const n = 5
	var sts []*ssetest.Stream
	for i := range n {
		st := ssetest.Open(t, srv.URL+"/events", "", http.Header{
			"Authorization":   {"Bearer u" + strconv.Itoa(i)},
			"Accept-Encoding": {"gzip"},
		})
		if ce := st.Response.Header.Get("Content-Encoding"); ce != "" {
			t.Fatalf("Content-Encoding %q on a detached stream", ce)
		}
		sts = append(sts, st)
	}
	testkit.Eventually(t, "every stream to be detached", func() bool { return hub.Stats().Detached == n })
	// The hub wrote the head to the hijacked connection, past Logger's
	// writer: Logger never sees a status, and logs "000 0B".
	testkit.Eventually(t, "the access log lines", func() bool { return strings.Count(logs.String(), " - 000 0B in ") == n })
	time.Sleep(2 * timeout)
	id := testkit.Publish(t, hub, "t", "all")
	for i, st := range sts {
		if ev := next(t, st); ev.LastEventID != id || ev.Data != "all" {
			t.Fatalf("stream %d: got %+v", i, ev)
		}
	}
	id = testkit.Publish(t, hub, "user/u2", "two")
	if ev := next(t, sts[2]); ev.LastEventID != id || ev.Data != "two" {
		t.Fatalf("stream 2: got %+v", ev)
	}
	for _, st := range sts {
		st.Close()
	}
	testkit.WaitStreams(t, hub, 0)
	if s := errorLog.String(); s != "" {
		t.Errorf("server error log: %s", s)
	}
}

// TestDetachFallsBack: where the writer cannot hijack, streams are served
// as without Detach. Over HTTP/2, Logger's WrapResponseWriter cannot
// hijack, and the stream is served attached; behind http.TimeoutHandler
// it is refused with 500, as before.
func TestDetachFallsBack(t *testing.T) {
	t.Run("HTTP2", func(t *testing.T) {
		hub := ssetest.NewHub(t, sse.Options{})
		r := chi.NewRouter()
		r.Use(discardLogger(), middleware.Recoverer)
		r.Get("/events", chisse.Handler(hub, chisse.Topics("t"), chisse.Detach()))
		srv := httptest.NewUnstartedServer(r)
		srv.EnableHTTP2 = true
		srv.StartTLS()
		t.Cleanup(srv.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st, err := ssetest.Connect(ctx, srv.Client(), srv.URL+"/events", "")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if st.Response.ProtoMajor != 2 {
			t.Fatalf("protocol %s", st.Response.Proto)
		}
		id := testkit.Publish(t, hub, "t", "x")
		if ev := next(t, st); ev.LastEventID != id {
			t.Fatalf("got %+v", ev)
		}
		if s := hub.Stats(); s.Streams != 1 || s.Detached != 0 {
			t.Fatalf("Stats %+v, want one attached stream", s)
		}
	})
	t.Run("TimeoutHandler", func(t *testing.T) {
		var logs logBuffer
		hub := ssetest.NewHub(t, sse.Options{Logger: logs.slog()})
		r := chi.NewRouter()
		r.Use(discardLogger(), func(h http.Handler) http.Handler { return http.TimeoutHandler(h, time.Minute, "timeout") })
		r.Get("/events", chisse.Handler(hub, chisse.Topics("t"), chisse.Detach()))
		srv := serve(t, r)
		resp, body := testkit.Request(t, "GET", srv.URL+"/events", nil)
		if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") == "text/event-stream" {
			t.Errorf("status %d %q, want 500", resp.StatusCode, body)
		}
		if !strings.Contains(logs.String(), "TimeoutHandler") {
			t.Errorf("log does not explain: %q", logs.String())
		}
		if n := hub.Stats().Streams; n != 0 {
			t.Errorf("%d streams open", n)
		}
	})
}
