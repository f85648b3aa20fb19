package ginsse

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/ssekit/ssekit/core/sse"
)

// principalKey is the gin context key under which Auth stores the
// principal: c.Get("ginsse.principal") returns it as an sse.Principal.
const principalKey = "ginsse.principal"

// Option configures Handler.
type Option func(*config)

type config struct {
	base sse.HandlerOptions

	// At most one of topics and topicsC is set: the last topic option wins.
	topics  func(*http.Request) ([]string, error)
	topicsC func(*gin.Context) ([]string, error)

	auth    *sse.Auth
	authSet bool
	cors    *sse.CORS
	corsSet bool
	detach  bool
}

// Topics subscribes every request of the route to the given topics.
func Topics(names ...string) Option {
	return func(c *config) { c.topics, c.topicsC = sse.Topics(names...), nil }
}

// TopicsFromParam takes the topic from the route parameter name, as in
// r.GET("/rooms/:room/events", ginsse.Handler(hub, ginsse.TopicsFromParam("room"))).
// For a catch-all parameter (*name) the leading slash is dropped, so
// "/events/*topic" serves "/events/a/b" with topic "a/b". An empty value
// is refused with 400.
//
// It lets a client subscribe to any topic its path names: restrict it
// (Auth.Authorize) where topics are private.
func TopicsFromParam(name string) Option {
	return func(c *config) {
		c.topics = nil
		c.topicsC = func(gc *gin.Context) ([]string, error) {
			v := strings.TrimPrefix(gc.Param(name), "/")
			if v == "" {
				return nil, sse.Refuse(http.StatusBadRequest, "missing route parameter "+strconv.Quote(name))
			}
			return []string{v}, nil
		}
	}
}

// TopicsFromQuery takes the topics from every value of the query parameter
// name, as in "/events?topic=a&topic=b"; a request without one is refused
// with 400. It is the default, with name "topic".
//
// It lets a client subscribe to any topic: restrict it (Auth.Authorize)
// where topics are private.
func TopicsFromQuery(name string) Option {
	return func(c *config) { c.topics, c.topicsC = sse.TopicsFromQuery(name), nil }
}

// TopicsFunc picks the topics with f, which may use anything the gin
// context holds: route parameters, Principal(c), values set by earlier
// middleware. f may refuse the request by returning an error made by
// sse.Refuse or sse.TryLater; any other error is answered with 500 and
// logged by the hub.
func TopicsFunc(f func(c *gin.Context) ([]string, error)) Option {
	return func(c *config) { c.topics, c.topicsC = nil, f }
}

// WithAuth authenticates stream requests and authorizes their topics
// (sse.HandlerOptions.Auth). A request that the Auth middleware has already
// authenticated is not authenticated again; its topics are authorized.
func WithAuth(a *sse.Auth) Option {
	return func(c *config) { c.auth, c.authSet = a, true }
}

// WithCORS serves pages of other origins (sse.HandlerOptions.CORS). Browsers
// send a preflight OPTIONS request only when a polyfill sets headers: to
// answer it, register the handler for OPTIONS too.
func WithCORS(cors *sse.CORS) Option {
	return func(c *config) { c.cors, c.corsSet = cors, true }
}

// Detach serves each stream on a detached connection
// (sse.HandlerOptions.Detach): once the request is accepted, the hub takes
// the HTTP/1.1 connection over from net/http (gin's writer can hijack) and
// a few shared goroutines write to every stream, so that an idle stream
// costs a few KiB instead of a goroutine and net/http's buffers.
//
// HTTP/2 and TLS requests are served as usual. The handler returns as soon
// as the stream is handed over: middleware around it (gin.Logger, say)
// sees the request end then, with status 200, and a timeout in the request
// context no longer applies to the stream. Call hub.Shutdown before
// http.Server.Shutdown, which does not see detached connections.
func Detach() Option {
	return func(c *config) { c.detach = true }
}

// WithHandlerOptions sets the base options; Topics, TopicsFromParam,
// TopicsFromQuery, TopicsFunc, WithAuth, WithCORS and Detach override their
// fields, whatever the order of the options.
func WithHandlerOptions(o sse.HandlerOptions) Option {
	return func(c *config) { c.base = o }
}

