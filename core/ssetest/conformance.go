package ssetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
)

// Server mounts a route for hub as route says, on a test server, and
// returns the URL of the stream route (without a query). Run calls it once
// per check, with a fresh hub; the server must be closed by t.Cleanup.
type Server func(t *testing.T, hub *sse.Hub, route Route) string

// Route is what a Server mounts: a stream route with the adapter's own
// options, and for some checks an auth middleware in front of it or a
// publishing route beside it.
type Route struct {
	// Options are the stream handler's options. The adapter maps each set
	// field to its own option: Topics to its topic option, Auth to its
	// handler auth option (WithAuth), CORS to its CORS option. The route
	// answers GET and OPTIONS (CORS preflights).
	Options sse.HandlerOptions

	// Middleware, when set, is mounted in front of the stream route as
	// the adapter's auth middleware, and Options.Auth is nil: the stream
	// handler must authorize with the middleware's Auth.
	Middleware *sse.Auth

	// Publish, when true, asks for a second route: POST on the stream
	// route's path followed by "/publish/{topic}", which publishes the
	// request body as the data of an event on the topic of the path
	// parameter and answers 200 with the event's ID as the body. It must
	// read both with the router's own accessors (as an application would:
	// c.Body() and c.Params("topic") in Fiber), without copying them.
	Publish bool

	// Stream, when set, asks for a per-request stream route: GET and POST
	// on the stream route's path followed by "/stream", served with the
	// adapter's per-request API (Hub.Stream on net/http) running Stream.
	// The route has no auth.
	Stream func(*sse.Stream) error
}

// Run checks that a server built with newServer behaves as ssekit's
// net/http handler does, following docs/protocol.md: response head and
// immediate flush, encoding through a WHATWG parser, resume, the reset
// signal, heartbeats, release of departed clients, shutdown, auth refusals
// with the handler's auth and with the auth middleware alone, CORS
// (preflights through the auth middleware too), connection caps, stream
// rotation, and events published from buffers that the router reuses.
// Every router adapter runs it.
func Run(t *testing.T, newServer Server) {
	RunWith(t, newServer, Config{})
}

// Config adjusts RunWith.
type Config struct {
	// NewStore, if set, returns the Store of each check's hub, for
	// example a shared store such as sseredis. The check of evicted IDs
	// always uses a small MemoryStore. Default: the hub's default store.
	NewStore func(t *testing.T) sse.Store

	// Detached says that the server detaches HTTP/1.1 streams
	// (sse.HandlerOptions.Detach): their connection closes when the
	// stream ends, and the response head says "Connection: close".
	// Otherwise the head must not say it (docs/protocol.md P3).
	Detached bool
}

// RunWith is Run with a Config.
func RunWith(t *testing.T, newServer Server, cfg Config) {
	su := &suite{newServer: newServer, cfg: cfg}
	checks := []struct {
		name string
		run  func(*testing.T, *suite)
	}{
		{"Head", checkHead},
		{"Encoding", checkEncoding},
		{"Resume", checkResume},
		{"Reset", checkReset},
		{"Heartbeat", checkHeartbeat},
		{"ClientGone", checkClientGone},
		{"StalledClient", checkStalledClient},
		{"Shutdown", checkShutdown},
		{"Auth", checkAuth},
		{"AuthMiddleware", checkAuthMiddleware},
		{"CORS", checkCORS},
		{"PreflightThroughAuth", checkPreflightThroughAuth},
		{"ReusedBuffers", checkReusedBuffers},
		{"PerRequest", checkPerRequest},
		{"PerRequestHeartbeat", checkPerRequestHeartbeat},
		{"PerRequestClientGone", checkPerRequestClientGone},
		{"PerRequestStalled", checkPerRequestStalled},
		{"PerRequestShutdown", checkPerRequestShutdown},
		{"Caps", checkCaps},
		{"MaxAge", checkMaxAge},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.run(t, su) })
	}
}

// suite is what every check gets: how to build the server, and the Config.
type suite struct {
	newServer Server
	cfg       Config
}

// kit is one check's hub and server.
type kit struct {
	t   *testing.T
	hub *sse.Hub
	url string
}

