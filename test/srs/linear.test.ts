// Hostile input costs linear time (issue 11): for each family of inputs, the size doubles five
// times and the time per call may at most about double with it; a step that grows more than 3×
// fails. Each size is timed in CPU time as the minimum of several runs, the sizes interleaved
// within a run, so that a busy moment on a shared machine slows one run of every size rather
// than one size.
// Inputs over MAX_ADDRESS_LENGTH are refused before any parsing; the families below the limit
// are made of the characters each parsing step looks for.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_ADDRESS_LENGTH, Srs, SrsError, parseSrs } from '../../src/srs/index.js';

const NOW = 1577836860_000;
const RUNS = 9;
const MAX_STEP = 3;
/** CPU time one timing aims at. */
const TIMING_MICROS = 3000;

const srs = new Srs({ secret: 'linear', longLocalPart: 'bounces' });

/** Runs `call`, which may throw SrsError and nothing else; returns the error code or 'ok'. */
function attempt(call: () => unknown): string {
  try {
    call();
    return 'ok';
  } catch (error) {
    if (!(error instanceof SrsError)) throw error;
    return error.code;
  }
}

/** CPU time (µs) this process has used: unlike the wall clock, it does not count the time other processes had the CPU. */
function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** CPU time per call (µs) of `calls` calls of `operation` on `input`. */
function timeCalls(input: string, operation: (input: string) => unknown, calls: number): number {
  const start = cpuMicros();
  for (let k = 0; k < calls; k++) attempt(() => operation(input));
  return (cpuMicros() - start) / calls;
}

/** Minimum CPU time per call (µs) of `operation` on each input, the inputs interleaved in every run. */
function timeSeries(inputs: readonly string[], operation: (input: string) => unknown): number[] {
  // Enough calls for one timing to take about TIMING_MICROS of CPU, so clock granularity and
  // the cost of reading the clock do not matter.
  // Warm up first: the optimising compiler runs on other threads, whose CPU time counts too.
  for (let round = 0; round < 3; round++) for (const input of inputs) timeCalls(input, operation, 100);
  const calls = inputs.map((input) => Math.min(20_000, Math.max(20, Math.ceil(TIMING_MICROS / timeCalls(input, operation, 50)))));
  const best = inputs.map(() => Infinity);
  for (let run = 0; run < RUNS; run++) {
    inputs.forEach((input, i) => {
      best[i] = Math.min(best[i]!, timeCalls(input, operation, calls[i]!));
    });
  }
  return best;
}

function assertLinear(name: string, sizes: readonly number[], make: (size: number) => string, operation: (input: string) => unknown) {
  // Decoded from bytes, as an MTA reads an address off the wire: a flat string. Built with
  // repeat() and slice() they would be rope and slice strings, whose mix across sizes makes V8
  // switch string access paths between sizes, which is not what is being measured.
  const inputs = sizes.map((size) => Buffer.from(make(size), 'utf8').toString('utf8'));
  const outcomes = inputs.map((input) => attempt(() => operation(input))); // also warms up every path
  assert.ok(
    outcomes.every((outcome) => outcome === outcomes[0]),
    `${name}: the family should give one outcome at every size, got ${outcomes.join(', ')}`,
  );
  // A step over the bound is measured again, up to twice, keeping each size's minimum: a burst
  // of load from elsewhere on a shared machine can slow every run of one size, a real
  // super-linear cost slows it every time.
  let times = timeSeries(inputs, operation);
  const grows = (): number[] => times.slice(1).map((t, i) => t / times[i]!);
  for (let retry = 0; retry < 2 && grows().some((step) => step > MAX_STEP); retry++) {
    const again = timeSeries(inputs, operation);
    times = times.map((t, i) => Math.min(t, again[i]!));
  }
  const steps = grows();
  const report = `${name}: ${sizes.map((s, i) => `${s}→${times[i]!.toFixed(2)}µs`).join(', ')}; steps ${steps.map((s) => s.toFixed(2)).join(' ')}`;
  console.log(report);
  assert.equal(steps.length, 5, 'five doublings');
  for (const step of steps) assert.ok(step <= MAX_STEP, `a doubling grew the time ${step.toFixed(2)}×: ${report}`);
}

