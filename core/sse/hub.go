package sse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// SlowConsumerPolicy says what a Hub does when a subscriber's queue is full.
type SlowConsumerPolicy int

const (
	// SlowConsumerDisconnect ends the slow client's stream cleanly. Its EventSource
	// reconnects with Last-Event-ID and the Store replays what it missed,
	// so nothing is lost as long as the Store still holds those events.
	SlowConsumerDisconnect SlowConsumerPolicy = iota

	// SlowConsumerDropOldest drops the oldest queued events to make room and then sends
	// the client the reset event (reason "dropped") so that it knows it
	// missed some.
	SlowConsumerDropOldest
)

func (p SlowConsumerPolicy) String() string {
	switch p {
	case SlowConsumerDisconnect:
		return "disconnect"
	case SlowConsumerDropOldest:
		return "drop oldest"
	}
	return "unknown"
}

// Options configures a Hub. The zero value is ready to use; every default is
// given beside its field. Negative values are an error, and so are durations
// outside 1ms to 24h.
type Options struct {
	// Store records events for replay and assigns their IDs.
	// Default: NewMemoryStore with its defaults.
	Store Store

	// HeartbeatInterval is the longest a stream stays silent: a comment is
	// sent when nothing else was written for this long. Heartbeats keep
	// proxies from closing idle streams and reveal dead peers. Default 15s.
	HeartbeatInterval time.Duration

	// WriteTimeout bounds every write to a client. A client that does not
	// take a write within it is cut off. (A write that closely follows
	// another may be given 7/8 of it: moving a connection's deadline for
	// every small write would cost more than the write.) Default 10s.
	WriteTimeout time.Duration

	// Retry, when set, is sent as a "retry" hint when a stream opens, and
	// sets how soon browsers reconnect after an unexpected drop. Default:
	// none (browsers wait about 3s).
	Retry time.Duration

	// CloseRetry is the "retry" hint sent when the hub ends a stream on
	// purpose (shutdown, slow consumer). Each stream gets a random value
	// between CloseRetry and twice CloseRetry, so clients do not all come
	// back at once. Default 1s.
	CloseRetry time.Duration

	// MaxQueueEvents and MaxQueueBytes bound each subscriber's queue of
	// events waiting to be written. When an event would take a queue past
	// either, SlowConsumer applies. One event alone never counts as a full
	// queue. Events are shared: a queue holds references to them, not
	// copies. Defaults 1024 events and 4 MiB.
	MaxQueueEvents int
	MaxQueueBytes  int

	// MaxEventBytes bounds the size of one event's wire form, counted
	// generously (its fields, 7 bytes per data line and 64 bytes for the
	// ID and field names). Publish refuses a larger event with an error
	// that matches ErrEventTooLarge. It must not exceed MaxQueueBytes, so
	// that a queue always has room for the largest event. Default: a
	// quarter of MaxQueueBytes (1 MiB at the defaults).
	MaxEventBytes int

	// SlowConsumer is the policy for full queues. Default SlowConsumerDisconnect.
	SlowConsumer SlowConsumerPolicy

	// ResetEventType is the type of the event sent when a client cannot be
	// given every event it missed: its Last-Event-ID is unknown, from an
	// earlier process lifetime or evicted from the Store, or SlowConsumerDropOldest
	// dropped events, or a shared store lost events during an outage. Its
	// data is JSON: {"reason":"unknown-id"}, {"reason":"evicted"},
	// {"reason":"dropped"}, {"reason":"replay-limit"} (see MaxReplayEvents)
	// or {"reason":"unavailable"}. Clients should reload their state when
	// they see it. Default "sse-reset".
	ResetEventType string

	// MaxTopics bounds the topics of one stream. Default 32.
	MaxTopics int

	// MaxReplayEvents and MaxReplayBytes bound what one resuming stream is
	// sent from the Store. A client that missed more gets what fits, then
	// the reset event with reason "replay-limit" and the live events: it
	// should reload its state, as after any reset. The bounds keep one
	// request (a Last-Event-ID from long ago, or forged) from making the
	// server send its whole history. They must be at least MaxQueueEvents
	// and MaxQueueBytes, so that a client disconnected as a slow consumer
	// resumes without loss. Defaults 4 × MaxQueueEvents and 2 ×
	// MaxQueueBytes (4096 events and 8 MiB at the defaults).
	MaxReplayEvents int
	MaxReplayBytes  int

	// MaxLastEventIDLength bounds the Last-Event-ID a client may send.
	// A longer one is treated like an unknown ID (reset event). The
	// default, 64 + 21 × MaxTopics (736 bytes at the default MaxTopics),
	// takes back any ID the hub gives: a store that numbers each topic on
	// its own (a Broadcaster) makes IDs with a Seq per topic, up to 20
	// digits each. A smaller bound suits streams of few topics.
	MaxLastEventIDLength int

	// MaxStreamAge, when set, ends each stream after about this long (a
	// random 0-10% less, so that streams opened together do not all end
	// together) with a retry hint; the client reconnects and resumes. Use
	// it to spread long-lived streams across instances after a scale-up
	// or deploy. Default: no limit.
	MaxStreamAge time.Duration

	// MaxStreams, MaxStreamsPerPrincipal and MaxStreamsPerIP cap open
	// streams: in all, per Principal.ID (streams of the zero Principal are
	// not counted per principal) and per client IP (ClientIP's; IPv6
	// addresses count per /64, the block one host usually holds). Default:
	// no caps.
	MaxStreams             int
	MaxStreamsPerPrincipal int
	MaxStreamsPerIP        int

	// OverLimit answers a request over a cap. Default: TryLater with a
	// random delay between 5 and 10 seconds, the one answer that makes
	// browsers come back. Return Refuse(http.StatusTooManyRequests, ...)
	// or 503 only for clients that are not browsers: EventSource never
	// retries after a non-200 status.
	OverLimit func(r *http.Request, reason RefusalReason) error

	// ClientIP returns the client address that MaxStreamsPerIP counts and
	// the Observer sees. Default: the host part of Request.RemoteAddr.
	// Behind reverse proxies or load balancers, use ProxyClientIP with
	// their networks: it believes X-Forwarded-For only as far as trusted
	// proxies wrote it.
	ClientIP func(r *http.Request) string

	// Observer receives the hub's events for metrics. Default: none.
	Observer Observer

	// Logger receives the hub's logs. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"HeartbeatInterval", &o.HeartbeatInterval, 15 * time.Second},
		{"WriteTimeout", &o.WriteTimeout, 10 * time.Second},
		{"Retry", &o.Retry, 0},
		{"CloseRetry", &o.CloseRetry, time.Second},
	}
	for _, d := range durations {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v != 0 && (*d.v < time.Millisecond || *d.v > 24*time.Hour) {
			return fmt.Errorf("sse: Options.%s is %v; it must be between 1ms and 24h, or 0 for the default", d.name, *d.v)
		}
	}
	ints := []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxQueueEvents", &o.MaxQueueEvents, 1024},
		{"MaxQueueBytes", &o.MaxQueueBytes, 4 << 20},
		{"MaxEventBytes", &o.MaxEventBytes, 0}, // below: a quarter of MaxQueueBytes
		{"MaxTopics", &o.MaxTopics, 32},
		{"MaxReplayEvents", &o.MaxReplayEvents, 0}, // below: from the queue bounds
		{"MaxReplayBytes", &o.MaxReplayBytes, 0},
		{"MaxLastEventIDLength", &o.MaxLastEventIDLength, 0}, // below: from MaxTopics
		{"MaxStreams", &o.MaxStreams, 0},
		{"MaxStreamsPerPrincipal", &o.MaxStreamsPerPrincipal, 0},
		{"MaxStreamsPerIP", &o.MaxStreamsPerIP, 0},
	}
	for _, n := range ints {
		if *n.v < 0 {
			return fmt.Errorf("sse: Options.%s is %d; it must not be negative", n.name, *n.v)
		}
		if *n.v == 0 {
			*n.v = n.def
		}
	}
	if o.MaxLastEventIDLength == 0 {
		o.MaxLastEventIDLength = 64 + 21*o.MaxTopics
	}
	if o.MaxReplayEvents == 0 {
		o.MaxReplayEvents = 4 * o.MaxQueueEvents
	}
	if o.MaxReplayBytes == 0 {
		o.MaxReplayBytes = 2 * o.MaxQueueBytes
	}
	if o.MaxReplayEvents < o.MaxQueueEvents || o.MaxReplayBytes < o.MaxQueueBytes {
		return fmt.Errorf("sse: Options.MaxReplayEvents and MaxReplayBytes (%d, %d) must be at least MaxQueueEvents and MaxQueueBytes (%d, %d), "+
			"or a client disconnected as a slow consumer could not resume without loss", o.MaxReplayEvents, o.MaxReplayBytes, o.MaxQueueEvents, o.MaxQueueBytes)
	}
	if o.MaxEventBytes == 0 {
		o.MaxEventBytes = max(o.MaxQueueBytes/4, 1)
	}
	if o.MaxEventBytes > o.MaxQueueBytes {
		return fmt.Errorf("sse: Options.MaxEventBytes is %d, more than MaxQueueBytes (%d): a queue must have room for the largest event", o.MaxEventBytes, o.MaxQueueBytes)
	}
	if o.MaxStreamAge < 0 || (o.MaxStreamAge > 0 && o.MaxStreamAge < time.Millisecond) {
		return fmt.Errorf("sse: Options.MaxStreamAge is %v; it must be at least 1ms, or 0 for no limit", o.MaxStreamAge)
	}
	if o.SlowConsumer != SlowConsumerDisconnect && o.SlowConsumer != SlowConsumerDropOldest {
		return fmt.Errorf("sse: Options.SlowConsumer is %d; use SlowConsumerDisconnect or SlowConsumerDropOldest", o.SlowConsumer)
	}
	if o.ResetEventType == "" {
		o.ResetEventType = "sse-reset"
	}
	if err := checkField("event", o.ResetEventType, true); err != nil {
		return fmt.Errorf("sse: Options.ResetEventType: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.OverLimit == nil {
		o.OverLimit = func(*http.Request, RefusalReason) error {
			return TryLater(5*time.Second + rand.N(5*time.Second))
		}
	}
	if o.ClientIP == nil {
		o.ClientIP = remoteIP
	}
	if o.Store == nil {
		s, err := NewMemoryStore(MemoryStoreOptions{})
		if err != nil {
			return err
		}
		o.Store = s
	}
	return nil
}

