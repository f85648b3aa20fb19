package ginsse_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/ginsse"
	"github.com/ssekit/ssekit/internal/testkit"
)

// bearerAuth takes the bearer token as the user name; user "x" is refused.
func bearerAuth() *sse.Auth {
	return &sse.Auth{Authenticate: func(_ context.Context, token string) (sse.Principal, error) {
		if token == "x" {
			return sse.Principal{}, errors.New("refused")
		}
		return sse.Principal{ID: token}, nil
	}}
}

func bearer(user string) http.Header { return http.Header{"Authorization": {"Bearer " + user}} }

// TestTopicsFromParam: the route parameter names the topic (a catch-all
// parameter without its slash), and a client that drops and comes back
// with Last-Event-ID on the same route gets each missed event once.
func TestTopicsFromParam(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	r := gin.New()
	r.GET("/rooms/:room/events", ginsse.Handler(hub, ginsse.TopicsFromParam("room")))
	r.GET("/feeds/*topic", ginsse.Handler(hub, ginsse.TopicsFromParam("topic")))
	r.GET("/nope", ginsse.Handler(hub, ginsse.TopicsFromParam("room")))
	base := serve(t, r)

	lobby := ssetest.Open(t, base+"/rooms/lobby/events", "", nil)
	kitchen := ssetest.Open(t, base+"/rooms/kitchen/events", "", nil)
	feed := ssetest.Open(t, base+"/feeds/news/eu", "", nil)
	testkit.Publish(t, hub, "kitchen", "k")
	testkit.Publish(t, hub, "news/eu", "n")
	l1 := testkit.Publish(t, hub, "lobby", "l1")
	for _, c := range []struct {
		st   *ssetest.Stream
		data string
	}{{kitchen, "k"}, {feed, "n"}, {lobby, "l1"}} {
		if ev := next(t, c.st); ev.Data != c.data {
			t.Errorf("got %q, want %q", ev.Data, c.data)
		}
	}
	if resp, _ := testkit.Request(t, "GET", base+"/nope", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("route without the parameter: %d, want 400", resp.StatusCode)
	}

	// Drop the lobby client; three events pass while it is away.
	lobby.Close()
	testkit.Eventually(t, "the dropped stream to be released", func() bool { return hub.Stats().Streams == 2 })
	var missed []string
	for i := range 3 {
		missed = append(missed, testkit.Publish(t, hub, "lobby", fmt.Sprint("m", i)))
	}
	back := ssetest.Open(t, base+"/rooms/lobby/events", l1, nil)
	live := testkit.Publish(t, hub, "lobby", "live")
	for _, id := range append(missed, live) {
		if ev := next(t, back); ev.LastEventID != id {
			t.Fatalf("after resuming got %+v, want id %s", ev, id)
		}
	}
}

// TestTopicsFromParamEscaped: with UseRawPath, gin matches the escaped
// path and unescapes the parameter itself, so "/rooms/a%2Fb/events" is the
// topic "a/b", as in every adapter. (Without it, gin routes on the decoded
// path, where "a/b" is two segments: 404.)
func TestTopicsFromParamEscaped(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	r := gin.New()
	r.UseRawPath = true
	r.GET("/rooms/:room/events", ginsse.Handler(hub, ginsse.TopicsFromParam("room")))
	base := serve(t, r)
	for _, c := range []struct{ path, topic string }{
		{"/rooms/a%2Fb/events", "a/b"},
		{"/rooms/a%2Fb%20c/events", "a/b c"},
		{"/rooms/100%25/events", "100%"},
	} {
		st := ssetest.Open(t, base+c.path, "", nil)
		id := testkit.Publish(t, hub, c.topic, "for "+c.topic)
		if ev := next(t, st); ev.Data != "for "+c.topic || ev.LastEventID != id {
			t.Errorf("%s: got %+v, want the event of topic %q", c.path, ev, c.topic)
		}
		st.Close()
	}
}

func TestTopicsFromQuery(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	r := gin.New()
	r.GET("/events", ginsse.Handler(hub, ginsse.TopicsFromQuery("room")))
	r.GET("/default", ginsse.Handler(hub))
	base := serve(t, r)
	st := ssetest.Open(t, base+"/events?room=a&room=b", "", nil)
	def := ssetest.Open(t, base+"/default?topic=b", "", nil)
	a, b := testkit.Publish(t, hub, "a", "a"), testkit.Publish(t, hub, "b", "b")
	if ev1, ev2 := next(t, st), next(t, st); ev1.LastEventID != a || ev2.LastEventID != b {
		t.Errorf("got %+v %+v", ev1, ev2)
	}
	if ev := next(t, def); ev.LastEventID != b {
		t.Errorf("default option: got %+v", ev)
	}
	if resp, _ := testkit.Request(t, "GET", base+"/events?topic=a", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("without the parameter: %d, want 400", resp.StatusCode)
	}
}

