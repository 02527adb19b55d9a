// The milter server: one MilterSession per MTA connection, fed packet by packet in order. A
// protocol error (oversized, truncated, malformed, out of order) closes that connection and only
// that one; the MTA then applies its milter_default_action to that SMTP session.

import type { Socket } from 'node:net';
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS, listen, MAX_TIMER_MS, remoteOf, tooMany, regulateReading, workCorked, type ListenAddress, type Listener, type TrackedConnection } from '../listener.js';
import { wholeNumberOption } from '../options.js';
import { decodeCommand } from './commands.js';
import { DEFAULT_MAX_PACKET_SIZE, LENGTH_BYTES, PacketReader, type Packet } from './packet.js';
import { messageLimits, MilterSession, type MilterHandler, type MilterSessionOptions } from './session.js';

/** Options of {@link startMilterServer}. */
export interface MilterServerOptions {
  /** Decides each message. */
  readonly handler: MilterHandler;
  /** The largest packet accepted (default 1 MiB); a larger one closes the connection. */
  readonly maxPacketSize?: number;
  /**
   * A connection silent this long is closed (default 10 minutes; Postfix's own
   * milter_content_timeout is 300 s, and smtpd keeps the connection for its whole SMTP session).
   */
  readonly idleTimeoutMs?: number;
  /**
   * Whether to answer SMFIC_DATA (see {@link MilterSessionOptions.replyToData}). Default: yes on
   * TCP, where it spares the MTA a delayed-acknowledgement stall per message; no on a Unix socket.
   */
  readonly replyToData?: boolean;
  /** The most recipients per message (see {@link MilterSessionOptions.maxRecipients}; default 10,000). */
  readonly maxRecipients?: number;
  /** The largest header per message in octets (see {@link MilterSessionOptions.maxHeaderBytes}; default 1 MiB). */
  readonly maxHeaderBytes?: number;
  /** The most header fields per message (see {@link MilterSessionOptions.maxHeaderFields}; default 10,000). */
  readonly maxHeaderFields?: number;
  /**
   * The most octets of macros a connection keeps, all stages together (see
   * {@link MilterSessionOptions.maxMacroBytes}; default 64 KiB); a MACRO over it closes the connection.
   */
  readonly maxMacroBytes?: number;
  /**
   * Open MTA connections at most (default {@link DEFAULT_MAX_CONNECTIONS}, 1,000). One more is
   * closed as soon as it is accepted and reported to `onError`; Postfix then applies
   * milter_default_action to that SMTP session, as when the milter is down.
   */
  readonly maxConnections?: number;
  /** Where protocol errors, connection failures and connections over `maxConnections` are reported (default: nowhere). */
  readonly onError?: (error: Error, remote: string) => void;
}

const OWNER = 'startMilterServer';

/** A running milter server. */
export interface MilterServer {
  /** Where it listens: `inet:127.0.0.1:PORT` or `unix:/path`. */
  readonly address: string;
  /** Open MTA connections. */
  readonly connections: number;
  /** Stops accepting; messages under way are finished, then every connection closes. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts a milter server on `address`. What one connection holds is bounded: input read and not
 * yet handled (reading stops above 64 KiB, and while the MTA does not read the replies), one
 * packet being read (`maxPacketSize`), the macros of its stages (`maxMacroBytes`), and the
 * message being collected (`maxRecipients`, `maxHeaderBytes`, `maxHeaderFields`, the handler's
 * `bodyLimit`).
 * @throws {OutboundPoolsError} `invalid-context` when a numeric option is not a whole number in
 * its range (at least 1; `idleTimeoutMs` at most 2,147,483,647, Node's longest timer).
 */
export async function startMilterServer(address: ListenAddress, options: MilterServerOptions): Promise<MilterServer> {
  const maxPacketSize = wholeNumberOption(OWNER, 'maxPacketSize', options.maxPacketSize, DEFAULT_MAX_PACKET_SIZE, 1);
  const idleTimeoutMs = wholeNumberOption(OWNER, 'idleTimeoutMs', options.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS, 1, MAX_TIMER_MS);
  const limits = messageLimits(options, OWNER);
  const maxConnections = wholeNumberOption(OWNER, 'maxConnections', options.maxConnections, DEFAULT_MAX_CONNECTIONS, 1);
  let listener: Listener | undefined;
  const replyToData = options.replyToData;
  // remoteFamily is IPv4 or IPv6 on TCP, undefined on a Unix-domain socket.
  listener = await listen(
    address,
    (socket) => serve(socket, options.handler, { ...limits, replyToData: replyToData ?? socket.remoteFamily !== undefined }, maxPacketSize, idleTimeoutMs, options.onError, () => listener),
    { maxConnections, onRefused: (socket) => options.onError?.(tooMany(maxConnections), remoteOf(socket)) },
  );
  const ready = listener;
  return {
    address: ready.address,
    get connections() {
      return ready.connections;
    },
    close: (graceMs) => ready.close(graceMs),
  };
}

function serve(
  socket: Socket,
  handler: MilterHandler,
  sessionOptions: MilterSessionOptions,
  maxPacketSize: number,
  idleTimeoutMs: number,
  onError: ((error: Error, remote: string) => void) | undefined,
  listener: () => Listener | undefined,
): TrackedConnection {
  const session = new MilterSession(handler, sessionOptions);
  const reader = new PacketReader(maxPacketSize);
  const queue: Packet[] = [];
  /** Octets of the packets in `queue`, as they came on the wire. */
  let queued = 0;
  let running = false;
  const remote = remoteOf(socket);
  socket.setNoDelay(true);
  socket.setTimeout(idleTimeoutMs, () => socket.destroy());

  const fail = (error: unknown) => {
    onError?.(error instanceof Error ? error : new Error(String(error)), remote);
    socket.destroy();
  };

  // Packets are handled strictly in order; only end of message awaits, and while it does, later
  // packets wait in the queue (an MTA sends none before the answer, but no-reply steps may be
  // pipelined after an answered one). Handling also stops while the replies wait for the MTA to
  // read them (write() returned false), until 'drain'. Meanwhile regulateReading stops reading.
  const work = async () => {
    running = true;
    try {
      while (queue.length > 0 && !socket.destroyed && !socket.writableNeedDrain) {
        const packet = queue.shift()!;
        queued -= wireSize(packet);
        const result = session.handle(decodeCommand(packet));
        const replies = Array.isArray(result) ? (result as readonly Buffer[]) : await result;
        if (socket.destroyed) return;
        if (replies.length === 1) socket.write(replies[0]!);
        else if (replies.length > 1) socket.write(Buffer.concat(replies as Buffer[]));
        if (session.closed) {
          socket.end();
          return;
        }
        if (!session.busy) listener()?.idle(socket);
      }
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
    let packets: readonly Packet[];
    try {
      packets = reader.push(chunk);
    } catch (error) {
      return fail(error);
    }
    if (packets.length === 0) return;
    for (const packet of packets) {
      queue.push(packet);
      queued += wireSize(packet);
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
      return fail(error);
    }
    if (!running && queue.length === 0) socket.end();
  });
  socket.on('error', (error) => onError?.(error, remote));

  return {
    get idle() {
      return !running && queue.length === 0 && !session.busy;
    },
  };
}

/** A packet's octets on the wire: the length field, the command, the data. */
function wireSize(packet: Packet): number {
  return LENGTH_BYTES + 1 + packet.data.length;
}
