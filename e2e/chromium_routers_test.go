package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gin-gonic/gin"
	"github.com/go-chi/chi/v5"
	fiber2 "github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v3"
	echo4 "github.com/labstack/echo/v4"
	"github.com/labstack/echo/v5"
	"github.com/ssekit/ssekit/chisse"
	"github.com/ssekit/ssekit/core/sse"
	echosse4 "github.com/ssekit/ssekit/echosse"
	echosse "github.com/ssekit/ssekit/echosse/echo5"
	fibersse2 "github.com/ssekit/ssekit/fibersse"
	fibersse "github.com/ssekit/ssekit/fibersse/fiber3"
	"github.com/ssekit/ssekit/ginsse"
	"github.com/valyala/fasthttp"
)

// routerRoom is the room of the routers' stream route. publishNumbers
// publishes on browserTopic, so the room is named after it: the topic comes
// from the route parameter, and with no topic option (the adapters'
// default is the "topic" query parameter) the request would be refused.
const routerRoom = browserTopic

// routerStreamPath is the stream's path, as the page asks for it.
const routerStreamPath = "/rooms/" + routerRoom + "/events"

// routerFiberHeartbeat is the fiber hub's heartbeat interval. fasthttp gives
// no handler an end of its own: a fiber stream whose connection the server
// closed is released at its next write, a heartbeat at the latest.
const routerFiberHeartbeat = 200 * time.Millisecond

// routerCase is one router: how it serves the page and the stream.
type routerCase struct {
	name string
	// serve builds the app on the hub, serves it on 127.0.0.1 and returns
	// its base URL. It records the stream requests and their connections
	// in s, and shuts down the hub, then the server, when the test ends.
	serve func(t *testing.T, s *browserSite, page string) string
	// heartbeat is the hub's HeartbeatInterval; zero: the default.
	heartbeat time.Duration
	// release bounds the wait for the hub to count no stream once the
	// tab is closed.
	release time.Duration
}

// TestChromiumRouters runs a room's stream through each router adapter
// (and net/http's ServeMux for reference) to a real browser: the app serves
// the page at "/" and the stream at /rooms/{room}/events, whose topic is
// the route parameter. The server cuts the stream's connection twice while
// events are being published; the browser comes back by itself with
// Last-Event-ID and must get every event once, in order. Closing the tab
// must then end the stream on the server.
func TestChromiumRouters(t *testing.T) {
	browser := startChromium(t)
	cases := []routerCase{
		{name: "gin", serve: serveGin, release: 2 * time.Second},
		{name: "echo", serve: serveEcho, release: 2 * time.Second},
		{name: "echo5", serve: serveEcho5, release: 2 * time.Second},
		{name: "fiber", serve: serveFiber, heartbeat: routerFiberHeartbeat, release: 5 * routerFiberHeartbeat},
		{name: "fiber3", serve: serveFiber3, heartbeat: routerFiberHeartbeat, release: 5 * routerFiberHeartbeat},
		{name: "chi", serve: serveChi, release: 2 * time.Second},
		{name: "nethttp", serve: serveNetHTTP, release: 2 * time.Second},
	}
	for _, rc := range cases {
		t.Run(rc.name, func(t *testing.T) { testRouterResume(t, browser, rc) })
	}
}