// TestTopicsFuncPerUser: TopicsFunc picks the principal's own topic, with
// Principal(c) set by the Auth middleware or, without it, by WithAuth.
func TestTopicsFuncPerUser(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	own := ginsse.TopicsFunc(func(c *gin.Context) ([]string, error) {
		p, ok := ginsse.Principal(c)
		if !ok {
			return nil, errors.New("no principal")
		}
		if q, _ := sse.PrincipalFrom(c.Request.Context()); q.ID != p.ID {
			return nil, errors.New("the request context has another principal")
		}
		return []string{"user/" + p.ID}, nil
	})
	r := gin.New()
	r.GET("/mw/events", ginsse.Auth(hub, bearerAuth()), ginsse.Handler(hub, own))
	r.GET("/opt/events", ginsse.Handler(hub, own, ginsse.WithAuth(bearerAuth())))
	base := serve(t, r)
	for _, path := range []string{"/mw/events", "/opt/events"} {
		ann := ssetest.Open(t, base+path, "", bearer("ann"))
		bob := ssetest.Open(t, base+path, "", bearer("bob"))
		testkit.Publish(t, hub, "user/bob", "for bob")
		testkit.Publish(t, hub, "user/ann", "for ann")
		if ev := next(t, ann); ev.Data != "for ann" {
			t.Errorf("%s: ann got %q", path, ev.Data)
		}
		if ev := next(t, bob); ev.Data != "for bob" {
			t.Errorf("%s: bob got %q", path, ev.Data)
		}
		if resp, _ := testkit.Request(t, "GET", base+path, bearer("x")); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: refused token: %d, want 401", path, resp.StatusCode)
		}
		ann.Close()
		bob.Close()
		testkit.Eventually(t, "the streams to be released", func() bool { return hub.Stats().Streams == 0 })
	}
}

func TestTopicsFuncRefusals(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	r := gin.New()
	r.GET("/events", ginsse.Handler(hub, ginsse.TopicsFunc(func(c *gin.Context) ([]string, error) {
		switch c.Query("answer") {
		case "stop":
			return nil, sse.Refuse(http.StatusNoContent, "")
		case "later":
			return nil, sse.TryLater(2 * time.Second)
		}
		return nil, errors.New("database down")
	})))
	base := serve(t, r) + "/events"
	if resp, _ := testkit.Request(t, "GET", base+"?answer=stop", nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("Refuse(204): %d", resp.StatusCode)
	}
	if resp, body := testkit.Request(t, "GET", base+"?answer=later", nil); resp.StatusCode != 200 || body != "retry: 2000\n\n" {
		t.Errorf("TryLater: %d %q", resp.StatusCode, body)
	}
	if resp, _ := testkit.Request(t, "GET", base, nil); resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("other error: %d, want 500", resp.StatusCode)
	}
}

// TestAuthMiddleware: a refusal stops the chain; the handler authorizes the
// topics with the middleware's Auth; a CORS preflight passes through
// unauthenticated for the handler to answer.
func TestAuthMiddleware(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	auth := bearerAuth()
	auth.Authorize = func(_ context.Context, p sse.Principal, topics []string) error {
		if topics[0] != "user/"+p.ID {
			return errors.New("not yours")
		}
		return nil
	}
	reached := make(chan string, 10)
	r := gin.New()
	g := r.Group("/", ginsse.Auth(hub, auth), func(c *gin.Context) { reached <- c.Request.Method })
	g.Match([]string{"GET", "OPTIONS"}, "/events", ginsse.Handler(hub, ginsse.WithCORS(&sse.CORS{AllowedOrigins: []string{"http://app.example"}})))
	url := serve(t, r) + "/events"

	resp, _ := testkit.Request(t, "GET", url+"?topic=user/ann", nil)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := testkit.Request(t, "GET", url+"?topic=user/bob", bearer("ann")); resp.StatusCode != http.StatusForbidden {
		t.Errorf("other user's topic: %d, want 403 (Authorize of the middleware's Auth)", resp.StatusCode)
	}
	resp, _ = testkit.Request(t, "OPTIONS", url, http.Header{"Origin": {"http://app.example"}, "Access-Control-Request-Method": {"GET"}})
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "http://app.example" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	st := ssetest.Open(t, url+"?topic=user/ann", "", bearer("ann"))
	id := testkit.Publish(t, hub, "user/ann", "x")
	if ev := next(t, st); ev.LastEventID != id {
		t.Errorf("got %+v", ev)
	}
	close(reached)
	var methods []string
	for m := range reached {
		methods = append(methods, m)
	}
	if got := strings.Join(methods, ","); got != "GET,OPTIONS,GET" {
		t.Errorf("requests that passed the middleware: %s, want GET,OPTIONS,GET (403, preflight, stream)", got)
	}
}

