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
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"
	"slices"
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
	// Topics is true when the server serves topics: GET /events?topic=a&topic=b
	// subscribes to those, POST /publish takes topic, users,
	// broadcast_every and log (see PublishRequest), and GET
	// /debug/published lists what it logged. The scale scenarios need it.
	Topics bool `json:"topics,omitempty"`
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

// PublishRequest is a parsed POST /publish?count=K&rate=R&size=B, with,
// for a server with topics (Info.Topics), &topic=T or
// &users=N&broadcast_every=E, and &log=1.
type PublishRequest struct {
	Count int     // events to publish
	Rate  float64 // events per second; 0 means as fast as possible
	Size  int     // bytes of data per event (at least the header's length)

	// Topic is the topic of every event; "" is the server's own (the one
	// GET /events without a topic subscribes to).
	Topic string
	// Users, when set, spreads the events over the topics "user/0" ..
	// "user/<Users-1>" instead, and BroadcastEvery, when set, sends every
	// BroadcastEvery-th event (by sequence number) to BroadcastTopic: a
	// notification feed. See TopicOf.
	Users          int
	BroadcastEvery int
	// Log records every event's sequence number, topic and ID for GET
	// /debug/published.
	Log bool
}

// BroadcastTopic is the shared topic of a feed (PublishRequest.Users).
const BroadcastTopic = "broadcast"

// Limits of a publish request, so that a typo cannot run for hours.
const (
	MaxCount = 10_000_000
	MaxSize  = 1 << 20
	MaxUsers = 10_000_000
)

// TopicOf returns the topic of the event with sequence number seq: with
// Users, BroadcastTopic when BroadcastEvery divides seq, otherwise
// "user/<k>" with k picked by a hash of seq (the same for the same seq,
// spread evenly over 0..Users-1); without, Topic.
func (r *PublishRequest) TopicOf(seq uint64) string {
	if r.Users <= 0 {
		return r.Topic
	}
	if r.BroadcastEvery > 0 && seq%uint64(r.BroadcastEvery) == 0 {
		return BroadcastTopic
	}
	return UserTopic(int(mix(seq) % uint64(r.Users)))
}

// UserTopic is the topic of user k in a feed: "user/<k>".
func UserTopic(k int) string { return "user/" + strconv.Itoa(k) }

// mix is splitmix64's finalizer: a fixed, well spread hash.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

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
	if p.Topic = get("topic"); len(p.Topic) > 256 {
		return p, fmt.Errorf("topic: %d bytes, want at most 256", len(p.Topic))
	}
	if s := get("users"); s != "" {
		if p.Users, err = strconv.Atoi(s); err != nil || p.Users < 0 || p.Users > MaxUsers {
			return p, fmt.Errorf("users=%q: want 0..%d", s, MaxUsers)
		}
	}
	if s := get("broadcast_every"); s != "" {
		if p.BroadcastEvery, err = strconv.Atoi(s); err != nil || p.BroadcastEvery < 0 {
			return p, fmt.Errorf("broadcast_every=%q: want a non-negative integer", s)
		}
	}
	p.Log = get("log") == "1"
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

	logMu  sync.Mutex
	pubLog []LogEntry // what requests with Log published
)

// LogEntry is one published event, as GET /debug/published lists it.
type LogEntry struct {
	Seq   uint64
	Topic string
	ID    string
}

// TopicSend publishes data on topic ("": the server's own topic) and
// returns the ID the library gave the event ("" if none).
type TopicSend func(topic string, data []byte) (id string, err error)

// Publish runs req: it builds Count events of Size bytes and hands them to
// send, paced at Rate per second (a publisher that falls behind catches up
// in a burst; it never skips events). Sequence numbers start at 1 and run
// on across requests, so the runner knows the range of every request.
// The library must not keep send's argument beyond its own needs: every
// event gets a fresh slice, which it may retain (replay stores do).
func Publish(req PublishRequest, send func(data []byte) error) PublishResult {
	return PublishTopics(req, func(_ string, data []byte) (string, error) { return "", send(data) })
}

