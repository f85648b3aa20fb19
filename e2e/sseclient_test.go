package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseclient"
	"github.com/ssekit/ssekit/core/sseredis"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/internal/testkit"
)

// These tests run ssekit's Go client, sseclient, against a hub through
// what sits between them in production: nginx, HTTP/2 with TLS and
// without, and a group of instances sharing a Redis store, one of which
// dies. The connections are cut and the hub rotates its streams
// (MaxStreamAge) while events are published; the client must get every
// event exactly once, in order.

// clientUpstream is a hub on topic t served by an HTTP server whose
// connections the test can cut.
type clientUpstream struct {
	hub *sse.Hub
	connTracker
	requests atomic.Int64 // stream requests
}

// newClientUpstream makes a hub with opts and its handler in mode.
func newClientUpstream(t *testing.T, mode streamMode, opts sse.Options) (*clientUpstream, http.Handler) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	u := &clientUpstream{hub: ssetest.NewHub(t, opts)}
	stream := u.hub.Handler(sse.HandlerOptions{Topics: sse.Topics(topic), Detach: mode.detach})
	return u, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.requests.Add(1)
		stream.ServeHTTP(w, r)
	})
}

// clientRun is a client following a stream while events are published.
type clientRun struct {
	total int           // events to publish
	pace  time.Duration // between events
	cutAt []int         // cut the connections when the client has this many events
	cut   func() int    // cuts the connections, returns how many
}

// follow publishes run.total events on hub once a stream is open, reads
// them with c, cutting connections as run says, and checks that c got
// every event exactly once, in order, with its ID; connects counts the
// client's connections.
func (run clientRun) follow(t *testing.T, hub *sse.Hub, c *sseclient.Client, connects *atomic.Int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var received atomic.Int64
	published := make(chan []string, 1)
	go func() {
		var ids []string
		defer func() { published <- ids }()
		for hub.Stats().Streams == 0 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		cuts := run.cutAt
		for i := range run.total {
			if len(cuts) > 0 && i == cuts[0] {
				for received.Load() < int64(i) && ctx.Err() == nil {
					time.Sleep(time.Millisecond)
				}
				if n := run.cut(); n == 0 {
					t.Errorf("cut at %d events: no connection to cut", i)
				}
				cuts = cuts[1:]
			}
			id, err := hub.Publish(ctx, topic, sse.Event{Data: []byte(strconv.Itoa(i))})
			if err != nil {
				t.Errorf("Publish %d: %v", i, err)
				return
			}
			ids = append(ids, id)
			time.Sleep(run.pace)
		}
	}()
	var got []sseclient.Event
	for ev, err := range c.Events(ctx) {
		if err != nil {
			t.Fatalf("after %d events and %d connections: %v", len(got), connects.Load(), err)
		}
		got = append(got, ev)
		received.Store(int64(len(got)))
		if ev.Data == strconv.Itoa(run.total-1) {
			break
		}
	}
	ids := <-published
	for i, ev := range got {
		want := sseclient.Event{Type: "message", Data: strconv.Itoa(i), LastEventID: ids[i]}
		if i >= len(ids) || ev != want {
			t.Fatalf("event #%d is %+v, want %+v (got %d of %d events; every event must arrive once, in order)", i, ev, want, len(got), len(ids))
		}
	}
	if len(got) != run.total {
		t.Fatalf("got %d events, want %d", len(got), run.total)
	}
}

// clientOptions returns options for quick reconnections, counting them
// and checking that each carries a Last-Event-ID.
func clientOptions(t *testing.T, hc *http.Client, connects *atomic.Int64, check func(sseclient.ConnectInfo)) *sseclient.Options {
	return &sseclient.Options{
		HTTPClient:   hc,
		InitialDelay: 5 * time.Millisecond,
		MaxDelay:     20 * time.Millisecond,
		OnConnect: func(ci sseclient.ConnectInfo) {
			if connects.Add(1) > 1 && ci.LastEventID == "" {
				t.Errorf("reconnection %d sent no Last-Event-ID", connects.Load()-1)
			}
			if check != nil {
				check(ci)
			}
		},
		OnRetry: func(ri sseclient.RetryInfo) { t.Logf("reconnecting in %v after: %v", ri.Delay, ri.Err) },
	}
}

// TestSSEClientThroughNginx follows a stream through nginx (proxy_buffering
// on, upstream keepalive) while nginx's upstream connections are cut and
// the hub rotates streams.
func TestSSEClientThroughNginx(t *testing.T) {
	forEachMode(t, testSSEClientThroughNginx)
}

