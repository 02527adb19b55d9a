// SPEC §7 end to end: the tenant cap (rule 11) and the restriction after spam, decided by
// decidePool with the real in-memory limiter counting — what test/decide/rules.test.ts shows with
// scripted limiter answers, here with the limiter's own state across messages and time. Written
// to the limiter contract of src/providers/types.ts (tenant, reportSpam, release's immunity).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decidePool } from '../../src/decide/gather.js';
import type { Decision, OutboundMessage } from '../../src/decide/types.js';
import { createPolicy, type PolicyInput } from '../../src/policy.js';
import { createMemoryRateLimiter } from '../../src/providers/memory-limiter.js';
import type { RateLimiter } from '../../src/providers/types.js';

const NOW = new Date('2026-11-23T09:00:00Z');
const minutes = (n: number) => new Date(NOW.getTime() + n * 60_000);
const BASE: PolicyInput = { acceptedDomains: ['contoso.com'], limits: { name: 'service', messagesPerMinute: 1_000, recipientsPerDay: 10_000 } };

let sequence = 0;
/** A message with a fresh Message-ID (the limiter counts a retry of the same id once). */
function message(fields: Partial<OutboundMessage> & { readonly rcptTo: readonly string[] }): OutboundMessage {
  sequence++;
  return { mailFrom: 'megan@contoso.com', headers: `From: megan@contoso.com\r\nMessage-ID: <e2e-${sequence}@contoso.com>\r\n\r\n`, ...fields };
}

const external = (n: number, domain = 'fabrikam.example') => Array.from({ length: n }, (_, i) => `r${i}@${domain}`);
const codes = (decision: Decision) => decision.reasons.map((reason) => reason.code);

describe('the tenant cap with the memory limiter (rule 11)', () => {
  const policy = createPolicy({ ...BASE, tenantLimits: { externalRecipientsPerDay: 5 } });

  it('every sender of a tenant counts toward its cap; past it, mail to external recipients is refused until the 24 hours slide by', async () => {
    const rateLimiter = createMemoryRateLimiter();
    const decide = (fields: Partial<OutboundMessage> & { readonly rcptTo: readonly string[] }, at: Date) => decidePool(message(fields), { policy, providers: { rateLimiter }, now: at });

    assert.deepEqual(codes(await decide({ submitter: 'megan', tenant: 'contoso', rcptTo: external(3) }, minutes(0))), ['accepted-domain']);
    assert.deepEqual(codes(await decide({ submitter: 'kim', tenant: 'contoso', rcptTo: external(2) }, minutes(1))), ['accepted-domain']);
    // 5 of 5 used, by two senders: one more external recipient from either is refused.
    const refused = await decide({ submitter: 'lee', tenant: 'contoso', rcptTo: ['x@northwind.example', 'ops@contoso.com'] }, minutes(2));
    assert.deepEqual([refused.action, codes(refused)], ['block', ['tenant-limit-exceeded']]);
    assert.equal(refused.reply?.enhancedCode, '5.7.233');
    assert.deepEqual(refused.reasons[0]!.detail, { tenant: 'contoso', limit: 5, used: 5, externalRecipients: 1 });
    // Internal mail of the tenant is not affected; another tenant has a cap of its own.
    assert.deepEqual(codes(await decide({ submitter: 'lee', tenant: 'contoso', rcptTo: ['ops@contoso.com'] }, minutes(3))), ['accepted-domain']);
    assert.deepEqual(codes(await decide({ submitter: 'ann', tenant: 'northwind', rcptTo: external(5) }, minutes(4))), ['accepted-domain']);
    // Still refused a little later; allowed again once the first messages are 24 hours old.
    assert.deepEqual(codes(await decide({ submitter: 'megan', tenant: 'contoso', rcptTo: external(1) }, minutes(60))), ['tenant-limit-exceeded']);
    assert.deepEqual(codes(await decide({ submitter: 'megan', tenant: 'contoso', rcptTo: external(1) }, minutes(24 * 60 + 30))), ['accepted-domain']);
  });

  it('a refused message counts for neither the sender nor the tenant', async () => {
    const rateLimiter = createMemoryRateLimiter();
    const tight = createPolicy({ ...BASE, limits: { name: 'service', recipientsPerDay: 4 }, tenantLimits: { externalRecipientsPerDay: 3 } });
    const decide = (rcptTo: readonly string[], at: Date) => decidePool(message({ submitter: 'megan', tenant: 'contoso', rcptTo }), { policy: tight, providers: { rateLimiter }, now: at });
    assert.deepEqual(codes(await decide(external(3), minutes(0))), ['accepted-domain']);
    for (let i = 1; i <= 3; i++) assert.deepEqual(codes(await decide(external(1), minutes(i))), ['tenant-limit-exceeded']);
    // Had the refused messages counted for the sender, its 4 recipients a day would be spent.
    assert.deepEqual(codes(await decide(['ops@contoso.com'], minutes(5))), ['accepted-domain']);
  });

  it('without tenantLimits a tenant is counted, never capped', async () => {
    const rateLimiter = createMemoryRateLimiter();
    const uncapped = createPolicy(BASE);
    for (let i = 0; i < 3; i++) {
      const decision = await decidePool(message({ submitter: `s${i}`, tenant: 'contoso', rcptTo: external(400) }), { policy: uncapped, providers: { rateLimiter }, now: minutes(i) });
      assert.deepEqual(codes(decision), ['accepted-domain']);
    }
  });
});

