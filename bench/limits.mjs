// The in-memory rate limiter: (a) a soak of 1,000,000 distinct senders through a limiter bound
// to 100,000, printing the heap before and after and checking the bound (SPEC §6: every limiter
// bounded); (b) consume/s; (c) decisions/s through createDecider with the memory limiter, beside
// the same decider with a stub limiter. Re-runs itself with --expose-gc to measure the heap
// after a full collection.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { benchmark, quantile, asyncInProcess } from './lib/measure.mjs';

if (typeof globalThis.gc !== 'function' && process.env.OUTBOUND_POOLS_BENCH_GC !== '1') {
  const { status } = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, OUTBOUND_POOLS_BENCH_GC: '1' },
  });
  process.exit(status ?? 1);
}

const quick = process.argv.includes('--quick');
const api = await import('../dist/index.js');
// Until src/index.ts exports it, take the limiter from its module.
const createMemoryRateLimiter = api.createMemoryRateLimiter ?? (await import('../dist/providers/memory-limiter.js')).createMemoryRateLimiter;
const { createDecider, createPolicy, createStaticResolver, presets } = api;

const MB = 1024 * 1024;
const heapUsed = () => {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
};
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const base = Date.parse('2026-11-23T09:00:00.000Z');
const limits = createPolicy({ acceptedDomains: ['contoso.com'], limits: [presets.exchangeOnline, presets.outboundSpamStandard] }).limits;

// (a) Soak: distinct senders, one message each (with a message id), the clock moving 1 ms a message.
{
  const senders = quick ? 200_000 : 1_000_000;
  const maxSenders = quick ? 20_000 : 100_000;
  const limiter = createMemoryRateLimiter({ maxSenders });
  const before = heapUsed();
  let maxSeen = 0;
  let counted = 0;
  const start = performance.now();
  for (let i = 0; i < senders; i++) {
    const result = await limiter.consume({
      key: `user${i}@sender${i % 1000}.example`,
      messageId: `<${i}@sender${i % 1000}.example>`,
      internalRecipients: 1,
      externalRecipients: 2,
      limits,
      now: new Date(base + i),
    });
    if (result.counted) counted++;
    if ((i & 0x3fff) === 0) maxSeen = Math.max(maxSeen, limiter.stats().senders);
  }
  const seconds = (performance.now() - start) / 1000;
  maxSeen = Math.max(maxSeen, limiter.stats().senders);
  const after = heapUsed();
  const within = maxSeen <= maxSenders;
  console.log(`soak: ${fmt(senders)} distinct senders through maxSenders ${fmt(maxSenders)} in ${seconds.toFixed(1)} s (${fmt(senders / seconds)} consume/s), ${fmt(counted)} counted`);
  console.log(`  heap used before ${(before / MB).toFixed(1)} MB, after ${(after / MB).toFixed(1)} MB (+${((after - before) / MB).toFixed(1)} MB, ~${fmt((after - before) / maxSenders)} bytes per kept sender)`);
  console.log(`  senders kept: at most ${fmt(maxSeen)}, now ${fmt(limiter.stats().senders)}: ${within ? 'within' : 'OVER'} the bound`);
  if (!within) process.exitCode = 1;
  // Keep the limiter alive until after the measurement.
  if (limiter.stats().senders < 0) console.log('unreachable');
}

// (b) consume/s and (c) decisions/s.
const SENDERS = 10_000;
const keys = Array.from({ length: SENDERS }, (_, i) => `user${i}@sender${i % 50}.example`);
const consumeLimiter = createMemoryRateLimiter({ maxSenders: SENDERS });
let clock = base;
let n = 0;

const policy = createPolicy({ acceptedDomains: ['contoso.com', '*.contoso.com'], spam: { threshold: 5 }, limits: [presets.exchangeOnline, presets.outboundSpamStandard] });
const zone = {};
for (let i = 0; i < 50; i++) zone[`sender${i}.example`] = { MX: [{ exchange: `mx.sender${i}.example`, priority: 10 }] };
zone['contoso.com'] = { MX: [{ exchange: 'mx.contoso.com', priority: 10 }] };
const common = {
  dns: createStaticResolver(zone),
  spam: { classify: async (message) => ({ score: message.mailFrom.startsWith('spam') ? 9.1 : 0.5 }) },
  authenticator: {
    authenticate: async (message) => {
      const domain = message.mailFrom.split('@')[1];
      return { spf: { result: domain.endsWith('0.example') ? 'fail' : 'pass', domain } };
    },
  },
};
const memoryLimiter = createMemoryRateLimiter({ maxSenders: SENDERS });
const withMemory = createDecider({ policy, providers: { ...common, rateLimiter: memoryLimiter } });
const withStub = createDecider({
  policy,
  providers: { ...common, rateLimiter: { consume: async () => ({ restriction: null, breaches: [], counted: true }), restriction: async () => null } },
});
const messages = keys.map((mailFrom, i) => ({ mailFrom: i % 7 === 0 ? `spam${mailFrom}` : mailFrom, rcptTo: [`rcpt${i}@northwind.example`, `colleague${i}@contoso.com`] }));

