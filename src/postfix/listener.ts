// Where the daemons listen, in Postfix's own notation (`inet:host:port`, `unix:/path`, as in
// smtpd_milters and socketmap: tables), and the listening server they share: it tracks each
// connection and drains them on close — no new connections, busy ones finish, idle ones close —
// holds back a client that sends faster than its requests are handled or its replies read, and
// closes at once a connection over its cap.

import { lstatSync, unlinkSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** A listening address: TCP on a host and port, or a Unix-domain socket. */
export type ListenAddress =
  | { readonly kind: 'inet'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

/**
 * Reads `inet:host:port`, `inet:[v6addr]:port`, `inet:port` (all addresses) or `unix:/path`
 * (also a bare absolute path). @throws {TypeError} naming what is wrong.
 */
export function parseListenAddress(spec: string): ListenAddress {
  if (typeof spec !== 'string' || spec === '') throw new TypeError('a listen address must be inet:host:port or unix:/path');
  if (spec.startsWith('unix:') || spec.startsWith('/')) {
    const path = spec.startsWith('unix:') ? spec.slice(5) : spec;
    if (path === '') throw new TypeError(`${JSON.stringify(spec)} has no socket path`);
    return { kind: 'unix', path };
  }
  if (!spec.startsWith('inet:')) throw new TypeError(`${JSON.stringify(spec)} is not inet:host:port or unix:/path`);
  const rest = spec.slice(5);
  const colon = rest.lastIndexOf(':');
  const portText = colon === -1 ? rest : rest.slice(colon + 1);
  let host = colon === -1 ? '' : rest.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new TypeError(`${JSON.stringify(spec)} has no valid port`);
  return { kind: 'inet', host, port };
}

/** How long a daemon keeps a silent connection by default: 10 minutes. */
export const DEFAULT_IDLE_TIMEOUT_MS = 600_000;

/** The longest timeout Node's timers take (2^31 − 1 ms, about 24.8 days); a longer one is cut to it, with a warning. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * The default cap on a daemon's open connections. Postfix opens one milter connection per smtpd
 * process that has the milter (at most its process limit, 100 by default, per listener), and a
 * socketmap connection per process that looks the map up (cleanup, trivial-rewrite: a handful);
 * 1,000 leaves room for several busy listeners, and bounds what connections can cost together.
 */
export const DEFAULT_MAX_CONNECTIONS = 1_000;

/** Options of {@link listen}. */
export interface ListenOptions {
  /** Open connections at most; one more is closed as soon as it is accepted (see {@link listen}). */
  readonly maxConnections: number;
  /** Told of each connection about to be closed for being over `maxConnections`. */
  readonly onRefused?: (socket: Socket) => void;
}

/** What the listener needs to know about each connection it tracks. */
export interface TrackedConnection {
  /** Whether the connection is between requests, so that a drain may close it now. */
  readonly idle: boolean;
}

/** A listening daemon. */
export interface Listener {
  /** Where it listens, in the notation of {@link parseListenAddress} (the real port for port 0). */
  readonly address: string;
  /** Open connections now. */
  readonly connections: number;
  /** Whether {@link close} was called: connections close when they become idle. */
  readonly draining: boolean;
  /**
   * Stops accepting, closes idle connections now and busy ones when they become idle (each
   * handler calls {@link idle} when it finishes a request), and destroys whatever is left after
   * `graceMs` (default 10 s). Resolves when every connection is closed.
   */
  close(graceMs?: number): Promise<void>;
  /** Tells a draining listener that a connection has become idle. */
  idle(socket: Socket): void;
}

/**
 * Listens on `address`; `accept` is called with each new socket and returns its tracker.
 * A connection over `options.maxConnections` is closed as soon as it is accepted, before it is
 * read, and `onRefused` is told: the client sees the connection close before its first answer,
 * which Postfix treats as the daemon being unavailable — it applies milter_default_action
 * (tempfail by default) to that SMTP session, and a socketmap lookup fails temporarily (the mail
 * is deferred), as when the daemon is down. Done here rather than with net.Server's own
 * maxConnections, which closes such a connection the same way but tells only its 'drop' event:
 * here the daemon's error report names the client. Rejects when the address cannot be listened on.
 */
export async function listen(address: ListenAddress, accept: (socket: Socket) => TrackedConnection, options: ListenOptions): Promise<Listener> {
  const sockets = new Map<Socket, TrackedConnection>();
  let draining = false;
  let allClosed: (() => void) | undefined;
  const server: Server = createServer((socket) => {
    if (draining) {
      socket.destroy();
      return;
    }
    if (sockets.size >= options.maxConnections) {
      // Told first: the client's address is gone once the socket is destroyed.
      options.onRefused?.(socket);
      socket.destroy();
      return;
    }
    const tracked = accept(socket);
    sockets.set(socket, tracked);
    socket.once('close', () => {
      sockets.delete(socket);
      if (draining && sockets.size === 0) allClosed?.();
    });
  });
  if (address.kind === 'unix') removeStaleSocket(address.path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const listening = () => {
      server.off('error', reject);
      resolve();
    };
    if (address.kind === 'unix') server.listen(address.path, listening);
    else server.listen(address.port, address.host === '' ? undefined : address.host, listening);
  });
  const bound = server.address();
  const shown =
    address.kind === 'unix'
      ? `unix:${address.path}`
      : `inet:${(bound as AddressInfo).family === 'IPv6' ? `[${(bound as AddressInfo).address}]` : (bound as AddressInfo).address}:${(bound as AddressInfo).port}`;

  return {
    address: shown,
    get connections() {
      return sockets.size;
    },
    get draining() {
      return draining;
    },
    idle(socket) {
      if (draining) closeIdle(socket);
    },
    close(graceMs = 10_000) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const drained = new Promise<void>((resolve) => {
        if (sockets.size === 0) return resolve();
        allClosed = resolve;
        for (const [socket, tracked] of sockets) if (tracked.idle) closeIdle(socket);
        const timer = setTimeout(() => {
          for (const socket of sockets.keys()) socket.destroy();
        }, graceMs);
        timer.unref();
      });
      return Promise.all([closed, drained]).then(() => {
        if (address.kind === 'unix') removeStaleSocket(address.path);
      });
    },
  };
}

