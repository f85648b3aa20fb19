// Package e2e holds tests that drive ssekit through real third-party
// clients, such as github.com/tmaxmax/go-sse, over real HTTP connections.
//
// It is a module of its own so that those clients stay test dependencies
// here and the core module keeps depending on the standard library only.
package e2e
