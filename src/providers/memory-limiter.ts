// The in-memory rate limiter (rules 1 and 3) for one process: sliding windows of 60
// sub-buckets per sender, restrictions kept apart from the counters, every structure bounded.
// The window arithmetic lives in limit-windows.ts, shared with the Redis limiter, so that both
// behave the same (docs/limits.md; test/providers/rate-limiter-behaviour.ts checks both).

import { lruCacheClass } from '../lru.js';
import { OutboundPoolsError, show } from '../errors.js';
import { detach } from '../headers.js';
import {
  BUCKETS_PER_WINDOW,
  MESSAGE_ID_MEMORY_MS,
  MAX_SPAM_RECORDS,
  SPAM_BUCKET_MS,
  SPAM_REPORT_MS,
  limiterTime,
  MAX_SPAM_COUNT,
  validTime,
  adminReason,
  adminRestriction,
  computeBreaches,
  messageIdHash,
  currentBuckets,
  countsDespite,
  immunityEnd,
  incrementsOf,
  oldestBucket,
  restrictionFor,
  badCountOverLimit,
  spamBucket,
  spamRestriction,
  spamRestricts,
  tenantBreachOf,
  untilMsOf,
  type CausedRestriction,
  type CurrentBuckets,
  type WindowCounts,
} from './limit-windows.js';
import type {
  ConsumeRequest,
  ConsumeResult,
  LimitBreach,
  LimiterEvent,
  LimiterEventListener,
  ManagedRateLimiter,
  Restriction,
  RestrictedSender,
  RestrictOptions,
  SpamReport,
  SpamReportResult,
  SpamRestrictAfter,
  TenantBreach,
  TenantLimitRequest,
} from './types.js';

/** Options of {@link createMemoryRateLimiter}. */
export interface MemoryRateLimiterOptions {
  /**
   * Most senders whose counters are kept (least recently used evicted first; default 100,000).
   * Evicting a sender forgets its counts and remembered message ids: it starts again from zero.
   * Size it above the number of senders active within a day.
   */
  readonly maxSenders?: number;
  /**
   * Most restrictions kept (default `maxSenders`). Kept apart from the counters, so that counter
   * eviction never lifts a restriction; only more restricted senders than this would evict the
   * least recently touched restriction.
   */
  readonly maxRestricted?: number;
  /**
   * Counted message ids remembered per sender for retries, the newest kept (default 100; 0
   * disables). Each is remembered as a 53-bit hash, never as the string, so it costs the same
   * whatever the id's or the message's size (about 60–110 bytes, docs/limits.md): the worst
   * case is `maxSenders` × this × that, so raise it only with a smaller `maxSenders`. A retry of
   * a forgotten id counts again.
   */
  readonly maxMessageIdsPerSender?: number;
  /**
   * Most tenants whose external-recipient counts are kept (`request.tenant`, rule 11; least
   * recently used evicted first; default 10,000). **Evicting a tenant forgets its count**: it
   * starts again from zero, and could then send up to its cap again within the day. Size it
   * above the number of tenants sending within a day. A tenant costs about 190 bytes with one
   * bucket and about 1.5 KB with all 60 (measured: docs/limits.md).
   */
  readonly maxTenants?: number;
  /**
   * Most released senders remembered as immune to automatic restriction until the next UTC
   * midnight (default `maxRestricted`). Evicting one (least recently released first) ends its
   * immunity early: a later breach or spam report may restrict it again the same day. About
   * 130 bytes each (measured: docs/limits.md).
   */
  readonly maxImmune?: number;
}

/** Sizes of a {@link MemoryRateLimiter}, for monitoring and the bounded-memory checks. */
export interface MemoryRateLimiterStats {
  /** Senders with counters now (≤ `maxSenders`). */
  readonly senders: number;
  /** Restrictions stored now, expired ones not yet dropped included (≤ `maxRestricted`). */
  readonly restrictions: number;
  /** Tenants with a count now (≤ `maxTenants`). */
  readonly tenants: number;
  /** Released senders remembered as immune now, expired ones not yet dropped included (≤ `maxImmune`). */
  readonly immune: number;
  readonly maxSenders: number;
  readonly maxRestricted: number;
  readonly maxTenants: number;
  readonly maxImmune: number;
}

/**
 * The in-memory limiter: a {@link ManagedRateLimiter} that also answers at once
 * (`consumeSync`, `restrictionSync`, `reportSpamSync`, `refundSync`: `decidePool` uses them, so
 * a decision through it needs no promise) and reports its sizes.
 */
export interface MemoryRateLimiter extends ManagedRateLimiter {
  consumeSync(request: ConsumeRequest): ConsumeResult;
  restrictionSync(key: string, now: Date): Restriction | null;
  readonly reportSpamSync: (report: SpamReport) => SpamReportResult;
  /** `refund` done at once: see {@link RateLimiter.refund}. */
  readonly refundSync: (request: ConsumeRequest) => void;
  /** Current sizes and bounds. */
  stats(): MemoryRateLimiterStats;
}