// PublishTopics is Publish for a server with topics: each event goes to
// req.TopicOf(its sequence number), and with req.Log its sequence number,
// topic and ID are logged for GET /debug/published.
func PublishTopics(req PublishRequest, send TopicSend) PublishResult {
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
		topic := req.TopicOf(s)
		id, err := send(topic, Payload(s, req.Size))
		if err != nil {
			if res.Errors == 0 {
				res.FirstError = err.Error()
			}
			res.Errors++
		} else if req.Log {
			logMu.Lock()
			pubLog = append(pubLog, LogEntry{Seq: s, Topic: topic, ID: id})
			logMu.Unlock()
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
	return PublishTopicsHandler(func(_ string, data []byte) (string, error) { return "", send(data) })
}

// PublishTopicsHandler answers POST /publish for a server with topics.
func PublishTopicsHandler(send TopicSend) http.Handler {
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
		res := PublishTopics(req, send)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
}

// PublishedHandler answers GET /debug/published[?after=N]: one line per
// logged event with a sequence number above N, "<seq> <topic> <id>\n", in
// sequence order (see PublishRequest.Log).
func PublishedHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
		logMu.Lock()
		log := pubLog
		logMu.Unlock()
		i, _ := slices.BinarySearchFunc(log, after+1, func(e LogEntry, s uint64) int { return cmp.Compare(e.Seq, s) })
		w.Header().Set("Content-Type", "text/plain")
		bw := bufio.NewWriterSize(w, 64<<10)
		var line []byte
		for _, e := range log[i:] {
			line = strconv.AppendUint(line[:0], e.Seq, 10)
			line = append(append(append(append(line, ' '), e.Topic...), ' '), e.ID...)
			_, _ = bw.Write(append(line, '\n'))
		}
		_ = bw.Flush()
	})
}

// Mem is the Go runtime's memory, as GET /debug/mem answers it.
type Mem struct {
	HeapAlloc  uint64 `json:"heap_alloc"`
	HeapInuse  uint64 `json:"heap_inuse"`
	HeapSys    uint64 `json:"heap_sys"`
	Sys        uint64 `json:"sys"`
	NumGC      uint32 `json:"num_gc"`
	Goroutines int    `json:"goroutines"`
}

// MemHandler answers GET /debug/mem with runtime.ReadMemStats (a short
// stop of the world: read it between phases, not during one).
func MemHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Mem{HeapAlloc: m.HeapAlloc, HeapInuse: m.HeapInuse, HeapSys: m.HeapSys,
			Sys: m.Sys, NumGC: m.NumGC, Goroutines: runtime.NumGoroutine()})
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
// /publish, /debug/goroutines, /debug/mem and /debug/info. It returns when
// the server fails. No WriteTimeout is set: it would end long-lived
// streams.
func NetHTTP(info Info, events http.Handler, send func(data []byte) error) error {
	return serve(info, events, PublishHandler(send), nil)
}

// NetHTTPTopics is NetHTTP for a server with topics (Info.Topics): send
// publishes on a topic, and GET /debug/published lists what was logged.
// extra adds routes ("GET /debug/hub", say).
func NetHTTPTopics(info Info, events http.Handler, send TopicSend, extra map[string]http.Handler) error {
	routes := map[string]http.Handler{"GET /debug/published": PublishedHandler()}
	for p, h := range extra {
		routes[p] = h
	}
	return serve(info, events, PublishTopicsHandler(send), routes)
}

func serve(info Info, events, publish http.Handler, extra map[string]http.Handler) error {
	mux := http.NewServeMux()
	mux.Handle("GET /events", events)
	mux.Handle("POST /publish", publish)
	mux.Handle("GET /debug/goroutines", GoroutinesHandler())
	mux.Handle("GET /debug/mem", MemHandler())
	mux.Handle("GET /debug/info", InfoHandler(info))
	for p, h := range extra {
		mux.Handle(p, h)
	}
	srv := &http.Server{Addr: Addr(), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}
