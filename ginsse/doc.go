// Package ginsse serves ssekit event streams from a Gin router.
//
// It is a thin adapter: the sse package does the work (fan-out, replay
// after Last-Event-ID, heartbeats, slow clients, caps, auth, CORS,
// shutdown); ginsse makes it a gin.HandlerFunc, picks topics from the gin
// context, and offers auth middleware that keeps the principal where Gin
// keeps request values. Add one route:
//
//	hub, err := sse.NewHub(sse.Options{})
//	if err != nil {
//		log.Fatal(err)
//	}
//	r := gin.Default()
//	r.GET("/rooms/:room/events", ginsse.Handler(hub, ginsse.TopicsFromParam("room")))
//
//	// anywhere in the program:
//	hub.Publish(ctx, "lobby", sse.Event{Type: "chat", Data: []byte(`{"text":"hi"}`)})
//
// and, before http.Server.Shutdown, call hub.Shutdown(ctx) so that open
// streams end and the server does not wait for them.
//
// gin.Logger and gin.Recovery do not get in the way of streams (Logger
// writes its line when a stream ends). gin-contrib/gzip does: its writer
// has no Unwrap method, which hides the connection's write deadline, so
// Handler refuses compressed requests with 500 and a log line saying to
// exclude the route (gzip.WithExcludedPaths). See README.md.
//
// Streams do not use gin's Context.Stream or Context.SSEvent.
package ginsse
