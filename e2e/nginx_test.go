package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// These tests put Debian's nginx, as a reverse proxy with its default
// proxy_buffering on, between ssekit and the ssetest client.
// scripts/need-nginx.sh installs it.

// nginxReadTimeout is the proxy_read_timeout of the test proxy: nginx cuts
// an upstream response that stays silent for longer.
const nginxReadTimeout = time.Second

// needNginx returns the path of nginx. It skips the test when nginx is
// missing, unless CI=true, where it fails.
func needNginx(t *testing.T) string {
	t.Helper()
	path := "/usr/sbin/nginx"
	if _, err := os.Stat(path); err != nil {
		if path, err = exec.LookPath("nginx"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("nginx is needed (Debian package nginx-light or nginx; scripts/need-nginx.sh installs it): %v", err)
			}
			t.Skipf("skipping: nginx is needed (Debian package nginx-light or nginx; scripts/need-nginx.sh installs it): %v", err)
		}
	}
	return path
}

// nginxProxy is a hub served by an httptest.Server behind nginx.
type nginxProxy struct {
	hub      *sse.Hub
	upstream *httptest.Server
	url      string       // nginx's URL for the stream
	errorLog string       // nginx's error log
	requests atomic.Int32 // stream requests that reached the upstream
	conns    atomic.Int32 // connections nginx opened to the upstream
	client   *http.Client // for the test's clients; its idle connections are closed on teardown

	mu   sync.Mutex
	ends []sse.EndReason // why each stream ended, in order
}

// endReasons returns why each stream ended so far, in order.
func (p *nginxProxy) endReasons() []sse.EndReason {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ends)
}

// newNginxProxy starts a hub with opts on topic t, an httptest.Server for it
// serving streams in the given mode, and nginx in front of that, with extra
// added to nginx's location block. Everything is stopped when the test ends.
func newNginxProxy(t *testing.T, mode streamMode, opts sse.Options, extra string) *nginxProxy {
	t.Helper()
	nginx := needNginx(t)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &nginxProxy{client: &http.Client{Transport: &http.Transport{}}}
	closed := opts.Observer.StreamClosed
	opts.Observer.StreamClosed = func(info sse.StreamInfo, reason sse.EndReason, sent int) {
		p.mu.Lock()
		p.ends = append(p.ends, reason)
		p.mu.Unlock()
		if closed != nil {
			closed(info, reason, sent)
		}
	}
	hub, err := sse.NewHub(opts)
	if err != nil {
		t.Fatal(err)
	}
	p.hub = hub
	stream := hub.Handler(sse.HandlerOptions{Topics: sse.Topics(topic), Detach: mode.detach})
	p.upstream = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		stream.ServeHTTP(w, r)
	}))
	p.upstream.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			p.conns.Add(1)
		}
	}
	p.upstream.Start()
	// Cleanups run last first: the clients and nginx go before the hub,
	// which goes before the server that waits for its handlers.
	t.Cleanup(p.upstream.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("hub.Shutdown: %v", err)
		}
	})
	base, errorLog := startNginx(t, nginx, p.upstream.Listener.Addr().String(), extra)
	p.url, p.errorLog = base+"/events", errorLog
	t.Cleanup(p.client.CloseIdleConnections)
	return p
}

// nginxModuleTempPaths are the temp path directives of the http modules
// that nginx creates directories for at start-up, by module name.
var nginxModuleTempPaths = []struct{ module, directive string }{
	{"proxy", "proxy_temp_path"},
	{"fastcgi", "fastcgi_temp_path"},
	{"uwsgi", "uwsgi_temp_path"},
	{"scgi", "scgi_temp_path"},
}

