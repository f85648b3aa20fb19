// Package fasthttpsse serves ssekit event streams on fasthttp: the
// transport that fibersse (Fiber v2) and fibersse/fiber3 (Fiber v3) share,
// and a handler for plain fasthttp servers.
//
//	hub, _ := sse.NewHub(sse.Options{})
//	srv := &fasthttp.Server{Handler: fasthttpsse.Handler(hub, sse.HandlerOptions{Topics: sse.Topics("news")}, nil)}
//
// # How it streams on fasthttp
//
// fasthttp writes a streamed body after the handler has returned, and
// never cancels a request's context when the client leaves. Serve therefore
// does everything that needs the RequestCtx in the handler: the request
// arrives as an *http.Request whose strings are copies (Request), since
// fasthttp reuses its buffers; sseadapter.Accept runs on it (CORS,
// authentication, topics, caps), and refusals are answered at once. An
// accepted stream becomes the response's body stream: fasthttp reads it
// and writes each read to the connection as a flushed chunk, and the Read
// calls tell the stream when its bytes have left, so write errors and
// write timeouts reach the hub as they do on net/http. Nothing touches the
// RequestCtx after the handler has returned.
//
// While a stream is idle, fasthttp's connection goroutine waits in the
// netpoller for the client's end of the connection too, so a client that
// leaves is noticed at once (on Linux, macOS and the BSDs; elsewhere at a
// failing write, within two heartbeats).
//
// # Detached streams
//
// With HandlerOptions.Detach, on a server with KeepHijackedConns, Serve has
// fasthttp hijack the connection instead of streaming a body: the hub then
// writes to it from a few shared goroutines, and no fasthttp goroutine or
// buffer stays with the stream. The stream takes its place under the
// hub's caps only when fasthttp hands the connection over, so a connection
// that fails before holds nothing. The server's Shutdown does not see such
// streams: hub.Shutdown ends them.
//
// # Middleware
//
// Middleware that reads the whole response body (compression, ETags, a
// logger of bodies) would wait forever for the end of a stream: the stream
// detects it, answers 500 and logs what to do. A detached stream is
// refused the same way: its hand-over response is never sent, and
// middleware that acted on its empty body (a cache) would break later
// requests without a word.
package fasthttpsse

import (
	"context"
	"net/http"
	"net/url"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseadapter"
)

// Handler returns a fasthttp.RequestHandler that serves hub's streams with
// opts, as hub.Handler does on net/http. srv is the server it runs on: its
// KeepHijackedConns lets streams detach (opts.Detach); nil serves every
// stream attached.
//
// Call hub.Shutdown before srv.Shutdown: it ends every stream with a retry
// hint, and srv.Shutdown then returns at once.
func Handler(hub *sse.Hub, opts sse.HandlerOptions, srv *fasthttp.Server) fasthttp.RequestHandler {
	return func(fc *fasthttp.RequestCtx) { Serve(hub, fc, context.Background(), opts, srv) }
}

// Serve serves fc's request, with ctx as its context, as a stream with
// opts: it answers a refusal or a CORS preflight on fc at once (a request
// URI that net/http would not parse with 400), or makes the stream fc's
// response, which fasthttp writes once the handler chain has returned.
// The handler must not touch fc's response after Serve. srv is the server
// fc comes from: with opts.Detach, a stream is detached when srv keeps
// hijacked connections, and served attached otherwise (with a warning,
// once).
func Serve(hub *sse.Hub, fc *fasthttp.RequestCtx, ctx context.Context, opts sse.HandlerOptions, srv *fasthttp.Server) {
	r := request(fc, ctx)
	if r == nil {
		return
	}
	ans := newAnswer()
	detach := opts.Detach && detachable(srv, r)
	var s *sseadapter.Session
	if detach {
		s = sseadapter.AcceptUnadmitted(hub, ans, r, opts)
	} else {
		s = sseadapter.Accept(hub, ans, r, opts)
	}
	if s == nil {
		ans.send(fc)
		return
	}
	setStreamHead(fc, ans)
	resp := &fc.Response
	if detach {
		serveDetached(hub, s, fc, r)
		return
	}
	run := func(ctx context.Context, sw sseadapter.StreamWriter) sse.EndReason { return s.Serve(ctx, sw) }
	resp.SetBodyStream(newStream(hub, run, s.Release, r, fc, resp), -1)
}

// setStreamHead makes fc's response the head of an event stream, with
// what ans recorded (CORS headers).
func setStreamHead(fc *fasthttp.RequestCtx, ans *answer) {
	resp := &fc.Response
	ans.copyHeader(&resp.Header)
	for k, v := range sseadapter.StreamHeader() {
		resp.Header.Set(k, v[0])
	}
	resp.SetStatusCode(http.StatusOK)
}

