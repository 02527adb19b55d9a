// What `decide` and `explain` take as input: file kinds recognised by extension or by content,
// envelopes from sidecars and flags (a flag replaces the field it names and nothing else), a
// missing sender as a usage error, standard input. The built bin, in a child process; the line
// reader and the sniffer, directly.
import { isLinearGrowth } from '../hostile/doubling.js';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLines, sniffKind, type Line } from '../../src/cli/inputs.js';

const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const MESSAGES = new URL('../../examples/messages/', import.meta.url).pathname;

function run(args: string[], input?: string | Buffer) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', input: input ?? '' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const jsonLines = (text: string) => text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>);
/** The decisions of a --json run (every line but the summary). */
const decisions = (text: string) => jsonLines(text).filter((line) => !('summary' in line));

const SPAM_EML = readFileSync(join(MESSAGES, '03-spam.eml'));
const NDR_EML = readFileSync(join(MESSAGES, '02-ndr.eml'));

describe('input kinds', () => {
  let dir: string;
  before(() => {
    assert.ok(existsSync(BIN), `${BIN} is missing: run \`npm run build\` first (npm test does).`);
    dir = mkdtempSync(join(tmpdir(), 'outbound-pools-inputs-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a one-line .ndjson file is a batch, not a message', () => {
    const path = join(dir, 'one.ndjson');
    writeFileSync(path, `${JSON.stringify({ mailFrom: 'megan@contoso.com', rcptTo: ['lee@adventure-works.example'] })}\n`);
    const result = run(['decide', path, '--json']);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(decisions(result.stdout).map((d) => [d.file, d.reasons[0].code]), [['one.ndjson:1', 'accepted-domain']]);
  });

  it('a message not named .eml is a message: .msg by its extension, .txt by its header block', () => {
    const msg = join(dir, 'spam.msg');
    writeFileSync(msg, SPAM_EML);
    writeFileSync(join(dir, 'spam.json'), readFileSync(join(MESSAGES, '03-spam.json')));
    const txt = join(dir, 'bounce.txt');
    writeFileSync(txt, NDR_EML);
    const result = run(['decide', msg, '--json']);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(decisions(result.stdout).map((d) => [d.file, d.reasons[0].code]), [['spam.msg', 'spam']]);
    const sniffed = run(['decide', txt, '--mail-from', '<>', '--rcpt', 'someone@fabrikam.example', '--json']);
    assert.equal(sniffed.status, 0, sniffed.stderr);
    assert.deepEqual(decisions(sniffed.stdout).map((d) => [d.file, d.pool, d.reasons[0].code]), [['bounce.txt', 'high-risk', 'ndr']]);
  });

  it('a file of another name is sniffed: JSON lines are a batch, a JSON document one message', () => {
    const lines = join(dir, 'export.log');
    writeFileSync(lines, [{ id: 'a', mailFrom: 'megan@contoso.com', rcptTo: ['x@example.org'] }, { id: 'b', mailFrom: '', rcptTo: ['x@example.org'] }].map((line) => JSON.stringify(line)).join('\n'));
    assert.deepEqual(decisions(run(['decide', lines, '--json']).stdout).map((d) => [d.file, d.reasons[0].code]), [['a', 'accepted-domain'], ['b', 'ndr']]);
    const pretty = join(dir, 'message.data');
    writeFileSync(pretty, JSON.stringify({ id: 'pretty', raw: 'From: megan@contoso.com\r\n\r\nhi\r\n', mailFrom: 'megan@contoso.com', rcptTo: ['x@example.org'] }, null, 2));
    assert.deepEqual(decisions(run(['decide', pretty, '--json']).stdout).map((d) => [d.file, d.reasons[0].code]), [['pretty', 'accepted-domain']]);
  });

  it('a .json file is one message (with "file" or "raw"), or the sidecar of the .eml beside it', () => {
    const single = join(dir, 'single.json');
    writeFileSync(single, JSON.stringify({ file: join(MESSAGES, '03-spam.eml'), mailFrom: 'winner@bulk-offers.example', rcptTo: ['lee@adventure-works.example'], spam: { isSpam: true } }));
    const one = decisions(run(['decide', single, '--json']).stdout);
    assert.deepEqual(one.map((d) => [d.file, d.reasons[0].code]), [[join(MESSAGES, '03-spam.eml'), 'spam']]);
    // JSON lines named .json are a batch.
    const lines = join(dir, 'export.json');
    writeFileSync(lines, [{ id: 'x', mailFrom: '', rcptTo: ['a@example.org'] }, { id: 'y', mailFrom: 'megan@contoso.com', rcptTo: ['a@example.org'] }].map((line) => JSON.stringify(line)).join('\n'));
    assert.deepEqual(decisions(run(['decide', lines, '--json']).stdout).map((d) => [d.file, d.reasons[0].code]), [['x', 'ndr'], ['y', 'accepted-domain']]);
    // The sidecar of an .eml names its message; both named (a shell glob) decide it once.
    const sidecar = decisions(run(['decide', join(MESSAGES, '02-ndr.json'), '--json']).stdout);
    assert.deepEqual(sidecar.map((d) => [d.file, d.reasons[0].code]), [['02-ndr.eml', 'ndr']]);
    const both = decisions(run(['decide', join(MESSAGES, '02-ndr.eml'), join(MESSAGES, '02-ndr.json'), join(MESSAGES, '03-spam.json'), '--json']).stdout);
    assert.deepEqual(both.map((d) => d.file), ['02-ndr.eml', '03-spam.eml']);
  });

  it('what is not recognised is a usage error naming why (exit status 2), before any decision', () => {
    const cases: [string, string | Buffer, RegExp][] = [
      ['report.pdf', '%PDF-1.7\n%\xe2\xe3\n', /report\.pdf: not a message this tool reads: neither an RFC 5322 message/],
      ['outlook.msg', Buffer.concat([Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), Buffer.alloc(64)]), /Outlook \.msg in its binary format/],
      ['mailbox', 'From alice@example.org Mon Jan  1 00:00:00 2024\nSubject: x\n\nhi\n', /an mbox file/],
      ['array.data', '[{"mailFrom":"a@b.example"}]', /a JSON array/],
      ['blank.data', '\n\n', /empty/],
    ];
    for (const [name, content, why] of cases) {
      const path = join(dir, name);
      writeFileSync(path, content);
      const result = run(['decide', join(MESSAGES, '01-accepted-domain.eml'), path]);
      assert.equal(result.status, 2, name);
      assert.match(result.stderr, why, name);
      assert.equal(result.stdout, '', `${name}: nothing is decided`);
    }
  });

  it('a directory: its .eml and .msg files in name order, not its subdirectories', () => {
    const messages = join(dir, 'mixed');
    mkdirSync(join(messages, 'nested.eml'), { recursive: true });
    for (const [name, source] of [['b.eml', '03-spam'], ['a.msg', '02-ndr'], ['c.eml', '01-accepted-domain']] as const) {
      copyFileSync(join(MESSAGES, `${source}.eml`), join(messages, name));
      copyFileSync(join(MESSAGES, `${source}.json`), join(messages, name.replace(/\.\w+$/, '.json')));
    }
    writeFileSync(join(messages, 'notes.txt'), 'not a message');
    const result = run(['decide', messages, '--json']);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(decisions(result.stdout).map((d) => [d.file, d.reasons[0].code]), [['a.msg', 'ndr'], ['b.eml', 'spam'], ['c.eml', 'accepted-domain']]);
    const empty = join(dir, 'empty-dir');
    mkdirSync(empty);
    assert.equal(run(['decide', empty]).status, 2);
  });
});

describe('envelopes: sidecar and flags', () => {
  let dir: string;
  let lonely: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'outbound-pools-envelopes-'));
    lonely = join(dir, 'lonely.eml');
    writeFileSync(lonely, SPAM_EML);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a message without sender is a usage error (exit status 2), not silently a bounce', () => {
    const result = run(['decide', lonely, '--rcpt', 'r@example.net']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /lonely\.eml: no envelope sender: give --mail-from <address> \(--mail-from '<>' for the null sender of a bounce\), or "mailFrom" in lonely\.json/);
    assert.equal(result.stdout, '');
    assert.equal(run(['explain', lonely, '--rcpt', 'r@example.net']).status, 2);
    // No recipients either: also a usage error.
    assert.match(run(['decide', lonely, '--mail-from', 'a@contoso.com']).stderr, /no envelope recipient: give --rcpt/);
  });

  it("the null sender given explicitly: --mail-from '<>' or \"mailFrom\": \"\" in the sidecar", () => {
    const flag = run(['decide', lonely, '--mail-from', '<>', '--rcpt', 'r@example.net', '--json']);
    assert.equal(flag.status, 0, flag.stderr);
    assert.equal(decisions(flag.stdout)[0]!.reasons[0].code, 'ndr');
    const withSidecar = join(dir, 'bounce.eml');
    writeFileSync(withSidecar, NDR_EML);
    writeFileSync(join(dir, 'bounce.json'), JSON.stringify({ mailFrom: '', rcptTo: ['r@example.net'] }));
    assert.equal(decisions(run(['decide', withSidecar, '--json']).stdout)[0]!.reasons[0].code, 'ndr');
  });

  it('--mail-from and --rcpt replace the fields they name; the sidecar keeps its verdicts', () => {
    const spam = join(MESSAGES, '03-spam.eml');
    const rcpt = run(['explain', spam, '--rcpt', 'one@example.net', '--rcpt', 'two@example.net', '--json']);
    assert.equal(rcpt.status, 0, rcpt.stderr);
    const explained = JSON.parse(rcpt.stdout);
    // The sender and the spam verdict still come from 03-spam.json; the recipients from the flags.
    assert.equal(explained.decision.mailFrom, 'winner@bulk-offers.example');
    assert.equal(explained.decision.verdicts.spam.state, 'given');
    assert.match(explained.rules.find((rule: { rule: number }) => rule.rule === 2).read, /^2 recipients, /);
    assert.equal(explained.decision.reasons[0].code, 'spam');

    // 05's sidecar carries SPF and DKIM failures and the ingress: a new sender keeps them.
    const forward = run(['decide', join(MESSAGES, '05-forward-unverified.eml'), '--mail-from', 'billing@fabrikam.example', '--json']);
    const decision = decisions(forward.stdout)[0]!;
    assert.equal(decision.verdicts.authentication.state, 'given');
    assert.equal(decision.reasons[0].code, 'relay-unverified');
  });

  it('a sidecar with an unknown field is an invalid message (exit status 1)', () => {
    const typo = join(dir, 'typo.eml');
    writeFileSync(typo, SPAM_EML);
    writeFileSync(join(dir, 'typo.json'), JSON.stringify({ mailFrom: 'a@contoso.com', rcptTo: ['b@example.org'], spm: {} }));
    const result = run(['decide', typo]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /typo\.eml: invalid: typo\.json: unknown field "spm"/);
  });
});

