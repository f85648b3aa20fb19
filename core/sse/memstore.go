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
type MemoryStore struct {
	epoch  string
	max    int
	maxAge time.Duration
	now    func() time.Time

	mu   sync.Mutex
	ring []Entry // ring[(head+i)%len] for i < n, oldest first
	head int
	n    int
	last uint64 // Seq of the newest entry ever appended
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
		now:    time.Now,
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

// Append implements Store.
func (s *MemoryStore) Append(_ context.Context, topic string, ev Event) (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expire(now)
	s.last++
	ev.ID = s.ID(s.last)
	e := Entry{Topic: topic, Seq: s.last, Time: now, Event: ev}
	switch {
	case s.n < len(s.ring):
		s.ring[(s.head+s.n)%len(s.ring)] = e
		s.n++
	case len(s.ring) < s.max:
		// Grow: unroll the ring into a larger slice, oldest first.
		grown := make([]Entry, 0, min(max(2*len(s.ring), 64), s.max))
		for i := 0; i < s.n; i++ {
			grown = append(grown, s.ring[(s.head+i)%len(s.ring)])
		}
		grown = append(grown, e)
		s.ring, s.head, s.n = grown[:cap(grown)], 0, len(grown)
	default:
		// Full: overwrite the oldest.
		s.ring[s.head] = e
		s.head = (s.head + 1) % len(s.ring)
	}
	return e, nil
}

// expire drops entries older than maxAge. s.mu must be held.
func (s *MemoryStore) expire(now time.Time) {
	cutoff := now.Add(-s.maxAge)
	for s.n > 0 && s.ring[s.head].Time.Before(cutoff) {
		s.ring[s.head] = Entry{}
		s.head = (s.head + 1) % len(s.ring)
		s.n--
	}
}

// After implements Store.
func (s *MemoryStore) After(_ context.Context, after uint64, topics []string, limit int) ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(s.now())
	if after > s.last {
		return nil, ErrUnknownID
	}
	oldest := s.last + 1 - uint64(s.n) // Seq of ring[head], or last+1 if empty
	if after+1 < oldest {
		return nil, ErrEvicted
	}
	var out []Entry
	for i := int(after + 1 - oldest); i < s.n && len(out) < limit; i++ {
		e := &s.ring[(s.head+i)%len(s.ring)]
		if slices.Contains(topics, e.Topic) {
			out = append(out, *e)
		}
	}
	return out, nil
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
