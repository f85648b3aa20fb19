package sse

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
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

// errCannotFlush explains why a ResponseWriter that cannot flush is refused.
var errCannotFlush = errors.New("sse: the http.ResponseWriter cannot flush, so events would sit in a buffer: " +
	"serve the stream outside http.TimeoutHandler, and make wrapping middleware implement http.Flusher or Unwrap")

func (hd *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := hd.hub
	if c := hd.opts.CORS; c != nil {
		if !c.apply(w, r) {
			hd.refuse(w, r, &RefusalError{Status: http.StatusForbidden, Message: "origin not allowed", reason: RefusedOrigin})
			return
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			c.preflight(w)
			return
		}
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		hd.refuse(w, r, &RefusalError{Status: http.StatusMethodNotAllowed, Message: "event streams answer GET only", reason: RefusedBadRequest})
		return
	}
	if !canFlush(w) {
		h.log.Error(errCannotFlush.Error(), "path", r.URL.Path)
		hd.refuse(w, r, &RefusalError{Status: http.StatusInternalServerError, Message: "this server cannot stream events (see its log)", reason: RefusedCannotFlush})
		return
	}
	info, r, err := hd.accept(r)
	if err != nil {
		hd.refuse(w, r, err)
		return
	}
	if err := h.admit(r, &info); err != nil {
		hd.refuse(w, r, err)
		return
	}
	defer h.release(&info)
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("lastEventId")
	}
	h.serve(r.Context(), newHTTPStream(w, h.opts.WriteTimeout), &info, lastID)
}

// accept authenticates r, picks and authorizes its topics. It returns the
// request with the principal in its context.
func (hd *handler) accept(r *http.Request) (StreamInfo, *http.Request, error) {
	info := StreamInfo{ClientIP: hd.hub.opts.ClientIP(r), Started: time.Now()}
	p, ok := PrincipalFrom(r.Context())
	if !ok && hd.opts.Auth != nil {
		var err error
		if p, err = hd.opts.Auth.Check(r); err != nil {
			return info, r, err
		}
		r = r.WithContext(WithPrincipal(r.Context(), p))
	}
	info.Principal = p
	topics, err := hd.opts.Topics(r)
	if err != nil {
		var re *RefusalError
		if !errors.As(err, &re) {
			hd.hub.log.Error("sse: HandlerOptions.Topics failed", "path", r.URL.Path, "err", err)
			err = Refuse(http.StatusInternalServerError, "internal error")
		}
		return info, r, err
	}
	if info.Topics, err = hd.hub.checkTopics(topics); err != nil {
		return info, r, err
	}
	if hd.opts.Auth != nil {
		if err := hd.opts.Auth.authorize(r.Context(), p, info.Topics); err != nil {
			return info, r, err
		}
	}
	return info, r, nil
}

// refuse answers r without a stream, as err (a *RefusalError) says.
func (hd *handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var re *RefusalError
	if !errors.As(err, &re) {
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
	if f := hd.hub.opts.Observer.Refused; f != nil {
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
