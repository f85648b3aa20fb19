package fasthttpsse_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/fasthttpsse"
	"github.com/ssekit/ssekit/internal/testkit"
)

// serve runs srv on a 127.0.0.1 listener and returns its base URL. At the
// end of the test it shuts hub down, then srv, as the package documents.
func serve(t *testing.T, hub *sse.Hub, srv *fasthttp.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("hub Shutdown: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
		if err := srv.ShutdownWithContext(ctx); err != nil {
			t.Errorf("server Shutdown: %v", err)
		}
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after the shutdown")
		}
	})
	return "http://" + ln.Addr().String()
}

// TestConformance runs the kit against a plain fasthttp server, attached
// and detached.
func TestConformance(t *testing.T) {
	ssetest.Run(t, kitServer(false))
}

func TestConformanceDetached(t *testing.T) {
	ssetest.RunWith(t, kitServer(true), ssetest.Config{Detached: true})
}

func kitServer(detach bool) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		opts := route.Options
		opts.Detach = detach
		srv := &fasthttp.Server{KeepHijackedConns: detach, IdleTimeout: time.Second}
		stream := fasthttpsse.Handler(hub, opts, srv)
		srv.Handler = func(fc *fasthttp.RequestCtx) {
			path := string(fc.Path())
			if strings.HasPrefix(path, "/events/publish/") && fc.IsPost() {
				// The topic and the body point into fasthttp's buffers,
				// which it reuses for the connection's next request.
				b := fc.Path()[len("/events/publish/"):]
				topic := unsafe.String(unsafe.SliceData(b), len(b))
				id, err := hub.Publish(context.Background(), topic, sse.Event{Data: fc.PostBody()})
				if err != nil {
					fc.Error(err.Error(), http.StatusBadRequest)
					return
				}
				fc.SetBodyString(id)
				return
			}
			if path == "/events/stream" && route.Stream != nil {
				_ = fasthttpsse.Stream(hub, fc, context.Background(), route.Stream)
				return
			}
			if path != "/events" {
				fc.NotFound()
				return
			}
			if route.Middleware == nil {
				stream(fc)
				return
			}
			if ctx, ok := fasthttpsse.Authenticate(hub, route.Middleware, fc, context.Background()); ok {
				fasthttpsse.Serve(hub, fc, ctx, opts, srv)
			}
		}
		return serve(t, hub, srv) + "/events"
	}
}

// TestUnservedDetachedStreamHoldsNothing: a detached stream takes its
// place under the hub's caps only when fasthttp hands the connection
// over; one whose hand-over never comes (the connection failed first)
// holds nothing, without waiting for a collector.
func TestUnservedDetachedStreamHoldsNothing(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{MaxStreams: 1})
	srv := &fasthttp.Server{KeepHijackedConns: true}
	opts := sse.HandlerOptions{Topics: sse.Topics("t"), Detach: true}
	for range 3 {
		var fc fasthttp.RequestCtx
		fc.Request.SetRequestURI("/events")
		fc.Request.Header.SetProtocol("HTTP/1.1")
		fc.Init(&fc.Request, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
		fasthttpsse.Serve(hub, &fc, context.Background(), opts, srv) // fasthttp never calls the hijack handler
		if !fc.Hijacked() {
			t.Fatal("Serve did not ask fasthttp for the connection")
		}
	}
	srv.Handler = fasthttpsse.Handler(hub, opts, srv)
	st := ssetest.Open(t, serve(t, hub, srv)+"/events", "", nil)
	id := testkit.Publish(t, hub, "t", "x")
	if ev := ssetest.NextWithin(t, st, 5*time.Second); ev.LastEventID != id {
		t.Fatalf("with MaxStreams 1, after three streams that were never handed over: got %+v", ev)
	}
}

// TestMalformedRequestURI: Serve, Stream and Authenticate convert the
// request themselves, and answer one that net/http would not parse with
// 400, so that an adapter only hands over fasthttp's RequestCtx and the
// request context. (fasthttp escapes what it reads from a connection, so
// such a URI comes from a RequestCtx that was built otherwise.)
func TestMalformedRequestURI(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	auth := &sse.Auth{Authenticate: func(context.Context, string) (sse.Principal, error) { return sse.Principal{ID: "ann"}, nil }}
	for _, c := range []struct {
		name string
		call func(fc *fasthttp.RequestCtx) bool // reports whether the request went on
	}{
		{"Serve", func(fc *fasthttp.RequestCtx) bool {
			fasthttpsse.Serve(hub, fc, context.Background(), sse.HandlerOptions{Topics: sse.Topics("t")}, nil)
			return false
		}},
		{"Stream", func(fc *fasthttp.RequestCtx) bool {
			return fasthttpsse.Stream(hub, fc, context.Background(), func(*sse.Stream) error { return nil }) == nil
		}},
		{"Authenticate", func(fc *fasthttp.RequestCtx) bool {
			_, ok := fasthttpsse.Authenticate(hub, auth, fc, context.Background())
			return ok
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var fc fasthttp.RequestCtx
			fc.Init(&fc.Request, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
			fc.Request.SetRequestURI("/events/%zz")
			fc.Request.Header.Set("Authorization", "Bearer x")
			if c.call(&fc) {
				t.Error("the request went on")
			}
			if code, body := fc.Response.StatusCode(), string(fc.Response.Body()); code != http.StatusBadRequest || body != "malformed request URI" {
				t.Errorf("answered %d %q, want 400 malformed request URI", code, body)
			}
		})
	}
}
