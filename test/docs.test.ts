// Every TypeScript example in README.md and docs/ runs, and says what it claims: a line
// `// → value` after an expression asserts that the expression equals `value`.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** The ```ts blocks of a markdown file, with their line numbers. */
function examples(file: string): { line: number; code: string }[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const blocks: { line: number; code: string }[] = [];
  const fence = /^```ts\n([\s\S]*?)^```$/gm;
  for (let match = fence.exec(text); match !== null; match = fence.exec(text)) {
    blocks.push({ line: text.slice(0, match.index).split('\n').length, code: match[1]! });
  }
  return blocks;
}

/** Turns `expr; // comment` followed by `// → value` into an assertion on expr. */
function withAssertions(code: string): string {
  const lines = code.split('\n');
  const out: string[] = ["import { deepStrictEqual as __equal } from 'node:assert';"];
  for (const line of lines) {
    const expected = /^\s*\/\/ → (.+)$/.exec(line);
    if (expected === null) {
      out.push(line);
      continue;
    }
    let index = out.length - 1;
    while (index > 0 && /^\s*\/\//.test(out[index]!)) index--;
    const statement = /^(\s*)(.*?);\s*(\/\/.*)?$/.exec(out[index]!);
    assert.ok(statement, `an expectation must follow an expression statement: ${line}`);
    out[index] = `${statement[1]}__equal(${statement[2]}, ${expected[1]});`;
  }
  return out.join('\n');
}

describe('documentation examples run', () => {
  for (const file of DOCS) {
    for (const { line, code } of examples(file)) {
      it(`${file}:${line}`, () => {
        // Inside the package, so that `outbound-pools/...` imports resolve through "exports".
        const dir = join(ROOT, 'test', '.doc-examples');
        mkdirSync(dir, { recursive: true });
        const path = join(dir, `${file.replace(/\W/g, '_')}_${line}.ts`);
        writeFileSync(path, withAssertions(code));
        try {
          const result = spawnSync(process.execPath, ['--import', 'tsx', path], { encoding: 'utf8', cwd: ROOT });
          assert.equal(result.status, 0, `${file}:${line} failed:\n${result.stderr}`);
        } finally {
          rmSync(path, { force: true });
        }
      });
    }
  }

  it('there are examples to run', () => {
    assert.ok(DOCS.flatMap(examples).length >= 2);
  });
});
