// SRS forward+reverse throughput: our module (in both hash inputs) against the npm packages, a
// naive createHmac reference, and the Perl / Python libraries real MTAs use.
// One op = one forward plus one reverse of its output.
//
// A "run" is one fresh Node process (and fresh peer processes) timing every case in interleaved
// rounds, in CPU time (process.cpuUsage here, the process CPU clock inside the peers), so the
// time other processes on a shared machine take is not counted. Each run gives, per case, the
// median over rounds of ours ÷ that case in the same round; the report gives the median and the
// range of those ratios over the runs (SPEC §6: median and range of at least five).
//
// Usage: node bench/srs.mjs [--quick] [--runs N]   (normally via bench/run.mjs)
//        node bench/srs.mjs --one-run [--quick]     (one run, JSON on stdout; used by the above)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateAddresses } from './lib/addresses.mjs';
import { benchmark, pairedRatio, quantile } from './lib/measure.mjs';
import { PEERS, startPeer } from './lib/peers.mjs';
import { DELIMITED, OURS, loadImplementations } from './lib/srs-impls.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const runsArg = args.indexOf('--runs');
const runs = runsArg >= 0 ? Number(args[runsArg + 1]) : 5;
const budget = quick ? { warmupMs: 200, roundMs: 100, rounds: 5 } : { warmupMs: 1000, roundMs: 100, rounds: 20 };
const NPM = ['sender-rewriting-scheme', 'srs.js'];
const MAIL_SRS = 'Mail::SRS (Perl)';
const ADDRESSES = 1000;

/** Results are folded into this so V8 cannot treat a batch as dead code. */
let sink = 0;

/** A case timed in this process in CPU time: whole batches until `ms` of CPU has been used; returns ops/s. */
function cpuCase(name, opsPerBatch, batch) {
  return {
    name,
    run(ms) {
      const budgetMicros = ms * 1000;
      const start = process.cpuUsage();
      let ops = 0;
      let used = 0;
      do {
        sink ^= batch();
        ops += opsPerBatch;
        const { user, system } = process.cpuUsage(start);
        used = user + system;
      } while (used < budgetMicros);
      return (ops * 1e6) / used;
    },
  };
}

