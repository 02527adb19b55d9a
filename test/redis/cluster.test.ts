// The Redis rate limiter on a real Redis Cluster: three masters on loopback, no replicas
// (test/servers/redis-cluster.ts), reached through an ioredis `Cluster` client given as
// `{ client }`. The shared rate limiter behaviour suite; many concurrent consumes for senders
// whose keys land on different masters (checked with CLUSTER KEYSLOT and on the masters
// themselves), counting exactly the limit; restricted() and release() when the restrictions and
// the `restricted` index live on different masters; the tenant's cap exact across 4 processes
// with senders on every master. Without redis-server and redis-cli the tests
// fail, naming the package; they never skip.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { createRedisRateLimiter, type RedisRateLimiter } from '../../src/redis/limiter.js';
import type { LimitSet } from '../../src/providers/types.js';
import { startRedisCluster, type ClusterNode, type RedisCluster } from '../servers/redis-cluster.js';
import { describeRateLimiterBehaviour } from '../providers/rate-limiter-behaviour.js';
import { runTenantWorkers, type TenantWorkerResult } from './worker-process.js';

/** One cluster for every test here (keys are unique per test). */
let shared: Promise<RedisCluster> | undefined;
const sharedCluster = (): Promise<RedisCluster> => (shared ??= startRedisCluster());

/** Every client opened here, disconnected after the tests whatever happened. */
const clients = new Set<Cluster | Redis>();
after(async () => {
  for (const client of clients) client.disconnect();
  if (shared !== undefined) await (await shared.catch(() => undefined))?.stop();
});

