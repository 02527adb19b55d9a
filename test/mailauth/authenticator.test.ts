// Authentication at ingress with real signatures: keys generated here, messages signed and
// ARC-sealed with mailauth, SPF/DKIM records served by a real DNS server (dnsmasq) on loopback.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rsaKey } from './keys.js';
import { readFileSync } from 'node:fs';
import { authenticate, dkimSign, sealMessage } from 'mailauth';
import { createDnsResolver } from '../../src/providers/dns.js';
import { BlockList } from 'node:net';
import { createMailauthAuthenticator, firstUntrustedHop, receivedFrom, verdictFromMailauth } from '../../src/mailauth/authenticator.js';
import { assertLinear } from '../providers/linear-time.js';
import { createStaticResolver } from '../../src/providers/static-dns.js';
import { decidePool } from '../../src/decide/gather.js';
import { createPolicy } from '../../src/policy.js';
import { Srs } from '../../src/srs/index.js';
import type { DnsResolver, ProviderMessage } from '../../src/providers/types.js';
import { startDnsmasq, type DnsmasqServer } from '../servers/dnsmasq.js';

const FABRIKAM_MX = '198.51.100.25'; // in fabrikam.example's SPF record
const STRANGER = '203.0.113.9'; // a forwarder fabrikam.example's SPF does not list
const LISTS = '203.0.113.50'; // lists.example, an ARC-sealing mailing list
const GATEWAY = '192.0.2.10'; // a filtering gateway in front of this service
/** The clock of the tests that decide on signed messages: signed, sealed, dated and decided at it. */
const CLOCK = new Date(1577836860_000);

const fabrikamKey = rsaKey();
const listsKey = rsaKey();

const MESSAGE = [
  'From: Alice <alice@fabrikam.example>',
  'To: megan@contoso.com',
  'Subject: Lunch on Friday?',
  `Date: ${CLOCK.toUTCString().replace('GMT', '+0000')}`,
  'Message-ID: <lunch-42@fabrikam.example>',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Shall we meet at noon?',
  '',
].join('\r\n');

/** `message` signed by fabrikam.example (selector k1 unless `signature` says otherwise, e.g. `maxBodyLength` for l=). */
async function signedByFabrikam(message = MESSAGE, signature: { readonly selector?: string; readonly maxBodyLength?: number } = {}): Promise<string> {
  // mailauth's type definitions lag its API (signatureData, README "DKIM signing").
  const { signatures, errors } = await dkimSign(message, {
    canonicalization: 'relaxed/relaxed',
    signTime: CLOCK,
    signatureData: [{ signingDomain: 'fabrikam.example', selector: 'k1', privateKey: fabrikamKey.privateKey, ...signature }],
  } as unknown as Parameters<typeof dkimSign>[1]);
  assert.deepEqual(errors, []);
  return signatures + message;
}

function received(from: string, ip: string, by: string): string {
  return `Received: from ${from} (${from} [${ip}])\r\n\tby ${by} with ESMTPS id x1; Mon, 23 Nov 2026 09:20:12 +0000\r\n`;
}

