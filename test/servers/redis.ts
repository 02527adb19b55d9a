// A real redis-server (Debian package `redis-server`, /usr/bin/redis-server) for the Redis rate
// limiter tests: one instance on a free loopback port, in the foreground, without persistence,
// with a temporary directory of its own, so that neither a system Redis (port 6379) nor its data
// is touched. `kill()` simulates a crash (SIGKILL); `restart()` starts it again on the same port
// (empty: nothing was saved), as a Redis coming back after an outage.

import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, freeTcpPort, spawnWatched, type WatchedProcess } from './processes.js';

const LOOPBACK = '127.0.0.1';

/** The redis-server binary on PATH (or /usr/bin, /usr/sbin), or null. */
export function findRedisServer(): string | null {
  return findExecutable('redis-server');
}

/** Why Redis cannot run, naming the Debian package, or null when it can. */
export function redisMissing(): Error | null {
  return findRedisServer() === null ? new Error('redis-server not found: apt-get install redis-server (or run scripts/install-servers.sh)') : null;
}

/** A running (or stopped, restartable) redis-server. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** The temporary working directory. */
  readonly dir: string;
  /** Whether the server process is running. */
  running(): boolean;
  /** Kills it with SIGKILL (a crash) and waits for it to exit. */
  kill(): Promise<void>;
  /** Freezes it (SIGSTOP): connections stay open, nothing is answered until {@link RedisServer.resume}. */
  pause(): void;
  /** Lets a paused server run again (SIGCONT); what it was sent meanwhile runs then. */
  resume(): void;
  /** Starts it again on the same port (after kill or stop) and waits for PING. */
  restart(): Promise<void>;
  /** Stops it (SIGTERM, then SIGKILL) and removes the directory. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options of {@link startRedis}. */
export interface StartRedisOptions {
  /** How long to wait for PING to answer. Default 10 s. */
  readonly startTimeoutMs?: number;
}


/** Sends PING in the inline protocol; true when +PONG comes back within 500 ms. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, LOOPBACK);
    let reply = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every redis-server started here, killed if the test process exits without stop(). */

/**
 * Starts redis-server on a free loopback port (`--port N --bind 127.0.0.1 --save "" --appendonly
 * no --dir <tmp> --daemonize no`) and resolves once it answers PING. Rejects when redis-server is
 * missing (naming the package), exits, or does not answer in time.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const missing = redisMissing();
  if (missing !== null) throw missing;
  const binary = findRedisServer()!;
  const dir = await mkdtemp(join(tmpdir(), 'outbound-pools-redis-'));
  const port = await freeTcpPort();
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  let child: ChildProcess | undefined;
  let exit: Promise<void> = Promise.resolve();
  let watched: WatchedProcess | undefined;
  const exited = () => (watched === undefined ? 'not started' : watched.exited());
  const output = () => watched?.output() ?? '';

  const launch = async () => {
    const started = spawnWatched(
      binary,
      ['--port', String(port), '--bind', LOOPBACK, '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--protected-mode', 'no'],
      { cwd: dir },
    );
    child = started.child;
    exit = started.exit;
    watched = started;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited() !== null) throw new Error(`redis-server exited during startup (${exited()}):\n${output()}`);
      if (await ping(port)) return;
      if (Date.now() > deadline) {
        started.child.kill('SIGKILL');
        await exit;
        throw new Error(`redis-server did not answer PING on ${LOOPBACK}:${port} within ${timeoutMs} ms:\n${output()}`);
      }
      await sleep(50);
    }
  };

  const signal = async (name: NodeJS.Signals) => {
    if (child === undefined || exited() !== null) return;
    child.kill(name);
    await exit;
  };

  let stopped = false;
  const server: RedisServer = {
    url: `redis://${LOOPBACK}:${port}`,
    port,
    dir,
    running: () => exited() === null,
    kill: () => signal('SIGKILL'),
    pause: () => {
      if (child !== undefined && exited() === null) child.kill('SIGSTOP');
    },
    resume: () => {
      if (child !== undefined && exited() === null) child.kill('SIGCONT');
    },
    async restart() {
      if (stopped) throw new Error('redis-server was stopped for good; start a new one');
      await signal('SIGKILL');
      await launch();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child !== undefined && exited() === null) {
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const gone = await Promise.race([exit.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, 2_000, false)))]);
        clearTimeout(timer);
        if (!gone) await signal('SIGKILL');
      }
      child?.stdout?.destroy();
      child?.stderr?.destroy();
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
  try {
    await launch();
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return server;
}
