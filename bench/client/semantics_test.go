package client

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	ld "github.com/launchdarkly/eventsource"
	r3 "github.com/r3labs/sse/v2"
	"github.com/ssekit/ssekit/core/sseclient"
	gosse "github.com/tmaxmax/go-sse"
	"gopkg.in/cenkalti/backoff.v1"
)

// TestPeerSemantics records what each client does with two things an
// ssekit hub relies on, so that docs/client.md's comparison stays true:
// a frame with an id and no data (the hub's opening position), which a
// browser does not dispatch, and a 204 No Content, which tells a browser
// to stop for good.
func TestPeerSemantics(t *testing.T) {
	type behaviour struct {
		idOnlyDispatched   bool // an "id: 1" frame without data came out as an event
		reconnectsAfterEnd bool // a stream the server ends cleanly is reopened
		stopsOn204         bool // a 204 ends it with no further request
	}
	want := map[string]behaviour{
		"ssekit":       {idOnlyDispatched: false, reconnectsAfterEnd: true, stopsOn204: true},
		"go-sse":       {idOnlyDispatched: true, reconnectsAfterEnd: true, stopsOn204: true},
		"r3labs":       {idOnlyDispatched: true, reconnectsAfterEnd: false, stopsOn204: false},
		"launchdarkly": {idOnlyDispatched: true, reconnectsAfterEnd: true, stopsOn204: false},
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			if got := idOnlyDispatched(t, name); got != w.idOnlyDispatched {
				t.Errorf("an id without data dispatched: %v, want %v", got, w.idOnlyDispatched)
			}
			if got := reconnectsAfterEnd(t, name); got != w.reconnectsAfterEnd {
				t.Errorf("reconnects after the server ends the stream: %v, want %v", got, w.reconnectsAfterEnd)
			}
			if got := stopsOn204(t, name); got != w.stopsOn204 {
				t.Errorf("stops on 204: %v, want %v", got, w.stopsOn204)
			}
		})
	}
}

// idOnlyDispatched streams "id: 1" alone, then an event with data "a",
// and reports whether the client delivered anything before "a".
func idOnlyDispatched(t *testing.T, name string) bool {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "id: 1\n\ndata: a\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	data := collectData(t, name, srv.URL, 2*time.Second, func(d []string) bool { return len(d) > 0 && d[len(d)-1] == "a" })
	if len(data) == 0 || data[len(data)-1] != "a" {
		t.Fatalf("%s: got %q, want the event a", name, data)
	}
	return len(data) > 1
}

// reconnectsAfterEnd ends a stream cleanly, as a server does when it
// rotates streams or shuts down, and reports whether the client came back.
func reconnectsAfterEnd(t *testing.T, name string) bool {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: a\n\n")
	}))
	defer srv.Close()
	collectData(t, name, srv.URL, time.Second, func(d []string) bool { return len(d) >= 2 })
	return requests.Load() >= 2
}

// stopsOn204 cuts a stream, then answers 204 to the reconnection, and
// reports whether the client made no third request within a second and a
// half. (A 204 to the very first request is another case: some clients
// do not retry a first connection at all.)
func stopsOn204(t *testing.T, name string) bool {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: a\n\n")
			w.(http.Flusher).Flush()
			c, _, _ := http.NewResponseController(w).Hijack() // no last chunk: a broken stream
			c.Close()
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	collectData(t, name, srv.URL, 1500*time.Millisecond, nil)
	if requests.Load() < 2 {
		t.Fatalf("%s: %d requests, want a reconnection", name, requests.Load())
	}
	return requests.Load() == 2
}

// collectData runs client name against url for at most d, or until done
// says so, with reconnections 10 ms apart, and returns the data of the
// events it delivered.
func collectData(t *testing.T, name, url string, d time.Duration, done func([]string) bool) []string {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var data []string
	add := func(s string) {
		data = append(data, s)
		if done != nil && done(data) {
			cancel()
		}
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	switch name {
	case "ssekit":
		c := sseclient.New(url, &sseclient.Options{HTTPClient: hc, InitialDelay: 10 * time.Millisecond})
		for ev, err := range c.Events(ctx) {
			if err != nil {
				break
			}
			add(ev.Data)
		}
	case "go-sse":
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		c := &gosse.Client{HTTPClient: hc, Backoff: gosse.Backoff{InitialInterval: 10 * time.Millisecond}}
		conn := c.NewConnection(req)
		conn.SubscribeToAll(func(ev gosse.Event) { add(ev.Data) })
		_ = conn.Connect()
	case "r3labs":
		c := r3.NewClient(url)
		c.Connection = hc
		b := backoff.NewConstantBackOff(10 * time.Millisecond)
		c.ReconnectStrategy = backoff.WithContext(b, ctx)
		_ = c.SubscribeRawWithContext(ctx, func(ev *r3.Event) { add(string(ev.Data)) })
	case "launchdarkly":
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		s, err := ld.SubscribeWithRequestAndOptions(req, ld.StreamOptionHTTPClient(hc),
			ld.StreamOptionInitialRetry(10*time.Millisecond),
			ld.StreamOptionErrorHandler(func(error) ld.StreamErrorHandlerResult { return ld.StreamErrorHandlerResult{} }))
		if err != nil { // the first response is checked before Subscribe returns
			<-ctx.Done()
			return data
		}
		func() {
			for {
				select {
				case ev := <-s.Events:
					add(ev.Data())
				case <-ctx.Done():
					return
				}
			}
		}()
		// Ended through the request's context (its Close can hang with an
		// event pending), then drained.
		go func() {
			for range s.Events {
			}
		}()
		s.Close()
	}
	return data
}
