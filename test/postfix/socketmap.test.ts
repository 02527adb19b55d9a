// The SRS socketmap: netstring framing by hand, the maps as postsrsd 2.x answers them, the server
// over a real socket, a client that pipelines without reading the replies (test/postfix/flood.ts),
// and Postfix's own socketmap client (`postmap -q`) against it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSrsMaps, NetstringReader, SocketmapProtocolError, startSocketmapServer, type SocketmapServer } from '../../src/postfix/socketmap.js';
import { Srs } from '../../src/srs/index.js';
import { OutboundPoolsError } from '../../src/errors.js';
import { findExecutable } from '../servers/processes.js';
import { assertLinear } from './doubling.js';
import { expectReplies, floodUntilStopped, openConnection } from './flood.js';

const NOW = Date.UTC(2026, 10, 23, 9, 0, 0);
const srs = new Srs({ secrets: ['first-secret', 'old-secret'] });
const maps = createSrsMaps({ srs, domain: 'contoso.com', localDomains: ['contoso.com', 'fabrikam-local.example'], now: () => NOW });

/** A netstring, by hand: `len:data,`. */
function ns(text: string): Buffer {
  const data = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from(`${data.length}:`), data, Buffer.from(',')]);
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof SocketmapProtocolError, String(error));
    return error.code;
  }
  return 'no error';
}

describe('netstrings', () => {
  it('reads requests however the stream is split', () => {
    const stream = Buffer.concat([ns('reverse a@b'), ns(''), ns('forward x@y.example')]);
    for (const size of [stream.length, 5, 1]) {
      const reader = new NetstringReader();
      const got: string[] = [];
      for (let at = 0; at < stream.length; at += size) got.push(...reader.push(stream.subarray(at, at + size)).map((b) => b.toString()));
      reader.end();
      assert.deepEqual(got, ['reverse a@b', '', 'forward x@y.example'], `chunks of ${size}`);
    }
  });

  it('refuses what is not a netstring, a length over the limit before its data arrives, and a stream cut short', () => {
    assert.equal(codeOf(() => new NetstringReader().push(Buffer.from('x:abc,'))), 'malformed');
    assert.equal(codeOf(() => new NetstringReader().push(Buffer.from(':abc,'))), 'malformed');
    assert.equal(codeOf(() => new NetstringReader().push(Buffer.from('03:abc,'))), 'malformed');
    assert.equal(codeOf(() => new NetstringReader().push(Buffer.from('3:abc;'))), 'malformed');
    assert.equal(codeOf(() => new NetstringReader(100).push(Buffer.from('101'))), 'oversized');
    const reader = new NetstringReader();
    reader.push(Buffer.from('10:abc'));
    assert.equal(codeOf(() => reader.end()), 'truncated');
  });

  it('takes time linear in the request size, one octet at a time (doubling series)', () => {
    const time = (size: number, reads: number): number => {
      const stream = ns('x'.repeat(size));
      const chunks: Buffer[] = [];
      for (let at = 0; at < stream.length; at += 8) chunks.push(stream.subarray(at, at + 8));
      let best = Infinity;
      for (let run = 0; run < 15; run++) {
        let count = 0;
        const started = process.hrtime.bigint();
        for (let read = 0; read < reads; read++) {
          const reader = new NetstringReader(1 << 24);
          for (const chunk of chunks) count += reader.push(chunk).length;
        }
        best = Math.min(best, Number(process.hrtime.bigint() - started));
        assert.equal(count, reads);
      }
      return best;
    };
    assertLinear([4_096, 8_192, 16_384, 32_768, 65_536, 131_072], time, 'reading a netstring in 8-octet chunks');
  });
});

