package sseredis_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/ssekit/core/internal/testkit"
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

// TestSeqPerTopic: each topic is numbered on its own, by one, and stores
// of other processes share the numbering.
func TestSeqPerTopic(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	other := env.store(env.client(""), sseredis.Options{}) // another process, same keys
	ctx := context.Background()
	if s.Epoch() == "" || s.Epoch() != other.Epoch() {
		t.Fatalf("epochs %q and %q", s.Epoch(), other.Epoch())
	}
	prev := map[string]uint64{}
	for i := range 30 {
		st := []*sseredis.Store{s, other}[i%2]
		topic := []string{"a", "b", "c"}[i%3]
		e, err := st.Append(ctx, topic, sse.Event{Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := prev[topic]; ok && e.Seq != p+1 {
			t.Fatalf("topic %s: Seq %d after %d", topic, e.Seq, p)
		}
		prev[topic] = e.Seq
		if want := s.Epoch() + "-" + strconv.FormatUint(e.Seq, 10); e.Event.ID != want || e.Topic != topic {
			t.Fatalf("entry %s %q, want %s %q", e.Topic, e.Event.ID, topic, want)
		}
		if time.Since(e.Time).Abs() > time.Minute {
			t.Fatalf("entry time %v is not now", e.Time)
		}
	}
	for topic, p := range prev {
		if n, err := other.Newest(ctx, topic); err != nil || n != p {
			t.Fatalf("Newest(%s) = %d, %v; want %d", topic, n, err, p)
		}
	}
}

// TestNewestOfAnUnknownTopic: the position Newest gives for a topic Redis
// does not hold is before its first event, on every process.
func TestNewestOfAnUnknownTopic(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	ctx := context.Background()
	pos, err := s.Newest(ctx, "quiet")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Newest(ctx, "quiet"); again != pos {
		t.Fatalf("Newest changed from %d to %d with nothing published", pos, again)
	}
	if got, err := s.After(ctx, []string{"quiet"}, []uint64{pos}, 10); err != nil || len(got) != 0 {
		t.Fatalf("After(Newest) = %v, %v; want nothing", got, err)
	}
	e := appendN(t, s, func(int) string { return "quiet" }, 1)[0]
	if e.Seq != pos+1 {
		t.Fatalf("first Seq %d, want %d", e.Seq, pos+1)
	}
	got, err := s.After(ctx, []string{"quiet"}, []uint64{pos}, 10)
	if err != nil || len(got) != 1 || !sameEntry(got[0], e) {
		t.Fatalf("After(Newest) = %v, %v; want the event", got, err)
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
		{Data: []byte("1:2:3:sse2"), Type: "ünï", Comment: "x:y"},
	}
	// Listen sees the messages; After reads the stream; both must give
	// back exactly what was appended.
	newest, err := s.Newest(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t, s)
	s.Follow("t", newest)
	waitUntil(t, "the subscription", func() bool { return l.subscribed(env, 1) })
	var appended []sse.Entry
	for _, ev := range events {
		e, err := s.Append(ctx, "t", ev)
		if err != nil {
			t.Fatal(err)
		}
		appended = append(appended, e)
	}
	read, err := s.After(ctx, []string{"t"}, []uint64{newest}, 100)
	if err != nil || len(read) != len(appended) {
		t.Fatalf("After = %d entries, %v", len(read), err)
	}
	waitUntil(t, "the entries", func() bool { return l.count() >= len(events) })
	got := l.list()
	for i, want := range appended {
		if !sameEntry(read[i], want) {
			t.Errorf("After gave %s, want %s", show(read[i]), show(want))
		}
		if !sameEntry(got[i], want) {
			t.Errorf("Listen gave %s, want %s", show(got[i]), show(want))
		}
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

func seqs(es []sse.Entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%s%d,", e.Topic, e.Seq)
	}
	return b.String()
}

func TestAfter(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	ctx := context.Background()
	entries := appendN(t, s, func(i int) string {
		if i%100 == 0 {
			return "rare"
		}
		return []string{"a", "b"}[i%2]
	}, 1200)
	by := map[string][]sse.Entry{}
	for _, e := range entries {
		by[e.Topic] = append(by[e.Topic], e)
	}
	// want checks got: each topic's entries in order, from its position
	// on, as many in all as the limit allows.
	check := func(got []sse.Entry, topics []string, after []uint64, limit int) bool {
		total, next := 0, map[string]int{}
		for i, t := range topics {
			for j, e := range by[t] {
				if e.Seq > after[i] {
					next[t] = j
					total += len(by[t]) - j
					break
				}
			}
			if _, ok := next[t]; !ok {
				next[t] = len(by[t])
			}
		}
		if len(got) != min(total, limit) {
			return false
		}
		for _, e := range got {
			j := next[e.Topic]
			if j >= len(by[e.Topic]) || !sameEntry(by[e.Topic][j], e) {
				return false
			}
			next[e.Topic]++
		}
		return true
	}
	start := func(t string) uint64 { return by[t][0].Seq - 1 }
	for _, c := range []struct {
		topics []string
		after  []uint64
		limit  int
	}{
		{[]string{"rare"}, []uint64{start("rare")}, 100},
		{[]string{"rare"}, []uint64{start("rare") + 1}, 2},
		{[]string{"a", "rare"}, []uint64{start("a"), start("rare")}, 256},
		{[]string{"a", "b"}, []uint64{by["a"][300].Seq, by["b"][10].Seq}, 5000},
		{[]string{"a", "b"}, []uint64{by["a"][len(by["a"])-1].Seq, by["b"][len(by["b"])-2].Seq}, 10},
		{[]string{"never"}, []uint64{0}, 10},
	} {
		got, err := s.After(ctx, c.topics, c.after, c.limit)
		if err != nil {
			t.Fatalf("After(%v, %v, %d): %v", c.topics, c.after, c.limit, err)
		}
		if !check(got, c.topics, c.after, c.limit) {
			t.Errorf("After(%v, %v, %d) = %s", c.topics, c.after, c.limit, seqs(got))
		}
	}
	last := by["a"][len(by["a"])-1].Seq
	if _, err := s.After(ctx, []string{"b", "a"}, []uint64{start("b"), last + 1}, 10); !errors.Is(err, sse.ErrUnknownID) {
		t.Errorf("After beyond the newest: %v, want ErrUnknownID", err)
	}
	if _, err := s.After(ctx, []string{"a"}, []uint64{start("a") - 5}, 10); !errors.Is(err, sse.ErrEvicted) {
		t.Errorf("After from before the topic's history: %v, want ErrEvicted", err)
	}
	if _, err := s.After(ctx, []string{"never"}, []uint64{12345}, 10); !errors.Is(err, sse.ErrEvicted) {
		t.Errorf("After on a topic Redis does not hold, from a position: %v, want ErrEvicted", err)
	}
	if got, err := s.After(ctx, nil, nil, 10); err != nil || len(got) != 0 {
		t.Errorf("After without topics: %v, %v", got, err)
	}
}

func TestHistoryBounds(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	t.Run("MaxEventsPerTopic", func(t *testing.T) {
		s := env.store(env.client(""), sseredis.Options{MaxEventsPerTopic: 5})
		entries := appendN(t, s, func(int) string { return "t" }, 12)
		other := appendN(t, s, func(int) string { return "u" }, 3)
		if n, _ := env.admin.XLen(ctx, env.prefix+":{t}:s").Result(); n != 5 {
			t.Errorf("the stream holds %d entries, want 5", n)
		}
		// Entries 8..12 remain: after 7 is complete, after 6 is not.
		got, err := s.After(ctx, []string{"t"}, []uint64{entries[6].Seq}, 100)
		if err != nil || len(got) != 5 || got[0].Seq != entries[7].Seq {
			t.Errorf("After(%d) = %d entries, %v; want the 5 kept", entries[6].Seq, len(got), err)
		}
		for _, after := range []uint64{entries[0].Seq, entries[5].Seq} {
			if _, err := s.After(ctx, []string{"t"}, []uint64{after}, 100); !errors.Is(err, sse.ErrEvicted) {
				t.Errorf("After(%d): %v, want ErrEvicted", after, err)
			}
		}
		// A loud topic does not push a quiet one's history out.
		if got, err := s.After(ctx, []string{"u"}, []uint64{other[0].Seq - 1}, 100); err != nil || len(got) != 3 {
			t.Errorf("the quiet topic: %d entries, %v", len(got), err)
		}
	})
	env.lose()
	t.Run("MaxAge", func(t *testing.T) {
		s := env.store(env.client(""), sseredis.Options{MaxAge: 500 * time.Millisecond})
		old := appendN(t, s, func(int) string { return "t" }, 3)
		time.Sleep(300 * time.Millisecond)
		mid := appendN(t, s, func(int) string { return "t" }, 1) // the stream lives on
		time.Sleep(300 * time.Millisecond)
		// Expired but not yet trimmed: After knows anyway.
		if _, err := s.After(ctx, []string{"t"}, []uint64{old[0].Seq - 1}, 100); !errors.Is(err, sse.ErrEvicted) {
			t.Errorf("After over expired entries: %v, want ErrEvicted", err)
		}
		if got, err := s.After(ctx, []string{"t"}, []uint64{old[2].Seq}, 100); err != nil || len(got) != 1 || got[0].Seq != mid[0].Seq {
			t.Errorf("After the expired ones: %d entries, %v", len(got), err)
		}
		// Every 16th append trims what expired.
		appendN(t, s, func(int) string { return "t" }, 16)
		if n, _ := env.admin.XLen(ctx, env.prefix+":{t}:s").Result(); n != 17 {
			t.Errorf("after 16 appends the stream holds %d entries, want 17 (the expired ones trimmed)", n)
		}
		if ttl, _ := env.admin.PTTL(ctx, env.prefix+":{t}:s").Result(); ttl <= 0 || ttl > 500*time.Millisecond {
			t.Errorf("the stream's TTL is %v, want MaxAge", ttl)
		}
	})
}

// TestKeysByTopic: every key and channel of a topic has the topic as its
// hash tag, escaped, so that Redis Cluster keeps them in one slot.
func TestKeysByTopic(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	ctx := context.Background()
	for _, topic := range []string{"plain", "}odd{", "100%", "a:b", "ünï"} {
		appendN(t, s, func(int) string { return topic }, 1)
		tag := sseredis.Escape(topic)
		if strings.ContainsAny(tag, "{}") {
			t.Fatalf("Escape(%q) = %q", topic, tag)
		}
		for _, k := range []string{":{" + tag + "}:s", ":{" + tag + "}:m"} {
			if n, _ := env.admin.Exists(ctx, env.prefix+k).Result(); n != 1 {
				t.Errorf("topic %q: no key %s", topic, env.prefix+k)
			}
		}
	}
	if sseredis.Escape("a{b}%") != "a%7Bb%7D%25" {
		t.Errorf("Escape = %q", sseredis.Escape("a{b}%"))
	}
}

// TestJump: topics spread evenly over shards, and adding a shard moves only
// the topics that go to it.
func TestJump(t *testing.T) {
	const keys = 30000
	count := make([]int, 3)
	moved := 0
	for k := range uint64(keys) {
		key := k * 0x9E3779B97F4A7C15
		b3 := sseredis.Jump(key, 3)
		count[b3]++
		if b4 := sseredis.Jump(key, 4); b4 != b3 && b4 != 3 {
			t.Fatalf("key %d moved from %d to %d", k, b3, b4)
		} else if b4 == 3 {
			moved++
		}
	}
	for i, n := range count {
		if n < keys/3*9/10 || n > keys/3*11/10 {
			t.Errorf("shard %d has %d of %d keys", i, n, keys)
		}
	}
	if moved < keys/4*9/10 || moved > keys/4*11/10 {
		t.Errorf("%d keys moved to the new shard, want about a quarter", moved)
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
		{sseredis.Options{Client: c, Shards: []redis.UniversalClient{c}}, "both set"},
		{sseredis.Options{Shards: []redis.UniversalClient{c, nil}}, "Shards[1] is nil"},
		{sseredis.Options{Client: c, MaxEventsPerTopic: -1}, "Options.MaxEventsPerTopic is -1"},
		{sseredis.Options{Client: c, MaxAge: -time.Second}, "Options.MaxAge is -1s"},
		{sseredis.Options{Client: c, MaxAge: time.Microsecond}, "Options.MaxAge is 1µs"},
		{sseredis.Options{Client: c, MaxAge: 2 * time.Hour, TopicTTL: time.Hour}, "less than MaxAge"},
		{sseredis.Options{Client: c, Prefix: "{app}"}, "contains '{'"},
	} {
		s, err := sseredis.New(ctx, c.opts)
		if err == nil || s != nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, %v; want an error saying %q", c.opts, s, err, c.want)
		}
	}

	// Nothing listens on a port just closed.
	closed := testkit.StartProxy(t, redisAddr())
	closed.Down()
	unreachable := redis.NewClient(&redis.Options{Addr: closed.Addr})
	defer unreachable.Close()
	start := time.Now()
	s, err := sseredis.New(ctx, sseredis.Options{Client: unreachable})
	if err == nil || s != nil || !strings.Contains(err.Error(), "Redis (shard 0) is not reachable") {
		t.Errorf("New with Redis unreachable = %v, %v; want an error saying so", s, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("New took %v to fail", d)
	}
}

// TestAfterKeepsEachTopicsOrder: entries of several topics come by the
// time Redis recorded them, but never out of their topic's order, even
// when Redis's clock went back (a failover to another machine, an NTP
// step).
func TestAfterKeepsEachTopicsOrder(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	ctx := context.Background()
	x := appendN(t, s, func(int) string { return "x" }, 3)
	y := appendN(t, s, func(int) string { return "y" }, 1)
	// x's last entry recorded with a time before every other.
	key := env.prefix + ":{x}:s"
	env.admin.Del(ctx, key)
	for i, e := range x {
		ts := e.Time.UnixMicro()
		if i == 2 {
			ts = x[0].Time.UnixMicro() - 1e6
		}
		id := strconv.FormatUint(e.Seq, 10) + "-0"
		if err := env.admin.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: id, Values: []any{"ts", strconv.FormatInt(ts, 10), "data", strconv.Itoa(i)}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.After(ctx, []string{"x", "y"}, []uint64{x[0].Seq - 1, y[0].Seq - 1}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var xs []uint64
	for _, e := range got {
		if e.Topic == "x" {
			xs = append(xs, e.Seq)
		}
	}
	if len(got) != 4 || len(xs) != 3 || xs[0] != x[0].Seq || xs[1] != x[1].Seq || xs[2] != x[2].Seq {
		t.Fatalf("After = %s; want x's entries in their order", seqs(got))
	}
}

// TestConcurrentAppends: appends made at once share pipelines; each gets
// its own Seq, in its topic's order, and its own data, even when its
// caller reuses the data's memory as soon as Append returns.
func TestConcurrentAppends(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{MaxEventsPerTopic: 10000})
	ctx := context.Background()
	from := map[string]uint64{}
	for _, topic := range []string{"a", "b", "c"} {
		from[topic], _ = s.Newest(ctx, topic)
	}
	const workers, each = 32, 50
	got := make([][]sse.Entry, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			buf := make([]byte, 0, 32)
			for i := range each {
				buf = strconv.AppendInt(buf[:0], int64(w*each+i), 10)
				e, err := s.Append(ctx, []string{"a", "b", "c"}[(w+i)%3], sse.Event{Data: buf})
				if err != nil {
					t.Error(err)
					return
				}
				e.Event.Data = slices.Clone(e.Event.Data)
				got[w] = append(got[w], e)
				buf = append(buf[:0], "overwritten"...)
			}
		})
	}
	wg.Wait()
	bySeq := map[string]map[uint64]string{}
	for w, list := range got {
		for i, e := range list {
			if want := strconv.Itoa(w*each + i); string(e.Event.Data) != want {
				t.Fatalf("entry %s: data %q", show(e), want)
			}
			if bySeq[e.Topic] == nil {
				bySeq[e.Topic] = map[uint64]string{}
			}
			if _, dup := bySeq[e.Topic][e.Seq]; dup {
				t.Fatalf("Seq %d of %s given twice", e.Seq, e.Topic)
			}
			bySeq[e.Topic][e.Seq] = strconv.Itoa(w*each + i)
		}
	}
	total := 0
	for topic, pos := range from {
		hist, err := s.After(ctx, []string{topic}, []uint64{pos}, 10000)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range hist {
			if e.Seq != pos+uint64(i)+1 || string(e.Event.Data) != bySeq[topic][e.Seq] {
				t.Fatalf("history of %s: %s at %d, want data %q", topic, show(e), i, bySeq[topic][e.Seq])
			}
		}
		total += len(hist)
	}
	if total != workers*each {
		t.Fatalf("the histories hold %d entries, want %d", total, workers*each)
	}
}

// TestAppendEndsWithItsContext: an append whose context ends returns at
// once; what it appended, if Redis got it, holds the data it was given.
func TestAppendEndsWithItsContext(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	buf := []byte("original")
	from, _ := s.Newest(context.Background(), "t")
	if _, err := s.Append(ctx, "t", sse.Event{Data: buf}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a canceled context: %v", err)
	}
	copy(buf, "changed!")
	time.Sleep(100 * time.Millisecond)
	hist, err := s.After(context.Background(), []string{"t"}, []uint64{from}, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range hist {
		if string(e.Event.Data) != "original" {
			t.Fatalf("the append holds %q, not the data it was given", e.Event.Data)
		}
	}
}
