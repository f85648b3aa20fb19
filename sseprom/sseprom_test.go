package sseprom_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/internal/testkit"
	"github.com/ssekit/ssekit/sseprom"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := sseprom.New(reg, sseprom.Options{TopicLabel: func(topic string) string { return strings.SplitN(topic, "/", 2)[0] }})
	hub, err := sse.NewHub(sse.Options{Observer: m.Observer()})
	if err != nil {
		t.Fatal(err)
	}
	m.Watch(hub, "")
	srv := httptest.NewServer(hub.Handler(sse.HandlerOptions{}))
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := ssetest.Connect(ctx, nil, srv.URL+"?topic=user/1", "")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := hub.Publish(ctx, "user/1", sse.Event{Data: []byte("x")})
	if _, err := st.Next(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	waitFor(t, func() bool { return hub.Stats().Streams == 0 })
	// A resume, and a refusal.
	st, err = ssetest.Connect(ctx, nil, srv.URL+"?topic=user/1", id)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := ssetest.Connect(ctx, nil, srv.URL, ""); err == nil {
		t.Fatal("a request without a topic was not refused")
	}
	waitFor(t, func() bool { return hub.Stats().Streams == 0 })

	want := `
# HELP ssekit_deliveries_total Events queued for streams.
# TYPE ssekit_deliveries_total counter
ssekit_deliveries_total{topic="user"} 1
# HELP ssekit_detached_streams Open event streams on detached connections (HandlerOptions.Detach).
# TYPE ssekit_detached_streams gauge
ssekit_detached_streams 0
# HELP ssekit_events_fanned_out_total Events this instance handed to its streams.
# TYPE ssekit_events_fanned_out_total counter
ssekit_events_fanned_out_total{topic="user"} 1
# HELP ssekit_events_published_total Events this instance published.
# TYPE ssekit_events_published_total counter
ssekit_events_published_total{topic="user"} 1
# HELP ssekit_open_streams Open event streams.
# TYPE ssekit_open_streams gauge
ssekit_open_streams 0
# HELP ssekit_queued_bytes Bytes of the events waiting in streams' queues, each event counted once.
# TYPE ssekit_queued_bytes gauge
ssekit_queued_bytes 0
# HELP ssekit_refused_total Stream requests answered without a stream.
# TYPE ssekit_refused_total counter
ssekit_refused_total{reason="bad request",status="400"} 1
# HELP ssekit_replays_total Resumed streams, by outcome.
# TYPE ssekit_replays_total counter
ssekit_replays_total{outcome="hit",reason=""} 1
# HELP ssekit_streams_closed_total Event streams closed, by reason.
# TYPE ssekit_streams_closed_total counter
ssekit_streams_closed_total{reason="client gone"} 2
# HELP ssekit_streams_opened_total Event streams opened.
# TYPE ssekit_streams_opened_total counter
ssekit_streams_opened_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"ssekit_deliveries_total", "ssekit_detached_streams", "ssekit_events_fanned_out_total", "ssekit_events_published_total", "ssekit_open_streams", "ssekit_queued_bytes",
		"ssekit_refused_total", "ssekit_replays_total", "ssekit_streams_closed_total", "ssekit_streams_opened_total"); err != nil {
		t.Error(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// TestNoTopicLabelByDefault: without Options.TopicLabel the event counters
// have no topic label, so topics per user make no series per user.
func TestNoTopicLabelByDefault(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := sseprom.New(reg, sseprom.Options{})
	hub := ssetest.NewHub(t, sse.Options{Observer: m.Observer()})
	m.Watch(hub, "main")
	for _, topic := range []string{"user/1", "user/2", "user/3"} {
		testkit.Publish(t, hub, topic, "x")
	}
	want := `
# HELP ssekit_events_published_total Events this instance published.
# TYPE ssekit_events_published_total counter
ssekit_events_published_total 3
# HELP ssekit_topics Topics with at least one open stream.
# TYPE ssekit_topics gauge
ssekit_topics{hub="main"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ssekit_events_published_total", "ssekit_topics"); err != nil {
		t.Error(err)
	}
}
