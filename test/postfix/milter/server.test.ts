// The milter protocol over a real socket, with hand-made packets (test/postfix/milter-client.ts):
// every command, every negotiation, every malformed case, concurrency, draining, an MTA that
// pipelines without reading the replies (test/postfix/flood.ts), and the per-message limits.
import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMilterServer, type MilterServer, type MilterServerOptions } from '../../../src/postfix/milter/server.js';
import { MilterSession, type MilterHandler, type MilterMessage, type MilterVerdict } from '../../../src/postfix/milter/session.js';
import { PacketReader } from '../../../src/postfix/milter/packet.js';
import { OutboundPoolsError } from '../../../src/errors.js';
import { MilterTestClient, mta, packet, strings, type Response } from '../milter-client.js';
import { expectReplies, flood, floodUntilStopped, HELD_LIMIT, heldMemory, MiB, openConnection } from '../flood.js';

// Protocol flags (milter-protocol-extras.txt) written out here, not imported.
const NOBODY = 0x10;
const NOUNKNOWN = 0x100;
const NODATA = 0x200;
const NOEOH = 0x40;
const SKIP = 0x400;
const NR_DATA = 0x10000;
const NR_ALL = 0x80 | 0x1000 | 0x2000 | 0x4000 | 0x8000 | NR_DATA | 0x20000 | 0x40000;
const ADDHDRS = 0x01;
const CHGHDRS = 0x10;
const CHGFROM = 0x40;
const SETSYMLIST = 0x100;

/** A handler recording each message and answering with the verdict the test sets. */
function recorder(options: { bodyLimit?: number; verdict?: (message: MilterMessage) => MilterVerdict | Promise<MilterVerdict> } = {}) {
  const messages: MilterMessage[] = [];
  const handler: MilterHandler = {
    bodyLimit: options.bodyLimit ?? 0,
    macros: new Map([
      [2, ['i', 'auth_authen']],
      [5, ['i']],
    ]),
    endOfMessage(message) {
      messages.push(message);
      return options.verdict?.(message) ?? { action: 'continue', changes: [] };
    },
  };
  return { handler, messages };
}

function word(data: Buffer, at: number): number {
  return data.readUInt32BE(at);
}

/** Negotiates as Postfix does and returns the milter's OPTNEG reply. */
async function negotiate(client: MilterTestClient, version = 6, actions = 0x1ff, protocol = 0x1fffff): Promise<Response> {
  client.send(mta.optneg(version, actions, protocol));
  const [reply] = await client.read();
  assert.equal(reply!.command, 'O');
  return reply!;
}

/** A whole message, Postfix-style, with no-reply steps (after a negotiation asking for them). */
function message(from = '<megan@contoso.com>', rcpts = ['<lee@fabrikam.example>'], headers: [string, string][] = [['Subject', 'hi']]): Buffer[] {
  return [
    mta.macro('C', { j: 'mta.contoso.test', '{daemon_name}': 'submission' }),
    mta.connect('client.contoso.test', '4', 52000, '192.0.2.7'),
    mta.helo('client.contoso.test'),
    mta.macro('M', { i: 'ABC123', '{auth_authen}': 'megan' }),
    mta.mail(from, 'SIZE=100'),
    ...rcpts.map((rcpt) => mta.rcpt(rcpt)),
    ...headers.map(([name, value]) => mta.header(name, value)),
    mta.eoh(),
    mta.macro('E', { i: 'ABC123' }),
    mta.eob(),
  ];
}