// startNginx runs nginx in the foreground, as a single process, proxying
// 127.0.0.1:<free port> to upstream, and returns its base URL. Every file
// nginx writes is in a temporary directory. It is killed when the test ends,
// and its error log, whose path startNginx also returns, is shown when the
// test failed.
func startNginx(t *testing.T, nginx, upstream, extra string) (baseURL, errorLog string) {
	t.Helper()
	dir := t.TempDir()
	// The compiled-in temp paths are under /var/lib/nginx; nginx creates the
	// directory of every module it was built with, so each gets one here.
	// A directive of a module left out of the build is an error.
	version, err := exec.Command(nginx, "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("%s -V: %v\n%s", nginx, err, version)
	}
	var temps strings.Builder
	fmt.Fprintf(&temps, "\tclient_body_temp_path %s;\n", filepath.Join(dir, "client_body"))
	for _, m := range nginxModuleTempPaths {
		if !bytes.Contains(version, []byte("--without-http_"+m.module+"_module")) {
			fmt.Fprintf(&temps, "\t%s %s;\n", m.directive, filepath.Join(dir, m.module))
		}
	}
	errorLog = filepath.Join(dir, "error.log")

	var lastErr error
	for range 3 { // the free port may be taken before nginx binds it
		port := freePort(t)
		conf := filepath.Join(dir, "nginx.conf")
		// master_process off: one process, which as root keeps its
		// privileges (no "user" switch) and so can use the temp dir.
		// proxy_buffering keeps its default, on: the upstream's
		// X-Accel-Buffering: no must turn it off for the stream. The
		// small sndbuf makes a client that does not read back up soon
		// (TestNginxHonoursAccelBuffering). nginx keeps idle upstream
		// connections for reuse (keepalive), as proxies in front of
		// ssekit usually do.
		err := os.WriteFile(conf, []byte(fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[2]s info;

events {
	worker_connections 64;
}

http {
	access_log %[1]s/access.log;
%[3]s
	upstream ssekit {
		server %[5]s;
		keepalive 8;
	}

	server {
		listen 127.0.0.1:%[4]d sndbuf=64k;

		location / {
			proxy_pass http://ssekit;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_read_timeout %[6]dms;
%[7]s		}
	}
}
`, dir, errorLog, temps.String(), port, upstream, nginxReadTimeout.Milliseconds(), extra)), 0o600)
		if err != nil {
			t.Fatal(err)
		}

		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, nginx, "-c", conf, "-p", dir, "-e", errorLog)
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = &out
		cmd.WaitDelay = 2 * time.Second
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatalf("starting nginx: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if lastErr = waitForListener(addr, exited); lastErr == nil {
			t.Cleanup(func() {
				cancel() // kills nginx
				select {
				case <-exited:
				case <-time.After(5 * time.Second):
					t.Error("nginx did not exit within 5s of being killed")
				}
				if t.Failed() {
					logNginx(t, errorLog, out.String())
				}
			})
			return "http://" + addr, errorLog
		}
		cancel()
		<-exited
		lastErr = fmt.Errorf("%w\n%s", lastErr, out.String())
		if log, _ := os.ReadFile(errorLog); !bytes.Contains(log, []byte("Address already in use")) {
			break
		}
		_ = os.Remove(errorLog)
	}
	logNginx(t, errorLog, "")
	t.Fatalf("nginx did not start: %v", lastErr)
	return "", ""
}

func logNginx(t *testing.T, errorLog, output string) {
	t.Helper()
	log, err := os.ReadFile(errorLog)
	if err != nil {
		t.Logf("nginx error log: %v", err)
	}
	t.Logf("nginx output:\n%s\nnginx error log:\n%s", output, log)
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitForListener waits until addr accepts connections, for 5s at most, or
// until the process reports on exited that it has ended.
func waitForListener(addr string, exited <-chan error) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("nginx exited at start-up: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after 5s: %v", addr, err)
		}
	}
}

// connect opens a stream through nginx, closed when the test ends.
func (p *nginxProxy) connect(t *testing.T) *ssetest.Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := ssetest.Connect(ctx, p.client, p.url, "")
	if err != nil {
		cancel()
		t.Fatalf("connecting through nginx: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		s.Close()
	})
	if v := s.Response.Header.Get("X-Accel-Buffering"); v != "" {
		// nginx consumes the header; seeing it means it went through
		// something else.
		t.Errorf("the response through nginx has X-Accel-Buffering %q; nginx should have consumed it", v)
	}
	return s
}

// nginxReceived is an event or error from a stream, with when it was read.
type nginxReceived struct {
	ev  ssetest.Event
	err error
	at  time.Time
}

// readNginxStream reads s until it fails, sending every event and the final error
// to the returned channel, which is closed after the error.
func readNginxStream(s *ssetest.Stream) <-chan nginxReceived {
	ch := make(chan nginxReceived, 256)
	go func() {
		defer close(ch)
		for {
			ev, err := s.Next()
			ch <- nginxReceived{ev: ev, err: err, at: time.Now()}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// TestNginxDoesNotBufferEvents checks that nginx, with proxy_buffering on,
// passes each event on at once. The data of each event is its publish time;
// the delay to its arrival through nginx must stay under 100 ms for every
// one of 50 events. (nginx 1.22 with a client that keeps reading passes
// events on at once even when it buffers; TestNginxHonoursAccelBuffering
// checks that X-Accel-Buffering: no turns buffering off.)
func TestNginxDoesNotBufferEvents(t *testing.T) {
	forEachMode(t, testNginxDoesNotBufferEvents)
}

func testNginxDoesNotBufferEvents(t *testing.T, mode streamMode) {
	const events = 50
	p := newNginxProxy(t, mode, sse.Options{}, "")
	s := p.connect(t)
	checkStreamsDetached(t, p.hub, mode.detach)
	ch := readNginxStream(s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	delays := make([]time.Duration, 0, events)
	for i := range events {
		sent := time.Now()
		id, err := p.hub.Publish(ctx, topic, sse.Event{Data: []byte(strconv.FormatInt(sent.UnixNano(), 10))})
		if err != nil {
			t.Fatal(err)
		}
		// Each event is awaited before the next is published, so an
		// event held back until more data comes shows as a timeout.
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("event %d: stream failed: %v", i, r.err)
			}
			ns, err := strconv.ParseInt(r.ev.Data, 10, 64)
			if err != nil || r.ev.LastEventID != id {
				t.Fatalf("event %d is %+v, want the publish time with ID %q", i, r.ev, id)
			}
			delays = append(delays, r.at.Sub(time.Unix(0, ns)))
		case <-time.After(time.Second):
			t.Fatalf("event %d did not come through nginx within 1s: nginx buffers the stream", i)
		}
		time.Sleep(2 * time.Millisecond)
	}
	slices.Sort(delays)
	p50, p99, maxDelay := delays[len(delays)/2], delays[(len(delays)*99+99)/100-1], delays[len(delays)-1]
	t.Logf("publish-to-receive delay through nginx (%d events): p50 %v, p99 %v, max %v", len(delays), p50, p99, maxDelay)
	if maxDelay >= 100*time.Millisecond {
		t.Errorf("events took up to %v (p99 %v) to come through nginx, want under 100ms", maxDelay, p99)
	}
}

// TestNginxHonoursAccelBuffering checks that nginx streams ssekit's
// responses unbuffered. On loopback, with a client that reads, nginx's
// default buffering does not delay events (it passes on at once what it has
// read), so TestNginxDoesNotBufferEvents cannot tell the modes apart. A
// client that stops reading can: an unbuffered nginx stops reading the
// upstream too, so the back-pressure reaches the hub, whose write timeout
// cuts the stream; a buffering nginx keeps reading and spills the stream
// into a temporary file (which it logs), hiding the slow client from the
// hub. The control ignores X-Accel-Buffering and must do the latter.
func TestNginxHonoursAccelBuffering(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode streamMode) {
		for _, tc := range []struct {
			name     string
			extra    string
			buffered bool
		}{
			{"X-Accel-Buffering honoured", "", false},
			{"control: X-Accel-Buffering ignored", "\t\t\tproxy_ignore_headers X-Accel-Buffering;\n", true},
		} {
			t.Run(tc.name, func(t *testing.T) { testNginxAccelBuffering(t, mode, tc.extra, tc.buffered) })
		}
	})
}

func testNginxAccelBuffering(t *testing.T, mode streamMode, extra string, buffered bool) {
	// A queue large enough that only the write timeout can cut
	// the stream.
	p := newNginxProxy(t, mode, sse.Options{WriteTimeout: 300 * time.Millisecond, MaxQueueBytes: 64 << 20}, extra)
	// The client reads the response head and nothing more.
	p.connect(t)
	checkStreamsDetached(t, p.hub, mode.detach)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const spill = "an upstream response is buffered to a temporary file"
	spilled := func() bool {
		log, err := os.ReadFile(p.errorLog)
		return err == nil && bytes.Contains(log, []byte(spill))
	}
	// Publish 64 KiB events until the expected outcome shows, up to
	// 32 MiB: far more than the kernel's socket buffers (which grow
	// to a few MiB), nginx's send buffer (the listen sndbuf) and
	// its proxy_buffers hold.
	done := func() bool { return p.hub.Stats().Streams == 0 }
	want := "the hub's write timeout to cut the stream of the client that does not read"
	if buffered {
		done, want = spilled, "nginx to log "+strconv.Quote(spill)
	}
	data := bytes.Repeat([]byte("x"), 64<<10)
	deadline := time.Now().Add(5 * time.Second)
	published := 0
	for ; !done(); published++ {
		if published == 512 || time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s after publishing %d MiB", want, published/16)
		}
		if _, err := p.hub.Publish(ctx, topic, sse.Event{Data: data}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("%s: after publishing %d KiB", want, published*64)
	if buffered {
		time.Sleep(2 * 300 * time.Millisecond)
		if n := p.hub.Stats().Streams; n != 1 {
			t.Errorf("the hub counts %d streams, want 1: a buffering nginx should hide the slow client", n)
		}
	} else if spilled() {
		t.Errorf("nginx buffered the stream of a client that does not read (%q): it ignored X-Accel-Buffering: no", spill)
	} else if ends := p.endReasons(); !slices.Equal(ends, []sse.EndReason{sse.EndWriteTimeout}) {
		t.Errorf("the streams ended for %v, want one write timeout", ends)
	}
}

// TestNginxKeepsIdleStreamWithHeartbeats leaves a stream idle for three
// times nginx's proxy_read_timeout: heartbeats every 300 ms must keep nginx
// from cutting it, and an event published then must arrive on the same
// stream.
func TestNginxKeepsIdleStreamWithHeartbeats(t *testing.T) {
	forEachMode(t, testNginxKeepsIdleStreamWithHeartbeats)
}

func testNginxKeepsIdleStreamWithHeartbeats(t *testing.T, mode streamMode) {
	p := newNginxProxy(t, mode, sse.Options{HeartbeatInterval: 300 * time.Millisecond}, "")
	s := p.connect(t)
	checkStreamsDetached(t, p.hub, mode.detach)
	var pings atomic.Int32
	s.Parser().OnComment = func(text string) {
		if text == " ping" {
			pings.Add(1)
		}
	}
	ch := readNginxStream(s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	idle := 3 * nginxReadTimeout
	select {
	case r := <-ch:
		t.Fatalf("the idle stream through nginx delivered %+v, error %v", r.ev, r.err)
	case <-time.After(idle):
	}
	id, err := p.hub.Publish(ctx, topic, sse.Event{Data: []byte("after-idle")})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		if want := (ssetest.Event{Type: "message", Data: "after-idle", LastEventID: id}); r.err != nil || r.ev != want {
			t.Fatalf("after %v idle the stream gave %+v, error %v; want %+v", idle, r.ev, r.err, want)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("the event published after %v idle did not arrive", idle)
	}
	n := pings.Load()
	t.Logf("%d heartbeats in %v idle", n, idle)
	if n < 5 {
		t.Errorf("%d heartbeats came through nginx in %v, want about 10 (one at least every 300ms)", n, idle)
	}
	if n := p.requests.Load(); n != 1 {
		t.Errorf("the upstream saw %d stream requests, want 1", n)
	}
	checkStreamsDetached(t, p.hub, mode.detach)
}

// TestNginxCutsIdleStreamWithoutHeartbeats is the control of
// TestNginxKeepsIdleStreamWithHeartbeats: with heartbeats practically off,
// nginx ends the stream after proxy_read_timeout, and the hub notices.
func TestNginxCutsIdleStreamWithoutHeartbeats(t *testing.T) {
	forEachMode(t, testNginxCutsIdleStreamWithoutHeartbeats)
}

func testNginxCutsIdleStreamWithoutHeartbeats(t *testing.T, mode streamMode) {
	p := newNginxProxy(t, mode, sse.Options{HeartbeatInterval: 24 * time.Hour}, "")
	s := p.connect(t)
	start := time.Now()
	checkStreamsDetached(t, p.hub, mode.detach)
	ch := readNginxStream(s)
	select {
	case r := <-ch:
		if r.err == nil {
			t.Fatalf("the idle stream delivered %+v, want it to end", r.ev)
		}
		elapsed := r.at.Sub(start)
		t.Logf("nginx ended the idle stream after %v: %v", elapsed.Round(time.Millisecond), r.err)
		if !errors.Is(r.err, io.EOF) && !errors.Is(r.err, io.ErrUnexpectedEOF) {
			t.Errorf("the stream ended with %v, want EOF or unexpected EOF", r.err)
		}
		if elapsed < nginxReadTimeout-100*time.Millisecond {
			t.Errorf("the stream ended after %v, before nginx's proxy_read_timeout of %v", elapsed, nginxReadTimeout)
		}
	case <-time.After(3 * nginxReadTimeout):
		t.Fatalf("nginx did not end a stream idle for %v with proxy_read_timeout %v", 3*nginxReadTimeout, nginxReadTimeout)
	}
	waitFor(t, 2*time.Second, "the hub to notice the stream ended", func() bool { return p.hub.Stats().Streams == 0 })
	if ends := p.endReasons(); !slices.Equal(ends, []sse.EndReason{sse.EndClientGone}) {
		t.Errorf("the streams ended for %v, want one %v", ends, sse.EndClientGone)
	}
}

// TestNginxStreamEndsThroughKeepalive ends streams from the hub, by
// MaxStreamAge and by Shutdown, through nginx with upstream keepalive. An
// attached stream ends with the last chunk on a connection net/http keeps
// open, which nginx reuses; a detached one ends with the last chunk and
// the close of its connection, which its head announced (Connection:
// close), so nginx must not keep it. Either way, nginx and the client must
// see a clean end (the last chunk, after the retry hint), the client's
// immediate reconnection through nginx must succeed, and nginx must log no
// error: before the head said Connection: close, nginx kept the closing
// connection and sometimes sent the reconnection on it ("upstream
// prematurely closed connection while reading response header from
// upstream"), and retried (see TestNginxNoRetryReconnectAfterStreamEnd).
func TestNginxStreamEndsThroughKeepalive(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode streamMode) {
		t.Run("MaxStreamAge", func(t *testing.T) { testNginxMaxAgeRotation(t, mode) })
		t.Run("Shutdown", func(t *testing.T) { testNginxShutdownEnd(t, mode) })
	})
}

// nginxErrors returns the lines of nginx's error log at level error or
// worse.
func nginxErrors(t *testing.T, errorLog string) []string {
	t.Helper()
	log, err := os.ReadFile(errorLog)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(string(log)) {
		for _, level := range []string{"[error]", "[crit]", "[alert]", "[emerg]"} {
			if strings.Contains(line, level) {
				lines = append(lines, strings.TrimSpace(line))
			}
		}
	}
	return lines
}

// readToEnd reads st until it fails, returning the events and the error.
func readToEnd(st *ssetest.Stream) ([]ssetest.Event, error) {
	var evs []ssetest.Event
	for {
		ev, err := st.Next()
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

// testNginxMaxAgeRotation has MaxStreamAge end a client's stream through
// nginx again and again while events are being published; the client
// reconnects at once with the last ID it got, and must get every event
// exactly once, in order.
func testNginxMaxAgeRotation(t *testing.T, mode streamMode) {
	const rotations = 8
	p := newNginxProxy(t, mode, sse.Options{MaxStreamAge: 150 * time.Millisecond, CloseRetry: 10 * time.Millisecond}, "")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	// The publisher starts once the first stream is open: a client that
	// connects without an ID is owed only what comes after it subscribed.
	stop := make(chan struct{})
	published := make(chan []string, 1)
	publish := func() {
		var ids []string
		defer func() { published <- ids }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			id, err := p.hub.Publish(ctx, topic, sse.Event{Data: []byte(strconv.Itoa(i))})
			if err != nil {
				t.Error(err)
				return
			}
			ids = append(ids, id)
		}
	}

	var got []ssetest.Event
	lastID := ""
	// connect opens the next stream through nginx, at once, as a client
	// that ignores the retry hint would: the tightest race with nginx's
	// reuse of the connection whose stream just ended.
	connect := func(r int) *ssetest.Stream {
		t.Helper()
		st, err := ssetest.Connect(ctx, p.client, p.url, lastID)
		if err != nil {
			t.Fatalf("stream %d through nginx (Last-Event-ID %q): %v", r+1, lastID, err)
		}
		return st
	}
	for r := range rotations {
		st := connect(r)
		if r == 0 {
			go publish()
		}
		checkStreamsDetached(t, p.hub, mode.detach)
		evs, err := readToEnd(st)
		st.Close()
		got = append(got, evs...)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("stream %d through nginx ended with %v after %d events, want a clean end (the last chunk)", r+1, err, len(evs))
		}
		if _, ok := st.Parser().Retry(); !ok {
			t.Errorf("stream %d ended without a retry hint", r+1)
		}
		lastID = st.LastEventID()
	}
	close(stop)
	ids := <-published
	// The rest: what was published after the last stream ended.
	for r := rotations; len(got) < len(ids); r++ {
		if r == 3*rotations {
			t.Errorf("got %d of %d events after %d streams; the last one's Last-Event-ID was %q, that of event #%d", len(got), len(ids), r, lastID, slices.Index(ids, lastID))
			break
		}
		st := connect(r)
		for len(got) < len(ids) {
			ev, err := st.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("stream %d through nginx ended with %v, want a clean end", r+1, err)
				}
				break
			}
			got = append(got, ev)
		}
		lastID = st.LastEventID()
		st.Close()
	}
	for i, ev := range got {
		want := ssetest.Event{Type: "message", Data: strconv.Itoa(i), LastEventID: ids[i]}
		if i >= len(ids) || ev != want {
			t.Fatalf("event #%d is %+v, want %+v (got %d of %d events; every event must arrive once, in order)", i, ev, want, len(got), len(ids))
		}
	}

	// A detached stream's end is reported after its connection is closed,
	// so the last rotation's may come after the client saw it.
	waitFor(t, 2*time.Second, "the hub to report the rotated streams' ends", func() bool { return len(p.endReasons()) >= rotations })
	ends := p.endReasons()
	for i, reason := range ends[:min(rotations, len(ends))] {
		if reason != sse.EndMaxAge {
			t.Errorf("stream %d ended for %v, want %v", i+1, reason, sse.EndMaxAge)
		}
	}
	requests, conns := p.requests.Load(), p.conns.Load()
	t.Logf("%d events over %d streams; nginx opened %d upstream connections for %d requests", len(got), requests, conns, requests)
	switch {
	case !mode.detach && conns >= requests:
		// Otherwise the detached run would not show anything about
		// keepalive either.
		t.Errorf("nginx opened %d upstream connections for %d requests: it did not reuse the connections of attached streams", conns, requests)
	case mode.detach && conns != requests:
		t.Errorf("nginx opened %d upstream connections for %d requests: it reused the connection of a detached stream, which closes after its end", conns, requests)
	}
	if lines := nginxErrors(t, p.errorLog); len(lines) > 0 {
		t.Errorf("nginx logged errors:\n%s", strings.Join(lines, "\n"))
	}
}

// testNginxShutdownEnd shuts the hub down under streams through nginx:
// each client must get the queued event, the retry hint and a clean end,
// and its immediate reconnection through nginx the hub's answer after
// Shutdown (200 with a retry hint only).
func testNginxShutdownEnd(t *testing.T, mode streamMode) {
	const clients = 4 // no more than nginx's keepalive cache holds
	const closeRetry = 100 * time.Millisecond
	p := newNginxProxy(t, mode, sse.Options{CloseRetry: closeRetry}, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	streams := make([]*ssetest.Stream, clients)
	for i := range streams {
		streams[i] = p.connect(t)
	}
	waitFor(t, 2*time.Second, "every stream to open", func() bool { return p.hub.Stats().Streams == clients })
	checkStreamsDetached(t, p.hub, mode.detach)
	queued, err := p.hub.Publish(ctx, topic, sse.Event{Data: []byte("before shutdown")})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.hub.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	for i, st := range streams {
		evs, err := readToEnd(st)
		if want := (ssetest.Event{Type: "message", Data: "before shutdown", LastEventID: queued}); len(evs) != 1 || evs[0] != want {
			t.Errorf("stream %d got %+v before its end, want only %+v", i+1, evs, want)
		}
		if !errors.Is(err, io.EOF) {
			t.Errorf("stream %d through nginx ended with %v, want a clean end (the last chunk)", i+1, err)
		}
		if r, ok := st.Parser().Retry(); !ok || r < closeRetry || r > 2*closeRetry {
			t.Errorf("stream %d: retry hint %v (%v), want %v to %v", i+1, r, ok, closeRetry, 2*closeRetry)
		}
		// At once, rather than after the retry hint.
		again, err := ssetest.Connect(ctx, p.client, p.url, st.LastEventID())
		if err != nil {
			t.Errorf("reconnection %d through nginx after Shutdown: %v", i+1, err)
			continue
		}
		evs, err = readToEnd(again)
		again.Close()
		if _, ok := again.Parser().Retry(); len(evs) != 0 || !errors.Is(err, io.EOF) || !ok {
			t.Errorf("reconnection %d after Shutdown got %+v, a retry hint: %v, and ended with %v; want only a retry hint and a clean end", i+1, evs, ok, err)
		}
	}
	if ends := p.endReasons(); len(ends) != clients || slices.ContainsFunc(ends, func(r sse.EndReason) bool { return r != sse.EndShutdown }) {
		t.Errorf("the streams ended for %v, want %d for %v", ends, clients, sse.EndShutdown)
	}
	t.Logf("nginx opened %d upstream connections for %d requests", p.conns.Load(), p.requests.Load())
	if lines := nginxErrors(t, p.errorLog); len(lines) > 0 {
		t.Errorf("nginx logged errors:\n%s", strings.Join(lines, "\n"))
	}
}
