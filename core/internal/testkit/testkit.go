// Package testkit holds the test helpers that the repository's own tests
// share: waiting for a condition, publishing, counting streams, a bounded
// request and a goroutine-leak check. It is not part of the API.
//
// The modules outside core import the same code as
// github.com/ssekit/ssekit/internal/testkit, a copy that
// scripts/testkit.sh writes and the test suite checks.
package testkit

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
)

// Eventually polls cond every 5 ms until it holds, and fails the test when
// it does not within 10 s.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Request makes a request with the extra headers hdr (nil: none), bounded
// by 10 s, and returns the response with its body read. An event stream
// has no end: of a text/event-stream response, Request returns what
// arrived within 200 ms.
func Request(t testing.TB, method, url string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		time.AfterFunc(200*time.Millisecond, cancel)
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s %s: %v", method, url, err)
	}
	return resp, string(body)
}

// Publish publishes an event with data on topic and returns its ID. It
// fails the test when Publish fails.
func Publish(t testing.TB, hub *sse.Hub, topic, data string) string {
	t.Helper()
	id, err := hub.Publish(context.Background(), topic, sse.Event{Data: []byte(data)})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return id
}

// WaitStreams waits until hub has n open streams (see Eventually).
func WaitStreams(t testing.TB, hub *sse.Hub, n int) {
	t.Helper()
	Eventually(t, strconv.Itoa(n)+" open streams", func() bool { return hub.Stats().Streams == n })
}

// CheckGoroutines fails the test if, once the test has cleaned up, more
// goroutines run than when CheckGoroutines was called; it waits up to 5 s
// for them to end, and prints every goroutine's stack if they do not.
// Call it first in the test: cleanups run last-in first-out, so the
// test's other cleanups (servers, hubs) run before the check.
func CheckGoroutines(t testing.TB) {
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
