// `outbound-pools restricted list | release | restrict` against a real redis-server
// (test/servers/redis.ts), through the built bin in a child process; the restrictions are made
// and checked with the Redis rate limiter itself.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRedisRateLimiter, type RedisRateLimiter } from '../../src/redis/limiter.js';
import { startRedis, type RedisServer } from '../servers/redis.js';

const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

function run(args: string[], timeoutMs = 30_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    // The command must end by itself: the limiter closed, no handle left open.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`outbound-pools ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('outbound-pools restricted (a real redis-server)', () => {
  let redis: RedisServer;
  let limiter: RedisRateLimiter;
  const prefix = `cli-${randomUUID()}:`;
  const now = '2026-11-23T09:00:00.000Z';
  before(async () => {
    redis = await startRedis();
    limiter = createRedisRateLimiter({ url: redis.url, prefix, commandTimeoutMs: 10_000 });
  });
  after(async () => {
    await limiter?.close();
    await redis?.stop();
  });

  it('lists restrictions with since, cause and until; restricts and releases by hand', { timeout: 60_000 }, async () => {
    const base = ['--redis-url', redis.url, '--prefix', prefix, '--now', now];
    assert.deepEqual(await run(['restricted', 'list', ...base]), { status: 0, stdout: 'no sender is restricted\n', stderr: '' });
    // A sender restricted by a limit, through the limiter.
    const limits = [{ name: 'strict', messagesPerMinute: 1, action: 'block-user' as const }];
    const send = () => limiter.consume({ key: 'bulk@contoso.com', internalRecipients: 0, externalRecipients: 1, limits, now: new Date(now) });
    assert.equal((await send()).counted, true);
    assert.equal((await send()).counted, false);

    const restricted = await run(['restricted', 'restrict', 'phish@contoso.com', ...base, '--until', '2026-11-24T09:00:00Z', '--reason', 'phishing reported', '--json']);
    assert.equal(restricted.status, 0, restricted.stderr);
    assert.deepEqual(JSON.parse(restricted.stdout), { key: 'phish@contoso.com', until: '2026-11-24T09:00:00.000Z', reason: 'phishing reported', since: now, cause: { kind: 'admin' } });
    assert.equal((await limiter.restriction('phish@contoso.com', new Date(now)))?.reason, 'phishing reported');

    const listed = await run(['restricted', 'list', ...base, '--json']);
    assert.equal(listed.status, 0, listed.stderr);
    const list = JSON.parse(listed.stdout) as { key: string; cause: { kind: string } }[];
    assert.deepEqual(list.map((r) => [r.key, r.cause.kind]), [['bulk@contoso.com', 'limit'], ['phish@contoso.com', 'admin']]);
    const text = await run(['restricted', 'list', ...base]);
    assert.equal(text.status, 0);
    assert.match(text.stdout, /^bulk@contoso\.com\tsince 2026-11-23T09:00:00\.000Z\tuntil released\tlimit messagesPerMinute of "strict"\tover messagesPerMinute/m);
    assert.match(text.stdout, /^phish@contoso\.com\tsince .*\tuntil 2026-11-24T09:00:00\.000Z\tadmin\tphishing reported$/m);

    assert.deepEqual(await run(['restricted', 'release', 'bulk@contoso.com', ...base, '--json']), { status: 0, stdout: '{"key":"bulk@contoso.com","released":true}\n', stderr: '' });
    assert.equal(await limiter.restriction('bulk@contoso.com', new Date(now)), null);
    const again = await run(['restricted', 'release', 'bulk@contoso.com', ...base]);
    assert.deepEqual(again, { status: 1, stdout: 'bulk@contoso.com was not restricted\n', stderr: '' });
  });

  it('usage errors exit 2 with a hint; a Redis that does not answer too', { timeout: 60_000 }, async () => {
    const missing = await run(['restricted', 'list']);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /needs --redis-url/);
    const noKey = await run(['restricted', 'release', '--redis-url', redis.url]);
    assert.equal(noKey.status, 2);
    assert.match(noKey.stderr, /needs the sender key/);
    const badUntil = await run(['restricted', 'restrict', 'x@contoso.com', '--redis-url', redis.url, '--until', 'soon']);
    assert.equal(badUntil.status, 2);
    assert.match(badUntil.stderr, /--until must be/);
    const down = await run(['restricted', 'list', '--redis-url', 'redis://127.0.0.1:1']);
    assert.equal(down.status, 2);
    assert.match(down.stderr, /--redis-url redis:\/\/127\.0\.0\.1:1: /);
  });
});
