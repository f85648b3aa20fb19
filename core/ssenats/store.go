package ssenats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/ssekit/ssekit/core/sse"
)

// Options configures New. The zero value of every field but Conn is ready
// to use; each default is given beside its field. Processes that serve the
// same events use the same Stream, Prefix and limits: New creates the
// stream, or updates its configuration to these options.
type Options struct {
	// Conn is the connection to NATS, with JetStream enabled on the
	// server. Required. The store never closes it. Keep its reconnection
	// on (nats.go's default): the store rides out outages by waiting for
	// the connection to come back.
	Conn *nats.Conn

	// Stream is the name of the JetStream stream that holds the history.
	// Default "SSEKIT".
	Stream string

	// Prefix starts every subject of the store: events are stored on
	// <Prefix>.t.<topic>, sent live on <Prefix>.l.<topic>, and signals on
	// <Prefix>.signal (a topic is escaped into one subject token, see
	// Subject). It must be valid subject tokens without wildcards, and no
	// other stream may capture its subjects. Default "ssekit".
	Prefix string

	// MaxEventsPerTopic bounds each topic's history (the stream's
	// MaxMsgsPerSubject): appending to a topic that holds this many drops
	// its oldest. Default 1000.
	MaxEventsPerTopic int

	// MaxAge drops events older than this, in every topic (the stream's
	// MaxAge; the NATS server's clock decides). Default one hour.
	MaxAge time.Duration

	// MaxBytes bounds the whole stream's size; when it is reached the
	// oldest events of all topics are dropped first. Default 1 GiB.
	MaxBytes int64

	// Storage is where the server keeps the stream: jetstream.FileStorage
	// (the default) survives a restart of the server, with the same
	// epoch; jetstream.MemoryStorage is lost with it, and clients that
	// resume after the restart are reset.
	Storage jetstream.StorageType

	// Replicas is the stream's number of replicas in a NATS cluster.
	// Default 1.
	Replicas int

	// Logger receives the store's logs. Default slog.Default().
	Logger *slog.Logger
}

const (
	defaultStream   = "SSEKIT"
	defaultPrefix   = "ssekit"
	defaultPerTopic = 1000
	defaultMaxAge   = time.Hour
	defaultMaxBytes = 1 << 30

	// dedupWindow is how long the server remembers a message ID, so that
	// an Append retried after a lost reply is stored once.
	dedupWindow = time.Minute

	// maxCachedTopics bounds the topics whose newest Seq an Append
	// remembers, to skip asking the server for it.
	maxCachedTopics = 1 << 14
)

// Store is an sse.Broadcaster on NATS JetStream. Create it with New; it is
// safe for concurrent use, and several hubs may share one.
//
// Its IDs look like "lq3x0c9k2h4g-1042": the epoch, which names the
// stream's lifetime (its creation time), and the Seq, which is the
// JetStream sequence number of the event's message. See the package
// documentation for what that reveals and why.
type Store struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	log      *slog.Logger
	cfg      jetstream.StreamConfig
	prefix   string
	signal   string // the signals' subject
	perTopic int

	mu      sync.Mutex
	stream  jetstream.Stream
	epoch   string
	created time.Time

	known atomic.Uint64 // the greatest Seq the store has seen issued

	topicsMu sync.Mutex
	topics   map[string]*topicState // see topic

	// Listen's bookkeeping, see listen.go.
	lmu       sync.Mutex
	listeners map[*listener]struct{}
	follows   map[string]*follow
}

// topicState serialises this process's Appends of a topic, which would
// otherwise collide with one another, and remembers the topic's newest Seq.
type topicState struct {
	mu    sync.Mutex
	refs  int    // Appends holding or waiting for mu; guarded by Store.topicsMu
	last  uint64 // the Seq of the topic's newest message, when known
	known bool
}

var _ sse.Broadcaster = (*Store)(nil)

