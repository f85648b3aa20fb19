package sseredis_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseredis"
)

// resetThenResume resumes on url from oldID, which must get the reset
// event (reason unknown-id), then resumes from the reset's ID, which must
// get no reset but the event that pub then publishes.
func resetThenResume(t *testing.T, url, oldID string, pub *sse.Hub) {
	t.Helper()
	st := connect(t, url, oldID)
	reset := next(t, st)
	if reset.Type != "sse-reset" || reset.Data != `{"reason":"unknown-id"}` {
		t.Fatalf("resuming from %s gave %+v, want the reset event (unknown-id)", oldID, reset)
	}
	again := connect(t, url, reset.LastEventID)
	id := publish(t, pub, "t", "after")
	if ev := next(t, again); ev.Type != "message" || ev.Data != "after" || ev.LastEventID != id {
		t.Fatalf("resuming from the reset's ID %s gave %+v, want the event published after (%s)", reset.LastEventID, ev, id)
	}
	if ev := next(t, st); ev.Data != "after" || ev.LastEventID != id {
		t.Fatalf("the stream that got the reset then got %+v, want the event published after (%s)", ev, id)
	}
}

// TestResetAfterLostKeys: Redis lost the keys (FLUSHALL, a restart without
// persistence) and nothing was published since. A client resuming from an
// ID of the lost lifetime gets the reset event, whose ID is valid: resuming
// from it is not reset again.
func TestResetAfterLostKeys(t *testing.T) {
	env := newEnv(t)
	a := env.node("A", nodeConfig{direct: true})
	st := connect(t, a.url+"?topic=t", "")
	var old string
	for i := range 3 {
		old = publish(t, a.hub, "t", strconv.Itoa(i))
		next(t, st)
	}
	env.lose()
	resetThenResume(t, a.url+"?topic=t", old, a.hub)
}

// TestResetAfterLowerLifetime: Redis lost the keys, and a process that had
// seen nothing began the new lifetime at 0, below what running hubs have
// delivered (they ignore entries at or below that). Nothing was published
// since, so no notification told them. A client resuming on such a hub
// gets the reset event, whose ID is valid: the store begins a lifetime
// above what it has seen, and resuming from the reset is not reset again.
func TestResetAfterLowerLifetime(t *testing.T) {
	env := newEnv(t)
	a := env.node("A", nodeConfig{direct: true})
	st := connect(t, a.url+"?topic=t", "")
	var old string
	for i := range 5 {
		old = publish(t, a.hub, "t", strconv.Itoa(i))
		next(t, st)
	}
	env.lose()
	b := env.node("B", nodeConfig{direct: true}) // has seen nothing: a lifetime at 0
	resetThenResume(t, a.url+"?topic=t", old, b.hub)
}

// TestResetAfterLostWrites: a failover to a replica that lagged set the
// sequence back within the same epoch, and nothing has told the hub yet
// (its subscription survived, nothing was published). A client resuming
// from a lost write gets the reset event, whose ID is valid: the store
// begins a lifetime above what it has seen, and resuming from the reset is
// not reset again.
func TestResetAfterLostWrites(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	a := env.node("A", nodeConfig{direct: true})
	st := connect(t, a.url+"?topic=t", "")
	var ids []string
	for i := range 10 {
		ids = append(ids, publish(t, a.hub, "t", strconv.Itoa(i)))
		next(t, st)
	}
	last, _ := a.store.Position(ctx, ids[9])
	// What a replica 5 writes behind looks like once promoted.
	for seq := last - 4; seq <= last; seq++ {
		env.admin.XDel(ctx, env.prefix+":stream", strconv.FormatUint(seq, 10)+"-0")
	}
	if err := env.admin.Do(ctx, "XSETID", env.prefix+":stream", strconv.FormatUint(last-5, 10)+"-0").Err(); err != nil {
		t.Fatal(err)
	}
	env.admin.Set(ctx, env.prefix+":seq", last-5, 0)
	resetThenResume(t, a.url+"?topic=t", ids[7], a.hub)
}

