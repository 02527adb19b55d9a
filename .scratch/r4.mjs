import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { startRedis } from '../bench/lib/redis.mjs';
const { createRedisRateLimiter } = await import('../dist/redis/index.js');
const { presets, createPolicy, createDecider } = await import('../dist/index.js');
const redis = await startRedis();
const policy = createPolicy({ acceptedDomains: ['contoso.com'], limits: [presets.exchangeOnline, presets.outboundSpamStandard] });
const limits = policy.limits;
const opts = JSON.parse(process.argv[2] ?? '{}');
const ours = opts.pipelining === undefined ? createRedisRateLimiter({ url: redis.url }) : createRedisRateLimiter({ client: new Redis(redis.url, { enableAutoPipelining: opts.pipelining }) });
const decide = createDecider({ policy, providers: { rateLimiter: ours } });
const theirs = new RateLimiterRedis({ storeClient: new Redis(redis.url), keyPrefix: 'x', points: 1e9, duration: 60 });
const c = new Redis(redis.url);
const base = Date.parse('2026-12-07T00:00:00Z');
let k = 0;
const ops = {
  ours: (n) => ours.consume({ key: `user${n % 10000}@x.example`, messageId: `<${k++}@x>`, internalRecipients: 1, externalRecipients: 1, limits, now: new Date(base + n * 50) }),
  decide: (n) => decide({ mailFrom: `user${n % 10000}@x.example`, rcptTo: ['a@contoso.com', 'b@example.net'], headers: `Message-ID: <${k++}@x>\r\n\r\n` }, { now: new Date(base + n * 50) }),
  theirs: (n) => theirs.consume(`user${n % 10000}@x.example`),
};
let n0 = 0;
async function loop(op, count, inflight) {
  let s = 0; const t = performance.now(); const cpu = process.cpuUsage();
  await c.config('RESETSTAT');
  await Promise.all(Array.from({ length: inflight }, async () => { while (s < count) { s++; await op(n0++); } }));
  const c2 = process.cpuUsage(cpu);
  const all = (await c.info('commandstats')).split('\n').filter((l) => l.startsWith('cmdstat')).map((l) => l.split(',')[0]).join(' '); const stats = (await c.info('commandstats')).split('\n').find((l) => l.startsWith('cmdstat_evalsha')); console.log(all);
  return `${Math.round(count / ((performance.now() - t) / 1000))}/s node ${((c2.user + c2.system) / count).toFixed(1)}us/op redis ${stats?.match(/usec_per_call=([\d.]+)/)[1]}us/call`;
}
for (const name of Object.keys(ops)) await loop(ops[name], 3000, 256);
for (let r = 0; r < 3; r++) for (const name of Object.keys(ops)) console.log(name.padEnd(7), await loop(ops[name], 10000, 256));
await ours.close(); c.disconnect(); await redis.stop(); process.exit(0);