describe('decide - and explain -: standard input', () => {
  it('a JSON-lines batch on stdin', () => {
    const batch = [
      { id: 'one', mailFrom: 'megan@contoso.com', rcptTo: ['x@example.org'] },
      { id: 'two', mailFrom: 'sales@no-such-domain.example', rcptTo: ['x@example.org'] },
    ].map((line) => JSON.stringify(line)).join('\n');
    const result = run(['decide', '-', '--json'], batch);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(decisions(result.stdout).map((d) => [d.file, d.reasons[0].code]), [['one', 'accepted-domain'], ['two', 'sender-domain-unresolvable']]);
    assert.equal(jsonLines(result.stdout).at(-1)!.summary.messages, 2);
    // Unnamed lines are named after stdin.
    assert.equal(decisions(run(['decide', '--batch', '-', '--json'], `\n${JSON.stringify({ mailFrom: '', rcptTo: ['x@example.org'] })}\n`).stdout)[0]!.file, 'stdin:2');
  });

  it('a message on stdin, with its envelope as flags; without a sender it is a usage error', () => {
    const result = run(['decide', '-', '--mail-from', 'winner@bulk-offers.example', '--rcpt', 'lee@adventure-works.example', '--json'], SPAM_EML);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(decisions(result.stdout).map((d) => [d.file, d.reasons[0].code]), [['stdin', 'relay-unverified']]);
    const noSender = run(['decide', '-', '--rcpt', 'lee@adventure-works.example'], SPAM_EML);
    assert.equal(noSender.status, 2);
    assert.match(noSender.stderr, /stdin: no envelope sender/);
    const explained = run(['explain', '-', '--mail-from', '<>', '--rcpt', 'x@example.org'], NDR_EML);
    assert.equal(explained.status, 0, explained.stderr);
    assert.match(explained.stdout, /^ {2}4 NDR: +an NDR \(null-sender\) → applies/m);
  });

  it('one JSON message on stdin; an empty stdin is a usage error', () => {
    const message = JSON.stringify({ raw: 'From: megan@contoso.com\r\n\r\nhi\r\n', mailFrom: 'megan@contoso.com', rcptTo: ['x@example.org'] }, null, 2);
    const result = run(['explain', '-', '--json'], message);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(JSON.parse(result.stdout).decision.reasons[0].code, 'accepted-domain');
    const empty = run(['decide', '-'], '  \n');
    assert.equal(empty.status, 2);
    assert.match(empty.stderr, /standard input is empty/);
    assert.equal(run(['decide', '-', '-'], 'x').status, 2);
  });
});