func newKit(t *testing.T, su *suite, hopts sse.Options, opts sse.HandlerOptions) *kit {
	t.Helper()
	return newRouteKit(t, su, hopts, Route{Options: opts})
}

func newRouteKit(t *testing.T, su *suite, hopts sse.Options, route Route) *kit {
	t.Helper()
	if hopts.Store == nil && su.cfg.NewStore != nil {
		hopts.Store = su.cfg.NewStore(t)
	}
	hub := NewHub(t, hopts)
	return &kit{t: t, hub: hub, url: su.newServer(t, hub, route)}
}

// ordered reports whether the hub's store numbers all topics in one
// sequence: then a stream of several topics is sent the IDs Publish
// returns.
func (k *kit) ordered() bool {
	_, ok := k.hub.Store().(sse.OrderedStore)
	return ok
}

func (k *kit) connect(query, lastID string) *Stream {
	k.t.Helper()
	return Open(k.t, k.url+query, lastID, nil)
}

func (k *kit) tryConnect(query, lastID string, hdr http.Header) (*Stream, error) {
	return TryOpen(k.t, k.url+query, lastID, hdr)
}

func (k *kit) publish(topic, data string) string {
	k.t.Helper()
	id, err := k.hub.Publish(context.Background(), topic, sse.Event{Data: []byte(data)})
	if err != nil {
		k.t.Fatalf("Publish: %v", err)
	}
	return id
}

func (k *kit) next(st *Stream) Event {
	k.t.Helper()
	ev, err := st.Next()
	if err != nil {
		k.t.Fatalf("Next: %v", err)
	}
	return ev
}

// get makes a plain request and returns the response with its body read.
func (k *kit) get(method, query string, hdr http.Header) (*http.Response, string) {
	k.t.Helper()
	return testkit.Request(k.t, method, k.url+query, hdr)
}

var topicT = sse.HandlerOptions{Topics: sse.Topics("t")}

func checkHead(t *testing.T, su *suite) {
	k := newKit(t, su, sse.Options{Retry: 1500 * time.Millisecond}, topicT)
	st := k.connect("", "")
	// Connect has returned with nothing published: the head was flushed at
	// once, and the client is subscribed.
	h := st.Response.Header
	if st.Response.StatusCode != http.StatusOK {
		t.Errorf("status %d", st.Response.StatusCode)
	}
	for name, want := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if st.Response.ContentLength != -1 || h.Get("Content-Length") != "" {
		t.Errorf("Content-Length is set (%d)", st.Response.ContentLength)
	}
	closes := st.Response.Close || strings.EqualFold(h.Get("Connection"), "close")
	if want := su.cfg.Detached && st.Response.ProtoMajor == 1; closes != want {
		t.Errorf("the response says Connection: close = %v, want %v", closes, want)
	}
	comments := make(chan string, 8)
	st.Parser().OnComment = func(c string) {
		select {
		case comments <- c:
		default:
		}
	}
	id := k.publish("t", "first")
	if ev := k.next(st); ev.Data != "first" || ev.LastEventID != id || ev.Type != "message" {
		t.Errorf("first event %+v, want data first with id %s", ev, id)
	}
	if c := <-comments; c != " ok" {
		t.Errorf("opening comment %q, want \" ok\"", c)
	}
	if r, ok := st.Parser().Retry(); !ok || r != 1500*time.Millisecond {
		t.Errorf("retry hint %v (%v), want 1.5s", r, ok)
	}
}

