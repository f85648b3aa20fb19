package sseredis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/ssekit/core/sse"
)

// pingEvery: a subscription silent this long is pinged, and one that stays
// silent as long again is dropped and made anew. (A variable for tests.)
var pingEvery = 5 * time.Second

const (
	// Reconnection and retry delays grow from minBackoff to maxBackoff;
	// each wait is a random time between half the delay and the delay.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second

	// maxPending bounds the notifications waiting for one Listen. Beyond
	// it they are dropped and Listen reads the stream instead.
	maxPending = 8192

	// catchUpPage is how many entries one catch-up read takes.
	catchUpPage = 512
)

// subscription is the store's one Redis subscription, shared by every
// running Listen. It runs while there is at least one.
type subscription struct {
	cancel    context.CancelFunc
	done      chan struct{}
	listeners map[*listener]struct{} // guarded by Store.mu
	up        bool                   // subscribed; guarded by Store.mu
	err       error                  // why not, when known; guarded by Store.mu
}

// listener is one Listen call's inbox.
type listener struct {
	wake chan struct{} // capacity 1

	mu      sync.Mutex
	items   []item
	spare   []item
	signals [][]byte // signals not yet handed over
	catchUp bool     // read the stream before the items
	subUp   bool     // the subscription is made
	lost    error    // the subscription was lost, and why; not yet reported
}

// item is a notification: an entry and its epoch.
type item struct {
	entry sse.Entry
	epoch string
}

func (l *listener) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Listen implements sse.Broadcaster. Every Listen of a store shares one
// Redis subscription. Notifications carry the entries, so delivery needs no
// read; Listen reads the stream only to fill a gap, after it (re)subscribes,
// or when it fell more than 8192 notifications behind. When Redis is
// unreachable it calls state with the error, retries with a growing,
// jittered delay (at most 2s), and once it is back it catches up from the
// stream and calls state(nil). Events that the history no longer holds by
// then cannot be delivered: Listen logs which, and calls state with an
// error matching sse.ErrEvicted before it delivers the events after them.
//
// Signals travel on the same channel, and reach only the listeners that
// are subscribed when they are sent.
func (s *Store) Listen(ctx context.Context, after uint64, out sse.Listener) error {
	l := &listener{wake: make(chan struct{}, 1)}
	s.join(l)
	defer s.leave(l)
	r := run{s: s, l: l, last: after, epoch: s.currentEpoch(), out: out}
	return r.loop(ctx)
}

// signalPrefix starts a signal's payload on the channel.
const signalPrefix = "sig1"

// Signal implements sse.Broadcaster: it publishes msg on the store's
// channel, to every process's Listen.
func (s *Store) Signal(ctx context.Context, msg []byte) error {
	if err := s.client.Publish(ctx, s.channel, signalPrefix+string(msg)).Err(); err != nil {
		return fmt.Errorf("sseredis: signal: %w", err)
	}
	return nil
}

// join adds l, starting the subscription for the first listener.
func (s *Store) join(l *listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sub == nil {
		ctx, cancel := context.WithCancel(context.Background())
		s.sub = &subscription{cancel: cancel, done: make(chan struct{}), listeners: make(map[*listener]struct{})}
		go s.subscribe(ctx, s.sub)
	}
	s.sub.listeners[l] = struct{}{}
	// Entries appended after the subscription was made arrive as
	// notifications; read what came before. If it is not made yet, it will
	// ask for that when it is.
	l.catchUp = s.sub.up
	l.subUp = s.sub.up
	l.lost = s.sub.err
	if l.catchUp || l.lost != nil {
		l.signal()
	}
}

// leave removes l, and stops the subscription after the last listener.
func (s *Store) leave(l *listener) {
	s.mu.Lock()
	sub := s.sub
	delete(sub.listeners, l)
	last := len(sub.listeners) == 0
	if last {
		s.sub = nil
	}
	s.mu.Unlock()
	if last {
		sub.cancel()
		<-sub.done
	}
}

// subscribe keeps a subscription to the channel until ctx is done.
func (s *Store) subscribe(ctx context.Context, sub *subscription) {
	defer close(sub.done)
	var b backoff
	for {
		err := s.session(ctx, sub, &b)
		if ctx.Err() != nil {
			return
		}
		s.setDown(sub, err)
		if !sleep(ctx, b.next()) {
			return
		}
	}
}

