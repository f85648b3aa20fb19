// Command demo is the ssekit demo: one page that shows the three classic
// uses of Server-Sent Events side by side, all over one EventSource.
//
//   - Notifications: log in with a name and the stream also carries your
//     own topic, "user/<name>". Another user's topic is refused.
//   - A live dashboard: a metric pushed every second, with real numbers
//     from the hub.
//   - Job progress that survives a page reload: the page resumes its
//     stream with ?lastEventId= and the progress bars go on without a gap.
//
// From the repository root:
//
//	go run ./examples/demo
//
// then open the URL it prints. Everything is kept in memory. Flags:
//
//	-addr host:port   address to listen on (default 127.0.0.1:8080; port 0 picks a free one)
//
// Routes:
//
//	GET  /            the page
//	GET  /events      the event stream: "metrics", "broadcast" and, when logged in,
//	                  "user/<name>", plus the topics of ?topic= ("job/<id>", your
//	                  own "user/<name>"); ?lastEventId=<id> resumes after that event
//	GET  /me          who is logged in: {"name": "..."} or {"name": null}
//	POST /login       logs in: field "name"; sets the HttpOnly cookie demo_session
//	POST /logout      logs out
//	POST /notify      sends a notification: field "to", "me" (default) or "everyone"
//	POST /jobs        starts a job; answers {"id": ..., "topic": "job/<id>", ...}
//	GET  /jobs/{id}   a job's current state
//
// POST routes take a JSON object or a form.
package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ssekit/ssekit/core/sse"
)

//go:embed index.html
var files embed.FS

const (
	// maxBody bounds the body of a POST request.
	maxBody = 4 << 10
	// shutdownTimeout bounds the graceful shutdown.
	shutdownTimeout = 5 * time.Second
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "`host:port` to listen on; port 0 picks a free port")
	redisAddr := flag.String("redis", "", "Redis `host:port`: share events and history with every demo on the same Redis (default: in memory)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ssekit demo: unexpected argument %q\n", flag.Arg(0))
		flag.Usage()
		os.Exit(2)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			fmt.Fprintf(os.Stderr, "ssekit demo: %s is already in use.\n"+
				"Start the demo on another address, for example:\n"+
				"\tgo run ./examples/demo -addr 127.0.0.1:8081\n"+
				"(-addr 127.0.0.1:0 picks a free port)\n", *addr)
		} else {
			fmt.Fprintf(os.Stderr, "ssekit demo: cannot listen on %s: %v\n"+
				"Choose an address with -addr host:port, for example -addr 127.0.0.1:8081\n", *addr, err)
		}
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one kills the process at once.
		<-ctx.Done()
		stop()
	}()

	cfg := defaultConfig()
	if *redisAddr != "" {
		store, err := redisStore(ctx, *redisAddr, "ssekit-demo")
		if err != nil {
			fmt.Fprintf(os.Stderr, "ssekit demo: %v\n", err)
			os.Exit(1)
		}
		cfg.store = store
	}
	fmt.Printf("ssekit demo: open %s\n", pageURL(ln.Addr()))
	if err := run(ctx, ln, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "ssekit demo: %v\n", err)
		os.Exit(1)
	}
}

// pageURL returns the URL of the page served on addr. An unspecified
// address (":8080", "0.0.0.0:8080") is shown as localhost, which a browser
// can open.
func pageURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// config holds the demo's pace. Tests speed it up.
type config struct {
	metricsEvery time.Duration // how often the dashboard's metric is published
	jobStep      time.Duration // how long a job takes for each percent
	store        sse.Store     // nil: the hub's in-memory default
}

func defaultConfig() config {
	return config{metricsEvery: time.Second, jobStep: 200 * time.Millisecond}
}

// run serves the demo on ln until ctx is done, then shuts down gracefully:
// the hub ends the open streams (with a retry hint, so browsers come back),
// the HTTP server finishes the other requests, and the background work
// (metrics, jobs) stops. It closes ln.
func run(ctx context.Context, ln net.Listener, cfg config) error {
	d, err := newDemo(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	srv := newServer(d)
	defer d.stopWork()
	d.goWork(d.runMetrics)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// The hub first: http.Server.Shutdown would wait for open streams.
	hubErr := d.hub.Shutdown(sctx)
	srvErr := srv.Shutdown(sctx)
	d.stopWork()
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		srvErr = errors.Join(srvErr, err)
	}
	return errors.Join(hubErr, srvErr)
}

