// The doubling series for the stream readers: time each size (the best of several runs), and
// judge the growth with the shared rule (isLinearGrowth: ~2× per doubling, ≤ 3×). A shared, loaded
// machine makes single timings jumpy, so the whole series is tried up to three times: a reader
// that is really quadratic fails every attempt (each doubling then costs four times as much).
import assert from 'node:assert/strict';
import { isLinearGrowth } from '../hostile/doubling.js';

const FLOOR_NS = 200_000;

/**
 * Asserts that `measure(size)` (nanoseconds) grows at most linearly along `sizes`. A series whose
 * largest size takes under 4 × the floor would pass whatever the reader does (every step is
 * judged against the floor): it is measured again at 4 × the sizes, up to 64 ×, and fails if it
 * still measures nothing.
 */
export function assertLinear(given: readonly number[], measure: (size: number) => number, what: string): void {
  let sizes = given;
  for (let times = sizes.map(measure); times[times.length - 1]! < 4 * FLOOR_NS; times = sizes.map(measure)) {
    assert.ok(sizes[0]! < given[0]! * 64, `${what}: the largest of ${sizes.join(', ')} took ${times[times.length - 1]} ns, under 4 × the floor of ${FLOOR_NS} ns: the series measures nothing`);
    sizes = sizes.map((size) => size * 4);
  }
  const attempts: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const times = sizes.map(measure);
    // Steps from under 0.2 ms are judged against 0.2 ms: at that scale a collection or a tier-up
    // weighs more than the reader. The rule itself is the shared one (test/hostile/doubling.ts).
    const growth = times.slice(1).map((time, i) => time / Math.max(times[i]!, FLOOR_NS));
    if (isLinearGrowth(growth)) return;
    attempts.push(sizes.map((size, i) => `${size}: ${times[i]} ns`).join(', '));
  }
  assert.fail(`${what} is not linear in every attempt:\n${attempts.join('\n')}`);
}
