// A real Redis Cluster (Debian package `redis-server`: redis-server and redis-cli) for the Redis
// rate limiter tests: three masters on 127.0.0.1, no replicas, each on a free port whose cluster
// bus port (port + 10000) is free too, each in a temporary directory of its own holding its
// `cluster-config-file`, without persistence; joined with `redis-cli --cluster create … 
// --cluster-replicas 0 --cluster-yes`, and ready once every node reports `cluster_state:ok` and
// knows all 16,384 slots. `stop()` stops every node and removes every directory; a failed start
// cleans up before it rejects, and processes left running are killed when the test process exits
// (test/servers/processes.ts).

import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, freeTcpPort, spawnWatched, type WatchedProcess } from './processes.js';

const LOOPBACK = '127.0.0.1';
/** The cluster bus listens on the client port + 10000, so the client port must stay below this. */
const MAX_CLIENT_PORT = 65_535 - 10_000;
const SLOTS = 16_384;

/** Why a cluster cannot run (redis-server or redis-cli missing), naming the package, or null. */
export function redisClusterMissing(): Error | null {
  const missing = ['redis-server', 'redis-cli'].filter((name) => findExecutable(name) === null);
  if (missing.length === 0) return null;
  return new Error(`${missing.join(' and ')} not found: install it: apt-get install redis-server (or run scripts/install-servers.sh)`);
}

/** One master of the cluster. */
export interface ClusterNode {
  readonly host: string;
  readonly port: number;
  /** Its temporary directory (working directory and cluster-config-file). */
  readonly dir: string;
  /** Whether its process is running. */
  running(): boolean;
  /** Its last output, for a failing test's message. */
  output(): string;
  /** Freezes it (SIGSTOP): connections stay open, nothing is answered until {@link ClusterNode.resume}. */
  pause(): void;
  /** Lets a paused node run again (SIGCONT). */
  resume(): void;
}

/** A running Redis Cluster. */
export interface RedisCluster {
  /** The masters, in the order given to `redis-cli --cluster create`. */
  readonly nodes: readonly ClusterNode[];
  /** `{ host, port }` of every master: startup nodes for `new Cluster(…)`. */
  readonly startupNodes: readonly { readonly host: string; readonly port: number }[];
  /** The master serving `slot`, from CLUSTER NODES as the first node reports it. */
  nodeForSlot(slot: number): Promise<ClusterNode>;
  /** Runs redis-cli against one node (`-h 127.0.0.1 -p <port> …args`) and resolves its stdout. */
  cli(node: ClusterNode, args: readonly string[]): Promise<string>;
  /** Stops every node (SIGTERM, then SIGKILL) and removes every directory. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options of {@link startRedisCluster}. */
export interface StartRedisClusterOptions {
  /** How many masters. Default 3 (the fewest `redis-cli --cluster create` accepts). */
  readonly masters?: number;
  /** How long to wait for each step (PING, create, cluster_state:ok). Default 20 s. */
  readonly startTimeoutMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether `port` can be bound on 127.0.0.1 right now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, LOOPBACK, () => server.close(() => resolve(true)));
  });
}

/** `count` distinct free ports below 55,535 whose bus port (+10000) is free too. */
async function clusterPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let attempt = 0; ports.length < count; attempt += 1) {
    if (attempt > 500) throw new Error(`could not find ${count} free port pairs (port and port + 10000) on ${LOOPBACK}`);
    const port = await freeTcpPort();
    if (port > MAX_CLIENT_PORT || ports.includes(port) || ports.some((p) => p + 10_000 === port || p - 10_000 === port)) continue;
    if (await portFree(port + 10_000)) ports.push(port);
  }
  return ports;
}

