package echosse_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v5/middleware"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	echosse "github.com/ssekit/ssekit/echosse/echo5"
	"github.com/ssekit/ssekit/internal/testkit"
)

// TestDetachBehindMiddleware: behind RequestLogger, Recover and Gzip (the
// client asks for gzip), Detach hands every stream over to the hub. The
// request is logged at the hand-over, with status 200; the stream goes out
// uncompressed, and nothing writes to the hijacked connection afterwards
// (net/http would log it).
func TestDetachBehindMiddleware(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	e, logs := loggedEcho()
	e.Use(middleware.RequestLogger(), middleware.Recover(), middleware.GzipWithConfig(middleware.GzipConfig{MinLength: 1}))
	e.GET("/events", echosse.Handler(hub, echosse.Topics("t"), echosse.Detach()))
	url, srvLog := serveLogged(t, e)

	const n = 5
	var ps []*ssetest.Parser
	for range n {
		st := connect(t, url+"/events", "", http.Header{"Accept-Encoding": {"gzip"}})
		if ce := st.Response.Header.Get("Content-Encoding"); ce != "" {
			t.Fatalf("Content-Encoding %q on a detached stream", ce)
		}
		ps = append(ps, st.Parser())
	}
	testkit.Eventually(t, "every stream to be detached", func() bool { return hub.Stats().Detached == n })
	testkit.Eventually(t, "the request log lines", func() bool {
		return strings.Count(logs.String(), "REQUEST") == n && strings.Count(logs.String(), "status=200") == n
	})
	for _, data := range []string{"one", "two"} {
		id := testkit.Publish(t, hub, "t", data)
		for i, p := range ps {
			if ev := next(t, p); ev.LastEventID != id || ev.Data != data {
				t.Fatalf("stream %d: got %+v, want %s", i, ev, data)
			}
		}
	}
	if s := srvLog.String(); s != "" {
		t.Errorf("server log: %s", s)
	}
}

// TestDetachFallsBack: where Echo's Response cannot hijack, streams are
// served as without Detach: over HTTP/2 they stream attached, and behind
// http.TimeoutHandler they are refused with 500, as before.
func TestDetachFallsBack(t *testing.T) {
	t.Run("HTTP2", func(t *testing.T) {
		hub := ssetest.NewHub(t, sse.Options{})
		e := newEcho()
		e.Use(middleware.RequestLogger(), middleware.Recover())
		e.GET("/events", echosse.Handler(hub, echosse.Topics("t"), echosse.Detach()))
		srv := httptest.NewUnstartedServer(e)
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
		if ev := next(t, st.Parser()); ev.LastEventID != id {
			t.Fatalf("got %+v", ev)
		}
		if s := hub.Stats(); s.Streams != 1 || s.Detached != 0 {
			t.Fatalf("Stats %+v, want one attached stream", s)
		}
	})
	t.Run("TimeoutHandler", func(t *testing.T) {
		logs := &logs{}
		hub := ssetest.NewHub(t, sse.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
		e := newEcho()
		e.Use(middleware.Recover())
		e.GET("/events", echosse.Handler(hub, echosse.Topics("t"), echosse.Detach()))
		url, srvLog := serveLogged(t, http.TimeoutHandler(e, 5*time.Second, "timeout"))
		resp, body := get(t, url+"/events", nil)
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "cannot stream") {
			t.Errorf("got %d %q, want 500 explaining the server cannot stream", resp.StatusCode, body)
		}
		if !contains(logs.String(), "does not reach the connection", "http.TimeoutHandler") {
			t.Errorf("log: %s", logs)
		}
		if s := srvLog.String(); s != "" {
			t.Errorf("server log: %s", s)
		}
		if n := hub.Stats().Streams; n != 0 {
			t.Errorf("%d streams open", n)
		}
	})
}

// TestDetachContextTimeout: a deadline in the request context
// (ContextTimeout) no longer ends a detached stream.
func TestDetachContextTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	hub := ssetest.NewHub(t, sse.Options{})
	e := newEcho()
	e.Use(middleware.ContextTimeout(timeout))
	e.GET("/events", echosse.Handler(hub, echosse.Topics("t"), echosse.Detach()))
	st := connect(t, serve(t, e)+"/events", "", nil)
	testkit.Eventually(t, "the stream to be detached", func() bool { return hub.Stats().Detached == 1 })
	time.Sleep(3 * timeout)
	id := testkit.Publish(t, hub, "t", "after the timeout")
	if ev := next(t, st.Parser()); ev.LastEventID != id {
		t.Fatalf("got %+v, want %s", ev, id)
	}
}
