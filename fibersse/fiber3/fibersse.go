package fibersse

import (
	"net/http"

	"github.com/gofiber/fiber/v3"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseadapter"
	"github.com/ssekit/ssekit/fasthttpsse"
)

// Option configures Handler.
type Option = sseadapter.Option[fiber.Ctx]

// Topics subscribes every request of the route to the given topics.
func Topics(names ...string) Option { return sseadapter.Topics[fiber.Ctx](names...) }

// TopicsFromParam takes the topic from the route parameter name, as in
// app.Get("/rooms/:room/events", Handler(hub, TopicsFromParam("room"))). A
// request where it is empty is refused with 400.
//
// It lets a client subscribe to any topic the route matches: restrict it
// (Auth.Authorize) where topics are private.
func TopicsFromParam(name string) Option {
	return sseadapter.TopicsFromParam(name, func(c fiber.Ctx, name string) string { return c.Params(name) })
}

// TopicsFromQuery takes the topics from every value of the query parameter
// name, as in "/events?topic=a&topic=b". It is the default, with name
// "topic".
//
// It lets a client subscribe to any topic: restrict it (Auth.Authorize)
// where topics are private.
func TopicsFromQuery(name string) Option { return sseadapter.TopicsFromQuery[fiber.Ctx](name) }

// TopicsFunc picks the topics of a request with f. f may refuse the
// request by returning an error made by sse.Refuse or sse.TryLater; any
// other error is answered with 500 and logged. Principal(c) gives the
// authenticated principal, whether the Auth middleware or WithAuth
// authenticated the request.
//
// f runs in the handler, before the stream starts: it is the only place
// where the stream may use c. Topics are copied, so values that Fiber
// reuses after the handler (c.Params, c.Query) are safe to return.
func TopicsFunc(f func(c fiber.Ctx) ([]string, error)) Option { return sseadapter.TopicsFunc(f) }

// WithAuth authenticates every request and authorizes its topics
// (sse.HandlerOptions.Auth). Behind the Auth middleware, a request is not
// authenticated again; its topics are authorized with a instead of the
// middleware's Auth. WithAuth(nil) means none.
func WithAuth(a *sse.Auth) Option { return sseadapter.WithAuth[fiber.Ctx](a) }

// WithCORS serves pages of other origins (sse.HandlerOptions.CORS). Mount
// the handler for OPTIONS too, so that it answers preflights:
// app.Add([]string{fiber.MethodGet, fiber.MethodOptions}, path, h).
// WithCORS(nil) means none.
func WithCORS(cors *sse.CORS) Option { return sseadapter.WithCORS[fiber.Ctx](cors) }

// Detach serves each stream on a detached connection, as
// sse.HandlerOptions.Detach does on net/http: once the request is
// accepted, fasthttp hands the connection over (RequestCtx.Hijack) and a
// few shared goroutines write to every stream; no fasthttp goroutine,
// buffer or RequestCtx stays with it, and an idle stream costs a few KiB.
//
// It needs the app's KeepHijackedConns, which stops fasthttp from closing
// a hijacked connection when its hijack handler returns:
//
//	app := fiber.New()
//	app.Server().KeepHijackedConns = true
//
// It applies to every handler of the app that hijacks (a WebSocket
// upgrade, say): those must then close their connections themselves.
// Without it, streams are served attached, and the first one logs a
// warning. Streams over TLS are served attached.
//
// The handler returns before the stream starts, as it always does on
// fasthttp; middleware after it sees a response that is never sent: one
// that reads its whole body (etag, say) is refused as it is attached, and
// compress leaves it alone (the stream goes out uncompressed). app.Shutdown
// neither waits for nor ends detached streams: call hub.Shutdown first.
func Detach() Option { return sseadapter.Detach[fiber.Ctx]() }

// WithHandlerOptions sets the base options. The options above override its
// fields, whatever their order.
func WithHandlerOptions(o sse.HandlerOptions) Option {
	return sseadapter.WithHandlerOptions[fiber.Ctx](o)
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
// A middleware that reads the whole response body (Fiber v3's compress
// and etag middleware, a logger with ${resBody}) would wait for the
// end of a stream that never ends: such a request is answered with 500
// and a log line that says which route to exclude from it.
func Handler(hub *sse.Hub, opts ...Option) fiber.Handler {
	cfg := sseadapter.NewConfig(opts...)
	return func(c fiber.Ctx) error {
		o := cfg.For(c, func(r *http.Request) { c.SetContext(r.Context()) })
		fasthttpsse.Serve(hub, c.RequestCtx(), c.Context(), o, c.App().Server())
		return nil
	}
}

// Auth returns middleware that authenticates requests with a, as
// sse.AuthMiddleware does. It answers a refusal and stops the chain; on
// success it stores the principal, together with a, in c.Context(), where
// Principal, sse.PrincipalFrom and the stream handler find them, and calls
// the next handler. The stream handler then does not authenticate again,
// and authorizes the topics with a (or with its own WithAuth, if set).
//
// CORS preflights carry no credentials: they pass through
// unauthenticated, for the handler (WithCORS) to answer.
func Auth(hub *sse.Hub, a *sse.Auth) fiber.Handler {
	return func(c fiber.Ctx) error {
		ctx, ok := fasthttpsse.Authenticate(hub, a, c.RequestCtx(), c.Context())
		if !ok {
			return nil
		}
		c.SetContext(ctx)
		return c.Next()
	}
}

// Stream answers the request of c with a per-request stream that runs fn:
// one client's own events, such as the tokens of a model's answer, as
// sse.Hub.Stream does on net/http. The head goes out at once; the hub's
// heartbeats, write deadlines, caps and Shutdown apply; fn's stream ends
// when the client leaves (s.Context() is done and Send fails).
//
// Fiber writes the response after the handler has returned: fn runs then,
// in a goroutine of its own, and must not use c. Read what it needs
// before, into memory of its own (Fiber reuses c.Body() and c.Params()
// for later requests):
//
//	app.Post("/answer", func(c fiber.Ctx) error {
//		var q struct{ Prompt string }
//		if err := c.Bind().Body(&q); err != nil { // copies into q
//			return err
//		}
//		return fibersse.Stream(hub, c, func(s *sse.Stream) error {
//			for tok := range model.Generate(s.Context(), q.Prompt) {
//				if err := s.Send(sse.Event{Type: "token", Data: []byte(tok)}); err != nil {
//					return err
//				}
//			}
//			return s.Send(sse.Event{Type: "done"})
//		})
//	})
//
// Stream answers every request itself, refusals included (over a cap,
// after Shutdown), and returns nil.
func Stream(hub *sse.Hub, c fiber.Ctx, fn func(*sse.Stream) error) error {
	_ = fasthttpsse.Stream(hub, c.RequestCtx(), c.Context(), fn)
	return nil
}

// Principal returns the principal that Auth stored for the request of c
// (or that WithAuth found, inside a TopicsFunc).
func Principal(c fiber.Ctx) (sse.Principal, bool) { return sse.PrincipalFrom(c.Context()) }
