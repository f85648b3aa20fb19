package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ssekit/ssekit/core/sse"
)

// chromiumPath is Debian's chromium, which scripts/need-chromium.sh installs.
const chromiumPath = "/usr/bin/chromium"

// requireChromium is the one place of the rule for a missing browser: the
// test is skipped, with the reason, except under CI=true, where a missing
// browser would silently turn the browser tests off, so it fails.
func requireChromium(t testing.TB) {
	t.Helper()
	_, err := exec.LookPath(chromiumPath)
	if err == nil {
		return
	}
	reason := fmt.Sprintf("Chromium is needed at %s (%v); scripts/need-chromium.sh installs Debian's package", chromiumPath, err)
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true: " + reason)
	}
	t.Skip(reason)
}

// startChromium starts a headless Chromium with a fresh profile in a
// t.TempDir and returns its chromedp context. The browser lives until the
// test ends. Give each test its own tab with openTab.
//
// The flags are listed here in full instead of taking chromedp's defaults.
// chromedp adds only what it needs to drive the browser:
// --remote-debugging-pipe and the first page, about:blank. Debian's
// /usr/bin/chromium is a shell script that adds flags of its own (see
// /etc/chromium.d).
func startChromium(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	requireChromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Before the cleanup below is registered, so the directory is
		// removed after the browser has exited.
		chromedp.UserDataDir(t.TempDir()),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(browser, 5*time.Second)
		defer cancel()
		if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("closing Chromium: %v", err)
		}
		cancelBrowser()
		cancelAlloc() // waits for the process to exit
	})

	// The first Run binds the browser's life to its context, so it cannot
	// carry a timeout; a timer bounds the start instead.
	start := time.Now()
	watchdog := time.AfterFunc(30*time.Second, cancelBrowser)
	err := chromedp.Do(browser)
	if !watchdog.Stop() {
		t.Fatalf("Chromium did not start within 30s: %v", err)
	}
	if err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	t.Logf("Chromium started in %v", time.Since(start).Round(time.Millisecond))
	return browser
}

// openTab opens a tab in a browser context of its own (its own cookies,
// storage, cache and connections) and returns its context, which ends after
// timeout. The tab and its browser context are closed when the test ends.
// Call it after starting the test's servers, so that the tab is closed
// before they are.
func openTab(t *testing.T, browser context.Context, timeout time.Duration) context.Context {
	t.Helper()
	tab, closeTab := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(closeTab)
	// Like the browser, a tab lives as long as the context of its first
	// Run, so the timeout goes on a context derived after it, and a timer
	// bounds the opening.
	watchdog := time.AfterFunc(30*time.Second, closeTab)
	err := chromedp.Do(tab)
	if !watchdog.Stop() {
		t.Fatalf("the tab did not open within 30s: %v", err)
	}
	if err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, timeout)
	t.Cleanup(cancel)
	return ctx
}

// navigateTab loads url in the tab and waits for its load event.
func navigateTab(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigating to %s: %v", url, err)
	}
}

