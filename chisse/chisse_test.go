package chisse_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/ssekit/ssekit/chisse"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/internal/testkit"
)

func TestTopicsFromParam(t *testing.T) {
	testkit.CheckGoroutines(t)
	hub := ssetest.NewHub(t, sse.Options{})
	r := chi.NewRouter()
	r.Get("/rooms/{room}/events", chisse.Handler(hub, chisse.TopicsFromParam("room")))
	r.Get("/wrong/{room}", chisse.Handler(hub, chisse.TopicsFromParam("roomm")))
	srv := serve(t, r)

	for _, c := range []struct{ path, topic string }{
		{"/rooms/lobby/events", "lobby"},
		{"/rooms/a%2Fb/events", "a/b"}, // chi matches the escaped path
		{"/rooms/a%20b/events", "a b"},
		{"/rooms/caf%C3%A9/events", "café"},
		{"/rooms/100%25/events", "100%"},
	} {
		st := ssetest.Open(t, srv.URL+c.path, "", nil)
		testkit.Publish(t, hub, "other", "not for this stream")
		id := testkit.Publish(t, hub, c.topic, "for "+c.topic)
		if ev := next(t, st); ev.Data != "for "+c.topic || ev.LastEventID != id {
			t.Errorf("%s: got %+v, want the event of topic %q", c.path, ev, c.topic)
		}
		st.Close()
	}

	for _, path := range []string{"/wrong/x"} {
		resp, body := testkit.Request(t, "GET", srv.URL+path, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "route parameter") {
			t.Errorf("%s: %d %q; want 400 naming the parameter", path, resp.StatusCode, body)
		}
	}
	testkit.WaitStreams(t, hub, 0)
}