func checkEncoding(t *testing.T, su *suite) {
	k := newKit(t, su, sse.Options{}, topicT)
	st := k.connect("", "")
	payloads := []string{
		"", "\n", "a\n", "a\r\nb\rc", " leading space", "\ttab", "nul\x00byte",
		strings.Repeat("x", 64<<10), "ünïcödé ✓ 世界", "\r\n\r\n", "a\n\nb",
	}
	types := []string{"", "update", "ünï"}
	for i, p := range payloads {
		typ := types[i%len(types)]
		id, err := k.hub.Publish(context.Background(), "t", sse.Event{Type: typ, Data: []byte(p)})
		if err != nil {
			t.Fatal(err)
		}
		ev := k.next(st)
		want := strings.ReplaceAll(strings.ReplaceAll(p, "\r\n", "\n"), "\r", "\n")
		if typ == "" {
			typ = "message"
		}
		if ev.Data != want || ev.Type != typ || ev.LastEventID != id {
			t.Errorf("payload %q: got type %q data %q id %q", truncate(p), ev.Type, truncate(ev.Data), ev.LastEventID)
		}
	}
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func checkResume(t *testing.T, su *suite) {
	k := newKit(t, su, sse.Options{HeartbeatInterval: shortHeartbeat}, sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")})
	// The IDs a stream of two topics is sent: Publish's own with a store
	// that numbers all topics in one sequence, a place in each topic with
	// others (see sse.OrderedStore).
	watcher := k.connect("?topic=a&topic=b", "")
	var ids []string
	for i := range 20 {
		id := k.publish([]string{"a", "b"}[i%2], strconv.Itoa(i))
		ev := k.next(watcher)
		if ev.Data != strconv.Itoa(i) || (k.ordered() && ev.LastEventID != id) {
			t.Fatalf("live: got %+v, want %d with id %s", ev, i, id)
		}
		ids = append(ids, ev.LastEventID)
	}
	viaHeader := k.connect("?topic=a&topic=b", ids[4])
	viaQuery := k.connect("?topic=a&topic=b&lastEventId="+url.QueryEscape(ids[9]), "")
	for _, c := range []struct {
		st   *Stream
		from int
		what string
	}{{viaHeader, 5, "Last-Event-ID header"}, {viaQuery, 10, "lastEventId query"}} {
		for i := c.from; i < 20; i++ {
			if ev := k.next(c.st); ev.Data != strconv.Itoa(i) || ev.LastEventID != ids[i] {
				t.Fatalf("%s: got %+v, want %d with id %s", c.what, ev, i, ids[i])
			}
		}
	}
	live := k.publish("a", "live")
	want := k.next(watcher).LastEventID
	for _, st := range []*Stream{viaHeader, viaQuery} {
		if ev := k.next(st); ev.Data != "live" || ev.LastEventID != want || (k.ordered() && want != live) {
			t.Fatalf("after replay got %+v, want the live event", ev)
		}
	}

	// A stream cut before its first event resumes from its opening position.
	open := k.hub.Stats().Streams
	pos := k.openingPosition("?topic=a")
	testkit.Eventually(t, "the stream to end", func() bool { return k.hub.Stats().Streams == open })
	missed := k.publish("a", "missed")
	st := k.connect("?topic=a", pos)
	if ev := k.next(st); ev.Data != "missed" || ev.LastEventID != missed {
		t.Fatalf("resuming from the opening position %q gave %+v", pos, ev)
	}
}

// openingPosition opens a stream, reads its opening frame only, closes it
// and returns the Last-Event-ID a browser would then hold.
func (k *kit) openingPosition(query string) string {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", k.url+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var frame []byte
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			k.t.Fatalf("reading the opening frame: %v", err)
		}
		frame = append(frame, line...)
		if len(line) == 1 {
			break
		}
	}
	p := NewParser(bytes.NewReader(frame))
	if _, err := p.Next(); err != io.EOF {
		k.t.Fatalf("the opening frame %q dispatched an event", frame)
	}
	if p.LastEventID() == "" {
		k.t.Fatalf("the opening frame %q gives no position", frame)
	}
	return p.LastEventID()
}

func checkReset(t *testing.T, su *suite) {
	store, err := sse.NewMemoryStore(sse.MemoryStoreOptions{MaxEvents: 3})
	if err != nil {
		t.Fatal(err)
	}
	k := newKit(t, su, sse.Options{Store: store}, topicT)
	first := k.publish("t", "0")
	for i := 1; i < 6; i++ {
		k.publish("t", strconv.Itoa(i))
	}
	for _, c := range []struct{ lastID, reason string }{
		{first, "evicted"},
		{"elsewhere-1", "unknown-id"},
		{strings.Repeat("7", 1000), "unknown-id"},
	} {
		st := k.connect("", c.lastID)
		ev := k.next(st)
		if ev.Type != "sse-reset" || ev.Data != `{"reason":"`+c.reason+`"}` || ev.LastEventID == "" {
			t.Errorf("Last-Event-ID %q: first event %+v, want an sse-reset with reason %s and an id", truncate(c.lastID), ev, c.reason)
		}
		id := k.publish("t", "live")
		if ev := k.next(st); ev.Data != "live" || ev.LastEventID != id {
			t.Errorf("after the reset got %+v, want the live event", ev)
		}
	}
}

