// Milter wire framing: every packet, in either direction, is a 4-octet length in network byte
// order, then one command octet, then length − 1 octets of data (milter-protocol.txt, "LINK/PACKET
// PROTOCOL": `uint32 len; char cmd; char data[len-1]`). Nothing here knows what a command means.

import { wholeNumberOption } from '../options.js';

/** Why a connection's byte stream is not a milter packet stream. */
export type MilterProtocolErrorCode =
  /**
   * A packet's length field is larger than the limit (or than any milter would send), or a
   * MACRO takes the connection's macros over their limit (`maxMacroBytes`).
   */
  | 'oversized'
  /** A packet's length field is 0: there is no command octet. */
  | 'empty-packet'
  /** The connection ended in the middle of a packet. */
  | 'truncated'
  /** A command's data does not have the shape its command requires. */
  | 'malformed'
  /** A command octet no milter protocol version defines. */
  | 'unknown-command'
  /** A command that may not come at this point of the conversation (e.g. RCPT before MAIL). */
  | 'out-of-order'
  /** The MTA's option negotiation cannot be met (protocol version below 2). */
  | 'negotiation';

/** A milter conversation broke the protocol; the connection it came from is closed. */
export class MilterProtocolError extends Error {
  override readonly name = 'MilterProtocolError';
  readonly code: MilterProtocolErrorCode;

  constructor(code: MilterProtocolErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** One packet: its command octet and its data. */
export interface Packet {
  readonly command: number;
  readonly data: Buffer;
}

/** Octets of the length field. */
export const LENGTH_BYTES = 4;

/**
 * The default largest packet accepted: 1 MiB, the largest buffer a milter can announce
 * (SMFIP_MDS_1M, milter-protocol-extras.txt). Postfix sends body chunks of at most 65,535 octets
 * and one header per packet (at most header_size_limit, 102,400 by default), so real packets
 * stay well below it; anything larger is refused before it is buffered.
 */
export const DEFAULT_MAX_PACKET_SIZE = 1_048_576;

/** Encodes one packet: the length (command octet plus data), the command, the data. */
export function encodePacket(command: number, data: Uint8Array = EMPTY): Buffer {
  const packet = Buffer.allocUnsafe(LENGTH_BYTES + 1 + data.length);
  packet.writeUInt32BE(data.length + 1, 0);
  packet[LENGTH_BYTES] = command;
  packet.set(data, LENGTH_BYTES + 1);
  return packet;
}

const EMPTY = new Uint8Array(0);
const NO_PACKETS: readonly Packet[] = Object.freeze([]);

/**
 * Cuts a byte stream into packets. Chunks go in with {@link push}; whole packets come out in
 * order. A length over the limit throws `oversized` as soon as its four octets arrive, so a
 * hostile length never makes the reader buffer more than the limit. A packet inside one chunk
 * is a view of it; a packet split across chunks is copied once into a buffer of its size, so the
 * work is linear in the octets received however they are split, and no chunk is held on to.
 */
export class PacketReader {
  readonly #maxPacketSize: number;
  /** The length field being read: up to four octets. */
  readonly #head = Buffer.alloc(LENGTH_BYTES);
  #headFilled = 0;
  /** The packet being filled (command and data), once its length is known. */
  #body: Buffer | null = null;
  #bodyFilled = 0;

  /** @throws {OutboundPoolsError} `invalid-context` when `maxPacketSize` is not a whole number of at least 1. */
  constructor(maxPacketSize = DEFAULT_MAX_PACKET_SIZE) {
    this.#maxPacketSize = wholeNumberOption('PacketReader', 'maxPacketSize', maxPacketSize, DEFAULT_MAX_PACKET_SIZE, 1);
  }

  /** Octets received that are not yet a whole packet. */
  get pending(): number {
    return this.#headFilled + this.#bodyFilled;
  }

  /** Adds a chunk and returns the packets it completed. @throws {MilterProtocolError} */
  push(chunk: Buffer): readonly Packet[] {
    // No array for a chunk that completes nothing (most chunks of a large packet).
    let packets: Packet[] | undefined;
    let at = 0;
    while (at < chunk.length) {
      if (this.#body === null) {
        // A whole packet in what is left of the chunk: a view, no copy.
        if (this.#headFilled === 0 && chunk.length - at >= LENGTH_BYTES) {
          const length = this.#checkLength(chunk.readUInt32BE(at));
          if (chunk.length - at - LENGTH_BYTES >= length) {
            const start = at + LENGTH_BYTES;
            (packets ??= []).push({ command: chunk[start]!, data: chunk.subarray(start + 1, start + length) });
            at = start + length;
            continue;
          }
          this.#body = Buffer.allocUnsafe(length);
          at += LENGTH_BYTES;
          continue;
        }
        const take = Math.min(LENGTH_BYTES - this.#headFilled, chunk.length - at);
        chunk.copy(this.#head, this.#headFilled, at, at + take);
        this.#headFilled += take;
        at += take;
        if (this.#headFilled < LENGTH_BYTES) break;
        this.#body = Buffer.allocUnsafe(this.#checkLength(this.#head.readUInt32BE(0)));
        this.#headFilled = 0;
        continue;
      }
      const take = Math.min(this.#body.length - this.#bodyFilled, chunk.length - at);
      chunk.copy(this.#body, this.#bodyFilled, at, at + take);
      this.#bodyFilled += take;
      at += take;
      if (this.#bodyFilled === this.#body.length) {
        (packets ??= []).push({ command: this.#body[0]!, data: this.#body.subarray(1) });
        this.#body = null;
        this.#bodyFilled = 0;
      }
    }
    return packets ?? NO_PACKETS;
  }

  /** Called when the stream ends. @throws {MilterProtocolError} `truncated` when a packet was cut off. */
  end(): void {
    const pending = this.pending + (this.#body === null ? 0 : LENGTH_BYTES);
    if (pending > 0) throw new MilterProtocolError('truncated', `the connection ended ${pending} octet(s) into a packet`);
  }

  #checkLength(length: number): number {
    if (length === 0) throw new MilterProtocolError('empty-packet', 'a packet of length 0 has no command');
    if (length > this.#maxPacketSize) {
      throw new MilterProtocolError('oversized', `a packet of ${length} octets is over the limit of ${this.#maxPacketSize}`);
    }
    return length;
  }
}
