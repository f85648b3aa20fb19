package sse

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// Stream is a per-request event stream: the events of one client's own
// request, such as the tokens of a model's answer, a job's progress or the
// rows of an export, sent by the handler that serves the request. Hub.Stream
// opens one. Its heartbeats, write deadlines, end when the client leaves,
// connection caps and Shutdown are the hub's, as for topic streams; its
// events are the caller's, with the IDs the caller chooses or none, and
// they are not recorded.
//
// Send and the other methods may be called from any goroutine, one at a
// time or concurrently, until the function given to Hub.Stream returns.
type Stream struct {
	hub    *Hub
	sub    *subscriber
	info   StreamInfo
	ctx    context.Context
	cancel context.CancelFunc
	parent context.Context // ends when the client leaves
	lastID string

	mu     sync.Mutex // serializes writes
	st     streamWriter
	buf    []byte
	ended  *StreamEndedError // non-nil once no more events can be sent
	closed bool              // the producer returned: nothing may write
	sent   int
}

// ErrStreamEnded is matched (errors.Is) by the errors of a Stream's
// methods once the stream has ended; errors.As with *StreamEndedError
// tells why.
var ErrStreamEnded = errors.New("sse: the stream has ended")

// StreamEndedError is the error of a Stream's methods once the stream has
// ended: the client left (EndClientGone), stopped reading
// (EndWriteTimeout), a write failed (EndWriteError), or the hub ended it
// (EndShutdown, EndMaxAge, EndRequested, or EndDeadline for a request
// context that passed its deadline).
type StreamEndedError struct {
	Reason EndReason
	Err    error // the write error, if one ended the stream
}

func (e *StreamEndedError) Error() string {
	if e.Err != nil {
		return "sse: the stream has ended (" + e.Reason.String() + "): " + e.Err.Error()
	}
	return "sse: the stream has ended (" + e.Reason.String() + ")"
}

// Is reports whether target is ErrStreamEnded.
func (e *StreamEndedError) Is(target error) bool { return target == ErrStreamEnded }

// Unwrap returns the write error, if any.
func (e *StreamEndedError) Unwrap() error { return e.Err }

// Stream answers r with a per-request event stream and runs fn with it:
// the response head goes out at once (status 200, text/event-stream, and
// an opening comment, flushed), then fn sends events until it returns,
// which ends the response. r may be a GET or a POST (a request whose body
// says what to stream: read it before or inside fn). Stream returns fn's
// error.
//
// While fn runs, the hub sends heartbeats when the stream is idle (from
// its one ticker: no timer per stream), bounds every write by
// Options.WriteTimeout, and ends the stream when the client leaves, when
// the request's context ends, at Options.MaxStreamAge, at Hub.Shutdown and
// at Hub.EndStreams (of the request's principal): then the Stream's
// context is done and Send returns an error that matches ErrStreamEnded,
// at once. fn should return then. When the hub ended the stream, a retry
// hint (Options.CloseRetry) follows fn's return, so that an EventSource
// comes back; a client that left gets nothing more.
//
// The stream counts against MaxStreams, MaxStreamsPerPrincipal (the
// principal that AuthMiddleware or WithPrincipal left in r's context) and
// MaxStreamsPerIP. Over a cap, after Shutdown, or when w cannot stream
// (http.TimeoutHandler, compression that hides the connection: see
// Hub.Handler), Stream answers r itself, does not run fn, and returns the
// refusal: an error made by Refuse or TryLater.
//
// A handler that streams a model's answer:
//
//	func answer(w http.ResponseWriter, r *http.Request) {
//		prompt := readPrompt(r)
//		hub.Stream(w, r, func(s *sse.Stream) error {
//			for tok := range model.Generate(s.Context(), prompt) {
//				if err := s.Send(sse.Event{Type: "token", Data: []byte(tok)}); err != nil {
//					return err
//				}
//			}
//			return s.Send(sse.Event{Type: "done"})
//		})
//	}
func (h *Hub) Stream(w http.ResponseWriter, r *http.Request, fn func(*Stream) error) error {
	if !canFlush(w) {
		h.writeRefusal(w, r, errCannotFlush)
		return Refuse(http.StatusInternalServerError, "this server cannot stream events (see its log)")
	}
	info, err := h.admitStream(r)
	if err != nil {
		h.writeRefusal(w, r, err)
		return err
	}
	return h.runStreamReason(r.Context(), r, &info, newHTTPStream(w), fn, nil)
}