describe('the SRS maps, as postsrsd 2.x answers them', () => {
  it('forward: the SRS address of a sender outside the local domains; NOTFOUND for a local sender or no domain', async () => {
    assert.deepEqual(await maps.forward('alex@fabrikam.example'), { status: 'OK', data: srs.forward('alex@fabrikam.example', 'contoso.com', { now: NOW }) });
    assert.equal((await maps.forward('megan@contoso.com')).status, 'NOTFOUND');
    assert.equal((await maps.forward('lee@FABRIKAM-LOCAL.example')).status, 'NOTFOUND');
    assert.equal((await maps.forward('postmaster')).status, 'NOTFOUND');
  });

  it('forward: local domains as a policy writes them, wildcards included, compared normalised (A-labels, no final dot)', async () => {
    const local = createSrsMaps({ srs, domain: 'contoso.com', localDomains: ['*.contoso.com', 'bücher.de'], now: () => NOW });
    for (const sender of ['alice@sales.contoso.com', 'alice@EU.Sales.Contoso.com.', 'alice@Bücher.DE', 'alice@xn--bcher-kva.de', 'alice@contoso.com.']) {
      assert.equal((await local.forward(sender)).status, 'NOTFOUND', sender);
    }
    assert.equal((await local.forward('alice@contoso.com.evil.example')).status, 'OK');
  });

  it('reverse: the original sender of a valid SRS address, signed with any secret; NOTFOUND with the reason otherwise', async () => {
    const address = srs.forward('alex@fabrikam.example', 'contoso.com', { now: NOW });
    assert.deepEqual(await maps.reverse(address), { status: 'OK', data: 'alex@fabrikam.example' });
    const old = new Srs({ secret: 'old-secret' }).forward('kim@northwind.example', 'contoso.com', { now: NOW });
    assert.deepEqual(await maps.reverse(old), { status: 'OK', data: 'kim@northwind.example' });
    // Postfix may fold the case of the lookup key: the hash is compared without case.
    assert.deepEqual(await maps.reverse(address.toLowerCase()), { status: 'OK', data: 'alex@fabrikam.example' });
    for (const bad of ['megan@contoso.com', '@contoso.com', 'megan', address.replace(/^SRS0=(.)/, (_m, c: string) => `SRS0=${c === 'a' ? 'b' : 'a'}`)]) {
      const reply = await maps.reverse(bad);
      assert.equal(reply.status, 'NOTFOUND', bad);
    }
    const expired = createSrsMaps({ srs, domain: 'contoso.com', now: () => NOW + 60 * 86_400_000 });
    const reply = await expired.reverse(address);
    assert.equal(reply.status, 'NOTFOUND');
    assert.match(String((reply as { reason?: string }).reason), /expired|old/i);
  });
});

/** Sends raw octets to the socketmap and reads raw octets back until `expect` of them or close. */
function exchange(port: number, payload: Buffer, expect: number): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1', () => socket.write(payload));
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ data, closed: false });
    }, 2000);
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('utf8');
      if (data.length >= expect && expect > 0) {
        clearTimeout(timer);
        socket.destroy();
        resolve({ data, closed: false });
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ data, closed: true });
    });
    socket.on('error', reject);
  });
}

