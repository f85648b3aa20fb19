package sse

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

// httpStream is a streamWriter over net/http.
type httpStream struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	deadline time.Time // the connection's write deadline
}

func newHTTPStream(w http.ResponseWriter) *httpStream {
	return &httpStream{w: w, rc: http.NewResponseController(w)}
}

func (s *httpStream) Start() error {
	// A read deadline (http.Server.ReadTimeout) would cancel the request
	// context of an open stream; heartbeats and write deadlines detect dead
	// peers instead.
	_ = s.rc.SetReadDeadline(time.Time{})
	setStreamHeaders(s.w.Header())
	s.w.WriteHeader(http.StatusOK)
	return nil
}

// Write writes p and flushes it, within the write timeout. The deadline
// replaces http.Server.WriteTimeout's, which would otherwise end healthy
// long-lived streams.
func (s *httpStream) Write(p []byte, timeout time.Duration) error {
	if now := time.Now(); s.deadline.Sub(now) < timeout-timeout/8 {
		// Moving a deadline costs more than a small write: a busy stream
		// moves it only when less than 7/8 of the timeout is left, as
		// fasthttp does (golang/go#15133).
		s.deadline = now.Add(timeout)
		err := s.rc.SetWriteDeadline(s.deadline)
		if err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
	}
	if _, err := s.w.Write(p); err != nil {
		return err
	}
	return s.rc.Flush()
}

// serve runs one stream until it ends.
func (h *Hub) serve(ctx context.Context, st streamWriter, info *StreamInfo, lastID string) EndReason {
	s := newSubscriber(h, info)
	sent := 0
	started, reason, err := h.open(ctx, st, s, lastID, &sent)
	if !started {
		return 0 // shut down in between
	}
	if reason == 0 {
		reason, err = h.pump(ctx, st, s, &sent)
		h.unregister(s)
	}
	h.streamEnded(s, reason, err, sent)
	return reason
}

// streamEnded logs and reports the end of a stream.
func (h *Hub) streamEnded(s *subscriber, reason EndReason, err error, sent int) {
	if err != nil {
		h.log.Debug("sse: stream ended", "reason", reason, "principal", s.info.Principal.ID, "err", err)
	}
	if f := h.opts.Observer.StreamClosed; f != nil {
		f(*s.info, reason, sent)
	}
}

// open starts s's stream on st: it registers s, sends the opening frame
// and replays what the client missed. started is false when Shutdown came
// first (the client got a retry hint); reason is why the stream ended
// while opening, after which s is unregistered, or 0 when the stream is
// open and live events are to follow.
func (h *Hub) open(ctx context.Context, st streamWriter, s *subscriber, lastID string, sent *int) (started bool, reason EndReason, err error) {
	if err := st.Start(); err != nil {
		return true, EndWriteError, err
	}
	if ok, rerr := h.register(ctx, s); !ok {
		// Shutdown came after admit, or the store could not say where a
		// topic starts: the client is told to come back.
		if rerr != nil {
			h.log.Warn("sse: a stream could not open", "err", rerr)
		}
		return false, 0, h.write(st, appendValid(nil, &Event{Retry: h.closeRetry()}))
	}
	if f := h.opts.Observer.StreamOpened; f != nil {
		f(*s.info)
	}
	// The opening frame flushes the headers at once, so the client's "open"
	// does not wait for the first event. A client without a position is
	// given one ("id" with no data sets Last-Event-ID and dispatches
	// nothing): should this stream end before its first event, the client
	// resumes from here and misses nothing.
	buf := append([]byte(nil), ": ok\n"...)
	if h.opts.Retry > 0 {
		buf = appendRetry(buf, h.opts.Retry)
	}
	var pos []uint64
	if lastID == "" {
		pos = slices.Clone(s.after)
		buf = append(buf, "id: "...)
		buf = h.appendID(buf, pos)
		buf = append(buf, '\n')
	} else if len(lastID) <= h.opts.MaxLastEventIDLength {
		pos, _ = parseID(lastID, h.store.Epoch(), len(s.topics), h.ordered)
	}
	buf = append(buf, '\n')
	err = h.write(st, buf)
	if err == nil {
		s.wrote.Store(true)
		// A new stream replays too: what was published while its topics
		// were joined may have reached neither the store's newest nor the
		// live queue.
		err = h.replay(ctx, st, s, pos, lastID != "", buf[:0], sent)
	}
	if err != nil {
		h.unregister(s)
		return true, writeErrorReason(err), err
	}
	return true, 0, nil
}

// appendID appends the ID of the place pos in the store's history.
func (h *Hub) appendID(dst []byte, pos []uint64) []byte {
	return appendID(dst, h.store.Epoch(), pos, h.ordered)
}

func writeErrorReason(err error) EndReason {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return EndWriteTimeout
	}
	return EndWriteError
}

