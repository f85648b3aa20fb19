package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ssekit/ssekit/core/sseclient"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // no route listing
	os.Exit(m.Run())
}

// started is the example running with one router on a loopback listener.
type started struct {
	base  string // http://127.0.0.1:port
	model *Model
	stop  func() error // ends run's context and returns what run returned
}

// start runs the example with router on a loopback listener, with a model
// that takes delay for each token. The test fails if run does not return
// within 3s of stop, and stop is called when the test ends if it was not.
func start(t *testing.T, router string, delay time.Duration) *started {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &Model{Delay: delay}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, router, m) }()
	stopped, result := false, error(nil)
	stop := func() error {
		if stopped {
			return result
		}
		stopped = true
		cancel()
		select {
		case result = <-done:
		case <-time.After(3 * time.Second):
			t.Fatal("run did not return within 3s of its context's end")
		}
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return &started{base: "http://" + ln.Addr().String(), model: m, stop: stop}
}

// post sends a prompt to POST /tokens, as the page does.
func post(ctx context.Context, t *testing.T, base, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/tokens", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

// TestTokens reads the token stream of every router with the Go client's
// one-shot mode (sseclient.Do): the tokens of the answer in order, line
// breaks and leading spaces intact, then "done" with their count, and the
// end of the stream. The model then runs no more.
func TestTokens(t *testing.T) {
	for _, router := range routerNames() {
		t.Run(router, func(t *testing.T) {
			checkGoroutines(t)
			s := start(t, router, time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			const prompt = "stream me\nsome  tokens, über-quickly"
			var tokens []string
			var done []string
			for ev, err := range sseclient.Do(post(ctx, t, s.base, `{"prompt":"stream me\nsome  tokens, über-quickly"}`), nil) {
				if err != nil {
					t.Fatalf("after %d tokens: %v", len(tokens), err)
				}
				switch {
				case len(done) > 0:
					t.Fatalf("%q after done", ev.Type)
				case ev.Type == "token":
					tokens = append(tokens, ev.Data)
				case ev.Type == "done":
					done = append(done, ev.Data)
				default:
					t.Fatalf("unexpected event %+v", ev)
				}
			}
			want := Tokens(prompt)
			if !slices.Equal(tokens, want) {
				t.Errorf("tokens\n%q\nwant\n%q", tokens, want)
			}
			if !slices.Contains(want, "\n") || !slices.Contains(want, " ") {
				t.Errorf("the answer %q has no token that is a line break or a space alone: the test proves less than it says", want)
			}
			if wantDone := `{"tokens":` + strconv.Itoa(len(want)) + `}`; !slices.Equal(done, []string{wantDone}) {
				t.Errorf("done events %q, want one %s", done, wantDone)
			}
			if n := s.model.Running(); n != 0 {
				t.Errorf("%d generations still running after the stream ended", n)
			}
			if err := s.stop(); err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
}

// TestClientLeaves checks, with every router, that the model stops when
// its client goes away in the middle of the answer.
func TestClientLeaves(t *testing.T) {
	for _, router := range routerNames() {
		t.Run(router, func(t *testing.T) {
			checkGoroutines(t)
			s := start(t, router, 5*time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// 10 000 tokens, 50 s at 5 ms each: the client leaves long before.
			prompt := strings.Repeat("word ", 10000)
			rctx, leave := context.WithCancel(ctx)
			n := 0
			for ev, err := range sseclient.Do(post(rctx, t, s.base, `{"prompt":"`+prompt+`"}`), nil) {
				if err != nil {
					t.Fatalf("after %d tokens: %v", n, err)
				}
				if ev.Type != "token" {
					t.Fatalf("unexpected event %+v", ev)
				}
				if n++; n == 3 {
					if r := s.model.Running(); r != 1 {
						t.Fatalf("%d generations running while the client reads, want 1", r)
					}
					break // closes the response body
				}
			}
			leave()
			waitFor(t, 5*time.Second, "the model to stop after the client left", func() bool { return s.model.Running() == 0 })
			if err := s.stop(); err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
}

// TestShutdown checks, with every router, that run returns promptly while
// a stream is open: the hub ends the stream cleanly, so that the client
// sees its end with no error, and the model stops.
func TestShutdown(t *testing.T) {
	for _, router := range routerNames() {
		t.Run(router, func(t *testing.T) {
			checkGoroutines(t)
			s := start(t, router, 5*time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			prompt := strings.Repeat("word ", 10000)
			n := 0
			for ev, err := range sseclient.Do(post(ctx, t, s.base, `{"prompt":"`+prompt+`"}`), nil) {
				if err != nil {
					t.Fatalf("after %d tokens: %v", n, err)
				}
				if ev.Type != "token" {
					t.Fatalf("unexpected event %+v", ev)
				}
				if n++; n == 3 {
					if err := s.stop(); err != nil {
						t.Errorf("run: %v", err)
					}
				}
			}
			if n < 3 {
				t.Fatalf("the stream ended after %d tokens", n)
			}
			if r := s.model.Running(); r != 0 {
				t.Errorf("%d generations running after run returned", r)
			}
		})
	}
}

// TestPage checks that every router serves the page, and that a body
// that is not JSON is refused before any stream starts.
func TestPage(t *testing.T) {
	for _, router := range routerNames() {
		t.Run(router, func(t *testing.T) {
			checkGoroutines(t)
			s := start(t, router, time.Millisecond)
			resp, err := http.Get(s.base + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(string(body), "class EventStreamParser") {
				t.Errorf("GET /: %s %q, %d bytes, %v; want the page", resp.Status, resp.Header.Get("Content-Type"), len(body), err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			refused := false
			for _, err := range sseclient.Do(post(ctx, t, s.base, `{"prompt":`), nil) {
				var status *sseclient.StatusError
				if refused = errors.As(err, &status) && status.StatusCode == http.StatusBadRequest; !refused {
					t.Errorf("a malformed body: %v, want 400 Bad Request", err)
				}
			}
			if !refused {
				t.Error("a malformed body was not refused")
			}
			if err := s.stop(); err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
}

// TestUnknownRouter checks that run refuses a router it does not know.
func TestUnknownRouter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := run(context.Background(), ln, "martini", &Model{}); err == nil {
		t.Error("run with an unknown router returned nil")
	}
}

// TestModelStops checks the model alone: it stops at once when its
// context ends or its caller stops iterating.
func TestModelStops(t *testing.T) {
	m := &Model{Delay: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := 0
	for range m.Generate(ctx, "a b c") {
		if got++; got == 1 {
			cancel() // the next token is an hour away: only the end of ctx ends the wait
		}
	}
	if got != 1 || m.Running() != 0 {
		t.Errorf("got %d tokens, %d running; want 1 token, then nothing running", got, m.Running())
	}
	m.Delay = 0
	for range m.Generate(context.Background(), "a b c") {
		break
	}
	if m.Running() != 0 {
		t.Errorf("%d running after the loop broke", m.Running())
	}
}

// TestTokensSplit checks how an answer splits into tokens.
func TestTokensSplit(t *testing.T) {
	got := Tokens(" hi  there\n\nyou ")
	want := []string{"You", " said:", " hi", " ", " there", "\n", "\n", "you", "\n", "That", " is", " all,", " one", " token", " at", " a", " time."}
	if !slices.Equal(got, want) {
		t.Errorf("Tokens: %q, want %q", got, want)
	}
	if strings.Join(got, "") != "You said: hi  there\n\nyou\nThat is all, one token at a time." {
		t.Errorf("the tokens do not join back into the answer: %q", strings.Join(got, ""))
	}
}

// waitFor polls cond until it holds, for at most within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkGoroutines fails the test if goroutines that it started are still
// running 5s after it ended, as testkit.CheckGoroutines does, except for
// two that fasthttp (under Fiber) leaves behind by design: the one that
// updates its Date header, started once for the process, and its worker
// pool's cleaner, which sleeps 10s between checks of whether the server
// has stopped.
func checkGoroutines(t *testing.T) {
	t.Helper()
	base := countGoroutines()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		deadline := time.Now().Add(5 * time.Second)
		for countGoroutines() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutine leak: %d running, %d before the test\n%s", countGoroutines(), base, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// countGoroutines counts the running goroutines but fasthttp's own.
func countGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "fasthttp.updateServerDate") && !strings.Contains(g, "fasthttp.(*workerPool).Start") {
			count++
		}
	}
	return count
}
