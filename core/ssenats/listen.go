package ssenats

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/ssekit/core/sse"
)

// inboxSize is the capacity of a Listen's inbox of live messages. When it
// is full, NATS drops what does not fit; Listen then reads what it missed
// from the stream. (A variable for tests.)
var inboxSize = 8192

const (
	// catchUpPage is how many events one read of the history takes.
	catchUpPage = 256

	// Retries of failed reads wait from minBackoff, doubling up to
	// maxBackoff; each wait is a random time between half the delay and
	// the delay.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// follow is a topic that the store's hubs follow.
type follow struct {
	count int    // Follow calls not yet undone by Unfollow
	after uint64 // where the first Follow asked to start
}

// listener is one Listen call.
type listener struct {
	s    *Store
	out  sse.Listener
	in   chan *nats.Msg // live messages and signals
	wake chan struct{}  // capacity 1: ops were queued

	mu  sync.Mutex
	ops []op // Follow and Unfollow calls not yet applied

	// Owned by the Listen goroutine.
	topics     map[string]*topicFeed
	bySub      map[*nats.Subscription]*topicFeed
	signals    *nats.Subscription
	advisories *nats.Subscription // the stream's creation and deletion
	epoch      string             // the epoch of the positions in topics
	recheck    bool               // the epoch must be read again before delivering
	gone       bool               // the stream was not found: make it on the next retry
	down       error              // why delivery stopped, while it is
	backoff    time.Duration
	retry      *time.Timer
}

// op is a Follow (follow true) or an Unfollow.
type op struct {
	topic  string
	after  uint64
	follow bool
}

// topicFeed is a followed topic of one Listen.
type topicFeed struct {
	topic   string
	sub     *nats.Subscription // the topic's live subject; nil until made
	last    uint64             // the Seq of the newest entry handed over
	dropped int                // messages NATS dropped from sub, as last seen
	stale   bool               // the history must be read before live messages
}

var (
	errDisconnected = errors.New("ssenats: the connection to NATS was lost; catching up when it is back")
	errClosed       = errors.New("ssenats: the connection to NATS is closed")
)

func (l *listener) push(o op) {
	l.mu.Lock()
	l.ops = append(l.ops, o)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Listen implements sse.Broadcaster. Each followed topic has a subscription
// of its own, to the subject on which the stream republishes the topic's
// events once it has stored them, so a process receives only the topics
// its clients follow. Every event says which event of its topic came
// before it; when that is not the one Listen handed over last (NATS
// dropped messages for a slow consumer, or the connection was lost),
// Listen reads the gap from the stream first. When the connection is lost
// it calls State with an error; once it is back, it reads what each topic
// missed and calls State(nil). Events the stream no longer holds by then
// are reported with Lost.
//
// Signals arrive on <Prefix>.signal, to every Listen subscribed when they
// are sent.
func (s *Store) Listen(ctx context.Context, out sse.Listener) error {
	l := &listener{
		s:      s,
		out:    out,
		in:     make(chan *nats.Msg, inboxSize),
		wake:   make(chan struct{}, 1),
		topics: make(map[string]*topicFeed),
		bySub:  make(map[*nats.Subscription]*topicFeed),
	}
	status := s.nc.StatusChanged(nats.CONNECTED, nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	defer s.nc.RemoveStatusListener(status)
	s.lmu.Lock()
	s.listeners[l] = struct{}{}
	for t, f := range s.follows {
		l.ops = append(l.ops, op{topic: t, after: f.after, follow: true})
	}
	s.lmu.Unlock()
	defer l.close()
	l.epoch = s.Epoch()
	var err error
	if l.signals, err = s.nc.ChanSubscribe(s.signal, l.in); err != nil {
		l.setDown(fmt.Errorf("ssenats: subscribing to %s: %w", s.signal, err))
	}
	// The server announces a stream's creation and deletion: a stream made
	// anew is a new epoch, which the hub must hear of at once.
	if l.advisories, err = s.nc.ChanSubscribe("$JS.EVENT.ADVISORY.STREAM.*."+s.cfg.Name, l.in); err != nil {
		l.setDown(fmt.Errorf("ssenats: subscribing to the stream's advisories: %w", err))
	}
	if !s.nc.IsConnected() {
		l.setDown(errDisconnected)
	}
	l.apply(ctx)
	for {
		var retry <-chan time.Time
		if l.retry != nil {
			retry = l.retry.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.wake:
			l.apply(ctx)
		case m := <-l.in:
			full := len(l.in) >= cap(l.in)-1
			l.handle(ctx, m)
			if full {
				// NATS may have dropped messages that did not fit.
				l.checkDropped(ctx)
			}
		case st := <-status:
			l.status(ctx, st)
		case <-retry:
			l.retry = nil
			l.resync(ctx)
		}
	}
}

// close ends l's subscriptions and forgets it.
func (l *listener) close() {
	l.s.lmu.Lock()
	delete(l.s.listeners, l)
	l.s.lmu.Unlock()
	for _, sub := range []*nats.Subscription{l.signals, l.advisories} {
		if sub != nil {
			_ = sub.Unsubscribe()
		}
	}
	for _, f := range l.topics {
		if f.sub != nil {
			_ = f.sub.Unsubscribe()
		}
	}
	if l.retry != nil {
		l.retry.Stop()
	}
}

// Follow implements sse.Broadcaster.
func (s *Store) Follow(topic string, after uint64) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	f := s.follows[topic]
	if f == nil {
		f = &follow{after: after}
		s.follows[topic] = f
		for l := range s.listeners {
			l.push(op{topic: topic, after: after, follow: true})
		}
	}
	f.count++
}

// Unfollow implements sse.Broadcaster.
func (s *Store) Unfollow(topic string) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	f := s.follows[topic]
	if f == nil {
		return
	}
	if f.count--; f.count > 0 {
		return
	}
	delete(s.follows, topic)
	for l := range s.listeners {
		l.push(op{topic: topic})
	}
}

// apply carries out the queued Follow and Unfollow calls.
func (l *listener) apply(ctx context.Context) {
	l.mu.Lock()
	ops := l.ops
	l.ops = nil
	l.mu.Unlock()
	for _, o := range ops {
		f := l.topics[o.topic]
		switch {
		case o.follow && f == nil:
			f = &topicFeed{topic: o.topic, last: o.after, stale: true}
			l.topics[o.topic] = f
			l.subscribe(f)
			if l.down == nil {
				l.sync(ctx, f)
			}
		case !o.follow && f != nil:
			if f.sub != nil {
				_ = f.sub.Unsubscribe()
				delete(l.bySub, f.sub)
			}
			delete(l.topics, o.topic)
		}
	}
}

// subscribe makes f's subscription, unless it has one.
func (l *listener) subscribe(f *topicFeed) bool {
	if f.sub != nil {
		return true
	}
	sub, err := l.s.nc.ChanSubscribe(l.s.liveSubject(f.topic), l.in)
	if err != nil {
		l.s.log.Warn("ssenats: subscribing to a topic failed; retrying", "topic", f.topic, "err", err)
		l.schedule()
		return false
	}
	f.sub = sub
	f.dropped, _ = sub.Dropped()
	l.bySub[sub] = f
	return true
}

// handle takes a live message or a signal.
func (l *listener) handle(ctx context.Context, m *nats.Msg) {
	switch m.Sub {
	case l.signals:
		l.out.Signal(append([]byte(nil), m.Data...))
		return
	case l.advisories:
		if l.down == nil {
			l.checkEpoch(ctx, false)
		}
		return
	}
	f := l.bySub[m.Sub]
	if f == nil || f.stale {
		return // no longer followed, or to be read from the stream
	}
	seq, err := strconv.ParseUint(m.Header.Get(jsSequence), 10, 64)
	if err != nil {
		l.s.log.Warn("ssenats: a live message without its sequence; reading the stream instead", "subject", m.Subject)
		f.stale = true
		l.sync(ctx, f)
		return
	}
	prev, ev, err := decodeEvent(m.Data)
	if err != nil {
		l.s.log.Warn("ssenats: ignoring a message that is not an event", "subject", m.Subject, "seq", seq, "err", err)
		return
	}
	if prev == 0 && f.last != 0 {
		// The first event of a topic that had events: they all expired,
		// or this is a stream made anew whose announcement has not
		// arrived yet. Its entries must not reach the hub before
		// NewEpoch: look.
		epoch := l.epoch
		if !l.checkEpoch(ctx, false) || l.epoch != epoch {
			return // the stream is read again from its start
		}
	}
	if seq <= f.last {
		return // handed over already
	}
	if prev > f.last {
		// Events of the topic came between: read them from the stream.
		f.stale = true
		l.sync(ctx, f)
		return
	}
	l.s.saw(seq)
	t, _ := time.Parse(time.RFC3339Nano, m.Header.Get(jsTimeStamp))
	r := record{seq: seq, prev: prev, t: t, ev: ev}
	f.last = seq
	l.out.Deliver(r.entry(f.topic, l.s.Epoch()))
}

// The headers of a message the stream republishes.
const (
	jsSequence  = "Nats-Sequence"
	jsTimeStamp = "Nats-Time-Stamp"
)

// sync reads what f missed from the stream and hands it over. On failure
// f stays stale and a retry is scheduled.
func (l *listener) sync(ctx context.Context, f *topicFeed) {
	if !l.subscribe(f) {
		return
	}
	for ctx.Err() == nil {
		entries, err := l.s.After(ctx, []string{f.topic}, []uint64{f.last}, catchUpPage)
		switch {
		case errors.Is(err, sse.ErrEvicted):
			// Events after f.last expired: say so, and go on from the
			// oldest the stream still holds.
			l.s.log.Warn("ssenats: events of a topic expired before they could be delivered; its streams are reset", "topic", f.topic, "after", f.last)
			l.out.Lost(f.topic)
			r, nerr := l.s.next(ctx, f.topic, f.last)
			if nerr != nil {
				l.failed(ctx, nerr)
				return
			}
			if r == nil {
				n, nerr := l.s.Newest(ctx, f.topic)
				if nerr != nil {
					l.failed(ctx, nerr)
					return
				}
				f.last = max(f.last, n)
			} else {
				f.last = r.seq - 1
			}
			continue
		case errors.Is(err, sse.ErrUnknownID):
			// A position beyond the stream's newest: the stream was made
			// anew, and its announcement has not arrived yet.
			epoch := l.epoch
			if !l.checkEpoch(ctx, false) || l.epoch != epoch {
				return // checkEpoch read the new stream, or will on a retry
			}
			l.out.Lost(f.topic)
			n, nerr := l.s.Newest(ctx, f.topic)
			if nerr != nil {
				l.failed(ctx, nerr)
				return
			}
			f.last = n
			continue
		case err != nil:
			l.failed(ctx, err)
			return
		}
		for _, e := range entries {
			f.last = e.Seq
			l.out.Deliver(e)
		}
		if len(entries) < catchUpPage {
			f.stale = false
			return
		}
	}
}

// failed notes that reading the stream failed: delivery stops until a
// retry succeeds.
func (l *listener) failed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // Listen is ending
	}
	if l.s.nc.IsConnected() {
		l.s.log.Warn("ssenats: reading the stream failed; retrying", "err", err)
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		l.recheck = true // the stream may be gone, or made anew
	}
	l.setDown(fmt.Errorf("ssenats: reading the stream: %w", err))
	l.schedule()
}

