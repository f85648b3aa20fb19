package ssenats_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssenats"
)

func TestEscape(t *testing.T) {
	for _, c := range []struct{ topic, token string }{
		{"orders", "orders"},
		{"user:42", "user~3A42"},
		{"a.b", "a~2Eb"},
		{"*", "~2A"},
		{">", "~3E"},
		{"a b\tc", "a~20b~09c"},
		{"~", "~7E"},
		{"Ünï", "~C3~9Cn~C3~AF"},
		{"A-z_0", "A-z_0"},
	} {
		if got := ssenats.Escape(c.topic); got != c.token {
			t.Errorf("Escape(%q) = %q, want %q", c.topic, got, c.token)
		}
		if got, ok := ssenats.Unescape(c.token); !ok || got != c.topic {
			t.Errorf("Unescape(%q) = %q, %v; want %q", c.token, got, ok, c.topic)
		}
	}
	for _, tok := range []string{"", "a.b", "~", "~4", "~41", "~zz", "a~3a", "é"} {
		if got, ok := ssenats.Unescape(tok); ok {
			t.Errorf("Unescape(%q) = %q, want a refusal: no topic escapes to it", tok, got)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"orders", "user:42", "a.b.>", "~7E", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		if topic == "" || !utf8.ValidString(topic) {
			return
		}
		tok := ssenats.Escape(topic)
		if strings.ContainsAny(tok, ". *>\t\r\n") {
			t.Fatalf("Escape(%q) = %q: not one subject token", topic, tok)
		}
		if back, ok := ssenats.Unescape(tok); !ok || back != topic {
			t.Fatalf("Unescape(Escape(%q)) = %q, %v", topic, back, ok)
		}
	})
}

