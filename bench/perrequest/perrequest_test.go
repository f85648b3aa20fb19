// Package perrequest benchmarks per-request streams, the way a handler
// streams a model's tokens to the one client that asked, with three
// libraries in one process and one harness: ssekit's Hub.Stream, Gin's
// c.SSEvent loop (the idiom Gin's docs show: SSEvent, then Flush) and
// go-sse's per-request Session (Upgrade, then Send and Flush per event),
// next to "bare" net/http (a frame appended to a reused buffer, Write,
// Flush), the floor that every net/http handler pays.
//
//	cd bench && go test -run '^$' -bench . -benchmem -count 3 ./perrequest
//
// Each event is a token: type "token", data " hello" (a string, as a
// model's client yields it, so each library makes its frame from it).
// README.md holds the results.
package perrequest

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	gosse "github.com/tmaxmax/go-sse"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseclient"
)

// token is every event's data.
const token = " hello"

// params says what a stream sends: n events, one every pace (back to back
// when zero); started, if set, is called once the stream is open, just
// before the first event.
type params struct {
	n       int
	pace    time.Duration
	started func()
}

type paramsKey struct{}

// paramsOf returns the params that the harness put in r's context.
func paramsOf(r *http.Request) params { return r.Context().Value(paramsKey{}).(params) }

// withParams returns r with p in its context.
func withParams(r *http.Request, p params) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), paramsKey{}, p))
}

// each runs send for each of the n events of p, pacing them, until send
// fails.
func each(p params, send func() error) error {
	if p.started != nil {
		p.started()
	}
	for i := range p.n {
		if i > 0 && p.pace > 0 {
			time.Sleep(p.pace)
		}
		if err := send(); err != nil {
			return err
		}
	}
	return nil
}

// A lib is one library's per-request stream handler, made for a test or
// benchmark tb (nil in a server process).
type lib struct {
	name    string
	handler func(tb testing.TB) http.Handler
}

// libs are the handlers, in the order of the tables.
var libs = []lib{
	{"gin", ginHandler},
	{"gosse", gosseHandler},
	{"ssekit", ssekitHandler},
	{"bare", bareHandler},
}

func ginHandler(testing.TB) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/", func(c *gin.Context) {
		_ = each(paramsOf(c.Request), func() error {
			c.SSEvent("token", token)
			c.Writer.Flush()
			return c.Request.Context().Err() // gin's loop learns of a client that left only here
		})
	})
	return r
}

func gosseHandler(testing.TB) http.Handler {
	typ := gosse.Type("token")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := gosse.Upgrade(w, r)
		if err != nil {
			return
		}
		_ = each(paramsOf(r), func() error {
			m := &gosse.Message{Type: typ}
			m.AppendData(token)
			if err := s.Send(m); err != nil {
				return err
			}
			return s.Flush()
		})
	})
}

func ssekitHandler(tb testing.TB) http.Handler {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		panic(err) // the zero Options are valid
	}
	if tb != nil { // nil in a server process of BenchmarkConcurrent, which exits
		tb.Cleanup(func() { _ = hub.Shutdown(context.Background()) })
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = hub.Stream(w, r, func(s *sse.Stream) error {
			return each(paramsOf(r), func() error {
				return s.Send(sse.Event{Type: "token", Data: []byte(token)})
			})
		})
	})
}

func bareHandler(testing.TB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		f := w.(http.Flusher)
		var buf []byte
		_ = each(paramsOf(r), func() error {
			buf = append(append(append(buf[:0], "event: token\ndata: "...), token...), "\n\n"...)
			if _, err := w.Write(buf); err != nil {
				return err
			}
			f.Flush()
			return nil
		})
	})
}

// serve serves h on a loopback httptest.Server (see fromQuery).
func serve(tb testing.TB, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(fromQuery(h))
	tb.Cleanup(srv.Close)
	return srv
}

