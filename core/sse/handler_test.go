package sse_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

func TestStreamHeadersAndImmediateFlush(t *testing.T) {
	testkit.CheckGoroutines(t)
	h := ssetest.NewHub(t, sse.Options{Retry: 2500 * time.Millisecond})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("news")})

	st := connect(t, srv.URL, "")
	hdr := st.Response.Header
	for k, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
		"Content-Length":    "",
		"Connection":        "",
	} {
		if got := hdr.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	// Connect returned before anything was published: the headers were
	// flushed at once. The opening comment and retry hint follow.
	comments := make(chan string, 4)
	st.Parser().OnComment = func(c string) { comments <- c }
	testkit.WaitStreams(t, h, 1)
	testkit.Publish(t, h, "news", "first")
	if ev := next(t, st); ev.Data != "first" {
		t.Fatalf("got %+v", ev)
	}
	if c := <-comments; c != " ok" {
		t.Errorf("opening comment = %q", c)
	}
	if r, ok := st.Parser().Retry(); !ok || r != 2500*time.Millisecond {
		t.Errorf("retry = %v, %v; want 2.5s", r, ok)
	}
}

func TestStreamOpensBeforeFirstEvent(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("quiet")})
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response head before any event: %v", err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != ": ok\n" {
		t.Fatalf("first body line %q, %v", line, err)
	}
}

func TestMultiTopicDeliveryInOrder(t *testing.T) {
	testkit.CheckGoroutines(t)
	h := ssetest.NewHub(t, sse.Options{})
	srv := serve(t, h, sse.HandlerOptions{})
	ab := connect(t, srv.URL+"?topic=a&topic=b&topic=a", "")
	c := connect(t, srv.URL+"?topic=c", "")
	testkit.WaitStreams(t, h, 2)
	if a, b, c, n := h.Subscribers("a"), h.Subscribers("b"), h.Subscribers("c"), h.Stats().Topics; a != 1 || b != 1 || c != 1 || n != 3 {
		t.Fatalf("subscribers a %d, b %d, c %d, in %d topics", a, b, c, n)
	}
	var want []string
	for i := range 30 {
		topic := []string{"a", "b", "c"}[i%3]
		testkit.Publish(t, h, topic, topic+strconv.Itoa(i))
		if topic != "c" {
			want = append(want, topic+strconv.Itoa(i))
		}
	}
	for _, w := range want {
		if ev := next(t, ab); ev.Data != w {
			t.Fatalf("a+b stream got %q, want %q", ev.Data, w)
		}
	}
	for i := 2; i < 30; i += 3 {
		if ev := next(t, c); ev.Data != "c"+strconv.Itoa(i) {
			t.Fatalf("c stream got %q", ev.Data)
		}
	}
}

func TestResumeFromLastEventID(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	var ids []string
	for i := range 10 {
		ids = append(ids, testkit.Publish(t, h, "t", strconv.Itoa(i)))
	}
	for _, via := range []string{"header", "query"} {
		t.Run(via, func(t *testing.T) {
			var st *ssetest.Stream
			if via == "header" {
				st = connect(t, srv.URL, ids[3])
			} else {
				st = connect(t, srv.URL+"?lastEventId="+ids[3], "")
			}
			for i := 4; i < 10; i++ {
				ev := next(t, st)
				if ev.Data != strconv.Itoa(i) || ev.LastEventID != ids[i] {
					t.Fatalf("replay got %+v, want data %d id %s", ev, i, ids[i])
				}
			}
		})
	}
	t.Run("header wins over query", func(t *testing.T) {
		st := connect(t, srv.URL+"?lastEventId="+ids[1], ids[8])
		if ev := next(t, st); ev.Data != "9" {
			t.Fatalf("got %+v, want the event after the header's id", ev)
		}
	})
}