// Handler returns a gin handler that serves hub's event streams on its
// route. A GET request gets a stream of the topics the options pick (by
// default, every value of the "topic" query parameter); the stream resumes
// after the Last-Event-ID header. The handler runs until the stream ends,
// then aborts the chain, so later handlers do not write.
//
// Streams need the connection's write deadline, which cuts off stalled
// clients and replaces http.Server.WriteTimeout. Middleware that wraps
// gin's writer without an Unwrap method (gin-contrib/gzip, body loggers) or
// a server behind http.TimeoutHandler hides it: Handler then answers 500
// and logs (slog.Default) what to change, instead of streaming without it.
func Handler(hub *sse.Hub, opts ...Option) gin.HandlerFunc {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	ho := cfg.base
	if cfg.topics != nil {
		ho.Topics = cfg.topics
	}
	if cfg.authSet {
		ho.Auth = cfg.auth
	}
	if cfg.corsSet {
		ho.CORS = cfg.cors
	}
	if cfg.detach {
		ho.Detach = true
	}
	static := hub.Handler(ho)
	topicsC := cfg.topicsC
	return func(c *gin.Context) {
		defer c.Abort()
		o := ho
		if o.Detach && !canHijack(c.Writer) {
			o.Detach = false
		}
		if topicsC == nil && o.Detach == ho.Detach {
			static.ServeHTTP(c.Writer, c.Request)
			return
		}
		if topicsC != nil {
			o.Topics = func(r *http.Request) ([]string, error) {
				// The hub hands over the request with the principal it
				// authenticated (WithAuth): let the gin context see it too.
				if p, ok := sse.PrincipalFrom(r.Context()); ok {
					c.Set(principalKey, p)
				}
				c.Request = r
				return topicsC(c)
			}
		}
		hub.Handler(o).ServeHTTP(c.Writer, c.Request)
	}
}

// canHijack reports whether hijacking w (through http.ResponseController)
// can work. Gin's writer hijacks by asserting that the writer it wraps is an
// http.Hijacker, and panics when it is not (under http.TimeoutHandler, or
// net/http middleware whose writer cannot hijack): so every writer from the
// first with a Hijack method to the end of the Unwrap chain must have one.
func canHijack(w http.ResponseWriter) bool {
	found := false
	for {
		_, hj := w.(http.Hijacker)
		switch {
		case hj:
			found = true
		case found:
			return false
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return found
		}
		w = u.Unwrap()
	}
}

// Auth returns gin middleware that authenticates requests with a, as
// sse.AuthMiddleware does: a refusal is answered with hub.WriteRefusal
// (401, or what Authenticate returned) and stops the chain. On success it
// stores the principal with c.Set under the key "ginsse.principal" and in
// the request context, together with a, where Principal, sse.PrincipalFrom
// and the stream handler find them: Handler does not authenticate again,
// and authorizes the topics with a (or with its own WithAuth, if set).
//
// CORS preflight requests carry no credentials: they pass through
// unauthenticated, for the handler to answer. The middleware knows nothing
// of CORS, so its refusals carry no CORS headers: a cross-origin page sees
// a network error rather than the status (EventSource does not expose it
// anyway). Use WithAuth instead when that matters.
func Auth(hub *sse.Hub, a *sse.Auth) gin.HandlerFunc {
	mw := sse.AuthMiddleware(hub, a)
	return func(c *gin.Context) {
		passed := false
		mw(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			passed = true
			c.Request = r
			if p, ok := sse.PrincipalFrom(r.Context()); ok {
				c.Set(principalKey, p)
			}
		})).ServeHTTP(c.Writer, c.Request)
		if !passed {
			c.Abort()
		}
	}
}

// Principal returns the principal that Auth (or the handler's WithAuth,
// during TopicsFunc) stored for this request.
func Principal(c *gin.Context) (sse.Principal, bool) {
	if v, ok := c.Get(principalKey); ok {
		p, ok := v.(sse.Principal)
		return p, ok
	}
	if c.Request == nil {
		return sse.Principal{}, false
	}
	return sse.PrincipalFrom(c.Request.Context())
}
