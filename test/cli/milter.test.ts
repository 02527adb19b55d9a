// `outbound-pools milter` and `outbound-pools srs-map` as daemons: real processes, real sockets,
// real signals.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Srs } from '../../src/srs/index.js';
import { MilterTestClient, mta, strings } from '../postfix/milter-client.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  // A timeout: a command line that should be refused but starts a daemon fails instead of hanging.
  const result = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', cwd: ROOT, timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface Daemon {
  readonly child: ChildProcess;
  output(): string;
  /** The port printed in `<what>: listening on inet:127.0.0.1:PORT`. */
  port(what: string): Promise<number>;
  readonly exit: Promise<number | null>;
}

function daemon(args: string[]): Daemon {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exit,
    async port(what) {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const match = new RegExp(`${what}: listening on inet:127\\.0\\.0\\.1:(\\d+)`).exec(output);
        if (match) return Number(match[1]);
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${what} did not start:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
  };
}

describe('outbound-pools milter and srs-map: the command line', () => {
  it('refuses bad usage with status 2 and says why', () => {
    for (const [args, why] of [
      [['milter'], /--listen is required/],
      [['milter', '--listen', 'tcp:1.2.3.4'], /--listen: .* is not inet:host:port or unix:\/path/],
      [['milter', '--listen', 'inet:127.0.0.1:99999'], /no valid port/],
      [['milter', '--listen', 'inet:127.0.0.1:0', '--srs-map-listen', 'inet:127.0.0.1:0'], /--srs-map-listen needs --srs-secret-file/],
      [['milter', '--listen', 'inet:127.0.0.1:0', '--body-limit', 'lots'], /--body-limit must be a number/],
      [['milter', '--listen', 'inet:127.0.0.1:0', '--tenant', 'login'], /--tenant must be login-domain or sender-domain, got "login"/],
      [['milter', '--listen', 'inet:127.0.0.1:0', '--srs-secret-file', '/nonexistent/secrets'], /cannot read the SRS secrets file/],
      [['srs-map', '--listen', 'inet:127.0.0.1:0'], /--srs-secret-file is required/],
      [['milter', '--listen', 'inet:127.0.0.1:0', '--max-recipients', '0'], /--max-recipients must be a whole number of at least 1, got "0"/],
      [['milter', '--listen', 'inet:127.0.0.1:0', '--max-header-bytes', '1MiB'], /--max-header-bytes must be a whole number of at least 1, got "1MiB"/],
      [['milter', '--listen', 'inet:127.0.0.1:0', '--max-header-fields', '1.5'], /--max-header-fields must be a whole number of at least 1, got "1\.5"/],
      [['milter', '--listen', 'inet:127.0.0.1:0', '--max-macro-bytes', '64k'], /--max-macro-bytes must be a whole number of at least 1, got "64k"/],
      [['milter', '--listen', 'inet:127.0.0.1:0', '--max-connections=-1'], /--max-connections must be a whole number of at least 1, got "-1"/],
      [['srs-map', '--listen', 'inet:127.0.0.1:0', '--srs-secret-file', '/nonexistent', '--srs-domain', 'contoso.com', '--max-connections', 'many'], /--max-connections must be a whole number of at least 1, got "many"/],
      [['milter', '--listen', 'inet:127.0.0.1:0', '--no-such-flag'], /Unknown option/],
      // The submitting client writes the header block: Authentication-Results only from designated forwarders.
      [
        ['milter', '--listen', 'inet:127.0.0.1:0', '--authserv-id', 'mx.contoso.com'],
        /--authserv-id needs --auth-results-from\. .*the submitting client writes the whole header block.*only a designated forwarder's copy of the inbound MX's fields can be trusted/,
      ],
      [['milter', '--listen', 'inet:127.0.0.1:0', '--auth-results-from', '192.0.2.25'], /--auth-results-from needs --authserv-id/],
      [['milter', '--listen', 'inet:127.0.0.1:0', '--authserv-id', 'mx.contoso.com', '--auth-results-from', '192.0.2.0/33'], /--auth-results-from: "192\.0\.2\.0\/33" needs a prefix length from 0 to 32/],
      [['milter', '--listen', 'inet:127.0.0.1:0', '--authserv-id', 'mx.contoso.com', '--auth-results-from', '192.0.2.25', '--auth-results-from', '192.0.2.300'], /--auth-results-from: "192\.0\.2\.300" looks like an IP address/],
      // A message with the score field would skip rspamd, and the submitting client can write that field.
      [
        ['milter', '--listen', 'inet:127.0.0.1:0', '--rspamd-url', 'http://127.0.0.1:11333', '--spam-score-header', 'X-Spam-Status'],
        /--spam-score-header cannot be combined with --rspamd-url: a message carrying that field would skip rspamd, and on the submission listener the client can write the field itself/,
      ],
    ] as const) {
      const result = run([...args]);
      assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, why, args.join(' '));
    }
    const help = run(['milter', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /milter_default_action/);
    assert.match(help.stdout, /--max-recipients <n>[^]*--max-header-bytes <n>[^]*--max-header-fields <n>[^]*--max-connections <n>/);
    assert.match(run(['srs-map', '--help']).stdout, /--max-connections <n>/);
    assert.match(run(['srs-map', '--help']).stdout, /recipient_canonical_maps = socketmap:inet:/);
    assert.match(run(['--help']).stdout, /milter .*\n.*srs-map/);
  });

  it('milter: on SIGTERM closes idle connections, finishes the message under way, then exits 0', async () => {
    const milter = daemon(['milter', '--listen', 'inet:127.0.0.1:0']);
    try {
      const port = await milter.port('milter');
      const idle = await MilterTestClient.open(port);
      idle.send(mta.optneg());
      await idle.read();
      const busy = await MilterTestClient.open(port);
      busy.send(mta.optneg());
      await busy.read();
      busy.send(mta.connect('client', '4', 25, '192.0.2.7'), mta.macro('M', { i: 'DRAIN1' }), mta.mail('<megan@contoso.com>'), mta.rcpt('<lee@fabrikam.example>'));
      await new Promise((resolve) => setTimeout(resolve, 200));
      milter.child.kill('SIGTERM');
      await idle.closed;
      assert.equal(busy.isClosed, false, 'a message under way is not cut off');
      assert.equal(milter.child.exitCode, null, 'the daemon waits for it');
      busy.send(mta.header('From', 'megan@contoso.com'), mta.eoh(), mta.eob());
      const final = await busy.readUntilFinal();
      assert.deepEqual(final.map((response) => response.command), ['h', 'h', 'c']);
      await busy.closed;
      assert.equal(await milter.exit, 0, milter.output());
      assert.match(milter.output(), /milter: SIGTERM: draining 2 connection\(s\)/);
      assert.match(milter.output(), /milter: DRAIN1: OutboundIpPoolName=RegularOutboundPool; action=deliver; pool=normal; reasons=accepted-domain/);
    } finally {
      milter.child.kill('SIGKILL');
    }
  });

  it('milter --auth-results-from: reads Authentication-Results only in messages from the listed forwarder (address or login)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbound-pools-milter-ar-'));
    writeFileSync(join(dir, 'secrets'), 'milter-ar-secret\n');
    const milter = daemon([
      'milter',
      '--listen',
      'inet:127.0.0.1:0',
      '--srs-secret-file',
      join(dir, 'secrets'),
      '--authserv-id',
      'inbound.contoso.com',
      '--auth-results-from',
      '198.51.100.0/24',
      '--auth-results-from',
      'Forwarder@Contoso.com',
    ]);
    try {
      const port = await milter.port('milter');
      // The pool and the sender change a message gets, sent from `address` with SASL login `login`.
      const send = async (id: string, address: string, login: string): Promise<string[]> => {
        const client = await MilterTestClient.open(port);
        try {
          client.send(mta.optneg());
          await client.read();
          client.send(
            mta.connect('client', '4', 40000, address),
            mta.macro('M', { i: id, '{auth_authen}': login }),
            mta.mail('<alice@fabrikam.example>'),
            mta.rcpt('<bob@northwind.example>'),
            mta.data(),
          );
          await client.read();
          client.send(
            mta.header('Authentication-Results', 'inbound.contoso.com; spf=pass smtp.mailfrom=alice@fabrikam.example'),
            mta.header('From', 'alice@fabrikam.example'),
            mta.eoh(),
            mta.eob(),
          );
          return (await client.readUntilFinal()).flatMap((response) => {
            if (response.command === 'e') return ['SRS'];
            const [name, value] = strings(response.data);
            return response.command === 'h' && name === 'X-Outbound-Pool-Route' ? [value!] : [];
          });
        } finally {
          client.close();
        }
      };
      assert.deepEqual(await send('AR1', '203.0.113.66', 'mallory@contoso.com'), ['relay'], 'a client-written field is not read');
      assert.deepEqual(await send('AR2', '198.51.100.25', 'mailbox-server'), ['normal', 'SRS'], 'a forwarder by address');
      assert.deepEqual(await send('AR3', '203.0.113.66', 'forwarder@contoso.com'), ['normal', 'SRS'], 'a forwarder by login');
    } finally {
      milter.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('milter --max-connections, --max-recipients, --max-header-bytes, --max-header-fields, --max-macro-bytes: one connection over the cap is closed and logged; a message past a limit gets its 452; macros over theirs close the connection, logged', async () => {
    const milter = daemon(['milter', '--listen', 'inet:127.0.0.1:0', '--max-connections', '1', '--max-recipients', '1', '--max-header-bytes', '40', '--max-header-fields', '2', '--max-macro-bytes', '100']);
    try {
      const port = await milter.port('milter');
      const client = await MilterTestClient.open(port);
      client.send(mta.optneg());
      await client.read();
      const extra = await MilterTestClient.open(port);
      extra.send(mta.optneg());
      await extra.closed;
      assert.equal(extra.unread, 0);
      const final = async (...packets: Buffer[]) => {
        client.send(mta.macro('M', { i: 'LIMITS' }), mta.mail('<megan@contoso.com>'), mta.rcpt('<lee@fabrikam.example>'), ...packets, mta.eoh(), mta.eob());
        const last = (await client.readUntilFinal()).at(-1)!;
        return last.command === 'y' ? strings(last.data)[0] : last.command;
      };
      assert.equal(await final(mta.rcpt('<kim@fabrikam.example>')), '452 4.5.3 Too many recipients: at most 1 per message');
      assert.equal(await final(mta.header('Subject', 'x'.repeat(40))), '452 4.3.4 Message header too large: at most 40 octets');
      assert.equal(await final(mta.header('A', ''), mta.header('B', ''), mta.header('C', '')), '452 4.3.4 Too many header fields: at most 2 per message');
      assert.equal(await final(mta.header('From', 'megan@contoso.com')), 'c', 'within every limit: decided');
      client.send(mta.macro('H', { tls_version: 'x'.repeat(100) }));
      await client.closed;
      assert.match(milter.output(), /milter: 127\.0\.0\.1:\d+: connection closed: already 1 open, the most allowed \(maxConnections\)/);
      assert.match(milter.output(), /SMFIC_MACRO for "H" takes the connection's macros to 113 octets, over the limit of 100 \(maxMacroBytes\)/);
    } finally {
      milter.child.kill('SIGKILL');
    }
  });

  it('srs-map --max-connections: one connection over the cap is closed unanswered and logged, the open one still answers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbound-pools-srs-map-'));
    writeFileSync(join(dir, 'secrets'), 'secret\n');
    const map = daemon(['srs-map', '--listen', 'inet:127.0.0.1:0', '--srs-secret-file', join(dir, 'secrets'), '--srs-domain', 'contoso.com', '--max-connections', '1']);
    try {
      const port = await map.port('srs-map');
      const open = () =>
        new Promise<import('node:net').Socket>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1', () => resolve(socket));
          socket.once('error', reject);
        });
      const ask = (socket: import('node:net').Socket) =>
        new Promise<string>((resolve) => {
          let data = '';
          socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
          socket.once('close', () => resolve(data));
          socket.write('25:forward megan@contoso.com,');
          setTimeout(() => socket.destroy(), 1_000).unref();
        });
      const held = await open();
      assert.equal(await ask(await open()), '', 'closed unanswered');
      assert.equal(await ask(held), '22:NOTFOUND Local domain.,');
      assert.match(map.output(), /srs-map: 127\.0\.0\.1:\d+: connection closed: already 1 open, the most allowed \(maxConnections\)/);
    } finally {
      map.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('srs-map: answers the forward and reverse maps, and exits 0 on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbound-pools-srs-map-'));
    writeFileSync(join(dir, 'secrets'), 'new-secret\nold-secret\n');
    // An injected clock on both sides: the daemon's --now, and the local Srs's `now`. The old
    // address was made two days before the daemon's now, and the new one is read a day after.
    const NOW = Date.UTC(2024, 2, 4, 12);
    const DAY_MS = 86_400_000;
    const map = daemon(['srs-map', '--listen', 'inet:127.0.0.1:0', '--srs-secret-file', join(dir, 'secrets'), '--srs-domain', 'contoso.com', '--policy', join(ROOT, 'examples', 'policy.json'), '--now', new Date(NOW).toISOString()]);
    try {
      const port = await map.port('srs-map');
      const old = new Srs({ secret: 'old-secret' }).forward('alex@fabrikam.example', 'contoso.com', { now: NOW - 2 * DAY_MS });
      const request = (text: string) => `${Buffer.byteLength(text)}:${text},`;
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.write(request(`reverse ${old}`) + request('forward megan@contoso.com') + request('forward alex@fabrikam.example')));
        let data = '';
        socket.on('data', (chunk: Buffer) => {
          data += chunk.toString();
          if ((data.match(/,/g) ?? []).length >= 3) {
            socket.destroy();
            resolve(data);
          }
        });
        socket.on('error', reject);
      });
      const [reversed, local, forwarded] = reply.split(',').map((part) => part.slice(part.indexOf(':') + 1));
      assert.equal(reversed, 'OK alex@fabrikam.example');
      assert.equal(local, 'NOTFOUND Local domain.');
      const address = forwarded!.replace(/^OK /, '');
      assert.equal(new Srs({ secret: 'new-secret' }).reverse(address, { now: NOW + DAY_MS }), 'alex@fabrikam.example', 'the first secret signs');
      map.child.kill('SIGTERM');
      assert.equal(await map.exit, 0, map.output());
    } finally {
      map.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