const DEFAULTS = { maxSenders: 100_000, maxMessageIdsPerSender: 100, maxTenants: 10_000 } as const;
const LIMITS = { maxSenders: 100_000_000, maxMessageIdsPerSender: 1_000_000 } as const;
const OPTION_KEYS = ['maxSenders', 'maxRestricted', 'maxMessageIdsPerSender', 'maxTenants', 'maxImmune'] as const;

function invalid(message: string): OutboundPoolsError {
  return new OutboundPoolsError('invalid-context', `createMemoryRateLimiter: ${message}`);
}

function integer(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be a whole number from ${min} to ${max}, got ${show(value)}${typeof value === 'number' ? ` (${value})` : ''}.`);
  }
  return value;
}

/**
 * One window: `[total, start, index, count, index, count, …]`. `total` is the sum of the live
 * counts; the live buckets are the (index, count) pairs from position `start` on, oldest first.
 * Sparse on purpose: a sender who sent one message holds one pair, not 60 slots. Buckets that
 * leave the window are dropped by moving `start` past them, and the array is compacted once the
 * dropped pairs outnumber the live ones: each write costs O(1) amortised, and a read costs the
 * buckets that have left the window since the last write, not all of them.
 */
type Buckets = number[];

/** Where the pairs of a compacted window begin: after the total and the start. */
const HEAD = 2;

/** The shared empty window: never written to, as addTo replaces an empty window. */
const EMPTY: Buckets = [0, HEAD];

/**
 * The window's count at bucket `current`: the buckets whose index is in `current − 60 … current`.
 * Does not change the window (expired buckets are dropped when it is next written).
 */
function windowCount(pairs: Buckets, current: number): number {
  const length = pairs.length;
  const start = pairs[1]!;
  if (start === length) return 0;
  const oldest = oldestBucket(current);
  if (pairs[length - 2]! <= current) {
    // The usual case, no bucket ahead of the clock: the total less the expired buckets in front.
    let sum = pairs[0]!;
    for (let i = start; i < length && pairs[i]! < oldest; i += 2) sum -= pairs[i + 1]!;
    return sum;
  }
  // The clock went back: count the buckets inside the window one by one.
  let sum = 0;
  for (let i = start; i < length; i += 2) {
    const index = pairs[i]!;
    if (index >= oldest && index <= current) sum += pairs[i + 1]!;
  }
  return sum;
}

/**
 * Adds `amount` to bucket `current`, dropping the buckets that have left the window and, past
 * 61 live buckets (a clock moved back), the oldest. Returns the array to keep: a new exact-size
 * one for an empty window (V8 would otherwise reserve room for 17 elements in each of the four
 * arrays of a sender who sends once).
 */
function addTo(pairs: Buckets, current: number, amount: number): Buckets {
  const oldest = oldestBucket(current);
  let total = pairs[0]!;
  let start = pairs[1]!;
  while (start < pairs.length && pairs[start]! < oldest) {
    total -= pairs[start + 1]!;
    start += 2;
  }
  if (start === pairs.length) {
    if (pairs === EMPTY) return [amount, HEAD, current, amount];
    // Every bucket has left the window (a sender back after a pause): reuse the array.
    pairs.length = HEAD + 2;
    pairs[0] = amount;
    pairs[1] = HEAD;
    pairs[2] = current;
    pairs[3] = amount;
    return pairs;
  }
  // Usually the newest bucket is the current one, or the current one is new and goes last.
  let at = pairs.length;
  while (at > start && pairs[at - 2]! > current) at -= 2;
  if (at > start && pairs[at - 2] === current) pairs[at - 1]! += amount;
  else if (at === pairs.length) pairs.push(current, amount);
  else pairs.splice(at, 0, current, amount); // the clock went back: rare
  total += amount;
  if (pairs.length - start > 2 * (BUCKETS_PER_WINDOW + 1)) {
    total -= pairs[start + 1]!;
    start += 2;
  }
  // Compact once the dropped pairs outnumber the live ones: amortised O(1) a write.
  const live = pairs.length - start;
  if (start - HEAD >= live) {
    for (let i = 0; i < live; i++) pairs[HEAD + i] = pairs[start + i]!;
    pairs.length = HEAD + live;
    start = HEAD;
  }
  pairs[0] = total;
  pairs[1] = start;
  return pairs;
}

/**
 * Takes `amount` back from bucket `current` (a refund of what a consume at that time added),
 * never below zero; a bucket no longer kept (it left the window) is left alone. Never writes
 * the shared {@link EMPTY}: it has no bucket to find.
 */
function takeFrom(pairs: Buckets, current: number, amount: number): void {
  if (!(amount > 0)) return;
  for (let i = pairs[1]!; i < pairs.length; i += 2) {
    if (pairs[i] !== current) continue;
    const taken = Math.min(pairs[i + 1]!, amount);
    pairs[i + 1]! -= taken;
    pairs[0]! -= taken;
    return;
  }
}

/**
 * Drops the buckets that have left the window at bucket `current`, as {@link addTo} does for the
 * windows a message adds to: a count prunes all four windows, as the Redis script rewrites all
 * four, so that a clock moved back later finds the same buckets in both limiters.
 */
function dropExpired(pairs: Buckets, current: number): void {
  let start = pairs[1]!;
  const oldest = oldestBucket(current);
  if (start === pairs.length || pairs[start]! >= oldest) return;
  let total = pairs[0]!;
  while (start < pairs.length && pairs[start]! < oldest) {
    total -= pairs[start + 1]!;
    start += 2;
  }
  // Every bucket gone: the array shrinks to its head (addTo compacts the others when it writes).
  if (start === pairs.length) {
    pairs.length = HEAD;
    total = 0;
    start = HEAD;
  }
  pairs[0] = total;
  pairs[1] = start;
}

/** The counters of one sender. */
class SenderCounters {
  messagesPerMinute: Buckets = EMPTY;
  internalRecipientsPerHour: Buckets = EMPTY;
  externalRecipientsPerHour: Buckets = EMPTY;
  recipientsPerDay: Buckets = EMPTY;
  /**
   * Counted message ids: `[hash, countedAtMs, hash, countedAtMs, …]`, a ring of at most
   * `maxMessageIdsPerSender` pairs, the slot to overwrite next at {@link idNext} once full.
   * Numbers, not the id strings (an id sliced from a header block would keep the whole block
   * alive), in one array of doubles: 16 bytes an id, no object for each, nothing for the
   * collector to trace. Looking an id up scans the pairs: at most 100 by default, cheaper than
   * the hashing and the entry churn of a Map at that size.
   */
  ids: number[] | null = null;
  /** Where the next id goes once the ring is full (a pair index × 2). */
  idNext = 0;
  /**
   * The sender's spam reports of the last 24 h 24 min, from its first one on (most senders never
   * have any): `[idHash, timeMs, idHash, timeMs, …]` in the order they were made (a clock moved
   * back leaves them out of time order), at most {@link MAX_SPAM_RECORDS}; the id hash is
   * {@link REPORT_WITHOUT_ID} or {@link REPORT_ID_SPENT} for a report without one. The Redis
   * limiter's records, as numbers: both windows are counted from them, so both limiters count
   * alike whatever the clock does.
   */
  spam: number[] | null = null;
  /**
   * A one-bit-per-id filter of the remembered ids over 60 bits (two words of 30, small integers
   * for V8 rather than boxed numbers; {@link idSlot}): an id whose bit is clear was never
   * remembered, so the usual new id costs no scan of the ring. Bits of overwritten ids stay set
   * (a scan then decides) until the ring comes round again, when the filter is rebuilt from the
   * ids it holds: O(1) amortised.
   */
  idLow = 0;
  idHigh = 0;
}

/** A day in milliseconds: `restricted()` forgets restrictions that ended longer ago, as the Redis limiter's index does. */
const DAY_MS = 86_400_000;

/** A spam report made without a message id, in {@link SenderCounters.spam}. */
const REPORT_WITHOUT_ID = -1;

/** A spam report whose id a retry has spent: it still counts, and still holds its place among the ids. */
const REPORT_ID_SPENT = -2;

/**
 * Records a spam report at `nowMs` in `reports` (see {@link SenderCounters.spam}), as the Redis
 * limiter's spam script records it: reports older than {@link SPAM_REPORT_MS} are dropped; a
 * retry of an id reported in the last 24 hours, among the newest `maxIds` reports made with an
 * id, spends that report's id and adds nothing; any other report goes last, the oldest dropped
 * past {@link MAX_SPAM_RECORDS}. `idHash` is -1 for a report without an id.
 *
 * @returns whether the report was such a retry
 */
function recordReport(reports: number[], nowMs: number, idHash: number, maxIds: number): boolean {
  const horizon = nowMs - SPAM_REPORT_MS;
  // How many kept reports carry an id (spent ones included): the newest maxIds of them match.
  let bearing = 0;
  if (idHash >= 0) {
    for (let i = 0; i < reports.length; i += 2) if (reports[i + 1]! > horizon && reports[i] !== REPORT_WITHOUT_ID) bearing++;
  }
  let kept = 0;
  let nth = 0;
  let retry = false;
  for (let i = 0; i < reports.length; i += 2) {
    const time = reports[i + 1]!;
    if (!(time > horizon)) continue;
    let id = reports[i]!;
    if (idHash >= 0 && id !== REPORT_WITHOUT_ID) {
      nth++;
      if (!retry && id === idHash && nth > bearing - maxIds && time > nowMs - MESSAGE_ID_MEMORY_MS) {
        retry = true;
        id = REPORT_ID_SPENT;
      }
    }
    reports[kept] = id;
    reports[kept + 1] = time;
    kept += 2;
  }
  reports.length = kept;
  if (!retry) {
    reports.push(idHash >= 0 ? idHash : REPORT_WITHOUT_ID, nowMs);
    if (reports.length > 2 * MAX_SPAM_RECORDS) reports.splice(0, reports.length - 2 * MAX_SPAM_RECORDS);
  }
  return retry;
}

/**
 * The spam reports in the window `window` at `nowMs`: those whose bucket is one of the window's 61
 * ({@link oldestBucket} … current). A report ahead of the clock (the clock moved back) is kept but
 * not counted, as consume does not count a bucket ahead.
 */
function reportsInWindow(reports: readonly number[], nowMs: number, window: SpamRestrictAfter['window']): number {
  const current = spamBucket(nowMs, window);
  const oldest = oldestBucket(current);
  const bucketMs = SPAM_BUCKET_MS[window];
  let count = 0;
  for (let i = 1; i < reports.length; i += 2) {
    const bucket = Math.floor(reports[i]! / bucketMs);
    if (bucket >= oldest && bucket <= current) count++;
  }
  return count;
}

/** The filter slot of an id hash, 0 to 59: words of 30 bits keep every value a small integer. */
function idSlot(hash: number): number {
  return hash % 60;
}

/** Whether the sender's filter may hold `hash` (false: it was never remembered). */
function mayHoldId(state: SenderCounters, hash: number): boolean {
  const slot = idSlot(hash);
  return slot < 30 ? (state.idLow & (1 << slot)) !== 0 : (state.idHigh & (1 << (slot - 30))) !== 0;
}

function addIdBit(state: SenderCounters, hash: number): void {
  const slot = idSlot(hash);
  if (slot < 30) state.idLow |= 1 << slot;
  else state.idHigh |= 1 << (slot - 30);
}

/**
 * The time of a remembered id whose one free retry was used: older than any memory, so the next
 * message with that id counts (and is remembered again).
 */
const SPENT = Number.NEGATIVE_INFINITY;

/** The position of `hash` in the sender's remembered ids, or -1. */
function findId(ids: number[], hash: number): number {
  for (let i = 0; i < ids.length; i += 2) if (ids[i] === hash) return i;
  return -1;
}

/** The answer to the usual message, counted without a breach: one shared, frozen object. */
const COUNTED: ConsumeResult = Object.freeze({ restriction: null, breaches: Object.freeze([]) as readonly LimitBreach[], counted: true });

/** The answer to a retry: counted before, nothing counted now (nothing to refund). Shared, frozen. */
const RETRY: ConsumeResult = Object.freeze({ restriction: null, breaches: COUNTED.breaches, counted: true, retry: true });

const ZERO: Readonly<WindowCounts> = Object.freeze({ messagesPerMinute: 0, internalRecipientsPerHour: 0, externalRecipientsPerHour: 0, recipientsPerDay: 0 });

function usedBy(counters: SenderCounters | undefined, current: CurrentBuckets): WindowCounts {
  if (counters === undefined) return ZERO;
  return {
    messagesPerMinute: windowCount(counters.messagesPerMinute, current.minute),
    internalRecipientsPerHour: windowCount(counters.internalRecipientsPerHour, current.hour),
    externalRecipientsPerHour: windowCount(counters.externalRecipientsPerHour, current.hour),
    recipientsPerDay: windowCount(counters.recipientsPerDay, current.day),
  };
}

/** A stored restriction: the public shape plus its end in epoch ms (Infinity until released). */
interface StoredRestriction {
  readonly restriction: CausedRestriction;
  readonly untilMs: number;
}

function checkTenant(tenant: TenantLimitRequest): void {
  if (typeof tenant !== 'object' || tenant === null || typeof tenant.key !== 'string' || tenant.key === '') {
    throw new OutboundPoolsError('invalid-context', `The rate limiter's request.tenant must be { key, externalRecipientsPerDay? } with a non-empty key, got ${show(tenant)}.`);
  }
  const limit = tenant.externalRecipientsPerDay;
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0)) {
    throw new OutboundPoolsError('invalid-context', `The rate limiter's request.tenant.externalRecipientsPerDay must be a whole number ≥ 0, got ${show(limit)}.`);
  }
}

