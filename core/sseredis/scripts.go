package sseredis

import "github.com/redis/go-redis/v9"

// Each topic has two keys and a channel, all with the escaped topic as
// their hash tag, so that Redis Cluster keeps them in one slot:
//
//	<prefix>:{<topic>}:m  a hash: f, the first Seq of the topic's present
//	                      run, and n, its newest Seq (f-1 before the first
//	                      event of the run)
//	<prefix>:{<topic>}:s  the history, a stream with one entry per event,
//	                      ID "<seq>-0", fields ts (microseconds, Redis's
//	                      clock) and data, then type, retry (nanoseconds)
//	                      and comment when set
//	<prefix>:{<topic>}:c  the channel each event is published on
//
// A run of a topic begins when its hash is missing: on first use, once the
// topic has been idle for TopicTTL (the hash expires), or after Redis lost
// the key (FLUSHALL, a restart without persistence, eviction). Its first
// Seq is the time in microseconds since runOrigin, read from Redis: greater
// than every Seq of the topic's earlier runs, which could not take more
// than one Seq a microsecond. Within a run, Seqs follow each other by one.
// A position below the run's start (f-1) names a place in an earlier run:
// what followed it may be lost, so it is answered "evicted", never with a
// history that has a gap.

// runStartLua begins a run of the topic if its hash is missing, and
// returns {f, n}. ARGV[1] is the hash's time to live in milliseconds.
const runStartLua = `
local function seqtext(x) return string.format('%d', x) end

local function nowus()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function run(ttl, above)
  local v = redis.call('HMGET', KEYS[1], 'f', 'n')
  if v[1] and v[2] then
    redis.call('PEXPIRE', KEYS[1], ttl)
    return tonumber(v[1]), tonumber(v[2])
  end
  local f = math.max(nowus() - ` + runOriginLua + `, above + 1)
  redis.call('HSET', KEYS[1], 'f', seqtext(f), 'n', seqtext(f - 1))
  redis.call('PEXPIRE', KEYS[1], ttl)
  return f, f - 1
end
`

// runOriginLua is runOrigin in microseconds since 1970, as Lua text:
// 2025-01-01T00:00:00Z.
const runOriginLua = `1735689600000000`

// appendScript records one event and publishes it, atomically: the Seq,
// the XADD, the trims and the PUBLISH happen with nothing in between, so
// the order of the history and the order of the messages are the same.
//
// KEYS: hash, stream. ARGV: hash TTL (ms), stream TTL (ms), max events,
// max age (ms), channel, publish command, data, type, retry, comment. It
// returns {seq, ts}.
//
// The message is the entry itself, so that listeners need not read the
// stream: "sse2" and then seq, ts, type, data, retry and comment, each as
// <decimal length>:<bytes>.
var appendScript = redis.NewScript(runStartLua + `
local f, n = run(ARGV[1], 0)
n = n + 1
local seq = seqtext(n)
redis.call('HSET', KEYS[1], 'n', seq)
local now = nowus()
local ts = seqtext(now)
local fields = {'ts', ts, 'data', ARGV[7]}
if ARGV[8] ~= '' then fields[#fields + 1] = 'type'; fields[#fields + 1] = ARGV[8] end
if ARGV[9] ~= '' then fields[#fields + 1] = 'retry'; fields[#fields + 1] = ARGV[9] end
if ARGV[10] ~= '' then fields[#fields + 1] = 'comment'; fields[#fields + 1] = ARGV[10] end
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-0', unpack(fields))
redis.call('PEXPIRE', KEYS[2], ARGV[2])

-- Drop leading entries older than the max age, at most 64 at a time.
-- (Reads never return expired entries; this frees their memory.)
local cutoff = now - tonumber(ARGV[4]) * 1000
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if head[1] and tonumber(head[1][2][2]) < cutoff then
  local batch = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 64)
  local minid = nil
  for _, e in ipairs(batch) do
    if tonumber(e[2][2]) >= cutoff then
      minid = e[1]
      break
    end
  end
  if not minid then
    minid = seqtext(tonumber(string.match(batch[#batch][1], '^(%d+)')) + 1) .. '-0'
  end
  redis.call('XTRIM', KEYS[2], 'MINID', minid)
end

local function ns(s) return #s .. ':' .. s end
redis.call(ARGV[6], ARGV[5], 'sse2' .. ns(seq) .. ns(ts) .. ns(ARGV[8]) .. ns(ARGV[7]) ..
  ns(ARGV[9]) .. ns(ARGV[10]))
return {seq, ts}
`)

// newestScript returns {f, n} of the topic's run, beginning one if there
// is none, so that the position it names (n) stays valid for the hash's
// time to live. KEYS: hash. ARGV: hash TTL (ms).
var newestScript = redis.NewScript(runStartLua + `
local f, n = run(ARGV[1], 0)
return {seqtext(f), seqtext(n)}
`)

// readScript reads the topic's history after a position.
//
// KEYS: hash, stream. ARGV: after, limit, max age (ms).
//
// It returns {status, f, n, id1, fields1, id2, fields2, ...}: status is
// "ok" with the entries after the position; "none" when the topic has no
// run (f and n are "0"); "unknown" when the position is beyond n; or
// "evicted" when entries after the position are gone (an earlier run, or
// trimmed), with the oldest entries still held that follow it.
var readScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'f', 'n')
if not (v[1] and v[2]) then return {'none', '0', '0'} end
local f, n = tonumber(v[1]), tonumber(v[2])
local after = tonumber(ARGV[1])
if after > n then return {'unknown', v[1], v[2]} end
local status = 'ok'
if after ~= 0 and after < f - 1 then status = 'evicted' end
local from = math.max(after + 1, f)
if from > n then return {status, v[1], v[2]} end
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000000 + tonumber(t[2]) - tonumber(ARGV[3]) * 1000
local limit = tonumber(ARGV[2])
local batch = redis.call('XRANGE', KEYS[2], string.format('%d-0', from), '+', 'COUNT', limit)
local out = {status, v[1], v[2]}
for _, e in ipairs(batch) do
  if tonumber(e[2][2]) >= cutoff then
    if #out == 3 and e[1] ~= string.format('%d-0', from) then out[1] = 'evicted' end
    out[#out + 1] = e[1]
    out[#out + 1] = e[2]
  end
end
if #out == 3 then out[1] = 'evicted' end
return out
`)

// raiseScript begins a new run of the topic above ARGV[2] if its newest
// Seq is below it: Redis lost writes that a listener delivered (a failover
// to a replica that lagged, a restart from an older snapshot). Positions
// named since may name other events than before; beginning a run above
// them all makes every one of them "evicted".
//
// KEYS: hash, stream. ARGV: hash TTL (ms), the Seq delivered.
var raiseScript = redis.NewScript(runStartLua + `
local f, n = run(ARGV[1], 0)
if n >= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
run(ARGV[1], tonumber(ARGV[2]))
return 1
`)
