package fasthttpsse

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseadapter"
)

// warnKeep is logged once per process: Detach without KeepHijackedConns.
var warnKeep sync.Once

// detachable reports whether the stream of r can be detached: plain
// HTTP/1.1 on a server that keeps hijacked connections.
func detachable(srv *fasthttp.Server, r *http.Request) bool {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 || r.TLS != nil {
		return false
	}
	if srv == nil || !srv.KeepHijackedConns {
		warnKeep.Do(func() {
			slog.Default().Warn("fasthttpsse: detached streams need KeepHijackedConns set on the fasthttp server (in Fiber, on app.Server()); streams are served attached", "path", r.URL.Path)
		})
		return false
	}
	return true
}

// detached is a stream's session between the handler and fasthttp's call
// of the hijack handler. The session was accepted without its place under
// the hub's caps: fasthttp skips the hijack handler when the connection
// fails before it, and such a session then holds nothing.
type detached struct {
	sess *sseadapter.Session
	ctx  context.Context
	fc   *fasthttp.RequestCtx
}

// serveDetached makes fasthttp hand the connection of fc, the request r,
// over, with no response of its own, once the handler chain has returned.
//
// Middleware after the handler still sees the response that is never
// sent. Its body is a handOver: a middleware that reads the whole body
// (etag, a cache that would serve the empty response to later clients)
// gets the request refused, as an attached stream's would be, instead of
// acting on an empty body. "Content-Encoding: identity" keeps compressors
// off it: the stream goes out uncompressed.
func serveDetached(hub *sse.Hub, s *sseadapter.Session, fc *fasthttp.RequestCtx, r *http.Request) {
	d := &detached{sess: s, ctx: serverContext(fc.Done()), fc: fc}
	fc.HijackSetNoResponse(true)
	fc.Hijack(d.serve)
	fc.Response.Header.Set("Content-Encoding", "identity")
	fc.Response.SetBodyStream(&handOver{hub: hub, fc: fc, r: r}, -1)
}

// handOver is the body of a detached stream's response, which fasthttp
// never sends.
type handOver struct {
	hub *sse.Hub
	fc  *fasthttp.RequestCtx
	r   *http.Request
}

// Read finds no body.
func (*handOver) Read([]byte) (int, error) { return 0, io.EOF }

// WriteTo refuses the request when a middleware reads the whole body into
// the response's buffer: fasthttp then sends the refusal instead of
// handing the connection over, and the session, never served, holds
// nothing.
func (h *handOver) WriteTo(w io.Writer) (int64, error) {
	if _, buffering := w.(*bytebufferpool.ByteBuffer); !buffering {
		return 0, nil
	}
	h.fc.Hijack(nil)
	h.fc.HijackSetNoResponse(false)
	return refuseBuffered(h.hub, h.r, &h.fc.Response, w)
}

// serve is the hijack handler: fasthttp runs it in a goroutine of its own,
// with the connection behind a wrapper whose reads go through fasthttp's
// reader. The stream never reads, so the connection under it is used
// directly: it has the file descriptor the hub writes to. With
// KeepHijackedConns, fasthttp neither closes it nor uses it again; the hub
// closes it when the stream ends.
func (d *detached) serve(c net.Conn) {
	// fasthttp releases the RequestCtx when serve returns, not before: the
	// response header, with what middleware and fasthttp added, is still
	// there.
	hdr := make(http.Header)
	//lint:ignore SA1019 All is newer than fasthttp v1.51, which Fiber v2 apps may pin.
	d.fc.Response.Header.VisitAll(func(k, v []byte) { hdr.Add(string(k), string(v)) })
	// The hand-over body's framing and encoding are not the stream's.
	for _, k := range []string{"Content-Encoding", "Content-Length", "Transfer-Encoding"} {
		hdr.Del(k)
	}
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		c = u.UnsafeConn()
	}
	d.sess.ServeConn(d.ctx, c, hdr)
}
