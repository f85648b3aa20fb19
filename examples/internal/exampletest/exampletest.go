// Package exampletest checks the small example programs the same way:
// each main_test.go hands its run function to Check.
package exampletest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/ssetest"
)

// Check starts an example's run on a loopback listener, receives a
// published event (POST /publish?topic=alerts&data=hello) and a tick on
// "news", and checks that cancelling run's context ends the streams
// cleanly, with a retry hint, and makes run return promptly.
func Check(t *testing.T, run func(ctx context.Context, ln net.Listener) error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alerts, err := ssetest.Connect(cctx, nil, base+"/events?topic=alerts", "")
	if err != nil {
		t.Fatal(err)
	}
	defer alerts.Close()
	news, err := ssetest.Connect(cctx, nil, base+"/events?topic=news", "")
	if err != nil {
		t.Fatal(err)
	}
	defer news.Close()

	req, _ := http.NewRequestWithContext(cctx, http.MethodPost, base+"/publish?topic=alerts&data=hello", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /publish: %s", resp.Status)
	}
	if ev, err := alerts.Next(); err != nil || ev.Data != "hello" || ev.LastEventID == "" {
		t.Fatalf("got %+v, %v; want the published event", ev, err)
	}
	if ev, err := news.Next(); err != nil || ev.Data == "" {
		t.Fatalf("got %+v, %v; want a tick on news", ev, err)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("run did not return within 3s of its context's end")
	}
	for _, st := range []*ssetest.Stream{alerts, news} {
		err := drain(st) // a tick may still have been queued
		if !errors.Is(err, io.EOF) {
			t.Errorf("stream: %v, want a clean end (io.EOF)", err)
		}
		if _, ok := st.Parser().Retry(); !ok {
			t.Error("the stream ended without a retry hint")
		}
	}
}

// CheckRoom starts a room example's run on a loopback listener and uses
// it as a signed-in user of its README would: a stream of
// /rooms/{room}/events is refused (401) without the "session" cookie, and
// with the cookie of Session gets what POST /rooms/{room}/messages
// publishes to that room, and nothing of another room. A stream that
// comes back with Last-Event-ID, as a browser does, gets what was
// published while it was away. Cancelling run's context then ends the
// streams cleanly, with a retry hint, and makes run return promptly.
func CheckRoom(t *testing.T, run func(ctx context.Context, ln net.Listener) error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(cctx, http.MethodGet, base+"/rooms/lobby/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a stream without the session cookie: %s, want 401", resp.Status)
	}

	browser := &http.Client{Transport: cookieTransport(SessionCookie)}
	lobby, err := ssetest.Connect(cctx, browser, base+"/rooms/lobby/events", "")
	if err != nil {
		t.Fatal(err)
	}
	defer lobby.Close()
	kitchen, err := ssetest.Connect(cctx, browser, base+"/rooms/kitchen/events", "")
	if err != nil {
		t.Fatal(err)
	}
	defer kitchen.Close()
	post := func(room, text string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(cctx, http.MethodPost, base+"/rooms/"+room+"/messages", strings.NewReader(text))
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /rooms/%s/messages: %s", room, resp.Status)
		}
	}
	post("kitchen", "dinner")
	post("lobby", "hello")
	hello, err := lobby.Next()
	if err != nil || hello.Data != "hello" || hello.LastEventID == "" {
		t.Fatalf("lobby: got %+v, %v; want the lobby's message", hello, err)
	}
	if ev, err := kitchen.Next(); err != nil || ev.Data != "dinner" {
		t.Fatalf("kitchen: got %+v, %v; want the kitchen's message", ev, err)
	}

	// The lobby's stream drops; two messages are published meanwhile.
	lobby.Close()
	post("lobby", "while")
	post("lobby", "away")
	lobby, err = ssetest.Connect(cctx, browser, base+"/rooms/lobby/events", hello.LastEventID)
	if err != nil {
		t.Fatal(err)
	}
	defer lobby.Close()
	for _, want := range []string{"while", "away"} {
		if ev, err := lobby.Next(); err != nil || ev.Data != want {
			t.Fatalf("lobby, resumed after %s: got %+v, %v; want %q", hello.LastEventID, ev, err, want)
		}
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("run did not return within 3s of its context's end")
	}
	for _, st := range []*ssetest.Stream{lobby, kitchen} {
		if err := drain(st); !errors.Is(err, io.EOF) {
			t.Errorf("stream: %v, want a clean end (io.EOF)", err)
		}
		if _, ok := st.Parser().Retry(); !ok {
			t.Error("the stream ended without a retry hint")
		}
	}
}

// SessionCookie is the cookie of the session that the room examples know.
const SessionCookie = "session=demo-session"

// cookieTransport sends a cookie with every request, as a browser does.
type cookieTransport string

// RoundTrip sends r with the cookie, through http.DefaultTransport.
func (c cookieTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Cookie", string(c))
	return http.DefaultTransport.RoundTrip(r)
}

// drain reads st to its end and returns why it ended.
func drain(st *ssetest.Stream) error {
	for {
		if _, err := st.Next(); err != nil {
			return err
		}
	}
}
