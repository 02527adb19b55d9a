// The Lua script behind the Redis limiter's `consume`: restriction check, message-id dedupe,
// the four sliding windows, every limit set, counting or restricting — one atomic step.
//
// The script is generated for one list of limit sets (a policy has one list; the limiter keeps
// one script per list it meets): the limits are constants in the code, compared in straight-line
// `if`s, rather than arguments decoded and looped over on every call. Redis runs Lua 5.1
// interpreted, one script at a time for the whole server: every call and every table the
// script makes is paid by every sender. The arithmetic is limit-windows.ts's, step by step (the
// shared behaviour suite checks that both limiters answer alike).
//
// KEYS: 1 the sender's hash `<prefix>{<key>}`, all there is about the sender: the four windows
// (`w`), the remembered message ids (`d`), the restriction (`ru` until as ISO or '', `rm` until
// in ms or 'inf', `rw` why). One HGETALL reads it all, one HSET writes what changed: two
// `redis.call`s for the usual message.
// ARGV: 1 now (ms), 2 internal recipients, 3 external recipients, 4 the message id's hash as 16
// digits ('' for none), 5 the next UTC midnight in ms, 6 the same as ISO 8601.
// Answers: 0 counted, nothing breached (the usual answer, a plain integer); 2 a message id
// already counted; `{1, until ISO or '', reason}` the sender is restricted; `{3, counted (0|1),
// restricted (0|1), m, i, e, a, until ms or 'inf' or ''}` when a window was breached, with the
// four windows' counts before this message (the caller derives the breaches from them).
//
// The windows (`w`): one MessagePack value, four arrays `[bucket, count, bucket, count, …]` of
// the non-empty buckets of messages (1 s buckets), internal and external recipients (60 s) and
// all recipients (1,440 s), unpacked and packed by Redis's cmsgpack (C) — so that reading a
// sender costs one field whatever its activity, not a field per bucket parsed in Lua. A
// window's count is the sum of its buckets current − 59 … current; buckets that left it are
// dropped when the sender is next counted.
// The message ids (`d`): one string of 29-character records, a 16-digit id hash then the 13-digit
// time it was counted, oldest first, at most MAX_IDS of them: looked up with a plain
// `string.find`, in C, rather than one sorted-set call for the lookup and three for the update.

import { LIMIT_WINDOWS } from '../providers/limit-windows.js';
import type { LimitSet } from '../providers/types.js';

/** A Lua string literal for any text: bytes outside a safe ASCII set as decimal escapes. */
function luaString(text: string): string {
  let out = '"';
  for (const byte of Buffer.from(text, 'utf8')) {
    const safe = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte === 0x20 || byte === 0x2d || byte === 0x5f || byte === 0x2e;
    out += safe ? String.fromCharCode(byte) : `\\${String(byte).padStart(3, '0')}`;
  }
  return `${out}"`;
}

/** The window's limit in a set, or null when the set does not limit it. */
function limitOf(set: LimitSet, window: (typeof LIMIT_WINDOWS)[number]): number | null {
  const limit = set[window];
  return typeof limit === 'number' && Number.isFinite(limit) ? limit : null;
}

const HEAD = String.raw`
local now = tonumber(ARGV[1])
local id = ARGV[4]
local internal = tonumber(ARGV[2])
local external = tonumber(ARGV[3])
local all = internal + external
local cm = math.floor(now / 1000)
local ch = math.floor(now / 60000)
local ca = math.floor(now / 1440000)
local ids, ru, rm, rw = '', nil, nil, nil
local packed = nil

local flat = redis.call('HGETALL', KEYS[1])
for j = 1, #flat, 2 do
  local field = flat[j]
  if field == 'w' then packed = flat[j + 1]
  elseif field == 'd' then ids = flat[j + 1]
  elseif field == 'rm' then rm = flat[j + 1]
  elseif field == 'ru' then ru = flat[j + 1]
  elseif field == 'rw' then rw = flat[j + 1] end
end

-- Rule 1: a restricted sender; nothing is counted. A for-today restriction past its end is
-- dropped when the sender is next counted.
local drop = nil
if rm then
  if rm == 'inf' or now < tonumber(rm) then return { 1, ru or '', rw or '' } end
  drop = { 'ru', 'rm', 'rw' }
end

-- A retry of a message counted in the last 24 hours counts once. The record's position must be
-- a multiple of 29: a match across two records is no match.
local idAt = nil
if id ~= '' then
  local at = string.find(ids, id, 1, true)
  while at and (at - 1) % 29 ~= 0 do at = string.find(ids, id, at + 1, true) end
  if at then
    if tonumber(string.sub(ids, at + 16, at + 28)) > now - 86400000 then return 2 end
    idAt = at
  end
end

-- A window's live buckets (current - 59 and later; later ones after a clock moved back), their
-- count up to the current bucket, and where the current bucket's count is (or nil).
local function window(pairs_, current)
  local live, used, at = {}, 0, nil
  if pairs_ then
    for j = 1, #pairs_, 2 do
      local index = pairs_[j]
      if index >= current - 59 then
        local n = pairs_[j + 1]
        live[#live + 1] = index
        live[#live + 1] = n
        if index <= current then
          used = used + n
          if index == current then at = #live end
        end
      end
    end
  end
  return live, used, at
end
local windows = packed and cmsgpack.unpack(packed) or {}
local lm, um, am = window(windows[1], cm)
local li, ui, ai = window(windows[2], ch)
local le, ue, ae = window(windows[3], ch)
local la, ua, aa = window(windows[4], ca)

-- Breaches: used + increment > limit, set by set (limit-windows.ts computeBreaches).
local any, enforced, which = false, false, nil
`;

