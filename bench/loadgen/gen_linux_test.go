package loadgen

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// testServer streams events 1..n to every client once start is closed, and
// replays after Last-Event-ID at once.
type testServer struct {
	n     int
	start chan struct{}
}

func (s *testServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	from := 1
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, _ := strconv.Atoi(id)
		from = n + 1
	} else {
		select {
		case <-s.start:
		case <-r.Context().Done():
			return
		}
	}
	for i := from; i <= s.n; i++ {
		fmt.Fprintf(w, "id: %d\ndata: %d %d pad\n\n", i, time.Now().UnixNano(), i)
		if i%7 == 0 {
			_ = rc.Flush()
		}
	}
	_ = rc.Flush()
	<-r.Context().Done()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestGenDeliveryAndResume(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{n: 100, start: make(chan struct{})}
	srv := &http.Server{Handler: ts}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	g, err := New(Config{Addr: ln.Addr().String(), Workers: 2, SourceAddrs: 3, MaxInflight: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	const conns = 50
	g.Connect(conns, nil)
	waitFor(t, "open", func() bool { return g.Stats().Open == conns })
	g.Mark(1, 100, 100)
	close(ts.start)
	waitFor(t, "delivery", func() bool { _, c, _, _ := g.Progress(); return c == conns })
	p := g.Phase()
	if p.Delivered != conns*100 || p.Losses != 0 || p.Gaps != 0 || p.Dups != 0 || p.Latency.Count() != conns*100 {
		t.Fatalf("phase %+v", p)
	}

	// Reconnect with Last-Event-ID 100: the server replays nothing more;
	// with the IDs rewound to 60 (as if 40 were missed) it replays 61..100.
	g.CloseAll()
	for _, c := range g.connsSnapshot() {
		c.w.mu.Lock()
		c.stream.idLen = copy(c.stream.id[:], "60")
		c.lastSeq = 60
		c.w.mu.Unlock()
	}
	g.MarkAll(61, 100, 40)
	g.Reconnect()
	waitFor(t, "replay", func() bool { _, c, _, _ := g.Progress(); return c == conns })
	p = g.Phase()
	if p.Delivered != conns*40 || p.Losses != 0 || p.Gaps != 0 || p.Dups != 0 {
		t.Fatalf("replay phase %+v", p)
	}
	st := g.Stats()
	if st.Opened != 2*conns || st.Failed != 0 || st.PeerClosed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGenCountsFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens: connection refused
	g, err := New(Config{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.Connect(5, nil)
	waitFor(t, "failures", func() bool { return g.Stats().Failed == 5 })
}

// stepServer streams the multiples of ?step= up to n, each with its
// number as ID, from after Last-Event-ID ("reset": a reset event first,
// then from the start); ?skip= leaves one number out.
type stepServer struct {
	n     int
	start chan struct{}
}

func (s *stepServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	step, _ := strconv.Atoi(r.URL.Query().Get("step"))
	skip, _ := strconv.Atoi(r.URL.Query().Get("skip"))
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	from := 1
	switch id := r.Header.Get("Last-Event-ID"); id {
	case "":
		select {
		case <-s.start:
		case <-r.Context().Done():
			return
		}
	case "reset":
		fmt.Fprint(w, "event: sse-reset\ndata: {\"reason\":\"evicted\"}\n\n")
	default:
		from, _ = strconv.Atoi(id)
		from++
	}
	for i := from; i <= s.n; i++ {
		if i%step == 0 && i != skip {
			fmt.Fprintf(w, "id: %d\ndata: %d %d pad\n\n", i, time.Now().UnixNano(), i)
		}
	}
	_ = rc.Flush()
	<-r.Context().Done()
}

// TestGenExpect: per-connection paths, LastIDs, closing and reopening some
// connections with given IDs, and Expect's accounting of what each
// receives (skipped events, resets, completion).
func TestGenExpect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &stepServer{n: 100, start: make(chan struct{})}
	srv := &http.Server{Handler: ts}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	g, err := New(Config{Addr: ln.Addr().String(), Workers: 2, SourceAddrs: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// Connections 0-3 get the even numbers, 4-5 the multiples of 3, and 5
	// misses 81 when it comes back.
	paths := []string{"/e?step=2", "/e?step=2", "/e?step=2", "/e?step=2", "/e?step=3", "/e?step=3&skip=81"}
	g.ConnectPath(len(paths), func(i int) string { return paths[i] }, nil)
	waitFor(t, "open", func() bool { return g.Stats().Open == len(paths) })
	g.Mark(1, 100, 1<<30)
	close(ts.start)
	waitFor(t, "delivery", func() bool {
		ids := g.LastIDs()
		return ids[0] == "100" && ids[5] == "99"
	})
	if got := g.Got(); got[0] != 50 || got[4] != 33 {
		t.Fatalf("got %v", got)
	}
	if h := g.TakeHeadLatency(); h.Count() != uint64(len(paths)) || h.Max() <= 0 {
		t.Fatalf("head latency: %d recorded, max %v", h.Count(), h.Max())
	}

	// 1, 2, 4 and 5 come back: 1 from 60 (expecting 62..100 as two lists,
	// the multiples of 4 and the others), 2 with an unknown ID (a reset,
	// then everything), 4 and 5 from 60 (5 misses 81).
	back := []int{1, 2, 4, 5}
	ids := []string{"60", "reset", "60", "60"}
	var fours, others, threes []uint64
	for i := uint64(62); i <= 100; i += 2 {
		if i%4 == 0 {
			fours = append(fours, i)
		} else {
			others = append(others, i)
		}
	}
	for i := uint64(63); i <= 100; i += 3 {
		threes = append(threes, i)
	}
	g.CloseConns(back)
	g.Expect(back, func(k int) [][]uint64 {
		switch k {
		case 0:
			return [][]uint64{fours, others}
		case 1:
			return [][]uint64{fours}
		}
		return [][]uint64{threes}
	})
	g.ReconnectConns(back, ids)
	waitFor(t, "replay", func() bool { n, done, _ := g.ExpectProgress(); return n == 4 && done == 4 })
	ex := g.Expectations(back)
	want := []Expectation{
		{Expected: 20, Got: 20, Done: true, Open: true},
		{Expected: 10, Got: 10, Odd: 50 - 10, Resets: 1, Reason: "evicted", Done: true, Open: true},
		{Expected: 13, Got: 13, Done: true, Open: true},
		{Expected: 13, Got: 12, Skipped: 1, Done: true, Open: true},
	}
	for k := range want {
		got := ex[k]
		if got.Latency <= 0 || got.Latency > 10*time.Second {
			t.Errorf("%d: latency %v", k, got.Latency)
		}
		got.Latency = 0
		if got != want[k] {
			t.Errorf("%d: %+v, want %+v", k, got, want[k])
		}
	}
	if r := g.Resets(); r["evicted"] != 1 || len(r) != 1 {
		t.Errorf("resets %v", r)
	}
	if st := g.Stats(); st.Failed != 0 || st.Abandoned != 0 || st.Open != len(paths) {
		t.Errorf("stats %+v", st)
	}
}
