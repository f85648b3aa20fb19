// Package sseadapter is for authors of adapters: the packages that make
// ssekit's streams feel native in a web framework (ginsse, echosse,
// fibersse, chisse). Applications do not need it; they use package sse and
// their framework's adapter.
//
// It has three parts.
//
// # Options
//
// Every router adapter offers the same Handler options (Topics,
// TopicsFromQuery, TopicsFromParam, TopicsFunc, WithAuth, WithCORS, Detach,
// WithHandlerOptions), with the same rules: the specific options override
// the fields of WithHandlerOptions whatever their order, the last topic
// option wins, and WithAuth(nil) and WithCORS(nil) mean none. Option and
// Config implement them once, generic in the router's request context
// type; an adapter declares each option as a one-line call:
//
//	type Option = sseadapter.Option[*gin.Context]
//
//	func WithAuth(a *sse.Auth) Option { return sseadapter.WithAuth[*gin.Context](a) }
//
// # Auth middleware
//
// Authenticate is sse.AuthMiddleware for routers whose middleware is not
// an http.Handler wrapper: it returns the request to go on with (the
// principal and the Auth in its context), or nil once it has answered the
// refusal, and lets CORS preflights through. Each adapter's Auth is a few
// lines around it in the router's middleware type.
//
// # Streams on other servers
//
// Hub.Handler serves net/http. A server that is not net/http (fasthttp)
// converts its request to an *http.Request and calls Accept, which does
// everything the handler does before streaming (CORS, authentication,
// topics, authorization, the connection caps) and answers refusals to an
// http.ResponseWriter of the adapter's. It then serves the Session: with
// Serve, over a StreamWriter of its own, or with ServeConn, on a connection
// its server hands over.
package sseadapter
