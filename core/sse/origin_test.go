package sse_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		name   string
		origin string
		host   string
		tls    bool
		hdr    http.Header
		want   bool
	}{
		{"http, same host", "http://events.example.com", "events.example.com", false, nil, true},
		{"https over TLS", "https://events.example.com", "events.example.com", true, nil, true},
		{"http page, https server", "http://events.example.com", "events.example.com", true, nil, false},
		{"https page, http server", "https://events.example.com", "events.example.com", false, nil, false},
		{"https behind a proxy", "https://events.example.com", "events.example.com", false, http.Header{"X-Forwarded-Proto": {"https"}}, true},
		{"http page, proxy says https", "http://events.example.com", "events.example.com", false, http.Header{"X-Forwarded-Proto": {"https"}}, false},
		{"Forwarded proto", "https://events.example.com", "events.example.com", false, http.Header{"Forwarded": {`for=1.2.3.4;proto=https`}}, true},
		{"explicit default port", "https://events.example.com:443", "events.example.com", true, nil, true},
		{"host with default port", "http://events.example.com", "events.example.com:80", false, nil, true},
		{"other port", "http://events.example.com:8080", "events.example.com", false, nil, false},
		{"same port", "http://127.0.0.1:8080", "127.0.0.1:8080", false, nil, true},
		{"case", "HTTP://Events.Example.COM", "events.example.com", false, nil, true},
		{"other host", "http://evil.example.com", "events.example.com", false, nil, false},
		{"suffix host", "http://events.example.com.evil.io", "events.example.com", false, nil, false},
		{"IPv6", "http://[::1]:8080", "[::1]:8080", false, nil, true},
		{"null", "null", "events.example.com", false, nil, false},
		{"other scheme", "ftp://events.example.com", "events.example.com", false, nil, false},
		{"with path", "http://events.example.com/x", "events.example.com", false, nil, false},
		{"with user", "http://u@events.example.com", "events.example.com", false, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/events", nil)
			r.Host = tt.host
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for k, v := range tt.hdr {
				r.Header[k] = v
			}
			if got := sse.SameOrigin(tt.origin, r); got != tt.want {
				t.Errorf("sameOrigin(%q, host %q) = %v, want %v", tt.origin, tt.host, got, tt.want)
			}
		})
	}
}

// TestCORSSameOriginNeedsSameScheme: a page on http:// must not read an
// https:// stream with credentials because the host names match.
func TestCORSSameOriginNeedsSameScheme(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t"), CORS: &sse.CORS{AllowCredentials: true}})
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Host = "events.example.com"
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Origin", "http://events.example.com")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("http page on an https host: %d, Access-Control-Allow-Origin %q; want 403 and none",
			resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
}

// TestCookieAuthRefusesForeignOrigins: a page of another origin must not
// open streams with a user's cookies unless CORS allows that origin, with
// the handler's Auth and with AuthMiddleware alike.
func TestCookieAuthRefusesForeignOrigins(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{})
	auth := &sse.Auth{CookieName: "session", Authenticate: tokenAuth}
	allowed := &sse.CORS{AllowedOrigins: []string{"https://app.example.com"}, AllowCredentials: true}
	servers := map[string]*httptest.Server{
		"handler auth, no CORS":    serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t"), Auth: auth}),
		"handler auth, CORS":       serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t"), Auth: auth, CORS: allowed}),
		"middleware auth, no CORS": serveHandler(t, sse.AuthMiddleware(h, auth)(h.Handler(sse.HandlerOptions{Topics: sse.Topics("t")}))),
		"middleware auth, CORS":    serveHandler(t, sse.AuthMiddleware(h, auth)(h.Handler(sse.HandlerOptions{Topics: sse.Topics("t"), CORS: allowed}))),
	}
	tests := []struct {
		server, origin string
		cookie, bearer bool
		want           int
	}{
		{"handler auth, no CORS", "https://evil.example", true, false, 403},
		{"handler auth, no CORS", "", true, false, 200},
		{"handler auth, no CORS", "https://evil.example", false, true, 200}, // a bearer token is no ambient credential
		{"handler auth, CORS", "https://evil.example", true, false, 403},
		{"handler auth, CORS", "https://app.example.com", true, false, 200},
		{"middleware auth, no CORS", "https://evil.example", true, false, 403},
		{"middleware auth, no CORS", "", true, false, 200},
		{"middleware auth, CORS", "https://app.example.com", true, false, 200},
		{"middleware auth, CORS", "https://evil.example", true, false, 403},
	}
	for _, tt := range tests {
		hd := http.Header{}
		if tt.origin != "" {
			hd.Set("Origin", tt.origin)
		}
		if tt.cookie {
			hd.Set("Cookie", "session=tok-ann")
		}
		if tt.bearer {
			hd.Set("Authorization", "Bearer tok-ann")
		}
		resp, err := ssetest.TryOpen(t, servers[tt.server].URL, "", hd)
		status := http.StatusOK
		if err != nil {
			status = statusOf(t, err)
		} else {
			resp.Close()
		}
		if status != tt.want {
			t.Errorf("%s, origin %q: status %d, want %d", tt.server, tt.origin, status, tt.want)
		}
	}
}

