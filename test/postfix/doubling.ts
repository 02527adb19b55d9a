// The doubling series for the stream readers: time each size (the best of several runs), and
// judge the growth with the shared rule (isLinearGrowth: ~2× per doubling, ≤ 3×). A shared, loaded
// machine makes single timings jumpy, so the whole series is tried up to three times: a reader
// that is really quadratic fails every attempt (each doubling then costs four times as much).
import assert from 'node:assert/strict';
import { isLinearGrowth } from '../hostile/doubling.js';

const FLOOR_NS = 200_000;

/**
 * Asserts that `measure(size, reads)` (nanoseconds for `reads` reads of one input of `size`)
 * grows at most linearly along `sizes`. A series whose largest size takes under 4 × the floor
 * would pass whatever the reader does (every step is judged against the floor): it is measured
 * again with 4 × the reads, up to 64 ×, and fails if it still measures nothing. The reads grow,
 * not the sizes: above 256 KiB a reader's buffer is fresh memory from the kernel, whose page
 * faults cost a step of 15× (262,144 → 524,288 octets: 0.15 → 2.1 ms, CI on Node 24, stop 20).
 */
export function assertLinear(sizes: readonly number[], measure: (size: number, reads: number) => number, what: string): void {
  let reads = 1;
  for (let times = sizes.map((size) => measure(size, reads)); times[times.length - 1]! < 4 * FLOOR_NS; times = sizes.map((size) => measure(size, reads))) {
    assert.ok(reads < 64, `${what}: the largest of ${sizes.join(', ')} took ${times[times.length - 1]} ns for ${reads} read(s), under 4 × the floor of ${FLOOR_NS} ns: the series measures nothing`);
    reads *= 4;
  }
  const attempts: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const times = sizes.map((size) => measure(size, reads));
    // Steps from under 0.2 ms are judged against 0.2 ms: at that scale a collection or a tier-up
    // weighs more than the reader. The rule itself is the shared one (test/hostile/doubling.ts).
    const growth = times.slice(1).map((time, i) => time / Math.max(times[i]!, FLOOR_NS));
    if (isLinearGrowth(growth)) return;
    attempts.push(`${reads} read(s): ` + sizes.map((size, i) => `${size}: ${times[i]} ns`).join(', '));
  }
  assert.fail(`${what} is not linear in every attempt:\n${attempts.join('\n')}`);
}
