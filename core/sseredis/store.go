// Package sseredis is an sse.Store on Redis that also broadcasts: hubs in
// several processes that share it deliver every event to their clients in
// the same order, and any of them can resume any client.
//
//	store, err := sseredis.New(ctx, sseredis.Options{Client: redis.NewClient(&redis.Options{Addr: "redis:6379"})})
//	...
//	hub, err := sse.NewHub(sse.Options{Store: store})
//
// Every event is appended to one Redis Stream (one order for all topics)
// and published on one channel by a single Lua script, so history and live
// delivery agree on every node. Each process holds one subscription per
// Store, whatever its number of clients. See docs/scaling.md for what is
// guaranteed and how to size it.
package sseredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/ssekit/core/sse"
)

// Options configures New.
type Options struct {
	// Client is the Redis connection. Required. A *redis.ClusterClient
	// needs a Prefix with a hash tag, such as "{ssekit}", so that the keys
	// share a slot.
	Client redis.UniversalClient

	// Prefix namespaces the keys <Prefix>:stream, <Prefix>:seq,
	// <Prefix>:epoch and <Prefix>:floor, and the channel <Prefix>:events.
	// Processes that serve the same events use the same Prefix. Default
	// "ssekit".
	Prefix string

	// MaxEvents bounds the history, across all topics. Default 10000.
	MaxEvents int

	// MaxAge drops events older than this from the history (Redis's clock
	// decides). Default one hour.
	MaxAge time.Duration

	// Logger receives the store's logs. Default slog.Default().
	Logger *slog.Logger
}

const (
	defaultPrefix    = "ssekit"
	defaultMaxEvents = 10000
	defaultMaxAge    = time.Hour
)

// Store is an sse.Broadcaster on Redis. Create it with New; it is safe for
// concurrent use, and several hubs may share one.
//
// Its IDs look like "5f0c2a9e81d4-42": the epoch, which names the present
// lifetime of the Redis keys, and the Seq. When the keys are lost (a flush,
// a restart without persistence), a new epoch begins and clients holding
// IDs of the old one get the hub's reset event.
type Store struct {
	client    redis.UniversalClient
	log       *slog.Logger
	maxEvents int
	maxAgeMs  int64
	keys      []string // stream, seq, epoch, floor
	channel   string

	epoch atomic.Pointer[string] // the present epoch, as last seen
	known atomic.Uint64          // the highest Seq seen

	mu  sync.Mutex
	sub *subscription // while Listen runs

	stateMu sync.Mutex
	state   *stateRead // the latest read of the epoch and newest Seq
}

var _ sse.Broadcaster = (*Store)(nil)

// New returns a Store on opts.Client. It checks that Redis answers, and
// reads (or, on first use, creates) the epoch.
func New(ctx context.Context, opts Options) (*Store, error) {
	if opts.Client == nil {
		return nil, errors.New("sseredis: Options.Client is nil; pass a *redis.Client or another redis.UniversalClient")
	}
	if opts.MaxEvents < 0 {
		return nil, fmt.Errorf("sseredis: Options.MaxEvents is %d; it must be positive, or 0 for the default", opts.MaxEvents)
	}
	if opts.MaxAge < 0 || (opts.MaxAge > 0 && opts.MaxAge < time.Millisecond) {
		return nil, fmt.Errorf("sseredis: Options.MaxAge is %v; it must be at least 1ms, or 0 for the default", opts.MaxAge)
	}
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	if _, ok := opts.Client.(*redis.ClusterClient); ok && !hasHashTag(opts.Prefix) {
		return nil, fmt.Errorf("sseredis: Options.Prefix %q has no hash tag; with a ClusterClient use one such as \"{%s}\", so that the store's keys share a slot", opts.Prefix, opts.Prefix)
	}
	if opts.MaxEvents == 0 {
		opts.MaxEvents = defaultMaxEvents
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = defaultMaxAge
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Store{
		client:    opts.Client,
		log:       opts.Logger,
		maxEvents: opts.MaxEvents,
		maxAgeMs:  max(opts.MaxAge.Milliseconds(), 1),
		keys:      []string{opts.Prefix + ":stream", opts.Prefix + ":seq", opts.Prefix + ":epoch", opts.Prefix + ":floor"},
		channel:   opts.Prefix + ":events",
	}
	if err := s.client.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("sseredis: New: Redis is not reachable: %w", err)
	}
	if _, err := s.Newest(ctx); err != nil {
		return nil, fmt.Errorf("sseredis: New: %w", err)
	}
	return s, nil
}

