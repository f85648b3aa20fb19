package sseredis

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/ssekit/core/sse"
)

// Options configures New. Give it Client or Shards. Every process must
// give the same Prefix, MaxEventsPerTopic, MaxAge and TopicTTL: the
// process that appends an event applies its own.
type Options struct {
	// Client is the Redis connection: a *redis.Client, or a
	// *redis.ClusterClient for Redis Cluster, whose nodes then share the
	// topics by slot.
	Client redis.UniversalClient

	// Shards are independent Redis servers that share the topics: each
	// topic lives on one of them, chosen by a hash of its name, so that
	// publishing scales with their number. Every process must list the
	// same servers in the same order; adding one moves about a 1/n share
	// of the topics to it, and the clients of those topics get the reset
	// event once. Signals travel on the first.
	Shards []redis.UniversalClient

	// Prefix namespaces the keys and channels (see the package
	// documentation). Processes that serve the same events use the same
	// Prefix. It must not contain '{' or '}'. Default "ssekit".
	Prefix string

	// MaxEventsPerTopic bounds each topic's history. Default 1000.
	MaxEventsPerTopic int

	// MaxAge drops events older than this from the history (Redis's clock
	// decides). Default one hour.
	MaxAge time.Duration

	// TopicTTL is how long Redis remembers a topic that nobody publishes
	// on or opens a stream of: a client that resumes on it later gets the
	// reset event, even if nothing was published meanwhile. It keeps the
	// topics that come and go (a topic per job, per session) from filling
	// Redis. At least MaxAge. Default 24 hours.
	TopicTTL time.Duration

	// Logger receives the store's logs. Default slog.Default().
	Logger *slog.Logger
}

const (
	defaultPrefix    = "ssekit"
	defaultMaxEvents = 1000
	defaultMaxAge    = time.Hour
	defaultTopicTTL  = 24 * time.Hour
)

// Store is an sse.Broadcaster on Redis. Create it with New; it is safe for
// concurrent use, and several hubs may share one.
type Store struct {
	shards    []*shard
	log       *slog.Logger
	prefix    string
	maxEvents int
	maxAgeMs  int64
	ttlMs     int64 // the topic hash's time to live
	signals   string

	epoch atomic.Pointer[string]

	// Guarded by mu.
	mu        sync.Mutex
	follows   map[string]*follow        // the followed topics
	listeners map[*listenState]struct{} // the running Listen calls
	subs      []*subscription           // one per shard, while Listen runs
	stopSubs  context.CancelFunc        // ends subs
}

// follow is a followed topic: how many hubs follow it, and from where the
// first asked for it.
type follow struct {
	n     int
	after uint64
}

// shard is one Redis: a server, or a cluster.
type shard struct {
	index   int
	client  redis.UniversalClient
	cluster bool   // a ClusterClient
	token   string // the shard's epoch token, as last read; guarded by Store.mu
}

var _ sse.Broadcaster = (*Store)(nil)

