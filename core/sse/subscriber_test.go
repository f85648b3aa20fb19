package sse

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func newTestHub(t *testing.T, opts Options) *Hub {
	t.Helper()
	h, err := NewHub(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func seqs(batch []queued) string {
	var s []string
	for _, q := range batch {
		s = append(s, strconv.FormatUint(q.seq, 10))
	}
	return strings.Join(s, ",")
}

func TestQueueLimits(t *testing.T) {
	frame := make([]byte, 100)
	tests := []struct {
		name        string
		opts        Options
		frames      int
		wantSeqs    string
		wantDropped bool
		wantEnded   EndReason
	}{
		{"under both bounds", Options{MaxQueueEvents: 5, MaxQueueBytes: 1000}, 5, "1,2,3,4,5", false, 0},
		{"disconnect on events", Options{MaxQueueEvents: 3}, 5, "1,2,3", false, EndSlowConsumer},
		{"disconnect on bytes", Options{MaxQueueBytes: 250}, 5, "1,2", false, EndSlowConsumer},
		{"drop oldest on events", Options{MaxQueueEvents: 3, SlowConsumer: DropOldest}, 5, "3,4,5", true, 0},
		{"drop oldest on bytes", Options{MaxQueueBytes: 250, SlowConsumer: DropOldest}, 5, "4,5", true, 0},
		{"frame larger than the byte bound", Options{MaxQueueBytes: 50, SlowConsumer: DropOldest}, 2, "", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSubscriber(newTestHub(t, tt.opts), []string{"t"})
			for i := 1; i <= tt.frames; i++ {
				s.enqueue(uint64(i), frame)
			}
			batch, dropped, ended := s.take()
			if seqs(batch) != tt.wantSeqs || dropped != tt.wantDropped || ended != tt.wantEnded {
				t.Errorf("take() = [%s], dropped %v, ended %v; want [%s], %v, %v",
					seqs(batch), dropped, ended, tt.wantSeqs, tt.wantDropped, tt.wantEnded)
			}
			if tt.wantEnded == 0 && len(frame) <= s.hub.opts.MaxQueueBytes {
				if s.enqueue(99, frame); s.queuedBytes() != len(frame) {
					t.Errorf("after take, queue holds %d bytes, want %d", s.queuedBytes(), len(frame))
				}
			}
		})
	}
}

func TestEnqueueWakesOncePerBatch(t *testing.T) {
	s := newSubscriber(newTestHub(t, Options{}), []string{"t"})
	for i := range 10 {
		s.enqueue(uint64(i+1), []byte("x"))
	}
	<-s.notify
	select {
	case <-s.notify:
		t.Fatal("a second wake-up for the same batch")
	default:
	}
	s.take()
	s.enqueue(11, []byte("x"))
	select {
	case <-s.notify:
	default:
		t.Fatal("no wake-up for a new batch")
	}
}

// TestDropOldestSendsReset checks the bytes a DropOldest stream writes: the
// reset event first, then the surviving events.
func TestDropOldestSendsReset(t *testing.T) {
	h := newTestHub(t, Options{MaxQueueEvents: 2, SlowConsumer: DropOldest, Store: mustMemoryStore(t, "e")})
	s := newSubscriber(h, []string{"t"})
	s.after = 7
	for i := uint64(8); i <= 10; i++ {
		s.enqueue(i, []byte("data: "+strconv.FormatUint(i, 10)+"\n\n"))
	}
	batch, dropped, _ := s.take()
	var buf []byte
	got := string(h.frames(&buf, s, batch, dropped, false))
	want := "id: e-7\nevent: sse-reset\ndata: {\"reason\":\"dropped\"}\n\ndata: 9\n\ndata: 10\n\n"
	if got != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
}

func mustMemoryStore(t *testing.T, epoch string) *MemoryStore {
	s, err := NewMemoryStore(MemoryStoreOptions{Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHeartbeatSkipsActiveStreams drives the hub's ticker by hand.
func TestHeartbeatSkipsActiveStreams(t *testing.T) {
	h := newTestHub(t, Options{})
	active, idle := newSubscriber(h, []string{"t"}), newSubscriber(h, []string{"t"})
	h.register(active)
	h.register(idle)
	defer h.unregister(active)
	defer h.unregister(idle)

	active.wrote.Store(true)
	h.tick(time.Now())
	if active.beat.Load() || !idle.beat.Load() {
		t.Fatalf("after one tick: active beat %v, idle beat %v; want false, true", active.beat.Load(), idle.beat.Load())
	}
	select {
	case <-idle.notify:
	default:
		t.Fatal("idle stream not woken for its heartbeat")
	}
	h.tick(time.Now()) // nothing written since the last tick: now the active one is due too
	if !active.beat.Load() {
		t.Fatal("a stream silent for a whole tick got no heartbeat")
	}
}

func TestFramesSkipsReplayedEvents(t *testing.T) {
	h := newTestHub(t, Options{})
	s := newSubscriber(h, []string{"t"})
	s.after = 5 // replay sent up to 5
	batch := []queued{{4, []byte("4")}, {5, []byte("5")}, {6, []byte("6")}, {7, []byte("7")}}
	var buf []byte
	if got := string(h.frames(&buf, s, batch, false, false)); got != "67" || s.after != 7 {
		t.Errorf("frames = %q, after %d; want \"67\", 7", got, s.after)
	}
	one := []queued{{8, []byte("8")}}
	if got := h.frames(&buf, s, one, false, false); &got[0] != &one[0].frame[0] {
		t.Error("a single frame was copied")
	}
}

func TestUnregisterKeepsTopicIndex(t *testing.T) {
	h := newTestHub(t, Options{})
	var subs []*subscriber
	for i := range 5 {
		s := newSubscriber(h, []string{"a", "b" + strconv.Itoa(i%2)})
		h.register(s)
		subs = append(subs, s)
	}
	for _, i := range []int{1, 4, 0, 3, 2} {
		h.unregister(subs[i])
		for topic, list := range h.topics {
			for slot, s := range list {
				for j, t2 := range s.topics {
					if t2 == topic && s.slots[j] != slot {
						t.Fatalf("subscriber at %s[%d] thinks it is at %d", topic, slot, s.slots[j])
					}
				}
			}
		}
	}
	if len(h.topics) != 0 || len(h.subs) != 0 || h.stopBeat != nil {
		t.Fatalf("hub not empty: %d topics, %d subs, heartbeat running %v", len(h.topics), len(h.subs), h.stopBeat != nil)
	}
}
