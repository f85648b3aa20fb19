package echosse_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	echosse "github.com/ssekit/ssekit/echosse/echo5"
	"github.com/ssekit/ssekit/internal/testkit"
)

// Echo's graceful shutdown (StartConfig) returns at once with streams open
// when the hub's Shutdown is registered with the server, as the README
// shows: streams end with a retry hint, and the server does not wait for
// its GracefulTimeout.
func TestStartConfigShutdown(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{CloseRetry: 50 * time.Millisecond})
	e := newEcho()
	e.GET("/events", echosse.Handler(hub, echosse.Topics("t")))

	addr := make(chan net.Addr, 1)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sc := echo.StartConfig{
		Address:          "127.0.0.1:0",
		HideBanner:       true,
		HidePort:         true,
		GracefulTimeout:  20 * time.Second,
		ListenerAddrFunc: func(a net.Addr) { addr <- a },
		BeforeServeFunc: func(s *http.Server) error {
			s.RegisterOnShutdown(func() { _ = hub.Shutdown(context.Background()) })
			return nil
		},
	}
	done := make(chan error, 1)
	go func() { done <- sc.Start(ctx, e) }()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a.String() + "/events"
	case err := <-done:
		t.Fatalf("Start: %v", err)
	}

	var sts []*ssetest.Parser
	for range 3 {
		sts = append(sts, connect(t, url, "", nil).Parser())
	}
	testkit.Eventually(t, "the streams to open", streams(hub, 3))
	start := time.Now()
	stop()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Start: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not shut down")
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
