package sse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Detached streams (HandlerOptions.Detach).
//
// A detached stream is an HTTP/1.1 connection that the handler has taken
// over from net/http (Hijack). The handler goroutine writes the response
// head, the opening frame and any replay with ordinary blocking writes,
// then hands the connection to the hub and returns, so that net/http's
// goroutine and buffers are freed. From then on:
//
//   - the subscriber's wake-ups schedule the connection on a small pool of
//     worker goroutines (one per CPU) instead of waking a goroutine of its
//     own;
//   - a worker writes what is queued with non-blocking writes. When the
//     socket is full it keeps the unwritten bytes, arms a timer for
//     WriteTimeout and moves on: a stalled peer never holds a worker;
//   - a poller tells the hub when a full socket can take bytes again and,
//     on Linux (epoll, EPOLLRDHUP), when the peer closes the connection.
//     Elsewhere a goroutine waits for writability only while a socket is
//     full, and a departed peer is noticed when a heartbeat fails.
//
// The response is chunked, as net/http frames a streamed HTTP/1.1
// response, so that a proxy can tell a complete response from a cut one.
// It says "Connection: close" (RFC 9112, 9.6: a server that will close the
// connection after a response says so in it): the connection closes after
// the last chunk, and a proxy that kept it for its next request (nginx's
// upstream keepalive) would send that request on a closed connection.
// The rule against "Connection: close" (docs/protocol.md P3) is about
// HTTP/2, which detached streams never are.

// Detach states of a detachedConn, for scheduling.
const (
	detIdle    int32 = iota // not queued
	detQueued               // in the run queue
	detRunning              // a worker runs it
	detRerun                // a worker runs it, and it must run once more
)

// A detachedConn is one detached stream's connection.
type detachedConn struct {
	eng  *engine
	sess *session
	s    *subscriber
	conn net.Conn
	raw  syscall.RawConn
	id   int32 // the poller's name for it

	state    atomic.Int32
	gone     atomic.Bool   // the peer closed or reset the connection
	killed   atomic.Bool   // Shutdown gave up waiting and closed it
	blocked  atomic.Bool   // waiting until the socket can take bytes
	writable atomic.Uint64 // writability notices from the poller
	expired  atomic.Bool   // the write timer fired

	// Owned by the worker running the connection.
	out      []byte    // framed bytes not yet written
	outBuf   *[]byte   // the pooled buffer out lives in
	deadline time.Time // when out must be written by
	timer    *time.Timer
	rest     []queued    // taken frames not yet framed
	off      int         // bytes of rest[0] already framed
	reset    ResetReason // a reset event to frame before rest
	ending   EndReason
	last     []byte // a frame to send before the end (EndStreams)
	cur      []byte // the frame of rest[0], as this stream sends it
	own      []byte // the buffer of a frame with this stream's own ID
	final    bool   // the retry hint and last chunk are framed
	sent     int
	done     bool
}

// engine runs the detached streams of a hub: a run queue served by a few
// workers, and a poller. It lives while the hub has detached streams.
type engine struct {
	hub  *Hub
	poll poller

	mu      sync.Mutex
	cond    sync.Cond
	queue   []*detachedConn // queue[head:] waits to run
	head    int
	conns   map[*detachedConn]struct{}
	stopped bool
}

// poller watches detached connections.
type poller interface {
	// add starts watching d. With peer notices, the poller calls
	// d.peerGone when the peer closes or resets the connection, or
	// half-closes it (see epoller). An error means the stream cannot be
	// detached.
	add(d *detachedConn) error
	// waitWritable makes sure that d.canWrite is called once the socket
	// of d can take bytes again (spurious calls are allowed).
	waitWritable(d *detachedConn)
	// remove stops watching d; d's connection is closed after it.
	remove(d *detachedConn)
	// close stops the poller once every connection is removed.
	close()
}

// newPoller returns the poller for a new engine: epoll on Linux, or the
// portable one. Tests replace it.
var newPoller = defaultPoller

// adopt gives the hub's engine a detached connection, starting the
// engine if it has none.
func (h *Hub) adopt(d *detachedConn) error {
	h.detMu.Lock()
	defer h.detMu.Unlock()
	e := h.eng
	if e == nil {
		p, err := newPoller()
		if err != nil {
			return err
		}
		e = &engine{hub: h, poll: p, conns: make(map[*detachedConn]struct{})}
		e.cond.L = &e.mu
		for range runtime.GOMAXPROCS(0) {
			go e.work()
		}
		h.eng = e
	}
	d.eng = e
	if err := e.poll.add(d); err != nil {
		if len(e.conns) == 0 {
			h.eng = nil
			e.stop()
		}
		return err
	}
	e.mu.Lock()
	e.conns[d] = struct{}{}
	e.mu.Unlock()
	return nil
}

