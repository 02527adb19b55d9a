// The Redis limiter's backpressure (src/redis/in-flight.ts), with commands of our own instead of
// Redis: a call waiting in line is not timed out, however long it waits; a sent call is.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { InFlight } from '../../src/redis/in-flight.js';

/** How late a timer-driven failure may come on a loaded 2-core machine: an upper bound, not a benchmark. */
const MARGIN_MS = 1_000;

describe('InFlight: at most maxInFlight sent, the timeout counted from sending', () => {
  it('sends at most maxInFlight at once, in arrival order, and the rest as answers come back', async () => {
    const inFlight = new InFlight(4, 1_000);
    let outstanding = 0;
    let most = 0;
    const order: number[] = [];
    const calls = Array.from({ length: 40 }, (_, i) =>
      inFlight.run('call', async () => {
        order.push(i);
        most = Math.max(most, ++outstanding);
        await sleep(2);
        outstanding--;
        return i;
      }),
    );
    assert.equal(inFlight.active, 4);
    assert.equal(inFlight.waiting, 36);
    assert.deepEqual(await Promise.all(calls), order);
    assert.deepEqual(order, Array.from({ length: 40 }, (_, i) => i));
    assert.equal(most, 4);
  });

  it('a call that waits in line longer than timeoutMs is not timed out: each command answers in 20 ms, the last waits ~600 ms', async () => {
    const inFlight = new InFlight(2, 400);
    const started = performance.now();
    const results = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => inFlight.run('call', () => sleep(20, i))));
    const waited = performance.now() - started;
    assert.deepEqual(results.filter((r) => r.status === 'rejected'), []);
    assert.ok(waited > 400, `the line took ${Math.round(waited)} ms, not longer than the timeout`);
  });

  it('a sent call unanswered for timeoutMs rejects with ETIMEDOUT; the calls behind it are sent and answered', async () => {
    const inFlight = new InFlight(1, 80);
    const never = inFlight.run('stuck', () => new Promise<never>(() => {}));
    const next = inFlight.run('next', async () => 'answered');
    const started = performance.now();
    await assert.rejects(never, (error: Error & { code?: string }) => error.code === 'ETIMEDOUT' && /stuck within 80 ms/.test(error.message));
    assert.ok(performance.now() - started < 80 + MARGIN_MS);
    assert.equal(await next, 'answered');
  });

  it('a command that throws or rejects fails its own call only', async () => {
    const inFlight = new InFlight(2, 1_000);
    const results = await Promise.allSettled([
      inFlight.run('throws', () => {
        throw new Error('sync');
      }),
      inFlight.run('rejects', () => Promise.reject(new Error('async'))),
      inFlight.run('fine', async () => 1),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'fulfilled']);
    assert.equal(inFlight.active, 0);
  });
});