// Hub fans events out to subscribers by topic and records them in its Store.
//
// Publish encodes an event once and hands the same bytes to the queue of
// every subscriber of its topic; it never waits for a client. Each stream's
// own handler goroutine writes what is queued for it. A Hub must be created
// with NewHub and is safe for concurrent use.
type Hub struct {
	opts  Options
	store Store
	log   *slog.Logger

	// pubMu makes Store.Append and delivery one step, so that subscribers
	// see events in Store order.
	pubMu sync.Mutex

	tickEvery time.Duration // heartbeat and max-age check period

	// With a Broadcaster store, the goroutine running Listen.
	stopListen context.CancelFunc
	listening  chan struct{} // closed when Listen has returned

	// reg holds the subscribers; see registry.
	reg *registry

	// mu guards the caps' counts, shutdown and the heartbeat goroutine. A
	// fan-out never takes it.
	mu          sync.Mutex
	subCount    int // registered subscribers
	active      int // admitted stream handlers running
	byPrincipal map[string]int
	byIP        map[string]int
	closing     bool
	drained     chan struct{} // closed when closing and active == 0
	stopBeat    chan struct{} // non-nil while the heartbeat goroutine runs

	// The engine of detached streams, while there are any.
	detMu sync.Mutex
	eng   *engine

	// The writers of per-request streams' heartbeats.
	beats beaters

	// ordered: the store numbers all topics in one sequence and the hub
	// delivers in it (an OrderedStore that is not a Broadcaster).
	ordered bool

	// With a Broadcaster store, guarded by mu: for each topic with streams,
	// the Seq of the newest entry this hub published and has not yet had
	// back to deliver; and whether the store stopped broadcasting.
	published     map[string]uint64
	broadcastDown bool

	// Counters that Stats reads without a lock.
	streams     atomic.Int64 // registered subscribers
	detached    atomic.Int64 // of those, on detached connections
	queuedBytes atomic.Int64 // bytes of the frames that queues hold
}

