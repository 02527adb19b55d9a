// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by file, the
// garbage collector and the idle time apart. Usage: node bench/lib/profile-summary.mjs FILE [top]
import { readFileSync } from 'node:fs';

const [file, topArg] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const top = Number(topArg ?? 25);
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfMicros = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const byFunction = new Map();
const byFile = new Map();
let total = 0;
let idle = 0;
for (const [id, micros] of selfMicros) {
  const { callFrame } = byId.get(id);
  if (callFrame.functionName === '(idle)') {
    idle += micros;
    continue;
  }
  total += micros;
  const where = callFrame.url.replace(/^.*\/(node_modules\/[^/]+|dist|src|bench|test)\//, '$1/') || '(native)';
  const fn = `${callFrame.functionName || '(anonymous)'} ${where}:${callFrame.lineNumber + 1}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + micros);
  const group = callFrame.functionName === '(garbage collector)' ? '(garbage collector)' : where;
  byFile.set(group, (byFile.get(group) ?? 0) + micros);
}
const pct = (m) => `${((m / total) * 100).toFixed(1).padStart(5)} %`;
console.log(`${(total / 1e6).toFixed(2)} s of samples (idle ${(idle / 1e6).toFixed(2)} s left out)`);
console.log('\nby file:');
for (const [name, m] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(m)}  ${name}`);
console.log('\nby function:');
for (const [name, m] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(m)}  ${name}`);
