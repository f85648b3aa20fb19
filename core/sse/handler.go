package sse

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"time"
)

// HandlerOptions configures Hub.Handler. The zero value is ready to use.
type HandlerOptions struct {
	// Topics picks the topics of a request, or refuses it by returning an
	// error made by Refuse or TryLater. Any other error is answered with
	// 500 and logged. Default: TopicsFromQuery("topic").
	Topics func(r *http.Request) ([]string, error)
}

// Topics returns a HandlerOptions.Topics function that subscribes every
// request to the given topics.
func Topics(names ...string) func(*http.Request) ([]string, error) {
	return func(*http.Request) ([]string, error) { return names, nil }
}

// TopicsFromQuery returns a HandlerOptions.Topics function that takes the
// topics from every value of the query parameter param, as in
// "/events?topic=a&topic=b". A request without one is refused with 400.
//
// It lets a client subscribe to any topic: restrict it where topics are
// private.
func TopicsFromQuery(param string) func(*http.Request) ([]string, error) {
	return func(r *http.Request) ([]string, error) {
		names := r.URL.Query()[param]
		if len(names) == 0 {
			return nil, Refuse(http.StatusBadRequest, "missing query parameter "+strconv.Quote(param))
		}
		return names, nil
	}
}

// RefusalError is the answer to a stream request that is turned away before
// the stream starts. Make one with Refuse or TryLater.
type RefusalError struct {
	// Status is the HTTP status; http.StatusOK for TryLater.
	Status int
	// Message is the response body (text/plain) for a status other than 200.
	Message string
	// Retry is the reconnection delay hinted by TryLater.
	Retry time.Duration
}

func (e *RefusalError) Error() string {
	if e.Status == http.StatusOK {
		return "sse: try again in " + e.Retry.String()
	}
	return "sse: refused with " + strconv.Itoa(e.Status) + ": " + e.Message
}

// Refuse returns an error that answers a stream request with status and
// message (as text/plain) instead of a stream.
//
// A browser's EventSource treats every status other than 200 as final: it
// fires "error", ends in the CLOSED state and never reconnects by itself.
// Use 204 No Content to tell it to stop, 401 or 403 when it must not
// listen; use TryLater when it should come back.
func Refuse(status int, message string) error {
	if status < 200 || status > 599 || status == http.StatusOK {
		status = http.StatusInternalServerError
	}
	return &RefusalError{Status: status, Message: message}
}

// TryLater returns an error that answers a stream request with a 200 event
// stream that carries only a "retry" hint and then ends. A browser's
// EventSource reconnects after retry; that is the only way to say "not now"
// that browsers obey (a 429 or 503 stops them for good).
func TryLater(retry time.Duration) error {
	return &RefusalError{Status: http.StatusOK, Retry: max(retry, time.Millisecond)}
}

// Handler returns the http.Handler that serves event streams from the hub.
// It answers GET requests; a stream resumes after the Last-Event-ID header,
// or on a first connection after the "lastEventId" query parameter.
func (h *Hub) Handler(opts HandlerOptions) http.Handler {
	if opts.Topics == nil {
		opts.Topics = TopicsFromQuery("topic")
	}
	return &handler{hub: h, topics: opts.Topics}
}

type handler struct {
	hub    *Hub
	topics func(*http.Request) ([]string, error)
}

// errCannotFlush explains why a ResponseWriter that cannot flush is refused.
var errCannotFlush = errors.New("sse: the http.ResponseWriter cannot flush, so events would sit in a buffer: " +
	"serve the stream outside http.TimeoutHandler, and make wrapping middleware implement http.Flusher or Unwrap")

func (hd *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := hd.hub
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "event streams answer GET only", http.StatusMethodNotAllowed)
		return
	}
	if !canFlush(w) {
		h.log.Error(errCannotFlush.Error(), "path", r.URL.Path)
		http.Error(w, "this server cannot stream events (see its log)", http.StatusInternalServerError)
		return
	}
	topics, err := hd.topics(r)
	if err == nil {
		topics, err = h.checkTopics(topics)
	}
	if err != nil {
		hd.refuse(w, r, err)
		return
	}
	if !h.enter() {
		writeTryLater(w, h.closeRetry())
		return
	}
	defer h.leave()
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("lastEventId")
	}
	st := newHTTPStream(w, h.opts.WriteTimeout)
	reason, err := h.serve(r.Context(), st, topics, lastID)
	if err != nil {
		h.log.Debug("sse: stream ended", "reason", reason, "err", err)
	}
}

