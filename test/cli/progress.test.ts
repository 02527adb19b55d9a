// The progress indicator of `decide`: on a terminal (a fake one: stderrIsTTY, and a clock that
// advances 7 ms each time it is read) at most ten redraws a second, each with the rate and the
// time left; a line a second when stderr is not a terminal; no ETA when the total is unknown.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDecide } from '../../src/cli/decide.js';
import type { CliIo } from '../../src/cli/io.js';
import { duration, REDRAW_MS } from '../../src/cli/progress.js';

const MESSAGES = 3000;
const TICK_MS = 7;

function batchOf(lines: number): string {
  return Array.from({ length: lines }, (_, i) => JSON.stringify({ id: `m${i}`, mailFrom: `user${i}@contoso.com`, rcptTo: ['lee@adventure-works.example'] })).join('\n');
}

/** A terminal (or not) on stderr, a clock that moves TICK_MS per reading, and `input` on stdin. */
function fakeIo(tty: boolean, input = ''): CliIo & { out: string; err: string } {
  let clock = 0;
  const io = {
    out: '',
    err: '',
    stderrIsTTY: tty,
    stdout: (text: string) => void (io.out += text),
    stderr: (text: string) => void (io.err += text),
    readStdin: async () => input,
    stdin: async function* () {
      yield Buffer.from(input);
    },
    now: () => (clock += TICK_MS),
  };
  return io;
}

/** The indicator's texts as drawn on the terminal. */
function draws(err: string): string[] {
  return [...err.matchAll(/\r\x1b\[Kdeciding: ([^\r]*)/g)].map((match) => match[1]!);
}

describe('decide: progress', () => {
  let dir: string;
  let batch: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'outbound-pools-progress-'));
    batch = join(dir, 'batch.jsonl');
    writeFileSync(batch, batchOf(MESSAGES));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('on a terminal, redraws at most ten times a second, with the count, rate and time left', async () => {
    const io = fakeIo(true);
    assert.equal(await runDecide([batch, '--json'], io), 0);
    const texts = draws(io.err);
    // The clock read once at the start and once per message: MESSAGES × 7 ms in all.
    const seconds = (MESSAGES * TICK_MS) / 1000;
    assert.ok(texts.length <= seconds * 10 + 2, `${texts.length} redraws in ${seconds} s`);
    // And it does redraw as often as that allows: every 105 ms of a clock that moves by 7.
    const period = Math.ceil(REDRAW_MS / TICK_MS) * TICK_MS;
    assert.ok(texts.length >= Math.floor((MESSAGES * TICK_MS) / period), `only ${texts.length} redraws in ${seconds} s`);
    // Each message takes 7 ms of this clock: the rate is 1000/7 a second throughout, and the time
    // left is what remains at that rate.
    for (const text of texts) {
      const match = /^([\d,]+)\/3,000 \((\d+)%\), 143\/s, ETA (\d+:\d\d)$/.exec(text);
      assert.ok(match, `unexpected progress text: ${JSON.stringify(text)}`);
      const done = Number(match[1]!.replaceAll(',', ''));
      assert.equal(Number(match[2]), Math.floor((100 * done) / MESSAGES));
      assert.equal(match[3], duration(((MESSAGES - done) * TICK_MS) / 1000));
    }
    assert.equal(texts.at(-1), '3,000/3,000 (100%), 143/s, ETA 0:00');
    assert.ok(io.err.endsWith('\r\x1b[K'), 'the line is cleared at the end');
    assert.doesNotMatch(io.out, /deciding|\x1b/);
  });

  it('not on a terminal, --progress writes a line a second (and the first and last)', async () => {
    const io = fakeIo(false);
    assert.equal(await runDecide([batch, '--progress'], io), 0);
    const lines = io.err.trim().split('\n');
    assert.ok(lines.length <= (MESSAGES * TICK_MS) / 1000 + 2, `${lines.length} lines`);
    assert.equal(lines[0], 'progress: 1/3,000 (0%), 143/s, ETA 0:21');
    assert.equal(lines.at(-1), 'progress: 3,000/3,000 (100%), 143/s, ETA 0:00');
  });

  it('from standard input the total is unknown: the count and the rate, no ETA', async () => {
    const io = fakeIo(true, batchOf(50));
    assert.equal(await runDecide(['-', '--json'], io), 0);
    const texts = draws(io.err);
    assert.ok(texts.length >= 1);
    for (const text of texts) assert.match(text, /^[\d,]+, 143\/s$/);
  });

  it('durations read m:ss, or h:mm:ss past the hour', () => {
    assert.deepEqual([0, 0.2, 59, 61, 3599, 3661, 36000].map(duration), ['0:00', '0:01', '0:59', '1:01', '59:59', '1:01:01', '10:00:00']);
  });
});