describe('createMailauthAuthenticator with a real DNS server', () => {
  let dns: DnsmasqServer;
  let resolver: DnsResolver;
  const policy = createPolicy({ acceptedDomains: ['contoso.com'], relay: { trustedArcSealers: ['lists.example'] } });
  const srs = { rewriter: new Srs({ secret: 'tops3cr3t' }), domain: 'contoso.com' };

  before(async () => {
    dns = await startDnsmasq({
      'fabrikam.example': { MX: [{ exchange: 'mx.fabrikam.example', priority: 10 }], TXT: ['v=spf1 ip4:198.51.100.0/24 -all'] },
      'k1._domainkey.fabrikam.example': { TXT: [fabrikamKey.record] },
      // The same key published in testing mode (t=y, RFC 6376 §3.6.1).
      'test._domainkey.fabrikam.example': { TXT: [`${fabrikamKey.record}; t=y`] },
      'lists.example': { MX: [{ exchange: 'mx.lists.example', priority: 10 }], TXT: [`v=spf1 ip4:${LISTS} -all`] },
      'arc1._domainkey.lists.example': { TXT: [listsKey.record] },
      '_dmarc.fabrikam.example': { TXT: ['v=DMARC1; p=reject'] },
    });
    resolver = createDnsResolver({ servers: [dns.address], timeoutMs: 1000, tries: 1 });
  });
  after(async () => {
    await dns?.stop();
  });

  function decide(raw: string, ip: string, options: Parameters<typeof createMailauthAuthenticator>[0] = {}) {
    const authenticator = createMailauthAuthenticator({ resolver, mta: 'mx1.contoso.com', ...options });
    return decidePool(
      { mailFrom: 'alice@fabrikam.example', rcptTo: ['megan.home@northwind.example'], headers: raw, ingress: { ip, helo: 'client.example' } },
      { policy, providers: { authenticator }, srs, now: CLOCK },
    );
  }

  it('a direct message from an SPF-listed server with a valid DKIM signature passes both', async () => {
    const authenticator = createMailauthAuthenticator({ resolver, mta: 'mx1.contoso.com' });
    const verdict = await authenticator.authenticate(
      { raw: await signedByFabrikam(), mailFrom: 'alice@fabrikam.example', rcptTo: ['megan@contoso.com'], ingress: { ip: FABRIKAM_MX, helo: 'mx.fabrikam.example' } },
      new AbortController().signal,
    );
    assert.deepEqual(verdict.spf, { result: 'pass', domain: 'fabrikam.example' });
    assert.deepEqual(verdict.dkim, [{ result: 'pass', domain: 'fabrikam.example', selector: 'k1' }]);
    assert.deepEqual(verdict.ingress, { source: 'connection', ip: FABRIKAM_MX, helo: 'mx.fabrikam.example' });
    // DMARC is left out unless asked for (no rule reads it): see the dmarc option's test below.
    assert.equal(verdict.dmarc, undefined);
  });

  it('a MAIL FROM written with its angle brackets is checked without them (SPF would read the domain "fabrikam.example>")', async () => {
    const authenticator = createMailauthAuthenticator({ resolver, mta: 'mx1.contoso.com' });
    const ask = (mailFrom: string) =>
      authenticator.authenticate({ raw: MESSAGE, mailFrom, rcptTo: ['megan@contoso.com'], ingress: { ip: FABRIKAM_MX, helo: 'mx.fabrikam.example' }, now: CLOCK }, new AbortController().signal);
    assert.deepEqual((await ask('<alice@fabrikam.example>')).spf, { result: 'pass', domain: 'fabrikam.example' });
    const decision = await decidePool(
      { mailFrom: '<alice@fabrikam.example>', rcptTo: ['megan.home@northwind.example'], headers: MESSAGE, ingress: { ip: FABRIKAM_MX, helo: 'mx.fabrikam.example' } },
      { policy, providers: { authenticator }, srs, now: CLOCK },
    );
    assert.deepEqual(decision.reasons.map((r) => r.code), ['spf-pass', 'srs-rewritten']);
  });

  it('the message as a string, a Buffer, or a Uint8Array viewing part of a larger buffer gives the same verdict', async () => {
    const authenticator = createMailauthAuthenticator({ resolver, mta: 'mx1.contoso.com' });
    const raw = await signedByFabrikam();
    const bytes = Buffer.from(raw);
    // The message in the middle of a larger ArrayBuffer, as a plain Uint8Array (not a Buffer).
    const backing = new Uint8Array(bytes.length + 64).fill(0x58);
    backing.set(bytes, 32);
    const view = new Uint8Array(backing.buffer, 32, bytes.length);
    const ask = (message: string | Uint8Array) =>
      authenticator.authenticate({ raw: message, mailFrom: 'alice@fabrikam.example', rcptTo: ['megan@contoso.com'], ingress: { ip: STRANGER, helo: 'client.example' }, now: CLOCK }, new AbortController().signal);
    const fromString = await ask(raw);
    assert.deepEqual(fromString.dkim, [{ result: 'pass', domain: 'fabrikam.example', selector: 'k1' }]);
    assert.deepEqual(await ask(bytes), fromString);
    assert.deepEqual(await ask(view), fromString);
  });

  it('a forward whose SPF fails but whose aligned DKIM passes is verified by DKIM: normal pool, SRS', async () => {
    const decision = await decide(await signedByFabrikam(), STRANGER);
    assert.equal(decision.verdicts.authentication.state, 'provided');
    assert.deepEqual(
      decision.reasons.map((r) => r.code),
      ['dkim-pass', 'srs-rewritten'],
    );
    assert.equal(decision.pool, 'normal');
    assert.match(decision.mailFrom, /^SRS0=/);
  });

  it('a forward failing SPF whose body was changed on the way (DKIM broken) goes to the relay pool, unrewritten', async () => {
    const tampered = (await signedByFabrikam()).replace('Shall we meet at noon?', 'Shall we meet at one?');
    const decision = await decide(tampered, STRANGER);
    assert.deepEqual(decision.reasons.map((r) => r.code), ['relay-unverified']);
    assert.equal(decision.mailFrom, 'alice@fabrikam.example');
  });

  describe('a DKIM pass that vouches for less than the message is read as policy, and verifies nothing', () => {
    const BODY = 'Shall we meet at noon?\r\n';
    it('l= covering part of the body: content appended after the signed length (a replay) goes to the relay pool', async () => {
      const signed = await signedByFabrikam(MESSAGE, { maxBodyLength: Buffer.byteLength(BODY) });
      assert.match(signed, /l=\d+/);
      // As signed, l= covers the whole body: a pass.
      const whole = await decide(signed, STRANGER);
      assert.deepEqual(whole.verdicts.authentication.state === 'provided' && whole.verdicts.authentication.value.dkim, [{ result: 'pass', domain: 'fabrikam.example', selector: 'k1' }]);
      assert.equal(whole.pool, 'normal');
      const replayed = `${signed}\r\nBUY CHEAP PILLS http://spam.example/\r\n`;
      const decision = await decide(replayed, STRANGER);
      assert.deepEqual(decision.verdicts.authentication.state === 'provided' && decision.verdicts.authentication.value.dkim, [{ result: 'policy', domain: 'fabrikam.example', selector: 'k1' }]);
      assert.deepEqual(decision.reasons.map((r) => r.code), ['relay-unverified']);
      assert.equal(decision.mailFrom, 'alice@fabrikam.example');
    });

    it('a key in testing mode (t=y): the message is treated as unsigned, relay pool', async () => {
      const decision = await decide(await signedByFabrikam(MESSAGE, { selector: 'test' }), STRANGER);
      assert.deepEqual(decision.verdicts.authentication.state === 'provided' && decision.verdicts.authentication.value.dkim, [{ result: 'policy', domain: 'fabrikam.example', selector: 'test' }]);
      assert.deepEqual(decision.reasons.map((r) => r.code), ['relay-unverified']);
    });
  });

  it('a message relayed through a trusted gateway is checked against the hop before the gateway (enhanced filtering)', async () => {
    const raw = received('gw.contoso.com', GATEWAY, 'mx1.contoso.com') + received('mx.fabrikam.example', FABRIKAM_MX, 'gw.contoso.com') + MESSAGE;
    const withoutSkipListing = await decide(raw, GATEWAY);
    assert.deepEqual(withoutSkipListing.reasons.map((r) => r.code), ['relay-unverified'], 'SPF fails for the gateway address');
    const withSkipListing = await decide(raw, GATEWAY, { trustedGateways: ['192.0.2.0/24', '2001:db8::/32'] });
    assert.deepEqual(withSkipListing.reasons.map((r) => r.code), ['spf-pass', 'srs-rewritten']);
    const verdict = withSkipListing.verdicts.authentication;
    assert.ok(verdict.state === 'provided');
    assert.deepEqual(verdict.value.ingress, { source: 1, ip: FABRIKAM_MX, helo: 'mx.fabrikam.example' });
  });

  it('through a trusted gateway, a client cannot pass SPF with a HELO literal or a Received field of its own: relay pool', async () => {
    const gatewayTop = received('gw.contoso.com', GATEWAY, 'mx1.contoso.com');
    // Exim on the gateway, the client without reverse DNS and claiming fabrikam's MX as its HELO.
    const exim = `Received: from [${STRANGER}] (helo=[${FABRIKAM_MX}])\r\n\tby gw.contoso.com with esmtp (Exim 4.96) id 1abc; Mon, 23 Nov 2026 09:20:11 +0000\r\n`;
    const byHelo = await decide(gatewayTop + exim + MESSAGE, GATEWAY, { trustedGateways: ['192.0.2.0/24'] });
    assert.deepEqual(byHelo.reasons.map((r) => r.code), ['relay-unverified']);
    // A gateway format the parser does not read, then a field the client wrote.
    const unreadable = `Received: from fabrikam.example (client text) by gw.contoso.com with SMTP; Mon, 23 Nov 2026 09:20:11 +0000\r\n`;
    const byForgery = await decide(gatewayTop + unreadable + received('mx.fabrikam.example', FABRIKAM_MX, 'x') + MESSAGE, GATEWAY, { trustedGateways: ['192.0.2.0/24'] });
    assert.deepEqual(byForgery.reasons.map((r) => r.code), ['relay-unverified']);
    const verdict = byForgery.verdicts.authentication;
    assert.ok(verdict.state === 'provided');
    assert.deepEqual(verdict.value.ingress, { source: 1, helo: 'fabrikam.example' });
  });

  it('a forward through a mailing list that breaks DKIM counts when the list ARC-sealed it and the policy trusts the list', async () => {
    // lists.example receives the signed message from fabrikam and authenticates it (SPF and DKIM
    // pass there), changes it (a subject tag), which breaks fabrikam's DKIM signature, and seals
    // the changed message with what it saw (RFC 8617 §5.1).
    const original = await signedByFabrikam();
    const atList = await authenticate(original, {
      ip: FABRIKAM_MX,
      helo: 'mx.fabrikam.example',
      sender: 'alice@fabrikam.example',
      mta: 'mx.lists.example',
      resolver: resolver as never,
    });
    assert.ok(atList.arc);
    const changed = original.replace('Subject: Lunch on Friday?', 'Subject: [lunch] Lunch on Friday?');
    // authResults and cv are in mailauth's README ("ARC sealing") but not in its type definitions.
    const seal = await sealMessage(Buffer.from(changed), {
      signingDomain: 'lists.example',
      selector: 'arc1',
      privateKey: listsKey.privateKey,
      authResults: atList.arc.authResults,
      cv: atList.arc.status.result,
      signTime: CLOCK,
    } as unknown as Parameters<typeof sealMessage>[1]);
    const relayed = seal.toString() + changed;
    const trusted = await decide(relayed, LISTS);
    assert.deepEqual(trusted.reasons.map((r) => r.code), ['arc-pass', 'srs-rewritten']);
    const verdict = trusted.verdicts.authentication;
    assert.ok(verdict.state === 'provided');
    assert.equal(verdict.value.arc?.sealer, 'lists.example');
    assert.equal(verdict.value.arc?.result, 'pass');

    const untrustingPolicy = createPolicy({ acceptedDomains: ['contoso.com'] });
    const untrusted = await decidePool(
      { mailFrom: 'alice@fabrikam.example', rcptTo: ['megan.home@northwind.example'], headers: relayed, ingress: { ip: LISTS } },
      { policy: untrustingPolicy, providers: { authenticator: createMailauthAuthenticator({ resolver, mta: 'mx1.contoso.com' }) }, srs },
    );
    assert.deepEqual(untrusted.reasons.map((r) => r.code), ['relay-unverified'], 'a sealer the policy does not name never verifies');

    const broken = relayed.replace(/(ARC-Seal:[\s\S]*?\sb=)([A-Za-z0-9+/])/, (_, head: string, c: string) => head + (c === 'A' ? 'B' : 'A'));
    assert.notEqual(broken, relayed);
    const brokenChain = await decide(broken, LISTS);
    assert.deepEqual(brokenChain.reasons.map((r) => r.code), ['relay-unverified'], 'a broken chain never verifies, even from a trusted sealer');
  });

  describe("a trusted sealer's ARC-Authentication-Results is read with this package's grammar, not mailauth's lenient one", () => {
    // lists.example seals what it recorded, as written; the message changed on the list (DKIM
    // broken), so only the sealer's word can verify it.
    async function sealedByList(authResults: string): Promise<string> {
      const changed = (await signedByFabrikam()).replace('Subject: Lunch on Friday?', 'Subject: [lunch] Lunch on Friday?');
      const seal = await sealMessage(Buffer.from(changed), {
        signingDomain: 'lists.example',
        selector: 'arc1',
        privateKey: listsKey.privateKey,
        authResults,
        cv: 'none',
        signTime: CLOCK,
      } as unknown as Parameters<typeof sealMessage>[1]);
      return seal.toString() + changed;
    }
    async function codes(authResults: string): Promise<string[]> {
      const decision = await decide(await sealedByList(authResults), LISTS);
      const verdict = decision.verdicts.authentication;
      assert.ok(verdict.state === 'provided');
      assert.equal(verdict.value.arc?.result, 'pass', 'the chain itself validates');
      return decision.reasons.map((r) => r.code);
    }

    it('an honest SPF pass for the sender, and an aligned DKIM pass, verify the forward', async () => {
      assert.deepEqual(await codes('mx.lists.example; spf=pass smtp.mailfrom=alice@fabrikam.example'), ['arc-pass', 'srs-rewritten']);
      assert.deepEqual(await codes('mx.lists.example; spf=fail smtp.mailfrom=fabrikam.example; dkim=pass header.d=fabrikam.example'), ['arc-pass', 'srs-rewritten']);
    });
    it('a sender\'s quoted local part that cut the sealer\'s comment short does not forge a pass', async () => {
      // The list wrote the MAIL FROM "a);spf=pass ("@fabrikam.example into its comment unescaped.
      const forged = 'mx.lists.example; spf=fail (mx.lists.example: domain of "a);spf=pass ("@fabrikam.example does not designate 203.0.113.9) smtp.mailfrom=fabrikam.example';
      assert.deepEqual(await codes(forged), ['relay-unverified']);
    });
    it("the MAIL FROM's SPF result counts, not a HELO pass written after it", async () => {
      assert.deepEqual(await codes('mx.lists.example; spf=fail smtp.mailfrom=fabrikam.example; spf=pass smtp.helo=fabrikam.example'), ['relay-unverified']);
    });
    it('a HELO pass alone does not verify a sender that is not null', async () => {
      assert.deepEqual(await codes('mx.lists.example; spf=pass smtp.helo=fabrikam.example'), ['relay-unverified']);
    });
    it("Microsoft 365's AAR, with its bare action= after the DMARC result, verifies the forward", async () => {
      const microsoft = 'mx.microsoft.com 1; spf=pass smtp.mailfrom=fabrikam.example; dmarc=pass action=none header.from=fabrikam.example; dkim=pass header.d=fabrikam.example; arc=none';
      assert.deepEqual(await codes(microsoft), ['arc-pass', 'srs-rewritten']);
    });
    it("a sealer's HELO check recorded as mailauth records it (postmaster@ the HELO name) does not verify", async () => {
      const atList = await authenticate(await signedByFabrikam(), { ip: FABRIKAM_MX, helo: 'fabrikam.example', sender: '', mta: 'mx.lists.example', resolver: resolver as never });
      const authResults = atList.arc ? atList.arc.authResults : undefined;
      assert.ok(authResults !== undefined);
      assert.match(authResults, /smtp.mailfrom=postmaster@fabrikam.example/);
      const recorded = authResults.replace(/;\s*dkim=[^;]*/g, '');
      assert.deepEqual(await codes(recorded), ['relay-unverified']);
      // The same check read from mailauth's result without the sender is the HELO's too.
      assert.deepEqual(verdictFromMailauth(atList, { source: 'connection' }).spf, { result: 'pass', domain: 'fabrikam.example', identity: 'helo' });
    });
    it('a field that cannot be read whole verifies nothing', async () => {
      assert.deepEqual(await codes('mx.lists.example; spf=pass smtp.mailfrom=fabrikam.example (unterminated'), ['relay-unverified']);
    });
  });

  it('options are checked once', () => {
    assert.throws(() => createMailauthAuthenticator({ trustedGateways: ['192.0.2.0/33'] }), /not an IP address or CIDR range/);
    assert.throws(() => createMailauthAuthenticator({ trustedGateways: ['gateway.example'] }), /not an IP address or CIDR range/);
    assert.throws(() => createMailauthAuthenticator({ resolvr: resolver } as never), /Unknown mailauth authenticator option/);
    assert.throws(() => createMailauthAuthenticator({ dmarc: 'no' } as never), /dmarc must be true or false/);
  });

  it('DMARC only with dmarc: true — by default and with dmarc: false no _dmarc lookup and no dmarc in the verdict, nothing else changes', async () => {
    const asked: string[] = [];
    const counting = ((name: string, rrtype: string) => {
      asked.push(`${name} ${rrtype}`);
      return (resolver as (name: string, rrtype: string) => Promise<unknown>)(name, rrtype);
    }) as typeof resolver;
    const message = { raw: await signedByFabrikam(), mailFrom: 'alice@fabrikam.example', rcptTo: ['megan@contoso.com'], ingress: { ip: FABRIKAM_MX, helo: 'mx.fabrikam.example' } };
    const withDmarc = await createMailauthAuthenticator({ resolver: counting, mta: 'mx1.contoso.com', dmarc: true }).authenticate(message, new AbortController().signal);
    assert.deepEqual(withDmarc.dmarc, { result: 'pass', domain: 'fabrikam.example' });
    assert.ok(asked.some((query) => query.startsWith('_dmarc.')), `asked: ${asked.join(', ')}`);
    const { dmarc: _left, ...rest } = withDmarc;
    for (const options of [{}, { dmarc: false }]) {
      asked.length = 0;
      const without = await createMailauthAuthenticator({ resolver: counting, mta: 'mx1.contoso.com', ...options }).authenticate(message, new AbortController().signal);
      assert.equal(without.dmarc, undefined, JSON.stringify(options));
      assert.ok(!asked.some((query) => query.startsWith('_dmarc.')), `${JSON.stringify(options)} asked: ${asked.join(', ')}`);
      assert.deepEqual(without, rest, JSON.stringify(options));
    }
  });
});

