// SRS forward+reverse throughput: our module against the npm packages, a naive
// createHmac reference, and the Perl / Python libraries real MTAs use.
// One op = one forward plus one reverse of its output.
// Usage: node bench/srs.mjs [--quick]   (normally via bench/run.mjs)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateAddresses } from './lib/addresses.mjs';
import { benchmark, inProcess, pairedRatio, quantile } from './lib/measure.mjs';
import { PEERS, startPeer } from './lib/peers.mjs';
import { loadImplementations } from './lib/srs-impls.mjs';

const quick = process.argv.includes('--quick');
const budget = quick
  ? { warmupMs: 200, roundMs: 100, rounds: 5 }
  : { warmupMs: 1000, roundMs: 100, rounds: 50 };
const OURS = 'outbound-pools (ours)';
const NPM = ['sender-rewriting-scheme', 'srs.js'];
const MAIL_SRS = 'Mail::SRS (Perl)';

const addresses = generateAddresses(1000);
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
  inProcess(impl.name, addresses.length, () => {
    let chars = 0;
    for (const address of addresses) chars += impl.reverse(impl.forward(address)).length;
    return chars;
  }),
);

const dir = mkdtempSync(join(tmpdir(), 'srs-bench-'));
const addressFile = join(dir, 'addresses.txt');
writeFileSync(addressFile, `${addresses.join('\n')}\n`);
const unmeasured = new Map();
for (const peer of PEERS) {
  try {
    cases.push(await startPeer(peer, addressFile));
  } catch (err) {
    unmeasured.set(peer.name, err.message);
  }
}
let samples;
try {
  samples = await benchmark(cases, budget);
} finally {
  for (const c of cases) c.close?.();
  rmSync(dir, { recursive: true, force: true });
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const ratio = (name) => samples.has(name) && pairedRatio(samples.get(OURS), samples.get(name));

console.log(
  `SRS forward+reverse, ${addresses.length} addresses, ${budget.rounds} interleaved rounds of ${budget.roundMs} ms` +
    ` after ${budget.warmupMs} ms warm-up${quick ? ' (--quick)' : ''}\n`,
);
console.log(`${'implementation'.padEnd(26)}${'median ops/s'.padStart(14)}${'IQR'.padStart(7)}${'ours ÷ this'.padStart(14)}`);
for (const [name, xs] of samples) {
  const iqr = (quantile(xs, 0.75) - quantile(xs, 0.25)) / quantile(xs, 0.5);
  console.log(
    `${name.padEnd(26)}${fmt(quantile(xs, 0.5)).padStart(14)}${`${Math.round(iqr * 100)}%`.padStart(7)}` +
      `${`${ratio(name).toFixed(2)}×`.padStart(14)}`,
  );
}
for (const [name, reason] of unmeasured) console.log(`${name.padEnd(26)}  not measured: ${reason}`);

const fastestNpm = NPM.reduce((a, b) => (ratio(a) <= ratio(b) ? a : b));
const target = (label, name, factor) => {
  const r = ratio(name);
  const verdict = r === false ? `n/a (${name} not measured)` : `${r >= factor ? 'met' : 'NOT met'} (${r.toFixed(2)}×)`;
  console.log(`target ≥ ${factor}× ${label}: ${verdict}`);
};
console.log('');
target(`the fastest npm package (${fastestNpm})`, fastestNpm, 2);
target(MAIL_SRS, MAIL_SRS, 4);

console.log(`
notes:
- "ours ÷ this" is the median over rounds of ours / this in the same round, which cancels most
  machine drift; IQR is the interquartile range of a row's rounds relative to its median.
- Every implementation round-trips every address before timing; the outputs are not
  interchangeable, only equivalent work is compared.
- srs.js rewrites local parts only; its adapter splits and rejoins "@domain" around each call.
- sender-rewriting-scheme (hex HMAC-SHA256) and srs.js (hex HMAC-SHA1) hash the fields as given,
  so neither interoperates with Mail::SRS, pysrs, postsrsd or ours (base64 HMAC-SHA1, lowercased).
- Ours and the naive reference take a fixed "now"; the others read the clock on every call.
- Mail::SRS and pysrs time themselves in their own long-lived process (no start-up or IPC in
  the number), one round per request, interleaved with the Node cases.`);