// NewHub returns a Hub configured by opts.
func NewHub(opts Options) (*Hub, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	tick := opts.HeartbeatInterval / 2
	if opts.MaxStreamAge > 0 {
		tick = min(tick, opts.MaxStreamAge/4)
	}
	h := &Hub{
		opts:        opts,
		store:       opts.Store,
		log:         opts.Logger,
		tickEvery:   max(tick, 250*time.Microsecond),
		reg:         newRegistry(),
		byPrincipal: make(map[string]int),
		byIP:        make(map[string]int),
		drained:     make(chan struct{}),
	}
	_, h.ordered = opts.Store.(OrderedStore)
	if b, ok := opts.Store.(Broadcaster); ok {
		h.ordered = false // a Broadcaster delivers each topic in order, not all topics
		h.listen(b)
	}
	return h, nil
}

// listen starts delivering what b broadcasts: the entries of the topics
// the hub's streams follow, which the registry tells b about.
func (h *Hub) listen(b Broadcaster) {
	h.reg.follow, h.reg.unfollow = b.Follow, b.Unfollow
	ctx, stop := context.WithCancel(context.Background())
	h.stopListen = stop
	h.listening = make(chan struct{})
	go func() {
		defer close(h.listening)
		err := b.Listen(ctx, (*hubListener)(h))
		if ctx.Err() == nil {
			h.log.Error("sse: the store's Listen returned; this hub gets no more events", "err", err)
		}
	}()
}

