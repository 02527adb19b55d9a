// The example relay MTA (examples/relay-mta) end to end: real SMTP in (nodemailer → smtp-server),
// a real decision, real SMTP out (nodemailer → the loopback sink). Each message must reach the
// sink from its pool's own source address, with the expected envelope sender and the trace
// header; refused messages must get the decision's reply and never reach the sink.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createTransport } from 'nodemailer';
import { startRelayMta, type RelayMta } from '../../examples/relay-mta/relay-mta.js';
import { authenticationFromHeaders } from '../../src/providers/authentication-results.js';
import { createMemoryRateLimiter } from '../../src/providers/memory-limiter.js';
import { createStaticResolver, type StaticZone } from '../../src/providers/static-dns.js';
import type { Authenticator, SpamClassifier } from '../../src/providers/types.js';
import { headerValue, parseHeaders } from '../../src/headers.js';
import { Srs } from '../../src/srs/index.js';
import { startSmtpSink, type SinkDelivery, type SmtpSink } from '../servers/smtp-sink.js';

const ZONE = JSON.parse(readFileSync(new URL('../../examples/zone.json', import.meta.url), 'utf8')) as StaticZone;
const POOL_ADDRESSES = { normal: '127.0.0.10', 'high-risk': '127.0.0.20', relay: '127.0.0.30' } as const;
const SRS_SECRET = 'relay-mta-test-secret';

/**
 * A stand-in for rspamd (which has its own tests, test/rspamd/classifier.test.ts): the score is
 * whatever the message's `X-Spam-Score` field says, 0 without one.
 */
const spamFromHeader: SpamClassifier = {
  async classify(message) {
    const score = message.raw === undefined ? undefined : headerValue(parseHeaders(message.raw), 'x-spam-score');
    return { score: score === undefined ? 0 : Number(score) };
  },
};

/**
 * Authentication at ingress as the gateway in front of this MTA recorded it: the
 * Authentication-Results fields of `mx1.contoso.com`, the one authserv-id trusted here.
 */
const authenticationFromGateway: Authenticator = {
  async authenticate(message) {
    return message.raw === undefined ? {} : authenticationFromHeaders(message.raw, { authservIds: ['mx1.contoso.com'] }).verdict;
  },
};

let messageCount = 0;

/** A raw message with CRLF line ends and a unique Message-ID (the rate limiter counts retries of one id once). */
function eml(headers: readonly string[], body: string): string {
  messageCount += 1;
  return [...headers, `Message-ID: <relay-mta-${messageCount}-${Date.now()}@test.invalid>`, '', body, ''].join('\r\n');
}

/** The SMTP error a refused send rejects with, as nodemailer reports it. */
interface SmtpSendError {
  readonly responseCode?: number;
  readonly response?: string;
}