// TestHandlerAbortsChain: handlers after Handler do not run, after a
// stream or a refusal.
func TestHandlerAbortsChain(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	after := make(chan struct{}, 2)
	r := gin.New()
	r.GET("/events", ginsse.Handler(hub, ginsse.Topics("t")), func(c *gin.Context) { after <- struct{}{}; c.String(200, "oops") })
	r.GET("/refused", ginsse.Handler(hub), func(c *gin.Context) { after <- struct{}{} })
	base := serve(t, r)
	if resp, _ := testkit.Request(t, "GET", base+"/refused", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("refusal: %d", resp.StatusCode)
	}
	st := ssetest.Open(t, base+"/events", "", nil)
	st.Close()
	testkit.Eventually(t, "the stream to end", func() bool { return hub.Stats().Streams == 0 })
	select {
	case <-after:
		t.Error("a handler after ginsse.Handler ran")
	case <-time.After(50 * time.Millisecond):
	}
}

func TestPrincipalWithoutAuth(t *testing.T) {
	c, _ := gin.CreateTestContext(nil)
	if p, ok := ginsse.Principal(c); ok {
		t.Errorf("Principal of a bare context: %+v", p)
	}
	c.Request, _ = http.NewRequest("GET", "/", nil)
	c.Request = c.Request.WithContext(sse.WithPrincipal(c.Request.Context(), sse.Principal{ID: "ann"}))
	if p, ok := ginsse.Principal(c); !ok || p.ID != "ann" {
		t.Errorf("Principal from the request context: %+v %v", p, ok)
	}
}

// TestOptionPrecedence: Topics and WithCORS override WithHandlerOptions'
// fields whatever the order; the last topic option wins.
func TestOptionPrecedence(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	cors := &sse.CORS{AllowedOrigins: []string{"http://app.example"}}
	r := gin.New()
	r.GET("/events", ginsse.Handler(hub,
		ginsse.WithCORS(cors),
		ginsse.TopicsFromQuery("room"),
		ginsse.Topics("t"),
		ginsse.WithHandlerOptions(sse.HandlerOptions{Topics: sse.Topics("base")})))
	st := ssetest.Open(t, serve(t, r)+"/events", "", http.Header{"Origin": {"http://app.example"}})
	if st.Response.Header.Get("Access-Control-Allow-Origin") != "http://app.example" {
		t.Errorf("WithCORS was overridden: %v", st.Response.Header)
	}
	testkit.Publish(t, hub, "base", "base")
	id := testkit.Publish(t, hub, "t", "t")
	if ev := next(t, st); ev.LastEventID != id {
		t.Errorf("got %+v, want the event of topic t", ev)
	}
}

// TestClientsLeaveNothingBehind: with the per-request path (Auth middleware,
// TopicsFunc) behind Logger and Recovery, departed clients leave no stream,
// topic or goroutine behind.
func TestClientsLeaveNothingBehind(t *testing.T) {
	base := runtime.NumGoroutine()
	t.Run("streams", func(t *testing.T) {
		hub := ssetest.NewHub(t, sse.Options{})
		r := gin.New()
		r.Use(gin.LoggerWithConfig(gin.LoggerConfig{Output: &syncBuffer{}}), gin.Recovery())
		r.GET("/rooms/:room/events", ginsse.Auth(hub, bearerAuth()), ginsse.Handler(hub, ginsse.TopicsFunc(
			func(c *gin.Context) ([]string, error) {
				p, _ := ginsse.Principal(c)
				return []string{c.Param("room"), "user/" + p.ID}, nil
			})))
		url := serve(t, r)
		var streams []*ssetest.Stream
		for i := range 20 {
			streams = append(streams, ssetest.Open(t, fmt.Sprintf("%s/rooms/r%d/events", url, i%3), "", bearer(fmt.Sprint("u", i))))
		}
		testkit.Publish(t, hub, "r1", "x")
		next(t, streams[1])
		for _, st := range streams {
			st.Close()
		}
		testkit.Eventually(t, "every stream to be released", func() bool { return hub.Stats().Streams == 0 })
		if n := hub.Stats().Topics; n != 0 {
			t.Errorf("%d topics left", n)
		}
	})
	waitGoroutines(t, base)
}

// TestHTTP2: over HTTP/2 the handler reaches the stream's write deadline
// too (gin's writer unwraps to net/http's HTTP/2 writer), so it streams.
func TestHTTP2(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	r := gin.New()
	r.GET("/events", ginsse.Handler(hub, ginsse.Topics("t")))
	srv := httptest.NewUnstartedServer(r)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := ssetest.Connect(ctx, srv.Client(), srv.URL+"/events", "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Response.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", st.Response.Proto)
	}
	id := testkit.Publish(t, hub, "t", "x")
	if ev := next(t, st); ev.LastEventID != id {
		t.Errorf("got %+v", ev)
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
	r := gin.New()
	r.GET("/before", ginsse.Handler(hub, ginsse.WithHandlerOptions(base), ginsse.WithAuth(nil), ginsse.WithCORS(nil), ginsse.Topics("t")))
	r.GET("/after", ginsse.Handler(hub, ginsse.WithAuth(nil), ginsse.WithCORS(nil), ginsse.Topics("t"), ginsse.WithHandlerOptions(base)))
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
