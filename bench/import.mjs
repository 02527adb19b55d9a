// The cost of `import('outbound-pools')` (and of each other entry) in a fresh process: wall and
// CPU time of the import alone, over fresh processes, as median and range. Importing the root
// entry must load no adapter (test/package/consumer.test.ts checks which files load); the target
// (issue 10) is ≤ 50 ms here. Run with `node bench/import.mjs [runs]` after `npm run build`.
import { spawnSync } from 'node:child_process';

const RUNS = Number(process.argv[2] ?? 15);
const ENTRIES = ['outbound-pools', 'outbound-pools/srs', 'outbound-pools/mailauth', 'outbound-pools/rspamd', 'outbound-pools/redis'];
const PROBE = `const cpu = process.cpuUsage(); const started = performance.now();
await import(process.argv[1]);
const used = process.cpuUsage(cpu);
console.log(JSON.stringify({ wall: performance.now() - started, cpu: (used.user + used.system) / 1000 }));`;

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const fmt = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `median ${quantile(sorted, 0.5).toFixed(1)} ms (${sorted[0].toFixed(1)}–${sorted[sorted.length - 1].toFixed(1)})`;
};

console.log(`import() in a fresh process, ${RUNS} processes per entry, Node ${process.version}`);
const samples = new Map(ENTRIES.map((entry) => [entry, { wall: [], cpu: [] }]));
for (let run = 0; run < RUNS; run++) {
  for (const entry of ENTRIES) {
    // Interleaved, so that a busy stretch of the machine weighs on every entry alike.
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE, entry], { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname });
    if (result.status !== 0) throw new Error(`${entry}: ${result.stderr}`);
    const { wall, cpu } = JSON.parse(result.stdout);
    samples.get(entry).wall.push(wall);
    samples.get(entry).cpu.push(cpu);
  }
}
for (const [entry, { wall, cpu }] of samples) {
  console.log(`  ${entry.padEnd(26)} wall ${fmt(wall)}, CPU ${fmt(cpu)}`);
}
const root = [...samples.get('outbound-pools').wall].sort((a, b) => a - b);
console.log(`target: import('outbound-pools') ≤ 50 ms wall (median): ${quantile(root, 0.5) <= 50 ? 'met' : 'NOT met'} on this run`);