func (hd *handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var re *RefusalError
	if !errors.As(err, &re) {
		hd.hub.log.Error("sse: choosing topics failed", "path", r.URL.Path, "err", err)
		re = &RefusalError{Status: http.StatusInternalServerError, Message: "internal error"}
	}
	if re.Status == http.StatusOK {
		writeTryLater(w, re.Retry)
		return
	}
	http.Error(w, re.Message, re.Status)
}

// checkTopics validates and de-duplicates the topics of one stream.
func (h *Hub) checkTopics(topics []string) ([]string, error) {
	if len(topics) == 0 {
		return nil, Refuse(http.StatusBadRequest, "no topic")
	}
	if len(topics) > h.opts.MaxTopics {
		return nil, Refuse(http.StatusBadRequest, fmt.Sprintf("too many topics: %d, at most %d", len(topics), h.opts.MaxTopics))
	}
	out := make([]string, 0, len(topics))
	for _, t := range topics {
		if err := checkTopic(t); err != nil {
			return nil, Refuse(http.StatusBadRequest, err.Error())
		}
		dup := false
		for _, o := range out {
			dup = dup || o == t
		}
		if !dup {
			out = append(out, t)
		}
	}
	return out, nil
}

// closeRetry returns a reconnection delay between CloseRetry and twice that.
func (h *Hub) closeRetry() time.Duration {
	base := h.opts.CloseRetry
	return base + time.Duration(rand.Int64N(int64(base)+1))
}

