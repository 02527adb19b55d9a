// The Redis rate limiter's tenant cap, spam reports, administrator restrictions, release with
// immunity and events (issue #13), against a real redis-server on loopback (test/servers/redis.ts):
// the semantics of src/providers/types.ts on Redis, events delivered to another limiter through
// pub/sub, and the tenant's cap exact under 4 processes × 5,000 concurrent decisions.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createRedisRateLimiter, type RedisRateLimiter } from '../../src/redis/limiter.js';
import type { ConsumeRequest, LimiterEvent, LimitSet } from '../../src/providers/types.js';
import { startRedis, type RedisServer } from '../servers/redis.js';
import { runTenantWorkers } from './worker-process.js';

let shared: Promise<RedisServer> | undefined;
const sharedRedis = (): Promise<RedisServer> => (shared ??= startRedis());
const limiters: RedisRateLimiter[] = [];
after(async () => {
  for (const limiter of limiters) await limiter.close();
  if (shared !== undefined) await (await shared.catch(() => undefined))?.stop();
});

/** A limiter on the shared Redis, closed after the tests. */
async function limiter(prefix = 'features:'): Promise<RedisRateLimiter> {
  const server = await sharedRedis();
  const created = createRedisRateLimiter({ url: server.url, prefix, commandTimeoutMs: 5_000 });
  limiters.push(created);
  return created;
}

const T0 = Date.parse('2026-11-23T09:00:00.000Z');
const MIDNIGHT = Date.parse('2026-11-24T00:00:00.000Z');
const at = (ms: number): Date => new Date(T0 + ms);
const loose: LimitSet[] = [{ name: 'loose', messagesPerMinute: 1_000, action: 'block' }];

function request(key: string, ms: number, more: Partial<ConsumeRequest> = {}): ConsumeRequest {
  return { key, internalRecipients: 0, externalRecipients: 1, limits: loose, now: at(ms), ...more };
}

