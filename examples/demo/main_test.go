package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/ssetest"
)

// testConfig runs the demo fast: a job takes about half a second.
func testConfig() config {
	return config{metricsEvery: 50 * time.Millisecond, jobStep: 5 * time.Millisecond}
}

// startDemo runs the demo with cfg on a free port until the test ends, and
// checks that it then shuts down cleanly. It returns the base URL.
func startDemo(t *testing.T, cfg config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(shutdownTimeout + 2*time.Second):
			t.Error("run did not return after its context was canceled")
		}
	})
	return "http://" + ln.Addr().String()
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newClient returns a client with a cookie jar of its own: a browser.
func newClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// connect opens a stream. lastID, when set, goes in the Last-Event-ID header.
func connect(t *testing.T, ctx context.Context, c *http.Client, url, lastID string) *ssetest.Stream {
	t.Helper()
	s, err := ssetest.Connect(ctx, c, url, lastID)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// connectStatus opens a stream that must be refused, and returns the status.
func connectStatus(t *testing.T, ctx context.Context, c *http.Client, url string) int {
	t.Helper()
	s, err := ssetest.Connect(ctx, c, url, "")
	if err == nil {
		s.Close()
		return http.StatusOK
	}
	se, ok := errors.AsType[*ssetest.StatusError](err)
	if !ok {
		t.Fatalf("connect %s: %v", url, err)
	}
	return se.Code
}

// next returns the next event of one of the given types, skipping others
// (the metrics that every stream carries).
func next(t *testing.T, s *ssetest.Stream, types ...string) ssetest.Event {
	t.Helper()
	for {
		ev, err := s.Next()
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if slices.Contains(types, ev.Type) {
			return ev
		}
	}
}

// decode decodes an event's JSON data into a T.
func decode[T any](t *testing.T, ev ssetest.Event) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(ev.Data), &v); err != nil {
		t.Fatalf("%s event data %q: %v", ev.Type, ev.Data, err)
	}
	return v
}

// post sends a POST with a JSON body (none when body is nil) and returns
// the response, whose body it has read into the returned string.
func post(t *testing.T, ctx context.Context, c *http.Client, url string, body any) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return do(t, c, req)
}

func get(t *testing.T, ctx context.Context, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

// do sends req with c (nil: http.DefaultClient), and returns the response,
// whose body it has read into the returned string.
func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// login logs c in as name and returns the session cookie.
func login(t *testing.T, ctx context.Context, c *http.Client, base, name string) *http.Cookie {
	t.Helper()
	resp, body := post(t, ctx, c, base+"/login", map[string]string{"name": name})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login %q: status %d: %s", name, resp.StatusCode, body)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			return ck
		}
	}
	t.Fatalf("login %q: no %s cookie in %q", name, sessionCookie, resp.Header["Set-Cookie"])
	return nil
}

// me returns who GET /me says is logged in, "" for nobody.
func me(t *testing.T, ctx context.Context, c *http.Client, base string) string {
	t.Helper()
	resp, body := get(t, ctx, c, base+"/me")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /me: status %d: %s", resp.StatusCode, body)
	}
	var m struct{ Name *string }
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("GET /me: %q: %v", body, err)
	}
	if m.Name == nil {
		return ""
	}
	return *m.Name
}

// notify sends a notification as c and returns its event ID.
func notify(t *testing.T, ctx context.Context, c *http.Client, base, to string) string {
	t.Helper()
	resp, body := post(t, ctx, c, base+"/notify", map[string]string{"to": to})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("notify %s: status %d: %s", to, resp.StatusCode, body)
	}
	var r struct{ ID string }
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.ID == "" {
		t.Fatalf("notify: response %q: want {\"id\": ...}", body)
	}
	return r.ID
}

// startJob starts a job and returns its state.
func startJob(t *testing.T, ctx context.Context, c *http.Client, base string) jobState {
	t.Helper()
	resp, body := post(t, ctx, c, base+"/jobs", nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /jobs: status %d: %s", resp.StatusCode, body)
	}
	var j jobState
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		t.Fatalf("POST /jobs: %q: %v", body, err)
	}
	if !validJobID(j.ID) || j.Topic != "job/"+j.ID || resp.Header.Get("Location") != "/jobs/"+j.ID {
		t.Fatalf("POST /jobs: %q, Location %q", body, resp.Header.Get("Location"))
	}
	return j
}

// position returns an event ID that precedes whatever is published next,
// as the page gets one: from the first event of a stream (a metric).
func position(t *testing.T, ctx context.Context, base string) string {
	t.Helper()
	s := connect(t, ctx, nil, base+"/events", "")
	defer s.Close()
	return next(t, s, "metrics").LastEventID
}

