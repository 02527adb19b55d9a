#!/usr/bin/env node
// Runs test/**/*.test.ts with Node's own test runner, TypeScript loaded by tsx.
//
//   node scripts/run-tests.mjs              every test (needs the Debian peers and servers)
//   node scripts/run-tests.mjs --unit       only the tests that start no server and no peer
//   node scripts/run-tests.mjs FILE...      those files
//
// A test "starts a server or a peer" when it imports from test/servers/ or test/peers/, lives in
// test/integration/, or is the consumer test (which installs the packed tarball with npm).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

function needsServers(path) {
  if (path.startsWith(join('test', 'integration')) || path === join('test', 'package', 'consumer.test.ts')) return true;
  return /from '\.\.?\/(\.\.\/)?(servers|peers)\//.test(readFileSync(path, 'utf8'));
}

const args = process.argv.slice(2);
const unit = args.includes('--unit');
const only = args.filter((arg) => arg !== '--unit');
let files = only.length > 0 ? only : testFiles('test').sort();
if (unit) files = files.filter((path) => !needsServers(path));
// The spec reporter ends with every failing test again, with its error: a CI log that keeps only
// its last lines still says what failed.
const reporter = ['--test-reporter=spec', '--test-reporter-destination=stdout'];
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...reporter, ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