// TestResumeIsGapFreeUnderConcurrentPublishing connects clients of several
// topics at random moments, resuming from random earlier events, while
// publishers run; each must see every event of its topics exactly once and
// in publish order.
func TestResumeIsGapFreeUnderConcurrentPublishing(t *testing.T) {
	testkit.CheckGoroutines(t)
	h := ssetest.NewHub(t, sse.Options{})
	srv := serve(t, h, sse.HandlerOptions{})
	const perTopic = 300
	topics := []string{"a", "b", "c"}

	// Publishers: one per topic; each records (seq in store order) what it published.
	var mu sync.Mutex
	var log []ssetest.Event // every event, in store order
	publishOne := func(topic string, i int) {
		mu.Lock() // publish and record in one step so log is in store order
		defer mu.Unlock()
		data := topic + ":" + strconv.Itoa(i)
		id, err := h.Publish(context.Background(), topic, sse.Event{Data: []byte(data)})
		if err != nil {
			t.Error(err)
		}
		log = append(log, ssetest.Event{Type: topic, Data: data, LastEventID: id})
	}
	for i := range 20 { // some history before anyone connects
		publishOne(topics[i%3], -i-1)
	}
	var pubs sync.WaitGroup
	for _, topic := range topics {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for i := range perTopic {
				publishOne(topic, i)
				if i%10 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}

	var clients sync.WaitGroup
	for c := range 12 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
			sub := []string{topics[c%3], topics[(c+1)%3]}[:1+c%2]
			mu.Lock()
			from := rand.IntN(len(log))
			lastID := log[from].LastEventID
			mu.Unlock()
			url := srv.URL + "?topic=" + strings.Join(sub, "&topic=")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			st, err := ssetest.Connect(ctx, nil, url, lastID)
			if err != nil {
				t.Error(err)
				return
			}
			defer st.Close()
			var got []string
			lastOf := map[string]bool{}
			for len(lastOf) < len(sub) {
				ev, err := st.Next()
				if err != nil {
					t.Errorf("client %d: %v after %d events", c, err, len(got))
					return
				}
				got = append(got, ev.Data)
				if strings.HasSuffix(ev.Data, ":"+strconv.Itoa(perTopic-1)) {
					lastOf[ev.Data] = true
				}
			}
			pubs.Wait()
			mu.Lock()
			var want []string
			for _, e := range log[from+1:] {
				if e.Type == sub[0] || (len(sub) == 2 && e.Type == sub[1]) {
					want = append(want, e.Data)
				}
			}
			mu.Unlock()
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("client %d (%v from %s): got %d events, want %d\n got %v\nwant %v", c, sub, lastID, len(got), len(want), got, want)
			}
		}()
	}
	clients.Wait()
	pubs.Wait()
}

func TestResetSignal(t *testing.T) {
	small, err := sse.NewMemoryStore(sse.MemoryStoreOptions{MaxEvents: 5})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := sse.NewMemoryStore(sse.MemoryStoreOptions{})
	h := ssetest.NewHub(t, sse.Options{Store: small, MaxLastEventIDLength: 64})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	first := testkit.Publish(t, h, "t", "0")
	var last string
	for i := 1; i < 10; i++ {
		last = testkit.Publish(t, h, "t", strconv.Itoa(i))
	}
	tests := []struct {
		name, lastID, reason string
	}{
		{"evicted", first, "evicted"},
		{"other epoch", msID(other, 3), "unknown-id"},
		{"malformed", "no-such-id", "unknown-id"},
		{"binary", "\x01\x02\xff", "unknown-id"},
		{"too long", strings.Repeat("9", 65), "unknown-id"},
		{"from the future", msID(small, 1000), "unknown-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := connect(t, srv.URL+"?lastEventId="+urlQueryEscape(tt.lastID), "")
			defer func() { last = testkit.Publish(t, h, "t", "next") }()
			ev := next(t, st)
			if ev.Type != "sse-reset" || ev.Data != `{"reason":"`+tt.reason+`"}` {
				t.Fatalf("first event %+v, want a reset with reason %s", ev, tt.reason)
			}
			if ev.LastEventID != last {
				t.Errorf("reset id %q, want the newest id %q so a reconnect resumes from there", ev.LastEventID, last)
			}
			testkit.Eventually(t, "stream registered", func() bool { return h.Subscribers("t") >= 1 })
			testkit.Publish(t, h, "t", "live")
			if ev := next(t, st); ev.Data != "live" {
				t.Fatalf("after reset got %+v, want the live event", ev)
			}
		})
	}
}

