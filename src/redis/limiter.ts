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
//   <prefix>{<key>}     hash, everything about one sender (consume-script.ts): `b` the four
//                       sliding windows' non-empty buckets as one string of packed doubles
//                       (messages in 60 × 1 s buckets, internal and external recipients in
//                       60 × 60 s, all recipients in 60 × 1,440 s); `d` the remembered message ids
//                       (at most maxMessageIdsPerSender, 29 bytes each: a 16-digit hash of the id,
//                       limit-windows.ts messageIdHash, and the time it was counted); the
//                       restriction `rm` (end in ms or 'inf'), `rw` (reason), `rs` (since, ms),
//                       `rc` (cause, JSON); `im` the end of the immunity a release gives; `s` the
//                       spam reports of the last 24 h. The key expires 24 h 25 min after its newest
//                       day bucket began, never while a block-user restriction stands. `{<key>}`
//                       is a Redis Cluster hash tag: the sender lives in one slot.
//   <prefix>tenant:{<tenant>}  hash, a tenant's external recipients over 24 h (`b`).
//   <prefix>restricted  sorted set, sender key → end of restriction (ms, +inf): the listing for
//                       restricted(). It lives in another slot, so it is written after the script
//                       (not atomically with it); restricted() checks each entry against its
//                       sender's hash and drops stale ones.
//   <prefix>events      the pub/sub channel of the limiter's events (subscribe).
// Braces and `%` in sender keys are %-escaped in key names, so that a key cannot end its hash tag.
//
// The tenant: on a single Redis the consume script decides the sender and the tenant together
// (exact, atomic); on a Cluster their keys are in different slots, so the limiter reserves on the
// tenant first, then decides the sender, and refunds the tenant when the sender did not count
// the message (docs/limits.md).
//
// Time is the caller's (`request.now`), never Redis TIME: bucket indexes, the 24 h of message
// ids and the end of a restriction are computed from it, so tests can move the clock, and nodes
// should keep their clocks in sync (NTP). Redis expiries only collect garbage.
//
// Speed (bench/redis.mjs): on a single Redis the consumes of one event-loop turn go out as EVALSHAs
// of 32 (a batch, decided message by message inside the script, sent as soon as it is full so that
// Redis works while this process decides the next ones), every message's numbers in one argument; the script makes two `redis.call`s for a message that fits (HMGET, HSET; an HDEL
// when a for-today restriction ended, a PEXPIRE once per day bucket), its limits are constants
// compiled into it (one script per list of limit sets), and it answers a number for the usual
// message. On the Node side: no JSON, and one sweep timer for every command in flight
// (in-flight.ts) instead of a timer each.

import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { OutboundPoolsError, show } from '../errors.js';
import { ADMIN_REASON, adminReason, badCountOverLimit, computeBreaches, incrementsOf, MESSAGE_ID_MEMORY_MS, MAX_SPAM_COUNT, limiterTime, messageIdHash, validTime, restrictionFor } from '../providers/limit-windows.js';
import { createHash, randomUUID } from 'node:crypto';
import { CONSUME_RECORD_BYTES, COUNT_OVER_LIMIT, consumeScript, REFUND_SCRIPT, RELEASE_SCRIPT, RESTRICT_SCRIPT, SPAM_SCRIPT, TENANT_SCRIPT, writeConsumeRecord } from './consume-script.js';
import { InFlight, timeoutError } from './in-flight.js';
import type {
  ConsumeRequest,
  ConsumeResult,
  LimiterEvent,
  LimiterEventListener,
  LimitBreach,
  LimitSet,
  ManagedRateLimiter,
  RestrictedSender,
  Restriction,
  RestrictionCause,
  RestrictOptions,
  SpamReport,
  SpamReportResult,
  SpamRestrictAfter,
  TenantBreach,
  TenantLimitRequest,
} from '../providers/types.js';

/** An ioredis client: a single `Redis` connection or a `Cluster`. */
export type RedisClient = Redis | Cluster;

