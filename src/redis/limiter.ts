// A rate limiter on Redis, shared by every process and node that sends for the same senders:
// the same semantics as the in-memory limiter (one behaviour suite covers both), with all of
// `consume` — restriction check, message-id dedupe, the four sliding windows of every limit set,
// counting, restricting — in ONE Lua script run with EVALSHA. Redis runs a script alone, so
// concurrent consumers on many processes never let more through than the limit, and a message is
// counted in all four windows or in none.
//
// Why a script and not `rate-limiter-flexible`: its limiters count one key against one window
// (consume = increment, then compare), so a message checked against four windows × several limit
// sets would take several round trips that other consumers interleave with — a message could be
// counted in the minute window and refused by the day window, and "refuse without counting"
// needs a compensating decrement that races too. It has no message-id dedupe for retries and no
// restriction (block-user, block-user-for-today) written in the same step as the breach. One
// script does check-then-count for every window at once.
//
// Key layout (prefix default `outbound-pools:`; `{…}` is the sender key, a Redis Cluster hash
// tag, so that one sender's keys live in one slot and the script may touch them all):
//   <prefix>{<key>}:m   hash, bucket index → messages           (60 × 1 s buckets, TTL ~61 s)
//   <prefix>{<key>}:i   hash, bucket index → internal recipients (60 × 60 s, TTL ~1 h)
//   <prefix>{<key>}:e   hash, bucket index → external recipients (60 × 60 s, TTL ~1 h)
//   <prefix>{<key>}:a   hash, bucket index → all recipients      (60 × 1,440 s, TTL ~24 h)
//   <prefix>{<key>}:r   hash { u: ISO end or '', um: end in ms or 'inf', why: reason }: the
//                       restriction; PX expiry for block-user-for-today, none for block-user
//   <prefix>{<key>}:ids sorted set, message id → time counted (ms); entries older than 24 h are
//                       trimmed, the key expires 24 h after the last count
//   <prefix>restricted  sorted set, sender key → end of restriction (ms, +inf): the listing for
//                       restricted(). It lives in another slot, so it is written after the script
//                       (not atomically with it); restricted() checks each entry against its
//                       restriction key and drops stale ones.
// Braces and `%` in sender keys are %-escaped in key names, so that a key cannot end its hash tag.
//
// Time is the caller's (`request.now`), never Redis TIME: bucket indexes, the 24 h of message
// ids and the end of a restriction are computed from it, so tests can move the clock, and nodes
// should keep their clocks in sync (NTP). Redis expiries only collect garbage.

import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { OutboundPoolsError, show } from '../errors.js';
import { computeBreaches, incrementsOf, LIMIT_WINDOWS, MESSAGE_ID_MEMORY_MS, nextUtcMidnight } from '../providers/limit-windows.js';
import type { ConsumeRequest, ConsumeResult, LimitSet, LimitWindow, ManagedRateLimiter, RestrictedSender, Restriction } from '../providers/types.js';

/** An ioredis client: a single `Redis` connection or a `Cluster`. */
export type RedisClient = Redis | Cluster;

/** Options of {@link createRedisRateLimiter}: give `client` or `url`, not both. */
export interface RedisRateLimiterOptions {
  /**
   * An ioredis client of your own (`new Redis(…)` or `new Redis.Cluster(…)`). The limiter adds a
   * command to it (`defineCommand`) and never closes it. For the policy's fail mode to apply
   * within its deadline while Redis is down, create it with `commandTimeout`,
   * `maxRetriesPerRequest: 1` and `enableOfflineQueue: false`, as the limiter does for `url`.
   * (Calls still reject after `commandTimeoutMs` with an offline queue, but a queued consume
   * may then run when Redis returns, counting a message that was decided without it.)
   */
  readonly client?: RedisClient;
  /**
   * A `redis://` or `rediss://` URL: the limiter creates its own ioredis client (ioredis must be
   * installed: it is an optional peer dependency) and {@link RedisRateLimiter.close} closes it.
   */
  readonly url?: string;
  /** Prepended to every key. Default `outbound-pools:`. No braces. */
  readonly prefix?: string;
  /**
   * How long a command may take before it rejects, in milliseconds (default 500): keep it below
   * the policy's `deadlines.rateLimiterMs`. Applied to every call, and as ioredis
   * `commandTimeout` on a client created from `url`.
   */
  readonly commandTimeoutMs?: number;
}

