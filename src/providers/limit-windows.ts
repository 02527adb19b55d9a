// The arithmetic of the sending limits, shared by the in-memory and the Redis rate limiters so
// that both count, compare and restrict in exactly the same way (docs/limits.md). Pure: no
// clock of its own, no state; every time comes in as epoch milliseconds from the caller.

import { OutboundPoolsError, show } from '../errors.js';
import { detach } from '../headers.js';
import type {
  LimitAction,
  LimitBreach,
  LimitSet,
  LimitWindow,
  Restriction,
  RestrictionCause,
  SpamRestrictAfter,
  TenantBreach,
  TenantLimitRequest,
} from './types.js';

/** The four counted windows, in the order breaches are reported for each limit set. */
export const LIMIT_WINDOWS: readonly LimitWindow[] = Object.freeze([
  'messagesPerMinute',
  'internalRecipientsPerHour',
  'externalRecipientsPerHour',
  'recipientsPerDay',
] as const);

/** Length of each window in milliseconds: 60 s, 3,600 s, 3,600 s and 86,400 s (24-hour sliding window). */
export const WINDOW_MS: Readonly<Record<LimitWindow, number>> = Object.freeze({
  messagesPerMinute: 60_000,
  internalRecipientsPerHour: 3_600_000,
  externalRecipientsPerHour: 3_600_000,
  recipientsPerDay: 86_400_000,
});

/** Buckets per window length: a bucket is 1/60 of the window; a window counts 61 of them ({@link oldestBucket}). */
export const BUCKETS_PER_WINDOW = 60;

/** Length of one bucket of each window in milliseconds: 1 s, 60 s, 60 s and 1,440 s. */
export const BUCKET_MS: Readonly<Record<LimitWindow, number>> = Object.freeze({
  messagesPerMinute: WINDOW_MS.messagesPerMinute / BUCKETS_PER_WINDOW,
  internalRecipientsPerHour: WINDOW_MS.internalRecipientsPerHour / BUCKETS_PER_WINDOW,
  externalRecipientsPerHour: WINDOW_MS.externalRecipientsPerHour / BUCKETS_PER_WINDOW,
  recipientsPerDay: WINDOW_MS.recipientsPerDay / BUCKETS_PER_WINDOW,
});

/** How long a counted message id is remembered, so that a retry of it counts once: 24 hours. */
export const MESSAGE_ID_MEMORY_MS = 86_400_000;

/**
 * The limiters' clock range: from the epoch to just before 10¹³ ms (2286-11-20). The Redis
 * limiter writes a time as 13 digits in its records (a message id's, a spam report's) and marks a
 * spent id with a 13-character time before the epoch; both limiters take the same range.
 */
export const MAX_TIME_MS = 9_999_999_999_999;

/**
 * Most spam reports `restrictAfter.count` may wait for, in a policy and in a limiter's
 * `reportSpam` alike: both limiters keep one record per report of the last 24 h 24 min, at most
 * {@link MAX_SPAM_RECORDS}, and could never count past them.
 */
export const MAX_SPAM_COUNT = 1_000;

/** Most spam reports a limiter keeps per sender (the newest): 1,000, in memory and on Redis alike. */
export const MAX_SPAM_RECORDS = MAX_SPAM_COUNT;

/**
 * A Date as epoch milliseconds, any valid one (a restriction's `until`, which is never written
 * as 13 digits).
 * @throws {OutboundPoolsError} `invalid-context` for anything but a valid Date.
 */
export function validTime(value: unknown, what: string): number {
  const ms = value instanceof Date ? value.getTime() : Number.NaN;
  if (!Number.isFinite(ms)) throw new OutboundPoolsError('invalid-context', `The rate limiter's ${what} must be a valid Date.`);
  return ms;
}

/** Whether epoch milliseconds `ms` are within the limiters' range, 0 … {@link MAX_TIME_MS}. */
export function isLimiterTime(ms: number): boolean {
  return ms >= 0 && ms <= MAX_TIME_MS;
}

/**
 * Refuses a `request.countOverLimit` that is neither absent nor a boolean (both limiters check it so).
 * @throws {OutboundPoolsError} `invalid-context`, always.
 */
export function badCountOverLimit(value: unknown): never {
  throw new OutboundPoolsError('invalid-context', `The rate limiter's request.countOverLimit must be true or false, got ${show(value)}.`);
}

/**
 * `now` as epoch milliseconds, checked as both limiters check it: a valid Date within
 * 0 … {@link MAX_TIME_MS}.
 * @throws {OutboundPoolsError} `invalid-context` otherwise.
 */
