// Not part of bench/run.mjs (its name says so): a steady loop of realistic decisions through
// createDecider with the memory limiter, for a CPU profile. Usage:
//   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-decide.mjs [decisions] [--no-headers]
//   node bench/lib/profile-summary.mjs /tmp/prof/*.cpuprofile
import { generateWorkload } from './lib/messages.mjs';

const total = Number(process.argv[2] ?? 300_000);
const headers = !process.argv.includes('--no-headers');
// OUTBOUND_POOLS_DIST: another build to profile (e.g. an older one), default ../dist.
const dist = process.env.OUTBOUND_POOLS_DIST ?? new URL('../dist', import.meta.url).pathname;
const { createDecider, createMemoryRateLimiter, createPolicy, createStaticResolver, presets, Srs } = await import(`${dist}/index.js`);
const workload = generateWorkload();
const policy = createPolicy({ acceptedDomains: workload.accepted, spam: { threshold: 5 }, limits: [presets.exchangeOnline, presets.outboundSpamStandard] });
const decide = createDecider({
  policy,
  providers: {
    dns: createStaticResolver(workload.zone),
    spam: { classify: (message) => workload.verdictsOf(message.mailFrom).spam },
    authenticator: { authenticate: (message) => workload.verdictsOf(message.mailFrom).authentication },
    rateLimiter: createMemoryRateLimiter(),
  },
  srs: { rewriter: new Srs({ secret: 'bench-secret' }), domain: 'contoso.com' },
});
const base = Date.parse('2026-12-07T00:00:00Z');
const start = process.cpuUsage();
let refused = 0;
for (let k = 0; k < total; k++) {
  const decision = await decide(headers ? workload.message(k) : workload.envelope(k), { now: new Date(base + k * 50) });
  if (decision.action !== 'deliver') refused++;
}
const cpu = process.cpuUsage(start);
console.log(`${total} decisions (${headers ? 'realistic headers' : 'no headers'}), ${refused} not delivered, ${Math.round(total / ((cpu.user + cpu.system) / 1e6)).toLocaleString('en-US')} per CPU-second`);
