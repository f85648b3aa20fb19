package main

// Logging in, and who may follow which topic.
//
// POST /login takes a name and sets the HttpOnly cookie demo_session to a
// random session token; the server maps tokens to names. The event stream
// reads the same cookie (an EventSource sends the page's cookies), so a
// logged-in page also gets its own topic, "user/<name>", and nobody else's.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ssekit/ssekit/core/sse"
)

const (
	sessionCookie = "demo_session"
	// maxSessions bounds the sessions kept; past it the oldest is dropped.
	maxSessions = 1000
	// maxName bounds a user name, in characters.
	maxName = 24

	topicMetrics   = "metrics"
	topicBroadcast = "broadcast"
	userPrefix     = "user/"
	jobPrefix      = "job/"
)

func userTopic(name string) string { return userPrefix + name }

// sessions maps session tokens to user names.
type sessions struct {
	mu      sync.Mutex
	byToken map[string]session
}

type session struct {
	name    string
	created time.Time
}

func newSessions() *sessions {
	return &sessions{byToken: make(map[string]session)}
}

// create starts a session for name and returns its token.
func (s *sessions) create(name string) string {
	token := rand.Text() // 128 random bits
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byToken) >= maxSessions {
		oldest := ""
		for t, se := range s.byToken {
			if oldest == "" || se.created.Before(s.byToken[oldest].created) {
				oldest = t
			}
		}
		delete(s.byToken, oldest)
	}
	s.byToken[token] = session{name: name, created: time.Now()}
	return token
}

func (s *sessions) lookup(token string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.byToken[token]
	return se.name, ok
}

func (s *sessions) delete(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byToken, token)
}

// user returns the name of the user logged in on r, if any.
func (s *sessions) user(r *http.Request) (string, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", false
	}
	return s.lookup(c.Value)
}

// authenticate is the stream's sse.Auth.Authenticate: a token that names
// no session (say, from before a restart) is refused with 401. The page
// then asks GET /me, which clears the stale cookie, and reconnects.
func (s *sessions) authenticate(_ context.Context, token string) (sse.Principal, error) {
	name, ok := s.lookup(token)
	if !ok {
		return sse.Principal{}, errors.New("unknown session")
	}
	return sse.Principal{ID: name}, nil
}

// authorize is the stream's sse.Auth.Authorize: a "user/<name>" topic is
// only for that user. Visitors who have not logged in have the zero
// Principal, whose ID is empty, so they get no user topic at all.
func authorize(_ context.Context, p sse.Principal, topics []string) error {
	for _, t := range topics {
		if name, ok := strings.CutPrefix(t, userPrefix); ok && (p.ID == "" || name != p.ID) {
			return errors.New("another user's topic") // 403
		}
	}
	return nil
}

// streamTopics is the stream's HandlerOptions.Topics: every page follows
// the metrics and the broadcast notifications, a logged-in page also its
// user's topic, and the page adds its jobs' topics with ?topic=job/<id>.
// Auth has run already, so the principal is in the request's context.
func (d *demo) streamTopics(r *http.Request) ([]string, error) {
	topics := []string{topicMetrics, topicBroadcast}
	if p, _ := sse.PrincipalFrom(r.Context()); p.ID != "" {
		topics = append(topics, userTopic(p.ID))
	}
	for _, t := range r.URL.Query()["topic"] {
		id, isJob := strings.CutPrefix(t, jobPrefix)
		switch {
		case isJob && validJobID(id):
			// A job this server does not know (one from before a
			// restart) is still a valid topic: it is just quiet. The
			// page learns of it from GET /jobs/<id>.
		case t == topicMetrics || t == topicBroadcast || strings.HasPrefix(t, userPrefix):
			// user/<name> is for authorize to judge.
		default:
			return nil, sse.Refuse(http.StatusNotFound,
				fmt.Sprintf("unknown topic %.64q: this demo serves %q, %q, \"user/<name>\" and \"job/<id>\"",
					t, topicMetrics, topicBroadcast))
		}
		topics = append(topics, t) // the hub drops duplicates
	}
	return topics, nil
}

// validName reports whether name can be a user name: 1 to maxName
// letters, digits, '-', '_' or '.'.
func validName(name string) bool {
	n := utf8.RuneCountInString(name)
	if n == 0 || n > maxName || !utf8.ValidString(name) {
		return false
	}
	for _, c := range name {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

type meResponse struct {
	Name *string `json:"name"` // null when not logged in
}

// me answers who is logged in. A cookie that names no session (from
// before a restart, or logged out elsewhere) is cleared: the stream would
// refuse it with 401.
func (d *demo) me(w http.ResponseWriter, r *http.Request) {
	if name, ok := d.sessions.user(r); ok {
		writeJSON(w, http.StatusOK, meResponse{Name: &name})
		return
	}
	if _, err := r.Cookie(sessionCookie); err == nil {
		clearSessionCookie(w, r)
	}
	writeJSON(w, http.StatusOK, meResponse{})
}

// login starts a session for the field "name" and sets its cookie.
func (d *demo) login(w http.ResponseWriter, r *http.Request) {
	fields, status, err := readFields(w, r)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	name := strings.TrimSpace(fields["name"])
	if !validName(name) {
		http.Error(w, fmt.Sprintf("a name is 1 to %d letters, digits, '-', '_' or '.'", maxName), http.StatusBadRequest)
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		d.sessions.delete(c.Value) // logging in again replaces the session
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    d.sessions.create(name),
		Path:     "/",
		HttpOnly: true, // the page's scripts never see the token
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
	writeJSON(w, http.StatusOK, meResponse{Name: &name})
}

// logout ends the session and clears its cookie. Streams opened while
// logged in keep their topics; the page opens a new one.
func (d *demo) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		d.sessions.delete(c.Value)
		clearSessionCookie(w, r)
	}
	writeJSON(w, http.StatusOK, meResponse{})
}

func clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
}
