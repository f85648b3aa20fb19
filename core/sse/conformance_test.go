package sse_test

import (
	"net/http/httptest"
	"testing"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// TestConformance runs the conformance kit against the plain net/http
// handler; every router adapter runs the same kit.
func TestConformance(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
		srv := httptest.NewServer(hub.Handler(opts))
		t.Cleanup(srv.Close)
		return srv.URL
	})
}
