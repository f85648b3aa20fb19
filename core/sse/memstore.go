package sse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemoryStoreOptions configures NewMemoryStore. The zero value is ready to
// use; every default is given beside its field. Negative values are an
// error.
//
// The defaults suit a notification feed: a topic per user (tens of
// thousands of them, each quiet), a few loud broadcast topics, and a
// thousand events a second in all. MaxEventsPerTopic keeps the loud topics
// from pushing the quiet ones' history out, MaxAge bounds how far back a
// client can resume, and MaxBytes bounds the memory of it all.
type MemoryStoreOptions struct {
	// MaxEventsPerTopic bounds the events each topic keeps: appending to a
	// topic that holds this many drops that topic's oldest. Default 1000:
	// a broadcast topic at one event a second keeps about 16 minutes, a
	// user's feed rarely fills it, and one topic takes at most about
	// 0.4% of the default MaxBytes (with events of about 200 bytes), so
	// a few loud topics cannot crowd the others out.
	MaxEventsPerTopic int

	// MaxAge drops events older than this, in every topic. Default one
	// hour: a laptop closed over lunch, a train journey, a deploy.
	MaxAge time.Duration

	// MaxBytes bounds the memory of the whole store. When it is reached,
	// the oldest events of all topics are dropped first. It counts every
	// kept event's frame (its wire form: the data, the ID and the field
	// names, some 30 bytes more than the data) plus 40 to 80 bytes of
	// bookkeeping, and every topic the store knows, including one whose
	// events are all gone (see MemoryStore), as its name plus 160 bytes.
	// An event larger than MaxBytes is delivered but not kept. Default 64
	// MiB: about 250 000 events of 200 bytes, some four minutes of a
	// thousand events a second in all, before MaxAge applies. Raise it to
	// keep more: MaxBytes ≈ events per second × seconds to keep × (frame
	// size + 60).
	MaxBytes int

	// MaxEvents, when set, also bounds how many events are kept across
	// all topics together, like sseredis.Options.MaxEvents: when it is
	// reached, the oldest events of all topics are dropped first. Default:
	// no bound but MaxBytes.
	MaxEvents int

	// Epoch names this store's lifetime inside every ID it issues, so IDs
	// from an earlier process or another store are recognised. Default: 8
	// random hex digits. Letters and digits only, at most 32.
	Epoch string
}

// Defaults of MemoryStoreOptions.
const (
	defaultMaxEventsPerTopic = 1000
	defaultMaxAge            = time.Hour
	defaultMaxBytes          = 64 << 20
)

// MemoryStore is a Store that keeps recent events in memory, for each
// topic its newest ones (MemoryStoreOptions). Its IDs look like
// "3f9a0c1e-42": the epoch, a hyphen and the decimal sequence number, one
// sequence across all topics. Events do not survive the process; after a
// restart, clients that resume get the reset signal.
//
// The store keeps each event's wire form (see AppendEvent) and its own
// copy of the topic, never the memory Append was given. After decodes the
// events it returns from their wire form, so their data comes back with
// every line break as LF, as a client would read it.
//
// After answers ErrEvicted only when events of the topics asked for were
// dropped after the given position: each topic remembers the newest event
// it lost. A topic whose events are all gone is remembered too, until
// MaxBytes makes room (its oldest first); the store then keeps only the
// newest Seq that any forgotten topic lost, and a resume on a topic it
// does not know from before that Seq gets ErrEvicted, never a silent gap.
//
// A resume costs time in proportion to the events it returns, plus the
// logarithm of the topics' history: each topic's history is in Seq order,
// searched by bisection and merged by a small heap. Appending costs
// constant time plus the logarithm of the number of topics.
type MemoryStore struct {
	epoch     string
	perTopic  int
	maxAge    int64 // nanoseconds
	maxBytes  int64
	maxEvents int // 0: none
	start     time.Time
	now       func() time.Time // time.Now; tests set it

	mu        sync.Mutex
	topics    map[string]*topicLog // every topic known, with events or not
	peak      int                  // the map's largest size since it was made
	live      []heapSlot           // the topics with events: a min-heap by oldest Seq
	tombs     tombList             // the topics without: the least recent loss first
	forgotten uint64               // the newest Seq any forgotten topic lost
	events    int                  // events kept
	bytes     int64                // memory counted against maxBytes
	last      uint64               // Seq of the newest event ever appended
	lastT     int64                // time of the newest event
	scratch   []byte               // where Append encodes, before the frame is copied out
}

