package fibersse_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/fibersse"
	"github.com/ssekit/ssekit/internal/testkit"
)

func TestTopicsFromParam(t *testing.T) {
	hub := newHub(t, sse.Options{})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/rooms/:room/events", fibersse.Handler(hub, fibersse.TopicsFromParam("room")))
	base := start(t, hub, app)
	lobby := connect(t, base+"/rooms/lobby/events", "")
	kitchen := connect(t, base+"/rooms/kitchen/events", "")
	testkit.Publish(t, hub, "kitchen", "for the kitchen")
	id := testkit.Publish(t, hub, "lobby", "for the lobby")
	if ev := ssetest.NextWithin(t, lobby, 2*time.Second); ev.Data != "for the lobby" || ev.LastEventID != id {
		t.Errorf("lobby got %+v", ev)
	}
	if ev := ssetest.NextWithin(t, kitchen, 2*time.Second); ev.Data != "for the kitchen" {
		t.Errorf("kitchen got %+v", ev)
	}
}

// TestTopicsOutliveFiberBuffers: fiber hands out route parameters that
// point into buffers it reuses for later requests; the hub keeps topics for
// the stream's life. A stream must keep its topic when the connection that
// first named it has gone and its buffers serve other requests.
func TestTopicsOutliveFiberBuffers(t *testing.T) {
	hub := newHub(t, sse.Options{})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/rooms/:room/events", fibersse.Handler(hub, fibersse.TopicsFromParam("room")))
	base := start(t, hub, app)
	first := connect(t, base+"/rooms/aaaa/events", "") // its memory names the topic in the hub
	second := connect(t, base+"/rooms/aaaa/events", "")
	first.Close()
	testkit.Eventually(t, "the first stream to end", func() bool { return hub.Stats().Streams == 1 })
	http.DefaultClient.CloseIdleConnections()
	for i := range 50 { // reuse fiber's and fasthttp's request memory
		st := connect(t, base+"/rooms/"+fmt.Sprintf("b%03d", i)+"/events", "")
		st.Close()
	}
	testkit.Eventually(t, "the other streams to end", func() bool { return hub.Stats().Streams == 1 })
	if hub.Subscribers("aaaa") == 0 {
		t.Fatalf("no subscriber of aaaa")
	}
	id := testkit.Publish(t, hub, "aaaa", "still here")
	if ev := ssetest.NextWithin(t, second, 2*time.Second); ev.LastEventID != id {
		t.Errorf("got %+v", ev)
	}
}

func TestTopicsFromQuery(t *testing.T) {
	hub := newHub(t, sse.Options{})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/events", fibersse.Handler(hub, fibersse.TopicsFromQuery("room")))
	base := start(t, hub, app)
	st := connect(t, base+"/events?room=a&room=b", "")
	a := testkit.Publish(t, hub, "a", "1")
	testkit.Publish(t, hub, "c", "not for us")
	b := testkit.Publish(t, hub, "b", "2")
	for _, id := range []string{a, b} {
		if ev := ssetest.NextWithin(t, st, 2*time.Second); ev.LastEventID != id {
			t.Errorf("got %+v, want %s", ev, id)
		}
	}
	if resp, body := testkit.Request(t, "GET", base+"/events?topic=a", nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "room") {
		t.Errorf("without the parameter: %d %q, want 400", resp.StatusCode, body)
	}
}

var testAuth = &sse.Auth{
	CookieName: "session",
	Authenticate: func(_ context.Context, token string) (sse.Principal, error) {
		if user, ok := strings.CutPrefix(token, "good-"); ok {
			return sse.Principal{ID: user}, nil
		}
		return sse.Principal{}, errors.New("bad token")
	},
}

// userTopic subscribes a stream to its principal's own topic.
func userTopic(c *fiber.Ctx) ([]string, error) {
	p, ok := fibersse.Principal(c)
	if !ok {
		return nil, sse.Refuse(http.StatusUnauthorized, "who are you?")
	}
	return []string{"user/" + p.ID}, nil
}

