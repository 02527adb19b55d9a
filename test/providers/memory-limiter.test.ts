// The in-memory rate limiter: the shared behaviour suite, its bounds, its options, and rules 1
// and 3 end to end through decidePool.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { decidePool } from '../../src/decide/gather.js';
import { OutboundPoolsError } from '../../src/errors.js';
import { createMemoryRateLimiter } from '../../src/providers/memory-limiter.js';
import {
  ADMIN_REASON,
  BUCKET_MS,
  LIMIT_WINDOWS,
  adminRestriction,
  immunityEnd,
  messageIdHash,
  nextUtcMidnight,
  restrictionFor,
  spamBucket,
  spamRestriction,
  tenantBreachOf,
} from '../../src/providers/limit-windows.js';
import type { ConsumeRequest, LimitBreach, LimitSet, LimitWindow, ManagedRateLimiter } from '../../src/providers/types.js';
import { describeRateLimiterBehaviour } from '../providers/rate-limiter-behaviour.js';

describeRateLimiterBehaviour('memory rate limiter', async () => ({ limiter: createMemoryRateLimiter({ maxSenders: 10_000 }), close: async () => {} }));

// The same behaviour through consumeSync and restrictionSync, the methods decidePool uses: the
// promise methods are replaced by the synchronous ones, answered through a resolved promise.
describeRateLimiterBehaviour('memory rate limiter, synchronous methods', async () => {
  const memory = createMemoryRateLimiter({ maxSenders: 10_000 });
  const limiter: ManagedRateLimiter = {
    consume: (request) => {
      const answer = memory.consumeSync(request);
      assert.ok(!(answer instanceof Promise), 'consumeSync answered with a promise');
      return Promise.resolve(answer);
    },
    restriction: (key, now) => {
      const answer = memory.restrictionSync(key, now);
      assert.ok(!(answer instanceof Promise), 'restrictionSync answered with a promise');
      return Promise.resolve(answer);
    },
    reportSpam: (report) => {
      const answer = memory.reportSpamSync(report);
      assert.ok(!(answer instanceof Promise), 'reportSpamSync answered with a promise');
      return Promise.resolve(answer);
    },
    refund: (request) => {
      const answer: unknown = memory.refundSync(request);
      assert.equal(answer, undefined, 'refundSync answered something');
      return Promise.resolve();
    },
    restrict: (key, options) => memory.restrict(key, options),
    release: (key, now) => memory.release(key, now),
    restricted: (now) => memory.restricted(now),
    subscribe: (listener) => memory.subscribe(listener),
  };
  return { limiter, close: async () => {} };
});

// The suite as a networked limiter meets it: events arrive 20 ms late, and a subscription starts
// delivering only 100 ms after subscribe() returns (as Redis pub/sub does), so the suite's
// waiting and priming are exercised as they will be on Redis.
describeRateLimiterBehaviour('memory rate limiter, events delivered late as over pub/sub', async () => {
  const memory = createMemoryRateLimiter({ maxSenders: 10_000 });
  const limiter: ManagedRateLimiter = {
    consume: (request) => memory.consume(request),
    restriction: (key, now) => memory.restriction(key, now),
    reportSpam: (report) => memory.reportSpam(report),
    refund: (request) => memory.refund(request),
    restrict: (key, options) => memory.restrict(key, options),
    release: (key, now) => memory.release(key, now),
    restricted: (now) => memory.restricted(now),
    subscribe: (listener) => {
      const startsAt = Date.now() + 100;
      return memory.subscribe((event) => {
        if (Date.now() < startsAt) return;
        setTimeout(() => {
          // As a limiter must: the listener's error or rejection is ignored.
          try {
            Promise.resolve(listener(event) as unknown).catch(() => {});
          } catch {
            // ignored
          }
        }, 20);
      });
    },
  };
  return { limiter, close: async () => {} };
});

const NOW = Date.parse('2026-11-23T09:00:00.000Z');
const perMinute = (max: number, action: LimitSet['action'] = 'block'): LimitSet[] => [{ name: 'per-minute', messagesPerMinute: max, action }];
const request = (key: string, limits: readonly LimitSet[], offsetMs = 0, extra: Partial<ConsumeRequest> = {}): ConsumeRequest => ({
  key,
  internalRecipients: 0,
  externalRecipients: 1,
  limits,
  now: new Date(NOW + offsetMs),
  ...extra,
});

