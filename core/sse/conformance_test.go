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

// TestConformanceDetached runs the kit against the handler with Detach
// set: the same behaviour over connections taken over from net/http,
// with the platform's poller and with the portable one.
func TestConformanceDetached(t *testing.T) {
	for _, portable := range []bool{false, true} {
		name := "default-poller"
		if portable {
			name = "portable-poller"
		}
		t.Run(name, func(t *testing.T) {
			if portable {
				t.Cleanup(sse.UsePortablePoller())
			}
			ssetest.RunWith(t, func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
				opts.Detach = true
				srv := httptest.NewServer(hub.Handler(opts))
				t.Cleanup(srv.Close)
				return srv.URL
			}, ssetest.Config{Detached: true})
		})
	}
}