func withHeader(h http.Header) *http.Client {
	return &http.Client{Transport: headerTransport(h)}
}

type headerTransport http.Header

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h {
		r.Header[k] = v
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestPrincipalPerUserTopic: Principal works in a TopicsFunc whether the
// Auth middleware or WithAuth authenticated the request.
func TestPrincipalPerUserTopic(t *testing.T) {
	hub := newHub(t, sse.Options{})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/mw/events", fibersse.Auth(hub, testAuth), fibersse.Handler(hub, fibersse.TopicsFunc(userTopic)))
	app.Get("/in/events", fibersse.Handler(hub, fibersse.WithAuth(testAuth), fibersse.TopicsFunc(userTopic)))
	base := start(t, hub, app)
	for _, path := range []string{"/mw/events", "/in/events"} {
		ann, err := tryConnect(t, withHeader(http.Header{"Authorization": {"Bearer good-ann"}}), base+path, "")
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		bob, err := tryConnect(t, withHeader(http.Header{"Cookie": {"session=good-bob"}}), base+path, "")
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		testkit.Publish(t, hub, "user/bob", "for bob")
		testkit.Publish(t, hub, "user/ann", "for ann")
		if ev := ssetest.NextWithin(t, ann, 2*time.Second); ev.Data != "for ann" {
			t.Errorf("%s: ann got %+v", path, ev)
		}
		if ev := ssetest.NextWithin(t, bob, 2*time.Second); ev.Data != "for bob" {
			t.Errorf("%s: bob got %+v", path, ev)
		}
		resp, body := testkit.Request(t, "GET", base+path, http.Header{"Authorization": {"Bearer bad"}})
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" || body == "" {
			t.Errorf("%s with a bad token: %d %q %v", path, resp.StatusCode, body, resp.Header)
		}
	}
}

// TestAuthMiddlewareStoresPrincipal: handlers after Auth see the principal
// through Principal and through c.UserContext().
func TestAuthMiddlewareStoresPrincipal(t *testing.T) {
	hub := newHub(t, sse.Options{})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/me", fibersse.Auth(hub, testAuth), func(c *fiber.Ctx) error {
		p, ok := fibersse.Principal(c)
		q, ok2 := sse.PrincipalFrom(c.UserContext())
		return c.SendString(fmt.Sprint(p.ID, ok, q.ID, ok2))
	})
	app.Get("/hub/me", fibersse.Auth(hub, testAuth), func(c *fiber.Ctx) error { return c.SendString("unreachable") })
	base := start(t, hub, app)
	if _, body := testkit.Request(t, "GET", base+"/me", http.Header{"Cookie": {"session=good-ann"}}); body != "anntrueanntrue" {
		t.Errorf("got %q", body)
	}
	resp, body := testkit.Request(t, "GET", base+"/hub/me", nil)
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "unreachable") {
		t.Errorf("without a token: %d %q", resp.StatusCode, body)
	}
}

// TestRefusals: a TopicsFunc's refusals and the method check reach the
// client as the core writes them.
func TestRefusals(t *testing.T) {
	hub := newHub(t, sse.Options{})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.All("/events/:what", fibersse.Handler(hub, fibersse.TopicsFunc(func(c *fiber.Ctx) ([]string, error) {
		switch c.Params("what") {
		case "missing":
			return nil, sse.Refuse(http.StatusNotFound, "no such room")
		case "later":
			return nil, sse.TryLater(2 * time.Second)
		case "broken":
			return nil, errors.New("database down")
		}
		return []string{"t"}, nil
	})))
	base := start(t, hub, app)
	for _, c := range []struct {
		method, what string
		status       int
		body, ct     string
	}{
		{"GET", "missing", 404, "no such room\n", "text/plain; charset=utf-8"},
		{"GET", "later", 200, "retry: 2000\n\n", "text/event-stream"},
		{"GET", "broken", 500, "internal error\n", "text/plain; charset=utf-8"},
		{"POST", "ok", 405, "event streams answer GET only\n", "text/plain; charset=utf-8"},
		{"HEAD", "ok", 405, "", "text/plain; charset=utf-8"},
	} {
		resp, body := testkit.Request(t, c.method, base+"/events/"+c.what, nil)
		if resp.StatusCode != c.status || body != c.body || resp.Header.Get("Content-Type") != c.ct ||
			(c.status == 405 && resp.Header.Get("Allow") != "GET") {
			t.Errorf("%s %s: %d %q (%s), want %d %q (%s)", c.method, c.what, resp.StatusCode, body, resp.Header.Get("Content-Type"), c.status, c.body, c.ct)
		}
	}
	if n := hub.Stats().Streams; n != 0 {
		t.Errorf("%d streams after refusals", n)
	}
}

