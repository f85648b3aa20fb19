package sse_test

import (
	"net/http/httptest"
	"testing"

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