// disown removes a finished connection from the engine, and stops the
// engine after the last one.
func (h *Hub) disown(d *detachedConn) {
	h.detMu.Lock()
	defer h.detMu.Unlock()
	e := d.eng
	e.poll.remove(d)
	e.mu.Lock()
	delete(e.conns, d)
	last := len(e.conns) == 0
	e.mu.Unlock()
	if last && h.eng == e {
		h.eng = nil
		e.stop()
	}
}

// killDetached resets every detached connection: Shutdown gave up waiting
// for them.
func (h *Hub) killDetached() {
	h.detMu.Lock()
	e := h.eng
	h.detMu.Unlock()
	if e == nil {
		return
	}
	e.mu.Lock()
	conns := make([]*detachedConn, 0, len(e.conns))
	for d := range e.conns {
		conns = append(conns, d)
	}
	e.mu.Unlock()
	for _, d := range conns {
		d.killed.Store(true)
		d.schedule() // workers never wait, so it runs at once
	}
}

func (e *engine) stop() {
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	e.cond.Broadcast()
	e.poll.close()
}

func (e *engine) push(d *detachedConn) {
	e.mu.Lock()
	if len(e.queue) == cap(e.queue) && e.head > 0 {
		// Reuse the room before head rather than grow.
		n := copy(e.queue, e.queue[e.head:])
		clear(e.queue[n:])
		e.queue, e.head = e.queue[:n], 0
	}
	e.queue = append(e.queue, d)
	e.mu.Unlock()
	e.cond.Signal()
}

// work runs queued connections until the engine stops.
func (e *engine) work() {
	scratch := make([]byte, 0, writeChunk+chunkOverhead)
	var batch []*detachedConn
	for {
		e.mu.Lock()
		for e.head == len(e.queue) && !e.stopped {
			e.cond.Wait()
		}
		if e.head == len(e.queue) {
			e.mu.Unlock()
			return
		}
		// Take a share of the queue, leaving the rest to other workers.
		n := min(len(e.queue)-e.head, 64)
		batch = append(batch[:0], e.queue[e.head:e.head+n]...)
		clear(e.queue[e.head : e.head+n])
		e.head += n
		if e.head == len(e.queue) {
			e.queue, e.head = e.queue[:0], 0
		} else {
			e.cond.Signal()
		}
		e.mu.Unlock()
		for _, d := range batch {
			d.run(&scratch)
		}
		clear(batch)
	}
}

// schedule makes a worker run d soon.
func (d *detachedConn) schedule() {
	for {
		switch d.state.Load() {
		case detIdle:
			if d.state.CompareAndSwap(detIdle, detQueued) {
				d.eng.push(d)
				return
			}
		case detRunning:
			if d.state.CompareAndSwap(detRunning, detRerun) {
				return
			}
		default:
			return
		}
	}
}

// run steps d until nothing more is asked of it.
func (d *detachedConn) run(scratch *[]byte) {
	d.state.Store(detRunning)
	for {
		d.step(scratch)
		if d.state.CompareAndSwap(detRunning, detIdle) {
			return
		}
		d.state.Store(detRunning)
	}
}

// peerGone is the poller's notice that the peer closed the connection.
func (d *detachedConn) peerGone() {
	d.gone.Store(true)
	d.schedule()
}

// canWrite is the poller's notice that the socket can take bytes.
func (d *detachedConn) canWrite() {
	d.writable.Add(1)
	if d.blocked.CompareAndSwap(true, false) {
		d.schedule()
	}
}

// step writes what the stream owes, until the socket is full or nothing
// is left, and ends the stream when it is over.
func (d *detachedConn) step(scratch *[]byte) {
	if d.done {
		return
	}
	if d.killed.Load() {
		d.finish(EndShutdown, nil)
		return
	}
	if d.gone.Load() {
		d.finish(EndClientGone, nil)
		return
	}
	if d.expired.Swap(false) && len(d.out) > 0 && !time.Now().Before(d.deadline) {
		d.finish(EndWriteTimeout, os.ErrDeadlineExceeded)
		return
	}
	if d.blocked.Load() {
		return // the poller calls back when the socket can take more
	}
	for {
		if len(d.out) == 0 {
			var chunk []byte
			*scratch, chunk = d.frame(*scratch)
			if len(chunk) == 0 {
				if d.final {
					d.finish(d.ending, nil)
				}
				return
			}
			d.out = chunk
		}
		seen := d.writable.Load()
		n, err := d.write(d.out)
		if err != nil {
			d.finish(writeErrorReason(err), err)
			return
		}
		d.out = d.out[n:]
		if len(d.out) == 0 {
			d.releaseOut()
			d.s.wrote.Store(true)
			d.s.beat.Store(false)
			continue
		}
		// The socket is full: keep the rest, and wait for the poller.
		d.keepOut()
		d.blocked.Store(true)
		if d.writable.Load() != seen && d.blocked.CompareAndSwap(true, false) {
			continue // it became writable in between
		}
		d.eng.poll.waitWritable(d)
		return
	}
}

