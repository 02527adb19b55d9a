// What decidePool hands to the providers, and what it does not ask for.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decidePool } from '../../src/decide/gather.js';
import { createMemoryRateLimiter } from '../../src/providers/memory-limiter.js';
import { OutboundPoolsError } from '../../src/errors.js';
import type { ConsumeRequest, ConsumeResult, DnsResolver, ProviderMessage, RateLimiter } from '../../src/providers/types.js';
import type { DecideContext, OutboundMessage } from '../../src/decide/types.js';
import type { PolicyInput } from '../../src/policy.js';

it('the spam classifier and the authenticator get the envelope, submitter, queue id, ingress, raw message and the decision\'s clock', async () => {
  const seen: ProviderMessage[] = [];
  const headers = 'From: alice@fabrikam.example\r\n\r\nbody\r\n';
  const now = new Date(Date.UTC(2026, 10, 23, 9, 20, 0));
  await decidePool(
    { mailFrom: 'alice@fabrikam.example', rcptTo: ['lee@northwind.example'], headers, submitter: 'user-42', queueId: '4Xk9Lz1abc', ingress: { ip: '198.51.100.25', helo: 'mx.fabrikam.example' } },
    {
      providers: {
        spam: { classify: async (message) => (seen.push(message), { score: 0 }) },
        authenticator: { authenticate: async (message) => (seen.push(message), {}) },
      },
      now,
    },
  );
  assert.equal(seen.length, 2);
  for (const message of seen) {
    assert.deepEqual(message, {
      now,
      raw: headers,
      mailFrom: 'alice@fabrikam.example',
      rcptTo: ['lee@northwind.example'],
      submitter: 'user-42',
      queueId: '4Xk9Lz1abc',
      ingress: { ip: '198.51.100.25', helo: 'mx.fabrikam.example' },
    });
  }
});

it('an accepted-domain sender is not sent to the authenticator: rules 7 and 8 do not apply to it', async () => {
  let asked = false;
  const decision = await decidePool(
    { mailFrom: 'megan@contoso.com', rcptTo: ['lee@northwind.example'] },
    { policy: { acceptedDomains: ['contoso.com'] }, providers: { authenticator: { authenticate: async () => ((asked = true), {}) } } },
  );
  assert.equal(asked, false);
  assert.deepEqual(decision.verdicts.authentication, { state: 'absent', why: 'not needed: only forwards from outside the accepted domains are checked' });
});

it('providers may answer synchronously (in-memory ones): same decision as with promises, faults still caught', async () => {
  const { createStaticResolver } = await import('../../src/providers/static-dns.js');
  const zone = { 'fabrikam.example': { MX: [{ exchange: 'mx.fabrikam.example', priority: 10 }] } };
  const message = { mailFrom: 'alice@fabrikam.example', rcptTo: ['lee@northwind.example'] };
  const sync = await decidePool(message, {
    providers: {
      dns: createStaticResolver(zone),
      spam: { classify: () => ({ score: 9 }) },
      rateLimiter: { consume: () => ({ restriction: null, breaches: [], counted: true }), restriction: () => null },
      authenticator: {
        authenticate: () => {
          throw new Error('boom');
        },
      },
    },
    policy: { spam: { threshold: 5 } },
  });
  const viaPromises = await decidePool(message, {
    providers: {
      dns: async (name, type) => createStaticResolver(zone)(name, type),
      spam: { classify: async () => ({ score: 9 }) },
      rateLimiter: { consume: async () => ({ restriction: null, breaches: [], counted: true }), restriction: async () => null },
      authenticator: {
        authenticate: async () => {
          throw new Error('boom');
        },
      },
    },
    policy: { spam: { threshold: 5 } },
  });
  assert.deepEqual(sync, viaPromises);
  assert.deepEqual(sync.reasons.map((r) => r.code), ['spam']);
  assert.deepEqual(sync.verdicts.senderDomain, { state: 'provided', value: { domain: 'fabrikam.example', receivesMail: true, basis: 'mx' } });
  assert.deepEqual(sync.verdicts.authentication, { state: 'failed', error: 'boom' });
});

