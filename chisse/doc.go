// Package chisse serves ssekit event streams on a go-chi/chi router.
//
// Handler is an http.Handler for a chi route; options pick the topics from
// the route (TopicsFromParam), the query (TopicsFromQuery), a fixed list
// (Topics) or a function (TopicsFunc), and set authentication (WithAuth)
// and CORS (WithCORS). Auth is chi middleware that authenticates a request
// and stores its principal in the request context, where Principal reads
// it. All SSE behaviour (encoding, replay, heartbeats, slow clients,
// shutdown) is ssekit's core package sse; this package only maps chi to it.
//
// Add one route:
//
//	hub, _ := sse.NewHub(sse.Options{})
//	r := chi.NewRouter()
//	r.Use(middleware.Logger, middleware.Recoverer)
//	r.Get("/rooms/{room}/events", chisse.Handler(hub, chisse.TopicsFromParam("room")))
//	go http.ListenAndServe(":8080", r)
//	hub.Publish(ctx, "lobby", sse.Event{Data: []byte("hello")})
//	// On shutdown: hub.Shutdown(ctx), then the server's Shutdown.
//
// Middleware: Logger, Recoverer and Compress keep streams flowing
// (Compress leaves text/event-stream alone by default; opted in, it
// flushes every event). middleware.Timeout ends each stream at its
// deadline, cleanly and with a retry hint, so clients resume without loss:
// keep it off the stream route and rotate streams with
// sse.Options.MaxStreamAge instead. http.TimeoutHandler cannot stream at
// all: Handler answers 500 and logs why. See README.md.
package chisse
