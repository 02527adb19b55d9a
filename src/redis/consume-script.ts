// The Lua scripts behind the Redis limiter: `consume` (restriction check, message-id dedupe, the
// four sliding windows, every limit set, the tenant's cap, counting or restricting — one atomic
// step per message), and the small ones for the tenant on a Cluster, spam reports and an
// administrator's restrict and release.
//
// The consume script is generated for one list of limit sets (a policy has one list; the limiter
// keeps one script per list it meets): the limits are constants in the code, compared in
// straight-line `if`s, rather than arguments decoded and looped over on every call. Redis runs
// Lua 5.1 interpreted, one script at a time for the whole server: every call and every table the
// script makes is paid by every sender. The arithmetic is limit-windows.ts's, step by step (the
// shared behaviour suite checks that both limiters answer alike).
//
// One EVALSHA decides a BATCH of messages (on a single Redis: every consume of one event-loop
// turn, up to a few hundred; on a Cluster, one message, as a script may only touch one slot):
// Redis's cost per command (parsing, the script's set-up) and ioredis's (a command object, a
// promise, a reply) are paid once per batch instead of once per message. The messages of a batch
// are decided one after the other inside the script, exactly as separate scripts would be.
//
// KEYS, per message in order: the sender's hash `<prefix>{<key>}`, then — when the message's tenant
// is counted in this script (mode 1) — the tenant's hash `<prefix>tenant:{<tenant>}`.
// ARGV[1], every message's numbers in one binary string (one argument to send, and one C call a
// message to read — a text record's pattern match and six tonumber cost redis-server about as
// much again), a record of CONSUME_RECORD_BYTES each, little-endian (writeConsumeRecord): now
// (ms, a double), internal and external recipients (uint32 each), the message id's hash (a
// double; -1 for none), the mode (uint8: the tenant mode — 0 no tenant; 1 the tenant's key
// follows the sender's, counted here; 2 the tenant's cap refused it already, Cluster; 3 the
// tenant was reserved already, Cluster — plus COUNT_OVER_LIMIT, 4, when a message over the
// sender's limits is counted all the same, ConsumeRequest.countOverLimit), the tenant's cap
// (int32, -1 for none).
// The answer: one entry per message: 0 counted, nothing breached (the usual answer, a plain
// integer); 2 a message id already counted; `{1, until ms or 'inf', reason, since ms, cause
// JSON}` the sender is restricted; `{3, counted (0|1), restricted (0|1), m, i, e, a, until ms or
// 'inf' or '', tenant refused (0|1), tenant used}` when a window or the tenant's cap was
// breached, with the four windows' counts before this message (the caller derives the breaches
// from them); counted and restricted both 1 when a message counted over the limits restricted
// its sender.
//
// The sender's hash: `b` the windows; `e` the remembered message ids; the restriction `rm` (end
// in ms or 'inf'), `rw` (reason), `rs` (since, ms), `rc` (cause, JSON); `im` the end (ms) of an
// immunity to automatic restriction after a release; `s` the spam reports (29-character records).
// The windows (`b`): one string of little-endian doubles, packed and unpacked by Redis's `struct`
// (C, one call each): the number of (bucket, count) pairs of each window, then the pairs of the
// non-empty buckets of messages (1 s buckets), internal and external recipients (60 s) and all
// recipients (1,440 s) — so that reading a sender costs one field whatever its activity. A
// window's count is the sum of its buckets current − 60 … current (61: the window's whole
// length whatever the time within the current bucket); buckets that left it are
// dropped when the sender is next counted.
// The message ids (`e`): one string of 13-byte records, the id's 53-bit hash (7 bytes) then the
// time it was counted (6 bytes, signed), little-endian, oldest first, at most MAX_IDS of them (a
// few more for a while after converting an earlier release's d, until the next new id trims them):
// looked up with a plain `string.find`, in C, rather than one sorted-set call for the lookup and
// three for the update. Every string a script makes costs Redis a pass over all its bytes (its
// Lua hashes each one whole), and the ids are rewritten at every message: at 100 ids the
// 29-character decimal records of earlier releases (`d`, still read, and rewritten as `e`) cost
// redis-server about 12 µs a message, the ids of these about 5.
// The tenant's hash: `b`, its external recipients in 1,440 s buckets (60 of them: 24 h, like
// recipientsPerDay), packed as one window is.

import { LIMIT_WINDOWS, MAX_SPAM_RECORDS, MESSAGE_ID_MEMORY_MS, SPAM_REPORT_MS } from '../providers/limit-windows.js';
import type { LimitSet } from '../providers/types.js';

/** A Lua string literal for any text: bytes outside a safe ASCII set as decimal escapes. */
export function luaString(text: string): string {
  let out = '"';
  for (const byte of Buffer.from(text, 'utf8')) {
    const safe = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte === 0x20 || byte === 0x2d || byte === 0x5f || byte === 0x2e;
    out += safe ? String.fromCharCode(byte) : `\\${String(byte).padStart(3, '0')}`;
  }
  return `${out}"`;
}

