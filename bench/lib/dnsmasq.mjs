// A dnsmasq on loopback for the benches: a plain-JS cut of test/servers/dnsmasq.ts (which is
// TypeScript, and whose query log would slow the server down). It serves MX, A and TXT records
// from a zone object, answers NXDOMAIN for unlisted names under the zones' top-level labels, and
// forwards nothing. stop() kills it and removes its temporary directory; a process exit without
// stop() still kills it.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { accessSync, constants } from 'node:fs';
import { promises as dnsPromises } from 'node:dns';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const LOOPBACK = '127.0.0.1';
export const DNSMASQ_MISSING = 'dnsmasq not installed (scripts/install-servers.sh)';

/** The dnsmasq binary on PATH (or in /usr/sbin, /sbin), or null. */
export function findDnsmasq() {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    try {
      accessSync(join(dir, 'dnsmasq'), constants.X_OK);
      return join(dir, 'dnsmasq');
    } catch {
      // not here
    }
  }
  return null;
}

/** A port free for both UDP and TCP on loopback a moment ago. */
async function freePort() {
  for (let attempt = 0; attempt < 20; attempt++) {
    const server = createServer();
    await new Promise((resolve, reject) => server.once('error', reject).listen(0, LOOPBACK, resolve));
    const { port } = server.address();
    await new Promise((resolve) => server.close(resolve));
    const udp = createSocket('udp4');
    const bound = await new Promise((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, LOOPBACK, () => resolve(true));
    });
    await new Promise((resolve) => udp.close(() => resolve()));
    if (bound) return port;
  }
  throw new Error('no loopback port is free for both UDP and TCP');
}

/** One TXT record as dnsmasq's comma-separated chunks of at most 255 octets (ASCII, no commas). */
function txtArg(name, text) {
  if (!/^[\x20-\x7e]*$/.test(text) || text.includes(',') || text.length === 0) throw new Error(`bench dnsmasq: TXT of ${name} must be non-empty printable ASCII without commas`);
  const chunks = [];
  for (let at = 0; at < text.length; at += 255) chunks.push(text.slice(at, at + 255));
  return `--txt-record=${name},${chunks.join(',')}`;
}

function recordArgs(zone) {
  const names = Object.keys(zone).map((name) => name.toLowerCase());
  const args = [...new Set(names.map((name) => name.slice(name.lastIndexOf('.') + 1)))].map((tld) => `--local=/${tld}/`);
  for (const [given, entry] of Object.entries(zone)) {
    const name = given.toLowerCase();
    for (const address of entry.A ?? []) args.push(`--host-record=${name},${address}`);
    for (const { exchange, priority } of entry.MX ?? []) args.push(`--mx-host=${name},${exchange === '' ? '.' : exchange},${priority}`);
    for (const text of entry.TXT ?? []) args.push(txtArg(name, text));
  }
  return args;
}

const running = new Set();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Resolves once dnsmasq at `port` answers a query (any DNS answer; NXDOMAIN here). */
async function waitUntilAnswering(port, child, deadline) {
  const probe = new dnsPromises.Resolver({ timeout: 100, tries: 1 });
  probe.setServers([`${LOOPBACK}:${port}`]);
  while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
    try {
      await probe.resolve4('ready.bench-dnsmasq.invalid');
      return true;
    } catch (error) {
      if (error.code !== 'ECONNREFUSED' && error.code !== 'ETIMEOUT') return true;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  return false;
}

/**
 * Starts dnsmasq serving `zone` ({ name: { MX?, A?, TXT? } }) with answers of `ttlSeconds`.
 * @returns {Promise<{ address: string, stop: () => Promise<void> }>}
 */
export async function startDnsmasq(zone, { ttlSeconds = 300, startTimeoutMs = 10_000 } = {}) {
  const binary = findDnsmasq();
  if (binary === null) throw new Error(DNSMASQ_MISSING);
  const dir = await mkdtemp(join(tmpdir(), 'outbound-pools-bench-dnsmasq-'));
  let child = null;
  let exited = Promise.resolve();
  const stop = async () => {
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const records = recordArgs(zone);
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const args = [
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        `--pid-file=${join(dir, 'dnsmasq.pid')}`,
        `--port=${port}`,
        `--listen-address=${LOOPBACK}`,
        '--bind-interfaces',
        '--no-resolv',
        '--no-hosts',
        `--local-ttl=${ttlSeconds}`,
        ...records,
      ];
      // As root, dnsmasq would drop to `nobody`, who cannot write the temporary directory.
      if (process.getuid?.() === 0) args.push('--user=root');
      let output = '';
      const started = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = started;
      running.add(started);
      exited = new Promise((resolve) => {
        started.once('exit', resolve);
        started.once('error', (error) => {
          output += error.message;
          resolve();
        });
      }).then(() => running.delete(started));
      const keep = (chunk) => (output = (output + chunk).slice(-4_000));
      started.stdout.setEncoding('utf8').on('data', keep);
      started.stderr.setEncoding('utf8').on('data', keep);
      if (await waitUntilAnswering(port, started, Date.now() + startTimeoutMs)) return { address: `${LOOPBACK}:${port}`, stop };
      if (started.exitCode === null && started.signalCode === null) throw new Error(`dnsmasq did not answer within ${startTimeoutMs} ms: ${output.trim()}`);
      await exited;
      // Another process took the port between freePort() and dnsmasq's bind: try another.
      if (/Address already in use/i.test(output) && attempt < 5) continue;
      throw new Error(`dnsmasq exited during startup: ${output.trim()}`);
    }
  } catch (error) {
    await stop();
    throw error;
  }
}