/** A connection's peer for a daemon's error reports: `address:port`, or `unix socket`. */
export function remoteOf(socket: Socket): string {
  return socket.remoteAddress === undefined ? 'unix socket' : `${socket.remoteAddress}:${socket.remotePort}`;
}

/** The error a daemon reports for a connection closed for being over its `maxConnections`. */
export function tooMany(maxConnections: number): Error {
  return new Error(`connection closed: already ${maxConnections} open, the most allowed (maxConnections)`);
}

/**
 * Octets read and not yet handled above which a connection stops reading: one socket read
 * (Node reads at most 64 KiB at a time). Requests wait only while one is being answered
 * asynchronously (a milter's end of message, a socketmap lookup) or while the client does not
 * read our replies; an MTA sends nothing while it waits for an answer, so only a client that
 * pipelines without reading is held back.
 */
export const MAX_QUEUED_INPUT = 65_536;

/**
 * Pauses reading from `socket` while more than {@link MAX_QUEUED_INPUT} octets wait to be handled
 * (`queued`) or while the replies wait for the client to read them (`write()` returned false:
 * `writableNeedDrain`), and resumes once neither holds. Paused, Node stops reading once its own
 * buffer holds 64 KiB (its highWaterMark), the kernel's buffers fill, and TCP's flow control stops
 * the client: what a connection costs us no longer grows with what the client sends. Call it
 * whenever either quantity changes (after queueing input, after handling it, on `'drain'`).
 */
export function regulateReading(socket: Socket, queued: number): void {
  const hold = queued > MAX_QUEUED_INPUT || socket.writableNeedDrain;
  if (hold && !socket.isPaused()) socket.pause();
  else if (!hold && socket.isPaused()) socket.resume();
}

/**
 * Starts `work` (the loop answering a connection's queued input) with `socket` corked until the
 * loop first awaits: the replies it writes by then leave in one write, not one each, so requests
 * pipelined in one read cost one system call.
 */
export function workCorked(socket: Socket, work: () => Promise<void>): void {
  socket.cork();
  void work();
  socket.uncork();
}

/**
 * Closes an idle connection once what was written to it is flushed. Not a half-close: an MTA
 * waiting on its SMTP client does not read the milter socket, so it would never answer a FIN.
 */
function closeIdle(socket: Socket): void {
  socket.destroySoon();
}

/** A socket file left by a daemon that died is removed; any other file is left (listen then fails). */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // nothing there
  }
}