// Stream answers fc's request, with ctx as its context, with a per-request
// stream that runs fn, as sse.Hub.Stream does on net/http: the head goes
// out at once, the hub's heartbeats, write deadlines, caps and Shutdown
// apply, and fn's stream ends when the client leaves (noticed at once on
// Linux, macOS and the BSDs; elsewhere within a heartbeat).
//
// fasthttp writes the response after the handler has returned: fn runs
// then, in a goroutine of its own, and must not use fc (or a router's
// context built on it, such as a fiber.Ctx): read what it needs (the
// request body) before, into memory of its own. Stream returns the refusal
// when the request was refused (over a cap, after Shutdown, a request URI
// that net/http would not parse), having answered fc; otherwise nil, at
// once.
func Stream(hub *sse.Hub, fc *fasthttp.RequestCtx, ctx context.Context, fn func(*sse.Stream) error) error {
	r := request(fc, ctx)
	if r == nil {
		return errMalformed
	}
	ans := newAnswer()
	ss, err := sseadapter.AcceptStream(hub, ans, r)
	if ss == nil {
		ans.send(fc)
		return err
	}
	setStreamHead(fc, ans)
	run := func(ctx context.Context, sw sseadapter.StreamWriter) sse.EndReason {
		reason, _ := ss.Run(ctx, sw, fn)
		return reason
	}
	fc.Response.SetBodyStream(newStream(hub, run, ss.Release, r, fc, &fc.Response), -1)
	return nil
}

// Authenticate authenticates fc's request, with ctx as its context, as
// sse.AuthMiddleware(hub, a) does: it returns the context to go on with,
// which carries the principal and a, and true; or false when it has
// answered fc (401, what a.Authenticate returned, or 400 for a request
// URI that net/http would not parse). CORS preflights go on
// unauthenticated, for the stream handler to answer.
func Authenticate(hub *sse.Hub, a *sse.Auth, fc *fasthttp.RequestCtx, ctx context.Context) (context.Context, bool) {
	r := request(fc, ctx)
	if r == nil {
		return nil, false
	}
	ans := newAnswer()
	passed := sseadapter.Authenticate(hub, a)(ans, r)
	if passed == nil {
		ans.send(fc)
		return nil, false
	}
	return passed.Context(), true
}

// malformed answers a request whose URI net/http would not parse;
// errMalformed is what Stream returns for it.
const malformed = "malformed request URI"

var errMalformed = sse.Refuse(http.StatusBadRequest, malformed)

// request returns fc's request as Request does, or answers it with 400
// and returns nil when its URI does not parse.
func request(fc *fasthttp.RequestCtx, ctx context.Context) *http.Request {
	r, err := Request(fc, ctx)
	if err != nil {
		fc.Error(malformed, http.StatusBadRequest)
		return nil
	}
	return r
}

// Request returns fc's request as an *http.Request with ctx. Every string
// is copied: fasthttp reuses its buffers once the handler returns, and a
// stream lives on. The body is not read.
func Request(fc *fasthttp.RequestCtx, ctx context.Context) (*http.Request, error) {
	fr := &fc.Request
	uri := string(fr.RequestURI())
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, err
	}
	hdr := make(http.Header)
	//lint:ignore SA1019 All is newer than fasthttp v1.51, which Fiber v2 apps may pin.
	fr.Header.VisitAll(func(k, v []byte) { hdr.Add(string(k), string(v)) })
	r := &http.Request{
		Method:     string(fr.Header.Method()),
		URL:        u,
		Proto:      string(fr.Header.Protocol()),
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     hdr,
		Body:       http.NoBody,
		Host:       string(fr.Host()),
		RemoteAddr: fc.RemoteAddr().String(),
		RequestURI: uri,
		TLS:        fc.TLSConnectionState(),
	}
	if r.Proto == "HTTP/1.0" {
		r.ProtoMinor = 0
	}
	return r.WithContext(ctx), nil
}

// answer records what the hub writes to an http.ResponseWriter outside a
// stream (refusals, CORS headers and preflights), to copy it into the
// fasthttp response.
type answer struct {
	header http.Header
	status int
	body   []byte
}

func newAnswer() *answer { return &answer{header: make(http.Header)} }

func (a *answer) Header() http.Header { return a.header }

func (a *answer) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
}

func (a *answer) Write(p []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	a.body = append(a.body, p...)
	return len(p), nil
}

// Flush does nothing: the answer is sent whole when the handler returns.
func (a *answer) Flush() {}

func (a *answer) copyHeader(h *fasthttp.ResponseHeader) {
	for k, vs := range a.header {
		h.Del(k)
		for _, v := range vs {
			h.Add(k, v)
		}
	}
}

// send makes the answer the response of fc.
func (a *answer) send(fc *fasthttp.RequestCtx) {
	resp := &fc.Response
	a.copyHeader(&resp.Header)
	resp.SetStatusCode(max(a.status, http.StatusOK))
	resp.SetBody(a.body)
}

// serverContexts holds, per fasthttp server, a context that ends when the
// server shuts down; streams are served under it.
var serverContexts struct {
	mu sync.Mutex
	m  map[<-chan struct{}]context.Context
}

// serverContext returns a context that ends when done is closed. done is
// fasthttp's RequestCtx.Done(), closed by the server's Shutdown; one
// goroutine per server waits for it.
func serverContext(done <-chan struct{}) context.Context {
	if done == nil {
		return context.Background()
	}
	sc := &serverContexts
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if ctx, ok := sc.m[done]; ok {
		return ctx
	}
	ctx, cancel := context.WithCancel(context.Background())
	if sc.m == nil {
		sc.m = make(map[<-chan struct{}]context.Context)
	}
	sc.m[done] = ctx
	go func() {
		<-done
		cancel()
		sc.mu.Lock()
		delete(sc.m, done)
		sc.mu.Unlock()
	}()
	return ctx
}
