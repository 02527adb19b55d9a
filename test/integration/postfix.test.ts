// The milter and the SRS socketmap in a real Postfix (Debian's, scripts/install-postfix.sh): a
// private Postfix whose submission listener has `outbound-pools milter` in smtpd_milters, whose
// milter_header_checks turn the pool header into `FILTER pool_x:`, with one smtp transport per
// pool bound to its own loopback address, relaying everything to a sink that records the source
// address of each delivery: that address is the proof of the pool.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { Srs } from '../../src/srs/index.js';
import { startMilterServer, type MilterServer } from '../../src/postfix/milter/server.js';
import type { MilterMessage } from '../../src/postfix/milter/session.js';
import { freeTcpPort, spawnWatched, type WatchedProcess } from '../servers/processes.js';
import { startPostfix, type PostfixInstance } from '../servers/postfix.js';
import { startSmtpSink, type SinkDelivery, type SmtpSink } from '../servers/smtp-sink.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const POLICY = JSON.parse(readFileSync(join(ROOT, 'examples', 'policy.json'), 'utf8')) as Record<string, unknown>;
// Three recipients at most (a fourth blocks with 5.5.3); the spam classifier failing defers.
// The classifier is a stand-in for rspamd (startRspamdStub): it scores a message by the number in
// its SPAM_HEADER field and fails for a message without one.
const TEST_POLICY = {
  ...POLICY,
  limits: [{ name: 'test', recipientsPerMessage: 3, action: 'block' }],
  onProviderFailure: { spam: 'defer' },
};
const AUTHSERV_ID = 'inbound.contoso.com';
// The designated forwarder, whose Authentication-Results fields the milter reads: the test's own client address.
const FORWARDER = '127.0.0.1';
/** The field the rspamd stand-in reads its score from (a test device: the milter is not told of it). */
const SPAM_HEADER = 'X-Test-Spam-Score';
const SRS_SECRETS = ['postfix-integration-secret', 'an-older-secret'];
const POOL_HEADER = 'X-Outbound-Pool-Route';
const POOLS = {
  normal: { transport: 'pool_normal', bind: '127.0.0.10', helo: 'out.contoso.test' },
  'high-risk': { transport: 'pool_high_risk', bind: '127.0.0.20', helo: 'hr.contoso.test' },
  relay: { transport: 'pool_relay', bind: '127.0.0.30', helo: 'rly.contoso.test' },
} as const;

interface TestMessage {
  readonly name: string;
  readonly from: string;
  readonly to: readonly string[];
  readonly headers: string;
  readonly body?: string;
  /** The submitting client's source address (default 127.0.0.1, the designated forwarder). */
  readonly localAddress?: string;
}

function raw(message: TestMessage): string {
  return `${message.headers.trim().replace(/\r?\n/g, '\r\n')}\r\nMessage-ID: <${message.name}@test.contoso.com>\r\n\r\n${message.body ?? 'Hello.'}\r\n`;
}

