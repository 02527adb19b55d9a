// The Redis rate limiter under load, against a real redis-server on loopback (bench/lib/redis.mjs):
//
// 1. Decisions/s through createDecider with createRedisRateLimiter at 256 in flight, beside
//    rate-limiter-flexible's bare RateLimiterRedis.consume (one window, its documented use: one
//    ioredis client of its own) on the same Redis, in interleaved rounds of the same number of
//    calls; the ratio is taken round by round (median and range). The decisions are the
//    realistic workload's envelopes (bench/lib/messages.mjs) without their header blocks — the
//    header parse is the in-memory bench's business (bench/decide.mjs) — with message ids (each
//    message a fresh id, remembered), two limit sets (the presets), and every message counted.
//    Wall-clock rates: Redis is another process on the same cores; beside them, the CPU time per
//    call of this process and redis-server together (INFO cpu), which a busy machine disturbs less.
// 2. 1,024 decisions in flight over 60,000 decisions: how many failed (fail-open, uncounted),
//    and how many were counted in Redis (each message's fresh id, remembered: ≤ 100 per sender).
// Usage: node bench/redis.mjs [--quick] [--rounds N]
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { spread } from './lib/measure.mjs';
import { generateWorkload } from './lib/messages.mjs';
import { hasRedisServer, REDIS_MISSING, startRedis } from './lib/redis.mjs';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean' }, rounds: { type: 'string' } } });
const quick = args.quick === true;
if (!hasRedisServer()) {
  console.log(`not measured: ${REDIS_MISSING}`);
  process.exit(1);
}
const { createDecider, createPolicy, createStaticResolver, presets } = await import('../dist/index.js');
const { createRedisRateLimiter } = await import('../dist/redis/index.js');

const workload = generateWorkload();
const policy = createPolicy({ acceptedDomains: workload.accepted, spam: { threshold: 5 }, limits: [presets.exchangeOnline, presets.outboundSpamStandard] });
const providers = {
  dns: createStaticResolver(workload.zone),
  spam: { classify: (message) => workload.verdictsOf(message.mailFrom).spam },
  authenticator: { authenticate: (message) => workload.verdictsOf(message.mailFrom).authentication },
};
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const redis = await startRedis();
const ours = createRedisRateLimiter({ url: redis.url, prefix: `bench-${process.pid}:` });
const decide = createDecider({ policy, providers: { ...providers, rateLimiter: ours } });
const theirClient = new Redis(redis.url, { enableOfflineQueue: true });
const theirs = new RateLimiterRedis({ storeClient: theirClient, keyPrefix: `rlflx-${process.pid}`, points: 1_000_000_000, duration: 60 });

const base = Date.parse('2026-12-07T00:00:00Z');
let k = 0;
let failed = 0;
/** Why decisions failed open: message → count. */
const failures = new Map();
let notDelivered = 0;
/** One decision with a fresh Message-ID; the clock 50 ms a decision, as in bench/decide.mjs. */
const oneDecision = async () => {
  const n = k++;
  const envelope = workload.envelope(n);
  // The id as the header would give it, without the header block: counted and remembered.
  const message = { ...envelope, headers: `Message-ID: <${n}.bench@contoso.com>\r\n\r\n` };
  const decision = await decide(message, { now: new Date(base + n * 50) });
  const failure = decision.reasons.find((reason) => reason.code === 'provider-failed');
  if (failure !== undefined) {
    failed++;
    failures.set(failure.message, (failures.get(failure.message) ?? 0) + 1);
  }
  if (decision.action !== 'deliver') notDelivered++;
};
let j = 0;
const oneConsume = async () => {
  const n = j++;
  await theirs.consume(workload.envelope(n).mailFrom || `bounces-${n % 1000}`);
};

/** CPU seconds redis-server has used (INFO cpu: user + system). */
const statsClient = new Redis(redis.url);
async function redisCpu() {
  const info = await statsClient.info('cpu');
  return Number(/used_cpu_user:([\d.]+)/.exec(info)[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)[1]);
}

/** CPU microseconds per call of the last closedLoop, this process and redis-server together. */
let lastCpuPerCall = 0;

