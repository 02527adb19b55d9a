// A real DNS server for the tests: dnsmasq (Debian package `dnsmasq-base`, /usr/sbin/dnsmasq)
// on 127.0.0.1 at a free port (UDP and TCP), answering from a zone given as a JS object, with
// every query it receives written to a log that the tests count (`queryCount`): what reached
// the server, not what our code believes it sent.
//
// How the zone becomes dnsmasq configuration, and what dnsmasq 2.90 does with it (measured):
// - A / AAAA: `--host-record=name,address[,ttl]`, one per address. NODATA for the other family.
// - MX: `--mx-host=name,exchange,preference`. A null MX (RFC 7505) is `--mx-host=name,.,0`:
//   dnsmasq serves it, and node:dns reads it as `{ exchange: '', priority: 0 }`.
// - TXT: `--txt-record=name,chunk,chunk`, one TXT record whose character-strings are the
//   chunks. A string is cut into 255-octet chunks (DKIM keys). On the command line dnsmasq
//   takes quotes literally and splits at every comma, so a record with a comma (or an empty
//   chunk) goes to the generated config file instead, quoted — where a line is limited to
//   about 1,000 characters.
// - CNAME: `--cname=name,target[,ttl]`; PTR: `--ptr-record=name,target`.
// - NXDOMAIN: every zone is `--local=/zone/`, so a name under it that is not listed gets
//   NXDOMAIN (and a listed name without the type NODATA); nothing is forwarded. The zones are
//   the top-level labels of the names given (`example`, `test`) unless `zones` says otherwise.
//   A name outside every zone gets REFUSED: there is no upstream (`--no-resolv`).
// - Failures, `fail` on a name (and its subdomains): dnsmasq never answers SERVFAIL for its
//   own configuration — a forward to a closed port is never answered (the client times out)
//   and a forward it cannot send is answered REFUSED. So such a name is forwarded
//   (`--server=/name/127.0.0.1#port`) to a tiny in-process upstream: `ESERVFAIL` answers
//   RCODE 2, which dnsmasq relays as SERVFAIL (and does not cache); `EREFUSED` answers RCODE 5,
//   relayed as REFUSED; `ETIMEOUT` never answers.
//
// The log is read after a marker query has come back and appeared in it: dnsmasq handles
// queries one at a time, so every query sent before the marker has been logged by then.
// An answer over 512 octets (a TXT record of about 500 characters or more, such as a 4096-bit
// DKIM key) comes back truncated over UDP and node:dns asks again over TCP, which a forked
// dnsmasq child answers and logs: such a lookup counts as two queries.

