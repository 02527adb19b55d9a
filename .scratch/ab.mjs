// A/B: createDecider on realistic messages with the memory limiter, the build before this work
// (/tmp/perf/old/dist) against this one, interleaved rounds, decisions per CPU-second.
import { benchmark, cpuCase, spread } from '../bench/lib/measure.mjs';
import { generateWorkload } from '../bench/lib/messages.mjs';
const workload = generateWorkload();
const base = Date.parse('2026-12-07T00:00:00Z');
async function make(dir, headers) {
  const { createDecider, createMemoryRateLimiter, createPolicy, createStaticResolver, presets, Srs } = await import(`${dir}/index.js`);
  const policy = createPolicy({ acceptedDomains: workload.accepted, spam: { threshold: 5 }, limits: [presets.exchangeOnline, presets.outboundSpamStandard] });
  const decide = createDecider({ policy, providers: { dns: createStaticResolver(workload.zone), spam: { classify: (m) => workload.verdictsOf(m.mailFrom).spam }, authenticator: { authenticate: (m) => workload.verdictsOf(m.mailFrom).authentication }, rateLimiter: createMemoryRateLimiter() }, srs: { rewriter: new Srs({ secret: 'x' }), domain: 'contoso.com' } });
  return (k) => decide(headers ? workload.message(k) : workload.envelope(k), { now: new Date(base + k * 50) });
}
const cases = [
  cpuCase('before, realistic', 100, await make('/tmp/perf/old/dist', true)),
  cpuCase('after, realistic', 100, await make('/work/wt-perf/dist', true)),
  cpuCase('before, no headers', 100, await make('/tmp/perf/old/dist', false)),
  cpuCase('after, no headers', 100, await make('/work/wt-perf/dist', false)),
];
const samples = await benchmark(cases, { warmupMs: 1000, roundMs: 250, rounds: Number(process.argv[2] ?? 12) });
for (const [n, v] of samples) { const s = spread(v); console.log(n.padEnd(22), Math.round(s.median), Math.round(s.min), Math.round(s.max)); }
const r = (a, b) => spread(samples.get(a).map((x, i) => x / samples.get(b)[i]));
const f = (s) => `${s.median.toFixed(2)} (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
console.log('after/before realistic', f(r('after, realistic', 'before, realistic')), ' after/before no headers', f(r('after, no headers', 'before, no headers')));
console.log('realistic/no-headers before', f(r('before, realistic', 'before, no headers')), ' after', f(r('after, realistic', 'after, no headers')));
