package sseadapter_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseadapter"
	"github.com/ssekit/ssekit/core/ssetest"
)

// TestStreamHeader: the hub's own streams send the headers StreamHeader
// documents.
func TestStreamHeader(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	srv := httptest.NewServer(hub.Handler(sse.HandlerOptions{Topics: sse.Topics("t")}))
	t.Cleanup(srv.Close)
	st := ssetest.Open(t, srv.URL, "", nil)
	for k, v := range sseadapter.StreamHeader() {
		if got := st.Response.Header[k]; !reflect.DeepEqual(got, v) {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// writer is a StreamWriter that hands its writes to a channel.
type writer struct{ writes chan string }

func (w *writer) Start() error { return nil }

func (w *writer) Write(p []byte, _ time.Duration) error {
	w.writes <- string(p)
	return nil
}

// TestAcceptServe serves a stream to a StreamWriter of the test's, and
// answers a refusal to the ResponseWriter.
func TestAcceptServe(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{MaxStreams: 1})
	opts := sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")}
	rec := httptest.NewRecorder()
	if s := sseadapter.Accept(hub, rec, httptest.NewRequest("GET", "/events", nil), opts); s != nil || rec.Code != http.StatusBadRequest {
		t.Fatalf("no topic: session %v, status %d; want nil and 400", s, rec.Code)
	}
	s := sseadapter.Accept(hub, httptest.NewRecorder(), httptest.NewRequest("GET", "/events?topic=t", nil), opts)
	if s == nil {
		t.Fatal("refused")
	}
	w := &writer{writes: make(chan string, 8)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan sse.EndReason, 1)
	go func() { done <- s.Serve(ctx, w) }()
	<-w.writes // the opening frame
	over := sseadapter.Accept(hub, httptest.NewRecorder(), httptest.NewRequest("GET", "/events?topic=t", nil), opts)
	if over != nil {
		t.Error("a second session was admitted with MaxStreams 1")
	}
	id := testkit.Publish(t, hub, "t", "hello")
	if got, want := <-w.writes, "id: "+id+"\ndata: hello\n\n"; got != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
	cancel()
	if r := <-done; r != sse.EndClientGone {
		t.Errorf("Serve returned %v, want client gone", r)
	}
	// Unadmitted sessions hold no place under the caps until served.
	a := sseadapter.AcceptUnadmitted(hub, httptest.NewRecorder(), httptest.NewRequest("GET", "/events?topic=t", nil), opts)
	b := sseadapter.AcceptUnadmitted(hub, httptest.NewRecorder(), httptest.NewRequest("GET", "/events?topic=t", nil), opts)
	if a == nil || b == nil {
		t.Fatal("AcceptUnadmitted applied the caps")
	}
}