import type { ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { domainToASCII } from 'node:url';
import { findExecutable, spawnWatched } from './processes.js';

const LOOPBACK = '127.0.0.1';
const MISSING = 'dnsmasq not found: apt-get install dnsmasq-base (or run scripts/install-servers.sh)';
/** dnsmasq reads config lines into a buffer of about this size. */
const MAX_CONFIG_LINE = 1000;

/** The records of one name; the shape of `StaticZoneEntry` (src/providers/static-dns.ts), plus TTLs and PTR. */
export interface DnsmasqEntry {
  readonly A?: readonly string[];
  readonly AAAA?: readonly string[];
  /** `exchange: '.'` (or `''`) is a null MX. */
  readonly MX?: readonly { readonly exchange: string; readonly priority: number }[];
  /** Each record as one string (cut into 255-octet chunks) or as its chunks. */
  readonly TXT?: readonly (string | readonly string[])[];
  /** One target (a second one is refused: a name has at most one CNAME). */
  readonly CNAME?: string | readonly string[];
  readonly PTR?: readonly string[];
  /** Every query for the name and its subdomains fails this way; the name has no records then. */
  readonly fail?: 'ESERVFAIL' | 'EREFUSED' | 'ETIMEOUT';
  /** TTL of the A, AAAA and CNAME answers; default `ttlSeconds` of the server. */
  readonly ttl?: number;
}

/** Names (any case, U-labels allowed) to their records. */
export type DnsmasqZone = Readonly<Record<string, DnsmasqEntry>>;

/** Options of {@link startDnsmasq}. */
export interface DnsmasqOptions {
  /** Domains answered only locally: unlisted names under them get NXDOMAIN. Default: the top-level labels of the names. */
  readonly zones?: readonly string[];
  /** TTL of every answer without its own (`--local-ttl`). Default 300. */
  readonly ttlSeconds?: number;
  /** How long to wait for dnsmasq to answer after starting. Default 10,000 ms. */
  readonly startTimeoutMs?: number;
}

/** One query as dnsmasq logged it. */
export interface LoggedQuery {
  /** As received, lowercased, without the trailing dot. */
  readonly name: string;
  /** `A`, `MX`, `TXT`, … (dnsmasq writes unknown types as `type=N`). */
  readonly type: string;
}

/** A running dnsmasq. */
export interface DnsmasqServer {
  /** `127.0.0.1:port`, for `createDnsResolver({ servers: [address] })`. */
  readonly address: string;
  readonly port: number;
  /** The temporary directory: dnsmasq.conf, queries.log, dnsmasq.pid. */
  readonly dir: string;
  /** Every query received so far, in order (after the log has caught up). */
  queries(): Promise<LoggedQuery[]>;
  /** How many queries for `name` (any case, U-labels allowed; of `type` when given) were received so far. */
  queryCount(filter: { readonly name: string; readonly type?: string }): Promise<number>;
  /** The raw log. */
  log(): Promise<string>;
  /** Stops dnsmasq and the in-process upstreams, and removes the temporary directory. */
  stop(): Promise<void>;
}

/** The dnsmasq binary on PATH (or in /usr/sbin, /sbin), or null. */
export function findDnsmasq(): string | null {
  return findExecutable('dnsmasq');
}

/** Why dnsmasq cannot run, naming the Debian package, or null when it can. */
export function dnsmasqMissing(): Error | null {
  return findDnsmasq() === null ? new Error(MISSING) : null;
}

// ---------------------------------------------------------------------------------------------
// DNS messages, as much as the helpers need (RFC 1035 §4.1)
// ---------------------------------------------------------------------------------------------

const QTYPE_A = 1;

/** A query with recursion desired. */
function encodeQuery(id: number, name: string, qtype: number): Buffer {
  const labels = name.split('.').map((label) => Buffer.from(label, 'ascii'));
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4); // QDCOUNT
  const question = Buffer.alloc(4);
  question.writeUInt16BE(qtype, 0);
  question.writeUInt16BE(1, 2); // IN
  return Buffer.concat([header, ...labels.flatMap((label) => [Buffer.from([label.length]), label]), Buffer.from([0]), question]);
}

/** The offset after the first question, or -1 when the message is too short or compressed. */
function questionEnd(message: Buffer): number {
  let offset = 12;
  while (offset < message.length) {
    const length = message[offset]!;
    if (length === 0) return offset + 5 <= message.length ? offset + 5 : -1;
    if (length >= 0xc0) return -1;
    offset += length + 1;
  }
  return -1;
}

/** The answer to `query` with `rcode` and no records: its header and question, QR and RA set. */
function errorReply(query: Buffer, rcode: number): Buffer | null {
  const end = questionEnd(query);
  if (end < 0) return null;
  const reply = Buffer.from(query.subarray(0, end));
  reply[2] = 0x80 | (query[2]! & 0x79); // QR, the opcode and RD as asked
  reply[3] = 0x80 | rcode; // RA
  reply.writeUInt16BE(1, 4);
  reply.fill(0, 6, 12); // no answer, authority or additional records
  return reply;
}

