// Runs every bench module (bench/*.mjs) in order, each in its own Node process so one
// bench's JIT state and heap cannot skew the next. Arguments (e.g. --quick) are passed on.
// Missed performance targets are reported, not failed; only a crashed bench fails the run.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
// soak.mjs (10M decisions, many minutes) and profile-*.mjs (loops for a CPU profile) run on their own.
const benches = readdirSync(dir)
  .filter((file) => file.endsWith('.mjs') && file !== 'run.mjs' && file !== 'soak.mjs' && !file.startsWith('profile-'))
  .sort();

console.log(`node ${process.version} | ${cpus()[0]?.model ?? 'unknown CPU'} | ${new Date().toISOString()}`);
for (const bench of benches) {
  console.log(`\n== ${bench} ==`);
  const { status } = spawnSync(process.execPath, [`${dir}${bench}`, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (status !== 0) process.exitCode = 1;
}
