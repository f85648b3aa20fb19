package sseadapter

import (
	"net/http"

	"github.com/ssekit/ssekit/core/sse"
)

// Authenticate is sse.AuthMiddleware(hub, a) for a router whose
// middleware is not an http.Handler wrapper: the returned function runs
// the middleware on r and returns the request to go on with, which
// carries the principal and a in its context, or nil when it has answered
// w itself (401, or the refusal a.Authenticate returned) and the chain
// must stop. A CORS preflight goes on unauthenticated, for the stream
// handler to answer. An adapter's Auth middleware is this in the router's
// type:
//
//	authenticate := sseadapter.Authenticate(hub, a)
//	return func(c *gin.Context) {
//		r := authenticate(c.Writer, c.Request)
//		if r == nil {
//			c.Abort()
//			return
//		}
//		c.Request = r
//	}
func Authenticate(hub *sse.Hub, a *sse.Auth) func(w http.ResponseWriter, r *http.Request) *http.Request {
	mw := sse.AuthMiddleware(hub, a)
	return func(w http.ResponseWriter, r *http.Request) *http.Request {
		var passed *http.Request
		mw(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { passed = r })).ServeHTTP(w, r)
		return passed
	}
}