export function limiterTime(now: unknown, what: string): number {
  const ms = validTime(now, what);
  if (!isLimiterTime(ms)) {
    throw new OutboundPoolsError(
      'invalid-context',
      `The rate limiter's ${what} must be a Date from 1970-01-01T00:00:00.000Z to ${new Date(MAX_TIME_MS).toISOString()} (times are kept as 13 digits), got ${new Date(ms).toISOString()}.`,
    );
  }
  return ms;
}

/**
 * What a limiter remembers of a counted Message-ID: a 53-bit hash of it, a plain number, never
 * the string. The id the decision hands over is usually a slice of the header block (or of the
 * whole message), and a slice keeps its parent alive: remembering the string itself would pin
 * the whole 2–4 KB header block (or a 1 MB message) per remembered id. A number costs the same
 * few bytes whatever the id's length (docs/limits.md measures it), and is the same on every node,
 * so the Redis limiter remembers the same value.
 *
 * Two lanes of 32-bit multiply-xor over the UTF-16 code units, each finished with an avalanche
 * step; the result is lane A's 32 bits above lane B's low 21 bits, exact in a double. Two
 * different ids of one sender within the memory's 24 h match by accident with a chance of about
 * n²/2⁵⁴ for n remembered ids (≈ 5·10⁻¹³ at 100): the retry check becomes "same hash". The hash
 * is not cryptographic; a sender who crafts colliding ids gains nothing it could not have by
 * reusing one id, since the ids are per sender key and set by the same sender.
 */
export function messageIdHash(id: string): number {
  let a = 0x811c9dc5 ^ id.length;
  let b = 0x27d4eb2f;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 13;
  }
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  a = Math.imul(a, 0xc2b2ae35);
  a ^= a >>> 16;
  b ^= a;
  b ^= b >>> 15;
  b = Math.imul(b, 0x2c1b3c6d);
  b ^= b >>> 12;
  b = Math.imul(b, 0x297a2d39);
  b ^= b >>> 15;
  return (a >>> 0) * 0x200000 + (b & 0x1fffff);
}

/**
 * The bucket `nowMs` falls in, for each bucket length: `floor(nowMs / bucketMs)` (the two hourly
 * windows share theirs). A window's count is the sum of the buckets whose index is in
 * `current − 60 … current` ({@link oldestBucket} … current).
 */
export interface CurrentBuckets {
  readonly minute: number;
  readonly hour: number;
  readonly day: number;
}

/** The {@link CurrentBuckets} at `nowMs`. */
export function currentBuckets(nowMs: number): CurrentBuckets {
  return {
    minute: Math.floor(nowMs / BUCKET_MS.messagesPerMinute),
    hour: Math.floor(nowMs / BUCKET_MS.internalRecipientsPerHour),
    day: Math.floor(nowMs / BUCKET_MS.recipientsPerDay),
  };
}

/**
 * The oldest bucket index still inside the window whose newest bucket is `current`: 60 back, so
 * that the window spans 61 buckets — at least its whole length whatever the time within the
 * current bucket. With 60 (`current − 59 … current`) it spanned from 59 buckets and a moment to
 * 60, and a sender could send the limit at the end of a bucket and again 59 buckets later: twice
 * the limit within less than the window. Now no true window holds more than the limit, and a
 * count lasts up to one bucket longer than the window (1/60 of it).
 */
export function oldestBucket(current: number): number {
  return current - BUCKETS_PER_WINDOW;
}

/** One number per counted window: what has been used, or what a message adds. */
export type WindowCounts = Record<LimitWindow, number>;

/**
 * What one message adds to each window: 1 message; its internal, external, and all recipients.
 */
export function incrementsOf(internalRecipients: number, externalRecipients: number): WindowCounts {
  return {
    messagesPerMinute: 1,
    internalRecipientsPerHour: internalRecipients,
    externalRecipientsPerHour: externalRecipients,
    recipientsPerDay: internalRecipients + externalRecipients,
  };
}

/**
 * Compares the shared counters with every limit set: a window a set configures is breached
 * when `used + increment > limit`. Returns every breach, `alert` ones included, set by set in
 * {@link LIMIT_WINDOWS} order. `recipientsPerMessage` is the core's (rule 2) and is ignored.
 */
