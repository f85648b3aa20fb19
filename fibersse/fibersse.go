package fibersse

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v3"
	"github.com/valyala/fasthttp"

	"github.com/ssekit/ssekit/core/sse"
)

// Option configures Handler.
type Option func(*config)

type config struct {
	base      sse.HandlerOptions
	topics    func(*http.Request) ([]string, error)
	topicsCtx func(fiber.Ctx) ([]string, error)
	auth      *sse.Auth
	cors      *sse.CORS
	detach    bool

	warnKeep sync.Once // Detach without KeepHijackedConns
}

// Topics subscribes every request to the given topics.
func Topics(names ...string) Option {
	return func(c *config) { c.topics, c.topicsCtx = sse.Topics(names...), nil }
}

// TopicsFromParam takes the topic from the route parameter name, as in
// app.Get("/rooms/:room/events", Handler(hub, TopicsFromParam("room"))).
// A request whose parameter is empty is refused with 400.
//
// It lets a client subscribe to any topic the route matches: restrict it
// (WithAuth with Authorize) where topics are private.
func TopicsFromParam(name string) Option {
	return TopicsFunc(func(c fiber.Ctx) ([]string, error) {
		v := c.Params(name)
		if v == "" {
			return nil, sse.Refuse(http.StatusBadRequest, "missing route parameter "+strconv.Quote(name))
		}
		return []string{v}, nil
	})
}

// TopicsFromQuery takes the topics from every value of the query parameter
// name, as in "/events?topic=a&topic=b" (sse.TopicsFromQuery). It is the
// default, with name "topic".
func TopicsFromQuery(name string) Option {
	return func(c *config) { c.topics, c.topicsCtx = sse.TopicsFromQuery(name), nil }
}

// TopicsFunc picks the topics of a request with f. f may refuse the
// request by returning an error made by sse.Refuse or sse.TryLater; any
// other error is answered with 500 and logged. Principal(c) gives the
// authenticated principal, whether the Auth middleware or WithAuth
// authenticated the request.
//
// f runs in the handler, before the stream starts: it is the only place
// where the stream may use c. Strings it returns are copied, so values
// that fiber reuses after the handler (c.Params, c.Query) are safe.
func TopicsFunc(f func(c fiber.Ctx) ([]string, error)) Option {
	return func(c *config) { c.topics, c.topicsCtx = nil, f }
}

// WithAuth authenticates every request and authorizes its topics, as
// sse.HandlerOptions.Auth. Behind the Auth middleware, pass the same
// *sse.Auth here too: the request is not authenticated twice, but its
// topics are authorized.
func WithAuth(a *sse.Auth) Option {
	return func(c *config) { c.auth = a }
}

// WithCORS serves pages of other origins, as sse.HandlerOptions.CORS.
// Mount the handler for OPTIONS too, so that it answers preflights:
// app.Add([]string{fiber.MethodGet, fiber.MethodOptions}, path, h).
func WithCORS(cors *sse.CORS) Option {
	return func(c *config) { c.cors = cors }
}

// WithHandlerOptions sets all of sse.HandlerOptions at once. The options
// above and Detach override its fields, whatever their order.
func WithHandlerOptions(o sse.HandlerOptions) Option {
	return func(c *config) { c.base = o }
}

// options returns the HandlerOptions for the request of c.
func (cfg *config) options(c fiber.Ctx) sse.HandlerOptions {
	o := cfg.base
	if cfg.auth != nil {
		o.Auth = cfg.auth
	}
	if cfg.cors != nil {
		o.CORS = cfg.cors
	}
	if cfg.detach {
		o.Detach = true
	}
	switch {
	case cfg.topicsCtx != nil:
		f := cfg.topicsCtx
		o.Topics = func(r *http.Request) ([]string, error) {
			if p, ok := sse.PrincipalFrom(r.Context()); ok {
				c.Locals(principalKey{}, p) // WithAuth authenticated: let f see it
			}
			topics, err := f(c)
			if err != nil {
				return nil, err
			}
			// Fiber reuses the memory behind c.Params and friends once the
			// handler returns, and the hub keeps topics for the stream's
			// life (as map keys, too).
			out := make([]string, len(topics))
			for i, t := range topics {
				out[i] = strings.Clone(t)
			}
			return out, nil
		}
	case cfg.topics != nil:
		o.Topics = cfg.topics
	}
	return o
}

