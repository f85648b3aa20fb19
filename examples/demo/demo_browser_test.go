package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium (scripts/need-chromium.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// screenshotPath is where SSEKIT_SCREENSHOT=1 saves the page.
const screenshotPath = "../../docs/demo.png"

// browser starts a headless Chromium with a fresh profile and returns the
// context of a tab in it, which ends after timeout. Everything is closed
// when the test ends. Without Chromium the test is skipped, except under
// CI=true, where it fails: CI must not turn browser tests off silently.
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
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), // removed after the browser exits
	)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(tab, 5*time.Second)
		defer cancel()
		if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("closing Chromium: %v", err)
		}
		cancelTab()
		cancelAlloc() // waits for the process to exit
	})
	// The first Do starts the browser, whose life is then bound to tab's:
	// no timeout on that one; a timer bounds the start instead.
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

// act runs chromedp actions in the tab.
func act(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
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

// pageErrors collects the page's uncaught exceptions.
func pageErrors(t *testing.T, ctx context.Context) func() []string {
	var mu sync.Mutex
	var errs []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() {
				mu.Lock()
				errs = append(errs, m.String())
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

// TestBrowser drives the page in Chromium: it logs in and sends
// notifications, watches the dashboard, and reloads the page while a job
// runs, then checks that the job's progress went on with no gap and no
// duplicate. With SSEKIT_SCREENSHOT=1 it saves a screenshot for the docs.
func TestBrowser(t *testing.T) {
	base := startDemo(t, config{metricsEvery: 100 * time.Millisecond, jobStep: 40 * time.Millisecond})
	tab := browser(t, 45*time.Second)
	exceptions := pageErrors(t, tab)
	const short = 5 * time.Second

	act(t, tab, "opening the page", chromedp.EmulateViewport(1280, 640), chromedp.Navigate(base+"/"))
	waitJS(t, tab, short, "the stream to open", `demoConn.state === 'open'`)

	// Log in: the page opens a new stream, which carries the cookie.
	act(t, tab, "logging in", chromedp.SendKeys(chromedp.ID("login-name"), "alice"), chromedp.Click(chromedp.ID("login-submit")))
	waitJS(t, tab, short, "the page to log in and reconnect",
		`document.getElementById('user-name').textContent === 'alice' && demoConn.opens >= 2 && demoConn.state === 'open'`)

	act(t, tab, "notifying alice", chromedp.Click(chromedp.ID("notify-me")))
	waitJS(t, tab, short, "alice's notification", `demoState.notes.length === 1`)
	act(t, tab, "notifying everyone", chromedp.Click(chromedp.ID("notify-all")))
	waitJS(t, tab, short, "the broadcast in the feed", `document.querySelectorAll('#feed .badge').length === 2`)
	badges := eval[[]string](t, tab, `[...document.querySelectorAll('#feed .badge')].map((b) => b.textContent)`)
	if len(badges) != 2 || badges[0] != "everyone" || badges[1] != "for you" {
		t.Errorf("feed badges %q, want the broadcast first, then alice's own", badges)
	}

	// The dashboard changes by itself.
	rps := eval[string](t, tab, `document.getElementById('rps').textContent`)
	waitJS(t, tab, short, "the dashboard to show a new value",
		fmt.Sprintf(`(t => t !== '–' && t !== %q)(document.getElementById('rps').textContent)`, rps))

	// A job; reload the page a quarter of the way through.
	act(t, tab, "starting a job", chromedp.Click(chromedp.ID("start-job")))
	waitJS(t, tab, short, "the job to reach 25%", `demoState.jobs.length === 1 && demoState.jobs[0].progress >= 25`)
	act(t, tab, "reloading", chromedp.Reload())
	if loads := eval[int](t, tab, `demoState.loads`); loads != 2 {
		t.Fatalf("demoState.loads = %d after a reload, want 2", loads)
	}
	waitJS(t, tab, 10*time.Second, "the job to finish", `demoState.jobs[0].done`)
	if url := eval[string](t, tab, `demoConn.url`); !containsAll(url, "topic=job%2F", "lastEventId=") {
		t.Errorf("the reloaded page opened %s, want its job's topic and lastEventId", url)
	}
	if resets := eval[[]string](t, tab, `demoConn.resets`); len(resets) > 0 {
		t.Errorf("the stream was reset: %q", resets)
	}
	checkJobLog(t, eval[[][2]int](t, tab, `demoState.jobs[0].log`))
	waitJS(t, tab, short, "the bar to show done", `(li => li && li.dataset.state === 'done' && li.querySelector('.pct').textContent === '100%')(document.querySelector('#job-list .job'))`)
	if got := eval[string](t, tab, `document.getElementById('user-name').textContent`); got != "alice" {
		t.Errorf("after the reload the page shows user %q, want alice", got)
	}

	if os.Getenv("SSEKIT_SCREENSHOT") == "1" {
		screenshot(t, tab)
	}

	// A page that comes back with an id the server does not know (as after
	// a restart) is reset: it shows why and reloads its jobs, here one the
	// server never had.
	// The page saves its state on pagehide; this listener, added after the
	// page's own, changes what was saved.
	eval[bool](t, tab, `addEventListener('pagehide', () => {
		const s = JSON.parse(sessionStorage.getItem('ssekit-demo'));
		s.lastId = '00000000-1';
		s.jobs.unshift({id: '0123456789ab', progress: 40, done: false, log: []});
		sessionStorage.setItem('ssekit-demo', JSON.stringify(s));
	}); true`)
	act(t, tab, "reloading", chromedp.Reload())
	waitJS(t, tab, short, "the reset, and the unknown job marked lost",
		`demoConn.resets[0] === 'unknown-id' && demoState.jobs[0].lost === true &&
		 !document.getElementById('notice').hidden && document.getElementById('notice').textContent.includes('unknown-id') &&
		 document.querySelector('#job-list .job').dataset.state === 'lost'`)
	if errs := exceptions(); len(errs) > 0 {
		t.Errorf("the page threw: %q", errs)
	}
}

// checkJobLog checks a job's log, the [progress, page load] pairs the page
// recorded: 0 to 100 one step at a time, received partly before the
// reload (load 1) and the rest after it (load 2).
func checkJobLog(t *testing.T, log [][2]int) {
	t.Helper()
	loads := map[int]int{}
	for i, e := range log {
		if e[0] != i {
			t.Fatalf("progress values %v: want 0, 1, 2, ... with no gap and no duplicate", log)
		}
		if i > 0 && e[1] < log[i-1][1] {
			t.Fatalf("progress values %v: page loads out of order", log)
		}
		loads[e[1]]++
	}
	if len(log) != 101 {
		t.Fatalf("progress values %v: want 0 to 100", log)
	}
	if loads[1] < 25 || loads[2] == 0 || loads[1]+loads[2] != 101 {
		t.Fatalf("progress values %v: want them from both sides of the reload", log)
	}
	t.Logf("job progress: %d values before the reload, %d after", loads[1], loads[2])
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// screenshot brings the page to a state that shows everything (a third
// notification, a second job half-way) and saves it as docs/demo.png.
func screenshot(t *testing.T, tab context.Context) {
	t.Helper()
	act(t, tab, "notifying alice", chromedp.Click(chromedp.ID("notify-me")))
	waitJS(t, tab, 5*time.Second, "the notification", `demoState.notes.length === 3`)
	act(t, tab, "starting a job", chromedp.Click(chromedp.ID("start-job")))
	waitJS(t, tab, 10*time.Second, "the job to be half-way, and a full dashboard",
		`demoState.jobs.length === 2 && demoState.jobs[0].progress >= 50 && demoState.points.length === 60`)
	png, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path, _ := filepath.Abs(screenshotPath)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %s (%d bytes)", path, len(png))
}