describe('memory rate limiter: bounded memory', () => {
  it('keeps at most maxSenders senders, whatever passes through', async () => {
    const limiter = createMemoryRateLimiter({ maxSenders: 100 });
    for (let i = 0; i < 5_000; i++) {
      await limiter.consume(request(`sender${i}@fabrikam.example`, perMinute(30), i, { messageId: `id-${i}` }));
      assert.ok(limiter.stats().senders <= 100);
    }
    assert.deepEqual(limiter.stats(), { senders: 100, restrictions: 0, tenants: 0, immune: 0, maxSenders: 100, maxRestricted: 100, maxTenants: 10_000, maxImmune: 100 });
  });

  it('evicting a sender forgets its counts (documented): it starts again from zero', async () => {
    const limiter = createMemoryRateLimiter({ maxSenders: 2 });
    assert.equal((await limiter.consume(request('a', perMinute(1)))).counted, true);
    assert.equal((await limiter.consume(request('a', perMinute(1), 1))).counted, false);
    await limiter.consume(request('b', perMinute(1), 2));
    await limiter.consume(request('c', perMinute(1), 3));
    assert.equal((await limiter.consume(request('a', perMinute(1), 4))).counted, true);
  });

  it('evicting counters never lifts a restriction', async () => {
    const limiter = createMemoryRateLimiter({ maxSenders: 2, maxRestricted: 10 });
    await limiter.consume(request('spammer', perMinute(1, 'block-user')));
    await limiter.consume(request('spammer', perMinute(1, 'block-user'), 1));
    for (let i = 0; i < 50; i++) await limiter.consume(request(`other${i}`, perMinute(30), 2 + i));
    assert.equal(limiter.stats().senders, 2);
    const result = await limiter.consume(request('spammer', perMinute(1, 'block-user'), 60_000));
    assert.equal(result.counted, false);
    assert.equal(result.restriction?.until, null);
    assert.deepEqual((await limiter.restricted(new Date(NOW))).map((r) => r.key), ['spammer']);
  });

  it('keeps at most maxRestricted restrictions; ended ones are dropped by restricted() a day after their end', async () => {
    const limiter = createMemoryRateLimiter({ maxSenders: 100, maxRestricted: 3 });
    for (let i = 0; i < 10; i++) {
      await limiter.consume(request(`s${i}`, perMinute(1, 'block-user-for-today')));
      await limiter.consume(request(`s${i}`, perMinute(1, 'block-user-for-today'), 1));
      assert.ok(limiter.stats().restrictions <= 3);
    }
    assert.equal((await limiter.restricted(new Date(NOW))).length, 3);
    const midnight = Date.parse(nextUtcMidnight(NOW));
    assert.deepEqual(await limiter.restricted(new Date(midnight)), []);
    // Kept for a clock moved back, as Redis keeps them, until a day has passed.
    assert.equal(limiter.stats().restrictions, 3);
    assert.deepEqual(await limiter.restricted(new Date(midnight + 86_400_000 - 1)), []);
    assert.equal(limiter.stats().restrictions, 3);
    assert.deepEqual(await limiter.restricted(new Date(midnight + 86_400_000)), []);
    assert.equal(limiter.stats().restrictions, 0);
  });

  it('remembers at most maxMessageIdsPerSender ids per sender, the newest', async () => {
    const limiter = createMemoryRateLimiter({ maxMessageIdsPerSender: 2 });
    const limits = perMinute(4);
    for (const id of ['m1', 'm2', 'm3']) assert.equal((await limiter.consume(request('k', limits, 0, { messageId: id }))).counted, true);
    // m3 and m2 are remembered; m1 was forgotten, so its retry counts again (4 of 4).
    assert.deepEqual(await limiter.consume(request('k', limits, 1, { messageId: 'm3' })), { restriction: null, breaches: [], counted: true, retry: true });
    assert.deepEqual(await limiter.consume(request('k', limits, 2, { messageId: 'm1' })), { restriction: null, breaches: [], counted: true });
    assert.deepEqual((await limiter.consume(request('k', limits, 3, { messageId: 'm5' }))).breaches.map((b) => b.used), [4]);
  });

  it('a retry of any remembered id is recognised while the ring of ids goes round many times (the id filter)', async () => {
    const limiter = createMemoryRateLimiter({ maxMessageIdsPerSender: 5 });
    const many = perMinute(1_000_000);
    for (let i = 0; i < 300; i++) {
      assert.equal((await limiter.consume(request('k', many, 0, { messageId: `id-${i}` }))).counted, true);
      // A retry of the newest (even ids) or of the oldest of the five remembered (odd ids; each
      // id has one free retry): neither counts again.
      if (i % 2 === 0) await limiter.consume(request('k', many, 0, { messageId: `id-${i}` }));
      if (i >= 4 && (i - 4) % 2 === 1) await limiter.consume(request('k', many, 0, { messageId: `id-${i - 4}` }));
    }
    // A probe over a limit of 1 is refused and says how many were counted: each id once.
    assert.deepEqual((await limiter.consume(request('k', perMinute(1), 0, { messageId: 'probe-1' }))).breaches.map((b) => b.used), [300]);
    // id-294 was the sixth newest: forgotten, so its retry counts.
    await limiter.consume(request('k', many, 0, { messageId: 'id-294' }));
    assert.deepEqual((await limiter.consume(request('k', perMinute(1), 0, { messageId: 'probe-2' }))).breaches.map((b) => b.used), [301]);
  });

  it('maxMessageIdsPerSender 0 remembers none: every retry counts', async () => {
    const limiter = createMemoryRateLimiter({ maxMessageIdsPerSender: 0 });
    await limiter.consume(request('k', perMinute(2), 0, { messageId: 'same' }));
    await limiter.consume(request('k', perMinute(2), 1, { messageId: 'same' }));
    assert.equal((await limiter.consume(request('k', perMinute(2), 2, { messageId: 'same' }))).counted, false);
  });

  it('a sender sending every second for a day keeps at most 60 buckets per window', async () => {
    const limiter = createMemoryRateLimiter();
    const limits: LimitSet[] = [{ name: 'all', messagesPerMinute: 1_000, internalRecipientsPerHour: 100_000, externalRecipientsPerHour: 100_000, recipientsPerDay: 1_000_000, action: 'block' }];
    for (let t = 0; t < 86_400; t += 7) {
      const result = await limiter.consume(request('busy', limits, t * 1000, { internalRecipients: 1, externalRecipients: 1 }));
      assert.equal(result.counted, true);
    }
    // Messages per minute: 60 s / 7 s per message.
    const last = await limiter.consume(request('busy', [{ name: 'm', messagesPerMinute: 1, action: 'block' }], 86_400_000));
    assert.equal(last.breaches[0]?.used, 8);
  });
});

/** Runs test/providers/memory-limiter-heap.ts under --expose-gc; returns what it measured. */
function heapPerId(...args: string[]): { ids: number; senders: number; bytesPerId: number; retryRecognised: boolean } {
  const script = fileURLToPath(new URL('./memory-limiter-heap.ts', import.meta.url));
  const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script, ...args], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout.trim().split('\n').at(-1)!);
}

