// Package fibersse serves ssekit event streams from Fiber v2 routes. For
// Fiber v3, import github.com/ssekit/ssekit/fibersse/fiber3: its package,
// also named fibersse, has the same API.
//
// Add one route:
//
//	hub, _ := sse.NewHub(sse.Options{})
//	app := fiber.New()
//	app.Get("/rooms/:room/events", fibersse.Handler(hub, fibersse.TopicsFromParam("room")))
//	go app.Listen(":8080")
//
//	// anywhere in the program:
//	hub.Publish(ctx, "lobby", sse.Event{Type: "chat", Data: []byte("hello")})
//
// and a browser listens with new EventSource("/rooms/lobby/events").
//
// # How it streams on fasthttp
//
// Fiber runs on fasthttp, which writes a streamed body after the handler
// chain has returned and never cancels a request's context when the client
// leaves. Handler does everything that needs the *fiber.Ctx in the
// handler, and the stream is written by package fasthttpsse, which never
// touches the *fiber.Ctx: a client that leaves is noticed at once (on
// Linux, macOS and the BSDs; elsewhere within two heartbeats), and write
// errors and timeouts reach the hub as on net/http.
//
// # Middleware
//
// Fiber v2's logger (without ${resBody}), recover, timeout and compress
// (fasthttp's compressor flushes every write) middleware do not hold a
// stream up. Middleware that reads the whole response body (etag, cache,
// a logger with ${resBody}) would wait forever for the end of the stream:
// the stream detects it, answers 500 and logs what to do. Exclude the
// stream routes from such middleware with its Next option, for instance
//
//	etag.New(etag.Config{Next: func(c *fiber.Ctx) bool { return c.Get("Accept") == "text/event-stream" }})
//
// # Shutdown
//
// Call hub.Shutdown before app.Shutdown (Fiber v2 runs its OnShutdown
// hooks after the server has stopped, too late for this): it ends every
// stream with a retry hint, spread so that clients do not all come back
// at once, and
// app.Shutdown then returns at once. An app shut down without it still
// ends its streams, without the hint. Set Fiber's ReadTimeout or
// IdleTimeout too: fasthttp's Shutdown otherwise waits for connections that
// never send a request. Neither those nor WriteTimeout end a healthy
// stream.
//
// # Detached streams
//
// With Detach (and app.Server().KeepHijackedConns set), fasthttp hands the
// connection over instead of streaming a body: the hub then writes to it
// from a few shared goroutines, and no fasthttp goroutine or buffer stays
// with the stream. app.Shutdown does not see such streams: hub.Shutdown
// ends them. See Detach.
package fibersse