async function* chunksOf(bytes: Buffer, size: number) {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

/** Every line of `text` as the reader gives it when the bytes arrive in chunks of `size`. */
async function linesOf(text: string | Buffer, size: number, maxBytes?: number): Promise<Line[]> {
  const lines: Line[] = [];
  for await (const line of readLines(chunksOf(Buffer.from(text), size), maxBytes)) lines.push(line);
  return lines;
}

describe('readLines', () => {
  it('splits LF and CRLF lines wherever the chunks end, UTF-8 split across chunks included', async () => {
    const text = 'a\r\n{"é":"ü"}\n\nlast without newline';
    for (const size of [1, 2, 3, 5, 1024]) {
      assert.deepEqual(await linesOf(text, size), [
        { number: 1, text: 'a' },
        { number: 2, text: '{"é":"ü"}' },
        { number: 3, text: '' },
        { number: 4, text: 'last without newline' },
      ], `chunks of ${size}`);
    }
    assert.deepEqual(await linesOf('x\n', 1), [{ number: 1, text: 'x' }]);
  });

  it('a line over the limit is given without its text, and the next lines are read as usual', async () => {
    for (const size of [1, 7, 4096]) {
      assert.deepEqual(await linesOf(`short\n${'x'.repeat(100)}\nafter\n${'y'.repeat(50)}`, size, 40), [
        { number: 1, text: 'short' },
        { number: 2, text: null },
        { number: 3, text: 'after' },
        { number: 4, text: null },
      ], `chunks of ${size}`);
    }
  });

  it('is linear on hostile input: one endless line, and a flood of empty lines', () => {
    // Measured in a child process on the built reader: node:test's async context tracking
    // makes every await of the loop dearer, and not by a constant. CPU time, not wall time: on a
    // shared machine a long run is preempted more than a short one. The limit is below the
    // sizes tried, as MAX_LINE_BYTES is below a hostile input: the endless line is scanned and
    // dropped, never held.
    const script = `
      import { readLines } from ${JSON.stringify(new URL('../../dist/cli/inputs.js', import.meta.url).href)};
      const [byte, first] = JSON.parse(process.argv[1]);
      const CHUNK = 64 * 1024;
      async function* repeated(n) {
        const chunk = Buffer.alloc(CHUNK, byte);
        for (let at = 0; at < n; at += CHUNK) yield n - at < CHUNK ? chunk.subarray(0, n - at) : chunk;
      }
      const measure = async (n) => {
        const start = process.cpuUsage();
        let count = 0;
        for await (const _ of readLines(repeated(n), 1 << 19)) count++;
        const used = process.cpuUsage(start);
        if (count !== (byte === 10 ? n : 1)) throw new Error('lines: ' + count);
        return (used.user + used.system) / 1000;
      };
      // Warmed up on the largest size, so that no measured run is the one the JIT compiles during.
      await measure(first * 32);
      await measure(first * 32);
      const times = [];
      for (let n = first; n <= first * 32; n *= 2) {
        let best = Infinity;
        for (let attempt = 0; attempt < 5; attempt++) best = Math.min(best, await measure(n));
        times.push(best);
      }
      console.log(JSON.stringify(times));`;
    const shapes: [string, number, number][] = [
      ['one line without newline', 0x61, 1 << 22],
      ['only newlines', 0x0a, 1 << 14],
    ];
    for (const [shape, byte, first] of shapes) {
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify([byte, first])], { encoding: 'utf8' });
      assert.equal(child.status, 0, child.stderr);
      const times = JSON.parse(child.stdout) as number[];
      // Under 0.2 ms the clock and the scheduler speak louder than the reader: a floor for the
      // ratio — and a series whose largest size stays near it would pass whatever the reader does.
      const growth = times.slice(1).map((time, step) => time / Math.max(times[step]!, 0.2));
      assert.ok(times[times.length - 1]! >= 0.8, `${shape}: the largest size took ${times[times.length - 1]} ms of CPU, under 4 × the floor: the series measured nothing`);
      assert.ok(isLinearGrowth(growth), `${shape}: ${times.map((t) => t.toFixed(1)).join(' → ')} ms of CPU`);
    }
  });
});