// topicLog is one topic's history.
type topicLog struct {
	name    string
	recs    []record // a ring: recs[(head+i)%len(recs)] for i < n, oldest first
	head    int32
	n       int32
	heapIdx int32  // index in MemoryStore.live, or -1
	dropped uint64 // the newest Seq the topic lost (or may have: see newTopic)

	prev, next *topicLog // neighbours in MemoryStore.tombs while n == 0
}

// record is one event as the store keeps it.
type record struct {
	seq   uint64
	t     int64  // nanoseconds since the store's start, monotonic
	frame []byte // the wire form; never modified
}

// What MaxBytes counts besides frames. A record is one slot of a topic's
// ring, which grows by doubling. A topic takes its topicLog (80 bytes), a
// slot in the live heap (16 bytes, up to 32 with the heap's spare room) and
// a place in the topics map (a 24-byte slot in a map at most 7/8 full,
// which doubles: 28 to 57 bytes, and about 71 once topics have come and
// gone for a while, as measured), besides its name. The map does not
// shrink when topics are deleted, so its places are counted up to its
// largest size, until it is rebuilt (see forget). BenchmarkMemoryStoreMemory
// measures what these counts stand for.
const (
	recordBytes   = 40 // the size of a record on 64-bit systems (a test checks it)
	topicBytes    = 112
	mapPlaceBytes = 72 // measured: a map of string keys settles there after churn
)

// ringBytes is what a ring of n records occupies: the allocator gives a
// one-record ring 48 bytes.
func ringBytes(n int) int64 {
	if n == 0 {
		return 0
	}
	return max(48, recordBytes*int64(n))
}

// nameBytes is what a topic's name occupies: the allocator rounds small
// strings up to 16 bytes.
func nameBytes(name string) int64 { return int64(len(name)+15) &^ 15 }

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts MemoryStoreOptions) (*MemoryStore, error) {
	ints := []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxEventsPerTopic", &opts.MaxEventsPerTopic, defaultMaxEventsPerTopic},
		{"MaxBytes", &opts.MaxBytes, defaultMaxBytes},
		{"MaxEvents", &opts.MaxEvents, 0},
	}
	for _, n := range ints {
		if *n.v < 0 {
			return nil, fmt.Errorf("sse: MemoryStoreOptions.%s is %d; it must be positive, or 0 for the default", n.name, *n.v)
		}
		if *n.v == 0 {
			*n.v = n.def
		}
	}
	if opts.MaxEventsPerTopic > math.MaxInt32 {
		return nil, fmt.Errorf("sse: MemoryStoreOptions.MaxEventsPerTopic is %d; it must be at most %d", opts.MaxEventsPerTopic, math.MaxInt32)
	}
	if opts.MaxAge < 0 {
		return nil, fmt.Errorf("sse: MemoryStoreOptions.MaxAge is %v; it must be positive, or 0 for the default", opts.MaxAge)
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = defaultMaxAge
	}
	if opts.Epoch == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		opts.Epoch = hex.EncodeToString(b[:])
	}
	if !validEpoch(opts.Epoch) {
		return nil, fmt.Errorf("sse: MemoryStoreOptions.Epoch %q must be 1 to 32 ASCII letters or digits", opts.Epoch)
	}
	return &MemoryStore{
		epoch:     opts.Epoch,
		perTopic:  opts.MaxEventsPerTopic,
		maxAge:    int64(opts.MaxAge),
		maxBytes:  int64(opts.MaxBytes),
		maxEvents: opts.MaxEvents,
		start:     time.Now(),
		now:       time.Now,
		topics:    make(map[string]*topicLog),
	}, nil
}

