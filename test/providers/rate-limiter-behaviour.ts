// The behaviour every ManagedRateLimiter of outbound-pools must have (docs/limits.md), as one
// suite that the in-memory and the Redis limiters both run:
//
//   describeRateLimiterBehaviour('memory limiter', async () => ({ limiter, close: async () => {} }));
//
// Every test uses its own randomUUID() key prefix, so suites may share one Redis database and
// `restricted()` is always filtered by prefix. The clock is injected: times are offsets from a
// UTC midnight in the near future (tomorrow), so that a limiter giving Redis absolute expiry
// times (PEXPIREAT) computed from `now` never sees them in the past.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type {
  ConsumeRequest,
  ConsumeResult,
  LimitAction,
  LimitBreach,
  LimiterEvent,
  LimitSet,
  ManagedRateLimiter,
  SpamReportResult,
  SpamRestrictAfter,
  TenantLimitRequest,
} from '../../src/providers/types.js';

/** What the suite is given: a limiter, and how to close whatever it runs on. */
export interface LimiterUnderTest {
  readonly limiter: ManagedRateLimiter;
  close(): Promise<void>;
}

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Tomorrow 00:00 UTC: a day, hour, minute and bucket boundary of every window. */
const MIDNIGHT = (Math.floor(Date.now() / DAY) + 1) * DAY;
/** 10:00:00.000 UTC tomorrow; tests give times as offsets from it. */
const T0 = MIDNIGHT + 10 * HOUR;
const at = (offsetMs: number): Date => new Date(T0 + offsetMs);
const iso = (ms: number): string => new Date(ms).toISOString();

/** A limit set as the policy normalises it. */
function set(name: string, action: LimitAction, windows: Omit<LimitSet, 'name' | 'action'>): LimitSet {
  return { name, action, ...windows };
}

/**
 * Defines a `describe(name)` with the whole rate limiter behaviour. `make` is called once,
 * before the tests; `close` once after them.
 */