func canFlush(w http.ResponseWriter) bool {
	for {
		switch w.(type) {
		case http.Flusher, interface{ FlushError() error }:
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

func setStreamHeaders(hdr http.Header) {
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	hdr.Del("Content-Length")
}

// writeTryLater answers with a stream that only says when to come back.
func writeTryLater(w http.ResponseWriter, retry time.Duration) {
	setStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(appendValid(nil, &Event{Retry: retry}))
	_ = http.NewResponseController(w).Flush()
}

// stream is what the hub needs from a connection: write, flush, and a
// deadline for both.
type stream interface {
	// start sends the response head. It is called once, before any write.
	start() error
	write(p []byte) error
}

// httpStream is a stream over net/http.
type httpStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func newHTTPStream(w http.ResponseWriter, timeout time.Duration) *httpStream {
	return &httpStream{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

func (s *httpStream) start() error {
	// A read deadline (http.Server.ReadTimeout) would cancel the request
	// context of an open stream; heartbeats and write deadlines detect dead
	// peers instead.
	_ = s.rc.SetReadDeadline(time.Time{})
	setStreamHeaders(s.w.Header())
	s.w.WriteHeader(http.StatusOK)
	return nil
}

// write writes p and flushes it, within the write timeout. The deadline
// replaces http.Server.WriteTimeout's, which would otherwise end healthy
// long-lived streams.
func (s *httpStream) write(p []byte) error {
	err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := s.w.Write(p); err != nil {
		return err
	}
	return s.rc.Flush()
}

// serve runs one stream until it ends and says why.
func (h *Hub) serve(ctx context.Context, st stream, topics []string, lastID string) (string, error) {
	if err := st.start(); err != nil {
		return "write error", err
	}
	s := newSubscriber(h, topics)
	if !h.register(s) {
		return "shutdown", st.write(appendValid(nil, &Event{Retry: h.closeRetry()}))
	}
	defer h.unregister(s)
	// The opening frame flushes the headers at once, so the client's "open"
	// does not wait for the first event. A client without a position is
	// given one ("id" with no data sets Last-Event-ID and dispatches
	// nothing): should this stream end before its first event, the client
	// resumes from here and misses nothing.
	buf := append([]byte(nil), ": ok\n"...)
	if h.opts.Retry > 0 {
		buf = appendRetry(buf, h.opts.Retry)
	}
	if lastID == "" {
		buf = append(buf, "id: "...)
		buf = append(buf, h.store.ID(s.after)...)
		buf = append(buf, '\n')
	}
	buf = append(buf, '\n')
	if err := st.write(buf); err != nil {
		return "write error", err
	}
	s.wrote.Store(true)
	if lastID != "" {
		if err := h.replay(ctx, st, s, lastID, buf[:0]); err != nil {
			return "write error", err
		}
	}
	return h.pump(ctx, st, s)
}

// replay sends the events after lastID, then leaves s.after at the newest
// event sent so that the live queue skips them.
func (h *Hub) replay(ctx context.Context, st stream, s *subscriber, lastID string, buf []byte) error {
	const page = 256
	var reason string
	pos, err := uint64(0), ErrUnknownID
	if len(lastID) <= h.opts.MaxLastEventIDLength {
		pos, err = h.store.Position(lastID)
	}
	for err == nil {
		var entries []Entry
		entries, err = h.store.After(ctx, pos, s.topics, page)
		if err != nil {
			break
		}
		buf = buf[:0]
		for i := range entries {
			buf = appendValid(buf, &entries[i].Event)
			pos = entries[i].Seq
		}
		if len(buf) > 0 {
			if werr := st.write(buf); werr != nil {
				return werr
			}
			s.wrote.Store(true)
		}
		if len(entries) < page {
			s.after = max(s.after, pos)
			return nil
		}
	}
	switch {
	case errors.Is(err, ErrUnknownID):
		reason = "unknown-id"
	case errors.Is(err, ErrEvicted):
		reason = "evicted"
	default:
		// The store failed: the client cannot be told what it missed.
		h.log.Warn("sse: replay failed", "err", err)
		reason = "unavailable"
	}
	return st.write(h.appendReset(buf[:0], reason, s.after))
}

// appendReset appends the reset event. Its ID is that of the newest event
// before the stream's live events, so that a client that reconnects resumes
// from there instead of being reset again.
func (h *Hub) appendReset(buf []byte, reason string, after uint64) []byte {
	ev := Event{ID: h.store.ID(after), Type: h.opts.ResetEventType, Data: []byte(`{"reason":"` + reason + `"}`)}
	return appendValid(buf, &ev)
}

// pump writes queued events, heartbeats and the final retry hint until the
// stream ends.
func (h *Hub) pump(ctx context.Context, st stream, s *subscriber) (string, error) {
	var buf []byte
	for {
		select {
		case <-s.notify:
		case <-ctx.Done():
			return "client gone", nil
		}
		batch, dropped, ended := s.take()
		if ended == endSlowConsumer {
			h.log.Info("sse: slow client disconnected", "topics", s.topics)
			return "slow consumer", st.write(appendValid(buf[:0], &Event{Retry: h.closeRetry()}))
		}
		out := h.frames(&buf, s, batch, dropped, ended == endShutdown)
		if ended == endShutdown {
			out = appendValid(out, &Event{Retry: h.closeRetry()})
		}
		if s.beat.Swap(false) && len(out) == 0 {
			out = append(buf[:0], ": ping\n\n"...)
		}
		if len(out) > 0 {
			if err := st.write(out); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					return "write timeout", err
				}
				return "write error", err
			}
			s.wrote.Store(true)
		}
		if ended == endShutdown {
			return "shutdown", nil
		}
		if cap(buf) > 64<<10 {
			buf = nil // do not keep a large buffer on an idle stream
		}
	}
}

// frames returns the bytes to write for a batch: the one frame itself when
// there is only one (no copy), or all of them gathered in *buf, so that a
// batch goes out in one write. With gather, the result is always in *buf.
func (h *Hub) frames(buf *[]byte, s *subscriber, batch []queued, dropped, gather bool) []byte {
	first, n := -1, 0
	for i, q := range batch {
		if q.seq > s.after {
			if first < 0 {
				first = i
			}
			n++
		}
	}
	if n == 1 && !dropped && !gather {
		s.after = batch[first].seq
		return batch[first].frame
	}
	b := (*buf)[:0]
	if dropped {
		b = h.appendReset(b, "dropped", s.after)
	}
	for _, q := range batch {
		if q.seq > s.after {
			s.after = q.seq
			b = append(b, q.frame...)
		}
	}
	*buf = b
	return b
}