function checkKey(key: unknown, what: string): string {
  if (typeof key !== 'string' || key === '') throw new OutboundPoolsError('invalid-context', `The rate limiter's ${what} must be a non-empty string, got ${show(key)}.`);
  return key;
}

const SPAM_WINDOWS: readonly string[] = ['hour', 'day'];
const SPAM_ACTIONS: readonly string[] = ['block-user', 'block-user-for-today'];

function checkSpamReport(report: SpamReport): SpamRestrictAfter {
  if (typeof report !== 'object' || report === null) throw new OutboundPoolsError('invalid-context', `The rate limiter's spam report must be an object, got ${show(report)}.`);
  checkKey(report.key, 'report.key');
  if (report.messageId !== undefined && typeof report.messageId !== 'string') {
    throw new OutboundPoolsError('invalid-context', `The rate limiter's report.messageId must be a string, got ${show(report.messageId)}.`);
  }
  const after = report.restrictAfter;
  if (
    typeof after !== 'object' || after === null ||
    typeof after.count !== 'number' || !Number.isInteger(after.count) || after.count < 1 || after.count > MAX_SPAM_COUNT ||
    !SPAM_WINDOWS.includes(after.window) || !SPAM_ACTIONS.includes(after.action)
  ) {
    throw new OutboundPoolsError(
      'invalid-context',
      `The rate limiter's report.restrictAfter must be { count: a whole number from 1 to 1,000, window: 'hour' | 'day', action: 'block-user' | 'block-user-for-today' }, got ${show(after)}.`,
    );
  }
  return after;
}

