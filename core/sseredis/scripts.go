package sseredis

import "github.com/redis/go-redis/v9"

// The scripts share one layout:
//
//	KEYS[1] <prefix>:stream  the history, one entry per event, ID "<seq>-0"
//	KEYS[2] <prefix>:seq     the newest Seq (INCR)
//	KEYS[3] <prefix>:epoch   the name of the present lifetime of the keys
//	KEYS[4] <prefix>:floor   "<seq> <epoch>": the Seq a lifetime began at
//
// A stream entry's fields are, in this order, ts (milliseconds, Redis's
// clock), topic and data, then type, retry (nanoseconds) and comment when
// set. The scripts rely on ts and topic being the first two fields.
//
// A lifetime begins when the epoch or the seq key is missing (first use,
// FLUSHALL, a restart without persistence, eviction): the script names a
// new epoch (a random token from the caller), drops what is left of the
// stream, and starts the sequence at the caller's floor, the highest Seq it
// has seen, so that Seq keeps growing for every running node. IDs of the
// earlier lifetime then carry an unknown epoch, and their clients get the
// reset event.
//
// The floor is kept: the lifetime has no entry at or below it, so a
// position there names the lifetime's start. Hubs give such positions to
// streams that began before the lifetime did (and whose clients get the
// lifetime's events live), so resuming from one must replay the lifetime,
// not answer "evicted". The floor key names its lifetime: a lifetime begun
// by an older version, which does not set it, has floor 0.
const lifetimeLua = `
local function begin(epoch, floor)
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[3], epoch)
  redis.call('SET', KEYS[2], floor)
  redis.call('SET', KEYS[4], floor .. ' ' .. epoch)
end

local function lifetime(fresh, floor)
  local v = redis.call('MGET', KEYS[3], KEYS[2])
  if v[1] and v[2] then
    return v[1]
  end
  begin(fresh, floor)
  return fresh
end
`

// appendScript records one event and broadcasts it, atomically: the INCR,
// the XADD, the trims and the PUBLISH happen with nothing in between, so the
// order of the history and the order of the notifications are the same.
//
// ARGV: channel, fresh epoch, floor, max events, max age (ms), topic, type,
// data, retry, comment. It returns {epoch, seq, ts}.
//
// The notification is the entry itself, so that listeners need not read the
// stream: "sse1" and then epoch, seq, ts, topic, type, data, retry and
// comment, each as <decimal length>:<bytes>.
var appendScript = redis.NewScript(lifetimeLua + `
local epoch = lifetime(ARGV[2], ARGV[3])
local seq = string.format('%d', redis.call('INCR', KEYS[2]))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ts = string.format('%d', now)
local fields = {'ts', ts, 'topic', ARGV[6], 'data', ARGV[8]}
if ARGV[7] ~= '' then fields[#fields + 1] = 'type'; fields[#fields + 1] = ARGV[7] end
if ARGV[9] ~= '' then fields[#fields + 1] = 'retry'; fields[#fields + 1] = ARGV[9] end
if ARGV[10] ~= '' then fields[#fields + 1] = 'comment'; fields[#fields + 1] = ARGV[10] end
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[4], seq .. '-0', unpack(fields))

-- Every 16th append, drop leading entries older than the max age, up to
-- 512 at a time. (After does not return expired entries; this frees them.)
local cutoff = now - tonumber(ARGV[5])
local first = {}
if tonumber(seq) % 16 == 0 then
  first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
end
if first[1] and tonumber(first[1][2][2]) < cutoff then
  local batch = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 512)
  local minid = nil
  for _, e in ipairs(batch) do
    if tonumber(e[2][2]) >= cutoff then
      minid = e[1]
      break
    end
  end
  if not minid then
    local lastid = batch[#batch][1]
    minid = string.format('%d-0', tonumber(string.match(lastid, '^(%d+)')) + 1)
  end
  redis.call('XTRIM', KEYS[1], 'MINID', minid)
end

local function ns(s) return #s .. ':' .. s end
redis.call('PUBLISH', ARGV[1], 'sse1' .. ns(epoch) .. ns(seq) .. ns(ts) .. ns(ARGV[6]) ..
  ns(ARGV[7]) .. ns(ARGV[8]) .. ns(ARGV[9]) .. ns(ARGV[10]))
return {epoch, seq, ts}
`)