// evalJS evaluates a JavaScript expression in the tab and returns its value,
// decoded from JSON into a T.
func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS polls a JavaScript expression until it is true, failing the test
// when ctx ends first, and returns how long that took.
func waitJS(t *testing.T, ctx context.Context, expr string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return time.Since(start)
		}
		if ctx.Err() != nil {
			t.Fatalf("waited %v for %s in the page: %v (last evaluation: %v)", time.Since(start).Round(time.Millisecond), expr, ctx.Err(), err)
		}
		if err != nil && !errors.Is(err, chromedp.ErrJSUndefined) && !errors.Is(err, chromedp.ErrJSNull) {
			t.Fatalf("evaluating %s: %v", expr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitUntil polls cond until it holds, failing the test when ctx ends first,
// and returns how long that took.
func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("waited %v for %s: %v", time.Since(start).Round(time.Millisecond), what, ctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// jsString returns s as a JavaScript string literal, safe inside a <script>
// element (json.Marshal escapes <, > and &).
func jsString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// pageWithScript returns an HTML page that runs script.
func pageWithScript(script string) string {
	return "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>ssekit browser test</title></head><body>\n<script>\n" +
		script + "\n</script>\n</body></html>\n"
}

// collectorPage is a page that opens an EventSource to streamURL (relative
// or absolute) and records, in window variables:
//   - __es: the EventSource;
//   - __got: each message as {type, data, id}, id being e.lastEventId;
//   - __opens, __errors: how many open and error events fired;
//   - __openAt, __firstAt: milliseconds from just before new EventSource()
//     to the first open and the first message.
func collectorPage(streamURL string) string {
	return pageWithScript(`
window.__got = [];
window.__opens = 0;
window.__errors = 0;
const t0 = performance.now();
const es = new EventSource(` + jsString(streamURL) + `);
window.__es = es;
es.onopen = () => {
  window.__opens++;
  if (window.__openAt === undefined) window.__openAt = performance.now() - t0;
};
es.onerror = () => { window.__errors++; };
es.onmessage = (e) => {
  if (window.__firstAt === undefined) window.__firstAt = performance.now() - t0;
  window.__got.push({type: e.type, data: e.data, id: e.lastEventId});
};`)
}

// pageMessage is a message as collectorPage records it.
type pageMessage struct {
	Type string `json:"type"`
	Data string `json:"data"`
	ID   string `json:"id"`
}

// pageMessages returns what collectorPage has received so far.
func pageMessages(t *testing.T, ctx context.Context) []pageMessage {
	t.Helper()
	var got []pageMessage
	if err := json.Unmarshal([]byte(evalJS[string](t, ctx, `JSON.stringify(window.__got)`)), &got); err != nil {
		t.Fatalf("decoding window.__got: %v", err)
	}
	return got
}

// browserTopic is the topic of the browser tests' streams.
const browserTopic = "browser"

// browserSiteConfig configures newBrowserSite.
type browserSiteConfig struct {
	Hub     sse.Options        // Logger defaults to discarding
	Handler sse.HandlerOptions // Topics defaults to browserTopic
	// Page is the HTML served at "/".
	Page string
	// Wrap, when set, wraps the stream handler.
	Wrap func(http.Handler) http.Handler
	// TLS serves HTTP/2 and HTTP/1.1 over TLS with httptest's self-signed
	// certificate, instead of plain HTTP/1.1.
	TLS bool
}

// browserSite is a hub served by an httptest.Server on 127.0.0.1: the page
// at "/", the stream at "/events", 404 elsewhere (the browser asks for
// /favicon.ico). It records every stream request and tracks the
// connections that serve streams, so that a test can cut them.
type browserSite struct {
	hub   *sse.Hub
	store *sse.MemoryStore
	srv   *httptest.Server

	mu    sync.Mutex
	reqs  []browserRequest
	conns map[net.Conn]int // connections serving a stream, and how many
	// hijacked are the connections that net/http handed over to the hub
	// (detached streams). One stays in conns after its handler returned,
	// until dropStreams takes it out.
	hijacked map[net.Conn]bool
}

// browserRequest is what a site records of each stream request.
type browserRequest struct {
	LastEventID string // the Last-Event-ID header
	QueryID     string // the lastEventId query parameter
	Origin      string // the Origin header
	ProtoMajor  int
}

type browserConnKey struct{}

// newBrowserSite starts a browserSite. Its hub is shut down and its server
// closed when the test ends.
func newBrowserSite(t *testing.T, cfg browserSiteConfig) *browserSite {
	t.Helper()
	s := &browserSite{conns: make(map[net.Conn]int), hijacked: make(map[net.Conn]bool)}
	var err error
	if cfg.Hub.Store == nil {
		s.store, err = sse.NewMemoryStore(sse.MemoryStoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Hub.Store = s.store
	}
	if cfg.Hub.Logger == nil {
		cfg.Hub.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Handler.Topics == nil {
		cfg.Handler.Topics = sse.Topics(browserTopic)
	}
	s.hub, err = sse.NewHub(cfg.Hub)
	if err != nil {
		t.Fatal(err)
	}
	var stream http.Handler = s.hub.Handler(cfg.Handler)
	if cfg.Wrap != nil {
		stream = cfg.Wrap(stream)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(cfg.Page))
	})
	mux.Handle("/events", s.record(stream))
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, browserConnKey{}, c)
	}
	s.srv.Config.ConnState = func(c net.Conn, state http.ConnState) {
		if state == http.StateHijacked {
			s.mu.Lock()
			s.hijacked[c] = true
			s.mu.Unlock()
		}
	}
	if cfg.TLS {
		s.srv.EnableHTTP2 = true
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := s.hub.Shutdown(ctx); err != nil {
			t.Errorf("hub.Shutdown: %v", err)
		}
		s.srv.Close()
	})
	return s
}

// record wraps the stream handler to record the request and track its
// connection while it is served.
func (s *browserSite) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(browserConnKey{}).(net.Conn)
		s.mu.Lock()
		s.reqs = append(s.reqs, browserRequest{
			LastEventID: r.Header.Get("Last-Event-ID"),
			QueryID:     r.URL.Query().Get("lastEventId"),
			Origin:      r.Header.Get("Origin"),
			ProtoMajor:  r.ProtoMajor,
		})
		if c != nil {
			s.conns[c]++
		}
		s.mu.Unlock()
		defer func() {
			if c == nil {
				return
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.hijacked[c] {
				return // the hub serves the stream on it now
			}
			if s.conns[c]--; s.conns[c] <= 0 {
				delete(s.conns, c)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// requests returns the stream requests so far.
func (s *browserSite) requests() []browserRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// dropStreams cuts the server side of every connection that is serving a
// stream, as a crashed proxy or a network failure would (see cutConn), and
// returns how many it cut.
func (s *browserSite) dropStreams() int {
	s.mu.Lock()
	conns := make(map[net.Conn]bool, len(s.conns))
	for c := range s.conns {
		conns[c] = s.hijacked[c]
		delete(s.conns, c)
		delete(s.hijacked, c)
	}
	s.mu.Unlock()
	n := 0
	for c, hijacked := range conns {
		if cutConn(c, hijacked) {
			n++
		}
	}
	return n
}

// streams returns the hub's count of open streams.
func (s *browserSite) streams() int { return s.hub.Stats().Streams }