// The identity rule (SPEC §3): a pass vouches only for the identity it names. A precomputed
// verdict is the caller's input like any other: a pass that names no domain verifies nothing.
const FORWARD = { mailFrom: 'alice@fabrikam.example', rcptTo: ['lee@northwind.example'] } as const;
const TRUSTING_LISTS = { acceptedDomains: ['contoso.com'], relay: { trustedArcSealers: ['lists.example'] } };
const identityCases: [name: string, authentication: Record<string, unknown>, codes: string[]][] = [
  ['an SPF pass naming no domain', { spf: { result: 'pass' } }, ['relay-unverified']],
  ['an SPF pass for another domain', { spf: { result: 'pass', domain: 'other.example' } }, ['relay-unverified']],
  ['an SPF pass for the sender domain', { spf: { result: 'pass', domain: 'Fabrikam.Example' } }, ['spf-pass']],
  ['a DKIM pass with an empty domain', { dkim: [{ result: 'pass', domain: '' }] }, ['relay-unverified']],
  ['a DKIM pass for an aligned domain', { dkim: [{ result: 'pass', domain: 'mail.fabrikam.example' }] }, ['dkim-pass']],
  ['a trusted ARC pass whose SPF pass names no domain', { arc: { result: 'pass', sealer: 'lists.example', spf: { result: 'pass' } } }, ['relay-unverified']],
  ['a trusted ARC pass whose SPF pass names another domain', { arc: { result: 'pass', sealer: 'lists.example', spf: { result: 'pass', domain: 'other.example' } } }, ['relay-unverified']],
  ['a trusted ARC pass whose DKIM pass has an empty domain', { arc: { result: 'pass', sealer: 'lists.example', dkim: [{ result: 'pass', domain: '' }] } }, ['relay-unverified']],
  ['a trusted ARC pass whose SPF pass names the sender domain', { arc: { result: 'pass', sealer: 'lists.example', spf: { result: 'pass', domain: 'fabrikam.example' } } }, ['arc-pass']],
];
for (const [name, authentication, codes] of identityCases) {
  it(`identity rule, precomputed verdict: ${name} → ${codes.join(', ')}`, async () => {
    const decision = await decidePool({ ...FORWARD, authentication }, { policy: TRUSTING_LISTS, now: new Date(0) });
    // srs-skipped: no SRS rewriter was given; only the verification reason matters here.
    assert.deepEqual(
      decision.reasons.map((reason) => reason.code).filter((code) => code !== 'srs-skipped'),
      codes,
    );
  });
}

it('provider deadlines run on a monotonic clock: a wall clock stepped back an hour does not hold a hung provider open', { timeout: 5_000 }, async () => {
  const realNow = Date.now;
  const started = performance.now();
  try {
    const decision = await decidePool(
      { mailFrom: 'alice@fabrikam.example', rcptTo: ['lee@northwind.example'], headers: 'From: alice@fabrikam.example\r\n\r\n' },
      {
        policy: { deadlines: { authenticatorMs: 100, totalMs: 200 } },
        providers: {
          authenticator: {
            authenticate: () => {
              // The wall clock jumps back an hour while the call is out, as NTP or an administrator may do.
              const offset = realNow() - 3_600_000;
              const base = realNow();
              Date.now = () => offset + (realNow() - base);
              return new Promise<never>(() => {});
            },
          },
        },
        now: new Date(0),
      },
    );
    assert.deepEqual(decision.verdicts.authentication, { state: 'failed', error: 'no answer within 100 ms' });
  } finally {
    Date.now = realNow;
  }
  assert.ok(performance.now() - started < 2_000, `decided after ${(performance.now() - started).toFixed(0)} ms`);
});

