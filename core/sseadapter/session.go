package sseadapter

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/ssekit/ssekit/core/internal/transport"
	"github.com/ssekit/ssekit/core/sse"
)

// StreamWriter is the connection a Session streams to, for servers whose
// responses are not http.ResponseWriters.
type StreamWriter interface {
	// Start prepares the response head: status 200 and StreamHeader().
	// Serve calls it once, before any Write. The head need not reach the
	// client before the first Write, which comes after the stream has
	// subscribed, so that a client that sees the head is subscribed.
	Start() error

	// Write writes p and flushes it to the client. It must give up and
	// return an error when the client has not taken p within timeout, so
	// that a stalled peer is cut off. An error ends the stream.
	Write(p []byte, timeout time.Duration) error
}

// ErrCannotStream is matched (errors.Is) by errors that say a response
// cannot carry an event stream: events would sit in a buffer (a middleware
// that reads the whole body) or a stalled client could never be cut off.
// WriteRefusal answers an error that wraps it with 500 and logs it with
// the hub's logger; wrap it with what the adapter detected.
var ErrCannotStream = transport.ErrCannotStream

// Session is a stream request that Accept has accepted.
type Session struct {
	s transport.Session
}

// Accept does for r everything the hub's Handler does before streaming:
// CORS, authentication, topics, authorization and the connection caps,
// with opts as Hub.Handler takes them. It returns the Session to serve, or
// nil when it has answered w itself (a refusal, a CORS preflight). w is
// only used for those answers, never for the stream. r must own its
// memory: a server that reuses its buffers copies what r holds first.
//
// The Session counts against the hub's caps until it has been served or
// released: call exactly one of Serve, ServeConn or Release.
func Accept(hub *sse.Hub, w http.ResponseWriter, r *http.Request, opts sse.HandlerOptions) *Session {
	return accept(hub, w, r, opts, false)
}

// AcceptUnadmitted is Accept without the connection caps: ServeConn
// applies them when it is called, and answers on the connection when a cap
// is reached. (Serve applies them too, but a StreamWriter's response is a
// 200: over a cap, it can only send a retry hint.) Use it when the server may never hand the connection over
// (fasthttp skips a hijack handler when the connection fails first): a
// session that is never served holds nothing, and needs no Release.
func AcceptUnadmitted(hub *sse.Hub, w http.ResponseWriter, r *http.Request, opts sse.HandlerOptions) *Session {
	return accept(hub, w, r, opts, true)
}

func accept(hub *sse.Hub, w http.ResponseWriter, r *http.Request, opts sse.HandlerOptions, later bool) *Session {
	s := transport.Accept(hub, w, r, opts, later)
	if s == nil {
		return nil
	}
	return &Session{s: s}
}

// Serve streams to sw until the stream ends: the client goes away (ctx is
// done, or a write fails), the hub ends it, or it reaches its maximum age.
// It returns why, or 0 when Shutdown came before the stream started.
func (s *Session) Serve(ctx context.Context, sw StreamWriter) sse.EndReason {
	return sse.EndReason(s.s.Serve(ctx, sw))
}

// ServeConn serves the session on conn, an HTTP/1.1 connection that the
// server has handed over (a hijack) after reading the request and before
// writing anything. It writes the response head (status 200, hdr and the
// stream's headers, chunked, "Connection: close"), the opening frame and
// any replay, then hands conn to the hub's shared writers and returns, as
// the hub's Handler does with HandlerOptions.Detach. From then on the hub
// owns conn: the caller must neither use nor close it, and the hub closes
// it when the stream ends. ctx bounds the replay's Store calls (and the
// stream, when ServeConn streams from the calling goroutine).
//
// A session from AcceptUnadmitted is admitted first: over a cap, or after
// Shutdown, the answer is written on conn as a complete response, and conn
// is closed.
//
// When conn has no file descriptor (it is not a syscall.Conn, or on
// systems other than Unix), ServeConn streams to it from the calling
// goroutine and returns when the stream ends.
func (s *Session) ServeConn(ctx context.Context, conn net.Conn, hdr http.Header) {
	s.s.ServeConn(ctx, conn, hdr)
}

// Release gives the session up without serving it. Serve releases it by
// itself; a second call does nothing.
func (s *Session) Release() { s.s.Release() }

// WriteRefusal answers r without a stream, as err says: an error made by
// sse.Refuse or sse.TryLater is written as it says, an error wrapping
// ErrCannotStream as 500 with a log line of the hub's, any other error as
// 500. The hub's Observer sees the refusal.
func WriteRefusal(hub *sse.Hub, w http.ResponseWriter, r *http.Request, err error) {
	transport.WriteRefusal(hub, w, r, err)
}

// StreamHeader returns the headers of an event stream response:
// Content-Type text/event-stream, Cache-Control no-cache and
// X-Accel-Buffering no (nginx then passes events through unbuffered). A
// StreamWriter sends them in Start.
func StreamHeader() http.Header {
	return http.Header{
		"Content-Type":      {"text/event-stream"},
		"Cache-Control":     {"no-cache"},
		"X-Accel-Buffering": {"no"},
	}
}

// StreamSession is a per-request stream request that AcceptStream has
// admitted.
type StreamSession struct {
	s transport.StreamSession
}

// AcceptStream admits r for a per-request stream, as Hub.Stream does: it
// applies the connection caps (and Shutdown), with the principal that
// r's context carries. It returns the StreamSession to run, or nil and the
// refusal when it has answered w itself. Call exactly one of Run or
// Release.
func AcceptStream(hub *sse.Hub, w http.ResponseWriter, r *http.Request) (*StreamSession, error) {
	s, err := transport.AcceptStream(hub, w, r)
	if s == nil {
		return nil, err
	}
	return &StreamSession{s: s}, nil
}

// Run serves the per-request stream on sw and runs fn with it, as
// Hub.Stream does: ctx must end when the client leaves. It returns why the
// stream ended and fn's error.
func (s *StreamSession) Run(ctx context.Context, sw StreamWriter, fn func(*sse.Stream) error) (sse.EndReason, error) {
	reason, err := s.s.Run(ctx, sw, fn)
	return sse.EndReason(reason), err
}

// Release gives the session up without running it. Run releases it by
// itself; a second call does nothing.
func (s *StreamSession) Release() { s.s.Release() }
