// Milter wire framing: every packet, in either direction, is a 4-octet length in network byte
// order, then one command octet, then length − 1 octets of data (milter-protocol.txt, "LINK/PACKET
// PROTOCOL": `uint32 len; char cmd; char data[len-1]`). Nothing here knows what a command means.

/** Why a connection's byte stream is not a milter packet stream. */
export type MilterProtocolErrorCode =
  /** A packet's length field is larger than the limit (or than any milter would send). */
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

/**
 * Cuts a byte stream into packets. Chunks go in with {@link push}; whole packets come out in
 * order. A length over the limit throws `oversized` as soon as its four octets arrive, so a
 * hostile length never makes the reader buffer more than the limit. Work is linear in the bytes
 * received: chunks are kept in a list and joined once per packet.
 */
export class PacketReader {
  readonly #maxPacketSize: number;
  #chunks: Buffer[] = [];
  #buffered = 0;

  constructor(maxPacketSize = DEFAULT_MAX_PACKET_SIZE) {
    this.#maxPacketSize = maxPacketSize;
  }

  /** Octets received that are not yet a whole packet. */
  get pending(): number {
    return this.#buffered;
  }

  /** Adds a chunk and returns the packets it completed. @throws {MilterProtocolError} */
  push(chunk: Buffer): Packet[] {
    if (chunk.length === 0) return [];
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const packets: Packet[] = [];
    for (;;) {
      if (this.#buffered < LENGTH_BYTES) break;
      const length = this.#peekLength();
      if (length === 0) throw new MilterProtocolError('empty-packet', 'a packet of length 0 has no command');
      if (length > this.#maxPacketSize) {
        throw new MilterProtocolError('oversized', `a packet of ${length} octets is over the limit of ${this.#maxPacketSize}`);
      }
      if (this.#buffered < LENGTH_BYTES + length) break;
      const whole = this.#take(LENGTH_BYTES + length);
      packets.push({ command: whole[LENGTH_BYTES]!, data: whole.subarray(LENGTH_BYTES + 1) });
    }
    return packets;
  }

  /** Called when the stream ends. @throws {MilterProtocolError} `truncated` when a packet was cut off. */
  end(): void {
    if (this.#buffered > 0) throw new MilterProtocolError('truncated', `the connection ended ${this.#buffered} octet(s) into a packet`);
  }

  #peekLength(): number {
    const first = this.#chunks[0]!;
    if (first.length >= LENGTH_BYTES) return first.readUInt32BE(0);
    const head = Buffer.concat(this.#chunks, LENGTH_BYTES);
    return head.readUInt32BE(0);
  }

  #take(size: number): Buffer {
    const first = this.#chunks[0]!;
    let taken: Buffer;
    if (first.length >= size) {
      taken = first.subarray(0, size);
      if (first.length === size) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(size);
    } else {
      const all = Buffer.concat(this.#chunks, this.#buffered);
      taken = all.subarray(0, size);
      this.#chunks = all.length === size ? [] : [all.subarray(size)];
    }
    this.#buffered -= size;
    return taken;
  }
}