func TestPage(t *testing.T) {
	base := startDemo(t, testConfig())
	ctx := testContext(t)
	resp, body := get(t, ctx, http.DefaultClient, base+"/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET /: Content-Type %q", ct)
	}
	for _, want := range []string{"<title>ssekit demo</title>", "new EventSource(", "lastEventId", "sse-reset", "sessionStorage"} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /: page does not contain %q", want)
		}
	}
	if resp, _ := get(t, ctx, http.DefaultClient, base+"/nothing-here"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing-here: status %d, want 404", resp.StatusCode)
	}
}

// TestLoginCookie logs in and checks that the session cookie brings the
// user's own topic to the stream, and only to that user's streams.
func TestLoginCookie(t *testing.T) {
	t.Parallel()
	base := startDemo(t, testConfig())
	ctx := testContext(t)
	alice, bob, visitor := newClient(t), newClient(t), newClient(t)

	ck := login(t, ctx, alice, base, "alice")
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Value == "" || strings.Contains(ck.Value, "alice") {
		t.Errorf("session cookie %s: want HttpOnly, SameSite=Lax, Path=/ and a random token", ck)
	}
	if got := me(t, ctx, alice, base); got != "alice" {
		t.Errorf("GET /me as alice: %q", got)
	}
	if got := me(t, ctx, visitor, base); got != "" {
		t.Errorf("GET /me without logging in: %q", got)
	}
	login(t, ctx, bob, base, "bob")

	aliceStream := connect(t, ctx, alice, base+"/events", "")
	bobStream := connect(t, ctx, bob, base+"/events", "")
	visitorStream := connect(t, ctx, visitor, base+"/events", "")

	personal := notify(t, ctx, alice, base, "me")
	ev := next(t, aliceStream, "notification")
	n := decode[notification](t, ev)
	if ev.LastEventID != personal || n.To != "me" || n.From != "alice" || n.Text == "" {
		t.Errorf("alice got %+v (%+v), want her own notification %s", ev, n, personal)
	}

	broadcast := notify(t, ctx, alice, base, "everyone")
	for name, s := range map[string]*ssetest.Stream{"alice": aliceStream, "bob": bobStream, "a visitor": visitorStream} {
		// Bob and the visitor were never sent alice's own notification:
		// their next one is the broadcast.
		ev := next(t, s, "notification")
		n := decode[notification](t, ev)
		if ev.LastEventID != broadcast || n.To != "everyone" || !strings.Contains(n.Text, "alice") {
			t.Errorf("%s got %+v, want the broadcast %s", name, ev, broadcast)
		}
	}
}

// TestAuthorization checks the stream's refusals: another user's topic,
// topics the demo does not serve, and a session the server does not know.
func TestAuthorization(t *testing.T) {
	t.Parallel()
	base := startDemo(t, testConfig())
	ctx := testContext(t)
	alice, visitor := newClient(t), newClient(t)
	login(t, ctx, alice, base, "alice")

	tests := []struct {
		c     *http.Client
		who   string
		query string
		want  int
	}{
		{alice, "alice", "topic=user/alice", http.StatusOK},
		{alice, "alice", "topic=user/bob", http.StatusForbidden},
		{alice, "alice", "topic=job/0123456789ab&topic=user/bob", http.StatusForbidden},
		{visitor, "a visitor", "topic=user/alice", http.StatusForbidden},
		{visitor, "a visitor", "topic=user/", http.StatusForbidden},
		{visitor, "a visitor", "topic=job/0123456789ab", http.StatusOK},
		{visitor, "a visitor", "topic=chat", http.StatusNotFound},
		{visitor, "a visitor", "topic=job/nope", http.StatusNotFound},
	}
	for _, tt := range tests {
		if got := connectStatus(t, ctx, tt.c, base+"/events?"+tt.query); got != tt.want {
			t.Errorf("%s: /events?%s: status %d, want %d", tt.who, tt.query, got, tt.want)
		}
	}

	// A session cookie the server does not know (from before a restart):
	// the stream refuses it, and GET /me clears it.
	stale := newClient(t)
	u, _ := url.Parse(base)
	stale.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "no-such-session", Path: "/"}})
	if got := connectStatus(t, ctx, stale, base+"/events"); got != http.StatusUnauthorized {
		t.Errorf("a stale session cookie: status %d, want 401", got)
	}
	if got := me(t, ctx, stale, base); got != "" {
		t.Errorf("GET /me with a stale cookie: %q", got)
	}
	if cks := stale.Jar.Cookies(u); len(cks) != 0 {
		t.Errorf("GET /me left the stale cookie: %v", cks)
	}
	connect(t, ctx, stale, base+"/events", "")
}