// TestAuthMiddlewareAuthorizes: behind AuthMiddleware, a handler without
// an Auth of its own authorizes with the middleware's, once; a handler
// with its own Auth authorizes with that one instead.
func TestAuthMiddlewareAuthorizes(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{})
	var mwCalls, ownCalls int
	mw := &sse.Auth{Authenticate: tokenAuth, Authorize: func(_ context.Context, p sse.Principal, topics []string) error {
		mwCalls++
		return ownTopics(p, topics)
	}}
	own := &sse.Auth{Authenticate: tokenAuth, Authorize: func(context.Context, sse.Principal, []string) error {
		ownCalls++
		return nil
	}}
	plain := serveHandler(t, sse.AuthMiddleware(h, mw)(h.Handler(sse.HandlerOptions{})))
	withOwn := serveHandler(t, sse.AuthMiddleware(h, mw)(h.Handler(sse.HandlerOptions{Auth: own})))
	bearer := http.Header{"Authorization": {"Bearer tok-ann"}}

	resp, body := testkit.Request(t, "GET", plain.URL+"?topic=user/bob", bearer)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") == "text/event-stream" {
		t.Errorf("foreign topic behind the middleware: %d %q, want 403 before any stream byte", resp.StatusCode, body)
	}
	st, err := ssetest.TryOpen(t, plain.URL+"?topic=user/ann", "", bearer)
	if err != nil {
		t.Fatalf("own topic behind the middleware: %v", err)
	}
	st.Close()
	if mwCalls != 2 {
		t.Errorf("the middleware's Authorize ran %d times for 2 requests, want 2", mwCalls)
	}
	st, err = ssetest.TryOpen(t, withOwn.URL+"?topic=user/bob", "", bearer)
	if err != nil {
		t.Fatalf("handler's own Auth: %v", err)
	}
	st.Close()
	if ownCalls != 1 || mwCalls != 2 {
		t.Errorf("with the handler's own Auth: own Authorize ran %d times, the middleware's %d; want 1 and still 2", ownCalls, mwCalls)
	}
	resp, _ = testkit.Request(t, "GET", plain.URL+"?topic=user/ann", nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", resp.StatusCode)
	}
	resp, _ = testkit.Request(t, "OPTIONS", plain.URL, http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"GET"}})
	if resp.StatusCode == http.StatusUnauthorized {
		t.Errorf("a preflight through the middleware got 401; it must pass through")
	}
}

// serveHandler starts a test server for h.
func serveHandler(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// statusOf returns the status of a refused stream request.
func statusOf(t *testing.T, err error) int {
	t.Helper()
	var se *ssetest.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("not a refusal: %v", err)
	}
	return se.Code
}

// ownTopics allows p the topics "user/<p.ID>" and "public".
func ownTopics(p sse.Principal, topics []string) error {
	for _, tp := range topics {
		if tp != "user/"+p.ID && tp != "public" {
			return errors.New("not yours")
		}
	}
	return nil
}