/** One subscription: `active` turns false when unsubscribed, so queued events skip it. */
interface Subscription {
  readonly listener: LimiterEventListener;
  active: boolean;
}

const ignore = (): void => {};

/** Hands `event` to each listener still subscribed; their errors and rejections are ignored. */
function deliver(event: LimiterEvent, subscriptions: readonly Subscription[]): void {
  for (const subscription of subscriptions) {
    if (!subscription.active) continue;
    try {
      const answer = subscription.listener(event) as unknown;
      if (typeof answer === 'object' && answer !== null && typeof (answer as PromiseLike<unknown>).then === 'function') {
        (answer as PromiseLike<unknown>).then(undefined, ignore);
      }
    } catch {
      // A listener's failure is its own: the limiter's call has already answered.
    }
  }
}


/**
 * Creates an in-memory rate limiter for one process (several processes or nodes share limits
 * through the Redis limiter instead). Per sender key it keeps four sliding-window counters of 60
 * sub-buckets each — messages/minute, internal and external recipients/hour, recipients/24 h —
 * shared by every limit set of the policy; `consume` counts a message in all four or in none.
 * Per tenant (`request.tenant`) it keeps one more, external recipients/24 h, counted atomically
 * with the sender's; per sender its spam reports (`reportSpam`).
 *
 * Memory is bounded: at most `maxSenders` senders' counters (least recently used evicted, which
 * forgets that sender's counts and spam reports), at most `maxRestricted` restrictions (kept
 * apart, so counter eviction never lifts one), at most `maxMessageIdsPerSender` remembered ids
 * per sender, at most `maxTenants` tenants' counts and `maxImmune` released senders' immunities.
 * Every operation is O(1) in the number of senders. Time comes only from the `now` it is given
 * (`restrict` and `release` without one read the system clock).
 *
 * Events (`subscribe`) are delivered in a microtask queued by the call that caused them (so
 * after it has answered, before the code awaiting it resumes), to the listeners subscribed when
 * it happened and still subscribed; a listener's error or rejection is ignored. With no listener
 * no event is made.
 *
 * @throws {OutboundPoolsError} `invalid-context` for an unknown option or a value out of range.
 */
