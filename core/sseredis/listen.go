package sseredis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/ssekit/core/sse"
)

// pingEvery: a subscription silent this long is pinged, and one that stays
// silent as long again is dropped and made anew; the epoch is read as
// often. (A variable for tests.)
var pingEvery = 5 * time.Second

const (
	// Reconnection and retry delays grow from minBackoff to maxBackoff;
	// each wait is a random time between half the delay and the delay.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second

	// maxPending bounds the messages waiting for the listener. Beyond it
	// they are dropped and the listener reads the followed topics'
	// histories instead.
	maxPending = 8192

	// catchUpPage is how many entries one catch-up read takes.
	catchUpPage = 512

	// subscribeBatch is how many channels one SUBSCRIBE names at most.
	subscribeBatch = 512
)

// The listener.
//
// Each shard has a subscription: one Redis connection, subscribed to the
// signal channel and to the channels of the followed topics it holds. Its
// receiver goroutine queues what arrives (messages, and confirmations that
// a channel is subscribed) in one inbox; Listen's goroutine takes them in
// order and is the only one that calls the Listener. A topic is delivered
// live once its channel is subscribed and what it missed is read from its
// history (catch-up), so that nothing falls between the two; an entry at
// or below the topic's last delivered Seq is skipped.

// itemKind says what an inbox item is.
type itemKind int

const (
	itemEntry        itemKind = iota // a message on a topic's channel
	itemFollow                       // Follow was called
	itemUnfollow                     // Unfollow was called
	itemSubscribed                   // a topic's channel is subscribed
	itemUnsubscribed                 // a topic's channel is not any more
	itemDown                         // a shard's subscription failed
	itemUp                           // a shard's subscription is made
	itemSignal                       // a signal
)

// item is one thing for the listener to handle.
type item struct {
	kind  itemKind
	topic string
	seq   uint64 // itemFollow: the position
	entry sse.Entry
	shard int
	err   error
	msg   []byte
}

// listenState is a running Listen: its inbox and its subscriptions.
type listenState struct {
	wake chan struct{} // capacity 1

	mu      sync.Mutex
	items   []item
	spare   []item
	entries int  // itemEntry items in items
	resync  bool // entries were dropped: catch up every live topic

}

func (l *listenState) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// push queues it.
func (l *listenState) push(it item) {
	l.mu.Lock()
	if it.kind == itemEntry {
		if l.entries >= maxPending {
			// Too far behind: drop the messages and read the histories.
			kept := l.items[:0]
			for _, x := range l.items {
				if x.kind != itemEntry {
					kept = append(kept, x)
				}
			}
			clear(l.items[len(kept):])
			l.items, l.entries, l.resync = kept, 0, true
		}
		l.entries++
	}
	l.items = append(l.items, it)
	l.mu.Unlock()
	l.signal()
}

// subscription is a shard's Redis subscription, while Listen runs.
type subscription struct {
	s  *Store
	sh *shard

	mu     sync.Mutex        // serialises commands on ps
	ps     *redis.PubSub     // the present connection, or nil
	up     bool              // ps is subscribed to the signal channel
	topics map[string]string // channel → topic, of the followed topics

	opMu  sync.Mutex
	ops   []op
	opsUp chan struct{} // capacity 1

	done chan struct{} // closed when both goroutines have returned
}

// op is a change to subscribe.
type op struct {
	follow bool
	topic  string
}

// Listen implements sse.Broadcaster. It subscribes, on each shard, to the
// channels of the topics Follow asked for, so that a process receives only
// the topics its clients follow. When a subscription fails it calls
// State with the error, retries with a growing, jittered delay (at most
// 2s), and once it is back reads what each topic missed from its history
// and calls State(nil). Entries that the history no longer holds by then
// cannot be delivered: Listen logs it and calls Lost for their topic
// before it delivers the entries after them.
//
// Every Listen of a store shares one subscription per shard, and follows
// every topic that any hub of the store follows.
func (s *Store) Listen(ctx context.Context, out sse.Listener) error {
	l := &listenState{wake: make(chan struct{}, 1)}
	s.join(l)
	defer s.leave(l)
	r := &run{s: s, l: l, out: out, topics: make(map[string]*topicState), up: make([]bool, len(s.shards))}
	r.down = true // until every shard is subscribed
	return r.loop(ctx)
}