/** `count` calls of `op` with `inFlight` running at once; returns calls per wall-clock second. */
async function closedLoop(op, count, inFlight) {
  let started = 0;
  const redisBefore = await redisCpu();
  const nodeBefore = process.cpuUsage();
  const start = performance.now();
  const worker = async () => {
    while (started < count) {
      started++;
      await op();
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const rate = count / ((performance.now() - start) / 1000);
  const node = process.cpuUsage(nodeBefore);
  lastCpuPerCall = ((node.user + node.system) / 1e6 + (await redisCpu()) - redisBefore) / count * 1e6;
  return rate;
}

try {
  // Warm-up: connections, script loads, JIT.
  await closedLoop(oneDecision, quick ? 2_000 : 10_000, 256);
  await closedLoop(oneConsume, quick ? 2_000 : 10_000, 256);
  const rounds = Number(args.rounds ?? (quick ? 5 : 9));
  const perRound = quick ? 5_000 : 10_000;
  const oursRates = [];
  const theirRates = [];
  const oursCpu = [];
  const theirCpu = [];
  failed = 0;
  notDelivered = 0;
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first, so that neither always gets the quieter half of a round.
    if (r % 2 === 0) {
      oursRates.push(await closedLoop(oneDecision, perRound, 256));
      oursCpu.push(lastCpuPerCall);
      theirRates.push(await closedLoop(oneConsume, perRound, 256));
      theirCpu.push(lastCpuPerCall);
    } else {
      theirRates.push(await closedLoop(oneConsume, perRound, 256));
      theirCpu.push(lastCpuPerCall);
      oursRates.push(await closedLoop(oneDecision, perRound, 256));
      oursCpu.push(lastCpuPerCall);
    }
  }
  const ratio = spread(oursRates.map((x, i) => x / theirRates[i]));
  const o = spread(oursRates);
  const t = spread(theirRates);
  console.log(`${rounds} interleaved rounds of ${fmt(perRound)} calls each, 256 in flight, wall clock; redis-server on loopback`);
  console.log(`  createDecider + createRedisRateLimiter (2 limit sets, a fresh Message-ID each): ${fmt(o.median)} decisions/s (range ${fmt(o.min)}–${fmt(o.max)}); ${failed} failed, ${notDelivered} not delivered`);
  console.log(`  rate-limiter-flexible RateLimiterRedis.consume (one window):                    ${fmt(t.median)} consumes/s (range ${fmt(t.min)}–${fmt(t.max)})`);
  console.log(`  ratio per round: ${ratio.median.toFixed(2)}× (range ${ratio.min.toFixed(2)}–${ratio.max.toFixed(2)}) — target ≥ 1.0×: ${ratio.median >= 1 ? 'met' : 'NOT met'}`);
  const oc = spread(oursCpu);
  const tc = spread(theirCpu);
  const cpuRatio = spread(oursCpu.map((x, i) => theirCpu[i] / x));
  console.log(`  CPU per call, this process + redis-server: ours ${oc.median.toFixed(1)} µs (range ${oc.min.toFixed(1)}–${oc.max.toFixed(1)}), theirs ${tc.median.toFixed(1)} µs (range ${tc.min.toFixed(1)}–${tc.max.toFixed(1)}); calls per CPU-second, ours/theirs: ${cpuRatio.median.toFixed(2)}× (range ${cpuRatio.min.toFixed(2)}–${cpuRatio.max.toFixed(2)})`);

  if (failures.size > 0) console.log(`  why they failed: ${[...failures].map(([why, n]) => `${n} × ${why}`).join('; ')}`);
  failures.clear();

  // 2. 1,024 in flight over 60,000 decisions: nothing left uncounted.
  const total = quick ? 20_000 : 60_000;
  failed = 0;
  notDelivered = 0;
  const counter = new Redis(redis.url);
  const before = await countedMessages(counter);
  const rate = await closedLoop(oneDecision, total, 1_024);
  const after = await countedMessages(counter);
  counter.disconnect();
  if (failures.size > 0) console.log(`  why they failed: ${[...failures].map(([why, n]) => `${n} × ${why}`).join('; ')}`);
  console.log(`\n1,024 in flight over ${fmt(total)} decisions: ${fmt(rate)} decisions/s, ${failed} failed open (uncounted), ${notDelivered} not delivered; messages counted in Redis: ${fmt(after - before)} — target 0 uncounted: ${failed === 0 && after - before === total - notDelivered ? 'met' : 'NOT met'}`);
} finally {
  await ours.close();
  theirClient.disconnect();
  statsClient.disconnect();
  await redis.stop();
}

/** Message ids remembered in Redis (our prefix): every counted message had a fresh one. */
async function countedMessages(client) {
  let sum = 0;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `bench-${process.pid}:{*}`, 'COUNT', 1000);
    cursor = next;
    // 29 bytes a remembered id (src/redis/consume-script.ts).
    const ids = await Promise.all(keys.map((key) => client.hstrlen(key, 'd')));
    for (const bytes of ids) sum += bytes / 29;
  } while (cursor !== '0');
  return sum;
}
