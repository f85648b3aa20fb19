package sseredis_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseredis"
	"github.com/ssekit/ssekit/core/ssetest"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the tests cause many on purpose.
	redis.SetLogger(quiet{})
	// A frozen connection is found after two intervals.
	sseredis.SetPingInterval(500 * time.Millisecond)
	os.Exit(m.Run())
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

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

// redisAddr is the Redis the tests use: $SSEKIT_REDIS_ADDR, or the local
// one that scripts/need-redis.sh starts.
func redisAddr() string {
	if a := os.Getenv("SSEKIT_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

var (
	redisOnce sync.Once
	redisErr  error
	// admin is the tests' own client, for checks and cleanup; shared, as
	// each go-redis client has goroutines and the kit counts them.
	admin *redis.Client
)

// needRedis skips the test when Redis does not answer, saying why, and
// fails it instead under CI=true, where the Redis tests must run.
func needRedis(t testing.TB) {
	t.Helper()
	redisOnce.Do(func() {
		c := redis.NewClient(&redis.Options{Addr: redisAddr(), MaxRetries: -1, DialTimeout: time.Second})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		redisErr = c.Ping(ctx).Err()
		admin = redis.NewClient(&redis.Options{Addr: redisAddr()})
	})
	if redisErr != nil {
		msg := "Redis is not reachable at " + redisAddr() + " (" + redisErr.Error() + "); run scripts/need-redis.sh or set SSEKIT_REDIS_ADDR"
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

// testEnv is one test's namespace in Redis: a random prefix whose keys are
// deleted at the end, and a client name that lets the test find (and kill)
// its own connections.
type testEnv struct {
	t      testing.TB
	prefix string
	name   string
	admin  *redis.Client
	logs   *logBuffer
	log    *slog.Logger // for the test's stores and hubs
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	needRedis(t)
	id := randomHex(6)
	e := &testEnv{t: t, prefix: "ssekit-test:" + id, name: "ssekit-test-" + id, logs: &logBuffer{}}
	e.admin = admin
	e.log = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", e.logs)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if keys := e.keys(); len(keys) > 0 {
			if err := e.admin.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("deleting the test's keys: %v", err)
			}
		}
	})
	return e
}

// keys are the test's keys in Redis.
func (e *testEnv) keys() []string {
	keys, err := e.admin.Keys(context.Background(), e.prefix+":*").Result()
	if err != nil {
		e.t.Fatalf("KEYS: %v", err)
	}
	return keys
}

// lose deletes the test's keys, as FLUSHALL or a restart of Redis without
// persistence would (FLUSHALL itself would also wipe what other tests
// sharing the Redis keep there).
func (e *testEnv) lose() {
	e.t.Helper()
	if keys := e.keys(); len(keys) > 0 {
		if err := e.admin.Del(context.Background(), keys...).Err(); err != nil {
			e.t.Fatal(err)
		}
	}
}

// client returns a client of Redis (or of addr, when given) that the test
// closes at its end.
func (e *testEnv) client(addr string, tweak ...func(*redis.Options)) *redis.Client {
	if addr == "" {
		addr = redisAddr()
	}
	o := &redis.Options{Addr: addr, ClientName: e.name}
	for _, f := range tweak {
		f(o)
	}
	c := redis.NewClient(o)
	e.t.Cleanup(func() { c.Close() })
	return c
}

// store returns a Store on c in the test's namespace.
func (e *testEnv) store(c redis.UniversalClient, opts sseredis.Options) *sseredis.Store {
	e.t.Helper()
	opts.Client = c
	opts.Prefix = e.prefix
	if opts.Logger == nil {
		opts.Logger = e.log
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := sseredis.New(ctx, opts)
	if err != nil {
		e.t.Fatalf("sseredis.New: %v", err)
	}
	return s
}

// node is one simulated process: its Redis client (through a proxy the
// test can cut), store, hub and HTTP server.
type node struct {
	name   string
	proxy  *testkit.Proxy
	client *redis.Client
	store  *sseredis.Store
	hub    *sse.Hub
	srv    *httptest.Server
	url    string
	states *stateLog
}

type nodeConfig struct {
	store sseredis.Options
	hub   sse.Options
	http  sse.HandlerOptions
	// direct connects to Redis without a proxy.
	direct bool
}

func (e *testEnv) node(name string, cfg nodeConfig) *node {
	e.t.Helper()
	n := &node{name: name, states: &stateLog{}}
	addr := ""
	if !cfg.direct {
		n.proxy = testkit.StartProxy(e.t, redisAddr())
		addr = n.proxy.Addr
	}
	n.client = e.client(addr)
	n.store = e.store(n.client, cfg.store)
	cfg.hub.Store = n.store
	if cfg.hub.Logger == nil {
		cfg.hub.Logger = e.log
	}
	cfg.hub.Observer.BroadcastState = n.states.add
	subscribed := len(e.clientIDs(true))
	hub, err := sse.NewHub(cfg.hub)
	if err != nil {
		e.t.Fatalf("NewHub: %v", err)
	}
	n.hub = hub
	// NewHub returns before the hub's subscription is made. Events
	// published meanwhile are read from the stream when it is, unless the
	// tests' tiny histories have dropped them already: wait for it.
	waitUntil(e.t, "node "+name+"'s subscription", func() bool { return len(e.clientIDs(true)) > subscribed })
	if cfg.http.Topics == nil {
		cfg.http.Topics = sse.TopicsFromQuery("topic")
	}
	n.srv = httptest.NewServer(hub.Handler(cfg.http))
	n.url = n.srv.URL
	e.t.Cleanup(func() { n.stop(e.t) })
	return n
}

// stop shuts the node down; it is safe to call twice.
func (n *node) stop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := n.hub.Shutdown(ctx); err != nil {
		t.Errorf("node %s: hub Shutdown: %v", n.name, err)
	}
	n.srv.Close()
}

// stateLog records the BroadcastState calls of a hub.
type stateLog struct {
	mu     sync.Mutex
	states []error
}

func (l *stateLog) add(err error) {
	l.mu.Lock()
	l.states = append(l.states, err)
	l.mu.Unlock()
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
	ev, err := st.Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

func publish(t testing.TB, h *sse.Hub, topic, data string) string {
	t.Helper()
	id, err := h.Publish(context.Background(), topic, sse.Event{Data: []byte(data)})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return id
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// killClients kills the test's own connections of a type ("pubsub" or
// "normal") with CLIENT KILL TYPE <type> ID <id>, so that other users of
// the Redis keep theirs, and returns how many it killed.
func (e *testEnv) killClients(typ string) int {
	e.t.Helper()
	ctx := context.Background()
	n := 0
	for _, id := range e.clientIDs(false) {
		k, err := e.admin.Do(ctx, "CLIENT", "KILL", "TYPE", typ, "ID", id).Int()
		if err != nil {
			e.t.Fatalf("CLIENT KILL TYPE %s ID %s: %v", typ, id, err)
		}
		n += k
	}
	return n
}

// clientIDs lists the IDs of the test's connections (only the subscribed
// ones, with subscribed).
func (e *testEnv) clientIDs(subscribed bool) []string {
	e.t.Helper()
	list, err := e.admin.ClientList(context.Background()).Result()
	if err != nil {
		e.t.Fatalf("CLIENT LIST: %v", err)
	}
	var ids []string
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, " name="+e.name+" ") || (subscribed && !strings.Contains(line, " flags=P ")) {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				ids = append(ids, v)
			}
		}
	}
	return ids
}