// join adds l, starting the subscriptions for the first listener.
func (s *Store) join(l *listenState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners[l] = struct{}{}
	if s.subs == nil {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopSubs = cancel
		for _, sh := range s.shards {
			sub := &subscription{s: s, sh: sh, topics: make(map[string]string), opsUp: make(chan struct{}, 1), done: make(chan struct{})}
			s.subs = append(s.subs, sub)
		}
		for t := range s.follows {
			s.subs[s.shardOf(t).index].topics[s.channel(t)] = t
		}
		for _, sub := range s.subs {
			go sub.run(ctx)
		}
	}
	// What the subscriptions carry already: the followed topics are read
	// from their histories (a confirmation that comes later reads them
	// again).
	for _, t := range sortedTopics(s.follows) {
		l.items = append(l.items, item{kind: itemFollow, topic: t, seq: s.follows[t].after}, item{kind: itemSubscribed, topic: t})
	}
	for _, sub := range s.subs {
		sub.mu.Lock()
		if sub.up {
			l.items = append(l.items, item{kind: itemUp, shard: sub.sh.index})
		}
		sub.mu.Unlock()
	}
}

// leave removes l, and stops the subscriptions after the last listener.
func (s *Store) leave(l *listenState) {
	s.mu.Lock()
	delete(s.listeners, l)
	var subs []*subscription
	if len(s.listeners) == 0 {
		subs = s.subs
		s.subs = nil
		s.stopSubs()
	}
	s.mu.Unlock()
	for _, sub := range subs {
		<-sub.done
	}
}

// broadcast queues it for every listener.
func (s *Store) broadcast(it item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.listeners {
		l.push(it)
	}
}

// Follow implements sse.Broadcaster.
func (s *Store) Follow(topic string, after uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.follows[topic]
	if f == nil {
		f = &follow{after: after}
		s.follows[topic] = f
	}
	f.n++
	for l := range s.listeners {
		l.push(item{kind: itemFollow, topic: topic, seq: after})
	}
	if s.subs != nil {
		s.subs[s.shardOf(topic).index].queue(op{follow: true, topic: topic})
	}
}

// Unfollow implements sse.Broadcaster. A topic that several hubs of the
// store follow is followed until the last of them unfollows it.
func (s *Store) Unfollow(topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.follows[topic]
	if f == nil {
		return
	}
	if f.n--; f.n > 0 {
		return
	}
	delete(s.follows, topic)
	for l := range s.listeners {
		l.push(item{kind: itemUnfollow, topic: topic})
	}
	if s.subs != nil {
		s.subs[s.shardOf(topic).index].queue(op{topic: topic})
	}
}

// Signal implements sse.Broadcaster: it publishes msg on the store's
// signal channel, on its first shard, to every process's Listen.
func (s *Store) Signal(ctx context.Context, msg []byte) error {
	if err := s.shards[0].client.Publish(ctx, s.signals, msg).Err(); err != nil {
		return fmt.Errorf("sseredis: signal: %w", err)
	}
	return nil
}

func (sub *subscription) queue(o op) {
	sub.opMu.Lock()
	sub.ops = append(sub.ops, o)
	sub.opMu.Unlock()
	select {
	case sub.opsUp <- struct{}{}:
	default:
	}
}

// run keeps the subscription until ctx is done: a receiver goroutine
// reads, and this one applies Follow and Unfollow and reads the epoch.
func (sub *subscription) run(ctx context.Context) {
	defer close(sub.done)
	recv := make(chan struct{})
	go func() {
		defer close(recv)
		sub.receive(ctx)
	}()
	tick := time.NewTicker(pingEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			<-recv
			return
		case <-sub.opsUp:
			sub.apply(ctx)
		case <-tick.C:
			if err := sub.s.readEpoch(ctx, sub.sh); err != nil && ctx.Err() == nil {
				sub.s.log.Warn("sseredis: reading the epoch failed", "err", err)
			}
		}
	}
}

// apply sends the queued changes, in order.
func (sub *subscription) apply(ctx context.Context) {
	sub.opMu.Lock()
	ops := sub.ops
	sub.ops = nil
	sub.opMu.Unlock()
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for _, o := range ops {
		ch := sub.s.channel(o.topic)
		if o.follow {
			sub.topics[ch] = o.topic
		} else {
			delete(sub.topics, ch)
		}
		if sub.ps == nil {
			continue // the next connection subscribes what topics holds
		}
		// An error means the connection failed; the receiver sees it and
		// makes a new one.
		if o.follow {
			_ = sub.ps.Subscribe(ctx, ch)
		} else {
			_ = sub.ps.Unsubscribe(ctx, ch)
		}
	}
}

// receive makes connections and reads them until ctx is done.
func (sub *subscription) receive(ctx context.Context) {
	var b backoff
	for {
		err := sub.session(ctx, &b)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("the subscription ended")
		}
		sub.s.broadcast(item{kind: itemDown, shard: sub.sh.index, err: fmt.Errorf("sseredis: subscription to shard %d: %w", sub.sh.index, err)})
		if !sleep(ctx, b.next()) {
			return
		}
	}
}

