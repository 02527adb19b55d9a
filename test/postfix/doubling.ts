// The doubling series for the stream readers: time each size (the best of several runs), and
// require every doubling to cost less than three times the previous size. A shared, loaded
// machine makes single timings jumpy, so the whole series is tried up to three times: a reader
// that is really quadratic fails every attempt (each doubling then costs four times as much).
import assert from 'node:assert/strict';

/** Asserts that `measure(size)` (nanoseconds) grows at most linearly along `sizes`. */
export function assertLinear(sizes: readonly number[], measure: (size: number) => number, what: string): void {
  const attempts: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const times = sizes.map(measure);
    const bad = times.findIndex((time, i) => i > 0 && time > times[i - 1]! * 3 + 100_000);
    if (bad === -1) return;
    attempts.push(sizes.map((size, i) => `${size}: ${times[i]} ns`).join(', '));
  }
  assert.fail(`${what} is not linear in every attempt:\n${attempts.join('\n')}`);
}
