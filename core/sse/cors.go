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

// allowed reports whether origin may open streams: it is listed, or
// AllowOrigin accepts it, or it is the origin r was sent to.
func (c *CORS) allowed(origin string, r *http.Request) bool {
	return c.listed(origin) || sameOrigin(origin, r)
}

// listed reports whether c allows origin by name (AllowedOrigins or
// AllowOrigin).
func (c *CORS) listed(origin string) bool {
	if slices.Contains(c.AllowedOrigins, origin) {
		return true
	}
	return c.AllowOrigin != nil && c.AllowOrigin(origin)
}

// crossOriginAllowed reports whether r may be served with credentials the
// browser attached by itself (cookies): it comes from no other origin (no
// Origin header, or the origin r was sent to), or c allows its origin.
func crossOriginAllowed(r *http.Request, c *CORS) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || sameOrigin(origin, r) {
		return true
	}
	return c != nil && c.listed(origin)
}

// sameOrigin reports whether origin (as a browser sends it: scheme, host
// and an optional port) is the origin r was sent to. Scheme, host and port
// must all match, default ports implied. r's scheme is https when its
// connection is TLS, or when a proxy says so in X-Forwarded-Proto or
// Forwarded (a browser cannot set either header on a stream request).
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" || scheme != requestScheme(r) {
		return false
	}
	oh, op := splitHostPort(u.Host, scheme)
	rh, rp := splitHostPort(r.Host, scheme)
	return oh != "" && strings.EqualFold(oh, rh) && op == rp
}

// requestScheme returns "https" or "http": the scheme the client used to
// reach r, as far as the server can tell.
func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		p, _, _ = strings.Cut(p, ",")
		if strings.EqualFold(strings.TrimSpace(p), "https") {
			return "https"
		}
		return "http"
	}
	for _, v := range r.Header.Values("Forwarded") {
		first, _, _ := strings.Cut(v, ",")
		for _, pair := range strings.Split(first, ";") {
			k, val, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if strings.EqualFold(k, "proto") && strings.EqualFold(strings.Trim(val, `"`), "https") {
				return "https"
			}
		}
	}
	return "http"
}

// splitHostPort splits hostport into its host and port, with the default
// port of scheme when there is none.
func splitHostPort(hostport, scheme string) (host, port string) {
	host = hostport
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[i:], "]") {
		host, port = hostport[:i], hostport[i+1:]
	}
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), port
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