const CLEAN = `${SPAM_HEADER}: 0.5`;
const MESSAGES = {
  accepted: {
    name: 'accepted',
    from: 'megan@contoso.com',
    to: ['lee@fabrikam.example'],
    headers: `${CLEAN}\nFrom: Megan <megan@contoso.com>\nTo: lee@fabrikam.example\nSubject: Quarterly numbers`,
  },
  ndr: {
    name: 'ndr',
    from: 'postmaster@contoso.com',
    to: ['alex@fabrikam.example'],
    headers: `${CLEAN}\nFrom: MAILER-DAEMON@contoso.com\nTo: alex@fabrikam.example\nSubject: Undeliverable: hello\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"`,
    body: '--b\r\nContent-Type: text/plain\r\n\r\nUndeliverable.\r\n--b--',
  },
  nullSender: {
    name: 'null-sender',
    from: '',
    to: ['alex@fabrikam.example'],
    headers: `${CLEAN}\nFrom: MAILER-DAEMON@contoso.com\nTo: alex@fabrikam.example\nSubject: Undeliverable: hi`,
  },
  spam: {
    name: 'spam',
    from: 'megan@contoso.com',
    to: ['lee@fabrikam.example'],
    headers: `${SPAM_HEADER}: 12.5\nFrom: megan@contoso.com\nTo: lee@fabrikam.example\nSubject: You are a WINNER`,
  },
  unverified: {
    name: 'unverified',
    from: 'kim@northwind.example',
    to: ['lee@fabrikam.example'],
    headers: `${CLEAN}\nFrom: kim@northwind.example\nTo: forward@contoso.com\nSubject: Forwarded, unverified`,
  },
  verified: {
    name: 'verified',
    from: 'alex@fabrikam.example',
    to: ['ops@adventure-works.example'],
    headers: `${CLEAN}\nAuthentication-Results: ${AUTHSERV_ID}; spf=pass smtp.mailfrom=fabrikam.example\nFrom: alex@fabrikam.example\nTo: forward@contoso.com\nSubject: Forwarded, SPF pass`,
  },
  // The same field as `verified`, written by an ordinary submitting client (127.0.0.2, not the
  // designated forwarder 127.0.0.1): not read, so the foreign sender is unverified.
  forgedAuthResults: {
    name: 'forged-auth-results',
    from: 'alex@fabrikam.example',
    to: ['ops@adventure-works.example'],
    headers: `${CLEAN}\nAuthentication-Results: ${AUTHSERV_ID}; spf=pass smtp.mailfrom=fabrikam.example\nFrom: alex@fabrikam.example\nTo: forward@contoso.com\nSubject: Forged Authentication-Results`,
    localAddress: '127.0.0.2',
  },
  forged: {
    name: 'forged',
    from: 'kim@northwind.example',
    to: ['lee@fabrikam.example'],
    headers: `${CLEAN}\n${POOL_HEADER}: normal\nX-Outbound-Pool: OutboundIpPoolName=forged\nFrom: kim@northwind.example\nTo: forward@contoso.com\nSubject: Forwarded, with forged pool headers`,
  },
  blocked: {
    name: 'blocked',
    from: 'megan@contoso.com',
    to: ['a@fabrikam.example', 'b@fabrikam.example', 'c@fabrikam.example', 'd@fabrikam.example'],
    headers: `${CLEAN}\nFrom: megan@contoso.com\nTo: many@fabrikam.example\nSubject: Too many recipients`,
  },
  deferred: {
    name: 'deferred',
    from: 'megan@contoso.com',
    to: ['lee@fabrikam.example'],
    headers: 'From: megan@contoso.com\nTo: lee@fabrikam.example\nSubject: No spam score: the classifier fails',
  },
} satisfies Record<string, TestMessage>;

async function sendVia(port: number, message: TestMessage): Promise<void> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, name: 'client.contoso.test', localAddress: message.localAddress ?? '127.0.0.1' });
  try {
    await transport.sendMail({ envelope: { from: message.from, to: [...message.to] }, raw: raw(message) });
  } finally {
    transport.close();
  }
}

function buildOnce(): void {
  if (existsSync(CLI) && process.env['OUTBOUND_POOLS_SKIP_BUILD'] === '1') return;
  const build = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { encoding: 'utf8' });
  assert.equal(build.status, 0, `the build failed:\n${build.stdout}${build.stderr}`);
}

/**
 * A stand-in for rspamd's normal worker: POST /checkv2 answers the score written in the message's
 * SPAM_HEADER field (action `add header` from 6, else `no action`), and HTTP 500 for a message
 * without one (the classifier failing).
 */