export function createMemoryRateLimiter(options: MemoryRateLimiterOptions = {}): MemoryRateLimiter {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalid(`options must be an object, got ${show(options)}.`);
  for (const key of Object.keys(options)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) throw invalid(`unknown option ${show(key)}; known: ${OPTION_KEYS.join(', ')}.`);
  }
  const maxSenders = integer(options.maxSenders, 'maxSenders', 1, LIMITS.maxSenders, DEFAULTS.maxSenders);
  const maxRestricted = integer(options.maxRestricted, 'maxRestricted', 1, LIMITS.maxSenders, maxSenders);
  const maxIds = integer(options.maxMessageIdsPerSender, 'maxMessageIdsPerSender', 0, LIMITS.maxMessageIdsPerSender, DEFAULTS.maxMessageIdsPerSender);
  const maxTenants = integer(options.maxTenants, 'maxTenants', 1, LIMITS.maxSenders, DEFAULTS.maxTenants);
  const maxImmune = integer(options.maxImmune, 'maxImmune', 1, LIMITS.maxSenders, maxRestricted);

  const LRU = lruCacheClass();
  const counters = new LRU<string, SenderCounters>({ max: maxSenders });
  const restrictions = new LRU<string, StoredRestriction>({ max: maxRestricted });
  /** Per tenant, its external recipients over 24 h: one window of buckets (see {@link Buckets}). */
  const tenants = new LRU<string, Buckets>({ max: maxTenants });
  /** Released senders: the end of their immunity to automatic restriction, in epoch ms. */
  const immune = new LRU<string, number>({ max: maxImmune });

  /** Listeners; replaced, never changed in place, so that an event keeps the list of its moment. */
  let subscriptions: readonly Subscription[] = [];
  const emit = (event: LimiterEvent): void => {
    const now = subscriptions;
    queueMicrotask(() => deliver(event, now));
  };

  /**
   * The restriction in force for `key` at `nowMs`. One that has ended is kept, as Redis keeps it
   * (a clock moved back finds it in force again in both limiters), until the sender is next
   * counted, restricted or released, or `restricted()` finds it ended over a day ago.
   */
  const activeRestriction = (key: string, nowMs: number): CausedRestriction | null => {
    if (restrictions.size === 0) return null;
    const stored = restrictions.get(key);
    return stored !== undefined && nowMs < stored.untilMs ? stored.restriction : null;
  };

  /**
   * Whether `key` was released and is still immune to automatic restriction at `nowMs`. An
   * immunity that has ended is kept (it is bounded by `maxImmune`), as Redis keeps it.
   */
  const isImmune = (key: string, nowMs: number): boolean => {
    if (immune.size === 0) return false;
    const until = immune.get(key);
    return until !== undefined && nowMs < until;
  };

  /** Stores a restriction (replacing any) and tells the listeners. */
  const impose = (key: string, restriction: CausedRestriction, nowMs: number): void => {
    restrictions.set(detach(key), { restriction, untilMs: untilMsOf(restriction) });
    if (subscriptions.length !== 0) emit({ type: 'restricted', at: new Date(nowMs).toISOString(), key, restriction });
  };

  /**
   * Imposes the restriction a refused message's breaches call for, unless the sender is immune.
   * Answers the refusal: with `imposed` (the restriction, or null when immune) when a breach
   * calls for one, without it otherwise.
   */
  const refuseFor = (key: string, breaches: readonly LimitBreach[], nowMs: number, tenantBreach: TenantBreach | null): ConsumeResult => {
    const calledFor = restrictionFor(breaches, nowMs);
    let imposed: CausedRestriction | null | undefined;
    if (calledFor !== null) {
      imposed = isImmune(key, nowMs) ? null : calledFor;
      if (imposed !== null) impose(key, imposed, nowMs);
    }
    if (tenantBreach === null) return imposed === undefined ? { restriction: null, breaches, counted: false } : { restriction: null, breaches, counted: false, imposed };
    return imposed === undefined ? { restriction: null, breaches, tenantBreach, counted: false } : { restriction: null, breaches, tenantBreach, counted: false, imposed };
  };

  /** Counts the message; `idAt` is where its id is already remembered (expired), else -1. */
  const count = (key: string, existing: SenderCounters | undefined, increments: WindowCounts, nowMs: number, current: CurrentBuckets, idHash: number, idAt: number): void => {
    let state = existing;
    if (state === undefined) {
      state = new SenderCounters();
      counters.set(detach(key), state);
    }
    // Spelled out rather than looped over LIMIT_WINDOWS: one property each, no lookups by name.
    state.messagesPerMinute = addTo(state.messagesPerMinute, current.minute, increments.messagesPerMinute);
    if (increments.internalRecipientsPerHour > 0) {
      state.internalRecipientsPerHour = addTo(state.internalRecipientsPerHour, current.hour, increments.internalRecipientsPerHour);
    } else dropExpired(state.internalRecipientsPerHour, current.hour);
    if (increments.externalRecipientsPerHour > 0) {
      state.externalRecipientsPerHour = addTo(state.externalRecipientsPerHour, current.hour, increments.externalRecipientsPerHour);
    } else dropExpired(state.externalRecipientsPerHour, current.hour);
    if (increments.recipientsPerDay > 0) state.recipientsPerDay = addTo(state.recipientsPerDay, current.day, increments.recipientsPerDay);
    else dropExpired(state.recipientsPerDay, current.day);
    if (idHash < 0) return;
    // Remembering the id, spelled out: this is the hot path, kept monomorphic.
    const ids = state.ids;
    if (idAt >= 0) {
      ids![idAt + 1] = nowMs;
      return;
    }
    addIdBit(state, idHash);
    if (ids === null) state.ids = [idHash, nowMs];
    else if (ids.length < 2 * maxIds) ids.push(idHash, nowMs);
    else {
      // Full: the oldest pair gives way.
      const at = state.idNext;
      ids[at] = idHash;
      ids[at + 1] = nowMs;
      state.idNext = at + 2 === ids.length ? 0 : at + 2;
      if (state.idNext === 0) {
        // Round again: the filter forgets the overwritten ids.
        state.idLow = 0;
        state.idHigh = 0;
        for (let i = 0; i < ids.length; i += 2) addIdBit(state, ids[i]!);
      }
    }
  };

  /** Counts `external` recipients for the tenant whose window is `window` (undefined: none yet). */
  const countTenant = (tenant: string, window: Buckets | undefined, day: number, external: number): void => {
    // addTo returns the same array except for an empty window: set only a new tenant.
    if (window === undefined) tenants.set(detach(tenant), addTo(EMPTY, day, external));
    else addTo(window, day, external);
  };

  /** `consume`, answered at once: every step is in memory. */
  const consumeSync = (request: ConsumeRequest): ConsumeResult => {
    const nowMs = limiterTime(request.now, 'request.now');
    const { key, messageId, tenant, countOverLimit } = request;
    if (messageId !== undefined && typeof messageId !== 'string') throw new OutboundPoolsError('invalid-context', `The rate limiter's request.messageId must be a string, got ${show(messageId)}.`);
    if (tenant !== undefined) checkTenant(tenant);
    if (countOverLimit !== undefined && typeof countOverLimit !== 'boolean') badCountOverLimit(countOverLimit);
    // An ended restriction is dropped below if the message counts, as the Redis script drops it.
    const stored = restrictions.size === 0 ? undefined : restrictions.get(key);
    if (stored !== undefined && nowMs < stored.untilMs) return { restriction: stored.restriction, breaches: [], counted: false };

    const state = counters.get(key);
    // -1: no id to remember (none given, or remembering is off).
    const idHash = messageId === undefined || maxIds === 0 ? -1 : messageIdHash(messageId);
    let idAt = -1;
    if (idHash >= 0 && state !== undefined && state.ids !== null && mayHoldId(state, idHash)) {
      idAt = findId(state.ids, idHash);
      // A retry of a counted message: counted once, for the sender and for its tenant. The
      // retry spends the id: the next message with it counts (an id is the client's to reuse).
      if (idAt >= 0 && nowMs - state.ids[idAt + 1]! < MESSAGE_ID_MEMORY_MS) {
        state.ids[idAt + 1] = SPENT;
        return RETRY;
      }
    }

    const increments = incrementsOf(request.internalRecipients, request.externalRecipients);
    const current = currentBuckets(nowMs);
    // The tenant's window, asked only for a message with external recipients (others add nothing).
    let tenantWindow: Buckets | undefined;
    let tenantBreach: TenantBreach | null = null;
    const external = increments.externalRecipientsPerHour;
    const countsForTenant = tenant !== undefined && external > 0;
    if (countsForTenant) {
      tenantWindow = tenants.get(tenant.key);
      tenantBreach = tenantBreachOf(tenant, tenantWindow === undefined ? 0 : windowCount(tenantWindow, current.day), external);
    }
    if (request.limits.length === 0 && tenantBreach === null) {
      count(key, state, increments, nowMs, current, idHash, idAt);
      if (stored !== undefined) restrictions.delete(key);
      if (countsForTenant) countTenant(tenant.key, tenantWindow, current.day, external);
      return COUNTED;
    }
    const breaches = computeBreaches(request.limits, usedBy(state, current), increments);
    if (tenantBreach !== null) {
      // Refused by the tenant's cap: counted nowhere. The sender's own breaches are reported,
      // and a restricting one restricts, as it would have without the tenant.
      const refused = refuseFor(key, breaches, nowMs, tenantBreach);
      if (subscriptions.length !== 0) emit({ type: 'tenant-cap', at: new Date(nowMs).toISOString(), key, breach: tenantBreach });
      return refused;
    }
    // Counted: every breach only alerts, or the message is over the sender's limits and delivered
    // all the same (countOverLimit, overLimit: 'high-risk': sent, so counted). A restricting
    // breach still restricts, after the count (which drops an ended restriction).
    if (countOverLimit === true || countsDespite(breaches)) {
      count(key, state, increments, nowMs, current, idHash, idAt);
      if (stored !== undefined) restrictions.delete(key);
      if (countsForTenant) countTenant(tenant.key, tenantWindow, current.day, external);
      if (breaches.length === 0) return COUNTED;
      if (subscriptions.length !== 0) {
        const at = new Date(nowMs).toISOString();
        for (const breach of breaches) if (breach.action === 'alert') emit({ type: 'limit-alert', at, key, breach });
      }
      const calledFor = restrictionFor(breaches, nowMs);
      if (calledFor === null) return { restriction: null, breaches, counted: true };
      const imposed = isImmune(key, nowMs) ? null : calledFor;
      if (imposed !== null) impose(key, imposed, nowMs);
      return { restriction: null, breaches, counted: true, imposed };
    }
    return refuseFor(key, breaches, nowMs, null);
  };
  const restrictionSync = (key: string, now: Date): Restriction | null => activeRestriction(key, limiterTime(now, 'now'));

  /**
   * `refund`, done at once: takes back what `consumeSync(request)` counted at `request.now`, in
   * the buckets of that time, and forgets its id (spent, as a retry leaves it: the next message
   * with the id counts). Only an id remembered at that very time is forgotten: one counted since
   * by another message is that message's.
   */
  const refundSync = (request: ConsumeRequest): void => {
    const nowMs = limiterTime(request.now, 'request.now');
    const { key, messageId, tenant } = request;
    if (messageId !== undefined && typeof messageId !== 'string') throw new OutboundPoolsError('invalid-context', `The rate limiter's request.messageId must be a string, got ${show(messageId)}.`);
    if (tenant !== undefined) checkTenant(tenant);
    const current = currentBuckets(nowMs);
    const { internalRecipients: internal, externalRecipients: external } = request;
    // peek, not get: a refund is no use of the sender or the tenant for their eviction order.
    const state = counters.peek(key);
    if (messageId !== undefined && maxIds !== 0) {
      // The count is refunded only while the id's record still says this request counted it.
      // A retry answered meanwhile (the same message sent again while this one waited on its
      // other providers) spent the record and was delivered on this count: it stays. So does
      // anything a second refund of the same request would take (the record is spent by the first).
      const ids = state?.ids ?? null;
      const idAt = ids === null ? -1 : findId(ids, messageIdHash(messageId));
      if (idAt < 0 || ids![idAt + 1] !== nowMs) return;
      ids![idAt + 1] = SPENT;
    }
    if (state !== undefined) {
      takeFrom(state.messagesPerMinute, current.minute, 1);
      takeFrom(state.internalRecipientsPerHour, current.hour, internal);
      takeFrom(state.externalRecipientsPerHour, current.hour, external);
      takeFrom(state.recipientsPerDay, current.day, internal + external);
    }
    if (tenant !== undefined && external > 0) {
      const window = tenants.peek(tenant.key);
      if (window !== undefined) takeFrom(window, current.day, external);
    }
  };

  /** `reportSpam`, answered at once. */
  const reportSpamSync = (report: SpamReport): SpamReportResult => {
    const restrictAfter = checkSpamReport(report);
    const nowMs = limiterTime(report.now, 'report.now');
    const { key, messageId } = report;
    let state = counters.get(key);
    if (state === undefined) {
      state = new SenderCounters();
      counters.set(detach(key), state);
    }
    const spam = (state.spam ??= []);
    const idHash = messageId === undefined || maxIds === 0 ? -1 : messageIdHash(messageId);
    const retry = recordReport(spam, nowMs, idHash, maxIds);
    const count = reportsInWindow(spam, nowMs, restrictAfter.window);
    // A retry of a reported message counts once and restricts nothing more.
    if (retry) return { count, restriction: null };
    if (!spamRestricts(restrictAfter, count) || isImmune(key, nowMs)) return { count, restriction: null };
    const imposed = spamRestriction(restrictAfter, count, nowMs);
    const current = activeRestriction(key, nowMs);
    // A restriction in force that lasts as long or longer stays: this message imposed nothing.
    if (current !== null && untilMsOf(current) >= untilMsOf(imposed)) return { count, restriction: null };
    impose(key, imposed, nowMs);
    return { count, restriction: imposed };
  };

  const restrictSync = (key: string, options: RestrictOptions = {}): RestrictedSender => {
    checkKey(key, 'key');
    if (typeof options !== 'object' || options === null) throw new OutboundPoolsError('invalid-context', `restrict: options must be an object, got ${show(options)}.`);
    const { until, reason, now } = options;
    const nowMs = now === undefined ? Date.now() : limiterTime(now, 'options.now');
    let untilMs: number | null = null;
    if (until !== undefined && until !== null) {
      untilMs = validTime(until, 'options.until');
      if (untilMs <= nowMs) throw new OutboundPoolsError('invalid-context', `restrict: options.until (${new Date(untilMs).toISOString()}) must be after now (${new Date(nowMs).toISOString()}).`);
    }
    const restriction = adminRestriction(untilMs, adminReason(reason), nowMs);
    impose(key, restriction, nowMs);
    return { key, ...restriction };
  };

  const releaseSync = (key: string, now?: Date): boolean => {
    checkKey(key, 'key');
    const nowMs = now === undefined ? Date.now() : limiterTime(now, 'now');
    const stored = restrictions.get(key);
    if (stored === undefined) return false;
    restrictions.delete(key);
    // One that had already ended (a for-today one not yet dropped) is dropped, not released.
    if (!(nowMs < stored.untilMs)) return false;
    const immuneUntil = immunityEnd(nowMs);
    immune.set(detach(key), Date.parse(immuneUntil));
    if (subscriptions.length !== 0) emit({ type: 'released', at: new Date(nowMs).toISOString(), key, immuneUntil });
    return true;
  };

  return {
    consumeSync,
    restrictionSync,
    reportSpamSync,

    async consume(request: ConsumeRequest): Promise<ConsumeResult> {
      return consumeSync(request);
    },

    async restriction(key: string, now: Date): Promise<Restriction | null> {
      return restrictionSync(key, now);
    },

    reportSpam: async (report: SpamReport): Promise<SpamReportResult> => reportSpamSync(report),

    refundSync,

    refund: async (request: ConsumeRequest): Promise<void> => refundSync(request),

    async restrict(key: string, options?: RestrictOptions): Promise<RestrictedSender> {
      return restrictSync(key, options);
    },

    // True when a restriction in force at `now` was lifted; the sender is then immune to
    // automatic restriction until the next UTC midnight. A key with none gets no immunity.
    async release(key: string, now?: Date): Promise<boolean> {
      return releaseSync(key, now);
    },

    async restricted(now: Date): Promise<readonly RestrictedSender[]> {
      const nowMs = limiterTime(now, 'now');
      const list: RestrictedSender[] = [];
      const expired: string[] = [];
      for (const [key, stored] of restrictions.entries()) {
        if (nowMs < stored.untilMs) list.push({ key, ...stored.restriction });
        // Ended over a day ago, as the Redis limiter's index forgets them; a later end is kept
        // (a clock moved back finds it in force again, in both limiters).
        else if (stored.untilMs <= nowMs - DAY_MS) expired.push(key);
      }
      for (const key of expired) restrictions.delete(key);
      return list;
    },

    subscribe(listener: LimiterEventListener): () => void {
      if (typeof listener !== 'function') throw new OutboundPoolsError('invalid-context', `subscribe: the listener must be a function, got ${show(listener)}.`);
      const subscription: Subscription = { listener, active: true };
      subscriptions = [...subscriptions, subscription];
      return () => {
        if (!subscription.active) return;
        subscription.active = false;
        subscriptions = subscriptions.filter((s) => s !== subscription);
      };
    },

    stats(): MemoryRateLimiterStats {
      return {
        senders: counters.size,
        restrictions: restrictions.size,
        tenants: tenants.size,
        immune: immune.size,
        maxSenders,
        maxRestricted,
        maxTenants,
        maxImmune,
      };
    },
  };
}
