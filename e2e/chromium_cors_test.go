package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/ssekit/ssekit/core/sse"
)

// TestChromiumCrossOriginCookieAuth checks docs/protocol.md P16 and P17 in a
// real browser, with core's own sse.CORS and sse.Auth: a page on
// http://localhost:PORT1 opens a stream on http://127.0.0.1:PORT2 that
// authenticates by cookie and subscribes each user to a topic of their own.
//
// Getting the cookie across. localhost and 127.0.0.1 are different sites,
// so the stream request is cross-site and the session cookie is a
// third-party cookie there. This is what Chromium 156 does with a cookie
// that the stream server sets (seen in the blocked-cookie reasons that
// DevTools reports):
//
//   - SameSite=Lax (no SameSite means Lax too) or Strict: stored, but not
//     sent on the cross-site stream request (SchemefulSameSiteLax).
//   - SameSite=None without Secure: refused when the server sets it.
//   - SameSite=None; Secure: stored (127.0.0.1 is a loopback host, which
//     Chromium trusts like https for Secure cookies, as it does localhost),
//     but still not sent: Chromium blocks third-party cookies by default
//     (UserPreferences), both in the default profile and in the
//     off-the-record browser contexts that openTab makes.
//   - SameSite=None; Secure; Partitioned (CHIPS): sent. A partitioned
//     cookie belongs to the top-level site it was set under, so it has to
//     be set while the localhost page is the top-level page. The page logs
//     in with a credentialed fetch to the stream server. If the tab
//     navigated to 127.0.0.1 to log in, the cookie would belong to the
//     127.0.0.1 partition and would not be sent from the localhost page.
//
// Real cross-site deployments need the same now that browsers block
// third-party cookies. Between subdomains of one site, SameSite=Lax is
// enough (docs/auth.md).
func TestChromiumCrossOriginCookieAuth(t *testing.T) {
	browser := startChromium(t)
	t.Run("WithCredentials", func(t *testing.T) { testCookieStreamWithCredentials(t, browser) })
	t.Run("WithoutCredentials", func(t *testing.T) { testCookieStreamWithoutCredentials(t, browser) })
	t.Run("RejectedOrigin", func(t *testing.T) { testCookieStreamRejectedOrigin(t, browser) })
}

// sessionCookie is what the stream server's /login sets: the token
// "good-ann" names user ann. See TestChromiumCrossOriginCookieAuth for the
// attributes.
const sessionCookie = "session=good-ann; Path=/; HttpOnly; SameSite=None; Secure; Partitioned"

// corsPage is the page of the cross-origin tests. It opens nothing by
// itself. The test logs in with __login and opens the stream with __open,
// which records what collectorPage records (__es, __got, __opens, __errors).
var corsPage = pageWithScript(`
window.__got = [];
window.__opens = 0;
window.__errors = 0;
window.__login = (base) => fetch(base + '/login', {method: 'POST', credentials: 'include'}).then(r => r.status);
window.__whoami = (base) => fetch(base + '/whoami', {credentials: 'include'}).then(r => r.text());
window.__open = (url, withCredentials) => {
  const es = new EventSource(url, {withCredentials});
  window.__es = es;
  es.onopen = () => { window.__opens++; };
  es.onerror = () => { window.__errors++; };
  es.onmessage = (e) => { window.__got.push({type: e.type, data: e.data, id: e.lastEventId}); };
  return es.withCredentials;
};`)

// startCORSPage serves corsPage at "/" on 127.0.0.1 and returns the page's
// origin under the name localhost: http://localhost:PORT.
func startCORSPage(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(corsPage))
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return "http://localhost:" + port
}

// corsSite is the stream server of the cross-origin tests, on 127.0.0.1:
//   - GET /events: the stream, with sse.CORS (one allowed origin,
//     credentials allowed) and sse.Auth (the "session" cookie), on the topic
//     "user/" + the principal's ID. Every request is logged with its answer.
//   - POST /login: sets sessionCookie.
//   - GET /whoami: the principal's ID, as sse.Auth finds it, or 401.
//
// /login and /whoami are fixtures and not under test. They answer any
// origin, with credentials.
type corsSite struct {
	hub  *sse.Hub
	srv  *httptest.Server
	auth *sse.Auth

	mu        sync.Mutex
	reqs      []*corsRequest
	refusals  []corsRefusal
	opened    int // the Observer's StreamOpened calls
	authCalls int // Authenticate calls
}

