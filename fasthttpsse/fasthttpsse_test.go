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
			if topic, ok := strings.CutPrefix(path, "/events/publish/"); ok && fc.IsPost() {
				// The topic and the body point into fasthttp's buffers,
				// which it reuses for the connection's next request.
				b := fc.Path()[len("/events/publish/"):]
				topic = unsafe.String(unsafe.SliceData(b), len(b))
				id, err := hub.Publish(context.Background(), topic, sse.Event{Data: fc.PostBody()})
				if err != nil {
					fc.Error(err.Error(), http.StatusBadRequest)
					return
				}
				fc.SetBodyString(id)
				return
			}
			if path == "/events/stream" && route.Stream != nil {
				r, err := fasthttpsse.Request(fc, context.Background())
				if err != nil {
					fc.Error("bad request", http.StatusBadRequest)
					return
				}
				_ = fasthttpsse.Stream(hub, fc, r, route.Stream)
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
			r, err := fasthttpsse.Request(fc, context.Background())
			if err != nil {
				fc.Error("bad request", http.StatusBadRequest)
				return
			}
			if r = fasthttpsse.Authenticate(hub, route.Middleware, fc, r); r != nil {
				fasthttpsse.Serve(hub, fc, r, opts, srv)
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
		r, err := fasthttpsse.Request(&fc, context.Background())
		if err != nil {
			t.Fatal(err)
		}
		fasthttpsse.Serve(hub, &fc, r, opts, srv) // fasthttp never calls the hijack handler
		if !fc.Hijacked() {
			t.Fatal("Serve did not ask fasthttp for the connection")
		}
	}
	srv.Handler = fasthttpsse.Handler(hub, opts, srv)
	st := ssetest.Open(t, serve(t, hub, srv)+"/events", "", nil)
	id := ssetest.Publish(t, hub, "t", "x")
	if ev := ssetest.NextWithin(t, st, 5*time.Second); ev.LastEventID != id {
		t.Fatalf("with MaxStreams 1, after three streams that were never handed over: got %+v", ev)
	}
}
