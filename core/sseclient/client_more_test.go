package sseclient_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sseclient"
)

// TestPrepare mints a fresh ticket for every request, and stops the client
// when it cannot.
func TestPrepare(t *testing.T) {
	s := newServer(t, stream("id: 1\ndata: a\n\n"), stream("data: b\n\n"), hold("data: c\n\n"))
	var n atomic.Int32
	opts := fast()
	opts.Prepare = func(r *http.Request) error {
		q := r.URL.Query()
		q.Set("ticket", "t"+strconv.Itoa(int(n.Add(1))))
		r.URL.RawQuery = q.Encode()
		r.Header.Set("X-Attempt", strconv.Itoa(int(n.Load())))
		return nil
	}
	collect(t, sseclient.New(s.URL+"/events?topic=x", opts), 3)
	s.mu.Lock()
	var tickets []string
	for _, r := range s.requests {
		tickets = append(tickets, r.URL.RawQuery)
	}
	s.mu.Unlock()
	if want := []string{"ticket=t1&topic=x", "ticket=t2&topic=x", "ticket=t3&topic=x"}; !slices.Equal(tickets, want) {
		t.Errorf("queries %q, want %q", tickets, want)
	}
	if h := s.header("X-Attempt"); !slices.Equal(h, []string{"1", "2", "3"}) {
		t.Errorf("X-Attempt %q", h)
	}

	boom := errors.New("no ticket")
	opts.Prepare = func(*http.Request) error { return boom }
	if got := collect(t, sseclient.New(s.URL, opts), -1); len(got) != 1 || got[0].err != boom {
		t.Errorf("got %v, want the Prepare error", got)
	}
}

// TestCookieJar keeps a session cookie across reconnections through the
// http.Client's Jar.
func TestCookieJar(t *testing.T) {
	s := newServer(t,
		func(w http.ResponseWriter, r *http.Request) {
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "s1"})
			stream("data: a\n\n")(w, r)
		},
		hold("data: b\n\n"))
	jar, _ := cookiejar.New(nil)
	opts := fast()
	opts.HTTPClient = &http.Client{Jar: jar}
	collect(t, sseclient.New(s.URL, opts), 2)
	if h := s.header("Cookie"); !slices.Equal(h, []string{"-", "session=s1"}) {
		t.Errorf("Cookie headers %q", h)
	}
}

func TestHooks(t *testing.T) {
	s := newServer(t, stream("id: 1\ndata: a\n\ndata: b\n\n"), hold("data: c\n\n"))
	var log []string
	opts := fast()
	opts.OnConnect = func(ci sseclient.ConnectInfo) {
		log = append(log, "connect "+ci.Response.Status+" last="+ci.LastEventID)
	}
	opts.OnDisconnect = func(di sseclient.DisconnectInfo) {
		log = append(log, "disconnect "+strconv.Itoa(di.Events)+" last="+di.LastEventID+" err="+errString(di.Err))
		if di.Duration <= 0 {
			t.Errorf("Duration %v", di.Duration)
		}
	}
	opts.OnRetry = func(ri sseclient.RetryInfo) {
		log = append(log, "retry "+strconv.Itoa(ri.Retry)+" err="+errString(ri.Err))
	}
	collect(t, sseclient.New(s.URL, opts), 3)
	want := []string{
		"connect 200 OK last=",
		"disconnect 2 last=1 err=EOF",
		"retry 1 err=EOF",
		"connect 200 OK last=1",
		"disconnect 1 last=1 err=<nil>",
	}
	if !slices.Equal(log, want) {
		t.Errorf("hooks\n%s\nwant\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestBreakEndsStream checks that leaving the loop closes the stream.
func TestBreakEndsStream(t *testing.T) {
	testkit.CheckGoroutines(t)
	gone := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hold("data: a\n\n")(w, r)
		close(gone)
	})
	collect(t, sseclient.New(s.URL, fast()), 1)
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not see the client go")
	}
}

// TestResumeAcrossCalls checks that a Client keeps its last event ID from
// one call of Events to the next, and that only one call runs at a time.
func TestResumeAcrossCalls(t *testing.T) {
	s := newServer(t, hold("id: 7\ndata: a\n\n"), hold("id: 8\ndata: b\n\n"))
	c := sseclient.New(s.URL, fast())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, err := range c.Events(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		// A second call while the first runs is refused.
		got := all(c.Events(ctx))
		if len(got) != 1 || got[0].err == nil || !strings.Contains(got[0].err.Error(), "already running") {
			t.Errorf("concurrent call: %v", got)
		}
		break
	}
	if id := c.LastEventID(); id != "7" {
		t.Errorf("LastEventID() = %q", id)
	}
	collect(t, c, 1)
	if h := s.header("Last-Event-ID"); !slices.Equal(h, []string{"-", "7"}) {
		t.Errorf("Last-Event-ID %q", h)
	}
}