// keepOut moves the unwritten bytes out of the worker's scratch buffer
// into one of the connection's own, and starts the write timer for them
// unless it runs already.
func (d *detachedConn) keepOut() {
	if d.outBuf == nil {
		d.outBuf = outBuffers.Get().(*[]byte)
		*d.outBuf = append((*d.outBuf)[:0], d.out...)
		d.out = *d.outBuf
	}
	if d.deadline.IsZero() {
		timeout := d.s.hub.opts.WriteTimeout
		d.deadline = time.Now().Add(timeout)
		if d.timer == nil {
			d.timer = time.AfterFunc(timeout, d.onTimeout)
		} else {
			d.timer.Reset(timeout)
		}
	}
}

// releaseOut is called when out has been written: its deadline is met.
func (d *detachedConn) releaseOut() {
	d.out = nil
	if d.outBuf != nil {
		if cap(*d.outBuf) <= 2*(writeChunk+chunkOverhead) {
			*d.outBuf = (*d.outBuf)[:0]
			outBuffers.Put(d.outBuf)
		}
		d.outBuf = nil
	}
	if !d.deadline.IsZero() {
		d.deadline = time.Time{}
		d.timer.Stop()
	}
}

func (d *detachedConn) onTimeout() {
	d.expired.Store(true)
	d.blocked.Store(false)
	d.schedule()
}

// outBuffers holds the buffers that blocked connections keep their
// unwritten bytes in.
var outBuffers = sync.Pool{New: func() any { b := make([]byte, 0, writeChunk+chunkOverhead); return &b }}

// chunkOverhead bounds what chunked framing adds to a chunk: a length line
// of up to 8 hex digits and two CRLFs.
const chunkOverhead = 8 + 2 + 2

const lastChunk = "0\r\n\r\n"

// frame frames the next chunk the stream owes in buf (whose length is
// ignored), and returns buf, grown if it had to, and the chunk, which is
// empty when the stream owes nothing. It takes the subscriber's queue when
// everything taken before is framed.
func (d *detachedConn) frame(buf []byte) (grown, chunk []byte) {
	if d.final {
		return buf, nil
	}
	s, h := d.s, d.s.hub
	if len(d.rest) == 0 && d.reset == "" && d.ending == 0 {
		batch, reset, ended, last := s.take()
		if ended == EndSlowConsumer {
			h.log.Info("sse: slow client disconnected", "principal", s.info.Principal.ID, "topics", s.topics)
			batch = nil
		}
		d.rest, d.off, d.reset, d.ending, d.last = batch, 0, reset, ended, last
	}
	// The payload goes after room for its length line, which is written
	// in front of it once the length is known.
	const room = 10
	b := append(buf[:0], make([]byte, room)...)
	if d.reset != "" {
		b = h.appendReset(b, d.reset, s.after)
		d.reset = ""
	}
	for len(d.rest) > 0 && len(b)-room < writeChunk {
		q := &d.rest[0]
		if d.off == 0 {
			if q.seq <= s.after[q.ti] { // replayed already
				d.rest = d.rest[1:]
				continue
			}
			s.after[q.ti] = q.seq
			d.cur = q.f.b
			if !h.ordered && len(s.after) > 1 {
				// The frame goes with this stream's own ID.
				d.own = h.appendFrame(d.own[:0], q.f.b, s.after)
				d.cur = d.own
			}
		}
		n := min(len(d.cur)-d.off, writeChunk-(len(b)-room))
		b = append(b, d.cur[d.off:d.off+n]...)
		d.off += n
		if d.off == len(d.cur) {
			d.sent++
			d.rest, d.off, d.cur = d.rest[1:], 0, nil
		}
	}
	if len(d.rest) == 0 && d.ending != 0 {
		b = append(b, d.last...) // small: it was validated as one event
		b = appendValid(b, &Event{Retry: h.closeRetry()})
		d.final = true
	}
	if len(b) == room && !d.final && s.beat.Swap(false) {
		b = append(b, pingFrame...)
	}
	if len(b) == room {
		return b[:0], nil
	}
	var line [room]byte
	l := append(strconv.AppendInt(line[:0], int64(len(b)-room), 16), '\r', '\n')
	start := room - len(l)
	copy(b[start:], l)
	b = append(b, '\r', '\n')
	return b[:0], b[start:]
}