/** An ioredis Cluster client of its own (its own connections) to the shared cluster. */
async function clusterClient(): Promise<Cluster> {
  const cluster = await sharedCluster();
  const client = new Cluster(
    cluster.startupNodes.map(({ host, port }) => ({ host, port })),
    { redisOptions: { maxRetriesPerRequest: 1 }, slotsRefreshTimeout: 2_000 },
  );
  client.on('error', () => {});
  clients.add(client);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the Cluster client was not ready within 10 s (${client.status})`)), 10_000);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return client;
}

/** A plain connection to one master: it sees only that node's keys. */
function nodeClient(node: ClusterNode): Redis {
  const client = new Redis({ host: node.host, port: node.port, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  clients.add(client);
  return client;
}

/** The limiter's key names for `key`: one hash, `<prefix>{<escaped key>}` (src/redis/limiter.ts). */
const keyNames = (prefix: string, key: string): string[] => {
  const escaped = key.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D'));
  return [`${prefix}{${escaped}}`];
};

/** CLUSTER KEYSLOT, asked of the server (not computed here). */
async function keySlot(cluster: RedisCluster, name: string): Promise<number> {
  const answer = (await cluster.cli(cluster.nodes[0]!, ['CLUSTER', 'KEYSLOT', name])).trim();
  assert.match(answer, /^\d+$/, `CLUSTER KEYSLOT ${name}: ${answer}`);
  return Number(answer);
}

interface Placed {
  readonly key: string;
  readonly slot: number;
  readonly node: ClusterNode;
}

/**
 * One sender key per master: fresh keys until every master holds one. Checks that the key names
 * of each sender share one slot (the hash tag), as the server computes it.
 */
async function sendersOnEveryMaster(cluster: RedisCluster, prefix: string, label: string): Promise<Placed[]> {
  const byNode = new Map<number, Placed>();
  for (let attempt = 0; byNode.size < cluster.nodes.length; attempt += 1) {
    assert.ok(attempt < 200, `200 random keys did not cover all ${cluster.nodes.length} masters`);
    const key = `${randomUUID()}:${label}${attempt}@contoso.com`;
    const slots = await Promise.all(keyNames(prefix, key).map((name) => keySlot(cluster, name)));
    assert.equal(new Set(slots).size, 1, `the key names of ${key} are in one slot: ${slots.join(', ')}`);
    const node = await cluster.nodeForSlot(slots[0]!);
    if (!byNode.has(node.port)) byNode.set(node.port, { key, slot: slots[0]!, node });
  }
  return [...byNode.values()];
}

describe('redis cluster: the test cluster itself', () => {
  it('is a real 3-master cluster: the slots are split, and a multi-slot script is refused with CROSSSLOT', { timeout: 60_000 }, async () => {
    const cluster = await sharedCluster();
    assert.equal(cluster.nodes.length, 3);
    const owners = new Set<number>();
    for (const slot of [0, 8_000, 16_383]) owners.add((await cluster.nodeForSlot(slot)).port);
    assert.equal(owners.size, 3, 'slots 0, 8000 and 16383 are served by three different masters');
    // What the limiter's hash tags avoid: a script over keys of different slots.
    const client = await clusterClient();
    const [a, b] = ['{a}x', '{b}x'];
    assert.notEqual(await keySlot(cluster, a), await keySlot(cluster, b));
    await assert.rejects(client.eval('return 1', 2, a, b), /CROSSSLOT|different slots/i);
  });
});

describeRateLimiterBehaviour('redis cluster (3 masters, ioredis Cluster client)', async () => {
  const client = await clusterClient();
  const limiter = createRedisRateLimiter({ client, prefix: 'behaviour:', commandTimeoutMs: 10_000 });
  return {
    limiter,
    close: async () => {
      await limiter.close();
      await client.quit();
    },
  };
});

describe('redis cluster: concurrency across masters', () => {
  it('4 clients × 3 senders × 1,500 concurrent consumes count exactly the limit per sender, each on its own master', { timeout: 90_000 }, async (t) => {
    const cluster = await sharedCluster();
    const prefix = 'cluster-burst:';
    const senders = await sendersOnEveryMaster(cluster, prefix, 'burst');
    t.diagnostic(`senders: ${senders.map((s) => `slot ${s.slot} on :${s.node.port}`).join('; ')}`);
    assert.equal(new Set(senders.map((s) => s.node.port)).size, 3, 'the senders are on three different masters');

    const limit = 1_000;
    const perClient = 1_500;
    const limits: LimitSet[] = [{ name: 'concurrency', messagesPerMinute: limit, action: 'block' }];
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const limiters: RedisRateLimiter[] = [];
    for (let i = 0; i < 4; i += 1) limiters.push(createRedisRateLimiter({ client: await clusterClient(), prefix, commandTimeoutMs: 30_000 }));
    // Every client has loaded the script on every master before the burst (EVALSHA, then EVAL on NOSCRIPT).
    for (const limiter of limiters) for (const { key } of senders) assert.equal(await limiter.restriction(key, now), null);

    const started = performance.now();
    const settled = await Promise.allSettled(
      limiters.flatMap((limiter) =>
        senders.flatMap(({ key }) =>
          Array.from({ length: perClient }, () => limiter.consume({ key, internalRecipients: 0, externalRecipients: 1, limits, now }).then((r) => ({ key, counted: r.counted }))),
        ),
      ),
    );
    const ms = Math.round(performance.now() - started);
    const failures = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    assert.deepEqual(failures.slice(0, 3).map((f) => String(f.reason)), [], `${failures.length} consumes failed`);
    for (const { key, node } of senders) {
      const results = settled.flatMap((s) => (s.status === 'fulfilled' && s.value.key === key ? [s.value] : []));
      const counted = results.filter((r) => r.counted).length;
      t.diagnostic(`:${node.port}: ${counted} counted, ${results.length - counted} refused of ${results.length}`);
      assert.equal(results.length, 4 * perClient);
      assert.equal(counted, limit, `exactly the limit is counted for the sender on :${node.port}`);
    }
    t.diagnostic(`${settled.length} consumes in ${ms} ms`);

    // On the masters themselves: each sender's hash is on its own master only; its minute window
    // holds exactly the limit (the next message sees it, through another client).
    for (const { key, slot, node } of senders) {
      const [w] = keyNames(prefix, key);
      for (const other of cluster.nodes) {
        // This test's keys only: another test's key may share the slot by chance.
        const local = (await nodeClient(other).cluster('GETKEYSINSLOT', slot, 100) as string[]).filter((name) => name.startsWith(prefix));
        if (other === node) assert.deepEqual(local, [w!], `the keys of slot ${slot} on :${other.port}`);
        else assert.deepEqual(local, [], `no key of slot ${slot} on :${other.port}`);
      }
      // The next one is refused with used = limit, through another client.
      const next = await limiters[3]!.consume({ key, internalRecipients: 0, externalRecipients: 1, limits, now });
      assert.deepEqual(next, { restriction: null, breaches: [{ window: 'messagesPerMinute', limit, used: limit, action: 'block', set: 'concurrency' }], counted: false });
    }
  });

  it('sender keys with braces and % stay in one slot (escaped), so the script is not CROSSSLOT', { timeout: 30_000 }, async () => {
    const cluster = await sharedCluster();
    const client = await clusterClient();
    const prefix = 'cluster-braces:';
    const limiter = createRedisRateLimiter({ client, prefix, commandTimeoutMs: 10_000 });
    const limits: LimitSet[] = [{ name: 'one', messagesPerMinute: 1, action: 'block-user' }];
    const now = new Date();
    for (const key of [`}${randomUUID()}{x@contoso.com`, `{${randomUUID()}}@contoso.com`, `${randomUUID()}%7D}@contoso.com`]) {
      const slots = await Promise.all(keyNames(prefix, key).map((name) => keySlot(cluster, name)));
      assert.equal(new Set(slots).size, 1, `${key}: ${slots.join(', ')}`);
      assert.equal((await limiter.consume({ key, internalRecipients: 1, externalRecipients: 1, limits, now, messageId: 'm1' })).counted, true);
      assert.equal((await limiter.consume({ key, internalRecipients: 1, externalRecipients: 1, limits, now, messageId: 'm2' })).counted, false);
      assert.equal((await limiter.restriction(key, now))?.until, null);
      assert.ok((await limiter.restricted(now)).some((r) => r.key === key));
      assert.equal(await limiter.release(key), true);
    }
  });
});

describe('redis cluster: restrictions across masters', () => {
  it('restricted() lists senders restricted on every master; release() through another client lifts them', { timeout: 60_000 }, async (t) => {
    const cluster = await sharedCluster();
    const prefix = 'cluster-restrict:';
    const indexKey = `${prefix}restricted`;
    const indexNode = await cluster.nodeForSlot(await keySlot(cluster, indexKey));
    const senders = await sendersOnEveryMaster(cluster, prefix, 'restricted');
    t.diagnostic(`index on :${indexNode.port}; senders on ${senders.map((s) => `:${s.node.port}`).join(', ')}`);
    assert.ok(senders.some((s) => s.node !== indexNode), 'some restriction lives on another master than the index');

    const a = createRedisRateLimiter({ client: await clusterClient(), prefix, commandTimeoutMs: 10_000 });
    const b = createRedisRateLimiter({ client: await clusterClient(), prefix, commandTimeoutMs: 10_000 });
    const now = new Date();
    const actions = ['block-user', 'block-user-for-today', 'block-user'] as const;
    const limitsOf = (i: number): LimitSet[] => [{ name: `set-${i}`, messagesPerMinute: 1, action: actions[i]! }];
    for (const [i, { key }] of senders.entries()) {
      assert.equal((await a.consume({ key, internalRecipients: 0, externalRecipients: 1, limits: limitsOf(i), now })).counted, true);
      const refused = await a.consume({ key, internalRecipients: 0, externalRecipients: 1, limits: limitsOf(i), now });
      assert.equal(refused.counted, false);
      assert.equal(refused.breaches[0]?.action, actions[i]);
    }
    const mine = async (limiter: RedisRateLimiter, at: Date) => {
      const keys = new Set(senders.map((s) => s.key));
      return (await limiter.restricted(at)).filter((r) => keys.has(r.key));
    };
    const midnight = new Date((Math.floor(now.getTime() / 86_400_000) + 1) * 86_400_000).toISOString();

    // The other client lists all three, each with its restriction as restriction() reads it.
    const listed = await mine(b, now);
    assert.deepEqual(
      listed.map((r) => r.key).sort(),
      senders.map((s) => s.key).sort(),
    );
    for (const [i, { key }] of senders.entries()) {
      const entry = listed.find((r) => r.key === key)!;
      assert.equal(entry.until, i === 1 ? midnight : null);
      assert.match(entry.reason ?? '', new RegExp(`messagesPerMinute.*"set-${i}".*${actions[i]}`));
      assert.deepEqual(entry, { key, ...(await a.restriction(key, now)) });
    }
    // The restriction hashes are on the senders' masters; the index on its own.
    for (const { key, node } of senders) {
      assert.equal(await nodeClient(node).hexists(keyNames(prefix, key)[0]!, 'rm'), 1, `${key}'s restriction on :${node.port}`);
    }
    assert.equal(await nodeClient(indexNode).zcard(indexKey), 3);

    // Released through b: gone for a, from the listing and from the index.
    assert.equal(await b.release(senders[1]!.key), true);
    assert.equal(await b.release(senders[1]!.key), false);
    assert.equal(await a.restriction(senders[1]!.key, now), null);
    assert.deepEqual((await mine(a, now)).map((r) => r.key).sort(), [senders[0]!.key, senders[2]!.key].sort());
    assert.equal(await nodeClient(indexNode).zscore(indexKey, senders[1]!.key), null);
    // Released, the sender is free again once its minute has passed.
    const later = new Date(now.getTime() + 61_000);
    assert.equal((await a.consume({ key: senders[1]!.key, internalRecipients: 0, externalRecipients: 1, limits: limitsOf(1), now: later })).counted, true);

    // A restriction whose key vanished on its master (e.g. deleted by hand) is dropped from the
    // index on the other master by the next restricted().
    const vanished = senders[2]!;
    assert.equal(await nodeClient(vanished.node).hdel(keyNames(prefix, vanished.key)[0]!, 'rm', 'rw', 'rs', 'rc'), 4);
    assert.deepEqual((await mine(b, now)).map((r) => r.key), [senders[0]!.key]);
    assert.equal(await nodeClient(indexNode).zscore(indexKey, vanished.key), null);

    // Still restricted until released; consume sees it on its master.
    const blocked = await b.consume({ key: senders[0]!.key, internalRecipients: 0, externalRecipients: 1, limits: limitsOf(0), now: later });
    assert.equal(blocked.counted, false);
    assert.equal(blocked.restriction?.until, null);
    assert.equal(await a.release(senders[0]!.key), true);
    assert.deepEqual(await mine(b, now), []);
    assert.equal(await nodeClient(indexNode).zcard(indexKey), 0);
  });
});

