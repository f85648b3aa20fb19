package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/ssetest"
)

// startDemo runs the demo on a free port until the test ends, and checks
// that it then shuts down cleanly.
func startDemo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln) }()
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

func connect(t *testing.T, ctx context.Context, url string) *ssetest.Stream {
	t.Helper()
	s, err := ssetest.Connect(ctx, nil, url, "")
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// post sends a /publish request and returns the status and the body.
func post(t *testing.T, ctx context.Context, base, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/publish", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// publishJSON posts text as JSON and returns the event id.
func publishJSON(t *testing.T, ctx context.Context, base, text string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	code, resp := post(t, ctx, base, "application/json", string(body))
	if code != http.StatusOK {
		t.Fatalf("publish: status %d: %s", code, resp)
	}
	var r struct{ ID string }
	if err := json.Unmarshal([]byte(resp), &r); err != nil || r.ID == "" {
		t.Fatalf("publish: response %q: want {\"id\": ...}", resp)
	}
	return r.ID
}

// nextChat reads the next event, which must be a chat event, and returns
// its data.
func nextChat(t *testing.T, s *ssetest.Stream) (chatData, ssetest.Event) {
	t.Helper()
	ev, err := s.Next()
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	if ev.Type != topicChat {
		t.Fatalf("got event %+v, want type %q", ev, topicChat)
	}
	var d chatData
	if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
		t.Fatalf("chat data %q: %v", ev.Data, err)
	}
	if _, err := time.Parse(time.RFC3339, d.At); err != nil {
		t.Errorf("chat data %q: at: %v", ev.Data, err)
	}
	return d, ev
}

func TestPage(t *testing.T) {
	base := startDemo(t)
	ctx := testContext(t)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET /: Content-Type %q", ct)
	}
	for _, want := range []string{"<title>ssekit demo</title>", "new EventSource(", "/events?topic=clock&topic=chat", "sse-reset"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET /: page does not contain %q", want)
		}
	}

	resp, err = http.Get(base + "/nothing-here")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing-here: status %d, want 404", resp.StatusCode)
	}
}

func TestChat(t *testing.T) {
	base := startDemo(t)
	ctx := testContext(t)
	s := connect(t, ctx, base+"/events?topic=chat")

	id := publishJSON(t, ctx, base, "hello, <world> ✓")
	d, ev := nextChat(t, s)
	if d.Text != "hello, <world> ✓" {
		t.Errorf("text %q, want %q", d.Text, "hello, <world> ✓")
	}
	if ev.LastEventID != id {
		t.Errorf("event id %q, want the id /publish returned, %q", ev.LastEventID, id)
	}

	code, body := post(t, ctx, base, "application/x-www-form-urlencoded", url.Values{"text": {"  from a form\n"}}.Encode())
	if code != http.StatusOK {
		t.Fatalf("form publish: status %d: %s", code, body)
	}
	if d, _ := nextChat(t, s); d.Text != "from a form" {
		t.Errorf("text %q, want %q", d.Text, "from a form")
	}
}

func TestPublishRejects(t *testing.T) {
	base := startDemo(t)
	ctx := testContext(t)
	tests := []struct {
		name, contentType, body string
		want                    int
	}{
		{"empty", "application/json", `{"text":"   "}`, http.StatusBadRequest},
		{"missing", "application/json", `{"txt":"hi"}`, http.StatusBadRequest},
		{"bad json", "application/json", `{"text":`, http.StatusBadRequest},
		{"too long", "application/json", `{"text":"` + strings.Repeat("x", maxText+1) + `"}`, http.StatusRequestEntityTooLarge},
		{"body too large", "application/x-www-form-urlencoded", "text=" + strings.Repeat("x", maxBody), http.StatusRequestEntityTooLarge},
		{"media type", "text/plain", "hi", http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		if code, body := post(t, ctx, base, tt.contentType, tt.body); code != tt.want {
			t.Errorf("%s: status %d (%s), want %d", tt.name, code, strings.TrimSpace(body), tt.want)
		}
	}
	// Exactly maxText bytes is fine.
	publishJSON(t, ctx, base, strings.Repeat("é", maxText/2))
}

func TestUnknownTopic(t *testing.T) {
	base := startDemo(t)
	ctx := testContext(t)
	for _, q := range []string{"topic=nope", "topic=clock&topic=nope"} {
		_, err := ssetest.Connect(ctx, nil, base+"/events?"+q, "")
		var se *ssetest.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusNotFound {
			t.Errorf("/events?%s: got %v, want status 404", q, err)
		}
	}
}

func TestClock(t *testing.T) {
	base := startDemo(t)
	ctx := testContext(t)
	s := connect(t, ctx, base+"/events?topic=clock")
	ev, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != topicClock || ev.LastEventID == "" {
		t.Fatalf("got %+v, want a clock event with an id", ev)
	}
	var d clockData
	if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
		t.Fatalf("clock data %q: %v", ev.Data, err)
	}
	if _, err := time.Parse(time.RFC3339, d.Time); err != nil || d.N < 1 {
		t.Errorf("clock data %q: want an RFC 3339 time and n >= 1", ev.Data)
	}
}

// TestResume is what the page does on reload: a new connection with
// ?lastEventId= gets the events published after that one.
func TestResume(t *testing.T) {
	base := startDemo(t)
	ctx := testContext(t)
	first := publishJSON(t, ctx, base, "one")
	publishJSON(t, ctx, base, "two")
	publishJSON(t, ctx, base, "three")
	s := connect(t, ctx, base+"/events?topic=chat&lastEventId="+url.QueryEscape(first))
	for _, want := range []string{"two", "three"} {
		if d, _ := nextChat(t, s); d.Text != want {
			t.Errorf("replayed %q, want %q", d.Text, want)
		}
	}
}

// TestStreamOutlivesServerTimeouts checks that the server's Read and Write
// timeouts, which bound ordinary requests, do not end an event stream.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	d, err := newDemo()
	if err != nil {
		t.Fatal(err)
	}
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
	s := connect(t, ctx, base+"/events?topic=chat")
	time.Sleep(time.Second)
	publishJSON(t, ctx, base, "still here")
	if d, _ := nextChat(t, s); d.Text != "still here" {
		t.Errorf("text %q", d.Text)
	}
}

// TestShutdownEndsStreams checks that run returns promptly with a stream
// open, and that the stream then ends cleanly.
func TestShutdownEndsStreams(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln) }()
	tctx := testContext(t)
	s := connect(t, tctx, "http://"+ln.Addr().String()+"/events?topic=chat")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(shutdownTimeout):
		t.Fatal("run did not return")
	}
	if ev, err := s.Next(); err != io.EOF {
		t.Fatalf("after shutdown: got %+v, %v; want io.EOF", ev, err)
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
