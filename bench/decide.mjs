// decidePool throughput: the synchronous core, and the async path with in-memory providers
// (static DNS, an in-memory spam classifier, authenticator and rate limiter), on a mix of
// messages that reaches every pool. Target (SPEC §6): ≥ 300,000 decisions/s on one core.
import { asyncInProcess, benchmark, quantile } from './lib/measure.mjs';

const quick = process.argv.includes('--quick');
const { createDecider, createPolicy, createStaticResolver, decideFromVerdicts, decidePool, Srs } = await import('../dist/index.js');

const policy = createPolicy({
  acceptedDomains: ['contoso.com', '*.contoso.com'],
  spam: { threshold: 5 },
  limits: [{ name: 'exchange-online', messagesPerMinute: 30, recipientsPerDay: 10_000, recipientsPerMessage: 500 }],
});
const zone = {};
for (let i = 0; i < 50; i++) zone[`sender${i}.example`] = { MX: [{ exchange: `mx.sender${i}.example`, priority: 10 }] };
zone['contoso.com'] = { MX: [{ exchange: 'mx.contoso.com', priority: 10 }] };
const dns = createStaticResolver(zone);
const spamScores = new Map([['spam', 9.1]]);
// In-memory providers: verdicts looked up in maps, answered synchronously as the provider
// interfaces allow (MaybePromise); the static resolver offers lookupSync. The async variants
// below show what promises cost.
const spamBySender = new Map();
const authBySender = new Map();
const verdictsFor = (mailFrom) => {
  if (!spamBySender.has(mailFrom)) {
    const domain = mailFrom.split('@')[1] ?? '';
    spamBySender.set(mailFrom, { score: spamScores.get(mailFrom.split('@')[0]) ?? 0.5 });
    authBySender.set(mailFrom, { spf: { result: domain.endsWith('0.example') ? 'fail' : 'pass', domain } });
  }
};
const providers = {
  dns,
  spam: { classify: (message) => spamBySender.get(message.mailFrom) },
  authenticator: { authenticate: (message) => authBySender.get(message.mailFrom) },
  rateLimiter: {
    consume: () => ({ restriction: null, breaches: [], counted: true }),
    restriction: () => null,
  },
};
const asyncProviders = {
  dns: async (name, type) => dns(name, type),
  spam: { classify: async (message) => providers.spam.classify(message) },
  authenticator: { authenticate: async (message) => providers.authenticator.authenticate(message) },
  rateLimiter: { consume: async () => providers.rateLimiter.consume(), restriction: async () => null },
};
const srs = { rewriter: new Srs({ secret: 'bench-secret' }), domain: 'contoso.com' };
const now = new Date('2026-11-23T09:00:00Z');

// A mix: accepted-domain senders, verified and unverified forwards, spam, NDRs.
const messages = [];
for (let i = 0; i < 200; i++) {
  const kind = i % 5;
  const mailFrom = kind === 0 ? `user${i}@contoso.com` : kind === 1 ? '' : kind === 2 ? `spam@sender${i % 50}.example` : `user${i}@sender${i % 50}.example`;
  messages.push({ mailFrom, rcptTo: [`rcpt${i}@northwind.example`, `colleague${i}@contoso.com`] });
}
for (const message of messages) verdictsFor(message.mailFrom);
const verdicts = messages.map((message) => ({
  spam: { state: 'provided', value: { score: message.mailFrom.startsWith('spam@') ? 9.1 : 0.5 } },
  senderDomain: { state: 'provided', value: { domain: 'x', receivesMail: true, basis: 'mx' } },
  authentication: { state: 'provided', value: { spf: { result: 'pass', domain: message.mailFrom.split('@')[1] ?? '' } } },
}));

const decide = createDecider({ policy, providers, srs });
const decideAsync = createDecider({ policy, providers: asyncProviders, srs });
const pools = new Map();
for (const message of messages) {
  const decision = await decide(message, { now });
  pools.set(decision.pool, (pools.get(decision.pool) ?? 0) + 1);
}

let i = 0;
const asyncCase = (name, fn) => asyncInProcess(name, 100, (k) => fn(messages[k % messages.length]));
const cases = [
  {
    name: 'sync core (decideFromVerdicts)',
    run(ms) {
      let ops = 0;
      const start = performance.now();
      let elapsed = 0;
      do {
        for (let k = 0; k < 100; k++) {
          const n = i++ % messages.length;
          decideFromVerdicts(messages[n], verdicts[n], { policy, srs, now });
        }
        ops += 100;
        elapsed = performance.now() - start;
      } while (elapsed < ms);
      return (ops * 1000) / elapsed;
    },
  },
  asyncCase('createDecider, in-memory providers', (message) => decide(message, { now })),
  asyncCase('decidePool, in-memory providers', (message) => decidePool(message, { policy, providers, srs, now })),
  asyncCase('createDecider, the same as async functions', (message) => decideAsync(message, { now })),
];
const samples = await benchmark(cases, quick ? { warmupMs: 200, roundMs: 100, rounds: 5 } : { warmupMs: 1000, roundMs: 200, rounds: 20 });

console.log(`decisions over ${messages.length} messages: ${[...pools].map(([pool, n]) => `${pool ?? 'block'} ${n}`).join(', ')}`);
console.log('\ncase                                      median decisions/s    IQR');
for (const [name, values] of samples) {
  const median = quantile(values, 0.5);
  const iqr = (quantile(values, 0.75) - quantile(values, 0.25)) / median;
  console.log(`${name.padEnd(42)}${Math.round(median).toLocaleString('en-US').padStart(18)}${`${Math.round(iqr * 100)}%`.padStart(7)}`);
}
const viaDecidePool = quantile(samples.get('decidePool, in-memory providers'), 0.5);
const viaDecider = quantile(samples.get('createDecider, in-memory providers'), 0.5);
const fmt = (n) => Math.round(n).toLocaleString('en-US');
console.log(`\ntarget ≥ 300,000 decisions/s through decidePool with in-memory providers: ${viaDecidePool >= 300_000 ? 'met' : 'NOT met'} (decidePool ${fmt(viaDecidePool)}/s, createDecider ${fmt(viaDecider)}/s, one core)`);