describe('InFlight: a paused process does not time out answers that arrived meanwhile', () => {
  it('an answer that reached the socket while the event loop was blocked longer than timeoutMs resolves its call', async () => {
    // The echo server is another process: it answers while this one is blocked. Once it has
    // written the echo of 'ping' it creates `echoed`, which this process can see while blocked.
    const dir = mkdtempSync(join(tmpdir(), 'in-flight-'));
    const marker = join(dir, 'echoed');
    const server = spawn(
      process.execPath,
      ['-e', "const [marker] = process.argv.slice(1); const s = require('net').createServer((c) => c.on('data', (d) => { c.write(d); if (String(d) === 'ping') require('fs').writeFileSync(marker, ''); })).listen(0, '127.0.0.1', () => console.log(s.address().port))", marker],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const port = Number(await new Promise<string>((resolve) => server.stdout.once('data', (data: Buffer) => resolve(data.toString()))));
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    try {
      // One round trip first: the child has accepted the connection and answers.
      const ready = new Promise<string>((resolve) => socket.once('data', (data) => resolve(data.toString())));
      socket.write('ready');
      assert.equal(await ready, 'ready');
      const inFlight = new InFlight(4, 50);
      const echoed = inFlight.run('echo', () => new Promise<string>((resolve) => {
        socket.once('data', (data) => resolve(data.toString()));
        socket.write('ping');
      }));
      // Block this process for 4 × the timeout (as a busy machine's scheduler can), and on until
      // the child has answered (a loaded machine may not run it within those 200 ms): the echo
      // is in the socket, and the sweep's timer fires before the socket is read.
      const blockedAt = performance.now();
      while (performance.now() - blockedAt < 200 || !existsSync(marker)) {
        if (performance.now() - blockedAt > 10_000) assert.fail('the echo child did not answer within 10 s');
      }
      assert.equal(await echoed, 'ping');
      // A call that really gets no answer still fails.
      await assert.rejects(inFlight.run('silent', () => new Promise<never>(() => {})), (error: Error & { code?: string }) => error.code === 'ETIMEDOUT');
    } finally {
      socket.destroy();
      server.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('InFlight: a Redis that answers is slow, not down', () => {
  it('calls answered one after the other, the last 240 ms after it was sent, are not timed out at 100 ms', async () => {
    const inFlight = new InFlight(16, 100);
    // Redis working through a queue: one answer every 40 ms, in order.
    let previous: Promise<unknown> = Promise.resolve();
    const queued = Array.from({ length: 6 }, (_, i) => {
      const answer = previous.then(() => sleep(40, i));
      previous = answer;
      return inFlight.run('queued', () => answer);
    });
    const started = performance.now();
    const results = await Promise.allSettled(queued);
    assert.deepEqual(results.map((r) => r.status), Array.from({ length: 6 }, () => 'fulfilled'));
    assert.ok(performance.now() - started >= 200, 'the last answer came after two timeouts');
  });

  it('a stuck call among calls that are answered fails after 4 × timeoutMs; once nothing answers, after timeoutMs of silence', async () => {
    // timeoutMs is large enough that timeoutMs + MARGIN_MS stays under 4 × timeoutMs: the two
    // rules can still be told apart with a loaded machine's slack.
    const timeoutMs = 400;
    const stuckMs = 4 * timeoutMs;
    const inFlight = new InFlight(16, timeoutMs);
    const started = performance.now();
    const stuck = inFlight.run('stuck', () => new Promise<never>(() => {}));
    let failedAt = 0;
    stuck.catch(() => {
      failedAt = performance.now() - started;
    });
    // Other calls answered every 20 ms until the stuck one fails (or for long past its bound):
    // Redis is answering, so the stuck call fails by the 4 × rule, not by a silence.
    while (failedAt === 0 && performance.now() - started < stuckMs + MARGIN_MS + timeoutMs) await inFlight.run('answered', () => sleep(20));
    await assert.rejects(stuck, (error: Error & { code?: string }) => error.code === 'ETIMEDOUT');
    assert.ok(failedAt >= stuckMs - 10 && failedAt < stuckMs + MARGIN_MS, `failed after ${Math.round(failedAt)} ms`);
    // Nothing answers any more: a new stuck call fails after one timeout of silence, before the 4 × rule.
    const silentStart = performance.now();
    await assert.rejects(inFlight.run('silent', () => new Promise<never>(() => {})), (error: Error & { code?: string }) => error.code === 'ETIMEDOUT');
    const silent = performance.now() - silentStart;
    assert.ok(silent >= timeoutMs - 10 && silent < Math.min(timeoutMs + MARGIN_MS, stuckMs), `failed after ${Math.round(silent)} ms`);
  });
});

describe('InFlight lets go of a settled call at once', () => {
  it('calls that time out together all fail: none is skipped when the first leaves the sent list', async () => {
    const inFlight = new InFlight(8, 100);
    const started = performance.now();
    // Answers that never come while the test waits; released at the end, so that a call the
    // limiter lost track of cannot keep its sweep timer (and this test file) alive.
    const release: (() => void)[] = [];
    const hung = Array.from({ length: 3 }, (_, i) => inFlight.run(`hung ${i}`, () => new Promise<void>((resolve) => release.push(resolve))));
    try {
      const results = await Promise.race([Promise.allSettled(hung), sleep(100 + MARGIN_MS * 2, 'still waiting' as const)]);
      assert.notEqual(results, 'still waiting', `after ${Math.round(performance.now() - started)} ms not every hung call had failed`);
      for (const result of results as PromiseSettledResult<void>[]) {
        assert.equal(result.status, 'rejected');
        assert.equal((result as PromiseRejectedResult).reason.code, 'ETIMEDOUT');
      }
      assert.equal(inFlight.active, 0);
    } finally {
      for (const answer of release) answer();
    }
  });

  it('what an answered call closed over is collectable while an older call is still in flight, before any sweep', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // The sweep runs every 100 ms at most: a 60 s timeout keeps it away for the whole test.
    const inFlight = new InFlight(8, 60_000);
    let answerFirst: (value: string) => void = () => {};
    const first = inFlight.run('first', () => new Promise<string>((resolve) => (answerFirst = resolve)));
    const released: WeakRef<object>[] = [];
    for (let i = 0; i < 4; i++) {
      // A command that closes over a batch of its own, as the limiter's do (keys, records).
      const batch = { records: 'r'.repeat(10_000) + String(i) };
      released.push(new WeakRef(batch));
      assert.equal(await inFlight.run('batch', async () => batch.records.length), 10_001);
    }
    // Collected after a turn: the promise jobs of the settled calls must have run.
    await sleep(0);
    gc();
    const alive = released.filter((ref) => ref.deref() !== undefined).length;
    assert.equal(alive, 0, `${alive} of 4 settled calls still hold what their command closed over`);
    assert.equal(inFlight.active, 1);
    answerFirst('done');
    assert.equal(await first, 'done');
    assert.equal(inFlight.active, 0);
  });
});