// corsRequest is what corsSite logs of a stream request and its answer.
type corsRequest struct {
	Method string
	Origin string // the Origin header
	Cookie string // the session cookie's value, "" if none came
	Status int    // 0 until the handler writes the head
	Header http.Header
	Body   string // the first bytes of the body
}

// corsRefusal is what the hub's Observer saw of a refusal.
type corsRefusal struct {
	Reason sse.RefusalReason
	Status int
}

// corsBodyLog is how much of each answer's body corsSite logs.
const corsBodyLog = 512

func newCORSSite(t *testing.T, allowedOrigin string) *corsSite {
	t.Helper()
	s := &corsSite{}
	hub, err := sse.NewHub(sse.Options{
		Logger: slog.New(slog.DiscardHandler),
		Observer: sse.Observer{
			StreamOpened: func(sse.StreamInfo) {
				s.mu.Lock()
				defer s.mu.Unlock()
				s.opened++
			},
			Refused: func(_ *http.Request, reason sse.RefusalReason, status int) {
				s.mu.Lock()
				defer s.mu.Unlock()
				s.refusals = append(s.refusals, corsRefusal{reason, status})
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.hub = hub
	s.auth = &sse.Auth{
		CookieName: "session",
		Authenticate: func(_ context.Context, token string) (sse.Principal, error) {
			s.mu.Lock()
			s.authCalls++
			s.mu.Unlock()
			if user, ok := strings.CutPrefix(token, "good-"); ok && user != "" {
				return sse.Principal{ID: user}, nil
			}
			return sse.Principal{}, errors.New("unknown session")
		},
	}
	stream := hub.Handler(sse.HandlerOptions{
		CORS: &sse.CORS{AllowedOrigins: []string{allowedOrigin}, AllowCredentials: true},
		Auth: s.auth,
		Topics: func(r *http.Request) ([]string, error) {
			p, ok := sse.PrincipalFrom(r.Context())
			if !ok || p.ID == "" {
				return nil, sse.Refuse(http.StatusInternalServerError, "no principal after authentication")
			}
			return []string{"user/" + p.ID}, nil
		},
	})

	mux := http.NewServeMux()
	mux.Handle("/events", s.record(stream))
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		fixtureCORS(w, r)
		w.Header().Add("Set-Cookie", sessionCookie)
		w.WriteHeader(http.StatusNoContent)
	})
	whoami := sse.AuthMiddleware(s.hub, s.auth)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := sse.PrincipalFrom(r.Context())
		_, _ = w.Write([]byte(p.ID))
	}))
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		fixtureCORS(w, r)
		whoami.ServeHTTP(w, r)
	})
	s.srv = httptest.NewServer(mux)
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

// fixtureCORS lets any origin read the answers of /login and /whoami, with
// credentials.
func fixtureCORS(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" {
		w.Header().Set("Access-Control-Allow-Origin", o)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Add("Vary", "Origin")
	}
}

// record logs each stream request and, as the handler writes it, its
// answer.
func (s *corsSite) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &corsRequest{Method: r.Method, Origin: r.Header.Get("Origin")}
		if c, err := r.Cookie("session"); err == nil {
			req.Cookie = c.Value
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()
		next.ServeHTTP(&corsRecorder{ResponseWriter: w, site: s, req: req}, r)
	})
}

// corsRecorder copies the head and the first bytes of an answer into its
// corsRequest.
type corsRecorder struct {
	http.ResponseWriter
	site       *corsSite
	req        *corsRequest
	headerDone bool
}

