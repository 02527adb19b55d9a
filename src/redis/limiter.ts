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
// Key layout (prefix default `outbound-pools:`):
//   <prefix>{<key>}     hash, everything about one sender (consume-script.ts): `w` the four
//                       sliding windows' non-empty buckets as one MessagePack value (messages in
//                       60 × 1 s buckets, internal and external recipients in 60 × 60 s, all
//                       recipients in 60 × 1,440 s); `d` the remembered message ids (at most
//                       maxMessageIdsPerSender, 29 bytes each: a 16-digit hash of the id,
//                       limit-windows.ts messageIdHash, and the time it was counted); the
//                       restriction `ru` (end as ISO, '' until released), `rm` (end in ms or
//                       'inf'), `rw` (reason). The key expires 24 h 25 min after its newest day
//                       bucket began, never while a block-user restriction stands. `{<key>}` is
//                       a Redis Cluster hash tag: the sender lives in one slot.
//   <prefix>restricted  sorted set, sender key → end of restriction (ms, +inf): the listing for
//                       restricted(). It lives in another slot, so it is written after the script
//                       (not atomically with it); restricted() checks each entry against its
//                       sender's hash and drops stale ones.
// Braces and `%` in sender keys are %-escaped in key names, so that a key cannot end its hash tag.
//
// Time is the caller's (`request.now`), never Redis TIME: bucket indexes, the 24 h of message
// ids and the end of a restriction are computed from it, so tests can move the clock, and nodes
// should keep their clocks in sync (NTP). Redis expiries only collect garbage.
//
// Speed (bench/redis.mjs): the script makes two `redis.call`s for a message that fits (HGETALL,
// HSET; an HDEL when buckets left their window, a PEXPIRE once per day bucket), its limits are
// constants compiled into it (one script per list of limit sets), and it answers a number for
// the usual message. On the Node side: no JSON, the next midnight computed once a day, and one
// sweep timer for every call in flight (in-flight.ts) instead of a timer each.

import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { OutboundPoolsError, show } from '../errors.js';
import { computeBreaches, incrementsOf, MESSAGE_ID_MEMORY_MS, messageIdHash, nextUtcMidnight } from '../providers/limit-windows.js';
import { createHash } from 'node:crypto';
import { consumeScript } from './consume-script.js';
import { InFlight, timeoutError } from './in-flight.js';
import type { ConsumeRequest, ConsumeResult, LimitBreach, LimitSet, ManagedRateLimiter, RestrictedSender, Restriction } from '../providers/types.js';

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
   * How long Redis may take to answer a command once it is sent, in milliseconds (default 500):
   * keep it below the policy's `deadlines.rateLimiterMs`. A command unanswered that long means
   * Redis is stalled or gone: it rejects, and so does every call waiting to be sent. It also
   * bounds the wait for a connection. Calls waiting behind `maxInFlight` others have no timeout
   * of their own (the decision's deadline bounds them).
   */
  readonly commandTimeoutMs?: number;
  /**
   * Most commands sent to Redis and not answered yet (default 128); further calls wait in this
   * process, in arrival order, and are sent as answers come back. Backpressure: under a burst
   * the queue is here, where waiting is not mistaken for Redis being down.
   */
  readonly maxInFlight?: number;
  /**
   * Counted message ids remembered per sender for retries, the newest kept (default 100, as the
   * memory limiter; 0 disables). Each is stored as a 16-digit hash, whatever the id's length.
   */
  readonly maxMessageIdsPerSender?: number;
}

/** A {@link ManagedRateLimiter} on Redis. */
export interface RedisRateLimiter extends ManagedRateLimiter {
  /** Closes the client the limiter created from `url`; does nothing to a client you gave. */
  close(): Promise<void>;
}

const KNOWN = ['client', 'url', 'prefix', 'commandTimeoutMs', 'maxInFlight', 'maxMessageIdsPerSender'];
const DEFAULT_PREFIX = 'outbound-pools:';
const DEFAULT_COMMAND_TIMEOUT_MS = 500;
const MAX_COMMAND_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_IN_FLIGHT = 128;
const MAX_IN_FLIGHT = 100_000;
const DEFAULT_MAX_IDS = 100;
const MAX_IDS = 1_000_000;
const DAY_MS = MESSAGE_ID_MEMORY_MS;
/** How long a sender's hash outlives its last day bucket: the script's PEXPIRE (24 h 25 min). */
const SENDER_TTL_MS = 87_900_000;

/** The script's answer (see consume-script.ts). */
type ScriptAnswer = 0 | 2 | [1, string, string] | [3, 0 | 1, 0 | 1, number, number, number, number, string];

type ConsumeCommand = (...args: (string | number)[]) => Promise<ScriptAnswer>;

const NO_BREACHES: readonly LimitBreach[] = Object.freeze([]);
/** The usual answer: counted, nothing breached (or a retry already counted). Shared, frozen. */
const COUNTED: ConsumeResult = Object.freeze({ restriction: null, breaches: NO_BREACHES, counted: true });

