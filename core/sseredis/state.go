package sseredis

import (
	"context"
	"time"
)

// stateReadEvery is the least time between the starts of two reads made by
// fresh. (A variable for tests.)
var stateReadEvery = 5 * time.Millisecond

// positionTimeout bounds how long fresh waits when its context has no
// deadline.
const positionTimeout = 2 * time.Second

// stateRead is one read of the present epoch and newest Seq, shared by the
// callers of fresh that wait for it.
type stateRead struct {
	done   chan struct{}
	cancel context.CancelFunc

	// Guarded by Store.stateMu.
	at      time.Time // when it is to be sent, or was
	sent    bool
	waiters int
	dropped bool // every waiter left before it was done

	// Set before done is closed.
	epoch  string
	newest uint64
	err    error
}

// fresh returns the present epoch and newest Seq from a read sent after
// fresh was called, so that it reflects every ID issued before. Concurrent
// callers share one read, and a read starts at most every stateReadEvery
// and only after the previous one has ended: a caller that comes while a
// read is under way waits for the next. However many IDs that this process
// has not seen come (a crowd of clients, or an attacker sending IDs with
// huge Seqs), they cost Redis one small script every few milliseconds at
// most.
//
// fresh waits until ctx is done, or for at most positionTimeout when ctx
// has no deadline. The read ends early when every caller waiting for it has
// left.
func (s *Store) fresh(ctx context.Context) (epoch string, newest uint64, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, positionTimeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	now := time.Now()
	s.stateMu.Lock()
	r := s.state
	if r == nil || r.sent || r.dropped {
		// No read waits to be sent: begin one.
		prev := r
		r = &stateRead{at: now, done: make(chan struct{})}
		if prev != nil {
			if next := prev.at.Add(stateReadEvery); next.After(now) {
				r.at = next
			}
		}
		// The read serves every waiter, not only this one: it keeps ctx's
		// values, and ends when the last waiter leaves.
		var rctx context.Context
		rctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
		s.state = r
		go s.runStateRead(rctx, r, prev)
	}
	r.waiters++
	s.stateMu.Unlock()

	select {
	case <-r.done:
		return r.epoch, r.newest, r.err
	case <-ctx.Done():
	}
	s.stateMu.Lock()
	r.waiters--
	if r.waiters == 0 {
		select {
		case <-r.done:
		default:
			r.dropped = true
			r.cancel()
		}
	}
	s.stateMu.Unlock()
	return "", 0, ctx.Err()
}

// runStateRead sends r once prev has ended and r's time has come. Until it
// is sent, callers of fresh join it.
func (s *Store) runStateRead(ctx context.Context, r, prev *stateRead) {
	defer r.cancel()
	defer close(r.done)
	if prev != nil {
		select {
		case <-prev.done:
		case <-ctx.Done():
			r.err = ctx.Err()
			return
		}
	}
	s.stateMu.Lock()
	at := r.at
	s.stateMu.Unlock()
	if d := time.Until(at); d > 0 && !sleep(ctx, d) {
		r.err = ctx.Err()
		return
	}
	s.stateMu.Lock()
	r.sent, r.at = true, time.Now()
	s.stateMu.Unlock()
	if err := ctx.Err(); err != nil {
		r.err = err
		return
	}
	r.epoch, r.newest, r.err = s.readState(ctx)
}