function bindUdp(port = 0): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(port, LOOPBACK, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

function closeUdp(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}

/** A port free for both UDP and TCP on loopback a moment ago. */
async function freePort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, LOOPBACK, resolve);
    });
    const { port } = server.address() as AddressInfo;
    const udp = await bindUdp(port).catch(() => null);
    await new Promise((resolve) => server.close(resolve));
    if (udp !== null) {
      await closeUdp(udp);
      return port;
    }
    if (attempt > 20) throw new Error('no loopback port is free for both UDP and TCP');
  }
}

// ---------------------------------------------------------------------------------------------
// In-process upstreams
// ---------------------------------------------------------------------------------------------

/** A DNS "server" on a free UDP port that reads every query and never answers, for timeout tests. */
export interface SilentDnsServer {
  /** `127.0.0.1:port`. */
  readonly address: string;
  readonly port: number;
  /** Datagrams received so far. */
  readonly received: number;
  stop(): Promise<void>;
}

/** Starts a {@link SilentDnsServer}. */
export async function startSilentDnsServer(): Promise<SilentDnsServer> {
  const socket = await bindUdp();
  let received = 0;
  socket.on('message', () => {
    received++;
  });
  const { port } = socket.address();
  return {
    address: `${LOOPBACK}:${port}`,
    port,
    get received() {
      return received;
    },
    stop: () => closeUdp(socket),
  };
}

/** An upstream that answers every query with `rcode` (2 SERVFAIL, 5 REFUSED), or never when null. */
async function startUpstream(rcode: number | null): Promise<{ port: number; stop: () => Promise<void> }> {
  const socket = await bindUdp();
  socket.on('message', (query, from) => {
    const reply = rcode === null ? null : errorReply(query, rcode);
    if (reply !== null) socket.send(reply, from.port, from.address);
  });
  return { port: socket.address().port, stop: () => closeUdp(socket) };
}

const FAIL_RCODES = { ESERVFAIL: 2, EREFUSED: 5, ETIMEOUT: null } as const;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/** A name as dnsmasq is given it: lowercase A-labels, no trailing dot. */
function dnsName(name: string): string {
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  const labels = bare.split('.').map((label) => (/^[\x21-\x7e]*$/.test(label) ? label.toLowerCase() : domainToASCII(label)));
  if (bare.length === 0 || labels.some((label) => label.length === 0 || label.length > 63 || /[\s,/#"\\]/.test(label))) {
    throw new Error(`dnsmasq helper: ${JSON.stringify(name)} is not a name it can serve`);
  }
  return labels.join('.');
}

/** A TXT string cut into chunks of at most 255 UTF-8 octets, at character boundaries. */
function txtChunks(text: string): string[] {
  const chunks: string[] = [];
  let chunk = '';
  let octets = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char, 'utf8');
    if (octets + size > 255) {
      chunks.push(chunk);
      chunk = '';
      octets = 0;
    }
    chunk += char;
    octets += size;
  }
  chunks.push(chunk);
  return chunks;
}

function quoted(chunk: string): string {
  return `"${chunk.replace(/[\\"]/g, (char) => `\\${char}`)}"`;
}

interface Plan {
  readonly args: string[];
  readonly config: string[];
  readonly failing: Map<string, DnsmasqEntry['fail'] & string>;
}