// TestOptionPrecedence: the specific options override WithHandlerOptions,
// whatever their order.
func TestOptionPrecedence(t *testing.T) {
	hub := newHub(t, sse.Options{})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	base := sse.HandlerOptions{Topics: sse.Topics("base"), Auth: &sse.Auth{Authenticate: testAuth.Authenticate}}
	app.Get("/a", fibersse.Handler(hub, fibersse.Topics("specific"), fibersse.WithHandlerOptions(base)))
	app.Get("/b", fibersse.Handler(hub, fibersse.WithHandlerOptions(base), fibersse.WithAuth(&sse.Auth{Optional: true})))
	app.Get("/c", fibersse.Handler(hub, fibersse.Topics("first"), fibersse.TopicsFromQuery("topic")))
	url := start(t, hub, app)
	a, err := tryConnect(t, withHeader(http.Header{"Authorization": {"Bearer good-ann"}}), url+"/a", "")
	if err != nil {
		t.Fatal(err)
	}
	b := connect(t, url+"/b", "") // no token: Optional from WithAuth applies
	c := connect(t, url+"/c?topic=q", "")
	specific := testkit.Publish(t, hub, "specific", "")
	baseID := testkit.Publish(t, hub, "base", "")
	q := testkit.Publish(t, hub, "q", "")
	for _, x := range []struct {
		st   *ssetest.Stream
		want string
	}{{a, specific}, {b, baseID}, {c, q}} {
		if ev := ssetest.NextWithin(t, x.st, 2*time.Second); ev.LastEventID != x.want {
			t.Errorf("got %+v, want %s", ev, x.want)
		}
	}
}

