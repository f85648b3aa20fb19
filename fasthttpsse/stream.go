package fasthttpsse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseadapter"
)

var (
	errClosed = errors.New("fasthttpsse: the response body was closed")
	errTaken  = errors.New("fasthttpsse: the event stream is already being read")
	// errReadable says that data waits on the socket (a pipelined request,
	// a TLS alert), so its readiness no longer tells when the client leaves.
	errReadable = errors.New("fasthttpsse: data waits on the connection")
)

// errBuffered is the refusal, logged by the hub, when a middleware reads
// the whole body of a stream.
var errBuffered = fmt.Errorf("%w: a middleware read the whole response body of an event stream "+
	"(Fiber's etag or cache middleware, Fiber v3's compress, or a logger with ${resBody}), "+
	"so no event would ever reach the client; the request was answered with 500. "+
	"Exclude the stream route from that middleware (Fiber: its Next option, "+
	`returning true where c.Get("Accept") is "text/event-stream" or c.Path() is the stream's path)`, sseadapter.ErrCannotStream)

// Reader-side states of a stream.
const (
	idle    int32 = iota
	serving       // the first Read started Serve
	unused        // closed or read by a middleware before any Read: never served
)

// stream is the response body of one event stream, and the
// sseadapter.StreamWriter that its Session (a topic stream) or its
// StreamSession (a per-request stream) is served to.
//
// fasthttp reads the body in the connection's goroutine, once the handler
// chain has returned, and writes what it reads to the connection as a
// chunk, flushed. The first Read starts run in a goroutine of its own; a Write hands its bytes to Read and returns once fasthttp has
// flushed them (it asks for more) or has failed (it then closes the body
// with the error). Write errors and write timeouts therefore reach the hub
// at once, as with http.ResponseController.Flush on net/http, and the
// response head goes out with the opening frame, after the stream has
// subscribed.
//
// fasthttp does not read from a connection while it writes a response, so
// nothing would notice a client that leaves until a write fails, which
// on TCP is usually the second write after it left. While Read has nothing
// to hand out, it waits in the netpoller for the socket to become readable
// as well, the way net/http's background read does: a client that closes
// the connection ends its stream at once. A Write wakes it with a read
// deadline in the past.
//
// Nothing here touches the RequestCtx: Serve captured what the stream
// needs (the connection, fasthttp's shutdown channel, a copy of the
// request) before the handler returned.
type stream struct {
	hub *sse.Hub
	// run serves the stream to the stream itself (a StreamWriter) until
	// it ends; release gives up a stream that is never run.
	run     func(ctx context.Context, sw sseadapter.StreamWriter) sse.EndReason
	release func()
	req     *http.Request      // a copy, for the refusal in WriteTo
	resp    *fasthttp.Response // only in WriteTo, which runs inside the middleware that reads the body
	conn    net.Conn           // write deadlines, and read deadlines to wake Read
	sock    syscall.RawConn    // the socket under conn; nil: unknown
	ctx     context.Context    // ends when the server shuts down, the client leaves or the body is closed
	cancel  context.CancelFunc

	state    atomic.Int32
	watching atomic.Bool // Read watches sock for the client's departure
	gone     atomic.Bool // the client has closed its end

	// Reader side: fasthttp's goroutine.
	rest    []byte // what Read has yet to hand out of the current write
	pending bool   // a Write waits for its bytes to be flushed

	data   chan []byte   // Write → Read (capacity 1)
	ack    chan struct{} // Read → Write: the bytes were flushed (capacity 1)
	served chan struct{} // closed when Serve has returned

	mu      sync.Mutex
	waiting bool // Read waits on the socket: wake it with a read deadline

	closeOnce sync.Once
	closed    chan struct{}
	err       error // why the body was closed; set before closed is closed
}

func newStream(hub *sse.Hub, run func(context.Context, sseadapter.StreamWriter) sse.EndReason, release func(), r *http.Request, fc *fasthttp.RequestCtx, resp *fasthttp.Response) *stream {
	ctx, cancel := context.WithCancel(serverContext(fc.Done()))
	conn := fc.Conn()
	st := &stream{
		hub: hub, run: run, release: release, req: r, resp: resp, conn: conn,
		ctx: ctx, cancel: cancel,
		data:   make(chan []byte, 1),
		ack:    make(chan struct{}, 1),
		served: make(chan struct{}),
		closed: make(chan struct{}),
	}
	st.sock = rawConn(conn)
	st.watching.Store(st.sock != nil)
	return st
}

