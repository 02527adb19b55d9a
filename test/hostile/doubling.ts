// The doubling series every parser is held to (SPEC §6, "Hostile input"): the same hostile
// shape at sizes n, 2n, 4n … (five doublings), the time of each size the minimum of several
// runs, and the growth of each step — time(2n) / time(n) — compared with a bound. A linear
// parser grows about 2× a step; a quadratic one 4×. A ratio of times from one process, never an
// absolute timing, so a slow or busy machine passes the same test as a fast one.

import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';

/** Options of {@link doublingSeries}. */
export interface DoublingOptions {
  /** The smallest size; the series is start, 2·start, … 2^doublings·start. */
  readonly start: number;
  /** How many times the size doubles (default 5). */
  readonly doublings?: number;
  /** Runs per size; the minimum counts (default 5). */
  readonly runs?: number;
  /** The bound on one step's growth (default 3). */
  readonly maxGrowth?: number;
  /**
   * Calls per run, the same for every size: by default as many as make the smallest size take
   * about `minRunMs`, so that the clock's resolution and timer noise do not decide the ratio.
   */
  readonly minRunMs?: number;
}

/** What a series measured. */
export interface DoublingResult {
  readonly sizes: readonly number[];
  /** Milliseconds per run (of `calls` calls), the minimum over the runs, per size. */
  readonly times: readonly number[];
  /** times[i + 1] / times[i]. */
  readonly growth: readonly number[];
  readonly calls: number;
  /** Set when the series stopped early at a step over the bound (a nonlinear parser at 32× would take minutes). */
  readonly stoppedEarly: boolean;
}

async function timeRun(input: unknown, run: (input: never) => unknown, calls: number): Promise<number> {
  const start = performance.now();
  for (let call = 0; call < calls; call++) {
    const result = run(input as never);
    if (result instanceof Promise) await result;
  }
  return performance.now() - start;
}

/**
 * Measures `run` on `make(size)` for each size of the series. Inputs are made before timing;
 * a run may be async. Stops at the first step over `maxGrowth` (measured with all its runs).
 */
export async function doublingSeries<T>(make: (size: number) => T, run: (input: T) => unknown, options: DoublingOptions): Promise<DoublingResult> {
  const { start, doublings = 5, runs = 5, maxGrowth = 3, minRunMs = 4 } = options;
  const sizes = Array.from({ length: doublings + 1 }, (_, i) => start * 2 ** i);
  // Warm up (and let the JIT see the shape) on the smallest input, then calibrate on it.
  const first = make(sizes[0]!);
  await timeRun(first, run as (input: never) => unknown, 3);
  let calls = 1;
  while ((await timeRun(first, run as (input: never) => unknown, calls)) < minRunMs && calls < 1 << 16) calls *= 2;

  const times: number[] = [];
  const growth: number[] = [];
  let stoppedEarly = false;
  for (const size of sizes) {
    const input = make(size);
    let best = Infinity;
    for (let r = 0; r < runs; r++) best = Math.min(best, await timeRun(input, run as (input: never) => unknown, calls));
    times.push(best);
    if (times.length > 1) {
      growth.push(best / times[times.length - 2]!);
      if (growth.at(-1)! > maxGrowth) {
        stoppedEarly = times.length < sizes.length;
        break;
      }
    }
  }
  return { sizes: sizes.slice(0, times.length), times, growth, calls, stoppedEarly };
}

/** The series in words, for assertion messages and the report. */
export function describeSeries(result: DoublingResult): string {
  const steps = result.growth.map((g, i) => `${result.sizes[i]}→${result.sizes[i + 1]}: ${g.toFixed(2)}×`);
  const last = result.times.at(-1)!;
  return `growth per doubling ${steps.join(', ')} (${result.calls} call(s) per run; ${(last / result.calls).toFixed(2)} ms per call at ${result.sizes.at(-1)})${result.stoppedEarly ? '; stopped early' : ''}`;
}

/**
 * Asserts that `run` is linear on `make`'s inputs: no step of the doubling series grows more
 * than `maxGrowth`. A failing step is measured once more, as a whole new series, before the
 * test fails: one busy moment on a shared machine is not a quadratic parser.
 */
export async function assertLinear<T>(make: (size: number) => T, run: (input: T) => unknown, options: DoublingOptions): Promise<DoublingResult> {
  const maxGrowth = options.maxGrowth ?? 3;
  let result = await doublingSeries(make, run, options);
  if (result.growth.every((g) => g <= maxGrowth)) return result;
  const again = await doublingSeries(make, run, options);
  // The better of the two series, step by step: noise only ever adds time.
  if (again.growth.every((g) => g <= maxGrowth)) return again;
  result = again.growth.length > result.growth.length ? again : result;
  assert.fail(`not linear: ${describeSeries(result)} (bound ${maxGrowth}×, in two series)`);
}