func (w *corsRecorder) WriteHeader(code int) {
	if !w.headerDone {
		w.headerDone = true
		w.site.mu.Lock()
		w.req.Status = code
		w.req.Header = w.Header().Clone()
		w.site.mu.Unlock()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *corsRecorder) Write(p []byte) (int, error) {
	if !w.headerDone {
		w.WriteHeader(http.StatusOK)
	}
	w.site.mu.Lock()
	if room := corsBodyLog - len(w.req.Body); room > 0 {
		w.req.Body += string(p[:min(room, len(p))])
	}
	w.site.mu.Unlock()
	return w.ResponseWriter.Write(p)
}

// Unwrap lets the hub's flush check and http.ResponseController reach the
// server's writer.
func (w *corsRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// requests returns a copy of the stream requests logged so far.
func (s *corsSite) requests() []corsRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]corsRequest, len(s.reqs))
	for i, r := range s.reqs {
		out[i] = *r
	}
	return out
}

// observed returns the refusals and the number of streams opened that the
// hub's Observer reported, and the number of Authenticate calls.
func (s *corsSite) observed() (refusals []corsRefusal, opened, authCalls int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.refusals), s.opened, s.authCalls
}

// streamURL returns the URL of the stream.
func (s *corsSite) streamURL() string { return s.srv.URL + "/events" }

// awaitJS evaluates a JavaScript expression that returns a promise and
// returns the promise's value, decoded into a T.
func awaitJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// loginPage logs the page in: the stream server sets sessionCookie.
func loginPage(t *testing.T, ctx context.Context, s *corsSite) {
	t.Helper()
	if status := awaitJS[int](t, ctx, `__login(`+jsString(s.srv.URL)+`)`); status != http.StatusNoContent {
		t.Fatalf("login answered %d, want 204", status)
	}
}

// watchCookieBlocks records why Chromium refused to store the session
// cookie or withheld it from a request of the tab, as DevTools reports it,
// for failure messages.
func watchCookieBlocks(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	var mu sync.Mutex
	var blocks []string
	add := func(what string, reasons []string) {
		mu.Lock()
		defer mu.Unlock()
		blocks = append(blocks, what+": "+strings.Join(reasons, "+"))
	}
	err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *network.EventResponseReceivedExtraInfo:
			for _, c := range e.BlockedCookies {
				if strings.HasPrefix(c.CookieLine, "session=") {
					add("not stored", cookieReasons(c.BlockedReasons))
				}
			}
		case *network.EventRequestWillBeSentExtraInfo:
			for _, c := range e.AssociatedCookies {
				if c.Cookie != nil && c.Cookie.Name == "session" && len(c.BlockedReasons) > 0 {
					add("not sent", cookieReasons(c.BlockedReasons))
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(blocks)
	}
}

// cookieReasons turns DevTools' blocked-cookie reasons into strings.
func cookieReasons[R ~string](reasons []R) []string {
	s := make([]string, len(reasons))
	for i, r := range reasons {
		s[i] = string(r)
	}
	return s
}

// assertRefusedAndClosed checks, over wait, that the page's EventSource
// stays CLOSED without having opened, after exactly one error event; that
// the server saw exactly one stream request, answered with status and no
// stream byte; and that the hub never counted a stream.
func assertRefusedAndClosed(t *testing.T, ctx context.Context, s *corsSite, status int, wait time.Duration) {
	t.Helper()
	for end := time.Now().Add(wait); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if n := s.hub.Stats().Streams; n != 0 {
			t.Fatalf("hub counts %d streams, want 0 for a refused request", n)
		}
	}
	if state := evalJS[int](t, ctx, `window.__es.readyState`); state != 2 {
		t.Errorf("readyState is %d %v after CLOSED, want it to stay 2", state, wait)
	}
	if opens, errs := evalJS[int](t, ctx, `window.__opens`), evalJS[int](t, ctx, `window.__errors`); opens != 0 || errs != 1 {
		t.Errorf("page saw %d open and %d error events, want 0 and 1", opens, errs)
	}
	reqs := s.requests()
	if len(reqs) != 1 {
		t.Fatalf("server saw %d stream requests over %v, want 1 (no reconnection): %+v", len(reqs), wait, reqs)
	}
	r := reqs[0]
	if r.Method != http.MethodGet || r.Status != status {
		t.Errorf("stream request %s answered %d, want GET answered %d", r.Method, r.Status, status)
	}
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") || strings.Contains(r.Body, "data:") {
		t.Errorf("refusal is a stream: Content-Type %q, body %q", ct, r.Body)
	}
	if _, opened, _ := s.observed(); opened != 0 {
		t.Errorf("the Observer saw %d streams open, want 0", opened)
	}
	if n := s.hub.Stats().Streams; n != 0 {
		t.Errorf("hub counts %d streams, want 0", n)
	}
}