function plan(zone: DnsmasqZone, options: DnsmasqOptions): Plan {
  const args: string[] = [];
  const config: string[] = [];
  const failing = new Map<string, DnsmasqEntry['fail'] & string>();
  const names = Object.keys(zone).map(dnsName);
  const zones = options.zones?.map(dnsName) ?? [...new Set(names.map((name) => name.slice(name.lastIndexOf('.') + 1)))];
  for (const local of zones) args.push(`--local=/${local}/`);
  for (const [given, entry] of Object.entries(zone)) {
    const name = dnsName(given);
    const ttl = entry.ttl === undefined ? '' : `,${entry.ttl}`;
    if (entry.fail !== undefined) {
      if (Object.keys(entry).some((key) => key !== 'fail')) throw new Error(`dnsmasq helper: ${given} has fail and records; dnsmasq would answer the records`);
      failing.set(name, entry.fail);
      continue;
    }
    for (const address of entry.A ?? []) args.push(`--host-record=${name},${address}${ttl}`);
    for (const address of entry.AAAA ?? []) args.push(`--host-record=${name},${address}${ttl}`);
    for (const { exchange, priority } of entry.MX ?? []) {
      args.push(`--mx-host=${name},${exchange === '' || exchange === '.' ? '.' : dnsName(exchange)},${priority}`);
    }
    for (const record of entry.TXT ?? []) {
      const chunks = typeof record === 'string' ? txtChunks(record) : [...record];
      for (const chunk of chunks) {
        if (Buffer.byteLength(chunk, 'utf8') > 255) throw new Error(`dnsmasq helper: a TXT chunk of ${given} is over 255 octets`);
        if (/[\x00-\x1f\x7f]/.test(chunk)) throw new Error(`dnsmasq helper: a TXT chunk of ${given} has control characters`);
      }
      if (chunks.every((chunk) => chunk.length > 0 && !chunk.includes(','))) {
        args.push(`--txt-record=${name},${chunks.join(',')}`);
      } else {
        const line = `txt-record=${name},${chunks.map(quoted).join(',')}`;
        if (line.length > MAX_CONFIG_LINE) throw new Error(`dnsmasq helper: a TXT record of ${given} with commas is too long for a dnsmasq config line`);
        config.push(line);
      }
    }
    const cnames = typeof entry.CNAME === 'string' ? [entry.CNAME] : (entry.CNAME ?? []);
    if (cnames.length > 1) throw new Error(`dnsmasq helper: ${given} has more than one CNAME`);
    for (const target of cnames) args.push(`--cname=${name},${dnsName(target)}${ttl}`);
    for (const target of entry.PTR ?? []) args.push(`--ptr-record=${name},${dnsName(target)}`);
  }
  return { args, config, failing };
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends one query and resolves with whether any answer came within `timeoutMs`. */
async function answers(port: number, name: string, timeoutMs: number): Promise<boolean> {
  const socket = await bindUdp();
  try {
    const id = Math.floor(Math.random() * 0x10000);
    const got = new Promise<boolean>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs, false);
      socket.on('message', (message) => {
        if (message.length >= 2 && message.readUInt16BE(0) === id) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    });
    socket.send(encodeQuery(id, name, QTYPE_A), port, LOOPBACK);
    return await got;
  } finally {
    await closeUdp(socket);
  }
}

const QUERY_LINE = /dnsmasq\[\d+\]: query\[([^\]]+)\] (\S+) from /;
/** Marker queries (readiness, log sync) live here; never counted. */
const MARKER_DOMAIN = 'dnsmasq-helper.invalid';

/** Every dnsmasq started here, killed if the test process exits without stop(). */

/**
 * Starts dnsmasq serving `zone` (see the top of this file) and resolves once it answers.
 * Rejects with "dnsmasq not found: …" when dnsmasq is not installed, and with its output when it
 * exits or does not answer in time.
 *
 * ```ts
 * const dns = await startDnsmasq({ 'example.test': { MX: [{ exchange: 'mx.example.test', priority: 10 }] } });
 * const resolver = createDnsResolver({ servers: [dns.address] });
 * await dns.queryCount({ name: 'example.test', type: 'MX' });
 * await dns.stop();
 * ```
 */