// TestNilOptionsClearBase: WithAuth(nil) and WithCORS(nil) mean none, even
// where WithHandlerOptions set them, whatever the order (the same rule in
// every adapter).
func TestNilOptionsClearBase(t *testing.T) {
	hub := newHub(t, sse.Options{})
	base := sse.HandlerOptions{
		Auth: &sse.Auth{Authenticate: func(context.Context, string) (sse.Principal, error) { return sse.Principal{}, errors.New("no") }},
		CORS: &sse.CORS{AllowedOrigins: []string{"http://app.example"}},
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/before", fibersse.Handler(hub, fibersse.WithHandlerOptions(base), fibersse.WithAuth(nil), fibersse.WithCORS(nil), fibersse.Topics("t")))
	app.Get("/after", fibersse.Handler(hub, fibersse.WithAuth(nil), fibersse.WithCORS(nil), fibersse.Topics("t"), fibersse.WithHandlerOptions(base)))
	url := start(t, hub, app)
	for _, path := range []string{"/before", "/after"} {
		// No token, and an origin the base CORS would refuse: neither applies.
		st := ssetest.Open(t, url+path, "", http.Header{"Origin": {"http://other.example"}})
		if h := st.Response.Header.Get("Access-Control-Allow-Origin"); h != "" {
			t.Errorf("%s: Access-Control-Allow-Origin %q without CORS", path, h)
		}
		id := testkit.Publish(t, hub, "t", path)
		if ev := ssetest.NextWithin(t, st, 2*time.Second); ev.LastEventID != id {
			t.Errorf("%s: got %+v, want %s", path, ev, id)
		}
		st.Close()
	}
}

// TestRequestConversion: the request the core sees carries what the
// client sent.
func TestRequestConversion(t *testing.T) {
	hub := newHub(t, sse.Options{})
	seen := make(chan *http.Request, 1)
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/events", fibersse.Handler(hub, fibersse.WithHandlerOptions(sse.HandlerOptions{
		Topics: func(r *http.Request) ([]string, error) {
			seen <- r
			return []string{"t"}, nil
		},
	})))
	base := start(t, hub, app)
	req, _ := http.NewRequest("GET", base+"/events?a=1&a=2&b=%20x", nil)
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	req.AddCookie(&http.Cookie{Name: "c1", Value: "v1"})
	req.AddCookie(&http.Cookie{Name: "c2", Value: "v2"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := <-seen
	if got := r.URL.Query(); strings.Join(got["a"], ",") != "1,2" || got.Get("b") != " x" || r.URL.Path != "/events" {
		t.Errorf("URL %v", r.URL)
	}
	if got := r.Header.Values("X-Multi"); strings.Join(got, ",") != "one,two" {
		t.Errorf("X-Multi %q", got)
	}
	if c, err := r.Cookie("c2"); err != nil || c.Value != "v2" {
		t.Errorf("cookie c2: %v %v", c, err)
	}
	if r.Host != strings.TrimPrefix(base, "http://") || !strings.HasPrefix(r.RemoteAddr, "127.0.0.1:") || r.Method != "GET" {
		t.Errorf("Host %q RemoteAddr %q Method %q", r.Host, r.RemoteAddr, r.Method)
	}
}

// TestResumeAfterDrop: a client whose connection drops while events are
// being published resumes with Last-Event-ID and gets every event once.
func TestResumeAfterDrop(t *testing.T) {
	hub := newHub(t, sse.Options{})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/rooms/:room/events", fibersse.Handler(hub, fibersse.TopicsFromParam("room")))
	url := start(t, hub, app) + "/rooms/r/events"
	const n = 300
	st := connect(t, url, "") // subscribed: it gets every event from now on
	ids := make(chan []string, 1)
	go func() {
		var out []string
		for i := range n {
			id, err := hub.Publish(context.Background(), "r", sse.Event{Data: []byte(strconv.Itoa(i))})
			if err != nil {
				t.Error(err)
			}
			out = append(out, id)
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		ids <- out
	}()
	var got []string
	for drops := 0; len(got) < n; {
		ev := ssetest.NextWithin(t, st, 5*time.Second)
		got = append(got, ev.LastEventID)
		if len(got)%60 == 0 && drops < 4 { // drop the connection, resume
			drops++
			last := st.Parser().LastEventID()
			st.Close()
			st = connect(t, url, last)
		}
	}
	if want := <-ids; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %d events, want each of %d once, in order", len(got), n)
	}
}

// TestClientGoneWithinHeartbeat: fasthttp does not read a connection while
// it writes a response; the adapter still notices a client that left well
// within one heartbeat interval, and no goroutine is left behind.
func TestClientGoneWithinHeartbeat(t *testing.T) {
	const interval = 500 * time.Millisecond
	base := runtime.NumGoroutine()
	hub := newHub(t, sse.Options{HeartbeatInterval: interval})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/events", fibersse.Handler(hub, fibersse.Topics("t")))
	url := start(t, hub, app) + "/events"
	for range 5 {
		var streams []*ssetest.Stream
		for range 10 {
			streams = append(streams, connect(t, url, ""))
		}
		testkit.Eventually(t, "the streams to open", func() bool { return hub.Stats().Streams == 10 })
		left := time.Now()
		for _, st := range streams {
			st.Close()
		}
		testkit.Eventually(t, "the streams to be released", func() bool { return hub.Stats().Streams == 0 })
		if d := time.Since(left); d > interval {
			t.Errorf("released %v after the clients left, want within the heartbeat interval %v", d, interval)
		}
	}
	if n := hub.Stats().Topics; n != 0 {
		t.Errorf("%d topics left", n)
	}
	http.DefaultClient.CloseIdleConnections()
	testkit.Eventually(t, "goroutines to return to their number before the test", func() bool {
		return runtime.NumGoroutine() <= base+4
	})
}

// TestConcurrentStreamsAndRequests runs many streams that open and close
// while plain requests go on, so that fiber recycles its contexts: under
// -race, a stream that used its *fiber.Ctx after the handler would show.
func TestConcurrentStreamsAndRequests(t *testing.T) {
	hub := newHub(t, sse.Options{HeartbeatInterval: 20 * time.Millisecond})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/rooms/:room/events", fibersse.Auth(hub, testAuth), fibersse.Handler(hub, fibersse.TopicsFunc(func(c *fiber.Ctx) ([]string, error) {
		p, _ := fibersse.Principal(c)
		return []string{c.Params("room"), "user/" + p.ID, c.Query("extra", "none")}, nil
	})))
	app.Get("/ping", func(c *fiber.Ctx) error {
		c.Locals("x", c.Query("n"))
		return c.SendString("pong " + c.Query("n"))
	})
	base := start(t, hub, app)
	stop := make(chan struct{})
	var plain sync.WaitGroup
	for w := range 4 {
		plain.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := strconv.Itoa(w*1e6 + i)
				if _, body := testkit.Request(t, "GET", base+"/ping?n="+n, nil); body != "pong "+n {
					t.Errorf("ping %s: %q", n, body)
					return
				}
			}
		})
	}
	var streams sync.WaitGroup
	for w := range 16 {
		streams.Go(func() {
			client := withHeader(http.Header{"Authorization": {"Bearer good-u" + strconv.Itoa(w)}})
			for i := range 15 {
				room := fmt.Sprintf("room%d", (w+i)%5)
				st, err := tryConnect(t, client, base+"/rooms/"+room+"/events?extra=e"+strconv.Itoa(i), "")
				if err != nil {
					t.Error(err)
					return
				}
				id, err := hub.Publish(context.Background(), "user/u"+strconv.Itoa(w), sse.Event{Data: []byte(room)})
				if err != nil {
					t.Error(err)
					return
				}
				for {
					ev, err := st.Next()
					if err != nil {
						t.Errorf("stream %d/%d: %v", w, i, err)
						return
					}
					if ev.LastEventID == id {
						break
					}
				}
				st.Close()
			}
		})
	}
	streams.Wait()
	close(stop)
	plain.Wait()
	testkit.Eventually(t, "every stream to end", func() bool { return hub.Stats().Streams == 0 })
}