// testCookieStreamWithCredentials: with withCredentials, the session cookie
// reaches the stream server, which admits the allowed origin with the CORS
// headers of a credentialed answer (docs/protocol.md P16) and streams the
// user's own events (P17).
func testCookieStreamWithCredentials(t *testing.T, browser context.Context) {
	pageOrigin := startCORSPage(t)
	s := newCORSSite(t, pageOrigin)
	ctx := openTab(t, browser, 15*time.Second)
	blocks := watchCookieBlocks(t, ctx)
	navigateTab(t, ctx, pageOrigin+"/")
	loginPage(t, ctx, s)
	if !evalJS[bool](t, ctx, `__open(`+jsString(s.streamURL())+`, true)`) {
		t.Fatal("the EventSource's withCredentials is false")
	}
	waitJS(t, ctx, `window.__opens >= 1 || window.__es.readyState === 2`)
	if state := evalJS[int](t, ctx, `window.__es.readyState`); state != 1 {
		reqs := s.requests()
		refusals, _, _ := s.observed()
		t.Fatalf("EventSource did not open (readyState %d); stream requests %+v, refusals %+v, cookie blocked by Chromium: %q",
			state, reqs, refusals, blocks())
	}

	reqs := s.requests()
	if len(reqs) != 1 {
		t.Fatalf("server saw %d stream requests, want 1: %+v", len(reqs), reqs)
	}
	r := reqs[0]
	if r.Method != http.MethodGet {
		t.Errorf("stream request is %s, want GET (EventSource sends no preflight)", r.Method)
	}
	if r.Origin != pageOrigin {
		t.Errorf("stream request has Origin %q, want %q", r.Origin, pageOrigin)
	}
	if r.Cookie != "good-ann" {
		t.Errorf("stream request has session cookie %q, want %q (Chromium blocked it: %q)", r.Cookie, "good-ann", blocks())
	}
	if r.Status != http.StatusOK {
		t.Errorf("stream answered %d, want 200", r.Status)
	}
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != pageOrigin {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, pageOrigin)
	}
	if got := r.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
		t.Errorf("Access-Control-Allow-Credentials = %q, want true", got)
	}
	if !slices.Contains(r.Header.Values("Vary"), "Origin") {
		t.Errorf("Vary = %q, want Origin", r.Header.Values("Vary"))
	}
	if ct := r.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q, want text/event-stream", ct)
	}
	if refusals, opened, _ := s.observed(); len(refusals) != 0 || opened != 1 {
		t.Errorf("the Observer saw refusals %+v and %d streams open, want none and 1", refusals, opened)
	}
	if n := s.hub.Stats().Streams; n != 1 {
		t.Errorf("hub counts %d streams, want 1", n)
	}

	// Each user has a topic of their own: bob's event must not reach ann.
	if _, err := s.hub.Publish(ctx, "user/bob", sse.Event{Data: []byte("for bob")}); err != nil {
		t.Fatal(err)
	}
	id, err := s.hub.Publish(ctx, "user/ann", sse.Event{Data: []byte("for ann")})
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `window.__got.length >= 1`)
	if got, want := pageMessages(t, ctx), (pageMessage{Type: "message", Data: "for ann", ID: id}); len(got) != 1 || got[0] != want {
		t.Errorf("page got %+v, want only %+v", got, want)
	}
	if opens, errs := evalJS[int](t, ctx, `window.__opens`), evalJS[int](t, ctx, `window.__errors`); opens != 1 || errs != 0 {
		t.Errorf("page saw %d open and %d error events, want 1 and 0", opens, errs)
	}
}