// fromQuery serves h, with the params of each request from its query:
// ?n=&pace=.
func fromQuery(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, _ := strconv.Atoi(q.Get("n"))
		pace, _ := time.ParseDuration(q.Get("pace"))
		h.ServeHTTP(w, withParams(r, params{n: n, pace: pace}))
	})
}

// serverEnv names the lib that a server process of BenchmarkConcurrent
// serves: the test binary, started again with it set.
const serverEnv = "PERREQUEST_SERVE"

func TestMain(m *testing.M) {
	if name := os.Getenv(serverEnv); name != "" {
		serveProcess(name)
		return
	}
	os.Exit(m.Run())
}

// serveProcess serves the lib called name on a loopback port, which it
// prints, until its standard input ends; then it exits.
func serveProcess(name string) {
	i := slices.IndexFunc(libs, func(l lib) bool { return l.name == name })
	if i < 0 {
		log.Fatalf("%s=%s: no such lib", serverEnv, name)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: fromQuery(libs[i].handler(nil))}
	go func() { _ = srv.Serve(ln) }()
	fmt.Println(ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// get reads the stream of url to its end, discarding it, and returns its
// length.
func get(client *http.Client, url string) (int64, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.Copy(io.Discard, resp.Body)
}

// TestHandlers checks that every handler sends the same n events over
// HTTP, as a client that follows the HTML standard reads them, so that
// the benchmarks compare like with like. Gin's come with the token's
// leading space lost: gin-contrib/sse writes "data:" with no space after
// it, so the client takes the token's own space for the separator.
func TestHandlers(t *testing.T) {
	for _, l := range libs {
		t.Run(l.name, func(t *testing.T) {
			want := token
			if l.name == "gin" {
				want = token[1:]
			}
			srv := serve(t, l.handler(t))
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/?n=5", nil)
			n := 0
			for ev, err := range sseclient.Do(req, nil) {
				if err != nil {
					t.Fatal(err)
				}
				if ev.Type != "token" || ev.Data != want {
					t.Fatalf("event %+v, want a token %q", ev, want)
				}
				n++
			}
			if n != 5 {
				t.Errorf("%d events, want 5", n)
			}
		})
	}
}

// BenchmarkStream streams b.N events back to back to one client over a
// loopback connection, which discards them: one op is one event, sent,
// flushed and read (client and server share the process and its CPUs).
func BenchmarkStream(b *testing.B) {
	for _, l := range libs {
		b.Run(l.name, func(b *testing.B) {
			srv := serve(b, l.handler(b))
			client := srv.Client()
			if _, err := get(client, srv.URL+"/?n=1"); err != nil { // connect outside the timing
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			if _, err := get(client, srv.URL+"/?n="+strconv.Itoa(b.N)); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// discard is an http.ResponseWriter that flushes into nothing. Like
// net/http's own, it takes write deadlines (which ssekit requires) and
// strings (which Gin writes, and which io.WriteString would otherwise copy).
type discard struct{ h http.Header }

func (d *discard) Header() http.Header               { return d.h }
func (d *discard) Write(p []byte) (int, error)       { return len(p), nil }
func (d *discard) WriteString(s string) (int, error) { return len(s), nil }
func (d *discard) WriteHeader(int)                   {}
func (d *discard) Flush()                            {}
func (d *discard) SetWriteDeadline(time.Time) error  { return nil }

// BenchmarkSend sends b.N events on one stream to an in-memory
// ResponseWriter that discards them: the library's own cost per event,
// without a socket, and its allocations per send. The handler runs in the
// benchmark's goroutine; the timer starts once the stream is open.
func BenchmarkSend(b *testing.B) {
	for _, l := range libs {
		b.Run(l.name, func(b *testing.B) {
			h := l.handler(b)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			b.ReportAllocs()
			h.ServeHTTP(&discard{h: http.Header{}}, withParams(req, params{n: b.N, started: b.ResetTimer}))
		})
	}
}