func TestNewOptions(t *testing.T) {
	if _, err := ssenats.New(context.Background(), ssenats.Options{}); err == nil {
		t.Error("New without a Conn: no error")
	}
	nc := newEnv(t).conn("")
	for _, o := range []ssenats.Options{
		{Stream: "a.b"},
		{Prefix: "a.*"},
		{Prefix: "a..b"},
		{MaxAge: -time.Second},
		{MaxEventsPerTopic: -1},
	} {
		o.Conn = nc
		if _, err := ssenats.New(context.Background(), o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
}

// TestStore: the contract of sse.Store, on a real server.
func TestStore(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.conn(""), ssenats.Options{})
	ctx := context.Background()
	epoch := s.Epoch()
	if epoch == "" || len(epoch) > 32 || strings.Trim(epoch, "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
		t.Fatalf("Epoch() = %q, want 1 to 32 letters or digits", epoch)
	}
	start, err := s.Newest(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]sse.Entry{}
	var all []sse.Entry
	for i := range 10 {
		topic := []string{"a", "b:ü", "a"}[i%3]
		ev := sse.Event{Type: "t" + strconv.Itoa(i), Data: []byte(" line\r\nnext " + strconv.Itoa(i)), Comment: " c", Retry: 1500 * time.Millisecond}
		e, err := s.Append(ctx, topic, ev)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(all); n > 0 && e.Seq <= all[n-1].Seq {
			t.Fatalf("Append %d: Seq %d after %d", i, e.Seq, all[n-1].Seq)
		}
		if e.Event.ID != epoch+"-"+strconv.FormatUint(e.Seq, 10) || e.Topic != topic || e.Time.IsZero() {
			t.Fatalf("Append %d: entry %+v", i, e)
		}
		want[topic] = append(want[topic], e)
		all = append(all, e)
	}
	for topic, entries := range want {
		got, err := s.After(ctx, []string{topic}, []uint64{start}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if ids(got) != ids(entries) {
			t.Errorf("After(%s) = %s, want %s", topic, ids(got), ids(entries))
		}
		for i, e := range got {
			w := entries[i].Event
			if e.Event.ID != w.ID || e.Event.Type != w.Type || string(e.Event.Data) != string(w.Data) || e.Event.Comment != w.Comment || e.Event.Retry != w.Retry || e.Topic != topic {
				t.Errorf("After(%s)[%d] = %+v, want %+v", topic, i, e.Event, w)
			}
		}
		n, err := s.Newest(ctx, topic)
		if err != nil || n != entries[len(entries)-1].Seq {
			t.Errorf("Newest(%s) = %d, %v; want %d", topic, n, err, entries[len(entries)-1].Seq)
		}
	}
	// Several topics: merged in Seq order, from a position per topic.
	got, err := s.After(ctx, []string{"b:ü", "a"}, []uint64{start, all[3].Seq}, 100)
	if err != nil {
		t.Fatal(err)
	}
	var merged []sse.Entry
	for _, e := range all {
		if e.Topic == "b:ü" || e.Seq > all[3].Seq {
			merged = append(merged, e)
		}
	}
	if ids(got) != ids(merged) {
		t.Errorf("After(b, a) = %s, want %s", ids(got), ids(merged))
	}
	if got, _ := s.After(ctx, []string{"b:ü", "a"}, []uint64{start, start}, 4); ids(got) != ids(all[:4]) {
		t.Errorf("After with limit 4 = %s, want %s", ids(got), ids(all[:4]))
	}
	// A topic with no events starts at the stream's end.
	n, err := s.Newest(ctx, "never")
	if err != nil || n != all[len(all)-1].Seq {
		t.Errorf("Newest(never) = %d, %v; want the stream's newest Seq %d", n, err, all[len(all)-1].Seq)
	}
	if got, err := s.After(ctx, []string{"never"}, []uint64{n}, 10); err != nil || len(got) != 0 {
		t.Errorf("After(never) = %v, %v", got, err)
	}
	// Beyond what was issued.
	if _, err := s.After(ctx, []string{"a"}, []uint64{all[len(all)-1].Seq + 1}, 10); !errors.Is(err, sse.ErrUnknownID) {
		t.Errorf("After(beyond the newest): %v, want ErrUnknownID", err)
	}
	// Another store on the same stream sees the same epoch and history.
	s2 := env.store(env.conn(""), ssenats.Options{})
	if s2.Epoch() != epoch {
		t.Errorf("second store's epoch %q, want %q", s2.Epoch(), epoch)
	}
	if h := history(t, s2, "a"); ids(h) != ids(want["a"]) {
		t.Errorf("second store: history of a = %s, want %s", ids(h), ids(want["a"]))
	}
}

// TestAppendConcurrent: Appends of one topic from several stores (as from
// several processes) each get their own Seq, and the topic's history is
// every one of them, in order, with no gap detected.
func TestAppendConcurrent(t *testing.T) {
	env := newEnv(t)
	stores := []*ssenats.Store{env.store(env.conn(""), ssenats.Options{}), env.store(env.conn(""), ssenats.Options{}), env.store(env.conn(""), ssenats.Options{})}
	ctx := context.Background()
	const per = 60
	seqs := make(chan uint64, 3*4*per)
	errs := make(chan error, 12)
	for _, s := range stores {
		for range 4 {
			go func() {
				for range per {
					e, err := s.Append(ctx, "hot", sse.Event{Data: []byte("x")})
					if err != nil {
						errs <- err
						return
					}
					seqs <- e.Seq
				}
				errs <- nil
			}()
		}
	}
	for range 12 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(seqs)
	seen := map[uint64]bool{}
	for q := range seqs {
		if seen[q] {
			t.Fatalf("Seq %d issued twice", q)
		}
		seen[q] = true
	}
	h := history(t, stores[0], "hot")
	if len(h) != len(seen) {
		t.Fatalf("history holds %d events, %d were appended", len(h), len(seen))
	}
	for _, e := range h {
		if !seen[e.Seq] {
			t.Fatalf("history has Seq %d, which no Append returned", e.Seq)
		}
	}
}

// TestEvicted: a position whose following events a topic no longer holds
// gets ErrEvicted; other topics and later positions do not.
func TestEvicted(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.conn(""), ssenats.Options{MaxEventsPerTopic: 3})
	ctx := context.Background()
	if _, err := s.Append(ctx, "z", sse.Event{Data: []byte("z")}); err != nil {
		t.Fatal(err)
	}
	start, _ := s.Newest(ctx, "a")
	var a []sse.Entry
	for i := range 5 {
		e, err := s.Append(ctx, "a", sse.Event{Data: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		a = append(a, e)
	}
	b, err := s.Append(ctx, "b", sse.Event{Data: []byte("b")})
	if err != nil {
		t.Fatal(err)
	}
	for _, pos := range []uint64{0, start, a[0].Seq} {
		if _, err := s.After(ctx, []string{"a"}, []uint64{pos}, 10); !errors.Is(err, sse.ErrEvicted) {
			t.Errorf("After(a, %d): %v, want ErrEvicted", pos, err)
		}
		if _, err := s.After(ctx, []string{"b", "a"}, []uint64{start, pos}, 10); !errors.Is(err, sse.ErrEvicted) {
			t.Errorf("After(b, a at %d): %v, want ErrEvicted", pos, err)
		}
	}
	got, err := s.After(ctx, []string{"a"}, []uint64{a[1].Seq}, 10)
	if err != nil || ids(got) != ids(a[2:]) {
		t.Errorf("After(a, its 2nd) = %s, %v; want %s", ids(got), err, ids(a[2:]))
	}
	got, err = s.After(ctx, []string{"b"}, []uint64{start}, 10)
	if err != nil || ids(got) != ids([]sse.Entry{b}) {
		t.Errorf("After(b) = %s, %v; want %d", ids(got), err, b.Seq)
	}
}

// TestExpired: once every event of a topic has expired (MaxAge), a
// position before them gets ErrEvicted, the position of the newest does
// not, and the topic's next event is numbered after them all.
func TestExpired(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.conn(""), ssenats.Options{MaxAge: time.Second})
	ctx := context.Background()
	start, _ := s.Newest(ctx, "a")
	e1, err := s.Append(ctx, "a", sse.Event{Data: []byte("1")})
	if err != nil {
		t.Fatal(err)
	}
	e2, err := s.Append(ctx, "a", sse.Event{Data: []byte("2")})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the events to expire", func() bool {
		got, err := s.After(ctx, []string{"a"}, []uint64{e2.Seq}, 10)
		return err == nil && len(got) == 0 && errors.Is(func() error { _, err := s.After(ctx, []string{"a"}, []uint64{start}, 10); return err }(), sse.ErrEvicted)
	})
	if _, err := s.After(ctx, []string{"a"}, []uint64{e1.Seq}, 10); !errors.Is(err, sse.ErrEvicted) {
		t.Errorf("After(a, first): %v, want ErrEvicted", err)
	}
	e3, err := s.Append(ctx, "a", sse.Event{Data: []byte("3")})
	if err != nil {
		t.Fatal(err)
	}
	if e3.Seq <= e2.Seq {
		t.Errorf("after expiry, Seq %d follows %d", e3.Seq, e2.Seq)
	}
	if got, err := s.After(ctx, []string{"a"}, []uint64{e2.Seq}, 10); err != nil || ids(got) != ids([]sse.Entry{e3}) {
		t.Errorf("After(a, second) = %s, %v; want %d", ids(got), err, e3.Seq)
	}
	if _, err := s.After(ctx, []string{"a"}, []uint64{e1.Seq}, 10); !errors.Is(err, sse.ErrEvicted) {
		t.Errorf("After(a, first) once a third was appended: %v, want ErrEvicted", err)
	}
}

