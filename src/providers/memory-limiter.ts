// The in-memory rate limiter (rules 1 and 3) for one process: sliding windows of 60
// sub-buckets per sender, restrictions kept apart from the counters, every structure bounded.
// The window arithmetic lives in limit-windows.ts, shared with the Redis limiter, so that both
// behave the same (docs/limits.md; test/providers/rate-limiter-behaviour.ts checks both).

import { lruCacheClass } from '../lru.js';
import { OutboundPoolsError, show } from '../errors.js';
import {
  BUCKETS_PER_WINDOW,
  MESSAGE_ID_MEMORY_MS,
  computeBreaches,
  messageIdHash,
  currentBuckets,
  countsDespite,
  incrementsOf,
  oldestBucket,
  restrictionFor,
  type CurrentBuckets,
  type WindowCounts,
} from './limit-windows.js';
import type { ConsumeRequest, ConsumeResult, LimitBreach, ManagedRateLimiter, Restriction, RestrictedSender } from './types.js';

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
}

/** Sizes of a {@link MemoryRateLimiter}, for monitoring and the bounded-memory checks. */
export interface MemoryRateLimiterStats {
  /** Senders with counters now (≤ `maxSenders`). */
  readonly senders: number;
  /** Restrictions stored now, expired ones not yet dropped included (≤ `maxRestricted`). */
  readonly restrictions: number;
  readonly maxSenders: number;
  readonly maxRestricted: number;
}

/**
 * The in-memory limiter: a {@link ManagedRateLimiter} that also answers at once
 * (`consumeSync`, `restrictionSync`: `decidePool` uses them, so a decision through it needs no
 * promise) and reports its sizes.
 */
export interface MemoryRateLimiter extends ManagedRateLimiter {
  consumeSync(request: ConsumeRequest): ConsumeResult;
  restrictionSync(key: string, now: Date): Restriction | null;
  /** Current sizes and bounds. */
  stats(): MemoryRateLimiterStats;
}

const DEFAULTS = { maxSenders: 100_000, maxMessageIdsPerSender: 100 } as const;
const LIMITS = { maxSenders: 100_000_000, maxMessageIdsPerSender: 1_000_000 } as const;
const OPTION_KEYS = ['maxSenders', 'maxRestricted', 'maxMessageIdsPerSender'] as const;

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
 * The window's count at bucket `current`: the buckets whose index is in `current − 59 … current`.
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
 * 60 live buckets (a clock moved back), the oldest. Returns the array to keep: a new exact-size
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
  if (pairs.length - start > 2 * BUCKETS_PER_WINDOW) {
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
   * A one-bit-per-id filter of the remembered ids over 60 bits (two words of 30, small integers
   * for V8 rather than boxed numbers; {@link idSlot}): an id whose bit is clear was never
   * remembered, so the usual new id costs no scan of the ring. Bits of overwritten ids stay set
   * (a scan then decides) until the ring comes round again, when the filter is rebuilt from the
   * ids it holds: O(1) amortised.
   */
  idLow = 0;
  idHigh = 0;
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

/** The position of `hash` in the sender's remembered ids, or -1. */
function findId(ids: number[], hash: number): number {
  for (let i = 0; i < ids.length; i += 2) if (ids[i] === hash) return i;
  return -1;
}

/** The answer to the usual message, counted without a breach: one shared, frozen object. */
const COUNTED: ConsumeResult = Object.freeze({ restriction: null, breaches: Object.freeze([]) as readonly LimitBreach[], counted: true });

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
  readonly restriction: Restriction;
  readonly untilMs: number;
}

function timeOf(now: unknown, what: string): number {
  const ms = now instanceof Date ? now.getTime() : Number.NaN;
  if (!Number.isFinite(ms)) throw new OutboundPoolsError('invalid-context', `The rate limiter's ${what} must be a valid Date.`);
  return ms;
}

