// Soak (SPEC §6): 10,000,000 realistic decisions (bench/lib/messages.mjs: 2–4 KB header blocks,
// a fresh Message-ID each) over 1,000,000 senders, through createDecider with the memory limiter
// at its defaults (maxSenders 100,000, maxMessageIdsPerSender 100) counting every message.
// Every 1,000,000 decisions: the heap after a full collection, and the limiter's senders against
// its bound. Not part of bench/run.mjs (it takes many minutes): run it on its own, e.g.
//   node bench/soak.mjs [decisions] [senders]
// It re-runs itself with --expose-gc.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { generateWorkload } from './lib/messages.mjs';

if (typeof globalThis.gc !== 'function') {
  const { status } = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(status ?? 1);
}
const total = Number(process.argv[2] ?? 10_000_000);
const senderCount = Number(process.argv[3] ?? 1_000_000);
const { createDecider, createMemoryRateLimiter, createPolicy, createStaticResolver, presets, Srs } = await import('../dist/index.js');
const workload = generateWorkload();
const policy = createPolicy({ acceptedDomains: workload.accepted, spam: { threshold: 5 }, limits: [presets.exchangeOnline, presets.outboundSpamStandard] });
const limiter = createMemoryRateLimiter();
const decide = createDecider({
  policy,
  providers: {
    dns: createStaticResolver(workload.zone),
    spam: { classify: (message) => workload.verdictsOf(message.mailFrom).spam },
    authenticator: { authenticate: (message) => workload.verdictsOf(message.mailFrom).authentication },
    rateLimiter: limiter,
  },
  srs: { rewriter: new Srs({ secret: 'bench-secret' }), domain: 'contoso.com' },
});
const MB = 1024 * 1024;
const heap = () => {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed / MB;
};
const base = Date.parse('2026-12-07T00:00:00Z');
const fmt = (n) => Math.round(n).toLocaleString('en-US');
// A line every 1,000,000 decisions (every tenth of a shorter run).
const every = Math.min(1_000_000, Math.ceil(total / 10));
const start = heap();
const cpuStart = process.cpuUsage();
let refused = 0;
let maxSenders = 0;
console.log(`soak: ${fmt(total)} decisions over ${fmt(senderCount)} senders; memory limiter maxSenders ${fmt(limiter.stats().maxSenders)}; heap after GC at start ${start.toFixed(1)} MB`);
for (let n = 0; n < total; n++) {
  const message = workload.message(n);
  // Spread the workload's messages over `senderCount` senders of the same domain.
  if (message.mailFrom !== '') {
    const domain = message.mailFrom.slice(message.mailFrom.indexOf('@') + 1);
    message.mailFrom = `u${(Math.imul(n, 2654435761) >>> 0) % senderCount}@${domain}`;
  }
  const decision = await decide(message, { now: new Date(base + n * 50) });
  if (decision.reasons[0]?.code === 'sending-limit-exceeded' || decision.reasons[0]?.code === 'sender-restricted') refused++;
  if ((n + 1) % every === 0) {
    const { senders, maxSenders: bound } = limiter.stats();
    maxSenders = Math.max(maxSenders, senders);
    const cpu = process.cpuUsage(cpuStart);
    console.log(`${fmt(n + 1)} decisions: heap after GC ${heap().toFixed(1)} MB, limiter ${fmt(senders)} senders (bound ${fmt(bound)}), ${refused} refused by limits, ${fmt((n + 1) / ((cpu.user + cpu.system) / 1e6))} decisions per CPU-second so far`);
  }
}
console.log(`done: at most ${fmt(maxSenders)} senders kept (bound ${fmt(limiter.stats().maxSenders)}): ${maxSenders <= limiter.stats().maxSenders ? 'within' : 'OVER'} the bound`);