// SPEC §7, the tenant cap: what the rate limiter is asked for a message with a tenant.
it('message.tenant goes to the rate limiter with the policy’s cap; without tenantLimits the tenant is counted, not capped; without a tenant, no tenant field', async () => {
  const requests: ConsumeRequest[] = [];
  const rateLimiter = { consume: (request: ConsumeRequest) => (requests.push(request), { restriction: null, breaches: [], counted: true }), restriction: () => null };
  const now = new Date(Date.UTC(2026, 10, 23, 9, 20, 0));
  const message = { mailFrom: 'megan@contoso.com', rcptTo: ['lee@northwind.example', 'kim@contoso.com'], headers: 'Message-ID: <t-1@contoso.com>\r\n\r\n', tenant: 'Contoso Ltd' };
  await decidePool(message, { policy: { acceptedDomains: ['contoso.com'], tenantLimits: { externalRecipientsPerDay: 5_000 } }, providers: { rateLimiter }, now });
  await decidePool(message, { policy: { acceptedDomains: ['contoso.com'] }, providers: { rateLimiter }, now });
  const { tenant: _tenant, ...withoutTenant } = message;
  await decidePool(withoutTenant, { policy: { acceptedDomains: ['contoso.com'], tenantLimits: { externalRecipientsPerDay: 5_000 } }, providers: { rateLimiter }, now });
  const base = { key: 'megan@contoso.com', messageId: '<t-1@contoso.com>', internalRecipients: 1, externalRecipients: 1, limits: [], now };
  assert.deepEqual(requests, [
    { ...base, tenant: { key: 'Contoso Ltd', externalRecipientsPerDay: 5_000 } },
    { ...base, tenant: { key: 'Contoso Ltd' } },
    base,
  ]);
});

for (const [what, tenant] of [
  ['a number', 42],
  ['empty', ''],
  ['a name with a control character', 'contoso\r\nx'],
  ['over 512 characters', 't'.repeat(513)],
] as const) {
  it(`message.tenant that is ${what} is refused with invalid-message`, async () => {
    await assert.rejects(
      decidePool({ mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], tenant } as never, { now: new Date(0) }),
      (error: unknown) => error instanceof OutboundPoolsError && error.code === 'invalid-message' && /^tenant must be a non-empty string of at most 512 printable characters/.test(error.message),
    );
  });
}