// openStreams opens n streams on url.
func openStreams(t *testing.T, url string, n int) []*ssetest.Stream {
	t.Helper()
	var out []*ssetest.Stream
	for range n {
		out = append(out, connect(t, url, ""))
	}
	return out
}

// TestShutdownWithOpenStreams: with 50 open streams, hub.Shutdown and then
// app.ShutdownWithTimeout return promptly, and every stream ends cleanly
// with a retry hint.
func TestShutdownWithOpenStreams(t *testing.T) {
	for _, c := range []struct {
		name string
		// shutdown shuts hub and app down in the way the case tests.
		shutdown func(t *testing.T, hub *sse.Hub, app *fiber.App)
		retry    bool // the streams end with the hub's retry hint
	}{
		{"hub first", func(t *testing.T, hub *sse.Hub, app *fiber.App) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := hub.Shutdown(ctx); err != nil {
				t.Errorf("hub Shutdown: %v", err)
			}
			if err := app.ShutdownWithTimeout(5 * time.Second); err != nil {
				t.Errorf("app ShutdownWithTimeout: %v", err)
			}
		}, true},
		{"app only", func(t *testing.T, hub *sse.Hub, app *fiber.App) {
			if err := app.ShutdownWithTimeout(5 * time.Second); err != nil {
				t.Errorf("app ShutdownWithTimeout: %v", err)
			}
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			hub := newHub(t, sse.Options{CloseRetry: 100 * time.Millisecond})
			app := fiber.New(fiber.Config{DisableStartupMessage: true})
			app.Get("/events", fibersse.Handler(hub, fibersse.Topics("t")))
			url := start(t, nil, app) + "/events"
			streams := openStreams(t, url, 50)
			testkit.Eventually(t, "the streams to open", func() bool { return hub.Stats().Streams == 50 })
			began := time.Now()
			c.shutdown(t, hub, app)
			if d := time.Since(began); d > time.Second {
				t.Errorf("shutting down took %v", d)
			}
			if n := hub.Stats().Streams; n != 0 {
				t.Errorf("%d streams left", n)
			}
			for i, st := range streams {
				if _, err := st.Next(); !errors.Is(err, io.EOF) {
					t.Fatalf("stream %d: %v, want a clean end", i, err)
				}
				if _, ok := st.Parser().Retry(); ok != c.retry {
					t.Errorf("stream %d: retry hint %v, want %v", i, ok, c.retry)
				}
			}
		})
	}
}