export function describeRateLimiterBehaviour(name: string, make: () => Promise<LimiterUnderTest>): void {
  describe(name, () => {
    let under: LimiterUnderTest | undefined;
    let limiter: ManagedRateLimiter;
    before(async () => {
      under = await make();
      limiter = under.limiter;
    });
    after(async () => {
      await under?.close();
    });

    /** A fresh sender key, unique to this run. */
    const newKey = (label = 'sender'): string => `${randomUUID()}:${label}@fabrikam.example`;

    /** A consumer for one key and one list of limit sets. */
    const sender = (limits: readonly LimitSet[], key = newKey()) => {
      const send = (offsetMs: number, recipients: { internal?: number; external?: number; messageId?: string } = {}): Promise<ConsumeResult> => {
        const request: ConsumeRequest = {
          key,
          internalRecipients: recipients.internal ?? 0,
          externalRecipients: recipients.external ?? 1,
          limits,
          now: at(offsetMs),
          ...(recipients.messageId === undefined ? {} : { messageId: recipients.messageId }),
        };
        return limiter.consume(request);
      };
      return { key, send };
    };

    const assertCounted = (result: ConsumeResult, message = 'counted'): void => {
      assert.deepEqual(result, { restriction: null, breaches: [], counted: true }, message);
    };
    /** A retry's answer: counted, because its id was counted before; nothing counted now. */
    const assertRetry = (result: ConsumeResult, message = 'a retry'): void => {
      assert.deepEqual(result, { restriction: null, breaches: [], counted: true, retry: true }, message);
    };

    describe('each window alone', () => {
      it('messages per minute: the limit fits, the next message is refused with its breach', async () => {
        const limits = [set('per-minute', 'block', { messagesPerMinute: 3 })];
        const { send } = sender(limits);
        for (let i = 0; i < 3; i++) assertCounted(await send(i * SECOND));
        assert.deepEqual(await send(3 * SECOND), {
          restriction: null,
          breaches: [{ window: 'messagesPerMinute', limit: 3, used: 3, action: 'block', set: 'per-minute' }],
          counted: false,
        });
      });

      it('internal and external recipients per hour are counted separately', async () => {
        const limits = [set('hourly', 'block', { internalRecipientsPerHour: 5, externalRecipientsPerHour: 4 })];
        const { send } = sender(limits);
        assertCounted(await send(0, { internal: 3, external: 0 }));
        assertCounted(await send(MINUTE, { internal: 2, external: 4 }));
        // Internal is full (5/5): one more internal recipient is refused, its used is 5.
        assert.deepEqual((await send(2 * MINUTE, { internal: 1, external: 0 })).breaches, [
          { window: 'internalRecipientsPerHour', limit: 5, used: 5, action: 'block', set: 'hourly' },
        ]);
        // External is full too (4/4), on its own counter.
        assert.deepEqual((await send(3 * MINUTE, { internal: 0, external: 1 })).breaches, [
          { window: 'externalRecipientsPerHour', limit: 4, used: 4, action: 'block', set: 'hourly' },
        ]);
        // A message to nobody of either kind still fits.
        assertCounted(await send(4 * MINUTE, { internal: 0, external: 0 }));
      });

      it('one window limited: recipients of the other kind are not limited', async () => {
        const { send } = sender([set('internal-only', 'block', { internalRecipientsPerHour: 2 })]);
        assertCounted(await send(0, { internal: 2, external: 500 }));
        assertCounted(await send(SECOND, { internal: 0, external: 500 }));
        assert.equal((await send(2 * SECOND, { internal: 1, external: 0 })).counted, false);
      });

      it('recipients per day: internal and external together, over a 24-hour sliding window', async () => {
        const limits = [set('daily', 'block', { recipientsPerDay: 10 })];
        const { send } = sender(limits);
        assertCounted(await send(0, { internal: 6, external: 0 }));
        assertCounted(await send(HOUR, { internal: 0, external: 4 }));
        assert.deepEqual((await send(2 * HOUR, { internal: 1, external: 0 })).breaches, [
          { window: 'recipientsPerDay', limit: 10, used: 10, action: 'block', set: 'daily' },
        ]);
        // Past midnight (a calendar day would reset): the first 6 are still in the window.
        const refused = await send(14 * HOUR + MINUTE, { internal: 0, external: 1 });
        assert.equal(refused.counted, false);
        assert.equal(refused.breaches[0]?.used, 10);
        // 24 hours after the first message its 6 still count, for one bucket (24 minutes): a
        // window of 61 buckets spans at least 24 hours. After it they have left; the later 4 have not.
        assert.equal((await send(DAY, { internal: 0, external: 6 })).counted, false);
        const back = await send(DAY + 24 * MINUTE, { internal: 0, external: 6 });
        assertCounted(back);
        assert.equal((await send(DAY + 24 * MINUTE + SECOND, { external: 1 })).breaches[0]?.used, 10);
      });

      it('a count drops the expired buckets of every window, the ones it adds nothing to included: a clock moved back finds the same counts in both limiters', async () => {
        const { send } = sender([set('internal-hourly', 'block', { internalRecipientsPerHour: 2 })]);
        assertCounted(await send(39 * MINUTE, { internal: 2, external: 0 }));
        // An hour later, external recipients only: the 00:39 bucket has left the internal window.
        assertCounted(await send(100 * MINUTE + 59 * SECOND, { internal: 0, external: 1 }));
        // The clock back at 00:40:59 (a replayed decision, a node whose clock is behind): the
        // internal window was pruned at 01:40:59, so it is empty, not 2 of 2.
        assertCounted(await send(40 * MINUTE + 59 * SECOND, { internal: 1, external: 2 }));
      });

      it('after the clock moved back and forth a window keeps at most 61 buckets in bucket order, the oldest dropped first, in both limiters', async () => {
        const key = newKey();
        const roomy = [set('roomy', 'block', { messagesPerMinute: 1_000 })];
        const message = (offsetMs: number, limits: readonly LimitSet[]): ConsumeRequest => ({ key, internalRecipients: 0, externalRecipients: 1, limits, now: at(offsetMs) });
        // Two buckets ahead (121 s, 120 s), then the clock back at 60 s and one a second to 119 s:
        // 62 buckets; the 61 kept are 61 … 121 s, the one at 60 s, the oldest, dropped.
        assertCounted(await limiter.consume(message(121 * SECOND, roomy)));
        assertCounted(await limiter.consume(message(120 * SECOND, roomy)));
        for (let second = 60; second <= 119; second++) assertCounted(await limiter.consume(message(second * SECOND, roomy)));
        // At 119 s the window is 59 … 119 s: 59 buckets of one message kept in it.
        const probe = await limiter.consume(message(119 * SECOND, [set('probe', 'alert', { messagesPerMinute: 0 })]));
        assert.deepEqual(probe.breaches.map((b) => [b.window, b.used]), [['messagesPerMinute', 59]]);
      });

      it('a message with more recipients than the whole limit is refused even when nothing was sent', async () => {
        const { send } = sender([set('daily', 'block', { recipientsPerDay: 10 })]);
        assert.deepEqual((await send(0, { internal: 5, external: 6 })).breaches, [
          { window: 'recipientsPerDay', limit: 10, used: 0, action: 'block', set: 'daily' },
        ]);
      });
    });

    describe('sliding windows', () => {
      it('messages per minute: a burst at a minute boundary cannot reach twice the limit', async () => {
        const { send } = sender([set('per-minute', 'block', { messagesPerMinute: 10 })]);
        // Fill the limit late in one minute (10:00:50)...
        for (let i = 0; i < 10; i++) assertCounted(await send(50 * SECOND + i));
        // ...just past the fixed-window boundary (10:01:00.5) a fixed window would allow 10 more.
        const burst = await send(MINUTE + 500);
        assert.equal(burst.counted, false);
        assert.equal(burst.breaches[0]?.used, 10);
        // One bucket (1 s) before a whole minute has passed, they still count; and a whole minute
        // after the first of them, in the next bucket, too: the last was sent 9 ms after the first,
        // and the window must hold a whole minute after it.
        assert.equal((await send(50 * SECOND + MINUTE - 1)).counted, false);
        assert.equal((await send(50 * SECOND + MINUTE + 500)).counted, false);
        // A whole window and a bucket after them, the sender is free again: the full limit, no more.
        for (let i = 0; i < 10; i++) assertCounted(await send(51 * SECOND + MINUTE + i));
        assert.equal((await send(51 * SECOND + MINUTE + 10)).counted, false);
      });

      it('recipients per hour: the same at an hour boundary', async () => {
        const { send } = sender([set('hourly', 'block', { externalRecipientsPerHour: 5 })]);
        assertCounted(await send(50 * MINUTE, { external: 5 }));
        const burst = await send(HOUR + 30 * SECOND, { external: 5 });
        assert.equal(burst.counted, false);
        assert.equal(burst.breaches[0]?.used, 5);
        assert.equal((await send(HOUR + 50 * MINUTE - 1, { external: 1 })).counted, false);
        assert.equal((await send(HOUR + 50 * MINUTE, { external: 1 })).counted, false);
        assertCounted(await send(HOUR + 51 * MINUTE, { external: 5 }));
      });

      it('the counts of earlier buckets leave the window one by one', async () => {
        const { send } = sender([set('per-minute', 'block', { messagesPerMinute: 3 })]);
        assertCounted(await send(0));
        assertCounted(await send(20 * SECOND));
        assertCounted(await send(40 * SECOND));
        assert.equal((await send(59 * SECOND)).counted, false);
        assert.equal((await send(MINUTE)).counted, false); // a minute on, the first still counts (61 buckets)
        assertCounted(await send(MINUTE + SECOND)); // the first has left
        assert.equal((await send(MINUTE + 10 * SECOND)).counted, false);
        assertCounted(await send(MINUTE + 21 * SECOND)); // the second has left
      });

      it('agrees with a reference model of 61-bucket windows on random traffic', async () => {
        const limits = [set('model', 'block', { messagesPerMinute: 4, externalRecipientsPerHour: 8 })];
        await fc.assert(
          fc.asyncProperty(
            fc.array(fc.record({ dt: fc.integer({ min: 0, max: 40_000 }), external: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 40 }),
            async (steps) => {
              const { send } = sender(limits);
              const counted: { minute: number; hourBucket: number; external: number }[] = [];
              let t = 0;
              for (const step of steps) {
                t += step.dt;
                const now = T0 + t;
                const minute = Math.floor(now / SECOND);
                const hourBucket = Math.floor(now / MINUTE);
                const messages = counted.filter((c) => c.minute >= minute - 60 && c.minute <= minute).length;
                const external = counted.filter((c) => c.hourBucket >= hourBucket - 60 && c.hourBucket <= hourBucket).reduce((sum, c) => sum + c.external, 0);
                const expected = [];
                if (messages + 1 > 4) expected.push({ window: 'messagesPerMinute', limit: 4, used: messages, action: 'block', set: 'model' });
                if (external + step.external > 8) expected.push({ window: 'externalRecipientsPerHour', limit: 8, used: external, action: 'block', set: 'model' });
                const result = await send(t, { external: step.external });
                assert.deepEqual(result, { restriction: null, breaches: expected, counted: expected.length === 0 });
                if (result.counted) counted.push({ minute, hourBucket, external: step.external });
              }
            },
          ),
          { numRuns: 25 },
        );
      });
    });

    it('is atomic across windows: a message refused by one window is counted in none', async () => {
      const { send } = sender([set('mixed', 'block', { messagesPerMinute: 2, externalRecipientsPerHour: 5, recipientsPerDay: 7 })]);
      assertCounted(await send(0, { external: 3 }));
      // Refused by external/hour (3 + 3 > 5): must not count as a message nor as 3 recipients/day.
      assert.deepEqual((await send(SECOND, { external: 3 })).breaches, [
        { window: 'externalRecipientsPerHour', limit: 5, used: 3, action: 'block', set: 'mixed' },
      ]);
      // Fits only if the refused message counted nowhere: messages 1 + 1 ≤ 2, day 3 + 4 ≤ 7.
      assertCounted(await send(2 * SECOND, { internal: 4, external: 0 }));
      // Now messages are full (2) and the day is full (7): a message to nobody breaches messages only.
      assert.deepEqual((await send(3 * SECOND, { internal: 0, external: 0 })).breaches, [
        { window: 'messagesPerMinute', limit: 2, used: 2, action: 'block', set: 'mixed' },
      ]);
      assert.deepEqual((await send(MINUTE + 3 * SECOND, { internal: 1, external: 0 })).breaches, [
        { window: 'recipientsPerDay', limit: 7, used: 7, action: 'block', set: 'mixed' },
      ]);
    });

    it('several limit sets share the counters; each compares them with its own limits', async () => {
      const limits = [set('hard', 'block', { messagesPerMinute: 5 }), set('watch', 'alert', { messagesPerMinute: 3, recipientsPerDay: 100 })];
      const { send } = sender(limits);
      for (let i = 0; i < 3; i++) assertCounted(await send(i));
      for (let i = 3; i < 5; i++) {
        assert.deepEqual(await send(i), {
          restriction: null,
          breaches: [{ window: 'messagesPerMinute', limit: 3, used: i, action: 'alert', set: 'watch' }],
          counted: true,
        });
      }
      assert.deepEqual(await send(5), {
        restriction: null,
        breaches: [
          { window: 'messagesPerMinute', limit: 5, used: 5, action: 'block', set: 'hard' },
          { window: 'messagesPerMinute', limit: 3, used: 5, action: 'alert', set: 'watch' },
        ],
        counted: false,
      });
    });

    it('no limit sets: everything is counted and nothing is breached', async () => {
      const { send } = sender([]);
      for (let i = 0; i < 5; i++) assertCounted(await send(i, { internal: 1000, external: 1000 }));
    });

    describe('actions', () => {
      it('block: refused, not restricted, allowed again when the window allows', async () => {
        const { key, send } = sender([set('per-minute', 'block', { messagesPerMinute: 1 })]);
        assertCounted(await send(0));
        const refused = await send(SECOND);
        assert.equal(refused.counted, false);
        assert.equal(refused.restriction, null);
        assert.equal(await limiter.restriction(key, at(SECOND)), null);
        assert.equal((await send(MINUTE - 1)).counted, false);
        assertCounted(await send(MINUTE + SECOND));
      });

      it('alert: counted and delivered beyond the limit, every breach reported with its used count', async () => {
        const { key, send } = sender([set('watch', 'alert', { externalRecipientsPerHour: 2 })]);
        assertCounted(await send(0, { external: 2 }));
        for (let i = 1; i <= 3; i++) {
          assert.deepEqual(await send(i * SECOND, { external: 1 }), {
            restriction: null,
            breaches: [{ window: 'externalRecipientsPerHour', limit: 2, used: 1 + i, action: 'alert', set: 'watch' }],
            counted: true,
          });
        }
        assert.equal(await limiter.restriction(key, at(4 * SECOND)), null);
      });

      it('block-user-for-today: refused and restricted until the next UTC midnight, then free', async () => {
        const limits = [set('daily-policy', 'block-user-for-today', { messagesPerMinute: 2 })];
        const { key, send } = sender(limits);
        const tomorrow = iso(MIDNIGHT + DAY);
        assertCounted(await send(0));
        assertCounted(await send(SECOND));
        const refused = await send(2 * SECOND);
        assert.equal(refused.counted, false);
        assert.deepEqual(refused.breaches, [{ window: 'messagesPerMinute', limit: 2, used: 2, action: 'block-user-for-today', set: 'daily-policy' }]);
        const restriction = await limiter.restriction(key, at(3 * SECOND));
        assert.equal(restriction?.until, tomorrow);
        assert.match(restriction?.reason ?? '', /messagesPerMinute/);
        assert.match(restriction?.reason ?? '', /daily-policy/);
        // Hours later the minute window is free, but the sender is still restricted: nothing counted.
        const later = await send(5 * HOUR);
        assert.deepEqual(later, { restriction, breaches: [], counted: false });
        assert.deepEqual(await limiter.restriction(key, new Date(MIDNIGHT + DAY - 1)), restriction);
        // At midnight the restriction ends by itself.
        assert.equal(await limiter.restriction(key, new Date(MIDNIGHT + DAY)), null);
        assertCounted(await send(MIDNIGHT + DAY - T0));
      });

      it('a for-today restriction that has ended is in force again when the clock moves back before its end, until the sender is counted', async () => {
        const limits = [set('daily-policy', 'block-user-for-today', { messagesPerMinute: 1 })];
        const { key, send } = sender(limits);
        assertCounted(await send(0));
        const restriction = (await send(SECOND)).restriction ?? (await limiter.restriction(key, at(2 * SECOND)));
        assert.equal(restriction?.until, iso(MIDNIGHT + DAY));
        // Read, listed and reported on after its end: ended, in both limiters.
        const ended = MIDNIGHT + DAY + HOUR - T0;
        assert.equal(await limiter.restriction(key, at(ended)), null);
        assert.deepEqual((await limiter.restricted(at(ended))).filter((r) => r.key === key), []);
        assert.equal((await limiter.reportSpam({ key, restrictAfter: { count: 100, window: 'day', action: 'block-user' }, now: at(ended) })).restriction, null);
        // The clock back before midnight (a node whose clock was ahead): still restricted then.
        assert.deepEqual(await limiter.restriction(key, at(2 * HOUR)), restriction);
        assert.deepEqual(await send(2 * HOUR), { restriction, breaches: [], counted: false });
        // Counted after its end, the sender's ended restriction is dropped: the clock back finds none.
        assertCounted(await send(ended));
        assert.equal(await limiter.restriction(key, at(2 * HOUR)), null);
      });

      it('block-user: refused and restricted until released', async () => {
        const { key, send } = sender([set('outbound-spam', 'block-user', { externalRecipientsPerHour: 3 })]);
        assertCounted(await send(0, { external: 3 }));
        const refused = await send(SECOND, { external: 1 });
        assert.equal(refused.counted, false);
        assert.equal(refused.restriction, null, 'the refusal reports the breach; the restriction applies from the next message');
        assert.equal(refused.breaches[0]?.action, 'block-user');
        const restriction = await limiter.restriction(key, at(2 * SECOND));
        assert.deepEqual(refused.imposed, restriction, 'the refusal says what it imposed');
        assert.equal(restriction?.until, null);
        assert.match(restriction?.reason ?? '', /externalRecipientsPerHour/);
        assert.match(restriction?.reason ?? '', /outbound-spam/);
        // A week on, still restricted.
        assert.deepEqual(await send(7 * DAY, { external: 1 }), { restriction, breaches: [], counted: false });
        assert.equal(await limiter.release(key), true);
        assert.equal(await limiter.release(key), false);
        assert.equal(await limiter.restriction(key, at(7 * DAY)), null);
        assertCounted(await send(7 * DAY, { external: 1 }));
      });

      it('block-user wins over block-user-for-today when both are breached; block alone restricts nobody', async () => {
        const limits = [
          set('a-block', 'block', { messagesPerMinute: 1 }),
          set('b-today', 'block-user-for-today', { messagesPerMinute: 1 }),
          set('c-user', 'block-user', { messagesPerMinute: 1 }),
        ];
        const { key, send } = sender(limits);
        assertCounted(await send(0));
        assert.deepEqual(
          (await send(SECOND)).breaches.map((b) => b.set),
          ['a-block', 'b-today', 'c-user'],
        );
        const restriction = await limiter.restriction(key, at(SECOND));
        assert.equal(restriction?.until, null);
        assert.match(restriction?.reason ?? '', /c-user/);
        await limiter.release(key);
      });

      it('an alert breach beside a block breach does not make the message count', async () => {
        const { send } = sender([set('watch', 'alert', { messagesPerMinute: 1 }), set('hard', 'block', { recipientsPerDay: 2 })]);
        assertCounted(await send(0, { external: 2 }));
        const refused = await send(SECOND, { external: 1 });
        assert.equal(refused.counted, false);
        assert.deepEqual(
          refused.breaches.map((b) => [b.set, b.used]),
          [['watch', 1], ['hard', 2]],
        );
        // Not counted: a message to nobody still sees 1 message and 2 recipients.
        assert.deepEqual(
          (await send(2 * SECOND, { external: 0 })).breaches.map((b) => [b.set, b.used]),
          [['watch', 1]],
        );
      });
    });

    describe('restrictions', () => {
      it('restricted() lists the active restrictions with key, until and reason; release() lifts one', async () => {
        const prefix = randomUUID();
        const forToday = sender([set('today', 'block-user-for-today', { messagesPerMinute: 1 })], `${prefix}:today@fabrikam.example`);
        const forGood = sender([set('forever', 'block-user', { messagesPerMinute: 1 })], `${prefix}:forever@fabrikam.example`);
        const free = sender([set('plain', 'block', { messagesPerMinute: 1 })], `${prefix}:free@fabrikam.example`);
        for (const s of [forToday, forGood, free]) {
          assertCounted(await s.send(0));
          assert.equal((await s.send(1)).counted, false);
        }
        const mine = async (now: Date) =>
          (await limiter.restricted(now)).filter((r) => r.key.startsWith(prefix)).sort((a, b) => a.key.localeCompare(b.key));
        const listed = await mine(at(SECOND));
        assert.deepEqual(
          listed.map((r) => [r.key, r.until]),
          [
            [forGood.key, null],
            [forToday.key, iso(MIDNIGHT + DAY)],
          ],
        );
        for (const r of listed) assert.equal(typeof r.reason, 'string');
        assert.deepEqual(listed[1], { key: forToday.key, ...(await limiter.restriction(forToday.key, at(SECOND))) });
        assert.equal(await limiter.release(forGood.key), true);
        assert.equal(await limiter.restriction(forGood.key, at(2 * SECOND)), null);
        assert.deepEqual(await mine(at(2 * SECOND)), [{ key: forToday.key, ...(await limiter.restriction(forToday.key, at(2 * SECOND))) }]);
        // After midnight the one for today has ended by itself.
        assert.deepEqual(await mine(new Date(MIDNIGHT + DAY)), []);
        assert.equal(await limiter.release(free.key), false);
      });

      it("a restricted sender's messages count nothing, in any window", async () => {
        const { key, send } = sender([set('hard', 'block-user', { messagesPerMinute: 1 }), set('watch', 'alert', { recipientsPerDay: 1 })]);
        assertCounted(await send(0, { external: 1 }));
        assert.equal((await send(SECOND)).counted, false);
        for (let i = 2; i < 6; i++) assert.equal((await send(i * SECOND, { external: 10 })).counted, false);
        assert.equal(await limiter.release(key), true);
        // Still within the minute: 1 message and 1 recipient counted, as before the restriction.
        assert.deepEqual(
          (await send(10 * SECOND, { external: 1 })).breaches.map((b) => [b.window, b.used]),
          [
            ['messagesPerMinute', 1],
            ['recipientsPerDay', 1],
          ],
        );
        await limiter.release(key);
      });

      it('restriction() is null for a sender never seen', async () => {
        assert.equal(await limiter.restriction(newKey(), at(0)), null);
        assert.equal(await limiter.release(newKey()), false);
      });
    });

    describe('retries', () => {
      it('a retry (the messageId of a counted message) counts once', async () => {
        const { send } = sender([set('per-minute', 'block', { messagesPerMinute: 2, recipientsPerDay: 5 })]);
        assertCounted(await send(0, { external: 2, messageId: '<a@fabrikam.example>' }));
        assertRetry(await send(SECOND, { external: 2, messageId: '<a@fabrikam.example>' }));
        assertCounted(await send(5 * SECOND, { external: 2, messageId: '<b@fabrikam.example>' }));
        assert.deepEqual(
          (await send(6 * SECOND, { external: 2, messageId: '<c@fabrikam.example>' })).breaches.map((b) => [b.window, b.used]),
          [
            ['messagesPerMinute', 2],
            ['recipientsPerDay', 4],
          ],
        );
        // A retry of a counted message is still fine while the window is full.
        assertRetry(await send(7 * SECOND, { external: 2, messageId: '<b@fabrikam.example>' }));
      });

      it('a retry spends the id: a sender reusing one id gets at most one free message per counted one', async () => {
        const { send } = sender([set('per-minute', 'block', { messagesPerMinute: 2 })]);
        const id = { messageId: '<same@fabrikam.example>' };
        assertCounted(await send(0, id)); // counted: 1
        assertRetry(await send(SECOND, id)); // the retry, free
        assertCounted(await send(2 * SECOND, id)); // counted again: 2
        assertRetry(await send(3 * SECOND, id)); // its retry, free
        assert.deepEqual((await send(4 * SECOND, id)).breaches.map((b) => [b.window, b.used]), [['messagesPerMinute', 2]]);
      });

      it('a spent id stays spent on a clock at the epoch (1970-01-01T00:00:00Z, as test clocks often are)', async () => {
        const limits = [set('per-minute', 'block', { messagesPerMinute: 10 })];
        const key = newKey();
        const at0 = (ms: number): ConsumeRequest => ({ key, internalRecipients: 0, externalRecipients: 1, limits, now: new Date(ms), messageId: '<epoch@fabrikam.example>' });
        assertCounted(await limiter.consume(at0(0)));
        assertRetry(await limiter.consume(at0(1)));
        // The retry spent the id: the next message with it counts, however close to the epoch.
        assertCounted(await limiter.consume(at0(2)));
      });

      it("a refused message's retry is evaluated again, and counted once when it fits", async () => {
        const { send } = sender([set('per-minute', 'block', { messagesPerMinute: 1 })]);
        assertCounted(await send(0, { messageId: 'first' }));
        assert.equal((await send(SECOND, { messageId: 'second' })).counted, false);
        assert.equal((await send(2 * SECOND, { messageId: 'second' })).counted, false);
        assertCounted(await send(MINUTE + SECOND, { messageId: 'second' }));
        assertRetry(await send(MINUTE + 2 * SECOND, { messageId: 'second' }));
        assert.deepEqual((await send(MINUTE + 3 * SECOND, { messageId: 'third' })).breaches.map((b) => b.used), [1]);
      });

      it('a messageId is remembered for 24 hours', async () => {
        const { send } = sender([set('daily', 'block', { recipientsPerDay: 3 })]);
        assertCounted(await send(0, { external: 2, messageId: 'id-1' }));
        assertRetry(await send(DAY - 1, { external: 2, messageId: 'id-1' }));
        // 24 hours and a bucket (24 min) on, the first count has left the window and the id is
        // forgotten (remembered 24 h): counted anew.
        assertCounted(await send(DAY + 24 * MINUTE, { external: 2, messageId: 'id-1' }));
        assert.deepEqual((await send(DAY + 24 * MINUTE + 1, { external: 2, messageId: 'id-2' })).breaches.map((b) => b.used), [2]);
      });

      it('remembers at most 100 message ids per sender (the default), the newest', async () => {
        const { send } = sender([set('per-minute', 'block', { messagesPerMinute: 103 })]);
        for (let i = 0; i <= 100; i++) assertCounted(await send(i, { messageId: `<${i}@fabrikam.example>` }));
        // 101 counted. The newest 100 are remembered: a retry of the 101st counts once…
        assertRetry(await send(200, { messageId: '<100@fabrikam.example>' }));
        // …but the first was forgotten: its retry counts again (102), as does a new id (103).
        assertCounted(await send(201, { messageId: '<0@fabrikam.example>' }));
        assertCounted(await send(202, { messageId: '<new@fabrikam.example>' }));
        assert.deepEqual((await send(203, { messageId: '<newer@fabrikam.example>' })).breaches.map((b) => b.used), [103]);
      });

      it('an id of 50,000 characters is remembered like a short one, and told apart by its last character', async () => {
        const { send } = sender([set('per-minute', 'block', { messagesPerMinute: 2 })]);
        const long = `<${'x'.repeat(50_000)}@fabrikam.example>`;
        assertCounted(await send(0, { messageId: long }));
        assertRetry(await send(1, { messageId: long }));
        assertCounted(await send(2, { messageId: `${long.slice(0, -1)})` }));
        assert.deepEqual((await send(3, { messageId: long.replace('<', '<y') })).breaches.map((b) => b.used), [2]);
      });

      it('the same messageId from another sender is another message', async () => {
        const limits = [set('per-minute', 'block', { messagesPerMinute: 1 })];
        const a = sender(limits);
        const b = sender(limits);
        assertCounted(await a.send(0, { messageId: 'shared' }));
        assertCounted(await b.send(0, { messageId: 'shared' }));
        assert.equal((await b.send(1, { messageId: 'other' })).counted, false);
      });
    });

    it('different keys are independent', async () => {
      const limits = [set('per-minute', 'block-user', { messagesPerMinute: 2 })];
      const a = sender(limits);
      const b = sender(limits);
      assertCounted(await a.send(0));
      assertCounted(await a.send(1));
      assert.equal((await a.send(2)).counted, false);
      assert.notEqual(await limiter.restriction(a.key, at(3)), null);
      assertCounted(await b.send(3));
      assertCounted(await b.send(4));
      assert.equal(await limiter.restriction(b.key, at(5)), null);
      await limiter.release(a.key);
    });

    // ---- Issue #13: tenants, spam reports, the restriction lifecycle and events ----

    /** A consumer that also names a tenant (with or without a cap). */
    const tenantSender = (tenant: TenantLimitRequest, limits: readonly LimitSet[] = [], key = newKey()) => {
      const send = (offsetMs: number, recipients: { internal?: number; external?: number; messageId?: string } = {}): Promise<ConsumeResult> =>
        limiter.consume({
          key,
          internalRecipients: recipients.internal ?? 0,
          externalRecipients: recipients.external ?? 1,
          limits,
          tenant,
          now: at(offsetMs),
          ...(recipients.messageId === undefined ? {} : { messageId: recipients.messageId }),
        });
      return { key, send };
    };
    const newTenant = (label = 'tenant'): string => `${randomUUID()}:${label}`;
    const refusedByTenant = (tenant: string, limit: number, used: number, breaches: readonly LimitBreach[] = []): ConsumeResult => ({
      restriction: null,
      breaches,
      tenantBreach: { tenant, limit, used },
      counted: false,
    });
    /** Drops an absent or null tenantBreach, so that a result compares with the plain shapes. */
    const plain = (result: ConsumeResult): ConsumeResult => {
      if (result.tenantBreach !== undefined && result.tenantBreach !== null) return result;
      const { tenantBreach: _dropped, ...rest } = result;
      return rest;
    };

    /**
     * Subscribes and collects the limiter's events. Delivery may be asynchronous (Redis pub/sub),
     * and a subscription may take a moment to start: the watch is primed by restricting a probe
     * key until its event arrives. `next` waits up to 5 s for an event that matches.
     */
    const watch = async () => {
      const events: LimiterEvent[] = [];
      const unsubscribe = limiter.subscribe((event) => {
        events.push(event);
      });
      const waitFor = async (predicate: (event: LimiterEvent) => boolean, what: string, timeoutMs = 5_000): Promise<LimiterEvent> => {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const found = events.find(predicate);
          if (found !== undefined) return found;
          if (Date.now() > deadline) assert.fail(`no ${what} event within ${timeoutMs} ms; seen: ${JSON.stringify(events)}`);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      };
      const probe = newKey('probe');
      const primeDeadline = Date.now() + 10_000;
      for (let ready = false; !ready; ) {
        await limiter.restrict(probe, { now: at(0) });
        try {
          await waitFor((event) => event.key === probe, 'probe', 200);
          ready = true;
        } catch (error) {
          if (Date.now() > primeDeadline) throw error;
        }
      }
      await limiter.release(probe, at(0));
      /** Waits until a fresh sentinel event arrives: every event caused before it has arrived too. */
      const settle = async (): Promise<void> => {
        const sentinel = newKey('sentinel');
        await limiter.restrict(sentinel, { now: at(0) });
        await waitFor((event) => event.key === sentinel, 'sentinel');
      };
      const of = (key: string): LimiterEvent[] => events.filter((event) => event.key === key);
      /** Waits for `count` events of `key`, then for a sentinel: none more of them is on its way. */
      const collect = async (key: string, count: number): Promise<LimiterEvent[]> => {
        await waitFor(() => of(key).length >= count, `${count} of ${key}`);
        await settle();
        return of(key);
      };
      return { events, waitFor, settle, of, collect, unsubscribe };
    };

    describe('tenants (rule 11)', () => {
      it('the cap: external recipients fit up to externalRecipientsPerDay, exactly; the message that would pass it is refused', async () => {
        const tenant = newTenant();
        const a = tenantSender({ key: tenant, externalRecipientsPerDay: 10 });
        const b = tenantSender({ key: tenant, externalRecipientsPerDay: 10 });
        assertCounted(plain(await a.send(0, { external: 6 })));
        assertCounted(plain(await b.send(SECOND, { external: 4 })));
        assert.deepEqual(await b.send(2 * SECOND, { external: 1 }), refusedByTenant(tenant, 10, 10));
        assert.deepEqual(await a.send(3 * SECOND, { external: 3 }), refusedByTenant(tenant, 10, 10));
        assert.equal(await limiter.restriction(b.key, at(3 * SECOND)), null, 'the tenant cap restricts nobody');
      });

      it('a message to more external recipients than the whole cap is refused even for a fresh tenant', async () => {
        const tenant = newTenant();
        const { send } = tenantSender({ key: tenant, externalRecipientsPerDay: 5 });
        assert.deepEqual(await send(0, { external: 6 }), refusedByTenant(tenant, 5, 0));
        assertCounted(plain(await send(SECOND, { external: 5 })));
      });

      it('internal-only messages are never refused by the cap, and do not use it up', async () => {
        const tenant = newTenant();
        const { send } = tenantSender({ key: tenant, externalRecipientsPerDay: 2 });
        assertCounted(plain(await send(0, { internal: 50, external: 0 })));
        assertCounted(plain(await send(SECOND, { external: 2 })));
        assertCounted(plain(await send(2 * SECOND, { internal: 7, external: 0 })));
        assert.deepEqual(await send(3 * SECOND, { internal: 1, external: 1 }), refusedByTenant(tenant, 2, 2));
      });

      it('a tenant without a cap is counted and never refused; a cap given later sees the count', async () => {
        const tenant = newTenant();
        const uncapped = tenantSender({ key: tenant });
        for (let i = 0; i < 4; i++) assertCounted(plain(await uncapped.send(i * SECOND, { external: 250 })));
        const capped = tenantSender({ key: tenant, externalRecipientsPerDay: 1_000 });
        assert.deepEqual(await capped.send(5 * SECOND, { external: 1 }), refusedByTenant(tenant, 1_000, 1_000));
      });

      it("atomic with the sender: a message the sender's limits refuse does not count for the tenant", async () => {
        const tenant = newTenant();
        const limited = tenantSender({ key: tenant, externalRecipientsPerDay: 5 }, [set('hourly', 'block', { externalRecipientsPerHour: 3 })]);
        assertCounted(plain(await limited.send(0, { external: 3 })));
        const refused = await limited.send(SECOND, { external: 2 });
        assert.deepEqual(plain(refused), {
          restriction: null,
          breaches: [{ window: 'externalRecipientsPerHour', limit: 3, used: 3, action: 'block', set: 'hourly' }],
          counted: false,
        });
        // The tenant still has 3: another sender fits 2 exactly, then the cap refuses.
        const other = tenantSender({ key: tenant, externalRecipientsPerDay: 5 });
        assertCounted(plain(await other.send(2 * SECOND, { external: 2 })));
        assert.deepEqual(await other.send(3 * SECOND, { external: 1 }), refusedByTenant(tenant, 5, 5));
      });

      it("atomic with the tenant: a message the tenant's cap refuses counts in none of the sender's windows", async () => {
        const tenant = newTenant();
        const key = newKey();
        const limits = [set('mixed', 'block', { messagesPerMinute: 3, externalRecipientsPerHour: 10, recipientsPerDay: 10 })];
        const capped = tenantSender({ key: tenant, externalRecipientsPerDay: 2 }, limits, key);
        assertCounted(plain(await capped.send(0, { external: 2 })));
        assert.deepEqual(await capped.send(SECOND, { external: 1 }), refusedByTenant(tenant, 2, 2));
        assert.deepEqual(await capped.send(2 * SECOND, { external: 5 }), refusedByTenant(tenant, 2, 2));
        // The sender has 1 message and 2 recipients: 2 more messages and 8 recipients fit, no more.
        const alone = sender(limits, key);
        assertCounted(await alone.send(3 * SECOND, { external: 4 }));
        assertCounted(await alone.send(4 * SECOND, { external: 4 }));
        assert.deepEqual((await alone.send(5 * SECOND, { internal: 1, external: 0 })).breaches.map((b) => [b.window, b.used]), [
          ['messagesPerMinute', 3],
          ['recipientsPerDay', 10],
        ]);
      });

      it("the sender's own breaches are reported beside the tenant's, and an alert one does not make it count", async () => {
        const tenant = newTenant();
        const { send } = tenantSender({ key: tenant, externalRecipientsPerDay: 1 }, [set('watch', 'alert', { messagesPerMinute: 1 })]);
        assertCounted(plain(await send(0, { external: 1 })));
        assert.deepEqual(
          await send(SECOND, { external: 1 }),
          refusedByTenant(tenant, 1, 1, [{ window: 'messagesPerMinute', limit: 1, used: 1, action: 'alert', set: 'watch' }]),
        );
      });

      it('the window slides over 24 hours (61 buckets of 24 minutes), not a calendar day', async () => {
        const tenant = newTenant();
        const { send } = tenantSender({ key: tenant, externalRecipientsPerDay: 10 });
        assertCounted(plain(await send(0, { external: 6 })));
        assertCounted(plain(await send(2 * HOUR, { external: 4 })));
        assert.deepEqual(await send(3 * HOUR, { external: 1 }), refusedByTenant(tenant, 10, 10));
        // Past midnight the count stays; one bucket before 24 h after the first, still there.
        assert.deepEqual(await send(15 * HOUR, { external: 1 }), refusedByTenant(tenant, 10, 10));
        assert.deepEqual(await send(DAY - 1, { external: 1 }), refusedByTenant(tenant, 10, 10));
        // 24 h and a bucket after the first message its 6 have left; the later 4 have not.
        assert.deepEqual(await send(DAY, { external: 1 }), refusedByTenant(tenant, 10, 10));
        assertCounted(plain(await send(DAY + 24 * MINUTE, { external: 6 })));
        assert.deepEqual(await send(DAY + 24 * MINUTE + SECOND, { external: 1 }), refusedByTenant(tenant, 10, 10));
      });

      it('a retry (same messageId) counts once for the tenant too, and still passes when the cap is full', async () => {
        const tenant = newTenant();
        const { send } = tenantSender({ key: tenant, externalRecipientsPerDay: 3 });
        assertCounted(plain(await send(0, { external: 2, messageId: '<m1@fabrikam.example>' })));
        assertCounted(plain(await send(2 * SECOND, { external: 1, messageId: '<m2@fabrikam.example>' })));
        assert.deepEqual(await send(3 * SECOND, { external: 1, messageId: '<m3@fabrikam.example>' }), refusedByTenant(tenant, 3, 3));
        assertRetry(plain(await send(4 * SECOND, { external: 2, messageId: '<m1@fabrikam.example>' })));
        // The retry spent the id: the next message with it is counted, and the cap refuses it.
        assert.deepEqual(await send(5 * SECOND, { external: 2, messageId: '<m1@fabrikam.example>' }), refusedByTenant(tenant, 3, 3));
      });

      it('different tenants are independent', async () => {
        const one = tenantSender({ key: newTenant('one'), externalRecipientsPerDay: 1 });
        const two = tenantSender({ key: newTenant('two'), externalRecipientsPerDay: 1 });
        assertCounted(plain(await one.send(0)));
        assertCounted(plain(await two.send(SECOND)));
        assert.equal((await one.send(2 * SECOND)).counted, false);
      });
    });

    describe('counted over the limits (request.countOverLimit, for overLimit: high-risk)', () => {
      /** Sends with countOverLimit, optionally for a tenant. */
      const overSender = (limits: readonly LimitSet[], tenant?: TenantLimitRequest, key = newKey()) => {
        const send = (offsetMs: number, recipients: { internal?: number; external?: number; messageId?: string } = {}): Promise<ConsumeResult> =>
          limiter.consume({
            key,
            internalRecipients: recipients.internal ?? 0,
            externalRecipients: recipients.external ?? 1,
            limits,
            ...(tenant === undefined ? {} : { tenant }),
            countOverLimit: true,
            now: at(offsetMs),
            ...(recipients.messageId === undefined ? {} : { messageId: recipients.messageId }),
          });
        return { key, send };
      };

      it('block: a message over the limit is counted, its breach reported, and the next one sees it', async () => {
        const limits = [set('per-minute', 'block', { messagesPerMinute: 1 })];
        const { key, send } = overSender(limits);
        assertCounted(await send(0));
        assert.deepEqual(await send(SECOND), {
          restriction: null,
          breaches: [{ window: 'messagesPerMinute', limit: 1, used: 1, action: 'block', set: 'per-minute' }],
          counted: true,
        });
        assert.deepEqual((await send(2 * SECOND)).breaches.map((b) => b.used), [2]);
        // Without the flag the same sender is refused, and the count stays where it was.
        const plainSender = sender(limits, key);
        assert.deepEqual(plain(await plainSender.send(3 * SECOND)), {
          restriction: null,
          breaches: [{ window: 'messagesPerMinute', limit: 1, used: 3, action: 'block', set: 'per-minute' }],
          counted: false,
        });
        assert.deepEqual((await send(4 * SECOND)).breaches.map((b) => b.used), [3]);
        assert.equal(await limiter.restriction(key, at(4 * SECOND)), null, 'block restricts nobody');
        // The window slides as ever: a minute after the last counted message, it fits again.
        assertCounted(await send(4 * SECOND + MINUTE + SECOND));
      });

      it('block-user: counted and restricted; the next message meets the restriction', async () => {
        const { key, send } = overSender([set('strict', 'block-user', { externalRecipientsPerHour: 2 })]);
        assertCounted(await send(0, { external: 2 }));
        const over = await send(SECOND, { external: 1 });
        assert.equal(over.counted, true);
        assert.deepEqual(over.breaches, [{ window: 'externalRecipientsPerHour', limit: 2, used: 2, action: 'block-user', set: 'strict' }]);
        assert.equal(over.imposed?.until, null);
        assert.match(over.imposed?.reason ?? '', /strict/);
        const restriction = await limiter.restriction(key, at(2 * SECOND));
        assert.equal(restriction?.until, null);
        const next = await send(2 * SECOND, { external: 1 });
        assert.equal(next.counted, false);
        assert.equal(next.restriction?.until, null);
        // Counted: released, the sender's hour holds 3 recipients (the over-limit message's one too).
        assert.equal(await limiter.release(key, at(3 * SECOND)), true);
        assert.deepEqual((await send(4 * SECOND, { external: 1 })).breaches.map((b) => b.used), [3]);
      });

      it('a sender released today is counted over the limit and not restricted again (imposed: null)', async () => {
        const { key, send } = overSender([set('today', 'block-user-for-today', { messagesPerMinute: 1 })]);
        await limiter.restrict(key, { now: at(0), reason: 'test' });
        assert.equal(await limiter.release(key, at(0)), true);
        assertCounted(await send(SECOND));
        const over = await send(2 * SECOND);
        assert.equal(over.counted, true);
        assert.equal(over.imposed, null);
        assert.equal(await limiter.restriction(key, at(3 * SECOND)), null);
      });

      it("counts for the tenant: the sender's over-limit recipients use up the tenant's cap", async () => {
        const tenant = newTenant();
        const limited = overSender([set('hourly', 'block', { externalRecipientsPerHour: 3 })], { key: tenant, externalRecipientsPerDay: 5 });
        assertCounted(plain(await limited.send(0, { external: 3 })));
        const over = await limited.send(SECOND, { external: 2 });
        assert.deepEqual(plain(over), {
          restriction: null,
          breaches: [{ window: 'externalRecipientsPerHour', limit: 3, used: 3, action: 'block', set: 'hourly' }],
          counted: true,
        });
        // The tenant is at 5: another sender's next external recipient passes the cap.
        const other = tenantSender({ key: tenant, externalRecipientsPerDay: 5 });
        assert.deepEqual(await other.send(2 * SECOND, { external: 1 }), refusedByTenant(tenant, 5, 5));
      });

      it("the tenant's cap still refuses: nothing counted, the sender's breaches reported beside it", async () => {
        const tenant = newTenant();
        const limits = [set('per-minute', 'block', { messagesPerMinute: 1 })];
        const { key, send } = overSender(limits, { key: tenant, externalRecipientsPerDay: 2 });
        assertCounted(plain(await send(0, { external: 2 })));
        const breach = { window: 'messagesPerMinute', limit: 1, used: 1, action: 'block', set: 'per-minute' } as const;
        assert.deepEqual(await send(SECOND, { external: 1 }), refusedByTenant(tenant, 2, 2, [breach]));
        // Not counted for the sender either: still 1 message this minute.
        assert.deepEqual((await sender(limits, key).send(2 * SECOND, { external: 0 })).breaches.map((b) => b.used), [1]);
      });

      it('a retry of a message counted over the limit counts once', async () => {
        const { send } = overSender([set('per-minute', 'block', { messagesPerMinute: 1 })]);
        assertCounted(await send(0, { messageId: '<a@fabrikam.example>' }));
        assert.equal((await send(SECOND, { messageId: '<b@fabrikam.example>' })).counted, true);
        assertRetry(await send(2 * SECOND, { messageId: '<b@fabrikam.example>' }));
        assert.deepEqual((await send(3 * SECOND)).breaches.map((b) => b.used), [2]);
      });

      it('countOverLimit that is not a boolean is refused with invalid-context', async () => {
        const request = { key: newKey(), internalRecipients: 0, externalRecipients: 1, limits: [], countOverLimit: 'yes', now: at(0) } as unknown as ConsumeRequest;
        await assert.rejects(async () => limiter.consume(request), (error: Error & { code?: string }) => error.code === 'invalid-context' && /countOverLimit/.test(error.message));
      });
    });

    describe('refunds (a counted message the decision then refused for another reason)', () => {
      /** A request to consume and then to refund: the same object, as the decision hands both. */
      const request = (key: string, limits: readonly LimitSet[], offsetMs: number, more: { internal?: number; external?: number; messageId?: string; tenant?: TenantLimitRequest } = {}): ConsumeRequest => ({
        key,
        internalRecipients: more.internal ?? 0,
        externalRecipients: more.external ?? 1,
        limits,
        now: at(offsetMs),
        ...(more.messageId === undefined ? {} : { messageId: more.messageId }),
        ...(more.tenant === undefined ? {} : { tenant: more.tenant }),
      });

      it('takes the message back from every window: the next message sees the counts from before', async () => {
        const limits = [set('tight', 'block', { messagesPerMinute: 1, internalRecipientsPerHour: 2, externalRecipientsPerHour: 2, recipientsPerDay: 4 })];
        const key = newKey();
        const first = request(key, limits, 0, { internal: 2, external: 2 });
        assertCounted(await limiter.consume(first));
        await limiter.refund(first);
        // Every window is empty again: the same message fits once more, and fills them all.
        assertCounted(await limiter.consume(request(key, limits, SECOND, { internal: 2, external: 2 })));
        assert.deepEqual(
          (await limiter.consume(request(key, limits, 2 * SECOND, { internal: 1, external: 1 }))).breaches.map((b) => [b.window, b.used]),
          [
            ['messagesPerMinute', 1],
            ['internalRecipientsPerHour', 2],
            ['externalRecipientsPerHour', 2],
            ['recipientsPerDay', 4],
          ],
        );
      });

      it('takes nothing back when a retry of the message was answered on its count meanwhile (delivered: it stays counted)', async () => {
        const limits = [set('per-minute', 'block', { messagesPerMinute: 2 })];
        const tenant: TenantLimitRequest = { key: newTenant(), externalRecipientsPerDay: 2 };
        const key = newKey();
        const first = request(key, limits, 0, { messageId: '<resent@fabrikam.example>', tenant });
        assertCounted(plain(await limiter.consume(first)));
        // The MTA sends the message again while the first copy waits on DNS: a retry, delivered.
        assertRetry(plain(await limiter.consume(request(key, limits, SECOND, { messageId: '<resent@fabrikam.example>', tenant }))));
        // The first copy is then deferred: its refund must not take back the delivered copy's count.
        await limiter.refund(first);
        assertCounted(plain(await limiter.consume(request(key, limits, 2 * SECOND, { messageId: '<next@fabrikam.example>', tenant }))));
        const refused = await limiter.consume(request(key, limits, 3 * SECOND, { messageId: '<third@fabrikam.example>', tenant }));
        assert.deepEqual(refused.breaches.map((b) => [b.window, b.used]), [['messagesPerMinute', 2]]);
        // Nor the tenant's: both external recipients of the cap are still used.
        assert.deepEqual(await limiter.consume(request(newKey('other'), [], 4 * SECOND, { external: 1, tenant })), refusedByTenant(tenant.key, 2, 2));
      });

      it('a second refund of the same request takes nothing (it would take another message of the bucket)', async () => {
        const limits = [set('per-minute', 'block', { messagesPerMinute: 2 })];
        const key = newKey();
        const first = request(key, limits, 0, { messageId: '<once@fabrikam.example>' });
        assertCounted(await limiter.consume(first));
        // In the same one-second bucket as the first: a second refund would take this one.
        assertCounted(await limiter.consume(request(key, limits, 100, { messageId: '<other@fabrikam.example>' })));
        await limiter.refund(first);
        await limiter.refund(first);
        assertCounted(await limiter.consume(request(key, limits, 2 * SECOND, { messageId: '<third@fabrikam.example>' })));
        assert.deepEqual((await limiter.consume(request(key, limits, 3 * SECOND))).breaches.map((b) => [b.window, b.used]), [['messagesPerMinute', 2]]);
      });

      it('touches only the buckets of its own time: counts written since at an earlier time (a clock moved back) stay', async () => {
        const limits = [set('internal-hourly', 'block', { internalRecipientsPerHour: 2 })];
        const key = newKey();
        const late = request(key, limits, 100 * MINUTE + 59 * SECOND, { internal: 0, external: 1 });
        assertCounted(await limiter.consume(late));
        // The clock back an hour: 2 internal recipients at 00:39, in their own window.
        assertCounted(await limiter.consume(request(key, limits, 39 * MINUTE, { internal: 2, external: 0 })));
        // Refunding the 01:40:59 message must not prune the 00:39 bucket.
        await limiter.refund(late);
        assert.deepEqual(
          (await limiter.consume(request(key, limits, 39 * MINUTE + 30 * SECOND, { internal: 1, external: 0 }))).breaches.map((b) => [b.window, b.used]),
          [['internalRecipientsPerHour', 2]],
        );
      });

      it("takes the external recipients back from the tenant's cap", async () => {
        const tenant: TenantLimitRequest = { key: newTenant(), externalRecipientsPerDay: 2 };
        const first = request(newKey('a'), [], 0, { external: 2, tenant });
        assertCounted(plain(await limiter.consume(first)));
        await limiter.refund(first);
        // Another sender of the tenant has the whole cap again, and no more.
        const other = newKey('b');
        assertCounted(plain(await limiter.consume(request(other, [], SECOND, { external: 2, tenant }))));
        assert.deepEqual(await limiter.consume(request(other, [], 2 * SECOND, { external: 1, tenant })), refusedByTenant(tenant.key, 2, 2));
      });

      it('forgets the message id: the message sent again counts as a new one, not as a free retry', async () => {
        const limits = [set('per-minute', 'block', { messagesPerMinute: 2 })];
        const key = newKey();
        const first = request(key, limits, 0, { messageId: '<deferred@fabrikam.example>' });
        assertCounted(await limiter.consume(first));
        await limiter.refund(first);
        assertCounted(await limiter.consume(request(key, limits, SECOND, { messageId: '<deferred@fabrikam.example>' })), 'counted anew, without retry');
        // Remembered again by that count: its retry now is one.
        assertRetry(await limiter.consume(request(key, limits, 2 * SECOND, { messageId: '<deferred@fabrikam.example>' })));
        assertCounted(await limiter.consume(request(key, limits, 3 * SECOND, { messageId: '<other@fabrikam.example>' })));
        assert.deepEqual((await limiter.consume(request(key, limits, 4 * SECOND, { messageId: '<third@fabrikam.example>' }))).breaches.map((b) => b.used), [2]);
      });

      it('forgets only the id counted at request.now: one counted at another time stays', async () => {
        const limits = [set('per-minute', 'block', { messagesPerMinute: 5 })];
        const key = newKey();
        assertCounted(await limiter.consume(request(key, limits, 0, { messageId: 'kept' })));
        await limiter.refund(request(key, limits, 5 * SECOND, { messageId: 'kept' }));
        assertRetry(await limiter.consume(request(key, limits, 6 * SECOND, { messageId: 'kept' })));
      });

      it('never goes below zero: a refund of nothing, twice, or for a fresh sender or tenant', async () => {
        const limits = [set('per-minute', 'block', { messagesPerMinute: 1 })];
        const tenant: TenantLimitRequest = { key: newTenant(), externalRecipientsPerDay: 1 };
        const key = newKey();
        // Nothing was counted for this sender nor this tenant: nothing to take, and no credit.
        await limiter.refund(request(key, limits, 0, { tenant, messageId: 'never' }));
        const counted = request(key, limits, SECOND, { tenant });
        assertCounted(plain(await limiter.consume(counted)));
        await limiter.refund(counted);
        await limiter.refund(counted);
        assertCounted(plain(await limiter.consume(request(key, limits, 2 * SECOND, { tenant }))));
        assert.deepEqual((await limiter.consume(request(key, limits, 3 * SECOND))).breaches.map((b) => b.used), [1]);
        assert.deepEqual(await limiter.consume(request(newKey('other'), [], 4 * SECOND, { tenant })), refusedByTenant(tenant.key, 1, 1));
      });

      it('leaves alone a bucket that has left its window, and the later counts', async () => {
        const limits = [set('tight', 'block', { messagesPerMinute: 1, recipientsPerDay: 3 })];
        const key = newKey();
        const old = request(key, limits, 0);
        assertCounted(await limiter.consume(old));
        // A minute and more later: the first message has left the minute window (not the day's).
        assertCounted(await limiter.consume(request(key, limits, MINUTE + 2 * SECOND)));
        await limiter.refund(old);
        // The minute still holds the later message; the day holds it alone.
        assert.deepEqual(
          (await limiter.consume(request(key, limits, MINUTE + 3 * SECOND, { external: 2 }))).breaches.map((b) => [b.window, b.used]),
          [['messagesPerMinute', 1]],
        );
        assertCounted(await limiter.consume(request(key, limits, 2 * MINUTE + 3 * SECOND, { external: 2 })));
        assert.deepEqual(
          (await limiter.consume(request(key, limits, 3 * MINUTE + 4 * SECOND))).breaches.map((b) => [b.window, b.used]),
          [['recipientsPerDay', 3]],
        );
      });

      it('is checked as consume is: a request without a valid now is refused', async () => {
        await assert.rejects(async () => limiter.refund({ key: newKey(), internalRecipients: 0, externalRecipients: 1, limits: [], now: new Date(Number.NaN) }), /request\.now must be a valid Date/);
      });

      it('a now before 1970 or from 2286-11-20 on is refused, by consume and refund alike (times are kept as 13 digits)', async () => {
        for (const now of [new Date(-1), new Date(10_000_000_000_000)]) {
          const request = { key: newKey(), internalRecipients: 0, externalRecipients: 1, limits: [], now };
          await assert.rejects(async () => limiter.consume(request), /request\.now must be a Date from 1970-01-01T00:00:00\.000Z to 2286-11-20T17:46:39\.999Z/);
          await assert.rejects(async () => limiter.refund(request), /request\.now must be a Date from 1970-01-01T00:00:00\.000Z to 2286-11-20T17:46:39\.999Z/);
        }
      });
    });

    describe('spam reports (policy.spam.restrictAfter)', () => {
      const report = (key: string, restrictAfter: SpamRestrictAfter, offsetMs: number, messageId?: string): Promise<SpamReportResult> =>
        limiter.reportSpam({ key, restrictAfter, now: at(offsetMs), ...(messageId === undefined ? {} : { messageId }) });

      it('counts the spam of a sender; the count-th restricts, block-user until released, with since and cause', async () => {
        const key = newKey();
        const after: SpamRestrictAfter = { count: 3, window: 'hour', action: 'block-user' };
        assert.deepEqual(await report(key, after, 0), { count: 1, restriction: null });
        assert.deepEqual(await report(key, after, MINUTE), { count: 2, restriction: null });
        assert.equal(await limiter.restriction(key, at(MINUTE)), null);
        const third = await report(key, after, 2 * MINUTE);
        assert.equal(third.count, 3);
        assert.equal(third.restriction?.until, null);
        assert.equal(third.restriction?.since, iso(T0 + 2 * MINUTE));
        assert.deepEqual(third.restriction?.cause, { kind: 'spam', count: 3, window: 'hour' });
        assert.equal(third.restriction?.reason, '3 messages judged spam within the last hour (restrict after 3), action block-user');
        assert.deepEqual(await limiter.restriction(key, at(7 * DAY)), third.restriction);
        assert.deepEqual(await sender([], key).send(3 * MINUTE), { restriction: third.restriction, breaches: [], counted: false });
        // Reported again while restricted: counted, but it imposes nothing new.
        assert.deepEqual(await report(key, after, 4 * MINUTE), { count: 4, restriction: null });
        assert.equal(await limiter.release(key, at(5 * MINUTE)), true);
      });

      it('restrictAfter.count is at most 1,000, as in a policy (Redis keeps 1,000 reports a sender)', async () => {
        const key = newKey();
        await assert.rejects(async () => report(key, { count: 1_001, window: 'day', action: 'block-user' }, 0), /restrictAfter.*count.*from 1 to 1,000/);
        assert.deepEqual(await report(key, { count: 1_000, window: 'day', action: 'block-user' }, 0), { count: 1, restriction: null });
      });

      it('a report ahead of the clock (the clock moved back) is kept but not counted, as consume does not count a bucket ahead', async () => {
        const key = newKey();
        const after: SpamRestrictAfter = { count: 2, window: 'hour', action: 'block-user' };
        assert.deepEqual(await report(key, after, 30 * MINUTE), { count: 1, restriction: null });
        // The clock back half an hour: the report at 30 min is ahead of it, not in its hour.
        assert.deepEqual(await report(key, after, 0), { count: 1, restriction: null });
        assert.equal(await limiter.restriction(key, at(0)), null);
        // Back past 30 min all three are in the hour (its buckets reach back to −30 min): restricted.
        const third = await report(key, after, 30 * MINUTE + SECOND);
        assert.equal(third.count, 3);
        assert.notEqual(third.restriction, null);
      });

      it('block-user-for-today: restricted until the next UTC midnight', async () => {
        const key = newKey();
        const after: SpamRestrictAfter = { count: 2, window: 'day', action: 'block-user-for-today' };
        await report(key, after, 0);
        const second = await report(key, after, HOUR);
        assert.equal(second.count, 2);
        assert.equal(second.restriction?.until, iso(MIDNIGHT + DAY));
        assert.deepEqual(second.restriction?.cause, { kind: 'spam', count: 2, window: 'day' });
        assert.equal(await limiter.restriction(key, new Date(MIDNIGHT + DAY)), null);
      });

      it('count 1 restricts at the first spam message', async () => {
        const key = newKey();
        const first = await report(key, { count: 1, window: 'hour', action: 'block-user' }, 0);
        assert.deepEqual(first.restriction?.cause, { kind: 'spam', count: 1, window: 'hour' });
        await limiter.release(key, at(SECOND));
      });

      it('the hour window slides (60 buckets of a minute)', async () => {
        const key = newKey();
        const after: SpamRestrictAfter = { count: 3, window: 'hour', action: 'block-user' };
        await report(key, after, 0);
        await report(key, after, 30 * MINUTE);
        // An hour and a minute after the first, it has left: 2, not 3.
        assert.deepEqual(await report(key, after, HOUR + MINUTE), { count: 2, restriction: null });
        assert.equal((await report(key, after, HOUR + 2 * MINUTE)).restriction?.until, null);
        await limiter.release(key, at(HOUR + 3 * MINUTE));
      });

      it('the day window slides over 24 hours, not a calendar day', async () => {
        const key = newKey();
        const after: SpamRestrictAfter = { count: 3, window: 'day', action: 'block-user' };
        await report(key, after, 0);
        await report(key, after, 13 * HOUR); // after midnight
        // 24 h and a bucket (24 min) after the first, it has left the window; the second has not.
        assert.deepEqual(await report(key, after, DAY + 24 * MINUTE), { count: 2, restriction: null });
        assert.equal((await report(key, after, DAY + HOUR)).count, 3);
        await limiter.release(key, at(DAY + 2 * HOUR));
      });

      it('a retry of a reported message (same messageId) counts once', async () => {
        const key = newKey();
        const after: SpamRestrictAfter = { count: 2, window: 'hour', action: 'block-user' };
        assert.deepEqual(await report(key, after, 0, '<s1@fabrikam.example>'), { count: 1, restriction: null });
        assert.deepEqual(await report(key, after, SECOND, '<s1@fabrikam.example>'), { count: 1, restriction: null });
        assert.equal(await limiter.restriction(key, at(3 * SECOND)), null);
        const second = await report(key, after, 3 * SECOND, '<s2@fabrikam.example>');
        assert.equal(second.count, 2);
        assert.notEqual(second.restriction, null);
        await limiter.release(key, at(4 * SECOND));
      });

      it('a report retry spends the id: one id reused for spam counts every other time', async () => {
        const key = newKey();
        const after: SpamRestrictAfter = { count: 2, window: 'hour', action: 'block-user' };
        assert.deepEqual(await report(key, after, 0, '<same@fabrikam.example>'), { count: 1, restriction: null });
        assert.deepEqual(await report(key, after, SECOND, '<same@fabrikam.example>'), { count: 1, restriction: null });
        const third = await report(key, after, 2 * SECOND, '<same@fabrikam.example>');
        assert.equal(third.count, 2);
        assert.notEqual(third.restriction, null);
        await limiter.release(key, at(3 * SECOND));
      });

      it('a spam restriction replaces a shorter one in force (an administrator\'s for an hour), and not a longer one', async () => {
        const key = newKey();
        const after: SpamRestrictAfter = { count: 1, window: 'hour', action: 'block-user' };
        await limiter.restrict(key, { until: at(HOUR), reason: 'for an hour', now: at(0) });
        const replaced = await report(key, after, SECOND, '<r1@fabrikam.example>');
        assert.notEqual(replaced.restriction, null);
        assert.equal(replaced.restriction!.until, null, 'block-user: until released');
        assert.equal((await limiter.restriction(key, at(2 * HOUR)))?.cause?.kind, 'spam');
        const kept = await report(key, { count: 1, window: 'hour', action: 'block-user-for-today' }, 2 * SECOND, '<r2@fabrikam.example>');
        assert.equal(kept.restriction, null, 'a restriction until released outlasts one for today');
        await limiter.release(key, at(3 * SECOND));
      });

      it("different senders' spam counts apart", async () => {
        const after: SpamRestrictAfter = { count: 2, window: 'hour', action: 'block-user' };
        const a = newKey();
        const b = newKey();
        await report(a, after, 0);
        assert.deepEqual(await report(b, after, SECOND), { count: 1, restriction: null });
        assert.equal(await limiter.restriction(b, at(SECOND)), null);
      });
    });

    describe('restriction lifecycle: restrict, release, restricted', () => {
      it("restrict: an administrator's restriction with since, cause admin, until and reason", async () => {
        const key = newKey();
        const restricted = await limiter.restrict(key, { until: at(HOUR), reason: 'phishing complaint', now: at(0) });
        assert.deepEqual(restricted, { key, until: iso(T0 + HOUR), reason: 'phishing complaint', since: iso(T0), cause: { kind: 'admin' } });
        const { key: _key, ...restriction } = restricted;
        assert.deepEqual(await limiter.restriction(key, at(HOUR - 1)), restriction);
        assert.deepEqual(await sender([], key).send(MINUTE), { restriction, breaches: [], counted: false });
        assert.deepEqual((await limiter.restricted(at(MINUTE))).filter((r) => r.key === key), [restricted]);
        // It ends by itself at until.
        assert.equal(await limiter.restriction(key, at(HOUR)), null);
        assertCounted(await sender([], key).send(HOUR));
      });

      it('restrict without until: until released; without reason: a reason all the same', async () => {
        const key = newKey();
        const restricted = await limiter.restrict(key, { now: at(0) });
        assert.equal(restricted.until, null);
        assert.equal(typeof restricted.reason, 'string');
        assert.deepEqual(restricted.cause, { kind: 'admin' });
        assert.notEqual(await limiter.restriction(key, at(30 * DAY)), null);
        assert.equal(await limiter.release(key, at(30 * DAY)), true);
      });

      it('restrict: an empty reason is none (the default reason, alike in every limiter); over 4,096 bytes is refused', async () => {
        const key = newKey();
        const withEmpty = await limiter.restrict(key, { now: at(0), reason: '' });
        const withNone = await limiter.restrict(newKey(), { now: at(0) });
        assert.equal(withEmpty.reason, withNone.reason);
        assert.equal((await limiter.restriction(key, at(1)))?.reason, withNone.reason);
        assert.equal((await limiter.restricted(at(1))).find((r) => r.key === key)?.reason, withNone.reason);
        await assert.rejects(limiter.restrict(newKey(), { now: at(0), reason: 'é'.repeat(2_049) }), { code: 'invalid-context', message: /at most 4,096 bytes/ });
        assert.equal((await limiter.restrict(newKey(), { now: at(0), reason: 'é'.repeat(2_048) })).reason, 'é'.repeat(2_048));
        await assert.rejects(limiter.restrict(newKey(), { now: at(0), reason: 7 as never }), { code: 'invalid-context', message: /reason must be a string/ });
      });

      it('restrict takes an until far past the range of now (only now is kept as 13 digits)', async () => {
        const key = newKey();
        const restricted = await limiter.restrict(key, { now: at(0), until: new Date('9999-12-31T00:00:00Z') });
        assert.equal(restricted.until, '9999-12-31T00:00:00.000Z');
        assert.notEqual(await limiter.restriction(key, at(30 * DAY)), null);
      });

      it('restrict replaces any restriction of the key', async () => {
        const { key, send } = sender([set('hard', 'block-user', { messagesPerMinute: 1 })]);
        assertCounted(await send(0));
        await send(SECOND);
        assert.deepEqual((await limiter.restriction(key, at(2 * SECOND)))?.cause, { kind: 'limit', window: 'messagesPerMinute', set: 'hard' });
        const replaced = await limiter.restrict(key, { until: at(HOUR), reason: 'until reviewed', now: at(3 * SECOND) });
        const { key: _key, ...restriction } = replaced;
        assert.deepEqual(await limiter.restriction(key, at(4 * SECOND)), restriction);
        assert.equal(await limiter.restriction(key, at(HOUR)), null);
      });

      it('a limit restriction records since (the breach) and cause (window and set)', async () => {
        const { key, send } = sender([set('watch', 'alert', { messagesPerMinute: 1 }), set('outbound', 'block-user-for-today', { externalRecipientsPerHour: 2 })]);
        assertCounted(await send(0, { external: 2 }));
        await send(90 * SECOND, { external: 1 });
        const restriction = await limiter.restriction(key, at(91 * SECOND));
        assert.equal(restriction?.since, iso(T0 + 90 * SECOND));
        assert.deepEqual(restriction?.cause, { kind: 'limit', window: 'externalRecipientsPerHour', set: 'outbound' });
        assert.equal(restriction?.until, iso(MIDNIGHT + DAY));
      });

      it('restricted(now) lists every kind with since, cause, until and reason', async () => {
        const prefix = randomUUID();
        const byLimit = sender([set('hard', 'block-user', { messagesPerMinute: 1 })], `${prefix}:a-limit@fabrikam.example`);
        assertCounted(await byLimit.send(0));
        await byLimit.send(SECOND);
        const bySpam = `${prefix}:b-spam@fabrikam.example`;
        await limiter.reportSpam({ key: bySpam, restrictAfter: { count: 1, window: 'day', action: 'block-user-for-today' }, now: at(2 * SECOND) });
        const byAdmin = `${prefix}:c-admin@fabrikam.example`;
        await limiter.restrict(byAdmin, { until: at(HOUR), reason: 'review', now: at(3 * SECOND) });
        const listed = (await limiter.restricted(at(4 * SECOND))).filter((r) => r.key.startsWith(prefix)).sort((a, b) => a.key.localeCompare(b.key));
        assert.deepEqual(
          listed.map((r) => [r.key, r.since, r.until, r.cause]),
          [
            [byLimit.key, iso(T0 + SECOND), null, { kind: 'limit', window: 'messagesPerMinute', set: 'hard' }],
            [bySpam, iso(T0 + 2 * SECOND), iso(MIDNIGHT + DAY), { kind: 'spam', count: 1, window: 'day' }],
            [byAdmin, iso(T0 + 3 * SECOND), iso(T0 + HOUR), { kind: 'admin' }],
          ],
        );
        for (const r of listed) {
          assert.equal(typeof r.reason, 'string');
          const { key, ...restriction } = r;
          assert.deepEqual(await limiter.restriction(key, at(4 * SECOND)), restriction);
        }
        await limiter.release(byLimit.key, at(5 * SECOND));
      });

      it('release: immune to automatic restriction until the next UTC midnight (refused as block), then restricted again', async () => {
        const limits = [set('hard', 'block-user', { messagesPerMinute: 1 })];
        const { key, send } = sender(limits);
        assertCounted(await send(0));
        await send(SECOND);
        assert.notEqual(await limiter.restriction(key, at(2 * SECOND)), null);
        assert.equal(await limiter.release(key, at(2 * SECOND)), true);
        assert.equal(await limiter.restriction(key, at(2 * SECOND)), null);
        // Still over the limit: refused with the breach, as block would, without a restriction,
        // and the answer says so (the decision then replies as to a block, not to a restriction).
        assert.deepEqual(await send(3 * SECOND), {
          restriction: null,
          breaches: [{ window: 'messagesPerMinute', limit: 1, used: 1, action: 'block-user', set: 'hard' }],
          counted: false,
          imposed: null,
        });
        assert.equal(await limiter.restriction(key, at(4 * SECOND)), null);
        assertCounted(await send(MINUTE + SECOND));
        assert.equal((await send(MINUTE + 2 * SECOND)).counted, false);
        assert.equal(await limiter.restriction(key, new Date(MIDNIGHT + DAY - 1)), null);
        // Spam reports do not restrict it either, today.
        const spam = await limiter.reportSpam({ key, restrictAfter: { count: 1, window: 'hour', action: 'block-user' }, now: at(2 * MINUTE) });
        assert.deepEqual(spam, { count: 1, restriction: null });
        assert.equal(await limiter.restriction(key, at(2 * MINUTE)), null);
        // From the next UTC midnight, automatic restriction works again.
        const tomorrow = MIDNIGHT + DAY - T0;
        assertCounted(await send(tomorrow));
        assert.equal((await send(tomorrow + SECOND)).counted, false);
        const again = await limiter.restriction(key, at(tomorrow + 2 * SECOND));
        assert.equal(again?.until, null);
        assert.equal(again?.since, iso(T0 + tomorrow + SECOND));
        await limiter.release(key, at(tomorrow + 3 * SECOND));
      });

      it('after release, spam reaching the count again restricts from the next UTC midnight', async () => {
        const key = newKey();
        const after: SpamRestrictAfter = { count: 1, window: 'day', action: 'block-user' };
        assert.notEqual((await limiter.reportSpam({ key, restrictAfter: after, now: at(0) })).restriction, null);
        assert.equal(await limiter.release(key, at(SECOND)), true);
        assert.equal((await limiter.reportSpam({ key, restrictAfter: after, now: at(HOUR) })).restriction, null);
        const next = await limiter.reportSpam({ key, restrictAfter: after, now: new Date(MIDNIGHT + DAY) });
        assert.deepEqual(next.restriction?.cause, { kind: 'spam', count: 3, window: 'day' });
        await limiter.release(key, new Date(MIDNIGHT + DAY + SECOND));
      });

      it("an administrator's restrict works while the sender is immune", async () => {
        const key = newKey();
        await limiter.restrict(key, { now: at(0) });
        assert.equal(await limiter.release(key, at(SECOND)), true);
        const restricted = await limiter.restrict(key, { reason: 'again', now: at(2 * SECOND) });
        assert.equal((await limiter.restriction(key, at(3 * SECOND)))?.reason, 'again');
        assert.deepEqual(restricted.cause, { kind: 'admin' });
        assert.equal(await limiter.release(key, at(4 * SECOND)), true);
      });

      it('release of a key without a restriction in force is false and grants no immunity', async () => {
        const { key, send } = sender([set('hard', 'block-user', { messagesPerMinute: 1 })]);
        assert.equal(await limiter.release(key, at(0)), false);
        assertCounted(await send(SECOND));
        await send(2 * SECOND);
        assert.notEqual(await limiter.restriction(key, at(3 * SECOND)), null);
        // A for-today restriction past its end is not released either.
        const today = sender([set('today', 'block-user-for-today', { messagesPerMinute: 1 })]);
        assertCounted(await today.send(0));
        await today.send(SECOND);
        assert.equal(await limiter.release(today.key, new Date(MIDNIGHT + DAY)), false);
        assert.equal(await limiter.release(key, at(4 * SECOND)), true);
      });
    });

    describe('events (subscribe)', () => {
      it('restricted: a limit, spam and an administrator, with the restriction as restriction() reads it', async () => {
        const watching = await watch();
        try {
          const { key, send } = sender([set('hard', 'block-user', { messagesPerMinute: 1 })]);
          assertCounted(await send(0));
          await send(SECOND);
          const byLimit = await watching.waitFor((e) => e.key === key && e.type === 'restricted', 'restricted (limit)');
          assert.deepEqual(byLimit, { type: 'restricted', at: iso(T0 + SECOND), key, restriction: await limiter.restriction(key, at(SECOND)) });

          const spammer = newKey();
          const spam = await limiter.reportSpam({ key: spammer, restrictAfter: { count: 1, window: 'hour', action: 'block-user-for-today' }, now: at(2 * SECOND) });
          const bySpam = await watching.waitFor((e) => e.key === spammer && e.type === 'restricted', 'restricted (spam)');
          assert.deepEqual(bySpam, { type: 'restricted', at: iso(T0 + 2 * SECOND), key: spammer, restriction: spam.restriction });

          const admin = newKey();
          const { key: _key, ...restriction } = await limiter.restrict(admin, { until: at(HOUR), reason: 'review', now: at(3 * SECOND) });
          const byAdmin = await watching.waitFor((e) => e.key === admin && e.type === 'restricted', 'restricted (admin)');
          assert.deepEqual(byAdmin, { type: 'restricted', at: iso(T0 + 3 * SECOND), key: admin, restriction });
          await limiter.release(key, at(4 * SECOND));
        } finally {
          watching.unsubscribe();
        }
      });

      it('released: with immuneUntil the next UTC midnight; none when nothing was lifted', async () => {
        const watching = await watch();
        try {
          const key = newKey();
          await limiter.restrict(key, { now: at(0) });
          assert.equal(await limiter.release(key, at(HOUR)), true);
          const released = await watching.waitFor((e) => e.key === key && e.type === 'released', 'released');
          assert.deepEqual(released, { type: 'released', at: iso(T0 + HOUR), key, immuneUntil: iso(MIDNIGHT + DAY) });
          const free = newKey();
          assert.equal(await limiter.release(free, at(HOUR)), false);
          await watching.settle();
          assert.deepEqual(watching.of(free), []);
        } finally {
          watching.unsubscribe();
        }
      });

      it('limit-alert: each alert breach of a counted message; none for a refused one', async () => {
        const watching = await watch();
        try {
          const { key, send } = sender([set('watch', 'alert', { messagesPerMinute: 1, recipientsPerDay: 1 }), set('hard', 'block', { messagesPerMinute: 3 })]);
          assertCounted(await send(0));
          const result = await send(SECOND, { external: 1 });
          assert.equal(result.counted, true);
          await watching.waitFor((e) => e.key === key && e.type === 'limit-alert' && e.breach.window === 'recipientsPerDay', 'limit-alert');
          await send(2 * SECOND); // counted, two alerts more
          await send(3 * SECOND); // refused by hard: no alert
          assert.deepEqual(
            await watching.collect(key, 4),
            [...result.breaches, { window: 'messagesPerMinute', limit: 1, used: 2, action: 'alert', set: 'watch' }, { window: 'recipientsPerDay', limit: 1, used: 2, action: 'alert', set: 'watch' }].map(
              (breach, i) => ({ type: 'limit-alert', at: iso(T0 + (i < 2 ? 1 : 2) * SECOND), key, breach }),
            ),
          );
        } finally {
          watching.unsubscribe();
        }
      });

      it('a message counted over the limits (countOverLimit): limit-alert for its alert breaches, restricted for a restricting one', async () => {
        const watching = await watch();
        try {
          const key = newKey();
          const limits = [set('watch', 'alert', { messagesPerMinute: 1 }), set('hard', 'block-user-for-today', { messagesPerMinute: 1 })];
          const send = (offsetMs: number) => limiter.consume({ key, internalRecipients: 0, externalRecipients: 1, limits, countOverLimit: true, now: at(offsetMs) });
          assertCounted(await send(0));
          const over = await send(SECOND);
          assert.equal(over.counted, true);
          const restricted = await watching.waitFor((e) => e.key === key && e.type === 'restricted', 'restricted');
          assert.deepEqual(restricted, { type: 'restricted', at: iso(T0 + SECOND), key, restriction: over.imposed });
          // The alert first, then the restriction, in both limiters.
          assert.deepEqual(await watching.collect(key, 2), [{ type: 'limit-alert', at: iso(T0 + SECOND), key, breach: over.breaches[0] }, restricted]);
          await limiter.release(key, at(2 * SECOND));
        } finally {
          watching.unsubscribe();
        }
      });

      it("tenant-cap: the sender's key and the tenant's breach", async () => {
        const watching = await watch();
        try {
          const tenant = newTenant();
          const { key, send } = tenantSender({ key: tenant, externalRecipientsPerDay: 2 });
          assertCounted(plain(await send(0, { external: 2 })));
          await send(MINUTE, { external: 1 });
          const capped = await watching.waitFor((e) => e.key === key && e.type === 'tenant-cap', 'tenant-cap');
          assert.deepEqual(capped, { type: 'tenant-cap', at: iso(T0 + MINUTE), key, breach: { tenant, limit: 2, used: 2 } });
        } finally {
          watching.unsubscribe();
        }
      });

      it('unsubscribe stops the events; a listener that throws or rejects breaks nothing', async () => {
        const stopped: LimiterEvent[] = [];
        const stop = limiter.subscribe((event) => {
          stopped.push(event);
        });
        const throwing = limiter.subscribe(() => {
          throw new Error('listener failure');
        });
        const rejecting = limiter.subscribe(async () => {
          throw new Error('listener rejection');
        });
        const watching = await watch();
        try {
          stop();
          stop(); // twice: harmless
          const { key, send } = sender([set('hard', 'block-user', { messagesPerMinute: 1 })]);
          assertCounted(await send(0));
          assert.equal((await send(SECOND)).counted, false);
          await watching.waitFor((e) => e.key === key && e.type === 'restricted', 'restricted');
          assert.equal(await limiter.release(key, at(2 * SECOND)), true);
          assert.deepEqual((await watching.collect(key, 2)).map((e) => e.type), ['restricted', 'released']);
          assert.deepEqual(stopped.filter((e) => e.key === key), []);
        } finally {
          watching.unsubscribe();
          throwing();
          rejecting();
        }
      });
    });
  });
}