describe('redis cluster: the tenant cap across processes', () => {
  it('4 processes × 5,000 concurrent decisions of one tenant, senders on every master, count exactly its cap (reserve, then refund)', { timeout: 120_000 }, async (t) => {
    const cluster = await sharedCluster();
    const prefix = 'cluster-tenant:';
    const key = `${randomUUID()}:tenant-burst@contoso.com`;
    const tenant = `${randomUUID()}.tenant`;
    const cap = 1_000;
    const perWorker = 5_000;
    const senders = 20;
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    // The senders' hashes are spread over the masters; the tenant's lives in a slot of its own.
    const masters = new Set<number>();
    for (let s = 0; s < senders; s++) masters.add((await cluster.nodeForSlot(await keySlot(cluster, keyNames(prefix, `${key}:${s}`)[0]!))).port);
    assert.equal(masters.size, 3, 'the senders are on all three masters');
    const results = await runTenantWorkers({ cluster: cluster.startupNodes.map(({ host, port }) => ({ host, port })), key, tenant, cap, senders, total: perWorker, batch: 1_000, now: now.toISOString(), prefix });
    const sum = (f: (r: TenantWorkerResult) => number) => results.reduce((total, r) => total + f(r), 0);
    t.diagnostic(`per process (counted/tenant-refused/refused/failed, ms): ${results.map((r) => `${r.counted}/${r.tenantRefused}/${r.refused}/${r.failed} ${r.ms} ms`).join('; ')}`);
    assert.equal(sum((r) => r.failed), 0);
    assert.equal(sum((r) => r.refused), 0);
    assert.equal(sum((r) => r.counted), cap, 'exactly the cap is counted across processes');
    assert.equal(sum((r) => r.tenantRefused), 4 * perWorker - cap);
    // Both or neither: the senders' day windows, on their masters, hold exactly the cap.
    const limiter = createRedisRateLimiter({ client: await clusterClient(), prefix, commandTimeoutMs: 10_000 });
    let used = 0;
    for (let s = 0; s < senders; s++) {
      const probe = await limiter.consume({ key: `${key}:${s}`, internalRecipients: 0, externalRecipients: 0, limits: [{ name: 'probe', recipientsPerDay: -1, action: 'block' }], now });
      used += probe.breaches[0]!.used;
    }
    assert.equal(used, cap, "the senders' windows hold the tenant's count");
    const loose: LimitSet[] = [{ name: 'loose', messagesPerMinute: 1_000_000, action: 'block' }];
    // A sender's refusal takes the tenant's reservation back: the cap is still exactly full.
    const next = await limiter.consume({ key: `${key}:0`, internalRecipients: 0, externalRecipients: 1, limits: loose, tenant: { key: tenant, externalRecipientsPerDay: cap }, now });
    assert.deepEqual(next.tenantBreach, { tenant, limit: cap, used: cap });
    const other = `${randomUUID()}.tenant`;
    const one: LimitSet[] = [{ name: 'one', messagesPerMinute: 1, action: 'block' }];
    const fresh = `${randomUUID()}@contoso.com`;
    assert.equal((await limiter.consume({ key: fresh, internalRecipients: 0, externalRecipients: 1, limits: one, tenant: { key: other, externalRecipientsPerDay: 2 }, now })).counted, true);
    assert.equal((await limiter.consume({ key: fresh, internalRecipients: 0, externalRecipients: 1, limits: one, tenant: { key: other, externalRecipientsPerDay: 2 }, now })).counted, false);
    assert.equal((await limiter.consume({ key: `${randomUUID()}@contoso.com`, internalRecipients: 0, externalRecipients: 1, limits: one, tenant: { key: other, externalRecipientsPerDay: 2 }, now })).counted, true, 'the refused message gave its reservation back');
    await limiter.close();
  });
});

