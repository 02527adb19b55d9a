// The adapters of the CLI are loaded only when their flags are given (`demo` loads none), and
// `--redis-url` is checked before the first message: a Redis that does not answer, or no ioredis
// installed, is a usage error (exit status 2), not a provider-failed reason on every message.
// The built bin, in a child process; for "ioredis missing", a copy of the package whose
// node_modules has every package but ioredis.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = join(ROOT, 'dist/cli/main.js');
const MESSAGE = join(ROOT, 'examples/messages/01-accepted-domain.eml');

// Loaded before the CLI (--import): prints every module the run resolves, as `loaded <url>`.
const LOG_MODULES = `data:text/javascript,${encodeURIComponent(
  `import { registerHooks } from 'node:module';
   registerHooks({ resolve(specifier, context, next) {
     const resolved = next(specifier, context);
     process.stderr.write('loaded ' + resolved.url + '\\n');
     return resolved;
   } });`,
)}`;

function run(bin: string, args: string[], preload?: string) {
  const start = performance.now();
  const result = spawnSync(process.execPath, [...(preload === undefined ? [] : ['--import', preload]), bin, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, ms: performance.now() - start };
}

function loaded(stderr: string): string[] {
  return [...stderr.matchAll(/^loaded (.+)$/gm)].map((match) => match[1]!);
}

const ADAPTER = /\/dist\/(redis|rspamd|mailauth)\/|\/node_modules\/(ioredis|mailauth)\//;

/** A port on loopback that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('outbound-pools: adapters on demand', () => {
  before(() => assert.ok(existsSync(BIN), `${BIN} is missing: run \`npm run build\` first (npm test does).`));

  it('demo loads no adapter (Redis, rspamd, mailauth); --rspamd-url and --redis-url load theirs', async () => {
    const demo = run(BIN, ['demo'], LOG_MODULES);
    assert.equal(demo.status, 0, demo.stderr);
    const modules = loaded(demo.stderr);
    assert.ok(modules.some((url) => url.endsWith('/dist/cli/decide.js')), 'the module log works');
    assert.deepEqual(modules.filter((url) => ADAPTER.test(url)), []);

    const envelope = ['--mail-from', 'megan@contoso.com', '--rcpt', 'lee@adventure-works.example'];
    const rspamd = run(BIN, ['decide', MESSAGE, ...envelope, '--rspamd-url', `http://127.0.0.1:${await closedPort()}`], LOG_MODULES);
    assert.ok(loaded(rspamd.stderr).some((url) => url.endsWith('/dist/rspamd/classifier.js')), rspamd.stderr);
    assert.ok(!loaded(rspamd.stderr).some((url) => url.includes('/dist/redis/')));
    const redis = run(BIN, ['decide', MESSAGE, ...envelope, '--redis-url', `redis://127.0.0.1:${await closedPort()}`], LOG_MODULES);
    assert.ok(loaded(redis.stderr).some((url) => url.endsWith('/dist/redis/limiter.js')), redis.stderr);
  });

  it('--redis-url with no server there: a usage error at once (exit status 2), nothing decided', async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`;
    const result = run(BIN, ['decide', MESSAGE, '--mail-from', 'megan@contoso.com', '--rcpt', 'lee@adventure-works.example', '--redis-url', url]);
    assert.equal(result.status, 2, result.stderr);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, new RegExp(`^outbound-pools: --redis-url ${url}: Redis .*did not (answer|connect) .* \\(is a Redis server listening there\\?\\)$`, 'm'));
    assert.ok(result.ms < 10_000, `took ${result.ms} ms`);
    // A password in the URL is not printed.
    const secret = run(BIN, ['decide', MESSAGE, '--mail-from', 'megan@contoso.com', '--rcpt', 'lee@adventure-works.example', '--redis-url', `redis://:hunter2@127.0.0.1:${await closedPort()}`]);
    assert.equal(secret.status, 2);
    assert.doesNotMatch(secret.stderr, /hunter2/);
    assert.match(secret.stderr, /redis:\/\/:\*\*\*@127\.0\.0\.1/);
  });

  describe('with ioredis not installed', () => {
    let copy: string;
    before(() => {
      // The package as a user without the optional peer has it: dist, examples, package.json, and
      // node_modules with everything but ioredis (linked, not copied).
      copy = mkdtempSync(join(tmpdir(), 'outbound-pools-no-ioredis-'));
      for (const part of ['dist', 'examples', 'package.json']) cpSync(join(ROOT, part), join(copy, part), { recursive: true });
      mkdirSync(join(copy, 'node_modules'));
      for (const name of readdirSync(join(ROOT, 'node_modules'))) {
        if (name !== 'ioredis') symlinkSync(join(ROOT, 'node_modules', name), join(copy, 'node_modules', name));
      }
      assert.throws(() => createRequire(join(copy, 'package.json')).resolve('ioredis'), /Cannot find module 'ioredis'/);
    });
    after(() => {
      if (copy !== undefined) rmSync(copy, { recursive: true, force: true });
    });

    it('demo still runs; --redis-url is a usage error saying to install ioredis', () => {
      const bin = join(copy, 'dist/cli/main.js');
      assert.equal(run(bin, ['demo']).status, 0);
      const result = run(bin, ['decide', MESSAGE, '--mail-from', 'megan@contoso.com', '--rcpt', 'lee@adventure-works.example', '--redis-url', 'redis://127.0.0.1:6379']);
      assert.equal(result.status, 2, result.stderr);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /^outbound-pools: --redis-url redis:\/\/127\.0\.0\.1:6379: The Redis rate limiter needs ioredis: install ioredis/m);
    });
  });
});
