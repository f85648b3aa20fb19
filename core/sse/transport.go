package sse

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"

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
	transport.AcceptStream = func(hub any, w http.ResponseWriter, r *http.Request) (transport.StreamSession, error) {
		h := hub.(*Hub)
		info, err := h.admitStream(r)
		if err != nil {
			h.writeRefusal(w, r, err)
			return nil, err
		}
		return &streamSession{hub: h, r: r, info: info}, nil
	}
}

// streamSession is an admitted per-request stream that an adapter serves
// on its own StreamWriter (sseadapter.AcceptStream).
type streamSession struct {
	hub  *Hub
	r    *http.Request
	info StreamInfo
	used atomic.Bool // Run or Release was called
}

func (s *streamSession) Run(ctx context.Context, sw streamWriter, fn any) (int, error) {
	if s.used.Swap(true) {
		return 0, errors.New("sse: a per-request stream session is run or released once")
	}
	var reason EndReason
	err := s.hub.runStreamReason(ctx, s.r, &s.info, sw, fn.(func(*Stream) error), &reason)
	return int(reason), err
}

func (s *streamSession) Release() {
	if !s.used.Swap(true) {
		s.hub.release(&s.info)
	}
}

// streamWriter is what a stream is written to: net/http's ResponseWriter
// (httpStream), a detached connection while its handler goroutine writes
// (connStream), or an adapter's (sseadapter.StreamWriter).
type streamWriter = transport.StreamWriter