func TestTopicsFromQuery(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	r := chi.NewRouter()
	r.Get("/events", chisse.Handler(hub, chisse.TopicsFromQuery("t")))
	r.Get("/default", chisse.Handler(hub))
	srv := serve(t, r)

	st := ssetest.Open(t, srv.URL+"/events?t=a&t=b", "", nil)
	def := ssetest.Open(t, srv.URL+"/default?topic=b", "", nil)
	a := testkit.Publish(t, hub, "a", "on a")
	b := testkit.Publish(t, hub, "b", "on b")
	if ev := next(t, st); ev.LastEventID != a {
		t.Errorf("got %+v, want the event on a", ev)
	}
	if ev := next(t, st); ev.LastEventID != b {
		t.Errorf("got %+v, want the event on b", ev)
	}
	if ev := next(t, def); ev.LastEventID != b {
		t.Errorf("default topic option: got %+v, want the event on b", ev)
	}
	if resp, body := testkit.Request(t, "GET", srv.URL+"/events?topic=a", nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"t"`) {
		t.Errorf("without the parameter: %d %q, want 400 naming it", resp.StatusCode, body)
	}
}

// TestOptionOrder: the topic, auth and CORS options override
// WithHandlerOptions whatever their order; fields they do not set stay.
func TestOptionOrder(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	base := sse.HandlerOptions{
		Topics: sse.Topics("base"),
		CORS:   &sse.CORS{AllowedOrigins: []string{"http://app.example"}},
	}
	r := chi.NewRouter()
	r.Get("/before", chisse.Handler(hub, chisse.WithHandlerOptions(base), chisse.Topics("over")))
	r.Get("/after", chisse.Handler(hub, chisse.Topics("over"), chisse.WithHandlerOptions(base)))
	srv := serve(t, r)
	origin := http.Header{"Origin": {"http://app.example"}}
	for _, path := range []string{"/before", "/after"} {
		st := ssetest.Open(t, srv.URL+path, "", origin)
		if got := st.Response.Header.Get("Access-Control-Allow-Origin"); got != "http://app.example" {
			t.Errorf("%s: the base CORS was lost (Access-Control-Allow-Origin %q)", path, got)
		}
		testkit.Publish(t, hub, "base", "base")
		id := testkit.Publish(t, hub, "over", "over")
		if ev := next(t, st); ev.LastEventID != id {
			t.Errorf("%s: got %+v, want the event on the overriding topic", path, ev)
		}
		if resp, _ := testkit.Request(t, "GET", srv.URL+path, http.Header{"Origin": {"http://evil.example"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: other origin got %d, want 403", path, resp.StatusCode)
		}
	}
}

// testAuth accepts tokens "good-<user>" and lets a user subscribe to
// "user/<user>" and "public".
func testAuth() *sse.Auth {
	return &sse.Auth{
		Authenticate: func(_ context.Context, token string) (sse.Principal, error) {
			if user, ok := strings.CutPrefix(token, "good-"); ok {
				return sse.Principal{ID: user}, nil
			}
			return sse.Principal{}, errors.New("bad token")
		},
		Authorize: func(_ context.Context, p sse.Principal, topics []string) error {
			for _, tp := range topics {
				if tp != "user/"+p.ID && tp != "public" {
					return errors.New("not yours")
				}
			}
			return nil
		},
	}
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// userTopic is a TopicsFunc that subscribes a principal to its own topic.
func userTopic(r *http.Request) ([]string, error) {
	p, ok := chisse.Principal(r)
	if !ok || p.ID == "" {
		return nil, sse.Refuse(http.StatusUnauthorized, "who are you?")
	}
	return []string{"user/" + p.ID}, nil
}

// TestPrincipalPerUserTopic: TopicsFunc reads Principal, whether the Auth
// middleware or the handler's WithAuth authenticated the request; other
// chi handlers behind the middleware read it too.
func TestPrincipalPerUserTopic(t *testing.T) {
	testkit.CheckGoroutines(t)
	hub := ssetest.NewHub(t, sse.Options{})
	auth := testAuth()
	r := chi.NewRouter()
	r.Group(func(r chi.Router) {
		r.Use(chisse.Auth(hub, auth))
		r.Get("/me/events", chisse.Handler(hub, chisse.TopicsFunc(userTopic)))
		r.Get("/me", func(w http.ResponseWriter, r *http.Request) {
			p, _ := chisse.Principal(r)
			_, _ = w.Write([]byte(p.ID))
		})
	})
	r.Get("/own/events", chisse.Handler(hub, chisse.WithAuth(auth), chisse.TopicsFunc(userTopic)))
	srv := serve(t, r)

	for _, path := range []string{"/me/events", "/own/events"} {
		ann := ssetest.Open(t, srv.URL+path, "", bearer("good-ann"))
		bob := ssetest.Open(t, srv.URL+path, "", bearer("good-bob"))
		testkit.Publish(t, hub, "user/bob", "for bob")
		id := testkit.Publish(t, hub, "user/ann", "for ann")
		if ev := next(t, ann); ev.Data != "for ann" || ev.LastEventID != id {
			t.Errorf("%s: ann got %+v", path, ev)
		}
		if ev := next(t, bob); ev.Data != "for bob" {
			t.Errorf("%s: bob got %+v", path, ev)
		}
		ann.Close()
		bob.Close()
		if resp, _ := testkit.Request(t, "GET", srv.URL+path, nil); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s without a token: %d, want 401 with WWW-Authenticate", path, resp.StatusCode)
		}
	}
	if resp, body := testkit.Request(t, "GET", srv.URL+"/me", bearer("good-ann")); resp.StatusCode != 200 || body != "ann" {
		t.Errorf("a plain handler behind Auth: %d %q, want ann", resp.StatusCode, body)
	}
	testkit.WaitStreams(t, hub, 0)
}

// TestAuthMiddleware: a refusal stops the chain and the Observer sees it;
// the handler authorizes with the middleware's Auth, or with its own
// WithAuth when set; preflights pass unauthenticated.
func TestAuthMiddleware(t *testing.T) {
	refused := make(chan sse.RefusalReason, 8)
	hub := ssetest.NewHub(t, sse.Options{Observer: sse.Observer{Refused: func(_ *http.Request, reason sse.RefusalReason, _ int) {
		refused <- reason
	}}})
	auth := testAuth()
	strict := testAuth()
	strict.Authorize = func(context.Context, sse.Principal, []string) error { return errors.New("nobody") }
	var reached atomic.Int32
	r := chi.NewRouter()
	r.Use(chisse.Auth(hub, auth))
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached.Add(1)
			next.ServeHTTP(w, r)
		})
	})
	cors := &sse.CORS{AllowedOrigins: []string{"http://app.example"}}
	h := chisse.Handler(hub, chisse.TopicsFromQuery("topic"), chisse.WithCORS(cors))
	r.Get("/events", h)
	r.Options("/events", h)
	r.Get("/strict", chisse.Handler(hub, chisse.WithAuth(strict), chisse.Topics("public")))
	srv := serve(t, r)

	resp, body := testkit.Request(t, "GET", srv.URL+"/events?topic=public", bearer("bad"))
	if resp.StatusCode != http.StatusUnauthorized || reached.Load() != 0 {
		t.Errorf("bad token: %d %q, next reached %d times; want 401 and the chain stopped", resp.StatusCode, body, reached.Load())
	}
	if reason := <-refused; reason != sse.RefusedUnauthenticated {
		t.Errorf("Observer.Refused got %v", reason)
	}
	if resp, _ := testkit.Request(t, "GET", srv.URL+"/events?topic=user/bob", bearer("good-ann")); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another user's topic: %d, want 403 (the middleware's Authorize)", resp.StatusCode)
	}
	if resp, _ := testkit.Request(t, "GET", srv.URL+"/strict", bearer("good-ann")); resp.StatusCode != http.StatusForbidden {
		t.Errorf("WithAuth: %d, want 403 (the handler's own Authorize)", resp.StatusCode)
	}
	resp, _ = testkit.Request(t, "OPTIONS", srv.URL+"/events", http.Header{
		"Origin": {"http://app.example"}, "Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"authorization"},
	})
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "http://app.example" {
		t.Errorf("preflight: %d %v, want 204 from the handler", resp.StatusCode, resp.Header)
	}
	st := ssetest.Open(t, srv.URL+"/events?topic=public&topic=user/ann", "", bearer("good-ann"))
	id := testkit.Publish(t, hub, "public", "hello")
	if ev := next(t, st); ev.LastEventID != id {
		t.Errorf("got %+v", ev)
	}
}

// TestTopicsFuncRefusals: TopicsFunc's Refuse and TryLater answers reach
// the client through chi as they are.
func TestTopicsFuncRefusals(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	r := chi.NewRouter()
	r.Get("/events/{case}", chisse.Handler(hub, chisse.TopicsFunc(func(r *http.Request) ([]string, error) {
		switch chi.URLParam(r, "case") {
		case "later":
			return nil, sse.TryLater(1500 * time.Millisecond)
		case "gone":
			return nil, sse.Refuse(http.StatusNoContent, "")
		}
		return nil, sse.Refuse(http.StatusForbidden, "no")
	})))
	srv := serve(t, r)
	for _, c := range []struct {
		path   string
		status int
		body   string
	}{
		{"/events/later", 200, "retry: 1500\n\n"},
		{"/events/gone", 204, ""},
		{"/events/x", 403, "no\n"},
	} {
		if resp, body := testkit.Request(t, "GET", srv.URL+c.path, nil); resp.StatusCode != c.status || body != c.body {
			t.Errorf("%s: %d %q, want %d %q", c.path, resp.StatusCode, body, c.status, c.body)
		}
	}
	if resp, _ := testkit.Request(t, "POST", srv.URL+"/events/later", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST on a GET route: %d, want chi's 405", resp.StatusCode)
	}
}

// TestNilOptionsClearBase: WithAuth(nil) and WithCORS(nil) mean none, even
// where WithHandlerOptions set them, whatever the order (the same rule in
// every adapter).
func TestNilOptionsClearBase(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	base := sse.HandlerOptions{
		Auth: &sse.Auth{Authenticate: func(context.Context, string) (sse.Principal, error) { return sse.Principal{}, errors.New("no") }},
		CORS: &sse.CORS{AllowedOrigins: []string{"http://app.example"}},
	}
	r := chi.NewRouter()
	r.Get("/before", chisse.Handler(hub, chisse.WithHandlerOptions(base), chisse.WithAuth(nil), chisse.WithCORS(nil), chisse.Topics("t")))
	r.Get("/after", chisse.Handler(hub, chisse.WithAuth(nil), chisse.WithCORS(nil), chisse.Topics("t"), chisse.WithHandlerOptions(base)))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	for _, path := range []string{"/before", "/after"} {
		// No token, and an origin the base CORS would refuse: neither applies.
		st := ssetest.Open(t, srv.URL+path, "", http.Header{"Origin": {"http://other.example"}})
		if h := st.Response.Header.Get("Access-Control-Allow-Origin"); h != "" {
			t.Errorf("%s: Access-Control-Allow-Origin %q without CORS", path, h)
		}
		id := testkit.Publish(t, hub, "t", path)
		if ev, err := st.Next(); err != nil || ev.LastEventID != id {
			t.Errorf("%s: got %+v, %v", path, ev, err)
		}
		st.Close()
	}
}
