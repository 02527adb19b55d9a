// `decide` over a large JSON-lines batch holds bounded memory: the built bin, in a child process
// whose peak resident set (getrusage's maxRSS, printed by a preloaded module when it exits) is
// read for 100,000 and 200,000 lines. Reading every line before the first decision, as the CLI
// once did, took 270 MB for 200,000 of these lines and grew by some 80 MB per 100,000.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const MIB = 1024 * 1024;
/** Peak resident set size allowed for 200,000 lines (about 115 MiB measured, for 1,000,000 too). */
const PEAK_MAX = 180 * MIB;
/** Growth of the peak allowed from 100,000 lines to 200,000 (about 11 MiB measured: the heap settling). */
const GROWTH_MAX = 30 * MIB;

// Loaded before the CLI (--import): reports the process's peak RSS on stderr as it exits.
const REPORT_PEAK = `data:text/javascript,process.on('exit', () => process.stderr.write('maxrss-kib ' + process.resourceUsage().maxRSS + '\\n'))`;

function batchOf(lines: number): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const sender = `user${i}@contoso.com`;
    out.push(JSON.stringify({ id: `m${i}`, raw: `From: ${sender}\r\nTo: lee@adventure-works.example\r\nMessage-ID: <${i}@contoso.com>\r\nSubject: hello ${i}\r\n\r\nhi\r\n`, mailFrom: sender, rcptTo: ['lee@adventure-works.example'] }));
  }
  return `${out.join('\n')}\n`;
}

/** Decides `path` with stdout to /dev/null; the peak RSS in bytes and the summary JSON line's counts. */
function peakOf(path: string): { peak: number; status: number | null } {
  const devNull = openSync('/dev/null', 'w');
  try {
    const result = spawnSync(process.execPath, ['--import', REPORT_PEAK, BIN, 'decide', path, '--now', '2026-11-23T09:00:00Z'], { stdio: ['ignore', devNull, 'pipe'], encoding: 'utf8' });
    const match = /^maxrss-kib (\d+)$/m.exec(result.stderr);
    assert.ok(match, `no peak reported:\n${result.stderr}`);
    return { peak: Number(match[1]) * 1024, status: result.status };
  } finally {
    closeSync(devNull);
  }
}

describe('outbound-pools decide streams its input', () => {
  let dir: string;
  before(() => {
    assert.ok(existsSync(BIN), `${BIN} is missing: run \`npm run build\` first (npm test does).`);
    dir = mkdtempSync(join(tmpdir(), 'outbound-pools-stream-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('holds bounded memory: the peak for 200,000 lines is small, and barely above that for 100,000', { timeout: 600_000 }, () => {
    const peaks: number[] = [];
    for (const lines of [100_000, 200_000]) {
      const path = join(dir, `batch-${lines}.jsonl`);
      writeFileSync(path, batchOf(lines));
      const { peak, status } = peakOf(path);
      assert.equal(status, 0);
      peaks.push(peak);
      rmSync(path);
    }
    const [small, large] = peaks as [number, number];
    const mib = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;
    assert.ok(large < PEAK_MAX, `peak for 200,000 lines ${mib(large)} ≥ ${mib(PEAK_MAX)}`);
    assert.ok(large - small < GROWTH_MAX, `peak grew from ${mib(small)} to ${mib(large)} between 100,000 and 200,000 lines`);
  });

  it('the summary still counts every line, the invalid ones included', () => {
    const path = join(dir, 'mixed.jsonl');
    writeFileSync(path, `${batchOf(3)}not json\n${'x'.repeat(10)}\n`);
    const result = spawnSync(process.execPath, [BIN, 'decide', path, '--json', '--concurrency', '2'], { encoding: 'utf8' });
    assert.equal(result.status, 1);
    const lines = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>);
    // Output in input order, whatever the concurrency.
    assert.deepEqual(lines.slice(0, 5).map((line) => line.file), ['m0', 'm1', 'm2', 'mixed.jsonl:4', 'mixed.jsonl:5']);
    assert.deepEqual(lines.at(-1)!.summary.outcomes, { normal: 3, 'high-risk': 0, relay: 0, block: 0, defer: 0, invalid: 2 });
  });
});
