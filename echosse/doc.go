// Package echosse serves ssekit event streams from Echo v4 routes
// (github.com/labstack/echo/v4).
//
// Echo v5 is served by github.com/ssekit/ssekit/echosse/echo5, a module
// of its own whose package is also named echosse, with exactly this API:
// moving an application from Echo v4 to v5 changes the import line of
// this package and nothing else of its use (beyond Echo's own change from
// the echo.Context interface to *echo.Context). Each module requires its
// Echo major only.
//
// Handler turns an sse.Hub into an echo.HandlerFunc; options pick each
// request's topics from the route, the query or a function of the
// echo.Context. Auth is the authentication middleware in Echo's own type,
// and Principal reads what it stored. All event-stream behaviour (resume,
// heartbeats, slow clients, refusals, shutdown) is the hub's: see package
// sse.
//
// Add one route:
//
//	hub, err := sse.NewHub(sse.Options{})
//	if err != nil {
//		log.Fatal(err)
//	}
//	e := echo.New()
//	e.GET("/rooms/:room/events", echosse.Handler(hub, echosse.TopicsFromParam("room")))
//	srv := &http.Server{Addr: ":8080", Handler: e, ReadHeaderTimeout: 10 * time.Second}
//	go srv.ListenAndServe()
//	// anywhere: hub.Publish(ctx, "lobby", sse.Event{Data: []byte("hello")})
//	// on exit: hub.Shutdown(ctx) first (streams end), then srv.Shutdown(ctx)
//
// # Middleware
//
// Echo's RequestLogger, Logger and Recover pass streams through untouched;
// the request is logged when its stream ends. Gzip compresses the stream
// and sends every event at once: the hub flushes after each write, and a
// flush makes Gzip skip its MinLength buffering. With ContextTimeout a
// stream ends cleanly at the deadline and its client reconnects and
// resumes without losing an event; skip the stream route in its Skipper to
// avoid the reconnections (the first such stream logs a warning). Timeout
// serves the handler under http.TimeoutHandler, which cannot flush: the
// handler refuses with 500 and a log line saying why, instead of letting
// echo.Response.Flush panic. The handler answers refusals itself and
// always returns nil, so Echo's HTTPErrorHandler never writes over a
// stream.
package echosse