// Each sender gets a message every 10,000 operations, the clock moving 10 ms per operation:
// one per 100 s, well inside every preset limit, so the counting path is what is measured.
const asyncCase = (name, op) => asyncInProcess(name, 100, () => op(n++ % SENDERS, new Date((clock += 10))));
const idLimiter = createMemoryRateLimiter({ maxSenders: SENDERS });
const consumeCase = asyncCase('consume (2 limit sets)', (i, now) => consumeLimiter.consume({ key: keys[i], internalRecipients: 1, externalRecipients: 1, limits, now }));
// Every message with its own id: up to 100 ids remembered per sender, 1,000,000 in all.
const idCase = asyncCase('consume (2 limit sets, message ids)', (i, now) =>
  idLimiter.consume({ key: keys[i], messageId: `<${n}@bench>`, internalRecipients: 1, externalRecipients: 1, limits, now }),
);
const stubCase = asyncCase('createDecider, stub limiter', (i, now) => withStub(messages[i], { now }));
const memoryCase = asyncCase('createDecider, memory limiter', (i, now) => withMemory(messages[i], { now }));

const samples = await benchmark([consumeCase, idCase, stubCase, memoryCase], quick ? { warmupMs: 200, roundMs: 100, rounds: 5 } : { warmupMs: 1000, roundMs: 250, rounds: 20 });

const outcomes = new Map();
for (let i = 0; i < 1000; i++) {
  const decision = await withMemory(messages[i], { now: new Date((clock += 10)) });
  const label = decision.action === 'deliver' ? decision.pool : `${decision.action} (${decision.reasons[0]?.code})`;
  outcomes.set(label, (outcomes.get(label) ?? 0) + 1);
}
console.log(`\nlimits: ${limits.map((set) => set.name).join(' + ')}; ${fmt(SENDERS)} senders in rotation; last 1,000 decisions: ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')}`);
console.log('\ncase                                      median ops/s    IQR');
for (const [name, values] of samples) {
  const median = quantile(values, 0.5);
  const iqr = (quantile(values, 0.75) - quantile(values, 0.25)) / median;
  console.log(`${name.padEnd(42)}${fmt(median).padStart(12)}${`${Math.round(iqr * 100)}%`.padStart(7)}`);
}
const decisions = quantile(samples.get('createDecider, memory limiter'), 0.5);
console.log(`\n[idealised: envelopes without headers, not the SPEC §6 target, which bench/decide.mjs measures on realistic messages] createDecider with the memory limiter: ${fmt(decisions)} decisions/s, one core, wall clock`);
console.log(`limiter state after the run: ${fmt(memoryLimiter.stats().senders)} senders (bound ${fmt(SENDERS)}), ${fmt(consumeLimiter.stats().senders)} in the consume case`);

// Redis: the same decisions through createRedisRateLimiter, many in flight at once (an MTA
// decides concurrently; ioredis pipelines the scripts of concurrent calls on one connection).
const { startRedis, hasRedisServer, REDIS_MISSING } = await import('./lib/redis.mjs');
if (!hasRedisServer()) {
  console.log(`\nRedis limiter: not measured: ${REDIS_MISSING}`);
} else {
  const redis = await startRedis();
  const redisLimiter = (await import('../dist/redis/index.js')).createRedisRateLimiter({ url: redis.url, prefix: `bench-${process.pid}:` });
  try {
    const withRedis = createDecider({ policy, providers: { ...common, rateLimiter: redisLimiter } });
    const concurrency = 64;
    const total = quick ? 5_000 : 40_000;
    let next = 0;
    const clockStart = base + 10 * 86_400_000;
    const run = async (count) => {
      const failures = { n: 0 };
      const worker = async () => {
        for (let i = next++; i < count; i = next++) {
          const decision = await withRedis(messages[i % SENDERS], { now: new Date(clockStart + i) });
          if (decision.reasons.some((reason) => reason.code === 'provider-failed')) failures.n++;
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      return failures.n;
    };
    next = 0;
    await run(quick ? 500 : 2_000); // warm-up: connection, script load, JIT
    next = 0;
    const start = performance.now();
    const failed = await run(total);
    const seconds = (performance.now() - start) / 1000;
    console.log(`\nRedis limiter (real redis-server on loopback, ${concurrency} decisions in flight): ${fmt(total / seconds)} decisions/s over ${fmt(total)} decisions, ${failed} provider failures`);
  } finally {
    await redisLimiter.close();
    await redis.stop();
  }
}
