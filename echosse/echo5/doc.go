// Package echosse serves ssekit event streams from Echo v5 routes
// (github.com/labstack/echo/v5).
//
// Its import path is github.com/ssekit/ssekit/echosse/echo5 and its name
// echosse: it has exactly the API of github.com/ssekit/ssekit/echosse,
// which serves Echo v4, so that moving an application from Echo v4 to v5
// changes the import line of this package and nothing else of its use
// (beyond Echo's own change from the echo.Context interface to
// *echo.Context).
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
//	sc := echo.StartConfig{Address: ":8080", BeforeServeFunc: func(s *http.Server) error {
//		s.ReadHeaderTimeout = 10 * time.Second
//		s.RegisterOnShutdown(func() { hub.Shutdown(context.Background()) }) // streams end first
//		return nil
//	}}
//	// anywhere: hub.Publish(ctx, "lobby", sse.Event{Data: []byte("hello")})
//	log.Fatal(sc.Start(ctx, e))
//
// # Middleware
//
// Echo's RequestLogger and Recover pass streams through untouched; the
// request is logged when its stream ends. Gzip compresses the stream and
// sends every event at once: the hub flushes after each write, and a flush
// makes Gzip skip its MinLength buffering. With ContextTimeout a stream ends
// cleanly at the deadline and its client reconnects and resumes without
// losing an event; skip the stream route in its Skipper to avoid the
// reconnections (the first such stream logs a warning). Echo behind
// http.TimeoutHandler cannot flush: the handler refuses with 500 and a log
// line saying why, instead of letting *echo.Response.Flush panic. The
// handler answers refusals itself and always returns nil, so Echo's
// HTTPErrorHandler never writes over a stream.
package echosse