func validEpoch(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// Append implements Store. The store replaces ev.ID (and the EmptyID
// flag) with the ID it assigns. An event that cannot be encoded (see
// Event) is an error that matches ErrInvalidEvent, and nothing is
// recorded. The store keeps copies, never ev.Data or topic themselves;
// the returned Entry's Event is ev with its ID set.
func (s *MemoryStore) Append(_ context.Context, topic string, ev Event) (Entry, error) {
	ev.ID = ""
	ev.Flags &^= EmptyID
	if err := ev.Validate(); err != nil {
		return Entry{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	s.expire(now)
	t := s.topics[topic]
	switch {
	case t == nil:
		t = s.newTopic(topic)
	case t.n == 0:
		s.tombs.remove(t)
	}
	s.last++
	s.lastT = now
	ev.ID = s.id(s.last)
	s.scratch = appendValid(s.scratch[:0], &ev)
	// The frame is the store's one copy of the event. append rounds its
	// capacity up to the allocation's size class, so cap counts what it
	// really takes.
	frame := append([]byte(nil), s.scratch...)
	if cap(s.scratch) > 64<<10 {
		s.scratch = nil // do not hold on to a large event's buffer
	}
	s.push(t, record{seq: s.last, t: now, frame: frame})
	s.trim()
	return Entry{Topic: t.name, Seq: s.last, Time: s.start.Add(time.Duration(now)), Event: ev, frame: frame}, nil
}

// clock returns the time since the store's start, never less than the
// newest event's: times follow Seq order. s.mu must be held.
func (s *MemoryStore) clock() int64 {
	return max(int64(s.now().Sub(s.start)), s.lastT)
}

// newTopic adds a topic the store does not know. It may have been
// forgotten, having lost events up to s.forgotten: so it counts as having
// lost them. s.mu must be held.
func (s *MemoryStore) newTopic(name string) *topicLog {
	t := &topicLog{name: strings.Clone(name), heapIdx: -1, dropped: s.forgotten}
	s.topics[t.name] = t
	s.bytes += topicBytes + nameBytes(t.name)
	if len(s.topics) > s.peak {
		s.bytes += mapPlaceBytes * int64(len(s.topics)-s.peak)
		s.peak = len(s.topics)
	}
	return t
}

// push appends r to t, dropping t's oldest event when t is full. s.mu must
// be held.
func (s *MemoryStore) push(t *topicLog, r record) {
	full := int(t.n) == s.perTopic
	switch {
	case full:
		s.dropOldest(t)
	case int(t.n) == len(t.recs):
		s.resize(t, min(max(2*len(t.recs), 1), s.perTopic))
	}
	*t.at(int(t.n)) = r
	t.n++
	s.events++
	s.bytes += int64(cap(r.frame))
	switch {
	case t.heapIdx < 0:
		s.heapPush(t)
	case full: // its oldest Seq went up
		s.live[t.heapIdx].oldest = t.oldest()
		s.heapDown(int(t.heapIdx))
	}
}

// at returns the i-th oldest record of t.
func (t *topicLog) at(i int) *record {
	j := int(t.head) + i
	if j >= len(t.recs) {
		j -= len(t.recs)
	}
	return &t.recs[j]
}

// oldest returns the Seq of t's oldest record; t must have one.
func (t *topicLog) oldest() uint64 { return t.recs[t.head].seq }

// search returns the index of t's oldest record with Seq greater than
// after, or t.n if there is none.
func (t *topicLog) search(after uint64) int {
	lo, hi := 0, int(t.n)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.at(m).seq <= after {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// resize moves t's records into a ring of at least size slots (size >=
// t.n), oldest first. The ring takes the whole allocation, which append
// rounds up to its size class, unless that is more than a topic may hold.
func (s *MemoryStore) resize(t *topicLog, size int) {
	recs := slices.Grow([]record(nil), size)
	recs = recs[:min(cap(recs), s.perTopic)]
	if end := int(t.head) + int(t.n); end <= len(t.recs) {
		copy(recs, t.recs[t.head:end])
	} else {
		k := copy(recs, t.recs[t.head:])
		copy(recs[k:], t.recs[:int(t.n)-k])
	}
	s.bytes += ringBytes(cap(recs)) - ringBytes(cap(t.recs))
	t.recs, t.head = recs, 0
}

// dropOldest drops t's oldest record, which t must have. It leaves t's
// place in the heap to the caller. s.mu must be held.
func (s *MemoryStore) dropOldest(t *topicLog) {
	r := &t.recs[t.head]
	t.dropped = r.seq
	s.events--
	s.bytes -= int64(cap(r.frame))
	*r = record{}
	t.head++
	if int(t.head) == len(t.recs) {
		t.head = 0
	}
	t.n--
}

// evictOldest drops the oldest event of all topics. A topic left without
// events gives its ring back and becomes a tombstone. s.mu must be held,
// and some topic must have an event.
func (s *MemoryStore) evictOldest() {
	t := s.live[0].t
	s.dropOldest(t)
	switch {
	case t.n == 0:
		s.heapRemoveRoot()
		s.bytes -= ringBytes(cap(t.recs))
		t.recs, t.head = nil, 0
		s.tombs.pushBack(t)
	default:
		if len(t.recs) >= 16 && int(t.n) <= len(t.recs)/4 {
			s.resize(t, len(t.recs)/2) // a loud topic gone quiet
		}
		s.live[0].oldest = t.oldest()
		s.heapDown(0)
	}
}

// forget drops a tombstone, the topic whose last event is the least
// recent to be lost: from then on the store knows only that a forgotten
// topic lost events up to s.forgotten. s.mu must be held.
func (s *MemoryStore) forget(t *topicLog) {
	s.tombs.remove(t)
	delete(s.topics, t.name)
	s.forgotten = max(s.forgotten, t.dropped)
	s.bytes -= topicBytes + nameBytes(t.name)
	if s.peak >= 1024 && len(s.topics) <= s.peak/2 {
		// The map keeps its room for the largest number of topics it
		// held: rebuild it when half of that is gone.
		m := make(map[string]*topicLog, len(s.topics))
		for name, t := range s.topics {
			m[name] = t
		}
		s.topics = m
		s.bytes -= mapPlaceBytes * int64(s.peak-len(s.topics))
		s.peak = len(s.topics)
	}
}

// trim drops events and tombstones, oldest first, until the store is
// within its bounds. Tombstones go first: each holds a loss older than
// every event kept. s.mu must be held.
func (s *MemoryStore) trim() {
	for s.maxEvents > 0 && s.events > s.maxEvents {
		s.evictOldest()
	}
	for s.bytes > s.maxBytes {
		switch {
		case s.tombs.head != nil:
			s.forget(s.tombs.head)
		case len(s.live) > 0:
			s.evictOldest()
		default:
			return
		}
	}
}

// expire drops events older than maxAge: the oldest of all are at the
// heap's root. s.mu must be held.
func (s *MemoryStore) expire(now int64) {
	cutoff := now - s.maxAge
	for len(s.live) > 0 && s.live[0].t.recs[s.live[0].t.head].t < cutoff {
		s.evictOldest()
	}
}

// The heap of topics with events, by the Seq of their oldest event. A
// slot holds that Seq, so that sifting reads no topic.

// heapSlot is a topic's place in the heap.
type heapSlot struct {
	oldest uint64 // the Seq of t's oldest event
	t      *topicLog
}

func (s *MemoryStore) heapSwap(i, j int) {
	h := s.live
	h[i], h[j] = h[j], h[i]
	h[i].t.heapIdx, h[j].t.heapIdx = int32(i), int32(j)
}

func (s *MemoryStore) heapPush(t *topicLog) {
	t.heapIdx = int32(len(s.live))
	s.live = append(s.live, heapSlot{t.oldest(), t})
	for i := len(s.live) - 1; i > 0; {
		p := (i - 1) / 2
		if s.live[p].oldest <= s.live[i].oldest {
			break
		}
		s.heapSwap(i, p)
		i = p
	}
}

func (s *MemoryStore) heapDown(i int) {
	h := s.live
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].oldest < h[l].oldest {
			m = r
		}
		if h[i].oldest <= h[m].oldest {
			return
		}
		s.heapSwap(i, m)
		i = m
	}
}

func (s *MemoryStore) heapRemoveRoot() {
	last := len(s.live) - 1
	s.heapSwap(0, last)
	s.live[last].t.heapIdx = -1
	s.live[last] = heapSlot{}
	s.live = s.live[:last]
	s.heapDown(0)
}

// tombList is a list of the topics without events, in the order they lost
// their last event, which is Seq order: only the eviction of the oldest
// event of all leaves a topic empty.
type tombList struct{ head, tail *topicLog }

func (l *tombList) pushBack(t *topicLog) {
	t.prev, t.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = t
	} else {
		l.head = t
	}
	l.tail = t
}

func (l *tombList) remove(t *topicLog) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		l.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		l.tail = t.prev
	}
	t.prev, t.next = nil, nil
}

