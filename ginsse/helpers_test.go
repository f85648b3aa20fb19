package ginsse_test

import (
	"bytes"
	"compress/gzip"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/internal/testkit"
)

func init() { gin.SetMode(gin.ReleaseMode) }

// serve starts h on a test server closed at cleanup and returns its URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// waitGoroutines waits until the number of goroutines is back to about
// base, as after a test's servers and clients are gone.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	http.DefaultClient.CloseIdleConnections()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	testkit.Eventually(t, "goroutines to return to their number before the test", func() bool {
		return runtime.NumGoroutine() <= base+4
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent use (log output).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// captureLog sends slog.Default's output to a buffer until cleanup. Tests
// that use it must not run in parallel.
func captureLog(t *testing.T) *syncBuffer {
	var buf syncBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return &buf
}

// unwrappingGzip is a compression middleware written the way streams need:
// Flush flushes the compressor, and the writer unwraps to gin's writer, so
// that http.ResponseController reaches the connection. gin-contrib/gzip
// (v1.2.5) does the former but not the latter.
func unwrappingGzip() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !strings.Contains(c.GetHeader("Accept-Encoding"), "gzip") {
			return
		}
		w := &gzipWriter{ResponseWriter: c.Writer, zw: gzip.NewWriter(c.Writer)}
		c.Header("Content-Encoding", "gzip")
		c.Writer.Header().Add("Vary", "Accept-Encoding")
		c.Writer = w
		defer func() {
			if w.wrote {
				_ = w.zw.Close()
			}
		}()
		c.Next()
	}
}

type gzipWriter struct {
	gin.ResponseWriter
	zw    *gzip.Writer
	wrote bool
}

func (w *gzipWriter) Write(p []byte) (int, error) {
	w.Header().Del("Content-Length")
	w.wrote = true
	return w.zw.Write(p)
}

func (w *gzipWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

func (w *gzipWriter) Flush() {
	_ = w.zw.Flush()
	w.ResponseWriter.Flush()
}

func (w *gzipWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// next returns the next event of st, failing the test after 10 s.
func next(t *testing.T, st *ssetest.Stream) ssetest.Event {
	t.Helper()
	return ssetest.NextWithin(t, st, 10*time.Second)
}
