package ssenats_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssenats"
	"github.com/ssekit/ssekit/core/ssetest"
)

// natsURL is the NATS server the tests use: $SSEKIT_NATS_URL, or the local
// one that scripts/need-nats.sh starts.
func natsURL() string {
	if u := os.Getenv("SSEKIT_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

var (
	natsOnce sync.Once
	natsErr  error
)

// needNATS skips the test when NATS with JetStream does not answer, saying
// why, and fails it instead under CI=true, where the NATS tests must run.
func needNATS(t testing.TB) {
	t.Helper()
	natsOnce.Do(func() {
		nc, err := nats.Connect(natsURL(), nats.Timeout(2*time.Second), nats.NoReconnect())
		if err != nil {
			natsErr = err
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err = js.AccountInfo(ctx)
		}
		natsErr = err
	})
	if natsErr != nil {
		msg := "NATS with JetStream is not reachable at " + natsURL() + " (" + natsErr.Error() + "); run scripts/need-nats.sh or set SSEKIT_NATS_URL"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// logBuffer collects a test's logs; they are shown when the test fails.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testEnv is one test's namespace in NATS: a stream and a subject prefix
// of its own, deleted at the end.
type testEnv struct {
	t      testing.TB
	url    string // the server
	stream string
	prefix string
	logs   *logBuffer
	log    *slog.Logger
}

// newEnv returns a namespace on the shared NATS server, or on url.
func newEnv(t testing.TB, url ...string) *testEnv {
	t.Helper()
	e := &testEnv{t: t, url: natsURL(), logs: &logBuffer{}}
	if len(url) > 0 {
		e.url = url[0]
	} else {
		needNATS(t)
	}
	id := randomHex(6)
	e.stream, e.prefix = "SSEKIT_TEST_"+id, "ssekit-test."+id
	e.log = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", e.logs)
		}
		nc, err := nats.Connect(e.url, nats.Timeout(2*time.Second), nats.NoReconnect())
		if err != nil {
			return // a server of the test's own, stopped
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, e.stream)
	})
	return e
}

// conn returns a connection to the env's server (or to addr, a host:port,
// when given) that reconnects quickly and forever, closed at the end of
// the test.
func (e *testEnv) conn(addr string) *nats.Conn {
	e.t.Helper()
	url := e.url
	if addr != "" {
		url = "nats://" + addr
	}
	nc, err := nats.Connect(url,
		nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(10*time.Millisecond, 10*time.Millisecond),
		nats.Timeout(time.Second), nats.PingInterval(time.Second), nats.MaxPingsOutstanding(2),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		e.t.Fatalf("nats.Connect(%s): %v", url, err)
	}
	e.t.Cleanup(nc.Close)
	return nc
}

// store returns a Store on nc in the test's namespace.
func (e *testEnv) store(nc *nats.Conn, opts ssenats.Options) *ssenats.Store {
	e.t.Helper()
	opts.Conn = nc
	opts.Stream, opts.Prefix = e.stream, e.prefix
	if opts.Logger == nil {
		opts.Logger = e.log
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := ssenats.New(ctx, opts)
	if err != nil {
		e.t.Fatalf("ssenats.New: %v", err)
	}
	return s
}

// node is one simulated process: its NATS connection (through a proxy the
// test can cut), store, hub and HTTP server.
type node struct {
	name   string
	proxy  *testkit.Proxy
	conn   *nats.Conn
	store  *ssenats.Store
	hub    *sse.Hub
	srv    *httptest.Server
	url    string
	states *stateLog

	stopOnce sync.Once
}

type nodeConfig struct {
	store ssenats.Options
	hub   sse.Options
	http  sse.HandlerOptions
	// direct connects to NATS without a proxy.
	direct bool
}

func (e *testEnv) node(name string, cfg nodeConfig) *node {
	e.t.Helper()
	n := &node{name: name, states: &stateLog{}}
	addr := ""
	if !cfg.direct {
		n.proxy = testkit.StartProxy(e.t, strings.TrimPrefix(e.url, "nats://"))
		addr = n.proxy.Addr
	}
	n.conn = e.conn(addr)
	n.store = e.store(n.conn, cfg.store)
	cfg.hub.Store = n.store
	if cfg.hub.Logger == nil {
		cfg.hub.Logger = e.log.With("node", name)
	}
	cfg.hub.Observer.BroadcastState = n.states.add
	hub, err := sse.NewHub(cfg.hub)
	if err != nil {
		e.t.Fatalf("NewHub: %v", err)
	}
	n.hub = hub
	if cfg.http.Topics == nil {
		cfg.http.Topics = sse.TopicsFromQuery("topic")
	}
	n.srv = httptest.NewServer(hub.Handler(cfg.http))
	n.url = n.srv.URL
	e.t.Cleanup(func() { n.stop(e.t) })
	return n
}

// stop shuts the node down, as a process that exits: its hub, its HTTP
// server and its connection. It is safe to call twice.
func (n *node) stop(t testing.TB) {
	n.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := n.hub.Shutdown(ctx); err != nil {
			t.Errorf("node %s: hub Shutdown: %v", n.name, err)
		}
		n.srv.CloseClientConnections()
		n.srv.Close()
		n.conn.Close()
	})
}