describe('receivedFrom', () => {
  it('reads the HELO name and the TCP-info address of a from-clause, IPv4 and IPv6', () => {
    assert.deepEqual(receivedFrom('from mx.fabrikam.example (mx.fabrikam.example [198.51.100.25]) by mx1'), { helo: 'mx.fabrikam.example', ip: '198.51.100.25' });
    assert.deepEqual(receivedFrom('from client (unknown [IPv6:2001:db8::7]) by mx1'), { helo: 'client', ip: '2001:db8::7' });
    assert.deepEqual(receivedFrom('from [192.0.2.7] by mx1'), { helo: '[192.0.2.7]', ip: '192.0.2.7' });
    assert.deepEqual(receivedFrom('by mx1 with LMTP'), null);
  });

  // Where each MTA writes the address it connected from, and where it writes what the client said.
  const formats: [mta: string, value: string, ip: string | undefined][] = [
    ['Postfix', 'from helo.example (rdns.example [203.0.113.66]) by gw.contoso.com (Postfix) with ESMTPS id 4X', '203.0.113.66'],
    ['Postfix, no reverse DNS', 'from helo.example (unknown [203.0.113.66]) by gw', '203.0.113.66'],
    ['Sendmail, forged-looking name', 'from helo.example (rdns.example [203.0.113.66] (may be forged)) by gw', '203.0.113.66'],
    ['Sendmail, no reverse DNS', 'from helo.example ([203.0.113.66]) by gw', '203.0.113.66'],
    ['Gmail', 'from mail-ed1.google.com (mail-ed1.google.com. [209.85.208.1]) by mx.google.com with SMTPS id x', '209.85.208.1'],
    ['IPv6 literal', 'from client (unknown [IPv6:2001:db8::7]) by gw', '2001:db8::7'],
    ['Exim, verified name, HELO differs', 'from rdns.example ([203.0.113.66] helo=[198.51.100.25]) by gw with esmtp (Exim 4.96)', '203.0.113.66'],
    ['Exim, with the client port', 'from rdns.example ([203.0.113.66]:41234 helo=x) by gw', '203.0.113.66'],
    ['Exim, no verified name: the address first, the HELO a literal', 'from [203.0.113.66] (helo=[198.51.100.25]) by gw with esmtp (Exim 4.96)', '203.0.113.66'],
    ['Exim, no verified name, port logged', 'from [203.0.113.66] (port=41234 helo=mx.fabrikam.example) by gw', '203.0.113.66'],
    ['Exchange', 'from attacker.example (203.0.113.66) by gw.contoso.com (192.0.2.10) with Microsoft SMTP Server id 15.20.1', '203.0.113.66'],
    ['Exchange, IPv6', 'from host.example (2603:10a6:20b::1) by gw (2603:10a6:20b::2) with Microsoft SMTP Server', '2603:10a6:20b::1'],
    ['qmail: the HELO comment, then the address', 'from unknown (HELO [198.51.100.25]) (203.0.113.66) by gw with SMTP', '203.0.113.66'],
    ['qmail, HELO only', 'from unknown (HELO [198.51.100.25]) by gw with SMTP', undefined],
    ['an address after an Exim item is the client\'s text', 'from rdns.example (helo=x [198.51.100.25]) by gw', undefined],
    ['a HELO literal, then a reverse-DNS name that looks like an Exim item: not Exim\'s, ambiguous', 'from [198.51.100.25] (x=y [203.0.113.66]) by gw (Haraka/3.3.4)', undefined],
    ['Exim, no verified name, ident and HELO', 'from [203.0.113.66] (ident=joe helo=mx.fabrikam.example) by gw', '203.0.113.66'],
    ['a HELO literal, then a PTR name closing the comment early', 'from [198.51.100.25] (helo=x) [203.0.113.66]) by gw', undefined],
    ['a HELO literal, then an item Exim does not write there', 'from [198.51.100.25] (x=y) by gw', undefined],
    ['an address literal followed by no clause', 'from [198.51.100.25] [203.0.113.66] by gw', undefined],
    ['an address deep in the comment is not TCP-info', 'from helo.example (one two [198.51.100.25]) by gw', undefined],
    ['a name without TCP-info', 'from helo.example by gw', undefined],
    ['an unclosed comment', 'from helo.example (rdns [203.0.113.66] by gw', undefined],
    ['qmail, EHLO', 'from unknown (EHLO [6.6.6.6]) (203.0.113.66) by gw with SMTP', '203.0.113.66'],
    ['a HELO holding a parenthesis opens no comment: Haraka writes it as given', 'from x([6.6.6.6]) (rdns.example [203.0.113.66]) by gw (Haraka/3.3.4)', '203.0.113.66'],
    ['a HELO literal with an Exim item glued on', 'from [6.6.6.6](helo=x) (rdns.example [203.0.113.66]) by gw', '203.0.113.66'],
    ['"from" that does not open the field', 'by mx.contoso.com (Postfix, from userid 0) id 4X', undefined],
  ];
  for (const [mta, value, ip] of formats) {
    it(`${mta}: ${ip ?? 'no address'}`, () => {
      assert.equal(receivedFrom(value)?.ip, ip, value);
    });
  }
});

