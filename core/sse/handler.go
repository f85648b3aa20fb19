package sse

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// HandlerOptions configures Hub.Handler. The zero value is ready to use.
type HandlerOptions struct {
	// Topics picks the topics of a request, or refuses it by returning an
	// error made by Refuse or TryLater. Any other error is answered with
	// 500 and logged. PrincipalFrom(r.Context()) gives the authenticated
	// principal. Default: TopicsFromQuery("topic").
	Topics func(r *http.Request) ([]string, error)

	// Auth, if set, authenticates every request and authorizes its topics.
	// A request whose context already carries a principal (WithPrincipal,
	// as router adapters' middleware does) is not authenticated again, but
	// its topics are still authorized.
	Auth *Auth

	// CORS, if set, serves pages of other origins.
	CORS *CORS

	// Detach, when set, takes each HTTP/1.1 stream's connection over from
	// net/http once the request is accepted (http.ResponseController's
	// Hijack), and hands it to the hub: net/http's goroutine and buffers
	// are freed, and a few shared workers write to every detached stream.
	// An idle stream then costs about 3.6 KiB instead of 27 KiB. Clients see
	// the same events, in a chunked response that says "Connection:
	// close": the connection closes when the stream ends.
	//
	// HTTP/2, TLS, and ResponseWriters that cannot hijack are served as
	// usual. Middleware that wraps the handler sees the request end when
	// the stream is handed over; a timeout middleware's deadline no longer
	// applies. See docs/tuning.md.
	Detach bool
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
			return nil, badRequest("missing query parameter " + strconv.Quote(param))
		}
		return names, nil
	}
}

// TopicsFromPathValue returns a HandlerOptions.Topics function that takes
// the topic from the path wildcard name (Request.PathValue), as in
//
//	mux.Handle("/rooms/{room}/events", hub.Handler(sse.HandlerOptions{Topics: sse.TopicsFromPathValue("room")}))
//
// Go's ServeMux and chi set path values; so does any router that calls
// Request.SetPathValue. A request where the value is empty is refused with
// 400.
//
// It lets a client subscribe to any topic its path names: restrict it
// (Auth.Authorize) where topics are private.
func TopicsFromPathValue(name string) func(*http.Request) ([]string, error) {
	return func(r *http.Request) ([]string, error) {
		v := r.PathValue(name)
		if v == "" {
			return nil, badRequest("missing path value " + strconv.Quote(name))
		}
		return []string{v}, nil
	}
}

// Handler returns the http.Handler that serves event streams from the hub.
//
// For each GET request it answers CORS (if configured), authenticates
// (Auth), picks the topics (Topics), authorizes them, applies the hub's
// connection caps, and streams. A stream resumes after the Last-Event-ID
// header or, when there is none, the "lastEventId" query parameter (so a
// page can resume a stream it opens anew, after a reload).
//
// When the handler returns a response, the client is already subscribed.
func (h *Hub) Handler(opts HandlerOptions) http.Handler {
	if opts.Topics == nil {
		opts.Topics = TopicsFromQuery("topic")
	}
	return &handler{hub: h, opts: opts}
}

type handler struct {
	hub  *Hub
	opts HandlerOptions
}

// ErrCannotStream means that the response cannot carry a stream: events
// would sit in a buffer (compression, http.TimeoutHandler) or a stalled
// client could never be cut off. WriteRefusal answers an error that wraps
// it with 500, logs it with the hub's logger and reports RefusedCannotFlush;
// adapters wrap it with what they detected.
var ErrCannotStream = errors.New("sse: this response cannot carry an event stream")

// errCannotFlush explains why a ResponseWriter that cannot flush is refused.
var errCannotFlush = fmt.Errorf("%w: the http.ResponseWriter does not reach the connection, so events would sit in a buffer "+
	"or a stalled client could never be cut off: serve the stream outside http.TimeoutHandler and compression "+
	"middleware, and make other wrapping middleware implement Unwrap (as http.ResponseController expects)", ErrCannotStream)