describe('memory rate limiter: a remembered Message-ID costs at most 400 bytes, whatever the message size', () => {
  // Retained heap after a full collection (SPEC §6). An id kept as the string the header parser
  // sliced out of the block would keep the block alive: 2.8 KB an id for 2.7 KB blocks, 256 KB
  // for 256 KB blocks (measured before the fix).
  for (const [label, args] of [
    ['ids sliced from 2.7 KB header blocks, 200 senders × 100 ids', ['2700', '200', '100']],
    ['ids sliced from 256 KB header blocks, 8 senders × 50 ids', ['262144', '8', '50']],
    ['whole 2.7 KB header blocks through decidePool, 200 senders × 50 ids', ['2700', '200', '50', 'decide']],
  ] as const) {
    it(label, () => {
      const measured = heapPerId(...args);
      assert.equal(measured.retryRecognised, true, 'the first id was not remembered');
      assert.ok(measured.bytesPerId <= 400, `${measured.bytesPerId.toFixed(0)} bytes retained per remembered id`);
    });
  }

  it('remembers ids by a 53-bit hash without collisions among 300,000 ids and their one-character variants', () => {
    const seen = new Set<number>();
    let n = 0;
    const add = (id: string): void => {
      const hash = messageIdHash(id);
      assert.ok(Number.isSafeInteger(hash) && hash >= 0 && hash < 2 ** 53, `hash ${hash} of ${id}`);
      seen.add(hash);
      n++;
    };
    for (let i = 0; i < 100_000; i++) {
      const id = `<${(i * 2654435761) % 4294967296}.${i}@mail.fabrikam.example>`;
      add(id);
      add(id.replace('<', '<x')); // one more character
      add(`<${i}@a>`); // short and sequential
    }
    assert.equal(seen.size, n);
    // Differs in the last character only; in one code unit above 255.
    assert.notEqual(messageIdHash('<abc@example.org>'), messageIdHash('<abc@example.orh>'));
    assert.notEqual(messageIdHash('<ü@example.org>'), messageIdHash('<ý@example.org>'));
  });

  it('refuses a messageId that is not a string', () => {
    const limiter = createMemoryRateLimiter();
    assert.throws(
      () => limiter.consumeSync(request('k', perMinute(2), 0, { messageId: 42 as unknown as string })),
      (error: unknown) => error instanceof OutboundPoolsError && error.code === 'invalid-context',
    );
  });
});

describe('memory rate limiter: windows under a clock that moves back and forth', () => {
  // A reference model of the windows: each keeps its (bucket, count) pairs in bucket order,
  // forgets those that have left the window whenever the sender is counted, whether or not the
  // message adds to that window (the clock going back later does not bring them back; the Redis
  // script rewrites all four windows alike), keeps at most 61 pairs, and counts the pairs inside
  // current − 60 … current. The limiter keeps running totals; it must count exactly the same.
  class ModelWindow {
    pairs: [number, number][] = [];
    count(current: number): number {
      let sum = 0;
      for (const [index, amount] of this.pairs) if (index >= current - 60 && index <= current) sum += amount;
      return sum;
    }
    add(current: number, amount: number): void {
      this.pairs = this.pairs.filter(([index]) => index >= current - 60);
      if (amount === 0) return;
      const same = this.pairs.find(([index]) => index === current);
      if (same !== undefined) same[1] += amount;
      else {
        this.pairs.push([current, amount]);
        this.pairs.sort((a, b) => a[0] - b[0]);
        if (this.pairs.length > 61) this.pairs.shift();
      }
    }
  }
  const limits: LimitSet[] = [
    { name: 'alerts', action: 'alert', messagesPerMinute: 3, internalRecipientsPerHour: 10, externalRecipientsPerHour: 10, recipientsPerDay: 30 },
    { name: 'blocks', action: 'block', messagesPerMinute: 70, internalRecipientsPerHour: 400, externalRecipientsPerHour: 400, recipientsPerDay: 1000 },
  ];

  // Two kinds of traffic: steps of any size, the clock jumping back up to two minutes; and a
  // message every two seconds or so with the clock now and then set back by about a minute: the
  // buckets ahead of the clock stay, new ones fall between them, and the minute window reaches
  // the cap of 61 buckets it keeps.
  const anySteps = fc.oneof(fc.integer({ min: -120_000, max: 5_000 }), fc.integer({ min: 0, max: 3_000_000 }));
  const secondsAndSetBacks = fc.oneof({ arbitrary: fc.integer({ min: 1_500, max: 2_500 }), weight: 12 }, { arbitrary: fc.integer({ min: -65_000, max: -40_000 }), weight: 1 });
  for (const [label, dt, maxLength] of [
    ['random traffic, the clock jumping back up to two minutes', anySteps, 100],
    ['a message every two seconds, the clock set back about a minute now and then', secondsAndSetBacks, 250],
  ] as const) {
  it(`counts like the reference model on ${label}`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            dt,
            internal: fc.integer({ min: 0, max: 4 }),
            external: fc.integer({ min: 0, max: 4 }),
          }),
          // size 'max': fast-check would otherwise keep most arrays to about ten steps.
          { minLength: 1, maxLength, size: 'max' },
        ),
        async (steps) => {
          const limiter = createMemoryRateLimiter({ maxSenders: 10 });
          const model = Object.fromEntries(LIMIT_WINDOWS.map((window) => [window, new ModelWindow()])) as Record<LimitWindow, ModelWindow>;
          let now = NOW;
          for (const [i, step] of steps.entries()) {
            now += step.dt;
            const increments: Record<LimitWindow, number> = {
              messagesPerMinute: 1,
              internalRecipientsPerHour: step.internal,
              externalRecipientsPerHour: step.external,
              recipientsPerDay: step.internal + step.external,
            };
            const expected: LimitBreach[] = [];
            for (const set of limits) {
              for (const window of LIMIT_WINDOWS) {
                const limit = set[window]!;
                const used = model[window].count(Math.floor(now / BUCKET_MS[window]));
                if (used + increments[window] > limit) expected.push({ window, limit, used, action: set.action, set: set.name });
              }
            }
            const counted = expected.every((breach) => breach.action === 'alert');
            const result = limiter.consumeSync({ key: 'k', internalRecipients: step.internal, externalRecipients: step.external, limits, now: new Date(now) });
            assert.deepEqual({ breaches: result.breaches, counted: result.counted }, { breaches: expected, counted }, `step ${i} at ${now - NOW} ms`);
            if (counted) for (const window of LIMIT_WINDOWS) model[window].add(Math.floor(now / BUCKET_MS[window]), increments[window]);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
  }
});