// Read hands fasthttp the bytes of the current Write. Each call after the
// first means the bytes handed out before have been written and flushed.
func (s *stream) Read(p []byte) (int, error) {
	if s.state.CompareAndSwap(idle, serving) {
		if s.watching.Load() {
			// A fasthttp ReadTimeout would end the watch early; fasthttp
			// sets its read deadline anew before reading the next request.
			_ = s.conn.SetReadDeadline(time.Time{})
		}
		go s.serve()
	} else if s.state.Load() == unused {
		return 0, io.EOF
	}
	if s.pending && len(s.rest) == 0 {
		s.pending = false
		s.ack <- struct{}{}
	}
	for len(s.rest) == 0 {
		if !s.watching.Load() {
			select {
			case s.rest = <-s.data:
			case <-s.served:
				return 0, io.EOF // fasthttp ends the response cleanly
			case <-s.closed:
				return 0, io.EOF
			}
			break
		}
		s.mu.Lock()
		select {
		case s.rest = <-s.data:
		case <-s.served:
			s.mu.Unlock()
			return 0, io.EOF
		case <-s.closed:
			s.mu.Unlock()
			return 0, io.EOF
		default:
			s.waiting = true
		}
		s.mu.Unlock()
		if len(s.rest) > 0 {
			break
		}
		err := waitGone(s.sock)
		s.mu.Lock()
		s.waiting = false
		_ = s.conn.SetReadDeadline(time.Time{}) // undo a wake-up
		s.mu.Unlock()
		switch {
		case err == nil: // the client has gone
			s.gone.Store(true)
			s.cancel()
			s.watching.Store(false)
		case errors.Is(err, os.ErrDeadlineExceeded): // woken
		default: // data waits, or the socket cannot be watched
			s.watching.Store(false)
		}
	}
	s.pending = true
	n := copy(p, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}

// wake makes a Read that waits on the socket look at the channels again.
func (s *stream) wake() {
	s.mu.Lock()
	if s.waiting {
		_ = s.conn.SetReadDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()
}

func (s *stream) serve() {
	reason := s.run(s.ctx, s)
	if s.conn != nil {
		if reason == sse.EndWriteError || reason == sse.EndWriteTimeout || s.gone.Load() {
			// The client is gone or the connection broken: make fasthttp's
			// end of the response fail at once, so that it closes the
			// connection.
			_ = s.conn.SetWriteDeadline(time.Now())
		} else {
			// fasthttp sets no write deadline of its own unless its
			// WriteTimeout is set: leave none on a connection that lives on.
			_ = s.conn.SetWriteDeadline(time.Time{})
		}
	}
	close(s.served)
	s.wake()
}

// Start does nothing: the handler has set the status and the headers, and
// fasthttp sends them with the first chunk.
func (s *stream) Start() error { return nil }

// Write hands p to fasthttp and waits until it has been flushed to the
// client. The deadline on the connection bounds fasthttp's write.
func (s *stream) Write(p []byte, timeout time.Duration) error {
	if len(p) == 0 {
		return nil
	}
	if s.gone.Load() {
		return nil // the stream ends: its context is done
	}
	if !s.watching.Load() && s.sock != nil && peerHungUp(s.sock) {
		// Read stopped watching (data waits on the socket); look now.
		s.gone.Store(true)
		s.cancel()
		return nil
	}
	deadline := time.Now().Add(timeout)
	if s.conn != nil {
		_ = s.conn.SetWriteDeadline(deadline)
	}
	select {
	case s.data <- p:
	case <-s.closed:
		return s.closeErr(deadline)
	}
	s.wake()
	select {
	case <-s.ack:
		return nil
	case <-s.closed:
		return s.closeErr(deadline)
	}
}

// closeErr is the error of a Write that the body's closing cut short.
// fasthttp may close the body without its write error (versions before
// 1.52 call Close only, later ones Close before CloseWithError): a close
// past the write's deadline is then taken for the write timeout it most
// likely was.
func (s *stream) closeErr(deadline time.Time) error {
	if s.err == errClosed && !time.Now().Before(deadline) {
		return fmt.Errorf("%w: %w", errClosed, os.ErrDeadlineExceeded)
	}
	return s.err
}

// Close is called by fasthttp when it is done with the body; see
// CloseWithError.
func (s *stream) Close() error { return s.CloseWithError(nil) }

// CloseWithError is called by fasthttp when it is done with the body:
// with the error that ended its writing, if any. It ends a stream that is
// being served, and releases one that never was.
func (s *stream) CloseWithError(err error) error {
	s.closeOnce.Do(func() {
		if err == nil {
			err = errClosed
		}
		s.err = err
		close(s.closed)
		s.cancel()
		s.wake()
		if s.state.CompareAndSwap(idle, unused) {
			s.release()
		}
	})
	return nil
}

// WriteTo is how fasthttp's Response reads a body stream into a writer
// (io.Copy prefers it to Read). When the writer is the response's own
// body buffer, a middleware is reading the whole body (compression that
// buffers, ETags, a logger of bodies): an event stream has no end, so
// instead of waiting for one, WriteTo answers the request with 500 and
// logs what to do. Any other writer streams the body, as fasthttp's
// streaming compressor does: it flushes every write, so the stream goes
// out compressed, event by event.
func (s *stream) WriteTo(w io.Writer) (int64, error) {
	if _, buffering := w.(*bytebufferpool.ByteBuffer); !buffering {
		return s.copyTo(w)
	}
	if !s.state.CompareAndSwap(idle, unused) {
		return 0, errTaken
	}
	s.release()
	return refuseBuffered(s.hub, s.req, s.resp, w)
}

// refuseBuffered answers r with 500 when a middleware reads the whole body
// of its stream into w (the response's body buffer): the refusal's head
// replaces the stream's in resp, and its body goes to w. The hub logs what
// to do.
func refuseBuffered(hub *sse.Hub, r *http.Request, resp *fasthttp.Response, w io.Writer) (int64, error) {
	ans := newAnswer()
	sseadapter.WriteRefusal(hub, ans, r, errBuffered)
	for k := range sseadapter.StreamHeader() {
		resp.Header.Del(k)
	}
	resp.Header.Del("Content-Encoding")
	ans.copyHeader(&resp.Header)
	resp.SetStatusCode(ans.status)
	n, err := w.Write(ans.body)
	return int64(n), err
}

// copyTo streams the body into w, a writer that flushes every write: each
// Read after a write tells the stream that its bytes have left.
func (s *stream) copyTo(w io.Writer) (int64, error) {
	buf := make([]byte, 4096)
	var total int64
	for {
		n, err := s.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
