package redis_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssenats"
)

// BenchmarkPublishNATS is BenchmarkPublish on ssenats, in the same run:
// 32 goroutines publish on random topics of 300 through one hub, while
// another process (a store of its own, listening to every topic) receives
// them, on a nats-server with JetStream started by the benchmark.
func BenchmarkPublishNATS(b *testing.B) {
	url, pid := startNATS(b)
	stream := "BENCH" + strconv.Itoa(rand.Int())
	pub := newNATSStore(b, url, stream)
	ls := newNATSStore(b, url, stream)
	delivered := listenNATS(b, ls, allTopics())
	hub, err := sse.NewHub(sse.Options{Store: pub})
	if err != nil {
		b.Fatal(err)
	}
	defer shutdown(hub)
	b.SetParallelism(16) // 32 goroutines on 2 CPUs
	cpu0 := processCPU(b, pid)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := hub.Publish(context.Background(), topicName(rand.N(topics)), sse.Event{Data: payload()}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pubs/s")
	// How busy the server was: saturated at 100 per core it used.
	b.ReportMetric((processCPU(b, pid)-cpu0)/elapsed.Seconds()*100, "nats-cpu-%")
	deadline := time.Now().Add(30 * time.Second)
	for delivered.count() < b.N && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := delivered.count(); n < b.N {
		b.Fatalf("%d of %d events delivered", n, b.N)
	}
	p50, p99 := delivered.percentiles()
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
}

// BenchmarkTrafficShareNATS is BenchmarkTrafficShare on ssenats: one
// process publishes on 300 topics, three others each serve a third of
// them, a fourth serves all. It reports the bytes each reads from NATS per
// event published, and the largest share of a third-serving process in
// what the all-serving one reads (about 33 when a process receives only
// its topics).
func BenchmarkTrafficShareNATS(b *testing.B) {
	url, _ := startNATS(b)
	stream := "BENCH" + strconv.Itoa(rand.Int())
	pub := newNATSStore(b, url, stream)
	hub, err := sse.NewHub(sse.Options{Store: pub})
	if err != nil {
		b.Fatal(err)
	}
	defer shutdown(hub)
	var stores [4]*ssenats.Store
	var conns [4]*nats.Conn
	var listens [4]*latencies
	for i := range stores {
		conns[i] = connectNATS(b, url)
		stores[i] = natsStore(b, conns[i], stream)
		var mine []string
		for t := range topics {
			if i == 3 || t%3 == i {
				mine = append(mine, topicName(t))
			}
		}
		listens[i] = listenNATS(b, stores[i], mine)
	}
	var before [4]uint64
	for i, c := range conns {
		before[i] = c.Stats().InBytes
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
	var read [4]float64
	for i, c := range conns {
		read[i] = float64(c.Stats().InBytes - before[i])
	}
	worst := 0.0
	for i := range 3 {
		worst = max(worst, read[i]/read[3]*100)
	}
	b.ReportMetric(read[3]/float64(b.N), "B/event-all")
	b.ReportMetric((read[0]+read[1]+read[2])/3/float64(b.N), "B/event-third")
	b.ReportMetric(worst, "share-%")
}

// listenNATS follows topics on s until the benchmark ends, and waits until
// the subscriptions are made.
func listenNATS(b *testing.B, s *ssenats.Store, topics []string) *latencies {
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
	time.Sleep(500 * time.Millisecond)
	return l
}

func connectNATS(b *testing.B, url string) *nats.Conn {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

func newNATSStore(b *testing.B, url, stream string) *ssenats.Store {
	return natsStore(b, connectNATS(b, url), stream)
}

func natsStore(b *testing.B, nc *nats.Conn, stream string) *ssenats.Store {
	s, err := ssenats.New(context.Background(), ssenats.Options{Conn: nc, Stream: stream, Prefix: "bench." + stream, MaxEventsPerTopic: 1000})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// processCPU returns the CPU seconds process pid has used (Linux).
func processCPU(b *testing.B, pid int) float64 {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command's name, which ends with ')'.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks of 10 ms
}

// startNATS starts a nats-server with JetStream (on disk, in a temporary
// directory) on a free loopback port, stopped at the end of b, and returns
// its URL and process ID. Without nats-server the benchmark is skipped.
func startNATS(b *testing.B) (string, int) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		b.Skip("nats-server is not installed:", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", port, "-js", "-sd", b.TempDir())
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "nats://127.0.0.1:" + port
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if nc, err := nats.Connect(url); err == nil {
			js, _ := jetstream.New(nc)
			_, err = js.AccountInfo(context.Background())
			nc.Close()
			if err == nil {
				return url, cmd.Process.Pid
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("nats-server on %s did not start", url)
		}
	}
}