// New returns a Store on opts.Conn. It creates the stream, or updates its
// configuration to opts, and reads its epoch.
func New(ctx context.Context, opts Options) (*Store, error) {
	if opts.Conn == nil {
		return nil, errors.New("ssenats: Options.Conn is nil; pass a connection from nats.Connect")
	}
	if opts.MaxEventsPerTopic < 0 || opts.MaxAge < 0 || opts.MaxBytes < 0 || opts.Replicas < 0 {
		return nil, errors.New("ssenats: Options.MaxEventsPerTopic, MaxAge, MaxBytes and Replicas must not be negative; 0 means the default")
	}
	if opts.Stream == "" {
		opts.Stream = defaultStream
	}
	if strings.ContainsAny(opts.Stream, ".*> \t\r\n/\\") {
		return nil, fmt.Errorf("ssenats: Options.Stream %q is not a valid stream name (no '.', '*', '>', '/', '\\' or white space)", opts.Stream)
	}
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	for tok := range strings.SplitSeq(opts.Prefix, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return nil, fmt.Errorf("ssenats: Options.Prefix %q is not a subject of literal tokens", opts.Prefix)
		}
	}
	if opts.MaxEventsPerTopic == 0 {
		opts.MaxEventsPerTopic = defaultPerTopic
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = defaultMaxAge
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = defaultMaxBytes
	}
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	js, err := jetstream.New(opts.Conn)
	if err != nil {
		return nil, fmt.Errorf("ssenats: New: %w", err)
	}
	s := &Store{
		nc:       opts.Conn,
		js:       js,
		log:      opts.Logger,
		prefix:   opts.Prefix,
		signal:   opts.Prefix + ".signal",
		perTopic: opts.MaxEventsPerTopic,
		cfg: jetstream.StreamConfig{
			Name:              opts.Stream,
			Description:       "ssekit: Server-Sent Events history",
			Subjects:          []string{opts.Prefix + ".t.>"},
			Retention:         jetstream.LimitsPolicy,
			Discard:           jetstream.DiscardOld,
			MaxMsgsPerSubject: int64(opts.MaxEventsPerTopic),
			MaxAge:            opts.MaxAge,
			MaxBytes:          opts.MaxBytes,
			MaxMsgs:           -1,
			Storage:           opts.Storage,
			Replicas:          opts.Replicas,
			Duplicates:        min(dedupWindow, opts.MaxAge),
			AllowDirect:       true,
			RePublish:         &jetstream.RePublish{Source: opts.Prefix + ".t.>", Destination: opts.Prefix + ".l.>"},
		},
		topics:    make(map[string]*topicState),
		listeners: make(map[*listener]struct{}),
		follows:   make(map[string]*follow),
	}
	if err := s.ensure(ctx); err != nil {
		return nil, fmt.Errorf("ssenats: New: %w", err)
	}
	return s, nil
}

// ensure creates the stream, or updates its configuration, and takes its
// epoch.
func (s *Store) ensure(ctx context.Context) error {
	st, err := s.js.CreateOrUpdateStream(ctx, s.cfg)
	if err != nil {
		return fmt.Errorf("creating stream %s: %w", s.cfg.Name, err)
	}
	info := st.CachedInfo()
	if known := s.known.Load(); known > 0 && info.State.LastSeq == 0 && info.State.Msgs == 0 {
		// A new stream in place of one this store knew: number its events
		// after those of the old one, so that a hub, which takes every
		// Seq at or below one it has delivered for a duplicate, delivers
		// the new stream's events. (Purging an empty stream up to a
		// sequence makes that sequence its next.)
		if err := st.Purge(ctx, jetstream.WithPurgeSequence(known+1)); err != nil {
			return fmt.Errorf("numbering stream %s after %d: %w", s.cfg.Name, known, err)
		}
		if info, err = st.Info(ctx); err != nil {
			return fmt.Errorf("reading stream %s: %w", s.cfg.Name, err)
		}
	}
	s.setStream(st, info)
	return nil
}

// setStream takes st as the stream, and info's creation time as its epoch.
// It reports whether the epoch changed.
func (s *Store) setStream(st jetstream.Stream, info *jetstream.StreamInfo) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st != nil {
		s.stream = st
	}
	changed := !info.Created.Equal(s.created)
	if changed {
		if s.epoch != "" {
			s.log.Warn("ssenats: the stream was created anew; its history starts again, and clients that resume are reset", "stream", s.cfg.Name)
			s.topicsMu.Lock()
			clear(s.topics)
			s.topicsMu.Unlock()
		}
		s.created = info.Created
		s.epoch = strconv.FormatInt(info.Created.UnixNano(), 36)
	}
	if n := info.State.LastSeq; n > s.known.Load() || changed {
		s.known.Store(n)
	}
	return changed
}

// refresh reads the stream's state and reports whether its epoch changed.
// With create, it makes the stream anew when it is gone; without, that is
// an error that matches jetstream.ErrStreamNotFound. (Only a process that
// publishes makes it at once: making a stream while the server is still
// deleting the old one of that name can leave the new one broken, with
// NATS 2.9.)
func (s *Store) refresh(ctx context.Context, create bool) (*jetstream.StreamInfo, bool, error) {
	st := s.current()
	info, err := st.Info(ctx)
	if create && errors.Is(err, jetstream.ErrStreamNotFound) {
		if err = s.ensure(ctx); err != nil {
			return nil, false, err
		}
		st = s.current()
		info, err = st.Info(ctx)
	}
	if err != nil {
		return nil, false, err
	}
	return info, s.setStream(nil, info), nil
}