// testRouterResume is TestChromiumRouters for one router.
func testRouterResume(t *testing.T, browser context.Context, rc routerCase) {
	// The browser waits its 250 ms retry before it comes back: time for
	// events to be published while it is away, even on a loaded machine,
	// so that replay is exercised; and 200 events (600 ms) after the last
	// drop, so that it comes back while events are still being published.
	const total = 300
	drops := []int{50, 100} // cut the stream before publishing these events

	store, err := sse.NewMemoryStore(sse.MemoryStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hub, err := sse.NewHub(sse.Options{
		Store:             store,
		Retry:             250 * time.Millisecond,
		HeartbeatInterval: rc.heartbeat,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &browserSite{hub: hub, store: store, conns: make(map[net.Conn]int)}
	base := rc.serve(t, s, collectorPage(routerStreamPath))

	// The tab's own parent context: cancelling it closes the tab (and its
	// browser context) while the test goes on.
	tabParent, closeTab := context.WithCancel(browser)
	defer closeTab()
	ctx := openTab(t, tabParent, 20*time.Second)
	navigateTab(t, ctx, base+"/")
	waitJS(t, ctx, `window.__opens >= 1`)

	// back[k] is the event about to be published when the publisher first
	// saw the browser's request after drop k. Written by the publisher
	// only, read after it is done.
	back := make([]int, len(drops))
	// waited[k] is how long drop k waited for the stream to be open again.
	waited := make([]time.Duration, len(drops))
	d := 0
	ids, done := publishNumbers(ctx, hub, total, 3*time.Millisecond, func(i int) error {
		for k := range d {
			if back[k] == 0 && len(s.requests()) > k+1 {
				back[k] = i
			}
		}
		if d == len(drops) || i != drops[d] {
			return nil
		}
		// Each drop cuts a stream that is open: the page has seen it
		// open, and the hub counts only it (a fiber stream whose
		// connection was cut may linger until its next write).
		start := time.Now()
		for {
			opens, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.__opens`))
			if err != nil {
				return fmt.Errorf("before drop %d: reading window.__opens: %w", d+1, err)
			}
			if opens >= d+1 && len(s.requests()) >= d+1 && s.streams() == 1 {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		waited[d] = time.Since(start).Round(time.Millisecond)
		if n := s.dropStreams(); n != 1 {
			return errors.New("drop " + strconv.Itoa(d+1) + " cut " + strconv.Itoa(n) + " connections, want 1")
		}
		d++
		return nil
	})
	if err := <-done; err != nil {
		t.Fatalf("publisher: %v", err)
	}
	waitJS(t, ctx, `window.__got.length >= `+strconv.Itoa(total))
	t.Logf("streams cut before publishing events %v (after waiting %v for an open stream); the browser came back when %v were published", drops, waited, back)

	got := pageMessages(t, ctx)
	gotData, gotIDs := make([]string, len(got)), make([]string, len(got))
	for i, m := range got {
		gotData[i], gotIDs[i] = m.Data, m.ID
	}
	checkNumbers(t, numberStrings(total), ids, gotData, gotIDs)

	for k, at := range drops {
		// As in testResumeAfterServerDrop: events from at to back[k]-2
		// were published while the browser was away.
		if back[k] < at+2 {
			t.Errorf("after drop %d the browser came back before any event was published; replay was not exercised", k+1)
		}
	}
	reqs := s.requests()
	if len(reqs) != 1+len(drops) {
		t.Fatalf("server saw %d stream requests, want %d: %+v", len(reqs), 1+len(drops), reqs)
	}
	if reqs[0].LastEventID != "" {
		t.Errorf("first request sent Last-Event-ID %q, want none", reqs[0].LastEventID)
	}
	// Reconnection k+1 must name an event published before drop k+1 (the
	// cut connection carried nothing later), and never go back.
	prev := -1
	for k, r := range reqs[1:] {
		at := slices.Index(ids, r.LastEventID)
		switch {
		case r.LastEventID == "":
			t.Errorf("reconnection %d sent no Last-Event-ID", k+1)
		case at < 0 || at >= drops[k]:
			t.Errorf("reconnection %d sent Last-Event-ID %q, want the ID of one of events 0 to %d", k+1, r.LastEventID, drops[k]-1)
		case at < prev:
			t.Errorf("reconnection %d resumed from event %d, before reconnection %d's %d", k+1, at, k, prev)
		default:
			t.Logf("reconnection %d: Last-Event-ID of event %d, cut before event %d", k+1, at, drops[k])
			prev = at
		}
	}
	if opens := evalJS[int](t, ctx, `window.__opens`); opens != 1+len(drops) {
		t.Errorf("page saw %d open events, want %d", opens, 1+len(drops))
	}
	if n := s.streams(); n != 1 {
		t.Errorf("hub counts %d streams before the tab is closed, want 1", n)
	}

	closeTab()
	wctx, cancel := context.WithTimeout(context.Background(), rc.release)
	defer cancel()
	released := waitUntil(t, wctx, "the hub to count no stream after the tab was closed", func() bool { return s.streams() == 0 })
	t.Logf("tab closed→stream released: %v", released.Round(time.Millisecond))
}

// servePage answers with the HTML page, uncached.
func servePage(page string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(page))
	}
}

// serveHTTPRouter serves a net/http router on 127.0.0.1. The stream
// requests (paths under /rooms/) go through s.record, which tracks their
// connections for s.dropStreams; the router sees every request unchanged.
func serveHTTPRouter(t *testing.T, s *browserSite, router http.Handler) string {
	t.Helper()
	recorded := s.record(router)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/rooms/") {
				recorded.ServeHTTP(w, r)
				return
			}
			router.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, browserConnKey{}, c)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := s.hub.Shutdown(ctx); err != nil {
			t.Errorf("hub.Shutdown: %v", err)
		}
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("server Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("server Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func serveGin(t *testing.T, s *browserSite, page string) string {
	// Test mode: no debug lines for each route. The mode is gin's global.
	mode := gin.Mode()
	gin.SetMode(gin.TestMode)
	t.Cleanup(func() { gin.SetMode(mode) })
	r := gin.New()
	r.GET("/", gin.WrapF(servePage(page)))
	r.GET("/rooms/:room/events", ginsse.Handler(s.hub, ginsse.TopicsFromParam("room")))
	return serveHTTPRouter(t, s, r)
}

func serveEcho(t *testing.T, s *browserSite, page string) string {
	e := echo4.New()
	e.GET("/", func(c echo4.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.HTML(http.StatusOK, page)
	})
	e.GET("/rooms/:room/events", echosse4.Handler(s.hub, echosse4.TopicsFromParam("room")))
	return serveHTTPRouter(t, s, e)
}

func serveEcho5(t *testing.T, s *browserSite, page string) string {
	e := echo.New()
	e.GET("/", func(c *echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.HTML(http.StatusOK, page)
	})
	e.GET("/rooms/:room/events", echosse.Handler(s.hub, echosse.TopicsFromParam("room")))
	return serveHTTPRouter(t, s, e)
}

func serveChi(t *testing.T, s *browserSite, page string) string {
	r := chi.NewRouter()
	r.Get("/", servePage(page))
	r.Get("/rooms/{room}/events", chisse.Handler(s.hub, chisse.TopicsFromParam("room")))
	return serveHTTPRouter(t, s, r)
}

func serveNetHTTP(t *testing.T, s *browserSite, page string) string {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", servePage(page))
	mux.Handle("GET /rooms/{room}/events", s.hub.Handler(sse.HandlerOptions{
		Topics: func(r *http.Request) ([]string, error) { return []string{r.PathValue("room")}, nil },
	}))
	return serveHTTPRouter(t, s, mux)
}

// serveFiber serves a Fiber v2 app on 127.0.0.1 with app.Listener.
// fasthttp writes a stream after the handler has returned, so a middleware
// in front of the stream handler records the request and its connection,
// which stays in s until s.dropStreams closes it.
func serveFiber(t *testing.T, s *browserSite, page string) string {
	t.Helper()
	app := fiber2.New(fiber2.Config{IdleTimeout: 5 * time.Second, DisableStartupMessage: true})
	app.Get("/", func(c *fiber2.Ctx) error {
		c.Set("Cache-Control", "no-store")
		c.Type("html", "utf-8")
		return c.SendString(page)
	})
	record := func(c *fiber2.Ctx) error {
		s.recordFasthttp(c.Context())
		return c.Next()
	}
	app.Get("/rooms/:room/events", record, fibersse2.Handler(s.hub, fibersse2.TopicsFromParam("room")))
	return serveFasthttpApp(t, s, app.Listener, app.ShutdownWithContext)
}

// serveFiber3 is serveFiber on Fiber v3.
func serveFiber3(t *testing.T, s *browserSite, page string) string {
	t.Helper()
	app := fiber.New(fiber.Config{IdleTimeout: 5 * time.Second})
	app.Get("/", func(c fiber.Ctx) error {
		c.Set("Cache-Control", "no-store")
		c.Type("html", "utf-8")
		return c.SendString(page)
	})
	record := func(c fiber.Ctx) error {
		s.recordFasthttp(c.RequestCtx())
		return c.Next()
	}
	app.Get("/rooms/:room/events", record, fibersse.Handler(s.hub, fibersse.TopicsFromParam("room")))
	listen := func(ln net.Listener) error {
		return app.Listener(ln, fiber.ListenConfig{DisableStartupMessage: true})
	}
	return serveFasthttpApp(t, s, listen, app.ShutdownWithContext)
}

// recordFasthttp records the stream request of fc, and its connection for
// s.dropStreams. fasthttp reuses fc's buffers: the strings are copied.
func (s *browserSite) recordFasthttp(fc *fasthttp.RequestCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, browserRequest{
		LastEventID: string(fc.Request.Header.Peek("Last-Event-ID")),
		QueryID:     string(fc.QueryArgs().Peek("lastEventId")),
		Origin:      string(fc.Request.Header.Peek("Origin")),
		ProtoMajor:  1,
	})
	if conn := fc.Conn(); conn != nil {
		s.conns[conn]++
	}
}

// serveFasthttpApp serves a Fiber app (listen and shutdown are its
// Listener and ShutdownWithContext) on 127.0.0.1 and returns its base URL.
// When the test ends it shuts down the hub, then the app.
func serveFasthttpApp(t *testing.T, s *browserSite, listen func(net.Listener) error, shutdown func(context.Context) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- listen(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := s.hub.Shutdown(ctx); err != nil {
			t.Errorf("hub.Shutdown: %v", err)
		}
		if err := shutdown(ctx); err != nil {
			t.Errorf("app.ShutdownWithContext: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("app.Listener: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}