// hasHashTag reports whether Redis Cluster hashes key by a {tag} in it.
func hasHashTag(key string) bool {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return false
	}
	end := strings.IndexByte(key[open+1:], '}')
	return end > 0
}

// freshEpoch returns a random epoch, for a lifetime that may begin now.
func freshEpoch() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// seen records that seq exists in epoch.
func (s *Store) seen(epoch string, seq uint64) {
	s.setEpoch(epoch)
	for {
		k := s.known.Load()
		if seq <= k || s.known.CompareAndSwap(k, seq) {
			return
		}
	}
}

// setEpoch records that epoch is the present one.
func (s *Store) setEpoch(epoch string) {
	if p := s.epoch.Load(); p == nil || *p != epoch {
		s.epoch.Store(&epoch)
	}
}

func (s *Store) currentEpoch() string {
	if p := s.epoch.Load(); p != nil {
		return *p
	}
	return ""
}

// Append implements sse.Store. It records ev and publishes it to every
// process's Listen in one step. An error means Redis did not confirm the
// append: it may not have happened, or (when the connection broke after
// Redis ran the script) it may have.
func (s *Store) Append(ctx context.Context, topic string, ev sse.Event) (sse.Entry, error) {
	retry := ""
	if ev.Retry != 0 {
		retry = strconv.FormatInt(int64(ev.Retry), 10)
	}
	res, err := appendScript.Run(ctx, s.client, s.keys,
		s.channel, freshEpoch(), s.known.Load(), s.maxEvents, s.maxAgeMs,
		topic, ev.Type, ev.Data, retry, ev.Comment).Slice()
	if err != nil {
		return sse.Entry{}, fmt.Errorf("sseredis: append: %w", err)
	}
	epoch, seq, ts, err := parseAppendReply(res)
	if err != nil {
		return sse.Entry{}, fmt.Errorf("sseredis: append: %w", err)
	}
	s.seen(epoch, seq)
	ev.ID = epoch + "-" + strconv.FormatUint(seq, 10)
	return sse.Entry{Topic: topic, Seq: seq, Time: time.UnixMilli(ts), Event: ev}, nil
}

func parseAppendReply(res []any) (epoch string, seq uint64, ts int64, err error) {
	if len(res) != 3 {
		return "", 0, 0, fmt.Errorf("unexpected reply %v", res)
	}
	epoch, _ = res[0].(string)
	seqText, _ := res[1].(string)
	tsText, _ := res[2].(string)
	seq, err1 := strconv.ParseUint(seqText, 10, 64)
	ts, err2 := strconv.ParseInt(tsText, 10, 64)
	if epoch == "" || err1 != nil || err2 != nil {
		return "", 0, 0, fmt.Errorf("unexpected reply %v", res)
	}
	return epoch, seq, ts, nil
}

// Newest implements sse.Broadcaster.
func (s *Store) Newest(ctx context.Context) (uint64, error) {
	_, seq, err := s.readState(ctx)
	return seq, err
}

// readState reads the present epoch and the newest Seq. It begins a
// lifetime when the keys are missing, and a new one above the highest Seq
// this process has seen when the sequence is below it (see stateScript).
func (s *Store) readState(ctx context.Context) (epoch string, seq uint64, err error) {
	floor := s.known.Load()
	res, err := stateScript.Run(ctx, s.client, s.keys, freshEpoch(), floor).Slice()
	if err != nil {
		return "", 0, fmt.Errorf("sseredis: reading the newest Seq: %w", err)
	}
	if len(res) != 2 && len(res) != 4 {
		return "", 0, fmt.Errorf("sseredis: reading the newest Seq: unexpected reply %v", res)
	}
	epoch, _ = res[0].(string)
	seqText, _ := res[1].(string)
	seq, err = strconv.ParseUint(seqText, 10, 64)
	if epoch == "" || err != nil {
		return "", 0, fmt.Errorf("sseredis: reading the newest Seq: unexpected reply %v", res)
	}
	if len(res) == 4 {
		s.log.Error("sseredis: Redis lost writes this process had seen; beginning a new history above them (IDs given out before become unknown: their clients get the reset event)",
			"epoch", res[2], "seq", res[3], "position", floor)
	}
	s.seen(epoch, seq)
	return epoch, seq, nil
}

