package echosse_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/echosse"
	"github.com/ssekit/ssekit/internal/testkit"
)

// The server's graceful shutdown returns at once with streams open when
// the hub shuts down first, as the README shows: streams end with a retry
// hint, and the server does not wait for them.
func TestServerShutdown(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{CloseRetry: 50 * time.Millisecond})
	e := newEcho()
	e.GET("/events", echosse.Handler(hub, echosse.Topics("t")))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/events"

	var sts []*ssetest.Parser
	for range 3 {
		sts = append(sts, connect(t, url, "", nil).Parser())
	}
	testkit.Eventually(t, "the streams to open", streams(hub, 3))
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := errors.Join(hub.Shutdown(ctx), srv.Shutdown(ctx)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	for i, p := range sts {
		if _, err := p.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("stream %d: %v, want a clean end", i, err)
		}
		if r, ok := p.Retry(); !ok || r < 50*time.Millisecond {
			t.Errorf("stream %d: retry hint %v (%v)", i, r, ok)
		}
	}
}