// stateScript returns {epoch, newest Seq}, beginning a lifetime if needed.
// When the sequence is below the floor, the highest Seq the caller has seen,
// Redis lost writes the caller saw, or a process that knew less began the
// lifetime: hubs ignore entries at or below what they delivered, and IDs up
// to the floor may name other events than they did. Then it begins a new
// lifetime at the floor, as restartScript does, and returns {epoch, newest
// Seq, the epoch and Seq it found}.
//
// ARGV: fresh epoch, floor.
var stateScript = redis.NewScript(lifetimeLua + `
local epoch = lifetime(ARGV[1], ARGV[2])
local seq = redis.call('GET', KEYS[2])
if tonumber(seq) < tonumber(ARGV[2]) then
  begin(ARGV[1], ARGV[2])
  return {ARGV[1], ARGV[2], epoch, seq}
end
return {epoch, seq}
`)

// readScript is one page of After: it checks the position, then scans at
// most a budget of entries after it and returns those of the wanted topics.
// A position at or below the lifetime's floor is its start.
//
// ARGV: after, limit, budget, max age (ms), topics...
//
// It returns {"unknown", epoch} when after is beyond the newest Seq,
// {"evicted", epoch} when the entry right after it is gone or expired, or
// {"ok", epoch, more, cursor, id1, fields1, id2, fields2, ...}: cursor is
// the Seq of the last entry scanned, and more is "1" when the scan stopped
// at the budget before reaching the limit.
var readScript = redis.NewScript(`
local epoch = redis.call('GET', KEYS[3]) or ''
local newest = tonumber(redis.call('GET', KEYS[2]) or '0')
local after = tonumber(ARGV[1])
if after > newest then return {'unknown', epoch} end
local floor, of = string.match(redis.call('GET', KEYS[4]) or '', '^(%d+) (.+)$')
if of == epoch then after = math.max(after, tonumber(floor)) end
local pos = string.format('%d', after)
if after == newest then return {'ok', epoch, '0', pos} end
local budget = tonumber(ARGV[3])
local batch = redis.call('XRANGE', KEYS[1], string.format('%d-0', after + 1), '+', 'COUNT', budget)
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[4])
if #batch == 0 or batch[1][1] ~= string.format('%d-0', after + 1) or tonumber(batch[1][2][2]) < cutoff then
  return {'evicted', epoch}
end
local want = {}
for i = 5, #ARGV do want[ARGV[i]] = true end
local limit = tonumber(ARGV[2])
local out = {'ok', epoch, '0', pos}
local n = 0
local scanned = 0
for _, e in ipairs(batch) do
  if n >= limit then break end
  scanned = scanned + 1
  out[4] = e[1]
  if want[e[2][4]] then
    out[#out + 1] = e[1]
    out[#out + 1] = e[2]
    n = n + 1
  end
end
if n < limit and scanned == budget then out[3] = '1' end
return out
`)

// restartScript begins a new lifetime at ARGV[2] if the epoch is still
// ARGV[1] and the sequence is below ARGV[2]: Redis lost writes that
// processes had seen (a failover to a replica that lagged, a restart from
// an older snapshot, a flush followed by a process that knew less). IDs
// given out since may name other events than before, so they must all
// become unknown: a new epoch (ARGV[3]), an empty stream, and the sequence
// above everything the caller saw. See run.regressed.
var restartScript = redis.NewScript(lifetimeLua + `
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if cur >= tonumber(ARGV[2]) then return 0 end
begin(ARGV[3], ARGV[2])
return 1
`)
