package ginsse_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/ginsse"
	"github.com/ssekit/ssekit/internal/testkit"
)

// TestDetachBehindMiddleware: behind gin.Logger, gin.Recovery and the Auth
// middleware, Detach hands every stream over to the hub; Logger logs each
// request when it is handed over, with status 200, and the streams go on.
func TestDetachBehindMiddleware(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	var logs syncBuffer
	auth := &sse.Auth{Authenticate: func(_ context.Context, token string) (sse.Principal, error) {
		return sse.Principal{ID: token}, nil
	}}
	r := gin.New()
	r.Use(gin.LoggerWithConfig(gin.LoggerConfig{Output: &logs}), gin.Recovery(), ginsse.Auth(hub, auth))
	r.GET("/events", ginsse.Handler(hub, ginsse.Detach(), ginsse.TopicsFunc(func(c *gin.Context) ([]string, error) {
		p, _ := ginsse.Principal(c)
		return []string{"t", "user/" + p.ID}, nil
	})))
	url := serve(t, r) + "/events"

	const n = 5
	var sts []*ssetest.Stream
	for i := range n {
		sts = append(sts, ssetest.Open(t, url, "", http.Header{"Authorization": {fmt.Sprint("Bearer u", i)}}))
	}
	testkit.Eventually(t, "every stream to be detached", func() bool { return hub.Stats().Detached == n })
	testkit.Eventually(t, "Logger's lines", func() bool { return strings.Count(logs.String(), "/events") == n })
	if l := logs.String(); strings.Count(l, "200") < n {
		t.Errorf("Logger logged %q, want status 200 for every stream", l)
	}
	id := testkit.Publish(t, hub, "t", "all")
	for i, st := range sts {
		if ev := next(t, st); ev.LastEventID != id || ev.Data != "all" {
			t.Fatalf("stream %d: got %+v", i, ev)
		}
	}
	id = testkit.Publish(t, hub, "user/u3", "three")
	if ev := next(t, sts[3]); ev.LastEventID != id || ev.Data != "three" {
		t.Fatalf("stream 3: got %+v", ev)
	}
	for _, st := range sts {
		st.Close()
	}
	testkit.Eventually(t, "the streams to end", func() bool { return hub.Stats().Streams == 0 })
}

// noHijackWriter is the writer of net/http middleware that flushes and
// unwraps but cannot hijack, as many metrics and logging wrappers are.
type noHijackWriter struct{ http.ResponseWriter }

func (w noHijackWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

func (w noHijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestDetachFallsBack: where gin's writer cannot hijack, streams are served
// attached, as without Detach: over HTTP/2, and behind net/http middleware
// whose writer cannot hijack (gin's own Hijack would panic there). Behind
// http.TimeoutHandler the stream is still refused with 500.
func TestDetachFallsBack(t *testing.T) {
	check := func(t *testing.T, hub *sse.Hub, client *http.Client, url string, proto int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st, err := ssetest.Connect(ctx, client, url, "")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if st.Response.ProtoMajor != proto {
			t.Fatalf("protocol %s", st.Response.Proto)
		}
		id := testkit.Publish(t, hub, "t", "x")
		if ev := next(t, st); ev.LastEventID != id {
			t.Fatalf("got %+v", ev)
		}
		if s := hub.Stats(); s.Streams != 1 || s.Detached != 0 {
			t.Fatalf("Stats %+v, want one attached stream", s)
		}
	}
	t.Run("HTTP2", func(t *testing.T) {
		hub := ssetest.NewHub(t, sse.Options{})
		r := gin.New()
		r.Use(gin.Recovery())
		r.GET("/events", ginsse.Handler(hub, ginsse.Topics("t"), ginsse.Detach()))
		srv := httptest.NewUnstartedServer(r)
		srv.EnableHTTP2 = true
		srv.StartTLS()
		t.Cleanup(srv.Close)
		check(t, hub, srv.Client(), srv.URL+"/events", 2)
	})
	t.Run("WriterWithoutHijack", func(t *testing.T) {
		hub := ssetest.NewHub(t, sse.Options{})
		r := gin.New()
		r.GET("/events", ginsse.Handler(hub, ginsse.Topics("t"), ginsse.Detach()))
		wrap := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.ServeHTTP(noHijackWriter{w}, req) })
		check(t, hub, http.DefaultClient, serve(t, wrap)+"/events", 1)
	})
	t.Run("TimeoutHandler", func(t *testing.T) {
		hub := ssetest.NewHub(t, sse.Options{})
		logs := captureLog(t)
		r := gin.New()
		r.GET("/events", ginsse.Handler(hub, ginsse.Topics("t"), ginsse.Detach()))
		url := serve(t, http.TimeoutHandler(r, 5*time.Second, "timeout")) + "/events"
		resp, body := testkit.Request(t, "GET", url, nil)
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "cannot stream") {
			t.Errorf("got %d %q, want 500 with an explanation", resp.StatusCode, body)
		}
		if !strings.Contains(logs.String(), "http.TimeoutHandler") {
			t.Errorf("log %q does not name the cause", logs.String())
		}
	})
}

// TestDetachShutdown: hub.Shutdown ends detached streams with a retry
// hint; http.Server.Shutdown, which no longer sees their connections, then
// returns at once.
func TestDetachShutdown(t *testing.T) {
	hub, err := sse.NewHub(sse.Options{CloseRetry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.GET("/events", ginsse.Handler(hub, ginsse.Topics("t"), ginsse.Detach()))
	srv := httptest.NewServer(r)
	defer srv.Close()
	var sts []*ssetest.Stream
	for range 3 {
		sts = append(sts, ssetest.Open(t, srv.URL+"/events", "", nil))
	}
	testkit.Eventually(t, "every stream to be detached", func() bool { return hub.Stats().Detached == 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hub.Shutdown(ctx); err != nil {
		t.Fatalf("hub Shutdown: %v", err)
	}
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("server Shutdown: %v", err)
	}
	for i, st := range sts {
		p := st.Parser()
		if _, err := p.Next(); err == nil {
			t.Errorf("stream %d: an event after Shutdown", i)
		}
		if d, ok := p.Retry(); !ok || d < 50*time.Millisecond {
			t.Errorf("stream %d: retry hint %v (%v)", i, d, ok)
		}
	}
}