/** A {@link ManagedRateLimiter} on Redis. */
export interface RedisRateLimiter extends ManagedRateLimiter {
  /** Closes the client the limiter created from `url`; does nothing to a client you gave. */
  close(): Promise<void>;
}

const KNOWN = ['client', 'url', 'prefix', 'commandTimeoutMs'];
const DEFAULT_PREFIX = 'outbound-pools:';
const DEFAULT_COMMAND_TIMEOUT_MS = 500;
const MAX_COMMAND_TIMEOUT_MS = 60_000;
const COMMAND = 'outboundPoolsConsume';
const DAY_MS = MESSAGE_ID_MEMORY_MS;

/**
 * The consume script. KEYS: the four counters (m, i, e, a), the restriction, the message ids.
 * ARGV: now (ms), internal, external, message id ('' for none), limit sets as JSON
 * `[[name, action, m, i, e, a], …]` (-1: no limit), next UTC midnight as ISO and in ms.
 * Answers JSON: `{r: restriction}` when restricted, `{d: 1}` for a message id already counted,
 * else `{c: counted}` plus, when a window was breached, `n: [used per window]` (the caller
 * derives the breaches with computeBreaches) and `x: 1, um: end` when it restricted the sender.
 */
const CONSUME_LUA = String.raw`
local now = tonumber(ARGV[1])
local internal = tonumber(ARGV[2])
local external = tonumber(ARGV[3])
local messageId = ARGV[4]
local sets = cjson.decode(ARGV[5])
local DAY = 86400000

-- Rule 1: a restricted sender; nothing is counted.
local r = redis.call('HMGET', KEYS[5], 'u', 'um', 'why')
if r[1] and (r[2] == 'inf' or now < tonumber(r[2])) then
  return cjson.encode({ r = { u = r[1], why = r[3] or '' } })
end

-- A retry of a message counted in the last 24 hours counts once.
if messageId ~= '' then
  local at = redis.call('ZSCORE', KEYS[6], messageId)
  if at and tonumber(at) > now - DAY then
    return '{"d":1}'
  end
end

-- The four sliding windows: 60 buckets each; count = buckets (current - 59 .. current).
local BUCKET = { 1000, 60000, 60000, 1440000 }
local NAMES = { 'messagesPerMinute', 'internalRecipientsPerHour', 'externalRecipientsPerHour', 'recipientsPerDay' }
local inc = { 1, internal, external, internal + external }
local used = {}
local current = {}
local stale = {}
for w = 1, 4 do
  local cur = math.floor(now / BUCKET[w])
  local lo = cur - 59
  local flat = redis.call('HGETALL', KEYS[w])
  local sum = 0
  local old = {}
  for j = 1, #flat, 2 do
    local index = tonumber(flat[j])
    if index < lo then
      old[#old + 1] = flat[j]
    elseif index <= cur then
      sum = sum + tonumber(flat[j + 1])
    end
  end
  used[w] = sum
  current[w] = cur
  stale[w] = old
end

-- Breaches (used + increment > limit) decide; the caller reports them from 'n', with the same
-- arithmetic (limit-windows.ts computeBreaches).
local enforced = false
local blockUser = nil
local forToday = nil
local any = false
for s = 1, #sets do
  local set = sets[s]
  for w = 1, 4 do
    local limit = set[w + 2]
    if limit >= 0 and used[w] + inc[w] > limit then
      any = true
      local action = set[2]
      if action ~= 'alert' then enforced = true end
      if action == 'block-user' and not blockUser then blockUser = { s, w } end
      if action == 'block-user-for-today' and not forToday then forToday = { s, w } end
    end
  end
end

if not enforced then
  for w = 1, 4 do
    for _, field in ipairs(stale[w]) do redis.call('HDEL', KEYS[w], field) end
    if inc[w] > 0 then
      redis.call('HINCRBY', KEYS[w], string.format('%d', current[w]), inc[w])
    end
    redis.call('PEXPIRE', KEYS[w], BUCKET[w] * 61 + 60000)
  end
  if messageId ~= '' then
    redis.call('ZADD', KEYS[6], now, messageId)
    redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - DAY)
    redis.call('PEXPIRE', KEYS[6], DAY + 60000)
  end
  if not any then return '{"c":1}' end
  return cjson.encode({ n = used, c = 1 })
end

-- Refused: count nothing; restrict when a breached set says so (block-user first). The reason
-- is limit-windows.ts restrictionFor's; set names come JSON-quoted.
local which = blockUser or forToday
if which then
  local set = sets[which[1]]
  local w = which[2]
  local why = 'over ' .. NAMES[w] .. ' (' .. string.format('%d', used[w]) .. ' used, limit ' .. string.format('%d', set[w + 2]) .. ') of limit set ' .. set[1] .. ', action ' .. set[2]
  local u = ''
  local um = 'inf'
  if not blockUser then
    u = ARGV[6]
    um = ARGV[7]
  end
  redis.call('DEL', KEYS[5])
  redis.call('HSET', KEYS[5], 'u', u, 'um', um, 'why', why)
  if not blockUser then redis.call('PEXPIRE', KEYS[5], math.max(1, tonumber(um) - now)) end
  return cjson.encode({ n = used, c = 0, x = 1, um = um })
end
return cjson.encode({ n = used, c = 0 })
`;

