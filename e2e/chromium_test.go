package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// TestChromium drives ssekit streams through a real browser's EventSource:
// headless Chromium, the reference client (docs/protocol.md). One browser
// serves all the subtests; each gets a fresh tab in a browser context of its
// own, and its own hub and server. (A parent test rather than TestMain: the
// browser's profile is a t.TempDir, removed once the browser has exited, and
// the package's other tests keep TestMain free.)
//
// The streams are attached; the subtests under Detached run the same
// checks with HandlerOptions.Detach, whose streams must look the same to
// the browser.
func TestChromium(t *testing.T) {
	browser := startChromium(t)
	streamTests := func(t *testing.T, mode streamMode) {
		t.Run("OpenBeforeFirstEvent", func(t *testing.T) { testOpenBeforeFirstEvent(t, browser, mode) })
		t.Run("PayloadRoundTrip", func(t *testing.T) { testPayloadRoundTrip(t, browser, mode) })
		t.Run("ResumeAfterServerDrop", func(t *testing.T) { testResumeAfterServerDrop(t, browser, mode) })
		t.Run("ResumeAcrossReload", func(t *testing.T) { testResumeAcrossReload(t, browser, mode) })
		t.Run("ResumeAfterMaxStreamAge", func(t *testing.T) { testResumeAfterMaxStreamAge(t, browser, mode) })
		t.Run("ClosingTabReleasesStream", func(t *testing.T) { testClosingTabReleasesStream(t, browser, mode) })
	}
	streamTests(t, attached)
	t.Run("NoContentStops", func(t *testing.T) { testNoContentStops(t, browser) })
	t.Run("RejectedOriginCloses", func(t *testing.T) { testRejectedOriginCloses(t, browser) })
	t.Run(detached.name, func(t *testing.T) { streamTests(t, detached) })
}

// pageMillis converts the page's milliseconds to a Duration.
func pageMillis(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond)).Round(10 * time.Microsecond)
}

// testOpenBeforeFirstEvent checks docs/protocol.md P2: the browser's open
// event fires on the response head and the opening frame alone, before any
// event exists, and the position frame ("id" without data) dispatches
// nothing.
func testOpenBeforeFirstEvent(t *testing.T, browser context.Context, mode streamMode) {
	s := newBrowserSite(t, browserSiteConfig{Handler: sse.HandlerOptions{Detach: mode.detach}, Page: collectorPage("/events")})
	ctx := openTab(t, browser, 15*time.Second)
	navigateTab(t, ctx, s.srv.URL+"/")

	waitJS(t, ctx, `window.__openAt !== undefined`)
	t.Logf("connect→open: %v", pageMillis(evalJS[float64](t, ctx, `window.__openAt`)))
	// Nothing has been published: the store is empty, the page got nothing.
	if entries, err := s.store.After(ctx, []string{browserTopic}, []uint64{0}, 10); err != nil || len(entries) != 0 {
		t.Fatalf("store holds %d entries (err %v) at open, want none", len(entries), err)
	}
	if got := pageMessages(t, ctx); len(got) != 0 {
		t.Fatalf("page got %+v before anything was published", got)
	}
	if n := s.streams(); n != 1 {
		t.Errorf("hub counts %d streams at open, want 1", n)
	}
	checkStreamsDetached(t, s.hub, mode.detach)

	id, err := s.hub.Publish(ctx, browserTopic, sse.Event{Data: []byte("first")})
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `window.__got.length >= 1`)
	got := pageMessages(t, ctx)
	if want := (pageMessage{Type: "message", Data: "first", ID: id}); len(got) != 1 || got[0] != want {
		t.Errorf("page got %+v, want only %+v", got, want)
	}
	if opens, errs := evalJS[int](t, ctx, `window.__opens`), evalJS[int](t, ctx, `window.__errors`); opens != 1 || errs != 0 {
		t.Errorf("page saw %d open and %d error events, want 1 and 0", opens, errs)
	}
	if reqs := s.requests(); len(reqs) != 1 || reqs[0].LastEventID != "" || reqs[0].QueryID != "" {
		t.Errorf("stream requests %+v, want one without a last event ID", reqs)
	}
}

