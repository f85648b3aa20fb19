package sse_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

func TestProxyClientIP(t *testing.T) {
	ip := sse.ProxyClientIP(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"))
	tests := []struct {
		name   string
		remote string
		hdr    http.Header
		want   string
	}{
		{"no proxy, no header", "203.0.113.7:1234", nil, "203.0.113.7"},
		{"no proxy, forged header", "203.0.113.7:1234", http.Header{"X-Forwarded-For": {"1.1.1.1"}}, "203.0.113.7"},
		{"one proxy", "10.0.0.1:80", http.Header{"X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"client forges a leftmost entry", "10.0.0.1:80", http.Header{"X-Forwarded-For": {"6.6.6.6, 203.0.113.7"}}, "203.0.113.7"},
		{"two proxies", "10.0.0.1:80", http.Header{"X-Forwarded-For": {"203.0.113.7, 10.1.2.3"}}, "203.0.113.7"},
		{"two headers", "10.0.0.1:80", http.Header{"X-Forwarded-For": {"6.6.6.6", "203.0.113.7, 10.1.2.3"}}, "203.0.113.7"},
		{"every hop trusted", "10.0.0.1:80", http.Header{"X-Forwarded-For": {"10.9.9.9, 10.1.2.3"}}, "10.9.9.9"},
		{"proxy without header", "10.0.0.1:80", nil, "10.0.0.1"},
		{"with a port", "10.0.0.1:80", http.Header{"X-Forwarded-For": {"203.0.113.7:4711"}}, "203.0.113.7"},
		{"IPv6", "[fd00::1]:80", http.Header{"X-Forwarded-For": {"2001:db8::7"}}, "2001:db8::7"},
		{"IPv6 in brackets", "10.0.0.1:80", http.Header{"X-Forwarded-For": {"[2001:db8::7]:4711"}}, "2001:db8::7"},
		{"garbage written by a client", "10.0.0.1:80", http.Header{"X-Forwarded-For": {"garbage, 203.0.113.7"}}, "203.0.113.7"},
		{"garbage at the proxy's end", "10.0.0.1:80", http.Header{"X-Forwarded-For": {"203.0.113.7, garbage"}}, "10.0.0.1"},
		{"Forwarded", "10.0.0.1:80", http.Header{"Forwarded": {`for=6.6.6.6, for="[2001:db8::7]:4711";proto=https`}}, "2001:db8::7"},
		{"X-Forwarded-For wins over Forwarded", "10.0.0.1:80", http.Header{"Forwarded": {"for=1.1.1.1"}, "X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"IPv4-mapped peer", "[::ffff:10.0.0.1]:80", http.Header{"X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/events", nil)
			r.RemoteAddr = tt.remote
			for k, v := range tt.hdr {
				r.Header[k] = v
			}
			if got := ip(r); got != tt.want {
				t.Errorf("ProxyClientIP = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestPerIPCapBehindProxy: clients that forge X-Forwarded-For entries do
// not get past MaxStreamsPerIP.
func TestPerIPCapBehindProxy(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{MaxStreamsPerIP: 2, ClientIP: sse.ProxyClientIP(netip.MustParsePrefix("127.0.0.0/8"))})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	for i := range 20 {
		// What a proxy on loopback sends for one client that forges the
		// leftmost entry on every request. Over the cap, the answer is a
		// TryLater: a stream with only a retry hint.
		if _, err := ssetest.TryOpen(t, srv.URL, "", http.Header{"X-Forwarded-For": {"198.51.100." + strconv.Itoa(i) + ", 203.0.113.7"}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.Stats().Streams; n != 2 {
		t.Errorf("%d streams open for one client behind the proxy, want 2 (MaxStreamsPerIP)", n)
	}
}

// TestPerIPCapCountsIPv6By64: the addresses of one IPv6 /64 count as one.
func TestPerIPCapCountsIPv6By64(t *testing.T) {
	n := 0
	h := ssetest.NewHub(t, sse.Options{MaxStreamsPerIP: 2, ClientIP: func(*http.Request) string {
		n++
		return "2001:db8:1:2::" + strconv.FormatInt(int64(n), 16)
	}})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	for range 5 {
		if _, err := ssetest.TryOpen(t, srv.URL, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.Stats().Streams; got != 2 {
		t.Errorf("%d streams open from one /64, want 2", got)
	}
}