function invalid(message: string): OutboundPoolsError {
  return new OutboundPoolsError('invalid-context', message);
}

interface Config {
  readonly client: RedisClient | undefined;
  readonly url: string | undefined;
  readonly prefix: string;
  readonly commandTimeoutMs: number;
  readonly maxInFlight: number;
  readonly maxIds: number;
}

function wholeNumber(value: unknown, name: string, min: number, max: number, unit = ''): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be a whole number${unit} from ${min} to ${max}, got ${typeof value === 'number' ? value : show(value)}.`);
  }
  return value;
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
  const { client, url, prefix = DEFAULT_PREFIX, commandTimeoutMs = DEFAULT_COMMAND_TIMEOUT_MS, maxInFlight = DEFAULT_MAX_IN_FLIGHT, maxMessageIdsPerSender = DEFAULT_MAX_IDS } = record;
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
  return {
    client: client as RedisClient | undefined,
    url: url as string | undefined,
    prefix,
    commandTimeoutMs: wholeNumber(commandTimeoutMs, 'commandTimeoutMs', 1, MAX_COMMAND_TIMEOUT_MS, ' of milliseconds'),
    maxInFlight: wholeNumber(maxInFlight, 'maxInFlight', 1, MAX_IN_FLIGHT),
    maxIds: wholeNumber(maxMessageIdsPerSender, 'maxMessageIdsPerSender', 0, MAX_IDS),
  };
}

const UNSAFE_IN_TAG = /[%{}]/;

/** The sender key in a key name: `%`, `{` and `}` escaped, so that it cannot end its hash tag. */
function escapeKey(key: string): string {
  if (!UNSAFE_IN_TAG.test(key)) return key;
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

/** `promise`, or a rejection after `ms` (for the few calls that do not go through InFlight). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError(ms, what)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A rejection delivered from the event loop's check phase (setImmediate), not as a microtask.
 * While Redis is down every call fails at once; a caller looping `while (…) await decide(…)`
 * would otherwise run only microtasks, and no timer — ioredis's reconnection included — or I/O
 * would get a turn: the loop would spin at 100 % CPU and Redis never come back.
 */
function rejectAfterYield(error: Error): Promise<never> {
  return new Promise((_, reject) => setImmediate(reject, error));
}

/**
 * Waits, up to `ms`, until a client is connected. A client that is reconnecting (Redis down)
 * makes the call reject at once (after yielding to the event loop) rather than queue: the
 * policy's fail mode then applies.
 */
function whenReady(client: RedisClient, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  // A created client reconnects by itself ('close' → 'reconnecting'); 'end' is final.
  if (client.status === 'end') return rejectAfterYield(Object.assign(new Error('The Redis connection is closed'), { code: 'ECONNCLOSED' }));
  // Reconnecting after a lost connection: Redis is down; fail now rather than pile calls up.
  if (client.status === 'reconnecting' || client.status === 'close') {
    return rejectAfterYield(Object.assign(new Error(`Redis is not connected (${client.status}); ioredis is reconnecting`), { code: 'ECONNREFUSED' }));
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


  /** The client once it exists (prepared), for the fast path of `run`. */
  let current: RedisClient | undefined;
  const getClient = (): Promise<RedisClient> => {
    if (closed) return Promise.reject(new Error('The Redis rate limiter is closed'));
    clientPromise ??= config.client !== undefined
      ? Promise.resolve((current = config.client))
      : loadIoredis().then((RedisClass) => {
          const client = new RedisClass(config.url!, {
            // No ioredis commandTimeout: InFlight times commands from when they are sent, with
            // one sweep timer rather than one timer per command.
            connectTimeout: Math.max(commandTimeoutMs, 1_000),
            maxRetriesPerRequest: 1,
            enableOfflineQueue: false,
            // Commands of one event-loop turn go out in one write (a pipeline): under load, one
            // system call for many decisions.
            enableAutoPipelining: true,
            // Reconnect quickly after an outage: 100 ms, 200 ms, … at most 1 s apart.
            retryStrategy: (times: number) => Math.min(times * 100, 1_000),
          });
          // ioredis reports connection errors as events; the calls reject on their own.
          client.on('error', () => {});
          created = client;
          if (closed) client.disconnect();
          return (current = client);
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

  const inFlight = new InFlight(config.maxInFlight, commandTimeoutMs);

  /**
   * Runs `command` on a ready client through InFlight. The usual case — the client exists and
   * is connected — goes straight there; otherwise the client is created or awaited first
   * (within commandTimeoutMs), and a Redis that is down fails the call at once.
   */
  const run = <T>(what: string, command: (client: RedisClient) => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new Error('The Redis rate limiter is closed'));
    const client = current;
    if (client !== undefined && (!owned || client.status === 'ready')) return inFlight.run(what, () => command(client));
    return within(
      getClient().then(async (client) => {
        if (owned) await ready(client);
        return client;
      }),
      commandTimeoutMs,
      what,
    ).then((client) => inFlight.run(what, () => command(client)));
  };

  /** The sender's hash: `<prefix>{<key>}`, the key a Cluster hash tag. */
  const senderKey = (key: string): string => `${prefix}{${escapeKey(key)}}`;

  // One script per list of limit sets (consume-script.ts), defined on the client as a command
  // named after the script's hash: found by the list itself (a policy's list is the same array
  // from call to call), else by its content (a policy given as a plain object each time).
  const commandBySets = new WeakMap<readonly LimitSet[], string>();
  const commandByContent = new Map<string, string>();
  const commandFor = (client: RedisClient, sets: readonly LimitSet[]): string => {
    let name = commandBySets.get(sets);
    if (name === undefined) {
      const content = JSON.stringify(sets);
      name = commandByContent.get(content);
      if (name === undefined) {
        const lua = consumeScript(sets, config.maxIds);
        name = `outboundPoolsConsume_${createHash('sha1').update(lua).digest('hex').slice(0, 16)}`;
        if (typeof (client as unknown as Record<string, unknown>)[name] !== 'function') client.defineCommand(name, { numberOfKeys: 1, lua });
        // Bounded: policies are few; a caller inventing limit sets per message starts over.
        if (commandByContent.size >= 1_000) commandByContent.clear();
        commandByContent.set(content, name);
      }
      commandBySets.set(sets, name);
    }
    return name;
  };
  // The next UTC midnight, as ms and ISO, recomputed when the day changes (a restriction
  // "for today" ends there).
  let midnightMs = 0;
  let midnightIso = '';

  const consume = async (request: ConsumeRequest): Promise<ConsumeResult> => {
    const key = checkKey(request.key);
    const nowMs = checkNow(request.now, 'request.now');
    const internal = count(request.internalRecipients, 'internalRecipients');
    const external = count(request.externalRecipients, 'externalRecipients');
    const { messageId } = request;
    if (messageId !== undefined && typeof messageId !== 'string') throw new TypeError(`messageId must be a string, got ${show(messageId)}.`);
    const sets = request.limits;
    if (!(nowMs < midnightMs && nowMs >= midnightMs - DAY_MS)) {
      midnightMs = (Math.floor(nowMs / DAY_MS) + 1) * DAY_MS;
      midnightIso = nextUtcMidnight(nowMs);
    }
    // 16 digits, zero-padded: the script's id records have a fixed width.
    const idHash = messageId === undefined || config.maxIds === 0 ? '' : String(messageIdHash(messageId)).padStart(16, '0');
    const answer = await run('consume', (client) =>
      (client as unknown as Record<string, ConsumeCommand>)[commandFor(client, sets)]!(senderKey(key), nowMs, internal, external, idHash, midnightMs, midnightIso),
    );
    if (answer === 0) return COUNTED;
    if (answer === 2) return COUNTED;
    if (answer[0] === 1) {
      const [, until, why] = answer;
      const restriction: Restriction = { until: until === '' ? null : until, ...(why === '' ? {} : { reason: why }) };
      return { restriction, breaches: NO_BREACHES, counted: false };
    }
    // The script compared the same numbers; the breaches are reported as the memory limiter does.
    const [, counted, restricted, m, i, e, a, until] = answer;
    const breaches = computeBreaches(sets, { messagesPerMinute: m, internalRecipientsPerHour: i, externalRecipientsPerHour: e, recipientsPerDay: a }, incrementsOf(internal, external));
    if (restricted === 1) {
      // The listing lives in another slot than the sender's keys: written after the script.
      const score = until === 'inf' ? '+inf' : until;
      await run('restricted index', (client) => client.zadd(indexKey, score, key)).catch(() => {});
    }
    return { restriction: null, breaches, counted: counted === 1 };
  };

  const read = async (client: RedisClient, key: string, nowMs: number): Promise<Restriction | null | 'gone'> => {
    const [u, um, why] = await client.hmget(senderKey(key), 'ru', 'rm', 'rw');
    if (u === null || u === undefined || um === null || um === undefined) return 'gone';
    if (um !== 'inf' && !(nowMs < Number(um))) return null;
    return { until: u === '' ? null : u, ...(why ? { reason: why } : {}) };
  };

  return {
    consume,
    reportSpam: async () => { throw new Error('stub'); },
    restrict: async () => { throw new Error('stub'); },
    subscribe: () => () => {},

    async restriction(key: string, now: Date): Promise<Restriction | null> {
      const sender = checkKey(key);
      const nowMs = checkNow(now, 'now');
      const found = await run('restriction', (client) => read(client, sender, nowMs));
      return found === 'gone' ? null : found;
    },

    async release(key: string): Promise<boolean> {
      const sender = checkKey(key);
      return run('release', async (client) => {
        const removed = await client.hdel(senderKey(sender), 'ru', 'rm', 'rw');
        // A block-user restriction made the hash persistent; its counters expire again.
        if (removed > 0) await client.pexpire(senderKey(sender), SENDER_TTL_MS);
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
          else if (restriction !== null) list.push({ key, ...restriction } as RestrictedSender);
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
