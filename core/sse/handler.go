package sse

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ssekit/ssekit/core/internal/transport"
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

// errCannotStream means that the response cannot carry a stream: events
// would sit in a buffer (compression, http.TimeoutHandler) or a stalled
// client could never be cut off. writeRefusal answers an error that wraps
// it with 500, logs it with the hub's logger and reports RefusedCannotFlush;
// adapters wrap it (sseadapter.ErrCannotStream) with what they detected.
var errCannotStream = transport.ErrCannotStream

// errCannotFlush explains why a ResponseWriter that cannot flush is refused.
var errCannotFlush = fmt.Errorf("%w: the http.ResponseWriter does not reach the connection, so events would sit in a buffer "+
	"or a stalled client could never be cut off: serve the stream outside http.TimeoutHandler and compression "+
	"middleware, and make other wrapping middleware implement Unwrap (as http.ResponseController expects)", errCannotStream)

func (hd *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := hd.hub.acceptSession(w, r, hd.opts, false)
	if s == nil {
		return // answered without a stream
	}
	if hd.opts.Detach && s.serveDetached(w, r) {
		return
	}
	if !canFlush(w) {
		s.Release()
		hd.hub.writeRefusal(w, r, errCannotFlush)
		return
	}
	s.Serve(r.Context(), newHTTPStream(w))
}

// isPreflight reports whether r is a CORS preflight request. Auth
// middleware lets it through unauthenticated: browsers send no credentials
// with it, and the stream handler answers it.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// session is an accepted stream request. Once admitted, it counts against
// the hub's caps until Serve ends or Release is called.
type session struct {
	hub      *Hub
	r        *http.Request // the request, with the principal in its context
	info     StreamInfo
	lastID   string
	admitted bool // counted against the caps; set before the session is shared
	once     sync.Once
}

// acceptSession does for r everything Handler does before streaming: CORS,
// authentication, topics, authorization and, unless admitLater, the
// connection caps. It returns the session to serve, or nil when it has
// answered w itself (a refusal, a CORS preflight). w is only used for those
// answers, never for the stream. A session accepted with admitLater is
// admitted by ServeConn, which answers on the connection when a cap is
// reached: it holds nothing until it is served.
func (h *Hub) acceptSession(w http.ResponseWriter, r *http.Request, opts HandlerOptions, admitLater bool) *session {
	if c := opts.CORS; c != nil {
		if !c.apply(w, r) {
			h.writeRefusal(w, r, &RefusalError{Status: http.StatusForbidden, Message: "origin not allowed", reason: RefusedOrigin})
			return nil
		}
		if isPreflight(r) {
			c.preflight(w)
			return nil
		}
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		h.writeRefusal(w, r, &RefusalError{Status: http.StatusMethodNotAllowed, Message: "event streams answer GET only", reason: RefusedBadRequest})
		return nil
	}
	if opts.Topics == nil {
		opts.Topics = TopicsFromQuery("topic")
	}
	info, r, err := h.accept(r, &opts)
	if err == nil && !admitLater {
		err = h.admit(r, &info)
	}
	if err != nil {
		h.writeRefusal(w, r, err)
		return nil
	}
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("lastEventId")
	}
	return &session{hub: h, r: r, info: info, lastID: lastID, admitted: !admitLater}
}

// Release gives the session up without serving it. Serve releases it by
// itself; a second call does nothing.
func (s *session) Release() {
	s.once.Do(func() {
		if s.admitted {
			s.hub.release(&s.info)
		}
	})
}

// Serve streams to sw until the stream ends: the client goes away (ctx is
// done, or a write fails), the hub ends it, or it reaches its maximum age.
// It returns why (an EndReason), or 0 when Shutdown came before the stream
// started.
func (s *session) Serve(ctx context.Context, sw streamWriter) int {
	if !s.admitted {
		if err := s.hub.admit(s.r, &s.info); err != nil {
			// A StreamWriter answers 200: all it can say is when to come
			// back, which is what a cap's default answer says too.
			s.hub.observeRefused(s.r, err)
			if sw.Start() == nil {
				_ = s.hub.write(sw, appendValid(nil, &Event{Retry: s.hub.closeRetry()}))
			}
			return 0
		}
		s.admitted = true
	}
	defer s.Release()
	return int(s.hub.serve(ctx, sw, &s.info, s.lastID))
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

// writeRefusal answers r without a stream, as err says: a *RefusalError
// (Refuse, TryLater, or one of authentication) is written as it says, an
// error wrapping errCannotStream as 500 with a log line, any other error as
// 500. The Observer's Refused hook sees it.
func (h *Hub) writeRefusal(w http.ResponseWriter, r *http.Request, err error) {
	var re *RefusalError
	if errors.Is(err, errCannotStream) {
		h.log.Error(err.Error(), "path", r.URL.Path)
		re = &RefusalError{Status: http.StatusInternalServerError, Message: "this server cannot stream events (see its log)", reason: RefusedCannotFlush}
	} else if !errors.As(err, &re) {
		re = &RefusalError{Status: http.StatusInternalServerError, Message: "internal error"}
	}
	if re.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="events"`)
	}
	if re.Status == http.StatusOK {
		writeTryLater(w, re.Retry)
	} else {
		http.Error(w, re.Message, re.Status)
	}
	h.observeRefused(r, re)
}

// observeRefused tells the Observer of a refusal.
func (h *Hub) observeRefused(r *http.Request, err error) {
	f := h.opts.Observer.Refused
	if f == nil {
		return
	}
	var re *RefusalError
	if !errors.As(err, &re) {
		f(r, RefusedOther, http.StatusInternalServerError)
		return
	}
	reason := re.reason
	if reason == 0 {
		reason = RefusedOther
	}
	f(r, reason, re.Status)
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
			// The hub keeps topics for the stream's life (as map keys,
			// too): copy them, in case the router reuses their memory.
			out = append(out, strings.Clone(t))
		}
	}
	// Sorted, so that a stream's IDs (a Seq per topic, in this order) name
	// the same place whatever order a client lists its topics in.
	slices.Sort(out)
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

// setStreamHeaders sets the headers of an event stream response on hdr:
// Content-Type text/event-stream, Cache-Control no-cache and
// X-Accel-Buffering no (nginx then passes events through unbuffered). It
// makes one small allocation: a stream's head stays referenced for as long
// as it runs.
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