/** A consume record's layout in Lua's struct format (see the header): now, internal, external, id, mode, cap. */
const RECORD_FORMAT = '<dI4I4dBi4';

/** Bytes of one message's record in the consume script's ARGV[1]. */
export const CONSUME_RECORD_BYTES = 29;

/** Added to a record's tenant mode: count the message even over the sender's limits. */
export const COUNT_OVER_LIMIT = 4;

/**
 * Writes one message's record for the consume script into `buffer` at `offset` (see the header):
 * `idHash` -1 for none, `mode` the tenant mode 0–3 plus {@link COUNT_OVER_LIMIT} or not, `cap`
 * -1 for none. The numbers are the limiter's, checked already (whole, `now` ≥ 0, counts and cap
 * ≤ 1,000,000,000). Answers the next offset.
 */
export function writeConsumeRecord(buffer: Buffer, offset: number, now: number, internal: number, external: number, idHash: number, mode: number, cap: number): number {
  buffer.writeDoubleLE(now, offset);
  buffer.writeUInt32LE(internal, offset + 8);
  buffer.writeUInt32LE(external, offset + 12);
  buffer.writeDoubleLE(idHash, offset + 16);
  buffer.writeUInt8(mode, offset + 24);
  buffer.writeInt32LE(cap, offset + 25);
  return offset + CONSUME_RECORD_BYTES;
}

/** The window's limit in a set, or null when the set does not limit it. */
function limitOf(set: LimitSet, window: (typeof LIMIT_WINDOWS)[number]): number | null {
  const limit = set[window];
  return typeof limit === 'number' && Number.isFinite(limit) ? limit : null;
}

/** How long a sender's or tenant's hash outlives its newest day bucket (24 h 25 min), in ms. */
export const HASH_TTL_MS = 87_900_000;

