// The doubling series every parser is held to (SPEC §6, "Hostile input"): the same hostile
// shape at sizes n, 2n, 4n … (five doublings), the time of each size the minimum of several
// runs, and the growth of each step — time(2n) / time(n) — compared with a bound. A linear
// parser grows about 2× a step; a quadratic one 4×. A ratio of times from one process, never an
// absolute timing, so a slow or busy machine passes the same test as a fast one.
//
// Keep a series below 64 Ki characters (32 Ki for text outside Latin-1, two bytes a character):
// V8 puts a string over 128 KB in its large-object space, and a parser that copies its input
// (a slice that gets flattened, a trim, a regex over a cons string) pays up to 200× more per
// character there — measured: `(s + ' ').trim()` 0.1 ns a character at 64 Ki, 20 ns at
// 128 Ki, then 2× a doubling again. A series that crosses the threshold reports that one step,
// which is the heap's, not the parser's; a quadratic parser shows 4× a step well below it.

import assert from 'node:assert/strict';

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
  /** CPU milliseconds per run (of `calls` calls), the minimum over the runs, per size. */
  readonly times: readonly number[];
  /** times[i + 1] / times[i]. */
  readonly growth: readonly number[];
  readonly calls: number;
  /** Set when the series stopped early at a step over twice the bound (a nonlinear parser at 32× would take minutes). */
  readonly stoppedEarly: boolean;
}

