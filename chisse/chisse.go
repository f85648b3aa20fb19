package chisse

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/ssekit/ssekit/core/sse"
)

// Option configures Handler.
type Option func(*config)

// config collects the options. WithHandlerOptions sets base; the other
// options set the override fields, which win whatever the order.
type config struct {
	base   sse.HandlerOptions
	topics func(*http.Request) ([]string, error)
	auth   *sse.Auth
	cors   *sse.CORS
	detach bool
}

// Topics subscribes every request of the route to the given topics.
func Topics(names ...string) Option {
	return func(c *config) { c.topics = sse.Topics(names...) }
}

// TopicsFromParam takes the topic from the chi route parameter name, as in
// r.Get("/rooms/{room}/events", chisse.Handler(hub, chisse.TopicsFromParam("room"))).
//
// The value is path-unescaped, so "/rooms/a%2Fb/events" subscribes to the
// topic "a/b" (chi hands out the escaped form in that case). A request with
// an empty value is refused with 400. A route without that parameter is a
// programming error: it is answered with 500 and logged.
//
// It lets a client subscribe to any topic the route matches: restrict it
// with WithAuth (Auth.Authorize) where topics are private.
func TopicsFromParam(name string) Option {
	return func(c *config) {
		c.topics = func(r *http.Request) ([]string, error) {
			rctx := chi.RouteContext(r.Context())
			if rctx == nil || !slices.Contains(rctx.URLParams.Keys, name) {
				return nil, errors.New("chisse: TopicsFromParam: the route has no parameter " + strconv.Quote(name))
			}
			v := rctx.URLParam(name)
			if r.URL.RawPath != "" {
				// chi matched the escaped path: the value is escaped too.
				u, err := url.PathUnescape(v)
				if err != nil {
					return nil, sse.Refuse(http.StatusBadRequest, "malformed route parameter "+strconv.Quote(name))
				}
				v = u
			}
			if v == "" {
				return nil, sse.Refuse(http.StatusBadRequest, "empty route parameter "+strconv.Quote(name))
			}
			return []string{v}, nil
		}
	}
}

// TopicsFromQuery takes the topics from every value of the query parameter
// name, as in "/events?topic=a&topic=b" (the default, with name "topic").
// A request without one is refused with 400.
//
// It lets a client subscribe to any topic: restrict it with WithAuth
// (Auth.Authorize) where topics are private.
func TopicsFromQuery(name string) Option {
	return func(c *config) { c.topics = sse.TopicsFromQuery(name) }
}

// TopicsFunc picks the topics of each request with f. f may refuse the
// request by returning an error made by sse.Refuse or sse.TryLater; any
// other error is answered with 500 and logged. Principal(r) gives the
// authenticated principal, for per-user topics.
func TopicsFunc(f func(r *http.Request) ([]string, error)) Option {
	return func(c *config) { c.topics = f }
}

// WithAuth authenticates every stream request with a (unless the Auth
// middleware already did) and authorizes its topics with a.Authorize. It
// sets sse.HandlerOptions.Auth.
func WithAuth(a *sse.Auth) Option {
	return func(c *config) { c.auth = a }
}

// WithCORS serves pages of other origins, as c says. It sets
// sse.HandlerOptions.CORS.
func WithCORS(c *sse.CORS) Option {
	return func(cf *config) { cf.cors = c }
}

// Detach serves each stream on a detached connection
// (sse.HandlerOptions.Detach): once the request is accepted, the hub takes
// the HTTP/1.1 connection over from net/http and a few shared goroutines
// write to every stream, so that an idle stream costs a few KiB instead of
// a goroutine and net/http's buffers. chi's middleware.Logger, Recoverer
// and Compress let the connection be taken over (their writers hijack).
//
// HTTP/2 and TLS requests, and writers that cannot hijack, are served as
// usual. The handler returns as soon as the stream is handed over:
// middleware around it sees the request end then (middleware.Logger logs
// it with status 000 and 0 bytes, as the hub writes past its writer),
// compression no longer applies to the stream, and neither does a
// deadline in the request context (middleware.Timeout).
// Call hub.Shutdown before http.Server.Shutdown, which does not see
// detached connections.
func Detach() Option {
	return func(c *config) { c.detach = true }
}

// WithHandlerOptions sets the base options. Topics, TopicsFromParam,
// TopicsFromQuery, TopicsFunc, WithAuth, WithCORS and Detach override its
// fields, whatever the order of the options.
func WithHandlerOptions(o sse.HandlerOptions) Option {
	return func(c *config) { c.base = o }
}

// Handler returns the handler that serves hub's event streams on a chi
// route. It is an http.HandlerFunc, so that it fits both r.Get and
// r.Handle. Without a topic option, the topics come from the "topic" query
// parameter.
//
// It is hub.Handler with the options above: it answers CORS, authenticates,
// picks and authorizes the topics, and streams. Register it for GET (and
// OPTIONS, with WithCORS and credentials sent by a polyfill):
//
//	r.Get("/events", chisse.Handler(hub, chisse.Topics("news")))
//
// Behind the Auth middleware, topics are authorized with the middleware's
// sse.Auth unless WithAuth sets another one.
func Handler(hub *sse.Hub, opts ...Option) http.HandlerFunc {
	var c config
	for _, o := range opts {
		o(&c)
	}
	ho := c.base
	if c.topics != nil {
		ho.Topics = c.topics
	}
	if c.auth != nil {
		ho.Auth = c.auth
	}
	if c.cors != nil {
		ho.CORS = c.cors
	}
	if c.detach {
		ho.Detach = true
	}
	return hub.Handler(ho).ServeHTTP
}

// Auth returns chi middleware that authenticates requests with a: it is
// sse.AuthMiddleware. A request without a valid token is answered with
// hub.WriteRefusal (401, or the refusal that a.Authenticate returned) and
// goes no further. On success the principal and a travel in the request
// context, where Principal, sse.PrincipalFrom and Handler find them:
// Handler does not authenticate again, and authorizes the topics with a
// (or with its own WithAuth, if set).
//
// CORS preflight requests carry no credentials: they go through
// unauthenticated, so that Handler can answer them.
func Auth(hub *sse.Hub, a *sse.Auth) func(http.Handler) http.Handler {
	return sse.AuthMiddleware(hub, a)
}

// Principal returns the principal that the Auth middleware (or Handler's
// own WithAuth, inside TopicsFunc) stored in the request context.
func Principal(r *http.Request) (sse.Principal, bool) {
	return sse.PrincipalFrom(r.Context())
}