/** Shared by the scripts: windows of `[bucket, count, …]`, and the key's expiry. */
const HELPERS = String.raw`
local TTL = ${HASH_TTL_MS}
-- The time of a spent id record (its one free retry used): about 31 years before 1970, out of
-- every 24 hours an id is remembered for. (Time 0 was used before, a real time on a test clock at
-- the epoch; records written so still read as spent at any later date.)
local SPENT = -999999999999
-- The remembered message ids: 13-byte records (see the header of consume-script.ts).
local ID_RECORD = 13
local SPENT_BYTES = struct.pack('<i6', SPENT)
local function idKey(id) return struct.pack('<I7', id) end
local function idRecord(id, now) return struct.pack('<I7i6', id, now) end
-- Where the record of an id (idKey) starts, at a record boundary (a match across two records is
-- no match), or nil.
local function findId(ids, key)
  local at = string.find(ids, key, 1, true)
  while at and (at - 1) % ID_RECORD ~= 0 do at = string.find(ids, key, at + 1, true) end
  return at
end
local function idTime(ids, at)
  local _, t = struct.unpack('<I7i6', ids, at)
  return t
end
-- The record at position at, spent: a retry used its one free count, so the next message with the id counts.
local function spendId(ids, at)
  return string.sub(ids, 1, at + 6) .. SPENT_BYTES .. string.sub(ids, at + ID_RECORD)
end
-- The ids an earlier release kept in field d (29-character records: the hash in 16 digits, the
-- time in 13), as records of field e, after those of e. A fleet upgraded node by node may have
-- both: every write of e drops d, so a d beside an e was written by a node of the earlier
-- release since, and its ids are the newer ones; an id in both keeps only its copy from d.
local function fromLegacy(d, e)
  local kept = e or ''
  local out = {}
  for j = 1, #d - 28, 29 do
    local h, t = tonumber(string.sub(d, j, j + 15)), tonumber(string.sub(d, j + 16, j + 28))
    if h and t then
      local at = findId(kept, idKey(h))
      if at then kept = string.sub(kept, 1, at - 1) .. string.sub(kept, at + ID_RECORD) end
      out[#out + 1] = struct.pack('<I7i6', h, t)
    end
  end
  return kept .. table.concat(out)
end
-- Struct formats of n little-endian doubles, built once per script run.
local FMT = {}
local function fmt(n)
  local f = FMT[n]
  if not f then f = '<' .. string.rep('d', n); FMT[n] = f end
  return f
end
-- A window's live buckets (current - 60 and later, 61 buckets: the window's whole length whatever
-- the time within the current bucket; later ones after a clock moved back) from
-- v[from] on, pairs_ pairs (bucket, count) of a decoded value; their count up to the current
-- bucket, and where the current bucket's count is (or nil).
local function window(v, from, pairs_, current)
  local live, used, at = {}, 0, nil
  for j = from, from + 2 * pairs_ - 1, 2 do
    local index = v[j]
    if index >= current - 60 then
      local c = v[j + 1]
      live[#live + 1] = index
      live[#live + 1] = c
      if index <= current then
        used = used + c
        if index == current then at = #live end
      end
    end
  end
  return live, used, at
end
-- A window's pairs from v[from] on (pairs_ of them) appended to out after out[k], live ones only,
-- with n added to the current bucket, or the bucket put in its place: the pairs stay in bucket
-- order, also after a clock moved back (as the memory limiter keeps them). Past 61 pairs (a
-- clock moved back and forth) the window's first, the oldest, is dropped, as the memory limiter
-- drops it. Answers the window's count up to the current bucket before this message, its pairs
-- in out, the new k, and whether the current bucket was there already.
local function scan(v, from, pairs_, current, n, out, k)
  -- curAt: where the current bucket's count is in out, once it is there (found or placed).
  local used, count, found, curAt, start = 0, 0, false, nil, k
  for j = from, from + 2 * pairs_ - 1, 2 do
    local index = v[j]
    if index >= current - 60 then
      local c = v[j + 1]
      if index == current and curAt then
        -- The current bucket again, stored out of order by an earlier script (behind one ahead of
        -- the clock, or twice): its count joins the one pair of the current bucket.
        used = used + c
        out[curAt] = out[curAt] + c
        found = true
      else
        if index <= current then
          used = used + c
          if index == current then c = c + n; found = true end
        elseif not curAt and n > 0 then
          -- The first bucket ahead of the clock: the current one goes before it.
          out[k + 1] = current
          out[k + 2] = n
          k = k + 2
          count = count + 1
          curAt = k
        end
        out[k + 1] = index
        out[k + 2] = c
        k = k + 2
        count = count + 1
        if index == current then curAt = k end
      end
    end
  end
  if not curAt and n > 0 then
    out[k + 1] = current
    out[k + 2] = n
    k = k + 2
    count = count + 1
  end
  -- A while, not an if: a window stored by an earlier release may hold up to 120.
  while count > 61 do
    table.remove(out, start + 1)
    table.remove(out, start + 1)
    k = k - 2
    count = count - 1
  end
  return used, count, k, found
end
-- Windows' stored form: struct-packed doubles, the number of pairs of each window, then the
-- windows' pairs one after the other — one string, decoded and encoded by one C call each.
local NONE = {}
local function decode(stored)
  if not stored or #stored == 0 then return NONE end
  return { struct.unpack(fmt(#stored / 8), stored) }
end
local function encode(...)
  local out = {}
  local lists = { ... }
  for w = 1, #lists do out[w] = #lists[w] / 2 end
  local k = #lists
  for w = 1, #lists do
    local l = lists[w]
    for j = 1, #l do k = k + 1; out[k] = l[j] end
  end
  return struct.pack(fmt(k), unpack(out, 1, k))
end
-- A window read the quick way, when it is stored as this script writes it in the usual case: its
-- buckets in rising order, none ahead of the clock (so the live ones are the last ones). Answers
-- its count up to the current bucket, where its first live pair is (nil: none), and whether its
-- last pair is the current bucket; or nil when it is not so stored (an earlier release's order, a
-- clock moved back): scan reads it then. One comparison and one addition a pair, no table made.
local function quick(v, from, pairs_, current)
  local lo, used, first, prev = current - 60, 0, nil, -1
  for j = from, from + 2 * pairs_ - 2, 2 do
    local index = v[j]
    -- Not above the one before (a NaN is neither): not in rising order.
    if not (index > prev) then return nil end
    prev = index
    if index >= lo then
      used = used + v[j + 1]
      if not first then first = j end
    end
  end
  if prev > current then return nil end
  return used, first, prev == current
end
-- A window read by quick, with n added to its current bucket, as stored bytes in two pieces (its
-- live pairs as they are stored — a piece of the stored string, each number 8 bytes at its place
-- in v — and the current bucket's pair) and its number of pairs: the form scan gives it.
local function quickBytes(packed, v, from, pairs_, first, current, hasCurrent, n)
  if not first then
    if n > 0 then return struct.pack('<dd', current, n), '', 1 end
    return '', '', 0
  end
  local last = from + 2 * pairs_ - 2
  local live = (last - first) / 2 + 1
  if n == 0 then return string.sub(packed, first * 8 - 7, last * 8 + 8), '', live end
  if hasCurrent then return string.sub(packed, first * 8 - 7, last * 8 - 8), struct.pack('<dd', current, v[last + 1] + n), live end
  return string.sub(packed, first * 8 - 7, last * 8 + 8), struct.pack('<dd', current, n), live + 1
end
-- Adds to the current bucket, or puts it in its place in bucket order (after a clock moved back,
-- before the buckets ahead of it); past 61 buckets the first, the oldest, is dropped — as the
-- memory limiter keeps a window.
local function add(live, at, current, n)
  if n == 0 then return end
  if at then live[at] = live[at] + n
  else
    local j = #live + 1
    while j > 1 and live[j - 2] > current do j = j - 2 end
    table.insert(live, j, n)
    table.insert(live, j, current)
    while #live > 122 do table.remove(live, 1); table.remove(live, 1) end
  end
end
-- The key must outlive its newest day bucket's window (and its newest id, 24 h), and never
-- expire while a restriction until released stands (a persistent key stays persistent), nor
-- before a restriction's end.
local function keep(key, ms)
  local ttl = redis.call('PTTL', key)
  if ttl ~= -1 and ttl < ms then redis.call('PEXPIRE', key, ms) end
end
local function midnight(now) return (math.floor(now / 86400000) + 1) * 86400000 end
`;