describe('memory rate limiter: options and arguments', () => {
  for (const [label, options] of [
    ['an unknown option', { maxSender: 10 }],
    ['maxSenders 0', { maxSenders: 0 }],
    ['maxSenders 1.5', { maxSenders: 1.5 }],
    ['maxSenders as a string', { maxSenders: '10' }],
    ['maxRestricted negative', { maxRestricted: -1 }],
    ['maxMessageIdsPerSender NaN', { maxMessageIdsPerSender: Number.NaN }],
    ['null options', null],
    ['an array', []],
  ] as const) {
    it(`refuses ${label} with invalid-context`, () => {
      assert.throws(
        () => createMemoryRateLimiter(options as never),
        (error: unknown) => error instanceof OutboundPoolsError && error.code === 'invalid-context' && error.message.startsWith('createMemoryRateLimiter: '),
      );
    });
  }

  it('takes no options at all, and reports its defaults', () => {
    assert.deepEqual(createMemoryRateLimiter().stats(), {
      senders: 0,
      restrictions: 0,
      tenants: 0,
      immune: 0,
      maxSenders: 100_000,
      maxRestricted: 100_000,
      maxTenants: 10_000,
      maxImmune: 100_000,
    });
  });

  it('rejects an invalid date instead of counting at NaN', async () => {
    const limiter = createMemoryRateLimiter();
    await assert.rejects(limiter.consume({ ...request('k', perMinute(1)), now: new Date(Number.NaN) }), { code: 'invalid-context' });
    await assert.rejects(limiter.restriction('k', 'now' as never), { code: 'invalid-context' });
    await assert.rejects(limiter.restricted(new Date('nope')), { code: 'invalid-context' });
  });
});

/** Runs test/providers/memory-limiter-heap-entries.ts under --expose-gc: bytes per entry. */
function heapPerEntry(what: string, entries = 20_000): number {
  const script = fileURLToPath(new URL('./memory-limiter-heap-entries.ts', import.meta.url));
  const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script, what, String(entries)], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  return (JSON.parse(child.stdout.trim().split('\n').at(-1)!) as { bytesPerEntry: number }).bytesPerEntry;
}

describe('memory rate limiter: tenants, immunity and spam reports are bounded', () => {
  // Retained heap after a full collection, 20,000 entries (docs/limits.md gives the figures).
  it('a tenant costs at most 300 bytes with one bucket, 2,000 bytes with all 60', () => {
    const one = heapPerEntry('tenant-one-bucket');
    const full = heapPerEntry('tenant-full-day');
    assert.ok(one > 0 && one <= 300, `${one.toFixed(0)} bytes per tenant with one bucket`);
    assert.ok(full > one && full <= 2_000, `${full.toFixed(0)} bytes per tenant with 60 buckets`);
  });

  it("keeps copies of its keys, never a slice of the caller's string (a slice of 16 KB would keep all 16 KB)", () => {
    // Before: 17.2 KB per sender for a sliced mailFrom, 17.4 KB for a sliced tenant, 16.9 KB for
    // a sliced key given to consumeSync; now 350–700 bytes (2,000 senders, Node 22).
    for (const what of ['sliced-mail-from', 'sliced-submitter', 'sliced-tenant', 'sliced-limiter-key']) {
      const bytes = heapPerEntry(what, 2_000);
      assert.ok(bytes > 0 && bytes <= 1_500, `${what}: ${bytes.toFixed(0)} bytes per sender`);
    }
  });

  it('a released sender remembered as immune costs at most 250 bytes', () => {
    const bytes = heapPerEntry('immune');
    assert.ok(bytes > 0 && bytes <= 250, `${bytes.toFixed(0)} bytes per immune sender`);
  });

  it("a sender's spam reports add at most 1,000 bytes to it", () => {
    const bytes = heapPerEntry('spam-sender') - heapPerEntry('sender');
    assert.ok(bytes > 0 && bytes <= 1_000, `${bytes.toFixed(0)} bytes for two spam reports`);
  });

  it('keeps at most maxTenants tenants, least recently used evicted; evicting one forgets its count', () => {
    const limiter = createMemoryRateLimiter({ maxTenants: 3 });
    const send = (tenant: string, offsetMs: number, external = 1) =>
      limiter.consumeSync(request('sender', [], offsetMs, { externalRecipients: external, tenant: { key: tenant, externalRecipientsPerDay: 2 } }));
    assert.equal(send('t0', 0, 2).counted, true);
    assert.deepEqual(send('t0', 1).tenantBreach, { tenant: 't0', limit: 2, used: 2 });
    for (let i = 1; i <= 20; i++) {
      send(`t${i}`, 1 + i);
      assert.ok(limiter.stats().tenants <= 3);
    }
    assert.equal(limiter.stats().tenants, 3);
    // t0 was evicted: it starts again from zero (documented).
    assert.equal(send('t0', 100, 2).counted, true);
    // Internal-only messages do not make a tenant entry.
    const other = createMemoryRateLimiter();
    other.consumeSync(request('sender', [], 0, { internalRecipients: 3, externalRecipients: 0, tenant: { key: 't' } }));
    assert.equal(other.stats().tenants, 0);
  });

  it('keeps at most maxImmune immune senders; evicting one ends its immunity early', async () => {
    const limiter = createMemoryRateLimiter({ maxImmune: 2 });
    for (const key of ['a', 'b', 'c']) {
      await limiter.restrict(key, { now: new Date(NOW) });
      assert.equal(await limiter.release(key, new Date(NOW)), true);
    }
    assert.equal(limiter.stats().immune, 2);
    const after = { count: 1, window: 'hour', action: 'block-user' } as const;
    assert.equal(limiter.reportSpamSync({ key: 'a', restrictAfter: after, now: new Date(NOW + 1) }).restriction?.until, null, 'a was evicted, no longer immune');
    assert.equal(limiter.reportSpamSync({ key: 'c', restrictAfter: after, now: new Date(NOW + 1) }).restriction, null, 'c is immune');
    // Immunity that has ended is dropped when read.
    assert.equal(limiter.reportSpamSync({ key: 'b', restrictAfter: after, now: new Date(Date.parse(nextUtcMidnight(NOW))) }).restriction?.until, null);
  });
});