// TestResetBelowTheFloor: node A is cut off while B publishes, then Redis
// loses the keys and B publishes again, beginning a lifetime above what A
// delivered. Once back, A's client gets the reset event (A's streams missed
// events), and its ID, A's position before the new lifetime, is valid in
// it: resuming from it replays the new lifetime's events, with no reset.
func TestResetBelowTheFloor(t *testing.T) {
	env := newEnv(t)
	a := env.node("A", nodeConfig{})
	b := env.node("B", nodeConfig{direct: true})
	r := read(connect(t, a.url+"?topic=t", ""))
	publish(t, b.hub, "t", "before")
	waitUntil(t, "the first event", func() bool { return r.count() == 1 })
	a.proxy.Down()
	waitUntil(t, "A to report the outage", func() bool { return !a.states.delivering() })
	for i := range 5 {
		publish(t, b.hub, "t", strconv.Itoa(i))
	}
	env.lose()
	fresh := publish(t, b.hub, "t", "fresh")
	// A's listener tells the hub that events were lost before it delivers
	// the fresh one: hold it there until the client has the reset, so that
	// the reset's ID is not named from what the delivery teaches A's store.
	a.states.onState(func(err error) {
		// (Not waitUntil: this is not the test's goroutine.)
		for end := time.Now().Add(10 * time.Second); errors.Is(err, sse.ErrEvicted) && r.count() < 2 && time.Now().Before(end); {
			time.Sleep(time.Millisecond)
		}
	})
	a.proxy.Up()
	waitUntil(t, "A's client to get the reset and the fresh event", func() bool { return r.count() >= 3 })
	got := r.events()
	if got[1].typ != "sse-reset" || got[1].data != `{"reason":"evicted"}` || got[2].data != "fresh" || got[2].id != fresh {
		t.Fatalf("A's client got %v; want the first event, the reset (evicted), then the fresh one", got)
	}
	resumed := connect(t, a.url+"?topic=t", got[1].id)
	if ev := next(t, resumed); ev.Type != "message" || ev.Data != "fresh" || ev.LastEventID != fresh {
		t.Fatalf("resuming from the reset's ID %s gave %+v, want the fresh event", got[1].id, ev)
	}
}

// TestPositionsBelowTheFloor: a lifetime begun after the keys were lost
// starts its sequence at a floor, the highest Seq its creator had seen, so
// no entry of it is at or below the floor. A position there (a hub names
// its streams' positions so when they began before) is the lifetime's
// start: After from it returns the lifetime's entries, not ErrEvicted.
func TestPositionsBelowTheFloor(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	s := env.store(env.client(""), sseredis.Options{})
	appendN(t, s, func(int) string { return "t" }, 5)
	env.lose()
	first := appendN(t, s, func(int) string { return "t" }, 1)[0]
	epoch, _, _ := strings.Cut(first.Event.ID, "-")
	for _, pos := range []uint64{0, 2, first.Seq - 1} {
		id := s.ID(pos)
		if !strings.HasPrefix(id, epoch+"-") {
			t.Fatalf("ID(%d) = %s, not of the present epoch %s", pos, id, epoch)
		}
		if p, err := s.Position(ctx, id); err != nil || p != pos {
			t.Errorf("Position(%s) = %d, %v; want %d", id, p, err, pos)
		}
		got, err := s.After(ctx, pos, []string{"t"}, 10)
		if err != nil || len(got) != 1 || got[0].Event.ID != first.Event.ID {
			t.Errorf("After(%d) = %d entries, %v; want the lifetime's first entry, %s", pos, len(got), err, first.Event.ID)
		}
	}
	// The floor of another lifetime (left by a version that did not set
	// it) does not count.
	env.admin.Set(ctx, env.prefix+":floor", "1000 0ther", 0)
	got, err := s.After(ctx, first.Seq-1, []string{"t"}, 10)
	if err != nil || len(got) != 1 || got[0].Event.ID != first.Event.ID {
		t.Errorf("with another lifetime's floor, After(%d) = %d entries, %v; want the lifetime's first entry", first.Seq-1, len(got), err)
	}
}