const CONSUME = String.raw`
local NAMES = { 'messagesPerMinute', 'internalRecipientsPerHour', 'externalRecipientsPerHour', 'recipientsPerDay' }

-- The tenant's day window at now: live buckets, count, where the current bucket is, its index.
local function tenantWindow(tkey, now)
  local v = decode(redis.call('HGET', tkey, 'b'))
  local ct = math.floor(now / 1440000)
  local live, used, at = window(v, 2, v[1] or 0, ct)
  return live, used, at, ct
end

-- A refused or over-limit message's breach that restricts (which: set, window, kind) restricts
-- the sender, with limit-windows.ts restrictionFor's reason — unless an administrator released
-- the sender today (immune until the next UTC midnight). Answers the restriction's end (ms or
-- 'inf'), or nil when immune.
local function restrictFor(skey, which, now, um, ui, ue, ua)
  local im = redis.call('HGET', skey, 'im')
  if im and now < tonumber(im) then return nil end
  local used = { um, ui, ue, ua }
  local set = SETS[which[1]]
  local w = which[2]
  local why = 'over ' .. NAMES[w] .. ' (' .. string.format('%d', used[w]) .. ' used, limit ' .. string.format('%d', set[3][w]) .. ') of limit set ' .. set[1] .. ', action ' .. set[2]
  local cause = '{"kind":"limit","window":"' .. NAMES[w] .. '","set":' .. set[1] .. '}'
  local until_ms = 'inf'
  if set[2] == 'block-user-for-today' then until_ms = string.format('%d', midnight(now)) end
  redis.call('HSET', skey, 'rm', until_ms, 'rw', why, 'rs', string.format('%d', now), 'rc', cause)
  -- Until released: the key must not expire. For today: the key lives 24 h 25 min, past midnight.
  if until_ms == 'inf' then redis.call('PERSIST', skey) else keep(skey, TTL) end
  return until_ms
end

-- id: the message id's hash as a number (converted once, when the batch is read), or false for
-- none; over: count the message even over the sender's limits (COUNT_OVER_LIMIT).
local function one(skey, tkey, now, internal, external, id, tmode, over, cap)
  local all = internal + external
  local cm = math.floor(now / 1000)
  local ch = math.floor(now / 60000)
  local ca = math.floor(now / 1440000)

  -- The fields this script reads, by name (false when absent): HGETALL would also copy the spam
  -- reports (s, up to 29 KB) into the script at every message, and every string a script gets
  -- costs a pass over its bytes.
  -- The restriction's reason, since and cause are read only for a restricted sender, the
  -- immunity only for a refused message: each field asked for costs a lookup and a string.
  local f = redis.call('HMGET', skey, 'b', 'e', 'd', 'rm')
  local packed, ids, legacy, rm = f[1], f[2] or '', f[3], f[4]

  -- Rule 1: a restricted sender; nothing is counted. A for-today restriction past its end is
  -- dropped when the sender is next counted.
  local drop = nil
  if rm then
    if rm == 'inf' or now < tonumber(rm) then
      local why = redis.call('HMGET', skey, 'rw', 'rs', 'rc')
      return { 1, rm, why[1] or '', why[2] or '', why[3] or '' }
    end
    drop = { 'rm', 'rw', 'rs', 'rc' }
  end

  if legacy then ids = fromLegacy(legacy, ids) end

  -- A retry of a message counted in the last 24 hours counts once.
  local idAt = nil
  if id then
    local at = findId(ids, idKey(id))
    if at then
      if idTime(ids, at) > now - 86400000 then
        -- A retry counts once: its record is spent (SPENT), so the next message with the id counts.
        redis.call('HSET', skey, 'e', spendId(ids, at))
        if legacy then redis.call('HDEL', skey, 'd') end
        return 2
      end
      idAt = at
    end
  end

  -- The stored windows: each window's count, read the quick way when all four are stored as
  -- this script writes them (their stored form with this message added is then made from pieces
  -- of the stored string, if the message is counted); else one pass of scan over them, which
  -- makes that form in one table.
  local v = decode(packed)
  local nm, ni, ne, na = v[1] or 0, v[2] or 0, v[3] or 0, v[4] or 0
  local fi, fe, fa = 5 + 2 * nm, 5 + 2 * (nm + ni), 5 + 2 * (nm + ni + ne)
  local um, mf, mc = quick(v, 5, nm, cm)
  local ui, i_f, ic, ue, ef, ec, ua, af, aa
  if um then ui, i_f, ic = quick(v, fi, ni, ch) end
  if ui then ue, ef, ec = quick(v, fe, ne, ch) end
  if ue then ua, af, aa = quick(v, fa, na, ca) end
  local out, k = nil, 4
  if not ua then
    out = { 0, 0, 0, 0 }
    local cmn, cin, cen, can
    um, cmn, k = scan(v, 5, nm, cm, 1, out, k)
    ui, cin, k = scan(v, fi, ni, ch, internal, out, k)
    ue, cen, k = scan(v, fe, ne, ch, external, out, k)
    ua, can, k, aa = scan(v, fa, na, ca, all, out, k)
    out[1], out[2], out[3], out[4] = cmn, cin, cen, can
  end

  -- Breaches: used + increment > limit, set by set (limit-windows.ts computeBreaches).
  local any, enforced, which = false, false, nil
  CHECKS

  -- The tenant's cap (rule 11): only a message with external recipients is refused by it.
  local trefused, tused = false, 0
  local tlive, tat, tct = nil, nil, nil
  if tmode == 1 and external > 0 then
    tlive, tused, tat, tct = tenantWindow(tkey, now)
    if cap >= 0 and tused + external > cap then trefused = true end
  elseif tmode == 2 then
    trefused = true
  end

  if (not enforced or over) and not trefused then
    local packedNow
    if out then packedNow = struct.pack(fmt(k), unpack(out, 1, k))
    else
      local m1, m2, mn = quickBytes(packed, v, 5, nm, mf, cm, mc, 1)
      local i1, i2, inn = quickBytes(packed, v, fi, ni, i_f, ch, ic, internal)
      local e1, e2, en = quickBytes(packed, v, fe, ne, ef, ch, ec, external)
      local a1, a2, an = quickBytes(packed, v, fa, na, af, ca, aa, all)
      packedNow = struct.pack('<dddd', mn, inn, en, an) .. m1 .. m2 .. i1 .. i2 .. e1 .. e2 .. a1 .. a2
    end
    if id then
      local record = idRecord(id, now)
      if idAt then ids = string.sub(ids, 1, idAt - 1) .. record .. string.sub(ids, idAt + ID_RECORD)
      else
        ids = ids .. record
        -- The newest MAX_IDS (more only after converting an earlier release's ids).
        if #ids > ID_RECORD * MAX_IDS then ids = string.sub(ids, #ids - ID_RECORD * MAX_IDS + 1) end
      end
      redis.call('HSET', skey, 'b', packedNow, 'e', ids)
      if legacy then
        drop = drop or {}
        drop[#drop + 1] = 'd'
      end
    else
      redis.call('HSET', skey, 'b', packedNow)
    end
    if drop then redis.call('HDEL', skey, unpack(drop)) end
    -- Set when the day bucket is new — once per 24 minutes of a sender's activity at most, not
    -- on every message.
    if not aa then redis.call('PEXPIRE', skey, TTL) end
    if tlive then
      add(tlive, tat, tct, external)
      redis.call('HSET', tkey, 'b', encode(tlive))
      if not tat then redis.call('PEXPIRE', tkey, TTL) end
    end
    if not any then return 0 end
    -- Counted over the sender's limits (over): a restricting breach still restricts, after the
    -- count (which dropped an ended restriction).
    local until_ms = which and restrictFor(skey, which, now, um, ui, ue, ua)
    if until_ms then return { 3, 1, 1, um, ui, ue, ua, until_ms, 0, 0 } end
    return { 3, 1, 0, um, ui, ue, ua, '', 0, 0 }
  end

  local tflag = trefused and 1 or 0
  -- Refused: nothing counted; a breach whose set restricts (block-user before
  -- block-user-for-today) restricts the sender.
  local until_ms = which and restrictFor(skey, which, now, um, ui, ue, ua)
  if until_ms then return { 3, 0, 1, um, ui, ue, ua, until_ms, tflag, tused } end
  return { 3, 0, 0, um, ui, ue, ua, '', tflag, tused }
end

-- Every record must be read, or the later ones would be decided against the wrong KEYS: the
-- records are read first (the numbers kept in one flat table), and a batch with a malformed
-- record is refused before anything is counted.
local args = ARGV[1]
if #args % RECORD_BYTES ~= 0 then return redis.error_reply('outbound-pools: a malformed record in the batch') end
local r = {}
local n = 0
local pos = 1
while pos <= #args do
  local now, internal, external, id, tmode, cap
  now, internal, external, id, tmode, cap, pos = struct.unpack(RECORD, args, pos)
  -- now a whole number of ms (NaN and infinities fail both tests), the id -1 or a whole hash.
  if not (now >= 0 and now % 1 == 0 and tmode <= 7 and (id == -1 or (id >= 0 and id % 1 == 0))) then
    return redis.error_reply('outbound-pools: a malformed record in the batch')
  end
  r[n + 1], r[n + 2], r[n + 3], r[n + 4], r[n + 5], r[n + 6] = now, internal, external, id >= 0 and id, tmode, cap
  n = n + 6
end
local out = {}
local k = 1
for j = 1, n, 6 do
  local tmode = r[j + 4] % 4
  local skey = KEYS[k]
  local tkey = nil
  k = k + 1
  if tmode == 1 then tkey = KEYS[k]; k = k + 1 end
  out[#out + 1] = one(skey, tkey, r[j], r[j + 1], r[j + 2], r[j + 3], tmode, r[j + 4] >= 4, r[j + 5])
end
return out
`;

