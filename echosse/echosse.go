package echosse

import (
	"sync"

	"github.com/labstack/echo/v4"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseadapter"
)

// Option configures Handler. Every router adapter of ssekit has the same
// options, with the same rules: the specific options override the fields
// of WithHandlerOptions whatever their order, and the last topic option
// wins.
type Option = sseadapter.Option[echo.Context]

// Topics subscribes every request of the route to the given topics.
func Topics(names ...string) Option { return sseadapter.Topics[echo.Context](names...) }

// TopicsFromParam takes the topic from the route parameter name, as
// "room" in "/rooms/:room/events": c.Param's value, path-unescaped, so
// "/rooms/a%2Fb/events" subscribes to the topic "a/b" (Echo routes on the
// escaped path then, and c.Param gives "a%2Fb"), and a catch-all
// parameter without its leading slash. A request where it is empty, or
// not a valid escape, is refused with 400.
//
// It lets a client subscribe to any topic its path names: restrict it
// (WithAuth and sse.Auth.Authorize) where topics are private.
func TopicsFromParam(name string) Option {
	return sseadapter.TopicsFromParam(name, param)
}

// param returns Echo's route parameter name, path-unescaped.
func param(c echo.Context, name string) string {
	return sseadapter.PathParam(c.Request(), c.Param(name))
}

// TopicsFromQuery takes the topics from every value of the query parameter
// name, as in "/events?topic=a&topic=b". A request without one is refused
// with 400. Without a topic option (or HandlerOptions.Topics), Handler uses
// TopicsFromQuery("topic").
//
// It lets a client subscribe to any topic: restrict it (WithAuth and
// sse.Auth.Authorize) where topics are private.
func TopicsFromQuery(name string) Option { return sseadapter.TopicsFromQuery[echo.Context](name) }

// TopicsFunc picks the topics of each request with f. f may turn the
// request away by returning an error made by sse.Refuse or sse.TryLater;
// any other error is answered with 500 and logged. Principal(c) gives the
// authenticated principal, whether Auth or WithAuth authenticated it.
func TopicsFunc(f func(c echo.Context) ([]string, error)) Option { return sseadapter.TopicsFunc(f) }

// WithAuth authenticates every request of the route and authorizes its
// topics (sse.HandlerOptions.Auth). Behind the Auth middleware, the
// request is not authenticated again; its topics are authorized with this
// Auth instead of the middleware's. WithAuth(nil) means no Auth of the
// route's own.
func WithAuth(a *sse.Auth) Option { return sseadapter.WithAuth[echo.Context](a) }

// WithCORS serves pages of other origins (sse.HandlerOptions.CORS); nil
// means none. Echo routes OPTIONS requests only to routes registered for
// OPTIONS: register the route for both GET and OPTIONS so that the handler
// answers preflights, as in e.Match([]string{"GET", "OPTIONS"}, path, h).
func WithCORS(c *sse.CORS) Option { return sseadapter.WithCORS[echo.Context](c) }

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
func Detach() Option { return sseadapter.Detach[echo.Context]() }

// WithHandlerOptions sets the base options. Topics, TopicsFromParam,
// TopicsFromQuery, TopicsFunc, WithAuth, WithCORS and Detach override their
// fields, whatever the order of the options.
func WithHandlerOptions(o sse.HandlerOptions) Option {
	return sseadapter.WithHandlerOptions[echo.Context](o)
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
// reconnects and resumes. The first such request is logged as a warning
// with c.Logger(), which echo.New sets to log errors only: set its level
// to log.WARN (or e.Debug) to see it.
func Handler(hub *sse.Hub, opts ...Option) echo.HandlerFunc {
	cfg := sseadapter.NewConfig(opts...)
	o, static := cfg.Static()
	h := hub.Handler(o)
	var warnDeadline sync.Once
	return func(c echo.Context) error {
		if _, ok := c.Request().Context().Deadline(); ok {
			warnDeadline.Do(func() { c.Logger().Warnf("%s (path %s)", warnDeadlineMsg, c.Request().URL.Path) })
		}
		sh := h
		if !static {
			sh = hub.Handler(cfg.For(c, c.SetRequest))
		}
		sh.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}

// Stream answers the request of c with a per-request stream that runs fn:
// one client's own events, such as the tokens of a model's answer, as
// sse.Hub.Stream does (the head goes out at once; the hub's heartbeats,
// write deadlines, caps and Shutdown apply; fn's stream ends when the
// client leaves: s.Context() is done and Send fails). It answers every
// request itself, refusals included (over a cap, after Shutdown, behind
// middleware that hides the connection), and returns nil, so that Echo's
// HTTPErrorHandler never writes over a stream.
//
//	e.POST("/answer", func(c echo.Context) error {
//		var q struct{ Prompt string }
//		if err := c.Bind(&q); err != nil {
//			return err
//		}
//		return echosse.Stream(hub, c, func(s *sse.Stream) error {
//			for tok := range model.Generate(s.Context(), q.Prompt) {
//				if err := s.Send(sse.Event{Type: "token", Data: []byte(tok)}); err != nil {
//					return err
//				}
//			}
//			return s.Send(sse.Event{Type: "done"})
//		})
//	})
func Stream(hub *sse.Hub, c echo.Context, fn func(*sse.Stream) error) error {
	_ = hub.Stream(c.Response(), c.Request(), fn)
	return nil
}

const warnDeadlineMsg = "echosse: the request context has a deadline (middleware.ContextTimeout?), " +
	"so streams on this route end at it and clients reconnect: skip the stream route in its Skipper"

// Auth returns middleware that authenticates requests with a: it is
// sse.AuthMiddleware in Echo's type. It answers a refusal itself, through
// the hub (401, or what Authenticate returned), and stops the chain;
// otherwise the principal and a travel in the request context, where
// Principal, sse.PrincipalFrom and the stream handler find them: the
// handler does not authenticate again, and authorizes the topics with a
// (or with its own WithAuth, if set).
//
// CORS preflight requests (OPTIONS with Access-Control-Request-Method)
// carry no credentials: they pass through unauthenticated, so that the
// handler (WithCORS) or Echo's CORS middleware can answer them. Refusals
// carry CORS headers only when Echo's CORS middleware runs before Auth.
func Auth(hub *sse.Hub, a *sse.Auth) echo.MiddlewareFunc {
	authenticate := sseadapter.Authenticate(hub, a)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := authenticate(c.Response(), c.Request())
			if r == nil {
				return nil
			}
			c.SetRequest(r)
			return next(c)
		}
	}
}

// Principal returns the principal that Auth, or the handler's own
// authentication (WithAuth, inside a TopicsFunc), stored in the request
// context.
func Principal(c echo.Context) (sse.Principal, bool) {
	return sse.PrincipalFrom(c.Request().Context())
}