/** CPU time, in milliseconds, of `calls` calls: the process's own, so other processes on a shared machine do not count. */
async function timeRun(input: unknown, run: (input: never) => unknown, calls: number): Promise<number> {
  const start = process.cpuUsage();
  for (let call = 0; call < calls; call++) {
    const result = run(input as never);
    if (result instanceof Promise) await result;
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

/** A first-round run longer than this, after a step over twice the bound, ends the series. */
const STOP_AFTER_MS = 200;

/**
 * Measures `run` on `make(size)` for each size of the series, in CPU time. Inputs are made
 * before timing; a run may be async. The runs go round the sizes (every size once, then again)
 * so that a change of machine load or clock speed touches all sizes alike. The first round
 * stops at a long run that grew over twice `maxGrowth`: a nonlinear parser at 32× could take minutes.
 */
export async function doublingSeries<T>(make: (size: number) => T, run: (input: T) => unknown, options: DoublingOptions): Promise<DoublingResult> {
  const { start, doublings = 5, runs = 5, maxGrowth = 3, minRunMs = 2 } = options;
  const call = run as (input: never) => unknown;
  let sizes = Array.from({ length: doublings + 1 }, (_, i) => start * 2 ** i);
  // Warm up (and let the JIT see the shape) on the smallest input, then calibrate on it.
  const first = make(sizes[0]!);
  await timeRun(first, call, 3);
  // The fastest of three runs decides: one run that met a collection or the JIT would otherwise
  // stop the calibration at a few calls, and the series would time runs of microseconds.
  const fastest = async (calls: number): Promise<number> => Math.min(await timeRun(first, call, calls), await timeRun(first, call, calls), await timeRun(first, call, calls));
  let calls = 1;
  while ((await fastest(calls)) < minRunMs && calls < 1 << 16) calls *= 2;

  const inputs = [first];
  const times = [await timeRun(first, call, calls)];
  let stoppedEarly = false;
  for (const size of sizes.slice(1)) {
    const input = make(size);
    await timeRun(input, call, 1);
    inputs.push(input);
    times.push(await timeRun(input, call, calls));
    // Only a long run is worth cutting short; a short one may have met a GC pause.
    if (times.at(-1)! > STOP_AFTER_MS && times.at(-1)! > 2 * maxGrowth * times.at(-2)!) {
      stoppedEarly = inputs.length < sizes.length;
      break;
    }
  }
  sizes = sizes.slice(0, inputs.length);
  for (let r = 1; r < runs; r++) {
    for (let i = 0; i < inputs.length; i++) times[i] = Math.min(times[i]!, await timeRun(inputs[i], call, calls));
  }
  const growth = times.slice(1).map((time, i) => time / times[i]!);
  return { sizes, times, growth, calls, stoppedEarly };
}

/** The series in words, for assertion messages and the report. */
export function describeSeries(result: DoublingResult): string {
  const steps = result.growth.map((g, i) => `${result.sizes[i]}→${result.sizes[i + 1]}: ${g.toFixed(2)}×`);
  const last = result.times.at(-1)!;
  return `growth per doubling ${steps.join(', ')} (${result.calls} call(s) per run; ${(last / result.calls).toFixed(2)} ms per call at ${result.sizes.at(-1)})${result.stoppedEarly ? '; stopped early' : ''}`;
}

/**
 * Whether the growth per doubling of a series is linear: every step within `maxGrowth`; or one
 * step up to {@link OUTLIER_GROWTH} when all the others are within `maxGrowth` and the whole
 * series grew no more than {@link MEAN_GROWTH} per doubling on average. One step over the bound
 * is a one-time cost, not growth — V8 moves strings over ~128 KB to its large-object space, where
 * a copy costs much more per character, and a collection can land in one measurement — while a
 * quadratic parser grows ~4× at every step and fails both ways.
 */
export function isLinearGrowth(growth: readonly number[], maxGrowth = 3): boolean {
  const over = growth.filter((g) => g > maxGrowth);
  if (over.length === 0) return true;
  const overall = growth.reduce((product, g) => product * g, 1);
  return over.length === 1 && over[0]! <= OUTLIER_GROWTH && overall <= MEAN_GROWTH ** growth.length;
}

/** The most one outlying step of a linear series may grow ({@link isLinearGrowth}). */
export const OUTLIER_GROWTH = 4.5;
/** The mean growth per doubling a series with an outlier must stay within (linear: 2). */
export const MEAN_GROWTH = 2.5;

/**
 * Asserts that `run` is linear on `make`'s inputs: no step of the doubling series grows more
 * than `maxGrowth`. A failing step is measured once more, as a whole new series, before the
 * test fails, and then the two series are taken together (each size at its fastest): one busy
 * moment on a shared machine is not a quadratic parser, which is slow at every try.
 */
export async function assertLinear<T>(make: (size: number) => T, run: (input: T) => unknown, options: DoublingOptions): Promise<DoublingResult> {
  const maxGrowth = options.maxGrowth ?? 3;
  // A series that stopped early measured too few sizes to pass, whatever its minimums say.
  const linear = (series: DoublingResult) => !series.stoppedEarly && isLinearGrowth(series.growth, maxGrowth);
  const result = await doublingSeries(make, run, options);
  if (linear(result)) return result;
  const again = await doublingSeries(make, run, options);
  if (linear(again)) return again;
  // Each size's fastest run over both series: a burst of load that slowed one size in one series
  // is gone from the other; a nonlinear parser is slow at that size in both.
  const both = fastestOfBoth(result, again);
  if (both !== undefined && linear(both)) return both;
  const shown = both ?? (again.growth.length > result.growth.length ? again : result);
  assert.fail(`not linear: ${describeSeries(shown)} (bound ${maxGrowth}×, in two series)`);
}

/** Two whole series taken together, each size at its fastest (per call, in `a`'s calls per run); undefined when one stopped early. */
function fastestOfBoth(a: DoublingResult, b: DoublingResult): DoublingResult | undefined {
  if (a.stoppedEarly || b.stoppedEarly || a.sizes.length !== b.sizes.length) return undefined;
  const times = a.times.map((time, i) => Math.min(time, (b.times[i]! * a.calls) / b.calls));
  const growth = times.slice(1).map((time, i) => time / times[i]!);
  return { sizes: a.sizes, times, growth, calls: a.calls, stoppedEarly: false };
}