func urlQueryEscape(s string) string {
	r := strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", " ", "%20", "\x01", "%01", "\x02", "%02", "\xff", "%FF")
	return r.Replace(s)
}

func TestHeartbeatOnIdleStream(t *testing.T) {
	testkit.CheckGoroutines(t)
	h := ssetest.NewHub(t, sse.Options{HeartbeatInterval: 50 * time.Millisecond})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	st := connect(t, srv.URL, "")
	pings := make(chan string, 16)
	st.Parser().OnComment = func(c string) {
		select {
		case pings <- c:
		default:
		}
	}
	go func() { _, _ = st.Next() }()
	seen := 0
	timeout := time.After(10 * time.Second)
	for seen < 3 {
		select {
		case c := <-pings:
			if c == " ping" {
				seen++
			}
		case <-timeout:
			t.Fatalf("saw %d heartbeats", seen)
		}
	}
}

func TestClientGoneReleasesSubscription(t *testing.T) {
	testkit.CheckGoroutines(t)
	h := ssetest.NewHub(t, sse.Options{})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	for range 3 {
		st := connect(t, srv.URL, "")
		testkit.WaitStreams(t, h, 1)
		st.Close()
		testkit.WaitStreams(t, h, 0)
	}
	if n := h.Stats().Topics; n != 0 {
		t.Errorf("%d topics left in the hub", n)
	}
}

func TestWriterThatCannotFlushIsRefused(t *testing.T) {
	var logs strings.Builder
	h := ssetest.NewHub(t, sse.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	srv := httptest.NewServer(http.TimeoutHandler(h.Handler(sse.HandlerOptions{Topics: sse.Topics("t")}), time.Minute, "timeout"))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, body %q", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "does not reach the connection") || !strings.Contains(logs.String(), "TimeoutHandler") {
		t.Errorf("log does not explain: %q", logs.String())
	}
}

func TestRefusals(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{MaxTopics: 2})
	srv := serve(t, h, sse.HandlerOptions{Topics: func(r *http.Request) ([]string, error) {
		switch r.URL.Query().Get("case") {
		case "forbidden":
			return nil, sse.Refuse(http.StatusForbidden, "not yours")
		case "later":
			return nil, sse.TryLater(1500 * time.Millisecond)
		case "fail":
			return nil, io.ErrUnexpectedEOF
		case "many":
			return []string{"a", "b", "c"}, nil
		case "empty":
			return []string{""}, nil
		case "none":
			return nil, nil
		}
		return []string{"ok"}, nil
	}})
	tests := []struct {
		query, method string
		status        int
		body          string
	}{
		{"case=forbidden", "GET", 403, "not yours\n"},
		{"case=later", "GET", 200, "retry: 1500\n\n"},
		{"case=fail", "GET", 500, "internal error\n"},
		{"case=many", "GET", 400, "too many topics: 3, at most 2\n"},
		{"case=empty", "GET", 400, "sse: invalid topic \"\": a topic is 1 to 256 bytes of UTF-8\n"},
		{"case=none", "GET", 400, "no topic\n"},
		{"", "POST", 405, "event streams answer GET only\n"},
	}
	for _, tt := range tests {
		t.Run(tt.query+tt.method, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+"?"+tt.query, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || string(body) != tt.body {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.status, tt.body)
			}
			if tt.status == 200 && resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Errorf("TryLater content type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

// TestServerWriteTimeoutDoesNotEndStreams runs a stream for several times
// http.Server.WriteTimeout.
func TestServerWriteTimeoutDoesNotEndStreams(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{HeartbeatInterval: 40 * time.Millisecond})
	srv := httptest.NewUnstartedServer(h.Handler(sse.HandlerOptions{Topics: sse.Topics("t")}))
	srv.Config.WriteTimeout = 100 * time.Millisecond
	srv.Config.ReadTimeout = 100 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	st := connect(t, srv.URL, "")
	testkit.WaitStreams(t, h, 1)
	time.Sleep(500 * time.Millisecond)
	testkit.Publish(t, h, "t", "still here")
	if ev := next(t, st); ev.Data != "still here" {
		t.Fatalf("got %+v", ev)
	}
}

// TestStalledClientDoesNotDelayOthers: a client that never reads is cut off
// while a healthy client receives every event, exactly once.
func TestStalledClientDoesNotDelayOthers(t *testing.T) {
	testkit.CheckGoroutines(t)
	h := ssetest.NewHub(t, sse.Options{WriteTimeout: 300 * time.Millisecond, MaxQueueBytes: 256 << 10, MaxReplayBytes: 16 << 20})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})

	stalled, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	_ = stalled.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(stalled, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	healthy := connect(t, srv.URL, "")
	testkit.WaitStreams(t, h, 2)

	payload := strings.Repeat("x", 32<<10)
	const n = 400 // 12.5 MiB: far more than socket buffers hold
	got := make(chan []string, 1)
	go func() {
		// Read like a browser: resume after the hub ends the stream.
		var ids []string
		st := healthy
		for len(ids) < n {
			ev, err := st.Next()
			if err != nil {
				st.Close()
				if st, err = ssetest.Connect(context.Background(), nil, srv.URL, st.LastEventID()); err != nil {
					break
				}
				continue
			}
			if ev.Data == payload {
				ids = append(ids, ev.LastEventID)
			}
		}
		st.Close()
		got <- ids
	}()
	var want []string
	for i := range n {
		want = append(want, testkit.Publish(t, h, "t", payload))
		if i%4 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if ids := <-got; strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("healthy client got %d events, want each of %d once, in order", len(ids), n)
	}
	testkit.WaitStreams(t, h, 0) // the stalled one was cut off too
}

