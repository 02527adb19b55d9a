// The ```ts examples of README.md and docs/*.md, made runnable: a line `// → value` after an
// expression statement becomes an assertion that the expression deep-equals `value`.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DocExample {
  /** `README.md` or `docs/x.md`, relative to the package. */
  readonly file: string;
  /** The line of the opening fence. */
  readonly line: number;
  readonly code: string;
}

/** The markdown files whose examples run: README.md and every docs/*.md of the package at `root`. */
export function documentedFiles(root: string): string[] {
  return ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
}

/** The ```ts blocks of `file` (relative to `root`), with their line numbers. */
export function examples(root: string, file: string): DocExample[] {
  const text = readFileSync(join(root, file), 'utf8');
  const blocks: DocExample[] = [];
  const fence = /^```ts\n([\s\S]*?)^```$/gm;
  for (let match = fence.exec(text); match !== null; match = fence.exec(text)) {
    blocks.push({ file, line: text.slice(0, match.index).split('\n').length, code: match[1]! });
  }
  return blocks;
}

/** Turns `expr; // comment` followed by `// → value` into an assertion on expr. */
export function withAssertions(code: string): string {
  const out: string[] = ["import { deepStrictEqual as __equal } from 'node:assert';"];
  for (const line of code.split('\n')) {
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
