// Starts test/redis/limiter-worker.ts in a child process (its own Redis rate limiter and
// connections) for the cross-process tests; every child still running is killed after the tests.
import { after } from 'node:test';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const WORKER = fileURLToPath(new URL('./limiter-worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const children = new Set<ReturnType<typeof spawn>>();
after(() => {
  for (const child of children) child.kill('SIGKILL');
});

/** What a `tenant` worker prints when done. */
export interface TenantWorkerResult {
  readonly counted: number;
  readonly refused: number;
  readonly tenantRefused: number;
  readonly failed: number;
  readonly ms: number;
}

/** Starts the worker in `mode` with `args`; `next` reads its stdout lines. */
export function startWorker(mode: string, args: object) {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, mode, JSON.stringify(args)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const line = await lines.next();
    if (line.done === true) throw new Error(`worker ${mode} ended without output:\n${stderr}`);
    return line.value;
  };
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, next, exited, stderr: () => stderr };
}

/**
 * Runs 4 `tenant` workers together (each waits for the go line) and returns their results, after
 * checking that each exited cleanly.
 */
export async function runTenantWorkers(args: object): Promise<TenantWorkerResult[]> {
  const workers = Array.from({ length: 4 }, () => startWorker('tenant', args));
  try {
    for (const worker of workers) {
      const line = await worker.next();
      if (line !== 'ready') throw new Error(`worker said ${line}: ${worker.stderr()}`);
    }
    for (const worker of workers) worker.child.stdin.end('go\n');
    const results = await Promise.all(workers.map(async (worker) => JSON.parse(await worker.next()) as TenantWorkerResult));
    for (const worker of workers) {
      const code = await worker.exited;
      if (code !== 0) throw new Error(`worker exited with ${code}: ${worker.stderr()}`);
    }
    return results;
  } finally {
    for (const worker of workers) if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
  }
}
