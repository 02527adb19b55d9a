#!/usr/bin/env node
// After `tsc`: CommonJS doors for the ESM entry points, so that `require('outbound-pools')` has
// types that say CommonJS (what @arethetypeswrong/cli checks for node16 from CJS).
//
// The code stays ESM, once: each door is a one-line CommonJS module that `require()`s the ESM
// entry — Node ≥ 22.12 loads ES modules from require() (require(esm)) — so a program that both
// imports and requires the package gets the same module instance, not two copies. Its types are
// the ESM declarations copied into `dist/cjs/`, whose package.json says "commonjs": TypeScript
// then reads the same declarations as a CommonJS module's.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const DIST = 'dist';
const CJS = join(DIST, 'cjs');
/** The ESM entry points (dist-relative folders holding index.js; '' is the root). */
const ENTRIES = ['', 'srs', 'mailauth', 'rspamd', 'redis', 'metrics', 'postfix'];

rmSync(CJS, { recursive: true, force: true });
mkdirSync(CJS, { recursive: true });
writeFileSync(join(CJS, 'package.json'), '{ "type": "commonjs" }\n');

// Every declaration file, without its map (the copy's relative paths would point elsewhere).
function copyDeclarations(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const from = join(dir, entry.name);
    if (from === CJS || from === join(DIST, 'cli') || from === join(DIST, 'haraka')) continue; // not entries of their own here
    if (entry.isDirectory()) {
      copyDeclarations(from);
    } else if (entry.name.endsWith('.d.ts')) {
      const to = join(CJS, relative(DIST, from));
      mkdirSync(dirname(to), { recursive: true });
      writeFileSync(to, readFileSync(from, 'utf8').replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n'));
    }
  }
}
copyDeclarations(DIST);

for (const entry of ENTRIES) {
  const door = join(CJS, entry, 'index.js');
  const target = relative(dirname(door), join(DIST, entry, 'index.js')).replace(/^(?!\.)/, './');
  mkdirSync(dirname(door), { recursive: true });
  writeFileSync(door, `'use strict';\n// require(esm): the ESM entry itself, one instance for require() and import alike.\nmodule.exports = require('${target}');\n`);
}
