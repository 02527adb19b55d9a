// Flags and help as a person at a shell meets them: an unknown flag named with the closest known
// one (and no stray quotes), a flag missing its value, `help` and `help <command>`. The built
// bin, in a child process; the distance, directly.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { closest, editDistance } from '../../src/cli/args.js';

const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const MESSAGE = new URL('../../examples/messages/03-spam.eml', import.meta.url).pathname;

function run(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', input: '' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Quotes in `text` come in pairs, of each kind. */
function balanced(text: string): boolean {
  return [`'`, `"`].every((quote) => text.split(quote).length % 2 === 1);
}

describe('flags', () => {
  before(() => assert.ok(existsSync(BIN), `${BIN} is missing: run \`npm run build\` first (npm test does).`));

  const cases: [string[], string][] = [
    [['decide', MESSAGE, '--mail-form', 'a@contoso.com'], 'outbound-pools: unknown option --mail-form (did you mean --mail-from?)'],
    [['decide', MESSAGE, '--jsno'], 'outbound-pools: unknown option --jsno (did you mean --json?)'],
    [['decide', MESSAGE, '--rcpts', 'a@b.example'], 'outbound-pools: unknown option --rcpts (did you mean --rcpt?)'],
    [['decide', MESSAGE, '--conc', '4'], 'outbound-pools: unknown option --conc (did you mean --concurrency?)'],
    [['explain', MESSAGE, '--progress'], 'outbound-pools: unknown option --progress (did you mean --policy?)'],
    [['srs', 'forward', 'a@b.example', '--domian', 'x.example'], 'outbound-pools: unknown option --domian (did you mean --domain?)'],
    [['decide', MESSAGE, '--rcpt'], 'outbound-pools: --rcpt needs a value (--rcpt <value>)'],
    [['decide', MESSAGE, '--json=yes'], 'outbound-pools: --json takes no value, got --json=yes'],
  ];
  for (const [args, message] of cases) {
    it(`${args.slice(1).filter((arg) => arg !== MESSAGE).join(' ')} → ${message.replace('outbound-pools: ', '')}`, () => {
      const result = run(args);
      assert.equal(result.status, 2);
      const [first, second] = result.stderr.split('\n');
      assert.equal(first, message);
      assert.equal(second, `Try: outbound-pools help ${args[0]}`);
      assert.ok(balanced(result.stderr), `unbalanced quotes in ${JSON.stringify(result.stderr)}`);
      assert.equal(result.stdout, '');
    });
  }

  it('--concurrency takes a whole number from 1 to 1024', () => {
    assert.match(run(['decide', MESSAGE, '--concurrency', '0']).stderr, /--concurrency must be a whole number from 1 to 1024, got "0"/);
    assert.equal(run(['decide', MESSAGE, '--concurrency', 'many']).status, 2);
    assert.equal(run(['decide', MESSAGE, '--concurrency', '1']).status, 0);
  });

  it('the edit distance counts a swap of neighbours as one step; a prefix is the closest', () => {
    assert.equal(editDistance('--mial-from', '--mail-from'), 1);
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(closest('--srs', ['--rcpt', '--srs-secret', '--srs-domain']), '--srs-secret');
    assert.equal(closest('--x', []), undefined);
  });
});

describe('help', () => {
  it('help and --help print the commands; help <command> equals <command> --help', () => {
    const help = run(['help']);
    assert.equal(help.status, 0);
    assert.equal(help.stdout, run(['--help']).stdout);
    for (const line of [/^ {2}demo +decide over the bundled/m, /^ {2}decide <message \| directory \| batch \| ->\.\.\./m, /^ {2}explain <message \| -> +why/m, /^ {2}srs forward\|reverse/m, /^ {2}help \[<command>\]/m]) {
      assert.match(help.stdout, line);
    }
    for (const command of ['decide', 'explain', 'srs']) {
      const one = run(['help', command]);
      assert.equal(one.status, 0);
      assert.equal(one.stdout, run([command, '--help']).stdout, command);
    }
  });

  it('help for an unknown command is a usage error with the closest command', () => {
    const result = run(['help', 'decdie']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /^outbound-pools: unknown command "decdie" \(did you mean decide\?\)$/m);
    assert.equal(run(['help', 'constructor']).status, 2);
    assert.match(run(['expalin']).stderr, /did you mean explain\?/);
  });
});