interface ScriptAnswer {
  readonly r?: { readonly u: string; readonly why: string };
  readonly d?: 1;
  /** The four windows' counts before this message, when some set was breached. */
  readonly n?: readonly [number, number, number, number];
  readonly c?: 0 | 1;
  readonly x?: 1;
  readonly um?: string;
}

type ConsumeCommand = (k1: string, k2: string, k3: string, k4: string, k5: string, k6: string, ...argv: string[]) => Promise<string>;

function invalid(message: string): OutboundPoolsError {
  return new OutboundPoolsError('invalid-context', message);
}

interface Config {
  readonly client: RedisClient | undefined;
  readonly url: string | undefined;
  readonly prefix: string;
  readonly commandTimeoutMs: number;
}

function isClient(value: unknown): value is RedisClient {
  if (typeof value !== 'object' || value === null) return false;
  const client = value as Record<string, unknown>;
  return typeof client.defineCommand === 'function' && typeof client.hmget === 'function' && typeof client.status === 'string';
}

function checkOptions(options: unknown): Config {
  const example = "{ url: 'redis://127.0.0.1:6379' } or { client: new Redis(…) }";
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid(`createRedisRateLimiter takes an options object such as ${example}, got ${show(options)}.`);
  }
  const record = options as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!KNOWN.includes(key)) throw invalid(`Unknown Redis rate limiter option ${show(key)}; known: ${KNOWN.join(', ')}.`);
  }
  const { client, url, prefix = DEFAULT_PREFIX, commandTimeoutMs = DEFAULT_COMMAND_TIMEOUT_MS } = record;
  if (client !== undefined && url !== undefined) throw invalid('Give the Redis rate limiter either client or url, not both.');
  if (client === undefined && url === undefined) throw invalid(`The Redis rate limiter needs client or url, such as ${example}.`);
  if (client !== undefined && !isClient(client)) throw invalid('client must be an ioredis client (new Redis(…) or new Redis.Cluster(…)).');
  if (url !== undefined) {
    if (typeof url !== 'string') throw invalid(`url must be a redis:// or rediss:// URL, got ${show(url)}.`);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw invalid(`url ${show(url)} is not a URL; give a redis:// or rediss:// URL.`);
    }
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw invalid(`url must be a redis:// or rediss:// URL, got ${show(url)}.`);
  }
  if (typeof prefix !== 'string' || /[{}]/.test(prefix) || prefix.length > 200) {
    throw invalid(`prefix must be a string without braces (they would break the per-sender hash tags), got ${show(prefix)}.`);
  }
  if (typeof commandTimeoutMs !== 'number' || !Number.isInteger(commandTimeoutMs) || commandTimeoutMs < 1 || commandTimeoutMs > MAX_COMMAND_TIMEOUT_MS) {
    throw invalid(
      `commandTimeoutMs must be a whole number of milliseconds from 1 to ${MAX_COMMAND_TIMEOUT_MS}, got ${typeof commandTimeoutMs === 'number' ? commandTimeoutMs : show(commandTimeoutMs)}.`,
    );
  }
  return { client: client as RedisClient | undefined, url: url as string | undefined, prefix, commandTimeoutMs };
}

