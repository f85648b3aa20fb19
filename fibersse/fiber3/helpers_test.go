package fibersse_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// start serves app on a 127.0.0.1 listener and returns its base URL. At
// the end of the test it shuts the hub down, then the app, in the order
// the package documents; neither may hang.
func start(t *testing.T, hub *sse.Hub, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln, fiber.ListenConfig{DisableStartupMessage: true}) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if hub != nil {
			if err := hub.Shutdown(ctx); err != nil {
				t.Errorf("hub Shutdown: %v", err)
			}
		}
		// fasthttp's Shutdown waits for connections that never sent a
		// request (net/http's client keeps a dial it no longer needed):
		// close the client's idle connections, as a real client would
		// sooner or later. (A fiber ReadTimeout closes them too.)
		http.DefaultClient.CloseIdleConnections()
		if err := app.ShutdownWithTimeout(5 * time.Second); err != nil {
			t.Errorf("app ShutdownWithTimeout: %v", err)
		}
		_ = ln.Close() // in case the app was not serving yet
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Error("app.Listener did not return after the shutdown")
		}
	})
	return "http://" + ln.Addr().String()
}

func newHub(t *testing.T, opts sse.Options) *sse.Hub {
	t.Helper()
	hub, err := sse.NewHub(opts)
	if err != nil {
		t.Fatal(err)
	}
	return hub
}

// connect opens a stream and closes it at the end of the test.
func connect(t *testing.T, url, lastID string) *ssetest.Stream {
	t.Helper()
	st, err := tryConnect(t, nil, url, lastID)
	if err != nil {
		t.Fatalf("Connect %s: %v", url, err)
	}
	return st
}

func tryConnect(t *testing.T, client *http.Client, url, lastID string) (*ssetest.Stream, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	st, err := ssetest.Connect(ctx, client, url, lastID)
	if err != nil {
		cancel()
		return nil, err
	}
	t.Cleanup(func() { st.Close(); cancel() })
	return st, nil
}

// captureLog sends the default slog logger's output to a buffer for the
// rest of the test.
func captureLog(t *testing.T) *syncBuffer {
	t.Helper()
	var buf syncBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return &buf
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
