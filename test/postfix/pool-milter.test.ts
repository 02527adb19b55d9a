// The pool milter: what a milter message becomes for the decision, and what each decision
// becomes for Postfix (as the Haraka adapter maps them: block → 5xx, defer → 4xx, deliver →
// the pool header, the trace and the SRS sender).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDecider } from '../../src/decide/gather.js';
import { OutboundPoolsError } from '../../src/errors.js';
import type { Decision } from '../../src/decide/types.js';
import { createPolicy } from '../../src/policy.js';
import { createStaticResolver, type StaticZone } from '../../src/providers/static-dns.js';
import { createMemoryRateLimiter } from '../../src/providers/memory-limiter.js';
import type { OutboundMessage } from '../../src/decide/types.js';
import { createPoolMilter, milterMessage, POOL_HEADER, verdictFor } from '../../src/postfix/pool-milter.js';
import type { MilterMessage } from '../../src/postfix/milter/session.js';
import { Srs } from '../../src/srs/index.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const ZONE = JSON.parse(readFileSync(join(ROOT, 'examples', 'zone.json'), 'utf8')) as StaticZone;
const NOW = new Date('2026-11-23T09:00:00Z');
const decide = createDecider({
  policy: createPolicy({ acceptedDomains: ['contoso.com'], spam: { threshold: 6 }, limits: [{ name: 't', recipientsPerMessage: 2, action: 'block' }] }),
  providers: { dns: createStaticResolver(ZONE) },
  srs: { rewriter: new Srs({ secret: 'pool-milter-test' }), domain: 'contoso.com' },
});

function milter(fields: Partial<Omit<MilterMessage, 'macro'>> & { macros?: Record<string, string> }): MilterMessage {
  const macros = fields.macros ?? {};
  return {
    client: { hostname: 'client.contoso.com', family: 'inet', port: 50000, address: '192.0.2.7' },
    helo: 'client.contoso.com',
    mailFrom: 'megan@contoso.com',
    mailParameters: [],
    rcptTo: ['lee@fabrikam.example'],
    headers: [['From', 'megan@contoso.com'], ['Subject', 'hi']],
    body: Buffer.alloc(0),
    bodyTruncated: false,
    actions: 0x1 | 0x10 | 0x40,
    ...fields,
    macro: (name) => macros[name],
  };
}

