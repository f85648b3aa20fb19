package sse_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// hasVaryOrigin reports whether h's Vary headers name Origin.
func hasVaryOrigin(h http.Header) bool {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "Origin") {
				return true
			}
		}
	}
	return false
}

func TestCORSStreams(t *testing.T) {
	testkit.CheckGoroutines(t)
	h := ssetest.NewHub(t, sse.Options{})
	withCreds := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t"), CORS: &sse.CORS{
		AllowedOrigins:   []string{"https://app.example.com", "http://localhost:5173"},
		AllowOrigin:      func(o string) bool { return strings.HasSuffix(o, ".preview.example.com") },
		AllowCredentials: true,
	}})
	noCreds := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t"), CORS: &sse.CORS{
		AllowedOrigins: []string{"https://app.example.com"},
	}})
	tests := []struct {
		name, url, origin string
		acao, acac        string
	}{
		{"listed origin", withCreds.URL, "https://app.example.com", "https://app.example.com", "true"},
		{"second listed origin", withCreds.URL, "http://localhost:5173", "http://localhost:5173", "true"},
		{"AllowOrigin", withCreds.URL, "https://pr-7.preview.example.com", "https://pr-7.preview.example.com", "true"},
		{"same origin, not listed", withCreds.URL, withCreds.URL, withCreds.URL, "true"},
		{"no Origin", withCreds.URL, "", "", ""},
		{"listed, no credentials", noCreds.URL, "https://app.example.com", "https://app.example.com", ""},
		{"no Origin, no credentials", noCreds.URL, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := connectWith(t, tt.url, "", hdr("Origin", tt.origin))
			rh := st.Response.Header
			if got := rh.Get("Access-Control-Allow-Origin"); got != tt.acao {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.acao)
			}
			if got := rh.Get("Access-Control-Allow-Credentials"); got != tt.acac {
				t.Errorf("Access-Control-Allow-Credentials = %q, want %q", got, tt.acac)
			}
			if !hasVaryOrigin(rh) {
				t.Errorf("Vary = %q, want Origin", rh.Values("Vary"))
			}
			testkit.WaitStreams(t, h, 1)
			testkit.Publish(t, h, "t", "hi")
			if ev := next(t, st); ev.Data != "hi" {
				t.Errorf("got %+v", ev)
			}
			st.Close()
			testkit.WaitStreams(t, h, 0)
		})
	}
}

func TestCORSDisallowedOrigin(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{})
	var mu sync.Mutex
	var asked []string
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t"), CORS: &sse.CORS{
		AllowedOrigins: []string{"https://app.example.com"},
		AllowOrigin: func(o string) bool {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, o)
			return false
		},
		AllowCredentials: true,
	}})
	for _, origin := range []string{
		"https://evil.example.com",
		"https://app.example.com.evil.net",
		"http://app.example.com", // other scheme
		"https://app.example.com:8443",
		"null",
		"https://APP.example.com", // origins are compared exactly
	} {
		t.Run(origin, func(t *testing.T) {
			rep := request(t, http.MethodGet, srv.URL, hdr("Origin", origin))
			checkNoStream(t, rep)
			if rep.status != http.StatusForbidden || strings.TrimSpace(rep.body) == "" {
				t.Errorf("got %d %q, want 403 with a reason", rep.status, rep.body)
			}
			if !hasVaryOrigin(rep.header) {
				t.Errorf("Vary = %q, want Origin", rep.header.Values("Vary"))
			}
			for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials"} {
				if v := rep.header.Get(k); v != "" {
					t.Errorf("%s = %q on a refused origin", k, v)
				}
			}
		})
	}
	mu.Lock()
	if !slices.Contains(asked, "https://evil.example.com") {
		t.Errorf("AllowOrigin was asked about %q", asked)
	}
	mu.Unlock()
	testkit.WaitStreams(t, h, 0)
}

