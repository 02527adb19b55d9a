// A client that pipelines without reading the replies, for the backpressure tests of the milter
// and the socketmap: it writes one request over and over as fast as the connection takes it,
// until the server stops reading — seen on the server's own end of the connection, which Node's
// `net.server.socket` diagnostics channel hands over (the servers run in this process). Then it
// reads the replies, checking each one, to see the server resume. And the memory this process
// holds after a full collection, measured as test/headers.test.ts and
// test/redis/in-flight.test.ts do (--expose-gc set at run time).
import assert from 'node:assert/strict';
import { subscribe } from 'node:diagnostics_channel';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Octets of heap and of ArrayBuffers (Buffers) this process holds after a full collection. */
export function heldMemory(): number {
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

export const MiB = 1_048_576;

/** What a flooding client offers: 64 MiB. */
export const FLOOD = 64 * MiB;

/**
 * The most of a flood a server may read before it stops: what it read before a reply went
 * unread or a request waited, plus Node's 64 KiB buffer (about 4 MiB here, never 16).
 */
const READ_LIMIT = 16 * MiB;

/** The most a server may hold for one connection that floods it (it holds about 1 MiB). */
export const HELD_LIMIT = 8 * MiB;

/** A connection from here to a server in this process: both ends. */
export interface Connection {
  /** Ours: paused, it reads nothing until told. */
  readonly client: Socket;
  /** The server's, as its listener accepted it. */
  readonly server: Socket;
}

/** The server's end of each connection made to a server in this process, by the client's port. */
const serverEnds = new Map<number, Socket>();
subscribe('net.server.socket', (message) => {
  const { socket } = message as { socket: Socket };
  const port = socket.remotePort;
  if (port === undefined) return;
  serverEnds.set(port, socket);
  socket.once('close', () => serverEnds.delete(port));
});

/** Connects to 127.0.0.1:`port`, a server in this process. */
export async function openConnection(port: number): Promise<Connection> {
  const client = await new Promise<Socket>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.pause();
    socket.once('error', reject);
  });
  // The server may accept the connection a turn after the client sees it open.
  for (let waited = 0; waited < 2_000; waited += 5) {
    const server = serverEnds.get(client.localPort!);
    if (server !== undefined) return { client, server };
    await sleep(5);
  }
  client.destroy();
  throw new Error(`the server did not accept the connection from port ${client.localPort}`);
}

/** What a flood got through. */
export interface Flood {
  /** Requests handed to our socket: sent, or still in its buffer. */
  readonly requests: number;
  /** Whether the server stopped reading before the total was written. */
  readonly stopped: boolean;
}

/**
 * Writes `request` over and over on the connection, up to `totalOctets`, as a client that never
 * reads the replies: in blocks of about 64 KiB, each written when our socket takes it (its own
 * buffer stays small, so that what grows is the server's). Stops early once the server has kept
 * its end paused for `settleMs` while ours waits for 'drain' (it no longer reads; it may pause
 * and resume a few times first, while the kernel's buffers grow), or after `timeoutMs`.
 */
export async function flood(connection: Connection, request: Buffer, totalOctets: number, settleMs = 300, timeoutMs = 10_000): Promise<Flood> {
  const { client, server } = connection;
  const perBlock = Math.max(1, Math.floor(65_536 / request.length));
  const block = Buffer.concat(Array.from({ length: perBlock }, () => request));
  const deadline = Date.now() + timeoutMs;
  let requests = 0;
  while (requests * request.length < totalOctets) {
    requests += perBlock;
    if (client.write(block)) continue;
    if (!(await drainedUnlessPaused(client, server, settleMs, deadline))) return { requests, stopped: server.isPaused() };
  }
  return { requests, stopped: false };
}

/** Resolves true on our 'drain'; false once the server's end has been paused for `settleMs`, or at `deadline`. */
function drainedUnlessPaused(client: Socket, server: Socket, settleMs: number, deadline: number): Promise<boolean> {
  return new Promise((resolve) => {
    let pausedSince: number | undefined;
    const timer = setInterval(() => {
      const now = Date.now();
      pausedSince = server.isPaused() ? (pausedSince ?? now) : undefined;
      if ((pausedSince === undefined || now - pausedSince < settleMs) && now < deadline) return;
      client.off('drain', drained);
      clearInterval(timer);
      resolve(false);
    }, 10);
    const drained = () => {
      clearInterval(timer);
      resolve(true);
    };
    client.once('drain', drained);
  });
}

/**
 * Floods the server with {@link FLOOD} octets of `request` and asserts that it stopped reading —
 * its end of the connection stayed paused while the client could send no more, and a moment
 * later it has read a small part of what was offered — and that this process held less than
 * {@link HELD_LIMIT} more meanwhile. Returns what was sent.
 */
export async function floodUntilStopped(connection: Connection, request: Buffer): Promise<Flood> {
  const before = heldMemory();
  const sent = await flood(connection, request, FLOOD);
  const held = heldMemory() - before;
  const { server } = connection;
  assert.ok(sent.stopped, `the server read all ${(server.bytesRead / MiB).toFixed(1)} MiB offered and never stopped reading`);
  await sleep(300);
  assert.ok(server.bytesRead < READ_LIMIT, `the server read ${(server.bytesRead / MiB).toFixed(1)} MiB of ${FLOOD / MiB}`);
  assert.ok(held < HELD_LIMIT, `the process holds ${(held / MiB).toFixed(1)} MiB more after the server read ${(server.bytesRead / MiB).toFixed(1)} MiB of pipelined requests`);
  return sent;
}

/**
 * Reads `socket` until it has received `reply` `count` times in a row and nothing else, then
 * stops reading it again. Rejects on any other octet, when the connection closes first, or after
 * `timeoutMs`. Checks octet by octet, keeping nothing: the replies may be millions.
 */
export function expectReplies(socket: Socket, reply: Buffer, count: number, timeoutMs = 10_000): Promise<void> {
  const total = reply.length * count;
  let at = 0;
  return new Promise<void>((resolve, reject) => {
    const finish = (error?: Error) => {
      clearTimeout(timer);
      socket.off('data', read);
      socket.off('close', closed);
      socket.pause();
      if (error === undefined) resolve();
      else reject(error);
    };
    const read = (chunk: Buffer) => {
      for (let i = 0; i < chunk.length; i++, at++) {
        if (at === total || chunk[i] !== reply[at % reply.length]) {
          const what = at === total ? 'more than expected' : `octet ${at % reply.length} of reply ${Math.floor(at / reply.length) + 1}`;
          return finish(new Error(`unexpected octet 0x${chunk[i]!.toString(16)}: ${what} (expecting ${count} × ${JSON.stringify(reply.toString('latin1'))})`));
        }
      }
      if (at === total) finish();
    };
    const closed = () => finish(new Error(`the connection closed after ${Math.floor(at / reply.length)} of ${count} replies`));
    const timer = setTimeout(() => finish(new Error(`${Math.floor(at / reply.length)} of ${count} replies within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', read);
    socket.once('close', closed);
    socket.resume();
  });
}
