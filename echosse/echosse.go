package echosse

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/labstack/echo/v5"
	"github.com/ssekit/ssekit/core/sse"
)

// principalKey is where Auth stores the principal with c.Set.
const principalKey = "github.com/ssekit/ssekit/echosse.principal"

// config collects a Handler's options. The fields set by the specific
// options override those of base, whatever the order of the options.
type config struct {
	base   sse.HandlerOptions
	topics func(c *echo.Context) ([]string, error)
	auth   *sse.Auth
	cors   *sse.CORS
	detach bool
}

// Option configures Handler.
type Option func(*config)

// Topics subscribes every request of the route to the given topics.
func Topics(names ...string) Option {
	f := sse.Topics(append([]string(nil), names...)...)
	return TopicsFunc(func(c *echo.Context) ([]string, error) { return f(c.Request()) })
}

// TopicsFromParam takes the topic from the route parameter name, as
// "room" in "/rooms/:room/events", as c.Param returns it. A request where
// it is empty is refused with 400.
func TopicsFromParam(name string) Option {
	return TopicsFunc(func(c *echo.Context) ([]string, error) {
		v := c.Param(name)
		if v == "" {
			return nil, sse.Refuse(http.StatusBadRequest, "missing route parameter "+strconv.Quote(name))
		}
		return []string{v}, nil
	})
}

// TopicsFromQuery takes the topics from every value of the query parameter
// name, as in "/events?topic=a&topic=b". A request without one is refused
// with 400. Without a topic option (or HandlerOptions.Topics), Handler uses
// TopicsFromQuery("topic").
//
// It lets a client subscribe to any topic: restrict it (WithAuth and
// sse.Auth.Authorize) where topics are private.
func TopicsFromQuery(name string) Option {
	f := sse.TopicsFromQuery(name)
	return TopicsFunc(func(c *echo.Context) ([]string, error) { return f(c.Request()) })
}

// TopicsFunc picks the topics of each request with f. f may turn the
// request away by returning an error made by sse.Refuse or sse.TryLater;
// any other error is answered with 500 and logged. Principal(c) gives the
// authenticated principal, whether Auth or WithAuth authenticated it.
func TopicsFunc(f func(c *echo.Context) ([]string, error)) Option {
	return func(cfg *config) { cfg.topics = f }
}

// WithAuth authenticates every request of the route and authorizes its
// topics (sse.HandlerOptions.Auth). Behind the Auth middleware, the
// request is not authenticated again; its topics are authorized with this
// Auth instead of the middleware's.
func WithAuth(a *sse.Auth) Option {
	return func(cfg *config) { cfg.auth = a }
}

// WithCORS serves pages of other origins (sse.HandlerOptions.CORS). Echo
// routes OPTIONS requests only to routes registered for OPTIONS: register
// the route for both GET and OPTIONS so that the handler answers
// preflights, as in e.Match([]string{"GET", "OPTIONS"}, path, h).
func WithCORS(c *sse.CORS) Option {
	return func(cfg *config) { cfg.cors = c }
}

// Detach serves each stream on a detached connection
// (sse.HandlerOptions.Detach): once the request is accepted, the hub takes
// the HTTP/1.1 connection over from net/http (Echo's Response hijacks) and
// a few shared goroutines write to every stream, so that an idle stream
// costs a few KiB instead of a goroutine and net/http's buffers.
//
// HTTP/2 and TLS requests, and writers that cannot hijack, are served as
// usual. The handler returns as soon as the stream is handed over:
// middleware around it (RequestLogger, say) sees the request end then,
// with status 200, compression middleware no longer applies, and neither
// does a deadline in the request context (ContextTimeout). Call
// hub.Shutdown before the server's Shutdown, which does not see detached
// connections.
func Detach() Option {
	return func(cfg *config) { cfg.detach = true }
}

// WithHandlerOptions sets the base options. Topics, TopicsFromParam,
// TopicsFromQuery, TopicsFunc, WithAuth, WithCORS and Detach override their
// fields, whatever the order of the options.
func WithHandlerOptions(o sse.HandlerOptions) Option {
	return func(cfg *config) { cfg.base = o }
}

// Handler returns an echo.HandlerFunc that serves hub's event streams on
// its route. It answers every request itself, refusals included, and
// returns nil, so that Echo's HTTPErrorHandler never writes over a
// stream.
//
// The stream is written to c.Response(), through whatever the middleware
// put there. When the writer at the end of its Unwrap chain cannot flush
// (Echo behind http.TimeoutHandler, say), the hub refuses the request with
// 500 and a log line, rather than buffering events or panicking in Flush.
//
// A request context with a deadline (Echo's ContextTimeout middleware)
// ends the stream at the deadline with a retry hint; the client then
// reconnects and resumes. The first such request is logged as a warning.
func Handler(hub *sse.Hub, opts ...Option) echo.HandlerFunc {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	ho := cfg.base
	if cfg.auth != nil {
		ho.Auth = cfg.auth
	}
	if cfg.cors != nil {
		ho.CORS = cfg.cors
	}
	if cfg.detach {
		ho.Detach = true
	}
	static := hub.Handler(ho)
	var warnDeadline sync.Once
	return func(c *echo.Context) error {
		w, r := c.Response(), c.Request()
		if _, ok := r.Context().Deadline(); ok {
			warnDeadline.Do(func() { c.Logger().Warn(warnDeadlineMsg, "path", r.URL.Path) })
		}
		if cfg.topics == nil {
			static.ServeHTTP(w, r)
			return nil
		}
		o := ho
		o.Topics = func(r *http.Request) ([]string, error) {
			// r carries the principal when the handler authenticated
			// (WithAuth): let c see it too.
			if r != c.Request() {
				c.SetRequest(r)
			}
			return cfg.topics(c)
		}
		hub.Handler(o).ServeHTTP(w, r)
		return nil
	}
}

const (
	warnDeadlineMsg = "echosse: the request context has a deadline (middleware.ContextTimeout?), " +
		"so streams on this route end at it and clients reconnect: skip the stream route in its Skipper"
)

// Auth returns middleware that authenticates requests with a, as
// sse.AuthMiddleware does. It answers a refusal itself with
// hub.WriteRefusal (401, or what Authenticate returned) and stops the
// chain; otherwise it stores the principal with c.Set and in the request
// context, together with a, where Principal, sse.PrincipalFrom and the
// stream handler find them: the handler does not authenticate again, and
// authorizes the topics with a (or with its own WithAuth, if set).
//
// CORS preflight requests (OPTIONS with Access-Control-Request-Method)
// carry no credentials: they pass through unauthenticated, so that the
// handler (WithCORS) or Echo's CORS middleware can answer them. Refusals
// carry CORS headers only when Echo's CORS middleware runs before Auth.
func Auth(hub *sse.Hub, a *sse.Auth) echo.MiddlewareFunc {
	mw := sse.AuthMiddleware(hub, a)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			var passed *http.Request
			mw(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { passed = r })).ServeHTTP(c.Response(), c.Request())
			if passed == nil {
				return nil
			}
			if p, ok := sse.PrincipalFrom(passed.Context()); ok {
				c.Set(principalKey, p)
			}
			c.SetRequest(passed)
			return next(c)
		}
	}
}

// Principal returns the principal that Auth stored, or that the handler's
// own authentication (WithAuth) found, inside a TopicsFunc.
func Principal(c *echo.Context) (sse.Principal, bool) {
	if p, ok := c.Get(principalKey).(sse.Principal); ok {
		return p, true
	}
	return sse.PrincipalFrom(c.Request().Context())
}