func TestLogout(t *testing.T) {
	t.Parallel()
	base := startDemo(t, testConfig())
	ctx := testContext(t)
	c := newClient(t)
	ck := login(t, ctx, c, base, "alice")
	if resp, body := post(t, ctx, c, base+"/logout", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: status %d: %s", resp.StatusCode, body)
	}
	if got := me(t, ctx, c, base); got != "" {
		t.Errorf("GET /me after logout: %q", got)
	}
	if resp, _ := post(t, ctx, c, base+"/notify", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("notify after logout: status %d, want 401", resp.StatusCode)
	}
	// The old token is dead.
	old := newClient(t)
	u, _ := url.Parse(base)
	old.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: ck.Value, Path: "/"}})
	if got := connectStatus(t, ctx, old, base+"/events"); got != http.StatusUnauthorized {
		t.Errorf("stream with a logged-out token: status %d, want 401", got)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	base := startDemo(t, testConfig())
	ctx := testContext(t)
	c := newClient(t)
	for _, name := range []string{"", "   ", "a/b", "<b>", "a b", strings.Repeat("x", maxName+1)} {
		if resp, _ := post(t, ctx, c, base+"/login", map[string]string{"name": name}); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("login %q: status %d, want 400", name, resp.StatusCode)
		}
	}
	if resp, _ := post(t, ctx, c, base+"/notify", map[string]string{"to": "me"}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("notify without logging in: status %d, want 401", resp.StatusCode)
	}
	login(t, ctx, c, base, "zoë.k-1")
	if resp, _ := post(t, ctx, c, base+"/notify", map[string]string{"to": "bob"}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf(`notify "to": "bob": status %d, want 400`, resp.StatusCode)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/login", strings.NewReader("name=x"))
	req.Header.Set("Content-Type", "text/plain")
	if resp, _ := do(t, c, req); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("login as text/plain: status %d, want 415", resp.StatusCode)
	}
	// A form works too.
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, base+"/login", strings.NewReader("name=carol"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, body := do(t, c, req); resp.StatusCode != http.StatusOK {
		t.Errorf("login with a form: status %d: %s", resp.StatusCode, body)
	}
	// Another site's page cannot post with the visitor's cookie.
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, base+"/notify", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, _ := do(t, c, req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST /notify: status %d, want 403", resp.StatusCode)
	}
	for _, path := range []string{"/jobs/0123456789ab", "/jobs/nope"} {
		if resp, _ := get(t, ctx, c, base+path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	base := startDemo(t, testConfig())
	ctx := testContext(t)
	s := connect(t, ctx, nil, base+"/events", "")
	a := decode[metricsData](t, next(t, s, "metrics"))
	b := decode[metricsData](t, next(t, s, "metrics"))
	if b.N != a.N+1 || b.Time < a.Time {
		t.Errorf("metrics %+v then %+v: want consecutive points", a, b)
	}
	if b.Streams < 1 || b.Topics < 2 || b.RPS <= 0 || b.P99 <= 0 {
		t.Errorf("metrics %+v: want at least this stream and its two topics, and positive traffic", b)
	}
}

// progressValues reads a job's events until "done" and returns the
// progress values, each with its event ID.
func progressValues(t *testing.T, s *ssetest.Stream, id string) (values []int, ids []string) {
	t.Helper()
	for {
		ev := next(t, s, "progress", "done")
		d := decode[progressData](t, ev)
		if d.Job != id {
			t.Fatalf("event %+v of another job, want job %s", ev, id)
		}
		if ev.Type == "done" {
			if d.Progress != 100 {
				t.Errorf("done at %d%%", d.Progress)
			}
			return values, ids
		}
		values = append(values, d.Progress)
		ids = append(ids, ev.LastEventID)
	}
}

// checkSteps checks that values go up one percent at a time from first to 100.
func checkSteps(t *testing.T, values []int, first int) {
	t.Helper()
	for i, v := range values {
		if v != first+i {
			t.Fatalf("progress %v: want %d, %d, ... 100 with no gap and no duplicate", values, first, first+1)
		}
	}
	if len(values) == 0 || values[len(values)-1] != 100 {
		t.Fatalf("progress %v: want it to end at 100", values)
	}
}

func TestJobProgress(t *testing.T) {
	t.Parallel()
	base := startDemo(t, testConfig())
	ctx := testContext(t)
	// As the page does: take a position, start the job, then open a stream
	// with its topic that resumes from the position, so that it misses none
	// of the job's events.
	pos := position(t, ctx, base)
	j := startJob(t, ctx, nil, base)
	if j.Progress != 0 || j.Done {
		t.Errorf("new job %+v", j)
	}
	s := connect(t, ctx, nil, base+"/events?topic="+j.Topic+"&lastEventId="+url.QueryEscape(pos), "")
	values, _ := progressValues(t, s, j.ID)
	checkSteps(t, values, 0)

	resp, body := get(t, ctx, nil, base+"/jobs/"+j.ID)
	var st jobState
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || !st.Done || st.Progress != 100 {
		t.Errorf("GET /jobs/%s after done: status %d: %s", j.ID, resp.StatusCode, body)
	}
}

// TestJobResume is what the page does on reload: a new stream with
// ?lastEventId= continues exactly after the last progress event seen.
func TestJobResume(t *testing.T) {
	t.Parallel()
	base := startDemo(t, testConfig())
	ctx := testContext(t)
	pos := position(t, ctx, base)
	j := startJob(t, ctx, nil, base)
	first := connect(t, ctx, nil, base+"/events?topic="+j.Topic+"&lastEventId="+url.QueryEscape(pos), "")
	var last ssetest.Event
	for {
		last = next(t, first, "progress")
		if decode[progressData](t, last).Progress == 30 {
			break
		}
	}
	first.Close()

	s := connect(t, ctx, nil, base+"/events?topic="+j.Topic+"&lastEventId="+url.QueryEscape(last.LastEventID), "")
	values, _ := progressValues(t, s, j.ID)
	checkSteps(t, values, 31)
}

// TestResetAfterRestart: an ID from another process lifetime gets the
// reset event, whose reason the page shows before reloading job states.
func TestResetAfterRestart(t *testing.T) {
	t.Parallel()
	base := startDemo(t, testConfig())
	ctx := testContext(t)
	s := connect(t, ctx, nil, base+"/events?lastEventId=00000000-7", "")
	ev, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "sse-reset" || !strings.Contains(ev.Data, "unknown-id") || ev.LastEventID == "" {
		t.Errorf("got %+v, want a reset event with reason unknown-id and an id", ev)
	}
}

func TestJobLimit(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.jobStep = time.Hour // the jobs stay running until shutdown
	base := startDemo(t, cfg)
	ctx := testContext(t)
	for range maxRunningJobs {
		startJob(t, ctx, nil, base)
	}
	if resp, _ := post(t, ctx, http.DefaultClient, base+"/jobs", nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("one job too many: status %d, want 429", resp.StatusCode)
	}
}

// TestStreamOutlivesServerTimeouts checks that the server's Read and Write
// timeouts, which bound ordinary requests, do not end an event stream.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	t.Parallel()
	d, err := newDemo(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stopWork)
	srv := newServer(d)
	srv.ReadTimeout = 300 * time.Millisecond
	srv.WriteTimeout = 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	ctx := testContext(t)
	c := newClient(t)
	login(t, ctx, c, base, "alice")
	s := connect(t, ctx, c, base+"/events", "")
	time.Sleep(time.Second)
	id := notify(t, ctx, c, base, "me")
	if ev := next(t, s, "notification"); ev.LastEventID != id {
		t.Errorf("got %+v, want notification %s", ev, id)
	}
}

// TestShutdownEndsStreams checks that run returns promptly with a stream
// open and a job running, and that the stream then ends cleanly.
func TestShutdownEndsStreams(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := testConfig()
	cfg.jobStep = time.Hour
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, cfg) }()
	tctx := testContext(t)
	base := "http://" + ln.Addr().String()
	s := connect(t, tctx, nil, base+"/events", "")
	startJob(t, tctx, nil, base)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(shutdownTimeout):
		t.Fatal("run did not return")
	}
	for {
		ev, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil || ev.Type != "metrics" && ev.Type != "progress" {
			t.Fatalf("after shutdown: got %+v, %v; want io.EOF", ev, err)
		}
	}
}

func TestPageURL(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"127.0.0.1:8080", "http://127.0.0.1:8080/"},
		{"0.0.0.0:8080", "http://localhost:8080/"},
		{"[::]:8080", "http://localhost:8080/"},
		{"[::1]:9000", "http://[::1]:9000/"},
	}
	for _, tt := range tests {
		addr, err := net.ResolveTCPAddr("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := pageURL(addr); got != tt.want {
			t.Errorf("pageURL(%s) = %s, want %s", tt.addr, got, tt.want)
		}
	}
}
