package echosse_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/echosse"
	"github.com/ssekit/ssekit/internal/testkit"
)

func TestTopicsFromParam(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	e := newEcho()
	e.GET("/rooms/:room/events", echosse.Handler(hub, echosse.TopicsFromParam("room")))
	e.GET("/events", echosse.Handler(hub, echosse.TopicsFromParam("room")))
	url := serve(t, e)

	st := connect(t, url+"/rooms/lobby/events", "", nil)
	testkit.Publish(t, hub, "kitchen", "not for the lobby")
	id := testkit.Publish(t, hub, "lobby", "hello")
	if ev := next(t, st.Parser()); ev.Data != "hello" || ev.LastEventID != id {
		t.Fatalf("got %+v, want the lobby's event", ev)
	}

	// A dropped client resumes on the same route and gets every event once.
	st.Close()
	testkit.Eventually(t, "the stream to close", streams(hub, 0))
	var ids []string
	for _, d := range []string{"a", "b", "c"} {
		ids = append(ids, testkit.Publish(t, hub, "lobby", d))
	}
	st = connect(t, url+"/rooms/lobby/events", id, nil)
	ids = append(ids, testkit.Publish(t, hub, "lobby", "live"))
	for _, want := range ids {
		if ev := next(t, st.Parser()); ev.LastEventID != want {
			t.Fatalf("after resuming got %+v, want id %s", ev, want)
		}
	}

	// An escaped parameter is unescaped, as in every adapter.
	for _, c := range []struct{ path, topic string }{
		{"/rooms/a%2Fb/events", "a/b"}, // Echo routes on the escaped path
		{"/rooms/a%2Fb%20c/events", "a/b c"},
		{"/rooms/a%20b/events", "a b"},
		{"/rooms/100%25/events", "100%"},
	} {
		st := connect(t, url+c.path, "", nil)
		id := testkit.Publish(t, hub, c.topic, "for "+c.topic)
		if ev := next(t, st.Parser()); ev.Data != "for "+c.topic || ev.LastEventID != id {
			t.Errorf("%s: got %+v, want the event of topic %q", c.path, ev, c.topic)
		}
		st.Close()
	}

	// A route without the parameter is a mistake that the client is told of.
	resp, body := get(t, url+"/events", nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"room"`) {
		t.Errorf("route without the parameter: %d %q, want 400 naming it", resp.StatusCode, body)
	}
}

func TestTopicsFromQueryAndFixed(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	e := newEcho()
	e.GET("/query", echosse.Handler(hub, echosse.TopicsFromQuery("room")))
	e.GET("/default", echosse.Handler(hub))
	e.GET("/fixed", echosse.Handler(hub, echosse.Topics("a", "b")))
	url := serve(t, e)

	for _, path := range []string{"/query?room=a&room=b", "/default?topic=a&topic=b", "/fixed"} {
		st := connect(t, url+path, "", nil)
		a := testkit.Publish(t, hub, "a", "to a")
		b := testkit.Publish(t, hub, "b", "to b")
		for _, want := range []string{a, b} {
			if ev := next(t, st.Parser()); ev.LastEventID != want {
				t.Fatalf("%s: got %+v, want id %s", path, ev, want)
			}
		}
	}
	for _, path := range []string{"/query", "/query?topic=a", "/default"} {
		if resp, _ := get(t, url+path, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", path, resp.StatusCode)
		}
	}
}

// The specific options override WithHandlerOptions, in any order.
func TestOptionPrecedence(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	e := newEcho()
	base := sse.HandlerOptions{Topics: sse.Topics("base"), CORS: &sse.CORS{AllowedOrigins: []string{"http://base.example"}}}
	e.GET("/rooms/:room", echosse.Handler(hub,
		echosse.TopicsFromParam("room"),
		echosse.WithCORS(&sse.CORS{AllowedOrigins: []string{"http://app.example"}}),
		echosse.WithHandlerOptions(base),
	))
	url := serve(t, e)
	st := connect(t, url+"/rooms/lobby", "", http.Header{"Origin": {"http://app.example"}})
	testkit.Publish(t, hub, "base", "not this")
	id := testkit.Publish(t, hub, "lobby", "this")
	if ev := next(t, st.Parser()); ev.LastEventID != id {
		t.Errorf("got %+v, want the lobby's event", ev)
	}
	if resp, _ := get(t, url+"/rooms/lobby", http.Header{"Origin": {"http://base.example"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the base CORS applies: status %d", resp.StatusCode)
	}
}

var testAuth = &sse.Auth{
	Authenticate: func(_ context.Context, token string) (sse.Principal, error) {
		if user, ok := strings.CutPrefix(token, "good-"); ok {
			return sse.Principal{ID: user}, nil
		}
		return sse.Principal{}, errors.New("bad token")
	},
}

func bearer(user string) http.Header {
	return http.Header{"Authorization": {"Bearer good-" + user}}
}

// Each user's stream carries the user's own topic, picked with Principal in
// a TopicsFunc, whether the Auth middleware or WithAuth authenticated.
func TestPrincipalPerUserTopic(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	e := newEcho()
	perUser := echosse.TopicsFunc(func(c echo.Context) ([]string, error) {
		p, ok := echosse.Principal(c)
		if !ok || p.ID == "" {
			return nil, errors.New("no principal")
		}
		return []string{"user/" + p.ID}, nil
	})
	e.GET("/middleware", echosse.Handler(hub, perUser), echosse.Auth(hub, testAuth))
	e.GET("/handler", echosse.Handler(hub, perUser, echosse.WithAuth(testAuth)))
	e.GET("/me", func(c echo.Context) error {
		p, _ := echosse.Principal(c)
		return c.String(http.StatusOK, p.ID)
	}, echosse.Auth(hub, testAuth))
	url := serve(t, e)

	for _, path := range []string{"/middleware", "/handler"} {
		ann := connect(t, url+path, "", bearer("ann"))
		bob := connect(t, url+path, "", bearer("bob"))
		forBob := testkit.Publish(t, hub, "user/bob", "for bob")
		forAnn := testkit.Publish(t, hub, "user/ann", "for ann")
		if ev := next(t, ann.Parser()); ev.LastEventID != forAnn {
			t.Errorf("%s: ann got %+v", path, ev)
		}
		if ev := next(t, bob.Parser()); ev.LastEventID != forBob {
			t.Errorf("%s: bob got %+v", path, ev)
		}
		ann.Close()
		bob.Close()
		testkit.Eventually(t, "the streams to close", streams(hub, 0))

		resp, body := get(t, url+path, nil)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" || body == "" {
			t.Errorf("%s without a token: %d %q %v", path, resp.StatusCode, body, resp.Header)
		}
	}
	if _, body := get(t, url+"/me", bearer("ann")); body != "ann" {
		t.Errorf("Principal in an ordinary handler behind Auth: %q", body)
	}
	if s := hub.Stats(); s.Streams != 0 {
		t.Errorf("stats: %+v", s)
	}
}

// The Auth middleware lets CORS preflights (which carry no credentials)
// through to the handler, which answers them (WithCORS). With Echo's CORS
// middleware before Auth instead, the middleware answers preflights and
// Auth's refusals carry the CORS headers.
func TestAuthMiddlewareAndCORS(t *testing.T) {
	const origin = "http://app.example"
	hub := ssetest.NewHub(t, sse.Options{})
	e := newEcho()
	e.Match(getAndOptions, "/events", echosse.Handler(hub, echosse.Topics("t"),
		echosse.WithAuth(testAuth),
		echosse.WithCORS(&sse.CORS{AllowedOrigins: []string{origin}, AllowCredentials: true}),
	), echosse.Auth(hub, testAuth))
	g := e.Group("/echo-cors",
		middleware.CORSWithConfig(middleware.CORSConfig{AllowOrigins: []string{origin}, AllowCredentials: true}),
		echosse.Auth(hub, testAuth))
	g.GET("/events", echosse.Handler(hub, echosse.Topics("t"), echosse.WithAuth(testAuth)))
	url := serve(t, e)

	for _, path := range []string{"/events", "/echo-cors/events"} {
		req, err := http.NewRequest(http.MethodOptions, url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "last-event-id")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "last-event-id") {
			t.Errorf("%s: preflight: %d %v", path, resp.StatusCode, resp.Header)
		}

		st := connect(t, url+path, "", http.Header{"Origin": {origin}, "Authorization": {"Bearer good-ann"}})
		if st.Response.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("%s: stream: %v", path, st.Response.Header)
		}
	}
	resp, _ := get(t, url+"/echo-cors/events", http.Header{"Origin": {origin}})
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("refusal behind Echo's CORS: %d %v", resp.StatusCode, resp.Header)
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
	e := newEcho()
	e.GET("/before", echosse.Handler(hub, echosse.WithHandlerOptions(base), echosse.WithAuth(nil), echosse.WithCORS(nil), echosse.Topics("t")))
	e.GET("/after", echosse.Handler(hub, echosse.WithAuth(nil), echosse.WithCORS(nil), echosse.Topics("t"), echosse.WithHandlerOptions(base)))
	srv := httptest.NewServer(e)
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
