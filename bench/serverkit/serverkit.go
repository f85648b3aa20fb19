// Package serverkit is the common contract of the servers under test: the
// environment they read, the payload they publish and the debug endpoints
// the runner reads. Every server in bench/servers is a small main that plugs
// its library into these pieces; README.md describes the contract.
//
// The pieces that do not depend on net/http (Addr, ParsePublish, Publish,
// Goroutines, Info) are what a server on another HTTP stack (fasthttp, say)
// uses; NetHTTP wires them into a net/http mux for everything else.
package serverkit

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Info describes a server to the runner (GET /debug/info).
type Info struct {
	// Name is the server's directory name under bench/servers.
	Name string `json:"name"`
	// Delivers is false for a server whose /publish reaches nobody (the
	// memory floor); the runner then runs only the idle and connect
	// scenarios against it.
	Delivers bool `json:"delivers"`
	// Resume is true when the server honours Last-Event-ID once BENCH_REPLAY=1
	// is set in its environment.
	Resume bool `json:"resume"`
	// Notes says how the library is set up, for the report.
	Notes string `json:"notes,omitempty"`
}

// Addr returns the address to listen on: 127.0.0.1:$PORT.
func Addr() string {
	port := os.Getenv("PORT")
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		log.Fatalf("serverkit: PORT=%q: set PORT to the port to listen on", port)
	}
	return "127.0.0.1:" + port
}

// ReplayEnabled reports whether BENCH_REPLAY=1: servers whose replay is
// optional (and costly) turn it on only then.
func ReplayEnabled() bool { return os.Getenv("BENCH_REPLAY") == "1" }

// PublishRequest is a parsed POST /publish?count=K&rate=R&size=B.
type PublishRequest struct {
	Count int     // events to publish
	Rate  float64 // events per second; 0 means as fast as possible
	Size  int     // bytes of data per event (at least the header's length)
}

// Limits of a publish request, so that a typo cannot run for hours.
const (
	MaxCount = 10_000_000
	MaxSize  = 1 << 20
)

// ParsePublish reads a publish request from query parameters.
func ParsePublish(get func(key string) string) (PublishRequest, error) {
	var p PublishRequest
	var err error
	if p.Count, err = strconv.Atoi(get("count")); err != nil || p.Count < 0 || p.Count > MaxCount {
		return p, fmt.Errorf("count=%q: want 0..%d", get("count"), MaxCount)
	}
	if s := get("rate"); s != "" {
		if p.Rate, err = strconv.ParseFloat(s, 64); err != nil || p.Rate < 0 || p.Rate > 1e9 {
			return p, fmt.Errorf("rate=%q: want a non-negative number", s)
		}
	}
	if s := get("size"); s != "" {
		if p.Size, err = strconv.Atoi(s); err != nil || p.Size < 0 || p.Size > MaxSize {
			return p, fmt.Errorf("size=%q: want 0..%d", s, MaxSize)
		}
	}
	return p, nil
}

// PublishResult is the answer to a publish request (JSON).
type PublishResult struct {
	First      uint64 `json:"first"`  // sequence number of the first event
	Last       uint64 `json:"last"`   // and of the last one
	Sent       int    `json:"sent"`   // events handed to the library
	Errors     int    `json:"errors"` // of which the library refused
	FirstError string `json:"first_error,omitempty"`
	ElapsedNS  int64  `json:"elapsed_ns"` // time the publish loop took
}

var (
	pubMu sync.Mutex    // one publish request at a time: sequence ranges stay contiguous
	seq   atomic.Uint64 // sequence number of the last event built
)

// Publish runs req: it builds Count events of Size bytes and hands them to
// send, paced at Rate per second (a publisher that falls behind catches up
// in a burst; it never skips events). Sequence numbers start at 1 and run
// on across requests, so the runner knows the range of every request.
// The library must not keep send's argument beyond its own needs: every
// event gets a fresh slice, which it may retain (replay stores do).
func Publish(req PublishRequest, send func(data []byte) error) PublishResult {
	pubMu.Lock()
	defer pubMu.Unlock()
	res := PublishResult{First: seq.Load() + 1, Last: seq.Load()}
	start := time.Now()
	var interval float64
	if req.Rate > 0 {
		interval = float64(time.Second) / req.Rate
	}
	for i := 0; i < req.Count; i++ {
		if interval > 0 {
			due := start.Add(time.Duration(float64(i) * interval))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		s := seq.Add(1)
		res.Last = s
		res.Sent++
		if err := send(Payload(s, req.Size)); err != nil {
			if res.Errors == 0 {
				res.FirstError = err.Error()
			}
			res.Errors++
		}
	}
	res.ElapsedNS = time.Since(start).Nanoseconds()
	return res
}

// Payload returns an event's data: the send time in unix nanoseconds, a
// space, the sequence number, a space, and 'x' up to size bytes. It never
// contains a line break.
func Payload(seq uint64, size int) []byte {
	b := make([]byte, 0, max(size, 48))
	b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ' ')
	for len(b) < size {
		b = append(b, 'x')
	}
	return b
}

// Goroutines returns runtime.NumGoroutine() as text.
func Goroutines() string { return strconv.Itoa(runtime.NumGoroutine()) }

// PublishHandler answers POST /publish with send as the library's publish.
func PublishHandler(send func(data []byte) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		req, err := ParsePublish(r.URL.Query().Get)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res := Publish(req, send)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
}

// GoroutinesHandler answers GET /debug/goroutines.
func GoroutinesHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(Goroutines()))
	})
}

// InfoHandler answers GET /debug/info.
func InfoHandler(info Info) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(info)
	})
}

// NetHTTP serves the contract on net/http: events at GET /events, and
// /publish, /debug/goroutines and /debug/info. It returns when the server
// fails. No WriteTimeout is set: it would end long-lived streams.
func NetHTTP(info Info, events http.Handler, send func(data []byte) error) error {
	mux := http.NewServeMux()
	mux.Handle("GET /events", events)
	mux.Handle("POST /publish", PublishHandler(send))
	mux.Handle("GET /debug/goroutines", GoroutinesHandler())
	mux.Handle("GET /debug/info", InfoHandler(info))
	srv := &http.Server{Addr: Addr(), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}