func checkHeartbeat(t *testing.T, su *suite) {
	k := newKit(t, su, sse.Options{HeartbeatInterval: 40 * time.Millisecond}, topicT)
	st := k.connect("", "")
	pings := make(chan struct{}, 8)
	st.Parser().OnComment = func(c string) {
		if c == " ping" {
			select {
			case pings <- struct{}{}:
			default:
			}
		}
	}
	go func() { _, _ = st.Next() }()
	for range 3 {
		select {
		case <-pings:
		case <-time.After(10 * time.Second):
			t.Fatal("no heartbeat on an idle stream")
		}
	}
}

// Servers that notice a departed client only when a write fails (fasthttp)
// must do so within one heartbeat (docs/protocol.md P20): the checks that wait
// for a departed client use a short one.
const shortHeartbeat = 100 * time.Millisecond

func checkClientGone(t *testing.T, su *suite) {
	base := runtime.NumGoroutine()
	k := newKit(t, su, sse.Options{HeartbeatInterval: shortHeartbeat}, topicT)
	for range 5 {
		st := k.connect("", "")
		testkit.Eventually(t, "the stream to open", func() bool { return k.hub.Stats().Streams == 1 })
		st.Close()
		testkit.Eventually(t, "the departed client's stream to be released", func() bool { return k.hub.Stats().Streams == 0 })
	}
	if n := k.hub.Stats().Topics; n != 0 {
		t.Errorf("%d topics left in the hub after every client left", n)
	}
	http.DefaultClient.CloseIdleConnections()
	// The server's own idle connections may hold a goroutine or two.
	testkit.Eventually(t, "goroutines to return to their number before the check", func() bool {
		return runtime.NumGoroutine() <= base+4
	})
}

// checkStalledClient: a client that never reads is cut off, while a healthy
// client gets every event once.
func checkStalledClient(t *testing.T, su *suite) {
	k := newKit(t, su, sse.Options{WriteTimeout: 300 * time.Millisecond, MaxQueueBytes: 256 << 10, MaxReplayBytes: 16 << 20}, topicT)
	u, err := url.Parse(k.url)
	if err != nil {
		t.Fatal(err)
	}
	stalled, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	_ = stalled.(*net.TCPConn).SetReadBuffer(4096)
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if _, err := io.WriteString(stalled, "GET "+path+" HTTP/1.1\r\nHost: "+u.Host+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the stalled client's stream", func() bool { return k.hub.Stats().Streams == 1 })
	healthy := k.connect("", "")

	payload := strings.Repeat("x", 32<<10)
	const n = 300 // 9 MiB: more than socket buffers hold
	got := make(chan []string, 1)
	go func() {
		var ids []string
		st := healthy
		for deadline := time.Now().Add(60 * time.Second); len(ids) < n && time.Now().Before(deadline); {
			ev, err := st.Next()
			if err != nil { // evicted as a slow consumer: resume, as a browser would
				st, err = k.tryConnect("", st.LastEventID(), nil)
				if err != nil {
					break
				}
				continue
			}
			ids = append(ids, ev.LastEventID)
		}
		got <- ids
	}()
	var want []string
	for i := range n {
		want = append(want, k.publish("t", payload))
		if i%4 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if ids := <-got; strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("the healthy client got %d events, want each of %d once, in order", len(ids), n)
	}
	testkit.Eventually(t, "the stalled client to be cut off", func() bool { return k.hub.Stats().Streams <= 1 })
}

func checkShutdown(t *testing.T, su *suite) {
	k := newKit(t, su, sse.Options{CloseRetry: 100 * time.Millisecond}, topicT)
	streams := make([]*Stream, 20)
	for i := range streams {
		streams[i] = k.connect("", "")
	}
	queued := k.publish("t", "before shutdown")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.hub.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i, st := range streams {
		if ev := k.next(st); ev.LastEventID != queued {
			t.Errorf("stream %d: got %+v before the end, want the queued event", i, ev)
		}
		if _, err := st.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("stream %d: %v, want a clean end", i, err)
		}
		if r, ok := st.Parser().Retry(); !ok || r < 100*time.Millisecond || r > 200*time.Millisecond {
			t.Errorf("stream %d: retry hint %v (%v), want 100-200ms", i, r, ok)
		}
	}
	resp, body := k.get("GET", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "retry: ") {
		t.Errorf("a request after Shutdown got %d %q, want 200 with a retry hint", resp.StatusCode, body)
	}
}

