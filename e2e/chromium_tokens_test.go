package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ssekit/ssekit/core/sse"
)

// tokensPage is the page of examples/tokens: it POSTs a prompt and reads
// the per-request stream that answers it with fetch, a ReadableStream and
// its own parser, recording what it got in tokensState.
const tokensPage = "../examples/tokens/index.html"

// TestChromiumTokensThroughNginx streams a model's tokens to Chromium
// through nginx with proxy_buffering on (its default): a POST answered by
// a per-request stream (Hub.Stream), read by the example's page with
// fetch and a ReadableStream. The upstream sends the first token and then
// holds the stream open until the test has seen that token in the page,
// so a proxy that held it back would never let the test go on: no timing
// threshold decides.
//
// On loopback, with a client that reads, nginx's buffering alone passes
// on at once what it has read; its gzip filter does not: with gzip on for
// text/event-stream, only X-Accel-Buffering: no (which nginx honours by
// turning buffering off for the response, and flushing each chunk through
// gzip) lets the first token out before the stream ends. The control,
// which makes nginx ignore the header, proves it: its page gets nothing
// while the upstream holds the stream, until nginx gives up on the silent
// upstream.
func TestChromiumTokensThroughNginx(t *testing.T) {
	nginx := needNginx(t)
	browser := startChromium(t)
	const gzip = "\t\t\tgzip on;\n\t\t\tgzip_types text/event-stream;\n\t\t\tgzip_min_length 0;\n"
	t.Run("Buffering", func(t *testing.T) { testTokensThroughNginx(t, nginx, browser, "", false) })
	t.Run("BufferingGzip", func(t *testing.T) { testTokensThroughNginx(t, nginx, browser, gzip, false) })
	t.Run("ControlGzipIgnoringHeader", func(t *testing.T) {
		testTokensThroughNginx(t, nginx, browser, gzip+"\t\t\tproxy_ignore_headers X-Accel-Buffering;\n", true)
	})
}

// testTokensThroughNginx runs TestChromiumTokensThroughNginx with extra in
// nginx's location block. With control, nginx must hold the first token
// back until it ends the stream (the hub sends no heartbeat within nginx's
// read timeout then); otherwise the page must get each token at once (the
// hub's heartbeats keep nginx from cutting the held stream).
func testTokensThroughNginx(t *testing.T, nginx string, browser context.Context, extra string, control bool) {
	page, err := os.ReadFile(tokensPage)
	if err != nil {
		t.Fatal(err)
	}
	tokens := []string{"Hello", ",", " world", "\n", "\n", " again", "."}
	opts := sse.Options{Logger: slog.New(slog.DiscardHandler), HeartbeatInterval: nginxReadTimeout / 4}
	if control {
		opts.HeartbeatInterval = time.Minute
	}
	hub, err := sse.NewHub(opts)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{}) // closed once the page has the first token
	held := make(chan struct{})    // closed when the upstream holds the stream after the first token
	ended := make(chan struct{})   // closed when the stream has ended
	accel := make(chan string, 1)  // the stream's X-Accel-Buffering header
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("POST /tokens", func(w http.ResponseWriter, r *http.Request) {
		var q struct{ Prompt string }
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer close(ended)
		_ = hub.Stream(w, r, func(s *sse.Stream) error {
			for i, tok := range tokens {
				if err := s.Send(sse.Event{Type: "token", Data: []byte(tok)}); err != nil {
					return err
				}
				if i == 0 {
					close(held)
					select {
					case <-release:
					case <-s.Context().Done():
						return s.Context().Err()
					}
				}
			}
			return s.Send(sse.Event{Type: "done", Data: []byte(`{"tokens":7}`)})
		})
		accel <- w.Header().Get("X-Accel-Buffering")
	})
	upstream := httptest.NewServer(mux)
	t.Cleanup(upstream.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("hub.Shutdown: %v", err)
		}
	})
	base, errorLog := startNginx(t, nginx, upstream.Listener.Addr().String(), extra)

	tab := openTab(t, browser, 30*time.Second)
	navigateTab(t, tab, base+"/")
	evalJS[bool](t, tab, `document.getElementById('send').click(); true`)
	wait, cancel := context.WithTimeout(tab, 10*time.Second)
	defer cancel()
	waitUntil(t, wait, "the upstream to send the first token", func() bool { return isClosed(held) })

	if control {
		// Until nginx gives up on the silent upstream, the page gets nothing.
		waitUntil(t, wait, "nginx to end the held stream", func() bool {
			if n := evalJS[int](t, tab, `tokensState.tokens.length`); n > 0 && !isClosed(ended) {
				t.Fatal("the control's page got the first token while the upstream held the stream: nginx did not buffer, so the test cannot tell")
			}
			return isClosed(ended)
		})
		return
	}

	took := waitJSOr(t, wait, `tokensState.tokens.length > 0 || tokensState.error !== null`,
		"the page did not get the first token while the upstream held the stream open after it: nginx (or the page) buffers the stream")
	if err := evalJS[any](t, tab, `tokensState.error`); err != nil {
		t.Fatalf("the page: %v", err)
	}
	if got := evalJS[[]string](t, tab, `tokensState.tokens`); !slices.Equal(got, tokens[:1]) {
		t.Fatalf("the page got %q while the stream was held, want only the first token", got)
	}
	if running := evalJS[bool](t, tab, `tokensState.running && tokensState.done === null`); !running {
		t.Fatal("the page's stream is not open while the upstream holds it")
	}
	t.Logf("the first token reached the page through nginx %v after the upstream sent it", took.Round(time.Millisecond))
	close(release)

	waitJSOr(t, wait, `!tokensState.running`, "the rest of the answer did not come")
	if err := evalJS[any](t, tab, `tokensState.error`); err != nil {
		t.Fatalf("the page: %v", err)
	}
	if got := evalJS[[]string](t, tab, `tokensState.tokens`); !slices.Equal(got, tokens) {
		t.Errorf("the page got tokens %q, want %q", got, tokens)
	}
	if n := evalJS[int](t, tab, `tokensState.done ? tokensState.done.tokens : -1`); n != len(tokens) {
		t.Errorf("done says %d tokens, want %d", n, len(tokens))
	}
	if h := <-accel; h != "no" {
		t.Errorf("the stream's X-Accel-Buffering is %q, want no", h)
	}
	for _, line := range nginxErrors(t, errorLog) {
		t.Errorf("nginx logged: %s", line)
	}
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitJSOr polls a JavaScript expression until it is true and returns how
// long that took; when ctx ends first, the test fails with msg.
func waitJSOr(t *testing.T, ctx context.Context, expr, msg string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return time.Since(start)
		}
		if ctx.Err() != nil {
			t.Fatalf("%s (waited %v for %s; last evaluation: %v)", msg, time.Since(start).Round(time.Millisecond), expr, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
