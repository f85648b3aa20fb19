package sse

import (
	"net/http"

	"github.com/ssekit/ssekit/core/internal/transport"
)

// Serving streams on servers other than net/http goes through package
// sseadapter, which reaches the hub through these hooks.
func init() {
	transport.Accept = func(hub any, w http.ResponseWriter, r *http.Request, opts any, admitLater bool) transport.Session {
		s := hub.(*Hub).acceptSession(w, r, opts.(HandlerOptions), admitLater)
		if s == nil {
			return nil // not a nil *session in an interface
		}
		return s
	}
	transport.WriteRefusal = func(hub any, w http.ResponseWriter, r *http.Request, err error) {
		hub.(*Hub).writeRefusal(w, r, err)
	}
}

// streamWriter is what a stream is written to: net/http's ResponseWriter
// (httpStream), a detached connection while its handler goroutine writes
// (connStream), or an adapter's (sseadapter.StreamWriter).
type streamWriter = transport.StreamWriter