/**
 * Creates an in-memory rate limiter for one process (several processes or nodes share limits
 * through the Redis limiter instead). Per sender key it keeps four sliding-window counters of 60
 * sub-buckets each — messages/minute, internal and external recipients/hour, recipients/24 h —
 * shared by every limit set of the policy; `consume` counts a message in all four or in none.
 *
 * Memory is bounded: at most `maxSenders` senders' counters (least recently used evicted, which
 * forgets that sender's counts), at most `maxRestricted` restrictions (kept apart, so counter
 * eviction never lifts one), at most `maxMessageIdsPerSender` remembered ids per sender. Every
 * operation is O(1) in the number of senders. Time comes only from the `now` it is given.
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

  const LRU = lruCacheClass();
  const counters = new LRU<string, SenderCounters>({ max: maxSenders });
  const restrictions = new LRU<string, StoredRestriction>({ max: maxRestricted });

  /** The restriction in force for `key` at `nowMs`; drops it when it has expired. */
  const activeRestriction = (key: string, nowMs: number): Restriction | null => {
    if (restrictions.size === 0) return null;
    const stored = restrictions.get(key);
    if (stored === undefined) return null;
    if (nowMs < stored.untilMs) return stored.restriction;
    restrictions.delete(key);
    return null;
  };

  /** Counts the message; `idAt` is where its id is already remembered (expired), else -1. */
  const count = (key: string, existing: SenderCounters | undefined, increments: WindowCounts, nowMs: number, current: CurrentBuckets, idHash: number, idAt: number): void => {
    let state = existing;
    if (state === undefined) {
      state = new SenderCounters();
      counters.set(key, state);
    }
    // Spelled out rather than looped over LIMIT_WINDOWS: one property each, no lookups by name.
    state.messagesPerMinute = addTo(state.messagesPerMinute, current.minute, increments.messagesPerMinute);
    if (increments.internalRecipientsPerHour > 0) {
      state.internalRecipientsPerHour = addTo(state.internalRecipientsPerHour, current.hour, increments.internalRecipientsPerHour);
    }
    if (increments.externalRecipientsPerHour > 0) {
      state.externalRecipientsPerHour = addTo(state.externalRecipientsPerHour, current.hour, increments.externalRecipientsPerHour);
    }
    if (increments.recipientsPerDay > 0) state.recipientsPerDay = addTo(state.recipientsPerDay, current.day, increments.recipientsPerDay);
    if (idHash < 0) return;
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

  /** `consume`, answered at once: every step is in memory. */
  const consumeSync = (request: ConsumeRequest): ConsumeResult => {
    const nowMs = timeOf(request.now, 'request.now');
    const { key, messageId } = request;
    if (messageId !== undefined && typeof messageId !== 'string') throw new OutboundPoolsError('invalid-context', `The rate limiter's request.messageId must be a string, got ${show(messageId)}.`);
    const restriction = activeRestriction(key, nowMs);
    if (restriction !== null) return { restriction, breaches: [], counted: false };

    const state = counters.get(key);
    // -1: no id to remember (none given, or remembering is off).
    const idHash = messageId === undefined || maxIds === 0 ? -1 : messageIdHash(messageId);
    let idAt = -1;
    if (idHash >= 0 && state !== undefined && state.ids !== null && mayHoldId(state, idHash)) {
      idAt = findId(state.ids, idHash);
      if (idAt >= 0 && nowMs - state.ids[idAt + 1]! < MESSAGE_ID_MEMORY_MS) return COUNTED;
    }

    const increments = incrementsOf(request.internalRecipients, request.externalRecipients);
    const current = currentBuckets(nowMs);
    if (request.limits.length === 0) {
      count(key, state, increments, nowMs, current, idHash, idAt);
      return COUNTED;
    }
    const breaches = computeBreaches(request.limits, usedBy(state, current), increments);
    if (countsDespite(breaches)) {
      count(key, state, increments, nowMs, current, idHash, idAt);
      return breaches.length === 0 ? COUNTED : { restriction: null, breaches, counted: true };
    }
    const imposed = restrictionFor(breaches, nowMs);
    if (imposed !== null) restrictions.set(key, { restriction: imposed, untilMs: imposed.until === null ? Infinity : Date.parse(imposed.until) });
    return { restriction: null, breaches, counted: false };
  };
  const restrictionSync = (key: string, now: Date): Restriction | null => activeRestriction(key, timeOf(now, 'now'));

  return {
    consumeSync,
    restrictionSync,

    async consume(request: ConsumeRequest): Promise<ConsumeResult> {
      return consumeSync(request);
    },

    async restriction(key: string, now: Date): Promise<Restriction | null> {
      return restrictionSync(key, now);
    },

    // True when a restriction was stored for the key (a for-today one past its end but not yet
    // dropped by a read included): release takes no clock.
    async release(key: string): Promise<boolean> {
      return restrictions.delete(key);
    },

    async restricted(now: Date): Promise<readonly RestrictedSender[]> {
      const nowMs = timeOf(now, 'now');
      const list: RestrictedSender[] = [];
      const expired: string[] = [];
      for (const [key, stored] of restrictions.entries()) {
        if (nowMs < stored.untilMs) {
          const { until, reason } = stored.restriction;
          list.push(reason === undefined ? { key, until } : { key, until, reason });
        } else expired.push(key);
      }
      for (const key of expired) restrictions.delete(key);
      return list;
    },

    stats(): MemoryRateLimiterStats {
      return { senders: counters.size, restrictions: restrictions.size, maxSenders, maxRestricted };
    },
  };
}
