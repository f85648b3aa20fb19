package fibersse

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"runtime"

	"github.com/gofiber/fiber/v3"
	"github.com/valyala/fasthttp"

	"github.com/ssekit/ssekit/core/sse"
)

// Detach serves each stream on a detached connection, as
// sse.HandlerOptions.Detach does on net/http (WithHandlerOptions with
// Detach set does the same). Once the request is accepted, the handler
// hijacks fasthttp's connection (RequestCtx.Hijack, with no response of
// fasthttp's); the hub writes the response head, the opening frame and any
// replay, then hands the connection to a few shared goroutines that write to
// every detached stream. No fasthttp goroutine, buffer or RequestCtx stays
// with the stream: an idle stream costs a few KiB instead of two goroutines
// and fasthttp's buffers.
//
// It needs fasthttp's KeepHijackedConns, which stops fasthttp from closing
// a hijacked connection when its hijack handler returns. Set it before the
// app serves:
//
//	app := fiber.New()
//	app.Server().KeepHijackedConns = true
//
// It applies to every handler of the app that hijacks (a WebSocket upgrade,
// say): those must then close their connections themselves. Without it,
// streams are served as without Detach, and the first one logs a warning
// (slog.Default). Handler reads the setting from c.App().Server(): an app
// whose Handler() is served by a fasthttp.Server of your own must set it on
// that server too.
//
// Streams over TLS and HTTP/1.0 requests are served as usual. The handler
// returns before the stream starts, as it always does on fasthttp; middleware
// after it sees an empty response, so compress and etag no longer refuse the
// stream (it goes out uncompressed). A detached connection is invisible to
// fasthttp: app.Shutdown neither waits for nor ends its stream, so call
// hub.Shutdown first (the OnPreShutdown hook in the package example does).
// A connection with no file descriptor of its own (a listener that wraps
// connections, fasthttp's MaxConnsPerIP) is served from the hijack
// handler's goroutine until its stream ends.
func Detach() Option {
	return func(c *config) { c.detach = true }
}

// detachable reports whether the stream of c can be detached: plain
// HTTP/1.1 on a server that keeps hijacked connections.
func (cfg *config) detachable(c fiber.Ctx, r *http.Request) bool {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 || r.TLS != nil {
		return false
	}
	if srv := c.App().Server(); srv == nil || !srv.KeepHijackedConns {
		cfg.warnKeep.Do(func() {
			slog.Default().Warn("fibersse: Detach needs app.Server().KeepHijackedConns = true; streams are served attached", "path", r.URL.Path)
		})
		return false
	}
	return true
}

// detached is a stream's session between the handler and fasthttp's call
// of the hijack handler.
type detached struct {
	sess    *sse.Session
	ctx     context.Context
	fc      *fasthttp.RequestCtx
	cleanup runtime.Cleanup
}

// serveDetached makes fasthttp hand the connection of c over, with no
// response of its own, once the handler chain has returned.
func serveDetached(s *sse.Session, fc *fasthttp.RequestCtx) {
	d := &detached{sess: s, ctx: serverContext(fc.Done()), fc: fc}
	// fasthttp skips the hijack handler when the connection fails before
	// it (a broken pipelined connection): the session, which counts
	// against the hub's caps, is then released once d is garbage.
	d.cleanup = runtime.AddCleanup(d, (*sse.Session).Release, s)
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
	d.cleanup.Stop()
	// fasthttp releases the RequestCtx when serve returns, not before: the
	// response header, with what middleware and fasthttp added, is still
	// there.
	hdr := make(http.Header)
	for k, v := range d.fc.Response.Header.All() {
		hdr.Add(string(k), string(v))
	}
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		c = u.UnsafeConn()
	}
	d.sess.ServeConn(d.ctx, c, hdr)
}