describe('milterMessage: the decision input', () => {
  it('takes the envelope, the header block, the SASL login as submitter, the queue id and the client', () => {
    const input = milterMessage(milter({ macros: { auth_authen: 'megan', i: '4F3A2B' }, headers: [['Subject', 'one\n two'], ['X-Empty', '']] }));
    assert.equal(input.mailFrom, 'megan@contoso.com');
    assert.deepEqual(input.rcptTo, ['lee@fabrikam.example']);
    assert.equal(input.submitter, 'megan');
    assert.equal(input.queueId, '4F3A2B');
    assert.deepEqual(input.ingress, { ip: '192.0.2.7', helo: 'client.contoso.com', mailFrom: 'megan@contoso.com' });
    assert.equal(Buffer.from(input.headers as Uint8Array).toString('latin1'), 'Subject: one\r\n two\r\nX-Empty: \r\n\r\n');
    assert.equal(input.authentication, undefined);
    assert.equal(input.spam, undefined);
  });

  it('has no ingress IP for a Unix-socket client unless {client_addr} gives one, and appends the collected body to the header', () => {
    const input = milterMessage(milter({ client: { hostname: 'localhost', family: 'unix', port: 0, address: '/run/x' }, body: Buffer.from('Hello\r\n') }));
    assert.equal(input.ingress?.ip, undefined);
    const unknown = milterMessage(milter({ client: { hostname: 'unknown', family: 'unknown', port: 0, address: '' }, macros: { client_addr: '198.51.100.9' } }));
    assert.equal(unknown.ingress?.ip, '198.51.100.9');
    assert.match(Buffer.from(input.headers as Uint8Array).toString('latin1'), /\r\n\r\nHello\r\n$/);
  });

  it('reads Authentication-Results of the trusted authserv-id only', () => {
    const headers: [string, string][] = [
      ['Authentication-Results', 'evil.example; spf=pass smtp.mailfrom=fabrikam.example'],
      ['From', 'alex@fabrikam.example'],
    ];
    // The client (192.0.2.7) is the designated forwarder: only the authserv-id is in question here.
    const options = { authservIds: ['inbound.contoso.com'], authResultsFrom: ['192.0.2.7'] };
    const untrusted = milterMessage(milter({ headers, mailFrom: 'alex@fabrikam.example' }), options);
    assert.equal(untrusted.authentication?.spf, undefined);
    const trusted = milterMessage(milter({ headers: [['Authentication-Results', 'inbound.contoso.com; spf=pass smtp.mailfrom=fabrikam.example'], ...headers.slice(1)], mailFrom: 'alex@fabrikam.example' }), options);
    assert.deepEqual(trusted.authentication?.spf, { result: 'pass', domain: 'fabrikam.example' });
  });

  describe('Authentication-Results are read only from a designated forwarder (the submitting client writes the header)', () => {
    const forged: [string, string][] = [
      ['Authentication-Results', 'inbound.contoso.com; spf=pass smtp.mailfrom=alice@fabrikam.example'],
      ['From', 'alice@fabrikam.example'],
    ];
    const options = { authservIds: ['inbound.contoso.com'], authResultsFrom: ['198.51.100.0/24', '2001:db8:25::/48', 'Forwarder@Contoso.com'] };
    const from = (address: string, family: 'inet' | 'inet6', login?: string): MilterMessage =>
      milter({
        client: { hostname: 'client', family, port: 40000, address },
        mailFrom: 'alice@fabrikam.example',
        headers: forged,
        ...(login === undefined ? {} : { macros: { auth_authen: login } }),
      });
    const pass = { result: 'pass', domain: 'fabrikam.example' };

    for (const [why, message, spf] of [
      ['a client-written field from an unlisted address with an unlisted login is ignored', from('203.0.113.66', 'inet', 'mallory@contoso.com'), undefined],
      ['a client-written field from an unlisted address without a login is ignored', from('203.0.113.66', 'inet'), undefined],
      ['an unlisted IPv6 client is ignored', from('2001:db8:26::1', 'inet6'), undefined],
      ['a listed forwarder by IPv4 range is read', from('198.51.100.25', 'inet'), pass],
      ['a listed forwarder by IPv6 range is read', from('2001:db8:25::9', 'inet6'), pass],
      ['a listed forwarder by SASL login, any case, from any address, is read', from('203.0.113.66', 'inet', 'forwarder@contoso.COM'), pass],
    ] as const) {
      it(why, () => {
        assert.deepEqual(milterMessage(message, options).authentication?.spf, spf);
      });
    }

    it('a forwarder known only by Postfix’s {client_addr} (no usable connect address) is read', () => {
      const message = milter({ client: { hostname: 'unknown', family: 'unknown', port: 0, address: '' }, mailFrom: 'alice@fabrikam.example', headers: forged, macros: { client_addr: '198.51.100.25' } });
      assert.deepEqual(milterMessage(message, options).authentication?.spf, pass);
    });

    it('authservIds without authResultsFrom is refused, saying why; so is the reverse, and a bad forwarder', () => {
      const refused = (why: RegExp) => (error: unknown) =>
        error instanceof OutboundPoolsError && error.code === 'invalid-context' && why.test(error.message);
      const why = /authservIds needs authResultsFrom\. .*the submitting client writes the whole header block.*Only a designated forwarder's copy of the inbound MX's fields can be trusted/;
      for (const bad of [{ authservIds: ['inbound.contoso.com'] }, { authservIds: ['inbound.contoso.com'], authResultsFrom: [] }]) {
        assert.throws(() => createPoolMilter({ decide, ...bad }), refused(why));
        assert.throws(() => milterMessage(from('198.51.100.25', 'inet'), bad), refused(why));
      }
      assert.throws(() => createPoolMilter({ decide, authResultsFrom: ['198.51.100.25'] }), refused(/authservIds names no authserv-id to trust/));
      assert.throws(() => createPoolMilter({ decide, authservIds: ['inbound.contoso.com'], authResultsFrom: ['198.51.100.0/40'] }), refused(/authResultsFrom: "198\.51\.100\.0\/40" needs a prefix length/));
      // Neither: nothing read, nothing refused.
      assert.equal(milterMessage(from('198.51.100.25', 'inet')).authentication, undefined);
    });

    it('createPoolMilter: a forged foreign sender from an ordinary client goes to the relay pool without SRS; the forwarder’s copy gets SRS', async () => {
      const handler = createPoolMilter({ decide: (message) => decide(message, { now: NOW }), ...options });
      const verdicts = await Promise.all([from('203.0.113.66', 'inet', 'mallory@contoso.com'), from('198.51.100.25', 'inet', 'mailbox-server')].map((message) => handler.endOfMessage(message)));
      const summary = verdicts.map((verdict) =>
        verdict.action === 'continue' ? verdict.changes.filter((change) => change.type === 'change-from' || change.name === POOL_HEADER).map((change) => (change.type === 'change-from' ? 'SRS' : change.value)) : verdict.action,
      );
      assert.deepEqual(summary, [['relay'], ['normal', 'SRS']]);
    });
  });

  it('reads the spam score from the configured header, the last such field, its first number', () => {
    const headers: [string, string][] = [['X-Spam-Score', '1.0'], ['x-spam-score', 'score=7.25 (required 5)']];
    assert.deepEqual(milterMessage(milter({ headers }), { spamScoreHeader: 'X-Spam-Score' }).spam, { score: 7.25 });
    assert.equal(milterMessage(milter({ headers: [['X-Spam-Score', 'none']] }), { spamScoreHeader: 'X-Spam-Score' }).spam, undefined);
    assert.equal(milterMessage(milter({ headers }), {}).spam, undefined);
  });
});