// testPayloadRoundTrip sends the round-trip payloads of docs/protocol.md P7
// through the browser: each must arrive as published, with CRLF and CR
// turned into LF.
func testPayloadRoundTrip(t *testing.T, browser context.Context, mode streamMode) {
	long := strings.Repeat("0123456789abcdef", 4096) // a 64 KiB line
	payloads := []string{
		"",
		"\n",
		"a\n",
		"a\r\nb\rc",
		" leading space",
		"\ttab",
		"x\x00y",
		long,
		"ünïcödé ✓ 世界",
		// More line-break shapes.
		"\r",
		"\r\n",
		"\n\n",
		"a\n\nb",
		"end\r\n",
		"  two spaces\n second line",
		long + "\n" + long,
	}
	s := newBrowserSite(t, browserSiteConfig{Handler: sse.HandlerOptions{Detach: mode.detach}, Page: collectorPage("/events")})
	ctx := openTab(t, browser, 15*time.Second)
	navigateTab(t, ctx, s.srv.URL+"/")
	waitJS(t, ctx, `window.__opens >= 1`)
	checkStreamsDetached(t, s.hub, mode.detach)

	ids := make([]string, len(payloads))
	for i, p := range payloads {
		id, err := s.hub.Publish(ctx, browserTopic, sse.Event{Data: []byte(p)})
		if err != nil {
			t.Fatalf("publishing payload #%d %q: %v", i, p, err)
		}
		ids[i] = id
	}
	waitJS(t, ctx, `window.__got.length >= `+strconv.Itoa(len(payloads)))
	got := pageMessages(t, ctx)
	if len(got) != len(payloads) {
		t.Fatalf("page got %d messages, want %d", len(got), len(payloads))
	}
	lf := strings.NewReplacer("\r\n", "\n", "\r", "\n")
	for i, p := range payloads {
		want := pageMessage{Type: "message", Data: lf.Replace(p), ID: ids[i]}
		if got[i] != want {
			t.Errorf("payload #%d %s arrived as %s (type %q, id %q), want %s (id %q)",
				i, quoteShort(p), quoteShort(got[i].Data), got[i].Type, got[i].ID, quoteShort(want.Data), want.ID)
		}
	}
}

// quoteShort quotes s, eliding the middle of a long one.
func quoteShort(s string) string {
	if len(s) <= 64 {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:24]) + "…(" + strconv.Itoa(len(s)) + " bytes)…" + strconv.Quote(s[len(s)-24:])
}

// publishNumbers publishes total events with data "0", "1", ... and pause
// between them, in a goroutine. Before event i, it calls before(i), which
// may block; an error from it stops the series. It returns the IDs, valid
// once done has delivered nil.
func publishNumbers(ctx context.Context, hub *sse.Hub, total int, pause time.Duration, before func(i int) error) (ids []string, done <-chan error) {
	ids = make([]string, total)
	errc := make(chan error, 1)
	go func() {
		errc <- func() error {
			for i := range total {
				if err := before(i); err != nil {
					return err
				}
				id, err := hub.Publish(ctx, browserTopic, sse.Event{Data: []byte(strconv.Itoa(i))})
				if err != nil {
					return err
				}
				ids[i] = id
				time.Sleep(pause)
			}
			return nil
		}()
	}()
	return ids, errc
}