func (hd *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := hd.hub.Accept(w, r, hd.opts)
	if s == nil {
		return // answered without a stream
	}
	if hd.opts.Detach && s.serveDetached(w, r) {
		return
	}
	if !canFlush(w) {
		s.Release()
		hd.hub.WriteRefusal(w, r, errCannotFlush)
		return
	}
	s.Serve(r.Context(), newHTTPStream(w))
}

// IsPreflight reports whether r is a CORS preflight request. Auth
// middleware should let it through unauthenticated: browsers send no
// credentials with it, and the stream handler answers it.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// Session is a stream request that Hub.Accept has admitted: it counts
// against the hub's caps until Serve ends or Release is called.
type Session struct {
	hub    *Hub
	info   StreamInfo
	lastID string
	once   sync.Once
}

// Accept does for r everything Handler does before streaming: CORS,
// authentication, topics, authorization and the connection caps. It
// returns the Session to serve, or nil when it has answered w itself (a
// refusal, a CORS preflight). Handler uses it; so do adapters for servers
// other than net/http, which then call Session.Serve with their own
// StreamWriter. w is only used for those answers, never for the stream.
func (h *Hub) Accept(w http.ResponseWriter, r *http.Request, opts HandlerOptions) *Session {
	if c := opts.CORS; c != nil {
		if !c.apply(w, r) {
			h.WriteRefusal(w, r, &RefusalError{Status: http.StatusForbidden, Message: "origin not allowed", reason: RefusedOrigin})
			return nil
		}
		if IsPreflight(r) {
			c.preflight(w)
			return nil
		}
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		h.WriteRefusal(w, r, &RefusalError{Status: http.StatusMethodNotAllowed, Message: "event streams answer GET only", reason: RefusedBadRequest})
		return nil
	}
	if opts.Topics == nil {
		opts.Topics = TopicsFromQuery("topic")
	}
	info, r, err := h.accept(r, &opts)
	if err == nil {
		err = h.admit(r, &info)
	}
	if err != nil {
		h.WriteRefusal(w, r, err)
		return nil
	}
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("lastEventId")
	}
	return &Session{hub: h, info: info, lastID: lastID}
}

// Info describes the session's stream.
func (s *Session) Info() StreamInfo { return s.info }

// Release gives the session up without serving it. Serve releases it by
// itself; a second call does nothing.
func (s *Session) Release() {
	s.once.Do(func() { s.hub.release(&s.info) })
}

// Serve streams to sw until the stream ends: the client goes away (ctx is
// done, or a write fails), the hub ends it, or it reaches its maximum age.
// It returns why, or 0 when Shutdown came before the stream started.
func (s *Session) Serve(ctx context.Context, sw StreamWriter) EndReason {
	defer s.Release()
	return s.hub.serve(ctx, sw, &s.info, s.lastID)
}

// accept authenticates r, picks and authorizes its topics. It returns the
// request with the principal in its context.
//
// A request that AuthMiddleware (or WithPrincipal) authenticated is not
// authenticated again. Its topics are authorized once: with opts.Auth when
// set, otherwise with the Auth of the middleware.
func (h *Hub) accept(r *http.Request, opts *HandlerOptions) (StreamInfo, *http.Request, error) {
	info := StreamInfo{ClientIP: h.opts.ClientIP(r), Started: time.Now()}
	st, _ := r.Context().Value(authKey{}).(*authState)
	if st == nil && opts.Auth != nil {
		var err error
		if r, err = h.authenticate(r, opts.Auth); err != nil {
			return info, r, err
		}
		st = r.Context().Value(authKey{}).(*authState)
	}
	authz := opts.Auth
	if st != nil {
		info.Principal = st.p
		if authz == nil {
			authz = st.auth
		}
		if st.source == "cookie" && !crossOriginAllowed(r, opts.CORS) {
			return info, r, &RefusalError{Status: http.StatusForbidden, Message: "cross-origin request with cookie credentials from an origin that CORS does not allow", reason: RefusedOrigin}
		}
	}
	topics, err := opts.Topics(r)
	if err != nil {
		var re *RefusalError
		if !errors.As(err, &re) {
			h.log.Error("sse: HandlerOptions.Topics failed", "path", r.URL.Path, "err", err)
			err = Refuse(http.StatusInternalServerError, "internal error")
		}
		return info, r, err
	}
	if info.Topics, err = h.checkTopics(topics); err != nil {
		return info, r, err
	}
	if authz != nil {
		if err := authz.authorize(r.Context(), info.Principal, info.Topics); err != nil {
			return info, r, err
		}
	}
	return info, r, nil
}

