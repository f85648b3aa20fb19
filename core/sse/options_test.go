package sse_test

import (
	"context"
	"errors"
	"math"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

func TestNewHubOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    sse.Options
		wantErr string // a substring of the error; "" for success
	}{
		{"zero value", sse.Options{}, ""},
		{"all set", sse.Options{
			HeartbeatInterval: time.Second, WriteTimeout: time.Second, Retry: time.Millisecond,
			CloseRetry: time.Second, MaxQueueEvents: 1, MaxQueueBytes: 1, SlowConsumer: sse.SlowConsumerDropOldest,
			ResetEventType: "reset", MaxTopics: 1, MaxLastEventIDLength: 1,
		}, ""},
		{"Retry 1ms", sse.Options{Retry: time.Millisecond}, ""},
		{"SlowConsumer SlowConsumerDisconnect", sse.Options{SlowConsumer: sse.SlowConsumerDisconnect}, ""},
		{"ResetEventType non-ASCII", sse.Options{ResetEventType: "réinitialiser"}, ""},

		{"negative HeartbeatInterval", sse.Options{HeartbeatInterval: -time.Second}, "HeartbeatInterval"},
		{"negative WriteTimeout", sse.Options{WriteTimeout: -1}, "WriteTimeout"},
		{"negative Retry", sse.Options{Retry: -time.Millisecond}, "Retry"},
		{"negative CloseRetry", sse.Options{CloseRetry: -1}, "CloseRetry"},
		{"negative MaxQueueEvents", sse.Options{MaxQueueEvents: -1}, "MaxQueueEvents"},
		{"negative MaxQueueBytes", sse.Options{MaxQueueBytes: -1}, "MaxQueueBytes"},
		{"negative MaxTopics", sse.Options{MaxTopics: -1}, "MaxTopics"},
		{"negative MaxLastEventIDLength", sse.Options{MaxLastEventIDLength: -1}, "MaxLastEventIDLength"},
		{"min int MaxQueueEvents", sse.Options{MaxQueueEvents: math.MinInt}, "MaxQueueEvents"},
		{"min duration WriteTimeout", sse.Options{WriteTimeout: math.MinInt64}, "WriteTimeout"},
		{"Retry 1µs", sse.Options{Retry: time.Microsecond}, "Retry"},
		{"Retry 999999ns", sse.Options{Retry: time.Millisecond - 1}, "Retry"},
		{"Retry over 24h", sse.Options{Retry: 25 * time.Hour}, "Retry"},
		{"CloseRetry 1µs", sse.Options{CloseRetry: time.Microsecond}, "CloseRetry"},
		{"CloseRetry huge", sse.Options{CloseRetry: math.MaxInt64}, "CloseRetry"},
		{"HeartbeatInterval 1ns", sse.Options{HeartbeatInterval: time.Nanosecond}, "HeartbeatInterval"},
		{"WriteTimeout 1µs", sse.Options{WriteTimeout: time.Microsecond}, "WriteTimeout"},
		{"SlowConsumer 7", sse.Options{SlowConsumer: 7}, "SlowConsumer"},
		{"SlowConsumer -1", sse.Options{SlowConsumer: -1}, "SlowConsumer"},
		{"ResetEventType LF", sse.Options{ResetEventType: "\n"}, "ResetEventType"},
		{"ResetEventType CR", sse.Options{ResetEventType: "a\rb"}, "ResetEventType"},
		{"ResetEventType NUL", sse.Options{ResetEventType: "a\x00"}, "ResetEventType"},
		{"ResetEventType invalid UTF-8", sse.Options{ResetEventType: "\xff"}, "ResetEventType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := sse.NewHub(tt.opts)
			if tt.wantErr == "" {
				if err != nil || h == nil {
					t.Fatalf("NewHub = %v, %v; want a hub", h, err)
				}
				if h.Store() == nil {
					t.Fatal("Store() is nil with the default store")
				}
				return
			}
			if err == nil {
				t.Fatalf("NewHub succeeded, want an error mentioning %s", tt.wantErr)
			}
			if h != nil {
				t.Errorf("NewHub returned a hub with error %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %s", err, tt.wantErr)
			}
		})
	}
}

