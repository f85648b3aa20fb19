package sse

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ProxyClientIP returns an Options.ClientIP function for a server behind
// reverse proxies or load balancers, which send the client's address in
// X-Forwarded-For (or Forwarded). trusted lists the networks of those
// proxies; the server's peer (Request.RemoteAddr) must be in one of them,
// or the request did not come through a proxy and its peer is the client,
// whatever its headers say.
//
// A client can write anything into X-Forwarded-For before the request
// reaches the first proxy, which appends what it saw: only the entries
// that trusted proxies appended can be believed. The function walks the
// entries from the right, past the addresses in trusted, and returns the
// first one that is not: the client as the outermost trusted proxy saw it.
// (Taking the leftmost entry, as many do, lets any client choose its own
// address, and pass every per-IP limit.) When every entry is trusted, the
// leftmost is the client. An entry that is not an IP address ends the walk
// at the proxy that wrote it.
//
// X-Forwarded-For is used when present, otherwise the for= parameters of
// Forwarded (RFC 7239). Proxies that set neither leave the peer's address.
func ProxyClientIP(trusted ...netip.Prefix) func(r *http.Request) string {
	trusted = append([]netip.Prefix(nil), trusted...)
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		peer := remoteIP(r)
		addr, err := netip.ParseAddr(peer)
		if err != nil || !isTrusted(addr) {
			return peer
		}
		hops := forwardedFor(r)
		client := addr
		for i := len(hops) - 1; i >= 0; i-- {
			hop, ok := parseHop(hops[i])
			if !ok {
				break
			}
			client = hop
			if !isTrusted(hop) {
				break
			}
		}
		return client.Unmap().String()
	}
}

// forwardedFor returns the addresses that proxies forwarded, leftmost
// (nearest the client) first: X-Forwarded-For's, or Forwarded's for=.
func forwardedFor(r *http.Request) []string {
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		for _, h := range strings.Split(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	if len(hops) > 0 {
		return hops
	}
	for _, v := range r.Header.Values("Forwarded") {
		for _, elem := range strings.Split(v, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(pair), "=")
				if strings.EqualFold(k, "for") {
					hops = append(hops, strings.Trim(val, `"`))
				}
			}
		}
	}
	return hops
}

// parseHop parses a forwarded address: an IP, with or without a port, an
// IPv6 address in brackets.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	return a, err == nil
}

// ipKey is the key under which MaxStreamsPerIP counts a client address:
// IPv4 addresses one by one, IPv6 addresses by /64, the block a single
// host or home network usually holds (one host can take as many addresses
// in it as it likes).
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