describe('the example relay MTA', () => {
  let sink: SmtpSink;
  let mta: RelayMta;
  let srs: Srs;

  before(async () => {
    sink = await startSmtpSink();
    srs = new Srs({ secret: SRS_SECRET });
    mta = await startRelayMta({
      policy: {
        acceptedDomains: ['contoso.com', '*.contoso.com'],
        spam: { threshold: 6 },
        limits: [
          { name: 'per-message', recipientsPerMessage: 3, action: 'block' },
          // Counted per SMTP AUTH user (or per envelope sender without AUTH): the 4th message
          // within a minute restricts the sender until released. Every other sender below
          // sends fewer than 3 messages.
          { name: 'per-user', messagesPerMinute: 3, action: 'block-user' },
        ],
      },
      providers: {
        dns: createStaticResolver(ZONE),
        spam: spamFromHeader,
        authenticator: authenticationFromGateway,
        rateLimiter: createMemoryRateLimiter(),
      },
      srs: { rewriter: srs, domain: 'contoso.com' },
      relayHost: sink.host,
      relayPort: sink.port,
      poolAddresses: POOL_ADDRESSES,
      authenticate: (username, password) => username === 'mallory' && password === 'hunter2',
    });
  });

  after(async () => {
    await Promise.all([mta?.stop(), sink?.stop()]);
  });

  /** Sends one raw message to the MTA; resolves with the 250 reply, rejects with the SMTP error. */
  async function send(from: string, to: readonly string[], raw: string, auth?: { user: string; pass: string }): Promise<string> {
    const client = createTransport({ host: '127.0.0.1', port: mta.port, secure: false, ignoreTLS: true, ...(auth === undefined ? {} : { auth }) });
    try {
      const info = await client.sendMail({ envelope: { from, to: [...to] }, raw });
      return info.response;
    } finally {
      client.close();
    }
  }

  /** Sends a message that must be relayed, and returns the delivery the sink recorded for it. */
  async function relayed(from: string, to: readonly string[], raw: string): Promise<SinkDelivery> {
    const before = sink.deliveries.length;
    const response = await send(from, to, raw);
    assert.match(response, /^250 2\.0\.0 Relayed via the /);
    // The MTA answers 250 only after the sink took the message: it is there already.
    assert.equal(sink.deliveries.length, before + 1);
    return sink.deliveries[before]!;
  }

  /** Sends a message that must be refused; returns the error and checks nothing reached the sink. */
  async function refused(from: string, to: readonly string[], raw: string, auth?: { user: string; pass: string }): Promise<SmtpSendError> {
    const before = sink.deliveries.length;
    const error = await send(from, to, raw, auth).then(
      () => assert.fail('the message was accepted'),
      (error: unknown) => error as SmtpSendError,
    );
    assert.equal(sink.deliveries.length, before, 'a refused message must not reach the sink');
    return error;
  }

  function traceOf(delivery: SinkDelivery): string {
    const trace = headerValue(parseHeaders(delivery.message), 'x-outbound-pool');
    assert.ok(trace !== undefined, 'the relayed message carries X-Outbound-Pool');
    return trace;
  }

  it('relays mail of an accepted domain from the normal pool, sender unchanged', async () => {
    const delivery = await relayed(
      'megan@contoso.com',
      ['lee@adventure-works.example'],
      eml(['From: Megan Bowen <megan@contoso.com>', 'To: lee@adventure-works.example', 'Subject: Quarterly numbers'], 'Hi Lee.'),
    );
    assert.equal(delivery.clientAddress, POOL_ADDRESSES.normal);
    assert.equal(delivery.helo, 'normal.pool.localhost');
    assert.equal(delivery.mailFrom, 'megan@contoso.com');
    assert.deepEqual(delivery.rcptTo, ['lee@adventure-works.example']);
    assert.equal(traceOf(delivery), 'OutboundIpPoolName=RegularOutboundPool; action=deliver; pool=normal; reasons=accepted-domain');
    assert.match(delivery.message, /\r\n\r\nHi Lee\.\r\n$/);
  });

  it('relays spam from the high-risk pool', async () => {
    const delivery = await relayed(
      'winner@bulk-offers.example',
      ['lee@adventure-works.example'],
      eml(['From: "Prize Desk" <winner@bulk-offers.example>', 'To: lee@adventure-works.example', 'Subject: You have WON!!!', 'X-Spam-Score: 14.2'], 'CLICK HERE'),
    );
    assert.equal(delivery.clientAddress, POOL_ADDRESSES['high-risk']);
    assert.equal(delivery.helo, 'high-risk.pool.localhost');
    assert.equal(delivery.mailFrom, 'winner@bulk-offers.example');
    assert.match(traceOf(delivery), /^OutboundIpPoolName=HighRiskOutboundPool; action=deliver; pool=high-risk; reasons=spam\b/);
  });

  it('relays an NDR (null sender, multipart/report) from the high-risk pool with the null sender', async () => {
    const delivery = await relayed(
      '',
      ['lee@adventure-works.example'],
      eml(
        [
          'From: Mail Delivery System <MAILER-DAEMON@mx1.contoso.com>',
          'To: lee@adventure-works.example',
          'Subject: Undelivered Mail Returned to Sender',
          'MIME-Version: 1.0',
          'Content-Type: multipart/report; report-type=delivery-status; boundary="dsn"',
        ],
        ['--dsn', 'Content-Type: text/plain', '', 'The mailbox nobody@contoso.com does not exist.', '', '--dsn', 'Content-Type: message/delivery-status', '', 'Reporting-MTA: dns; mx1.contoso.com', '', 'Final-Recipient: rfc822; nobody@contoso.com', 'Action: failed', 'Status: 5.1.1', '', '--dsn--'].join('\r\n'),
      ),
    );
    assert.equal(delivery.clientAddress, POOL_ADDRESSES['high-risk']);
    assert.equal(delivery.mailFrom, '');
    assert.match(traceOf(delivery), /^OutboundIpPoolName=HighRiskOutboundPool; action=deliver; pool=high-risk; reasons=ndr\b/);
  });

  it('relays an unverified forward from the relay pool, sender unchanged', async () => {
    const delivery = await relayed(
      'billing@fabrikam.example',
      ['megan.home@northwind.example'],
      eml(
        [
          'Authentication-Results: mx1.contoso.com; spf=fail smtp.mailfrom=fabrikam.example; dkim=fail header.d=fabrikam.example',
          'From: Billing <billing@fabrikam.example>',
          'To: megan@contoso.com',
          'Subject: Invoice 2026-1123',
        ],
        'Please find the invoice details below.',
      ),
    );
    assert.equal(delivery.clientAddress, POOL_ADDRESSES.relay);
    assert.equal(delivery.helo, 'relay.pool.localhost');
    assert.equal(delivery.mailFrom, 'billing@fabrikam.example');
    assert.equal(traceOf(delivery), 'OutboundIpPoolName=RegularRelayOutboundPool; action=deliver; pool=relay; reasons=relay-unverified');
  });

  /** Forwards Alice's message (SPF passed at the gateway); returns the SRS sender it left with. */
  async function forwardVerified(): Promise<SinkDelivery> {
    return relayed(
      'alice@fabrikam.example',
      ['megan.home@northwind.example'],
      eml(
        ['Authentication-Results: mx1.contoso.com; spf=pass smtp.mailfrom=fabrikam.example', 'From: Alice <alice@fabrikam.example>', 'To: megan@contoso.com', 'Subject: Lunch on Friday?'],
        'Shall we meet at noon?',
      ),
    );
  }

  it('relays a verified forward from the normal pool with an SRS sender', async () => {
    const delivery = await forwardVerified();
    assert.equal(delivery.clientAddress, POOL_ADDRESSES.normal);
    assert.match(delivery.mailFrom, /^SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=fabrikam\.example=alice@contoso\.com$/);
    assert.equal(srs.reverse(delivery.mailFrom), 'alice@fabrikam.example');
    assert.equal(
      traceOf(delivery),
      `OutboundIpPoolName=RegularOutboundPool; action=deliver; pool=normal; reasons=spf-pass,srs-rewritten; mail-from=${delivery.mailFrom}`,
    );
  });

  it('reverses a bounce to an SRS address it issued and relays it to the original sender from the high-risk pool', async () => {
    const srsSender = (await forwardVerified()).mailFrom;
    const bounce = await relayed(
      '',
      [srsSender],
      eml(
        [
          'From: Mail Delivery System <MAILER-DAEMON@mx.northwind.example>',
          `To: ${srsSender}`,
          'Subject: Undelivered Mail Returned to Sender',
          'MIME-Version: 1.0',
          'Content-Type: multipart/report; report-type=delivery-status; boundary="dsn"',
        ],
        ['--dsn', 'Content-Type: text/plain', '', 'megan.home@northwind.example: mailbox full.', '', '--dsn', 'Content-Type: message/delivery-status', '', 'Final-Recipient: rfc822; megan.home@northwind.example', 'Action: failed', 'Status: 5.2.2', '', '--dsn--'].join('\r\n'),
      ),
    );
    assert.deepEqual(bounce.rcptTo, ['alice@fabrikam.example']);
    assert.equal(bounce.mailFrom, '');
    assert.equal(bounce.clientAddress, POOL_ADDRESSES['high-risk']);
    assert.match(traceOf(bounce), /^OutboundIpPoolName=HighRiskOutboundPool; action=deliver; pool=high-risk; reasons=ndr\b/);
  });

  it('refuses a bounce to a forged SRS address at RCPT with 550 5.1.1', async () => {
    const forged = 'SRS0=abcd=2W=fabrikam.example=alice@contoso.com';
    const error = await refused('', [forged], eml(['From: MAILER-DAEMON@mx.example', `To: ${forged}`, 'Subject: bounce'], 'bounce'));
    assert.equal(error.responseCode, 550);
    assert.match(error.response ?? '', /^550 5\.1\.1 <SRS0=abcd=2W=fabrikam\.example=alice@contoso\.com>: invalid or expired SRS address \(bad-hash\)/);
  });

  it('refuses a message with too many recipients with the decision reply', async () => {
    const to = ['a@adventure-works.example', 'b@adventure-works.example', 'c@adventure-works.example', 'd@adventure-works.example'];
    const error = await refused('news@contoso.com', to, eml(['From: news@contoso.com', 'To: undisclosed-recipients:;', 'Subject: News'], 'News.'));
    assert.equal(error.responseCode, 550);
    assert.equal(error.response, '550 5.5.3 Too many recipients: at most 3 per message');
  });

  it('counts sending limits per SMTP AUTH user and refuses a restricted sender', async () => {
    const mallory = { user: 'mallory', pass: 'hunter2' };
    // Three envelope senders, one account: the limit follows the account.
    for (const from of ['m1@contoso.com', 'm2@contoso.com', 'm3@contoso.com']) {
      assert.match(await send(from, ['lee@adventure-works.example'], eml([`From: ${from}`, 'Subject: hi'], 'hi'), mallory), /^250 /);
    }
    const breach = await refused('m4@contoso.com', ['lee@adventure-works.example'], eml(['From: m4@contoso.com', 'Subject: hi'], 'hi'), mallory);
    assert.equal(breach.response, '550 5.1.8 Sending limit exceeded: sender is restricted from sending mail');
    const restricted = await refused('m5@contoso.com', ['lee@adventure-works.example'], eml(['From: m5@contoso.com', 'Subject: hi'], 'hi'), mallory);
    assert.equal(restricted.response, '550 5.1.8 Sender is restricted from sending mail by outbound policy');
  });
});