// hubListener is the hub as the Listener of its Broadcaster.
type hubListener Hub

func (l *hubListener) Deliver(e Entry) { (*Hub)(l).deliver(e) }

func (l *hubListener) State(err error) {
	h := (*Hub)(l)
	h.mu.Lock()
	h.broadcastDown = err != nil
	h.mu.Unlock()
	if err != nil {
		h.log.Warn("sse: the store stopped broadcasting; catching up when it is back", "err", err)
	} else {
		h.log.Info("sse: the store broadcasts again")
	}
	if f := h.opts.Observer.BroadcastState; f != nil {
		f(err)
	}
}

func (l *hubListener) Lost(topic string) {
	// Events of topic were lost between this hub and the store: its
	// streams may have missed some, so each gets a reset.
	(*Hub)(l).reg.eachOf(topic, func(s *subscriber) { s.owe(ResetEvicted) })
}

func (l *hubListener) NewEpoch() {
	h := (*Hub)(l)
	h.log.Warn("sse: the store began a new lifetime; its history is lost and every stream is reset", "epoch", h.store.Epoch())
	h.mu.Lock()
	clear(h.published) // Seqs of the old lifetime: never delivered now
	h.mu.Unlock()
	h.reg.rewind(func(s *subscriber) { s.rewind(ResetNewEpoch) })
}

func (l *hubListener) Signal(msg []byte) {
	h := (*Hub)(l)
	var sig signal
	if err := json.Unmarshal(msg, &sig); err != nil || sig.End == nil {
		h.log.Warn("sse: ignoring a signal this hub does not understand", "err", err, "size", len(msg))
		return
	}
	h.endLocal(StreamMatch{Principal: sig.End.Principal, Topic: sig.End.Topic}, sig.End.Last)
}

// Store returns the hub's Store.
func (h *Hub) Store() Store { return h.store }

// ErrIDSet is returned by Publish for an event whose ID is already set: the
// hub's Store assigns IDs, so that replay can find every event.
var ErrIDSet = errors.New("sse: Publish: Event.ID must be empty; the Store assigns it")

// ErrEventTooLarge is matched (errors.Is) by the error Publish returns for
// an event over Options.MaxEventBytes. Nothing is recorded or sent.
var ErrEventTooLarge = errors.New("sse: Publish: event too large")

const maxTopicLen = 256

