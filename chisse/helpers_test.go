package chisse_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/ssetest"
)

// serve starts a test server for h.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
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
