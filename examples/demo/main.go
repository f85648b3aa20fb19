// Command demo is the ssekit demo: a page with a live clock and a small chat,
// both delivered over one Server-Sent Events stream.
//
// From the repository root:
//
//	go run ./examples/demo
//
// then open the URL it prints. Flags:
//
//	-addr host:port   address to listen on (default 127.0.0.1:8080; port 0 picks a free one)
//
// Routes:
//
//	GET  /          the page
//	GET  /events    the event stream: ?topic=clock&topic=chat (other topics get 404);
//	                ?lastEventId=<id> resumes after that event on a first connection
//	POST /publish   posts a chat message: form or JSON field "text", at most 1 KiB
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/ssekit/ssekit/core/sse"
)

//go:embed index.html
var files embed.FS

// The topics this demo serves. The event type of each event is its topic,
// so the page can tell them apart on its one EventSource.
const (
	topicClock = "clock"
	topicChat  = "chat"
)

var knownTopics = []string{topicClock, topicChat}

const (
	// maxText bounds a chat message, in bytes of UTF-8.
	maxText = 1 << 10
	// maxBody bounds a /publish request body. It leaves room for the
	// escaping of a message of maxText bytes (JSON \u escapes, %XX).
	maxBody = 8 << 10
	// shutdownTimeout bounds the graceful shutdown.
	shutdownTimeout = 5 * time.Second
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "`host:port` to listen on; port 0 picks a free port")
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

	fmt.Printf("ssekit demo: open %s\n", pageURL(ln.Addr()))
	if err := run(ctx, ln); err != nil {
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

// run serves the demo on ln until ctx is done, then shuts down gracefully:
// the hub ends the open streams (with a retry hint, so browsers come back),
// then the HTTP server finishes the other requests. It closes ln.
func run(ctx context.Context, ln net.Listener) error {
	d, err := newDemo()
	if err != nil {
		ln.Close()
		return err
	}
	srv := newServer(d)

	clockCtx, stopClock := context.WithCancel(ctx)
	defer stopClock()
	var wg sync.WaitGroup
	wg.Go(func() { d.runClock(clockCtx, time.Second) })

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		stopClock()
		wg.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// The hub first: http.Server.Shutdown would wait for open streams.
	hubErr := d.hub.Shutdown(sctx)
	srvErr := srv.Shutdown(sctx)
	stopClock()
	wg.Wait()
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
	hub  *sse.Hub
	page []byte
}

func newDemo() (*demo, error) {
	page, err := files.ReadFile("index.html")
	if err != nil {
		return nil, err
	}
	// The default Store keeps recent events in memory, so clients that
	// reconnect (or reload with ?lastEventId=) get what they missed.
	hub, err := sse.NewHub(sse.Options{Retry: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	return &demo{hub: hub, page: page}, nil
}

func (d *demo) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.servePage)
	mux.Handle("GET /events", d.hub.Handler(sse.HandlerOptions{Topics: demoTopics}))
	mux.HandleFunc("POST /publish", d.publish)
	return mux
}

// demoTopics takes the topics of a stream from the "topic" query parameters
// and refuses any topic that the demo does not serve.
func demoTopics(r *http.Request) ([]string, error) {
	topics, err := sse.TopicsFromQuery("topic")(r)
	if err != nil {
		return nil, err
	}
	for _, t := range topics {
		if !slices.Contains(knownTopics, t) {
			return nil, sse.Refuse(http.StatusNotFound,
				fmt.Sprintf("unknown topic %.64q: this demo serves %q and %q", t, topicClock, topicChat))
		}
	}
	return topics, nil
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

// clockData is the data of a "clock" event.
type clockData struct {
	Time string `json:"time"` // RFC 3339
	N    uint64 `json:"n"`    // 1 for the first tick of this process
}

// runClock publishes a "clock" event at once and then every interval until
// ctx is done.
func (d *demo) runClock(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var n uint64
	for {
		n++
		data, _ := json.Marshal(clockData{Time: time.Now().Format(time.RFC3339), N: n})
		if _, err := d.hub.Publish(ctx, topicClock, sse.Event{Type: topicClock, Data: data}); err != nil {
			slog.Warn("ssekit demo: publishing the clock failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// chatData is the data of a "chat" event.
type chatData struct {
	Text string `json:"text"`
	At   string `json:"at"` // RFC 3339, when the server received it
}

// publish posts a chat message. It takes the field "text" from a JSON object
// or a form, and answers {"id": "<event id>"}; a plain HTML form post (with
// JavaScript off) is redirected back to the page instead.
func (d *demo) publish(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	text, isForm, status, err := readText(r)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		http.Error(w, `"text" is empty`, http.StatusBadRequest)
		return
	case len(text) > maxText:
		http.Error(w, fmt.Sprintf(`"text" is %d bytes; at most %d are allowed`, len(text), maxText), http.StatusRequestEntityTooLarge)
		return
	case !utf8.ValidString(text):
		http.Error(w, `"text" is not valid UTF-8`, http.StatusBadRequest)
		return
	}
	data, err := json.Marshal(chatData{Text: text, At: time.Now().Format(time.RFC3339)})
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	id, err := d.hub.Publish(r.Context(), topicChat, sse.Event{Type: topicChat, Data: data})
	if err != nil {
		slog.Error("ssekit demo: publish failed", "err", err)
		http.Error(w, "could not publish", http.StatusInternalServerError)
		return
	}
	if isForm && !strings.Contains(r.Header.Get("Accept"), "application/json") &&
		strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		ID string `json:"id"`
	}{id})
}

// readText reads the "text" field of a /publish request. On failure it
// returns the HTTP status to answer with.
func readText(r *http.Request) (text string, isForm bool, status int, err error) {
	ct := r.Header.Get("Content-Type")
	mt, _, perr := mime.ParseMediaType(ct)
	if ct == "" {
		mt, perr = "application/x-www-form-urlencoded", nil
	}
	if perr != nil {
		return "", false, http.StatusUnsupportedMediaType, fmt.Errorf("bad Content-Type %q", ct)
	}
	switch mt {
	case "application/json":
		var body struct {
			Text *string `json:"text"`
		}
		dec := json.NewDecoder(r.Body)
		if err := dec.Decode(&body); err != nil {
			return "", false, bodyErrorStatus(err), fmt.Errorf("bad JSON body: %v", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return "", false, http.StatusBadRequest, errors.New("bad JSON body: more than one value")
		}
		if body.Text == nil {
			return "", false, http.StatusBadRequest, errors.New(`missing field "text"`)
		}
		return *body.Text, false, 0, nil
	case "application/x-www-form-urlencoded", "multipart/form-data":
		if mt == "multipart/form-data" {
			err = r.ParseMultipartForm(maxBody)
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			return "", true, bodyErrorStatus(err), fmt.Errorf("bad form body: %v", err)
		}
		if _, ok := r.PostForm["text"]; !ok {
			return "", true, http.StatusBadRequest, errors.New(`missing field "text"`)
		}
		return r.PostForm.Get("text"), true, 0, nil
	default:
		return "", false, http.StatusUnsupportedMediaType,
			fmt.Errorf("Content-Type %q: send application/json or a form", mt)
	}
}

func bodyErrorStatus(err error) int {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}