describe('the restriction after spam with the memory limiter (spam.restrictAfter)', () => {
  const spamPolicy = (restrictAfter: NonNullable<NonNullable<PolicyInput['spam']>['restrictAfter']>) => createPolicy({ ...BASE, spam: { threshold: 5, restrictAfter } });
  const spam = (submitter: string) => message({ submitter, rcptTo: ['lee@fabrikam.example'], spam: { score: 9 } });

  it('the message reaching the count still leaves high-risk with spam-restriction; the next is refused by rule 1 until the next UTC midnight', async () => {
    const rateLimiter = createMemoryRateLimiter();
    const policy = spamPolicy({ count: 2, window: 'hour' });
    const first = await decidePool(spam('megan'), { policy, providers: { rateLimiter }, now: minutes(0) });
    assert.deepEqual([first.pool, codes(first)], ['high-risk', ['spam']]);
    assert.deepEqual(first.verdicts.spamReport, { state: 'provided', value: { count: 1, restriction: null } });
    const second = await decidePool(spam('megan'), { policy, providers: { rateLimiter }, now: minutes(10) });
    assert.deepEqual([second.action, second.pool, codes(second)], ['deliver', 'high-risk', ['spam', 'spam-restriction']]);
    assert.deepEqual(second.reasons[1]!.detail, { count: 2, window: 'hour', action: 'block-user-for-today', until: '2026-11-24T00:00:00.000Z' });
    const ham = await decidePool(message({ submitter: 'megan', rcptTo: ['lee@fabrikam.example'], spam: { score: 0 } }), { policy, providers: { rateLimiter }, now: minutes(11) });
    assert.deepEqual([ham.action, codes(ham)], ['block', ['sender-restricted']]);
    assert.equal(ham.reasons[0]!.detail?.['cause'], 'spam');
    const listed = await rateLimiter.restricted(minutes(12));
    assert.deepEqual(listed.map(({ key, until, cause }) => ({ key, until, cause })), [{ key: 'megan', until: '2026-11-24T00:00:00.000Z', cause: { kind: 'spam', count: 2, window: 'hour' } }]);
    // Another sender is not affected; the restricted one may send again the next day.
    assert.deepEqual(codes(await decidePool(spam('kim'), { policy, providers: { rateLimiter }, now: minutes(12) })), ['spam']);
    assert.deepEqual(codes(await decidePool(message({ submitter: 'megan', rcptTo: ['lee@fabrikam.example'] }), { policy, providers: { rateLimiter }, now: new Date('2026-11-24T00:00:01Z') })), ['accepted-domain']);
  });

  it('block-user restricts until an administrator releases the sender; released, it is not restricted again that UTC day', async () => {
    const rateLimiter = createMemoryRateLimiter();
    const policy = spamPolicy({ count: 1, window: 'day', action: 'block-user' });
    const first = await decidePool(spam('megan'), { policy, providers: { rateLimiter }, now: minutes(0) });
    assert.deepEqual(codes(first), ['spam', 'spam-restriction']);
    assert.equal(first.reasons[1]!.detail?.['until'], null);
    assert.deepEqual(codes(await decidePool(spam('megan'), { policy, providers: { rateLimiter }, now: minutes(60 * 48) })), ['sender-restricted']);
    assert.equal(await rateLimiter.release('megan', minutes(60 * 48)), true);
    assert.deepEqual(codes(await decidePool(spam('megan'), { policy, providers: { rateLimiter }, now: minutes(60 * 48 + 1) })), ['spam']);
  });

  it('a retry of the same message counts once; spam older than the window no longer counts', async () => {
    const rateLimiter = createMemoryRateLimiter();
    const policy = spamPolicy({ count: 2, window: 'hour' });
    const once = spam('megan');
    assert.deepEqual(codes(await decidePool(once, { policy, providers: { rateLimiter }, now: minutes(0) })), ['spam']);
    const retry = await decidePool(once, { policy, providers: { rateLimiter }, now: minutes(1) });
    assert.deepEqual(codes(retry), ['spam']);
    assert.equal(retry.verdicts.spamReport?.state === 'provided' ? retry.verdicts.spamReport.value.count : null, 1);
    assert.deepEqual(codes(await decidePool(spam('megan'), { policy, providers: { rateLimiter }, now: minutes(180) })), ['spam']);
  });

  it('the memory limiter is asked without promises: reportSpamSync', async () => {
    const memory = createMemoryRateLimiter();
    assert.equal(typeof memory.reportSpamSync, 'function');
    let asyncCalls = 0;
    const rateLimiter: RateLimiter = {
      consume: (request) => memory.consume(request),
      restriction: (key, now) => memory.restriction(key, now),
      consumeSync: (request) => memory.consumeSync(request),
      reportSpamSync: (report) => memory.reportSpamSync!(report),
      reportSpam: (report) => ((asyncCalls += 1), memory.reportSpam(report)),
    };
    const decision = await decidePool(spam('megan'), { policy: spamPolicy({ count: 1, window: 'hour' }), providers: { rateLimiter }, now: minutes(0) });
    assert.deepEqual(codes(decision), ['spam', 'spam-restriction']);
    assert.equal(asyncCalls, 0);
  });
});