export function computeBreaches(limits: readonly LimitSet[], used: WindowCounts, increments: WindowCounts): readonly LimitBreach[] {
  // Allocated at the first breach: the usual message breaches nothing and gets the shared NONE.
  let breaches: LimitBreach[] | null = null;
  // The four windows spelled out in LIMIT_WINDOWS order: one property each, no lookups by name.
  for (const set of limits) {
    const { messagesPerMinute, internalRecipientsPerHour, externalRecipientsPerHour, recipientsPerDay } = set;
    if (messagesPerMinute !== undefined && used.messagesPerMinute + increments.messagesPerMinute > messagesPerMinute) {
      (breaches ??= []).push(breach(set, 'messagesPerMinute', messagesPerMinute, used.messagesPerMinute));
    }
    if (internalRecipientsPerHour !== undefined && used.internalRecipientsPerHour + increments.internalRecipientsPerHour > internalRecipientsPerHour) {
      (breaches ??= []).push(breach(set, 'internalRecipientsPerHour', internalRecipientsPerHour, used.internalRecipientsPerHour));
    }
    if (externalRecipientsPerHour !== undefined && used.externalRecipientsPerHour + increments.externalRecipientsPerHour > externalRecipientsPerHour) {
      (breaches ??= []).push(breach(set, 'externalRecipientsPerHour', externalRecipientsPerHour, used.externalRecipientsPerHour));
    }
    if (recipientsPerDay !== undefined && used.recipientsPerDay + increments.recipientsPerDay > recipientsPerDay) {
      (breaches ??= []).push(breach(set, 'recipientsPerDay', recipientsPerDay, used.recipientsPerDay));
    }
  }
  return breaches ?? NONE;
}

/** No breach: shared and frozen. */
const NONE: readonly LimitBreach[] = Object.freeze([]);

function breach(set: LimitSet, window: LimitWindow, limit: number, used: number): LimitBreach {
  return { window, limit, used, action: set.action, set: set.name };
}

/** Whether the message is counted despite its breaches: there are none, or every one is `alert`. */
export function countsDespite(breaches: readonly LimitBreach[]): boolean {
  for (const breach of breaches) if (breach.action !== 'alert') return false;
  return true;
}

/** The next UTC midnight strictly after `nowMs`, as an ISO 8601 string (`…T00:00:00.000Z`). */
export function nextUtcMidnight(nowMs: number): string {
  const now = new Date(nowMs);
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)).toISOString();
}

function restrictionReason(breach: LimitBreach): string {
  return `over ${breach.window} (${breach.used} used, limit ${breach.limit}) of limit set ${JSON.stringify(breach.set)}, action ${breach.action}`;
}

/** A restriction as the limiters of outbound-pools impose it: with when it began and why. */
export type CausedRestriction = Restriction & { readonly since: string; readonly cause: RestrictionCause };

/**
 * The restriction a refused message's breaches impose, or null when none does (only `block`
 * and `alert` breaches): any `block-user` breach restricts until released (`until: null`),
 * else any `block-user-for-today` breach until the next UTC midnight. The reason names the
 * window and the limit set of the first breach with the deciding action, and so does the cause
 * (`{ kind: 'limit', window, set }`); `since` is `nowMs`.
 */
export function restrictionFor(breaches: readonly LimitBreach[], nowMs: number): CausedRestriction | null {
  const decisive = firstWithAction(breaches, 'block-user') ?? firstWithAction(breaches, 'block-user-for-today');
  if (decisive === undefined) return null;
  return {
    until: decisive.action === 'block-user' ? null : nextUtcMidnight(nowMs),
    reason: restrictionReason(decisive),
    since: new Date(nowMs).toISOString(),
    cause: { kind: 'limit', window: decisive.window, set: decisive.set },
  };
}

function firstWithAction(breaches: readonly LimitBreach[], action: LimitAction): LimitBreach | undefined {
  for (const breach of breaches) if (breach.action === action) return breach;
  return undefined;
}

/** Whether a restriction is in force at `nowMs`: `until` is null, or later than now. */
export function isActive(restriction: Restriction, nowMs: number): boolean {
  return restriction.until === null || nowMs < Date.parse(restriction.until);
}

/** A restriction's `until` in epoch milliseconds: Infinity for null (until released). */
export function untilMsOf(restriction: Restriction): number {
  return restriction.until === null ? Infinity : Date.parse(restriction.until);
}

// ---- Administrators: restrict and release ----

/** The reason of an administrator's restriction given without one (or with an empty one). */
export const ADMIN_REASON = 'restricted by an administrator';
/** An administrator's reason is at most this many UTF-8 bytes, in both limiters. */
export const MAX_REASON_BYTES = 4_096;

/**
 * `options.reason` of `restrict`, checked alike by both limiters: a string of at most
 * {@link MAX_REASON_BYTES} bytes, or undefined; an empty one is none (the default reason).
 * @throws {OutboundPoolsError} `invalid-context`.
 */