// kitAuth authenticates "good-<user>" tokens as <user>, from a bearer
// header or the "session" cookie, and allows a user the topics
// "user/<user>" and "public".
func kitAuth() *sse.Auth {
	return &sse.Auth{
		CookieName: "session",
		Authenticate: func(_ context.Context, token string) (sse.Principal, error) {
			if user, ok := strings.CutPrefix(token, "good-"); ok {
				return sse.Principal{ID: user}, nil
			}
			return sse.Principal{}, errors.New("bad token")
		},
		Authorize: func(_ context.Context, p sse.Principal, topics []string) error {
			for _, tp := range topics {
				if tp != "user/"+p.ID && tp != "public" {
					return errors.New("not yours")
				}
			}
			return nil
		},
	}
}

func checkAuth(t *testing.T, su *suite) {
	route := Route{Options: sse.HandlerOptions{Auth: kitAuth(), Topics: sse.TopicsFromQuery("topic")}}
	checkAuthRoute(t, newRouteKit(t, su, sse.Options{}, route))
}

// checkAuthMiddleware: with the auth middleware alone in front of the
// stream route, the handler authorizes with the middleware's Auth.
func checkAuthMiddleware(t *testing.T, su *suite) {
	route := Route{Options: sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")}, Middleware: kitAuth()}
	checkAuthRoute(t, newRouteKit(t, su, sse.Options{}, route))
}

func checkAuthRoute(t *testing.T, k *kit) {
	for _, c := range []struct {
		name, query string
		hdr         http.Header
		status      int
	}{
		{"no token", "?topic=public", nil, 401},
		{"bad token", "?topic=public", http.Header{"Authorization": {"Bearer bad"}}, 401},
		{"other user's topic", "?topic=user/bob", http.Header{"Authorization": {"Bearer good-ann"}}, 403},
		{"other user's topic among own", "?topic=user/ann&topic=user/bob", http.Header{"Cookie": {"session=good-ann"}}, 403},
	} {
		resp, body := k.get("GET", c.query, c.hdr)
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") == "text/event-stream" || body == "" {
			t.Errorf("%s: got %d %q (%s), want %d with an explanation, before any stream byte", c.name, resp.StatusCode, body, resp.Header.Get("Content-Type"), c.status)
		}
		if c.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
	}
	for _, c := range []struct {
		name string
		hdr  http.Header
	}{
		{"bearer", http.Header{"Authorization": {"Bearer good-ann"}}},
		{"cookie", http.Header{"Cookie": {"session=good-ann"}}},
	} {
		st, err := k.tryConnect("?topic=user/ann&topic=public", "", c.hdr)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		id := k.publish("user/ann", "for ann")
		if ev := k.next(st); ev.Data != "for ann" || ev.LastEventID == "" || (k.ordered() && ev.LastEventID != id) {
			t.Errorf("%s: got %+v", c.name, ev)
		}
	}
}

// checkPreflightThroughAuth: a CORS preflight carries no credentials, so
// the auth middleware lets it through to the handler, which answers it.
func checkPreflightThroughAuth(t *testing.T, su *suite) {
	const allowed = "http://app.example"
	k := newRouteKit(t, su, sse.Options{}, Route{
		Options: sse.HandlerOptions{
			Topics: sse.Topics("public"),
			CORS:   &sse.CORS{AllowedOrigins: []string{allowed}, AllowCredentials: true},
		},
		Middleware: kitAuth(),
	})
	resp, body := k.get("OPTIONS", "", http.Header{
		"Origin": {allowed}, "Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"last-event-id"},
	})
	if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != allowed ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Last-Event-ID") {
		t.Errorf("preflight through the auth middleware: %d %q %v, want 2xx with CORS headers", resp.StatusCode, body, resp.Header)
	}
	st, err := k.tryConnect("", "", http.Header{"Origin": {allowed}, "Cookie": {"session=good-ann"}})
	if err != nil {
		t.Fatalf("the stream after the preflight: %v", err)
	}
	if st.Response.Header.Get("Access-Control-Allow-Origin") != allowed {
		t.Errorf("the stream's CORS headers: %v", st.Response.Header)
	}
}