describe('redis cluster: a consume that timed out may still count', () => {
  it("the sender's master stalls past the timeout: late says what it did; a reservation is kept when it counted, refunded when not", { timeout: 60_000 }, async (t) => {
    const cluster = await sharedCluster();
    const prefix = `cluster-late-${randomUUID()}:`;
    const tenant = `${randomUUID()}.tenant`;
    const tenantNode = await cluster.nodeForSlot(await keySlot(cluster, `${prefix}tenant:{${tenant}}`));
    // A sender whose hash is on another master than the tenant's: that master is the one stalled.
    let key = '';
    let senderNode: ClusterNode | undefined;
    for (let attempt = 0; senderNode === undefined; attempt++) {
      assert.ok(attempt < 200, 'no sender key on another master than the tenant');
      const candidate = `${randomUUID()}:late${attempt}@contoso.com`;
      const node = await cluster.nodeForSlot(await keySlot(cluster, keyNames(prefix, candidate)[0]!));
      if (node.port !== tenantNode.port) [key, senderNode] = [candidate, node];
    }
    const client = await clusterClient();
    const limiter = createRedisRateLimiter({ client, prefix, commandTimeoutMs: 200 });
    const now = new Date(Date.UTC(2031, 0, 6, 10));
    const one: LimitSet[] = [{ name: 'one', messagesPerMinute: 1, action: 'block' }];
    const request = { key, internalRecipients: 0, externalRecipients: 1, limits: one, tenant: { key: tenant, externalRecipientsPerDay: 1_000 }, now };
    /** The tenant's external recipients: a probe its cap of 0 refuses (nothing counted). */
    const tenantSent = async (): Promise<number> =>
      (await limiter.consume({ key: `probe-${randomUUID()}`, internalRecipients: 0, externalRecipients: 1, limits: [], tenant: { key: tenant, externalRecipientsPerDay: 0 }, now })).tenantBreach!.used;
    /** consume with the sender's master stalled until the limiter gives up; its late answer once the master runs again. */
    const stalled = async () => {
      senderNode!.pause();
      let error: unknown;
      try {
        await limiter.consume(request);
      } catch (caught) {
        error = caught;
      } finally {
        senderNode!.resume();
      }
      assert.equal((error as { code?: unknown } | undefined)?.code, 'ETIMEDOUT', `consume did not time out: ${String(error)}`);
      const late = (error as { late?: unknown }).late;
      assert.ok(late instanceof Promise, 'the timeout carries no late answer');
      return (await late) as { counted: boolean };
    };
    /** Polls the tenant's count until it is `expected` (up to 5 s); answers the last count. */
    const tenantReaches = async (expected: number): Promise<number> => {
      const started = performance.now();
      let count = await tenantSent();
      while (count !== expected && performance.now() - started < 5_000) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        count = await tenantSent();
      }
      return count;
    };
    try {
      assert.equal(await tenantSent(), 0);
      // Counted late: the reservation stays (the tenant has 1), and a refund takes both back.
      const counted = await stalled();
      assert.equal(counted.counted, true);
      assert.equal(await tenantReaches(1), 1);
      await limiter.refund(request);
      assert.equal(await tenantReaches(0), 0);
      // Counted for good, then one the sender's limit refuses late: its reservation is refunded.
      assert.equal((await limiter.consume(request)).counted, true);
      const refused = await stalled();
      assert.equal(refused.counted, false);
      const after = await tenantReaches(1);
      t.diagnostic(`the tenant after a late refusal: ${after}`);
      assert.equal(after, 1, 'the reservation of a message the sender refused late was kept');
    } finally {
      senderNode!.resume();
      await limiter.close();
      client.disconnect();
    }
  });
});
