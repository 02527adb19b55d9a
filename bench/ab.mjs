// Not part of bench/run.mjs: two builds of the library side by side in one process, for a change
// whose effect is smaller than this machine's drift between runs (often ±20 % on shared cores).
// Each build decides the realistic workload (bench/lib/messages.mjs) through createDecider with
// its own memory limiter; the builds take turns in batches of 100 decisions, the one going
// first alternating, each batch timed in CPU microseconds (process.cpuUsage), so both see the
// same seconds of the machine. The ratio (B's decisions per CPU-second ÷ A's) is per round.
//   --async: the rate limiter answers with a promise (the memory limiter's answer, resolved a
//   macrotask later), as a limiter over the network does: the decision's asynchronous path.
//   --no-headers: the envelopes without their header blocks.
// Usage: node bench/ab.mjs A_DIST B_DIST [--rounds N] [--async] [--no-headers]
//   e.g. cp -r dist /tmp/base-dist; (change, npm run build); node bench/ab.mjs /tmp/base-dist dist
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { spread } from './lib/measure.mjs';
import { generateWorkload } from './lib/messages.mjs';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string' }, async: { type: 'boolean' }, 'no-headers': { type: 'boolean' } },
});
if (positionals.length !== 2) {
  console.error('usage: node bench/ab.mjs A_DIST B_DIST [--rounds N] [--async] [--no-headers]');
  process.exit(2);
}
const workload = generateWorkload();
const headers = args['no-headers'] !== true;
const base = Date.parse('2026-12-07T00:00:00Z');

async function side(dist) {
  const lib = await import(`${resolve(dist)}/index.js`);
  const policy = lib.createPolicy({ acceptedDomains: workload.accepted, spam: { threshold: 5 }, limits: [lib.presets.exchangeOnline, lib.presets.outboundSpamStandard] });
  const memory = lib.createMemoryRateLimiter();
  const later = (value) => new Promise((done) => setImmediate(done, value));
  const rateLimiter = args.async ? { consume: (request) => later(memory.consumeSync(request)), restriction: (key, now) => later(memory.restrictionSync(key, now)) } : memory;
  const decide = lib.createDecider({
    policy,
    providers: {
      dns: lib.createStaticResolver(workload.zone),
      spam: { classify: (message) => workload.verdictsOf(message.mailFrom).spam },
      authenticator: { authenticate: (message) => workload.verdictsOf(message.mailFrom).authentication },
      rateLimiter,
    },
    srs: { rewriter: new lib.Srs({ secret: 'bench-secret' }), domain: 'contoso.com' },
  });
  return { decide, k: 0 };
}
const a = await side(positionals[0]);
const b = await side(positionals[1]);

const BATCH = 100;
const IN_FLIGHT = 64;
const inputs = new Array(BATCH);
const micros = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};
/** A batch of decisions: one at a time (sync limiter), or IN_FLIGHT at once (--async). */
async function batch(s) {
  for (let j = 0; j < BATCH; j++) inputs[j] = headers ? workload.message(s.k + j) : workload.envelope(s.k + j);
  const start = micros();
  if (args.async) {
    const pending = [];
    for (let j = 0; j < BATCH; j++) {
      pending.push(s.decide(inputs[j], { now: new Date(base + (s.k + j) * 50) }));
      if (pending.length === IN_FLIGHT) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
  } else {
    for (let j = 0; j < BATCH; j++) await s.decide(inputs[j], { now: new Date(base + (s.k + j) * 50) });
  }
  s.k += BATCH;
  return micros() - start;
}
async function round(pairs) {
  let aMicros = 0;
  let bMicros = 0;
  for (let p = 0; p < pairs; p++) {
    if ((p & 1) === 0) {
      aMicros += await batch(a);
      bMicros += await batch(b);
    } else {
      bMicros += await batch(b);
      aMicros += await batch(a);
    }
  }
  return { a: (pairs * BATCH * 1e6) / aMicros, b: (pairs * BATCH * 1e6) / bMicros };
}
await round(100);
const rounds = [];
for (let r = 0; r < Number(args.rounds ?? 15); r++) rounds.push(await round(40));
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const ra = spread(rounds.map((x) => x.a));
const rb = spread(rounds.map((x) => x.b));
const ratio = spread(rounds.map((x) => x.b / x.a));
console.log(`${rounds.length} rounds, ${headers ? 'realistic messages' : 'no headers'}, ${args.async ? `asynchronous limiter, ${IN_FLIGHT} in flight` : 'one at a time'}; decisions per CPU-second`);
console.log(`  A ${positionals[0]}: ${fmt(ra.median)} (${fmt(ra.min)}–${fmt(ra.max)})`);
console.log(`  B ${positionals[1]}: ${fmt(rb.median)} (${fmt(rb.min)}–${fmt(rb.max)})`);
console.log(`  B ÷ A per round: ${ratio.median.toFixed(3)}× (${ratio.min.toFixed(3)}–${ratio.max.toFixed(3)})`);
