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
// KEYS: 1 the sender's hash `<prefix>{<key>}`, all there is about the sender: the four windows'
// buckets (`m<bucket>`, `i<bucket>`, `e<bucket>`, `a<bucket>`), the remembered message ids (`d`),
// the restriction (`ru` until as ISO or '', `rm` until in ms or 'inf', `rw` why). One HGETALL
// reads it all, one HSET writes what changed: two `redis.call`s for the usual message.
// ARGV: 1 now (ms), 2 internal recipients, 3 external recipients, 4 the message id's hash as 16
// digits ('' for none), 5 the next UTC midnight in ms, 6 the same as ISO 8601.
// Answers: 0 counted, nothing breached (the usual answer, a plain integer); 2 a message id
// already counted; `{1, until ISO or '', reason}` the sender is restricted; `{3, counted (0|1),
// restricted (0|1), m, i, e, a, until ms or 'inf' or ''}` when a window was breached, with the
// four windows' counts before this message (the caller derives the breaches from them).
//
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
local um, ui, ue, ua = 0, 0, 0, 0
local nm, ni, ne, na = 0, 0, 0, 0
local stale = {}
local ids, ru, rm, rw = '', nil, nil, nil

-- One read: field = window letter .. bucket index (m: 1 s buckets, i and e: 60 s, a: 1,440 s),
-- a window's count being the sum of its buckets current - 59 .. current; the ids; the
-- restriction. Buckets that left their window are collected, deleted when the sender is counted.
local flat = redis.call('HGETALL', KEYS[1])
for j = 1, #flat, 2 do
  local field = flat[j]
  local kind = string.byte(field, 1)
  if kind == 100 then ids = flat[j + 1]
  elseif kind == 114 then
    if field == 'rm' then rm = flat[j + 1] elseif field == 'ru' then ru = flat[j + 1] else rw = flat[j + 1] end
  else
    local index = tonumber(string.sub(field, 2))
    if kind == 109 then
      if index < cm - 59 then stale[#stale + 1] = field
      elseif index <= cm then
        local n = tonumber(flat[j + 1])
        um = um + n
        if index == cm then nm = n end
      end
    elseif kind == 97 then
      if index < ca - 59 then stale[#stale + 1] = field
      elseif index <= ca then
        local n = tonumber(flat[j + 1])
        ua = ua + n
        if index == ca then na = n end
      end
    elseif index < ch - 59 then stale[#stale + 1] = field
    elseif index <= ch then
      local n = tonumber(flat[j + 1])
      if kind == 105 then
        ui = ui + n
        if index == ch then ni = n end
      else
        ue = ue + n
        if index == ch then ne = n end
      end
    end
  end
end

-- Rule 1: a restricted sender; nothing is counted. A for-today restriction past its end is
-- dropped when the sender is next counted.
if rm then
  if rm == 'inf' or now < tonumber(rm) then return { 1, ru or '', rw or '' } end
  stale[#stale + 1] = 'ru'; stale[#stale + 1] = 'rm'; stale[#stale + 1] = 'rw'
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

-- Breaches: used + increment > limit, set by set (limit-windows.ts computeBreaches).
local any, enforced, which = false, false, nil
`;

const COUNT = (sets: string): string => String.raw`
if not enforced then
  local set = { 'm' .. cm, nm + 1 }
  if internal > 0 then set[#set + 1] = 'i' .. ch; set[#set + 1] = ni + internal end
  if external > 0 then set[#set + 1] = 'e' .. ch; set[#set + 1] = ne + external end
  if all > 0 then set[#set + 1] = 'a' .. ca; set[#set + 1] = na + all end
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
  if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
  -- The key must outlive its newest day bucket's window (60 buckets of 1,440 s) and its newest
  -- id (24 h): 24 h 25 min after the day bucket began. Set when the day bucket is new — once per
  -- 24 minutes of a sender's activity at most, not on every message.
  if na == 0 then redis.call('PEXPIRE', KEYS[1], 87900000) end
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