func testSSEClientThroughNginx(t *testing.T, mode streamMode) {
	nginx := needNginx(t)
	testkit.CheckGoroutines(t)
	// Heartbeats well within nginx's proxy_read_timeout.
	u, h := newClientUpstream(t, mode, sse.Options{MaxStreamAge: 400 * time.Millisecond, CloseRetry: 5 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond})
	upstream := httptest.NewUnstartedServer(h)
	upstream.Config.ConnState = u.track
	upstream.Start()
	t.Cleanup(upstream.Close)
	base, errorLog := startNginx(t, nginx, upstream.Listener.Addr().String(), "")
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)

	var connects atomic.Int64
	c := sseclient.New(base+"/events", clientOptions(t, &http.Client{Transport: tr}, &connects, nil))
	clientRun{total: 1500, pace: time.Millisecond, cutAt: []int{200, 600, 601, 1100}, cut: u.dropConns}.follow(t, u.hub, c, &connects)
	t.Logf("%d connections through nginx, %d stream requests upstream", connects.Load(), u.requests.Load())
	if connects.Load() < 5 {
		t.Errorf("%d connections: want at least one per cut, plus rotations", connects.Load())
	}
	// Each cut shows in nginx's log; nothing else may.
	for _, line := range nginxErrors(t, errorLog) {
		if !strings.Contains(line, "upstream prematurely closed connection") {
			t.Errorf("nginx logged: %s", line)
		}
	}
}

// TestSSEClientHTTP2TLS follows a stream over HTTP/2 with TLS: the client
// resumes after its connection is cut and after each rotation, which ends
// a stream but not the connection.
func TestSSEClientHTTP2TLS(t *testing.T) {
	testkit.CheckGoroutines(t)
	u, h := newClientUpstream(t, attached, sse.Options{MaxStreamAge: 300 * time.Millisecond, CloseRetry: 5 * time.Millisecond})
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.Config.ConnState = u.track
	srv.StartTLS()
	t.Cleanup(srv.Close)
	hc := srv.Client()
	t.Cleanup(hc.CloseIdleConnections)

	var connects atomic.Int64
	opts := clientOptions(t, hc, &connects, func(ci sseclient.ConnectInfo) {
		if ci.Response.ProtoMajor != 2 || ci.Response.TLS == nil {
			t.Errorf("stream over HTTP/%d, TLS %v; want HTTP/2 over TLS", ci.Response.ProtoMajor, ci.Response.TLS != nil)
		}
	})
	c := sseclient.New(srv.URL+"/events", opts)
	clientRun{total: 1200, pace: time.Millisecond, cutAt: []int{150, 700}, cut: u.dropConns}.follow(t, u.hub, c, &connects)
	t.Logf("%d streams over HTTP/2", connects.Load())
}