describe('the milter server, packet by packet', () => {
  let server: MilterServer;
  const state = recorder({
    bodyLimit: 0,
    verdict: (m) => {
      const subject = m.headers.find(([name]) => name === 'Subject')?.[1] ?? '';
      if (subject === 'reject') return { action: 'reject', reply: '550 5.7.1 Refused by policy' };
      if (subject === 'tempfail') return { action: 'tempfail', reply: '451 4.3.0 Try later' };
      if (subject === 'percent') return { action: 'reject', reply: '550 5.7.1 100% refused' };
      if (subject === 'bare-reject') return { action: 'reject' };
      if (subject === 'bare-tempfail') return { action: 'tempfail' };
      if (subject === 'throw') throw new Error('the handler failed');
      return {
        action: 'continue',
        changes: [
          { type: 'change-header', name: 'X-Route', index: 1, value: '' },
          { type: 'add-header', name: 'X-Route', value: 'relay' },
          { type: 'change-from', address: 'SRS0=abcd=2W=fabrikam.example=alex@contoso.com' },
        ],
      };
    },
  });
  const errors: string[] = [];

  before(async () => {
    server = await startMilterServer({ kind: 'inet', host: '127.0.0.1', port: 0 }, { handler: state.handler, maxPacketSize: 70_000, onError: (error) => errors.push(error.message) });
  });
  after(async () => {
    await server.close();
  });
  const port = () => Number(server.address.split(':').pop());

  it('negotiates with Postfix’s offer: version 6, the three actions it needs, no body, no-reply steps but DATA on TCP, macro lists', async () => {
    const client = await MilterTestClient.open(port());
    const reply = await negotiate(client);
    assert.equal(word(reply.data, 0), 6);
    assert.equal(word(reply.data, 4), ADDHDRS | CHGHDRS | CHGFROM | SETSYMLIST);
    // On TCP DATA is answered (no NODATA, no NR_DATA): the reply acknowledges the envelope, so
    // that the MTA's next write (the header, from Postfix's cleanup) is not held by Nagle.
    assert.equal(word(reply.data, 8), NOBODY | NOUNKNOWN | NOEOH | SKIP | (NR_ALL & ~NR_DATA));
    // SMFIR_OPTNEG macro lists: uint32 stage, then the names, NUL-terminated.
    const lists = reply.data.subarray(12);
    assert.equal(word(lists, 0), 2);
    const first = lists.indexOf(0, 4);
    assert.equal(lists.toString('latin1', 4, first), 'i {auth_authen}');
    assert.equal(word(lists, first + 1), 5);
    assert.equal(lists.toString('latin1', first + 5, lists.length - 1), 'i');
    client.close();
  });

  it('asks only for what the MTA offers: a version 2 MTA gets v2 steps, answers for each, and no macro lists', async () => {
    const client = await MilterTestClient.open(port());
    // Version 2: actions ADDHDRS..QUARANTINE (0x3f), steps NOCONNECT..NOEOH (0x7f).
    const reply = await negotiate(client, 2, 0x3f, 0x7f);
    assert.equal(word(reply.data, 0), 2);
    assert.equal(word(reply.data, 4), ADDHDRS | CHGHDRS);
    assert.equal(word(reply.data, 8), NOBODY | NOEOH);
    assert.equal(reply.data.length, 12);
    // Every step is answered with CONTINUE now.
    client.send(mta.connect('client', '4', 25, '192.0.2.7'), mta.helo('client'), mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.header('Subject', 'hi'), mta.eoh());
    const answers = await client.read(6);
    assert.deepEqual(answers.map((a) => a.command), ['c', 'c', 'c', 'c', 'c', 'c']);
    // No CHGFROM in protocol 2: the message is refused for now rather than sent unrewritten.
    client.send(mta.eob());
    const final = await client.readUntilFinal();
    assert.deepEqual(final.map((r) => r.command), ['y']);
    assert.match(strings(final[0]!.data)[0]!, /^451 4\.3\.0 /);
    client.close();
  });

  it('on TCP answers DATA, and only DATA, among the envelope steps', async () => {
    const client = await MilterTestClient.open(port());
    await negotiate(client);
    client.send(mta.connect('h', '4', 25, '192.0.2.1'), mta.helo('h'), mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.macro('T', { i: 'ABC123' }), mta.data());
    const answers = await client.read();
    assert.deepEqual(answers.map((a) => a.command), ['c']);
    client.send(mta.header('Subject', 'hi'), mta.eoh(), mta.eob());
    const final = await client.readUntilFinal();
    assert.equal(final.at(-1)!.command, 'c');
    assert.equal(client.unread, 0, 'nothing but the DATA reply came before end of message');
    client.close();
  });

  it('still answers DATA on TCP when the MTA offers no NR_DATA (only NODATA): it is not skipped', async () => {
    const client = await MilterTestClient.open(port());
    const reply = await negotiate(client, 6, 0x1ff, 0x1fffff & ~NR_DATA);
    assert.equal(word(reply.data, 8) & (NODATA | NR_DATA), 0);
    client.send(mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.data());
    assert.deepEqual((await client.read()).map((a) => a.command), ['c']);
    client.close();
  });

  it('refuses protocol versions below 2: the connection is closed', async () => {
    const client = await MilterTestClient.open(port());
    client.send(mta.optneg(1, 0xf, 0x7f));
    await client.closed;
    assert.equal(client.unread, 0);
  });

  it('collects a whole message: client, HELO, envelope with parameters, headers, macros', async () => {
    const client = await MilterTestClient.open(port());
    await negotiate(client);
    const before = state.messages.length;
    client.send(...message('<megan@contoso.com>', ['<lee@fabrikam.example>', '<kim@northwind.example>'], [['Subject', 'hi'], ['X-Multi', 'one\n\ttwo']]));
    const final = await client.readUntilFinal();
    assert.deepEqual(final.map((r) => r.command), ['m', 'h', 'e', 'c']);
    // SMFIR_CHGHEADER: uint32 index, name, value; SMFIR_ADDHEADER: name, value; SMFIR_CHGFROM: <address>.
    assert.equal(word(final[0]!.data, 0), 1);
    assert.deepEqual(strings(final[0]!.data.subarray(4)), ['X-Route', '']);
    assert.deepEqual(strings(final[1]!.data), ['X-Route', 'relay']);
    assert.deepEqual(strings(final[2]!.data), ['<SRS0=abcd=2W=fabrikam.example=alex@contoso.com>']);
    const seen = state.messages[before]!;
    assert.deepEqual(seen.client, { hostname: 'client.contoso.test', family: 'inet', port: 52000, address: '192.0.2.7' });
    assert.equal(seen.helo, 'client.contoso.test');
    assert.equal(seen.mailFrom, 'megan@contoso.com');
    assert.deepEqual(seen.mailParameters, ['SIZE=100']);
    assert.deepEqual(seen.rcptTo, ['lee@fabrikam.example', 'kim@northwind.example']);
    assert.deepEqual(seen.headers, [['Subject', 'hi'], ['X-Multi', 'one\n\ttwo']]);
    assert.equal(seen.macro('i'), 'ABC123');
    assert.equal(seen.macro('auth_authen'), 'megan');
    assert.equal(seen.macro('daemon_name'), 'submission');
    assert.equal(seen.macro('j'), 'mta.contoso.test');
    assert.equal(seen.macro('nope'), undefined);
    client.send(mta.quit());
    await client.closed;
  });

  it('reads every connect family: IPv4, IPv6, a Unix socket, unknown', async () => {
    for (const [family, address, expected] of [
      ['4', '192.0.2.7', 'inet'],
      ['6', '2001:db8::7', 'inet6'],
      ['L', '/var/run/client', 'unix'],
      ['U', '', 'unknown'],
    ] as const) {
      const client = await MilterTestClient.open(port());
      await negotiate(client);
      const before = state.messages.length;
      client.send(mta.connect('host', family, 25, address), mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.eoh(), mta.eob());
      await client.readUntilFinal();
      assert.equal(state.messages[before]!.client?.family, expected);
      assert.equal(state.messages[before]!.client?.address, address);
      client.close();
    }
  });

  it('replies to end of message as the verdict says: REPLYCODE with the reply, REJECT, TEMPFAIL, and 451 when the handler throws', async () => {
    const client = await MilterTestClient.open(port());
    await negotiate(client);
    const cases: [string, string, string | null][] = [
      ['reject', 'y', '550 5.7.1 Refused by policy'],
      ['tempfail', 'y', '451 4.3.0 Try later'],
      ['bare-reject', 'r', null],
      ['bare-tempfail', 't', null],
      ['throw', 'y', '451 4.3.0 Outbound pool decision failed'],
      // milter-protocol.txt SMFIR_REPLYCODE: '%' doubled.
      ['percent', 'y', '550 5.7.1 100%% refused'],
    ];
    for (const [subject, command, reply] of cases) {
      client.send(mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.header('Subject', subject), mta.eoh(), mta.eob());
      const final = await client.readUntilFinal();
      assert.deepEqual(final.map((r) => r.command), [command], subject);
      if (reply !== null) assert.deepEqual(strings(final[0]!.data), [reply]);
    }
    client.close();
  });

  it('forgets a message on ABORT, and starts a new SMTP session after QUIT_NC on the same connection', async () => {
    const client = await MilterTestClient.open(port());
    await negotiate(client);
    const before = state.messages.length;
    client.send(mta.connect('one', '4', 25, '192.0.2.1'), mta.macro('M', { i: 'FIRST' }), mta.mail('<a@contoso.com>'), mta.rcpt('<x@fabrikam.example>'), mta.abort());
    client.send(mta.mail('<b@contoso.com>'), mta.rcpt('<y@fabrikam.example>'), mta.eoh(), mta.eob());
    await client.readUntilFinal();
    assert.deepEqual(state.messages[before]!.rcptTo, ['y@fabrikam.example']);
    assert.equal(state.messages[before]!.macro('i'), undefined, 'the aborted message’s macros are gone');
    client.send(mta.quitNc(), mta.connect('two', '6', 25, '2001:db8::2'), mta.helo('two'), mta.mail('<c@contoso.com>'), mta.rcpt('<z@fabrikam.example>'), mta.eoh(), mta.eob());
    await client.readUntilFinal();
    assert.equal(state.messages[before + 1]!.client?.hostname, 'two');
    assert.equal(state.messages[before + 1]!.mailFrom, 'c@contoso.com');
    client.close();
  });

  it('answers an unknown SMTP command and DATA only when the MTA did not agree to skip them', async () => {
    const client = await MilterTestClient.open(port());
    await negotiate(client, 6, 0x1ff, 0x7f | SKIP);
    client.send(mta.connect('h', '4', 25, '192.0.2.1'), mta.unknown('XFOO bar'), mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.data());
    const answers = await client.read(5);
    assert.deepEqual(answers.map((a) => a.command), ['c', 'c', 'c', 'c', 'c']);
    client.close();
  });

  for (const [name, packets] of [
    ['a command before negotiation', [mta.helo('x')]],
    ['a second negotiation', [mta.optneg(), mta.optneg()]],
    ['RCPT before MAIL', [mta.optneg(), mta.rcpt('<b@fabrikam.example>')]],
    ['a header outside a message', [mta.optneg(), mta.header('Subject', 'x')]],
    ['MAIL during a message', [mta.optneg(), mta.mail('<a@contoso.com>'), mta.mail('<a@contoso.com>')]],
    ['a second CONNECT', [mta.optneg(), mta.connect('a', '4', 1, '192.0.2.1'), mta.connect('a', '4', 1, '192.0.2.1')]],
    ['a short OPTNEG', [packet('O', [0, 0, 0, 6])]],
    ['a MACRO without its command code', [mta.optneg(), packet('D')]],
    ['a MACRO name without a value', [mta.optneg(), packet('D', 'C', 'j\0')]],
    // libmilter fails the connection too (engine.c st_macros): macros come before a command.
    ['a MACRO for a stage octet that is no command', [mta.optneg(), packet('D', [0], 'j\0x\0')]],
    ['a MACRO for QUIT, which no macros come before', [mta.optneg(), packet('D', 'Q', 'j\0x\0')]],
    ['a CONNECT of an unknown family', [mta.optneg(), packet('C', 'host\0', 'X')]],
    ['a CONNECT without its address', [mta.optneg(), packet('C', 'host\0', '4', [0, 25])]],
    ['a HELO not NUL-terminated', [mta.optneg(), packet('H', 'client')]],
    ['a HEADER with one string', [mta.optneg(), mta.mail('<a@contoso.com>'), packet('L', 'Subject\0')]],
    ['a HEADER with an empty name', [mta.optneg(), mta.mail('<a@contoso.com>'), packet('L', '\0value\0')]],
    ['EOH with data', [mta.optneg(), mta.mail('<a@contoso.com>'), packet('N', 'x')]],
    ['an unknown command octet', [mta.optneg(), packet('Z', 'x\0')]],
    ['a packet of length 0', [mta.optneg(), Buffer.from([0, 0, 0, 0])]],
    ['a packet over the size limit', [mta.optneg(), Buffer.from([0, 1, 0x11, 0x71])]],
    ['anything after QUIT', [mta.optneg(), mta.quit(), mta.helo('x')]],
  ] as const) {
    it(`closes the connection on ${name}, and only that one`, async () => {
      const other = await MilterTestClient.open(port());
      await negotiate(other);
      other.send(mta.connect('h', '4', 25, '192.0.2.1'), mta.mail('<a@contoso.com>'));
      const bad = await MilterTestClient.open(port());
      bad.send(...packets);
      await bad.closed;
      // The other connection finishes its message.
      other.send(mta.rcpt('<b@fabrikam.example>'), mta.eoh(), mta.eob());
      const final = await other.readUntilFinal();
      assert.equal(final.at(-1)!.command, 'c');
      assert.equal(other.isClosed, false);
      other.close();
    });
  }

  it('keeps at most 64 KiB of macros a connection, all stages together: a stage sent again replaces its own; a MACRO over the limit closes the connection, reported', { timeout: 10_000 }, async () => {
    const kib = (n: number) => 'v'.repeat(n * 1024);
    const within = await MilterTestClient.open(port());
    await negotiate(within);
    // 40 + 20 KiB in two stages, the first one sent three times: 60 KiB kept, within the limit.
    within.send(mta.macro('C', { a: kib(40) }), mta.macro('C', { a: kib(40) }), mta.macro('C', { a: kib(40) }), mta.macro('H', { b: kib(20) }));
    within.send(mta.connect('h', '4', 25, '192.0.2.1'), mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.eoh(), mta.eob());
    assert.equal((await within.readUntilFinal()).at(-1)!.command, 'c');
    // A message's stages are dropped when it ends, by ABORT or at end of message: 60 + 2 KiB each
    // time, where two of them kept would be over the limit.
    within.send(mta.macro('M', { c: kib(2) }), mta.mail('<a@contoso.com>'), mta.abort());
    within.send(mta.macro('R', { d: kib(2) }), mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.eoh(), mta.eob());
    assert.equal((await within.readUntilFinal()).at(-1)!.command, 'c');
    within.send(mta.macro('E', { e: kib(2) }), mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.eoh(), mta.eob());
    assert.equal((await within.readUntilFinal()).at(-1)!.command, 'c');
    assert.equal(within.isClosed, false);
    within.close();
    const over = await MilterTestClient.open(port());
    await negotiate(over);
    const errorsBefore = errors.length;
    // 40 + 25 KiB: the second packet takes the connection over 65,536 octets.
    over.send(mta.macro('C', { a: kib(40) }), mta.macro('M', { b: kib(25) }));
    await over.closed;
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(errors.slice(errorsBefore).some((message) => /SMFIC_MACRO for "M" takes the connection's macros to 66566 octets, over the limit of 65536 \(maxMacroBytes\)/.test(message)), errors.join('\n'));
  });

  it('closes a connection cut in the middle of a packet, and only that one', async () => {
    const other = await MilterTestClient.open(port());
    await negotiate(other);
    const bad = await MilterTestClient.open(port());
    await negotiate(bad);
    const errorsBefore = errors.length;
    bad.socket.end(mta.helo('client.contoso.test').subarray(0, 7));
    await bad.closed;
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(errors.slice(errorsBefore).some((message) => /ended 7 octet\(s\) into a packet/.test(message)), errors.join('\n'));
    other.send(mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.eoh(), mta.eob());
    assert.equal((await other.readUntilFinal()).at(-1)!.command, 'c');
    other.close();
  });

  it('serves many connections at once, each with its own message', async () => {
    const count = 60;
    const clients = await Promise.all(Array.from({ length: count }, () => MilterTestClient.open(port())));
    await Promise.all(clients.map((client) => negotiate(client)));
    // Interleaved: every client sends the first half of its message, then every client the rest.
    clients.forEach((client, index) => client.send(mta.connect(`c${index}`, '4', 25, '192.0.2.1'), mta.mail(`<s${index}@contoso.com>`)));
    clients.forEach((client, index) => client.send(mta.rcpt(`<r${index}@fabrikam.example>`), mta.header('Subject', index % 2 === 0 ? 'reject' : 'hi'), mta.eoh(), mta.eob()));
    const finals = await Promise.all(clients.map((client) => client.readUntilFinal(10_000)));
    finals.forEach((final, index) => assert.equal(final.at(-1)!.command, index % 2 === 0 ? 'y' : 'c', `client ${index}`));
    for (const client of clients) client.close();
  });
});

describe('the milter server, collecting the body', () => {
  it('keeps the body up to the limit, then asks the MTA to skip the rest (SMFIR_SKIP)', async () => {
    const state = recorder({ bodyLimit: 10 });
    const server = await startMilterServer({ kind: 'inet', host: '127.0.0.1', port: 0 }, { handler: state.handler });
    try {
      const client = await MilterTestClient.open(Number(server.address.split(':').pop()));
      const reply = await negotiate(client);
      assert.equal(word(reply.data, 8) & NOBODY, 0, 'the body is asked for');
      client.send(mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.eoh(), mta.body('0123456'));
      assert.equal((await client.read())[0]!.command, 'c');
      client.send(mta.body('789abc'));
      assert.equal((await client.read())[0]!.command, 's');
      client.send(mta.eob());
      await client.readUntilFinal();
      assert.equal(state.messages[0]!.body.toString(), '0123456789');
      assert.equal(state.messages[0]!.bodyTruncated, true);
      // Without SMFIP_SKIP the rest is read and dropped, each chunk answered with CONTINUE.
      const old = await MilterTestClient.open(Number(server.address.split(':').pop()));
      await negotiate(old, 6, 0x1ff, 0x7f);
      old.send(mta.connect('h', '4', 25, '192.0.2.1'), mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.eoh());
      await old.read(4);
      old.send(mta.body('0123456789abc'), mta.body('more'));
      assert.deepEqual((await old.read(2)).map((r) => r.command), ['c', 'c']);
      client.close();
      old.close();
    } finally {
      await server.close();
    }
  });

  it('listens on a Unix socket too, and removes it when closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbound-pools-milter-'));
    const path = join(dir, 'milter.sock');
    const server = await startMilterServer({ kind: 'unix', path }, { handler: recorder().handler });
    try {
      assert.equal(server.address, `unix:${path}`);
      const client = await MilterTestClient.openPath(path);
      // No Nagle on a Unix socket: DATA is skipped (NODATA) and would not be answered (NR_DATA).
      const reply = await negotiate(client);
      assert.equal(word(reply.data, 8), NOBODY | NOUNKNOWN | NODATA | NOEOH | SKIP | NR_ALL);
      client.send(mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.data(), mta.eoh(), mta.eob());
      const final = await client.readUntilFinal();
      assert.deepEqual(final.map((r) => r.command), ['c'], 'one answer, at end of message');
      client.close();
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the milter server, replyToData', () => {
  it('given false, asks for NODATA and NR_DATA on TCP too (and true answers DATA on a Unix socket)', async () => {
    const server = await startMilterServer({ kind: 'inet', host: '127.0.0.1', port: 0 }, { handler: recorder().handler, replyToData: false });
    const dir = mkdtempSync(join(tmpdir(), 'outbound-pools-milter-'));
    const path = join(dir, 'milter.sock');
    const unix = await startMilterServer({ kind: 'unix', path }, { handler: recorder().handler, replyToData: true });
    try {
      const client = await MilterTestClient.open(Number(server.address.split(':').pop()));
      assert.equal(word((await negotiate(client)).data, 8), NOBODY | NOUNKNOWN | NODATA | NOEOH | SKIP | NR_ALL);
      client.close();
      const local = await MilterTestClient.openPath(path);
      assert.equal(word((await negotiate(local)).data, 8), NOBODY | NOUNKNOWN | NOEOH | SKIP | (NR_ALL & ~NR_DATA));
      local.send(mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.data());
      assert.deepEqual((await local.read()).map((a) => a.command), ['c']);
      local.close();
    } finally {
      await server.close();
      await unix.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the milter server, draining', () => {
  it('on close: refuses new connections, closes idle ones now, lets a message under way finish, then closes it', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const state = recorder({
      verdict: async () => {
        await held;
        return { action: 'continue', changes: [] };
      },
    });
    const server = await startMilterServer({ kind: 'inet', host: '127.0.0.1', port: 0 }, { handler: state.handler });
    const port = Number(server.address.split(':').pop());
    const idle = await MilterTestClient.open(port);
    await negotiate(idle);
    const busy = await MilterTestClient.open(port);
    await negotiate(busy);
    busy.send(mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.eoh(), mta.eob());
    while (state.messages.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const closing = server.close(10_000);
    await idle.closed;
    await assert.rejects(MilterTestClient.open(port), 'a new connection while draining');
    assert.equal(busy.isClosed, false);
    release();
    const final = await busy.readUntilFinal();
    assert.equal(final.at(-1)!.command, 'c');
    await busy.closed;
    await closing;
  });

  it('destroys a connection still busy when the grace period ends', async () => {
    const state = recorder({ verdict: () => new Promise<MilterVerdict>(() => undefined) });
    const server = await startMilterServer({ kind: 'inet', host: '127.0.0.1', port: 0 }, { handler: state.handler });
    const busy = await MilterTestClient.open(Number(server.address.split(':').pop()));
    await negotiate(busy);
    busy.send(mta.mail('<a@contoso.com>'), mta.rcpt('<b@fabrikam.example>'), mta.eoh(), mta.eob());
    while (state.messages.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const started = Date.now();
    await server.close(200);
    assert.ok(busy.isClosed || (await busy.closed, true));
    assert.ok(Date.now() - started < 3_000);
  });
});

/** The milter's answer to OPTNEG, read off a paused socket; anything after it is put back. */
function readOptneg(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const read = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length < 4 || got.length < 4 + got.readUInt32BE(0)) return;
      socket.off('data', read);
      socket.pause();
      const end = 4 + got.readUInt32BE(0);
      if (got.length > end) socket.unshift(got.subarray(end));
      if (got[4] !== 0x4f) reject(new Error(`expected OPTNEG, got ${String.fromCharCode(got[4]!)}`));
      else resolve(got.subarray(0, end));
    };
    socket.on('data', read);
    socket.resume();
  });
}

const LOOPBACK = { kind: 'inet', host: '127.0.0.1', port: 0 } as const;
const portOf = (server: MilterServer) => Number(server.address.split(':').pop());

/** A second message on the same SMTP session: no connect, no HELO. */
const NEXT_MESSAGE = [mta.mail('<megan@contoso.com>'), mta.rcpt('<lee@fabrikam.example>'), mta.header('Subject', 'hi'), mta.eoh(), mta.eob()];
const CONTINUE = packet('c');
const NR_UNKN = 0x20000;
const REFUSED = packet('y', '550 5.7.1 Refused by policy\0');
/** What an MTA offers that asks for an answer to every unknown command (neither skipped nor left unanswered). */
const ANSWER_UNKNOWN = mta.optneg(6, 0x1ff, 0x1fffff & ~NOUNKNOWN & ~NR_UNKN);

/** A server deciding with `handler`, and a raw connection to it past option negotiation (`optneg`); both closed after the test. */
async function negotiated(t: TestContext, handler: MilterHandler, optneg = mta.optneg(), options: Omit<MilterServerOptions, 'handler'> = {}) {
  const server = await startMilterServer(LOOPBACK, { handler, ...options });
  t.after(() => server.close(100));
  const connection = await openConnection(portOf(server));
  t.after(() => connection.client.destroy());
  connection.client.write(optneg);
  await readOptneg(connection.client);
  return connection;
}

/** Resolves once `condition` holds, checked every 10 ms (fails the test after 5 s). */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    assert.ok(Date.now() < deadline, `not within 5 s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('the milter server, connection cap', () => {
  it('closes a connection over maxConnections at once, unanswered, and reports it; the open ones still work, and closing one lets a new one in', async (t) => {
    const reports: string[] = [];
    const state = recorder({ verdict: () => ({ action: 'reject', reply: '550 5.7.1 Refused by policy' }) });
    const server = await startMilterServer(LOOPBACK, { handler: state.handler, maxConnections: 2, onError: (error, remote) => reports.push(`${remote}: ${error.message}`) });
    t.after(() => server.close(100));
    const clients: MilterTestClient[] = [];
    t.after(() => clients.forEach((client) => client.close()));
    const open = async () => {
      const client = await MilterTestClient.open(portOf(server));
      clients.push(client);
      return client;
    };
    const decided = async (client: MilterTestClient) => {
      client.send(...message());
      return (await client.readUntilFinal()).map((response) => strings(response.data)[0]);
    };
    const first = await open();
    await negotiate(first);
    const second = await open();
    await negotiate(second);

    const extra = await open();
    extra.send(mta.optneg());
    const closedSoon = await Promise.race([extra.closed.then(() => true), sleep(2_000, false, { ref: false })]);
    assert.ok(closedSoon, 'the connection over the cap is closed');
    assert.equal(extra.unread, 0, 'closed without an answer: Postfix applies milter_default_action');
    assert.equal(reports.length, 1);
    assert.match(reports[0]!, /^127\.0\.0\.1:\d+: connection closed: already 2 open, the most allowed \(maxConnections\)$/);
    assert.equal(server.connections, 2);
    assert.deepEqual(await decided(first), ['550 5.7.1 Refused by policy']);
    assert.deepEqual(await decided(second), ['550 5.7.1 Refused by policy']);

    first.close();
    await until(() => server.connections === 1, 'the server sees the first connection closed');
    const next = await open();
    await negotiate(next);
    assert.deepEqual(await decided(next), ['550 5.7.1 Refused by policy']);
    assert.equal(reports.length, 1, 'nothing more refused');
    assert.equal(state.messages.length, 3);
  });
});

describe('the milter server, backpressure', () => {
  it('stops reading from an MTA that pipelines answered packets without reading the replies, then answers every one once it reads', async (t) => {
    const state = recorder({ verdict: () => ({ action: 'reject', reply: '550 5.7.1 Refused by policy' }) });
    // An MTA that offers neither to skip unknown commands nor to leave them unanswered: each is answered.
    const connection = await negotiated(t, state.handler, ANSWER_UNKNOWN);
    const socket = connection.client;
    const sent = await floodUntilStopped(connection, mta.unknown('x'));
    // Read, it resumes: one CONTINUE per packet, in order, and the next message is decided.
    await expectReplies(socket, CONTINUE, sent.requests);
    socket.write(Buffer.concat(message()));
    await expectReplies(socket, REFUSED, 1);
    assert.equal(state.messages.length, 1);
  });

  it('stops reading while end of message awaits the handler and pipelined packets pile up, then handles them in order once it answers', async (t) => {
    let release!: () => void;
    const answered = new Promise<void>((resolve) => (release = resolve));
    const state = recorder({
      verdict: async () => {
        await answered;
        return { action: 'reject', reply: '550 5.7.1 Refused by policy' };
      },
    });
    const connection = await negotiated(t, state.handler);
    const socket = connection.client;
    socket.write(Buffer.concat(message()));
    // Unknown commands, never answered (SMFIP_NR_UNKN), wait behind end of message.
    await floodUntilStopped(connection, mta.unknown(`NOOP ${'x'.repeat(1000)}`));
    release();
    await expectReplies(socket, REFUSED, 1);
    // Every packet read and handled, in order: the next message comes after them and is decided.
    socket.write(Buffer.concat(NEXT_MESSAGE));
    await expectReplies(socket, REFUSED, 1);
    assert.equal(state.messages.length, 2);
  });
});

describe('the milter server, message limits', () => {
  it('keeps at most 1 MiB of a message’s header: 32 MiB of fields hold almost nothing, and the message is refused for now without a verdict', async (t) => {
    const state = recorder({ verdict: () => ({ action: 'reject', reply: '550 5.7.1 Refused by policy' }) });
    // Unknown commands answered: one, sent after the fields, tells when they have all been read.
    const connection = await negotiated(t, state.handler, ANSWER_UNKNOWN);
    const socket = connection.client;
    socket.write(Buffer.concat([mta.mail('<megan@contoso.com>'), mta.rcpt('<lee@fabrikam.example>')]));
    const before = heldMemory();
    // 214 octets a field: the 1 MiB comes before the 10,000 fields.
    const sent = await flood(connection, mta.header('X-Filler', 'v'.repeat(200)), 32 * MiB);
    socket.write(mta.unknown('NOOP'));
    await expectReplies(socket, CONTINUE, 1);
    const held = heldMemory() - before;
    assert.equal(sent.stopped, false);
    assert.ok(held < HELD_LIMIT, `the process holds ${(held / MiB).toFixed(1)} MiB more after 32 MiB of header fields`);
    socket.write(mta.eob());
    await expectReplies(socket, packet('y', '452 4.3.4 Message header too large: at most 1048576 octets\0'), 1);
    assert.equal(state.messages.length, 0, 'the handler is not asked');
    // The limit is per message: the next one is decided.
    socket.write(Buffer.concat(message()));
    await expectReplies(socket, REFUSED, 1);
    assert.equal(state.messages.length, 1);
  });

  it('keeps at most 10,000 header fields of a message: a 1 MiB header of tiny fields ("a: b") holds almost nothing, and the message is refused for now without a verdict', async (t) => {
    const state = recorder({ verdict: () => ({ action: 'reject', reply: '550 5.7.1 Refused by policy' }) });
    const connection = await negotiated(t, state.handler, ANSWER_UNKNOWN);
    const socket = connection.client;
    socket.write(Buffer.concat([mta.mail('<megan@contoso.com>'), mta.rcpt('<lee@fabrikam.example>')]));
    const before = heldMemory();
    // 174,762 fields of six octets ("a: b" and CRLF): within maxHeaderBytes (1 MiB), which alone
    // let the session keep them all, 12.7 MiB of strings and arrays.
    const fields = Math.floor(MiB / 6);
    socket.write(Buffer.concat(Array.from({ length: fields }, () => mta.header('a', 'b'))));
    socket.write(mta.unknown('NOOP'));
    await expectReplies(socket, CONTINUE, 1);
    const held = heldMemory() - before;
    t.diagnostic(`held ${(held / MiB).toFixed(1)} MiB more after ${fields} header fields`);
    // Without the field cap the session kept 12.7 MiB of them.
    assert.ok(held < 6 * MiB, `the process holds ${(held / MiB).toFixed(1)} MiB more after ${fields} header fields`);
    socket.write(mta.eob());
    await expectReplies(socket, packet('y', '452 4.3.4 Too many header fields: at most 10000 per message\0'), 1);
    assert.equal(state.messages.length, 0, 'the handler is not asked');
    socket.write(Buffer.concat(message()));
    await expectReplies(socket, REFUSED, 1);
    assert.equal(state.messages.length, 1);
  });

  it('keeps one packet of macros per stage, compactly: 256 KiB of tiny macros for every stage, three times, hold almost nothing, and the latest of each stage is read', async (t) => {
    const state = recorder();
    // maxMacroBytes raised over the eight stages' 2 MiB: how compactly they are kept when allowed.
    const connection = await negotiated(t, state.handler, ANSWER_UNKNOWN, { maxMacroBytes: 4 * MiB });
    const socket = connection.client;
    // "0", "1", … "zz", … each with the value "v": about 40,000 macros in 256 KiB.
    const tiny: Record<string, string> = {};
    for (let i = 0, size = 0; size < 256 * 1024 - 16; i++) {
      tiny[i.toString(36)] = 'v';
      size += i.toString(36).length + 3;
    }
    const before = heldMemory();
    for (let round = 0; round < 3; round++) {
      for (const stage of 'CHMRTLNBEU') socket.write(mta.macro(stage, tiny));
    }
    socket.write(mta.unknown('NOOP'));
    await expectReplies(socket, CONTINUE, 1);
    const held = heldMemory() - before;
    t.diagnostic(`held ${(held / MiB).toFixed(1)} MiB more after 7.5 MiB of macros`);
    // Kept per stage octet as Maps, the same macros took 27.7 MiB; kept compactly, 2 MiB of
    // strings for the eight stages plus what the garbage collector has not given back yet
    // (up to 7.8 MiB measured on Node 24).
    assert.ok(held < 12 * MiB, `the process holds ${(held / MiB).toFixed(1)} MiB more after 7.5 MiB of macros`);
    // The message's own macros replace those of its stages; HELO's flood is still the latest of its stage.
    socket.write(Buffer.concat(message()));
    await expectReplies(socket, CONTINUE, 1);
    const [seen] = state.messages;
    assert.equal(seen!.macro('i'), 'ABC123');
    assert.equal(seen!.macro('daemon_name'), 'submission');
    assert.equal(seen!.macro('zz'), 'v', 'from the HELO stage');
    assert.equal(seen!.macro('v'), 'v', 'a name that is also a value is found as a name');
    assert.equal(seen!.macro('nope'), undefined);
  });

  it('keeps at most 10,000 recipients of a message: 16 MiB of RCPT hold almost nothing, and the message is refused for now without a verdict', async (t) => {
    const state = recorder({ verdict: () => ({ action: 'reject', reply: '550 5.7.1 Refused by policy' }) });
    const connection = await negotiated(t, state.handler, ANSWER_UNKNOWN);
    const socket = connection.client;
    socket.write(mta.mail('<megan@contoso.com>'));
    const before = heldMemory();
    const sent = await flood(connection, mta.rcpt('<lee@fabrikam.example>'), 16 * MiB);
    socket.write(mta.unknown('NOOP'));
    await expectReplies(socket, CONTINUE, 1);
    const held = heldMemory() - before;
    assert.equal(sent.stopped, false);
    assert.ok(held < HELD_LIMIT, `the process holds ${(held / MiB).toFixed(1)} MiB more after ${sent.requests} recipients`);
    socket.write(mta.eob());
    await expectReplies(socket, packet('y', '452 4.5.3 Too many recipients: at most 10000 per message\0'), 1);
    assert.equal(state.messages.length, 0, 'the handler is not asked');
    socket.write(Buffer.concat(message()));
    await expectReplies(socket, REFUSED, 1);
    assert.equal(state.messages.length, 1);
  });

  it('decides a message at each limit, refuses one past it (452, no verdict), and counts each message afresh', async (t) => {
    const state = recorder();
    // Subject: hi is 13 octets as the header block writes it ("Subject: hi" and CRLF).
    const server = await startMilterServer(LOOPBACK, { handler: state.handler, maxRecipients: 2, maxHeaderBytes: 26, maxHeaderFields: 3 });
    t.after(() => server.close(100));
    const client = await MilterTestClient.open(portOf(server));
    t.after(() => client.close());
    await negotiate(client);
    const final = async (...packets: Buffer[]) => {
      client.send(mta.mail('<megan@contoso.com>'), ...packets, mta.eoh(), mta.eob());
      const replies = await client.readUntilFinal();
      const last = replies.at(-1)!;
      return last.command === 'y' ? strings(last.data)[0]! : last.command;
    };
    const two = [mta.rcpt('<lee@fabrikam.example>'), mta.rcpt('<kim@fabrikam.example>')];
    const subjects = [mta.header('Subject', 'hi'), mta.header('Subject', 'hi')];
    assert.equal(await final(...two, ...subjects), 'c');
    assert.equal(await final(...two, mta.rcpt('<alex@fabrikam.example>')), '452 4.5.3 Too many recipients: at most 2 per message');
    assert.equal(await final(...two, ...subjects, mta.header('X', '')), '452 4.3.4 Message header too large: at most 26 octets');
    // "A: " and CRLF: 5 octets each, three fit in 26, four are one field too many.
    const tiny = mta.header('A', '');
    assert.equal(await final(...two, tiny, tiny, tiny), 'c');
    assert.equal(await final(...two, tiny, tiny, tiny, tiny), '452 4.3.4 Too many header fields: at most 3 per message');
    // Addresses of 256 characters each on average (RFC 5321's longest path): 512 for two.
    assert.equal(await final(mta.rcpt(`<${'a'.repeat(510)}@b.example>`)), '452 4.5.3 Too many recipients: at most 512 characters of addresses per message');
    assert.equal(await final(...two), 'c');
    assert.equal(state.messages.length, 3);
    assert.deepEqual(state.messages[2]!.rcptTo, ['lee@fabrikam.example', 'kim@fabrikam.example']);
  });

  it('refuses options that are not whole numbers in range with OutboundPoolsError invalid-context, naming the option', async () => {
    // A server that starts all the same is closed, so that a failure leaves nothing listening.
    const start = (options: Partial<MilterServerOptions>) => startMilterServer(LOOPBACK, { handler: recorder().handler, ...options }).then((server) => server.close());
    const invalid = (name: string, range: string) => (error: unknown) => {
      assert.ok(error instanceof OutboundPoolsError, String(error));
      assert.equal(error.code, 'invalid-context');
      assert.match(error.message, new RegExp(`^startMilterServer: ${name} must be a whole number ${range}, got `));
      return true;
    };
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity, '10', null]) {
      for (const name of ['maxRecipients', 'maxHeaderBytes', 'maxHeaderFields', 'maxMacroBytes', 'maxPacketSize', 'idleTimeoutMs', 'maxConnections']) {
        await assert.rejects(start({ [name]: bad }), invalid(name, name === 'idleTimeoutMs' ? 'from 1 to 2147483647' : 'of at least 1'), `${name}: ${String(bad)}`);
      }
    }
    // Node's timers take at most 2^31 − 1 ms (a longer one is cut to it, with a warning).
    await assert.rejects(start({ idleTimeoutMs: 2 ** 31 }), invalid('idleTimeoutMs', 'from 1 to 2147483647'));
    assert.throws(() => new MilterSession(recorder().handler, { maxHeaderBytes: 0 }), (error: unknown) => error instanceof OutboundPoolsError && /^MilterSession: maxHeaderBytes/.test(error.message));
    assert.throws(() => new PacketReader(Number.NaN), (error: unknown) => error instanceof OutboundPoolsError && error.code === 'invalid-context');
  });
});
