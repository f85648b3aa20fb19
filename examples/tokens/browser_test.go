package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ssekit/ssekit/core/sseclient"
)

// chromiumPath is Debian's chromium (scripts/need-chromium.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium and returns the context of a tab in
// it, which ends after timeout. Without Chromium the test is skipped,
// except under CI=true, where it fails.
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		msg := fmt.Sprintf("Chromium is needed at %s (%v); scripts/need-chromium.sh installs it", chromiumPath, err)
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: " + msg)
		}
		t.Skip(msg)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(tab, 5*time.Second)
		defer cancel()
		if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("closing Chromium: %v", err)
		}
		cancelTab()
		cancelAlloc()
	})
	watchdog := time.AfterFunc(30*time.Second, cancelTab)
	err := chromedp.Do(tab)
	if !watchdog.Stop() {
		t.Fatalf("Chromium did not start within 30s: %v", err)
	}
	if err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, timeout)
	t.Cleanup(cancel)
	return ctx
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS polls a JavaScript expression until it is true, for at most
// within.
func waitJS(t *testing.T, ctx context.Context, within time.Duration, what, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("waited %v for %s (%s): last evaluation: %v", within, what, expr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jsEvent is an event as the page's parser dispatches it.
type jsEvent struct {
	Type        string `json:"type"`
	Data        string `json:"data"`
	LastEventID string `json:"lastEventId"`
}

// TestPageParser feeds the page's EventStreamParser streams cut into
// chunks at awkward places and checks that it dispatches what the Go
// client's parser, which follows the HTML standard, dispatches for the
// whole stream.
func TestPageParser(t *testing.T) {
	s := start(t, "nethttp", time.Millisecond)
	tab := browser(t, 30*time.Second)
	if err := chromedp.Do(tab, chromedp.Navigate(s.base+"/")); err != nil {
		t.Fatal(err)
	}
	cases := [][]string{
		{"data: a\r\ndata: b\r\n\r\n"},                               // CRLF
		{"data: a\rdata: b\r\r"},                                     // CR
		{"data: x\r", "\ndata: y\n\n"},                               // CRLF cut in two: one line break
		{"data: x\r", "\r", "\n", "\n"},                              // CR, then CRLF cut in two, then LF
		{"da", "ta: spl", "it\n", "\n"},                              // lines cut anywhere
		{": ping\ndata: c\n:\n\n"},                                   // comments
		{"event: token\nid: 7\nretry: 1500\ndata:  lead\n\n"},        // one space dropped, not two
		{"data\n\ndata:\ndata:\n\n"},                                 // empty data, then "\n"
		{"event: x\n\ndata: z\n\n"},                                  // no data: nothing, and the type resets
		{"id: 1\ndata: a\n\nid: b\x00c\ndata: b\n\nid\ndata: c\n\n"}, // an id with NUL is ignored; an empty one resets
		{"data:no-space\nfoo: bar\nevent\n\n"},                       // no space, an unknown field, a field without colon
		{"data: €\n", "\n", "data: never dispatched"},                // the end of the stream drops an unfinished event
	}
	for _, chunks := range cases {
		arg, _ := json.Marshal(chunks)
		got := eval[[]jsEvent](t, tab, `(() => {
			const out = [];
			const p = new EventStreamParser((ev) => out.push(ev));
			for (const c of `+string(arg)+`) p.push(c);
			return out;
		})()`)
		ref, err := sseclient.Parse([]byte(strings.Join(chunks, "")))
		if err != nil {
			t.Fatal(err)
		}
		want := make([]jsEvent, len(ref))
		for i, ev := range ref {
			want[i] = jsEvent{ev.Type, ev.Data, ev.LastEventID}
		}
		if !slices.Equal(got, want) {
			t.Errorf("chunks %q:\n got %+v\nwant %+v", chunks, got, want)
		}
	}
	if retry := eval[int](t, tab, `(() => { const p = new EventStreamParser(() => {}); p.push("retry: 1500\nretry: 1x\n"); return p.retry; })()`); retry != 1500 {
		t.Errorf("retry %d, want 1500 (and a malformed one ignored)", retry)
	}
}

// TestBrowser drives the page in Chromium with every router: it sends a
// prompt and receives the tokens in order, then done; and a second answer,
// stopped in the middle, stops the model on the server. Each router gets
// a browser of its own, closed before the server stops: http.Server's
// Shutdown waits up to 5s for connections that Chromium opened ahead and
// never used.
func TestBrowser(t *testing.T) {
	const prompt = "stream me\nsome  tokens, über-quickly"
	want := Tokens(prompt)
	for _, router := range routerNames() {
		t.Run(router, func(t *testing.T) {
			s := start(t, router, 2*time.Millisecond)
			tab := browser(t, time.Minute)
			if err := chromedp.Do(tab, chromedp.Navigate(s.base+"/")); err != nil {
				t.Fatal(err)
			}
			arg, _ := json.Marshal(prompt)
			eval[bool](t, tab, `document.getElementById('prompt').value = `+string(arg)+`; document.getElementById('send').click(); true`)
			waitJS(t, tab, 10*time.Second, "the answer", `tokensState.done !== null || tokensState.error !== null`)
			if err := eval[any](t, tab, `tokensState.error`); err != nil {
				t.Fatalf("the page: %v", err)
			}
			if got := eval[[]string](t, tab, `tokensState.tokens`); !slices.Equal(got, want) {
				t.Errorf("tokens %q, want %q", got, want)
			}
			if got := eval[string](t, tab, `document.getElementById('answer').textContent`); got != strings.Join(want, "") {
				t.Errorf("the page shows %q, want %q", got, strings.Join(want, ""))
			}
			if n := eval[int](t, tab, `tokensState.done.tokens`); n != len(want) {
				t.Errorf("done says %d tokens, want %d", n, len(want))
			}

			// A long answer, stopped after a few tokens.
			long, _ := json.Marshal(strings.Repeat("word ", 10000)) // 20s of tokens
			eval[bool](t, tab, `document.getElementById('prompt').value = `+string(long)+`; document.getElementById('send').click(); true`)
			waitJS(t, tab, 10*time.Second, "a few tokens", `tokensState.tokens.length >= 3`)
			eval[bool](t, tab, `document.getElementById('stop').click(); true`)
			waitJS(t, tab, 10*time.Second, "the page to stop", `!tokensState.running`)
			waitFor(t, 5*time.Second, "the model to stop after the page stopped reading", func() bool { return s.model.Running() == 0 })
			if got := eval[string](t, tab, `document.getElementById('status').textContent`); got != "stopped" {
				t.Errorf("status %q after Stop, want stopped", got)
			}
		})
	}
}