func TestNewHubUsesGivenStore(t *testing.T) {
	st := msNew(t, sse.MemoryStoreOptions{Epoch: "given"})
	h, err := sse.NewHub(sse.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if h.Store() != sse.Store(st) {
		t.Fatalf("Store() = %v, want the given store", h.Store())
	}
	id, err := h.Publish(context.Background(), "t", sse.Event{Data: []byte("x")})
	if err != nil || id != "given-1" {
		t.Fatalf("Publish = %q, %v; want given-1", id, err)
	}
}

// optCheckNothingRecorded fails the test if the hub's MemoryStore has
// recorded any event.
func optCheckNothingRecorded(t *testing.T, h *sse.Hub, topics ...string) {
	t.Helper()
	got, err := msAfter(context.Background(), h.Store(), 0, topics, 100)
	if err != nil || len(got) != 0 {
		t.Errorf("Store().After(0, %q) = %v, %v; want nothing recorded", topics, msSeqs(got), err)
	}
	// After(1) is beyond the newest entry only while nothing was appended,
	// whatever the topic.
	if _, err := msAfter(context.Background(), h.Store(), 1, topics, 100); !errors.Is(err, sse.ErrUnknownID) {
		t.Errorf("Store().After(1): %v; want ErrUnknownID as nothing was appended", err)
	}
}

func TestPublishRejects(t *testing.T) {
	tests := []struct {
		name   string
		topic  string
		ev     sse.Event
		wantIs error // matched with errors.Is; nil: any error
	}{
		{"empty topic", "", sse.Event{Data: []byte("x")}, nil},
		{"300-byte topic", strings.Repeat("t", 300), sse.Event{Data: []byte("x")}, nil},
		{"257-byte topic", strings.Repeat("t", 257), sse.Event{Data: []byte("x")}, nil},
		{"invalid UTF-8 topic", "a\xffb", sse.Event{Data: []byte("x")}, nil},
		{"ID set", "t", sse.Event{ID: "mine", Data: []byte("x")}, sse.ErrIDSet},
		{"ID set to a store ID", "t", sse.Event{ID: "e1-1", Data: []byte("x")}, sse.ErrIDSet},
		{"type with LF", "t", sse.Event{Type: "a\nb", Data: []byte("x")}, sse.ErrInvalidEvent},
		{"type with CR", "t", sse.Event{Type: "a\r", Data: []byte("x")}, sse.ErrInvalidEvent},
		{"type with NUL", "t", sse.Event{Type: "a\x00", Data: []byte("x")}, sse.ErrInvalidEvent},
		{"data invalid UTF-8", "t", sse.Event{Data: []byte("\xff")}, sse.ErrInvalidEvent},
		{"comment with LF", "t", sse.Event{Comment: "a\nb", Data: []byte("x")}, sse.ErrInvalidEvent},
		{"negative retry", "t", sse.Event{Retry: -1, Data: []byte("x")}, sse.ErrInvalidEvent},
		{"retry below 1ms", "t", sse.Event{Retry: time.Microsecond, Data: []byte("x")}, sse.ErrInvalidEvent},
		{"comment only", "t", sse.Event{Comment: "hello"}, nil},
		{"retry only", "t", sse.Event{Retry: time.Second}, nil},
		{"comment and retry only", "t", sse.Event{Comment: "hello", Retry: time.Second}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := sse.NewHub(sse.Options{Store: msNew(t, sse.MemoryStoreOptions{Epoch: "e1"})})
			if err != nil {
				t.Fatal(err)
			}
			id, err := h.Publish(context.Background(), tt.topic, tt.ev)
			if err == nil {
				t.Fatalf("Publish(%q, %+v) = %q, nil; want an error", tt.topic, tt.ev, id)
			}
			if id != "" {
				t.Errorf("Publish returned ID %q with error %v", id, err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Publish error %v does not match %v", err, tt.wantIs)
			}
			optCheckNothingRecorded(t, h, tt.topic, "t")
		})
	}
}

func TestPublishAccepts(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		ev    sse.Event
	}{
		{"256-byte topic", strings.Repeat("t", 256), sse.Event{Data: []byte("x")}},
		{"1-byte topic", "t", sse.Event{Data: []byte("x")}},
		{"non-ASCII topic", "événements/ü", sse.Event{Data: []byte("x")}},
		{"zero event", "t", sse.Event{}},
		{"empty non-nil data", "t", sse.Event{Data: []byte{}}},
		{"type without data", "t", sse.Event{Type: "ping"}},
		{"comment with data", "t", sse.Event{Comment: "c", Data: []byte("x")}},
		{"retry with data", "t", sse.Event{Retry: time.Second, Data: []byte("x")}},
		{"multi-line data", "t", sse.Event{Data: []byte("a\nb\r\nc\rd")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := sse.NewHub(sse.Options{Store: msNew(t, sse.MemoryStoreOptions{Epoch: "e1"})})
			if err != nil {
				t.Fatal(err)
			}
			id, err := h.Publish(context.Background(), tt.topic, tt.ev)
			if err != nil || id != "e1-1" {
				t.Fatalf("Publish(%q, %+v) = %q, %v; want e1-1, nil", tt.topic, tt.ev, id, err)
			}
			// The store gives the event back as a client reads it: line
			// breaks as LF.
			got, err := msAfter(context.Background(), h.Store(), 0, []string{tt.topic}, 10)
			if err != nil || len(got) != 1 || got[0].Event.ID != id || got[0].Topic != tt.topic ||
				string(got[0].Event.Data) != normalizeNewlines(string(tt.ev.Data)) || got[0].Event.Type != tt.ev.Type {
				t.Fatalf("Store().After(0) = %+v, %v; want the published event", got, err)
			}
		})
	}
}