const COUNT = (sets: string): string => String.raw`
if not enforced then
  -- Adds to the current bucket, or appends it; past 120 buckets (a clock moved back and forth)
  -- the first is dropped.
  local function add(live, at, current, n)
    if n == 0 then return end
    if at then live[at] = live[at] + n
    else
      live[#live + 1] = current
      live[#live + 1] = n
      if #live > 240 then table.remove(live, 1); table.remove(live, 1) end
    end
  end
  add(lm, am, cm, 1)
  add(li, ai, ch, internal)
  add(le, ae, ch, external)
  add(la, aa, ca, all)
  local set = { 'w', cmsgpack.pack({ lm, li, le, la }) }
  if id ~= '' then
    local record = id .. string.format('%013d', now)
    if idAt then ids = string.sub(ids, 1, idAt - 1) .. record .. string.sub(ids, idAt + 29)
    else
      ids = ids .. record
      if #ids > 29 * MAX_IDS then ids = string.sub(ids, 30) end
    end
    set[#set + 1] = 'd'; set[#set + 1] = ids
  end
  redis.call('HSET', KEYS[1], unpack(set))
  if drop then redis.call('HDEL', KEYS[1], unpack(drop)) end
  -- The key must outlive its newest day bucket's window (60 buckets of 1,440 s) and its newest
  -- id (24 h): 24 h 25 min after the day bucket began. Set when the day bucket is new — once per
  -- 24 minutes of a sender's activity at most, not on every message.
  if not aa then redis.call('PEXPIRE', KEYS[1], 87900000) end
  if not any then return 0 end
  return { 3, 1, 0, um, ui, ue, ua, '' }
end

-- Refused: nothing counted; a breach whose set restricts (block-user before
-- block-user-for-today) restricts the sender, with limit-windows.ts restrictionFor's reason.
if which then
  local SETS = ${sets}
  local used = { um, ui, ue, ua }
  local NAMES = { 'messagesPerMinute', 'internalRecipientsPerHour', 'externalRecipientsPerHour', 'recipientsPerDay' }
  local set = SETS[which[1]]
  local w = which[2]
  local why = 'over ' .. NAMES[w] .. ' (' .. string.format('%d', used[w]) .. ' used, limit ' .. string.format('%d', set[3][w]) .. ') of limit set ' .. set[1] .. ', action ' .. set[2]
  local u, until_ms = '', 'inf'
  if set[2] == 'block-user-for-today' then u, until_ms = ARGV[6], ARGV[5] end
  redis.call('HSET', KEYS[1], 'ru', u, 'rm', until_ms, 'rw', why)
  -- Until released: the key must not expire. For today: the key lives 24 h 25 min, past midnight.
  if until_ms == 'inf' then redis.call('PERSIST', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], 87900000) end
  return { 3, 0, 1, um, ui, ue, ua, until_ms }
end
return { 3, 0, 0, um, ui, ue, ua, '' }
`;

/** The Lua variable holding each window's count before this message, and its increment. */
const USED = { messagesPerMinute: ['um', '1'], internalRecipientsPerHour: ['ui', 'internal'], externalRecipientsPerHour: ['ue', 'external'], recipientsPerDay: ['ua', 'all'] } as const;

/**
 * The consume script for `sets` (in policy order), remembering at most `maxIds` message ids
 * per sender. The first breach of a `block-user` set decides the restriction, else the first of
 * a `block-user-for-today` set, as restrictionFor does.
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
  return [`local MAX_IDS = ${maxIds}`, HEAD, checks.join('\n'), COUNT(`{ ${table.join(', ')} }`)].join('\n');
}
