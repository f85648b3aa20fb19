package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	ld "github.com/launchdarkly/eventsource"
	r3 "github.com/r3labs/sse/v2"
	"github.com/ssekit/ssekit/core/sseclient"
	gosse "github.com/tmaxmax/go-sse"
	"gopkg.in/cenkalti/backoff.v1"
)

// A size is a kind of event: its frame, with a distinct ID each time, as
// an ssekit hub sends it.
type size struct {
	name  string
	frame func(i int) string
}

var sizes = []size{
	{"small", func(i int) string {
		return fmt.Sprintf("id: 3f9a0c1e-%d\ndata: {\"user\":\"ada\",\"n\":%d,\"ok\":true}\n\n", i, i)
	}},
	{"64KiB", func(i int) string {
		return fmt.Sprintf("id: 3f9a0c1e-%d\ndata: %s\n\n", i, strings.Repeat("x", 64<<10))
	}},
}

// stream returns at least 256 KiB of frames of s, to be sent again and
// again.
func stream(s size) []byte {
	var b []byte
	for i := 0; len(b) < 256<<10 || i < 16; i++ {
		b = append(b, s.frame(i)...)
	}
	return b
}

// A client reads n events from the stream at url with http.Client hc, and
// then stops and cleans up.
type client struct {
	name string
	read func(hc *http.Client, url string, n int) error
}

var clients = []client{
	{"ssekit", readSSEKit},
	{"go-sse", readGoSSE},
	{"r3labs", readR3},
	{"launchdarkly", readLD},
}

func readSSEKit(hc *http.Client, url string, n int) error {
	c := sseclient.New(url, &sseclient.Options{HTTPClient: hc})
	got := 0
	for _, err := range c.Events(context.Background()) {
		if err != nil {
			return err
		}
		if got++; got == n {
			break
		}
	}
	return nil
}

func readGoSSE(hc *http.Client, url string, n int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	c := &gosse.Client{HTTPClient: hc, Backoff: gosse.Backoff{MaxRetries: -1}}
	conn := c.NewConnection(req)
	conn.Buffer(nil, 1<<20)
	got := 0
	conn.SubscribeToAll(func(gosse.Event) {
		if got++; got == n {
			cancel()
		}
	})
	if err := conn.Connect(); got < n {
		return fmt.Errorf("go-sse: %d events, then %v", got, err)
	}
	return nil
}

func readR3(hc *http.Client, url string, n int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := r3.NewClient(url, r3.ClientMaxBufferSize(1<<20))
	c.Connection = hc
	// Its default backoff goes on retrying after ctx is cancelled.
	c.ReconnectStrategy = &backoff.StopBackOff{}
	got := 0
	err := c.SubscribeRawWithContext(ctx, func(*r3.Event) {
		if got++; got == n {
			cancel()
		}
	})
	if got < n {
		return fmt.Errorf("r3labs: %d events, then %v", got, err)
	}
	return nil
}

func readLD(hc *http.Client, url string, n int) error {
	// Its Close can deadlock while its decoder hands over an event (it
	// waits for the decoder's error first), so the stream is ended by
	// cancelling the request instead: the decoder's read fails, the error
	// handler closes the stream, and Events is drained until it is closed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	errs := make(chan error, 1)
	s, err := ld.SubscribeWithRequestAndOptions(req, ld.StreamOptionHTTPClient(hc),
		ld.StreamOptionErrorHandler(func(err error) ld.StreamErrorHandlerResult {
			select {
			case errs <- err:
			default:
			}
			return ld.StreamErrorHandlerResult{CloseNow: true}
		}))
	if err != nil {
		return err
	}
	defer func() {
		cancel()
		for range s.Events {
		}
	}()
	for got := 0; got < n; got++ {
		select {
		case <-s.Events:
		case err := <-errs:
			return fmt.Errorf("launchdarkly: %d events, then %v", got, err)
		}
	}
	return nil
}

// newServer serves the frames of s over loopback, again and again, to
// every request, until the client goes away.
func newServer(tb testing.TB, s size) (*httptest.Server, *http.Client) {
	body := stream(s)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		for {
			if _, err := w.Write(body); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	}))
	tr := &http.Transport{}
	tb.Cleanup(func() { tr.CloseIdleConnections(); srv.Close() })
	return srv, &http.Client{Transport: tr}
}

// benchClient reads b.N events of s with c over loopback: one op is one
// event received. Connecting and the server's writes are in the numbers,
// the same for every client.
func benchClient(b *testing.B, c client, s size) {
	srv, hc := newServer(b, s)
	b.ReportAllocs()
	b.SetBytes(int64(len(s.frame(1))))
	b.ResetTimer()
	if err := c.read(hc, srv.URL, b.N); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkClients receives events over loopback HTTP with each client.
func BenchmarkClients(b *testing.B) {
	for _, s := range sizes {
		for _, c := range clients {
			b.Run(s.name+"/"+c.name, func(b *testing.B) { benchClient(b, c, s) })
		}
	}
}

// repeatReader serves b again and again, without end, as a stream
// served from memory.
type repeatReader struct {
	b   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.b[r.off:])
	r.off = (r.off + n) % len(r.b)
	return n, nil
}

