package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
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

	pos := position(t, ctx, a)
	j := startJob(t, ctx, nil, a)
	s := connect(t, ctx, nil, bURL+"/events?topic="+j.Topic+"&lastEventId="+url.QueryEscape(pos), "")
	values, _ := progressValues(t, s, j.ID)
	checkSteps(t, values, 0)
}

// cleanRedis deletes the test's keys.
func cleanRedis(t *testing.T, addr, prefix string) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if err := rdb.Del(context.Background(), prefix+":stream", prefix+":seq", prefix+":epoch", prefix+":floor").Err(); err != nil {
		t.Log(err)
	}
}
