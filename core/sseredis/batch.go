package sseredis

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Appends to one Redis are sent in pipelines: while one pipeline is under
// way, the appends that come wait for the next, which takes them all. One
// write and one read then carry many scripts, which costs Redis and the
// process much less than a round trip each, and costs a lone append
// nothing.

// maxBatch bounds the appends of one pipeline.
const maxBatch = 256

// batchTimeout bounds a pipeline when Redis does not answer: the callers
// waiting for it have deadlines of their own, but the pipeline serves
// them all.
const batchTimeout = 10 * time.Second

// batcher pipelines one shard's appends.
type batcher struct {
	client redis.UniversalClient

	mu      sync.Mutex
	pending []*appendCall
	busy    bool // a goroutine is sending pipelines
}

// appendCall is one append waiting for its pipeline.
type appendCall struct {
	keys []string
	args []any
	res  []string
	err  error
	done chan struct{}
}

// do sends c in a pipeline and waits for its reply, or until ctx is done:
// then the append may still happen.
func (b *batcher) do(ctx context.Context, c *appendCall) error {
	c.done = make(chan struct{})
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if !b.busy {
		b.busy = true
		go b.run()
	}
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run sends pipelines until no append waits.
func (b *batcher) run() {
	for {
		b.mu.Lock()
		batch := b.pending
		if len(batch) > maxBatch {
			batch = batch[:maxBatch:maxBatch]
			b.pending = b.pending[maxBatch:]
		} else {
			b.pending = nil
		}
		if len(batch) == 0 {
			b.busy = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.send(batch)
	}
}

// send runs batch's scripts in one pipeline, and tells their callers.
func (b *batcher) send(batch []*appendCall) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	if len(batch) == 1 {
		c := batch[0]
		c.res, c.err = appendScript.Run(ctx, b.client, c.keys, c.args...).StringSlice()
		close(c.done)
		return
	}
	pipe := b.client.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, c := range batch {
		cmds[i] = appendScript.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx)
	for i, c := range batch {
		c.res, c.err = cmds[i].StringSlice()
		if c.err != nil && redis.HasErrorPrefix(c.err, "NOSCRIPT") {
			// Redis lost its scripts (a restart): Run loads it again.
			c.res, c.err = appendScript.Run(ctx, b.client, c.keys, c.args...).StringSlice()
		}
		close(c.done)
	}
}