// TestSlowConsumerResumesWithoutLoss: a client evicted for a full queue
// reconnects with its Last-Event-ID and gets every event.
func TestSlowConsumerResumesWithoutLoss(t *testing.T) {
	// Hold the stream goroutine back: publish a burst larger than the queue
	// faster than a single write can drain it, many times over. The store
	// keeps the whole burst, so that every resume is a replay.
	const n = 2000
	store := msNew(t, sse.MemoryStoreOptions{MaxEventsPerTopic: n})
	h := ssetest.NewHub(t, sse.Options{Store: store, MaxQueueEvents: 4, MaxReplayEvents: 4096, CloseRetry: time.Millisecond})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	st := connect(t, srv.URL, "")
	testkit.WaitStreams(t, h, 1)
	for i := range n {
		testkit.Publish(t, h, "t", strconv.Itoa(i))
	}
	var got []int
	reconnects := 0
	for len(got) < n {
		ev, err := st.Next()
		if err != nil { // ended by the hub: resume as a browser would
			st.Close()
			st = connect(t, srv.URL, st.LastEventID())
			reconnects++
			continue
		}
		v, _ := strconv.Atoi(ev.Data)
		got = append(got, v)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("event %d is %d", i, v)
		}
	}
	if reconnects == 0 {
		t.Error("the client was never evicted; the test did not test eviction")
	}
}

func TestShutdownWithManyOpenStreams(t *testing.T) {
	testkit.CheckGoroutines(t)
	h, err := sse.NewHub(sse.Options{CloseRetry: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler(sse.HandlerOptions{Topics: sse.Topics("t")}))
	defer srv.Close()
	const n = 100
	streams := make([]*ssetest.Stream, n)
	for i := range streams {
		streams[i] = connect(t, srv.URL, "")
	}
	testkit.WaitStreams(t, h, n)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("hub Shutdown: %v", err)
	}
	// New requests are told to come back later.
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "retry: ") {
		t.Errorf("after shutdown: %d %q", resp.StatusCode, body)
	}
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("http.Server.Shutdown: %v", err)
	}
	for i, st := range streams {
		if _, err := st.Next(); err != io.EOF {
			t.Fatalf("stream %d: %v, want a clean end", i, err)
		}
		r, ok := st.Parser().Retry()
		if !ok || r < 200*time.Millisecond || r > 400*time.Millisecond {
			t.Errorf("stream %d: retry hint %v, %v; want 200-400ms", i, r, ok)
		}
	}
	// Publishing still records.
	if _, err := h.Publish(context.Background(), "t", sse.Event{Data: []byte("x")}); err != nil {
		t.Errorf("Publish after Shutdown: %v", err)
	}
}