func (s *Store) current() jetstream.Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream
}

// Epoch implements sse.Store: the stream's creation time, in base 36.
func (s *Store) Epoch() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

// Subject returns the subject that holds topic's events in the store
// (see the package function Subject).
func (s *Store) Subject(topic string) string { return Subject(s.prefix, topic) }

// Subject returns the subject that holds topic's events in a store with
// Options.Prefix prefix: the prefix, "t" and the topic escaped into one
// token. Letters, digits, '-' and '_' stand for themselves; every other
// byte is '~' and two upper-case hex digits, so that any topic has exactly
// one subject and the subject gives the topic back. Use it to grant NATS
// permissions, or to read a topic's history with other NATS tools.
func Subject(prefix, topic string) string {
	return prefix + ".t." + escape(topic)
}

// liveSubject is where the stream republishes topic's events.
func (s *Store) liveSubject(topic string) string {
	return s.prefix + ".l." + escape(topic)
}

const hexDigits = "0123456789ABCDEF"

func escape(topic string) string {
	n := 0
	for i := 0; i < len(topic); i++ {
		if !plain(topic[i]) {
			n++
		}
	}
	if n == 0 {
		return topic
	}
	b := make([]byte, 0, len(topic)+2*n)
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		if plain(c) {
			b = append(b, c)
		} else {
			b = append(b, '~', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return string(b)
}

// unescape reverses escape; ok is false for a token that escape does not
// return.
func unescape(tok string) (topic string, ok bool) {
	if !strings.Contains(tok, "~") {
		for i := 0; i < len(tok); i++ {
			if !plain(tok[i]) {
				return "", false
			}
		}
		return tok, tok != ""
	}
	b := make([]byte, 0, len(tok))
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case plain(c):
			b = append(b, c)
		case c == '~' && i+2 < len(tok):
			hi, lo := strings.IndexByte(hexDigits, tok[i+1]), strings.IndexByte(hexDigits, tok[i+2])
			if hi < 0 || lo < 0 || plain(byte(hi<<4|lo)) {
				return "", false
			}
			b = append(b, byte(hi<<4|lo))
			i += 2
		default:
			return "", false
		}
	}
	return string(b), true
}