describe('firstUntrustedHop: only what a trusted gateway wrote is read, and a field that cannot be read ends the walk', () => {
  const gateways = new BlockList();
  gateways.addSubnet('192.0.2.0', 24, 'ipv4');
  const top = 'Received: from gw.contoso.com (gw.contoso.com [192.0.2.10]) by mx1.contoso.com with ESMTP id 1; Mon, 23 Nov 2026 09:20:12 +0000\r\n';
  // What the client may write below the gateway's own field: a hop from fabrikam.example's SPF-listed server.
  const forged = 'Received: from mx.fabrikam.example (mx.fabrikam.example [198.51.100.25]) by x with ESMTP id 2; Mon, 23 Nov 2026 09:20:10 +0000\r\n';
  const hop = (fields: string, ingress?: { ip: string }) =>
    firstUntrustedHop({ raw: `${fields}From: alice@fabrikam.example\r\n\r\nhi\r\n`, mailFrom: 'alice@fabrikam.example', rcptTo: ['bob@northwind.example'], ...(ingress === undefined ? {} : { ingress }) }, gateways);

  it('the gateway\'s field names the client: that is the hop, whatever lies below it', () => {
    const gatewayField = 'Received: from attacker.example (unknown [203.0.113.66]) by gw.contoso.com (Postfix) with ESMTP id 3; Mon, 23 Nov 2026 09:20:11 +0000\r\n';
    assert.deepEqual(hop(top + gatewayField + forged, { ip: GATEWAY }), { source: 1, ip: '203.0.113.66', helo: 'attacker.example' });
  });
  it('an Exim gateway\'s field: the connecting address, not the HELO literal the client chose', () => {
    const exim = 'Received: from [203.0.113.66] (helo=[198.51.100.25]) by gw.contoso.com with esmtp (Exim 4.96) id 1abc; Mon, 23 Nov 2026 09:20:11 +0000\r\n';
    assert.equal(hop(top + exim, { ip: GATEWAY }).ip, '203.0.113.66');
  });
  it('a field whose address cannot be read ends the walk with no address: the forged field below is never reached', () => {
    const unreadable = 'Received: from attacker.example (client said so) by gw.contoso.com with SMTP; Mon, 23 Nov 2026 09:20:11 +0000\r\n';
    assert.deepEqual(hop(top + unreadable + forged, { ip: GATEWAY }), { source: 1, helo: 'attacker.example' });
    const noFrom = 'Received: by gw.contoso.com with LMTP id 9; Mon, 23 Nov 2026 09:20:11 +0000\r\n';
    assert.deepEqual(hop(top + noFrom + forged, { ip: GATEWAY }), { source: 1 });
  });
  it('a field of comments only (qmail\'s "invoked from network") records no hop: the walk goes on to the gateway\'s record', () => {
    const qmail = 'Received: (qmail 4660 invoked from network); 23 Nov 2026 09:20:11 -0000\r\nReceived: from attacker.example (HELO mx.fabrikam.example) (203.0.113.66)\r\n\tby gw.contoso.com with SMTP; 23 Nov 2026 09:20:11 -0000\r\n';
    assert.deepEqual(hop(top + qmail + forged, { ip: GATEWAY }), { source: 2, ip: '203.0.113.66', helo: 'attacker.example' });
  });
  it('without the connection\'s address the Received fields are not read at all', () => {
    assert.deepEqual(hop(forged), { source: 'connection' });
  });
  it('a connection from outside the gateways is the hop', () => {
    assert.deepEqual(hop(top + forged, { ip: '203.0.113.66' }), { source: 'connection', ip: '203.0.113.66' });
  });
});