// A parser reads n events from r, a stream in memory.
type parser struct {
	name  string
	parse func(r io.Reader, n int) error
}

// parsers are the clients whose parsers can be used on their own. r3labs'
// client only splits events; its field parsing is not exported.
var parsers = []parser{
	{"ssekit", func(r io.Reader, n int) error {
		p := sseclient.NewParser(r)
		p.MaxEventSize, p.MaxLineSize = 1<<20, 1<<20
		for range n {
			if _, err := p.Next(); err != nil {
				return err
			}
		}
		return nil
	}},
	{"go-sse", func(r io.Reader, n int) error {
		got := 0
		for _, err := range gosse.Read(r, &gosse.ReadConfig{MaxEventSize: 1 << 20}) {
			if err != nil {
				return err
			}
			if got++; got == n {
				return nil
			}
		}
		return errors.New("go-sse: the stream ended")
	}},
	{"launchdarkly", func(r io.Reader, n int) error {
		d := ld.NewDecoder(r)
		for range n {
			if _, err := d.Decode(); err != nil {
				return err
			}
		}
		return nil
	}},
}

func benchParser(b *testing.B, p parser, s size) {
	r := &repeatReader{b: stream(s)}
	b.ReportAllocs()
	b.SetBytes(int64(len(s.frame(1))))
	b.ResetTimer()
	if err := p.parse(r, b.N); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkParsers parses events from memory with each client's parser.
func BenchmarkParsers(b *testing.B) {
	for _, s := range sizes {
		for _, p := range parsers {
			b.Run(s.name+"/"+p.name, func(b *testing.B) { benchParser(b, p, s) })
		}
	}
}

// TestTable runs every benchmark in this process, one after the other,
// several rounds, and prints the median of each as a Markdown table with
// ratios to the fastest of the other clients: numbers from one run.
// It runs only with SSEKIT_CLIENT_TABLE set (to the number of rounds).
func TestTable(t *testing.T) {
	rounds := 0
	fmt.Sscan(os.Getenv("SSEKIT_CLIENT_TABLE"), &rounds)
	if rounds <= 0 {
		t.Skip("set SSEKIT_CLIENT_TABLE=<rounds> to print the comparison table")
	}
	type row struct {
		level, size, name string
		res               []testing.BenchmarkResult
	}
	var rows []*row
	for _, s := range sizes {
		for _, c := range clients {
			rows = append(rows, &row{level: "client", size: s.name, name: c.name})
		}
	}
	for _, s := range sizes {
		for _, p := range parsers {
			rows = append(rows, &row{level: "parser", size: s.name, name: p.name})
		}
	}
	run := func(r *row) testing.BenchmarkResult {
		for _, s := range sizes {
			if s.name != r.size {
				continue
			}
			if r.level == "client" {
				for _, c := range clients {
					if c.name == r.name {
						return testing.Benchmark(func(b *testing.B) { benchClient(b, c, s) })
					}
				}
			}
			for _, p := range parsers {
				if p.name == r.name {
					return testing.Benchmark(func(b *testing.B) { benchParser(b, p, s) })
				}
			}
		}
		panic("no benchmark " + r.name)
	}
	// Rounds interleave the clients, each in a new random order, so that
	// neither a noisy moment on the machine nor the garbage the previous
	// benchmark left favours one of them.
	for range rounds {
		for _, i := range rand.Perm(len(rows)) {
			rows[i].res = append(rows[i].res, run(rows[i]))
		}
	}
	median := func(r *row) (evs, allocs, bytes float64) {
		var es, as, bs []float64
		for _, res := range r.res {
			es = append(es, float64(res.N)/res.T.Seconds())
			as = append(as, float64(res.MemAllocs)/float64(res.N))
			bs = append(bs, float64(res.MemBytes)/float64(res.N))
		}
		return med(es), med(as), med(bs)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "| level | events | client | events/s | ÷ fastest other | allocs/event | B/event |\n|---|---|---|---:|---:|---:|---:|\n")
	for _, r := range rows {
		evs, allocs, b := median(r)
		best := 0.0
		for _, o := range rows {
			if o.level == r.level && o.size == r.size && o.name != r.name {
				if e, _, _ := median(o); e > best {
					best = e
				}
			}
		}
		fmt.Fprintf(&out, "| %s | %s | %s | %s | %.2f | %.1f | %s |\n", r.level, r.size, r.name, group(evs), evs/best, allocs, group(b))
	}
	t.Logf("median of %d rounds, %s\n%s", rounds, time.Now().Format(time.DateOnly), out.String())
}

func med(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// group formats v rounded, with thin spaces between groups of digits.
func group(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(" ")
		}
		b.WriteRune(c)
	}
	return b.String()
}