/** Options of {@link createRedisRateLimiter}: give `client` or `url`, not both. */
export interface RedisRateLimiterOptions {
  /**
   * An ioredis client of your own (`new Redis(…)` or `new Redis.Cluster(…)`). The limiter never
   * closes it (its pub/sub connection for `subscribe` is a `duplicate()`, closed by `close()`). For the policy's fail mode to apply
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
/** Most messages one consume script decides (on a single Redis; one on a Cluster). */
const MAX_BATCH = 256;
/**
 * A batch this large is sent at once rather than at the end of the event-loop turn, so that Redis
 * decides it while this process works on the next messages (bench/redis.mjs, 256 in flight: 16,
 * 32, 64 and 256 tried; 32 the fastest).
 */
const SEND_AT = 32;

/** One message's answer from the consume script (see consume-script.ts). */
type ScriptAnswer = 0 | 2 | [1, string, string, string, string] | [3, 0 | 1, 0 | 1, number, number, number, number, string, 0 | 1, number];

type ScriptCommand<T> = (...args: (string | number)[]) => Promise<T>;

/** A Lua script and its SHA-1 (the name EVALSHA knows it by). */
interface Script {
  readonly lua: string;
  readonly sha: string;
}

function scriptOf(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

const tenantScript = scriptOf(TENANT_SCRIPT);
const spamScript = scriptOf(SPAM_SCRIPT);
const restrictScript = scriptOf(RESTRICT_SCRIPT);
const releaseScript = scriptOf(RELEASE_SCRIPT);
const refundScript = scriptOf(REFUND_SCRIPT);

const NO_BREACHES: readonly LimitBreach[] = Object.freeze([]);
/** The usual answer: counted, nothing breached. Shared, frozen. */
const COUNTED: ConsumeResult = Object.freeze({ restriction: null, breaches: NO_BREACHES, counted: true });
/** The script's answer 2, a retry: counted before, nothing counted now (nothing to refund). Shared, frozen. */
const RETRY: ConsumeResult = Object.freeze({ restriction: null, breaches: NO_BREACHES, counted: true, retry: true });

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

/** The record's mode flag for `request.countOverLimit` (0 or COUNT_OVER_LIMIT), checked as the memory limiter checks it. */
function overLimitMode(countOverLimit: unknown): number {
  if (countOverLimit === undefined || countOverLimit === false) return 0;
  if (countOverLimit === true) return COUNT_OVER_LIMIT;
  return badCountOverLimit(countOverLimit);
}

/** Whether the consume script's answer counted the message now (not a retry, a refusal or a restricted sender). */
function countedNow(answer: ScriptAnswer): boolean {
  return answer === 0 || (Array.isArray(answer) && answer[0] === 3 && answer[1] === 1);
}

/** The raw reply still to come of a command that timed out after it was sent (in-flight.ts lateTimeoutError), else undefined. */
function lateReplyOf(error: unknown): Promise<unknown> | undefined {
  const reply = (error as { lateReply?: unknown } | null)?.lateReply;
  return reply instanceof Promise ? reply : undefined;
}

/**
 * For a command that timed out after it was sent (it may still run), a new error (same message
 * and code, the original as its `cause`) whose `lateReply` is the reply still to come passed
 * through `map` — one message's answer of a batch's, say — and, when `asLate`, whose `late` is
 * it too: the consume's public late answer (RateLimiter.consume), a ConsumeResult. Any other error
 * as it is. The mapped promise's rejection is handled here, so that nobody has to wait for it.
 */
function withLate<A>(error: unknown, map: (answer: A) => unknown, asLate = false): unknown {
  const reply = lateReplyOf(error);
  if (reply === undefined) return error;
  const mapped = (reply as Promise<A>).then(map);
  mapped.catch(() => {});
  const message = error instanceof Error ? error.message : String(error);
  const copy = Object.assign(new Error(message, { cause: error }), { code: (error as { code?: unknown }).code, lateReply: mapped });
  return asLate ? Object.assign(copy, { late: mapped }) : copy;
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


/**
 * The most recipients a request may count: far above any message (decidePool takes at most
 * 100,000), and written in plain digits in the batch record (a number of 10²¹ or more would be
 * written with an exponent, which the script's pattern does not read).
 */
const MAX_COUNT = 1_000_000_000;

function count(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_COUNT) {
    throw new TypeError(`${name} must be a whole number from 0 to ${MAX_COUNT.toLocaleString('en-US')}, got ${show(value)}.`);
  }
  return value;
}

/** A restriction as the scripts store it: until (ms or 'inf'), reason, since (ms), cause (JSON). */
function restrictionOf(until: string, why: string, since: string, cause: string): Restriction {
  let parsedCause: RestrictionCause | undefined;
  try {
    parsedCause = cause === '' ? undefined : (JSON.parse(cause) as RestrictionCause);
  } catch {
    parsedCause = undefined;
  }
  return {
    until: until === 'inf' ? null : new Date(Number(until)).toISOString(),
    ...(why === '' ? {} : { reason: why }),
    ...(since === '' ? {} : { since: new Date(Number(since)).toISOString() }),
    ...(parsedCause === undefined ? {} : { cause: parsedCause }),
  };
}

function checkTenant(tenant: unknown): TenantLimitRequest {
  if (typeof tenant !== 'object' || tenant === null) throw new TypeError(`tenant must be an object { key, externalRecipientsPerDay? }, got ${show(tenant)}.`);
  const { key, externalRecipientsPerDay } = tenant as Record<string, unknown>;
  if (typeof key !== 'string' || key.length === 0) throw new TypeError(`tenant.key must be a non-empty string, got ${show(key)}.`);
  if (externalRecipientsPerDay === undefined) return { key };
  return { key, externalRecipientsPerDay: count(externalRecipientsPerDay, 'tenant.externalRecipientsPerDay') };
}

function checkSpamReport(report: unknown): { key: string; nowMs: number; idHash: string; restrictAfter: SpamRestrictAfter } {
  if (typeof report !== 'object' || report === null) throw new TypeError(`reportSpam takes { key, messageId?, restrictAfter, now }, got ${show(report)}.`);
  const { key, messageId, restrictAfter, now } = report as Record<string, unknown>;
  const sender = checkKey(key);
  const nowMs = limiterTime(now, 'report.now');
  if (messageId !== undefined && typeof messageId !== 'string') throw new TypeError(`messageId must be a string, got ${show(messageId)}.`);
  const after = (typeof restrictAfter === 'object' && restrictAfter !== null ? restrictAfter : {}) as Record<string, unknown>;
  const { count: need, window, action } = after;
  if (typeof need !== 'number' || !Number.isInteger(need) || need < 1 || need > MAX_SPAM_COUNT) throw invalid(`restrictAfter.count must be a whole number from 1 to 1,000, got ${show(need)}.`);
  if (window !== 'hour' && window !== 'day') throw invalid(`restrictAfter.window must be 'hour' or 'day', got ${show(window)}.`);
  if (action !== 'block-user' && action !== 'block-user-for-today') throw invalid(`restrictAfter.action must be 'block-user' or 'block-user-for-today', got ${show(action)}.`);
  const idHash = messageId === undefined ? '' : String(messageIdHash(messageId)).padStart(16, '0');
  return { key: sender, nowMs, idHash, restrictAfter: { count: need, window, action } };
}

function checkRestrictOptions(options: unknown): { untilMs: number | null; reason: string | undefined; nowMs: number } {
  if (typeof options !== 'object' || options === null) throw invalid(`restrict takes options { until?, reason?, now? }, got ${show(options)}.`);
  const { until, reason, now } = options as Record<string, unknown>;
  const nowMs = now === undefined ? Date.now() : limiterTime(now, 'now');
  const untilMs = until === undefined || until === null ? null : validTime(until, 'until');
  const checked = adminReason(reason);
  if (untilMs !== null && untilMs <= nowMs) throw invalid(`restrict: options.until (${new Date(untilMs).toISOString()}) must be after now (${new Date(nowMs).toISOString()}).`);
  return { untilMs, reason: checked ?? ADMIN_REASON, nowMs };
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
 * so concurrent consumers never let more through than the limit (on a single Redis, one script
 * run decides every consume of an event-loop turn). A request's `tenant` is counted with the
 * sender, both or neither: in the same script on a single Redis, reserved then refunded on a
 * Cluster (docs/limits.md). `reportSpam`, `restrict`, `release` (with immunity to automatic
 * restriction until the next UTC midnight), `restricted` and `subscribe` (events of every node,
 * through pub/sub on a connection opened by the first subscribe) manage restrictions. Time is
 * `request.now`, never Redis's clock.
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
  const channel = `${prefix}events`;
  const owned = config.client === undefined;
  /** This limiter's id in the events it publishes: its own come back through pub/sub, ignored. */
  const origin = randomUUID();
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
            // No automatic pipelining: consumes are batched already (one command per event-loop
            // turn), and a command must reach the socket when InFlight starts its clock, not a
            // loop turn later (behind whatever this process does meanwhile).
            enableAutoPipelining: false,
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
  /** The tenant's hash: `<prefix>tenant:{<tenant>}`, in its own slot. */
  const tenantKey = (tenant: string): string => `${prefix}tenant:{${escapeKey(tenant)}}`;

  /**
   * Runs a script by its hash (EVALSHA), and by its text (EVAL) when the server does not know it
   * yet (NOSCRIPT: a new server, a restart, another Cluster master). Plain commands, not
   * ioredis's defineCommand: those are missing from an automatic pipeline made before they were
   * defined.
   */
  const evalScript = <T>(client: RedisClient, script: Script, numberOfKeys: number, args: readonly (string | number | Buffer)[]): Promise<T> =>
    (client.evalsha(script.sha, numberOfKeys, ...args) as Promise<T>).catch((error: unknown) => {
      if (!(error instanceof Error) || !error.message.includes('NOSCRIPT')) throw error;
      return client.eval(script.lua, numberOfKeys, ...args) as Promise<T>;
    });
  const scriptCommand = <T>(client: RedisClient, script: Script, numberOfKeys: number): ScriptCommand<T> =>
    (...args) => evalScript<T>(client, script, numberOfKeys, args);

  // One consume script per list of limit sets (consume-script.ts), defined on the client as a
  // command named after the script's hash: found by the list itself (a policy's list is the same
  // array from call to call), else by its content (a policy given as a plain object each time).
  const scriptBySets = new WeakMap<readonly LimitSet[], Script>();
  const scriptByContent = new Map<string, Script>();
  const consumeLua = (sets: readonly LimitSet[]): Script => {
    let script = scriptBySets.get(sets);
    if (script === undefined) {
      const content = JSON.stringify(sets);
      script = scriptByContent.get(content);
      if (script === undefined) {
        script = scriptOf(consumeScript(sets, config.maxIds));
        // Bounded: policies are few; a caller inventing limit sets per message starts over.
        if (scriptByContent.size >= 1_000) scriptByContent.clear();
        scriptByContent.set(content, script);
      }
      scriptBySets.set(sets, script);
    }
    return script;
  };
  // Batches (consume-script.ts): the consumes that share a script go to Redis as one EVALSHA:
  // at once when SEND_AT are waiting, else from setImmediate — after the turn's I/O callbacks and
  // their promise jobs have queued what they will (MAX_BATCH bounds a script all the same). On a Cluster a
  // script may touch one slot only: one message a script.
  // A batch's records, its lists and the command's arguments live until Redis answers: made by
  // `new` and Array.of, not as literals (see records.ts on allocation-site pretenuring).
  class Pending {
    constructor(
      /** The sender's key. */
      readonly key: string,
      /** The tenant's key, when the script counts the tenant too. */
      readonly tenantKey: string | undefined,
      // The message's record in ARGV[1] (consume-script.ts writeConsumeRecord).
      readonly now: number,
      readonly internal: number,
      readonly external: number,
      /** The message id's hash, -1 for none. */
      readonly idHash: number,
      /** The tenant mode (0–3), plus COUNT_OVER_LIMIT when the request says countOverLimit. */
      readonly mode: number,
      /** The tenant's cap, -1 for none. */
      readonly cap: number,
      readonly resolve: (answer: ScriptAnswer) => void,
      readonly reject: (error: unknown) => void,
    ) {}
  }
  const batches = new Map<Script, Pending[]>();
  let flushScheduled = false;
  const sendBatch = (lua: Script, batch: readonly Pending[]): void => {
    const keys: (string | Buffer)[] = Array.of();
    const records = Buffer.allocUnsafe(batch.length * CONSUME_RECORD_BYTES);
    let offset = 0;
    for (const pending of batch) {
      keys.push(pending.key);
      if (pending.tenantKey !== undefined) keys.push(pending.tenantKey);
      offset = writeConsumeRecord(records, offset, pending.now, pending.internal, pending.external, pending.idHash, pending.mode, pending.cap);
    }
    const count = keys.length;
    keys.push(records);
    run('consume', (client) => evalScript<ScriptAnswer[]>(client, lua, count, keys)).then(
      (answers) => {
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(answers[i]!);
      },
      (error: unknown) => {
        // Timed out after it was sent: each message's answer, when Redis answers the batch.
        for (let i = 0; i < batch.length; i++) batch[i]!.reject(withLate(error, (answers: ScriptAnswer[]) => answers[i]!));
      },
    );
  };
  const flush = (): void => {
    flushScheduled = false;
    for (const [lua, pending] of batches) {
      for (let at = 0; at < pending.length; at += MAX_BATCH) sendBatch(lua, pending.length <= MAX_BATCH ? pending : pending.slice(at, at + MAX_BATCH));
    }
    batches.clear();
  };
  const isCluster = (): boolean => (config.client as { isCluster?: unknown } | undefined)?.isCluster === true;
  const decideInRedis = (lua: Script, sender: string, tenant: string | undefined, now: number, internal: number, external: number, idHash: number, mode: number, cap: number): Promise<ScriptAnswer> => {
    if (isCluster()) {
      const record = Buffer.allocUnsafe(CONSUME_RECORD_BYTES);
      writeConsumeRecord(record, 0, now, internal, external, idHash, mode, cap);
      const keys = tenant === undefined ? [sender, record] : [sender, tenant, record];
      return run('consume', (client) => evalScript<ScriptAnswer[]>(client, lua, keys.length - 1, keys)).then(
        (answers) => answers[0]!,
        (error: unknown) => {
          throw withLate(error, (answers: ScriptAnswer[]) => answers[0]!);
        },
      );
    }
    return new Promise<ScriptAnswer>((resolve, reject) => enqueue(lua, new Pending(sender, tenant, now, internal, external, idHash, mode, cap, resolve, reject)));
  };
  function enqueue(lua: Script, pending: Pending): void {
    let batch = batches.get(lua);
    if (batch === undefined) batches.set(lua, (batch = Array.of()));
    batch.push(pending);
    // A full batch goes at once: Redis decides it while this process works on the next ones.
    if (batch.length >= SEND_AT) {
      batches.delete(lua);
      sendBatch(lua, batch);
      return;
    }
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  }

  // Events (subscribe): this limiter's listeners hear its own events at once; every limiter on
  // the same Redis and prefix hears them through pub/sub, on a connection of its own opened by
  // the first subscribe.
  const listeners = new Set<LimiterEventListener>();
  let subscriber: RedisClient | undefined;
  const deliver = (event: LimiterEvent): void => {
    for (const listener of [...listeners]) {
      try {
        const answer = listener(event) as unknown;
        if (answer instanceof Promise) answer.catch(() => {});
      } catch {
        // A listener's error is its own business.
      }
    }
  };
  const emit = (event: LimiterEvent): void => {
    deliver(event);
    run('publish', (client) => client.publish(channel, JSON.stringify({ o: origin, e: event }))).catch(() => {});
  };
  const openSubscriber = async (): Promise<void> => {
    const client = await getClient();
    // Its own connection (a subscribed connection takes no other command), which may queue the
    // SUBSCRIBE until it is connected, and resubscribes by itself after a reconnection.
    const sub: RedisClient = (client as { isCluster?: unknown }).isCluster === true ? (client as Cluster).duplicate() : (client as Redis).duplicate({ enableOfflineQueue: true, enableAutoPipelining: false, autoResubscribe: true });
    sub.on('error', () => {});
    subscriber = sub;
    if (closed) {
      sub.disconnect();
      return;
    }
    sub.on('message', (from: string, text: string) => {
      if (from !== channel) return;
      let parsed: { o?: unknown; e?: unknown };
      try {
        parsed = JSON.parse(text) as { o?: unknown; e?: unknown };
      } catch {
        return;
      }
      if (parsed.o === origin || typeof parsed.e !== 'object' || parsed.e === null) return;
      deliver(parsed.e as LimiterEvent);
    });
    await sub.subscribe(channel);
  };
  let subscribing: Promise<void> | undefined;

  /** The ISO form of a time in ms. */
  const iso = (ms: number): string => new Date(ms).toISOString();

  /** The hash of a message id as the consume script's record takes it: -1 for none, or when ids are not remembered. */
  const idNumberOf = (messageId: string | undefined): number => (messageId === undefined || config.maxIds === 0 ? -1 : messageIdHash(messageId));

  /**
   * A consume or refund request checked, as the scripts take it: the message id as its hash
   * (`idNumber`, -1 for none: the consume script's record; the refund script takes it as
   * {@link refundIdArgument}).
   */
  const readRequest = (request: ConsumeRequest) => {
    const key = checkKey(request.key);
    const nowMs = limiterTime(request.now, 'request.now');
    const internal = count(request.internalRecipients, 'internalRecipients');
    const external = count(request.externalRecipients, 'externalRecipients');
    const { messageId } = request;
    if (messageId !== undefined && typeof messageId !== 'string') throw new TypeError(`messageId must be a string, got ${show(messageId)}.`);
    const tenant = request.tenant === undefined ? undefined : checkTenant(request.tenant);
    return { key, nowMs, internal, external, tenant, idNumber: idNumberOf(messageId), over: overLimitMode(request.countOverLimit) };
  };

  /** An id hash as the refund script's argument: 16 digits zero-padded, '' for none (-1). */
  const refundIdArgument = (idNumber: number): string => (idNumber < 0 ? '' : String(idNumber).padStart(16, '0'));

  /** `consume` with a tenant, or on a Cluster (the usual case is `consume` below). */
  const consumeWithTenant = async (request: ConsumeRequest): Promise<ConsumeResult> => {
    const { key, nowMs, internal, external, tenant, idNumber, over } = readRequest(request);
    const sets = request.limits;
    const lua = consumeLua(sets);
    const cap = tenant?.externalRecipientsPerDay ?? -1;
    let answer: ScriptAnswer;
    /** The tenant's count before this message, when a reservation on a Cluster answered it. */
    let reservedUsed = 0;
    /** A script that timed out after it was sent: its late answer, as this call's result. */
    const late = (error: unknown): never => {
      throw withLate(error, (answer: ScriptAnswer) => finish(answer, sets, key, nowMs, internal, external, tenant, cap, reservedUsed), true);
    };
    if (tenant === undefined || external === 0) {
      answer = await decideInRedis(lua, senderKey(key), undefined, nowMs, internal, external, idNumber, over, -1).catch(late);
    } else if (!isCluster()) {
      answer = await decideInRedis(lua, senderKey(key), tenantKey(tenant.key), nowMs, internal, external, idNumber, 1 + over, cap).catch(late);
    } else {
      // Cluster: the tenant's key is in another slot. Reserve on the tenant first (the cap is
      // never passed), decide the sender, and take the reservation back if the sender did not
      // count the message (docs/limits.md).
      const tKey = tenantKey(tenant.key);
      const refundReservation = (): Promise<unknown> => run('tenant refund', (client) => scriptCommand<number>(client, tenantScript, 1)(tKey, nowMs, external, cap, 'refund')).catch(() => {});
      const [reserved, used] = await run('tenant', (client) => scriptCommand<[0 | 1, number]>(client, tenantScript, 1)(tKey, nowMs, external, cap, 'reserve')).catch((error: unknown) => {
        // A reservation sent and not answered in time may still be made: the sender is not
        // decided (nothing counted for it), so one made late is taken back when its reply comes.
        lateReplyOf(error)?.then((reply) => (Array.isArray(reply) && reply[0] === 1 ? refundReservation() : undefined), () => {});
        throw error;
      });
      reservedUsed = used;
      answer = await decideInRedis(lua, senderKey(key), undefined, nowMs, internal, external, idNumber, (reserved === 1 ? 3 : 2) + over, cap).catch(async (error: unknown) => {
        // A script sent and not answered in time may still run, and count the sender: the
        // reservation stays until its late reply says the sender did not count the message (a
        // reply that never comes leaves the tenant over-counted by one, never under). Any other
        // failure (the script not sent, or refused by Redis) counted nothing: taken back now.
        const reply = lateReplyOf(error);
        if (reserved === 1) {
          if (reply === undefined) await refundReservation();
          else reply.then((answer) => (countedNow(answer as ScriptAnswer) ? undefined : refundReservation()), () => {});
        }
        return late(error);
      });
      if (reserved === 1 && !countedNow(answer)) await refundReservation();
    }
    return finish(answer, sets, key, nowMs, internal, external, tenant, cap, reservedUsed);
  };

  /** The ConsumeResult of a script's answer; restrictions indexed and events emitted. */
  const finish = async (
    answer: ScriptAnswer,
    sets: readonly LimitSet[],
    key: string,
    nowMs: number,
    internal: number,
    external: number,
    tenant: TenantLimitRequest | undefined,
    cap: number,
    reservedUsed: number,
  ): Promise<ConsumeResult> => {
    if (answer === 0) return COUNTED;
    if (answer === 2) return RETRY;
    if (answer[0] === 1) {
      const [, until, why, since, cause] = answer;
      return { restriction: restrictionOf(until, why, since, cause), breaches: NO_BREACHES, counted: false };
    }
    // The script compared the same numbers; the breaches are reported as the memory limiter does.
    const [, counted, restricted, m, i, e, a, until, tenantRefused, tenantUsed] = answer;
    const breaches = computeBreaches(sets, { messagesPerMinute: m, internalRecipientsPerHour: i, externalRecipientsPerHour: e, recipientsPerDay: a }, incrementsOf(internal, external));
    const at = iso(nowMs);
    // The restriction the breaches call for, imposed only if the script restricted (not a released
    // sender): reported as the memory limiter reports it (imposed, null, or no field when none is
    // called for). A message counted with only alert breaches calls for none; one counted over
    // the limits (countOverLimit) may.
    const calledFor = restrictionFor(breaches, nowMs);
    const imposed = calledFor === null ? undefined : restricted === 1 ? calledFor : null;
    // A counted message's alerts first, then its restriction, as the memory limiter emits them.
    if (counted === 1) {
      for (const breach of breaches) if (breach.action === 'alert') emit({ type: 'limit-alert', at, key, breach });
    }
    if (imposed) {
      // The listing lives in another slot than the sender's keys: written after the script.
      const score = until === 'inf' ? '+inf' : until;
      await run('restricted index', (client) => client.zadd(indexKey, score, key)).catch(() => {});
      emit({ type: 'restricted', at, key, restriction: imposed });
    }
    if (tenantRefused === 1 && tenant !== undefined) {
      const tenantBreach: TenantBreach = { tenant: tenant.key, limit: cap, used: isCluster() ? reservedUsed : tenantUsed };
      emit({ type: 'tenant-cap', at, key, breach: tenantBreach });
      return imposed === undefined ? { restriction: null, breaches, tenantBreach, counted: false } : { restriction: null, breaches, tenantBreach, counted: false, imposed };
    }
    if (counted === 1) return imposed === undefined ? { restriction: null, breaches, counted: true } : { restriction: null, breaches, counted: true, imposed };
    return imposed === undefined ? { restriction: null, breaches, counted: false } : { restriction: null, breaches, counted: false, imposed };
  };

  /**
   * The usual consume — no tenant, a single Redis — straight into the batch: one promise, and
   * the usual answer (0: counted, nothing breached) resolves it with the shared COUNTED.
   */
  const consume = (request: ConsumeRequest): Promise<ConsumeResult> => {
    if (request.tenant !== undefined || isCluster()) return consumeWithTenant(request);
    let key: string;
    let nowMs: number;
    let internal: number;
    let external: number;
    let idHash: number;
    let mode: number;
    let script: Script;
    try {
      key = checkKey(request.key);
      nowMs = limiterTime(request.now, 'request.now');
      internal = count(request.internalRecipients, 'internalRecipients');
      external = count(request.externalRecipients, 'externalRecipients');
      const { messageId } = request;
      if (messageId !== undefined && typeof messageId !== 'string') throw new TypeError(`messageId must be a string, got ${show(messageId)}.`);
      script = consumeLua(request.limits);
      idHash = idNumberOf(messageId);
      mode = overLimitMode(request.countOverLimit);
    } catch (error) {
      return Promise.reject(error);
    }
    const sets = request.limits;
    return new Promise<ConsumeResult>((resolve, reject) => {
      const settle = (answer: ScriptAnswer): void => {
        if (answer === 0) resolve(COUNTED);
        else if (answer === 2) resolve(RETRY);
        else finish(answer, sets, key, nowMs, internal, external, undefined, -1, 0).then(resolve, reject);
      };
      // A batch that timed out after it was sent: its late answer, as this call's result.
      const fail = (error: unknown): void =>
        reject(withLate(error, (answer: ScriptAnswer) => (answer === 0 ? COUNTED : answer === 2 ? RETRY : finish(answer, sets, key, nowMs, internal, external, undefined, -1, 0)), true));
      enqueue(script, new Pending(senderKey(key), undefined, nowMs, internal, external, idHash, mode, -1, settle, fail));
    });
  };

  /**
   * Takes back what `consume(request)` counted (RateLimiter.refund), checked as consume checks
   * it. One script for the sender and the tenant on a single Redis; on a Cluster the tenant's key
   * is in another slot: the sender's script, then the tenant's refund of a reservation (the same
   * `now`, the same bucket).
   */
  const refund = async (request: ConsumeRequest): Promise<void> => {
    const { key, nowMs, internal, external, tenant, idNumber } = readRequest(request);
    const idHash = refundIdArgument(idNumber);
    const withTenant = tenant !== undefined && external > 0;
    if (withTenant && !isCluster()) {
      await run('refund', (client) => scriptCommand<number>(client, refundScript, 2)(senderKey(key), tenantKey(tenant.key), nowMs, internal, external, idHash));
      return;
    }
    const took = await run('refund', (client) => scriptCommand<number>(client, refundScript, 1)(senderKey(key), nowMs, internal, external, idHash));
    // The script took nothing back (the id's count went to a retry, or was refunded already):
    // neither does the tenant.
    if (withTenant && took === 1) {
      const cap = tenant.externalRecipientsPerDay ?? -1;
      await run('tenant refund', (client) => scriptCommand<number>(client, tenantScript, 1)(tenantKey(tenant.key), nowMs, external, cap, 'refund'));
    }
  };

  const read = async (client: RedisClient, key: string, nowMs: number): Promise<Restriction | null | 'gone'> => {
    const [until, why, since, cause] = await client.hmget(senderKey(key), 'rm', 'rw', 'rs', 'rc');
    if (until === null || until === undefined) return 'gone';
    if (until !== 'inf' && !(nowMs < Number(until))) return null;
    return restrictionOf(until, why ?? '', since ?? '', cause ?? '');
  };

  const reportSpam = async (report: SpamReport): Promise<SpamReportResult> => {
    const { key, nowMs, idHash, restrictAfter } = checkSpamReport(report);
    const windowMs = restrictAfter.window === 'hour' ? 3_600_000 : DAY_MS;
    const [n, restricted, until, why] = await run('report spam', (client) =>
      scriptCommand<[number, 0 | 1, string, string]>(client, spamScript, 1)(senderKey(key), nowMs, idHash, restrictAfter.count, windowMs, restrictAfter.window, restrictAfter.action, config.maxIds),
    );
    if (restricted !== 1) return { count: n, restriction: null };
    const at = iso(nowMs);
    const restriction = { until: until === 'inf' ? null : iso(Number(until)), reason: why, since: at, cause: { kind: 'spam', count: n, window: restrictAfter.window } as const };
    await run('restricted index', (client) => client.zadd(indexKey, until === 'inf' ? '+inf' : until, key)).catch(() => {});
    emit({ type: 'restricted', at, key, restriction });
    return { count: n, restriction };
  };

  return {
    consume,
    reportSpam,
    refund,

    async restriction(key: string, now: Date): Promise<Restriction | null> {
      const sender = checkKey(key);
      const nowMs = limiterTime(now, 'now');
      const found = await run('restriction', (client) => read(client, sender, nowMs));
      return found === 'gone' ? null : found;
    },

    async restrict(key: string, restrictOptions: RestrictOptions = {}): Promise<RestrictedSender> {
      const sender = checkKey(key);
      const { untilMs, reason, nowMs } = checkRestrictOptions(restrictOptions);
      const untilArg = untilMs === null ? 'inf' : String(untilMs);
      await run('restrict', (client) => scriptCommand<number>(client, restrictScript, 1)(senderKey(sender), nowMs, untilArg, reason ?? ''));
      await run('restricted index', (client) => client.zadd(indexKey, untilMs === null ? '+inf' : untilMs, sender));
      const at = iso(nowMs);
      const restriction = { until: untilMs === null ? null : iso(untilMs), ...(reason === undefined || reason === '' ? {} : { reason }), since: at, cause: { kind: 'admin' } as const };
      emit({ type: 'restricted', at, key: sender, restriction });
      return { key: sender, ...restriction };
    },

    async release(key: string, now?: Date): Promise<boolean> {
      const sender = checkKey(key);
      const nowMs = now === undefined ? Date.now() : limiterTime(now, 'now');
      const immuneUntil = (Math.floor(nowMs / DAY_MS) + 1) * DAY_MS;
      const lifted = await run('release', async (client) => {
        const removed = await scriptCommand<number>(client, releaseScript, 1)(senderKey(sender), immuneUntil, nowMs);
        await client.zrem(indexKey, sender);
        return removed === 1;
      });
      if (lifted) emit({ type: 'released', at: iso(nowMs), key: sender, immuneUntil: iso(immuneUntil) });
      return lifted;
    },

    async restricted(now: Date): Promise<readonly RestrictedSender[]> {
      const nowMs = limiterTime(now, 'now');
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

    subscribe(listener: LimiterEventListener): () => void {
      if (typeof listener !== 'function') throw invalid(`subscribe takes a function, got ${show(listener)}.`);
      listeners.add(listener);
      if (!closed) {
        subscribing ??= openSubscriber().catch(() => {
          // Pub/sub unavailable (Redis down): this limiter's own events still reach its listeners.
          subscribing = undefined;
        });
      }
      return () => {
        listeners.delete(listener);
      };
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      listeners.clear();
      if (subscribing !== undefined) await subscribing;
      if (subscriber !== undefined) {
        const sub = subscriber;
        if (sub.status === 'ready') await within(sub.quit(), commandTimeoutMs, 'quit').catch(() => sub.disconnect());
        else sub.disconnect();
      }
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