async function startRspamdStub(): Promise<HttpServer> {
  const server = createHttpServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const message = Buffer.concat(chunks).toString('latin1');
      const header = message.slice(0, message.indexOf('\r\n\r\n') + 2);
      const field = new RegExp(`^${SPAM_HEADER}:\\s*([\\d.]+)\\s*$`, 'im').exec(header);
      if (request.url !== '/checkv2' || field === null) {
        response.writeHead(500).end();
        return;
      }
      const score = Number(field[1]);
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ score, required_score: 15, action: score >= 6 ? 'add header' : 'no action', symbols: {} }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** Starts `outbound-pools milter` (with the SRS socketmap) and waits for both to listen. */
async function startMilterDaemon(dir: string, milterPort: number, mapPort: number, rspamdPort: number): Promise<WatchedProcess> {
  writeFileSync(join(dir, 'policy.json'), JSON.stringify(TEST_POLICY));
  writeFileSync(join(dir, 'secrets'), `${SRS_SECRETS.join('\n')}\n`);
  const daemon = spawnWatched(process.execPath, [
    CLI,
    'milter',
    '--listen',
    `inet:127.0.0.1:${milterPort}`,
    '--srs-map-listen',
    `inet:127.0.0.1:${mapPort}`,
    '--policy',
    join(dir, 'policy.json'),
    '--zone',
    join(ROOT, 'examples', 'zone.json'),
    '--srs-secret-file',
    join(dir, 'secrets'),
    '--srs-domain',
    'contoso.com',
    '--authserv-id',
    AUTHSERV_ID,
    '--auth-results-from',
    FORWARDER,
    '--rspamd-url',
    `http://127.0.0.1:${rspamdPort}`,
  ]);
  const deadline = Date.now() + 15_000;
  while (!/srs-map: listening on/.test(daemon.output())) {
    if (daemon.exited() !== null) throw new Error(`the milter daemon ended (${daemon.exited()}):\n${daemon.output()}`);
    if (Date.now() > deadline) throw new Error(`the milter daemon did not start:\n${daemon.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return daemon;
}

describe('the milter and the SRS socketmap in a real Postfix', () => {
  let sink: SmtpSink;
  let postfix: PostfixInstance | undefined;
  let daemon: WatchedProcess | undefined;
  let dir: string;
  let rspamd: HttpServer | undefined;
  // A second listener's milter, in this process, on a Unix socket (the other is on TCP).
  let local: MilterServer | undefined;
  const seenLocally: MilterMessage[] = [];
  const localErrors: string[] = [];
  const logs = () => `milter daemon:\n${daemon?.output().slice(-3000) ?? ''}\nPostfix log:\n${postfix?.log().slice(-5000) ?? ''}`;

  before(async () => {
    buildOnce();
    dir = mkdtempSync(join(tmpdir(), 'outbound-pools-milter-'));
    sink = await startSmtpSink(0, { rejectRecipient: (address) => address.startsWith('refused-') });
    rspamd = await startRspamdStub();
    const [milterPort, mapPort] = [await freeTcpPort(), await freeTcpPort()];
    daemon = await startMilterDaemon(dir, milterPort, mapPort, (rspamd.address() as AddressInfo).port);
    local = await startMilterServer(
      { kind: 'unix', path: join(dir, 'local-milter.sock') },
      {
        handler: {
          macros: new Map([[2, ['i', 'auth_authen']]]),
          endOfMessage(message) {
            seenLocally.push(message);
            return { action: 'continue', changes: [{ type: 'add-header', name: 'X-Seen-By', value: 'local milter' }] };
          },
        },
        onError: (error) => localErrors.push(error.message),
      },
    );
    // Postfix's smtpd runs as the postfix user: it must reach the socket.
    chmodSync(dir, 0o755);
    chmodSync(join(dir, 'local-milter.sock'), 0o666);
    postfix = await startPostfix({
      relayPort: sink.port,
      pools: POOLS,
      poolHeader: POOL_HEADER,
      milter: `inet:127.0.0.1:${milterPort}`,
      socketmap: `inet:127.0.0.1:${mapPort}`,
      nullSenderTransport: POOLS['high-risk'].transport,
      filterNexthop: `[127.0.0.1]:${sink.port}`,
      secondMilter: `unix:${join(dir, 'local-milter.sock')}`,
    });
  });

  after(async () => {
    await local?.close();
    daemon?.child.kill('SIGTERM');
    await daemon?.exit;
    await postfix?.stop();
    await sink?.stop();
    rspamd?.closeAllConnections();
    await new Promise((resolve) => (rspamd === undefined ? resolve(undefined) : rspamd.close(resolve)));
    rmSync(dir, { recursive: true, force: true });
  });

  const delivered = (deliveries: readonly SinkDelivery[], name: string): SinkDelivery => {
    const found = deliveries.find((delivery) => delivery.message.includes(`Message-ID: <${name}@test.contoso.com>`));
    assert.ok(found, `${name} did not reach the sink\n${logs()}`);
    return found;
  };

  it('delivers each message from its pool address, with the envelope sender of the decision', async () => {
    const sent = [MESSAGES.accepted, MESSAGES.ndr, MESSAGES.nullSender, MESSAGES.spam, MESSAGES.unverified, MESSAGES.verified, MESSAGES.forgedAuthResults, MESSAGES.forged];
    for (const message of sent) await sendVia(postfix!.submissionPort, message);
    const deliveries = await sink.waitFor(sent.length, 30_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${logs()}`);
    });
    const expect = (name: keyof typeof MESSAGES, pool: keyof typeof POOLS, reasons: string): SinkDelivery => {
      const delivery = delivered(deliveries, MESSAGES[name].name);
      assert.equal(delivery.clientAddress, POOLS[pool].bind, `${name}: source address`);
      assert.equal(delivery.helo, POOLS[pool].helo, `${name}: HELO`);
      const traces = [...delivery.message.matchAll(/^X-Outbound-Pool: (.*)$/gm)].map((match) => match[1]);
      assert.equal(traces.length, 1, `${name}: one trace header, ours`);
      assert.match(traces[0]!, new RegExp(`; pool=${pool}; reasons=${reasons}`), `${name}: trace`);
      assert.doesNotMatch(delivery.message, new RegExp(`^${POOL_HEADER}:`, 'im'), `${name}: the pool header left Postfix`);
      assert.deepEqual(delivery.rcptTo, MESSAGES[name].to);
      return delivery;
    };
    assert.equal(expect('accepted', 'normal', 'accepted-domain').mailFrom, 'megan@contoso.com');
    assert.equal(expect('ndr', 'high-risk', 'ndr').mailFrom, 'postmaster@contoso.com');
    assert.equal(expect('nullSender', 'high-risk', 'ndr').mailFrom, '');
    assert.equal(expect('spam', 'high-risk', 'spam').mailFrom, 'megan@contoso.com');
    assert.equal(expect('unverified', 'relay', 'relay-unverified').mailFrom, 'kim@northwind.example');
    assert.equal(expect('forged', 'relay', 'relay-unverified').mailFrom, 'kim@northwind.example');
    assert.equal(expect('forgedAuthResults', 'relay', 'relay-unverified').mailFrom, 'alex@fabrikam.example');
    const verified = expect('verified', 'normal', 'spf-pass,srs-rewritten');
    assert.match(verified.mailFrom, /^SRS0=[^=]+=[^=]+=fabrikam\.example=alex@contoso\.com$/);
    assert.equal(new Srs({ secrets: SRS_SECRETS }).reverse(verified.mailFrom), 'alex@fabrikam.example');
    // One log line per decision, with the queue id Postfix gave the message.
    const decisions = daemon!.output().split('\n').filter((line) => /^milter: [0-9A-F]+: OutboundIpPoolName=/.test(line));
    assert.ok(decisions.length >= sent.length, `one line per decision:\n${daemon!.output()}`);
  });

  it('refuses a blocked message with the decision’s 5xx and a deferred one with its 4xx', async () => {
    const before = sink.deliveries.length;
    await assert.rejects(sendVia(postfix!.submissionPort, MESSAGES.blocked), (error: { responseCode?: number; response?: string }) => {
      assert.equal(error.responseCode, 550, String(error.response));
      assert.match(String(error.response), /5\.5\.3 Too many recipients: at most 3 per message/);
      return true;
    });
    await assert.rejects(sendVia(postfix!.submissionPort, MESSAGES.deferred), (error: { responseCode?: number; response?: string }) => {
      assert.equal(error.responseCode, 451, String(error.response));
      assert.match(String(error.response), /4\.3\.0 Temporary failure checking the message \(spam\)/);
      return true;
    });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(sink.deliveries.length, before, 'a refused message reached the sink');
  });

  it('sends a bounce to an SRS address back to the original sender, through the socketmap', async () => {
    const srsAddress = new Srs({ secrets: SRS_SECRETS }).forward('alex@fabrikam.example', 'contoso.com');
    const bounce: TestMessage = {
      name: 'bounce-to-srs',
      from: '',
      to: [srsAddress],
      headers: `From: MAILER-DAEMON@adventure-works.example\nTo: ${srsAddress}\nSubject: Undelivered Mail Returned to Sender`,
    };
    const before = sink.deliveries.length;
    await sendVia(postfix!.mxPort, bounce);
    const deliveries = await sink.waitFor(before + 1, 30_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${logs()}`);
    });
    const delivery = delivered(deliveries, bounce.name);
    assert.deepEqual(delivery.rcptTo, ['alex@fabrikam.example']);
    assert.equal(delivery.mailFrom, '');
    // No milter on the MX listener: the null sender goes out through the high-risk pool by
    // sender_dependent_default_transport_maps, as Postfix's own bounces do.
    assert.equal(delivery.clientAddress, POOLS['high-risk'].bind);
  });

  it("sends Postfix's own bounce (which skips the milter) through the high-risk pool", async () => {
    const refused: TestMessage = { ...MESSAGES.accepted, name: 'refused', to: ['refused-lee@fabrikam.example'] };
    const before = sink.deliveries.length;
    await sendVia(postfix!.submissionPort, refused);
    const deliveries = await sink.waitFor(before + 1, 30_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${logs()}`);
    });
    const bounce = deliveries.slice(before).find((delivery) => delivery.message.includes('Message-ID: <refused@test.contoso.com>'));
    assert.ok(bounce, `no bounce of the refused message\n${logs()}`);
    assert.equal(bounce.mailFrom, '');
    assert.deepEqual(bounce.rcptTo, ['megan@contoso.com']);
    assert.equal(bounce.clientAddress, POOLS['high-risk'].bind);
    assert.match(postfix!.log(), /postfix\/pool_normal\/smtp\[\d+\]: [0-9A-F]+: to=<refused-lee@fabrikam\.example>.*status=bounced/);
  });

  it('serves a milter on a Unix socket (DATA and end of header skipped): the envelope, the header, the queue id, one change', async () => {
    const before = sink.deliveries.length;
    const message: TestMessage = { ...MESSAGES.accepted, name: 'unix-socket', to: ['lee@fabrikam.example', 'kim@fabrikam.example'] };
    await sendVia(postfix!.secondPort!, message);
    const deliveries = await sink.waitFor(before + 1, 30_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${logs()}`);
    });
    const delivery = delivered(deliveries.slice(before), message.name);
    assert.match(delivery.message, /^X-Seen-By: local milter\r?$/m);
    assert.equal(seenLocally.length, 1);
    const seen = seenLocally[0]!;
    assert.equal(seen.mailFrom, 'megan@contoso.com');
    assert.deepEqual(seen.rcptTo, ['lee@fabrikam.example', 'kim@fabrikam.example']);
    assert.ok(seen.headers.some(([name, value]) => name === 'Subject' && value.trim() === 'Quarterly numbers'), JSON.stringify(seen.headers));
    assert.match(seen.macro('i') ?? '', /^[0-9A-F]+$/);
    assert.equal(seen.client?.address, '127.0.0.1');
    assert.deepEqual(localErrors, []);
    assert.doesNotMatch(postfix!.log(), /warning: milter unix:/);
  });

  it('applies milter_default_action (tempfail) while the milter daemon is down', async () => {
    const stopping = Date.now();
    daemon!.child.kill('SIGTERM');
    await daemon!.exit;
    // Every connection was idle (between messages): the drain closes them at once.
    assert.ok(Date.now() - stopping < 5_000, `the drain took ${Date.now() - stopping} ms`);
    assert.equal(daemon!.exited(), 'exit code 0', daemon!.output());
    await assert.rejects(sendVia(postfix!.submissionPort, { ...MESSAGES.accepted, name: 'milter-down' }), (error: { responseCode?: number; response?: string }) => {
      assert.equal(error.responseCode, 451, String(error.response));
      assert.match(String(error.response), /4\.7\.1/);
      return true;
    });
  });
});