// Handler returns a fiber.Handler that serves hub's event streams on its
// route. It answers everything that is not a stream (refusals, CORS
// preflights) at once; a stream is written after the handler has
// returned, by fasthttp, while the handler never touches c again.
//
// Mount it for GET (and OPTIONS with WithCORS). Call hub.Shutdown before
// app.Shutdown, for instance in app.Hooks().OnPreShutdown: it ends every
// stream with a retry hint, so that clients come back after a random
// delay. An app that shuts down first still ends its streams, without
// that hint.
//
// A middleware that reads the whole response body (fiber's compress
// and etag middleware, a logger with ${resBody}) would wait for the
// end of a stream that never ends: such a request is answered with 500
// and a log line that says which route to exclude from it.
func Handler(hub *sse.Hub, opts ...Option) fiber.Handler {
	cfg := &config{}
	for _, o := range opts {
		o(cfg)
	}
	return func(c fiber.Ctx) error {
		r, err := newRequest(c)
		if err != nil {
			return fiber.NewError(http.StatusBadRequest, "malformed request URI")
		}
		ans := newAnswer()
		o := cfg.options(c)
		s := hub.Accept(ans, r, o)
		if s == nil {
			ans.send(c)
			return nil
		}
		resp := c.Response()
		ans.copyHeader(&resp.Header)
		for k, v := range sse.StreamHeader() {
			resp.Header.Set(k, v[0])
		}
		resp.SetStatusCode(http.StatusOK)
		if o.Detach && cfg.detachable(c, r) {
			serveDetached(s, c.RequestCtx())
			return nil
		}
		resp.SetBodyStream(newStream(hub, s, r, c.RequestCtx(), resp), -1)
		return nil
	}
}

// Auth returns middleware that authenticates requests with a, as
// sse.AuthMiddleware does. It answers a refusal with hub.WriteRefusal and
// stops the chain; on success it stores the principal for Principal and,
// together with a, in c.Context() (see sse.PrincipalFrom), and calls the
// next handler. The stream handler then does not authenticate again, and
// authorizes the topics with a (or with its own WithAuth, if set).
//
// CORS preflight requests carry no credentials: they pass through
// unauthenticated, for the handler (WithCORS) to answer.
func Auth(hub *sse.Hub, a *sse.Auth) fiber.Handler {
	mw := sse.AuthMiddleware(hub, a)
	return func(c fiber.Ctx) error {
		r, err := newRequest(c)
		if err != nil {
			return fiber.NewError(http.StatusBadRequest, "malformed request URI")
		}
		ans := newAnswer()
		var passed *http.Request
		mw(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { passed = r })).ServeHTTP(ans, r)
		if passed == nil {
			ans.send(c)
			return nil
		}
		if p, ok := sse.PrincipalFrom(passed.Context()); ok {
			c.Locals(principalKey{}, p)
		}
		c.SetContext(passed.Context())
		return c.Next()
	}
}

type principalKey struct{}

// Principal returns the principal that Auth stored for the request of c
// (or that WithAuth found, inside a TopicsFunc).
func Principal(c fiber.Ctx) (sse.Principal, bool) {
	p, ok := c.Locals(principalKey{}).(sse.Principal)
	return p, ok
}

// newRequest returns the request of c as an *http.Request for the core.
// Every string is copied: fiber and fasthttp reuse their buffers once the
// handler returns, and the stream lives on. Its context is c.Context(),
// which carries the principal the Auth middleware stored.
func newRequest(c fiber.Ctx) (*http.Request, error) {
	fr := c.Request()
	uri := string(fr.RequestURI())
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, err
	}
	hdr := make(http.Header)
	for k, v := range fr.Header.All() {
		hdr.Add(string(k), string(v))
	}
	fc := c.RequestCtx()
	r := &http.Request{
		Method:     c.Method(),
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
	return r.WithContext(c.Context()), nil
}

// answer records what the core writes to an http.ResponseWriter outside
// a stream (refusals, CORS headers and preflights), to copy it into the
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

// send makes the answer the response of c.
func (a *answer) send(c fiber.Ctx) {
	resp := c.Response()
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
