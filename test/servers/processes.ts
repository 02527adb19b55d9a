// The server programs the tests start (installed from Debian by scripts/install-servers.sh):
// finding them, a free port for them, and starting them watched.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { delimiter, join } from 'node:path';

/** The executable `name` on PATH or in `extraDirs` (Debian puts daemons in /usr/sbin), or null. */
export function findExecutable(name: string, extraDirs: readonly string[] = ['/usr/bin', '/usr/sbin', '/sbin']): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((dir) => dir.length > 0), ...extraDirs];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** A TCP port free on 127.0.0.1 a moment ago. */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A started server process, watched: its last output, why it ended, and when. */
export interface WatchedProcess {
  readonly child: ChildProcess;
  /** The last 4,000 characters it wrote (stdout and stderr), for a failing test's message. */
  output(): string;
  /** Why it ended (`exit code 1`, `signal SIGKILL`, a spawn error), or null while it runs. */
  exited(): string | null;
  /** Resolves when it has ended. */
  readonly exit: Promise<void>;
}

// Every process started here and still running; and those that lead their own process group.
const running = new Set<ChildProcess>();
const groupLeaders = new WeakSet<ChildProcess>();
let exitHookInstalled = false;

/** Kills a process, or its whole process group when it was started detached (a daemon with workers). */
export function killWatched(child: ChildProcess, signal: NodeJS.Signals): void {
  if (groupLeaders.has(child) && child.pid !== undefined) {
    try {
      process.kill(-child.pid, signal);
      return;
    } catch {
      // the group is gone already
    }
    return;
  }
  child.kill(signal);
}

/**
 * Spawns a server and watches it. Whatever the tests do, every process started here (with its
 * process group, when detached) is killed when the test process exits.
 */
export function spawnWatched(binary: string, args: readonly string[], options: SpawnOptions = {}): WatchedProcess {
  const child = spawn(binary, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  if (options.detached === true) groupLeaders.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const started of running) killWatched(started, 'SIGKILL');
    });
  }
  let output = '';
  let exited: string | null = null;
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = signal === null ? `exit code ${code}` : `signal ${signal}`;
      running.delete(child);
      resolve();
    });
    child.once('error', (error) => {
      exited = error.message;
      running.delete(child);
      resolve();
    });
  });
  return { child, output: () => output, exited: () => exited, exit };
}