// checkReusedBuffers: events published from memory that the router reuses
// for later requests (the request body, a route parameter) are replayed
// as they were published, on their own topic only.
func checkReusedBuffers(t *testing.T, su *suite) {
	k := newRouteKit(t, su, sse.Options{}, Route{Options: sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")}, Publish: true})
	rooms := []string{"room-a", "room-b", "room-c"}
	var first []string
	want := map[string][]string{}
	client := &http.Client{} // one keep-alive connection: the server reuses its buffers
	defer client.CloseIdleConnections()
	for i := range 30 {
		room := rooms[i%len(rooms)]
		body := fmt.Sprintf("%s event %02d %s", room, i, strings.Repeat(string(rune('a'+i%26)), i))
		resp, err := client.Post(k.url+"/publish/"+room, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		id, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("publishing: %d %q", resp.StatusCode, id)
		}
		if i < len(rooms) {
			first = append(first, string(id))
		}
		if i >= len(rooms) {
			want[room] = append(want[room], body)
		}
	}
	for i, room := range rooms {
		st := k.connect("?topic="+room, first[i])
		for j, w := range want[room] {
			if ev := k.next(st); ev.Data != w {
				t.Fatalf("%s: replayed event %d is %q, want %q", room, j, ev.Data, w)
			}
		}
		st.Close()
	}
}

func checkCORS(t *testing.T, su *suite) {
	const allowed = "http://app.example"
	k := newKit(t, su, sse.Options{}, sse.HandlerOptions{
		Topics: sse.Topics("t"),
		CORS:   &sse.CORS{AllowedOrigins: []string{allowed}, AllowCredentials: true},
	})
	st, err := k.tryConnect("", "", http.Header{"Origin": {allowed}})
	if err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	h := st.Response.Header
	if h.Get("Access-Control-Allow-Origin") != allowed || h.Get("Access-Control-Allow-Credentials") != "true" || !hasVaryOrigin(h) {
		t.Errorf("allowed origin: CORS headers %v", h)
	}
	resp, _ := k.get("GET", "", http.Header{"Origin": {"http://evil.example"}})
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" || !hasVaryOrigin(resp.Header) {
		t.Errorf("other origin: %d %v, want 403 without Access-Control-Allow-Origin", resp.StatusCode, resp.Header)
	}
	resp, _ = k.get("OPTIONS", "", http.Header{
		"Origin": {allowed}, "Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"last-event-id"},
	})
	if resp.StatusCode/100 != 2 || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Last-Event-ID") ||
		resp.Header.Get("Access-Control-Allow-Origin") != allowed {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

func hasVaryOrigin(h http.Header) bool {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "Origin") {
				return true
			}
		}
	}
	return false
}

func checkCaps(t *testing.T, su *suite) {
	k := newKit(t, su, sse.Options{MaxStreams: 2, HeartbeatInterval: shortHeartbeat}, topicT)
	a := k.connect("", "")
	k.connect("", "")
	resp, body := k.get("GET", "", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || !strings.HasPrefix(body, "retry: ") {
		t.Errorf("over the cap: %d %q, want 200 with only a retry hint", resp.StatusCode, body)
	}
	a.Close()
	testkit.Eventually(t, "a stream to close", func() bool { return k.hub.Stats().Streams == 1 })
	k.connect("", "")
}

func checkMaxAge(t *testing.T, su *suite) {
	k := newKit(t, su, sse.Options{MaxStreamAge: 150 * time.Millisecond, CloseRetry: 10 * time.Millisecond}, topicT)
	st := k.connect("", "") // subscribed before the first publish
	stop := make(chan struct{})
	published := make(chan []string, 1)
	go func() {
		var ids []string
		for i := 0; ; i++ {
			select {
			case <-stop:
				published <- ids
				return
			case <-time.After(3 * time.Millisecond):
			}
			id, err := k.hub.Publish(context.Background(), "t", sse.Event{Data: []byte(strconv.Itoa(i))})
			if err != nil {
				t.Error(err)
			}
			ids = append(ids, id)
		}
	}()
	var got []string
	rotations := 0
	deadline := time.Now().Add(20 * time.Second)
	for rotations < 3 && time.Now().Before(deadline) {
		ev, err := st.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("the stream did not end cleanly: %v", err)
			}
			if _, ok := st.Parser().Retry(); !ok {
				t.Error("the stream ended without a retry hint")
			}
			rotations++
			st = k.connect("", st.LastEventID())
			continue
		}
		got = append(got, ev.LastEventID)
	}
	close(stop)
	ids := <-published
	if rotations < 3 {
		t.Fatalf("%d rotations before the deadline", rotations)
	}
	for deadline := time.Now().Add(20 * time.Second); len(got) < len(ids) && time.Now().Before(deadline); {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) { // rotated again while draining
			st = k.connect("", st.LastEventID())
			continue
		}
		if err != nil {
			t.Fatalf("draining: %v", err)
		}
		got = append(got, ev.LastEventID)
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("across %d rotations the client got %d events, want each of %d once, in order", rotations, len(got), len(ids))
	}
}

