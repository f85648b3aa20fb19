package ssetest

import (
	"context"
	"net/http"
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