describe('sniffKind', () => {
  const cases: [string, string, ReturnType<typeof sniffKind>][] = [
    ['a header block', 'Received: from x\r\nSubject: y\r\n\r\nbody', 'message'],
    ['a header block after a UTF-8 BOM', '\ufeffFrom: a@b.example\n\nhi', 'message'],
    ['JSON lines', '{"mailFrom":"a@b.example"}\n{"mailFrom":"c@d.example"}\n', 'batch'],
    ['JSON lines whose first field looks like a header', '{"id":"x","raw":"From: a"}\n', 'batch'],
    ['one JSON document over several lines', '{\n  "mailFrom": "a@b.example"\n}\n', 'json'],
    ['JSON lines indented by blank lines', '\n\n  {"mailFrom":"a@b.example"}\n', 'batch'],
    ['JSON lines with CRLF and blanks after the object', '{"mailFrom":"a@b.example"} \t\r\n{"mailFrom":"c@d.example"}\r\n', 'batch'],
    ['a first line that is not one JSON object', '{"mailFrom":"a@b.example"}}\n', 'json'],
    ['a first line cut short in a whole file', '{"mailFrom":"a@b.ex\n', 'json'],
    ['an opening brace alone', '{', 'json'],
  ];
  for (const [what, text, kind] of cases) {
    it(`${what}: ${JSON.stringify(kind)}`, () => assert.deepEqual(sniffKind(Buffer.from(text), true), kind));
  }
  it('a first line cut off by the end of the head is taken for JSON lines', () => {
    assert.equal(sniffKind(Buffer.from('{"raw":"From: aaaaaaaa'), false), 'batch');
  });
});