// After implements Store. The events it returns are decoded from the
// store's copies, with line breaks in Data as LF; they are the caller's.
// It returns ErrEvicted when an event of one of topics after its position
// was dropped, or may have been (see MemoryStore). Entries come in Seq
// order, the store's one order across topics.
func (s *MemoryStore) After(_ context.Context, topics []string, after []uint64, limit int) ([]Entry, error) {
	type found struct {
		topic string
		r     record
	}
	var room [64]found
	list, size := room[:0], 0
	err := s.each(topics, after, limit, func(t *topicLog, r *record) {
		list = append(list, found{t.name, *r})
		size += len(r.frame)
	})
	if len(list) == 0 {
		return nil, err
	}
	// Decoding needs no lock: frames are never modified. The events'
	// strings share one copy of the frames, their data another.
	var text strings.Builder
	text.Grow(size)
	for _, f := range list {
		text.Write(f.r.frame)
	}
	frames, data := text.String(), make([]byte, 0, size)
	out := make([]Entry, len(list))
	for i, f := range list {
		n := len(f.r.frame)
		out[i] = Entry{Topic: f.topic, Seq: f.r.seq, Time: s.start.Add(time.Duration(f.r.t))}
		out[i].Event, data = decodeFrame(frames[:n], data)
		frames = frames[n:]
	}
	return out, nil
}

