// `outbound-pools decide` over batches: JSON lines and directories, the summary table, --json's
// summary line, and the progress indicator. The built bin, in a child process.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDecide } from '../../src/cli/decide.js';
import type { CliIo } from '../../src/cli/io.js';

const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const EXAMPLES = new URL('../../examples/messages/', import.meta.url).pathname;

function run(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const jsonLines = (text: string) => text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>);

/** The table rows of the text summary: first cell → the numbers after it. */
function tableRows(stdout: string): Map<string, string[]> {
  const start = stdout.indexOf('\ndeciding reason');
  assert.ok(start >= 0, `no summary table in:\n${stdout}`);
  const rows = new Map<string, string[]>();
  for (const line of stdout.slice(start + 1).trimEnd().split('\n')) {
    if (/^-+ /.test(line)) continue;
    const cells = line.split(/ {2,}/);
    rows.set(cells[0]!, cells.slice(1));
  }
  return rows;
}

describe('outbound-pools decide: batches', () => {
  let dir: string;
  let batch: string;
  before(() => {
    assert.ok(existsSync(BIN), `${BIN} is missing: run \`npm run build\` first (npm test does).`);
    dir = mkdtempSync(join(tmpdir(), 'outbound-pools-batch-'));
    copyFileSync(join(EXAMPLES, '02-ndr.eml'), join(dir, 'bounce.eml'));
    batch = join(dir, 'batch.jsonl');
    writeFileSync(
      batch,
      [
        // A file relative to the batch, with its envelope on the line.
        JSON.stringify({ file: 'bounce.eml', mailFrom: '', rcptTo: ['someone@fabrikam.example'] }),
        // An absolute file and precomputed verdicts.
        JSON.stringify({ file: join(EXAMPLES, '03-spam.eml'), mailFrom: 'winner@bulk-offers.example', rcptTo: ['lee@adventure-works.example'], spam: { score: 14.2, isSpam: true } }),
        '',
        // Raw text and an id of its own.
        JSON.stringify({ id: 'inline', raw: 'From: megan@contoso.com\r\nSubject: hi\r\n\r\nhello\r\n', mailFrom: 'megan@contoso.com', rcptTo: ['lee@adventure-works.example'] }),
        // The envelope alone.
        JSON.stringify({ mailFrom: 'sales@no-such-domain.example', rcptTo: ['lee@adventure-works.example'] }),
      ].join('\n') + '\n',
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('decides a JSON-lines batch (a .jsonl path or --batch) and ends with the summary table', () => {
    const result = run(['decide', batch, '--now', '2026-11-23T09:00:00Z']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^bounce\.eml: deliver through the high-risk pool \(HighRiskOutboundPool\)\n {2}ndr /m);
    assert.ok(result.stdout.includes(`${join(EXAMPLES, '03-spam.eml')}: deliver through the high-risk pool`));
    assert.match(result.stdout, /^inline: deliver through the normal pool/m);
    // A line without file or id is named by the batch and its line number (blank lines count).
    assert.match(result.stdout, /^batch\.jsonl:5: deliver through the high-risk pool/m);
    assert.match(result.stdout, /4 message\(s\): normal 1, high-risk 3, relay 0, block 0, defer 0, invalid 0/);
    const rows = tableRows(result.stdout);
    assert.deepEqual(rows.get('deciding reason'), ['normal', 'high-risk', 'relay', 'block', 'defer', 'total']);
    assert.deepEqual(rows.get('ndr'), ['0', '1', '0', '0', '0', '1']);
    assert.deepEqual(rows.get('spam'), ['0', '1', '0', '0', '0', '1']);
    assert.deepEqual(rows.get('accepted-domain'), ['1', '0', '0', '0', '0', '1']);
    assert.deepEqual(rows.get('sender-domain-unresolvable'), ['0', '1', '0', '0', '0', '1']);
    assert.deepEqual(rows.get('total'), ['1', '3', '0', '0', '0', '4']);
    // Aligned: every row of the table is as wide as its header, numbers right-aligned.
    const table = result.stdout.slice(result.stdout.indexOf('deciding reason')).trimEnd().split('\n');
    const headerEnd = table[0]!.length;
    for (const line of table) assert.equal(line.length, headerEnd, `not aligned: ${JSON.stringify(line)}`);

    const viaFlag = run(['decide', '--batch', batch, '--now', '2026-11-23T09:00:00Z']);
    assert.equal(viaFlag.status, 0, viaFlag.stderr);
    assert.equal(viaFlag.stdout, result.stdout);
  });

  it('a directory and a batch together; the table counts every message', () => {
    const result = run(['decide', EXAMPLES, '--batch', batch]);
    assert.equal(result.status, 0, result.stderr);
    // decide counts no limits without --redis-url: 11-tenant-over-cap is not capped here (the demo counts in memory).
    assert.match(result.stdout, /15 message\(s\): normal 4, high-risk 8, relay 1, block 2, defer 0, invalid 0/);
    const rows = tableRows(result.stdout);
    assert.deepEqual(rows.get('sender-domain-unresolvable'), ['0', '3', '0', '0', '0', '3']);
    assert.deepEqual(rows.get('recipients-per-message-exceeded'), ['0', '0', '0', '1', '0', '1']);
    assert.deepEqual(rows.get('auto-forwarding-blocked'), ['0', '0', '0', '1', '0', '1']);
    assert.deepEqual(rows.get('total'), ['4', '8', '1', '2', '0', '15']);
    // Most frequent reason first, ties by name.
    assert.deepEqual(rows.get('accepted-domain'), ['3', '0', '0', '0', '0', '3']);
    assert.deepEqual([...rows.keys()].slice(1, 3), ['accepted-domain', 'sender-domain-unresolvable']);
  });

  it('--json: one decision per line, then the summary as the last line', () => {
    const result = run(['decide', batch, '--json']);
    assert.equal(result.status, 0, result.stderr);
    const lines = jsonLines(result.stdout);
    assert.equal(lines.length, 5);
    assert.deepEqual(
      lines.slice(0, 4).map((line) => [line.file, line.pool, line.reasons[0].code]),
      [
        ['bounce.eml', 'high-risk', 'ndr'],
        [join(EXAMPLES, '03-spam.eml'), 'high-risk', 'spam'],
        ['inline', 'normal', 'accepted-domain'],
        ['batch.jsonl:5', 'high-risk', 'sender-domain-unresolvable'],
      ],
    );
    assert.deepEqual(lines[4], {
      summary: {
        messages: 4,
        outcomes: { normal: 1, 'high-risk': 3, relay: 0, block: 0, defer: 0, invalid: 0 },
        reasons: {
          'accepted-domain': { normal: 1, total: 1 },
          ndr: { 'high-risk': 1, total: 1 },
          'sender-domain-unresolvable': { 'high-risk': 1, total: 1 },
          spam: { 'high-risk': 1, total: 1 },
        },
      },
    });
  });

  it('an invalid line is reported and counted (exit status 1); the others are still decided', () => {
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(
      bad,
      [
        JSON.stringify({ mailFrom: 'megan@contoso.com', rcptTo: ['lee@adventure-works.example'] }),
        '{ not json',
        JSON.stringify({ id: 'both', file: 'bounce.eml', raw: 'x', mailFrom: '', rcptTo: ['a@b.example'] }),
        JSON.stringify({ id: 'typo', mailfrom: 'a@b.example', rcptTo: ['a@b.example'] }),
        JSON.stringify({ id: 'missing', file: 'nope.eml', mailFrom: 'a@contoso.com', rcptTo: ['a@b.example'] }),
        JSON.stringify({ id: 'bad-address', mailFrom: 'not an address', rcptTo: ['a@b.example'] }),
      ].join('\n'),
    );
    const text = run(['decide', bad]);
    assert.equal(text.status, 1);
    assert.match(text.stderr, /^bad\.jsonl:2: invalid: not JSON/m);
    assert.match(text.stderr, /^both: invalid: give "file" or "raw", not both/m);
    assert.match(text.stderr, /^typo: invalid: unknown field "mailfrom"/m);
    assert.match(text.stderr, /^missing: invalid: cannot read nope\.eml/m);
    assert.match(text.stderr, /^bad-address: invalid: .*not a valid envelope address/m);
    assert.match(text.stdout, /6 message\(s\): normal 1, high-risk 0, relay 0, block 0, defer 0, invalid 5/);
    assert.deepEqual(tableRows(text.stdout).get('(invalid message)'), ['0', '0', '0', '0', '0', '5']);

    const json = run(['decide', bad, '--json']);
    assert.equal(json.status, 1);
    const lines = jsonLines(json.stdout);
    assert.deepEqual(lines.slice(1, 6).map((line) => line.file), ['bad.jsonl:2', 'both', 'typo', 'missing', 'bad-address']);
    assert.ok(lines.slice(1, 6).every((line) => typeof line.error === 'string'));
    assert.equal(lines.at(-1)!.summary.outcomes.invalid, 5);
  });

  it('usage errors (exit status 2): envelope flags with a batch, a missing or empty batch', () => {
    const flags = run(['decide', batch, '--mail-from', 'a@contoso.com', '--rcpt', 'b@example.org']);
    assert.equal(flags.status, 2);
    assert.match(flags.stderr, /a batch gives each envelope on its line/);
    assert.equal(run(['decide', '--batch', join(dir, 'missing.jsonl')]).status, 2);
    const empty = join(dir, 'empty.jsonl');
    writeFileSync(empty, '\n\n');
    const none = run(['decide', empty]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no messages in the batch/);
    assert.equal(run(['demo', '--batch', batch]).status, 2);
  });

  it('shows progress on stderr only with --progress (stderr is not a terminal here), never on stdout', () => {
    const quiet = run(['decide', batch]);
    assert.equal(quiet.stderr, '');
    const quietJson = run(['decide', batch, '--json']);
    assert.equal(quietJson.stderr, '');

    const shown = run(['decide', batch, '--json', '--progress']);
    assert.equal(shown.status, 0, shown.stderr);
    // The first message and the last are always reported, with the rate and the time left.
    assert.match(shown.stderr, /^progress: 1\/4 \(25%\), [\d,]+\/s, ETA \d+:\d\d$/m);
    assert.match(shown.stderr, /^progress: 4\/4 \(100%\), [\d,]+\/s, ETA 0:00$/m);
    assert.doesNotMatch(shown.stdout, /progress/);
    // stdout is the same JSON lines as without --progress.
    assert.equal(shown.stdout, quietJson.stdout);
  });

  it('on a terminal, shows progress by itself for long batches only, redrawn in place on stderr', async () => {
    const long = join(dir, 'long.jsonl');
    const line = (n: number) => JSON.stringify({ id: `m${n}`, mailFrom: `user${n}@contoso.com`, rcptTo: ['lee@adventure-works.example'] });
    writeFileSync(long, Array.from({ length: 25 }, (_, n) => line(n + 1)).join('\n'));
    const short = join(dir, 'short.jsonl');
    writeFileSync(short, [1, 2, 3].map(line).join('\n'));
    const terminal = (): CliIo & { out: string; err: string } => {
      const io = {
        out: '',
        err: '',
        stderrIsTTY: true,
        stdout: (text: string) => void (io.out += text),
        stderr: (text: string) => void (io.err += text),
        readStdin: async () => '',
        stdin: async function* () {},
      };
      return io;
    };
    const longRun = terminal();
    assert.equal(await runDecide([long, '--json'], longRun), 0);
    assert.ok(longRun.err.includes('\r\x1b[Kdeciding: 1/25'));
    assert.ok(longRun.err.includes('\r\x1b[Kdeciding: 25/25'));
    assert.ok(longRun.err.endsWith('\r\x1b[K'), 'the progress line is cleared at the end');
    assert.doesNotMatch(longRun.out, /deciding|\x1b/);
    assert.equal(longRun.out.trim().split('\n').length, 26);

    const shortRun = terminal();
    assert.equal(await runDecide([short], shortRun), 0);
    assert.equal(shortRun.err, '');
    const forced = terminal();
    assert.equal(await runDecide([short, '--progress'], forced), 0);
    assert.ok(forced.err.includes('deciding: 3/3'));
  });

  it('the usage text documents the batch format, --json summary, progress and exit codes', () => {
    const help = run(['decide', '--help']);
    assert.equal(help.status, 0);
    for (const text of ['--batch <file.jsonl>', '"file": "x.eml"', '"raw":', '{ "summary":', '--progress', '--dns-server', '--rspamd-url', '--redis-url', 'Exit status:', '0  every message was decided', '1  some message', '2  usage error']) {
      assert.ok(help.stdout.includes(text), `decide --help lacks ${text}`);
    }
    const main = run(['--help']);
    assert.match(main.stdout, /explain <message \| ->/);
  });
});
