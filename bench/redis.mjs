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
// The limiter alone, asked what the decider asks it for the same message: the sender key, the
// message's fresh id, its internal and external recipients, the policy's two limit sets.
const acceptedDomains = new Set(workload.accepted);
let l = 0;
const oneLimiterCall = async () => {
  const n = l++;
  const envelope = workload.envelope(n);
  let internal = 0;
  for (const rcpt of envelope.rcptTo) if (acceptedDomains.has(rcpt.slice(rcpt.lastIndexOf('@') + 1))) internal++;
  const key = envelope.submitter ?? (envelope.mailFrom.toLowerCase() || '<>');
  const result = await ours.consume({ key, messageId: `<${n}.limiter@contoso.com>`, internalRecipients: internal, externalRecipients: envelope.rcptTo.length - internal, limits: policy.limits, now: new Date(base + n * 50) });
  if (!result.counted) notCounted++;
};
let notCounted = 0;
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

/** CPU microseconds per call of the last closedLoop, this process and redis-server together, and redis-server's share. */
let lastCpuPerCall = 0;
let lastRedisCpuPerCall = 0;

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
  const redisSeconds = (await redisCpu()) - redisBefore;
  lastCpuPerCall = (((node.user + node.system) / 1e6 + redisSeconds) / count) * 1e6;
  lastRedisCpuPerCall = (redisSeconds / count) * 1e6;
  return rate;
}

try {
  // Warm-up: connections, script loads, JIT.
  await closedLoop(oneDecision, quick ? 2_000 : 10_000, 256);
  await closedLoop(oneLimiterCall, quick ? 2_000 : 10_000, 256);
  await closedLoop(oneConsume, quick ? 2_000 : 10_000, 256);
  const rounds = Number(args.rounds ?? (quick ? 5 : 9));
  const perRound = quick ? 5_000 : 10_000;
  // Three cases a round, each starting a round in turn, so that none always gets the same part of it.
  const cases = [
    { name: 'decision', op: oneDecision, rates: [], cpu: [], redisCpu: [] },
    { name: 'limiter', op: oneLimiterCall, rates: [], cpu: [], redisCpu: [] },
    { name: 'theirs', op: oneConsume, rates: [], cpu: [], redisCpu: [] },
  ];
  failed = 0;
  notDelivered = 0;
  notCounted = 0;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(i + r) % cases.length];
      c.rates.push(await closedLoop(c.op, perRound, 256));
      c.cpu.push(lastCpuPerCall);
      c.redisCpu.push(lastRedisCpuPerCall);
    }
  }
  const [decisions, limiter, theirs] = cases;
  const range = (s, digits = 0) => (digits === 0 ? `${fmt(s.median)} (range ${fmt(s.min)}–${fmt(s.max)})` : `${s.median.toFixed(digits)} (range ${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`);
  const ratio = (c) => spread(c.rates.map((x, i) => x / theirs.rates[i]));
  console.log(`${rounds} interleaved rounds of ${fmt(perRound)} calls per case, 256 in flight, wall clock; redis-server on loopback`);
  console.log(`  createDecider + createRedisRateLimiter (2 limit sets, a fresh Message-ID each): ${range(spread(decisions.rates))} decisions/s; ${failed} failed, ${notDelivered} not delivered`);
  console.log(`  createRedisRateLimiter.consume alone (the decider's request: 2 limit sets, id):  ${range(spread(limiter.rates))} consumes/s; ${notCounted} not counted`);
  console.log(`  rate-limiter-flexible RateLimiterRedis.consume (one window):                    ${range(spread(theirs.rates))} consumes/s`);
  const decisionRatio = ratio(decisions);
  const limiterRatio = ratio(limiter);
  console.log(`  ratio per round, whole decisions ÷ their consumes: ${range(decisionRatio, 2)}× — target ≥ 1.0×: ${decisionRatio.median >= 1 ? 'met' : 'NOT met'}`);
  console.log(`  ratio per round, our limiter's consumes ÷ theirs:   ${range(limiterRatio, 2)}×`);
  console.log('  CPU per call, µs, this process + redis-server (of which redis-server):');
  for (const c of cases) console.log(`    ${c.name.padEnd(9)} ${range(spread(c.cpu), 1)} (${range(spread(c.redisCpu), 1)})`);
  if (failures.size > 0) console.log(`  why they failed: ${[...failures].map(([why, n]) => `${n} × ${why}`).join('; ')}`);
  failures.clear();

  // 2. 1,024 in flight over 60,000 decisions: nothing left uncounted.
  const total = quick ? 20_000 : 60_000;
  failed = 0;
  notDelivered = 0;
  const counter = new Redis(redis.url);
  // From an empty database: the count is of remembered ids, at most 100 a sender, and part 1's
  // rounds fill the busiest senders' lists (with --rounds 20, 393 of 60,000 went unseen).
  await counter.flushdb();
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
    // 13 bytes a remembered id (src/redis/consume-script.ts).
    const ids = await Promise.all(keys.map((key) => client.hstrlen(key, 'e')));
    for (const bytes of ids) sum += bytes / 13;
  } while (cursor !== '0');
  return sum;
}