it('a rate limiter whose reportSpam or refund is not a function is refused with the context, like any malformed provider', async () => {
  for (const optional of ['reportSpam', 'refund', 'refundSync']) {
    await assert.rejects(
      decidePool({ mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'] }, { providers: { rateLimiter: { consume: async () => ({ restriction: null, breaches: [], counted: true }), restriction: async () => null, [optional]: 'yes' } as never } }),
      /providers\.rateLimiter must be an object with consume\(\) and restriction\(\) \(and, optionally, consumeSync\(\) and restrictionSync\(\); reportSpam\(\) and reportSpamSync\(\); refund\(\) and refundSync\(\)\)/,
      optional,
    );
  }
});

it('the sender is keyed in one spelling: a quoted local part that needs no quotes, and a login, are lowercased and canonical', async () => {
  const requests: ConsumeRequest[] = [];
  const rateLimiter = { consume: (request: ConsumeRequest) => (requests.push(request), { restriction: null, breaches: [], counted: true }), restriction: () => null };
  const context = { policy: { acceptedDomains: ['contoso.com'] }, providers: { rateLimiter }, now: new Date(0) };
  for (const mailFrom of ['alice@contoso.com', '"alice"@contoso.com', '"al\\ice"@Contoso.COM', 'ALICE@contoso.com.']) await decidePool({ mailFrom, rcptTo: ['x@northwind.example'] }, context);
  await decidePool({ mailFrom: '"a b"@contoso.com', rcptTo: ['x@northwind.example'] }, context);
  await decidePool({ mailFrom: 'alice@contoso.com', rcptTo: ['x@northwind.example'], submitter: 'Megan' }, context);
  assert.deepEqual(
    requests.map((request) => request.key),
    ['alice@contoso.com', 'alice@contoso.com', 'alice@contoso.com', 'alice@contoso.com', '"a b"@contoso.com', 'megan'],
  );
});

it('a submitter or tenant holding a lone surrogate is refused (it has no UTF-8 form: another key on Redis)', async () => {
  for (const field of ['submitter', 'tenant'] as const) {
    await assert.rejects(
      decidePool({ mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], [field]: 'user\ud800' }, { now: new Date(0) }),
      (error: unknown) => error instanceof OutboundPoolsError && error.code === 'invalid-message' && /lone surrogates/.test(error.message),
    );
  }
});

it('an SRS address at an accepted domain is an external recipient: the reverse map sends it to the original sender', async () => {
  const requests: ConsumeRequest[] = [];
  const rateLimiter = { consume: (request: ConsumeRequest) => (requests.push(request), { restriction: null, breaches: [], counted: true }), restriction: () => null };
  const context = { policy: { acceptedDomains: ['contoso.com'] }, providers: { rateLimiter }, now: new Date(0) };
  for (const rcpt of [
    'SRS0=lUyc=2W=example.net=lee@contoso.com',
    'srs1+AbCd=fabrikam.example==lUyc=2W=example.net=lee@contoso.com',
    '"SRS0=lUyc=2W=example.net=lee"@contoso.com',
    // The SRS address of a sender whose local part needs quotes stays quoted.
    '"SRS0=6IC7=2W=example.net=john doe"@contoso.com',
    'lee@contoso.com',
    '"srs0 is not a tag"@contoso.com',
  ]) {
    await decidePool({ mailFrom: 'megan@contoso.com', rcptTo: [rcpt] }, context);
  }
  assert.deepEqual(
    requests.map((request) => [request.internalRecipients, request.externalRecipients]),
    [[0, 1], [0, 1], [0, 1], [0, 1], [1, 0], [1, 0]],
  );
  const blocked = await decidePool(
    { mailFrom: 'megan@contoso.com', rcptTo: ['SRS0=lUyc=2W=example.net=lee@contoso.com'], autoForwarded: true },
    { policy: { acceptedDomains: ['contoso.com'], autoForwarding: 'off' }, now: new Date(0) },
  );
  assert.equal(blocked.reasons[0]!.code, 'auto-forwarding-blocked');
});

it('a blocked automatic forward (rule 10) is not counted: it neither restricts its sender nor fills the tenant\'s cap', async () => {
  const rateLimiter = createMemoryRateLimiter();
  const policy = { acceptedDomains: ['contoso.com'], autoForwarding: 'off' as const, limits: [{ name: 'tight', messagesPerMinute: 1, action: 'block-user' as const }], tenantLimits: { externalRecipientsPerDay: 1 } };
  const forward = { mailFrom: 'megan@contoso.com', rcptTo: ['lee@northwind.example'], autoForwarded: true, tenant: 'contoso' };
  for (let i = 0; i < 3; i++) {
    const blocked = await decidePool(forward, { policy, providers: { rateLimiter }, now: new Date(i * 1000) });
    assert.equal(blocked.reasons[0]!.code, 'auto-forwarding-blocked');
  }
  const sent = await decidePool({ ...forward, autoForwarded: false }, { policy, providers: { rateLimiter }, now: new Date(3_000) });
  assert.equal(sent.action, 'deliver', JSON.stringify(sent.reasons));
});

// docs/limits.md: "otherwise nothing is counted, so a refused message does not use up the
// sender's allowance" — also when the limiter counted the message and a later rule refused it.
describe('a message the limiter counted and a later rule refused or deferred is refunded', () => {
  // One message a minute per sender, one external recipient a day per tenant: a message that
  // stayed counted would refuse the next ones.
  const LIMITED: PolicyInput = { acceptedDomains: ['contoso.com'], limits: { messagesPerMinute: 1 }, tenantLimits: { externalRecipientsPerDay: 1 } };
  const serverFailure: DnsResolver = () => Promise.reject(Object.assign(new Error('queryMx ESERVFAIL contoso.com'), { code: 'ESERVFAIL' }));
  const first: OutboundMessage = {
    mailFrom: 'megan@contoso.com',
    rcptTo: ['lee@fabrikam.example'],
    tenant: 'contoso',
    headers: 'From: megan@contoso.com\r\nMessage-ID: <first@contoso.com>\r\n\r\n',
  };
  const at = (seconds: number) => new Date(Date.UTC(2026, 10, 23, 9, 0, seconds));

  /** The reviewer's table: how the first message is refused, and the code it is refused with. */
  const refusals: readonly { name: string; policy: PolicyInput; providers: Omit<NonNullable<DecideContext['providers']>, 'rateLimiter'>; message?: Partial<OutboundMessage>; action: 'block' | 'defer'; code: string }[] = [
    { name: 'rule 6 blocks a spam category the policy blocks', policy: { ...LIMITED, spam: { blockCategories: ['malware'] } }, providers: {}, message: { spam: { categories: ['malware'] } }, action: 'block', code: 'spam' },
    { name: "rule 5 defers on a DNS failure (dns.onError: 'defer')", policy: { ...LIMITED, dns: { onError: 'defer' } }, providers: { dns: serverFailure }, action: 'defer', code: 'dns-error' },
    {
      name: "a provider's failure defers (onProviderFailure.spam: 'defer')",
      policy: { ...LIMITED, onProviderFailure: { spam: 'defer' } },
      providers: { spam: { classify: () => Promise.reject(new Error('rspamd is down')) } },
      action: 'defer',
      code: 'provider-failed',
    },
  ];

  for (const { name, policy, providers, message, action, code } of refusals) {
    it(`${name}: the sender's next message and another sender of the tenant are not refused by limits`, async () => {
      const rateLimiter = createMemoryRateLimiter();
      const refused = await decidePool({ ...first, ...message }, { policy, providers: { ...providers, rateLimiter }, now: at(0) });
      assert.deepEqual([refused.action, refused.reasons[0]!.code], [action, code]);
      // Within the same minute: the sender's allowance of one message is still whole…
      const next = await decidePool({ mailFrom: 'megan@contoso.com', rcptTo: ['ops@contoso.com'], tenant: 'contoso' }, { policy: LIMITED, providers: { rateLimiter }, now: at(1) });
      assert.deepEqual([next.action, next.reasons[0]!.code], ['deliver', 'accepted-domain']);
      // …and so is the tenant's external recipient of the day.
      const other = await decidePool({ mailFrom: 'kim@contoso.com', rcptTo: ['lee@fabrikam.example'], tenant: 'contoso' }, { policy: LIMITED, providers: { rateLimiter }, now: at(2) });
      assert.deepEqual([other.action, other.reasons[0]!.code], ['deliver', 'accepted-domain']);
    });
  }

  it('a deferred message sent again counts as a new message, not as a free retry; a delivered one stays counted', async () => {
    const rateLimiter = createMemoryRateLimiter();
    const deferred = await decidePool(first, { policy: { ...LIMITED, dns: { onError: 'defer' } }, providers: { dns: serverFailure, rateLimiter }, now: at(0) });
    assert.equal(deferred.action, 'defer');
    // DNS is back: the same message (same Message-ID) is delivered, and counted this time, not
    // taken for a retry of the deferred one…
    const sent = await decidePool(first, { policy: LIMITED, providers: { rateLimiter }, now: at(1) });
    assert.deepEqual([sent.action, sent.verdicts.limits], ['deliver', { state: 'provided', value: { restriction: null, breaches: [], counted: true } }]);
    // …so its own retry (the MTA lost the connection) is the free one…
    const retried = await decidePool(first, { policy: LIMITED, providers: { rateLimiter }, now: at(2) });
    assert.deepEqual([retried.action, retried.verdicts.limits], ['deliver', { state: 'provided', value: { restriction: null, breaches: [], counted: true, retry: true } }]);
    // …and the sender's next message and the tenant's next external recipient are over the limits.
    const next = await decidePool({ mailFrom: 'megan@contoso.com', rcptTo: ['ops@contoso.com'] }, { policy: LIMITED, providers: { rateLimiter }, now: at(3) });
    assert.equal(next.reasons[0]!.code, 'sending-limit-exceeded');
    const other = await decidePool({ mailFrom: 'kim@contoso.com', rcptTo: ['lee@fabrikam.example'], tenant: 'contoso' }, { policy: LIMITED, providers: { rateLimiter }, now: at(4) });
    assert.equal(other.reasons[0]!.code, 'tenant-limit-exceeded');
  });

  it('a message delivered through the high-risk pool is sent, so it stays counted', async () => {
    const rateLimiter = createMemoryRateLimiter();
    const spam = await decidePool({ ...first, spam: { isSpam: true } }, { policy: LIMITED, providers: { rateLimiter }, now: at(0) });
    assert.deepEqual([spam.action, spam.pool], ['deliver', 'high-risk']);
    const next = await decidePool({ mailFrom: 'megan@contoso.com', rcptTo: ['ops@contoso.com'] }, { policy: LIMITED, providers: { rateLimiter }, now: at(1) });
    assert.equal(next.reasons[0]!.code, 'sending-limit-exceeded');
    const other = await decidePool({ mailFrom: 'kim@contoso.com', rcptTo: ['lee@fabrikam.example'], tenant: 'contoso' }, { policy: LIMITED, providers: { rateLimiter }, now: at(2) });
    assert.equal(other.reasons[0]!.code, 'tenant-limit-exceeded');
  });

  /** A limiter that answers `answer` and records the refunds it is asked for. */
  const recording = (answer: ConsumeResult) => {
    const consumed: ConsumeRequest[] = [];
    const refunded: ConsumeRequest[] = [];
    const rateLimiter: RateLimiter = {
      consume: (request) => (consumed.push(request), answer),
      restriction: () => null,
      refund: (request) => {
        refunded.push(request);
      },
    };
    return { rateLimiter, consumed, refunded };
  };
  const blockedSpam: PolicyInput = { ...LIMITED, spam: { blockCategories: ['malware'] } };
  const malware: OutboundMessage = { ...first, spam: { categories: ['malware'] } };

  it('the refund gets the very request consume was given; a retry, a message not counted and a delivered one are not refunded', async () => {
    const counted = recording({ restriction: null, breaches: [], counted: true });
    await decidePool(malware, { policy: blockedSpam, providers: { rateLimiter: counted.rateLimiter }, now: at(0) });
    assert.equal(counted.refunded.length, 1);
    assert.equal(counted.refunded[0], counted.consumed[0]);

    const cases: readonly [string, ConsumeResult, OutboundMessage][] = [
      ['a retry (counted before, nothing counted now)', { restriction: null, breaches: [], counted: true, retry: true }, malware],
      ['refused by the limits (rule 3)', { restriction: null, breaches: [{ window: 'messagesPerMinute', limit: 1, used: 1, action: 'block', set: 'limits[0]' }], counted: false }, malware],
      ['a restricted sender (rule 1)', { restriction: { until: null }, breaches: [], counted: false }, malware],
      ['delivered', { restriction: null, breaches: [], counted: true }, first],
    ];
    for (const [what, answer, message] of cases) {
      const limiter = recording(answer);
      await decidePool(message, { policy: blockedSpam, providers: { rateLimiter: limiter.rateLimiter }, now: at(0) });
      assert.equal(limiter.consumed.length, 1, what);
      assert.deepEqual(limiter.refunded, [], what);
    }
  });

  it('a refund that throws, rejects or never settles changes nothing in the decision', async () => {
    const answer: ConsumeResult = { restriction: null, breaches: [], counted: true };
    const refunds: readonly [string, () => void | Promise<void>][] = [
      ['throws', () => {
        throw new Error('refund failed');
      }],
      ['rejects', () => Promise.reject(new Error('refund failed'))],
      ['never settles', () => new Promise<void>(() => {})],
    ];
    for (const [what, refund] of refunds) {
      const rateLimiter: RateLimiter = { consume: async () => answer, restriction: async () => null, refund };
      const decision = await decidePool(malware, { policy: blockedSpam, providers: { rateLimiter }, now: at(0) });
      assert.deepEqual([decision.action, decision.reasons[0]!.code], ['block', 'spam'], what);
    }
    // refundSync is preferred, as consumeSync is; its throw is ignored as well.
    const calls: string[] = [];
    const rateLimiter: RateLimiter = {
      consume: () => answer,
      restriction: () => null,
      refund: () => void calls.push('refund'),
      refundSync: () => {
        calls.push('refundSync');
        throw new Error('refund failed');
      },
    };
    const decision = await decidePool(malware, { policy: blockedSpam, providers: { rateLimiter }, now: at(0) });
    assert.deepEqual([decision.action, calls], ['block', ['refundSync']]);
  });

  /**
   * A limiter whose consume answers after its deadline (20 ms) has cut it off: the real memory
   * limiter, `lateMs` later; it records the refunds and when the late answer came.
   */
  const late = (lateMs: number) => {
    const memory = createMemoryRateLimiter();
    const refunded: ConsumeRequest[] = [];
    let answered = (): void => {};
    const answeredLate = new Promise<void>((resolve) => (answered = resolve));
    const rateLimiter: RateLimiter = {
      consume: (request) =>
        new Promise((resolve) =>
          setTimeout(() => {
            resolve(memory.consume(request));
            answered();
          }, lateMs),
        ),
      restriction: (key, now) => memory.restriction(key, now),
      refund: (request) => {
        refunded.push(request);
        return memory.refund(request);
      },
    };
    return { rateLimiter, memory, refunded, answeredLate };
  };
  const quickLimiter = { deadlines: { rateLimiterMs: 20 } };

  it('a refused message whose limiter answered after its deadline is refunded when the answer comes, if it counted', async () => {
    const limiter = late(60);
    const policy: PolicyInput = { ...blockedSpam, ...quickLimiter };
    const refused = await decidePool(malware, { policy, providers: { rateLimiter: limiter.rateLimiter }, now: at(0) });
    assert.deepEqual([refused.action, refused.verdicts.limits.state], ['block', 'failed']);
    assert.equal(limiter.refunded.length, 0, 'refunded before the limiter counted');
    await limiter.answeredLate;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(limiter.refunded.length, 1);
    assert.equal(limiter.refunded[0]!.messageId, '<first@contoso.com>');
    // The late count was taken back: the sender's one message a minute, the tenant's one external recipient.
    const next = await decidePool({ mailFrom: 'megan@contoso.com', rcptTo: ['ops@contoso.com'], tenant: 'contoso' }, { policy: LIMITED, providers: { rateLimiter: limiter.memory }, now: at(1) });
    assert.deepEqual([next.action, next.reasons[0]!.code], ['deliver', 'accepted-domain']);
    const other = await decidePool({ mailFrom: 'kim@contoso.com', rcptTo: ['lee@fabrikam.example'], tenant: 'contoso' }, { policy: LIMITED, providers: { rateLimiter: limiter.memory }, now: at(2) });
    assert.deepEqual([other.action, other.reasons[0]!.code], ['deliver', 'accepted-domain']);
  });

  it("a message deferred because the limiter did not answer in time (onProviderFailure.rateLimiter: 'defer') is refunded when its late answer counts it", async () => {
    const limiter = late(60);
    const policy: PolicyInput = { ...LIMITED, ...quickLimiter, onProviderFailure: { rateLimiter: 'defer' } };
    const deferred = await decidePool(first, { policy, providers: { rateLimiter: limiter.rateLimiter }, now: at(0) });
    assert.deepEqual([deferred.action, deferred.reasons[0]!.code], ['defer', 'provider-failed']);
    await limiter.answeredLate;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(limiter.refunded.length, 1);
    // Sent again, it counts as a new message (its id was forgotten), not as a free retry.
    const sent = await decidePool(first, { policy: LIMITED, providers: { rateLimiter: limiter.memory }, now: at(1) });
    assert.deepEqual([sent.action, sent.verdicts.limits], ['deliver', { state: 'provided', value: { restriction: null, breaches: [], counted: true } }]);
  });

  it("a limiter that rejects with a `late` answer (its command may still run) is refunded when that answer counts: before or after the decision's deadline", async () => {
    const counted: ConsumeResult = { restriction: null, breaches: [], counted: true };
    /** Rejects after `rejectMs` with an error whose `late` resolves with `lateAnswer` after `lateMs`. */
    const timingOut = (rejectMs: number, lateMs: number, lateAnswer: ConsumeResult | Error) => {
      const refunded: ConsumeRequest[] = [];
      const rateLimiter: RateLimiter = {
        consume: () =>
          new Promise((_, reject) =>
            setTimeout(() => {
              const late = new Promise<ConsumeResult>((resolve, rejectLate) => setTimeout(() => (lateAnswer instanceof Error ? rejectLate(lateAnswer) : resolve(lateAnswer)), lateMs));
              late.catch(() => {});
              reject(Object.assign(new Error('Redis did not answer consume within 5 ms'), { code: 'ETIMEDOUT', late }));
            }, rejectMs),
          ),
        restriction: () => null,
        refund: (request) => void refunded.push(request),
      };
      return { rateLimiter, refunded };
    };
    const policy: PolicyInput = { ...LIMITED, deadlines: { rateLimiterMs: 30 }, onProviderFailure: { rateLimiter: 'defer' } };
    // Its own timeout first (5 ms), inside the decision's deadline (30 ms); then after it (60 ms).
    for (const rejectMs of [5, 60]) {
      const limiter = timingOut(rejectMs, 20, counted);
      const deferred = await decidePool(first, { policy, providers: { rateLimiter: limiter.rateLimiter }, now: at(0) });
      assert.deepEqual([deferred.action, deferred.verdicts.limits.state], ['defer', 'failed'], `rejected after ${rejectMs} ms`);
      assert.equal(limiter.refunded.length, 0, 'refunded before the late answer');
      await new Promise((resolve) => setTimeout(resolve, rejectMs + 60));
      assert.equal(limiter.refunded.length, 1, `rejected after ${rejectMs} ms: the late count was not taken back`);
      assert.equal(limiter.refunded[0]!.messageId, '<first@contoso.com>');
    }
    // A late answer that counted nothing, or that fails, takes nothing back; nor does a delivered message.
    for (const lateAnswer of [{ ...counted, counted: false }, { ...counted, retry: true as const }, new Error('refused late')]) {
      const limiter = timingOut(5, 10, lateAnswer);
      await decidePool(first, { policy, providers: { rateLimiter: limiter.rateLimiter }, now: at(0) });
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(limiter.refunded.length, 0);
    }
    const delivered = timingOut(5, 10, counted);
    const sent = await decidePool(first, { policy: { ...policy, onProviderFailure: { rateLimiter: 'fail-open' } }, providers: { rateLimiter: delivered.rateLimiter }, now: at(0) });
    assert.equal(sent.action, 'deliver');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(delivered.refunded.length, 0);
  });

  it('a late answer is refunded once, however often the thenable calls back; a late rejection refunds nothing', async () => {
    const counted: ConsumeResult = { restriction: null, breaches: [], counted: true };
    const refunded: ConsumeRequest[] = [];
    let thens = 0;
    const twice: RateLimiter = {
      // then() is called once, by the decision; it calls back twice, late.
      consume: () => ({
        then(onAnswer: (value: ConsumeResult) => void) {
          thens++;
          setTimeout(() => {
            onAnswer(counted);
            onAnswer(counted);
          }, 40);
        },
      }) as unknown as Promise<ConsumeResult>,
      restriction: () => null,
      refund: (request) => void refunded.push(request),
    };
    const refused = await decidePool(malware, { policy: { ...blockedSpam, ...quickLimiter }, providers: { rateLimiter: twice }, now: at(0) });
    assert.deepEqual([refused.action, refused.verdicts.limits.state], ['block', 'failed']);
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.deepEqual([thens, refunded.length], [1, 1]);
    const rejected: ConsumeRequest[] = [];
    const failing: RateLimiter = {
      consume: () => new Promise((_, reject) => setTimeout(() => reject(new Error('Redis timed out')), 40)),
      restriction: () => null,
      refund: (request) => void rejected.push(request),
    };
    await decidePool(malware, { policy: { ...blockedSpam, ...quickLimiter }, providers: { rateLimiter: failing }, now: at(0) });
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(rejected.length, 0);
  });

  it('a late answer is not refunded when the message was delivered, nor when it counted nothing', async () => {
    // Fail-open (the default): delivered without the limiter's answer; sent, so it stays counted.
    const delivered = late(60);
    const decision = await decidePool(first, { policy: { ...LIMITED, ...quickLimiter }, providers: { rateLimiter: delivered.rateLimiter }, now: at(0) });
    assert.deepEqual([decision.action, decision.verdicts.limits.state], ['deliver', 'failed']);
    await delivered.answeredLate;
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(delivered.refunded, []);
    // A late answer that counted nothing (a restricted sender) or a retry: nothing to take back.
    for (const answer of [
      { restriction: { reason: 'restricted by an administrator', until: null, since: at(0) }, breaches: [], counted: false },
      { restriction: null, breaches: [], counted: true, retry: true },
    ] as ConsumeResult[]) {
      const refunded: ConsumeRequest[] = [];
      const rateLimiter: RateLimiter = {
        consume: () => new Promise((resolve) => setTimeout(() => resolve(answer), 60)),
        restriction: () => null,
        refund: (request) => void refunded.push(request),
      };
      const refused = await decidePool(malware, { policy: { ...blockedSpam, ...quickLimiter }, providers: { rateLimiter }, now: at(0) });
      assert.equal(refused.action, 'block');
      await new Promise((resolve) => setTimeout(resolve, 80));
      assert.deepEqual(refunded, [], JSON.stringify(answer));
    }
  });
});