/** The Lua variable holding each window's count before this message, and its increment. */
const USED = { messagesPerMinute: ['um', '1'], internalRecipientsPerHour: ['ui', 'internal'], externalRecipientsPerHour: ['ue', 'external'], recipientsPerDay: ['ua', 'all'] } as const;

/**
 * The consume script for `sets` (in policy order), remembering at most `maxIds` message ids
 * per sender, deciding a batch of messages. The first breach of a `block-user` set decides the
 * restriction, else the first of a `block-user-for-today` set, as restrictionFor does.
 */
export function consumeScript(sets: readonly LimitSet[], maxIds: number): string {
  const table: string[] = [];
  const checks: string[] = [];
  // Two passes, as restrictionFor looks for block-user first, then block-user-for-today.
  sets.forEach((set, s) => {
    const limits = LIMIT_WINDOWS.map((window) => limitOf(set, window) ?? -1);
    table.push(`{ ${luaString(JSON.stringify(set.name))}, ${luaString(set.action)}, { ${limits.join(', ')} } }`);
    LIMIT_WINDOWS.forEach((window, w) => {
      const limit = limitOf(set, window);
      if (limit === null) return;
      const [used, increment] = USED[window];
      const body = ['any = true'];
      if (set.action !== 'alert') body.push('enforced = true');
      if (set.action === 'block-user') body.push(`if not which or which[3] > 1 then which = { ${s + 1}, ${w + 1}, 1 } end`);
      if (set.action === 'block-user-for-today') body.push(`if not which then which = { ${s + 1}, ${w + 1}, 2 } end`);
      checks.push(`if ${used} + ${increment} > ${limit} then ${body.join('; ')} end`);
    });
  });
  return [`local MAX_IDS = ${maxIds}`, `local RECORD, RECORD_BYTES = '${RECORD_FORMAT}', ${CONSUME_RECORD_BYTES}`, `local SETS = { ${table.join(', ')} }`, HELPERS, CONSUME.replace('CHECKS', checks.join('\n  '))].join('\n');
}