// setDown reports that delivery stopped, unless it was reported already.
func (l *listener) setDown(err error) {
	if l.down == nil {
		l.down = err
		l.out.State(err)
	}
}

// schedule arms the retry timer, unless it is armed.
func (l *listener) schedule() {
	if l.retry != nil {
		return
	}
	l.backoff = min(max(2*l.backoff, minBackoff), maxBackoff)
	l.retry = time.NewTimer(l.backoff/2 + rand.N(l.backoff/2+1))
}

// resync reads the history of every stale topic; once none is left, and
// the connection is up, delivery has resumed.
func (l *listener) resync(ctx context.Context) {
	if !l.s.nc.IsConnected() {
		return // the CONNECTED status calls again
	}
	if l.recheck && !l.checkEpoch(ctx, l.gone) {
		return
	}
	for _, f := range l.topics {
		if f.stale || f.sub == nil {
			l.sync(ctx, f)
			if l.retry != nil {
				return // failed; retried later
			}
		}
	}
	if l.down != nil && ctx.Err() == nil {
		l.down = nil
		l.backoff = 0
		l.out.State(nil)
	}
}

// checkEpoch reads the stream's state and, when it is a new epoch,
// reports it (Listener.NewEpoch): clients are reset, and each topic goes on
// from the new stream's start. It reports whether the state could be read; if
// not, delivery stops until a retry reads it. A stream that is gone is
// made anew on the retry (create), unless a process that publishes made
// it first.
func (l *listener) checkEpoch(ctx context.Context, create bool) bool {
	info, _, err := l.s.refresh(ctx, create)
	if err != nil {
		l.recheck = true
		for _, f := range l.topics {
			f.stale = true
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			l.gone = true
			l.s.log.Warn("ssenats: the stream is gone; waiting for it to be made anew", "stream", l.s.cfg.Name)
			l.setDown(fmt.Errorf("ssenats: stream %s: %w", l.s.cfg.Name, err))
			l.backoff = time.Second // leave the server time to finish deleting it
			l.schedule()
			return false
		}
		l.failed(ctx, err)
		return false
	}
	l.recheck, l.gone = false, false
	if e := l.s.Epoch(); e != l.epoch {
		l.epoch = e
		l.s.log.Warn("ssenats: the stream was made anew; the streams of every topic are reset", "stream", l.s.cfg.Name)
		// Its sequence starts over: the hub must forget the old one's
		// Seqs before it gets an entry of the new stream.
		l.out.NewEpoch()
		for _, f := range l.topics {
			f.last = info.State.FirstSeq - min(info.State.FirstSeq, 1)
			f.stale = true
			if l.down == nil {
				l.sync(ctx, f)
			}
		}
	}
	return true
}

// checkDropped reads the history of the topics whose messages NATS
// dropped because the inbox was full.
func (l *listener) checkDropped(ctx context.Context) {
	for _, f := range l.topics {
		if f.sub == nil {
			continue
		}
		if n, err := f.sub.Dropped(); err == nil && n != f.dropped {
			f.dropped = n
			f.stale = true
			if l.down == nil {
				l.sync(ctx, f)
			}
		}
	}
}

// status handles a change of the connection's status.
func (l *listener) status(ctx context.Context, st nats.Status) {
	switch st {
	case nats.CONNECTED:
		// Messages sent while the connection was down are lost: read them
		// from the stream. The stream may have been made anew (a server
		// that kept it in memory restarted).
		for _, f := range l.topics {
			f.stale = true
		}
		if !l.checkEpoch(ctx, false) {
			return
		}
		if l.retry != nil {
			l.retry.Stop()
			l.retry = nil
		}
		l.resync(ctx)
	case nats.CLOSED:
		for _, f := range l.topics {
			f.stale = true
		}
		l.setDown(errClosed)
	default:
		for _, f := range l.topics {
			f.stale = true
		}
		l.setDown(errDisconnected)
	}
}