// admitStream counts a per-request stream of r in, or returns the refusal.
func (h *Hub) admitStream(r *http.Request) (StreamInfo, error) {
	info := StreamInfo{ClientIP: h.opts.ClientIP(r), Started: time.Now()}
	info.Principal, _ = PrincipalFrom(r.Context())
	return info, h.admit(r, &info)
}

// runStreamReason serves an admitted per-request stream on st, with ctx
// ending when the client leaves, releases it, and returns fn's error; why
// the stream ended goes to *reason, when reason is not nil.
func (h *Hub) runStreamReason(ctx context.Context, r *http.Request, info *StreamInfo, st streamWriter, fn func(*Stream) error, reason *EndReason) (err error) {
	defer h.release(info)
	end := EndWriteError
	defer func() {
		if reason != nil {
			*reason = end
		}
	}()
	s := &Stream{hub: h, info: *info, st: st, parent: ctx, lastID: r.Header.Get("Last-Event-ID")}
	s.ctx, s.cancel = context.WithCancel(ctx)
	defer s.cancel()
	stop := context.AfterFunc(ctx, func() { s.endWith(contextEnd(ctx)) })
	defer stop()
	s.sub = newSubscriber(h, &s.info)
	s.sub.req = s
	h.beats.add()
	defer h.beats.remove()
	if err := st.Start(); err != nil {
		return &StreamEndedError{Reason: EndWriteError, Err: err}
	}
	if ok, _ := h.register(ctx, s.sub); !ok { // Shutdown came after admit
		_ = h.write(st, appendValid(nil, &Event{Retry: h.closeRetry()}))
		end = EndShutdown
		return &StreamEndedError{Reason: EndShutdown}
	}
	if f := h.opts.Observer.StreamOpened; f != nil {
		f(s.info)
	}
	opening := append([]byte(nil), ": ok\n"...)
	if h.opts.Retry > 0 {
		opening = appendRetry(opening, h.opts.Retry)
	}
	opening = append(opening, '\n')
	if werr := s.write(opening); werr != nil {
		err = werr
	} else {
		err = fn(s)
	}
	end = s.close()
	h.unregister(s.sub)
	h.streamEnded(s.sub, end, nil, s.sent)
	return err
}

// contextEnd is the reason a stream ends with its request's context.
func contextEnd(ctx context.Context) EndReason {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return EndDeadline
	}
	return EndClientGone
}

// Context returns a context that is done when the stream has ended: when
// the client left or the hub ended the stream. Give it to the work that
// produces the events, so that it stops with the stream.
func (s *Stream) Context() context.Context { return s.ctx }

// LastEventID returns the Last-Event-ID the client sent, or "": the ID of
// the last event it received before it reconnected, for a producer that
// can go on from there (see the job example in docs/replay.md).
func (s *Stream) LastEventID() string { return s.lastID }

// Info describes the stream, as the Observer sees it.
func (s *Stream) Info() StreamInfo { return s.info }

// Send writes ev to the client and flushes it. Every field of ev is sent
// as it is (see Event), its ID included: the hub records nothing and
// assigns no ID. An invalid event is an error that matches
// ErrInvalidEvent, and nothing is sent. Once the stream has ended, Send
// returns an error that matches ErrStreamEnded, at once.
func (s *Stream) Send(ev Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.endedLocked(); err != nil {
		return err
	}
	s.buf = appendValid(s.buf[:0], &ev)
	if err := s.writeLocked(s.buf); err != nil {
		return err
	}
	if !ev.isControl() {
		s.sent++
	}
	if cap(s.buf) > writeChunk {
		s.buf = nil // do not keep a large buffer for the stream's life
	}
	return nil
}

// Comment sends a comment line, which clients ignore: what a heartbeat
// is. It must not contain CR or LF.
func (s *Stream) Comment(text string) error {
	if text == "" {
		return s.Send(Event{Flags: EmptyComment})
	}
	return s.Send(Event{Comment: text})
}

// write writes p, serialized with every other write.
func (s *Stream) write(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.endedLocked(); err != nil {
		return err
	}
	return s.writeLocked(p)
}