interface Exited {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `binary args`, killing it after `timeoutMs`; resolves its exit and output. */
function run(binary: string, args: readonly string[], timeoutMs: number): Promise<Exited> {
  const started = spawnWatched(binary, args);
  let stdout = '';
  let stderr = '';
  started.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  started.child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const timer = setTimeout(() => started.child.kill('SIGKILL'), timeoutMs);
  // 'close' (stdout and stderr drained), not only 'exit', which may come before the last output.
  const drained = new Promise<void>((resolve) => started.child.once('close', () => resolve()));
  return Promise.all([started.exit, Promise.race([drained, started.exit.then(() => sleep(1_000))])]).then(() => {
    clearTimeout(timer);
    const { exitCode: code, signalCode: signal } = started.child;
    if (code === null && signal === null) throw new Error(`${binary} ${args.join(' ')} did not run: ${started.exited()}`);
    return { code, signal, stdout, stderr };
  });
}

/**
 * Starts a Redis Cluster of `masters` (default 3) masters on 127.0.0.1 and resolves once it is
 * `cluster_state:ok` on every node. Rejects — after stopping whatever it started and removing its
 * directories — when redis-server or redis-cli is missing (naming the package), a node exits,
 * or a step does not finish within `startTimeoutMs`.
 */
export async function startRedisCluster(options: StartRedisClusterOptions = {}): Promise<RedisCluster> {
  const missing = redisClusterMissing();
  if (missing !== null) throw missing;
  const server = findExecutable('redis-server')!;
  const cli = findExecutable('redis-cli')!;
  const masters = options.masters ?? 3;
  if (!Number.isInteger(masters) || masters < 3) throw new Error(`a Redis Cluster needs at least 3 masters, got ${masters}`);
  const timeoutMs = options.startTimeoutMs ?? 20_000;

  const processes: WatchedProcess[] = [];
  const dirs: string[] = [];
  const nodes: ClusterNode[] = [];
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(
      processes.map(async (watched) => {
        const child: ChildProcess = watched.child;
        if (watched.exited() === null) {
          child.kill('SIGTERM');
          let timer: NodeJS.Timeout | undefined;
          const gone = await Promise.race([watched.exit.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, 2_000, false)))]);
          clearTimeout(timer);
          if (!gone) {
            child.kill('SIGKILL');
            await watched.exit;
          }
        }
        child.stdout?.destroy();
        child.stderr?.destroy();
      }),
    );
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true, maxRetries: 3 })));
  };

  const cliOn = async (node: ClusterNode, args: readonly string[]): Promise<string> => {
    const result = await run(cli, ['-h', node.host, '-p', String(node.port), ...args], timeoutMs);
    if (result.code !== 0) throw new Error(`redis-cli -p ${node.port} ${args.join(' ')} failed (${result.signal ?? `exit code ${result.code}`}):\n${result.stdout}${result.stderr}`);
    return result.stdout;
  };

  const describeNodes = () => nodes.map((node) => `--- ${node.host}:${node.port} (${node.running() ? 'running' : 'exited'}):\n${node.output()}`).join('\n');

  try {
    const ports = await clusterPorts(masters);
    for (const port of ports) {
      const dir = await mkdtemp(join(tmpdir(), 'outbound-pools-redis-cluster-'));
      dirs.push(dir);
      const watched = spawnWatched(
        server,
        [
          '--port', String(port),
          '--bind', LOOPBACK,
          '--cluster-enabled', 'yes',
          '--cluster-config-file', join(dir, 'nodes.conf'),
          '--cluster-node-timeout', '5000',
          '--save', '',
          '--appendonly', 'no',
          '--dir', dir,
          '--daemonize', 'no',
          '--protected-mode', 'no',
        ],
        { cwd: dir },
      );
      processes.push(watched);
      const signal = (name: NodeJS.Signals) => {
        if (watched.exited() === null) watched.child.kill(name);
      };
      nodes.push({ host: LOOPBACK, port, dir, running: () => watched.exited() === null, output: () => watched.output(), pause: () => signal('SIGSTOP'), resume: () => signal('SIGCONT') });
    }

    // Every node answers PING.
    const deadline = Date.now() + timeoutMs;
    for (const node of nodes) {
      for (;;) {
        if (!node.running()) throw new Error(`redis-server on port ${node.port} exited during startup:\n${describeNodes()}`);
        const pong = await run(cli, ['-h', node.host, '-p', String(node.port), 'PING'], 2_000).catch(() => undefined);
        if (pong?.code === 0 && pong.stdout.trim() === 'PONG') break;
        if (Date.now() > deadline) throw new Error(`redis-server did not answer PING on ${node.host}:${node.port} within ${timeoutMs} ms:\n${describeNodes()}`);
        await sleep(50);
      }
    }

    // Join them: the slots split evenly between the masters.
    const created = await run(cli, ['--cluster', 'create', ...nodes.map((node) => `${node.host}:${node.port}`), '--cluster-replicas', '0', '--cluster-yes'], timeoutMs);
    if (created.code !== 0 || !created.stdout.includes('All 16384 slots covered')) {
      throw new Error(`redis-cli --cluster create failed (${created.signal ?? `exit code ${created.code}`}):\n${created.stdout}${created.stderr}\n${describeNodes()}`);
    }

    // Every node agrees: state ok, every slot assigned, every master known.
    const settled = Date.now() + timeoutMs;
    for (const node of nodes) {
      let info = '';
      for (;;) {
        info = await cliOn(node, ['CLUSTER', 'INFO']).catch((error: unknown) => String(error));
        if (
          info.includes('cluster_state:ok') &&
          info.includes(`cluster_slots_assigned:${SLOTS}`) &&
          info.includes(`cluster_slots_ok:${SLOTS}`) &&
          info.includes(`cluster_known_nodes:${masters}`)
        ) {
          break;
        }
        if (!node.running()) throw new Error(`redis-server on port ${node.port} exited while the cluster formed:\n${describeNodes()}`);
        if (Date.now() > settled) throw new Error(`the cluster did not reach cluster_state:ok on port ${node.port} within ${timeoutMs} ms:\n${info}\n${describeNodes()}`);
        await sleep(100);
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    nodes,
    startupNodes: nodes.map(({ host, port }) => ({ host, port })),
    async nodeForSlot(slot: number): Promise<ClusterNode> {
      // CLUSTER NODES: one line a node, `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot ranges…>`.
      const text = await cliOn(nodes[0]!, ['CLUSTER', 'NODES']);
      for (const line of text.split('\n')) {
        const fields = line.trim().split(' ');
        const address = /:(\d+)@/.exec(fields[1] ?? '');
        if (address === null || !(fields[2] ?? '').includes('master')) continue;
        const serves = fields.slice(8).some((range) => {
          const [from, to = from] = range.split('-');
          return /^\d+$/.test(from ?? '') && Number(from) <= slot && slot <= Number(to);
        });
        if (!serves) continue;
        const found = nodes.find((node) => node.port === Number(address[1]));
        if (found !== undefined) return found;
      }
      throw new Error(`no master serves slot ${slot} according to CLUSTER NODES:\n${text}`);
    },
    cli: cliOn,
    stop,
  };
}
