// Tiny timing helper shared by the bench modules.
// Rounds are short and interleaved across cases, with the order rotated each round,
// because on shared machines throughput drifts by tens of percent over seconds:
// every case then sees the same mix of fast and slow periods, and comparing cases
// round by round (pairedRatio) cancels most of that drift.
import { performance } from 'node:perf_hooks';

// Results are folded into this so V8 cannot treat a batch as dead code.
let sink = 0;

/**
 * A case timed in this process: `batch()` performs `opsPerBatch` ops and returns a number.
 * @returns {{ name: string, run: (ms: number) => number }}
 */
export function inProcess(name, opsPerBatch, batch) {
  return {
    name,
    // Whole batches until `ms` has elapsed; returns the achieved ops/s.
    run(ms) {
      let ops = 0;
      let elapsed = 0;
      const start = performance.now();
      do {
        sink ^= batch();
        ops += opsPerBatch;
        elapsed = performance.now() - start;
      } while (elapsed < ms);
      return (ops * 1000) / elapsed;
    },
  };
}

export function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  return sorted[lo] + (sorted[Math.ceil(pos)] - sorted[lo]) * (pos - lo);
}

/** Median over rounds of a[i] / b[i]: how many times faster `a` was than `b` in the same round. */
export function pairedRatio(a, b) {
  return quantile(a.map((x, i) => x / b[i]), 0.5);
}

/**
 * @param {{ name: string, run: (ms: number) => number | Promise<number> }[]} cases
 * @param {{ warmupMs: number, roundMs: number, rounds: number }} budget
 * @returns {Promise<Map<string, number[]>>} ops/s of each case, indexed by round.
 */
export async function benchmark(cases, { warmupMs, roundMs, rounds }) {
  for (const c of cases) await c.run(warmupMs);
  const samples = new Map(cases.map((c) => [c.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(i + r) % cases.length];
      samples.get(c.name)[r] = await c.run(roundMs);
    }
  }
  return samples;
}

/**
 * A case timed in this process whose op is asynchronous: `op(k)` is awaited `perBatch` times a
 * batch, with k counting up across batches; returns the achieved ops/s.
 * @returns {{ name: string, run: (ms: number) => Promise<number> }}
 */
export function asyncInProcess(name, perBatch, op) {
  let k = 0;
  return {
    name,
    async run(ms) {
      let ops = 0;
      let elapsed = 0;
      const start = performance.now();
      do {
        for (let j = 0; j < perBatch; j++) await op(k++);
        ops += perBatch;
        elapsed = performance.now() - start;
      } while (elapsed < ms);
      return (ops * 1000) / elapsed;
    },
  };
}

/** CPU time (user + system, every thread of the process: GC helpers included) in seconds. */
export function cpuSeconds() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/**
 * A case whose op may be synchronous or asynchronous, measured in ops per CPU-second: `op(k)`
 * is called `perBatch` times a batch (awaited when it returns a promise), k counting up across
 * batches and rounds; a round runs whole batches until `ms` of wall time have passed and
 * returns ops ÷ the process's CPU time (process.cpuUsage) over the round. CPU time rather than
 * wall time, so that time the machine gives to other processes does not count against the case.
 * @returns {{ name: string, run: (ms: number) => Promise<number> }}
 */
export function cpuCase(name, perBatch, op) {
  let k = 0;
  return {
    name,
    async run(ms) {
      let ops = 0;
      const startCpu = cpuSeconds();
      const start = performance.now();
      do {
        for (let j = 0; j < perBatch; j++) {
          const result = op(k++);
          if (result instanceof Promise) await result;
        }
        ops += perBatch;
      } while (performance.now() - start < ms);
      return ops / (cpuSeconds() - startCpu);
    },
  };
}

/** `{ median, min, max }` of a list of numbers. */
export function spread(values) {
  return { median: quantile(values, 0.5), min: Math.min(...values), max: Math.max(...values) };
}
