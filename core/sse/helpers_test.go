package sse_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// serve starts a test server for the hub's handler.
func serve(t *testing.T, h *sse.Hub, opts sse.HandlerOptions) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h.Handler(opts))
	t.Cleanup(srv.Close)
	return srv
}

// connect opens a stream that is closed when the test ends.
func connect(t *testing.T, url, lastID string) *ssetest.Stream {
	t.Helper()
	return ssetest.Open(t, url, lastID, nil)
}

// next returns the next event of st; the stream's context bounds the wait.
func next(t *testing.T, st *ssetest.Stream) ssetest.Event {
	t.Helper()
	ev, err := st.Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
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

// checkGoroutines fails the test if, once it has cleaned up, more goroutines
// run than when it started.
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