// finish ends the stream: it unregisters the subscriber, reports the end,
// releases the session, then ends the response if it can and closes the
// connection.
func (d *detachedConn) finish(reason EndReason, err error) {
	d.done = true
	// Only a response whose every chunk was written whole can be ended
	// with the last chunk; after a partial one it would be garbage.
	complete := d.final && len(d.out) == 0
	if d.timer != nil {
		d.timer.Stop()
	}
	if d.outBuf != nil {
		outBuffers.Put(d.outBuf)
		d.out, d.outBuf = nil, nil
	}
	// Count the stream out before the client can see its end, as an
	// attached stream is: a client that reconnects at once must not find
	// its old stream still holding a place under the caps.
	h := d.s.hub
	h.detached.Add(-1)
	h.unregister(d.s)
	h.streamEnded(d.s, reason, err, d.sent)
	d.sess.Release()
	switch {
	case complete:
		// The retry hint is written; the last chunk ends the response.
		// It is tiny and follows a write the socket took whole, so it
		// fits; if it did not, the close ends the stream all the same.
		_, _ = d.write([]byte(lastChunk))
		d.drain() // so that unread request bytes do not turn close into a reset
	case reason == EndWriteTimeout || d.killed.Load():
		// The peer does not read: reset the connection rather than leave
		// the kernel holding what it will not take.
		if tc, ok := d.conn.(interface{ SetLinger(int) error }); ok {
			_ = tc.SetLinger(0)
		}
	}
	h.disown(d)
	_ = d.conn.Close()
}

// serveDetached serves the session on r's connection, taken over from
// net/http, and returns true; or returns false, having written nothing,
// when r's connection cannot be taken over (HTTP/2, TLS, a ResponseWriter
// that cannot hijack).
func (s *session) serveDetached(w http.ResponseWriter, r *http.Request) bool {
	if !detachSupported || r.ProtoMajor != 1 || r.ProtoMinor < 1 || r.TLS != nil {
		return false
	}
	conn, err := hijack(w)
	if err != nil {
		if !errors.Is(err, http.ErrNotSupported) {
			s.hub.log.Debug("sse: cannot detach the stream; serving it attached", "err", err)
		}
		return false
	}
	// Bytes the client sent after its request (pipelining) are dropped:
	// the connection serves this stream only, and closes after it.
	s.ServeConn(r.Context(), conn, w.Header())
	return true
}

// hijack takes w's connection over. A ResponseWriter whose Hijack panics
// (gin's does when the writer it wraps cannot hijack) counts as one that
// cannot hijack.
func hijack(w http.ResponseWriter) (conn net.Conn, err error) {
	defer func() {
		if p := recover(); p != nil {
			conn, err = nil, fmt.Errorf("%w: Hijack panicked: %v", http.ErrNotSupported, p)
		}
	}()
	conn, _, err = http.NewResponseController(w).Hijack()
	return conn, err
}