describe('the socketmap server', () => {
  let server: SocketmapServer;
  let port: number;
  before(async () => {
    server = await startSocketmapServer({ kind: 'inet', host: '127.0.0.1', port: 0 }, { maps, maxRequest: 1000 });
    port = Number(server.address.split(':').pop());
  });
  after(async () => {
    await server.close();
  });

  it('answers several requests on one connection, in order', async () => {
    const address = srs.forward('alex@fabrikam.example', 'contoso.com', { now: NOW });
    const expected = Buffer.concat([ns('OK alex@fabrikam.example'), ns('NOTFOUND Local domain.'), ns('PERM Invalid map.'), ns('PERM Invalid query.')]).toString();
    const { data } = await exchange(port, Buffer.concat([ns(`reverse ${address}`), ns('forward megan@contoso.com'), ns('nosuchmap key'), ns('reverse')]), expected.length);
    assert.equal(data, expected);
  });

  for (const [name, payload] of [
    ['a request that is not a netstring', Buffer.from('reverse a@b\n')],
    ['a request over the size limit', Buffer.from('1001:')],
    ['a netstring without its comma', Buffer.from('3:abc.')],
  ] as const) {
    it(`closes the connection on ${name}, and only that one`, async () => {
      const other = connect(port, '127.0.0.1');
      await new Promise((resolve) => other.once('connect', resolve));
      const { closed, data } = await exchange(port, payload, 0);
      assert.equal(closed, true);
      assert.equal(data, '');
      const reply = new Promise<string>((resolve) => other.once('data', (chunk: Buffer) => resolve(chunk.toString())));
      other.write(ns('forward megan@contoso.com'));
      assert.equal(await reply, ns('NOTFOUND Local domain.').toString());
      other.destroy();
    });
  }

  it('is understood by Postfix’s own socketmap client (postmap -q)', async (t) => {
    const postmap = findExecutable('postmap');
    assert.ok(postmap !== null, 'postmap is not installed: run `bash scripts/install-postfix.sh` (Debian package postfix).');
    const dir = mkdtempSync(join(tmpdir(), 'outbound-pools-postmap-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'main.cf'), 'compatibility_level = 3.6\n');
    // Not spawnSync: the server answering runs in this process.
    const query = (key: string, map: string) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(postmap, ['-c', dir, '-q', key, `socketmap:inet:127.0.0.1:${port}:${map}`], (error, stdout, stderr) => {
          resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
        });
      });
    const address = srs.forward('alex@fabrikam.example', 'contoso.com', { now: NOW });
    const reversed = await query(address, 'reverse');
    assert.equal(reversed.status, 0, reversed.stderr);
    assert.equal(reversed.stdout.trim(), 'alex@fabrikam.example');
    const forwarded = await query('alex@fabrikam.example', 'forward');
    assert.equal(forwarded.stdout.trim(), address);
    // NOTFOUND: postmap exits 1 with nothing on stdout.
    const notFound = await query('megan@contoso.com', 'reverse');
    assert.equal(notFound.status, 1, notFound.stderr);
    assert.equal(notFound.stdout, '');
  });
});