// TestAppendTooLarge: an event over the server's max_payload is refused
// with an error that says what to change.
func TestAppendTooLarge(t *testing.T) {
	env := newEnv(t)
	nc := env.conn("")
	s := env.store(nc, ssenats.Options{})
	_, err := s.Append(context.Background(), "a", sse.Event{Data: make([]byte, nc.MaxPayload())})
	if err == nil || !strings.Contains(err.Error(), "max_payload") {
		t.Errorf("Append of max_payload bytes: %v, want an error about max_payload", err)
	}
}

// TestStreamRecreated: when the stream is deleted, the next Append makes
// it anew, with a new epoch.
func TestStreamRecreated(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.conn(""), ssenats.Options{})
	ctx := context.Background()
	e1, err := s.Append(ctx, "a", sse.Event{Data: []byte("1")})
	if err != nil {
		t.Fatal(err)
	}
	epoch := s.Epoch()
	deleteStream(t, env)
	e2, err := s.Append(ctx, "a", sse.Event{Data: []byte("2")})
	if err != nil {
		t.Fatal(err)
	}
	if s.Epoch() == epoch || !strings.HasPrefix(e2.Event.ID, s.Epoch()+"-") {
		t.Errorf("epoch %q before, %q after (entry %s): want a new one", epoch, s.Epoch(), e2.Event.ID)
	}
	if e2.Seq <= e1.Seq {
		t.Errorf("the new stream numbers from %d, not after %d", e2.Seq, e1.Seq)
	}
}

// deleteStream deletes the test's stream, as an operator would.
func deleteStream(t testing.TB, env *testEnv) {
	t.Helper()
	nc, err := nats.Connect(env.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := js.DeleteStream(context.Background(), env.stream); err != nil {
		t.Fatal(err)
	}
}