// TestServerTimeouts: fiber's ReadTimeout, WriteTimeout and IdleTimeout
// (which fasthttp applies to the whole response) do not end healthy
// streams.
func TestServerTimeouts(t *testing.T) {
	const limit = 100 * time.Millisecond
	hub := newHub(t, sse.Options{HeartbeatInterval: 30 * time.Millisecond})
	app := fiber.New(fiber.Config{DisableStartupMessage: true, ReadTimeout: limit, WriteTimeout: limit, IdleTimeout: limit})
	app.Get("/events", fibersse.Handler(hub, fibersse.Topics("t")))
	st := connect(t, start(t, hub, app)+"/events", "")
	for i := range 5 {
		time.Sleep(limit)
		id := testkit.Publish(t, hub, "t", strconv.Itoa(i))
		if ev := ssetest.NextWithin(t, st, 2*time.Second); ev.LastEventID != id {
			t.Fatalf("got %+v", ev)
		}
	}
}

// TestEndReasons: the hub's Observer learns why each stream ended, as on
// net/http: the client left, it stopped reading, or the hub shut down.
func TestEndReasons(t *testing.T) {
	reasons := make(chan sse.EndReason, 8)
	hub := newHub(t, sse.Options{
		WriteTimeout: 200 * time.Millisecond,
		// Large queues: the stalled client is cut off by the write
		// timeout, not evicted as a slow consumer.
		MaxQueueBytes:  1 << 30,
		MaxQueueEvents: 1 << 20,
		Observer:       sse.Observer{StreamClosed: func(_ sse.StreamInfo, r sse.EndReason, _ int) { reasons <- r }},
	})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/events", fibersse.Handler(hub, fibersse.Topics("t")))
	base := start(t, hub, app)
	expect := func(want sse.EndReason) {
		t.Helper()
		select {
		case r := <-reasons:
			if r != want {
				t.Errorf("stream ended with %v, want %v", r, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no stream ended, want %v", want)
		}
	}

	connect(t, base+"/events", "").Close()
	expect(sse.EndClientGone)

	stalled, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	_ = stalled.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := io.WriteString(stalled, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the stalled stream", func() bool { return hub.Stats().Streams == 1 })
	big := strings.Repeat("x", 64<<10)
	for hub.Stats().Streams == 1 {
		if _, err := hub.Publish(context.Background(), "t", sse.Event{Data: []byte(big)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	expect(sse.EndWriteTimeout)

	connect(t, base+"/events", "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	expect(sse.EndShutdown)
}
