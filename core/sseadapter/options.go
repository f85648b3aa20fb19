package sseadapter

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ssekit/ssekit/core/sse"
)

// Option configures a router adapter's Handler; C is the router's request
// context type (*gin.Context, echo.Context, fiber.Ctx). An adapter
// declares its Option as an alias of Option[C] and each option as a call
// of the function of the same name here.
type Option[C any] func(*Config[C])

// Config is what a route's options build. Make one with NewConfig.
type Config[C any] struct {
	base    sse.HandlerOptions
	topics  func(*http.Request) ([]string, error)
	topicsC func(C) ([]string, error)
	auth    *sse.Auth
	authSet bool
	cors    *sse.CORS
	corsSet bool
	detach  bool
}

// NewConfig applies opts, in order.
func NewConfig[C any](opts ...Option[C]) *Config[C] {
	c := &Config[C]{}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

// Topics subscribes every request of the route to the given topics.
func Topics[C any](names ...string) Option[C] {
	f := sse.Topics(append([]string(nil), names...)...)
	return func(c *Config[C]) { c.topics, c.topicsC = f, nil }
}

// TopicsFromQuery takes the topics from every value of the query parameter
// name, as in "/events?topic=a&topic=b"; a request without one is refused
// with 400. Without a topic option, a route uses TopicsFromQuery("topic").
func TopicsFromQuery[C any](name string) Option[C] {
	f := sse.TopicsFromQuery(name)
	return func(c *Config[C]) { c.topics, c.topicsC = f, nil }
}

// TopicsFromPathValue takes the topic from the request's path value name
// (Request.PathValue), for routers that set path values (net/http's
// ServeMux, chi). An empty value is refused with 400.
func TopicsFromPathValue[C any](name string) Option[C] {
	f := sse.TopicsFromPathValue(name)
	return func(c *Config[C]) { c.topics, c.topicsC = f, nil }
}

// TopicsFromParam takes the topic from the route parameter name, which
// param reads from the router's context (c.Param, c.Params). A leading
// slash is dropped, so that a catch-all parameter ("/events/*topic")
// serving "/events/a/b" gives the topic "a/b". An empty value is refused
// with 400.
func TopicsFromParam[C any](name string, param func(rc C, name string) string) Option[C] {
	return TopicsFunc(func(rc C) ([]string, error) {
		v := strings.TrimPrefix(param(rc, name), "/")
		if v == "" {
			return nil, sse.Refuse(http.StatusBadRequest, "missing route parameter "+strconv.Quote(name))
		}
		return []string{v}, nil
	})
}

// PathParam returns v, the value of a route parameter that the router
// matched in r's path, path-unescaped where the router matched the escaped
// path: routers that route on r.URL.RawPath when it is set (chi, Echo)
// hand out "a%2Fb" for "/rooms/a%2Fb/events", where the topic is "a/b". A
// malformed escape gives "" (refused with 400 by TopicsFromParam). Use it
// in the param function of TopicsFromParam for such routers.
func PathParam(r *http.Request, v string) string {
	if r.URL.RawPath == "" {
		return v
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return ""
	}
	return u
}

// TopicsFunc picks the topics of each request with f, which may use
// anything the router's context holds. f may refuse the request by
// returning an error made by sse.Refuse or sse.TryLater; any other error
// is answered with 500 and logged by the hub. f runs after authentication,
// before the stream starts.
func TopicsFunc[C any](f func(rc C) ([]string, error)) Option[C] {
	return func(c *Config[C]) { c.topics, c.topicsC = nil, f }
}

// WithAuth authenticates the route's requests and authorizes their topics
// (sse.HandlerOptions.Auth). Behind the adapter's auth middleware, a
// request is not authenticated again; its topics are authorized with a
// instead of the middleware's Auth. WithAuth(nil) means no Auth of the
// route's own, even if WithHandlerOptions set one.
func WithAuth[C any](a *sse.Auth) Option[C] {
	return func(c *Config[C]) { c.auth, c.authSet = a, true }
}

// WithCORS serves pages of other origins (sse.HandlerOptions.CORS).
// WithCORS(nil) means no CORS, even if WithHandlerOptions set one.
func WithCORS[C any](cors *sse.CORS) Option[C] {
	return func(c *Config[C]) { c.cors, c.corsSet = cors, true }
}

// Detach serves each stream on a detached connection
// (sse.HandlerOptions.Detach).
func Detach[C any]() Option[C] {
	return func(c *Config[C]) { c.detach = true }
}

// WithHandlerOptions sets the base options. The options above override
// their fields, whatever the order of the options; a Topics function here
// is overridden by a topic option.
func WithHandlerOptions[C any](o sse.HandlerOptions) Option[C] {
	return func(c *Config[C]) { c.base = o }
}

// Static returns the route's options and true when they do not depend on
// the router's context (no TopicsFunc or TopicsFromParam): the adapter may
// then serve every request with one hub.Handler.
func (c *Config[C]) Static() (sse.HandlerOptions, bool) {
	return c.merged(), c.topicsC == nil
}

// Detached reports whether the route detaches its streams.
func (c *Config[C]) Detached() bool { return c.merged().Detach }

// For returns the options for the request whose router context is rc.
// bind, if not nil, is called before a topics function of the router's
// context runs, with the request the hub hands over: it carries the
// principal that WithAuth authenticated, and bind gives it to rc (as
// c.Request = r does in gin), where the function and the adapter's
// Principal find it.
//
// Where the router's context is the request itself (C is *http.Request,
// as in chi and net/http's ServeMux), the function gets the request the
// hub hands over instead of rc, and bind may be nil.
func (c *Config[C]) For(rc C, bind func(*http.Request)) sse.HandlerOptions {
	o := c.merged()
	if f := c.topicsC; f != nil {
		o.Topics = func(r *http.Request) ([]string, error) {
			if bind != nil {
				bind(r)
			}
			if hr, ok := any(r).(C); ok {
				return f(hr)
			}
			return f(rc)
		}
	}
	return o
}

// merged returns the base options with the specific options applied.
func (c *Config[C]) merged() sse.HandlerOptions {
	o := c.base
	if c.topics != nil {
		o.Topics = c.topics
	}
	if c.authSet {
		o.Auth = c.auth
	}
	if c.corsSet {
		o.CORS = c.cors
	}
	if c.detach {
		o.Detach = true
	}
	return o
}