// WriteRefusal answers r without a stream, as err says: a *RefusalError
// (Refuse, TryLater, or one returned by Auth.Check) is written as it says,
// an error wrapping ErrCannotStream as 500 with a log line, any other
// error as 500. The Observer's Refused hook sees it. Router
// adapters' auth middleware uses it.
func (h *Hub) WriteRefusal(w http.ResponseWriter, r *http.Request, err error) {
	var re *RefusalError
	if errors.Is(err, ErrCannotStream) {
		h.log.Error(err.Error(), "path", r.URL.Path)
		re = &RefusalError{Status: http.StatusInternalServerError, Message: "this server cannot stream events (see its log)", reason: RefusedCannotFlush}
	} else if !errors.As(err, &re) {
		re = &RefusalError{Status: http.StatusInternalServerError, Message: "internal error"}
	}
	reason := re.reason
	if reason == 0 {
		reason = RefusedOther
	}
	if re.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="events"`)
	}
	if re.Status == http.StatusOK {
		writeTryLater(w, re.Retry)
	} else {
		http.Error(w, re.Message, re.Status)
	}
	if f := h.opts.Observer.Refused; f != nil {
		f(r, reason, re.Status)
	}
}

// checkTopics validates and de-duplicates the topics of one stream.
func (h *Hub) checkTopics(topics []string) ([]string, error) {
	if len(topics) == 0 {
		return nil, badRequest("no topic")
	}
	if len(topics) > h.opts.MaxTopics {
		return nil, badRequest(fmt.Sprintf("too many topics: %d, at most %d", len(topics), h.opts.MaxTopics))
	}
	out := make([]string, 0, len(topics))
	for _, t := range topics {
		if err := checkTopic(t); err != nil {
			return nil, badRequest(err.Error())
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

func badRequest(msg string) error {
	return &RefusalError{Status: http.StatusBadRequest, Message: msg, reason: RefusedBadRequest}
}

// closeRetry returns a reconnection delay between CloseRetry and twice that.
func (h *Hub) closeRetry() time.Duration {
	base := h.opts.CloseRetry
	return base + time.Duration(rand.Int64N(int64(base)+1))
}

// canFlush reports whether w reaches the connection: it follows Unwrap to
// the innermost writer, which must be able to flush and to take a write
// deadline. A wrapper in between may have a Flush method that cannot work
// (Echo's Response over http.TimeoutHandler's writer panics; Gin's does
// nothing), and a wrapper without Unwrap (gin-contrib/gzip) hides the
// connection, so a stalled client could never be cut off.
func canFlush(w http.ResponseWriter) bool {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	switch w.(type) {
	case http.Flusher, interface{ FlushError() error }:
	default:
		return false
	}
	_, ok := w.(interface{ SetWriteDeadline(time.Time) error })
	return ok
}

// StreamHeader returns the headers of an event stream response:
// Content-Type text/event-stream, Cache-Control no-cache and
// X-Accel-Buffering no (nginx then passes events through unbuffered).
// A StreamWriter sends them in Start.
func StreamHeader() http.Header {
	return http.Header{
		"Content-Type":      {"text/event-stream"},
		"Cache-Control":     {"no-cache"},
		"X-Accel-Buffering": {"no"},
	}
}

// setStreamHeaders sets StreamHeader's headers on hdr, with one small
// allocation: a stream's head stays referenced for as long as it runs.
func setStreamHeaders(hdr http.Header) {
	v := []string{"text/event-stream", "no-cache", "no"}
	hdr["Content-Type"] = v[0:1:1]
	hdr["Cache-Control"] = v[1:2:2]
	hdr["X-Accel-Buffering"] = v[2:3:3]
	delete(hdr, "Content-Length")
}

// writeTryLater answers with a stream that only says when to come back.
func writeTryLater(w http.ResponseWriter, retry time.Duration) {
	setStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(appendValid(nil, &Event{Retry: retry}))
	_ = http.NewResponseController(w).Flush()
}