/** Five doublings ending at `last`. */
const doublings = (last: number): number[] => [32, 16, 8, 4, 2, 1].map((d) => Math.floor(last / d));

/** Cuts `text` to `size` characters and appends a domain, keeping the whole within `size + 12`. */
const address = (text: string, size: number): string => `${text.slice(0, size)}@example.com`;

describe('SRS parsing is linear on hostile input', () => {
  const underLimit = doublings(MAX_ADDRESS_LENGTH - 12);
  // Each family keeps one outcome (the same error code, or success) at every size, so that a step
  // measures the size and not a switch between a cheap success and a costlier refusal.
  const families: [string, (size: number) => string][] = [
    ['thousands of =', (n) => address(`SRS0=${'='.repeat(n)}`, n)],
    ['= after every character', (n) => address(`SRS0=${'a='.repeat(n)}`, n)],
    ['a long host of labels, invalid at its end', (n) => address(`SRS0=AAAA=2W=${'ab.'.repeat(n)}`.slice(0, n - 4) + 'a-=x', n)],
    ['a long original local part that is itself SRS', (n) => address(`SRS0=AAAA=2W=example.org=SRS0=${'x'.repeat(n)}`, n)],
    ['SRS1 nested in SRS1', (n) => address('SRS1=AAAA=a.example='.repeat(n), n)],
    ['a quoted local part of escapes', (n) => `"SRS0=AAAA=2W=a.org=SRS0=${'\\"'.repeat(n)}`.slice(0, n - 1) + '"@example.com'],
    ['@ signs', (n) => address(`SRS0=${'@'.repeat(n)}`, n)],
    ['non-ASCII host and local part', (n) => address(`SRS0=AAAA=2W=${'ü.'.repeat(n / 8)}ü=SRS0=${'漢'.repeat(n)}`, n)],
  ];
  for (const [name, make] of families) {
    it(`reverse: ${name}, ${underLimit[0]} to ${underLimit[5]} characters`, () => {
      assertLinear(`reverse, ${name}`, underLimit, make, (input) => srs.reverse(input, { now: NOW }));
    });
    it(`forward and parseSrs: ${name}, ${underLimit[0]} to ${underLimit[5]} characters`, () => {
      assertLinear(`forward, ${name}`, underLimit, make, (input) => srs.forward(input, 'fwd.example', { now: NOW }));
      assertLinear(`parseSrs, ${name}`, underLimit, make, (input) => parseSrs(input));
    });
  }

  it('a plain sender with a long local part is refused in linear time by forward', () => {
    // Three-octet characters, so that even the shortest is over 64 octets once rewritten.
    const refusing = new Srs({ secret: 'linear' });
    assertLinear('forward, long sender', underLimit, (n) => address('漢'.repeat(n), n), (input) => refusing.forward(input, 'fwd.example', { now: NOW }));
  });

  it('inputs of 64 KB to 2 MB (MB-sized local parts, a million =) are refused up front, in constant time', () => {
    const huge = doublings(2 << 20);
    for (const [name, make] of [
      ['a huge local part', (n: number) => address(`SRS0=AAAA=2W=example.org=${'x'.repeat(n)}`, n)],
      ['a million =', (n: number) => address(`SRS0=${'='.repeat(n)}`, n)],
    ] as const) {
      for (const input of huge.map(make)) {
        for (const call of [() => srs.reverse(input, { now: NOW }), () => srs.forward(input, 'fwd.example', { now: NOW }), () => parseSrs(input)]) {
          assert.throws(call, (error: unknown) => error instanceof SrsError && error.code === 'invalid-address');
        }
      }
      assertLinear(`reverse, ${name} (refused)`, huge, make, (input) => srs.reverse(input, { now: NOW }));
    }
  });
});