// ServeConn serves the session on conn, an HTTP/1.1 connection that the
// server has handed over (a hijack) after reading the request and before
// writing anything. It writes the response head (status 200, hdr and the
// stream's headers, chunked), the opening frame and any replay, then hands
// conn to the hub's shared writers and returns, as Handler does with
// HandlerOptions.Detach. From then on the hub owns conn: the caller must
// neither use nor close it, and the hub closes it when the stream ends. ctx
// bounds the replay's Store calls (and the stream, when ServeConn streams
// from the calling goroutine). Adapters for servers other than net/http
// use it; Handler serves net/http's connections by itself.
//
// When conn has no file descriptor (it is not a syscall.Conn, or on
// systems other than Unix), ServeConn streams to it from the calling
// goroutine and returns when the stream ends.
func (s *session) ServeConn(ctx context.Context, conn net.Conn, hdr http.Header) {
	h := s.hub
	if !s.admitted {
		if err := h.admit(s.r, &s.info); err != nil {
			writeConnRefusal(h, conn, s.r, hdr, err)
			return
		}
		s.admitted = true
	}
	sub := newSubscriber(h, &s.info)
	st := &connStream{conn: conn, head: responseHead(hdr)}
	sent := 0
	started, reason, err := h.open(ctx, st, sub, s.lastID, &sent)
	if started && reason == 0 {
		d := &detachedConn{sess: s, s: sub, conn: conn, sent: sent}
		raw, ok := rawConn(conn)
		if ok && detachSupported {
			d.raw = raw
			ok = conn.SetWriteDeadline(time.Time{}) == nil
		}
		if ok {
			if aerr := h.adopt(d); aerr != nil {
				h.log.Warn("sse: cannot detach the stream; serving it attached", "err", aerr)
				ok = false
			}
		}
		if ok {
			sub.det.Store(d)
			h.detached.Add(1)
			d.schedule()
			return // d releases the session
		}
		// Serve the stream from this goroutine. Nobody reads the
		// connection, so a departed client is noticed when a write fails:
		// heartbeats see to that.
		reason, err = h.pump(ctx, st, sub, &sent)
		h.unregister(sub)
	}
	if started {
		h.streamEnded(sub, reason, err, sent)
	}
	s.Release() // before the client can see the end, as attached
	if !started || (reason != EndClientGone && reason != EndWriteError && reason != EndWriteTimeout) {
		st.end(h.opts.WriteTimeout)
	}
	_ = conn.Close()
}

// writeConnRefusal answers a request whose connection was handed over
// before its session was admitted, and closes the connection: the answer
// is what writeRefusal would have written (a retry hint in a 200 stream,
// or a status with a message), with hdr, in one HTTP/1.1 response.
func writeConnRefusal(h *Hub, conn net.Conn, r *http.Request, hdr http.Header, err error) {
	rec := &answerRecorder{header: hdr.Clone()}
	if rec.header == nil {
		rec.header = http.Header{}
	}
	h.writeRefusal(rec, r, err)
	status := max(rec.status, http.StatusOK)
	hd := rec.header
	for _, k := range []string{"Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade"} {
		hd.Del(k)
	}
	hd.Set("Content-Length", strconv.Itoa(len(rec.body)))
	hd.Set("Connection", "close")
	if _, ok := hd["Date"]; !ok {
		hd.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n")
	_ = hd.Write(&b)
	b.WriteString("\r\n")
	b.Write(rec.body)
	if conn.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout)) == nil {
		_, _ = conn.Write(b.Bytes())
	}
	_ = conn.Close()
}

// answerRecorder is an http.ResponseWriter that keeps what is written to it.
type answerRecorder struct {
	header http.Header
	status int
	body   []byte
}

func (w *answerRecorder) Header() http.Header { return w.header }

func (w *answerRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *answerRecorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

// Flush does nothing: the answer is written whole.
func (w *answerRecorder) Flush() {}

// responseHead returns the head of a detached stream's response: status
// 200, hdr with the stream's headers, chunked, and "Connection: close".
func responseHead(hdr http.Header) []byte {
	hd := hdr.Clone()
	if hd == nil {
		hd = http.Header{}
	}
	for _, k := range []string{"Connection", "Content-Encoding", "Content-Length", "Keep-Alive", "Proxy-Connection", "Trailer", "Transfer-Encoding", "Upgrade"} {
		hd.Del(k)
	}
	setStreamHeaders(hd)
	if _, ok := hd["Date"]; !ok {
		hd.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	hd.Set("Transfer-Encoding", "chunked")
	hd.Set("Connection", "close")
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	_ = hd.Write(&b)
	b.WriteString("\r\n")
	return b.Bytes()
}

// connStream is the StreamWriter of a detached stream while its handler
// goroutine writes to it: the opening frame and replay, with the response
// head before the first chunk.
type connStream struct {
	conn net.Conn
	head []byte
}

func (c *connStream) Start() error { return nil }

var crlf = []byte("\r\n")

func (c *connStream) Write(p []byte, timeout time.Duration) error {
	if len(p) == 0 {
		return nil // an empty chunk would end the response
	}
	if err := c.conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	var line [18]byte
	l := append(strconv.AppendInt(line[:0], int64(len(p)), 16), '\r', '\n')
	bufs := net.Buffers{c.head, l, p, crlf}
	c.head = nil
	_, err := bufs.WriteTo(c.conn)
	return err
}

// end writes the last chunk (and the head, if nothing was written).
func (c *connStream) end(timeout time.Duration) {
	if c.conn.SetWriteDeadline(time.Now().Add(timeout)) != nil {
		return
	}
	bufs := net.Buffers{c.head, []byte(lastChunk)}
	_, _ = bufs.WriteTo(c.conn)
}