// frames appends to dst the frames of what After would return, for the
// hub's replay, which sends them as they are.
func (s *MemoryStore) frames(dst []pageFrame, topics []string, after []uint64, limit int) ([]pageFrame, error) {
	err := s.each(topics, after, limit, func(t *topicLog, r *record) {
		dst = append(dst, pageFrame{topic: t.name, seq: r.seq, b: r.frame})
	})
	return dst, err
}

// cursor is a place in a topic's history, during a merge.
type cursor struct {
	t   *topicLog
	i   int    // index of the next record
	seq uint64 // its Seq
}

// each calls f, under s.mu and in Seq order, for what After returns.
func (s *MemoryStore) each(topics []string, after []uint64, limit int, f func(*topicLog, *record)) error {
	if len(after) != len(topics) {
		return fmt.Errorf("sse: MemoryStore.After: %d positions for %d topics", len(after), len(topics))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(s.clock())
	var room [32]cursor // Options.MaxTopics by default
	cs := room[:0]
	for i, name := range topics {
		pos := after[i]
		if pos > s.last {
			return ErrUnknownID
		}
		t := s.topics[name]
		if t == nil {
			if pos < s.forgotten {
				return ErrEvicted
			}
			continue
		}
		if pos < t.dropped {
			return ErrEvicted
		}
		if i := t.search(pos); i < int(t.n) {
			cs = append(cs, cursor{t: t, i: i, seq: t.at(i).seq})
		}
	}
	if len(cs) == 1 {
		c := cs[0]
		for k := c.i; k < int(c.t.n) && k-c.i < limit; k++ {
			f(c.t, c.t.at(k))
		}
		return nil
	}
	// Merge by Seq. A topic named twice has two cursors with the same
	// Seqs: each Seq is sent once.
	for i := len(cs)/2 - 1; i >= 0; i-- {
		cursorDown(cs, i)
	}
	var sent uint64
	for n := 0; n < limit && len(cs) > 0; {
		c := &cs[0]
		if c.seq > sent {
			f(c.t, c.t.at(c.i))
			sent = c.seq
			n++
		}
		if c.i++; c.i < int(c.t.n) {
			c.seq = c.t.at(c.i).seq
		} else {
			cs[0] = cs[len(cs)-1]
			cs = cs[:len(cs)-1]
		}
		cursorDown(cs, 0)
	}
	return nil
}

// cursorDown restores the heap order of cs, by Seq, below i.
func cursorDown(cs []cursor, i int) {
	for {
		l := 2*i + 1
		if l >= len(cs) {
			return
		}
		m := l
		if r := l + 1; r < len(cs) && cs[r].seq < cs[l].seq {
			m = r
		}
		if cs[i].seq <= cs[m].seq {
			return
		}
		cs[i], cs[m] = cs[m], cs[i]
		i = m
	}
}

// Newest implements Store. The store numbers all topics in one sequence:
// its newest Seq is a place in every topic's history.
func (s *MemoryStore) Newest(context.Context, string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, nil
}

// Epoch implements Store.
func (s *MemoryStore) Epoch() string { return s.epoch }

// Ordered marks the MemoryStore as an OrderedStore: it numbers all topics
// in one sequence.
func (s *MemoryStore) Ordered() {}

// id returns the ID of seq, as the hub names a place of one Seq.
func (s *MemoryStore) id(seq uint64) string {
	var b [32 + 1 + 20]byte // the longest epoch, "-", the longest Seq
	return string(strconv.AppendUint(append(append(b[:0], s.epoch...), '-'), seq, 10))
}
