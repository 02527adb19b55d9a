// A real postsrsd 1.x (Debian package `postsrsd`, /usr/sbin/postsrsd) for one configuration,
// spoken to over its two Postfix tcp_table lookup ports (postsrsd.c, handle_forward and
// handle_reverse):
//   get <address, %XX-encoded>\n  ->  200 <result, %XX-encoded>\n  |  500 <reason>\n
// postsrsd has no clock option: it signs and checks with the real time.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerReply, Separator } from './peers.js';

export const POSTSRSD = '/usr/sbin/postsrsd';

/** Why postsrsd cannot run, naming the Debian package, or null when it is installed. */
export function postsrsdMissing(): Error | null {
  if (existsSync(POSTSRSD)) return null;
  return new Error(`postsrsd not found at ${POSTSRSD}: install it with \`apt-get install postsrsd\` (or run scripts/install-peers.sh).`);
}

export interface PostsrsdConfig {
  /** One secret per line of the secrets file; the first signs, all verify. */
  readonly secrets: readonly string[];
  /** `-d`: the domain it rewrites into; senders in it are not rewritten. */
  readonly domain: string;
  readonly separator: Separator;
  readonly hashLength: number;
  readonly hashMin: number;
}

const LOOPBACK = '127.0.0.1';

/** Ports that were free a moment ago: bind port 0 that many times at once, read them back, release them. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, LOOPBACK, () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

function connectTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, LOOPBACK);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/**
 * Postfix's tcp_table encoding (tcp_table(5)): every byte that is not printable ASCII, or is
 * whitespace or `%`, travels as %XX. UTF-8 addresses therefore go byte by byte.
 */
export function encodeTcpTable(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte > 0x20 && byte < 0x7f && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Undoes {@link encodeTcpTable}: %XX are bytes, and the bytes must be valid UTF-8. */
export function decodeTcpTable(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '%' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(text.charCodeAt(i));
    }
  }
  return strictUtf8.decode(Uint8Array.from(bytes));
}

/**
 * One persistent tcp_table connection. Requests are strictly one at a time: postsrsd's
 * connection child reads with stdio fgets() but waits for the next request with poll() on the
 * socket, so a second request already sitting in the stdio buffer would not be seen until the
 * idle timeout (postsrsd.c main loop). Pipelining would stall; serialising cannot.
 */
class TableConnection {
  readonly #socket: Socket;
  readonly #queue: { line: string; resolve: (reply: PeerReply) => void; reject: (error: Error) => void }[] = [];
  #buffer = '';
  #broken: Error | null = null;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.#receive(chunk));
    socket.on('error', (error) => this.#fail(error));
    socket.on('close', () => this.#fail(new Error('postsrsd closed the connection')));
  }

  get(address: string): Promise<PeerReply> {
    if (this.#broken !== null) return Promise.reject(this.#broken);
    return new Promise((resolve, reject) => {
      this.#queue.push({ line: `get ${encodeTcpTable(address)}\n`, resolve, reject });
      if (this.#queue.length === 1) this.#socket.write(this.#queue[0]!.line);
    });
  }

  #receive(chunk: string): void {
    this.#buffer += chunk;
    for (let end = this.#buffer.indexOf('\n'); end >= 0; end = this.#buffer.indexOf('\n')) {
      const line = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 1);
      const waiter = this.#queue.shift();
      if (waiter === undefined) {
        this.#fail(new Error(`postsrsd answered without a request: ${line}`));
        return;
      }
      waiter.resolve(line.startsWith('200 ') ? { ok: true, result: decodeTcpTable(line.slice(4)) } : { ok: false, error: line });
      const next = this.#queue[0];
      if (next !== undefined) this.#socket.write(next.line);
    }
  }

  #fail(error: Error): void {
    this.#broken ??= error;
    for (const waiter of this.#queue.splice(0)) waiter.reject(this.#broken);
  }

  close(): void {
    this.#socket.destroy();
  }
}

export class Postsrsd {
  readonly config: PostsrsdConfig;
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #forward: TableConnection;
  readonly #reverse: TableConnection;

  private constructor(config: PostsrsdConfig, child: ChildProcess, dir: string, forward: TableConnection, reverse: TableConnection) {
    this.config = config;
    this.#child = child;
    this.#dir = dir;
    this.#forward = forward;
    this.#reverse = reverse;
  }

  /** Starts postsrsd in the foreground on two free loopback ports and connects to both. */
  static async start(config: PostsrsdConfig): Promise<Postsrsd> {
    const missing = postsrsdMissing();
    if (missing !== null) throw missing;
    const dir = await mkdtemp(join(tmpdir(), 'postsrsd-interop-'));
    const secretsFile = join(dir, 'secrets');
    await writeFile(secretsFile, `${config.secrets.join('\n')}\n`, { mode: 0o600 });
    let failure = '';
    // The ports are free when picked, not reserved: another process may bind one first, and
    // postsrsd then exits. Such a start is retried on other ports.
    for (let attempt = 1; attempt <= 3; attempt++) {
      const [forwardPort, reversePort] = (await freePorts(2)) as [number, number];
      const child = spawn(
        POSTSRSD,
        [
          `-s${secretsFile}`,
          `-d${config.domain}`,
          `-l${LOOPBACK}`,
          '-4',
          `-f${forwardPort}`,
          `-r${reversePort}`,
          `-a${config.separator}`,
          `-n${config.hashLength}`,
          `-N${config.hashMin}`,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      let spawnError: Error | null = null;
      child.on('error', (error) => (spawnError = error));
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const gone = (): string | null =>
        spawnError?.message ?? (child.exitCode !== null ? `postsrsd exited with code ${child.exitCode}` : null);
      const sockets: Socket[] = [];
      try {
        sockets.push(await waitForPort(forwardPort, gone));
        sockets.push(await waitForPort(reversePort, gone));
        return new Postsrsd(config, child, dir, new TableConnection(sockets[0]!), new TableConnection(sockets[1]!));
      } catch (error) {
        for (const socket of sockets) socket.destroy();
        child.kill();
        failure = `${(error as Error).message}\n${stderr}`;
      }
    }
    await rm(dir, { recursive: true, force: true });
    throw new Error(`postsrsd did not start: ${failure}`);
  }

  /** The forward table: `200 <rewritten>` or `500 <why not>`. */
  forward(address: string): Promise<PeerReply> {
    return this.#forward.get(address);
  }

  /** The reverse table: `200 <original>` or `500 <why not>`. */
  reverse(address: string): Promise<PeerReply> {
    return this.#reverse.get(address);
  }

  async stop(): Promise<void> {
    this.#forward.close();
    this.#reverse.close();
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const exited = new Promise((resolve) => this.#child.once('exit', resolve));
      this.#child.kill();
      await exited;
    }
    await rm(this.#dir, { recursive: true, force: true });
  }
}

/**
 * Retries connecting until postsrsd listens (it binds right after reading its arguments);
 * `gone` says why it never will.
 */
async function waitForPort(port: number, gone: () => string | null): Promise<Socket> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const why = gone();
    if (why !== null) throw new Error(why);
    try {
      return await connectTo(port);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
