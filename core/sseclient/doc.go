// Package sseclient reads Server-Sent Events streams from Go, with the
// semantics of a browser's EventSource and what a long-running service
// needs beyond them. It works with any SSE server, and knows ssekit's
// reset event.
//
// # Following a stream
//
// New returns a Client for a URL; Events iterates over the stream's
// events:
//
//	c := sseclient.New("https://api.example.com/events?topic=jobs", &sseclient.Options{
//		Header: http.Header{"Authorization": {"Bearer " + token}},
//	})
//	for ev, err := range c.Events(ctx) {
//		var reset *sseclient.ResetError
//		switch {
//		case errors.As(err, &reset):
//			reloadJobs() // events may have been missed
//		case err != nil:
//			return err // the stream stopped for good, or ctx ended
//		default:
//			handle(ev.Type, ev.Data)
//		}
//	}
//
// Run does the same with callbacks. A Client is an EventSource: it sends
// Last-Event-ID when it reconnects, so that the server resumes after the
// last event it saw (an id without data counts, as ssekit's opening
// position does); it waits at least the reconnection time the server set
// with a retry field; an event without data is not dispatched; a 204 No
// Content ends it without an error, and any other status but 200, or a
// Content-Type other than text/event-stream, stops it with a *StatusError
// or a *ContentTypeError. A Client retries a 429 or 503 that carries
// Retry-After, after the time it says, and network errors.
//
// # Reconnecting
//
// Between attempts a Client waits a random time between 0 and a bound
// that starts at Options.InitialDelay (1 s) and doubles with each failure
// up to Options.MaxDelay (30 s), plus whatever the server asked for; the
// bound starts over once a stream has stayed open for Options.ResetAfter
// (1 minute). Options.ReadTimeout (1 minute) cuts a stream on which
// nothing arrives, not even a heartbeat comment, and resumes it. Events
// larger than Options.MaxEventSize, or lines longer than
// Options.MaxLineSize (1 MiB each), stop the client with an error that
// matches ErrEventTooLarge or ErrLineTooLong. Options.OnConnect,
// OnDisconnect and OnRetry report each step, with the reason and the
// chosen wait. Options.Prepare is called with every request, to give it a
// fresh token or ticket.
//
// # Reset events
//
// When an ssekit hub cannot replay everything a reconnecting client
// missed, it sends an event of type "sse-reset" whose data is
// {"reason":"..."}. A Client reports it as a *ResetError, with the event:
// the stream goes on, but the caller should reload its state. Run returns
// it unless given a callback for it. Options.ResetEventType sets the type.
//
// # Streaming APIs
//
// Do sends one request, a POST with a JSON body for instance, and reads
// its response as an event stream without reconnecting: the way to read
// completions from an LLM API.
//
// # Parser
//
// Parser reads an event stream exactly as the HTML standard's
// "Interpreting an event stream" says, with one allocation per event. It
// is the parser that package ssetest uses too.
package sseclient
