// Package e2e holds tests that drive ssekit through real clients over real
// connections: headless Chromium (chromedp), Node's eventsource package,
// the Go client of github.com/tmaxmax/go-sse, and nginx as a reverse proxy,
// over HTTP/1.1, HTTP/2 with TLS and h2c.
//
// It is a module of its own so that those clients stay test dependencies
// here and the core module keeps depending on the standard library only.
// The tools come from scripts/need-*.sh; a test whose tool is missing skips
// with the reason, except under CI=true, where it fails.
package e2e