// kill ends the node abruptly: connections cut, nothing shut down in
// order.
func (n *node) kill(t testing.TB) {
	n.srv.CloseClientConnections()
	n.conn.Close()
	n.stop(t)
}

// stateLog records the BroadcastState calls of a hub.
type stateLog struct {
	mu     sync.Mutex
	states []error
}

func (l *stateLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.states = append(l.states, err)
}

// counts returns the outages reported and the recoveries.
func (l *stateLog) counts() (downs, ups int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.states {
		if err != nil {
			downs++
		} else {
			ups++
		}
	}
	return downs, ups
}

// delivering reports whether the last state reported is "delivering".
func (l *stateLog) delivering() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.states) == 0 || l.states[len(l.states)-1] == nil
}

// connect opens a stream closed at the end of the test.
func connect(t testing.TB, url, lastID string) *ssetest.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	st, err := ssetest.Connect(ctx, nil, url, lastID)
	if err != nil {
		cancel()
		t.Fatalf("Connect(%s): %v", url, err)
	}
	t.Cleanup(func() { st.Close(); cancel() })
	return st
}

func next(t testing.TB, st *ssetest.Stream) ssetest.Event {
	t.Helper()
	return ssetest.NextWithin(t, st, 20*time.Second)
}

func publish(t testing.TB, h *sse.Hub, topic, data string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := h.Publish(ctx, topic, sse.Event{Data: []byte(data)})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return id
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// natsServer is a nats-server process of the test's own, on a free
// loopback port, with JetStream in a temporary directory, so that the test
// can stop and restart it.
type natsServer struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startServer starts a nats-server of the test's own; the test skips (or
// fails under CI=true) when no nats-server binary is installed.
func startServer(t testing.TB) *natsServer {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		msg := "no nats-server binary to start a server of the test's own; run scripts/need-nats.sh"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &natsServer{t: t, bin: bin, port: port, dir: t.TempDir()}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *natsServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }
func (s *natsServer) url() string  { return "nats://" + s.addr() }

func (s *natsServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", s.dir)
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting nats-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	waitUntil(s.t, "nats-server on "+s.addr()+" with JetStream", func() bool {
		nc, err := nats.Connect(s.url(), nats.Timeout(200*time.Millisecond), nats.NoReconnect())
		if err != nil {
			return false
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err = js.AccountInfo(ctx)
		return err == nil
	})
}

// stop kills the server (SIGKILL, as a crash) and waits for it to exit.
func (s *natsServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// history returns every event of topic the store holds, oldest first.
func history(t testing.TB, s *ssenats.Store, topic string) []sse.Entry {
	t.Helper()
	var all []sse.Entry
	var after uint64
	for {
		page, err := s.After(context.Background(), []string{topic}, []uint64{after}, 500)
		if err != nil {
			t.Fatalf("After(%s, %d): %v", topic, after, err)
		}
		all = append(all, page...)
		if len(page) < 500 {
			return all
		}
		after = page[len(page)-1].Seq
	}
}

func ids(entries []sse.Entry) string {
	var b strings.Builder
	for i, e := range entries {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, e.Seq)
	}
	return b.String()
}

// client is a stream read by the test, which knows its position from the
// opening frame on.
type client struct {
	p      *ssetest.Parser
	body   io.Closer
	cancel context.CancelFunc
	last   string // the Last-Event-ID a browser would hold
}

// open opens a stream and reads its opening frame; it is closed at the
// end of the test.
func open(t testing.TB, url, lastID string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	c := &client{body: resp.Body, cancel: cancel, last: lastID}
	t.Cleanup(c.Close)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	var frame []byte
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("reading the opening frame: %v", err)
		}
		frame = append(frame, line...)
		if len(line) == 1 {
			break
		}
	}
	p := ssetest.NewParser(bytes.NewReader(frame))
	_, _ = p.Next()
	if id := p.LastEventID(); id != "" {
		c.last = id
	}
	c.p = ssetest.NewParser(br)
	return c
}

func (c *client) Next() (ssetest.Event, error) {
	ev, err := c.p.Next()
	if err == nil && ev.LastEventID != "" {
		c.last = ev.LastEventID
	}
	return ev, err
}

func (c *client) Close() {
	c.cancel()
	c.body.Close()
}
