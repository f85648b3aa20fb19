package sse

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CORS lets pages of other origins open streams. Browsers send an Origin
// header with cross-origin EventSource requests; the stream is served only
// when that origin is allowed, and the answer, refusals included, carries
// the CORS headers that let the page see it.
//
// Cookies reach a cross-origin stream only when the page opens it with
// new EventSource(url, {withCredentials: true}) and AllowCredentials is set.
type CORS struct {
	// AllowedOrigins lists the allowed origins exactly as browsers send
	// them: scheme, host and port, as in "https://app.example.com".
	// "*" is not accepted: list the origins, or use AllowOrigin.
	AllowedOrigins []string

	// AllowOrigin, if set, is asked about origins not in AllowedOrigins.
	AllowOrigin func(origin string) bool

	// AllowCredentials sends Access-Control-Allow-Credentials: true, so
	// that withCredentials streams carry cookies.
	AllowCredentials bool

	// MaxAge is how long browsers may cache a preflight answer.
	// Default 10 minutes.
	MaxAge time.Duration
}

// allowed reports whether origin may open streams. A request whose Origin
// names the host it was sent to is same-origin and always allowed.
func (c *CORS) allowed(origin string, r *http.Request) bool {
	if slices.Contains(c.AllowedOrigins, origin) {
		return true
	}
	if c.AllowOrigin != nil && c.AllowOrigin(origin) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// apply sets the CORS response headers. It reports whether the request
// may go on: false for a disallowed origin.
func (c *CORS) apply(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !c.allowed(origin, r) {
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	return true
}

// preflight answers an OPTIONS preflight request. The stream request may
// carry Last-Event-ID (when a polyfill sets it), Authorization and
// Cache-Control.
func (c *CORS) preflight(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET")
	h.Set("Access-Control-Allow-Headers", "Last-Event-ID, Authorization, Cache-Control, Accept")
	maxAge := c.MaxAge
	if maxAge == 0 {
		maxAge = 10 * time.Minute
	}
	h.Set("Access-Control-Max-Age", strconv.Itoa(int(maxAge.Seconds())))
	w.WriteHeader(http.StatusNoContent)
}