describe('memory rate limiter: events', () => {
  const blockUser = perMinute(1, 'block-user');

  it('are delivered in a microtask: after consumeSync returns, before an awaiting caller resumes', async () => {
    const limiter = createMemoryRateLimiter();
    const seen: string[] = [];
    limiter.subscribe((event) => {
      seen.push(event.type);
    });
    limiter.consumeSync(request('k', blockUser, 0));
    limiter.consumeSync(request('k', blockUser, 1));
    assert.deepEqual(seen, [], 'not during the call');
    await limiter.release('k', new Date(NOW + 2));
    assert.deepEqual(seen, ['restricted', 'released']);
  });

  it('go to the listeners subscribed when they happened and still subscribed when delivered', async () => {
    const limiter = createMemoryRateLimiter();
    const early: string[] = [];
    const late: string[] = [];
    const stop = limiter.subscribe((event) => {
      early.push(event.key);
    });
    limiter.consumeSync(request('k', blockUser, 0));
    limiter.consumeSync(request('k', blockUser, 1)); // restricted: queued for `early`
    stop(); // before delivery
    limiter.subscribe((event) => {
      late.push(event.key);
    });
    await Promise.resolve();
    assert.deepEqual(early, []);
    assert.deepEqual(late, []);
  });

  it('none is made without a listener (the hot path allocates nothing for them)', () => {
    const limiter = createMemoryRateLimiter();
    const queue = globalThis.queueMicrotask;
    let queued = 0;
    globalThis.queueMicrotask = (callback) => {
      queued++;
      queue(callback);
    };
    try {
      const limits: LimitSet[] = [{ name: 'watch', action: 'alert', messagesPerMinute: 1 }, { name: 'hard', action: 'block-user', messagesPerMinute: 3 }];
      for (let i = 0; i < 5; i++) limiter.consumeSync(request('k', limits, i, { tenant: { key: 't', externalRecipientsPerDay: 2 } }));
      limiter.reportSpamSync({ key: 's', restrictAfter: { count: 1, window: 'hour', action: 'block-user' }, now: new Date(NOW) });
      void limiter.restrict('r', { now: new Date(NOW) });
      void limiter.release('r', new Date(NOW));
      assert.equal(queued, 0);
      // The same with a listener: each event queued once.
      const unsubscribe = limiter.subscribe(() => {});
      void limiter.restrict('r', { now: new Date(NOW) });
      assert.equal(queued, 1);
      unsubscribe();
    } finally {
      globalThis.queueMicrotask = queue;
    }
  });
});

