package sseredis_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseredis"
)

func appendN(t *testing.T, s *sseredis.Store, topic func(i int) string, n int) []sse.Entry {
	t.Helper()
	var out []sse.Entry
	for i := range n {
		e, err := s.Append(context.Background(), topic(i), sse.Event{Data: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		out = append(out, e)
	}
	return out
}

func TestAppendAssignsIDsInOneOrder(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	other := env.store(env.client(""), sseredis.Options{}) // another process, same keys
	ctx := context.Background()
	var prev uint64
	for i := range 20 {
		st := []*sseredis.Store{s, other}[i%2]
		e, err := st.Append(ctx, "t", sse.Event{Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != prev+1 {
			t.Fatalf("Seq %d after %d: the stores do not share one sequence", e.Seq, prev)
		}
		prev = e.Seq
		if e.Event.ID != s.ID(e.Seq) || e.Event.ID != other.ID(e.Seq) {
			t.Fatalf("ID %q, want %q from both stores", e.Event.ID, s.ID(e.Seq))
		}
		if pos, err := s.Position(context.Background(), e.Event.ID); err != nil || pos != e.Seq {
			t.Fatalf("Position(%q) = %d, %v", e.Event.ID, pos, err)
		}
		if time.Since(e.Time).Abs() > time.Minute {
			t.Fatalf("entry time %v is not now", e.Time)
		}
	}
	if n, err := other.Newest(ctx); err != nil || n != prev {
		t.Fatalf("Newest = %d, %v; want %d", n, err, prev)
	}
	if s.ID(0) == "" || !strings.HasSuffix(s.ID(0), "-0") {
		t.Fatalf("ID(0) = %q", s.ID(0))
	}
}

func TestEventFieldsRoundTrip(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	ctx := context.Background()
	events := []sse.Event{
		{Data: nil},
		{Data: []byte("")},
		{Type: "update", Data: []byte("a\r\nb\rc\n"), Retry: 1500 * time.Millisecond, Comment: "note"},
		{Data: []byte("nul\x00byte 世界 ✓ " + strings.Repeat("z", 70000))},
		{Data: []byte("1:2:3:sse1"), Type: "ünï", Comment: "x:y"},
	}
	// Listen sees the notifications; After reads the stream; both must give
	// back exactly what was appended.
	lctx, cancel := context.WithCancel(ctx)
	got := make(chan sse.Entry, len(events))
	done := make(chan error, 1)
	newest, err := s.Newest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- s.Listen(lctx, newest, funcListener{deliver: func(e sse.Entry) { got <- e }}) }()
	var appended []sse.Entry
	for _, ev := range events {
		e, err := s.Append(ctx, "t", ev)
		if err != nil {
			t.Fatal(err)
		}
		appended = append(appended, e)
	}
	read, err := s.After(ctx, newest, []string{"t"}, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range appended {
		if !sameEntry(read[i], want) {
			t.Errorf("After gave %s, want %s", show(read[i]), show(want))
		}
		select {
		case e := <-got:
			if !sameEntry(e, want) {
				t.Errorf("Listen gave %s, want %s", show(e), show(want))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Listen delivered nothing")
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Listen returned %v, want context.Canceled", err)
	}
}

func sameEntry(a, b sse.Entry) bool {
	return a.Topic == b.Topic && a.Seq == b.Seq && a.Time.Equal(b.Time) && a.Event.ID == b.Event.ID &&
		a.Event.Type == b.Event.Type && string(a.Event.Data) == string(b.Event.Data) &&
		a.Event.Retry == b.Event.Retry && a.Event.Comment == b.Event.Comment
}

func show(e sse.Entry) string {
	d := string(e.Event.Data)
	if len(d) > 30 {
		d = d[:30] + "..."
	}
	return fmt.Sprintf("{%s %d %v id=%s type=%q data=%q retry=%v comment=%q}", e.Topic, e.Seq, e.Time, e.Event.ID, e.Event.Type, d, e.Event.Retry, e.Event.Comment)
}

func TestAfter(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	ctx := context.Background()
	// 3000 entries, topic "rare" every 700th: the pages of the read script
	// (1024 entries scanned at most) must be chained.
	entries := appendN(t, s, func(i int) string {
		if i%700 == 0 {
			return "rare"
		}
		return []string{"a", "b"}[i%2]
	}, 3000)
	seqs := func(es []sse.Entry) string {
		var b strings.Builder
		for _, e := range es {
			fmt.Fprintf(&b, "%d,", e.Seq)
		}
		return b.String()
	}
	want := func(after uint64, topics []string, limit int) []sse.Entry {
		var out []sse.Entry
		for _, e := range entries {
			if e.Seq > after && len(out) < limit && (e.Topic == topics[0] || len(topics) > 1 && e.Topic == topics[1]) {
				out = append(out, e)
			}
		}
		return out
	}
	for _, c := range []struct {
		after  uint64
		topics []string
		limit  int
	}{
		{0, []string{"rare"}, 100},
		{1, []string{"rare"}, 2},
		{0, []string{"a", "rare"}, 256},
		{2000, []string{"b"}, 5000},
		{entries[2999].Seq - 1, []string{"a", "b"}, 10},
		{entries[2999].Seq, []string{"a"}, 10},
		{0, []string{"none"}, 10},
	} {
		got, err := s.After(ctx, c.after, c.topics, c.limit)
		if err != nil {
			t.Fatalf("After(%d, %v, %d): %v", c.after, c.topics, c.limit, err)
		}
		if w := want(c.after, c.topics, c.limit); seqs(got) != seqs(w) {
			t.Errorf("After(%d, %v, %d) = %d entries, want %d", c.after, c.topics, c.limit, len(got), len(w))
		}
	}
	for _, e := range []sse.Entry{entries[0], entries[1234]} {
		got, err := s.After(ctx, e.Seq-1, []string{e.Topic}, 1)
		if err != nil || len(got) != 1 || !sameEntry(got[0], e) {
			t.Errorf("After(%d) = %v, %v; want %s", e.Seq-1, got, err, show(e))
		}
	}
	if _, err := s.After(ctx, entries[2999].Seq+1, []string{"a"}, 10); !errors.Is(err, sse.ErrUnknownID) {
		t.Errorf("After beyond the newest: %v, want ErrUnknownID", err)
	}
	if got, err := s.After(ctx, 0, nil, 10); err != nil || len(got) != 0 {
		t.Errorf("After without topics: %v, %v", got, err)
	}
}

func TestHistoryBounds(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	t.Run("MaxEvents", func(t *testing.T) {
		s := env.store(env.client(""), sseredis.Options{MaxEvents: 5})
		entries := appendN(t, s, func(int) string { return "t" }, 12)
		if n, _ := env.admin.XLen(ctx, env.prefix+":stream").Result(); n != 5 {
			t.Errorf("the stream holds %d entries, want 5", n)
		}
		// Entries 8..12 remain: after 7 is complete, after 6 is not.
		got, err := s.After(ctx, entries[6].Seq, []string{"t"}, 100)
		if err != nil || len(got) != 5 || got[0].Seq != entries[7].Seq {
			t.Errorf("After(%d) = %d entries, %v; want the 5 kept", entries[6].Seq, len(got), err)
		}
		for _, after := range []uint64{0, entries[0].Seq, entries[5].Seq} {
			if _, err := s.After(ctx, after, []string{"t"}, 100); !errors.Is(err, sse.ErrEvicted) {
				t.Errorf("After(%d): %v, want ErrEvicted", after, err)
			}
		}
	})
	env.lose()
	t.Run("MaxAge", func(t *testing.T) {
		s := env.store(env.client(""), sseredis.Options{MaxAge: 300 * time.Millisecond})
		old := appendN(t, s, func(int) string { return "t" }, 3)
		time.Sleep(400 * time.Millisecond)
		// Expired but not yet trimmed: After knows anyway.
		if _, err := s.After(ctx, old[0].Seq-1, []string{"t"}, 100); !errors.Is(err, sse.ErrEvicted) {
			t.Errorf("After over expired entries: %v, want ErrEvicted", err)
		}
		// Appends trim expired entries (every 16th does).
		fresh := appendN(t, s, func(int) string { return "t" }, 20)
		if n, _ := env.admin.XLen(ctx, env.prefix+":stream").Result(); n != 20 {
			t.Errorf("after 20 appends the stream holds %d entries, want the 20 fresh ones", n)
		}
		got, err := s.After(ctx, old[2].Seq, []string{"t"}, 100)
		if err != nil || len(got) != 20 || got[0].Seq != fresh[0].Seq {
			t.Errorf("After the expired ones: %d entries, %v", len(got), err)
		}
	})
}

func TestPosition(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	e := appendN(t, s, func(int) string { return "t" }, 3)[2]
	epoch, _, _ := strings.Cut(e.Event.ID, "-")
	for _, id := range []string{
		"", "-", epoch, epoch + "-", epoch + "-x", epoch + "-+3", epoch + "-03", epoch + "--3",
		epoch + "-3-0", "other-3", "ffffffffffff-3", epoch + " -3", epoch + "-18446744073709551616",
		strings.Repeat("a", 33) + "-3",
	} {
		if _, err := s.Position(context.Background(), id); !errors.Is(err, sse.ErrUnknownID) {
			t.Errorf("Position(%q): %v, want ErrUnknownID", id, err)
		}
	}
	if pos, err := s.Position(context.Background(), e.Event.ID); err != nil || pos != e.Seq {
		t.Errorf("Position(%q) = %d, %v", e.Event.ID, pos, err)
	}
	beyond := epoch + "-" + strconv.FormatUint(e.Seq+5, 10)
	if _, err := s.Position(context.Background(), beyond); !errors.Is(err, sse.ErrUnknownID) {
		t.Errorf("Position(%q) beyond the newest: %v, want ErrUnknownID", beyond, err)
	}
	if _, err := s.After(context.Background(), e.Seq+5, []string{"t"}, 10); !errors.Is(err, sse.ErrUnknownID) {
		t.Errorf("After(%d) beyond the newest: %v, want ErrUnknownID", e.Seq+5, err)
	}
	// An ID that another process issued after this one last looked is
	// known: Position asks Redis.
	other := env.store(env.client(""), sseredis.Options{})
	newer := appendN(t, other, func(int) string { return "t" }, 3)[2]
	if pos, err := s.Position(context.Background(), newer.Event.ID); err != nil || pos != newer.Seq {
		t.Errorf("Position(%q) of an ID issued elsewhere = %d, %v", newer.Event.ID, pos, err)
	}
}

// TestNewLifetime: when Redis loses the keys (flush, restart without
// persistence), a new epoch begins: old IDs are unknown, and Seq keeps
// growing, so running hubs deliver the new events.
func TestNewLifetime(t *testing.T) {
	env := newEnv(t)
	a := env.node("a", nodeConfig{})
	st := connect(t, a.url+"?topic=t", "")
	var oldID string
	for i := range 5 {
		oldID = publish(t, a.hub, "t", "old"+strconv.Itoa(i))
		if ev := next(t, st); ev.LastEventID != oldID {
			t.Fatalf("got %+v", ev)
		}
	}
	oldSeq, _ := a.store.Position(context.Background(), oldID)
	env.lose()
	id := publish(t, a.hub, "t", "new")
	if ev := next(t, st); ev.Data != "new" || ev.LastEventID != id {
		t.Fatalf("after the keys were lost got %+v, want the new event", ev)
	}
	if id[:strings.IndexByte(id, '-')] == oldID[:strings.IndexByte(oldID, '-')] {
		t.Fatalf("the epoch did not change: %s then %s", oldID, id)
	}
	if pos, err := a.store.Position(context.Background(), id); err != nil || pos <= oldSeq {
		t.Fatalf("the new lifetime's first Seq is %d (%v); want above %d", pos, err, oldSeq)
	}
	if _, err := a.store.Position(context.Background(), oldID); !errors.Is(err, sse.ErrUnknownID) {
		t.Fatalf("Position of an ID of the old lifetime: %v, want ErrUnknownID", err)
	}
	resumed := connect(t, a.url+"?topic=t", oldID)
	if ev := next(t, resumed); ev.Type != "sse-reset" || ev.Data != `{"reason":"unknown-id"}` {
		t.Fatalf("resuming with an ID of the old lifetime gave %+v, want a reset", ev)
	}
}

// TestNewLifetimeBelowPosition: a process that starts right after Redis
// lost the keys begins the new history at 0, below what running hubs have
// delivered; their listeners raise the sequence, and they deliver again.
func TestNewLifetimeBelowPosition(t *testing.T) {
	env := newEnv(t)
	a := env.node("a", nodeConfig{direct: true})
	st := connect(t, a.url+"?topic=t", "")
	for i := range 50 {
		publish(t, a.hub, "t", strconv.Itoa(i))
	}
	for range 50 {
		next(t, st)
	}
	env.lose()
	b := env.node("b", nodeConfig{direct: true}) // knows nothing: new lifetime at 0
	// A's listener sees it at the latest with the first event below its
	// position; it raises the sequence, so the next events reach A.
	publish(t, b.hub, "t", "low")
	deadline := time.Now().Add(20 * time.Second)
	for {
		id := publish(t, b.hub, "t", "probe")
		seq, _ := b.store.Position(context.Background(), id)
		if seq > 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sequence was not raised above A's position")
		}
		time.Sleep(20 * time.Millisecond)
	}
	id := publish(t, b.hub, "t", "after")
	for {
		ev := next(t, st)
		if ev.Data == "after" {
			if ev.LastEventID != id {
				t.Fatalf("got %+v, want id %s", ev, id)
			}
			break
		}
	}
}

// TestLostWrites: a failover to a replica that had not yet received the
// newest writes sets the sequence back within the same epoch. Listeners
// notice when they resubscribe, and begin a new history above what they
// delivered: new events reach their clients, and IDs of the lost writes,
// which could now name other events, are unknown.
func TestLostWrites(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	a := env.node("A", nodeConfig{direct: true})
	st := connect(t, a.url+"?topic=t", "")
	var ids []string
	for i := range 30 {
		ids = append(ids, publish(t, a.hub, "t", strconv.Itoa(i)))
		next(t, st)
	}
	// What a replica 10 writes behind looks like once promoted.
	last, _ := a.store.Position(context.Background(), ids[29])
	for seq := last - 9; seq <= last; seq++ {
		env.admin.XDel(ctx, env.prefix+":stream", strconv.FormatUint(seq, 10)+"-0")
	}
	env.admin.Set(ctx, env.prefix+":seq", last-10, 0)
	env.killClients("pubsub") // a failover drops the connections
	waitUntil(t, "a new history", func() bool {
		epoch, _ := env.admin.Get(ctx, env.prefix+":epoch").Result()
		return !strings.HasPrefix(ids[0], epoch+"-")
	})
	id := publish(t, a.hub, "t", "after")
	if ev := next(t, st); ev.Data != "after" || ev.LastEventID != id {
		t.Fatalf("after the lost writes the client got %+v, want the new event", ev)
	}
	if seq, _ := a.store.Position(context.Background(), id); seq <= last {
		t.Fatalf("the new history begins at %d, not above %d", seq, last)
	}
	resumed := connect(t, a.url+"?topic=t", ids[25])
	if ev := next(t, resumed); ev.Type != "sse-reset" || ev.Data != `{"reason":"unknown-id"}` {
		t.Fatalf("resuming from a lost write gave %+v, want a reset", ev)
	}
	if !strings.Contains(env.logs.String(), "lost writes") {
		t.Error("the lost writes were not logged")
	}
}

func TestNewErrors(t *testing.T) {
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: redisAddr()})
	defer c.Close()
	for _, c := range []struct {
		opts sseredis.Options
		want string
	}{
		{sseredis.Options{}, "Options.Client is nil"},
		{sseredis.Options{Client: c, MaxEvents: -1}, "Options.MaxEvents is -1"},
		{sseredis.Options{Client: c, MaxAge: -time.Second}, "Options.MaxAge is -1s"},
		{sseredis.Options{Client: c, MaxAge: time.Microsecond}, "Options.MaxAge is 1µs"},
		{sseredis.Options{Client: redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{redisAddr()}})}, "has no hash tag"},
	} {
		s, err := sseredis.New(ctx, c.opts)
		if err == nil || s != nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, %v; want an error saying %q", c.opts, s, err, c.want)
		}
	}

	// Nothing listens on a port just closed.
	closed := startProxy(t, redisAddr())
	closed.Down()
	unreachable := redis.NewClient(&redis.Options{Addr: closed.addr})
	defer unreachable.Close()
	start := time.Now()
	s, err := sseredis.New(ctx, sseredis.Options{Client: unreachable})
	if err == nil || s != nil || !strings.Contains(err.Error(), "Redis is not reachable") {
		t.Errorf("New with Redis unreachable = %v, %v; want an error saying so", s, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("New took %v to fail", d)
	}
	t.Logf("unreachable: %v", err)
}