func TestPublishWithoutSubscribers(t *testing.T) {
	h, err := sse.NewHub(sse.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ids []string
	for _, topic := range []string{"a", "b", "a"} {
		id, err := h.Publish(ctx, topic, sse.Event{Type: "kind-" + topic, Data: []byte("data-" + topic)})
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if id == "" {
			t.Fatal("Publish returned an empty ID")
		}
		ids = append(ids, id)
	}
	if ids[0] == ids[1] || ids[1] == ids[2] || ids[0] == ids[2] {
		t.Fatalf("IDs not distinct: %q", ids)
	}
	got, err := msAfter(ctx, h.Store(), 0, []string{"a"}, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("Store().After(0, [a]) = %+v, %v; want 2 entries", got, err)
	}
	for i, want := range []string{ids[0], ids[2]} {
		e := got[i]
		if e.Event.ID != want || e.Topic != "a" || string(e.Event.Data) != "data-a" || e.Event.Type != "kind-a" {
			t.Errorf("entry %d = %+v; want ID %q on topic a", i, e, want)
		}
		if pos, err := msPosition(h.Store(), want); err != nil || pos != e.Seq {
			t.Errorf("Position(%q) = %d, %v; want %d", want, pos, err, e.Seq)
		}
	}
	if h.Stats().Streams != 0 {
		t.Errorf("Stats().Streams = %d, want 0", h.Stats().Streams)
	}
}

var errOptStore = errors.New("optFailStore: append refused")

// optFailStore is a MemoryStore whose Append fails while fail is set.
type optFailStore struct {
	*sse.MemoryStore
	fail    atomic.Bool
	appends atomic.Int32 // Append calls, failed or not
}

func (s *optFailStore) Append(ctx context.Context, topic string, ev sse.Event) (sse.Entry, error) {
	s.appends.Add(1)
	if s.fail.Load() {
		return sse.Entry{}, errOptStore
	}
	return s.MemoryStore.Append(ctx, topic, ev)
}

func TestPublishStoreAppendFails(t *testing.T) {
	fs := &optFailStore{MemoryStore: msNew(t, sse.MemoryStoreOptions{Epoch: "e1"})}
	h, err := sse.NewHub(sse.Options{Store: fs})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler(sse.HandlerOptions{Topics: sse.Topics("t")}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	st, err := ssetest.Connect(ctx, nil, srv.URL, "")
	if err != nil {
		cancel()
		srv.Close()
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() {
		st.Close()
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := h.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for h.Stats().Streams != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the stream never subscribed")
		}
		time.Sleep(5 * time.Millisecond)
	}

	fs.fail.Store(true)
	id, err := h.Publish(context.Background(), "t", sse.Event{Data: []byte("lost")})
	if !errors.Is(err, errOptStore) {
		t.Fatalf("Publish with a failing store = %q, %v; want an error wrapping %v", id, err, errOptStore)
	}
	if id != "" {
		t.Errorf("Publish returned ID %q with error %v", id, err)
	}
	if n := fs.appends.Load(); n != 1 {
		t.Errorf("Append called %d times, want 1", n)
	}
	if q := h.Stats().QueuedBytes; q != 0 {
		t.Errorf("QueuedBytes = %d after a failed Publish, want 0", q)
	}

	// The next event the subscriber sees is the one published after the
	// store recovered: nothing of the failed one was delivered.
	fs.fail.Store(false)
	id, err = h.Publish(context.Background(), "t", sse.Event{Data: []byte("kept")})
	if err != nil || id != "e1-1" {
		t.Fatalf("Publish after recovery = %q, %v; want e1-1", id, err)
	}
	ev, err := st.Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if ev.Data != "kept" || ev.LastEventID != id {
		t.Fatalf("subscriber got %+v, want data kept with ID %s", ev, id)
	}
	got, err := msAfter(context.Background(), h.Store(), 0, []string{"t"}, 10)
	if err != nil || len(got) != 1 || string(got[0].Event.Data) != "kept" {
		t.Fatalf("Store().After(0) = %+v, %v; want only the kept event", got, err)
	}
}