describe('memory rate limiter: tenant, spam, restrict and subscribe arguments', () => {
  const limiter = createMemoryRateLimiter();
  const invalid = (error: unknown): boolean => error instanceof OutboundPoolsError && error.code === 'invalid-context';
  for (const [label, tenant] of [
    ['an empty tenant key', { key: '' }],
    ['a tenant that is a string', 'contoso'],
    ['a negative cap', { key: 't', externalRecipientsPerDay: -1 }],
    ['a fractional cap', { key: 't', externalRecipientsPerDay: 1.5 }],
  ] as const) {
    it(`consume refuses ${label}`, () => {
      assert.throws(() => limiter.consumeSync(request('k', [], 0, { tenant: tenant as never })), invalid);
    });
  }
  for (const [label, restrictAfter] of [
    ['count 0', { count: 0, window: 'hour', action: 'block-user' }],
    ['window week', { count: 1, window: 'week', action: 'block-user' }],
    ['action block', { count: 1, window: 'hour', action: 'block' }],
    ['no restrictAfter', undefined],
  ] as const) {
    it(`reportSpam refuses ${label}`, async () => {
      await assert.rejects(limiter.reportSpam({ key: 'k', restrictAfter: restrictAfter as never, now: new Date(NOW) }), invalid);
    });
  }
  it('reportSpam refuses a bad key, messageId or date', async () => {
    const restrictAfter = { count: 1, window: 'hour', action: 'block-user' } as const;
    await assert.rejects(limiter.reportSpam({ key: '', restrictAfter, now: new Date(NOW) }), invalid);
    await assert.rejects(limiter.reportSpam({ key: 'k', messageId: 7 as never, restrictAfter, now: new Date(NOW) }), invalid);
    await assert.rejects(limiter.reportSpam({ key: 'k', restrictAfter, now: new Date(Number.NaN) }), invalid);
  });
  it('restrict refuses an until not after now, a bad date or reason; release a bad key or date', async () => {
    await assert.rejects(limiter.restrict('k', { until: new Date(NOW), now: new Date(NOW) }), invalid);
    await assert.rejects(limiter.restrict('k', { until: new Date('nope'), now: new Date(NOW) }), invalid);
    await assert.rejects(limiter.restrict('k', { reason: 42 as never, now: new Date(NOW) }), invalid);
    await assert.rejects(limiter.restrict('', { now: new Date(NOW) }), invalid);
    await assert.rejects(limiter.release('k', new Date('nope')), invalid);
    await assert.rejects(limiter.release(undefined as never), invalid);
    assert.equal((await limiter.restricted(new Date(NOW))).length, 0, 'nothing was restricted by the refused calls');
  });
  it('subscribe refuses a listener that is not a function', () => {
    assert.throws(() => limiter.subscribe('log' as never), invalid);
  });
  for (const [label, options] of [
    ['maxTenants 0', { maxTenants: 0 }],
    ['maxImmune 1.5', { maxImmune: 1.5 }],
  ] as const) {
    it(`createMemoryRateLimiter refuses ${label}`, () => {
      assert.throws(() => createMemoryRateLimiter(options), invalid);
    });
  }
});

describe('limit-windows helpers', () => {
  it('nextUtcMidnight is strictly after now', () => {
    assert.equal(nextUtcMidnight(Date.parse('2026-11-23T23:59:59.999Z')), '2026-11-24T00:00:00.000Z');
    assert.equal(nextUtcMidnight(Date.parse('2026-11-24T00:00:00.000Z')), '2026-11-25T00:00:00.000Z');
    assert.equal(nextUtcMidnight(Date.parse('2026-12-31T12:00:00.000Z')), '2027-01-01T00:00:00.000Z');
  });

  it('restrictionFor: block and alert restrict nobody', () => {
    const breach = { window: 'messagesPerMinute', limit: 1, used: 1, set: 's' } as const;
    assert.equal(restrictionFor([{ ...breach, action: 'block' }, { ...breach, action: 'alert' }], NOW), null);
  });

  it('restrictionFor records since and the cause of the deciding breach', () => {
    const breach = { limit: 1, used: 1 } as const;
    assert.deepEqual(
      restrictionFor(
        [
          { ...breach, window: 'messagesPerMinute', action: 'block-user-for-today', set: 'today' },
          { ...breach, window: 'recipientsPerDay', action: 'block-user', set: 'user' },
        ],
        NOW,
      ),
      {
        until: null,
        reason: 'over recipientsPerDay (1 used, limit 1) of limit set "user", action block-user',
        since: '2026-11-23T09:00:00.000Z',
        cause: { kind: 'limit', window: 'recipientsPerDay', set: 'user' },
      },
    );
  });

  it('tenantBreachOf: only a message with external recipients that would pass a cap', () => {
    assert.deepEqual(tenantBreachOf({ key: 't', externalRecipientsPerDay: 10 }, 8, 3), { tenant: 't', limit: 10, used: 8 });
    assert.equal(tenantBreachOf({ key: 't', externalRecipientsPerDay: 10 }, 8, 2), null);
    assert.equal(tenantBreachOf({ key: 't', externalRecipientsPerDay: 10 }, 10, 0), null);
    assert.equal(tenantBreachOf({ key: 't' }, 1e9, 5), null);
    assert.deepEqual(tenantBreachOf({ key: 't', externalRecipientsPerDay: 0 }, 0, 1), { tenant: 't', limit: 0, used: 0 });
  });

  it('spam, admin and immunity helpers', () => {
    assert.deepEqual(spamRestriction({ count: 5, window: 'hour', action: 'block-user-for-today' }, 5, NOW), {
      until: '2026-11-24T00:00:00.000Z',
      reason: '5 messages judged spam within the last hour (restrict after 5), action block-user-for-today',
      since: '2026-11-23T09:00:00.000Z',
      cause: { kind: 'spam', count: 5, window: 'hour' },
    });
    assert.equal(spamRestriction({ count: 1, window: 'day', action: 'block-user' }, 1, NOW).until, null);
    assert.equal(spamBucket(NOW, 'hour'), Math.floor(NOW / 60_000));
    assert.equal(spamBucket(NOW, 'day'), Math.floor(NOW / 1_440_000));
    assert.deepEqual(adminRestriction(null, undefined, NOW), { until: null, reason: ADMIN_REASON, since: '2026-11-23T09:00:00.000Z', cause: { kind: 'admin' } });
    assert.equal(adminRestriction(NOW + 1, 'x', NOW).until, '2026-11-23T09:00:00.001Z');
    assert.equal(immunityEnd(Date.parse('2026-11-23T23:59:59.999Z')), '2026-11-24T00:00:00.000Z');
  });
});

