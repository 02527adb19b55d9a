// An MTA's side of the milter protocol for the tests, written by hand from the protocol documents
// (milter-protocol.txt and its version 6 extras), not with the code under test: request packets
// built octet by octet, and a client that reads the milter's responses off a real socket.
import { connect, type Socket } from 'node:net';

/** `uint32 len, char cmd, data` (milter-protocol.txt "LINK/PACKET PROTOCOL"). */
export function packet(command: string, ...parts: (Buffer | string | number[])[]): Buffer {
  const data = Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'latin1') : Buffer.from(part))));
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length + 1, 0);
  head[4] = command.charCodeAt(0);
  return Buffer.concat([head, data]);
}

function u32(value: number): Buffer {
  const word = Buffer.alloc(4);
  word.writeUInt32BE(value, 0);
  return word;
}

function z(text: string): string {
  return `${text}\0`;
}

/** Postfix 3.x's offer: protocol 6, every action (0x1ff), every step and reply mode (0x1fffff). */
export const POSTFIX_ACTIONS = 0x1ff;
export const POSTFIX_PROTOCOL = 0x1fffff;

/** The requests, as an MTA sends them. */
export const mta = {
  optneg: (version = 6, actions = POSTFIX_ACTIONS, protocol = POSTFIX_PROTOCOL) => packet('O', u32(version), u32(actions), u32(protocol)),
  macro: (stage: string, pairs: Record<string, string>) => packet('D', stage, Object.entries(pairs).map(([name, value]) => `${z(name)}${z(value)}`).join('')),
  connect: (hostname: string, family: string, port: number, address: string) => {
    const portWord = Buffer.alloc(2);
    portWord.writeUInt16BE(port, 0);
    return family === 'U' ? packet('C', z(hostname), family) : packet('C', z(hostname), family, portWord, z(address));
  },
  helo: (name: string) => packet('H', z(name)),
  mail: (...args: string[]) => packet('M', args.map(z).join('')),
  rcpt: (...args: string[]) => packet('R', args.map(z).join('')),
  data: () => packet('T'),
  header: (name: string, value: string) => packet('L', z(name), z(value)),
  eoh: () => packet('N'),
  body: (chunk: string | Buffer) => packet('B', chunk),
  eob: () => packet('E'),
  abort: () => packet('A'),
  quit: () => packet('Q'),
  quitNc: () => packet('K'),
  unknown: (line: string) => packet('U', z(line)),
};

/** One response read back: its command character and data. */
export interface Response {
  readonly command: string;
  readonly data: Buffer;
}

/** The NUL-terminated strings of a response's data. */
export function strings(data: Buffer): string[] {
  const text = data.toString('latin1');
  return text.endsWith('\0') ? text.slice(0, -1).split('\0') : text.split('\0');
}

/** A connection to a milter, reading its responses in order. */
export class MilterTestClient {
  readonly socket: Socket;
  #buffer = Buffer.alloc(0);
  #responses: Response[] = [];
  #waiters: (() => void)[] = [];
  #closed = false;
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      while (this.#buffer.length >= 4) {
        const length = this.#buffer.readUInt32BE(0);
        if (this.#buffer.length < 4 + length) break;
        this.#responses.push({ command: String.fromCharCode(this.#buffer[4]!), data: this.#buffer.subarray(5, 4 + length) });
        this.#buffer = this.#buffer.subarray(4 + length);
      }
      for (const wake of this.#waiters.splice(0)) wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#closed = true;
        for (const wake of this.#waiters.splice(0)) wake();
        resolve();
      }),
    );
  }

  static open(port: number, host = '127.0.0.1'): Promise<MilterTestClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, host, () => resolve(new MilterTestClient(socket)));
      socket.once('error', reject);
    });
  }

  static openPath(path: string): Promise<MilterTestClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path, () => resolve(new MilterTestClient(socket)));
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  send(...packets: Buffer[]): void {
    this.socket.write(Buffer.concat(packets));
  }

  /** The next `count` responses (rejects if the connection closes first or after `timeoutMs`). */
  async read(count = 1, timeoutMs = 5_000): Promise<Response[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.#responses.length < count) {
      if (this.#closed) throw new Error(`the milter closed the connection after ${this.#responses.length} of ${count} response(s)`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms (got ${this.#responses.length} of ${count})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.#responses.splice(0, count);
  }

  /** Responses that arrived and were not read. */
  get unread(): number {
    return this.#responses.length;
  }

  /** Reads until the milter ends a message (a final response: c, a, r, t, y, d). */
  async readUntilFinal(timeoutMs = 5_000): Promise<Response[]> {
    const out: Response[] = [];
    for (;;) {
      const [response] = await this.read(1, timeoutMs);
      out.push(response!);
      if ('catryd'.includes(response!.command)) return out;
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
