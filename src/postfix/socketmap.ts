// A socketmap server (Postfix socketmap_table(5), Sendmail's socket map): requests and replies are
// netstrings (D. J. Bernstein, "Netstrings", cr.yp.to/proto/netstrings.txt: `len ":" data ","`),
// a request is `name <space> key`, a reply `OK <space> data`, `NOTFOUND <space>`, `TEMP`,
// `TIMEOUT` or `PERM <space> reason`. With the SRS maps `forward` and `reverse`, named as
// postsrsd 2.x names them, `recipient_canonical_maps = socketmap:inet:…:reverse` sends bounces
// to SRS addresses back to the original sender.

import type { Socket } from 'node:net';
import { SrsError, type Srs } from '../srs/index.js';
import { caseFold, normaliseDomain } from '../address.js';
import { acceptedMatcher } from '../policy.js';
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS, listen, MAX_TIMER_MS, remoteOf, tooMany, regulateReading, workCorked, type ListenAddress, type Listener, type TrackedConnection } from './listener.js';
import { wholeNumberOption } from './options.js';

/** A socketmap reply (socketmap_table(5) "REPLY FORMAT"). */
export type SocketmapReply =
  | { readonly status: 'OK'; readonly data: string }
  | { readonly status: 'NOTFOUND'; readonly reason?: string }
  | { readonly status: 'TEMP' | 'TIMEOUT' | 'PERM'; readonly reason: string };

/** Looks a key up in one map. */
export type SocketmapLookup = (key: string) => SocketmapReply | Promise<SocketmapReply>;

/** Why a socketmap byte stream is not a netstring stream; the connection is closed. */
export class SocketmapProtocolError extends Error {
  override readonly name = 'SocketmapProtocolError';
  readonly code: 'malformed' | 'oversized' | 'truncated';

  constructor(code: 'malformed' | 'oversized' | 'truncated', message: string) {
    super(message);
    this.code = code;
  }
}

/** The default largest request: far above any address (RFC 5321 §4.5.3.1.3: a path has at most 256 octets). */
export const DEFAULT_MAX_REQUEST = 10_000;

/** Postfix refuses replies longer than 100,000 characters (socketmap_table(5)). */
const MAX_REPLY = 100_000;

/** Encodes one netstring: the decimal length, `:`, the octets, `,`. */
export function encodeNetstring(text: string): Buffer {
  const data = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from(`${data.length}:`, 'latin1'), data, COMMA]);
}

const COMMA = Buffer.from(',', 'latin1');

/**
 * Cuts a byte stream into netstrings. The length prefix is read digit by digit as it arrives and
 * refused as soon as it exceeds the limit, so a hostile prefix never makes the reader buffer more
 * than the limit; the data is copied once into a buffer of its size (a view when it lies in one
 * chunk), so the work is linear in the octets received however they are split.
 */
export class NetstringReader {
  readonly #max: number;
  /** The length prefix read so far. */
  #length = 0;
  #digits = 0;
  /** The data and its "," once the prefix is read. */
  #data: Buffer | null = null;
  #filled = 0;

  /** @throws {OutboundPoolsError} `invalid-context` when `maxLength` is not a whole number of at least 1. */
  constructor(maxLength = DEFAULT_MAX_REQUEST) {
    this.#max = wholeNumberOption('NetstringReader', 'maxLength', maxLength, DEFAULT_MAX_REQUEST, 1);
  }