// replay sends the events after lastID, then leaves s.after at the newest
// event sent so that the live queue skips them.
func (h *Hub) replay(ctx context.Context, st streamWriter, s *subscriber, pos []uint64, report bool, buf []byte, sent *int) error {
	const page = 256
	var reason ResetReason
	err := ErrUnknownID
	if pos != nil {
		err = nil
	}
	// With an OrderedStore, events after the newest fanned out when the
	// stream registered reach it live, in order: the replay stops before
	// them, so that the stream sends every event in the store's order.
	var bound uint64
	if h.ordered {
		bound = slices.Max(s.after)
	}
	events, bytes := 0, 0            // replayed so far, bounded by MaxReplayEvents and MaxReplayBytes
	written := slices.Clone(s.after) // the place the frames sent reach
	var frames []pageFrame
	var enc []byte // other stores' events, encoded
	for err == nil {
		frames, err = h.replayPage(ctx, frames[:0], &enc, s.topics, pos, min(page, h.opts.MaxReplayEvents-events+1))
		if err != nil {
			break
		}
		buf = buf[:0]
		n, done := 0, len(frames) < page
		for _, f := range frames {
			if h.ordered && f.seq > bound {
				done = true
				break
			}
			size := len(buf)
			ti := slices.Index(s.topics, f.topic)
			if ti < 0 || f.seq <= pos[ti] {
				continue // a topic named twice by the store: sent once
			}
			pos[ti] = f.seq
			buf = h.appendFrame(buf, f.b, pos)
			if events+n+1 > h.opts.MaxReplayEvents || bytes+len(buf) > h.opts.MaxReplayBytes {
				buf = buf[:size]
				err = errReplayLimit
				break
			}
			written[ti] = max(written[ti], f.seq)
			n++
		}
		clear(frames) // let the page's frames go
		if len(buf) > 0 {
			if werr := h.write(st, buf); werr != nil {
				return werr
			}
			s.wrote.Store(true)
			*sent += n
			events += n
			bytes += len(buf)
		}
		if err == nil && done {
			for i := range s.after {
				s.after[i] = max(s.after[i], pos[i])
			}
			if f := h.opts.Observer.Replayed; f != nil && report {
				f(ReplayHit, *sent, "")
			}
			return nil
		}
	}
	switch {
	case errors.Is(err, ErrUnknownID):
		reason = ResetUnknownID
	case errors.Is(err, ErrEvicted):
		reason = ResetEvicted
	case err == errReplayLimit:
		reason = ResetReplayLimit
	default:
		// The store failed: the client cannot be told what it missed.
		h.log.Warn("sse: replay failed", "err", err)
		reason = ResetUnavailable
	}
	if f := h.opts.Observer.Replayed; f != nil {
		f(ReplayReset, *sent, reason)
	}
	// Pages sent before the failure may reach past the live queue's start.
	for i := range s.after {
		s.after[i] = max(s.after[i], written[i])
	}
	return h.write(st, h.appendReset(buf[:0], reason, s.after))
}

// appendFrame appends an event's frame, as the stream at place pos (which
// the event has reached) sends it: as it is when its own ID names pos (a
// stream of one topic, or an OrderedStore's), or with the ID of pos.
func (h *Hub) appendFrame(dst, frame []byte, pos []uint64) []byte {
	if h.ordered || len(pos) == 1 {
		return append(dst, frame...)
	}
	start, end := idLine(frame)
	dst = append(dst, frame[:start]...)
	dst = append(dst, frame[end:len(frame)-1]...) // without the blank line
	dst = append(dst, "id: "...)
	dst = h.appendID(dst, pos)
	return append(dst, '\n', '\n')
}

// errReplayLimit ends a replay that would exceed MaxReplayEvents or
// MaxReplayBytes.
var errReplayLimit = errors.New("sse: replay limit reached")

// pageFrame is one event of a replayed page: its topic, its Seq and its
// wire form.
type pageFrame struct {
	topic string
	seq   uint64
	b     []byte
}

// replayPage appends to dst the frames of at most limit events that follow
// the place pos of topics, in the store's order. The MemoryStore hands over
// the frames it keeps; the events of other stores are encoded into *enc,
// which is reused from page to page. Only a *MemoryStore itself takes the
// short way: a type that embeds one may change what After returns.
func (h *Hub) replayPage(ctx context.Context, dst []pageFrame, enc *[]byte, topics []string, pos []uint64, limit int) ([]pageFrame, error) {
	if ms, ok := h.store.(*MemoryStore); ok {
		return ms.frames(dst, topics, pos, limit)
	}
	entries, err := h.store.After(ctx, topics, pos, limit)
	if err != nil {
		return dst, err
	}
	b := (*enc)[:0]
	ends := make([]int, len(entries))
	for i := range entries {
		b = appendValid(b, &entries[i].Event)
		ends[i] = len(b)
	}
	*enc = b
	start := 0
	for i, end := range ends {
		dst = append(dst, pageFrame{topic: entries[i].Topic, seq: entries[i].Seq, b: b[start:end]})
		start = end
	}
	return dst, nil
}