// New returns a Store on opts.Client or opts.Shards. It checks that every
// Redis answers, and reads (or, on first use, creates) the epoch.
func New(ctx context.Context, opts Options) (*Store, error) {
	clients := opts.Shards
	switch {
	case opts.Client != nil && len(opts.Shards) > 0:
		return nil, errors.New("sseredis: Options.Client and Options.Shards are both set; use Client for one Redis (or a cluster), Shards for several")
	case opts.Client != nil:
		clients = []redis.UniversalClient{opts.Client}
	case len(opts.Shards) == 0:
		return nil, errors.New("sseredis: Options.Client is nil; pass a *redis.Client, a *redis.ClusterClient, or several clients in Shards")
	}
	for i, c := range clients {
		if c == nil {
			return nil, fmt.Errorf("sseredis: Options.Shards[%d] is nil", i)
		}
	}
	if opts.MaxEventsPerTopic < 0 {
		return nil, fmt.Errorf("sseredis: Options.MaxEventsPerTopic is %d; it must be positive, or 0 for the default", opts.MaxEventsPerTopic)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"MaxAge", opts.MaxAge}, {"TopicTTL", opts.TopicTTL}} {
		if d.v < 0 || (d.v > 0 && d.v < time.Millisecond) {
			return nil, fmt.Errorf("sseredis: Options.%s is %v; it must be at least 1ms, or 0 for the default", d.name, d.v)
		}
	}
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("sseredis: Options.Prefix %q contains '{' or '}'; the store puts each topic in a hash tag of its own", opts.Prefix)
	}
	if opts.MaxEventsPerTopic == 0 {
		opts.MaxEventsPerTopic = defaultMaxEvents
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = defaultMaxAge
	}
	if opts.TopicTTL == 0 {
		opts.TopicTTL = max(defaultTopicTTL, opts.MaxAge)
	}
	if opts.TopicTTL < opts.MaxAge {
		return nil, fmt.Errorf("sseredis: Options.TopicTTL (%v) is less than MaxAge (%v); a topic must be remembered as long as its history", opts.TopicTTL, opts.MaxAge)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Store{
		log:       opts.Logger,
		prefix:    opts.Prefix,
		maxEvents: opts.MaxEventsPerTopic,
		maxAgeMs:  max(opts.MaxAge.Milliseconds(), 1),
		ttlMs:     max(opts.TopicTTL.Milliseconds(), 1),
		signals:   opts.Prefix + ":signals",
		follows:   make(map[string]*follow),
		listeners: make(map[*listenState]struct{}),
	}
	for i, c := range clients {
		_, cluster := c.(*redis.ClusterClient)
		s.shards = append(s.shards, &shard{index: i, client: c, cluster: cluster})
	}
	for _, sh := range s.shards {
		if err := sh.client.Ping(ctx).Err(); err != nil {
			return nil, fmt.Errorf("sseredis: New: Redis (shard %d) is not reachable: %w", sh.index, err)
		}
		if err := s.readEpoch(ctx, sh); err != nil {
			return nil, fmt.Errorf("sseredis: New: %w", err)
		}
	}
	return s, nil
}

// The epoch.
//
// Each Redis (shard) holds a random token in <prefix>:epoch, created when
// it is missing. The store's epoch is the token of its one shard, or a
// hash of all the tokens. When Redis loses its keys (FLUSHALL, a restart
// without persistence) the token is made anew, so the epoch changes and
// every client that resumes gets the reset event. Listen reads the tokens
// whenever it (re)connects, and every few seconds.

