import { Redis } from 'ioredis';
import { startRedis } from '/work/wt-perf/bench/lib/redis.mjs';
const { createRedisRateLimiter } = await import('/work/wt-perf/dist/redis/index.js');
const { presets, createPolicy } = await import('/work/wt-perf/dist/index.js');
const redis = await startRedis();
const limits = createPolicy({ acceptedDomains: ['contoso.com'], limits: [presets.exchangeOnline, presets.outboundSpamStandard] }).limits;
const opts = JSON.parse(process.argv[2] ?? '{}');
const ours = createRedisRateLimiter({ url: redis.url, ...opts });
const c = new Redis(redis.url);
const base = Date.parse('2026-12-07T00:00:00Z');
let k = 0;
async function loop(count, inflight) {
  let s = 0; const t = performance.now(); const cpu = process.cpuUsage();
  await Promise.all(Array.from({ length: inflight }, async () => { while (s < count) { const n = s++; await ours.consume({ key: `user${n % 10000}@x.example`, messageId: `<${k++}@x>`, internalRecipients: 1, externalRecipients: 1, limits, now: new Date(base + n * 50) }); } }));
  const c2 = process.cpuUsage(cpu);
  return [Math.round(count / ((performance.now() - t) / 1000)), Math.round((c2.user + c2.system) / count) + 'us node cpu/op'];
}
console.log(await loop(5000, 256));
await c.config('RESETSTAT');
console.log(await loop(20000, 256));
console.log((await c.info('commandstats')).split('\n').filter((l) => /evalsha|zadd|cmdstat_eval/.test(l)).join('\n'));
await ours.close(); c.disconnect(); await redis.stop();