// ID implements sse.Store.
func (s *Store) ID(seq uint64) string {
	return s.currentEpoch() + "-" + strconv.FormatUint(seq, 10)
}

// maxSeq is the largest Seq an ID can name. Redis's scripts count in Lua
// numbers, exact up to 2^53; at a million events a second the sequence
// would take 285 years to get there. An ID beyond it is unknown without
// asking Redis.
const maxSeq = 1 << 53

// Position implements sse.Store. It parses id without asking Redis, unless
// id names an epoch other than the one last seen (the keys may have begun
// a new lifetime) or a Seq beyond the newest this process has seen
// (another process may be ahead). Then it reads the epoch and the newest
// Seq, sharing the read with concurrent calls, and reading at most every
// few milliseconds however many such IDs come (see fresh). It waits for
// Redis until ctx is done, or for at most two seconds when ctx has no
// deadline; an error other than sse.ErrUnknownID means the ID could not
// be checked.
func (s *Store) Position(ctx context.Context, id string) (uint64, error) {
	epoch, num, ok := strings.Cut(id, "-")
	if !ok || !validEpoch(epoch) || num == "" || num[0] == '+' || (num[0] == '0' && len(num) > 1) {
		return 0, sse.ErrUnknownID
	}
	seq, err := strconv.ParseUint(num, 10, 64)
	if err != nil || seq > maxSeq {
		return 0, sse.ErrUnknownID
	}
	if epoch == s.currentEpoch() && seq <= s.known.Load() {
		return seq, nil
	}
	present, newest, err := s.fresh(ctx)
	if err != nil {
		return 0, fmt.Errorf("sseredis: checking an event ID: %w", err)
	}
	if epoch != present || seq > newest {
		return 0, sse.ErrUnknownID
	}
	return seq, nil
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

// readBudget is how many entries one call of the read script scans at
// most, which bounds the time Redis spends in it.
const readBudget = 1024

// After implements sse.Store. Redis filters the topics, in pages, so that
// only the entries asked for travel.
func (s *Store) After(ctx context.Context, after uint64, topics []string, limit int) ([]sse.Entry, error) {
	if len(topics) == 0 || limit < 0 {
		limit = 0
	}
	args := make([]any, 4, 4+len(topics))
	for _, t := range topics {
		args = append(args, t)
	}
	var out []sse.Entry
	cursor, epoch := after, ""
	for {
		args[0], args[1], args[2], args[3] = cursor, limit-len(out), readBudget, s.maxAgeMs
		res, err := readScript.Run(ctx, s.client, s.keys, args...).Slice()
		if err != nil {
			return nil, fmt.Errorf("sseredis: reading the history: %w", err)
		}
		status, _ := res[0].(string)
		pageEpoch, _ := res[1].(string)
		if epoch == "" {
			epoch = pageEpoch
			// The position was read in the epoch last seen; if Redis has
			// begun another lifetime since, or lost the keys, it names
			// nothing there. The hub answers with the reset event, whose
			// ID must name a position in the present lifetime: learn it,
			// or begin it when the keys are missing.
			if cur := s.currentEpoch(); pageEpoch != cur {
				if pageEpoch != "" {
					s.setEpoch(pageEpoch)
				}
				_, _, _ = s.fresh(ctx)
				return nil, sse.ErrUnknownID
			}
		} else if pageEpoch != epoch {
			return nil, sse.ErrUnknownID
		}
		switch status {
		case "unknown":
			if cursor <= s.known.Load() {
				// Redis holds less than this process has seen: it lost
				// writes, and the hub would name the reset's position in
				// a sequence that no longer reaches it. fresh begins a
				// lifetime above it.
				_, _, _ = s.fresh(ctx)
			}
			return nil, sse.ErrUnknownID
		case "evicted":
			return nil, sse.ErrEvicted
		case "ok":
		default:
			return nil, fmt.Errorf("sseredis: reading the history: unexpected reply %v", res)
		}
		if len(res) < 4 {
			return nil, fmt.Errorf("sseredis: reading the history: unexpected reply %v", res)
		}
		more, _ := res[2].(string)
		next, ok := seqOfID(res[3])
		if !ok {
			return nil, fmt.Errorf("sseredis: reading the history: unexpected cursor %v", res[3])
		}
		for i := 4; i+1 < len(res); i += 2 {
			seq, ok := seqOfID(res[i])
			fields, _ := res[i+1].([]any)
			if !ok {
				return nil, fmt.Errorf("sseredis: reading the history: unexpected entry ID %v", res[i])
			}
			e, err := decodeEntry(epoch, seq, pairs(fields))
			if err != nil {
				return nil, fmt.Errorf("sseredis: reading the history: %w", err)
			}
			out = append(out, e)
		}
		if more != "1" || len(out) >= limit || next <= cursor {
			return out, nil
		}
		cursor = next
	}
}

// seqOfID parses the Seq of a stream entry ID ("42-0") or of a bare number.
func seqOfID(v any) (uint64, bool) {
	id, _ := v.(string)
	num, _, _ := strings.Cut(id, "-")
	seq, err := strconv.ParseUint(num, 10, 64)
	return seq, err == nil
}

// pairs turns a flat field/value array into a lookup function.
func pairs(flat []any) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for i := 0; i+1 < len(flat); i += 2 {
			if k, _ := flat[i].(string); k == name {
				v, ok := flat[i+1].(string)
				return v, ok
			}
		}
		return "", false
	}
}