// checkNumbers checks that the page got the series of publishNumbers (data
// and, unless gotIDs is nil, IDs), each event once and in order.
func checkNumbers(t *testing.T, data, ids []string, gotData, gotIDs []string) {
	t.Helper()
	for i := range min(len(gotData), len(data)) {
		if gotData[i] != data[i] || (gotIDs != nil && gotIDs[i] != ids[i]) {
			gotID := "(not recorded)"
			if gotIDs != nil {
				gotID = gotIDs[i]
			}
			t.Fatalf("message #%d is %q with id %q, want %q with id %q; every event must arrive once, in order. Got %q",
				i, gotData[i], gotID, data[i], ids[i], gotData)
		}
	}
	if len(gotData) != len(data) {
		t.Fatalf("page got %d messages, want %d: %q", len(gotData), len(data), gotData)
	}
}

// numberStrings returns "0" to total-1.
func numberStrings(total int) []string {
	data := make([]string, total)
	for i := range data {
		data[i] = strconv.Itoa(i)
	}
	return data
}

// testResumeAfterServerDrop cuts the browser's stream connection twice
// while events are being published: the browser reconnects by itself with
// Last-Event-ID and must get every event exactly once, in order
// (docs/protocol.md P14, P15).
func testResumeAfterServerDrop(t *testing.T, browser context.Context, mode streamMode) {
	const total = 200
	drops := []int{70, 140} // cut the stream before publishing these events

	s := newBrowserSite(t, browserSiteConfig{
		Hub:     sse.Options{Retry: 100 * time.Millisecond},
		Handler: sse.HandlerOptions{Detach: mode.detach},
		Page:    collectorPage("/events"),
	})
	ctx := openTab(t, browser, 20*time.Second)
	navigateTab(t, ctx, s.srv.URL+"/")
	waitJS(t, ctx, `window.__opens >= 1`)

	// back[k] is the event about to be published when the publisher first
	// saw the browser's request after drop k. Written by the publisher
	// only, read after it is done.
	back := make([]int, len(drops))
	// detachedAtDrop[k] is how many streams the hub counted as detached
	// just before drop k; written by the publisher only.
	detachedAtDrop := make([]int, len(drops))
	d := 0
	ids, done := publishNumbers(ctx, s.hub, total, 3*time.Millisecond, func(i int) error {
		for k := range d {
			if back[k] == 0 && len(s.requests()) > k+1 {
				back[k] = i
			}
		}
		if d == len(drops) || i != drops[d] {
			return nil
		}
		// Each drop cuts a stream that is open: the second waits for the
		// browser to have come back from the first.
		for len(s.requests()) < d+1 || s.streams() != 1 {
			if ctx.Err() != nil {
				return errors.New("the browser did not reconnect after drop " + strconv.Itoa(d))
			}
			time.Sleep(2 * time.Millisecond)
		}
		detachedAtDrop[d] = s.hub.Stats().Detached
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
	t.Logf("streams cut before publishing events %v; the browser came back when %v were published", drops, back)

	got := pageMessages(t, ctx)
	gotData, gotIDs := make([]string, len(got)), make([]string, len(got))
	for i, m := range got {
		gotData[i], gotIDs[i] = m.Data, m.ID
	}
	checkNumbers(t, numberStrings(total), ids, gotData, gotIDs)

	for k, at := range drops {
		// The request came after event back[k]-2 was published, so the
		// events from at to back[k]-2 were published while the browser
		// was away: it could get them only by replay.
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
	for k, r := range reqs[1:] {
		if r.LastEventID == "" {
			t.Errorf("reconnection %d sent no Last-Event-ID", k+1)
		}
	}
	if opens := evalJS[int](t, ctx, `window.__opens`); opens != 1+len(drops) {
		t.Errorf("page saw %d open events, want %d", opens, 1+len(drops))
	}
	// Each cut stream was the only one open, the one the browser
	// reconnected for.
	want := 0
	if mode.detach {
		want = 1
	}
	for k, n := range detachedAtDrop {
		if n != want {
			t.Errorf("just before drop %d the hub counted %d detached streams, want %d", k+1, n, want)
		}
	}
	checkStreamsDetached(t, s.hub, mode.detach)
}

// reloadPage keeps what it receives in sessionStorage and, when loaded
// again, resumes from the last ID it stored with the lastEventId query
// parameter (the header is sent only on reconnections of one EventSource).
var reloadPage = pageWithScript(`
const got = JSON.parse(sessionStorage.getItem('got') ?? '[]');
const last = sessionStorage.getItem('last');
sessionStorage.setItem('loads', String(Number(sessionStorage.getItem('loads') ?? '0') + 1));
const es = new EventSource('/events' + (last ? '?lastEventId=' + encodeURIComponent(last) : ''));
window.__es = es;
es.onopen = () => { window.__open = true; };
es.onmessage = (e) => {
  got.push(e.data);
  sessionStorage.setItem('got', JSON.stringify(got));
  sessionStorage.setItem('last', e.lastEventId);
};`)

// testResumeAcrossReload reloads the page twice while events are being
// published: with the last ID it stored, the reloaded page must get every
// event exactly once, in order.
func testResumeAcrossReload(t *testing.T, browser context.Context, mode streamMode) {
	const total = 200
	// The page is reloaded when it holds reloadAt[k] events; the publisher
	// waits before event gate[k] until that reload is done, so both happen
	// mid-stream and the later events reach only the reloaded page.
	reloadAt, gate := []int{60, 130}, []int{100, 170}

	s := newBrowserSite(t, browserSiteConfig{Handler: sse.HandlerOptions{Detach: mode.detach}, Page: reloadPage})
	ctx := openTab(t, browser, 20*time.Second)
	navigateTab(t, ctx, s.srv.URL+"/")
	waitJS(t, ctx, `window.__open === true`)
	checkStreamsDetached(t, s.hub, mode.detach)

	reloaded := make([]chan struct{}, len(reloadAt))
	for k := range reloaded {
		reloaded[k] = make(chan struct{})
	}
	passed := 0 // gates passed; the publisher's own
	ids, done := publishNumbers(ctx, s.hub, total, 5*time.Millisecond, func(i int) error {
		if passed < len(gate) && i == gate[passed] {
			select {
			case <-reloaded[passed]:
			case <-ctx.Done():
				return ctx.Err()
			}
			passed++
		}
		return nil
	})
	const stored = `JSON.parse(sessionStorage.getItem('got') ?? '[]').length`
	for k, at := range reloadAt {
		waitJS(t, ctx, stored+` >= `+strconv.Itoa(at))
		if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
			t.Fatalf("reload %d: %v", k+1, err)
		}
		close(reloaded[k])
	}
	if err := <-done; err != nil {
		t.Fatalf("publisher: %v", err)
	}
	waitJS(t, ctx, stored+` >= `+strconv.Itoa(total))

	var gotData []string
	if err := json.Unmarshal([]byte(evalJS[string](t, ctx, `sessionStorage.getItem('got')`)), &gotData); err != nil {
		t.Fatal(err)
	}
	checkNumbers(t, numberStrings(total), ids, gotData, nil)
	if loads := evalJS[string](t, ctx, `sessionStorage.getItem('loads')`); loads != strconv.Itoa(1+len(reloadAt)) {
		t.Errorf("page was loaded %s times, want %d", loads, 1+len(reloadAt))
	}
	if last := evalJS[string](t, ctx, `sessionStorage.getItem('last')`); last != ids[total-1] {
		t.Errorf("page's last stored ID is %q, want %q", last, ids[total-1])
	}

	reqs := s.requests()
	if len(reqs) != 1+len(reloadAt) {
		t.Fatalf("server saw %d stream requests, want %d: %+v", len(reqs), 1+len(reloadAt), reqs)
	}
	known := make(map[string]bool, len(ids))
	for _, id := range ids {
		known[id] = true
	}
	for k, r := range reqs {
		switch {
		case r.LastEventID != "":
			t.Errorf("request %d sent Last-Event-ID %q; a fresh EventSource sends none", k+1, r.LastEventID)
		case k == 0 && r.QueryID != "":
			t.Errorf("first request has lastEventId=%q, want none", r.QueryID)
		case k > 0 && !known[r.QueryID]:
			t.Errorf("request %d, after reload %d, has lastEventId=%q, want the ID of a received event", k+1, k, r.QueryID)
		}
	}
	// The pages unloaded released their streams: only the last page's is
	// left.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	waitUntil(t, wctx, "the hub to count only the last page's stream", func() bool { return s.streams() == 1 })
	checkStreamsDetached(t, s.hub, mode.detach)
}

// testResumeAfterMaxStreamAge has the hub end the browser's stream at its
// maximum age, again and again, while events are being published: after
// each clean end (a retry hint and the last chunk; detached, the
// connection closes too) the browser must come back by itself with
// Last-Event-ID and get every event exactly once, in order.
func testResumeAfterMaxStreamAge(t *testing.T, browser context.Context, mode streamMode) {
	const total = 200
	s := newBrowserSite(t, browserSiteConfig{
		Hub:     sse.Options{MaxStreamAge: 150 * time.Millisecond, CloseRetry: 10 * time.Millisecond},
		Handler: sse.HandlerOptions{Detach: mode.detach},
		Page:    collectorPage("/events"),
	})
	ctx := openTab(t, browser, 20*time.Second)
	navigateTab(t, ctx, s.srv.URL+"/")
	waitJS(t, ctx, `window.__opens >= 1`)
	checkStreamsDetached(t, s.hub, mode.detach)

	ids, done := publishNumbers(ctx, s.hub, total, 4*time.Millisecond, func(int) error { return nil })
	if err := <-done; err != nil {
		t.Fatalf("publisher: %v", err)
	}
	waitJS(t, ctx, `window.__got.length >= `+strconv.Itoa(total))
	got := pageMessages(t, ctx)
	gotData, gotIDs := make([]string, len(got)), make([]string, len(got))
	for i, m := range got {
		gotData[i], gotIDs[i] = m.Data, m.ID
	}
	checkNumbers(t, numberStrings(total), ids, gotData, gotIDs)

	reqs := s.requests()
	opens, errs := evalJS[int](t, ctx, `window.__opens`), evalJS[int](t, ctx, `window.__errors`)
	t.Logf("%d stream requests, %d open and %d error events", len(reqs), opens, errs)
	if len(reqs) < 3 {
		t.Errorf("server saw %d stream requests, want at least 3: the streams did not rotate", len(reqs))
	}
	for k, r := range reqs[1:] {
		if r.LastEventID == "" {
			t.Errorf("reconnection %d sent no Last-Event-ID", k+1)
		}
	}
	// Each end is one error event (the browser reconnects), each
	// reconnection one open; the last stream may have ended since.
	if n := len(reqs); opens < n-1 || opens > n || errs < n-1 || errs > n {
		t.Errorf("page saw %d open and %d error events for %d stream requests", opens, errs, n)
	}
}

// testClosingTabReleasesStream closes the tab of an open stream: the
// browser closes the connection, and the hub must notice at once (P20), a
// detached stream through its poller rather than at its next write.
func testClosingTabReleasesStream(t *testing.T, browser context.Context, mode streamMode) {
	// No heartbeat within the test: the hub must notice the closed
	// connection by itself, not when a write fails.
	s := newBrowserSite(t, browserSiteConfig{
		Hub:     sse.Options{HeartbeatInterval: time.Hour},
		Handler: sse.HandlerOptions{Detach: mode.detach},
		Page:    collectorPage("/events"),
	})
	// The tab's own parent context: cancelling it closes the tab (and its
	// browser context) while the test goes on.
	tabParent, closeTab := context.WithCancel(browser)
	defer closeTab()
	ctx := openTab(t, tabParent, 15*time.Second)
	navigateTab(t, ctx, s.srv.URL+"/")
	waitJS(t, ctx, `window.__opens >= 1`)
	id, err := s.hub.Publish(ctx, browserTopic, sse.Event{Data: []byte("before-close")})
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `window.__got.length >= 1`)
	if got, want := pageMessages(t, ctx), (pageMessage{Type: "message", Data: "before-close", ID: id}); len(got) != 1 || got[0] != want {
		t.Errorf("page got %+v, want only %+v", got, want)
	}
	if n := s.streams(); n != 1 {
		t.Errorf("hub counts %d streams before the tab is closed, want 1", n)
	}
	checkStreamsDetached(t, s.hub, mode.detach)

	closeTab()
	wctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	released := waitUntil(t, wctx, "the hub to count no stream after the tab was closed", func() bool { return s.streams() == 0 })
	t.Logf("tab closed→stream released: %v", released.Round(time.Millisecond))
}

// assertStaysClosed checks, over wait, that the page's EventSource stays
// CLOSED without having opened, after exactly one error event, and that the
// server sees no request beyond the one it had.
func assertStaysClosed(t *testing.T, ctx context.Context, s *browserSite, wait time.Duration) {
	t.Helper()
	time.Sleep(wait)
	if state := evalJS[int](t, ctx, `window.__es.readyState`); state != 2 {
		t.Errorf("readyState is %d %v after CLOSED, want it to stay 2", state, wait)
	}
	if opens, errs := evalJS[int](t, ctx, `window.__opens`), evalJS[int](t, ctx, `window.__errors`); opens != 0 || errs != 1 {
		t.Errorf("page saw %d open and %d error events, want 0 and 1", opens, errs)
	}
	if reqs := s.requests(); len(reqs) != 1 {
		t.Errorf("server saw %d stream requests over %v, want 1 (no reconnection): %+v", len(reqs), wait, reqs)
	}
}

// testNoContentStops checks the deliberate stop of docs/protocol.md P4: a
// 204 answer ends the EventSource in CLOSED and it never comes back.
func testNoContentStops(t *testing.T, browser context.Context) {
	s := newBrowserSite(t, browserSiteConfig{
		Handler: sse.HandlerOptions{Topics: func(*http.Request) ([]string, error) {
			return nil, sse.Refuse(http.StatusNoContent, "")
		}},
		Page: collectorPage("/events"),
	})
	ctx := openTab(t, browser, 15*time.Second)
	navigateTab(t, ctx, s.srv.URL+"/")
	waitJS(t, ctx, `window.__es.readyState === 2`)
	assertStaysClosed(t, ctx, s, 1500*time.Millisecond)
}

// withoutCORS wraps a handler so that its responses carry no
// Access-Control-* header, whatever the handler sets.
func withoutCORS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&noCORSWriter{ResponseWriter: w}, r)
	})
}

