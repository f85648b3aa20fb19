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
