// The package as a consumer meets it: `npm pack`, the tarball installed into a fresh project
// (with the TypeScript and @types/node this repository uses, without ioredis, an optional peer),
// then type-checked without skipLibCheck, required from CommonJS, linted by attw and publint,
// and every example of README.md and docs/ run there, from the installed package.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { documentedFiles, examples, withAssertions } from './doc-examples.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const BIN = join(ROOT, 'node_modules', '.bin');

let work: string;
let consumer: string;
let tarball: string;
let packed: { size: number; unpackedSize: number; files: { path: string }[] };

function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 });
}

function succeeds(result: SpawnSyncReturns<string>, what: string): string {
  assert.equal(result.status, 0, `${what} failed (status ${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** The version of a devDependency as installed here, so that the consumer's install hits npm's cache. */
function installedVersion(name: string): string {
  return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** npm install into the consumer: from the cache when it can (CI's `npm ci` filled it). */
function npmInstall(...specs: string[]): void {
  succeeds(run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', '--loglevel=error', ...specs], consumer), `npm install ${specs.join(' ')}`);
}

function write(name: string, text: string): string {
  const path = join(consumer, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  return path;
}

before(() => {
  assert.ok(existsSync(join(ROOT, 'dist', 'index.js')), 'dist/ is missing: run `npm run build` first (npm test does)');
  work = mkdtempSync(join(tmpdir(), 'outbound-pools-consumer-'));
  const [info] = JSON.parse(succeeds(run('npm', ['pack', '--json', '--pack-destination', work, '--loglevel=error'], ROOT), 'npm pack')) as (typeof packed & { filename: string })[];
  packed = info!;
  tarball = join(work, info!.filename);
  consumer = join(work, 'consumer');
  mkdirSync(consumer);
  write('package.json', `${JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2)}\n`);
  npmInstall(tarball, `typescript@${installedVersion('typescript')}`, `@types/node@${installedVersion('@types/node')}`);
});

after(() => {
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds the build and the sources its source maps point at, and no tests', (t) => {
    const paths = new Set(packed.files.map((file) => file.path));
    t.diagnostic(`tarball ${packed.size} bytes, unpacked ${packed.unpackedSize} bytes, ${paths.size} files`);
    for (const path of ['dist/index.js', 'dist/index.d.ts', 'dist/cjs/index.js', 'dist/srs/index.js', 'dist/haraka/index.cjs', 'src/index.ts', 'README.md', 'LICENSE']) {
      assert.ok(paths.has(path), `${path} is in the tarball`);
    }
    assert.deepEqual([...paths].filter((path) => path.startsWith('test/') || path.startsWith('bench/')), []);
    const installed = join(consumer, 'node_modules', 'outbound-pools');
    let maps = 0;
    for (const path of paths) {
      if (!path.endsWith('.map')) continue;
      const map = JSON.parse(readFileSync(join(installed, path), 'utf8')) as { sources: string[] };
      for (const source of map.sources) {
        assert.ok(existsSync(resolve(dirname(join(installed, path)), source)), `${path} points at ${source}, which is in the package`);
      }
      maps++;
    }
    assert.ok(maps > 10, `source maps checked: ${maps}`);
  });

  it('its bin runs the demo, decide and explain with the bundled defaults, as the README says (no --policy)', () => {
    const bin = join(consumer, 'node_modules', '.bin', 'outbound-pools');
    const demo = succeeds(run(bin, ['demo'], consumer), 'outbound-pools demo');
    assert.match(demo, /RegularRelayOutboundPool|relay/);
    const message = join(consumer, 'node_modules', 'outbound-pools', 'examples', 'messages', '03-spam.eml');
    assert.match(succeeds(run(bin, ['decide', message], consumer), 'outbound-pools decide'), /spam/);
    assert.match(succeeds(run(bin, ['explain', message], consumer), 'outbound-pools explain'), /spam/);
  });

  it('installs without ioredis, an optional peer dependency', (t) => {
    assert.equal(existsSync(join(consumer, 'node_modules', 'ioredis')), false);
    const size = spawnSync('du', ['-sk', join(consumer, 'node_modules')], { encoding: 'utf8' }).stdout.split('\t')[0];
    t.diagnostic(`consumer node_modules (package, dependencies, typescript, @types/node): ${size} KiB`);
  });

  it('is clean for @arethetypeswrong/cli (node16 from ESM and CJS, bundler)', () => {
    // node16 leaves out node10 resolution (no "exports" support), which Node ≥ 22 never uses.
    const output = succeeds(run(join(BIN, 'attw'), [tarball, '--profile', 'node16', '--format', 'table-flipped', '--no-color'], ROOT), 'attw');
    const entries = output.split('\n').filter((line) => line.includes('"outbound-pools'));
    assert.equal(entries.length, 9, output);
    for (const line of entries) {
      const judged = line.replace(/\(ignored\)[^│]*/u, '');
      assert.equal((judged.match(/🟢/gu) ?? []).length, 3, `node16 from CJS, node16 from ESM and bundler all clean: ${line}`);
      assert.doesNotMatch(judged, /💀|⚠️|❌|🎭|🥴|❗|🐛/u, line);
    }
  });

  it('is clean for publint --strict', () => {
    const output = succeeds(run(join(BIN, 'publint'), ['--strict', tarball], ROOT), 'publint');
    assert.match(output, /All good/);
  });
});

const CONSUMER_TS = `import {
  createPolicy,
  createStaticResolver,
  decidePool,
  formatTrace,
  OutboundPoolsError,
  type Decision,
  type OutboundMessage,
} from 'outbound-pools';
import { Srs, SrsError } from 'outbound-pools/srs';
import { createMailauthAuthenticator } from 'outbound-pools/mailauth';
import { createRspamdClassifier } from 'outbound-pools/rspamd';
import { createHarakaPlugin } from 'outbound-pools/haraka';
import { createDecisionMetrics } from 'outbound-pools/metrics';

const policy = createPolicy({ acceptedDomains: ['contoso.com'] });
const message: OutboundMessage = { mailFrom: 'alice@fabrikam.example', rcptTo: ['lee@northwind.example'] };
const decision: Decision = await decidePool(message, {
  policy,
  providers: {
    dns: createStaticResolver({ 'fabrikam.example': { A: ['192.0.2.1'] } }),
    authenticator: createMailauthAuthenticator({ mta: 'mx1.contoso.com' }),
    spam: createRspamdClassifier({ url: 'http://127.0.0.1:11333' }),
  },
});
const metrics = createDecisionMetrics();
metrics.observe(decision);
if (decision.action === 'deliver') {
  const pool: 'normal' | 'high-risk' | 'relay' = decision.pool;
  console.log(pool, formatTrace(decision));
}
const rewriter = new Srs({ secret: 'tops3cr3t' });
try {
  rewriter.reverse(rewriter.forward('alice@fabrikam.example', 'contoso.com'));
} catch (error) {
  if (error instanceof SrsError) console.log(error.code);
  if (error instanceof OutboundPoolsError) console.log(error.code);
}
export const plugin = createHarakaPlugin({
  policy,
  pools: {
    normal: { bind: '127.0.0.2', helo: 'out.contoso.com' },
    'high-risk': { bind: '127.0.0.3', helo: 'risk.contoso.com' },
    relay: { bind: '127.0.0.4', helo: 'relay.contoso.com' },
  },
});
`;

const HARAKA_CTS = `// A Haraka plugin file in TypeScript, compiled to CommonJS.
import outboundPools = require('outbound-pools/haraka');

outboundPools.install(exports, (op) => ({
  policy: op.createPolicy({ acceptedDomains: ['contoso.com'] }),
  providers: { dns: op.createDnsResolver(), authenticator: op.createMailauthAuthenticator({ mta: 'mx1.contoso.com' }) },
  pools: {
    normal: { bind: '127.0.0.2', helo: 'out.contoso.com' },
    'high-risk': { bind: '127.0.0.3', helo: 'risk.contoso.com' },
    relay: { bind: '127.0.0.4', helo: 'relay.contoso.com' },
  },
}));
`;

function tsconfig(module: string, moduleResolution: string, include: string[]): string {
  return `${JSON.stringify(
    {
      compilerOptions: {
        target: 'ES2022',
        module,
        moduleResolution,
        strict: true,
        exactOptionalPropertyTypes: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
      },
      include,
    },
    null,
    2,
  )}\n`;
}

describe('TypeScript in the consumer, without skipLibCheck and without ioredis', () => {
  before(() => {
    write('src/consumer.ts', CONSUMER_TS);
    write('src/haraka-plugin.cts', HARAKA_CTS);
    write('tsconfig.node16.json', tsconfig('node16', 'node16', ['src/consumer.ts', 'src/haraka-plugin.cts']));
    write('tsconfig.bundler.json', tsconfig('esnext', 'bundler', ['src/consumer.ts']));
  });

  for (const resolution of ['node16', 'bundler']) {
    it(`tsc --noEmit is clean with moduleResolution ${resolution}`, () => {
      succeeds(run(join(consumer, 'node_modules', '.bin', 'tsc'), ['-p', `tsconfig.${resolution}.json`], consumer), `tsc (${resolution})`);
    });
  }

  it('a type error in the consumer is reported (the check can fail)', () => {
    write('src/wrong.ts', `import { decidePool } from 'outbound-pools';\nexport const x: number = decidePool;\n`);
    write('tsconfig.wrong.json', tsconfig('node16', 'node16', ['src/wrong.ts']));
    const result = run(join(consumer, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.wrong.json'], consumer);
    assert.notEqual(result.status, 0);
    assert.match(result.stdout, /TS2322/);
  });
});

describe(`the package at run time, on Node ${process.version}`, () => {
  it('require() loads the ESM entries (require(esm)), one module instance for require and import', async () => {
    write(
      'require.cjs',
      `const assert = require('node:assert/strict');
const root = require('outbound-pools');
const srs = require('outbound-pools/srs');
assert.equal(typeof root.decidePool, 'function');
assert.equal(root.Srs, srs.Srs);
const rewriter = new srs.Srs({ secret: 'tops3cr3t' });
assert.equal(rewriter.forward('test@otherdomain.com', 'example.com', { now: 1577836860_000 }), 'SRS0=vmyz=2W=otherdomain.com=test@example.com');
assert.equal(typeof require('outbound-pools/mailauth').createMailauthAuthenticator, 'function');
assert.equal(typeof require('outbound-pools/rspamd').createRspamdClassifier, 'function');
assert.equal(typeof require('outbound-pools/haraka').install, 'function');
assert.equal(typeof require('outbound-pools/metrics').createDecisionMetrics, 'function');
assert.equal(typeof require('outbound-pools/postfix').createPoolMilter, 'function');
import('outbound-pools').then((imported) => {
  assert.equal(imported.decidePool, root.decidePool);
  console.log('required');
});
`,
    );
    assert.equal(succeeds(run(process.execPath, ['require.cjs'], consumer), 'require()').trim(), 'required');
  });

  it('importing the root entry loads no adapter: no mailauth, ioredis or rspamd code', (t) => {
    write(
      'loaded.mjs',
      `import { registerHooks } from 'node:module';
const loaded = [];
registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); loaded.push(result.url); return result; } });
const started = performance.now();
await import('outbound-pools');
const ms = performance.now() - started;
console.log(JSON.stringify({ ms, loaded }));
`,
    );
    const { ms, loaded } = JSON.parse(succeeds(run(process.execPath, ['loaded.mjs'], consumer), 'import')) as { ms: number; loaded: string[] };
    t.diagnostic(`import('outbound-pools') took ${ms.toFixed(1)} ms here (a figure, not a target: bench/import.mjs measures it)`);
    assert.ok(loaded.some((url) => url.includes('/outbound-pools/dist/decide/')), 'the hook saw the core load');
    const adapters = loaded.filter((url) => /\/node_modules\/(mailauth|ioredis|tldts)\/|\/dist\/(mailauth|rspamd|redis|metrics|postfix|haraka|cli)\//.test(url));
    assert.deepEqual(adapters, []);
  });
});

describe('README and docs examples, run in the consumer from the installed package', () => {
  before(() => {
    // docs/limits.md builds a Redis limiter: the one example that needs the optional peer.
    npmInstall(`ioredis@${installedVersion('ioredis')}`);
  });

  const installed = (): string => join(consumer, 'node_modules', 'outbound-pools');
  const all = documentedFiles(ROOT).flatMap((file) => examples(ROOT, file));

  it('there are examples to run, and the installed package has the same docs', () => {
    assert.ok(all.length >= 5, `${all.length} examples`);
    assert.deepEqual(documentedFiles(installed()), documentedFiles(ROOT));
  });

  for (const { file, line } of all) {
    it(`${file}:${line} runs and prints what it says`, () => {
      const example = examples(installed(), file).find((candidate) => candidate.line === line);
      assert.ok(example, `${file}:${line} is in the installed package`);
      const path = write(`examples/${file.replace(/\W/g, '_')}_${line}.mts`, withAssertions(example.code));
      succeeds(run(process.execPath, ['--disable-warning=ExperimentalWarning', path], consumer), `${file}:${line}`);
    });
  }
});

describe('the checks can fail', () => {
  it('a wrong expectation in an example fails', () => {
    const path = write('examples/wrong.mts', withAssertions("import { formatTrace } from 'outbound-pools';\ntypeof formatTrace;\n// → 'number'\n"));
    const result = run(process.execPath, [path], consumer);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /AssertionError/);
    assert.ok(readdirSync(join(consumer, 'examples')).length > 1);
  });
});