// endedLocked returns the stream's end, or nil while it runs; s.mu is
// held. It sees the end of the request's context at once, before the
// callback that records it has run.
func (s *Stream) endedLocked() error {
	if s.ended == nil && s.parent.Err() != nil {
		s.ended = &StreamEndedError{Reason: contextEnd(s.parent)}
	}
	if s.ended != nil {
		return s.ended
	}
	return nil
}

// writeLocked writes p; s.mu is held. A failed write ends the stream.
func (s *Stream) writeLocked(p []byte) error {
	if err := s.hub.write(s.st, p); err != nil {
		s.ended = &StreamEndedError{Reason: writeErrorReason(err), Err: err}
		s.cancel()
		return s.ended
	}
	s.sub.wrote.Store(true)
	s.sub.beat.Store(false)
	return nil
}

// wake is the subscriber's wake-up: the hub ended the stream, or a
// heartbeat is due. It never blocks.
func (s *Stream) wake() {
	s.sub.mu.Lock()
	ended := s.sub.ended
	s.sub.mu.Unlock()
	if ended != 0 {
		s.endWith(ended)
		return
	}
	if s.sub.beat.Load() {
		s.hub.beats.push(s)
	}
}

// endWith ends the stream for reason, unless it has ended: no more events
// can be sent, and its context is done.
func (s *Stream) endWith(reason EndReason) {
	s.mu.Lock()
	if s.ended == nil {
		s.ended = &StreamEndedError{Reason: reason}
	}
	s.mu.Unlock()
	s.cancel()
}

// beat writes a heartbeat, unless the stream is busy writing (then it is
// not idle) or has ended. A heartbeat that the socket does not take within
// half the heartbeat interval ends the stream: its client has stopped
// reading long ago.
func (s *Stream) beat() {
	if !s.mu.TryLock() {
		return
	}
	defer s.mu.Unlock()
	if s.ended != nil || s.closed || !s.sub.beat.Swap(false) {
		return
	}
	timeout := min(s.hub.opts.WriteTimeout, s.hub.opts.HeartbeatInterval/2)
	if err := s.st.Write(pingFrame, timeout); err != nil {
		s.ended = &StreamEndedError{Reason: writeErrorReason(err), Err: err}
		s.cancel()
		return
	}
	s.sub.wrote.Store(true)
}

// close ends the stream when its producer has returned: after an end that
// the hub decided, it writes the last event of EndStreams and a retry
// hint. It returns why the stream ended.
func (s *Stream) close() EndReason {
	s.sub.mu.Lock()
	hubEnd, last := s.sub.ended, s.sub.last
	if hubEnd == 0 {
		s.sub.ended = EndComplete // no more wake-ups for the producer
	}
	s.sub.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	reason := EndClientGone
	switch {
	case s.ended != nil:
		reason = s.ended.Reason
	case hubEnd != 0:
		reason = hubEnd
	default:
		// The producer is done: the response ends, which an EventSource
		// takes as a reason to reconnect; a fetch reader as the end.
		return EndComplete
	}
	if reason == EndShutdown || reason == EndMaxAge || reason == EndRequested || reason == EndDeadline {
		b := append(s.buf[:0], last...)
		_ = s.hub.write(s.st, appendValid(b, &Event{Retry: s.hub.closeRetry()}))
	}
	return reason
}

// beaters write the heartbeats of per-request streams: their producers
// write their events, but an idle producer writes nothing. A few
// goroutines serve every per-request stream of the hub; they run while the
// hub has per-request streams.
type beaters struct {
	mu      sync.Mutex
	streams int
	ch      chan *Stream
}

// beatWorkers is the number of goroutines that write heartbeats. Each
// write is bounded by half the heartbeat interval.
const beatWorkers = 4

// add counts a per-request stream in, starting the workers for the first.
func (b *beaters) add() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.streams++; b.streams == 1 {
		b.ch = make(chan *Stream, 1024)
		for range beatWorkers {
			go func(ch <-chan *Stream) {
				for s := range ch {
					s.beat()
				}
			}(b.ch)
		}
	}
}

// remove counts a per-request stream out, stopping the workers after the
// last.
func (b *beaters) remove() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.streams--; b.streams == 0 {
		close(b.ch)
		b.ch = nil
	}
}

// push asks for a heartbeat on s; when the workers are behind, it is
// skipped (the next tick asks again).
func (b *beaters) push(s *Stream) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		return
	}
	select {
	case b.ch <- s:
	default:
	}
}