export function adminReason(reason: unknown): string | undefined {
  if (reason === undefined || reason === '') return undefined;
  if (typeof reason !== 'string') throw new OutboundPoolsError('invalid-context', `restrict: options.reason must be a string, got ${show(reason)}.`);
  if (Buffer.byteLength(reason, 'utf8') > MAX_REASON_BYTES) throw new OutboundPoolsError('invalid-context', `restrict: options.reason must be at most ${MAX_REASON_BYTES.toLocaleString('en-US')} bytes.`);
  return reason;
}

/**
 * An administrator's restriction (`restrict(key, { until, reason, now })`): until `untilMs`
 * (null: until released), with the reason given or {@link ADMIN_REASON}, cause `{ kind: 'admin' }`.
 */
export function adminRestriction(untilMs: number | null, reason: string | undefined, nowMs: number): CausedRestriction {
  return {
    until: untilMs === null ? null : new Date(untilMs).toISOString(),
    // Kept as long as the restriction: a copy, not a view of the caller's string.
    reason: reason === undefined ? ADMIN_REASON : detach(reason),
    since: new Date(nowMs).toISOString(),
    cause: { kind: 'admin' },
  };
}

/**
 * Until when a sender released at `nowMs` is immune to automatic restriction (limits and spam):
 * the next UTC midnight strictly after `nowMs`, as for `block-user-for-today`.
 */
export function immunityEnd(nowMs: number): string {
  return nextUtcMidnight(nowMs);
}

// ---- Tenants (rule 11) ----

/** The tenant window: external recipients over a sliding 24 h, the buckets of `recipientsPerDay` (1,440 s). */
export const TENANT_WINDOW_MS = WINDOW_MS.recipientsPerDay;

/**
 * The tenant's breach, or null: the message has external recipients and `used + external`
 * passes `externalRecipientsPerDay`. A message without an external recipient never breaches
 * (and adds nothing to the tenant's count); a tenant without a cap is only counted.
 */
export function tenantBreachOf(tenant: TenantLimitRequest, used: number, externalRecipients: number): TenantBreach | null {
  const limit = tenant.externalRecipientsPerDay;
  if (limit === undefined || externalRecipients <= 0 || used + externalRecipients <= limit) return null;
  return { tenant: tenant.key, limit, used };
}

// ---- Spam reports (rule 6, policy.spam.restrictAfter) ----

/** The spam windows' lengths: an hour and 24 hours, sliding. */
export const SPAM_WINDOW_MS: Readonly<Record<SpamRestrictAfter['window'], number>> = Object.freeze({ hour: 3_600_000, day: 86_400_000 });

/**
 * The spam windows' buckets, 60 each like the limit windows: 60 s for the hour, 1,440 s for the
 * day. A report is counted in both, so a policy may change its window without losing counts.
 */
export const SPAM_BUCKET_MS: Readonly<Record<SpamRestrictAfter['window'], number>> = Object.freeze({
  hour: SPAM_WINDOW_MS.hour / BUCKETS_PER_WINDOW,
  day: SPAM_WINDOW_MS.day / BUCKETS_PER_WINDOW,
});

/**
 * How long a spam report is kept: 24 h 24 min, the day window's 61 buckets ({@link oldestBucket}).
 * Both windows are counted from the same reports, so that a clock that jumped ahead and came back
 * finds the reports of its hour still there, in memory as on Redis.
 */
export const SPAM_REPORT_MS = SPAM_BUCKET_MS.day * (BUCKETS_PER_WINDOW + 1);

/** The bucket `nowMs` falls in for a spam window of `window`. */
export function spamBucket(nowMs: number, window: SpamRestrictAfter['window']): number {
  return Math.floor(nowMs / SPAM_BUCKET_MS[window]);
}

/** Whether a report that brought the count to `count` restricts: `count >= restrictAfter.count`. */
export function spamRestricts(restrictAfter: SpamRestrictAfter, count: number): boolean {
  return count >= restrictAfter.count;
}

/**
 * The restriction a sender's `count`-th spam message within the window imposes:
 * `block-user` until released, `block-user-for-today` until the next UTC midnight; cause
 * `{ kind: 'spam', count, window }`.
 */
export function spamRestriction(restrictAfter: SpamRestrictAfter, count: number, nowMs: number): CausedRestriction {
  const { window, action } = restrictAfter;
  return {
    until: action === 'block-user' ? null : nextUtcMidnight(nowMs),
    reason: `${count} messages judged spam within the last ${window} (restrict after ${restrictAfter.count}), action ${action}`,
    since: new Date(nowMs).toISOString(),
    cause: { kind: 'spam', count, window },
  };
}
