package sseredis_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseredis"
)

// commandCounter is a go-redis hook that counts the commands a client
// sends, pipelined ones included.
type commandCounter struct {
	mu    sync.Mutex
	names []string
}

func countCommands(c *redis.Client) *commandCounter {
	cc := &commandCounter{}
	c.AddHook(cc)
	return cc
}

func (cc *commandCounter) add(cmds ...redis.Cmder) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for _, cmd := range cmds {
		cc.names = append(cc.names, cmd.Name())
	}
}

// take returns the commands counted since the last take, and forgets them.
func (cc *commandCounter) take() []string {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	n := cc.names
	cc.names = nil
	return n
}

func (cc *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (cc *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		cc.add(cmd)
		return next(ctx, cmd)
	}
}

func (cc *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		cc.add(cmds...)
		return next(ctx, cmds)
	}
}

// positionsAbove calls Position from n goroutines at once, each with an ID
// of epoch whose Seq is above newest, and returns how long they took. Each
// must be unknown.
func positionsAbove(t *testing.T, s *sseredis.Store, epoch string, newest uint64, n int) time.Duration {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			id := epoch + "-" + strconv.FormatUint(newest+1+uint64(i), 10)
			if _, err := s.Position(context.Background(), id); !errors.Is(err, sse.ErrUnknownID) {
				t.Errorf("Position(%q) above the newest: %v, want ErrUnknownID", id, err)
			}
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	return time.Since(began)
}

// TestPositionCoalescesReads: IDs above the newest Seq this process has
// seen make Position ask Redis, but concurrent calls share one read, reads
// are sent at most every StateReadEvery however many such IDs arrive, and
// an ID whose Seq no store can have issued costs no read at all.
func TestPositionCoalescesReads(t *testing.T) {
	env := newEnv(t)
	c := env.client("")
	s := env.store(c, sseredis.Options{})
	e := appendN(t, s, func(int) string { return "t" }, 3)[2]
	epoch, _, _ := strings.Cut(e.Event.ID, "-")
	cc := countCommands(c)
	every := sseredis.StateReadEvery

	const n = 200
	took := positionsAbove(t, s, epoch, e.Seq, n)
	// A read may be under way when a call comes; the calls that came after
	// it began share the next one.
	limit := 2 + int(took/every)
	if got := cc.take(); len(got) > limit {
		t.Errorf("%d concurrent calls with IDs above the newest, in %v, sent %d commands, want at most %d: %v",
			n, took, len(got), limit, summary(got))
	} else {
		t.Logf("%d concurrent calls in %v sent %d commands", n, took, len(got))
	}

	// A flood, from a few goroutines, of IDs above the newest and of IDs of
	// other epochs: at most one read per StateReadEvery.
	flood := 150 * time.Millisecond
	began := time.Now()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Since(began) < flood; i++ {
				id := epoch + "-" + strconv.FormatUint(e.Seq+1+uint64(i), 10)
				if g%2 == 1 {
					id = "0ther" + strconv.Itoa(i) + "-" + strconv.FormatUint(e.Seq, 10)
				}
				if _, err := s.Position(context.Background(), id); !errors.Is(err, sse.ErrUnknownID) {
					t.Errorf("Position(%q): %v, want ErrUnknownID", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	took = time.Since(began)
	limit = 2 + int(took/every)
	if got := cc.take(); len(got) > limit {
		t.Errorf("a flood of unknown IDs for %v sent %d commands, want at most %d: %v", took, len(got), limit, summary(got))
	} else {
		t.Logf("a flood of unknown IDs for %v sent %d commands", took, len(got))
	}

	// Seqs that no store can have issued are unknown without a read.
	for _, seq := range []uint64{1<<53 + 1, 1 << 60, 1<<64 - 1} {
		id := epoch + "-" + strconv.FormatUint(seq, 10)
		if _, err := s.Position(context.Background(), id); !errors.Is(err, sse.ErrUnknownID) {
			t.Errorf("Position(%q): %v, want ErrUnknownID", id, err)
		}
	}
	if got := cc.take(); len(got) != 0 {
		t.Errorf("implausible Seqs sent %d commands, want none: %v", len(got), summary(got))
	}

	// An ID that another process issued since is still known at once.
	other := env.store(env.client(""), sseredis.Options{})
	newer := appendN(t, other, func(int) string { return "t" }, 1)[0]
	if pos, err := s.Position(context.Background(), newer.Event.ID); err != nil || pos != newer.Seq {
		t.Errorf("Position(%q) of an ID issued elsewhere = %d, %v", newer.Event.ID, pos, err)
	}
}

// summary counts commands by name.
func summary(names []string) map[string]int {
	m := make(map[string]int)
	for _, n := range names {
		m[n]++
	}
	return m
}

// TestPositionContext: when Position must ask Redis, it gives up when the
// caller's context is done, and within a bound when the context has none.
func TestPositionContext(t *testing.T) {
	env := newEnv(t)
	p := startProxy(t, redisAddr())
	c := env.client(p.addr)
	s := env.store(c, sseredis.Options{})
	e := appendN(t, s, func(int) string { return "t" }, 1)[0]
	epoch, _, _ := strings.Cut(e.Event.ID, "-")
	above := epoch + "-" + strconv.FormatUint(e.Seq+1, 10)

	// A context already done: no command is sent.
	cc := countCommands(c)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Position(ctx, above); !errors.Is(err, context.Canceled) {
		t.Errorf("Position with a canceled context: %v, want context.Canceled", err)
	}
	if got := cc.take(); len(got) != 0 {
		t.Errorf("Position with a canceled context sent %v", got)
	}

	// Redis does not answer: Position returns at the context's deadline,
	// with the context's error (the hub answers it with the reset event
	// "unavailable", not "unknown-id").
	p.Freeze()
	defer p.Thaw()
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Position(ctx, above)
	if d := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || d > 600*time.Millisecond {
		t.Errorf("Position with a 100ms deadline, Redis frozen: %v after %v; want context.DeadlineExceeded at about 100ms", err, d)
	}

	// Without a deadline, it gives up after a bound.
	start = time.Now()
	_, err = s.Position(context.Background(), above)
	if d := time.Since(start); err == nil || errors.Is(err, sse.ErrUnknownID) || d > sseredis.PositionTimeout+time.Second {
		t.Errorf("Position without a deadline, Redis frozen: %v after %v; want an error other than ErrUnknownID within about %v", err, d, sseredis.PositionTimeout)
	}
}