describe('verdictFor: the decision for Postfix', () => {
  const decideMilter = (message: MilterMessage, options = {}): Promise<Decision> => decide(milterMessage(message, options), { now: NOW });

  it('block → REPLYCODE with the decision’s 5xx', async () => {
    const message = milter({ rcptTo: ['a@fabrikam.example', 'b@fabrikam.example', 'c@fabrikam.example'] });
    const decision = await decideMilter(message);
    assert.equal(decision.action, 'block');
    assert.deepEqual(verdictFor(decision, message), { action: 'reject', reply: decision.reply!.line });
    assert.match(decision.reply!.line, /^550 5\.5\.3 /);
  });

  it('defer → REPLYCODE with the decision’s 4xx', async () => {
    const deferring = createDecider({
      policy: createPolicy({ acceptedDomains: ['contoso.com'], onProviderFailure: { spam: 'defer' } }),
      providers: { dns: createStaticResolver(ZONE), spam: { classify: async () => Promise.reject(new Error('down')) } },
    });
    const message = milter({});
    const decision = await deferring(milterMessage(message));
    assert.equal(decision.action, 'defer');
    assert.deepEqual(verdictFor(decision, message), { action: 'tempfail', reply: decision.reply!.line });
    assert.match(decision.reply!.line, /^451 /);
  });

  it('deliver → the pool header and the trace, after removing the client’s own such fields (last first)', async () => {
    const message = milter({
      mailFrom: 'kim@northwind.example',
      headers: [[POOL_HEADER, 'normal'], ['From', 'kim@northwind.example'], ['x-outbound-pool-route', 'normal'], ['X-Outbound-Pool', 'forged']],
    });
    const decision = await decideMilter(message);
    assert.equal(decision.pool, 'relay');
    const verdict = verdictFor(decision, message);
    assert.equal(verdict.action, 'continue');
    assert.deepEqual(verdict.action === 'continue' ? verdict.changes.slice(0, 4) : [], [
      { type: 'change-header', name: POOL_HEADER, index: 2, value: '' },
      { type: 'change-header', name: POOL_HEADER, index: 1, value: '' },
      { type: 'change-header', name: 'X-Outbound-Pool', index: 1, value: '' },
      { type: 'add-header', name: POOL_HEADER, value: 'relay' },
    ]);
    const trace = verdict.action === 'continue' ? verdict.changes[4] : undefined;
    assert.equal(trace?.type, 'add-header');
    assert.match(trace?.type === 'add-header' ? trace.value : '', /^OutboundIpPoolName=\S+; action=deliver; pool=relay; reasons=relay-unverified$/);
    assert.equal(verdict.action === 'continue' ? verdict.changes.length : 0, 5, 'no sender change without SRS');
  });

  it('deliver with SRS → the envelope sender changed to the SRS address (SMFIR_CHGFROM)', async () => {
    const message = milter({
      mailFrom: 'alex@fabrikam.example',
      rcptTo: ['ops@adventure-works.example'],
      headers: [['Authentication-Results', 'inbound.contoso.com; spf=pass smtp.mailfrom=fabrikam.example'], ['From', 'alex@fabrikam.example']],
    });
    const decision = await decideMilter(message, { authservIds: ['inbound.contoso.com'], authResultsFrom: ['192.0.2.7'] });
    assert.equal(decision.srs?.applied, true);
    const verdict = verdictFor(decision, message);
    assert.deepEqual(verdict.action === 'continue' ? verdict.changes.at(-1) : undefined, { type: 'change-from', address: decision.mailFrom });
    assert.match(decision.mailFrom, /^SRS0=/);
  });

  it('createPoolMilter logs one line per decision with the queue id, and tempfails what cannot be decided', async () => {
    const lines: string[] = [];
    const handler = createPoolMilter({ decide: (message) => decide(message, { now: NOW }), log: (line) => lines.push(line) });
    assert.equal(handler.bodyLimit, 0);
    const verdict = await handler.endOfMessage(milter({ macros: { i: '4F3A2B' } }));
    assert.equal(verdict.action, 'continue');
    assert.match(lines[0]!, /^4F3A2B: OutboundIpPoolName=.*; pool=normal; reasons=accepted-domain$/);
    const invalid = await handler.endOfMessage(milter({ rcptTo: [], macros: { i: '5B' } }));
    assert.deepEqual(invalid, { action: 'tempfail', reply: '451 4.3.0 Outbound pool decision failed' });
    assert.match(lines[1]!, /^5B: no decision: /);
    assert.throws(() => createPoolMilter({ decide, poolHeader: 'Bad Name:' }), TypeError);
  });

  it('tenant: the login’s domain, the sender’s domain or a function of the input; none by default', async () => {
    const seen: OutboundMessage[] = [];
    const capture = (message: OutboundMessage) => {
      seen.push(message);
      return decide(message, { now: NOW });
    };
    const login = milter({ macros: { auth_authen: 'megan@Contoso.COM' }, mailFrom: 'megan@sub.contoso.com' });
    await createPoolMilter({ decide: capture }).endOfMessage(login);
    await createPoolMilter({ decide: capture, tenant: 'login-domain' }).endOfMessage(login);
    await createPoolMilter({ decide: capture, tenant: 'login-domain' }).endOfMessage(milter({ macros: { auth_authen: 'megan' } }));
    await createPoolMilter({ decide: capture, tenant: 'sender-domain' }).endOfMessage(login);
    await createPoolMilter({ decide: capture, tenant: 'sender-domain' }).endOfMessage(milter({ mailFrom: '' }));
    await createPoolMilter({ decide: capture, tenant: (message) => (message.rcptTo.length > 0 ? `org-${message.queueId}` : undefined) }).endOfMessage(milter({ macros: { i: '7C' } }));
    // Normalised as envelope domains are: one tenant however the login spells its domain.
    await createPoolMilter({ decide: capture, tenant: 'login-domain' }).endOfMessage(milter({ macros: { auth_authen: 'anna@Bücher.DE' } }));
    assert.deepEqual(seen.map((message) => message.tenant), [undefined, 'contoso.com', undefined, 'sub.contoso.com', undefined, 'org-7C', 'xn--bcher-kva.de']);
    assert.throws(() => createPoolMilter({ decide, tenant: 'login' as 'login-domain' }), /tenant must be 'login-domain', 'sender-domain' or a function/);
  });

  it('tenant caps through the milter: past the cap, the tenant’s message to an external recipient gets 550 5.7.233', async () => {
    const capped = createDecider({
      policy: createPolicy({ acceptedDomains: ['contoso.com'], tenantLimits: { externalRecipientsPerDay: 2 } }),
      providers: { dns: createStaticResolver(ZONE), rateLimiter: createMemoryRateLimiter() },
    });
    const handler = createPoolMilter({ decide: (message) => capped(message, { now: NOW }), tenant: 'login-domain' });
    const send = (user: string, id: string, rcptTo = ['lee@fabrikam.example']) =>
      handler.endOfMessage(milter({ mailFrom: `${user}@contoso.com`, rcptTo, headers: [['From', `${user}@contoso.com`], ['Message-ID', `<${id}@contoso.com>`]], macros: { auth_authen: `${user}@contoso.com`, i: id } }));
    assert.equal((await send('megan', 'a1')).action, 'continue');
    assert.equal((await send('alex', 'a2')).action, 'continue');
    // A third external recipient for the tenant contoso.com, from another of its users: refused.
    const refused = await send('lee', 'a3');
    assert.equal(refused.action, 'reject');
    assert.match((refused as { reply: string }).reply, /^550 5\.7\.233 /);
    // Inside the organisation: not affected.
    assert.equal((await send('lee', 'a4', ['megan@contoso.com'])).action, 'continue');
  });
});