// appendReset appends the reset event. Its ID is that of the newest event
// before the stream's live events, so that a client that reconnects resumes
// from there instead of being reset again.
func (h *Hub) appendReset(buf []byte, reason ResetReason, after []uint64) []byte {
	ev := Event{ID: string(h.appendID(nil, after)), Type: h.opts.ResetEventType, Data: []byte(`{"reason":"` + string(reason) + `"}`)}
	return appendValid(buf, &ev)
}

// pump writes queued events, heartbeats and the final retry hint until the
// stream ends.
func (h *Hub) pump(ctx context.Context, st streamWriter, s *subscriber, sent *int) (EndReason, error) {
	for {
		select {
		case <-s.notify:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// A timeout middleware ended the request: the client is
				// still there, so tell it when to come back.
				return EndDeadline, h.write(st, appendValid(nil, &Event{Retry: h.closeRetry()}))
			}
			return EndClientGone, nil
		}
		batch, reset, ended, last := s.take()
		if ended == EndSlowConsumer {
			h.log.Info("sse: slow client disconnected", "principal", s.info.Principal.ID, "topics", s.topics)
			return ended, h.write(st, appendValid(nil, &Event{Retry: h.closeRetry()}))
		}
		n, wrote, err := h.sendBatch(st, s, batch, reset, ended != 0, last)
		*sent += n
		if err == nil && !wrote && s.beat.Swap(false) {
			err, wrote = h.write(st, pingFrame), true
		}
		if err != nil {
			return writeErrorReason(err), err
		}
		if wrote {
			s.wrote.Store(true)
			s.beat.Store(false)
		}
		if ended != 0 {
			return ended, nil
		}
	}
}

var pingFrame = []byte(": ping\n\n")

// batchBuffers holds the buffers that batches are gathered in, so that an
// idle stream holds none.
var batchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// sendBatch writes the events of batch after s.after (the reset event
// first if one is owed; when the stream is ending, last and the final
// retry hint after them), and returns how many events it sent and whether
// it wrote anything. Small frames are gathered into writes of up to
// writeChunk bytes; a single frame, or a large one, is written as it is,
// without a copy.
func (h *Hub) sendBatch(st streamWriter, s *subscriber, batch []queued, reset ResetReason, ending bool, last []byte) (n int, wrote bool, err error) {
	fresh := batch
	for len(fresh) > 0 && fresh[0].seq <= s.after[fresh[0].ti] {
		fresh = fresh[1:]
	}
	if len(fresh) == 1 && reset == "" && !ending && (h.ordered || len(s.after) == 1) {
		s.after[fresh[0].ti] = fresh[0].seq
		return 1, true, h.write(st, fresh[0].f.b)
	}
	bp := batchBuffers.Get().(*[]byte)
	b := (*bp)[:0]
	defer func() {
		if cap(b) <= 2*writeChunk {
			*bp = b[:0]
			batchBuffers.Put(bp)
		}
	}()
	flush := func() error {
		if len(b) == 0 {
			return nil
		}
		wrote = true
		err := h.write(st, b)
		b = b[:0]
		return err
	}
	if reset != "" {
		b = h.appendReset(b, reset, s.after)
	}
	for _, q := range fresh {
		if q.seq <= s.after[q.ti] {
			continue // replayed already
		}
		s.after[q.ti] = q.seq
		n++
		if !h.ordered && len(s.after) > 1 {
			// The frame goes with this stream's own ID.
			if len(b)+len(q.f.b)+64 > writeChunk {
				if err := flush(); err != nil {
					return n, wrote, err
				}
			}
			b = h.appendFrame(b, q.f.b, s.after)
			continue
		}
		if len(q.f.b) >= writeChunk/2 {
			if err := flush(); err != nil {
				return n, wrote, err
			}
			wrote = true
			if err := h.write(st, q.f.b); err != nil {
				return n, wrote, err
			}
			continue
		}
		if len(b)+len(q.f.b) > writeChunk {
			if err := flush(); err != nil {
				return n, wrote, err
			}
		}
		b = append(b, q.f.b...)
	}
	if ending {
		b = append(b, last...)
		b = appendValid(b, &Event{Retry: h.closeRetry()})
	}
	return n, wrote, flush()
}

// writeChunk bounds one write: a large replay or batch goes out in pieces,
// each with its own deadline, so that WriteTimeout bounds how long a client
// may take to accept 64 KiB (or what a compressor makes of it), not a
// whole replay.
const writeChunk = 64 << 10

// write writes p to st, in pieces of at most writeChunk bytes, each within
// the hub's WriteTimeout.
func (h *Hub) write(st streamWriter, p []byte) error {
	for len(p) > writeChunk {
		if err := st.Write(p[:writeChunk], h.opts.WriteTimeout); err != nil {
			return err
		}
		p = p[writeChunk:]
	}
	return st.Write(p, h.opts.WriteTimeout)
}
