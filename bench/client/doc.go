// Package client benchmarks Go SSE clients side by side: ssekit's
// sseclient, go-sse, r3labs/sse and LaunchDarkly's eventsource. The
// benchmarks are in its tests; see the README.
package client
