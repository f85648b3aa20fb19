package ginsse

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseadapter"
)

// Option configures Handler. Every router adapter of ssekit has the same
// options, with the same rules: the specific options override the fields
// of WithHandlerOptions whatever their order, and the last topic option
// wins.
type Option = sseadapter.Option[*gin.Context]

// Topics subscribes every request of the route to the given topics.
func Topics(names ...string) Option { return sseadapter.Topics[*gin.Context](names...) }

// TopicsFromParam takes the topic from the route parameter name, as in
// r.GET("/rooms/:room/events", ginsse.Handler(hub, ginsse.TopicsFromParam("room"))).
// For a catch-all parameter (*name) the leading slash is dropped, so
// "/events/*topic" serves "/events/a/b" with topic "a/b". An empty value
// is refused with 400.
//
// It lets a client subscribe to any topic its path names: restrict it
// (Auth.Authorize) where topics are private.
func TopicsFromParam(name string) Option {
	return sseadapter.TopicsFromParam(name, (*gin.Context).Param)
}

// TopicsFromQuery takes the topics from every value of the query parameter
// name, as in "/events?topic=a&topic=b"; a request without one is refused
// with 400. It is the default, with name "topic".
//
// It lets a client subscribe to any topic: restrict it (Auth.Authorize)
// where topics are private.
func TopicsFromQuery(name string) Option { return sseadapter.TopicsFromQuery[*gin.Context](name) }

// TopicsFunc picks the topics with f, which may use anything the gin
// context holds: route parameters, Principal(c), values set by earlier
// middleware. f may refuse the request by returning an error made by
// sse.Refuse or sse.TryLater; any other error is answered with 500 and
// logged by the hub.
func TopicsFunc(f func(c *gin.Context) ([]string, error)) Option { return sseadapter.TopicsFunc(f) }

// WithAuth authenticates stream requests and authorizes their topics
// (sse.HandlerOptions.Auth). A request that the Auth middleware has already
// authenticated is not authenticated again; its topics are authorized with
// a. WithAuth(nil) means no Auth of the route's own.
func WithAuth(a *sse.Auth) Option { return sseadapter.WithAuth[*gin.Context](a) }

// WithCORS serves pages of other origins (sse.HandlerOptions.CORS); nil
// means none. Browsers send a preflight OPTIONS request only when a
// polyfill sets headers: to answer it, register the handler for OPTIONS
// too.
func WithCORS(cors *sse.CORS) Option { return sseadapter.WithCORS[*gin.Context](cors) }

// Detach serves each stream on a detached connection
// (sse.HandlerOptions.Detach): once the request is accepted, the hub takes
// the HTTP/1.1 connection over from net/http (gin's writer can hijack) and
// a few shared goroutines write to every stream, so that an idle stream
// costs a few KiB instead of a goroutine and net/http's buffers.
//
// HTTP/2 and TLS requests, and writers that cannot hijack, are served as
// usual. The handler returns as soon as the stream is handed over:
// middleware around it (gin.Logger, say) sees the request end then, with
// status 200, and a timeout in the request context no longer applies to
// the stream. Call hub.Shutdown before http.Server.Shutdown, which does
// not see detached connections.
func Detach() Option { return sseadapter.Detach[*gin.Context]() }

// WithHandlerOptions sets the base options; Topics, TopicsFromParam,
// TopicsFromQuery, TopicsFunc, WithAuth, WithCORS and Detach override their
// fields, whatever the order of the options.
func WithHandlerOptions(o sse.HandlerOptions) Option {
	return sseadapter.WithHandlerOptions[*gin.Context](o)
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
// and logs (with the hub's logger) what to change, instead of streaming
// without it.
func Handler(hub *sse.Hub, opts ...Option) gin.HandlerFunc {
	cfg := sseadapter.NewConfig(opts...)
	if o, ok := cfg.Static(); ok && !o.Detach {
		h := hub.Handler(o)
		return func(c *gin.Context) {
			defer c.Abort()
			h.ServeHTTP(c.Writer, c.Request)
		}
	}
	return func(c *gin.Context) {
		defer c.Abort()
		o := cfg.For(c, func(r *http.Request) { c.Request = r })
		// Gin's writer panics in Hijack where the writer it wraps cannot
		// hijack: serve such a stream attached.
		o.Detach = o.Detach && canHijack(c.Writer)
		hub.Handler(o).ServeHTTP(c.Writer, c.Request)
	}
}

// Stream answers the request of c with a per-request stream that runs fn:
// one client's own events, such as the tokens of a model's answer, as
// sse.Hub.Stream does (the head goes out at once; the hub's heartbeats,
// write deadlines, caps and Shutdown apply; fn's stream ends when the
// client leaves: s.Context() is done and Send fails). It then aborts the
// chain, as Handler does, and returns what hub.Stream returned: fn's
// error, or the refusal it answered (over a cap, after Shutdown, behind
// middleware that hides the connection).
//
//	r.POST("/answer", func(c *gin.Context) {
//		var q struct{ Prompt string }
//		if err := c.BindJSON(&q); err != nil {
//			return
//		}
//		_ = ginsse.Stream(hub, c, func(s *sse.Stream) error {
//			for tok := range model.Generate(s.Context(), q.Prompt) {
//				if err := s.Send(sse.Event{Type: "token", Data: []byte(tok)}); err != nil {
//					return err
//				}
//			}
//			return s.Send(sse.Event{Type: "done"})
//		})
//	})
func Stream(hub *sse.Hub, c *gin.Context, fn func(*sse.Stream) error) error {
	defer c.Abort()
	return hub.Stream(c.Writer, c.Request, fn)
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

// Auth returns gin middleware that authenticates requests with a: it is
// sse.AuthMiddleware in gin's type. A refusal is answered through the hub
// (401, or what Authenticate returned) and stops the chain. On success the
// principal and a travel in the request context (c.Request), where
// Principal, sse.PrincipalFrom and the stream handler find them: Handler
// does not authenticate again, and authorizes the topics with a (or with
// its own WithAuth, if set).
//
// CORS preflight requests carry no credentials: they pass through
// unauthenticated, for the handler to answer. The middleware knows nothing
// of CORS, so its refusals carry no CORS headers: a cross-origin page sees
// a network error rather than the status (EventSource does not expose it
// anyway). Use WithAuth instead when that matters.
func Auth(hub *sse.Hub, a *sse.Auth) gin.HandlerFunc {
	authenticate := sseadapter.Authenticate(hub, a)
	return func(c *gin.Context) {
		r := authenticate(c.Writer, c.Request)
		if r == nil {
			c.Abort()
			return
		}
		c.Request = r
	}
}

// Principal returns the principal that Auth (or the handler's WithAuth,
// inside TopicsFunc) stored in the request context.
func Principal(c *gin.Context) (sse.Principal, bool) {
	if c.Request == nil {
		return sse.Principal{}, false
	}
	return sse.PrincipalFrom(c.Request.Context())
}