/** The sender key in a key name: `%`, `{` and `}` escaped, so that it cannot end its hash tag. */
function escapeKey(key: string): string {
  return key.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D'));
}

function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError(`The sender key must be a non-empty string, got ${show(key)}.`);
  return key;
}

function checkNow(now: unknown, what: string): number {
  const ms = now instanceof Date ? now.getTime() : Number.NaN;
  if (!Number.isFinite(ms)) throw new OutboundPoolsError('invalid-context', `The rate limiter's ${what} must be a valid Date.`);
  return ms;
}

function count(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new TypeError(`${name} must be a whole number ≥ 0, got ${show(value)}.`);
  return value;
}

function limitOf(set: LimitSet, window: LimitWindow): number {
  const limit = set[window];
  return typeof limit === 'number' && Number.isFinite(limit) ? limit : -1;
}

/** Loads ioredis on first use, so that the package works without it when no url is given. */
async function loadIoredis(): Promise<new (url: string, options: RedisOptions) => Redis> {
  try {
    const module = await import('ioredis');
    return (module.Redis ?? module.default) as unknown as new (url: string, options: RedisOptions) => Redis;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new Error('The Redis rate limiter needs ioredis: install ioredis (an optional peer dependency), e.g. npm install ioredis.');
    }
    throw error;
  }
}

function timeoutError(ms: number, what: string): Error {
  return Object.assign(new Error(`Redis did not answer ${what} within ${ms} ms`), { code: 'ETIMEDOUT' });
}

/** `promise`, or a rejection after `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError(ms, what)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Waits, up to `ms`, until a client is connected. A client that is reconnecting (Redis down)
 * makes the call reject after `ms` rather than queue: the policy's fail mode then applies.
 */
function whenReady(client: RedisClient, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  // A created client reconnects by itself ('close' → 'reconnecting'); 'end' is final.
  if (client.status === 'end') return Promise.reject(Object.assign(new Error('The Redis connection is closed'), { code: 'ECONNCLOSED' }));
  // Reconnecting after a lost connection: Redis is down; fail now rather than pile calls up.
  if (client.status === 'reconnecting' || client.status === 'close') {
    return Promise.reject(Object.assign(new Error(`Redis is not connected (${client.status}); ioredis is reconnecting`), { code: 'ECONNREFUSED' }));
  }
  if (client.status === 'wait') void client.connect().catch(() => {});
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(Object.assign(new Error(`Redis is not connected (${client.status}) and did not connect within ${ms} ms`), { code: 'ECONNREFUSED' }));
    }, ms);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/**
 * Creates a rate limiter on Redis: per sender key, four sliding windows (messages per minute,
 * internal and external recipients per hour, recipients per day) shared by every limit set of
 * the policy, restrictions (`block-user`, `block-user-for-today`) and message-id dedupe, all
 * shared by every process using the same Redis and prefix. `consume` is one Lua script: atomic,
 * so concurrent consumers never let more through than the limit. Time is `request.now`, never
 * Redis's clock.
 *
 * A Redis that is down or slow makes calls reject within `commandTimeoutMs`, so `decidePool`
 * applies `onProviderFailure.rateLimiter` (`fail-open` or `defer`); ioredis reconnects when Redis
 * comes back. Options are checked at once (`OutboundPoolsError`, code `invalid-context`).
 *
 * @example
 * ```ts
 * const rateLimiter = createRedisRateLimiter({ url: 'redis://127.0.0.1:6379', commandTimeoutMs: 300 });
 * const decision = await decidePool(message, { policy, providers: { rateLimiter } });
 * await rateLimiter.close();
 * ```
 */