/**
 * The tenant's cap on a Cluster (its key is in another slot than the sender's): KEYS[1] the
 * tenant's hash; ARGV now (ms), external recipients, cap (-1 none), 'reserve' or 'refund'.
 * `reserve` answers `{1, used}` after counting the recipients, or `{0, used}` (refused, nothing
 * counted) when they would pass the cap; `refund` takes back a reservation of the same `now`
 * (its bucket, if still there) and answers 1.
 */
export const TENANT_SCRIPT = `${HELPERS}
local now = tonumber(ARGV[1])
local external = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local ct = math.floor(now / 1440000)
local v = decode(redis.call('HGET', KEYS[1], 'b'))
local live, used, at = window(v, 2, v[1] or 0, ct)
if ARGV[4] == 'refund' then
  -- Nothing stored (the hash expired): nothing to take back, and no hash without an expiry made.
  if v == NONE then return 1 end
  -- The bucket of now only; no bucket pruned (a refund is not a count).
  local n = v[1]
  for j = 2, 2 * n, 2 do
    if v[j] == ct then v[j + 1] = math.max(0, v[j + 1] - external) end
  end
  redis.call('HSET', KEYS[1], 'b', struct.pack(fmt(2 * n + 1), unpack(v, 1, 2 * n + 1)))
  return 1
end
if cap >= 0 and used + external > cap then return { 0, used } end
add(live, at, ct, external)
redis.call('HSET', KEYS[1], 'b', encode(live))
if not at then redis.call('PEXPIRE', KEYS[1], TTL) end
return { 1, used }
`;