func TestCORSPreflight(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{})
	cors := &sse.CORS{AllowedOrigins: []string{"https://app.example.com"}, AllowCredentials: true}
	// Auth does not apply to preflights: browsers send them without
	// credentials.
	auth := &sse.Auth{Authenticate: tokenAuth, CookieName: "sid"}
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t"), CORS: cors, Auth: auth})
	short := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t"), CORS: &sse.CORS{AllowedOrigins: []string{"https://app.example.com"}, MaxAge: 90 * time.Second}})

	preflight := hdr("Origin", "https://app.example.com", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "last-event-id")
	tests := []struct {
		name, url string
		h         http.Header
		maxAge    string
		acac      string
	}{
		{"default max age", srv.URL, preflight, "600", "true"},
		{"MaxAge", short.URL, preflight, "90", ""},
		{"several request headers", srv.URL, hdr("Origin", "https://app.example.com", "Access-Control-Request-Method", "GET",
			"Access-Control-Request-Headers", "authorization,last-event-id,cache-control"), "600", "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := request(t, http.MethodOptions, tt.url+"/events", tt.h)
			if rep.status != http.StatusNoContent || rep.body != "" {
				t.Fatalf("got %d %q, want 204 and no body", rep.status, rep.body)
			}
			if got := rep.header.Get("Access-Control-Allow-Origin"); got != "https://app.example.com" {
				t.Errorf("Access-Control-Allow-Origin = %q", got)
			}
			if got := rep.header.Get("Access-Control-Allow-Credentials"); got != tt.acac {
				t.Errorf("Access-Control-Allow-Credentials = %q, want %q", got, tt.acac)
			}
			if got := rep.header.Get("Access-Control-Allow-Methods"); !slices.Contains(splitList(got), "GET") {
				t.Errorf("Access-Control-Allow-Methods = %q, want GET", got)
			}
			allowed := splitList(strings.ToLower(rep.header.Get("Access-Control-Allow-Headers")))
			for _, want := range splitList(strings.ToLower(tt.h.Get("Access-Control-Request-Headers"))) {
				if !slices.Contains(allowed, want) {
					t.Errorf("Access-Control-Allow-Headers = %q, want %s", rep.header.Get("Access-Control-Allow-Headers"), want)
				}
			}
			if !slices.Contains(allowed, "last-event-id") {
				t.Errorf("Access-Control-Allow-Headers = %q, want Last-Event-ID", rep.header.Get("Access-Control-Allow-Headers"))
			}
			if got := rep.header.Get("Access-Control-Max-Age"); got != tt.maxAge {
				t.Errorf("Access-Control-Max-Age = %q, want %q", got, tt.maxAge)
			}
			if !hasVaryOrigin(rep.header) {
				t.Errorf("Vary = %q, want Origin", rep.header.Values("Vary"))
			}
			if ct := rep.header.Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") {
				t.Errorf("preflight answered with Content-Type %q", ct)
			}
		})
	}
	t.Run("disallowed origin", func(t *testing.T) {
		rep := request(t, http.MethodOptions, srv.URL, hdr("Origin", "https://evil.example.com", "Access-Control-Request-Method", "GET"))
		if rep.status != http.StatusForbidden || rep.header.Get("Access-Control-Allow-Origin") != "" || rep.header.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("got %d, headers %v; want 403 without CORS grants", rep.status, rep.header)
		}
	})
	t.Run("OPTIONS that is no preflight", func(t *testing.T) {
		rep := request(t, http.MethodOptions, srv.URL, hdr("Origin", "https://app.example.com"))
		if rep.status != http.StatusMethodNotAllowed || rep.header.Get("Allow") != "GET" {
			t.Errorf("got %d, Allow %q; want 405, GET", rep.status, rep.header.Get("Allow"))
		}
	})
	testkit.WaitStreams(t, h, 0)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// TestCORSHeadersOnRefusals: a page must be able to read why it was refused
// (docs/protocol.md P16), so CORS headers go on 401, 403, over-limit and
// other refusals.
func TestCORSHeadersOnRefusals(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{MaxStreams: 1})
	srv := serve(t, h, sse.HandlerOptions{
		CORS: &sse.CORS{AllowedOrigins: []string{"https://app.example.com"}, AllowCredentials: true},
		Auth: &sse.Auth{
			Authenticate: tokenAuth,
			CookieName:   "sid",
			Authorize: func(_ context.Context, _ sse.Principal, topics []string) error {
				if slices.Contains(topics, "secret") {
					return errors.New("no")
				}
				return nil
			},
		},
	})
	origin := "https://app.example.com"
	connectWith(t, srv.URL+"?topic=t", "", hdr("Origin", origin, "Cookie", "sid=tok-a"))
	testkit.WaitStreams(t, h, 1)
	tests := []struct {
		name   string
		method string
		query  string
		cookie string
		status int
	}{
		{"401 no token", "GET", "topic=t", "", 401},
		{"401 bad token", "GET", "topic=t", "sid=bad", 401},
		{"403 forbidden topic", "GET", "topic=secret", "sid=tok-a", 403},
		{"400 no topic", "GET", "", "sid=tok-a", 400},
		{"405 POST", "POST", "topic=t", "sid=tok-a", 405},
		{"200 over the limit", "GET", "topic=t", "sid=tok-b", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := request(t, tt.method, srv.URL+"?"+tt.query, hdr("Origin", origin, "Cookie", tt.cookie))
			if rep.status != tt.status {
				t.Errorf("got %d %q, want %d", rep.status, rep.body, tt.status)
			}
			if got := rep.header.Get("Access-Control-Allow-Origin"); got != origin {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, origin)
			}
			if got := rep.header.Get("Access-Control-Allow-Credentials"); got != "true" {
				t.Errorf("Access-Control-Allow-Credentials = %q", got)
			}
			if !hasVaryOrigin(rep.header) {
				t.Errorf("Vary = %q, want Origin", rep.header.Values("Vary"))
			}
			if tt.status == 401 && !strings.HasPrefix(rep.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", rep.header.Get("WWW-Authenticate"))
			}
			if tt.status == 200 && !strings.HasPrefix(rep.body, "retry: ") {
				t.Errorf("over-limit answer %q, want a retry hint", rep.body)
			}
		})
	}
}
