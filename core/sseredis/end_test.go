package sseredis_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// TestEndStreamsAcrossNodes: ending alice's streams on one node ends them
// on every node that shares the store, with the last event; bob's stay.
func TestEndStreamsAcrossNodes(t *testing.T) {
	env := newEnv(t)
	auth := &sse.Auth{Authenticate: func(_ context.Context, token string) (sse.Principal, error) {
		user, ok := strings.CutPrefix(token, "tok-")
		if !ok {
			return sse.Principal{}, errors.New("bad token")
		}
		return sse.Principal{ID: user}, nil
	}}
	cfg := nodeConfig{direct: true, http: sse.HandlerOptions{Auth: auth}}
	nodes := []*node{env.node("A", cfg), env.node("B", cfg), env.node("C", cfg)}
	open := func(n *node, user string) *ssetest.Stream {
		t.Helper()
		st := ssetest.Open(t, n.url+"?topic=t", "", http.Header{"Authorization": {"Bearer tok-" + user}})
		return st
	}
	var alice, bob []*ssetest.Stream
	for _, n := range nodes {
		alice = append(alice, open(n, "alice"))
		bob = append(bob, open(n, "bob"))
	}
	if err := nodes[1].hub.EndStreams(context.Background(), sse.StreamMatch{Principal: "alice"}, &sse.Event{Type: "logout"}); err != nil {
		t.Fatal(err)
	}
	for i, st := range alice {
		ev, err := st.Next()
		if err != nil || ev.Type != "logout" {
			t.Fatalf("node %d: alice got %+v, %v; want the logout event", i, ev, err)
		}
		if _, err := st.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("node %d: alice's stream did not end: %v", i, err)
		}
	}
	id := publish(t, nodes[2].hub, "t", "for bob")
	for i, st := range bob {
		if ev := next(t, st); ev.LastEventID != id {
			t.Errorf("node %d: bob got %+v", i, ev)
		}
	}
}