func plain(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// topic returns topic's state, counted as used until done is called.
func (s *Store) topic(topic string) (ts *topicState, done func()) {
	s.topicsMu.Lock()
	ts = s.topics[topic]
	if ts == nil {
		if len(s.topics) >= maxCachedTopics {
			for t, o := range s.topics {
				if o.refs == 0 {
					delete(s.topics, t)
				}
			}
		}
		ts = &topicState{}
		s.topics[topic] = ts
	}
	ts.refs++
	s.topicsMu.Unlock()
	return ts, func() {
		s.topicsMu.Lock()
		ts.refs--
		s.topicsMu.Unlock()
	}
}

// Append implements sse.Store. It publishes the event on the topic's
// subject, on condition that the subject's newest message is the one the
// store knows of (Nats-Expected-Last-Subject-Sequence), and records that
// message's Seq in the event: that is how After and Listen tell a gap from
// a topic that had nothing more. Appends of one topic in this process wait
// for one another; when another process appended meanwhile, the publish is
// refused and made again after the newer message. An Append retried after
// a lost reply is stored once (Nats-Msg-Id).
//
// Append fails at once while the connection is down. An Append that
// returns an error may still have been stored, when the reply was lost and
// ctx ended before a retry got it (or the connection failed while the
// message was on its way, and nats.go sent it again once reconnected).
func (s *Store) Append(ctx context.Context, topic string, ev sse.Event) (sse.Entry, error) {
	ev.ID = ""
	ev.Flags &^= sse.EmptyID
	if err := ev.Validate(); err != nil {
		return sse.Entry{}, err
	}
	if !s.nc.IsConnected() {
		// nats.go would keep the message and send it on reconnection,
		// long after the caller was told that it failed.
		return sse.Entry{}, errNotConnected
	}
	subject := s.Subject(topic)
	ts, done := s.topic(topic)
	defer done()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if !ts.known {
		last, err := s.lastOf(ctx, subject)
		if err != nil {
			return sse.Entry{}, fmt.Errorf("ssenats: Append: %w", err)
		}
		ts.last, ts.known = last, true
	}
	id := nuid.Next()
	recreated := false
	for {
		payload := encodeEvent(nil, ts.last, &ev)
		if limit := s.nc.MaxPayload(); int64(len(payload)+200) > limit {
			return sse.Entry{}, fmt.Errorf("ssenats: Append: the event takes about %d bytes, more than the NATS server's max_payload (%d); raise max_payload or lower sse.Options.MaxEventBytes", len(payload)+200, limit)
		}
		msg := &nats.Msg{Subject: subject, Data: payload, Header: nats.Header{}}
		ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectLastSequencePerSubject(ts.last))
		if err == nil {
			ts.last = ack.Sequence
			s.saw(ack.Sequence)
			ev.ID = s.Epoch() + "-" + strconv.FormatUint(ack.Sequence, 10)
			return sse.Entry{Topic: strings.Clone(topic), Seq: ack.Sequence, Time: time.Now(), Event: cloneEvent(ev)}, nil
		}
		var apiErr *jetstream.APIError
		switch {
		case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
			// Another process appended to the topic: publish after its
			// message, under a new ID (this one was not stored).
			last, perr := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(apiErr.Description, "wrong last sequence:")), 10, 64)
			if perr != nil {
				if last, perr = s.lastOf(ctx, subject); perr != nil {
					return sse.Entry{}, fmt.Errorf("ssenats: Append: %w", perr)
				}
			}
			if last < ts.last {
				// The topic's newest message went back: its events all
				// expired, or the stream was made anew (a new epoch).
				if _, _, rerr := s.refresh(ctx, false); rerr != nil {
					return sse.Entry{}, fmt.Errorf("ssenats: Append: %w", rerr)
				}
			}
			ts.last = last
			id = nuid.Next()
		case (errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)) && !recreated:
			// The stream is gone (deleted, or lost with a server that
			// kept it in memory): make it anew.
			recreated = true
			if _, _, rerr := s.refresh(ctx, true); rerr != nil {
				return sse.Entry{}, fmt.Errorf("ssenats: Append: %w (and recreating the stream: %v)", err, rerr)
			}
			last, lerr := s.lastOf(ctx, subject)
			if lerr != nil {
				return sse.Entry{}, fmt.Errorf("ssenats: Append: %w", lerr)
			}
			ts.last = last
		case errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			// The reply may be lost: the same ID is stored at most once.
			if !sleepCtx(ctx, 20*time.Millisecond) {
				return sse.Entry{}, fmt.Errorf("ssenats: Append: %w", err)
			}
		default:
			ts.known = false
			return sse.Entry{}, fmt.Errorf("ssenats: Append: %w", err)
		}
	}
}

var errNotConnected = errors.New("ssenats: Append: not connected to NATS")

func cloneEvent(ev sse.Event) sse.Event {
	ev.Data = append([]byte(nil), ev.Data...)
	return ev
}

// saw records that seq was issued.
func (s *Store) saw(seq uint64) {
	for {
		k := s.known.Load()
		if seq <= k || s.known.CompareAndSwap(k, seq) {
			return
		}
	}
}

// lastOf returns the Seq of subject's newest message, or 0 when it has
// none.
func (s *Store) lastOf(ctx context.Context, subject string) (uint64, error) {
	m, err := s.current().GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	s.saw(m.Sequence)
	return m.Sequence, nil
}

// Newest implements sse.Store: the Seq of topic's newest event or, when
// the stream holds none of the topic, the stream's newest Seq (every event
// of the topic appended later is after it).
func (s *Store) Newest(ctx context.Context, topic string) (uint64, error) {
	last, err := s.lastOf(ctx, s.Subject(topic))
	if err != nil {
		return 0, fmt.Errorf("ssenats: Newest: %w", err)
	}
	if last != 0 {
		return last, nil
	}
	info, _, err := s.refresh(ctx, false)
	if err != nil {
		return 0, fmt.Errorf("ssenats: Newest: %w", err)
	}
	// The topic may have had its first event since it was asked: that
	// one would be at or below the stream's newest. Asked again now, after
	// the stream's newest was read, a topic still without events gets
	// every later one after that position.
	if last, err = s.lastOf(ctx, s.Subject(topic)); err != nil {
		return 0, fmt.Errorf("ssenats: Newest: %w", err)
	}
	if last != 0 {
		return last, nil
	}
	return info.State.LastSeq, nil
}