// checkTopic reports whether name can be a topic: 1 to 256 bytes of UTF-8.
func checkTopic(name string) error {
	if name == "" || len(name) > maxTopicLen || !utf8.ValidString(name) {
		return fmt.Errorf("sse: invalid topic %q: a topic is 1 to %d bytes of UTF-8", truncate(name, 40), maxTopicLen)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Publish records ev on topic in the Store and queues it for every current
// subscriber of topic. It returns the ID the Store assigned. It does not
// wait for any client, and it records the event even when nobody is
// subscribed.
//
// An invalid topic or event (see Event) is an error and nothing is recorded
// or sent. So is an event with an ID: the Store assigns IDs.
//
// The hub copies what it keeps; you may reuse ev.Data and the topic's
// memory once Publish returns.
func (h *Hub) Publish(ctx context.Context, topic string, ev Event) (string, error) {
	if err := checkTopic(topic); err != nil {
		return "", err
	}
	if ev.ID != "" || ev.Flags&EmptyID != 0 {
		return "", ErrIDSet
	}
	if err := ev.Validate(); err != nil {
		return "", err
	}
	if ev.isControl() {
		return "", &FieldError{Field: "data", Reason: "an event with only a comment or retry hint, or NoData, cannot be published; set Data"}
	}
	if n := encodedLen(&ev); n > h.opts.MaxEventBytes {
		return "", fmt.Errorf("%w: about %d bytes encoded, and Options.MaxEventBytes is %d", ErrEventTooLarge, n, h.opts.MaxEventBytes)
	}
	if h.stopListen != nil {
		// The store broadcasts the entry to every hub, this one included.
		entry, err := h.store.Append(ctx, topic, ev)
		if err != nil {
			return "", fmt.Errorf("sse: Publish: store: %w", err)
		}
		// Remember it until it is delivered, unless it was already: a
		// store may broadcast the entry before Append returns (NATS
		// republishes a message before it acknowledges it). deliver ends
		// its fan-out before it takes h.mu, so one of the two sees the
		// other.
		if ts := h.reg.subscribers(entry.Topic); ts != nil {
			h.mu.Lock()
			if ts.doneSeq.Load() < entry.Seq {
				if h.published == nil {
					h.published = make(map[string]uint64)
				}
				h.published[entry.Topic] = max(h.published[entry.Topic], entry.Seq)
			}
			h.mu.Unlock()
		}
		h.observePublished(entry.Topic)
		return entry.Event.ID, nil
	}
	h.pubMu.Lock()
	entry, err := h.store.Append(ctx, topic, ev)
	if err != nil {
		h.pubMu.Unlock()
		return "", fmt.Errorf("sse: Publish: store: %w", err)
	}
	queued, dropped, evicted, _ := h.fanOut(entry)
	h.pubMu.Unlock()
	// entry.Topic, not topic: the Observer may keep it, and the caller
	// may reuse topic's memory.
	h.observePublished(entry.Topic)
	h.observeDelivered(entry.Topic, queued, dropped, evicted)
	return entry.Event.ID, nil
}

// deliver fans a broadcast entry out (see fanOut) and tells the Observer.
func (h *Hub) deliver(entry Entry) {
	queued, dropped, evicted, fresh := h.fanOut(entry)
	h.mu.Lock()
	if p, ok := h.published[entry.Topic]; ok && entry.Seq >= p {
		delete(h.published, entry.Topic)
	}
	h.mu.Unlock()
	if fresh {
		h.observeDelivered(entry.Topic, queued, dropped, evicted)
	}
}

// fanOut queues entry's frame for the subscribers of its topic, counting
// what happened; it encodes the frame once when the store did not. Entries
// must arrive in Seq order; one already delivered is ignored (fresh is
// false).
func (h *Hub) fanOut(entry Entry) (queued, dropped, evicted int, fresh bool) {
	ts, chunks, ok := h.reg.snapshot(entry.Topic, entry.Seq)
	if !ok {
		return 0, 0, 0, false
	}
	defer ts.doneSeq.Store(entry.Seq) // fan-outs of a topic run one at a time
	if len(chunks) == 0 {
		return 0, 0, 0, true
	}
	f := &frame{b: entry.frame}
	if f.b == nil {
		f.b = appendValid(make([]byte, 0, encodedLen(&entry.Event)), &entry.Event)
	}
	f.idStart, f.idEnd = idLine(f.b)
	// A reference for every slot it may be queued in, and one of fanOut's
	// own: adding one per queue from several goroutines would make them
	// fight over the counter's cache line.
	slots := 0
	for _, c := range chunks {
		slots += len(c.subs)
	}
	f.refs.Store(int32(slots) + 1)
	h.queuedBytes.Add(int64(len(f.b)))
	r := enqueueAll(chunks, entry.Seq, f)
	if f.refs.Add(-int32(slots-r.queued+1)) == 0 {
		h.queuedBytes.Add(-int64(len(f.b)))
	}
	return r.queued, r.dropped, r.evicted, true
}

// releaseFrame drops one reference to f, which a queue held.
func (h *Hub) releaseFrame(f *frame) {
	if f.refs.Add(-1) == 0 {
		h.queuedBytes.Add(-int64(len(f.b)))
	}
}

func (h *Hub) observePublished(topic string) {
	if f := h.opts.Observer.Published; f != nil {
		f(topic)
	}
}

func (h *Hub) observeDelivered(topic string, queued, dropped, evicted int) {
	if f := h.opts.Observer.Delivered; f != nil {
		f(topic, queued, dropped, evicted)
	}
}

// register adds s to the hub: for each of its topics, every event after
// s.after reaches its queue. It returns false when the hub is shutting
// down, and the store's error when it could not say where a topic that no
// other stream follows starts.
func (h *Hub) register(ctx context.Context, s *subscriber) (bool, error) {
	if age := h.opts.MaxStreamAge; age > 0 {
		s.expires = time.Now().Add(age - rand.N(age/10+1))
	}
	// Where a topic that no stream of the hub follows starts: asked of the
	// store, outside every lock.
	starts := make([]uint64, len(s.topics))
	known := make([]bool, len(s.topics))
	fetch := func(i int) error {
		n, err := h.store.Newest(ctx, s.topics[i])
		if err != nil {
			return fmt.Errorf("sse: the store's newest entry of topic %q: %w", s.topics[i], err)
		}
		starts[i], known[i] = n, true
		return nil
	}
	for i, t := range s.topics {
		if !h.reg.has(t) {
			if err := fetch(i); err != nil {
				return false, err
			}
		}
	}
	// h.mu is held until s is in the registry, so that Shutdown, which
	// sets closing under it, ends every stream it did not refuse.
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false, nil
	}
	for i := range s.topics {
		for !h.reg.join(s, i, starts[i], known[i]) {
			// The topic's last stream ended since: ask again.
			h.mu.Unlock()
			err := fetch(i)
			h.mu.Lock()
			if err != nil || h.closing {
				h.reg.leave(s)
				return false, err
			}
		}
	}
	if h.ordered {
		// Every event up to the newest fanned out is behind the stream:
		// its place is one Seq for all its topics (see open).
		g := h.reg.lastSeq.Load()
		for i := range s.after {
			s.after[i] = max(s.after[i], g)
		}
	}
	h.reg.enter(s)
	h.streams.Add(1)
	if h.subCount++; h.subCount == 1 {
		h.stopBeat = make(chan struct{})
		go h.heartbeat(h.stopBeat)
	}
	return true, nil
}

// unregister removes s from the hub.
func (h *Hub) unregister(s *subscriber) {
	was := h.reg.remove(s)
	s.discard()
	if !was {
		return
	}
	h.streams.Add(-1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subCount--; h.subCount == 0 {
		close(h.stopBeat)
		h.stopBeat = nil
	}
}

// admit counts a stream handler in, unless the hub is shutting down or a
// cap is reached; then it returns the answer for the request.
func (h *Hub) admit(r *http.Request, info *StreamInfo) error {
	h.mu.Lock()
	reason := RefusalReason(0)
	switch o := &h.opts; {
	case h.closing:
		h.mu.Unlock()
		return &RefusalError{Status: http.StatusOK, Retry: h.closeRetry(), reason: RefusedShutdown}
	case o.MaxStreams > 0 && h.active >= o.MaxStreams:
		reason = RefusedStreamLimit
	case o.MaxStreamsPerPrincipal > 0 && info.Principal.ID != "" && h.byPrincipal[info.Principal.ID] >= o.MaxStreamsPerPrincipal:
		reason = RefusedPrincipalLimit
	case o.MaxStreamsPerIP > 0 && h.byIP[ipKey(info.ClientIP)] >= o.MaxStreamsPerIP:
		reason = RefusedIPLimit
	default:
		h.active++
		if info.Principal.ID != "" {
			h.byPrincipal[info.Principal.ID]++
		}
		h.byIP[ipKey(info.ClientIP)]++
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()
	err := h.opts.OverLimit(r, reason)
	var re *RefusalError
	if !errors.As(err, &re) {
		re = &RefusalError{Status: http.StatusServiceUnavailable, Message: "too many streams"}
	}
	c := *re
	c.reason = reason
	return &c
}

// release counts a stream handler out.
func (h *Hub) release(info *StreamInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.active--
	decrement(h.byPrincipal, info.Principal.ID)
	decrement(h.byIP, ipKey(info.ClientIP))
	if h.closing && h.active == 0 {
		close(h.drained)
	}
}

func decrement(m map[string]int, key string) {
	if n := m[key]; n > 1 {
		m[key] = n - 1
	} else {
		delete(m, key)
	}
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// heartbeat runs while the hub has subscribers. Ticking at half the
// interval and skipping streams written to since the previous tick keeps
// every stream's silence below HeartbeatInterval.
func (h *Hub) heartbeat(stop <-chan struct{}) {
	t := time.NewTicker(h.tickEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			h.tick(now)
		}
	}
}

// tick asks every stream not written to since the previous tick for a
// heartbeat, and ends streams past their maximum age.
func (h *Hub) tick(now time.Time) {
	h.reg.each(func(s *subscriber) {
		if !s.expires.IsZero() && now.After(s.expires) {
			s.end(EndMaxAge)
			return
		}
		if !s.wrote.Swap(false) {
			s.beat.Store(true)
			s.wake()
		}
	})
}

// Shutdown stops the hub from accepting streams, ends every open stream
// with a "retry" hint (so browsers reconnect, to another instance if one is
// there) and waits until every stream handler has returned, or until ctx is
// done. Call it before http.Server.Shutdown, which otherwise waits for the
// streams forever. Requests that arrive later get a 200 response with only a
// retry hint. Publish keeps working: events are still recorded. With a
// Broadcaster store, Shutdown also stops listening to it; call Shutdown
// for every hub you no longer use, so that its listener ends.
func (h *Hub) Shutdown(ctx context.Context) error {
	if h.stopListen != nil {
		h.awaitPublished(ctx)
	}
	h.mu.Lock()
	if !h.closing {
		h.closing = true
		h.reg.each(func(s *subscriber) { s.end(EndShutdown) })
		if h.active == 0 {
			close(h.drained)
		}
	}
	h.mu.Unlock()
	var err error
	select {
	case <-h.drained:
	case <-ctx.Done():
		// Detached connections are invisible to http.Server, which could
		// otherwise close them: close them here.
		h.killDetached()
		err = fmt.Errorf("sse: Shutdown: streams still open: %w", ctx.Err())
	}
	if h.stopListen != nil {
		// Stop listening on every path, or the store's listener (a Redis
		// subscription) would outlive the hub.
		h.stopListen()
		wait := ctx
		if err != nil {
			var cancel context.CancelFunc
			wait, cancel = context.WithTimeout(context.Background(), listenStopGrace)
			defer cancel()
		}
		select {
		case <-h.listening:
		case <-wait.Done():
			err = errors.Join(err, fmt.Errorf("sse: Shutdown: the store's Listen has not returned: %w", wait.Err()))
		}
	}
	return err
}

// listenStopGrace is how long Shutdown waits for the store's Listen to
// return once its own context has expired.
const listenStopGrace = time.Second

// Stats is a snapshot of a hub's state. Reading it costs the same whatever
// the number of streams and topics.
type Stats struct {
	// Streams is the number of open streams.
	Streams int
	// Detached is how many of them are on detached connections.
	Detached int
	// Topics is the number of topics that have at least one stream.
	Topics int
	// QueuedBytes is the size of the events waiting in streams' queues.
	// An event queued for many streams is shared, and counts once.
	QueuedBytes int
}

// Stats returns a snapshot of the hub's state. Its fields are read one by
// one, without a lock: under load they may not add up exactly.
func (h *Hub) Stats() Stats {
	return Stats{
		Streams:     int(h.streams.Load()),
		Detached:    int(h.detached.Load()),
		Topics:      int(h.reg.count.Load()),
		QueuedBytes: int(h.queuedBytes.Load()),
	}
}

// Subscribers returns the number of open streams that follow topic.
func (h *Hub) Subscribers(topic string) int { return h.reg.countOf(topic) }

// awaitPublished waits until the hub has delivered what it published
// itself, so that Shutdown ends no stream before an event published just
// before it reached the stream. It does not wait while the Broadcaster is
// not broadcasting, nor beyond ctx.
func (h *Hub) awaitPublished(ctx context.Context) {
	for {
		h.mu.Lock()
		for t, p := range h.published {
			// Nobody here waits for it, or it came back already (perhaps
			// before Publish recorded it).
			if seq, ok := h.reg.seqOf(t); !ok || seq >= p {
				delete(h.published, t)
			}
		}
		done := len(h.published) == 0 || h.broadcastDown
		h.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Millisecond):
		}
	}
}
