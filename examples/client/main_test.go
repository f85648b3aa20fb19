package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/internal/testkit"
)

// lines collects what run prints.
type lines struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRun follows a hub's stream: it prints published events, resumes
// after the server drops the connection without losing or repeating any,
// and returns promptly and cleanly when its context ends.
func TestRun(t *testing.T) {
	testkit.CheckGoroutines(t)
	hub := ssetest.NewHub(t, sse.Options{Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(hub.Handler(sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")}))
	t.Cleanup(srv.Close)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	out, logs := &lines{}, &lines{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, srv.URL+"/events?topic=news", "", "", out, log.New(logs, "", 0)) }()

	testkit.WaitStreams(t, hub, 1)
	id1 := testkit.Publish(t, hub, "news", "hello")
	want := id1 + " message hello\n"
	testkit.Eventually(t, "the first event", func() bool { return out.String() == want })

	srv.CloseClientConnections()
	// Published while the client is away: replayed when it comes back.
	id2 := testkit.Publish(t, hub, "news", "while away")
	want += id2 + " message while away\n"
	testkit.Eventually(t, "the event published while away", func() bool { return out.String() == want })
	if !strings.Contains(logs.String(), `connected (Last-Event-ID "`+id1+`")`) {
		t.Errorf("the reconnection did not resume after %s:\n%s", id1, logs)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("run did not return within 3s of its context's end")
	}
	if got := out.String(); got != want {
		t.Errorf("output\n%s\nwant\n%s", got, want)
	}
}

// TestRunReset resumes from an ID the hub does not know: run says that
// events were missed, then goes on.
func TestRunReset(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(hub.Handler(sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")}))
	t.Cleanup(srv.Close)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	out := &lines{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, srv.URL+"/events?topic=news", "from-last-week-42", "", out, log.New(io.Discard, "", 0))
	}()
	testkit.WaitStreams(t, hub, 1)
	id := testkit.Publish(t, hub, "news", "fresh")
	want := "reset (unknown-id): events were missed, reload\n" + id + " message fresh\n"
	testkit.Eventually(t, "the reset and the event", func() bool { return out.String() == want })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
