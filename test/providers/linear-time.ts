// A doubling series for the parsers of this area (Authentication-Results, Received): sizes
// base, 2·base, … 32·base; no doubling of the input may more than about triple the time —
// linear input gives 2×, quadratic 4× (one outlying step allowed, as test/hostile/doubling.ts says). How the time of a size is taken, so that the ratio
// measures the parser and not the machine:
// - CPU time of the process, not the wall clock, which other processes stretch at will (the
//   thread's own CPU time would be better, but Linux counts it in scheduler ticks);
// - every measurement handles the same amount of input (size × repetitions = 32·base), so each
//   costs about the same and none is small enough for the clock's resolution to matter;
// - rounds interleave the sizes, and the fastest round of a size counts (noise only adds time).
// No collection is forced between measurements: V8 sweeps concurrently after one, on helper
// threads whose CPU time would land in the next measurement.
import assert from 'node:assert/strict';
import { isLinearGrowth } from '../hostile/doubling.js';

/** Doublings after the first size (six sizes in all). */
const DOUBLINGS = 5;
/** Rounds over all sizes; the fastest of each size counts. */
const ROUNDS = 9;
/** The growth per doubling that fails. */
const MAX_STEP = 3;


/**
 * Times `run(input(size))` per run at base, 2·base, … 32·base and fails when one doubling more
 * than triples it. `input` is built outside the timing. Returns the times per run, in ms.
 */
export function assertLinear(what: string, base: number, input: (size: number) => unknown, run: (value: unknown) => unknown): number[] {
  const values = Array.from({ length: DOUBLINGS + 1 }, (_, step) => input(base * 2 ** step));
  const times = values.map(() => Infinity);
  for (const value of values) run(value); // warm up: compile before timing
  for (let round = 0; round < ROUNDS; round++) {
    values.forEach((value, step) => {
      const repetitions = 2 ** (DOUBLINGS - step);
      const start = process.cpuUsage();
      for (let i = 0; i < repetitions; i++) run(value);
      const used = process.cpuUsage(start);
      times[step] = Math.min(times[step]!, (used.user + used.system) / 1000 / repetitions);
    });
  }
  const shown = times.map((ms) => `${ms.toFixed(3)} ms`).join(', ');
  // A size the clock saw take no time would make a growth of 0/0 (NaN), which no bound refuses.
  assert.ok(times.every((ms) => Number.isFinite(ms) && ms > 0), `${what}: a size measured no CPU time (${shown}): the series measured nothing; raise the base size`);
  const growth = times.slice(1).map((time, step) => time / times[step]!);
  // One outlying step (a collection, a tier-up) is not growth: the shared rule of test/hostile/doubling.ts.
  assert.ok(isLinearGrowth(growth, MAX_STEP), `${what}: growth per doubling ${growth.map((g) => `${g.toFixed(1)}×`).join(', ')} from ${base} (${shown})`);
  return times;
}
