package fasthttpsse

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/valyala/fasthttp"

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

// serveDetached makes fasthttp hand the connection of fc over, with no
// response of its own, once the handler chain has returned.
func serveDetached(s *sseadapter.Session, fc *fasthttp.RequestCtx) {
	d := &detached{sess: s, ctx: serverContext(fc.Done()), fc: fc}
	fc.HijackSetNoResponse(true)
	fc.Hijack(d.serve)
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
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		c = u.UnsafeConn()
	}
	d.sess.ServeConn(d.ctx, c, hdr)
}