// session subscribes once and dispatches notifications until the
// connection fails or ctx is done.
func (s *Store) session(ctx context.Context, sub *subscription, b *backoff) error {
	ps := s.client.Subscribe(ctx, s.channel)
	defer ps.Close()
	// Receive does not return when ctx is done; closing the PubSub ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, pingEvery)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				pinged = true
				if err := ps.Ping(ctx); err != nil {
					return err
				}
				continue
			}
			return err
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == s.channel {
				b.reset()
				s.setUp(sub)
			}
		case *redis.Message:
			s.dispatch(sub, m.Payload)
		}
	}
}

// setUp tells every listener that the subscription is made: what was
// appended before must be read from the stream.
func (s *Store) setUp(sub *subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub.up, sub.err = true, nil
	for l := range sub.listeners {
		l.mu.Lock()
		clear(l.items)
		l.items = l.items[:0]
		l.catchUp = true
		l.subUp = true
		l.mu.Unlock()
		l.signal()
	}
}

// setDown tells every listener that the subscription is lost.
func (s *Store) setDown(sub *subscription, err error) {
	if err == nil {
		err = errors.New("the subscription ended")
	}
	err = fmt.Errorf("sseredis: subscription to %s: %w", s.channel, err)
	s.mu.Lock()
	defer s.mu.Unlock()
	sub.up, sub.err = false, err
	for l := range sub.listeners {
		l.mu.Lock()
		l.subUp = false
		l.lost = err
		l.mu.Unlock()
		l.signal()
	}
}

// dispatch hands a notification or a signal to every listener.
func (s *Store) dispatch(sub *subscription, payload string) {
	if msg, ok := strings.CutPrefix(payload, signalPrefix); ok {
		s.mu.Lock()
		defer s.mu.Unlock()
		for l := range sub.listeners {
			l.mu.Lock()
			l.signals = append(l.signals, []byte(msg))
			l.mu.Unlock()
			l.signal()
		}
		return
	}
	e, epoch, err := decodeNotification(payload)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.log.Warn("sseredis: ignoring a notification; reading the stream instead", "channel", s.channel, "err", err)
	}
	for l := range sub.listeners {
		l.mu.Lock()
		switch {
		case err != nil:
			l.catchUp = true
		case len(l.items) >= maxPending:
			// Too far behind: drop them all and read the stream.
			s.log.Warn("sseredis: a listener fell behind by more notifications than it holds; it reads the stream instead", "channel", s.channel, "dropped", len(l.items))
			clear(l.items)
			l.items = l.items[:0]
			l.catchUp = true
		default:
			l.items = append(l.items, item{e, epoch})
		}
		l.mu.Unlock()
		l.signal()
	}
}

// run is one Listen call's delivery state; only its goroutine uses it.
type run struct {
	s      *Store
	l      *listener
	last   uint64 // Seq of the newest entry delivered (or skipped)
	epoch  string // the epoch of last
	down   bool   // state was told of an error
	raised string // the epoch this listener found regressed
	b      backoff
	out    sse.Listener
}

