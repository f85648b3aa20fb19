package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestTwoDemosShareRedis runs two demos on one Redis, as two replicas
// behind a load balancer: a job started on A is followed from B, which
// resumes from a position A gave, and misses none of its progress.
func TestTwoDemosShareRedis(t *testing.T) {
	const addr = "127.0.0.1:6379"
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s is needed under CI=true: %v", addr, err)
		}
		t.Skipf("Redis at %s is not reachable (%v); scripts/need-redis.sh starts it", addr, err)
	} else {
		c.Close()
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "ssekit-demo-test-" + hex.EncodeToString(b[:])
	ctx := testContext(t)
	newCfg := func() config {
		store, err := redisStore(ctx, addr, prefix)
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		cfg.store = store
		return cfg
	}
	a, bURL := startDemo(t, newCfg()), startDemo(t, newCfg())
	t.Cleanup(func() { cleanRedis(t, addr, prefix) })

	// A shared store numbers each topic on its own, so a position of one
	// stream says nothing of another's: B follows the job's stream (its
	// topic, "broadcast" and "metrics") from their start, position 0 of
	// each in the store's epoch, which A's IDs carry.
	epoch, _, _ := strings.Cut(position(t, ctx, a), "-")
	j := startJob(t, ctx, nil, a)
	s := connect(t, ctx, nil, bURL+"/events?topic="+j.Topic+"&lastEventId="+url.QueryEscape(epoch+"-0.0.0"), "")
	values, _ := progressValues(t, s, j.ID)
	checkSteps(t, values, 0)
}

// cleanRedis deletes the test's keys.
func cleanRedis(t *testing.T, addr, prefix string) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	keys, err := rdb.Keys(context.Background(), prefix+":*").Result()
	if err == nil && len(keys) > 0 {
		err = rdb.Del(context.Background(), keys...).Err()
	}
	if err != nil {
		t.Log(err)
	}
}