describe('memory rate limiter through decidePool (rules 1 and 3)', () => {
  const message = { mailFrom: 'megan@contoso.com', rcptTo: ['lee@northwind.example', 'alex@contoso.com'] };
  const at = (offsetMs: number): Date => new Date(NOW + offsetMs);

  it('decidePool asks it through consumeSync and restrictionSync, never through the promise methods', async () => {
    const memory = createMemoryRateLimiter({ maxSenders: 100 });
    const calls = { consume: 0, restriction: 0, consumeSync: 0, restrictionSync: 0 };
    const rateLimiter = {
      consume: (request: ConsumeRequest) => (calls.consume++, memory.consume(request)),
      restriction: (key: string, now: Date) => (calls.restriction++, memory.restriction(key, now)),
      consumeSync: (request: ConsumeRequest) => (calls.consumeSync++, memory.consumeSync(request)),
      restrictionSync: (key: string, now: Date) => (calls.restrictionSync++, memory.restrictionSync(key, now)),
    };
    const policy = { acceptedDomains: ['contoso.com'], limits: [{ name: 'small', messagesPerMinute: 1, recipientsPerMessage: 2, action: 'block-user' as const }] };
    const first = await decidePool(message, { policy, providers: { rateLimiter }, now: at(0) });
    assert.equal(first.action, 'deliver');
    const second = await decidePool(message, { policy, providers: { rateLimiter }, now: at(1) });
    assert.equal(second.reasons[0]?.code, 'sending-limit-exceeded');
    // Over the per-message limit: only the restriction is asked (rule 1 before rule 2).
    const crowd = { ...message, rcptTo: ['a@northwind.example', 'b@northwind.example', 'c@northwind.example'] };
    const third = await decidePool(crowd, { policy, providers: { rateLimiter }, now: at(2) });
    assert.equal(third.reasons[0]?.code, 'sender-restricted');
    assert.deepEqual(calls, { consume: 0, restriction: 0, consumeSync: 2, restrictionSync: 1 });
  });

  it('a consumeSync that throws is a provider failure like a consume that rejects', async () => {
    const rateLimiter = {
      consume: async () => ({ restriction: null, breaches: [], counted: true }),
      restriction: async () => null,
      consumeSync: () => {
        throw new Error('counters unavailable');
      },
    };
    const policy = { acceptedDomains: ['contoso.com'], onProviderFailure: { rateLimiter: 'defer' as const } };
    const decision = await decidePool(message, { policy, providers: { rateLimiter }, now: at(0) });
    assert.equal(decision.action, 'defer');
    assert.match((decision.verdicts.limits as { error: string }).error, /counters unavailable/);
  });

  it('consumeSync or restrictionSync that is not a function is refused as a bad context', async () => {
    for (const extra of [{ consumeSync: 42 }, { restrictionSync: 'no' }]) {
      const rateLimiter = { consume: async () => ({ restriction: null, breaches: [], counted: true }), restriction: async () => null, ...extra };
      await assert.rejects(
        decidePool(message, { providers: { rateLimiter: rateLimiter as never }, now: at(0) }),
        (error: unknown) => error instanceof OutboundPoolsError && error.code === 'invalid-context' && /consumeSync\(\) and restrictionSync\(\)/.test(error.message),
        JSON.stringify(extra),
      );
    }
  });

  it('sending-limit-exceeded when a block set is full, then delivered again when the window allows', async () => {
    const rateLimiter = createMemoryRateLimiter({ maxSenders: 100 });
    const context = (now: Date) => ({ policy: { acceptedDomains: ['contoso.com'], limits: [{ name: 'per-minute', messagesPerMinute: 2 }] }, providers: { rateLimiter }, now });
    for (let i = 0; i < 2; i++) {
      const decision = await decidePool(message, context(at(i)));
      assert.equal(decision.action, 'deliver');
      assert.equal(decision.pool, 'normal');
    }
    const refused = await decidePool(message, context(at(2)));
    assert.equal(refused.action, 'block');
    assert.equal(refused.reasons[0]?.code, 'sending-limit-exceeded');
    assert.equal(refused.reasons[0]?.rule, 3);
    assert.deepEqual(refused.reasons[0]?.detail, { window: 'messagesPerMinute', limit: 2, used: 2, set: 'per-minute', action: 'block' });
    assert.equal(await rateLimiter.restriction('megan@contoso.com', at(3)), null);
    // A window of 61 one-second buckets: free again a minute and a bucket later.
    assert.equal((await decidePool(message, context(at(60_000)))).action, 'block');
    assert.equal((await decidePool(message, context(at(61_000)))).action, 'deliver');
  });

  it('internal and external recipients come from the accepted domains', async () => {
    const rateLimiter = createMemoryRateLimiter();
    const policy = { acceptedDomains: ['contoso.com'], limits: [{ name: 'ext', externalRecipientsPerHour: 2 }] };
    const internalOnly = { mailFrom: 'megan@contoso.com', rcptTo: ['a@contoso.com', 'b@contoso.com', 'c@contoso.com'] };
    assert.equal((await decidePool(internalOnly, { policy, providers: { rateLimiter }, now: at(0) })).action, 'deliver');
    assert.equal((await decidePool(message, { policy, providers: { rateLimiter }, now: at(1) })).action, 'deliver');
    assert.equal((await decidePool(message, { policy, providers: { rateLimiter }, now: at(2) })).action, 'deliver');
    const refused = await decidePool(message, { policy, providers: { rateLimiter }, now: at(3) });
    assert.equal(refused.reasons[0]?.code, 'sending-limit-exceeded');
    assert.deepEqual(refused.reasons[0]?.detail, { window: 'externalRecipientsPerHour', limit: 2, used: 2, set: 'ext', action: 'block' });
  });

  it('limit-alert: delivered, with an informational reason', async () => {
    const rateLimiter = createMemoryRateLimiter();
    const policy = { acceptedDomains: ['contoso.com'], limits: [{ name: 'watch', messagesPerMinute: 1, action: 'alert' as const }] };
    await decidePool(message, { policy, providers: { rateLimiter }, now: at(0) });
    const decision = await decidePool(message, { policy, providers: { rateLimiter }, now: at(1) });
    assert.equal(decision.action, 'deliver');
    assert.equal(decision.pool, 'normal');
    assert.equal(decision.reasons[0]?.code, 'accepted-domain');
    const alert = decision.reasons.find((reason) => reason.code === 'limit-alert');
    assert.deepEqual(alert?.detail, { window: 'messagesPerMinute', limit: 1, used: 1, set: 'watch' });
  });

  it('block-user: the breach blocks and restricts; then sender-restricted until released', async () => {
    const rateLimiter = createMemoryRateLimiter();
    const policy = { acceptedDomains: ['contoso.com'], limits: [{ name: 'outbound-spam', recipientsPerDay: 4, action: 'block-user' as const }] };
    const decide = (offset: number) => decidePool(message, { policy, providers: { rateLimiter }, now: at(offset) });
    assert.equal((await decide(0)).action, 'deliver');
    assert.equal((await decide(1)).action, 'deliver');
    const breach = await decide(2);
    assert.equal(breach.action, 'block');
    assert.equal(breach.reasons[0]?.code, 'sending-limit-exceeded');
    assert.match(breach.reasons[0]?.message ?? '', /now restricted/);
    const restricted = await decide(3_600_000);
    assert.equal(restricted.action, 'block');
    assert.equal(restricted.reasons[0]?.code, 'sender-restricted');
    assert.equal(restricted.reasons[0]?.rule, 1);
    assert.deepEqual(restricted.reasons[0]?.detail, { key: 'megan@contoso.com', until: null, cause: 'limit' });
    assert.deepEqual((await rateLimiter.restricted(at(0))).map((r) => r.key), ['megan@contoso.com']);
    assert.equal(await rateLimiter.release('megan@contoso.com'), true);
    // Released, but the day is still full (4 of 4): refused again by rule 3, not rule 1.
    assert.equal((await decide(3_600_001)).reasons[0]?.code, 'sending-limit-exceeded');
    await rateLimiter.release('megan@contoso.com');
    // The day window is 61 buckets of 24 minutes: free again 24 h and a bucket later.
    assert.equal((await decide(86_400_000 + 1_440_000)).action, 'deliver');
  });

  it('block-user-for-today: sender-restricted until the next UTC midnight', async () => {
    const rateLimiter = createMemoryRateLimiter();
    const policy = { acceptedDomains: ['contoso.com'], limits: [{ name: 'per-minute', messagesPerMinute: 1, action: 'block-user-for-today' as const }] };
    const decide = (now: Date) => decidePool(message, { policy, providers: { rateLimiter }, now });
    await decide(at(0));
    assert.equal((await decide(at(1))).reasons[0]?.code, 'sending-limit-exceeded');
    const restricted = await decide(at(3_600_000));
    assert.equal(restricted.reasons[0]?.code, 'sender-restricted');
    assert.deepEqual(restricted.reasons[0]?.detail, { key: 'megan@contoso.com', until: '2026-11-24T00:00:00.000Z', cause: 'limit' });
    const tomorrow = await decide(new Date('2026-11-24T00:00:00.000Z'));
    assert.equal(tomorrow.action, 'deliver');
  });

  it('the legacy overLimit high-risk sends an over-limit message through the high-risk pool, and counts it: it is sent', async () => {
    const rateLimiter = createMemoryRateLimiter();
    const policy = { acceptedDomains: ['contoso.com'], overLimit: 'high-risk' as const, limits: [{ messagesPerMinute: 1 }] };
    await decidePool(message, { policy, providers: { rateLimiter }, now: at(0) });
    const over = await decidePool(message, { policy, providers: { rateLimiter }, now: at(1) });
    assert.equal(over.pool, 'high-risk');
    assert.equal(over.reasons[0]?.code, 'sending-limit-exceeded');
    assert.equal(over.reasons[0]?.detail?.used, 1);
    const again = await decidePool(message, { policy, providers: { rateLimiter }, now: at(2) });
    assert.equal(again.pool, 'high-risk');
    assert.equal(again.reasons[0]?.detail?.used, 2);
    // With overLimit: 'block' the message is refused and not counted: still 3.
    const blocked = await decidePool(message, { policy: { ...policy, overLimit: 'block' as const }, providers: { rateLimiter }, now: at(3) });
    assert.equal(blocked.action, 'block');
    assert.equal(blocked.reasons[0]?.detail?.used, 3);
    assert.equal((await decidePool(message, { policy, providers: { rateLimiter }, now: at(4) })).reasons[0]?.detail?.used, 3);
  });

  it("overLimit high-risk: what a sender over its limits sends high-risk counts for its tenant's cap (rule 11)", async () => {
    const rateLimiter = createMemoryRateLimiter();
    const policy = { acceptedDomains: ['contoso.com'], overLimit: 'high-risk' as const, limits: [{ messagesPerMinute: 1 }], tenantLimits: { externalRecipientsPerDay: 3 } };
    const from = (mailFrom: string, offset: number) => decidePool({ ...message, mailFrom, tenant: 'contoso' }, { policy, providers: { rateLimiter }, now: at(offset) });
    assert.equal((await from('megan@contoso.com', 0)).pool, 'normal');
    assert.equal((await from('megan@contoso.com', 1)).pool, 'high-risk');
    assert.equal((await from('megan@contoso.com', 2)).pool, 'high-risk');
    // Three external recipients sent by the tenant: the cap refuses the next, whoever sends it.
    const capped = await from('alex@contoso.com', 3);
    assert.equal(capped.action, 'block');
    assert.equal(capped.reasons[0]?.code, 'tenant-limit-exceeded');
    assert.equal(capped.reasons[0]?.detail?.used, 3);
  });
});
