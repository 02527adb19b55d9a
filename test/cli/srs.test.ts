// The `outbound-pools srs` command as a user runs it: the built bin, in a child process.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const CLOCK = ['--now', '1577836860'];

function run(args: string[], input?: string) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', input });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('outbound-pools srs', () => {
  let dir: string;
  before(() => {
    assert.ok(existsSync(BIN), `${BIN} is missing: run \`npm run build\` first (npm test does).`);
    dir = mkdtempSync(join(tmpdir(), 'outbound-pools-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('forward prints the SRS0 address of SPEC §5', () => {
    const result = run(['srs', 'forward', 'test@otherdomain.com', '--domain', 'example.com', '--secret', 'tops3cr3t', ...CLOCK]);
    assert.deepEqual(result, { status: 0, stdout: 'SRS0=vmyz=2W=otherdomain.com=test@example.com\n', stderr: '' });
  });

  it('reverse reads secrets from a file, one a line, and any of them verifies (postsrsd style)', () => {
    const secrets = join(dir, 'secrets');
    writeFileSync(secrets, 'newsecret\ntops3cr3t\n');
    const result = run(['srs', 'reverse', 'SRS0=vmyz=2W=otherdomain.com=test@example.com', '--secrets-file', secrets, ...CLOCK]);
    assert.deepEqual(result, { status: 0, stdout: 'test@otherdomain.com\n', stderr: '' });
  });

  it('the options of the module are flags: separator, hash length, ISO clock', () => {
    const result = run([
      'srs', 'forward', 'User+tag=x@Other.Example', '--domain', 'example.com', '--secret', 'tops3cr3t',
      '--separator', '+', '--hash-length', '4', '--now', '2020-01-01T00:01:00Z',
    ]);
    assert.equal(result.stdout, 'SRS0+Dv85=2W=Other.Example=User+tag=x@example.com\n');
  });

  it('- reads addresses from standard input and a refused one sets exit status 1 with the reason on stderr', () => {
    const input = 'SRS0=vmyz=2W=otherdomain.com=test@example.com\nSRS0=FAKE=2W=otherdomain.com=test@example.com\n';
    const result = run(['srs', 'reverse', '-', '--secret', 'tops3cr3t', ...CLOCK], input);
    assert.equal(result.status, 1);
    assert.equal(result.stdout, 'test@otherdomain.com\n');
    assert.match(result.stderr, /^outbound-pools srs reverse: bad-hash: /);
  });

  it('usage mistakes exit 2 with a hint', () => {
    for (const args of [
      ['srs', 'forward', 'a@b.example', '--secret', 's'],
      ['srs', 'forward', 'a@b.example', '--domain', 'x.example'],
      ['srs', 'reverse', 'a@b.example', '--secret', 's', '--hash-length', 'four'],
      ['srs', 'reverse', 'a@b.example', '--secret', 's', '--separator', '*'],
      ['srs', 'reverse', 'a@b.example', '--secret', 's', '--bogus'],
      ['srs', 'turn', 'a@b.example'],
      ['frobnicate'],
    ]) {
      const result = run(args);
      assert.equal(result.status, 2, args.join(' '));
      assert.notEqual(result.stderr, '', args.join(' '));
    }
  });

  it('--help and --version answer on stdout', () => {
    assert.match(run(['srs', '--help']).stdout, /outbound-pools srs forward/);
    assert.match(run(['--version']).stdout, /^\d+\.\d+\.\d+\n$/);
  });
});