func (r *run) loop(ctx context.Context) error {
	for {
		select {
		case <-r.l.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
		l := r.l
		l.mu.Lock()
		items, catchUp, lost, signals := l.items, l.catchUp, l.lost, l.signals
		l.items, l.spare, l.catchUp, l.lost, l.signals = l.spare[:0], nil, false, nil, nil
		l.mu.Unlock()
		for _, msg := range signals {
			r.out.Signal(msg)
		}

		if lost != nil {
			r.report(lost)
		}
		if catchUp {
			if err := r.catchUp(ctx); err != nil {
				return err
			}
		}
		for _, it := range items {
			e := &it.entry
			switch {
			case e.Seq <= r.last:
				if it.epoch != r.epoch && r.epoch != "" {
					r.regressed(ctx, it.epoch, e.Seq)
				}
				continue
			case e.Seq > r.last+1:
				// A gap: notifications were lost. The stream has them.
				if err := r.catchUp(ctx); err != nil {
					return err
				}
				continue
			}
			r.deliverEntry(*e, it.epoch)
		}
		clear(items)
		l.mu.Lock()
		l.spare = items[:0]
		resumed := r.down && l.subUp && !l.catchUp && l.lost == nil
		l.mu.Unlock()
		if resumed {
			r.down = false
			r.out.State(nil)
		}
	}
}

func (r *run) deliverEntry(e sse.Entry, epoch string) {
	r.out.Deliver(e)
	r.last, r.epoch = e.Seq, epoch
	r.s.seen(epoch, e.Seq)
}

// report tells state that delivery stopped, once per outage.
func (r *run) report(err error) {
	if !r.down {
		r.down = true
		r.out.State(err)
	}
}

// catchUp delivers what the stream holds after r.last, retrying until it
// has read to the end or ctx is done.
func (r *run) catchUp(ctx context.Context) error {
	for {
		err := r.readStream(ctx)
		if err == nil {
			r.b.reset()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.report(fmt.Errorf("sseredis: reading the stream: %w", err))
		if !sleep(ctx, r.b.next()) {
			return ctx.Err()
		}
	}
}

// readStream delivers the entries after r.last, to the end of the stream.
func (r *run) readStream(ctx context.Context) error {
	s := r.s
	for {
		pipe := s.client.TxPipeline()
		epochCmd := pipe.Get(ctx, s.keys[2])
		seqCmd := pipe.Get(ctx, s.keys[1])
		rangeCmd := pipe.XRangeN(ctx, s.keys[0], strconv.FormatUint(r.last+1, 10)+"-0", "+", catchUpPage)
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		epoch := epochCmd.Val()
		if epoch == "" {
			return nil // no lifetime: nothing was appended since the keys were lost
		}
		if newest, err := strconv.ParseUint(seqCmd.Val(), 10, 64); err == nil && newest < r.last {
			r.regressed(ctx, epoch, newest)
		}
		msgs := rangeCmd.Val()
		for _, m := range msgs {
			seq, ok := seqOfID(m.ID)
			e, err := decodeEntry(epoch, seq, func(name string) (string, bool) {
				v, ok := m.Values[name].(string)
				return v, ok
			})
			if !ok || err != nil {
				s.log.Error("sseredis: skipping a malformed stream entry", "stream", s.keys[0], "id", m.ID, "err", err)
				continue
			}
			if seq <= r.last {
				continue
			}
			if seq > r.last+1 {
				r.missing(r.last+1, seq-1, epoch)
			}
			r.deliverEntry(e, epoch)
		}
		if len(msgs) < catchUpPage {
			return nil
		}
	}
}

// missing reports entries that should follow r.last but are not in the
// stream: trimmed before this process could deliver them (an outage longer
// than the history), or lost with Redis's data. state gets an error that
// matches sse.ErrEvicted before the entries after them are delivered, and
// nil once delivery goes on. The entries after them are of epoch: the
// store learns it first, so that the reset event that hubs send their
// streams names a position in it.
func (r *run) missing(from, to uint64, epoch string) {
	err := fmt.Errorf("sseredis: events %d to %d are not in the history any more; this process's open streams miss them: %w", from, to, sse.ErrEvicted)
	r.s.log.Warn(err.Error(), "stream", r.s.keys[0])
	r.s.setEpoch(epoch)
	r.down = true
	r.out.State(err)
}

// regressed handles a sequence that went back below what this listener
// delivered: Redis lost writes (a failover to a replica that lagged, a
// restart from an older snapshot), or lost its keys and another process
// that knew less began a new lifetime. Hubs ignore entries at or below what
// they delivered, and IDs may now name other events than they did, so the
// listener begins a new lifetime above its position (once per epoch it
// sees regress). Entries numbered below are not delivered here.
func (r *run) regressed(ctx context.Context, epoch string, seq uint64) {
	if r.raised == epoch {
		return
	}
	r.raised = epoch
	r.s.log.Error("sseredis: Redis lost writes this process had seen; beginning a new history above them (IDs given out before become unknown: their clients get the reset event)",
		"epoch", epoch, "seq", seq, "position", r.last)
	if err := restartScript.Run(ctx, r.s.client, r.s.keys, epoch, r.last, freshEpoch()).Err(); err != nil {
		r.s.log.Warn("sseredis: beginning a new history failed", "err", err)
	}
}

// backoff is a capped, jittered exponential delay.
type backoff struct{ d time.Duration }

func (b *backoff) next() time.Duration {
	b.d = min(max(2*b.d, minBackoff), maxBackoff)
	return b.d/2 + rand.N(b.d/2+1)
}

func (b *backoff) reset() { b.d = 0 }

// sleep waits for d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