/**
 * A refund (RateLimiter.refund): takes back what a consume at the same `now` counted. KEYS[1] the
 * sender's hash, KEYS[2] (when given) the tenant's; ARGV now (ms), internal and external
 * recipients, the message id's hash as 16 digits ('' for none). With an id, nothing is taken
 * back unless the id's record still says it was counted at `now` (a retry answered meanwhile
 * spent it, and was delivered on that count; a second refund finds it spent); the record is
 * then spent (SPENT, as a retry leaves it), so the next message with the id counts. In the
 * sender's windows (`b`): 1 from the message bucket, the recipients from the hour buckets and all
 * of them from the day bucket of `now`, never below zero; a bucket no longer kept is left alone,
 * and no other bucket is touched (none pruned: a refund is not a count, and the memory limiter
 * prunes nothing either). In the tenant's `b`: the external recipients from its bucket of `now`.
 * A hash that does not exist is not created. The formats are the consume script's, read and
 * written as it does. Answers 1 when it took the message back, 0 when it took nothing.
 */
export const REFUND_SCRIPT = `${HELPERS}
local now = tonumber(ARGV[1])
local internal = tonumber(ARGV[2])
local external = tonumber(ARGV[3])
local id = ARGV[4]
-- A window's pairs from v[from] on (pairs_ of them) appended to out after out[k], every one of
-- them, with n taken from the current bucket, never below zero. Answers the window's number of
-- pairs and the new k.
local function untake(v, from, pairs_, current, n, out, k)
  for j = from, from + 2 * pairs_ - 1, 2 do
    local index = v[j]
    local c = v[j + 1]
    if index == current then c = math.max(0, c - n) end
    out[k + 1] = index
    out[k + 2] = c
    k = k + 2
  end
  return pairs_, k
end
local f = redis.call('HMGET', KEYS[1], 'b', 'e', 'd')
local packed, ids, legacy = f[1], f[2], f[3]
if legacy then ids = fromLegacy(legacy, ids) end
-- The id's record (as the consume script finds it), counted at this very time, or nothing is
-- taken back.
if id ~= '' then
  local at = ids and findId(ids, idKey(id))
  if not at or idTime(ids, at) ~= now then return 0 end
  redis.call('HSET', KEYS[1], 'e', spendId(ids, at))
  if legacy then redis.call('HDEL', KEYS[1], 'd') end
end
if packed then
  local v = decode(packed)
  local nm, ni, ne, na = v[1] or 0, v[2] or 0, v[3] or 0, v[4] or 0
  local out, k = { 0, 0, 0, 0 }, 4
  local cm, ch, ca = math.floor(now / 1000), math.floor(now / 60000), math.floor(now / 1440000)
  out[1], k = untake(v, 5, nm, cm, 1, out, k)
  out[2], k = untake(v, 5 + 2 * nm, ni, ch, internal, out, k)
  out[3], k = untake(v, 5 + 2 * (nm + ni), ne, ch, external, out, k)
  out[4], k = untake(v, 5 + 2 * (nm + ni + ne), na, ca, internal + external, out, k)
  redis.call('HSET', KEYS[1], 'b', struct.pack(fmt(k), unpack(out, 1, k)))
end
if KEYS[2] and external > 0 then
  local tv = decode(redis.call('HGET', KEYS[2], 'b'))
  if tv ~= NONE then
    local ct = math.floor(now / 1440000)
    local out, k = { 0 }, 1
    out[1], k = untake(tv, 2, tv[1] or 0, ct, external, out, k)
    redis.call('HSET', KEYS[2], 'b', struct.pack(fmt(k), unpack(out, 1, k)))
  end
end
return 1
`;

/** Most spam reports remembered per sender (29 bytes each): the newest kept. */
export { MAX_SPAM_RECORDS };

/**
 * A spam report: KEYS[1] the sender's hash; ARGV now (ms), the message id's hash as 16 digits
 * ('' for none), the count that restricts, the window in ms, 'hour' or 'day', the action, the
 * limiter's maxMessageIdsPerSender. Reports are 29-character records in `s` (16-digit id hash,
 * 16 dashes for a report without an id, or 16 '+' for a spent id; 13-digit time) for 24 h 24
 * min, at most MAX_SPAM_RECORDS; a retry of an id reported in the last 24 h, among the newest
 * maxMessageIdsPerSender reports with an id, counts once (the id is then spent: its record keeps
 * its time and its place, without the id) — as the memory limiter keeps them (memory-limiter.ts recordReport). Answers `{count
 * in the window, restricted (0|1), until ms or 'inf', reason}`.
 */