// After implements sse.Store. Each topic's events are read one by one
// (JetStream's direct get of the next message of a subject), so a call
// costs a round trip per topic and per event returned; events of several
// topics are merged by Seq, which orders all topics.
//
// Each event records the Seq of the topic's previous one, so a gap after a
// position is exact when the topic still holds events after it. When it
// holds none, or when the first one after the position was appended to a
// topic whose every event had expired, JetStream keeps nothing that tells
// whether events of the topic expired after the position: After answers
// sse.ErrEvicted unless the stream still holds the event at the position
// (of any topic), or nothing older than it; see the package documentation.
func (s *Store) After(ctx context.Context, topics []string, after []uint64, limit int) ([]sse.Entry, error) {
	if len(topics) != len(after) {
		return nil, fmt.Errorf("ssenats: After: %d topics and %d positions", len(topics), len(after))
	}
	if limit <= 0 {
		return nil, nil
	}
	var top uint64
	for _, a := range after {
		top = max(top, a)
	}
	var info *jetstream.StreamInfo // read at most once, when needed
	stateOf := func() (*jetstream.StreamInfo, error) {
		if info == nil {
			var err error
			if info, _, err = s.refresh(ctx, false); err != nil {
				return nil, err
			}
		}
		return info, nil
	}
	if top > s.known.Load() {
		in, err := stateOf()
		if err != nil {
			return nil, fmt.Errorf("ssenats: After: %w", err)
		}
		if top > in.State.LastSeq {
			return nil, sse.ErrUnknownID
		}
	}
	epoch := s.Epoch()
	heads := make([]*record, len(topics))
	for i, t := range topics {
		r, err := s.next(ctx, t, after[i])
		if err != nil {
			return nil, fmt.Errorf("ssenats: After: %w", err)
		}
		// Is anything missing between after[i] and r?
		switch {
		case r != nil && r.prev > after[i]:
			return nil, sse.ErrEvicted
		case r == nil || r.prev == 0:
			if r == nil {
				last, err := s.lastOf(ctx, s.Subject(t))
				if err != nil {
					return nil, fmt.Errorf("ssenats: After: %w", err)
				}
				if last != 0 {
					break // the topic's newest event survives: nothing after it expired
				}
			}
			ok, err := s.intact(ctx, after[i], stateOf)
			if err != nil {
				return nil, fmt.Errorf("ssenats: After: %w", err)
			}
			if !ok {
				return nil, sse.ErrEvicted
			}
		}
		heads[i] = r
	}
	var out []sse.Entry
	for len(out) < limit {
		best := -1
		for i, r := range heads {
			if r != nil && (best < 0 || r.seq < heads[best].seq) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		r := heads[best]
		out = append(out, r.entry(topics[best], epoch))
		if len(out) == limit {
			break
		}
		next, err := s.next(ctx, topics[best], r.seq)
		if err != nil {
			return nil, fmt.Errorf("ssenats: After: %w", err)
		}
		heads[best] = next
	}
	return out, nil
}

// intact reports whether the stream can have dropped no event after
// position x for its age (MaxAge) or its size (MaxBytes). Both drop the
// oldest events first, so none after x was dropped while the event at x
// is there, or while x is before the stream's oldest event. (A topic's
// limit, MaxEventsPerTopic, drops events from the middle of the stream,
// and never a topic's newest.)
func (s *Store) intact(ctx context.Context, x uint64, stateOf func() (*jetstream.StreamInfo, error)) (bool, error) {
	if x > 0 {
		_, err := s.current().GetMsg(ctx, x)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, err
		}
	}
	in, err := stateOf()
	if err != nil {
		return false, err
	}
	return x+1 >= in.State.FirstSeq, nil
}

// record is a stored event, decoded.
type record struct {
	seq  uint64
	prev uint64 // the Seq of the topic's previous event; 0 when it had none left
	t    time.Time
	ev   sse.Event
}

func (r *record) entry(topic, epoch string) sse.Entry {
	ev := r.ev
	ev.ID = epoch + "-" + strconv.FormatUint(r.seq, 10)
	return sse.Entry{Topic: topic, Seq: r.seq, Time: r.t, Event: ev}
}

// next returns topic's first event with a Seq greater than after, or nil.
func (s *Store) next(ctx context.Context, topic string, after uint64) (*record, error) {
	m, err := s.current().GetMsg(ctx, after+1, jetstream.WithGetMsgSubject(s.Subject(topic)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.saw(m.Sequence)
	r := &record{seq: m.Sequence, t: m.Time}
	if r.prev, r.ev, err = decodeEvent(m.Data); err != nil {
		return nil, fmt.Errorf("message %d of %s: %w", m.Sequence, m.Subject, err)
	}
	return r, nil
}

// Signal implements sse.Broadcaster: it publishes msg on <Prefix>.signal,
// which every Listen of a store with the same Prefix subscribes to.
func (s *Store) Signal(ctx context.Context, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.nc.Publish(s.signal, msg); err != nil {
		return fmt.Errorf("ssenats: Signal: %w", err)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
