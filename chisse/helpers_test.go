package chisse_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// serve starts a test server for h.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// publish publishes data on topic and returns the ID.
func publish(t *testing.T, h *sse.Hub, topic, data string) string {
	t.Helper()
	id, err := h.Publish(context.Background(), topic, sse.Event{Data: []byte(data)})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return id
}

// waitStreams waits until the hub has n open streams.
func waitStreams(t *testing.T, h *sse.Hub, n int) {
	t.Helper()
	ssetest.Eventually(t, strconv.Itoa(n)+" open streams", func() bool { return h.Stats().Streams == n })
}

// checkGoroutines fails the test if, once it has cleaned up (Cleanup runs
// last-in first-out, so call it first), more goroutines run than before.
func checkGoroutines(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("goroutine leak: %d running, %d before the test\n%s",
					runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) slog() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, nil))
}

// next returns the next event of st, failing the test after 10 s.
func next(t *testing.T, st *ssetest.Stream) ssetest.Event {
	t.Helper()
	return ssetest.NextWithin(t, st, 10*time.Second)
}