  /** Adds a chunk and returns the netstrings it completed. @throws {SocketmapProtocolError} */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.#data === null) {
        const octet = chunk[at++]!;
        if (octet === 0x3a && this.#digits > 0) {
          // The data and its "," terminator: length + 1 octets. In this chunk: a view.
          const size = this.#length + 1;
          if (chunk.length - at >= size) {
            out.push(this.#finish(chunk.subarray(at, at + size)));
            at += size;
          } else {
            this.#data = Buffer.allocUnsafe(this.#length + 1);
          }
          continue;
        }
        if (octet < 0x30 || octet > 0x39) throw new SocketmapProtocolError('malformed', 'a netstring must start with its decimal length and ":"');
        // Netstrings: no leading zeros (except the length 0 itself).
        if (this.#digits === 1 && this.#length === 0) throw new SocketmapProtocolError('malformed', 'a netstring length has a leading zero');
        this.#length = this.#length * 10 + (octet - 0x30);
        this.#digits++;
        if (this.#length > this.#max) throw new SocketmapProtocolError('oversized', `a request of more than ${this.#max} octets`);
        continue;
      }
      const take = Math.min(this.#data.length - this.#filled, chunk.length - at);
      chunk.copy(this.#data, this.#filled, at, at + take);
      this.#filled += take;
      at += take;
      if (this.#filled === this.#data.length) out.push(this.#finish(this.#data));
    }
    return out;
  }

  /** Called when the stream ends. @throws {SocketmapProtocolError} `truncated` in the middle of a netstring. */
  end(): void {
    if (this.#digits > 0) throw new SocketmapProtocolError('truncated', 'the connection ended in the middle of a request');
  }

  #finish(whole: Buffer): Buffer {
    if (whole[this.#length] !== 0x2c) throw new SocketmapProtocolError('malformed', 'a netstring must end with ","');
    const data = whole.subarray(0, this.#length);
    this.#length = 0;
    this.#digits = 0;
    this.#data = null;
    this.#filled = 0;
    return data;
  }
}

function replyText(reply: SocketmapReply): string {
  switch (reply.status) {
    case 'OK':
      return `OK ${reply.data}`;
    case 'NOTFOUND':
      return `NOTFOUND ${reply.reason ?? ''}`;
    default:
      return `${reply.status} ${reply.reason}`;
  }
}

function isPromise<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown }).then === 'function';
}

/** A lookup that failed: Postfix defers the mail rather than guess (socketmap_table(5) TEMP). */
function temporaryFailure(error: unknown): SocketmapReply {
  return { status: 'TEMP', reason: error instanceof Error ? error.message : String(error) };
}

/** Options of {@link startSocketmapServer}. */
export interface SocketmapServerOptions {
  /** The maps by name: `socketmap:inet:host:port:NAME` asks map NAME. */
  readonly maps: Readonly<Record<string, SocketmapLookup>>;
  /** The largest request accepted (default 10,000 octets); a larger one closes the connection. */
  readonly maxRequest?: number;
  /** A connection silent this long is closed (default 10 minutes; Postfix reconnects). */
  readonly idleTimeoutMs?: number;
  /**
   * Open connections at most (default {@link DEFAULT_MAX_CONNECTIONS}, 1,000). One more is closed
   * as soon as it is accepted and reported to `onError`; Postfix's lookup then fails temporarily.
   */
  readonly maxConnections?: number;
  /** Where protocol errors and connections over `maxConnections` are reported (default: nowhere). */
  readonly onError?: (error: Error, remote: string) => void;
}

const OWNER = 'startSocketmapServer';

/** A running socketmap server. */
export interface SocketmapServer {
  readonly address: string;
  readonly connections: number;
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts a socketmap server on `address`. What one connection holds is bounded: requests read
 * and not yet answered (reading stops above 64 KiB, and while the client does not read the
 * replies) and one request being read (`maxRequest`).
 * @throws {OutboundPoolsError} `invalid-context` when a numeric option is not a whole number in
 * its range (at least 1; `idleTimeoutMs` at most 2,147,483,647, Node's longest timer).
 */
export async function startSocketmapServer(address: ListenAddress, options: SocketmapServerOptions): Promise<SocketmapServer> {
  const maxRequest = wholeNumberOption(OWNER, 'maxRequest', options.maxRequest, DEFAULT_MAX_REQUEST, 1);
  const idleTimeoutMs = wholeNumberOption(OWNER, 'idleTimeoutMs', options.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS, 1, MAX_TIMER_MS);
  const maxConnections = wholeNumberOption(OWNER, 'maxConnections', options.maxConnections, DEFAULT_MAX_CONNECTIONS, 1);
  const maps = new Map(Object.entries(options.maps));
  let listener: Listener | undefined;
  listener = await listen(address, (socket) => serveSocketmap(socket, maps, maxRequest, idleTimeoutMs, options, () => listener), {
    maxConnections,
    onRefused: (socket) => options.onError?.(tooMany(maxConnections), remoteOf(socket)),
  });
  const ready = listener;
  return {
    address: ready.address,
    get connections() {
      return ready.connections;
    },
    close: (graceMs) => ready.close(graceMs),
  };
}

function serveSocketmap(
  socket: Socket,
  maps: ReadonlyMap<string, SocketmapLookup>,
  maxRequest: number,
  idleTimeoutMs: number,
  options: SocketmapServerOptions,
  listener: () => Listener | undefined,
): TrackedConnection {
  const reader = new NetstringReader(maxRequest);
  const queue: Buffer[] = [];
  /** Octets of the requests in `queue` (their data; the few octets of framing are not counted). */
  let queued = 0;
  let running = false;
  const remote = remoteOf(socket);
  socket.setTimeout(idleTimeoutMs, () => socket.destroy());
  const fail = (error: unknown) => {
    options.onError?.(error instanceof Error ? error : new Error(String(error)), remote);
    socket.destroy();
  };

  // A lookup that answers at once (the SRS maps do) is answered at once; only one that returns a
  // promise is awaited.
  const answer = (request: Buffer): SocketmapReply | Promise<SocketmapReply> => {
    const text = request.toString('utf8');
    const space = text.indexOf(' ');
    // socketmap_table(5): `name <space> key`. postsrsd answers a request without one with PERM.
    if (space <= 0) return { status: 'PERM', reason: 'Invalid query.' };
    const lookup = maps.get(text.slice(0, space));
    if (lookup === undefined) return { status: 'PERM', reason: 'Invalid map.' };
    try {
      const reply = lookup(text.slice(space + 1));
      return isPromise(reply) ? Promise.resolve(reply).catch(temporaryFailure) : reply;
    } catch (error) {
      return temporaryFailure(error);
    }
  };

  // Requests are answered in order, one lookup at a time. Answering stops while the replies wait
  // for the client to read them (write() returned false), until 'drain'; meanwhile, and while
  // many requests wait, regulateReading stops reading.
  const work = async () => {
    running = true;
    try {
      while (queue.length > 0 && !socket.destroyed && !socket.writableNeedDrain) {
        const request = queue.shift()!;
        queued -= request.length;
        const answered = answer(request);
        const reply = replyText(isPromise(answered) ? await answered : answered);
        if (socket.destroyed) return;
        socket.write(encodeNetstring(reply.length > MAX_REPLY ? 'PERM reply too long' : reply));
      }
      if (queue.length === 0) listener()?.idle(socket);
    } catch (error) {
      fail(error);
    } finally {
      running = false;
    }
    regulateReading(socket, queued);
  };

  // Starts work unless it is under way.
  const kick = () => {
    if (!running && queue.length > 0) workCorked(socket, work);
  };

  socket.on('data', (chunk: Buffer) => {
    let requests: Buffer[];
    try {
      requests = reader.push(chunk);
    } catch (error) {
      return fail(error);
    }
    if (requests.length === 0) return;
    for (const request of requests) {
      queue.push(request);
      queued += request.length;
    }
    kick();
    regulateReading(socket, queued);
  });
  socket.on('drain', () => {
    kick();
    regulateReading(socket, queued);
  });
  socket.on('end', () => {
    try {
      reader.end();
    } catch (error) {
      fail(error);
    }
  });
  socket.on('error', (error) => options.onError?.(error, remote));
  return {
    get idle() {
      return !running && queue.length === 0;
    },
  };
}

/** Options of {@link createSrsMaps}. */
export interface SrsMapsOptions {
  /** The rewriter: its first secret signs, all verify. */
  readonly srs: Pick<Srs, 'forward' | 'reverse'>;
  /** The forwarding domain SRS addresses are written in. */
  readonly domain: string;
  /**
   * Domains whose senders are not rewritten by `forward` (postsrsd's `domains`), as a policy's
   * accepted domains are written: exact names, and `*.example.com` for every subdomain. The SRS
   * domain always is one. A sender's domain is compared normalised (lowercase A-labels, no final
   * dot), so `alice@Bücher.DE.` is local when `bücher.de` is.
   */
  readonly localDomains?: readonly string[];
  /** The clock (default now). */
  readonly now?: () => number;
}

/**
 * The `forward` and `reverse` maps, as postsrsd 2.x answers them: `forward` gives the SRS
 * address of a sender outside the local domains (`NOTFOUND` for a local one or one without a
 * domain); `reverse` gives the original address of a valid SRS address (`NOTFOUND` with the
 * reason for anything else: not SRS, a bad hash, expired).
 */
export function createSrsMaps(options: SrsMapsOptions): { forward: SocketmapLookup; reverse: SocketmapLookup } {
  const { srs, domain } = options;
  // Written as accepted domains are, and matched by the policy's own matcher.
  const accepts = acceptedMatcher(
    [domain, ...(options.localDomains ?? [])].map((name) => {
      const wildcard = name.startsWith('*.');
      const normalised = normaliseDomain(wildcard ? name.slice(2) : name) ?? caseFold(name);
      return wildcard ? `*.${normalised}` : normalised;
    }),
  );
  const isLocal = (text: string): boolean => accepts(normaliseDomain(text) ?? caseFold(text));
  const clock = options.now ?? Date.now;
  const notFound = (error: unknown): SocketmapReply => {
    if (error instanceof SrsError) return { status: 'NOTFOUND', reason: error.message };
    throw error;
  };
  return {
    forward(key) {
      const at = key.lastIndexOf('@');
      if (at === -1) return { status: 'NOTFOUND', reason: 'No domain.' };
      if (isLocal(key.slice(at + 1))) return { status: 'NOTFOUND', reason: 'Local domain.' };
      try {
        const rewritten = srs.forward(key, domain, { now: clock() });
        return rewritten === key ? { status: 'NOTFOUND' } : { status: 'OK', data: rewritten };
      } catch (error) {
        return notFound(error);
      }
    },
    reverse(key) {
      try {
        return { status: 'OK', data: srs.reverse(key, { now: clock() }) };
      } catch (error) {
        return notFound(error);
      }
    },
  };
}