// newServer returns the demo's HTTP server. Its timeouts bound ordinary
// requests; event streams outlive them, because the hub clears the read
// deadline of a stream and sets its own deadline for every write.
func newServer(d *demo) *http.Server {
	return &http.Server{
		Handler:           d.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
}

// demo holds the state of one demo server.
type demo struct {
	cfg      config
	hub      *sse.Hub
	page     []byte
	sessions *sessions
	jobs     *jobs

	notified atomic.Uint64 // notifications sent, to vary their text

	// Background work (metrics, jobs) runs with the context work, which
	// stopWork cancels; wg counts its goroutines.
	work       context.Context
	cancelWork context.CancelFunc
	workMu     sync.Mutex
	stopped    bool
	wg         sync.WaitGroup
}

func newDemo(cfg config) (*demo, error) {
	page, err := files.ReadFile("index.html")
	if err != nil {
		return nil, err
	}
	// The default Store keeps recent events in memory (the last 4096, for
	// at most an hour), so clients that reconnect, or reload the page with
	// ?lastEventId=, get what they missed. With -redis, the history and
	// every event are shared by all the demos on that Redis.
	hub, err := sse.NewHub(sse.Options{Retry: 2 * time.Second, Store: cfg.store})
	if err != nil {
		return nil, err
	}
	d := &demo{
		cfg:      cfg,
		hub:      hub,
		page:     page,
		sessions: newSessions(),
		jobs:     newJobs(),
	}
	d.work, d.cancelWork = context.WithCancel(context.Background())
	return d, nil
}

// goWork runs f in a goroutine of background work, unless stopWork has
// been called; then it reports false.
func (d *demo) goWork(f func(ctx context.Context)) bool {
	d.workMu.Lock()
	defer d.workMu.Unlock()
	if d.stopped {
		return false
	}
	d.wg.Go(func() { f(d.work) })
	return true
}

// stopWork stops the background work and waits for it.
func (d *demo) stopWork() {
	d.workMu.Lock()
	d.stopped = true
	d.cancelWork()
	d.workMu.Unlock()
	d.wg.Wait()
}

func (d *demo) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.servePage)
	mux.Handle("GET /events", d.hub.Handler(sse.HandlerOptions{
		Auth: &sse.Auth{
			CookieName:   sessionCookie,
			Optional:     true, // visitors who have not logged in get the public topics
			Authenticate: d.sessions.authenticate,
			Authorize:    authorize,
		},
		Topics: d.streamTopics,
	}))
	mux.HandleFunc("GET /me", d.me)
	mux.HandleFunc("POST /login", d.login)
	mux.HandleFunc("POST /logout", d.logout)
	mux.HandleFunc("POST /notify", d.notify)
	mux.HandleFunc("POST /jobs", d.startJob)
	mux.HandleFunc("GET /jobs/{id}", d.jobState)
	// Refuse POSTs from other sites' pages: they would carry the cookie.
	return http.NewCrossOriginProtection().Handler(mux)
}

func (d *demo) servePage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(d.page)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(d.page)
}

// publish publishes an event of type typ with data v as JSON on topic, and
// returns its ID.
func (d *demo) publish(ctx context.Context, topic, typ string, v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return d.hub.Publish(ctx, topic, sse.Event{Type: typ, Data: data})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// readFields reads the string fields of a POST body: a JSON object or a
// form. An empty body has no fields. On failure it returns the HTTP status
// to answer with.
func readFields(w http.ResponseWriter, r *http.Request) (map[string]string, int, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/x-www-form-urlencoded"
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("bad Content-Type %q", ct)
	}
	switch mt {
	case "application/json":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, bodyErrorStatus(err), fmt.Errorf("reading the body: %v", err)
		}
		fields := map[string]string{}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &fields); err != nil {
				return nil, http.StatusBadRequest, errors.New("bad JSON body: want an object of strings")
			}
		}
		return fields, 0, nil
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, bodyErrorStatus(err), fmt.Errorf("bad form body: %v", err)
		}
		fields := make(map[string]string, len(r.PostForm))
		for k := range r.PostForm {
			fields[k] = r.PostForm.Get(k)
		}
		return fields, 0, nil
	default:
		return nil, http.StatusUnsupportedMediaType,
			fmt.Errorf("Content-Type %q: send application/json or a form", mt)
	}
}

func bodyErrorStatus(err error) int {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// logPublishError logs a failed publish of background work, unless the
// demo is shutting down.
func logPublishError(ctx context.Context, what string, err error) {
	if err != nil && ctx.Err() == nil {
		slog.Warn("ssekit demo: publishing failed", "what", what, "err", err)
	}
}