// flushingWrapper has a Flush method but unwraps to a writer that cannot
// flush, like Echo's Response over http.TimeoutHandler's writer.
type flushingWrapper struct{ http.ResponseWriter }

func (w flushingWrapper) Flush()                      { panic("the inner writer cannot flush") }
func (w flushingWrapper) Unwrap() http.ResponseWriter { return w.ResponseWriter }
func (w flushingWrapper) Header() http.Header         { return w.ResponseWriter.Header() }
func (w flushingWrapper) Write(p []byte) (int, error) { return w.ResponseWriter.Write(p) }
func (w flushingWrapper) WriteHeader(code int)        { w.ResponseWriter.WriteHeader(code) }

func TestWrapperOverWriterThatCannotFlushIsRefused(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	inner := h.Handler(sse.HandlerOptions{Topics: sse.Topics("t")})
	wrap := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(flushingWrapper{w}, r)
	})
	srv := httptest.NewServer(http.TimeoutHandler(wrap, time.Minute, "timeout"))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
}

// TestRequestDeadlineEndsWithRetryHint: a timeout middleware that cancels
// the request context ends the stream with a retry hint, and the client
// resumes without loss.
func TestRequestDeadlineEndsWithRetryHint(t *testing.T) {
	var mu sync.Mutex
	var reasons []sse.EndReason
	h := ssetest.NewHub(t, sse.Options{CloseRetry: 5 * time.Millisecond, Observer: sse.Observer{
		StreamClosed: func(_ sse.StreamInfo, r sse.EndReason, _ int) { mu.Lock(); reasons = append(reasons, r); mu.Unlock() },
	}})
	inner := h.Handler(sse.HandlerOptions{Topics: sse.Topics("t")})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 100*time.Millisecond)
		defer cancel()
		inner.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	st := connect(t, srv.URL, "")
	first := testkit.Publish(t, h, "t", "before")
	if ev := next(t, st); ev.LastEventID != first {
		t.Fatalf("got %+v", ev)
	}
	if _, err := st.Next(); err != io.EOF {
		t.Fatalf("the stream did not end cleanly at the deadline: %v", err)
	}
	if r, ok := st.Parser().Retry(); !ok || r < 5*time.Millisecond || r > 10*time.Millisecond {
		t.Errorf("retry hint %v, %v; want 5-10ms", r, ok)
	}
	missed := testkit.Publish(t, h, "t", "missed")
	st = connect(t, srv.URL, st.LastEventID())
	if ev := next(t, st); ev.LastEventID != missed {
		t.Fatalf("resumed with %+v, want the missed event", ev)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reasons) == 0 || reasons[0] != sse.EndDeadline {
		t.Errorf("end reasons %v, want EndDeadline first", reasons)
	}
}

func TestTopicsFromPathValue(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{})
	mux := http.NewServeMux()
	handler := h.Handler(sse.HandlerOptions{Topics: sse.TopicsFromPathValue("room")})
	mux.Handle("/rooms/{room}/events", handler)
	mux.Handle("/all/{rest...}", h.Handler(sse.HandlerOptions{Topics: sse.TopicsFromPathValue("rest")}))
	mux.Handle("/nowhere", handler)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	a := connect(t, srv.URL+"/rooms/a%2Fb/events", "")
	rest := connect(t, srv.URL+"/all/x/y", "")
	testkit.WaitStreams(t, h, 2)
	if h.Subscribers("a/b") != 1 || h.Subscribers("x/y") != 1 {
		t.Errorf("subscribers: a/b %d, x/y %d; want 1 and 1", h.Subscribers("a/b"), h.Subscribers("x/y"))
	}
	id := testkit.Publish(t, h, "a/b", "to a/b")
	if ev := next(t, a); ev.LastEventID != id {
		t.Errorf("got %+v", ev)
	}
	rest.Close()
	if resp, _ := testkit.Request(t, "GET", srv.URL+"/nowhere", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a route without the wildcard: %d, want 400", resp.StatusCode)
	}
}