// perRequestKit mounts a per-request stream route running fn.
func perRequestKit(t *testing.T, su *suite, hopts sse.Options, fn func(*sse.Stream) error) *kit {
	t.Helper()
	k := newRouteKit(t, su, hopts, Route{Options: topicT, Stream: fn})
	k.url += "/stream"
	return k
}

// openPerRequest opens the per-request stream of k with method.
func (k *kit) openPerRequest(method string) *Stream {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	k.t.Cleanup(cancel)
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"prompt":"hello"}`)
	}
	req, err := http.NewRequestWithContext(ctx, method, k.url, body)
	if err != nil {
		k.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	st, err := Do(nil, req)
	if err != nil {
		k.t.Fatalf("%s %s: %v", method, k.url, err)
	}
	k.t.Cleanup(func() { st.Close() })
	return st
}

// checkPerRequest: GET and POST open a per-request stream whose head
// arrives before the producer sends anything, with every field the
// producer chose, and that ends when the producer returns.
func checkPerRequest(t *testing.T, su *suite) {
	release := make(chan struct{})
	k := perRequestKit(t, su, sse.Options{}, func(s *sse.Stream) error {
		<-release
		for _, ev := range []sse.Event{
			{ID: "job-1", Type: "token", Data: []byte("Hel")},
			{Data: []byte("lo\nworld")},
			{Comment: "thinking"},
			{Flags: sse.EmptyID | sse.NoData},
			{Type: "done", Data: []byte("{}")},
		} {
			if err := s.Send(ev); err != nil {
				return err
			}
		}
		return nil
	})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		st := k.openPerRequest(method) // returns with the head: nothing sent yet
		h := st.Response.Header
		if st.Response.StatusCode != http.StatusOK || h.Get("Cache-Control") != "no-cache" || h.Get("X-Accel-Buffering") != "no" {
			t.Errorf("%s: status %d, head %v", method, st.Response.StatusCode, h)
		}
		release <- struct{}{}
		want := []Event{
			{Type: "token", Data: "Hel", LastEventID: "job-1"},
			{Type: "message", Data: "lo\nworld", LastEventID: "job-1"},
			{Type: "done", Data: "{}", LastEventID: ""},
		}
		for i, w := range want {
			if ev := k.next(st); ev != w {
				t.Errorf("%s: event %d is %+v, want %+v", method, i, ev, w)
			}
		}
		if _, err := st.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("%s: after the producer returned: %v, want the end of the response", method, err)
		}
	}
}

// checkPerRequestHeartbeat: while the producer sends nothing, the stream
// gets heartbeats.
func checkPerRequestHeartbeat(t *testing.T, su *suite) {
	k := perRequestKit(t, su, sse.Options{HeartbeatInterval: 40 * time.Millisecond}, func(s *sse.Stream) error {
		select {
		case <-time.After(400 * time.Millisecond):
		case <-s.Context().Done():
			return s.Context().Err()
		}
		return s.Send(sse.Event{Data: []byte("late")})
	})
	st := k.openPerRequest(http.MethodPost)
	pings := 0
	st.Parser().OnComment = func(c string) {
		if c == " ping" {
			pings++
		}
	}
	if ev := k.next(st); ev.Data != "late" {
		t.Fatalf("got %+v", ev)
	}
	if pings < 3 {
		t.Errorf("%d heartbeats while the producer took 400ms with a 40ms interval, want several", pings)
	}
}

// checkPerRequestClientGone: a client that leaves ends the stream's
// context within a heartbeat, and Send then fails at once.
func checkPerRequestClientGone(t *testing.T, su *suite) {
	done := make(chan time.Time, 1)
	sendErr := make(chan error, 1)
	k := perRequestKit(t, su, sse.Options{HeartbeatInterval: shortHeartbeat}, func(s *sse.Stream) error {
		if err := s.Send(sse.Event{Data: []byte("first")}); err != nil {
			return err
		}
		<-s.Context().Done()
		done <- time.Now()
		began := time.Now()
		err := s.Send(sse.Event{Data: []byte("after")})
		if time.Since(began) > shortHeartbeat {
			err = fmt.Errorf("a Send after the end took %v: %w", time.Since(began), err)
		}
		sendErr <- err
		return err
	})
	st := k.openPerRequest(http.MethodGet)
	k.next(st)
	left := time.Now()
	st.Close()
	select {
	case at := <-done:
		if d := at.Sub(left); d > 2*shortHeartbeat+time.Second {
			t.Errorf("the stream's context ended %v after the client left", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream's context did not end after the client left")
	}
	if err := <-sendErr; !errors.Is(err, sse.ErrStreamEnded) {
		t.Errorf("Send after the client left: %v, want ErrStreamEnded", err)
	}
	testkit.Eventually(t, "the stream to be released", func() bool { return k.hub.Stats().Streams == 0 })
}

// checkPerRequestStalled: a client that stops reading is cut off by the
// write deadline: Send fails with EndWriteTimeout.
func checkPerRequestStalled(t *testing.T, su *suite) {
	result := make(chan error, 1)
	k := perRequestKit(t, su, sse.Options{WriteTimeout: 300 * time.Millisecond, HeartbeatInterval: time.Hour}, func(s *sse.Stream) error {
		big := sse.Event{Data: []byte(strings.Repeat("x", 64<<10))}
		for range 1000 { // 64 MiB: far more than socket buffers hold
			if err := s.Send(big); err != nil {
				result <- err
				return err
			}
		}
		result <- nil
		return nil
	})
	u, err := url.Parse(k.url)
	if err != nil {
		t.Fatal(err)
	}
	stalled, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	_ = stalled.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := io.WriteString(stalled, "GET "+u.EscapedPath()+" HTTP/1.1\r\nHost: "+u.Host+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-result:
		var se *sse.StreamEndedError
		if !errors.As(err, &se) || se.Reason != sse.EndWriteTimeout {
			t.Errorf("Send to a client that stopped reading: %v, want a StreamEndedError with EndWriteTimeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Send never gave up on a client that stopped reading")
	}
	testkit.Eventually(t, "the stream to be released", func() bool { return k.hub.Stats().Streams == 0 })
}

// checkPerRequestShutdown: Hub.Shutdown ends per-request streams: the
// producer's context ends, the client gets a retry hint and a clean end,
// and Shutdown returns.
func checkPerRequestShutdown(t *testing.T, su *suite) {
	returned := make(chan struct{}, 8)
	k := perRequestKit(t, su, sse.Options{CloseRetry: 100 * time.Millisecond}, func(s *sse.Stream) error {
		defer func() { returned <- struct{}{} }()
		if err := s.Send(sse.Event{Data: []byte("working")}); err != nil {
			return err
		}
		<-s.Context().Done()
		return s.Context().Err()
	})
	streams := []*Stream{k.openPerRequest(http.MethodGet), k.openPerRequest(http.MethodPost)}
	for _, st := range streams {
		k.next(st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.hub.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i, st := range streams {
		if _, err := st.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("stream %d: %v, want a clean end", i, err)
		}
		if r, ok := st.Parser().Retry(); !ok || r < 100*time.Millisecond || r > 200*time.Millisecond {
			t.Errorf("stream %d: retry hint %v (%v), want 100-200ms", i, r, ok)
		}
		<-returned
	}
}
