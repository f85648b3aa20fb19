// Package redis_test measures sseredis: publishes per second and the time
// from Publish to delivery in another process, on one Redis server and on
// three (each started by the benchmark on a loopback port, and stopped at
// its end), next to the in-memory store; and how much of the bus's traffic
// a process that serves a third of the topics receives.
//
//	go test -run '^$' -bench . -benchtime 20000x ./redis
package redis_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseredis"
)

// topics is the number of topics events are spread over.
const topics = 300

func topicName(i int) string { return "t" + strconv.Itoa(i) }

// payload is an event's data: the time it was published in decimal
// nanoseconds, then padding to 128 bytes.
func payload() []byte {
	b := strconv.AppendInt(make([]byte, 0, 128), time.Now().UnixNano(), 10)
	for len(b) < 128 {
		b = append(b, 'x')
	}
	return b
}

// sentAt returns the time payload put in data.
func sentAt(data []byte) (time.Time, bool) {
	end := bytes.IndexByte(data, 'x')
	if end < 0 {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(string(data[:end]), 10, 64)
	return time.Unix(0, n), err == nil
}

// BenchmarkPublish publishes from 32 goroutines on random topics of 300
// through one hub, while another process (a store of its own, listening to
// every topic) receives them. It reports publishes per second and the time
// from Publish to delivery in the other process (p50, p99). With the
// memory store there is no other process: delivery is Publish's return.
func BenchmarkPublish(b *testing.B) {
	for _, servers := range []int{0, 1, 3} {
		name := "memory"
		if servers > 0 {
			name = fmt.Sprintf("redis-%d", servers)
		}
		b.Run(name, func(b *testing.B) {
			var pub, sub sse.Store
			var delivered *latencies
			var addrs []string
			if servers == 0 {
				s, err := sse.NewMemoryStore(sse.MemoryStoreOptions{})
				if err != nil {
					b.Fatal(err)
				}
				pub = s
			} else {
				addrs = startServers(b, servers)
				prefix := "bench" + strconv.Itoa(rand.Int())
				pub = newStore(b, addrs, prefix, nil)
				ls := newStore(b, addrs, prefix, nil)
				sub = ls
				delivered = listen(b, ls, allTopics())
			}
			hub, err := sse.NewHub(sse.Options{Store: pub})
			if err != nil {
				b.Fatal(err)
			}
			defer shutdown(hub)
			var self latencies
			b.SetParallelism(16) // 32 goroutines on 2 CPUs
			cpu0 := redisCPU(b, addrs)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					t0 := time.Now()
					if _, err := hub.Publish(context.Background(), topicName(rand.N(topics)), sse.Event{Data: payload()}); err != nil {
						b.Error(err)
						return
					}
					if sub == nil {
						self.add(time.Since(t0))
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pubs/s")
			if addrs != nil {
				// How busy the servers were: a server is saturated at 100.
				b.ReportMetric((redisCPU(b, addrs)-cpu0)/elapsed.Seconds()*100, "redis-cpu-%")
			}
			l := &self
			if delivered != nil {
				l = delivered
				deadline := time.Now().Add(30 * time.Second)
				for l.count() < b.N && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if n := l.count(); n < b.N {
					b.Fatalf("%d of %d events delivered", n, b.N)
				}
			}
			p50, p99 := l.percentiles()
			b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkTrafficShare runs four processes on three Redis servers: one
// publishes on 300 topics, three others each serve a third of them. It
// reports the bytes each serving process reads from Redis per event
// published, and its share of what a process serving every topic reads
// (share-%: about 33 when a process receives only its topics).
func BenchmarkTrafficShare(b *testing.B) {
	addrs := startServers(b, 3)
	prefix := "bench" + strconv.Itoa(rand.Int())
	pub := newStore(b, addrs, prefix, nil)
	hub, err := sse.NewHub(sse.Options{Store: pub})
	if err != nil {
		b.Fatal(err)
	}
	defer shutdown(hub)
	var counters [4]atomic.Int64 // three thirds, and one process serving all
	var listens [4]*latencies
	for i := range counters {
		s := newStore(b, addrs, prefix, &counters[i])
		var mine []string
		for t := range topics {
			if i == 3 || t%3 == i {
				mine = append(mine, topicName(t))
			}
		}
		listens[i] = listen(b, s, mine)
	}
	for i := range counters {
		counters[i].Store(0)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := hub.Publish(context.Background(), topicName(i%topics), sse.Event{Data: payload()}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	deadline := time.Now().Add(30 * time.Second)
	for listens[3].count() < b.N && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	all := float64(counters[3].Load())
	worst := 0.0
	for i := range 3 {
		worst = max(worst, float64(counters[i].Load())/all*100)
	}
	b.ReportMetric(all/float64(b.N), "B/event-all")
	b.ReportMetric(float64(counters[0].Load()+counters[1].Load()+counters[2].Load())/3/float64(b.N), "B/event-third")
	b.ReportMetric(worst, "share-%")
}

// redisCPU returns the CPU seconds the servers at addrs have used.
func redisCPU(b *testing.B, addrs []string) float64 {
	total := 0.0
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		info, err := c.Info(context.Background(), "cpu").Result()
		c.Close()
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			for _, f := range []string{"used_cpu_sys:", "used_cpu_user:"} {
				if v, ok := strings.CutPrefix(line, f); ok {
					x, _ := strconv.ParseFloat(v, 64)
					total += x
				}
			}
		}
	}
	return total
}

// latencies collects delivery times.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

func (l *latencies) percentiles() (p50, p99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0, 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*99/100]
}

// recorder is a Listener that records each entry's delivery time.
type recorder struct{ l *latencies }

func (r recorder) Deliver(e sse.Entry) {
	if sent, ok := sentAt(e.Event.Data); ok {
		r.l.add(time.Since(sent))
	}
}
func (recorder) State(error)   {}
func (recorder) Lost(string)   {}
func (recorder) NewEpoch()     {}
func (recorder) Signal([]byte) {}

// listen follows topics on s until the benchmark ends, and waits until
// every topic is delivered live.
func listen(b *testing.B, s *sseredis.Store, topics []string) *latencies {
	l := &latencies{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Listen(ctx, recorder{l})
	}()
	b.Cleanup(func() { cancel(); <-done })
	for _, t := range topics {
		n, err := s.Newest(context.Background(), t)
		if err != nil {
			b.Fatal(err)
		}
		s.Follow(t, n)
	}
	time.Sleep(500 * time.Millisecond) // the subscriptions are made
	return l
}

func allTopics() []string {
	var ts []string
	for t := range topics {
		ts = append(ts, topicName(t))
	}
	return ts
}

// newStore returns a store on the servers at addrs; the bytes its
// connections read are added to read, when given.
func newStore(b *testing.B, addrs []string, prefix string, read *atomic.Int64) *sseredis.Store {
	var clients []redis.UniversalClient
	for _, addr := range addrs {
		o := &redis.Options{Addr: addr}
		if read != nil {
			o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &countingConn{Conn: c, read: read}, nil
			}
		}
		c := redis.NewClient(o)
		b.Cleanup(func() { c.Close() })
		clients = append(clients, c)
	}
	opts := sseredis.Options{Prefix: prefix, MaxEventsPerTopic: 1000}
	if len(clients) == 1 {
		opts.Client = clients[0]
	} else {
		opts.Shards = clients
	}
	s, err := sseredis.New(context.Background(), opts)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func shutdown(h *sse.Hub) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = h.Shutdown(ctx)
}

// startServers starts n redis-server processes without persistence on
// free loopback ports, stopped at the end of b. Without redis-server the
// benchmark is skipped.
func startServers(b *testing.B, n int) []string {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		b.Skip("redis-server is not installed:", err)
	}
	var addrs []string
	for i := range n {
		dir := filepath.Join(b.TempDir(), strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
		cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addr := "127.0.0.1:" + port
		c := redis.NewClient(&redis.Options{Addr: addr})
		for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("redis-server on %s did not start", addr)
			}
		}
		c.Close()
		addrs = append(addrs, addr)
	}
	return addrs
}