/** Waits until `events` holds `count` events (pub/sub is asynchronous), at most 5 s. */
async function waitFor(events: readonly LimiterEvent[], count: number): Promise<void> {
  for (let i = 0; i < 250 && events.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(events.length >= count, `${events.length} events arrived, ${count} expected: ${JSON.stringify(events)}`);
}

describe('redis limiter: the tenant cap', () => {
  it('counts external recipients for the tenant and refuses over the cap, counting neither sender nor tenant', async () => {
    const rl = await limiter();
    const tenant = { key: `${randomUUID()}.tenant`, externalRecipientsPerDay: 5 };
    const a = `${randomUUID()}:a@contoso.com`;
    const b = `${randomUUID()}:b@contoso.com`;
    assert.equal((await rl.consume(request(a, 0, { externalRecipients: 3, tenant }))).counted, true);
    assert.equal((await rl.consume(request(b, 1_000, { externalRecipients: 2, tenant }))).counted, true);
    const refused = await rl.consume(request(b, 2_000, { externalRecipients: 1, tenant }));
    assert.deepEqual(refused, { restriction: null, breaches: [], tenantBreach: { tenant: tenant.key, limit: 5, used: 5 }, counted: false });
    // Internal mail is not refused by the tenant's cap.
    assert.equal((await rl.consume(request(b, 3_000, { externalRecipients: 0, internalRecipients: 4, tenant }))).counted, true);
    // The refused message was not counted for its sender: b has 2 messages this minute, not 3.
    const probe = await rl.consume(request(b, 4_000, { externalRecipients: 0, limits: [{ name: 'two', messagesPerMinute: 2, action: 'block' }] }));
    assert.deepEqual(probe.breaches.map((x) => [x.window, x.used]), [['messagesPerMinute', 2]]);
    // 24 h later the tenant's window is empty again.
    assert.equal((await rl.consume(request(a, 86_400_000 + 1_440_000, { externalRecipients: 5, tenant }))).counted, true);
  });

  it("a message the sender's limits refuse is not counted for the tenant; a retry counts once for both", async () => {
    const rl = await limiter();
    const tenant = { key: `${randomUUID()}.tenant`, externalRecipientsPerDay: 3 };
    const key = `${randomUUID()}@contoso.com`;
    const one: LimitSet[] = [{ name: 'one', messagesPerMinute: 1, action: 'block' }];
    assert.equal((await rl.consume(request(key, 0, { limits: one, tenant, messageId: '<m1@contoso.com>' }))).counted, true);
    assert.equal((await rl.consume(request(key, 1_000, { limits: one, tenant, messageId: '<m1@contoso.com>' }))).counted, true, 'a retry');
    const refused = await rl.consume(request(key, 2_000, { limits: one, tenant }));
    assert.equal(refused.counted, false);
    assert.equal(refused.tenantBreach, undefined);
    // The tenant counted 1 (not 2 or 3): 2 more external recipients fit, a third does not.
    const other = `${randomUUID()}@contoso.com`;
    assert.equal((await rl.consume(request(other, 3_000, { externalRecipients: 2, tenant }))).counted, true);
    assert.deepEqual((await rl.consume(request(other, 4_000, { tenant }))).tenantBreach, { tenant: tenant.key, limit: 3, used: 3 });
  });

  it('without a cap the tenant is counted and nothing is refused', async () => {
    const rl = await limiter();
    const tenant = { key: `${randomUUID()}.tenant` };
    for (let i = 0; i < 5; i++) assert.equal((await rl.consume(request(`${randomUUID()}@contoso.com`, i, { externalRecipients: 1_000, tenant }))).counted, true);
    const server = await sharedRedis();
    const client = new Redis(server.url);
    try {
      assert.equal(await client.exists(`features:tenant:{${tenant.key}}`), 1);
    } finally {
      client.disconnect();
    }
  });
});

describe('redis limiter: spam reports', () => {
  it('counts spam per sender, a retry once, and restricts at the count with cause spam', async () => {
    const rl = await limiter();
    const key = `${randomUUID()}@contoso.com`;
    const restrictAfter = { count: 3, window: 'hour', action: 'block-user-for-today' } as const;
    assert.deepEqual(await rl.reportSpam({ key, messageId: '<s1@x>', restrictAfter, now: at(0) }), { count: 1, restriction: null });
    assert.deepEqual(await rl.reportSpam({ key, messageId: '<s1@x>', restrictAfter, now: at(1_000) }), { count: 1, restriction: null });
    assert.deepEqual(await rl.reportSpam({ key, messageId: '<s2@x>', restrictAfter, now: at(2_000) }), { count: 2, restriction: null });
    const third = await rl.reportSpam({ key, restrictAfter, now: at(3_000) });
    assert.equal(third.count, 3);
    assert.deepEqual({ ...third.restriction, reason: undefined }, {
      until: new Date(MIDNIGHT).toISOString(),
      reason: undefined,
      since: at(3_000).toISOString(),
      cause: { kind: 'spam', count: 3, window: 'hour' },
    });
    assert.deepEqual(await rl.restriction(key, at(4_000)), third.restriction);
    assert.equal((await rl.consume(request(key, 5_000))).counted, false);
    // The hour window is 61 buckets of a minute, as in memory: an hour later the first two still
    // count; an hour and a bucket later the window holds only what came since.
    const later = `${randomUUID()}@contoso.com`;
    await rl.reportSpam({ key: later, restrictAfter, now: at(0) });
    await rl.reportSpam({ key: later, restrictAfter, now: at(1_000) });
    assert.deepEqual(await rl.reportSpam({ key: later, restrictAfter: { ...restrictAfter, count: 10 }, now: at(3_600_000 + 500) }), { count: 3, restriction: null });
    assert.deepEqual(await rl.reportSpam({ key: later, restrictAfter, now: at(3_660_000 + 500) }), { count: 2, restriction: null });
  });

  it('a released sender is immune to restriction by spam until the next UTC midnight', async () => {
    const rl = await limiter();
    const key = `${randomUUID()}@contoso.com`;
    const restrictAfter = { count: 1, window: 'day', action: 'block-user' } as const;
    assert.equal((await rl.reportSpam({ key, restrictAfter, now: at(0) })).restriction?.until, null);
    assert.equal(await rl.release(key, at(1_000)), true);
    assert.deepEqual(await rl.reportSpam({ key, restrictAfter, now: at(2_000) }), { count: 2, restriction: null });
    assert.equal(await rl.restriction(key, at(2_000)), null);
    const next = await rl.reportSpam({ key, restrictAfter, now: new Date(MIDNIGHT) });
    assert.deepEqual(next.restriction?.cause, { kind: 'spam', count: 3, window: 'day' });
  });
});

describe('redis limiter: restrict, release, restricted', () => {
  it('restrict() imposes an administrator restriction, listed with since, cause, until and reason', async () => {
    const rl = await limiter();
    const key = `${randomUUID()}@contoso.com`;
    const until = new Date(T0 + 3_600_000);
    const imposed = await rl.restrict(key, { until, reason: 'phishing reported', now: at(0) });
    assert.deepEqual(imposed, { key, until: until.toISOString(), reason: 'phishing reported', since: at(0).toISOString(), cause: { kind: 'admin' } });
    const { key: _key, ...restriction } = imposed;
    assert.deepEqual(await rl.restriction(key, at(1_000)), restriction);
    assert.deepEqual((await rl.restricted(at(1_000))).find((r) => r.key === key), imposed);
    assert.deepEqual(await rl.consume(request(key, 2_000)), { restriction, breaches: [], counted: false });
    // It ends by itself at until.
    assert.equal(await rl.restriction(key, until), null);
    // Until released, with no reason: the administrator's reason all the same (as in memory).
    const forGood = await rl.restrict(key, { now: at(5_000) });
    assert.deepEqual(forGood, { key, until: null, reason: 'restricted by an administrator', since: at(5_000).toISOString(), cause: { kind: 'admin' } });
    assert.equal(await rl.release(key, at(6_000)), true);
    assert.equal(await rl.release(key, at(6_000)), false);
  });

  it('a breach restricts with cause limit; after release, block-user breaches refuse without restricting until the next UTC midnight', async () => {
    const rl = await limiter();
    const key = `${randomUUID()}@contoso.com`;
    const limits: LimitSet[] = [{ name: 'strict', messagesPerMinute: 1, action: 'block-user' }];
    assert.equal((await rl.consume(request(key, 0, { limits }))).counted, true);
    assert.equal((await rl.consume(request(key, 1_000, { limits }))).counted, false);
    const restriction = await rl.restriction(key, at(1_000));
    assert.deepEqual({ ...restriction, reason: undefined }, { until: null, reason: undefined, since: at(1_000).toISOString(), cause: { kind: 'limit', window: 'messagesPerMinute', set: 'strict' } });
    assert.equal(await rl.release(key, at(2_000)), true);
    const immune = await rl.consume(request(key, 3_000, { limits }));
    assert.equal(immune.counted, false);
    assert.equal(immune.breaches[0]?.action, 'block-user');
    assert.equal(await rl.restriction(key, at(3_000)), null, 'not restricted again while immune');
    // restrict() still works while immune.
    assert.equal((await rl.restrict(key, { now: at(4_000) })).cause.kind, 'admin');
    assert.equal(await rl.release(key, at(5_000)), true);
    // After midnight the immunity has ended: the next breach restricts.
    const afterMidnight = MIDNIGHT - T0;
    assert.equal((await rl.consume(request(key, afterMidnight, { limits }))).counted, true);
    assert.equal((await rl.consume(request(key, afterMidnight + 1, { limits }))).counted, false);
    assert.equal((await rl.restriction(key, at(afterMidnight + 2)))?.until, null);
  });
});

describe('redis limiter: events through pub/sub', () => {
  it('every limiter on the same Redis and prefix hears restricted, released, limit-alert and tenant-cap; listener errors are ignored', async () => {
    const prefix = `events-${randomUUID()}:`;
    const mine = await limiter(prefix);
    const other = await limiter(prefix);
    const heardHere: LimiterEvent[] = [];
    const heardThere: LimiterEvent[] = [];
    mine.subscribe((event) => heardHere.push(event));
    mine.subscribe(() => {
      throw new Error('a listener that fails');
    });
    other.subscribe(async () => Promise.reject(new Error('a listener that rejects')));
    const stop = other.subscribe((event) => heardThere.push(event));
    // Let the subscriber connections subscribe.
    await other.restriction('warm-up', at(0));
    await new Promise((resolve) => setTimeout(resolve, 200));

    const key = `${randomUUID()}@contoso.com`;
    const limits: LimitSet[] = [
      { name: 'watch', messagesPerMinute: 1, action: 'alert' },
      { name: 'strict', messagesPerMinute: 2, action: 'block-user' },
    ];
    assert.equal((await mine.consume(request(key, 0, { limits }))).counted, true);
    assert.equal((await mine.consume(request(key, 1_000, { limits }))).counted, true);
    assert.equal((await mine.consume(request(key, 2_000, { limits }))).counted, false);
    assert.equal(await mine.release(key, at(3_000)), true);
    const tenant = { key: `${randomUUID()}.tenant`, externalRecipientsPerDay: 0 };
    assert.equal((await mine.consume(request(`${randomUUID()}@contoso.com`, 4_000, { tenant }))).tenantBreach?.limit, 0);

    await waitFor(heardThere, 4);
    assert.deepEqual(heardHere, heardThere, 'the same events, in the same order, here and there');
    assert.deepEqual(heardThere.map((e) => e.type), ['limit-alert', 'restricted', 'released', 'tenant-cap']);
    const [alert, restricted, released, cap] = heardThere;
    assert.deepEqual(alert, { type: 'limit-alert', at: at(1_000).toISOString(), key, breach: { window: 'messagesPerMinute', limit: 1, used: 1, action: 'alert', set: 'watch' } });
    assert.equal(restricted?.type === 'restricted' && restricted.restriction.cause.kind, 'limit');
    assert.deepEqual(released, { type: 'released', at: at(3_000).toISOString(), key, immuneUntil: new Date(MIDNIGHT).toISOString() });
    assert.equal(cap?.type === 'tenant-cap' && cap.breach.tenant, tenant.key);

    // After stop(), no more events there.
    stop();
    await mine.restrict(key, { now: at(5_000) });
    await waitFor(heardHere, 5);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(heardThere.length, 4);
  });

  it('close() closes the subscriber connection', async () => {
    const server = await sharedRedis();
    const client = new Redis(server.url);
    try {
      const count = async () => ((await client.client('LIST')) as string).split('\n').filter((line) => /cmd=(subscribe|ssubscribe)/.test(line)).length;
      const before = await count();
      const rl = createRedisRateLimiter({ url: server.url, prefix: 'close-sub:' });
      rl.subscribe(() => {});
      await rl.restriction('x', at(0));
      for (let i = 0; i < 100 && (await count()) === before; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(await count(), before + 1);
      await rl.close();
      for (let i = 0; i < 100 && (await count()) !== before; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(await count(), before);
    } finally {
      client.disconnect();
    }
  });
});

describe('redis limiter: the tenant cap across processes', () => {
  it('4 processes × 5,000 concurrent decisions of one tenant count exactly its cap', { timeout: 60_000 }, async (t) => {
    const server = await sharedRedis();
    const key = `${randomUUID()}:tenant-burst@contoso.com`;
    const tenant = `${randomUUID()}.tenant`;
    const cap = 1_000;
    const perWorker = 5_000;
    const now = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString();
    const results = await runTenantWorkers({ url: server.url, key, tenant, cap, senders: 20, total: perWorker, batch: 1_000, now, prefix: 'tenant-burst:' });
    {
      const sum = (f: (r: (typeof results)[number]) => number) => results.reduce((s, r) => s + f(r), 0);
      t.diagnostic(`per process (counted/tenant-refused/refused/failed, ms): ${results.map((r) => `${r.counted}/${r.tenantRefused}/${r.refused}/${r.failed} ${r.ms} ms`).join('; ')}`);
      assert.equal(sum((r) => r.failed), 0);
      assert.equal(sum((r) => r.refused), 0);
      assert.equal(sum((r) => r.counted), cap, 'exactly the cap is counted across processes');
      assert.equal(sum((r) => r.tenantRefused), 4 * perWorker - cap);
      // Both or neither: the senders' day windows hold exactly the cap between them.
      const rl = createRedisRateLimiter({ url: server.url, prefix: 'tenant-burst:' });
      limiters.push(rl);
      let senders = 0;
      for (let s = 0; s < 20; s++) {
        const probe = await rl.consume({ key: `${key}:${s}`, internalRecipients: 0, externalRecipients: 0, limits: [{ name: 'probe', recipientsPerDay: -1, action: 'block' }], now: new Date(now) });
        senders += probe.breaches[0]!.used;
      }
      assert.equal(senders, cap, "the senders' windows hold the tenant's count");
      const next = await rl.consume({ key: `${key}:0`, internalRecipients: 0, externalRecipients: 1, limits: loose, tenant: { key: tenant, externalRecipientsPerDay: cap }, now: new Date(now) });
      assert.deepEqual(next.tenantBreach, { tenant, limit: cap, used: cap });
    }
  });
});
