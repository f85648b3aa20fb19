// Package transport joins package sse, which serves streams, to package
// sseadapter, through which adapters for servers other than net/http
// serve them. It keeps that part of the hub out of package sse's API.
package transport

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// StreamWriter is sseadapter.StreamWriter; see there.
type StreamWriter interface {
	Start() error
	Write(p []byte, timeout time.Duration) error
}

// Session is what sseadapter.Session wraps; see there.
type Session interface {
	// Serve returns an sse.EndReason.
	Serve(ctx context.Context, w StreamWriter) int
	ServeConn(ctx context.Context, conn net.Conn, hdr http.Header)
	Release()
}

// StreamSession is what sseadapter.StreamSession wraps; see there.
type StreamSession interface {
	// Run's fn is a func(*sse.Stream) error; it returns an sse.EndReason.
	Run(ctx context.Context, w StreamWriter, fn any) (int, error)
	Release()
}

// ErrCannotStream is sseadapter.ErrCannotStream.
var ErrCannotStream = errors.New("sse: this response cannot carry an event stream")

// Package sse sets these when it is initialised; hub is an *sse.Hub and
// opts an sse.HandlerOptions.
var (
	// Accept returns nil when it answered w itself.
	Accept       func(hub any, w http.ResponseWriter, r *http.Request, opts any, admitLater bool) Session
	WriteRefusal func(hub any, w http.ResponseWriter, r *http.Request, err error)
	// AcceptStream returns nil and the refusal when it answered w.
	AcceptStream func(hub any, w http.ResponseWriter, r *http.Request) (StreamSession, error)
)
