package sseadapter_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseadapter"
	"github.com/ssekit/ssekit/core/ssetest"
)

// TestAuthenticate: the auth middleware in a form every router wraps in
// its own middleware type: a request with a valid token goes on with the
// principal and the Auth in its context; one without is answered (401)
// and stops; a CORS preflight goes on unauthenticated.
func TestAuthenticate(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	a := &sse.Auth{Authenticate: func(_ context.Context, token string) (sse.Principal, error) {
		if token != "good" {
			return sse.Principal{}, errors.New("bad token")
		}
		return sse.Principal{ID: "ann"}, nil
	}}
	authenticate := sseadapter.Authenticate(hub, a)
	for _, c := range []struct {
		name      string
		hdr       http.Header
		method    string
		goesOn    bool
		principal string
		status    int // of the answer, when it does not go on
	}{
		{"valid token", http.Header{"Authorization": {"Bearer good"}}, "GET", true, "ann", 0},
		{"no token", nil, "GET", false, "", http.StatusUnauthorized},
		{"bad token", http.Header{"Authorization": {"Bearer bad"}}, "GET", false, "", http.StatusUnauthorized},
		{"preflight", http.Header{"Origin": {"http://app.example"}, "Access-Control-Request-Method": {"GET"}}, "OPTIONS", true, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, "/events", nil)
			for k, v := range c.hdr {
				r.Header[k] = v
			}
			w := httptest.NewRecorder()
			next := authenticate(w, r)
			if (next != nil) != c.goesOn {
				t.Fatalf("goes on: %v, want %v (answer %d %q)", next != nil, c.goesOn, w.Code, w.Body)
			}
			if next == nil {
				if w.Code != c.status {
					t.Errorf("answered %d, want %d", w.Code, c.status)
				}
				return
			}
			if w.Body.Len() != 0 || len(w.Header()) != 0 {
				t.Errorf("wrote %d %v %q before going on", w.Code, w.Header(), w.Body)
			}
			p, ok := sse.PrincipalFrom(next.Context())
			if ok != (c.principal != "") || p.ID != c.principal {
				t.Errorf("principal %+v, %v; want %q", p, ok, c.principal)
			}
		})
	}
}
