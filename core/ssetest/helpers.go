package ssetest

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

// NewHub returns a hub made with opts that is shut down when the test ends.
func NewHub(t testing.TB, opts sse.Options) *sse.Hub {
	t.Helper()
	hub, err := sse.NewHub(opts)
	if err != nil {
		t.Fatalf("NewHub: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("hub Shutdown: %v", err)
		}
	})
	return hub
}

// Open opens a stream at url, resuming after lastID when it is not empty,
// with the extra request headers hdr (nil: none). The stream is closed when
// the test ends, and the request gives up after 20 s. Open fails the test
// when the server does not answer with a stream.
func Open(t testing.TB, url, lastID string, hdr http.Header) *Stream {
	t.Helper()
	st, err := TryOpen(t, url, lastID, hdr)
	if err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	return st
}

// TryOpen is Open that returns the error instead of failing the test.
func TryOpen(t testing.TB, url, lastID string, hdr http.Header) (*Stream, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	client := http.DefaultClient
	if hdr != nil {
		client = &http.Client{Transport: headerTransport(hdr)}
	}
	st, err := Connect(ctx, client, url, lastID)
	if err != nil {
		cancel()
		return nil, err
	}
	t.Cleanup(func() { st.Close(); cancel() })
	return st, nil
}

// headerTransport adds headers to every request.
type headerTransport http.Header

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h {
		r.Header[k] = v
	}
	return http.DefaultTransport.RoundTrip(r)
}

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

// NextWithin returns the next event of st, and fails the test when none
// arrives within d (it then closes st).
func NextWithin(t testing.TB, st *Stream, d time.Duration) Event {
	t.Helper()
	type result struct {
		ev  Event
		err error
	}
	got := make(chan result, 1)
	go func() {
		ev, err := st.Next()
		got <- result{ev, err}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("Next: %v", r.err)
		}
		return r.ev
	case <-time.After(d):
		st.Close()
		<-got
		t.Fatalf("no event within %v", d)
		return Event{}
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
