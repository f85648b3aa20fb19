package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssekit/ssekit/core/sseredis"
)

// redisStore returns a Store on the Redis at addr, shared by every demo
// that uses the same one: start two demos with -redis on different ports,
// and a page on one sees what is published on the other, and resumes on
// either.
func redisStore(ctx context.Context, addr, prefix string) (*sseredis.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	store, err := sseredis.New(ctx, sseredis.Options{
		Client: redis.NewClient(&redis.Options{Addr: addr}),
		Prefix: prefix,
	})
	if err != nil {
		return nil, fmt.Errorf("redis at %s: %w", addr, err)
	}
	return store, nil
}
