// Command-line flags of every `outbound-pools` command, checked with messages written for a
// person at a shell: node:util's parseArgs words its errors for programmers (and quotes them
// unevenly), so its tokens are read here and each mistake is named with the closest known flag.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './io.js';

/** The options table of a command, in node:util's parseArgs form. */
export type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * The edit distance between `a` and `b` (insertions, deletions, substitutions, and swaps of two
 * neighbours, so that `--mial-from` is one step from `--mail-from`).
 */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const substitution = rows[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      let best = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, substitution);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      row.push(best);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

/** Of `candidates`, the one closest to `word` (the first of equals); undefined when there is none. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    // A prefix of a known flag (--conc for --concurrency) is closer than any typo.
    const distance = candidate.startsWith(word) ? 0.5 : editDistance(word, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function flagName(name: string, options: Options): string {
  return name.length === 1 && !(name in options) ? `-${name}` : `--${name}`;
}

/**
 * Parses `args` against `options` (positionals allowed). An unknown flag, a string flag without
 * its value or a boolean flag with one is a {@link UsageError} naming the flag as typed and, for
 * an unknown one, the closest known flag.
 */
export function parseCommandLine<O extends Options>(args: readonly string[], options: O) {
  const { tokens } = parseArgs({ args: [...args], options, allowPositionals: true, strict: false, tokens: true });
  const known = Object.keys(options).map((name) => `--${name}`);
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = options[token.name];
    if (option === undefined) {
      const typed = token.rawName.startsWith('--') ? token.rawName : flagName(token.name, options);
      throw new UsageError(`unknown option ${typed} (did you mean ${closest(typed, known)}?)`);
    }
    if (option.type === 'string' && token.value === undefined) throw new UsageError(`${token.rawName} needs a value (${token.rawName} <value>)`);
    if (option.type === 'boolean' && token.value !== undefined) throw new UsageError(`${token.rawName} takes no value, got ${token.rawName}=${token.value}`);
  }
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (error) {
    // Every mistake parseArgs knows of is caught above; this keeps its message should one slip by.
    throw new UsageError((error as Error).message);
  }
}