export function createRedisRateLimiter(options: RedisRateLimiterOptions): RedisRateLimiter {
  const config = checkOptions(options);
  const { prefix, commandTimeoutMs } = config;
  const indexKey = `${prefix}restricted`;
  const owned = config.client === undefined;
  let clientPromise: Promise<RedisClient> | undefined;
  let created: Redis | undefined;
  let closed = false;

  const prepare = (client: RedisClient): RedisClient => {
    if (typeof (client as unknown as Record<string, unknown>)[COMMAND] !== 'function') {
      client.defineCommand(COMMAND, { numberOfKeys: 6, lua: CONSUME_LUA });
    }
    return client;
  };

  const getClient = (): Promise<RedisClient> => {
    if (closed) return Promise.reject(new Error('The Redis rate limiter is closed'));
    clientPromise ??= config.client !== undefined
      ? Promise.resolve(prepare(config.client))
      : loadIoredis().then((RedisClass) => {
          const client = new RedisClass(config.url!, {
            commandTimeout: commandTimeoutMs,
            connectTimeout: Math.max(commandTimeoutMs, 1_000),
            maxRetriesPerRequest: 1,
            enableOfflineQueue: false,
            // Reconnect quickly after an outage: 100 ms, 200 ms, … at most 1 s apart.
            retryStrategy: (times: number) => Math.min(times * 100, 1_000),
          });
          // ioredis reports connection errors as events; the calls reject on their own.
          client.on('error', () => {});
          created = client;
          if (closed) client.disconnect();
          return prepare(client);
        });
    return clientPromise;
  };

  // Calls that arrive while the client connects share one wait (one 'ready' listener, not one each).
  let connecting: Promise<void> | null = null;
  const ready = (client: RedisClient): Promise<void> | undefined => {
    if (client.status === 'ready') return undefined;
    return (connecting ??= whenReady(client, commandTimeoutMs).finally(() => {
      connecting = null;
    }));
  };

  /** Runs `command` on a ready client, within commandTimeoutMs in all (connecting included). */
  const run = <T>(what: string, command: (client: RedisClient) => Promise<T>): Promise<T> =>
    within(
      getClient().then(async (client) => {
        if (owned) await ready(client);
        return command(client);
      }),
      commandTimeoutMs,
      what,
    );

  const names = (key: string) => {
    const tag = `${prefix}{${escapeKey(key)}}`;
    return { m: `${tag}:m`, i: `${tag}:i`, e: `${tag}:e`, a: `${tag}:a`, r: `${tag}:r`, ids: `${tag}:ids` };
  };

  const consume = async (request: ConsumeRequest): Promise<ConsumeResult> => {
    const key = checkKey(request.key);
    const nowMs = checkNow(request.now, 'request.now');
    const internal = count(request.internalRecipients, 'internalRecipients');
    const external = count(request.externalRecipients, 'externalRecipients');
    const messageId = request.messageId ?? '';
    if (typeof messageId !== 'string') throw new TypeError(`messageId must be a string, got ${show(messageId)}.`);
    const sets = request.limits;
    // Names go JSON-quoted: the script puts them in the restriction's reason as restrictionFor does.
    const encoded = JSON.stringify(sets.map((set) => [JSON.stringify(set.name), set.action, ...LIMIT_WINDOWS.map((window) => limitOf(set, window))]));
    const midnight = nextUtcMidnight(nowMs);
    const k = names(key);
    const raw = await run('consume', (client) =>
      (client as unknown as Record<typeof COMMAND, ConsumeCommand>)[COMMAND](
        k.m,
        k.i,
        k.e,
        k.a,
        k.r,
        k.ids,
        String(nowMs),
        String(internal),
        String(external),
        messageId,
        encoded,
        midnight,
        String(Date.parse(midnight)),
      ),
    );
    const answer = JSON.parse(raw) as ScriptAnswer;
    if (answer.r !== undefined) {
      const restriction: Restriction = { until: answer.r.u === '' ? null : answer.r.u, ...(answer.r.why === '' ? {} : { reason: answer.r.why }) };
      return { restriction, breaches: [], counted: false };
    }
    if (answer.d === 1) return { restriction: null, breaches: [], counted: true };
    // The script compared the same numbers; the breaches are reported as the memory limiter does.
    const used = answer.n;
    const breaches =
      used === undefined
        ? []
        : computeBreaches(
            sets,
            { messagesPerMinute: used[0], internalRecipientsPerHour: used[1], externalRecipientsPerHour: used[2], recipientsPerDay: used[3] },
            incrementsOf(internal, external),
          );
    if (answer.x === 1) {
      // The listing lives in another slot than the sender's keys: written after the script.
      const score = answer.um === 'inf' ? '+inf' : String(answer.um);
      await run('restricted index', (client) => client.zadd(indexKey, score, key)).catch(() => {});
    }
    return { restriction: null, breaches, counted: answer.c === 1 };
  };

  const read = async (client: RedisClient, key: string, nowMs: number): Promise<Restriction | null | 'gone'> => {
    const [u, um, why] = await client.hmget(names(key).r, 'u', 'um', 'why');
    if (u === null || u === undefined || um === null || um === undefined) return 'gone';
    if (um !== 'inf' && !(nowMs < Number(um))) return null;
    return { until: u === '' ? null : u, ...(why ? { reason: why } : {}) };
  };

  return {
    consume,

    async restriction(key: string, now: Date): Promise<Restriction | null> {
      const sender = checkKey(key);
      const nowMs = checkNow(now, 'now');
      const found = await run('restriction', (client) => read(client, sender, nowMs));
      return found === 'gone' ? null : found;
    },

    async release(key: string): Promise<boolean> {
      const sender = checkKey(key);
      return run('release', async (client) => {
        const removed = await client.del(names(sender).r);
        await client.zrem(indexKey, sender);
        return removed > 0;
      });
    },

    async restricted(now: Date): Promise<readonly RestrictedSender[]> {
      const nowMs = checkNow(now, 'now');
      return run('restricted', async (client) => {
        const keys = await client.zrangebyscore(indexKey, `(${nowMs}`, '+inf');
        const found = await Promise.all(keys.map((key) => read(client, key, nowMs)));
        const list: RestrictedSender[] = [];
        const gone: string[] = [];
        found.forEach((restriction, index) => {
          const key = keys[index]!;
          if (restriction === 'gone') gone.push(key);
          else if (restriction !== null) list.push({ key, ...restriction });
        });
        if (gone.length > 0) await client.zrem(indexKey, ...gone);
        // Entries that ended over a day ago (by this caller's clock) whose key has not expired yet.
        await client.zremrangebyscore(indexKey, '-inf', nowMs - DAY_MS);
        return list;
      });
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (!owned || clientPromise === undefined) return;
      await clientPromise.catch(() => undefined);
      if (created === undefined) return;
      const client = created;
      if (client.status === 'ready') {
        await within(client.quit(), commandTimeoutMs, 'quit').catch(() => client.disconnect());
      } else {
        client.disconnect();
      }
    },
  };
}