type noCORSWriter struct {
	http.ResponseWriter
	headerDone bool
}

func (w *noCORSWriter) WriteHeader(code int) {
	if !w.headerDone {
		w.headerDone = true
		for name := range w.Header() {
			if strings.HasPrefix(name, "Access-Control-") {
				w.Header().Del(name)
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *noCORSWriter) Write(p []byte) (int, error) {
	if !w.headerDone {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController (and the hub's flush check) reach the
// server's writer.
func (w *noCORSWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// testRejectedOriginCloses opens, from a page on http://localhost:PORT1, an
// EventSource to http://127.0.0.1:PORT2, whose answer allows no origin: the
// browser must end CLOSED without reconnecting, and the server must see the
// stream end.
func testRejectedOriginCloses(t *testing.T, browser context.Context) {
	s := newBrowserSite(t, browserSiteConfig{Wrap: withoutCORS})
	pageSite := newBrowserSite(t, browserSiteConfig{Page: collectorPage(s.srv.URL + "/events")})
	_, port, err := net.SplitHostPort(pageSite.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	pageOrigin := "http://localhost:" + port
	ctx := openTab(t, browser, 15*time.Second)
	navigateTab(t, ctx, pageOrigin+"/")
	waitJS(t, ctx, `window.__es.readyState === 2`)
	closedAt := time.Now()

	// The request reached the server, which answered with a stream; the
	// browser rejected the answer.
	if reqs := s.requests(); len(reqs) == 0 || reqs[0].Origin != pageOrigin {
		t.Errorf("stream requests %+v, want one with Origin %q", reqs, pageOrigin)
	}
	assertStaysClosed(t, ctx, s, 1500*time.Millisecond)

	// Chromium does not close the connection at once: it keeps reading the
	// unfinished HTTP/1.1 body for a while (about 5 s, in the hope of
	// reusing the connection) before it gives up. The stream ends then.
	wctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	waitUntil(t, wctx, "the hub to release the rejected stream", func() bool { return s.streams() == 0 })
	t.Logf("rejected stream released %v after the page saw CLOSED", time.Since(closedAt).Round(time.Millisecond))
}

// TestChromiumHTTP2TLS streams to Chromium over HTTP/2 with TLS (docs/protocol.md
// P22), and checks that the page's es.close() ends the stream on the server
// (P20).
// With HandlerOptions.Detach too: an HTTP/2 stream cannot be detached, and
// must be served attached.
func TestChromiumHTTP2TLS(t *testing.T) {
	// httptest's certificate is self-signed. This browser, and only this
	// one, is started with --ignore-certificate-errors to accept it.
	browser := startChromium(t, chromedp.Flag("ignore-certificate-errors", true))
	forEachMode(t, func(t *testing.T, mode streamMode) { testChromiumHTTP2TLS(t, browser, mode) })
}

func testChromiumHTTP2TLS(t *testing.T, browser context.Context, mode streamMode) {
	s := newBrowserSite(t, browserSiteConfig{TLS: true, Handler: sse.HandlerOptions{Detach: mode.detach}, Page: collectorPage("/events")})
	ctx := openTab(t, browser, 20*time.Second)
	navigateTab(t, ctx, s.srv.URL+"/")
	waitJS(t, ctx, `window.__opens >= 1`)
	t.Logf("connect→open over h2: %v", pageMillis(evalJS[float64](t, ctx, `window.__openAt`)))

	if proto := evalJS[string](t, ctx, `performance.getEntriesByType('navigation')[0].nextHopProtocol`); proto != "h2" {
		t.Errorf("page loaded over %q, want h2", proto)
	}
	if reqs := s.requests(); len(reqs) != 1 || reqs[0].ProtoMajor != 2 {
		t.Errorf("stream requests %+v, want one over HTTP/2", reqs)
	}
	ids := make([]string, 3)
	for i := range ids {
		id, err := s.hub.Publish(ctx, browserTopic, sse.Event{Data: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	waitJS(t, ctx, `window.__got.length >= 3`)
	got := pageMessages(t, ctx)
	gotData, gotIDs := make([]string, len(got)), make([]string, len(got))
	for i, m := range got {
		gotData[i], gotIDs[i] = m.Data, m.ID
	}
	checkNumbers(t, numberStrings(len(ids)), ids, gotData, gotIDs)
	// Live events came: a detached stream would have been handed over.
	checkStreamsDetached(t, s.hub, false)

	if state := evalJS[int](t, ctx, `window.__es.close(), window.__es.readyState`); state != 2 {
		t.Errorf("readyState after close() is %d, want 2", state)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	d := waitUntil(t, wctx, "the hub to count no stream after es.close()", func() bool { return s.streams() == 0 })
	t.Logf("es.close()→stream released: %v", d.Round(time.Millisecond))
}

// TestHTTP2CleartextGoClient streams over h2c (HTTP/2 without TLS, Go 1.24's
// http.Protocols) to ssetest's client, and checks that closing the response
// body ends the stream on the server (docs/protocol.md P20, P22). It needs
// no browser. With HandlerOptions.Detach too: an HTTP/2 stream must be
// served attached.
func TestHTTP2CleartextGoClient(t *testing.T) {
	forEachMode(t, testHTTP2CleartextGoClient)
}

func testHTTP2CleartextGoClient(t *testing.T, mode streamMode) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hub, err := sse.NewHub(sse.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	stream := hub.Handler(sse.HandlerOptions{Topics: sse.Topics(browserTopic), Detach: mode.detach})
	var mu sync.Mutex
	var protos []int // ProtoMajor of each stream request
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos = append(protos, r.ProtoMajor)
		mu.Unlock()
		stream.ServeHTTP(w, r)
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serverProtocols := new(http.Protocols)
	serverProtocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: handler, Protocols: serverProtocols, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	clientProtocols := new(http.Protocols)
	clientProtocols.SetUnencryptedHTTP2(true) // and nothing else: h2c with prior knowledge
	tr := &http.Transport{Protocols: clientProtocols}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("hub.Shutdown: %v", err)
		}
		tr.CloseIdleConnections()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("server Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("server Serve: %v", err)
		}
	})

	st, err := ssetest.Connect(ctx, &http.Client{Transport: tr}, "http://"+ln.Addr().String()+"/events", "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if p := st.Response.ProtoMajor; p != 2 {
		t.Fatalf("response is HTTP/%d, want 2", p)
	}
	mu.Lock()
	if len(protos) != 1 || protos[0] != 2 {
		t.Errorf("server saw stream requests over HTTP/%v, want one over 2", protos)
	}
	mu.Unlock()

	for i := range 3 {
		data := strconv.Itoa(i)
		id, err := hub.Publish(ctx, browserTopic, sse.Event{Data: []byte(data)})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := st.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := (ssetest.Event{Type: "message", Data: data, LastEventID: id}); ev != want {
			t.Fatalf("event %d is %+v, want %+v", i, ev, want)
		}
	}

	if n := hub.Stats().Streams; n != 1 {
		t.Errorf("hub counts %d streams before the client closes, want 1", n)
	}
	checkStreamsDetached(t, hub, false)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Second)
	defer wcancel()
	d := waitUntil(t, wctx, "the hub to count no stream after the client closed the body", func() bool { return hub.Stats().Streams == 0 })
	t.Logf("body closed→stream released: %v", d.Round(time.Millisecond))
}

// TestDetachOverTLSFallsBack streams over HTTP/1.1 with TLS to ssetest's
// client with HandlerOptions.Detach: the bytes must go through crypto/tls,
// so the stream is served attached, and works as usual. It needs no
// browser.
func TestDetachOverTLSFallsBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hub, err := sse.NewHub(sse.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(hub.Handler(sse.HandlerOptions{Topics: sse.Topics(browserTopic), Detach: true}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("hub.Shutdown: %v", err)
		}
		srv.Close()
	})
	st, err := ssetest.Connect(ctx, srv.Client(), srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if r := st.Response; r.ProtoMajor != 1 || r.TLS == nil {
		t.Fatalf("response is HTTP/%d.%d, TLS %v; want HTTP/1.1 over TLS", r.ProtoMajor, r.ProtoMinor, r.TLS != nil)
	}
	checkStreamsDetached(t, hub, false)
	id, err := hub.Publish(ctx, browserTopic, sse.Event{Data: []byte("over tls")})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := st.Next(); err != nil || ev != (ssetest.Event{Type: "message", Data: "over tls", LastEventID: id}) {
		t.Fatalf("got %+v, %v; want the event published", ev, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Second)
	defer wcancel()
	waitUntil(t, wctx, "the hub to count no stream after the client closed the body", func() bool { return hub.Stats().Streams == 0 })
}