// decodeEntry builds the entry of Seq seq from a stream entry's fields.
func decodeEntry(epoch string, seq uint64, field func(string) (string, bool)) (sse.Entry, error) {
	tsText, ok1 := field("ts")
	topic, ok2 := field("topic")
	data, ok3 := field("data")
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if !ok1 || !ok2 || !ok3 || err != nil {
		return sse.Entry{}, fmt.Errorf("malformed entry %d", seq)
	}
	ev := sse.Event{ID: epoch + "-" + strconv.FormatUint(seq, 10), Data: []byte(data)}
	ev.Type, _ = field("type")
	ev.Comment, _ = field("comment")
	if r, ok := field("retry"); ok {
		n, err := strconv.ParseInt(r, 10, 64)
		if err != nil {
			return sse.Entry{}, fmt.Errorf("malformed retry in entry %d", seq)
		}
		ev.Retry = time.Duration(n)
	}
	return sse.Entry{Topic: topic, Seq: seq, Time: time.UnixMilli(ts), Event: ev}, nil
}

// decodeNotification parses what the append script publishes.
func decodeNotification(p string) (sse.Entry, string, error) {
	rest, ok := strings.CutPrefix(p, "sse1")
	if !ok {
		return sse.Entry{}, "", errors.New("not an sse1 notification")
	}
	var f [8]string
	for i := range f {
		n, after, ok := strings.Cut(rest, ":")
		size, err := strconv.Atoi(n)
		if !ok || err != nil || size < 0 || size > len(after) {
			return sse.Entry{}, "", errors.New("malformed notification")
		}
		f[i], rest = after[:size], after[size:]
	}
	seq, err1 := strconv.ParseUint(f[1], 10, 64)
	ts, err2 := strconv.ParseInt(f[2], 10, 64)
	if rest != "" || f[0] == "" || err1 != nil || err2 != nil {
		return sse.Entry{}, "", errors.New("malformed notification")
	}
	ev := sse.Event{ID: f[0] + "-" + f[1], Type: f[4], Data: []byte(f[5]), Comment: f[7]}
	if f[6] != "" {
		n, err := strconv.ParseInt(f[6], 10, 64)
		if err != nil {
			return sse.Entry{}, "", errors.New("malformed notification retry")
		}
		ev.Retry = time.Duration(n)
	}
	return sse.Entry{Topic: f[3], Seq: seq, Time: time.UnixMilli(ts), Event: ev}, f[0], nil
}