describe('the ARC sealer and the identity an ARC-Authentication-Results vouches for', () => {
  // A case of ValiMail's ARC validation suite (test/fixtures/conformance/arc): a valid chain whose
  // ARC-Seal is by example2.org and whose ARC-Message-Signature is by example.org; its AAR
  // records "spf=pass smtp.mfrom=jqd@d1.example" and "dkim=pass header.i=@d1.example".
  const suite = JSON.parse(readFileSync(new URL('../fixtures/conformance/arc/arc-draft-validation-tests.json', import.meta.url), 'utf8')) as {
    tests: Record<string, { message: string }>;
    'txt-records': Record<string, string>;
  }[];
  const scenario = suite.find((doc) => doc.tests.ams_as_diff_s_d !== undefined)!;
  const message = scenario.tests.ams_as_diff_s_d!.message.replace(/\r?\n/g, '\r\n');
  const zone = Object.fromEntries(Object.entries(scenario['txt-records']).map(([name, txt]) => [name, { TXT: [txt] }]));

  function decideFor(mailFrom: string, trustedArcSealers: string[]) {
    return decidePool(
      { mailFrom, rcptTo: ['lee@northwind.example'], headers: message, ingress: { ip: '203.0.113.50', helo: 'lists.example.org' } },
      {
        policy: { acceptedDomains: ['contoso.com'], relay: { trustedArcSealers } },
        providers: { authenticator: createMailauthAuthenticator({ resolver: createStaticResolver(zone), mta: 'mx1.contoso.com' }) },
        now: new Date('2018-11-09T00:00:00Z'),
      },
    );
  }

  it("the sealer is the newest ARC-Seal's d=, not the ARC-Message-Signature's (RFC 8617 §5.1.1)", async () => {
    const bySealer = await decideFor('jqd@d1.example', ['example2.org']);
    assert.deepEqual(bySealer.reasons.map((r) => r.code), ['arc-pass', 'srs-skipped']);
    const verdict = bySealer.verdicts.authentication;
    assert.ok(verdict.state === 'provided');
    assert.equal(verdict.value.arc?.result, 'pass');
    assert.equal(verdict.value.arc?.sealer, 'example2.org');
    const byMessageSigner = await decideFor('jqd@d1.example', ['example.org']);
    assert.deepEqual(byMessageSigner.reasons.map((r) => r.code), ['relay-unverified'], 'the message signature names no sealer');
  });

  it('an AAR SPF pass written with smtp.mfrom vouches for that domain only, not for any sender', async () => {
    const trusted = await decideFor('jqd@d1.example', ['example2.org']);
    const verdict = trusted.verdicts.authentication;
    assert.ok(verdict.state === 'provided');
    assert.deepEqual(verdict.value.arc?.spf, { result: 'pass', domain: 'd1.example' });
    const stranger = await decideFor('alice@fabrikam.example', ['example2.org']);
    assert.deepEqual(stranger.reasons.map((r) => r.code), ['relay-unverified']);
  });
});