// session subscribes on a new connection and queues what arrives until
// the connection fails or ctx is done.
func (sub *subscription) session(ctx context.Context, b *backoff) error {
	s := sub.s
	ps := sub.sh.client.Subscribe(ctx)
	defer func() {
		sub.mu.Lock()
		sub.ps, sub.up = nil, false
		sub.mu.Unlock()
		_ = ps.Close()
	}()
	// Receive does not return when ctx is done; closing the PubSub ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	sub.mu.Lock()
	sub.ps = ps
	chans := make([]string, 0, len(sub.topics)+1)
	chans = append(chans, s.signals)
	for ch := range sub.topics {
		chans = append(chans, ch)
	}
	var err error
	for len(chans) > 0 && err == nil {
		n := min(len(chans), subscribeBatch)
		err = ps.Subscribe(ctx, chans[:n]...)
		chans = chans[n:]
	}
	sub.mu.Unlock()
	if err != nil {
		return err
	}
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
			sub.confirm(ctx, m, b)
		case *redis.Message:
			if m.Channel == s.signals {
				sub.s.broadcast(item{kind: itemSignal, msg: []byte(m.Payload)})
				continue
			}
			sub.mu.Lock()
			topic, ok := sub.topics[m.Channel]
			sub.mu.Unlock()
			if !ok {
				continue // unfollowed meanwhile
			}
			e, err := decodeMessage(s.Epoch(), topic, m.Payload)
			if err != nil {
				s.log.Warn("sseredis: ignoring a malformed message; reading the history instead", "channel", m.Channel, "err", err)
				sub.s.broadcast(item{kind: itemSubscribed, topic: topic})
				continue
			}
			sub.s.broadcast(item{kind: itemEntry, topic: topic, entry: e})
		}
	}
}

// confirm handles a subscription's confirmation.
func (sub *subscription) confirm(ctx context.Context, m *redis.Subscription, b *backoff) {
	if m.Channel == sub.s.signals {
		if m.Kind != "subscribe" {
			return
		}
		b.reset()
		// The connection is new: Redis may have lost the keys meanwhile.
		if err := sub.s.readEpoch(ctx, sub.sh); err != nil && ctx.Err() == nil {
			sub.s.log.Warn("sseredis: reading the epoch failed", "err", err)
		}
		sub.mu.Lock()
		sub.up = true
		sub.mu.Unlock()
		sub.s.broadcast(item{kind: itemUp, shard: sub.sh.index})
		return
	}
	sub.mu.Lock()
	topic, ok := sub.topics[m.Channel]
	sub.mu.Unlock()
	if !ok {
		return
	}
	switch m.Kind {
	case "subscribe":
		sub.s.broadcast(item{kind: itemSubscribed, topic: topic})
	case "unsubscribe":
		sub.s.broadcast(item{kind: itemUnsubscribed, topic: topic})
	}
}

// topicState is a followed topic, as the listener sees it.
type topicState struct {
	last  uint64 // the Seq of the newest entry delivered, or the position followed from
	live  bool   // subscribed and caught up: messages are delivered
	retry bool   // the catch-up failed: try again
}

// run is one Listen call's delivery state; only its goroutine uses it.
type run struct {
	s        *Store
	l        *listenState
	out      sse.Listener
	topics   map[string]*topicState
	up       []bool // each shard's subscription is made
	down     bool   // delivery is stopped
	reported bool   // State was told it is
	b        backoff
	timer    *time.Timer // retries failed catch-ups
}

func (r *run) loop(ctx context.Context) error {
	r.timer = time.NewTimer(time.Hour)
	r.timer.Stop()
	defer r.timer.Stop()
	r.l.signal()
	for {
		select {
		case <-r.l.wake:
		case <-r.timer.C:
			r.retry(ctx)
		case <-ctx.Done():
			return ctx.Err()
		}
		l := r.l
		l.mu.Lock()
		items, resync := l.items, l.resync
		l.items, l.spare, l.entries, l.resync = l.spare[:0], nil, 0, false
		l.mu.Unlock()
		if resync {
			r.s.log.Warn("sseredis: the listener fell behind by more messages than it holds; it reads the histories instead", "max", maxPending)
			for t, st := range r.topics {
				if st.live {
					r.catchUp(ctx, t, st)
				}
			}
		}
		for i := range items {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.handle(ctx, &items[i])
		}
		clear(items)
		l.mu.Lock()
		l.spare = items[:0]
		l.mu.Unlock()
		r.settle()
	}
}