func TestRun(t *testing.T) {
	s := newServer(t,
		hold("id: 1\ndata: a\n\nid: 2\nevent: sse-reset\ndata: {\"reason\":\"dropped\"}\n\nid: 3\ndata: b\n\n"),
		hold("id: 4\ndata: c\n\n"),
		status(204, ""),
	)
	c := sseclient.New(s.URL, fast())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var data []string
	onEvent := func(ev sseclient.Event) error { data = append(data, ev.Data); return nil }
	// Without onReset, Run returns the reset.
	err := c.Run(ctx, onEvent, nil)
	var reset *sseclient.ResetError
	if !errors.As(err, &reset) || reset.Reason != "dropped" || !slices.Equal(data, []string{"a"}) {
		t.Fatalf("Run = %v after %q", err, data)
	}
	// Run again: it resumes after the reset event.
	stop := errors.New("stop")
	var resets int
	err = c.Run(ctx, func(ev sseclient.Event) error {
		data = append(data, ev.Data)
		if ev.Data == "c" {
			return stop
		}
		return nil
	}, func(*sseclient.ResetError) error { resets++; return nil })
	if err != stop || !slices.Equal(data, []string{"a", "c"}) || resets != 0 {
		t.Fatalf("Run = %v after %q", err, data)
	}
	if h := s.header("Last-Event-ID"); !slices.Equal(h, []string{"-", "2"}) {
		t.Errorf("Last-Event-ID %q", h)
	}
	// 204 ends Run without an error.
	if err := c.Run(ctx, onEvent, nil); err != nil {
		t.Errorf("Run after 204 = %v", err)
	}
}

// TestDo reads a streaming API's answer to a POST, once.
func TestDo(t *testing.T) {
	testkit.CheckGoroutines(t)
	s := newServer(t,
		func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
				http.Error(w, "want a JSON POST", 400)
				return
			}
			stream("data: {\"token\":\"Hel\"}\n\n", "data: {\"token\":\"lo\"}\n\n", "data: [DONE]\n\n")(w, r)
		},
		status(500, "overloaded"),
		func(w http.ResponseWriter, r *http.Request) { // breaks mid-event
			stream("data: a\n\ndata: b")(w, r)
			c, _, _ := http.NewResponseController(w).Hijack()
			c.Close()
		},
		status(204, ""),
	)
	post := func() *http.Request {
		r, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+"/v1/complete", strings.NewReader(`{"prompt":"hi"}`))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	var tokens []string
	for ev, err := range sseclient.Do(post(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, ev.Data)
	}
	if want := []string{`{"token":"Hel"}`, `{"token":"lo"}`, "[DONE]"}; !slices.Equal(tokens, want) {
		t.Errorf("tokens %q, want %q", tokens, want)
	}
	if s.bodies[0] != `{"prompt":"hi"}` || s.header("Accept")[0] != "text/event-stream" {
		t.Errorf("request body %q, Accept %q", s.bodies[0], s.header("Accept"))
	}

	got := all(sseclient.Do(post(), nil))
	if len(got) != 1 {
		t.Fatalf("500: got %v", got)
	}
	wantStatus(500, "overloaded")(t, got[0].err)

	got = all(sseclient.Do(post(), nil))
	if len(got) != 2 || got[0] != (result{ev: msg("a", "")}) || got[1].err == nil || got[1].err == io.EOF {
		t.Errorf("broken stream: got %v, want an event then an error", got)
	}

	if got := all(sseclient.Do(post(), nil)); len(got) != 0 {
		t.Errorf("204: got %v", got)
	}
	if n := s.count(); n != 4 {
		t.Errorf("%d requests, want 4 (Do never retries)", n)
	}
}

func TestDoReadTimeout(t *testing.T) {
	s := newServer(t, hold("data: a\n\n"))
	r, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL, nil)
	got := all(sseclient.Do(r, &sseclient.Options{ReadTimeout: 100 * time.Millisecond}))
	if len(got) != 2 || got[1].err != sseclient.ErrReadTimeout {
		t.Errorf("got %v, want an event then ErrReadTimeout", got)
	}
}

// TestFromRequest sends the body again with every reconnection.
func TestFromRequest(t *testing.T) {
	s := newServer(t, stream("id: 1\ndata: a\n\n"), hold("data: b\n\n"))
	r, _ := http.NewRequest(http.MethodPost, s.URL, strings.NewReader(`{"subscribe":["x"]}`))
	collect(t, sseclient.FromRequest(r, fast()), 2)
	if !slices.Equal(s.bodies, []string{`{"subscribe":["x"]}`, `{"subscribe":["x"]}`}) {
		t.Errorf("bodies %q", s.bodies)
	}
	if h := s.header("Last-Event-ID"); !slices.Equal(h, []string{"-", "1"}) {
		t.Errorf("Last-Event-ID %q", h)
	}

	r, _ = http.NewRequest(http.MethodPost, s.URL, io.NopCloser(strings.NewReader("x")))
	if got := all(sseclient.FromRequest(r, nil).Events(t.Context())); len(got) != 1 || !strings.Contains(got[0].err.Error(), "GetBody") {
		t.Errorf("a body without GetBody: %v", got)
	}
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"ftp://example.com/x", "://nope", "example.com/events"} {
		got := all(sseclient.New(u, nil).Events(t.Context()))
		if len(got) != 1 || got[0].err == nil || !strings.HasPrefix(got[0].err.Error(), "sseclient: ") {
			t.Errorf("%q: got %v", u, got)
		}
	}
	var ue *url.Error
	got := all(sseclient.New("http://[::1", nil).Events(t.Context()))
	if len(got) != 1 || !errors.As(got[0].err, &ue) {
		t.Errorf("got %v", got)
	}
}

// TestUntrustedCertificate stops at once: a certificate that does not
// verify is a configuration error, not a network failure.
func TestUntrustedCertificate(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	defer srv.Close()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake failure
	got := all(sseclient.New(srv.URL, fast()).Events(t.Context()))
	var cert *tls.CertificateVerificationError
	if len(got) != 1 || !errors.As(got[0].err, &cert) {
		t.Fatalf("got %v, want a certificate error", got)
	}
}