describe('verdictFromMailauth: the identity rule on mailauth results', () => {
  const hop = { source: 'connection' } as const;
  /** An ARC result as mailauth's arc() gives it: the chain, with each field as written, is not enumerable. */
  function arcWith(aar: string | undefined) {
    const arc = { status: { result: 'pass' }, authenticationResults: { spf: { result: 'pass', smtp: { mailfrom: 'alice@fabrikam.example' } } } };
    const set = { 'arc-seal': { parsed: { d: { value: 'lists.example' } } }, ...(aar === undefined ? {} : { 'arc-authentication-results': { original: Buffer.from(`ARC-Authentication-Results: ${aar}\r\n`) } }) };
    Object.defineProperty(arc, 'chain', { value: [set], enumerable: false });
    return arc;
  }
  it("the AAR's results come from the field as written; without it (mailauth's parse only) the sealer vouches for nothing", () => {
    assert.deepEqual(verdictFromMailauth({ arc: arcWith(undefined) }, hop).arc, { result: 'pass', sealer: 'lists.example' });
    assert.deepEqual(verdictFromMailauth({ arc: arcWith('i=1; lists.example; spf=pass') }, hop).arc, { result: 'pass', sealer: 'lists.example' }, 'an SPF result naming no identity');
  });
  it('takes smtp.mailfrom before smtp.mfrom, and smtp.helo for a null sender (marked as the HELO identity)', () => {
    const aar = (results: string) => verdictFromMailauth({ arc: arcWith(`i=1; lists.example; ${results}`) }, hop).arc?.spf;
    assert.deepEqual(aar('spf=pass smtp.mailfrom=a@one.example smtp.mfrom=b@two.example'), { result: 'pass', domain: 'one.example' });
    assert.deepEqual(aar('spf=pass smtp.mfrom=b@two.example'), { result: 'pass', domain: 'two.example' });
    assert.deepEqual(aar('spf=pass smtp.mailfrom="" smtp.helo=mx.three.example'), { result: 'pass', domain: 'mx.three.example', identity: 'helo' });
    assert.equal(aar('spf=pass smtp.mailfrom=nobody@'), undefined);
    assert.deepEqual(aar('spf=pass smtp.helo=mx.three.example; spf=softfail smtp.mailfrom=four.example'), { result: 'softfail', domain: 'four.example' });
  });
  it("an AAR whose own instance is not the newest set's is not taken", () => {
    assert.deepEqual(verdictFromMailauth({ arc: arcWith('i=2; lists.example; spf=pass smtp.mailfrom=fabrikam.example') }, hop).arc, { result: 'pass', sealer: 'lists.example' });
    assert.deepEqual(verdictFromMailauth({ arc: arcWith('i=1; lists.example; spf=pass smtp.mailfrom=fabrikam.example') }, hop).arc?.spf, { result: 'pass', domain: 'fabrikam.example' });
  });
  it("mailauth's SPF result for a null sender is the HELO identity's", () => {
    const result = { spf: { status: { result: 'pass' }, domain: 'mx.three.example' } };
    assert.deepEqual(verdictFromMailauth(result, hop, '').spf, { result: 'pass', domain: 'mx.three.example', identity: 'helo' });
    assert.deepEqual(verdictFromMailauth(result, hop, '<>').spf, { result: 'pass', domain: 'mx.three.example', identity: 'helo' });
    assert.deepEqual(verdictFromMailauth(result, hop, 'a@mx.three.example').spf, { result: 'pass', domain: 'mx.three.example' });
  });
});

