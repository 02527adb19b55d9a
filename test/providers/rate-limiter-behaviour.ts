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
import type { ConsumeRequest, ConsumeResult, LimitAction, LimitSet, ManagedRateLimiter } from '../../src/providers/types.js';

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
        // 24 hours after the first message, its 6 have left the window; the later 4 have not.
        const back = await send(DAY, { internal: 0, external: 6 });
        assertCounted(back);
        assert.equal((await send(DAY + SECOND, { external: 1 })).breaches[0]?.used, 10);
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
        // One bucket (1 s) before a whole minute has passed, they still count.
        assert.equal((await send(50 * SECOND + MINUTE - 1)).counted, false);
        // A whole window after them, the sender is free again: the full limit, no more.
        for (let i = 0; i < 10; i++) assertCounted(await send(50 * SECOND + MINUTE + i));
        assert.equal((await send(50 * SECOND + MINUTE + 10)).counted, false);
      });

      it('recipients per hour: the same at an hour boundary', async () => {
        const { send } = sender([set('hourly', 'block', { externalRecipientsPerHour: 5 })]);
        assertCounted(await send(50 * MINUTE, { external: 5 }));
        const burst = await send(HOUR + 30 * SECOND, { external: 5 });
        assert.equal(burst.counted, false);
        assert.equal(burst.breaches[0]?.used, 5);
        assert.equal((await send(HOUR + 50 * MINUTE - 1, { external: 1 })).counted, false);
        assertCounted(await send(HOUR + 50 * MINUTE, { external: 5 }));
      });

      it('the counts of earlier buckets leave the window one by one', async () => {
        const { send } = sender([set('per-minute', 'block', { messagesPerMinute: 3 })]);
        assertCounted(await send(0));
        assertCounted(await send(20 * SECOND));
        assertCounted(await send(40 * SECOND));
        assert.equal((await send(59 * SECOND)).counted, false);
        assertCounted(await send(MINUTE)); // the first has left
        assert.equal((await send(MINUTE + 10 * SECOND)).counted, false);
        assertCounted(await send(MINUTE + 20 * SECOND)); // the second has left
      });

      it('agrees with a reference model of 60-bucket windows on random traffic', async () => {
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
                const messages = counted.filter((c) => c.minute > minute - 60 && c.minute <= minute).length;
                const external = counted.filter((c) => c.hourBucket > hourBucket - 60 && c.hourBucket <= hourBucket).reduce((sum, c) => sum + c.external, 0);
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
        assertCounted(await send(MINUTE));
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

      it('block-user: refused and restricted until released', async () => {
        const { key, send } = sender([set('outbound-spam', 'block-user', { externalRecipientsPerHour: 3 })]);
        assertCounted(await send(0, { external: 3 }));
        const refused = await send(SECOND, { external: 1 });
        assert.equal(refused.counted, false);
        assert.equal(refused.restriction, null, 'the refusal reports the breach; the restriction applies from the next message');
        assert.equal(refused.breaches[0]?.action, 'block-user');
        const restriction = await limiter.restriction(key, at(2 * SECOND));
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
      it('the same messageId counts once', async () => {
        const { send } = sender([set('per-minute', 'block', { messagesPerMinute: 2, recipientsPerDay: 5 })]);
        assertCounted(await send(0, { external: 2, messageId: '<a@fabrikam.example>' }));
        for (let i = 1; i < 4; i++) assertCounted(await send(i * SECOND, { external: 2, messageId: '<a@fabrikam.example>' }));
        assertCounted(await send(5 * SECOND, { external: 2, messageId: '<b@fabrikam.example>' }));
        assert.deepEqual(
          (await send(6 * SECOND, { external: 2, messageId: '<c@fabrikam.example>' })).breaches.map((b) => [b.window, b.used]),
          [
            ['messagesPerMinute', 2],
            ['recipientsPerDay', 4],
          ],
        );
        // A retry of a counted message is still fine while the window is full.
        assertCounted(await send(7 * SECOND, { external: 2, messageId: '<b@fabrikam.example>' }));
      });

      it("a refused message's retry is evaluated again, and counted once when it fits", async () => {
        const { send } = sender([set('per-minute', 'block', { messagesPerMinute: 1 })]);
        assertCounted(await send(0, { messageId: 'first' }));
        assert.equal((await send(SECOND, { messageId: 'second' })).counted, false);
        assert.equal((await send(2 * SECOND, { messageId: 'second' })).counted, false);
        assertCounted(await send(MINUTE, { messageId: 'second' }));
        assertCounted(await send(MINUTE + SECOND, { messageId: 'second' }));
        assert.deepEqual((await send(MINUTE + 2 * SECOND, { messageId: 'third' })).breaches.map((b) => b.used), [1]);
      });

      it('a messageId is remembered for 24 hours', async () => {
        const { send } = sender([set('daily', 'block', { recipientsPerDay: 3 })]);
        assertCounted(await send(0, { external: 2, messageId: 'id-1' }));
        assertCounted(await send(DAY - 1, { external: 2, messageId: 'id-1' }));
        // 24 hours on, the first count has left the window and the id is forgotten: counted anew.
        assertCounted(await send(DAY, { external: 2, messageId: 'id-1' }));
        assert.deepEqual((await send(DAY + 1, { external: 2, messageId: 'id-2' })).breaches.map((b) => b.used), [2]);
      });

      it('remembers at most 100 message ids per sender (the default), the newest', async () => {
        const { send } = sender([set('per-minute', 'block', { messagesPerMinute: 103 })]);
        for (let i = 0; i <= 100; i++) assertCounted(await send(i, { messageId: `<${i}@fabrikam.example>` }));
        // 101 counted. The newest 100 are remembered: a retry of the 101st counts once…
        assertCounted(await send(200, { messageId: '<100@fabrikam.example>' }));
        // …but the first was forgotten: its retry counts again (102), as does a new id (103).
        assertCounted(await send(201, { messageId: '<0@fabrikam.example>' }));
        assertCounted(await send(202, { messageId: '<new@fabrikam.example>' }));
        assert.deepEqual((await send(203, { messageId: '<newer@fabrikam.example>' })).breaches.map((b) => b.used), [103]);
      });

      it('an id of 50,000 characters is remembered like a short one, and told apart by its last character', async () => {
        const { send } = sender([set('per-minute', 'block', { messagesPerMinute: 2 })]);
        const long = `<${'x'.repeat(50_000)}@fabrikam.example>`;
        assertCounted(await send(0, { messageId: long }));
        assertCounted(await send(1, { messageId: long }));
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
  });
}
