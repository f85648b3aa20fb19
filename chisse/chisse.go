package chisse

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseadapter"
)

// Option configures Handler. Every router adapter of ssekit has the same
// options, with the same rules: the specific options override the fields
// of WithHandlerOptions whatever their order, and the last topic option
// wins. chi's request context is the *http.Request itself.
type Option = sseadapter.Option[*http.Request]

// Topics subscribes every request of the route to the given topics.
func Topics(names ...string) Option { return sseadapter.Topics[*http.Request](names...) }

// TopicsFromParam takes the topic from the chi route parameter name, as in
// r.Get("/rooms/{room}/events", chisse.Handler(hub, chisse.TopicsFromParam("room"))).
//
// The value is path-unescaped, so "/rooms/a%2Fb/events" subscribes to the
// topic "a/b" (chi hands out the escaped form in that case, and so does
// r.PathValue). A request where the value is empty, or not a valid
// escape, is refused with 400, and so is a route without that parameter.
//
// It lets a client subscribe to any topic the route matches: restrict it
// with WithAuth (Auth.Authorize) where topics are private.
func TopicsFromParam(name string) Option { return sseadapter.TopicsFromParam(name, param) }

// param returns chi's route parameter name, path-unescaped.
func param(r *http.Request, name string) string {
	return sseadapter.PathParam(r, chi.URLParam(r, name))
}

// TopicsFromQuery takes the topics from every value of the query parameter
// name, as in "/events?topic=a&topic=b" (the default, with name "topic").
// A request without one is refused with 400.
//
// It lets a client subscribe to any topic: restrict it with WithAuth
// (Auth.Authorize) where topics are private.
func TopicsFromQuery(name string) Option { return sseadapter.TopicsFromQuery[*http.Request](name) }

// TopicsFunc picks the topics of each request with f. f may refuse the
// request by returning an error made by sse.Refuse or sse.TryLater; any
// other error is answered with 500 and logged. Principal(r) gives the
// authenticated principal, for per-user topics.
func TopicsFunc(f func(r *http.Request) ([]string, error)) Option { return sseadapter.TopicsFunc(f) }

// WithAuth authenticates every stream request with a (unless the Auth
// middleware already did) and authorizes its topics with a.Authorize
// (sse.HandlerOptions.Auth). WithAuth(nil) means no Auth of the route's
// own.
func WithAuth(a *sse.Auth) Option { return sseadapter.WithAuth[*http.Request](a) }

// WithCORS serves pages of other origins, as c says
// (sse.HandlerOptions.CORS); nil means none.
func WithCORS(c *sse.CORS) Option { return sseadapter.WithCORS[*http.Request](c) }

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
func Detach() Option { return sseadapter.Detach[*http.Request]() }

// WithHandlerOptions sets the base options. Topics, TopicsFromParam,
// TopicsFromQuery, TopicsFunc, WithAuth, WithCORS and Detach override its
// fields, whatever the order of the options.
func WithHandlerOptions(o sse.HandlerOptions) Option {
	return sseadapter.WithHandlerOptions[*http.Request](o)
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
	cfg := sseadapter.NewConfig(opts...)
	if o, ok := cfg.Static(); ok {
		return hub.Handler(o).ServeHTTP
	}
	return func(w http.ResponseWriter, r *http.Request) {
		hub.Handler(cfg.For(r, nil)).ServeHTTP(w, r)
	}
}

// Auth returns chi middleware that authenticates requests with a: it is
// sse.AuthMiddleware. A request without a valid token is answered
// through the hub (401, or the refusal that a.Authenticate returned) and
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