export const SPAM_SCRIPT = `${HELPERS}
local now = tonumber(ARGV[1])
local id = ARGV[2]
local need = tonumber(ARGV[3])
local span = tonumber(ARGV[4])
local f = redis.call('HMGET', KEYS[1], 's', 'rm', 'im')
local s, rm, im = f[1] or '', f[2], f[3]
-- Message ids of reports, as the memory limiter keeps them: the newest maxIds reports made with
-- an id (their records start with a digit, or '+' once spent by a retry; '-' is a report without
-- one), each matched for 24 h.
local maxIds = tonumber(ARGV[7])
if maxIds == 0 then id = '' end
local bearing = 0
if id ~= '' then
  for j = 1, #s, 29 do
    local t = tonumber(string.sub(s, j + 16, j + 28))
    if t and t > now - ${SPAM_REPORT_MS} and string.sub(s, j, j) ~= '-' then bearing = bearing + 1 end
  end
end
local nth = 0
-- Keep the last 24 h (the longest window), oldest first.
local kept = {}
local seen = false
-- Kept for the day window's 61 buckets of 24 minutes (24 h 24 min), counted by bucket as the
-- memory limiter counts them (limit-windows.ts spamBucket, oldestBucket).
for j = 1, #s, 29 do
  local t = tonumber(string.sub(s, j + 16, j + 28))
  if t and t > now - ${SPAM_REPORT_MS} then
    local record = string.sub(s, j, j + 28)
    if id ~= '' and string.sub(record, 1, 1) ~= '-' then nth = nth + 1 end
    -- A retry of a reported message counts once: its record is spent ('+' for the id: it still
    -- counts in the window, and still holds its place among the ids), so the next report with
    -- the id counts.
    if not seen and id ~= '' and nth > bearing - maxIds and t > now - ${MESSAGE_ID_MEMORY_MS} and string.sub(record, 1, 16) == id then
      seen = true
      record = '++++++++++++++++' .. string.sub(record, 17, 29)
    end
    kept[#kept + 1] = record
  end
end
if not seen then
  kept[#kept + 1] = (id ~= '' and id or '----------------') .. string.format('%013d', now)
  while #kept > ${MAX_SPAM_RECORDS} do table.remove(kept, 1) end
end
local n = 0
local bucketMs = span / 60
local current = math.floor(now / bucketMs)
local oldest = current - 60
-- The buckets current - 60 ... current, as the memory limiter counts them: a report ahead of the
-- clock (the clock moved back) is kept, not counted.
for j = 1, #kept do
  local bucket = math.floor(tonumber(string.sub(kept[j], 17, 29)) / bucketMs)
  if bucket >= oldest and bucket <= current then n = n + 1 end
end
redis.call('HSET', KEYS[1], 's', table.concat(kept))
keep(KEYS[1], TTL)
if seen or n < need then return { n, 0, '', '' } end
if im and now < tonumber(im) then return { n, 0, '', '' } end
local until_ms = 'inf'
if ARGV[6] == 'block-user-for-today' then until_ms = string.format('%d', midnight(now)) end
-- A restriction in force that lasts as long or longer stays (as the memory limiter does); a
-- shorter one (an administrator's, one for today) gives way to this one.
if rm and (rm == 'inf' or now < tonumber(rm)) and (rm == 'inf' or (until_ms ~= 'inf' and tonumber(rm) >= tonumber(until_ms))) then
  return { n, 0, '', '' }
end
local why = string.format('%d', n) .. ' messages judged spam within the last ' .. ARGV[5] .. ' (restrict after ' .. string.format('%d', need) .. '), action ' .. ARGV[6]
local cause = '{"kind":"spam","count":' .. string.format('%d', n) .. ',"window":"' .. ARGV[5] .. '"}'
redis.call('HSET', KEYS[1], 'rm', until_ms, 'rw', why, 'rs', string.format('%d', now), 'rc', cause)
if until_ms == 'inf' then redis.call('PERSIST', KEYS[1]) else keep(KEYS[1], TTL) end
return { n, 1, until_ms, why }
`;

/**
 * An administrator's restriction: KEYS[1] the sender's hash; ARGV now (ms), until (ms or 'inf'),
 * reason ('' for none). Replaces any restriction of the key. Answers 1.
 */
export const RESTRICT_SCRIPT = `${HELPERS}
local now = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'rm', ARGV[2], 'rw', ARGV[3], 'rs', ARGV[1], 'rc', '{"kind":"admin"}')
if ARGV[2] == 'inf' then redis.call('PERSIST', KEYS[1])
else keep(KEYS[1], math.max(TTL, tonumber(ARGV[2]) - now + TTL)) end
return 1
`;

/**
 * A release: KEYS[1] the sender's hash; ARGV the immunity's end (ms), now (ms). Lifts the
 * restriction and, when one was in force at now, makes the sender immune to automatic
 * restriction until then. Answers 1 when a restriction in force was lifted, else 0 (a
 * for-today restriction past its end is dropped, and answers 0, as in memory).
 */
export const RELEASE_SCRIPT = `${HELPERS}
local rm = redis.call('HGET', KEYS[1], 'rm')
if not rm then return 0 end
redis.call('HDEL', KEYS[1], 'rm', 'rw', 'rs', 'rc')
if rm ~= 'inf' and tonumber(ARGV[2]) >= tonumber(rm) then return 0 end
redis.call('HSET', KEYS[1], 'im', ARGV[1])
-- A block-user restriction made the hash persistent; its counters expire again.
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], TTL) end
return 1
`;
