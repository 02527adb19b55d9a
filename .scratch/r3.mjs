import { Redis } from 'ioredis';
import { startRedis } from '../bench/lib/redis.mjs';
import { readFileSync } from 'node:fs';
const { consumeScript } = await import('../dist/redis/consume-script.js');
const { presets } = await import('../dist/index.js');
const lua = consumeScript([presets.exchangeOnline, presets.outboundSpamStandard], 100);
const redis = await startRedis();
const c = new Redis(redis.url);
const cut = (marker) => { const i = lua.indexOf(marker); return lua.slice(0, i) + '\nreturn 0\n'; };
const drop = (...lines) => lines.reduce((body, line) => { if (!body.includes(line)) throw new Error(line); return body.replace(line, '-- dropped'); }, lua);
const swap = (line, by) => { if (!lua.includes(line)) throw new Error(line); return lua.replace(line, by); };
const variants = {
  full: lua,
  noHgetall: swap("local flat = redis.call('HGETALL', KEYS[1])", "local flat = {}"),
  noHset: swap("redis.call('HSET', KEYS[1], unpack(set))", ""),
  noIds: swap("if id ~= '' then\n    redis.call('ZADD'", "if false then\n    redis.call('ZADD'"),
  noIdCheck: swap("  local at = redis.call('ZSCORE', KEYS[3], id)", "local at = false"),
  noRestrCheck: swap("local r = redis.call('HMGET', KEYS[2], 'u', 'um', 'why')", "local r = {}"),
  returnAtStart: 'return 0',
};
const limitsArgs = ['"exchange-online"', 'block', 30, -1, -1, 10000, '"outbound-spam-standard"', 'block-user', -1, 1000, 500, 1000];
const base = Date.parse('2026-12-07T00:00:00Z');
const shas = {};
for (const [name, body] of Object.entries(variants)) shas[name] = await c.script('LOAD', body);
shas.rlflx = await c.script('LOAD', `local ok = redis.call('set', KEYS[1], 0, 'EX', ARGV[2], 'NX') local consumed = redis.call('incrby', KEYS[1], ARGV[1]) local ttl = redis.call('pttl', KEYS[1]) if ttl == -1 then redis.call('expire', KEYS[1], ARGV[2]) ttl = 1000 * ARGV[2] end return {consumed, ttl}`);
const results = {};
for (let round = 0; round < 5; round++) {
  for (const name of Object.keys(shas)) {
    await c.config('RESETSTAT');
    let n = 0;
    await Promise.all(Array.from({ length: 16 }, async () => { while (n < 3000) { const i = n++; if (name === 'rlflx') await c.evalsha(shas[name], 1, `rl${i % 1000}`, 1, 60); else await c.evalsha(shas[name], 3, `p{user${i % 1000}}:w-${name}`, `p{user${i % 1000}}:r`, `p{user${i % 1000}}:ids-${name}`, base + (round * 3000 + i) * 50, 1, 1, String(1e15 + round * 3000 + i), base + 86400000, 'x'); } }));
    const stats = (await c.info('commandstats')).split('\n').find((l) => l.startsWith('cmdstat_evalsha'));
    (results[name] ??= []).push(Number(stats.match(/usec_per_call=([\d.]+)/)[1]));
  }
}
for (const [name, xs] of Object.entries(results)) { xs.sort((a, b) => a - b); console.log(name.padEnd(14), 'min', xs[0], 'median', xs[2]); }
c.disconnect(); await redis.stop();