describe('the socketmap server, connection cap', () => {
  it('closes a connection over maxConnections at once, unanswered, and reports it; the open ones still answer, and closing one lets a new one in', async (t) => {
    const reports: string[] = [];
    const server = await startSocketmapServer({ kind: 'inet', host: '127.0.0.1', port: 0 }, { maps, maxConnections: 2, onError: (error, remote) => reports.push(`${remote}: ${error.message}`) });
    t.after(() => server.close(100));
    const port = Number(server.address.split(':').pop());
    const sockets: Socket[] = [];
    t.after(() => sockets.forEach((socket) => socket.destroy()));
    const open = async () => {
      const socket = connect(port, '127.0.0.1');
      sockets.push(socket);
      socket.on('error', () => undefined);
      await new Promise((resolve) => socket.once('connect', resolve));
      return socket;
    };
    const ask = (socket: Socket) =>
      new Promise<string>((resolve) => {
        socket.once('data', (chunk: Buffer) => resolve(chunk.toString()));
        socket.write(ns('forward megan@contoso.com'));
      });
    const local = ns('NOTFOUND Local domain.').toString();
    const first = await open();
    assert.equal(await ask(first), local);
    const second = await open();
    assert.equal(await ask(second), local);

    const { closed, data } = await exchange(port, ns('forward megan@contoso.com'), 0);
    assert.deepEqual({ closed, data }, { closed: true, data: '' }, 'closed without an answer: Postfix\'s lookup fails for now');
    assert.equal(reports.length, 1);
    assert.match(reports[0]!, /^127\.0\.0\.1:\d+: connection closed: already 2 open, the most allowed \(maxConnections\)$/);
    assert.equal(await ask(first), local);
    assert.equal(await ask(second), local);

    // Postfix's own client (postmap -q) sees the connection drop: a lookup error, which a Postfix
    // daemon treats as a temporary failure (the mail waits in the queue).
    const postmap = findExecutable('postmap');
    assert.ok(postmap !== null, 'postmap is not installed: run `bash scripts/install-postfix.sh` (Debian package postfix).');
    const dir = mkdtempSync(join(tmpdir(), 'outbound-pools-postmap-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'main.cf'), 'compatibility_level = 3.6\n');
    const lookup = await new Promise<{ status: number; stderr: string }>((resolve) => {
      execFile(postmap, ['-c', dir, '-q', 'megan@contoso.com', `socketmap:inet:127.0.0.1:${port}:forward`], (error, _stdout, stderr) => {
        resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stderr });
      });
    });
    assert.equal(lookup.status, 1);
    assert.match(lookup.stderr, /lookup error: unexpected disconnect/);
    assert.ok(reports.length >= 2, 'its connection was refused and reported');
    const refused = reports.length;

    first.destroy();
    const deadline = Date.now() + 5_000;
    while (server.connections > 1) {
      assert.ok(Date.now() < deadline, 'the server sees the first connection closed within 5 s');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(await ask(await open()), local);
    assert.equal(reports.length, refused, 'nothing more refused');
  });
});

describe('the socketmap server, options', () => {
  it('refuses options that are not whole numbers in range with OutboundPoolsError invalid-context, naming the option', async () => {
    const start = (options: object) => startSocketmapServer({ kind: 'inet', host: '127.0.0.1', port: 0 }, { maps, ...options }).then((server) => server.close());
    for (const bad of [0, -1, 1.5, Number.NaN, '10']) {
      for (const name of ['maxRequest', 'idleTimeoutMs', 'maxConnections']) {
        await assert.rejects(start({ [name]: bad }), (error: unknown) => {
          assert.ok(error instanceof OutboundPoolsError, String(error));
          assert.equal(error.code, 'invalid-context');
          assert.match(error.message, new RegExp(`^startSocketmapServer: ${name} must be a whole number`));
          return true;
        });
      }
    }
    assert.throws(() => new NetstringReader(Number.NaN), (error: unknown) => error instanceof OutboundPoolsError && error.code === 'invalid-context');
  });
});

describe('the socketmap server, backpressure', () => {
  const LOOPBACK = { kind: 'inet', host: '127.0.0.1', port: 0 } as const;
  const REQUEST = ns('echo alex@fabrikam.example');
  const REPLY = ns('OK alex@fabrikam.example');

  it('stops reading from a client that pipelines requests without reading the replies, then answers every one in order once it reads', async (t) => {
    const server = await startSocketmapServer(LOOPBACK, { maps: { echo: (key) => ({ status: 'OK', data: key }) } });
    t.after(() => server.close(100));
    const connection = await openConnection(Number(server.address.split(':').pop()));
    t.after(() => connection.client.destroy());
    const sent = await floodUntilStopped(connection, REQUEST);
    await expectReplies(connection.client, REPLY, sent.requests);
    connection.client.write(ns('echo kim@northwind.example'));
    await expectReplies(connection.client, ns('OK kim@northwind.example'), 1);
  });

  it('stops reading while a slow lookup keeps pipelined requests waiting, then answers them in order', async (t) => {
    let release!: () => void;
    const answered = new Promise<void>((resolve) => (release = resolve));
    const server = await startSocketmapServer(LOOPBACK, {
      maps: {
        echo: async (key) => {
          await answered;
          return { status: 'OK', data: key };
        },
      },
    });
    t.after(() => server.close(100));
    const connection = await openConnection(Number(server.address.split(':').pop()));
    t.after(() => connection.client.destroy());
    const sent = await floodUntilStopped(connection, REQUEST);
    release();
    await expectReplies(connection.client, REPLY, sent.requests);
  });
});