// TestSSEClientH2C follows a stream over HTTP/2 without TLS (h2c with
// prior knowledge), with cuts and rotations.
func TestSSEClientH2C(t *testing.T) {
	testkit.CheckGoroutines(t)
	u, h := newClientUpstream(t, attached, sse.Options{MaxStreamAge: 300 * time.Millisecond, CloseRetry: 5 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: protocols, ConnState: u.track, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tr := &http.Transport{Protocols: protocols}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		// The hub's cleanup (registered first) runs after this one, so
		// its streams are ended here.
		if err := u.hub.Shutdown(ctx); err != nil {
			t.Errorf("hub.Shutdown: %v", err)
		}
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("server Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})

	var connects atomic.Int64
	opts := clientOptions(t, &http.Client{Transport: tr}, &connects, func(ci sseclient.ConnectInfo) {
		if ci.Response.ProtoMajor != 2 {
			t.Errorf("stream over HTTP/%d, want h2c", ci.Response.ProtoMajor)
		}
	})
	c := sseclient.New("http://"+ln.Addr().String()+"/events", opts)
	clientRun{total: 1200, pace: time.Millisecond, cutAt: []int{150, 700}, cut: u.dropConns}.follow(t, u.hub, c, &connects)
	t.Logf("%d streams over h2c", connects.Load())
}

// redisAddr is the Redis the tests use: $SSEKIT_REDIS_ADDR, or the local
// one that scripts/need-redis.sh starts.
func redisAddr() string {
	if a := os.Getenv("SSEKIT_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// needRedis skips the test when Redis does not answer, unless CI=true,
// where it fails.
func needRedis(t *testing.T) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: redisAddr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		msg := "Redis is not reachable at " + redisAddr() + " (" + err.Error() + "); run scripts/need-redis.sh or set SSEKIT_REDIS_ADDR"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// redisNode is one instance of a service: its Redis client, store, hub
// and HTTP server.
type redisNode struct {
	name   string
	client *redis.Client
	store  *sseredis.Store
	hub    *sse.Hub
	srv    *httptest.Server
	once   sync.Once
}

func newRedisNode(t *testing.T, name, prefix string) *redisNode {
	t.Helper()
	n := &redisNode{name: name, client: redis.NewClient(&redis.Options{Addr: redisAddr()})}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	store, err := sseredis.New(ctx, sseredis.Options{Client: n.client, Prefix: prefix, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		n.client.Close()
		t.Fatalf("sseredis.New: %v", err)
	}
	n.store = store
	n.hub, err = sse.NewHub(sse.Options{Store: store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	n.srv = httptest.NewServer(n.hub.Handler(sse.HandlerOptions{Topics: sse.Topics(topic)}))
	t.Cleanup(func() { n.kill(t) })
	return n
}

// kill cuts the node's connections mid-stream, as a crash would, and stops
// it; it is safe to call twice.
func (n *redisNode) kill(t *testing.T) {
	n.once.Do(func() {
		n.srv.CloseClientConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.hub.Shutdown(ctx); err != nil {
			t.Errorf("node %s: hub Shutdown: %v", n.name, err)
		}
		n.srv.Close()
		n.client.Close()
	})
}

// TestSSEClientRedisNodeKill follows a stream on instance B of three that
// share a Redis store, while instance A publishes. B dies mid-stream; the
// client's next request goes to C (Prepare plays the load balancer), which
// replays from Redis what the client missed. The client must get every
// event exactly once, in order.
func TestSSEClientRedisNodeKill(t *testing.T) {
	needRedis(t)
	testkit.CheckGoroutines(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "ssekit-e2e-client:" + hex.EncodeToString(b)
	t.Cleanup(func() {
		c := redis.NewClient(&redis.Options{Addr: redisAddr()})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Every key of the store: its epoch and each topic's history.
		keys, err := c.Keys(ctx, prefix+":*").Result()
		if err == nil && len(keys) > 0 {
			err = c.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Errorf("deleting the test's keys: %v", err)
		}
	})
	nodeA := newRedisNode(t, "A", prefix)
	nodeB := newRedisNode(t, "B", prefix)
	nodeC := newRedisNode(t, "C", prefix)

	// The load balancer: every request goes to B while it lives, then to C.
	var bDead atomic.Bool
	var hosts []string
	var mu sync.Mutex
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	var connects atomic.Int64
	opts := clientOptions(t, &http.Client{Transport: tr}, &connects, nil)
	opts.Prepare = func(r *http.Request) error {
		target := nodeB.srv.Listener.Addr().String()
		if bDead.Load() {
			target = nodeC.srv.Listener.Addr().String()
		}
		r.URL.Host, r.Host = target, target
		mu.Lock()
		hosts = append(hosts, target)
		mu.Unlock()
		return nil
	}
	c := sseclient.New("http://balancer.invalid/events", opts)

	const total, killAt = 1500, 600
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var received atomic.Int64
	publishedN := make(chan int, 1)
	go func() {
		n := 0
		defer func() { publishedN <- n }()
		for nodeB.hub.Stats().Streams == 0 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		for i := range total {
			if i == killAt {
				for received.Load() < killAt && ctx.Err() == nil {
					time.Sleep(time.Millisecond)
				}
				bDead.Store(true)
				nodeB.kill(t)
			}
			if _, err := nodeA.hub.Publish(ctx, topic, sse.Event{Data: []byte(strconv.Itoa(i))}); err != nil {
				t.Errorf("Publish %d: %v", i, err)
				return
			}
			n++
			time.Sleep(time.Millisecond)
		}
	}()
	var got []sseclient.Event
	for ev, err := range c.Events(ctx) {
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		got = append(got, ev)
		received.Store(int64(len(got)))
		if ev.Data == strconv.Itoa(total-1) {
			break
		}
	}
	if n := <-publishedN; n != total {
		t.Fatalf("published %d events, want %d", n, total)
	}
	// Only this test publishes under its prefix: its events follow each
	// other by one in the topic's history.
	var first uint64
	if len(got) > 0 {
		_, seq, _ := strings.Cut(got[0].LastEventID, "-")
		first, _ = strconv.ParseUint(seq, 10, 64)
	}
	for i, ev := range got {
		want := sseclient.Event{Type: "message", Data: strconv.Itoa(i), LastEventID: nodeA.store.Epoch() + "-" + strconv.FormatUint(first+uint64(i), 10)}
		if i >= total || ev != want {
			t.Fatalf("event #%d is %+v, want %+v (got %d events)", i, ev, want, len(got))
		}
	}
	if len(got) != total {
		t.Fatalf("got %d events, want %d", len(got), total)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("requests went to %v (B %s, C %s)", hosts, nodeB.srv.Listener.Addr(), nodeC.srv.Listener.Addr())
	if last := hosts[len(hosts)-1]; last != nodeC.srv.Listener.Addr().String() {
		t.Errorf("the client ended on %s, want C", last)
	}
}
