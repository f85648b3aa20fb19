package sseredis_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseredis"
	"github.com/ssekit/ssekit/core/ssetest/enginetest"
)

// TestEngine runs the engine suite on one Redis.
func TestEngine(t *testing.T) {
	needRedis(t)
	enginetest.Run(t, enginetest.Engine{NewBus: func(t *testing.T) enginetest.Bus {
		return &redisBus{env: newEnv(t), servers: []string{redisAddr()}}
	}})
}

// TestEngineShards runs the engine suite on three Redis servers, each
// started for the test on a port of its own, that share the topics.
func TestEngineShards(t *testing.T) {
	needRedis(t)
	servers := startServers(t, 3)
	enginetest.Run(t, enginetest.Engine{NewBus: func(t *testing.T) enginetest.Bus {
		return &redisBus{env: newEnv(t), servers: servers}
	}})
}

// redisBus is a test's namespace (its key prefix) on one Redis or more.
type redisBus struct {
	env     *testEnv
	servers []string
	nodes   int
}

func (b *redisBus) NewNode(t *testing.T, history int) enginetest.Node {
	b.nodes++
	n := &redisNode{env: b.env, name: b.env.name + "-n" + strconv.Itoa(b.nodes)}
	var clients []redis.UniversalClient
	for _, addr := range b.servers {
		p := testkit.StartProxy(t, addr)
		n.proxies = append(n.proxies, p)
		c := redis.NewClient(&redis.Options{Addr: p.Addr, ClientName: n.name})
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
		n.admins = append(n.admins, adminOf(t, addr))
	}
	opts := sseredis.Options{Prefix: b.env.prefix, MaxEventsPerTopic: history, Logger: b.env.log}
	if len(clients) == 1 {
		opts.Client = clients[0]
	} else {
		opts.Shards = clients
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := sseredis.New(ctx, opts)
	if err != nil {
		t.Fatalf("sseredis.New: %v", err)
	}
	n.store = s
	return n
}

func (b *redisBus) LoseData(t *testing.T) bool {
	for _, addr := range b.servers {
		a := adminOf(t, addr)
		keys, err := a.Keys(context.Background(), b.env.prefix+":*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 {
			if err := a.Del(context.Background(), keys...).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return true
}

// redisNode is one process: its connections go through proxies the test
// can take down, and carry a client name of their own.
type redisNode struct {
	env     *testEnv
	name    string
	store   *sseredis.Store
	proxies []*testkit.Proxy
	admins  []*redis.Client
}

func (n *redisNode) Store() sse.Broadcaster { return n.store }

// Kill kills the node's connections with CLIENT KILL, on every server.
func (n *redisNode) Kill(t *testing.T) {
	killed := 0
	for _, a := range n.admins {
		killed += killByName(t, a, n.name)
	}
	if killed == 0 {
		// Between two kills, the connections may not be back yet.
		t.Logf("node %s had no connection to kill", n.name)
	}
}

func (n *redisNode) Down(*testing.T) {
	for _, p := range n.proxies {
		p.Down()
	}
}

func (n *redisNode) Up(*testing.T) {
	for _, p := range n.proxies {
		p.Up()
	}
}

// killByName kills the connections named name, and returns how many.
func killByName(t *testing.T, a *redis.Client, name string) int {
	list, err := a.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	k := 0
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, " name="+name+" ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				m, err := a.Do(context.Background(), "CLIENT", "KILL", "ID", id).Int()
				if err == nil {
					k += m
				}
			}
		}
	}
	return k
}

var (
	adminsMu sync.Mutex
	admins   = map[string]*redis.Client{}
)

// adminOf returns the tests' own client of the Redis at addr, shared by
// the tests (each go-redis client has goroutines, which the suite
// counts).
func adminOf(t *testing.T, addr string) *redis.Client {
	adminsMu.Lock()
	defer adminsMu.Unlock()
	if addr == redisAddr() && admin != nil {
		return admin
	}
	c := admins[addr]
	if c == nil {
		c = redis.NewClient(&redis.Options{Addr: addr})
		_ = c.Ping(context.Background()) // its pool is made before goroutines are counted
		admins[addr] = c
	}
	return c
}

// startServers starts n redis-server processes on free loopback ports,
// stopped at the end of t, and returns their addresses. Without the
// redis-server binary the test is skipped, or fails under CI=true.
func startServers(t *testing.T, n int) []string {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server is not installed: " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var addrs []string
	for i := range n {
		addr := startServer(t, bin, filepath.Join(t.TempDir(), fmt.Sprint(i)))
		addrs = append(addrs, addr)
	}
	return addrs
}

// startServer starts one redis-server without persistence in dir, with
// more arguments when given.
func startServer(t *testing.T, bin, dir string, more ...string) string {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}, more...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not start", addr)
		}
	}
	return addr
}

// TestEngineCluster runs the engine suite on a Redis Cluster of three
// masters, started for the test on ports of its own.
func TestEngineCluster(t *testing.T) {
	needRedis(t)
	nodes := startCluster(t, 3)
	enginetest.Run(t, enginetest.Engine{NewBus: func(t *testing.T) enginetest.Bus {
		return &clusterBus{env: newEnv(t), nodes: nodes}
	}})
}

// clusterBus is a test's namespace on a Redis Cluster.
type clusterBus struct {
	env   *testEnv
	nodes []string
	n     int
}

func (b *clusterBus) NewNode(t *testing.T, history int) enginetest.Node {
	b.n++
	n := &redisNode{env: b.env, name: b.env.name + "-c" + strconv.Itoa(b.n)}
	// Every connection to a cluster node goes through the process's own
	// proxy of that node.
	via := map[string]string{}
	for _, addr := range b.nodes {
		p := testkit.StartProxy(t, addr)
		n.proxies = append(n.proxies, p)
		via[addr] = p.Addr
		n.admins = append(n.admins, adminOf(t, addr))
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:      b.nodes,
		ClientName: n.name,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if p, ok := via[addr]; ok {
				addr = p
			}
			return (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, addr)
		},
	})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := sseredis.New(ctx, sseredis.Options{Client: c, Prefix: b.env.prefix, MaxEventsPerTopic: history, Logger: b.env.log})
	if err != nil {
		t.Fatalf("sseredis.New: %v", err)
	}
	n.store = s
	return n
}

func (b *clusterBus) LoseData(t *testing.T) bool {
	for _, addr := range b.nodes {
		a := adminOf(t, addr)
		keys, err := a.Keys(context.Background(), b.env.prefix+":*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys { // one by one: they are in different slots
			if err := a.Del(context.Background(), k).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return true
}

// startCluster starts a Redis Cluster of n masters on free loopback ports,
// stopped at the end of t, and returns their addresses.
func startCluster(t *testing.T, n int) []string {
	bin, err := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err != nil || err2 != nil {
		msg := fmt.Sprintf("redis-server or redis-cli is not installed: %v, %v", err, err2)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var addrs []string
	for i := range n {
		dir := filepath.Join(t.TempDir(), fmt.Sprint(i))
		addrs = append(addrs, startServer(t, bin, dir, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf")))
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Every node must see the cluster ready, and every slot served.
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			info, _ := c.ClusterInfo(context.Background()).Result()
			if strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384") && strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				t.Fatalf("the cluster is not ready on %s: %s", addr, info)
			}
		}
		c.Close()
	}
	return addrs
}
