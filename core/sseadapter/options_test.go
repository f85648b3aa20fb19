package sseadapter_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseadapter"
)

// routerCtx stands for a router's request context.
type routerCtx struct {
	req    *http.Request
	params map[string]string
}

func param(c *routerCtx, name string) string { return c.params[name] }

func TestOptions(t *testing.T) {
	type opt = sseadapter.Option[*routerCtx]
	authA, authB := &sse.Auth{QueryParam: "a"}, &sse.Auth{QueryParam: "b"}
	cors := &sse.CORS{AllowedOrigins: []string{"https://app.example"}}
	base := sse.HandlerOptions{Auth: authA, CORS: cors, Topics: sse.Topics("base")}
	rc := &routerCtx{params: map[string]string{"room": "r1", "path": "/a/b", "empty": ""}}
	req := httptest.NewRequest("GET", "/events?topic=q1&topic=q2", nil)
	tests := []struct {
		name   string
		opts   []opt
		static bool
		topics []string
		status int // of a refusal by Topics, or 0
		auth   *sse.Auth
		cors   *sse.CORS
		detach bool
	}{
		{"default: the topic query parameter", nil, true, []string{"q1", "q2"}, 0, nil, nil, false},
		{"base options", []opt{sseadapter.WithHandlerOptions[*routerCtx](base)}, true, []string{"base"}, 0, authA, cors, false},
		{"specific options win, whatever their order", []opt{
			sseadapter.WithAuth[*routerCtx](authB), sseadapter.Topics[*routerCtx]("x"), sseadapter.WithHandlerOptions[*routerCtx](base),
		}, true, []string{"x"}, 0, authB, cors, false},
		{"nil clears the base's", []opt{
			sseadapter.WithHandlerOptions[*routerCtx](base), sseadapter.WithAuth[*routerCtx](nil), sseadapter.WithCORS[*routerCtx](nil),
		}, true, []string{"base"}, 0, nil, nil, false},
		{"the last topic option wins", []opt{
			sseadapter.TopicsFromParam[*routerCtx]("room", param), sseadapter.TopicsFromQuery[*routerCtx]("topic"),
		}, true, []string{"q1", "q2"}, 0, nil, nil, false},
		{"route parameter", []opt{sseadapter.TopicsFromParam[*routerCtx]("room", param)}, false, []string{"r1"}, 0, nil, nil, false},
		{"catch-all parameter", []opt{sseadapter.TopicsFromParam[*routerCtx]("path", param)}, false, []string{"a/b"}, 0, nil, nil, false},
		{"empty parameter", []opt{sseadapter.TopicsFromParam[*routerCtx]("empty", param)}, false, nil, 400, nil, nil, false},
		{"TopicsFunc sees the router's context", []opt{sseadapter.TopicsFunc(func(c *routerCtx) ([]string, error) {
			return []string{c.req.URL.Path}, nil
		})}, false, []string{"/events"}, 0, nil, nil, false},
		{"Detach", []opt{sseadapter.Detach[*routerCtx](), nil}, true, []string{"q1", "q2"}, 0, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sseadapter.NewConfig(tt.opts...)
			if _, static := cfg.Static(); static != tt.static {
				t.Errorf("Static() = %v, want %v", static, tt.static)
			}
			o := cfg.For(rc, func(r *http.Request) { rc.req = r })
			if o.Auth != tt.auth || o.CORS != tt.cors || o.Detach != tt.detach || cfg.Detached() != tt.detach {
				t.Errorf("Auth %p, CORS %p, Detach %v; want %p, %p, %v", o.Auth, o.CORS, o.Detach, tt.auth, tt.cors, tt.detach)
			}
			if o.Topics == nil {
				o.Topics = sse.TopicsFromQuery("topic") // the hub's default
			}
			topics, err := o.Topics(req)
			var re *sse.RefusalError
			switch {
			case tt.status != 0 && (!errors.As(err, &re) || re.Status != tt.status):
				t.Errorf("Topics: %v, want a refusal with %d", err, tt.status)
			case tt.status == 0 && (err != nil || !slices.Equal(topics, tt.topics)):
				t.Errorf("Topics = %q, %v; want %q", topics, err, tt.topics)
			}
		})
	}
}

// TestForBindsTheAuthenticatedRequest: a topics function of the router's
// context runs with the request that the hub authenticated bound to it.
func TestForBindsTheAuthenticatedRequest(t *testing.T) {
	rc := &routerCtx{}
	cfg := sseadapter.NewConfig(sseadapter.TopicsFunc(func(c *routerCtx) ([]string, error) {
		p, ok := sse.PrincipalFrom(c.req.Context())
		if !ok {
			return nil, errors.New("no principal")
		}
		return []string{"user/" + p.ID}, nil
	}))
	o := cfg.For(rc, func(r *http.Request) { rc.req = r })
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(sse.WithPrincipal(context.Background(), sse.Principal{ID: "ann"}))
	if topics, err := o.Topics(r); err != nil || !slices.Equal(topics, []string{"user/ann"}) {
		t.Errorf("Topics = %q, %v", topics, err)
	}
}

// TestForRequestContext: where the router's context is the request itself
// (chi), a topics function gets the request the hub hands over, with the
// principal that the handler's Auth stored.
func TestForRequestContext(t *testing.T) {
	orig := httptest.NewRequest("GET", "/", nil)
	cfg := sseadapter.NewConfig(sseadapter.TopicsFunc(func(r *http.Request) ([]string, error) {
		p, ok := sse.PrincipalFrom(r.Context())
		if !ok {
			return nil, errors.New("no principal")
		}
		return []string{"user/" + p.ID}, nil
	}))
	o := cfg.For(orig, nil)
	r := orig.WithContext(sse.WithPrincipal(context.Background(), sse.Principal{ID: "ann"}))
	if topics, err := o.Topics(r); err != nil || !slices.Equal(topics, []string{"user/ann"}) {
		t.Errorf("Topics = %q, %v", topics, err)
	}
}

// TestPathParam: a parameter of a route matched on the escaped path is
// unescaped; one matched on the decoded path is left alone.
func TestPathParam(t *testing.T) {
	for _, c := range []struct {
		path, value, want string
	}{
		{"/rooms/lobby/events", "lobby", "lobby"},
		{"/rooms/a%2Fb/events", "a%2Fb", "a/b"}, // RawPath set: the router matched the escaped path
		{"/rooms/a%2Fb%20c/events", "a%2Fb%20c", "a/b c"},
		{"/rooms/a%20b/events", "a b", "a b"},    // no RawPath: the value is decoded already
		{"/rooms/100%25/events", "100%", "100%"}, // and must not be decoded twice
		{"/rooms/a%2Fb/events", "a%2", ""},       // malformed
	} {
		r := httptest.NewRequest("GET", c.path, nil)
		if got := sseadapter.PathParam(r, c.value); got != c.want {
			t.Errorf("%s: PathParam(%q) = %q, want %q", c.path, c.value, got, c.want)
		}
	}
}