describe('the clock is an input: mailauth judges signature times at the decision\'s now', () => {
  // A signature made on 2 March 2011 that expired a day later (x=): whether it passes depends on
  // the injected clock only, never on today's date.
  const signed = new Date(Date.UTC(2011, 2, 2, 9, 0, 0));
  const key = rsaKey();
  const zone = { 'k1._domainkey.fabrikam.example': { TXT: [key.record] } };

  async function signedWithExpiry(): Promise<string> {
    const { signatures, errors } = await dkimSign(MESSAGE, {
      canonicalization: 'relaxed/relaxed',
      signTime: signed,
      expires: new Date(signed.getTime() + 86_400_000),
      signatureData: [{ signingDomain: 'fabrikam.example', selector: 'k1', privateKey: key.privateKey }],
    } as unknown as Parameters<typeof dkimSign>[1]);
    assert.deepEqual(errors, []);
    return signatures + MESSAGE;
  }

  async function decideAt(now: Date, raw: string) {
    return decidePool(
      { mailFrom: 'alice@fabrikam.example', rcptTo: ['lee@northwind.example'], headers: raw, ingress: { ip: STRANGER, helo: 'relay.example' } },
      {
        policy: { acceptedDomains: ['contoso.com'] },
        providers: { authenticator: createMailauthAuthenticator({ resolver: createStaticResolver(zone), mta: 'mx1.contoso.com' }) },
        now,
      },
    );
  }

  it('a DKIM signature inside its x= window at now passes; the same message a day after x= does not', async () => {
    const raw = await signedWithExpiry();
    const within = await decideAt(new Date(signed.getTime() + 3_600_000), raw);
    assert.deepEqual(within.reasons.map((r) => r.code), ['dkim-pass', 'srs-skipped']);
    const after = await decideAt(new Date(signed.getTime() + 2 * 86_400_000), raw);
    assert.deepEqual(after.reasons.map((r) => r.code), ['relay-unverified']);
    const verdict = after.verdicts.authentication;
    assert.ok(verdict.state === 'provided');
    assert.notEqual(verdict.value.dkim?.[0]?.result, 'pass');
  });

  it('the same inputs give the same decision, whatever the wall clock says', async () => {
    const raw = await signedWithExpiry();
    const now = new Date(signed.getTime() + 3_600_000);
    const first = await decideAt(now, raw);
    const second = await decideAt(now, raw);
    assert.deepEqual(first, second);
  });
});