export async function startDnsmasq(zone: DnsmasqZone, options: DnsmasqOptions = {}): Promise<DnsmasqServer> {
  const binary = findDnsmasq();
  if (binary === null) throw new Error(MISSING);
  const { args: recordArgs, config, failing } = plan(zone, options);
  const dir = await mkdtemp(join(tmpdir(), 'outbound-pools-dnsmasq-'));
  const upstreams: { stop: () => Promise<void> }[] = [];
  let child: ChildProcess | null = null;
  let exit: Promise<void> = Promise.resolve();
  let stopped = false;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const gone = await Promise.race([exit.then(() => true), sleep(2_000).then(() => false)]);
      if (!gone) {
        child.kill('SIGKILL');
        await exit;
      }
    }
    await Promise.all(upstreams.map((upstream) => upstream.stop()));
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const failArgs: string[] = [];
    const byFailure = new Map<string, number>();
    for (const [name, failure] of failing) {
      let port = byFailure.get(failure);
      if (port === undefined) {
        const upstream = await startUpstream(FAIL_RCODES[failure]);
        upstreams.push(upstream);
        port = upstream.port;
        byFailure.set(failure, port);
      }
      failArgs.push(`--server=/${name}/${LOOPBACK}#${port}`);
    }
    const configFile = join(dir, 'dnsmasq.conf');
    await writeFile(configFile, ['# Generated by test/servers/dnsmasq.ts: the records that need quoting.', ...config, ''].join('\n'));
    const logFile = join(dir, 'queries.log');
    const startTimeoutMs = options.startTimeoutMs ?? 10_000;

    let port = 0;
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      const args = [
        '--keep-in-foreground',
        `--conf-file=${configFile}`,
        `--pid-file=${join(dir, 'dnsmasq.pid')}`,
        `--port=${port}`,
        `--listen-address=${LOOPBACK}`,
        '--bind-interfaces',
        '--no-resolv',
        '--no-hosts',
        '--log-queries',
        `--log-facility=${logFile}`,
        `--local-ttl=${options.ttlSeconds ?? 300}`,
        ...recordArgs,
        ...failArgs,
      ];
      // As root, dnsmasq would drop to `nobody`, who cannot write the temporary directory.
      if (process.getuid?.() === 0) args.push('--user=root');
      const started = spawnWatched(binary, args);
      child = started.child;
      exit = started.exit;

      const deadline = Date.now() + startTimeoutMs;
      let ready = false;
      while (started.exited() === null && Date.now() < deadline) {
        if (await answers(port, `ready.${MARKER_DOMAIN}`, 100)) {
          ready = true;
          break;
        }
      }
      if (ready) break;
      if (started.exited() === null) throw new Error(`dnsmasq did not answer on ${LOOPBACK}:${port} within ${startTimeoutMs} ms:\n${started.output()}`);
      await exit;
      // Another process took the port between freePort() and dnsmasq's bind: try another.
      if (/Address already in use/i.test(started.output()) && attempt < 5) continue;
      throw new Error(`dnsmasq exited during startup (${String(started.exited())}):\n${started.output()}\ndnsmasq ${args.join(' ')}`);
    }

    const log = async () => readFile(logFile, 'utf8').catch(() => '');
    let syncs = 0;
    /** Waits until every query sent before this call is in the log. */
    const sync = async () => {
      const marker = `sync-${++syncs}.${MARKER_DOMAIN}`;
      const line = `] ${marker} from`;
      const until = Date.now() + 5_000;
      while (!(await answers(port, marker, 200))) {
        if (Date.now() > until) throw new Error('dnsmasq does not answer the log marker query');
      }
      while (!(await log()).includes(line)) {
        if (Date.now() > until) throw new Error(`dnsmasq did not log the marker query ${marker}`);
        await sleep(5);
      }
    };
    const queries = async (): Promise<LoggedQuery[]> => {
      await sync();
      const list: LoggedQuery[] = [];
      for (const line of (await log()).split('\n')) {
        const match = QUERY_LINE.exec(line);
        if (match === null) continue;
        const name = match[2]!.toLowerCase().replace(/\.$/, '');
        if (name.endsWith(`.${MARKER_DOMAIN}`)) continue;
        list.push({ name, type: match[1]! });
      }
      return list;
    };
    const queryCount = async (filter: { readonly name: string; readonly type?: string }): Promise<number> => {
      const name = dnsName(filter.name);
      const type = filter.type?.toUpperCase();
      return (await queries()).filter((query) => query.name === name && (type === undefined || query.type === type)).length;
    };
    return { address: `${LOOPBACK}:${port}`, port, dir, queries, queryCount, log, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