// handle acts on one item.
func (r *run) handle(ctx context.Context, it *item) {
	switch it.kind {
	case itemEntry:
		st := r.topics[it.topic]
		if st == nil || !st.live || it.entry.Seq <= st.last {
			return
		}
		// While the channel stays subscribed, Redis sends every message,
		// in order: a Seq further on (a new run of the topic) misses none.
		r.deliver(st, it.entry)
	case itemFollow:
		if st := r.topics[it.topic]; st != nil {
			// Another hub of the store follows it too: from the earlier
			// place (the hubs skip what they have).
			st.last = min(st.last, it.seq)
		} else {
			r.topics[it.topic] = &topicState{last: it.seq}
		}
	case itemUnfollow:
		delete(r.topics, it.topic)
	case itemSubscribed:
		if st := r.topics[it.topic]; st != nil {
			st.live = false
			r.catchUp(ctx, it.topic, st)
		}
	case itemUnsubscribed:
		if st := r.topics[it.topic]; st != nil {
			st.live = false
		}
	case itemDown:
		r.up[it.shard] = false
		for t, st := range r.topics {
			if r.s.shardOf(t).index == it.shard {
				st.live = false
			}
		}
		r.down = true
		if !r.reported {
			r.reported = true
			r.out.State(it.err)
		}
	case itemUp:
		r.up[it.shard] = true
	case itemSignal:
		r.out.Signal(it.msg)
	}
}

// settle tells State that delivery resumed, once every shard is
// subscribed and every topic caught up.
func (r *run) settle() {
	if !r.down {
		return
	}
	for _, up := range r.up {
		if !up {
			return
		}
	}
	for _, st := range r.topics {
		if st.retry {
			return
		}
	}
	r.down = false
	if r.reported {
		r.reported = false
		r.out.State(nil)
	}
}

func (r *run) deliver(st *topicState, e sse.Entry) {
	r.out.Deliver(e)
	st.last = e.Seq
}

// retry catches up the topics whose catch-up failed.
func (r *run) retry(ctx context.Context) {
	for t, st := range r.topics {
		if st.retry {
			r.catchUp(ctx, t, st)
		}
	}
}

// catchUp delivers what topic's history holds after st.last, then makes
// the topic live. If Redis fails, it marks the topic for a retry.
func (r *run) catchUp(ctx context.Context, topic string, st *topicState) {
	err := r.readHistory(ctx, topic, st)
	if err == nil {
		st.live, st.retry = true, false
		r.b.reset()
		return
	}
	if ctx.Err() != nil {
		return
	}
	st.live, st.retry = false, true
	r.down = true
	if !r.reported {
		r.reported = true
		r.out.State(err)
	}
	r.timer.Reset(r.b.next())
}

// readHistory delivers the entries of topic after st.last, to the end of
// its history.
func (r *run) readHistory(ctx context.Context, topic string, st *topicState) error {
	raised, lost := false, false
	for {
		res, err := r.s.read(ctx, topic, st.last, catchUpPage)
		if err != nil {
			return err
		}
		switch res.status {
		case readNone:
			if st.last != 0 {
				// Redis forgot the topic (lost its keys, or it was idle
				// for TopicTTL) while this process was not subscribed:
				// what it missed, if anything, is gone.
				r.lost(topic, st, "Redis holds no history of the topic")
			}
			return nil
		case readUnknown:
			if raised {
				return fmt.Errorf("sseredis: the history of %q stays below Seq %d", topic, st.last)
			}
			// Redis lost writes this process delivered.
			r.s.log.Error("sseredis: Redis lost events this process delivered; the topic's history begins anew above them (its clients get the reset event)",
				"topic", topic, "newest", res.newest, "delivered", st.last)
			sh := r.s.shardOf(topic)
			if err := raiseScript.Run(ctx, sh.client, r.s.topicKeys(topic), r.s.ttlMs, st.last).Err(); err != nil {
				return fmt.Errorf("sseredis: beginning a new history of %q: %w", topic, err)
			}
			raised, lost = true, true
			r.lost(topic, st, "")
			continue
		case readEvicted:
			if !lost {
				lost = true
				r.lost(topic, st, "events after the position are not in the history any more")
			}
			if len(res.entries) == 0 {
				st.last = max(st.last, res.newest) // nothing up to the newest is left
			}
		}
		for _, e := range res.entries {
			if e.Seq > st.last {
				r.deliver(st, e)
			}
		}
		if len(res.entries) < catchUpPage {
			return nil
		}
	}
}

// lost reports that entries of topic after st.last cannot be delivered.
func (r *run) lost(topic string, st *topicState, why string) {
	if why != "" {
		r.s.log.Warn("sseredis: events of a topic were lost before this process could deliver them (an outage longer than the history); its streams get the reset event",
			"topic", topic, "after", st.last, "why", why)
	}
	r.out.Lost(topic)
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