describe('the Received parser takes linear time (doubling series)', () => {
  const families: [what: string, base: number, input: (size: number) => string][] = [
    ['spaces after "from"', 4096, (n) => `from${' '.repeat(n)}`],
    ['"from" repeated', 1024, (n) => ' from'.repeat(n)],
    ['an unclosed TCP-info comment', 4096, (n) => `from client (${'('.repeat(n)}`],
    ['brackets without an address', 2048, (n) => `from client (${'[1'.repeat(n)})`],
    ['an overlong address literal', 4096, (n) => `from client (rdns [${'1'.repeat(n)})`],
    ['a long HELO name', 4096, (n) => `from ${'a'.repeat(n)} by mx1`],
  ];
  for (const [what, base, input] of families) {
    it(`receivedFrom: ${what}`, () => {
      assertLinear(what, base, input, (value) => receivedFrom(value as string));
    });
  }

  it('firstUntrustedHop: a chain of Received fields all from trusted gateways', () => {
    const gateways = new BlockList();
    gateways.addSubnet('192.0.2.0', 24, 'ipv4');
    const hop = 'Received: from gw.contoso.com (gw.contoso.com [192.0.2.10])\r\n\tby mx1.contoso.com with ESMTPS id x1; Mon, 23 Nov 2026 09:20:12 +0000\r\n';
    assertLinear(
      'Received fields',
      32,
      (n) => ({ raw: `${hop.repeat(n)}From: a@b.example\r\n\r\n`, mailFrom: 'a@b.example', rcptTo: ['c@d.example'], ingress: { ip: '192.0.2.10' } }),
      (message) => firstUntrustedHop(message as ProviderMessage, gateways),
    );
  });
});