// readEpoch reads sh's token, creating it when missing, and updates the
// store's epoch.
func (s *Store) readEpoch(ctx context.Context, sh *shard) error {
	key := s.prefix + ":epoch"
	fresh := freshToken()
	tok, err := sh.client.SetArgs(ctx, key, fresh, redis.SetArgs{Mode: "NX", Get: true}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		tok = fresh
	case err != nil:
		return fmt.Errorf("reading the epoch of shard %d: %w", sh.index, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sh.token != "" && sh.token != tok {
		s.log.Error("sseredis: Redis lost the store's keys (a flush, or a restart without persistence); a new epoch begins and clients that resume get the reset event",
			"shard", sh.index)
	}
	sh.token = tok
	var epoch string
	if len(s.shards) == 1 {
		epoch = tok
	} else {
		h := fnv.New64a()
		for _, x := range s.shards {
			h.Write([]byte(x.token))
			h.Write([]byte{0})
		}
		epoch = strconv.FormatUint(h.Sum64(), 36)
	}
	if p := s.epoch.Load(); p == nil || *p != epoch {
		s.epoch.Store(&epoch)
	}
	return nil
}

// freshToken returns a random epoch token.
func freshToken() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Epoch implements sse.Store.
func (s *Store) Epoch() string {
	if p := s.epoch.Load(); p != nil {
		return *p
	}
	return ""
}

// The keys of a topic.

// escape makes topic fit in a hash tag: '{', '}' and '%' become %XX.
func escape(topic string) string {
	if !strings.ContainsAny(topic, "{}%") {
		return topic
	}
	var b strings.Builder
	for i := 0; i < len(topic); i++ {
		switch c := topic[i]; c {
		case '{', '}', '%':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// topicKeys returns topic's hash and stream keys.
func (s *Store) topicKeys(topic string) []string {
	base := s.prefix + ":{" + escape(topic) + "}:"
	return []string{base + "m", base + "s"}
}

// channel returns topic's channel.
func (s *Store) channel(topic string) string {
	return s.prefix + ":{" + escape(topic) + "}:c"
}

// shardOf returns the shard that holds topic: a jump consistent hash of
// its name, so that adding a shard at the end moves only the topics that
// go to it.
func (s *Store) shardOf(topic string) *shard {
	if len(s.shards) == 1 {
		return s.shards[0]
	}
	h := fnv.New64a()
	h.Write([]byte(topic))
	return s.shards[jump(h.Sum64(), len(s.shards))]
}

// jump is Lamping and Veach's jump consistent hash.
func jump(key uint64, buckets int) int {
	var b, j int64 = -1, 0
	for j < int64(buckets) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

// publishCommand is how sh publishes. On a cluster, PUBLISH reaches every
// node, so a process subscribes to any of them.
func (sh *shard) publishCommand() string { return "PUBLISH" }

// Append implements sse.Store. It records ev and publishes it to every
// process that follows topic in one step. An error means Redis did not
// confirm the append: it may not have happened, or (when the connection
// broke after Redis ran the script) it may have.
func (s *Store) Append(ctx context.Context, topic string, ev sse.Event) (sse.Entry, error) {
	retry := ""
	if ev.Retry != 0 {
		retry = strconv.FormatInt(int64(ev.Retry), 10)
	}
	sh := s.shardOf(topic)
	res, err := appendScript.Run(ctx, sh.client, s.topicKeys(topic),
		s.ttlMs, s.maxAgeMs, s.maxEvents, s.maxAgeMs, s.channel(topic), sh.publishCommand(),
		ev.Data, ev.Type, retry, ev.Comment).StringSlice()
	if err != nil {
		return sse.Entry{}, fmt.Errorf("sseredis: append: %w", err)
	}
	if len(res) != 2 {
		return sse.Entry{}, fmt.Errorf("sseredis: append: unexpected reply %v", res)
	}
	seq, err1 := strconv.ParseUint(res[0], 10, 64)
	ts, err2 := strconv.ParseInt(res[1], 10, 64)
	if err1 != nil || err2 != nil {
		return sse.Entry{}, fmt.Errorf("sseredis: append: unexpected reply %v", res)
	}
	ev.ID = s.id(seq)
	ev.Flags &^= sse.EmptyID
	return sse.Entry{Topic: strings.Clone(topic), Seq: seq, Time: time.UnixMicro(ts), Event: ev}, nil
}

// id returns the ID of seq, as the hub names the place of one Seq.
func (s *Store) id(seq uint64) string {
	return s.Epoch() + "-" + strconv.FormatUint(seq, 10)
}

// Newest implements sse.Store. For a topic Redis does not hold, it begins
// a run (see the package documentation), so that the position it returns
// names nothing lost for as long as Redis remembers the topic.
func (s *Store) Newest(ctx context.Context, topic string) (uint64, error) {
	res, err := newestScript.Run(ctx, s.shardOf(topic).client, s.topicKeys(topic)[:1], s.ttlMs).StringSlice()
	if err != nil {
		return 0, fmt.Errorf("sseredis: reading the newest Seq of %q: %w", topic, err)
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("sseredis: reading the newest Seq of %q: unexpected reply %v", topic, res)
	}
	n, err := strconv.ParseUint(res[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("sseredis: reading the newest Seq of %q: unexpected reply %v", topic, res)
	}
	return n, nil
}

// readStatus is what one read of a topic's history found.
type readStatus int

const (
	readOK      readStatus = iota
	readNone               // the topic has no run
	readUnknown            // the position is beyond the newest Seq
	readEvicted            // entries after the position are gone
)

// readResult is one read of a topic's history.
type readResult struct {
	status  readStatus
	first   uint64 // the run's first Seq
	newest  uint64 // its newest
	entries []sse.Entry
}

// read reads at most limit entries of topic after the position after.
func (s *Store) read(ctx context.Context, topic string, after uint64, limit int) (readResult, error) {
	res, err := readScript.Run(ctx, s.shardOf(topic).client, s.topicKeys(topic), after, limit, s.maxAgeMs).Slice()
	if err != nil {
		return readResult{}, fmt.Errorf("sseredis: reading the history of %q: %w", topic, err)
	}
	bad := func() (readResult, error) {
		return readResult{}, fmt.Errorf("sseredis: reading the history of %q: unexpected reply %v", topic, res)
	}
	if len(res) < 3 {
		return bad()
	}
	var r readResult
	status, _ := res[0].(string)
	switch status {
	case "ok":
	case "none":
		r.status = readNone
	case "unknown":
		r.status = readUnknown
	case "evicted":
		r.status = readEvicted
	default:
		return bad()
	}
	f, _ := res[1].(string)
	n, _ := res[2].(string)
	var err1, err2 error
	r.first, err1 = strconv.ParseUint(f, 10, 64)
	r.newest, err2 = strconv.ParseUint(n, 10, 64)
	if err1 != nil || err2 != nil {
		return bad()
	}
	epoch := s.Epoch()
	for i := 3; i+1 < len(res); i += 2 {
		seq, ok := seqOfID(res[i])
		fields, _ := res[i+1].([]any)
		if !ok {
			return bad()
		}
		e, err := decodeEntry(epoch, topic, seq, pairs(fields))
		if err != nil {
			return readResult{}, fmt.Errorf("sseredis: reading the history of %q: %w", topic, err)
		}
		r.entries = append(r.entries, e)
	}
	return r, nil
}

// After implements sse.Store. It reads each topic's history on its shard,
// and returns the entries by the time Redis recorded them (each topic's in
// Seq order).
func (s *Store) After(ctx context.Context, topics []string, after []uint64, limit int) ([]sse.Entry, error) {
	if len(after) != len(topics) {
		return nil, fmt.Errorf("sseredis: After: %d positions for %d topics", len(after), len(topics))
	}
	if limit <= 0 {
		return nil, nil
	}
	var lists [][]sse.Entry
	seen := make(map[string]bool, len(topics))
	for i, t := range topics {
		if seen[t] {
			continue // a topic named twice: read once, from the earlier place
		}
		seen[t] = true
		pos := after[i]
		for j := i + 1; j < len(topics); j++ {
			if topics[j] == t {
				pos = min(pos, after[j])
			}
		}
		r, err := s.read(ctx, t, pos, limit)
		if err != nil {
			return nil, err
		}
		switch r.status {
		case readNone:
			if pos != 0 {
				return nil, sse.ErrEvicted // a run Redis forgot
			}
		case readUnknown:
			return nil, sse.ErrUnknownID
		case readEvicted:
			return nil, sse.ErrEvicted
		}
		if len(r.entries) > 0 {
			lists = append(lists, r.entries)
		}
	}
	if len(lists) == 0 {
		return nil, nil
	}
	return merge(lists, limit), nil
}

// merge returns at most limit entries of lists, each in its topic's
// order: by the time Redis recorded them, but never out of their list's
// order, even when Redis's clock went back.
func merge(lists [][]sse.Entry, limit int) []sse.Entry {
	if len(lists) == 1 {
		return lists[0][:min(len(lists[0]), limit)]
	}
	var out []sse.Entry
	for len(out) < limit {
		best := -1
		for i, l := range lists {
			if len(l) > 0 && (best < 0 || l[0].Time.Before(lists[best][0].Time)) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		out = append(out, lists[best][0])
		lists[best] = lists[best][1:]
	}
	return out
}

// seqOfID parses the Seq of a stream entry ID ("42-0").
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

// decodeEntry builds topic's entry of Seq seq from a stream entry's
// fields.
func decodeEntry(epoch, topic string, seq uint64, field func(string) (string, bool)) (sse.Entry, error) {
	tsText, ok1 := field("ts")
	data, ok2 := field("data")
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if !ok1 || !ok2 || err != nil {
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
	return sse.Entry{Topic: topic, Seq: seq, Time: time.UnixMicro(ts), Event: ev}, nil
}

// decodeMessage parses what the append script publishes on topic's
// channel.
func decodeMessage(epoch, topic, p string) (sse.Entry, error) {
	rest, ok := strings.CutPrefix(p, "sse2")
	if !ok {
		return sse.Entry{}, errors.New("not an sse2 message")
	}
	var f [6]string
	for i := range f {
		n, after, ok := strings.Cut(rest, ":")
		size, err := strconv.Atoi(n)
		if !ok || err != nil || size < 0 || size > len(after) {
			return sse.Entry{}, errors.New("malformed message")
		}
		f[i], rest = after[:size], after[size:]
	}
	seq, err1 := strconv.ParseUint(f[0], 10, 64)
	ts, err2 := strconv.ParseInt(f[1], 10, 64)
	if rest != "" || err1 != nil || err2 != nil {
		return sse.Entry{}, errors.New("malformed message")
	}
	ev := sse.Event{ID: epoch + "-" + f[0], Type: f[2], Data: []byte(f[3]), Comment: f[5]}
	if f[4] != "" {
		n, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil {
			return sse.Entry{}, errors.New("malformed message retry")
		}
		ev.Retry = time.Duration(n)
	}
	return sse.Entry{Topic: topic, Seq: seq, Time: time.UnixMicro(ts), Event: ev}, nil
}

// sortedTopics returns the keys of m in order.
func sortedTopics(m map[string]*follow) []string {
	ts := make([]string, 0, len(m))
	for t := range m {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, cmp.Compare[string])
	return ts
}