// testCookieStreamWithoutCredentials: without withCredentials, the browser
// keeps the cookie to itself, the stream is refused with 401 (CORS headers
// included, docs/protocol.md P16), and the EventSource ends CLOSED for good.
func testCookieStreamWithoutCredentials(t *testing.T, browser context.Context) {
	pageOrigin := startCORSPage(t)
	s := newCORSSite(t, pageOrigin)
	ctx := openTab(t, browser, 15*time.Second)
	navigateTab(t, ctx, pageOrigin+"/")
	loginPage(t, ctx, s)
	if evalJS[bool](t, ctx, `__open(`+jsString(s.streamURL())+`, false)`) {
		t.Fatal("the EventSource's withCredentials is true")
	}
	waitJS(t, ctx, `window.__es.readyState === 2`)
	assertRefusedAndClosed(t, ctx, s, http.StatusUnauthorized, 1500*time.Millisecond)

	r := s.requests()[0]
	if r.Cookie != "" || r.Origin != pageOrigin {
		t.Errorf("stream request has session cookie %q and Origin %q, want none and %q", r.Cookie, r.Origin, pageOrigin)
	}
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != pageOrigin {
		t.Errorf("401 has Access-Control-Allow-Origin %q, want %q", got, pageOrigin)
	}
	if got := r.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
		t.Errorf("401 has Access-Control-Allow-Credentials %q, want true", got)
	}
	if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("401 has WWW-Authenticate %q, want Bearer", got)
	}
	if refusals, _, _ := s.observed(); len(refusals) != 1 || refusals[0] != (corsRefusal{sse.RefusedUnauthenticated, http.StatusUnauthorized}) {
		t.Errorf("the Observer saw refusals %+v, want one: unauthenticated, 401", refusals)
	}
	// The cookie was there all along: a credentialed request carries it.
	if who := awaitJS[string](t, ctx, `__whoami(`+jsString(s.srv.URL)+`)`); who != "ann" {
		t.Errorf("credentialed /whoami says %q, want ann: the page has no session cookie, so the test proves nothing", who)
	}
}

// testCookieStreamRejectedOrigin: a page of an origin that is not allowed
// gets 403 before authentication and before any stream byte, without the
// CORS headers, although its request carries a valid session cookie; its
// EventSource ends CLOSED for good.
func testCookieStreamRejectedOrigin(t *testing.T, browser context.Context) {
	allowed := startCORSPage(t)
	other := startCORSPage(t)
	s := newCORSSite(t, allowed)
	ctx := openTab(t, browser, 15*time.Second)
	navigateTab(t, ctx, other+"/")
	loginPage(t, ctx, s)
	if !evalJS[bool](t, ctx, `__open(`+jsString(s.streamURL())+`, true)`) {
		t.Fatal("the EventSource's withCredentials is false")
	}
	waitJS(t, ctx, `window.__es.readyState === 2`)
	assertRefusedAndClosed(t, ctx, s, http.StatusForbidden, 1500*time.Millisecond)

	r := s.requests()[0]
	if r.Origin != other || r.Cookie != "good-ann" {
		t.Errorf("stream request has Origin %q and session cookie %q, want %q and good-ann", r.Origin, r.Cookie, other)
	}
	for _, name := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials"} {
		if v, ok := r.Header[name]; ok {
			t.Errorf("403 has %s %q, want none", name, v)
		}
	}
	if !slices.Contains(r.Header.Values("Vary"), "Origin") {
		t.Errorf("403 has Vary %q, want Origin", r.Header.Values("Vary"))
	}
	refusals, _, authCalls := s.observed()
	if len(refusals) != 1 || refusals[0] != (corsRefusal{sse.RefusedOrigin, http.StatusForbidden}) {
		t.Errorf("the Observer saw refusals %+v, want one: origin, 403", refusals)
	}
	if authCalls != 0 {
		t.Errorf("Authenticate ran %d times, want 0: the origin is refused first", authCalls)
	}
}