/** One run: every case, interleaved rounds; returns { samples: { name: ops/s per round }, unmeasured }. */
async function oneRun() {
  const addresses = generateAddresses(ADDRESSES);
  const impls = await loadImplementations();
  // A broken adapter (say, reverse returning its input) must fail here, not report a fantastic number.
  for (const impl of impls) {
    for (const address of addresses) {
      const forwarded = impl.forward(address);
      assert.match(forwarded, /^SRS0[-+=].*@example\.com$/i, `${impl.name}: forward(${address})`);
      assert.equal(impl.reverse(forwarded), address, `${impl.name}: reverse(${forwarded})`);
    }
  }
  const cases = impls.map((impl) =>
    cpuCase(impl.name, addresses.length, () => {
      let chars = 0;
      for (const address of addresses) chars += impl.reverse(impl.forward(address)).length;
      return chars;
    }),
  );
  const dir = mkdtempSync(join(tmpdir(), 'srs-bench-'));
  const addressFile = join(dir, 'addresses.txt');
  writeFileSync(addressFile, `${addresses.join('\n')}\n`);
  const unmeasured = {};
  for (const peer of PEERS) {
    try {
      cases.push(await startPeer(peer, addressFile));
    } catch (err) {
      unmeasured[peer.name] = err.message;
    }
  }
  try {
    const samples = await benchmark(cases, budget);
    return { samples: Object.fromEntries(samples), unmeasured, sink };
  } finally {
    for (const c of cases) c.close?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (args.includes('--one-run')) {
  console.log(JSON.stringify(await oneRun()));
} else {
  assert.ok(Number.isInteger(runs) && runs >= 1, '--runs takes a positive integer');
  const script = fileURLToPath(import.meta.url);
  /** Per run: { ratio: { name: ours ÷ name }, opsPerSec: { name: median ops/s } }. */
  const results = [];
  let unmeasured = {};
  for (let r = 0; r < runs; r++) {
    const child = spawnSync(process.execPath, [script, '--one-run', ...(quick ? ['--quick'] : [])], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (child.status !== 0) throw new Error(`run ${r + 1} failed:\n${child.stderr}`);
    const run = JSON.parse(child.stdout);
    unmeasured = run.unmeasured;
    const ours = run.samples[OURS];
    results.push({
      ratio: Object.fromEntries(Object.entries(run.samples).map(([name, xs]) => [name, pairedRatio(ours, xs)])),
      opsPerSec: Object.fromEntries(Object.entries(run.samples).map(([name, xs]) => [name, quantile(xs, 0.5)])),
    });
    process.stderr.write(`run ${r + 1}/${runs}: ${NPM.map((n) => `${n} ${results.at(-1).ratio[n].toFixed(2)}×`).join(', ')}\n`);
  }

  const names = Object.keys(results[0].ratio);
  const over = (name, what) => results.map((result) => result[what][name]);
  const summary = (values) => ({ median: quantile(values, 0.5), min: Math.min(...values), max: Math.max(...values) });
  const fmt = (n) => Math.round(n).toLocaleString('en-US');
  const range = ({ min, max }, digits = 2) => `${min.toFixed(digits)}–${max.toFixed(digits)}`;

  console.log(
    `SRS forward+reverse, ${ADDRESSES} addresses; ${runs} runs (each a fresh process), each ${budget.rounds} interleaved ` +
      `rounds of ${budget.roundMs} ms CPU after ${budget.warmupMs} ms warm-up${quick ? ' (--quick)' : ''}\n`,
  );
  console.log(`${'implementation'.padEnd(34)}${'ops/s (median of runs)'.padStart(24)}${'ours ÷ this, median'.padStart(21)}${'range over runs'.padStart(17)}`);
  for (const name of names) {
    const ops = summary(over(name, 'opsPerSec'));
    const ratio = summary(over(name, 'ratio'));
    console.log(`${name.padEnd(34)}${fmt(ops.median).padStart(24)}${`${ratio.median.toFixed(2)}×`.padStart(21)}${range(ratio).padStart(17)}`);
  }
  for (const [name, reason] of Object.entries(unmeasured)) console.log(`${name.padEnd(34)}  not measured: ${reason}`);

  const ratioOf = (name) => (names.includes(name) ? summary(over(name, 'ratio')) : null);
  const fastestNpm = NPM.reduce((a, b) => (ratioOf(a).median <= ratioOf(b).median ? a : b));
  const target = (label, name, factor) => {
    const r = ratioOf(name);
    const verdict = r === null ? `n/a (${name} not measured)` : `${r.median >= factor ? 'met' : 'NOT met'} (median ${r.median.toFixed(2)}×, range ${range(r)})`;
    console.log(`target ≥ ${factor}× ${label}: ${verdict}`);
  };
  console.log('');
  target(`the fastest npm package (${fastestNpm})`, fastestNpm, 2);
  target(MAIL_SRS, MAIL_SRS, 4);
  const delimited = ratioOf(DELIMITED);
  console.log(
    `hashInput 'delimited' costs: concatenated ÷ delimited = ${delimited.median.toFixed(3)}× (range ${range(delimited, 3)}), ` +
      `i.e. ${((1 - 1 / delimited.median) * 100).toFixed(1)} % fewer ops/s`,
  );

  console.log(`
notes:
- Times are CPU time: process.cpuUsage (user + system, all threads) around whole batches in Node;
  CLOCK_PROCESS_CPUTIME_ID in Perl and time.process_time() in Python, inside their own
  long-lived processes (no start-up or IPC in the number), one round per request, interleaved
  with the Node cases and the order rotated every round.
- "ours ÷ this" is per run the median over rounds of ours / this in the same round, which
  cancels most machine drift; the table gives the median and the range of that over the runs.
- Every implementation round-trips every address before timing; the outputs are not
  interchangeable, only equivalent work is compared.
- srs.js rewrites local parts only; its adapter splits and rejoins "@domain" around each call.
- sender-rewriting-scheme (hex HMAC-SHA256) and srs.js (hex HMAC-SHA1) hash the fields as given,
  so neither interoperates with Mail::SRS, pysrs, postsrsd or ours (base64 HMAC-SHA1, lowercased).
- Ours and the naive reference take a fixed "now"; the others read the clock on every call.`);
}
