package sseredis_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseredis"
	"github.com/ssekit/ssekit/core/ssetest"
)

// TestNewEpochAfterLostKeys: when Redis loses the keys (flush, restart
// without persistence), a new epoch begins: clients resuming with IDs of
// the old one are reset, and running hubs go on delivering.
func TestNewEpochAfterLostKeys(t *testing.T) {
	env := newEnv(t)
	a := env.node("a", nodeConfig{direct: true})
	st := connect(t, a.url+"?topic=t", "")
	waitUntil(t, "the subscription", func() bool { return env.subscribers("t") == 1 })
	var oldID string
	for i := range 5 {
		oldID = publish(t, a.hub, "t", "old"+strconv.Itoa(i))
		if ev := next(t, st); ev.LastEventID != oldID {
			t.Fatalf("got %+v", ev)
		}
	}
	oldEpoch := a.store.Epoch()
	env.lose()
	waitUntil(t, "a new epoch", func() bool { return a.store.Epoch() != oldEpoch })
	id := publish(t, a.hub, "t", "new")
	if ev := next(t, st); ev.Data != "new" || ev.LastEventID != id {
		t.Fatalf("after the keys were lost got %+v, want the new event", ev)
	}
	resumed := connect(t, a.url+"?topic=t", oldID)
	if ev := next(t, resumed); ev.Type != "sse-reset" || ev.Data != `{"reason":"unknown-id"}` {
		t.Fatalf("resuming with an ID of the old epoch gave %+v, want a reset", ev)
	}
}

// TestRunAfterLostKeys: a topic that Redis forgot begins its numbering
// above every Seq it had, so that a position of the old run is never
// taken for one of the new.
func TestRunAfterLostKeys(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	ctx := context.Background()
	old := appendN(t, s, func(int) string { return "t" }, 5)
	env.admin.Del(ctx, env.prefix+":{t}:m", env.prefix+":{t}:s") // the topic only
	fresh := appendN(t, s, func(int) string { return "t" }, 5)
	if fresh[0].Seq <= old[4].Seq {
		t.Fatalf("the new run begins at %d, not above %d", fresh[0].Seq, old[4].Seq)
	}
	for _, e := range old {
		if _, err := s.After(ctx, []string{"t"}, []uint64{e.Seq}, 10); !errors.Is(err, sse.ErrEvicted) {
			t.Errorf("After(%d) of the old run: %v, want ErrEvicted", e.Seq, err)
		}
	}
	if got, err := s.After(ctx, []string{"t"}, []uint64{fresh[0].Seq - 1}, 10); err != nil || len(got) != 5 {
		t.Errorf("After the new run's start: %d entries, %v", len(got), err)
	}
}

// TestTopicTTL: a topic nobody publishes on is forgotten after TopicTTL;
// its history expires after MaxAge. A client that resumes on it later is
// reset, and a new run begins above the old.
func TestTopicTTL(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{MaxAge: 200 * time.Millisecond, TopicTTL: 400 * time.Millisecond})
	ctx := context.Background()
	old := appendN(t, s, func(int) string { return "t" }, 3)
	time.Sleep(300 * time.Millisecond)
	if n, _ := env.admin.Exists(ctx, env.prefix+":{t}:s").Result(); n != 0 {
		t.Errorf("the history outlived MaxAge")
	}
	// Nothing was published after the last: resuming from it is fine.
	if got, err := s.After(ctx, []string{"t"}, []uint64{old[2].Seq}, 10); err != nil || len(got) != 0 {
		t.Errorf("After the newest, its history expired: %v, %v", got, err)
	}
	time.Sleep(200 * time.Millisecond)
	if n, _ := env.admin.Exists(ctx, env.prefix+":{t}:m").Result(); n != 0 {
		t.Errorf("the topic outlived TopicTTL")
	}
	if _, err := s.After(ctx, []string{"t"}, []uint64{old[2].Seq}, 10); !errors.Is(err, sse.ErrEvicted) {
		t.Errorf("After on a forgotten topic: %v, want ErrEvicted", err)
	}
	if e := appendN(t, s, func(int) string { return "t" }, 1)[0]; e.Seq <= old[2].Seq {
		t.Errorf("the new run begins at %d, not above %d", e.Seq, old[2].Seq)
	}
}

// TestLostWrites: a failover to a replica that had not received the newest
// writes sets a topic's Seq back. The listener notices when it
// resubscribes, resets the topic's streams and begins a new run above what
// it delivered: new events reach the clients, and IDs of the lost writes,
// which could now name other events, are reset.
func TestLostWrites(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	a := env.node("A", nodeConfig{direct: true})
	st := connect(t, a.url+"?topic=t", "")
	waitUntil(t, "the subscription", func() bool { return env.subscribers("t") == 1 })
	var ids []string
	var last uint64
	for i := range 30 {
		ids = append(ids, publish(t, a.hub, "t", strconv.Itoa(i)))
		next(t, st)
	}
	last, _ = a.store.Newest(ctx, "t")
	// What a replica 10 writes behind looks like once promoted.
	for seq := last - 9; seq <= last; seq++ {
		env.admin.XDel(ctx, env.prefix+":{t}:s", strconv.FormatUint(seq, 10)+"-0")
	}
	env.admin.HSet(ctx, env.prefix+":{t}:m", "n", strconv.FormatUint(last-10, 10))
	env.killClients("pubsub") // a failover drops the connections
	if ev := next(t, st); ev.Type != "sse-reset" || ev.Data != `{"reason":"evicted"}` {
		t.Fatalf("after the lost writes the client got %+v, want the reset", ev)
	}
	id := publish(t, a.hub, "t", "after")
	if ev := next(t, st); ev.Data != "after" || ev.LastEventID != id {
		t.Fatalf("after the lost writes the client got %+v, want the new event", ev)
	}
	if seq, _ := a.store.Newest(ctx, "t"); seq <= last {
		t.Fatalf("the new run begins at %d, not above %d", seq, last)
	}
	resumed := connect(t, a.url+"?topic=t", ids[25])
	if ev := next(t, resumed); ev.Type != "sse-reset" {
		t.Fatalf("resuming from a lost write gave %+v, want a reset", ev)
	}
}

// TestFrozenConnection: a network that stops passing bytes without closing
// the connection (a dead peer, a dropped route) is found by pinging the
// subscription; the hub reports it, and once the network is back the
// client gets what was published meanwhile.
func TestFrozenConnection(t *testing.T) {
	env := newEnv(t)
	a := env.node("A", nodeConfig{})
	b := env.node("B", nodeConfig{direct: true})
	st := connect(t, a.url+"?topic=t", "")
	waitUntil(t, "the subscription", func() bool { return env.subscribers("t") == 1 })
	first := publish(t, b.hub, "t", "before")
	if ev := next(t, st); ev.LastEventID != first {
		t.Fatalf("got %+v", ev)
	}
	a.proxy.Freeze()
	start := time.Now()
	waitUntil(t, "A to report the frozen connection", func() bool { return !a.states.delivering() })
	t.Logf("found after %v", time.Since(start).Round(10*time.Millisecond))
	var ids []string
	for i := range 10 {
		ids = append(ids, publish(t, b.hub, "t", strconv.Itoa(i)))
	}
	a.proxy.Thaw()
	waitUntil(t, "A to recover", func() bool { return a.states.delivering() })
	for i, id := range ids {
		if ev := ssetest.NextWithin(t, st, 10*time.Second); ev.Data != strconv.Itoa(i) || ev.LastEventID != id {
			t.Fatalf("got %+v, want %d with id %s", ev, i, id)
		}
	}
}
