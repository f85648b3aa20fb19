package sse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemoryStoreOptions configures NewMemoryStore. The zero value is ready to use.
type MemoryStoreOptions struct {
	// MaxEvents bounds how many events are kept, across all topics.
	// Default 4096.
	MaxEvents int

	// MaxAge drops events older than this. Default one hour.
	MaxAge time.Duration

	// Epoch names this store's lifetime inside every ID it issues, so IDs
	// from an earlier process or another store are recognised. Default: 8
	// random hex digits. Letters and digits only, at most 32.
	Epoch string
}

// MemoryStore is a Store that keeps the most recent events in a ring in
// memory. Its IDs look like "3f9a0c1e-42": the epoch, a hyphen and the
// decimal sequence number. Events do not survive the process; after a
// restart, clients that resume get the reset signal.
//
// The store keeps each event's wire form (see AppendEvent) and its own
// copy of the topic, never the memory Append was given. After decodes the
// events it returns from their wire form, so their data comes back with
// every line break as LF, as a client would read it.
type MemoryStore struct {
	epoch  string
	max    int
	maxAge time.Duration
	start  time.Time // record times are nanoseconds since start

	mu      sync.Mutex
	ring    []record // ring[(head+i)%len] for i < n, oldest first
	head    int
	n       int
	last    uint64 // Seq of the newest entry ever appended
	scratch []byte // where Append encodes, before the frame is copied out
}

// record is one event as the store keeps it.
type record struct {
	seq   uint64
	t     int64 // nanoseconds since the store's start, monotonic
	topic string
	frame []byte // the wire form; never modified
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts MemoryStoreOptions) (*MemoryStore, error) {
	if opts.MaxEvents < 0 {
		return nil, fmt.Errorf("sse: MemoryStoreOptions.MaxEvents is %d; it must be positive, or 0 for the default", opts.MaxEvents)
	}
	if opts.MaxAge < 0 {
		return nil, fmt.Errorf("sse: MemoryStoreOptions.MaxAge is %v; it must be positive, or 0 for the default", opts.MaxAge)
	}
	if opts.MaxEvents == 0 {
		opts.MaxEvents = 4096
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = time.Hour
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
		epoch:  opts.Epoch,
		max:    opts.MaxEvents,
		maxAge: opts.MaxAge,
		start:  time.Now(),
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
	t := s.clock()
	s.expire(t)
	s.last++
	ev.ID = s.ID(s.last)
	s.scratch = appendValid(s.scratch[:0], &ev)
	// The frame is the store's one copy of the event. append rounds its
	// capacity up to the allocation's size class, so cap counts what it
	// really takes.
	r := record{seq: s.last, t: t, topic: strings.Clone(topic), frame: append([]byte(nil), s.scratch...)}
	if cap(s.scratch) > 64<<10 {
		s.scratch = nil // do not hold on to a large event's buffer
	}
	switch {
	case s.n < len(s.ring):
		s.ring[(s.head+s.n)%len(s.ring)] = r
		s.n++
	case len(s.ring) < s.max:
		// Grow: unroll the ring into a larger slice, oldest first.
		grown := make([]record, 0, min(max(2*len(s.ring), 64), s.max))
		for i := 0; i < s.n; i++ {
			grown = append(grown, s.ring[(s.head+i)%len(s.ring)])
		}
		grown = append(grown, r)
		s.ring, s.head, s.n = grown[:cap(grown)], 0, len(grown)
	default:
		// Full: overwrite the oldest.
		s.ring[s.head] = r
		s.head = (s.head + 1) % len(s.ring)
	}
	return Entry{Topic: r.topic, Seq: r.seq, Time: s.start.Add(time.Duration(t)), Event: ev, frame: r.frame}, nil
}

// clock returns the time since the store's start, never less than the
// newest record's: record times follow Seq order. s.mu must be held.
func (s *MemoryStore) clock() int64 {
	t := int64(time.Since(s.start))
	if s.n > 0 {
		t = max(t, s.ring[(s.head+s.n-1)%len(s.ring)].t)
	}
	return t
}

// expire drops entries older than maxAge. s.mu must be held.
func (s *MemoryStore) expire(now int64) {
	cutoff := now - int64(s.maxAge)
	for s.n > 0 && s.ring[s.head].t < cutoff {
		s.ring[s.head] = record{}
		s.head = (s.head + 1) % len(s.ring)
		s.n--
	}
}

// After implements Store. The events it returns are decoded from the
// store's copies, with line breaks in Data as LF; they are the caller's.
func (s *MemoryStore) After(_ context.Context, after uint64, topics []string, limit int) ([]Entry, error) {
	var out []Entry
	err := s.each(after, topics, limit, func(r *record) {
		out = append(out, Entry{Topic: r.topic, Seq: r.seq, Time: s.start.Add(time.Duration(r.t)), Event: decodeFrame(r.frame)})
	})
	return out, err
}

// frames appends to dst the frames of what After would return, for the
// hub's replay, which sends them as they are.
func (s *MemoryStore) frames(dst []queued, after uint64, topics []string, limit int) ([]queued, error) {
	err := s.each(after, topics, limit, func(r *record) {
		dst = append(dst, queued{seq: r.seq, frame: r.frame})
	})
	return dst, err
}

// each calls f, under s.mu, for what After returns.
func (s *MemoryStore) each(after uint64, topics []string, limit int, f func(*record)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(s.clock())
	if after > s.last {
		return ErrUnknownID
	}
	oldest := s.last + 1 - uint64(s.n) // Seq of ring[head], or last+1 if empty
	if after+1 < oldest {
		return ErrEvicted
	}
	for i, k := int(after+1-oldest), 0; i < s.n && k < limit; i++ {
		r := &s.ring[(s.head+i)%len(s.ring)]
		if slices.Contains(topics, r.topic) {
			f(r)
			k++
		}
	}
	return nil
}

// Position implements Store.
func (s *MemoryStore) Position(ctx context.Context, id string) (uint64, error) {
	epoch, num, ok := strings.Cut(id, "-")
	if !ok || epoch != s.epoch || num == "" || num[0] == '+' || (num[0] == '0' && len(num) > 1) {
		return 0, ErrUnknownID
	}
	seq, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, ErrUnknownID
	}
	s.mu.Lock()
	last := s.last
	s.mu.Unlock()
	if seq > last {
		return 0, ErrUnknownID
	}
	return seq, nil
}

// ID implements Store.
func (s *MemoryStore) ID(seq uint64) string {
	return s.epoch + "-" + strconv.FormatUint(seq, 10)
}
