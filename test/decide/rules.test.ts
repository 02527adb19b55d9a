// SPEC §3, row by row: each rule alone, then every pair of competing rules (the earlier wins),
// then the edge cases. Verdicts are handed to the sync core directly, so each row says exactly
// what the rules saw.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideFromVerdicts, decidePool, type VerdictsInput } from '../../src/decide/gather.js';
import type { Decision, OutboundMessage } from '../../src/decide/types.js';
import { createPolicy, type PolicyInput } from '../../src/policy.js';
import { createPolicySet } from '../../src/policy-set.js';
import { createStaticResolver } from '../../src/providers/static-dns.js';
import { createMemoryRateLimiter } from '../../src/providers/memory-limiter.js';
import type { ConsumeRequest, ConsumeResult, LimitBreach, RateLimiter, Restriction, SpamReport, SpamReportResult } from '../../src/providers/types.js';
import { Srs } from '../../src/srs/index.js';

const NOW = new Date(1577836860_000);
const policy = createPolicy({
  acceptedDomains: ['contoso.com', '*.contoso.com'],
  spam: { threshold: 5, blockCategories: ['malware'] },
  limits: [{ name: 'service', recipientsPerMessage: 3, messagesPerMinute: 30 }],
});
const srs = { rewriter: new Srs({ secret: 'tops3cr3t' }), domain: 'contoso.com' };

const EXTERNAL = 'alice@fabrikam.example';
const INTERNAL = 'bob@contoso.com';
const DSN_HEADERS = 'From: MAILER-DAEMON@mx.example\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n';

const ok = <T>(value: T) => ({ state: 'provided', value }) as const;
const failed = (error: string) => ({ state: 'failed', error }) as const;
const fits: ConsumeResult = { restriction: null, breaches: [], counted: true };
const restricted: ConsumeResult = { restriction: { until: null, reason: 'BlockUser after a breach' }, breaches: [], counted: false };
const breach = (action: LimitBreach['action']): LimitBreach => ({ window: 'messagesPerMinute', limit: 30, used: 30, action, set: 'service' });
const over = (action: LimitBreach['action']): ConsumeResult => ({ restriction: null, breaches: [breach(action)], counted: action === 'alert' });
/** The tenant's cap refuses the message (rule 11): 998 of 1,000 external recipients used. */
const tenantOver: ConsumeResult = { restriction: null, breaches: [], tenantBreach: { tenant: 'contoso', limit: 1_000, used: 998 }, counted: false };
const resolves = ok({ domain: 'fabrikam.example', receivesMail: true, basis: 'mx' as const });
const unresolvable = ok({ domain: 'fabrikam.example', receivesMail: false, basis: 'no-records' as const });
const nullMx = ok({ domain: 'fabrikam.example', receivesMail: false, basis: 'null-mx' as const });
const spam = ok({ score: 9.5 });
const ham = ok({ score: 0.3 });
const spfPass = ok({ spf: { result: 'pass' as const, domain: 'fabrikam.example' } });
const dkimPass = ok({ spf: { result: 'fail' as const, domain: 'fabrikam.example' }, dkim: [{ result: 'pass' as const, domain: 'mail.fabrikam.example' }] });
const unverified = ok({ spf: { result: 'softfail' as const, domain: 'fabrikam.example' }, dkim: [{ result: 'pass' as const, domain: 'esp.example' }] });

interface Row {
  readonly name: string;
  readonly mailFrom?: string;
  readonly rcptTo?: readonly string[];
  readonly headers?: string;
  readonly verdicts?: VerdictsInput;
  readonly policy?: PolicyInput;
  readonly autoForwarded?: boolean;
  readonly tenant?: string;
  readonly expect: { readonly action: Decision['action']; readonly pool: Decision['pool']; readonly codes: readonly string[]; readonly mailFrom?: string };
}

function decide(row: Row): Decision {
  const message: OutboundMessage = {
    mailFrom: row.mailFrom ?? EXTERNAL,
    rcptTo: row.rcptTo ?? ['carol@northwind.example'],
    ...(row.headers === undefined ? {} : { headers: row.headers }),
    ...(row.autoForwarded === undefined ? {} : { autoForwarded: row.autoForwarded }),
    ...(row.tenant === undefined ? {} : { tenant: row.tenant }),
  };
  return decideFromVerdicts(message, row.verdicts ?? {}, { policy: row.policy ? createPolicy({ ...policyInput, ...row.policy }) : policy, srs, now: NOW });
}

const policyInput: PolicyInput = {
  acceptedDomains: ['contoso.com', '*.contoso.com'],
  spam: { threshold: 5, blockCategories: ['malware'] },
  limits: [{ name: 'service', recipientsPerMessage: 3, messagesPerMinute: 30 }],
};

function check(rows: readonly Row[]): void {
  for (const row of rows) {
    it(row.name, () => {
      const decision = decide(row);
      assert.deepEqual(
        { action: decision.action, pool: decision.pool, codes: decision.reasons.map((r) => r.code) },
        { action: row.expect.action, pool: row.expect.pool, codes: row.expect.codes },
      );
      if (row.expect.mailFrom !== undefined) assert.equal(decision.mailFrom, row.expect.mailFrom);
    });
  }
}

describe('SPEC §3, one rule at a time', () => {
  check([
    { name: '1. a restricted sender is blocked (sender-restricted)', verdicts: { limits: ok(restricted) }, expect: { action: 'block', pool: null, codes: ['sender-restricted'] } },
    {
      name: '2. more recipients than recipientsPerMessage are blocked (recipients-per-message-exceeded)',
      rcptTo: ['a@x.example', 'b@x.example', 'c@x.example', 'd@x.example'],
      expect: { action: 'block', pool: null, codes: ['recipients-per-message-exceeded'] },
    },
    { name: '3. a breached sending limit blocks (sending-limit-exceeded)', verdicts: { limits: ok(over('block')) }, expect: { action: 'block', pool: null, codes: ['sending-limit-exceeded'] } },
    {
      name: '3. legacy option: a breached sending limit uses the high-risk pool',
      verdicts: { limits: ok(over('block-user-for-today')) },
      policy: { overLimit: 'high-risk' },
      expect: { action: 'deliver', pool: 'high-risk', codes: ['sending-limit-exceeded'] },
    },
    { name: '4. the null sender is an NDR: high-risk pool (ndr)', mailFrom: '', expect: { action: 'deliver', pool: 'high-risk', codes: ['ndr'] } },
    { name: '4. a multipart/report delivery-status with a sender is an NDR too', headers: DSN_HEADERS, expect: { action: 'deliver', pool: 'high-risk', codes: ['ndr'] } },
    { name: '5. a sender domain with no A, AAAA or MX: high-risk pool', verdicts: { senderDomain: unresolvable }, expect: { action: 'deliver', pool: 'high-risk', codes: ['sender-domain-unresolvable'] } },
    { name: '5. a sender domain with only a null MX (RFC 7505): high-risk pool', verdicts: { senderDomain: nullMx }, expect: { action: 'deliver', pool: 'high-risk', codes: ['sender-domain-unresolvable'] } },
    { name: '6. a spam score at or over the threshold: high-risk pool (spam)', verdicts: { spam: ok({ score: 5 }) }, expect: { action: 'deliver', pool: 'high-risk', codes: ['spam'] } },
    { name: '6. classified spam without a score: high-risk pool', verdicts: { spam: ok({ isSpam: true }) }, expect: { action: 'deliver', pool: 'high-risk', codes: ['spam'] } },
    { name: '6. a category the policy blocks is blocked, not sent', verdicts: { spam: ok({ score: 2, categories: ['Malware'] }) }, expect: { action: 'block', pool: null, codes: ['spam'] } },
    { name: '7. a forward failing SPF and aligned DKIM goes to the relay pool, not rewritten', verdicts: { authentication: unverified }, expect: { action: 'deliver', pool: 'relay', codes: ['relay-unverified'], mailFrom: EXTERNAL } },
    { name: '7. a forward without any authentication verdict goes to the relay pool', expect: { action: 'deliver', pool: 'relay', codes: ['relay-unverified'] } },
    {
      name: '8. a forward with SPF pass at ingress: normal pool, SRS-rewritten',
      verdicts: { authentication: spfPass },
      expect: { action: 'deliver', pool: 'normal', codes: ['spf-pass', 'srs-rewritten'], mailFrom: 'SRS0=J+XN=2W=fabrikam.example=alice@contoso.com' }, // as Mail::SRS gives,
    },
    { name: '8. a forward with aligned DKIM pass (relaxed): normal pool, SRS-rewritten', verdicts: { authentication: dkimPass }, expect: { action: 'deliver', pool: 'normal', codes: ['dkim-pass', 'srs-rewritten'] } },
    { name: '9. a sender in an accepted domain: normal pool, not rewritten', mailFrom: INTERNAL, expect: { action: 'deliver', pool: 'normal', codes: ['accepted-domain'], mailFrom: INTERNAL } },
    { name: '9. a subdomain matched by *.contoso.com is accepted', mailFrom: 'ops@eu.mail.contoso.com', expect: { action: 'deliver', pool: 'normal', codes: ['accepted-domain'] } },
  ]);
});

describe('competing rules: the earlier one wins', () => {
  const tooMany = ['a@x.example', 'b@x.example', 'c@x.example', 'd@x.example'];
  check([
    { name: '1 over 2: a restricted sender with too many recipients is sender-restricted', rcptTo: tooMany, verdicts: { limits: ok(restricted) }, expect: { action: 'block', pool: null, codes: ['sender-restricted'] } },
    { name: '1 over 4: a restricted sender’s NDR is blocked', mailFrom: '', verdicts: { limits: ok(restricted) }, expect: { action: 'block', pool: null, codes: ['sender-restricted'] } },
    { name: '2 over 3: too many recipients and over a limit is recipients-per-message-exceeded', rcptTo: tooMany, verdicts: { limits: ok(over('block')) }, expect: { action: 'block', pool: null, codes: ['recipients-per-message-exceeded'] } },
    { name: '2 over 9: an accepted-domain sender with too many recipients is blocked', mailFrom: INTERNAL, rcptTo: tooMany, expect: { action: 'block', pool: null, codes: ['recipients-per-message-exceeded'] } },
    { name: '3 over 4: an over-limit NDR is blocked', mailFrom: '', verdicts: { limits: ok(over('block')) }, expect: { action: 'block', pool: null, codes: ['sending-limit-exceeded'] } },
    { name: '3 over 5: over-limit mail from an unresolvable domain is blocked', verdicts: { limits: ok(over('block')), senderDomain: unresolvable }, expect: { action: 'block', pool: null, codes: ['sending-limit-exceeded'] } },
    { name: '3 over 6: over-limit spam is blocked, not sent through the high-risk pool', verdicts: { limits: ok(over('block-user')), spam }, expect: { action: 'block', pool: null, codes: ['sending-limit-exceeded'] } },
    { name: '4 over 6: an NDR that looks like spam is an ndr', mailFrom: '', verdicts: { spam }, expect: { action: 'deliver', pool: 'high-risk', codes: ['ndr'] } },
    { name: '4 over 9: an NDR from an accepted domain still uses the high-risk pool', mailFrom: INTERNAL, headers: DSN_HEADERS, expect: { action: 'deliver', pool: 'high-risk', codes: ['ndr'] } },
    { name: '5 over 6: spam from an unresolvable domain is sender-domain-unresolvable', verdicts: { senderDomain: unresolvable, spam }, expect: { action: 'deliver', pool: 'high-risk', codes: ['sender-domain-unresolvable'] } },
    { name: '5 over 8: a verified forward from an unresolvable domain uses the high-risk pool', verdicts: { senderDomain: unresolvable, authentication: spfPass }, expect: { action: 'deliver', pool: 'high-risk', codes: ['sender-domain-unresolvable'] } },
    { name: '5 over 9: an accepted-domain sender without DNS records uses the high-risk pool', mailFrom: INTERNAL, verdicts: { senderDomain: unresolvable }, expect: { action: 'deliver', pool: 'high-risk', codes: ['sender-domain-unresolvable'] } },
    { name: '6 over 7: an unverified spam forward uses the high-risk pool', verdicts: { spam, authentication: unverified }, expect: { action: 'deliver', pool: 'high-risk', codes: ['spam'] } },
    { name: '6 over 8: a verified spam forward uses the high-risk pool, not rewritten', verdicts: { spam, authentication: spfPass }, expect: { action: 'deliver', pool: 'high-risk', codes: ['spam'], mailFrom: EXTERNAL } },
    { name: '6 over 9: spam from an accepted domain uses the high-risk pool', mailFrom: INTERNAL, verdicts: { spam }, expect: { action: 'deliver', pool: 'high-risk', codes: ['spam'] } },
    { name: '7 and 9: an accepted-domain sender is never relayed, even when SPF failed', mailFrom: INTERNAL, verdicts: { authentication: unverified }, expect: { action: 'deliver', pool: 'normal', codes: ['accepted-domain'] } },
  ]);
});

describe('competing rules: every pair, generated', () => {
  // Each rule's trigger alone; every two of them together, and the one evaluated first must
  // decide. The order is SPEC §3's with rule 10 (automatic forwarding off, SPEC §7) right after
  // rule 1 and rule 11 (the tenant cap, SPEC §7) right after rule 3. Rules 7 and 8 cannot meet (a
  // forward is verified or not); rule 9 decides before 7 and 8 (they only concern senders outside
  // the accepted domains), which the table above shows. Every row has an external recipient, so
  // rule 11 applies wherever it is reached.
  const tooMany = ['a@x.example', 'b@x.example', 'c@x.example', 'd@x.example'];
  const ORDER = [1, 10, 2, 3, 11, 4, 5, 6, 7, 8, 9] as const;
  const triggers: Record<number, { readonly code: string; readonly row: Omit<Row, 'name' | 'expect'> }> = {
    1: { code: 'sender-restricted', row: { verdicts: { limits: ok(restricted) } } },
    10: { code: 'auto-forwarding-blocked', row: { autoForwarded: true, policy: { autoForwarding: 'off' } } },
    2: { code: 'recipients-per-message-exceeded', row: { rcptTo: tooMany } },
    3: { code: 'sending-limit-exceeded', row: { verdicts: { limits: ok(over('block')) } } },
    11: { code: 'tenant-limit-exceeded', row: { tenant: 'contoso', verdicts: { limits: ok(tenantOver) } } },
    4: { code: 'ndr', row: { headers: DSN_HEADERS } },
    5: { code: 'sender-domain-unresolvable', row: { verdicts: { senderDomain: unresolvable } } },
    6: { code: 'spam', row: { verdicts: { spam } } },
    7: { code: 'relay-unverified', row: { verdicts: { authentication: unverified } } },
    8: { code: 'spf-pass', row: { verdicts: { authentication: spfPass } } },
    9: { code: 'accepted-domain', row: { mailFrom: INTERNAL } },
  };
  /** Both triggers at once; a restriction, a breach and a tenant's breach meet in one limiter answer. */
  function both(a: Omit<Row, 'name' | 'expect'>, b: Omit<Row, 'name' | 'expect'>): Omit<Row, 'name' | 'expect'> {
    const verdicts: Record<string, unknown> = { ...a.verdicts, ...b.verdicts };
    const limitsA = a.verdicts?.limits;
    const limitsB = b.verdicts?.limits;
    if (limitsA?.state === 'provided' && limitsB?.state === 'provided') {
      verdicts['limits'] = ok({
        restriction: limitsA.value.restriction ?? limitsB.value.restriction,
        breaches: [...limitsA.value.breaches, ...limitsB.value.breaches],
        tenantBreach: limitsA.value.tenantBreach ?? limitsB.value.tenantBreach ?? null,
        counted: false,
      });
    }
    return { ...a, ...b, verdicts: verdicts as VerdictsInput, policy: { ...a.policy, ...b.policy } };
  }
  for (let i = 0; i < ORDER.length; i++) {
    for (let j = i + 1; j < ORDER.length; j++) {
      const earlier = ORDER[i]!;
      const later = ORDER[j]!;
      if (earlier === 7 && later === 8) continue;
      const winner = later === 9 && (earlier === 7 || earlier === 8) ? 9 : earlier;
      it(`${earlier} and ${later}: rule ${winner} decides (${triggers[winner]!.code})`, () => {
        const decision = decide({ name: '', ...both(triggers[earlier]!.row, triggers[later]!.row), expect: { action: 'deliver', pool: null, codes: [] } });
        assert.equal(decision.reasons[0]?.code, triggers[winner]!.code, JSON.stringify(decision.reasons.map((r) => r.code)));
        assert.equal(decision.reasons[0]?.rule, winner);
      });
    }
  }
});

describe('forwarding control (SPEC §7)', () => {
  const off: PolicyInput = { autoForwarding: 'off' };
  check([
    { name: 'with automatic forwarding off, an automatic forward to an external recipient is blocked (auto-forwarding-blocked)', autoForwarded: true, policy: off, verdicts: { authentication: spfPass }, expect: { action: 'block', pool: null, codes: ['auto-forwarding-blocked'] } },
    { name: 'whatever its authentication: a forward from an accepted domain is blocked too', mailFrom: INTERNAL, autoForwarded: true, policy: off, expect: { action: 'block', pool: null, codes: ['auto-forwarding-blocked'] } },
    { name: 'one external recipient among internal ones is enough', autoForwarded: true, policy: off, rcptTo: ['bob@contoso.com', 'carol@northwind.example'], expect: { action: 'block', pool: null, codes: ['auto-forwarding-blocked'] } },
    { name: 'forwarding inside the organisation is not affected', autoForwarded: true, policy: off, rcptTo: ['bob@contoso.com', 'ops@eu.contoso.com'], verdicts: { authentication: spfPass }, expect: { action: 'deliver', pool: 'normal', codes: ['spf-pass', 'srs-rewritten'] } },
    { name: 'a message not forwarded automatically is not affected', autoForwarded: false, policy: off, verdicts: { authentication: spfPass }, expect: { action: 'deliver', pool: 'normal', codes: ['spf-pass', 'srs-rewritten'] } },
    { name: "with automatic forwarding on (the default), an automatic forward is routed like any forward", autoForwarded: true, verdicts: { authentication: unverified }, expect: { action: 'deliver', pool: 'relay', codes: ['relay-unverified'] } },
  ]);

  it('the refusal carries 550 5.7.520, as Microsoft 365 gives it', () => {
    const decision = decide({ name: '', autoForwarded: true, policy: off, expect: { action: 'block', pool: null, codes: [] } });
    assert.equal(decision.action === 'block' ? decision.reply.line.slice(0, 13) : null, '550 5.7.520 A');
  });
});

describe('tenant cap (SPEC §7, rule 11)', () => {
  const tenant = 'contoso';
  check([
    { name: 'a tenant over its cap: a message with an external recipient is blocked (tenant-limit-exceeded)', tenant, verdicts: { limits: ok(tenantOver) }, expect: { action: 'block', pool: null, codes: ['tenant-limit-exceeded'] } },
    { name: 'from an accepted domain too', mailFrom: INTERNAL, tenant, verdicts: { limits: ok(tenantOver) }, expect: { action: 'block', pool: null, codes: ['tenant-limit-exceeded'] } },
    { name: 'one external recipient among internal ones is enough', mailFrom: INTERNAL, tenant, rcptTo: [INTERNAL, 'carol@northwind.example'], verdicts: { limits: ok(tenantOver) }, expect: { action: 'block', pool: null, codes: ['tenant-limit-exceeded'] } },
    {
      name: 'internal recipients are not affected, even if a limiter said the tenant was over',
      mailFrom: INTERNAL,
      tenant,
      rcptTo: [INTERNAL, 'ops@eu.contoso.com'],
      verdicts: { limits: ok(tenantOver) },
      expect: { action: 'deliver', pool: 'normal', codes: ['accepted-domain'] },
    },
    { name: 'a tenant within its cap changes nothing', mailFrom: INTERNAL, tenant, verdicts: { limits: ok(fits) }, expect: { action: 'deliver', pool: 'normal', codes: ['accepted-domain'] } },
    { name: "overLimit: 'high-risk' does not apply to the tenant cap: still blocked", tenant, policy: { overLimit: 'high-risk' }, verdicts: { limits: ok(tenantOver) }, expect: { action: 'block', pool: null, codes: ['tenant-limit-exceeded'] } },
    {
      name: "3 over 11 with overLimit: 'high-risk': delivering would pass the tenant's cap, so 11 blocks, the sender's breach a note",
      tenant,
      policy: { overLimit: 'high-risk' },
      verdicts: { limits: ok({ ...tenantOver, breaches: [breach('block')] }) },
      expect: { action: 'block', pool: null, codes: ['tenant-limit-exceeded', 'sending-limit-exceeded'] },
    },
    {
      name: "3 with overLimit: 'high-risk' and a tenant within its cap: sent high-risk",
      tenant,
      policy: { overLimit: 'high-risk' },
      verdicts: { limits: ok(over('block')) },
      expect: { action: 'deliver', pool: 'high-risk', codes: ['sending-limit-exceeded'] },
    },
    {
      name: "3 over 11 with overLimit: 'block': the sender's own breach decides",
      tenant,
      verdicts: { limits: ok({ ...tenantOver, breaches: [breach('block')] }) },
      expect: { action: 'block', pool: null, codes: ['sending-limit-exceeded'] },
    },
    {
      name: "an alert-only breach of the sender's limits is a note beside the tenant's refusal",
      tenant,
      verdicts: { limits: ok({ ...tenantOver, breaches: [breach('alert')] }) },
      expect: { action: 'block', pool: null, codes: ['tenant-limit-exceeded', 'limit-alert'] },
    },
    { name: '11 over 4: an NDR to an external recipient from a tenant over its cap is blocked', mailFrom: '', tenant, verdicts: { limits: ok(tenantOver) }, expect: { action: 'block', pool: null, codes: ['tenant-limit-exceeded'] } },
    { name: '11 over 6: spam from a tenant over its cap is blocked, not sent high-risk', tenant, verdicts: { limits: ok(tenantOver), spam }, expect: { action: 'block', pool: null, codes: ['tenant-limit-exceeded'] } },
    { name: '1 over 11: a restricted sender of a tenant over its cap is sender-restricted', tenant, verdicts: { limits: ok({ ...tenantOver, restriction: restricted.restriction }) }, expect: { action: 'block', pool: null, codes: ['sender-restricted'] } },
    { name: '10 over 11: an automatic forward out of a tenant over its cap is auto-forwarding-blocked', tenant, autoForwarded: true, policy: { autoForwarding: 'off' }, verdicts: { limits: ok(tenantOver) }, expect: { action: 'block', pool: null, codes: ['auto-forwarding-blocked'] } },
  ]);

  it('the refusal carries 550 5.7.233 and says how many external recipients the tenant sent', () => {
    const decision = decide({ name: '', tenant, rcptTo: ['carol@northwind.example', 'dan@northwind.example', INTERNAL], verdicts: { limits: ok(tenantOver) }, expect: { action: 'block', pool: null, codes: [] } });
    assert.equal(decision.reply?.line.slice(0, 12), '550 5.7.233 ');
    assert.deepEqual(decision.reasons[0]?.detail, { tenant: 'contoso', limit: 1_000, used: 998, externalRecipients: 2 });
    assert.match(decision.reasons[0]!.message, /998 external recipients .* 2 more would pass its cap of 1000/);
  });

  it('a malformed tenantBreach from a limiter is garbage, not a guess', () => {
    assert.throws(
      () => decide({ name: '', tenant, verdicts: { limits: ok({ ...tenantOver, tenantBreach: { tenant: 'contoso', limit: '1000', used: 3 } } as never) }, expect: { action: 'block', pool: null, codes: [] } }),
      /verdicts\.limits is malformed: tenantBreach\.limit is not a number/,
    );
  });
});

/**
 * A limiter with fixed answers, as rules-level tests need: `consume` answers `answer` (or, once
 * `reportSpam` has restricted the sender, the restriction), and every request and report is kept.
 */
function scriptedLimiter(options: { answer?: ConsumeResult; report?: (report: SpamReport) => SpamReportResult | Promise<SpamReportResult>; sync?: boolean } = {}) {
  const requests: ConsumeRequest[] = [];
  const reports: SpamReport[] = [];
  let imposed: Restriction | null = null;
  const report = (spamReport: SpamReport) => {
    reports.push(spamReport);
    const result = (options.report ?? (() => ({ count: 1, restriction: null })))(spamReport);
    if (!(result instanceof Promise) && result.restriction !== null) imposed = result.restriction;
    return result;
  };
  const limiter: RateLimiter = {
    consume: async (request) => {
      requests.push(request);
      return imposed === null ? (options.answer ?? fits) : { restriction: imposed, breaches: [], counted: false };
    },
    restriction: async () => imposed,
    ...(options.sync === true ? { reportSpamSync: report as (r: SpamReport) => SpamReportResult } : { reportSpam: async (r: SpamReport) => report(r) }),
  };
  return { limiter, requests, reports };
}

describe('restriction after spam (SPEC §7, spam.restrictAfter)', () => {
  const restrictAfter = { count: 3, window: 'hour', action: 'block-user-for-today' } as const;
  const counting = createPolicy({ ...policyInput, spam: { threshold: 5, blockCategories: ['malware'], restrictAfter } });
  const until = '2020-01-02T00:00:00.000Z';
  const third = (): SpamReportResult => ({ count: 3, restriction: { until, since: NOW.toISOString(), cause: { kind: 'spam', count: 3, window: 'hour' } } });
  const spamMessage: OutboundMessage = {
    mailFrom: INTERNAL,
    rcptTo: ['carol@northwind.example'],
    submitter: 'user-42',
    headers: 'From: bob@contoso.com\r\nMessage-ID: <m-1@contoso.com>\r\n\r\n',
    spam: { score: 9.5 },
  };

  it('the message reaching the count leaves high-risk with spam-restriction; the next one is refused by rule 1', async () => {
    const { limiter, reports } = scriptedLimiter({ report: third });
    const first = await decidePool(spamMessage, { policy: counting, providers: { rateLimiter: limiter }, now: NOW });
    assert.deepEqual([first.action, first.pool, first.reasons.map((r) => r.code)], ['deliver', 'high-risk', ['spam', 'spam-restriction']]);
    assert.deepEqual(first.reasons[1]!.detail, { count: 3, window: 'hour', action: 'block-user-for-today', until });
    assert.equal(first.reasons[1]!.rule, 6);
    assert.deepEqual(first.verdicts.spamReport, { state: 'provided', value: third() });
    assert.deepEqual(reports, [{ key: 'user-42', messageId: '<m-1@contoso.com>', restrictAfter, now: NOW }]);
    const next = await decidePool({ ...spamMessage, spam: { score: 0 } }, { policy: counting, providers: { rateLimiter: limiter }, now: NOW });
    assert.deepEqual([next.action, next.reasons[0]!.code], ['block', 'sender-restricted']);
    assert.equal(next.reasons[0]!.detail?.['cause'], 'spam');
  });

  it('the report carries the message id as the limiter gets it in consume (so a retry counts once)', async () => {
    const { limiter, requests, reports } = scriptedLimiter();
    await decidePool(spamMessage, { policy: counting, providers: { rateLimiter: limiter }, now: NOW });
    assert.equal(reports[0]!.messageId, requests[0]!.messageId);
    await decidePool({ ...spamMessage, headers: 'From: bob@contoso.com\r\n\r\n' }, { policy: counting, providers: { rateLimiter: limiter }, now: NOW });
    assert.ok(!('messageId' in reports[1]!), 'no Message-ID, no messageId');
  });

  it('a spam message below the count only counts: no reason added, the count in verdicts.spamReport', async () => {
    const { limiter, reports } = scriptedLimiter({ report: () => ({ count: 1, restriction: null }) });
    const decision = await decidePool(spamMessage, { policy: counting, providers: { rateLimiter: limiter }, now: NOW });
    assert.deepEqual(decision.reasons.map((r) => r.code), ['spam']);
    assert.deepEqual(decision.verdicts.spamReport, { state: 'provided', value: { count: 1, restriction: null } });
    assert.equal(reports.length, 1);
  });

  it('reportSpamSync is preferred, and a decision through it needs no wait', async () => {
    const { limiter, reports } = scriptedLimiter({ report: third, sync: true });
    const decision = await decidePool(spamMessage, { policy: counting, providers: { rateLimiter: limiter }, now: NOW });
    assert.deepEqual(decision.reasons.map((r) => r.code), ['spam', 'spam-restriction']);
    assert.equal(reports.length, 1);
  });

  it('without spam.restrictAfter nothing is reported', async () => {
    const { limiter, reports } = scriptedLimiter({ report: third });
    const decision = await decidePool(spamMessage, { policy, providers: { rateLimiter: limiter }, now: NOW });
    assert.deepEqual(decision.reasons.map((r) => r.code), ['spam']);
    assert.equal(decision.verdicts.spamReport, undefined);
    assert.equal(reports.length, 0);
  });

  // Every earlier rule (and rule 6's own block) decides before the spam verdict counts: nothing is reported.
  const earlier: readonly { readonly name: string; readonly code: string; readonly answer?: ConsumeResult; readonly message?: Partial<OutboundMessage>; readonly policy?: PolicyInput }[] = [
    { name: '1, a restricted sender', code: 'sender-restricted', answer: restricted },
    { name: '10, an automatic forward with forwarding off', code: 'auto-forwarding-blocked', message: { autoForwarded: true }, policy: { autoForwarding: 'off' } },
    { name: '2, too many recipients', code: 'recipients-per-message-exceeded', message: { rcptTo: ['a@x.example', 'b@x.example', 'c@x.example', 'd@x.example'] } },
    { name: '3, a sending limit', code: 'sending-limit-exceeded', answer: over('block') },
    { name: '11, a tenant over its cap', code: 'tenant-limit-exceeded', answer: tenantOver, message: { tenant: 'contoso' } },
    { name: '4, an NDR', code: 'ndr', message: { mailFrom: '' } },
    { name: '5, an unresolvable sender domain', code: 'sender-domain-unresolvable', message: { mailFrom: EXTERNAL } },
    { name: "6's block, a category the policy blocks", code: 'spam', message: { spam: { score: 9.5, categories: ['malware'] } } },
  ];
  for (const row of earlier) {
    it(`rule ${row.name}, with spam: that rule decides and no spam is counted`, async () => {
      const { limiter, reports } = scriptedLimiter({ report: third, ...(row.answer === undefined ? {} : { answer: row.answer }) });
      const decision = await decidePool(
        { ...spamMessage, ...row.message },
        {
          policy: createPolicy({ ...policyInput, ...row.policy, spam: { threshold: 5, blockCategories: ['malware'], restrictAfter } }),
          providers: { rateLimiter: limiter, dns: createStaticResolver({ 'contoso.com': { MX: [{ exchange: 'mx.contoso.com', priority: 10 }] } }) },
          now: NOW,
        },
      );
      assert.equal(decision.reasons[0]!.code, row.code);
      assert.ok(!decision.reasons.some((r) => r.code === 'spam-restriction'));
      assert.deepEqual(reports, []);
    });
  }

  it('spam from outside the accepted domains (6 over 7 and 8) is counted as well', async () => {
    const { limiter, reports } = scriptedLimiter({ report: third });
    const decision = await decidePool({ ...spamMessage, mailFrom: EXTERNAL, authentication: { spf: { result: 'pass', domain: 'fabrikam.example' } } }, { policy: counting, providers: { rateLimiter: limiter }, srs, now: NOW });
    assert.deepEqual([decision.pool, decision.reasons.map((r) => r.code), decision.mailFrom], ['high-risk', ['spam', 'spam-restriction'], EXTERNAL]);
    assert.equal(reports.length, 1);
  });

  it('the spam-restriction reason comes right after spam, before the notes', async () => {
    const { limiter } = scriptedLimiter({ report: third, answer: over('alert') });
    const decision = await decidePool(spamMessage, { policy: counting, providers: { rateLimiter: limiter }, now: NOW });
    assert.deepEqual(decision.reasons.map((r) => r.code), ['spam', 'spam-restriction', 'limit-alert']);
  });

  it('a limiter without reportSpam: the message still leaves high-risk, with a note that nothing was counted', async () => {
    const limiter: RateLimiter = { consume: async () => fits, restriction: async () => null };
    const decision = await decidePool(spamMessage, { policy: counting, providers: { rateLimiter: limiter }, now: NOW });
    assert.deepEqual([decision.pool, decision.reasons.map((r) => r.code)], ['high-risk', ['spam', 'provider-failed']]);
    assert.equal(decision.reasons[1]!.provider, 'rateLimiter');
    assert.match(decision.reasons[1]!.message, /no reportSpam\(\)/);
    assert.equal(decision.verdicts.spamReport?.state, 'failed');
  });

  const faults: readonly [string, () => unknown][] = [
    ['rejects', () => Promise.reject(new Error('redis down'))],
    ['throws', () => { throw new Error('redis down'); }],
    ['answers garbage', () => Promise.resolve({ count: 'three' })],
    ['never answers', () => new Promise(() => {})],
  ];
  for (const [what, reportSpam] of faults) {
    it(`a report that ${what} is a provider-failed note; the decision stands, even when the fail mode is defer`, async () => {
      const limiter: RateLimiter = { consume: async () => fits, restriction: async () => null, reportSpam: reportSpam as RateLimiter['reportSpam'] & object };
      const strict = createPolicy({ ...policyInput, spam: { threshold: 5, restrictAfter }, deadlines: { rateLimiterMs: 30 }, onProviderFailure: { rateLimiter: 'defer' } });
      const decision = await decidePool(spamMessage, { policy: strict, providers: { rateLimiter: limiter }, now: NOW });
      assert.deepEqual([decision.action, decision.pool, decision.reasons.map((r) => r.code)], ['deliver', 'high-risk', ['spam', 'provider-failed']]);
      assert.match(decision.reasons[1]!.message, /could not count this spam message for user-42/);
    });
  }

  it('a policy set: only the scoped policy that counts spam reports it', async () => {
    const set = createPolicySet({
      default: { ...policyInput },
      scoped: [{ name: 'Counted', priority: 0, groups: ['bulk'], policy: { spam: { restrictAfter } } }],
    });
    const { limiter, reports } = scriptedLimiter({ report: third });
    const plain = await decidePool(spamMessage, { policy: set, providers: { rateLimiter: limiter }, now: NOW });
    assert.deepEqual(plain.reasons.map((r) => r.code), ['spam']);
    const scoped = await decidePool({ ...spamMessage, groups: ['bulk'] }, { policy: set, providers: { rateLimiter: limiter }, now: NOW });
    assert.deepEqual([scoped.policyName, scoped.reasons.map((r) => r.code)], ['Counted', ['spam', 'spam-restriction']]);
    assert.equal(reports.length, 1);
  });
});

describe('edge cases', () => {
  check([
    { name: 'a message that fits every limit goes on to the later rules', mailFrom: INTERNAL, verdicts: { limits: ok(fits) }, expect: { action: 'deliver', pool: 'normal', codes: ['accepted-domain'] } },
    { name: 'ham under the threshold does not decide', verdicts: { spam: ham, authentication: spfPass }, expect: { action: 'deliver', pool: 'normal', codes: ['spf-pass', 'srs-rewritten'] } },
    {
      name: 'an alert-only breach delivers, with a limit-alert note after the deciding reason',
      mailFrom: INTERNAL,
      verdicts: { limits: ok(over('alert')) },
      expect: { action: 'deliver', pool: 'normal', codes: ['accepted-domain', 'limit-alert'] },
    },
    {
      name: 'a DNS failure is not absence: ignored by default, with a dns-error note',
      verdicts: { senderDomain: failed('ESERVFAIL'), authentication: spfPass },
      expect: { action: 'deliver', pool: 'normal', codes: ['spf-pass', 'srs-rewritten', 'dns-error'] },
    },
    { name: "a DNS failure defers when dns.onError is 'defer'", verdicts: { senderDomain: failed('ETIMEOUT') }, policy: { dns: { onError: 'defer' } }, expect: { action: 'defer', pool: null, codes: ['dns-error'] } },
    { name: "a DNS failure uses the high-risk pool when dns.onError is 'high-risk'", verdicts: { senderDomain: failed('ETIMEOUT') }, policy: { dns: { onError: 'high-risk' } }, expect: { action: 'deliver', pool: 'high-risk', codes: ['dns-error'] } },
    {
      name: 'DKIM does not verify when the policy turns it off',
      verdicts: { authentication: dkimPass },
      policy: { relay: { dkim: false } },
      expect: { action: 'deliver', pool: 'relay', codes: ['relay-unverified'] },
    },
    {
      name: 'strict alignment: DKIM d=mail.fabrikam.example does not align with fabrikam.example',
      verdicts: { authentication: dkimPass },
      policy: { relay: { alignment: 'strict' } },
      expect: { action: 'deliver', pool: 'relay', codes: ['relay-unverified'] },
    },
    {
      name: 'DKIM aligned with the header From domain verifies a forward from another envelope domain',
      mailFrom: 'bounce-123@esp.example',
      headers: 'From: Alice <alice@fabrikam.example>\r\n\r\n',
      verdicts: { authentication: ok({ dkim: [{ result: 'pass', domain: 'fabrikam.example' }] }) },
      expect: { action: 'deliver', pool: 'normal', codes: ['dkim-pass', 'srs-rewritten'] },
    },
    {
      name: 'SPF pass for another domain than the sender does not verify',
      verdicts: { authentication: ok({ spf: { result: 'pass', domain: 'elsewhere.example' } }) },
      expect: { action: 'deliver', pool: 'relay', codes: ['relay-unverified'] },
    },
    {
      name: 'a validated ARC chain sealed last by a trusted sealer that saw SPF pass verifies (arc-pass)',
      verdicts: { authentication: ok({ spf: { result: 'fail' }, arc: { result: 'pass', sealer: 'lists.example', spf: { result: 'pass', domain: 'fabrikam.example' } } }) },
      policy: { relay: { trustedArcSealers: ['lists.example'] } },
      expect: { action: 'deliver', pool: 'normal', codes: ['arc-pass', 'srs-rewritten'] },
    },
    {
      name: 'the same ARC chain from a sealer the policy does not trust does not verify',
      verdicts: { authentication: ok({ arc: { result: 'pass', sealer: 'lists.example', spf: { result: 'pass', domain: 'fabrikam.example' } } }) },
      policy: { relay: { trustedArcSealers: ['other.example'] } },
      expect: { action: 'deliver', pool: 'relay', codes: ['relay-unverified'] },
    },
    {
      name: 'a broken ARC chain never verifies, even from a trusted sealer',
      verdicts: { authentication: ok({ arc: { result: 'fail', sealer: 'lists.example', spf: { result: 'pass', domain: 'fabrikam.example' } } }) },
      policy: { relay: { trustedArcSealers: ['lists.example'] } },
      expect: { action: 'deliver', pool: 'relay', codes: ['relay-unverified'] },
    },
    {
      name: 'a failed spam classifier fails open by default, with provider-failed',
      mailFrom: INTERNAL,
      verdicts: { spam: failed('ECONNREFUSED') },
      expect: { action: 'deliver', pool: 'normal', codes: ['accepted-domain', 'provider-failed'] },
    },
    {
      name: 'a failed rate limiter defers when its fail mode is defer',
      mailFrom: INTERNAL,
      verdicts: { limits: failed('redis down') },
      policy: { onProviderFailure: { rateLimiter: 'defer' } },
      expect: { action: 'defer', pool: null, codes: ['provider-failed'] },
    },
    {
      name: 'a verified forward whose SRS local part would pass 64 octets is sent unrewritten, with srs-skipped',
      mailFrom: `${'a'.repeat(50)}@fabrikam.example`,
      verdicts: { authentication: ok({ spf: { result: 'pass', domain: 'fabrikam.example' } }) },
      expect: { action: 'deliver', pool: 'normal', codes: ['spf-pass', 'srs-skipped'], mailFrom: `${'a'.repeat(50)}@fabrikam.example` },
    },
    {
      name: 'IDN sender domains are compared in A-labels: Bücher.example is xn--bcher-kva.example',
      mailFrom: 'ü@Bücher.example',
      verdicts: { authentication: ok({ spf: { result: 'pass', domain: 'xn--bcher-kva.example' } }) },
      expect: { action: 'deliver', pool: 'normal', codes: ['spf-pass', 'srs-rewritten'], mailFrom: 'SRS0=StTQ=2W=xn--bcher-kva.example=ü@contoso.com' }, // as Mail::SRS gives,
    },
  ]);

  it('a block carries a suggested SMTP reply with an enhanced status code', () => {
    const decision = decide({ name: '', verdicts: { limits: ok(restricted) }, expect: { action: 'block', pool: null, codes: [] } });
    assert.equal(decision.reply?.line, '550 5.1.8 Sender is restricted from sending mail by outbound policy');
  });

  it('a restricting breach: 550 5.1.8 when the limiter imposed the restriction, 451 4.7.1 when it imposed none (released today)', () => {
    const userBreach = (imposed: Restriction | null | undefined): ConsumeResult => ({ ...over('block-user'), ...(imposed === undefined ? {} : { imposed }) });
    const imposedNow = decide({ name: '', verdicts: { limits: ok(userBreach({ until: null, reason: 'r' })) }, expect: { action: 'block', pool: null, codes: [] } });
    assert.equal(imposedNow.reply?.line, '550 5.1.8 Sending limit exceeded: sender is restricted from sending mail');
    assert.match(imposedNow.reasons[0]!.message, /the sender is now restricted/);
    const released = decide({ name: '', verdicts: { limits: ok(userBreach(null)) }, expect: { action: 'block', pool: null, codes: [] } });
    assert.equal(released.reply?.line, '451 4.7.1 Sending rate limit exceeded, try again later');
    assert.doesNotMatch(released.reasons[0]!.message, /now restricted/);
    assert.match(released.reasons[0]!.message, /released today/);
    // A limiter that does not say is taken at its breaches' word.
    const unsaid = decide({ name: '', verdicts: { limits: ok(userBreach(undefined)) }, expect: { action: 'block', pool: null, codes: [] } });
    assert.equal(unsaid.reply?.code, 550);
    // A block breach with imposed: null is a plain block.
    const block = decide({ name: '', verdicts: { limits: ok({ ...over('block'), imposed: null }) }, expect: { action: 'block', pool: null, codes: [] } });
    assert.equal(block.reply?.code, 451);
    assert.doesNotMatch(block.reasons[0]!.message, /released|restricted/);
  });

  it('a released sender over a block-user limit, through the memory limiter: 451, not restricted, no restricted event', async () => {
    const limiter = createMemoryRateLimiter();
    const events: string[] = [];
    limiter.subscribe((event) => events.push(event.type));
    const limited = createPolicy({ acceptedDomains: ['contoso.com'], limits: { messagesPerMinute: 1, action: 'block-user' } });
    const send = (seconds: number) =>
      decidePool({ mailFrom: INTERNAL, rcptTo: ['x@fabrikam.example'] }, { policy: limited, providers: { rateLimiter: limiter }, now: new Date(NOW.getTime() + seconds * 1000) });
    assert.equal((await send(0)).action, 'deliver');
    assert.equal((await send(1)).reply?.code, 550, 'the breach restricts');
    assert.deepEqual(events, ['restricted']);
    assert.equal(await limiter.release(INTERNAL, new Date(NOW.getTime() + 2_000)), true);
    const refused = await send(3);
    assert.equal(refused.action, 'block');
    assert.equal(refused.reply?.line, '451 4.7.1 Sending rate limit exceeded, try again later');
    assert.doesNotMatch(refused.reasons[0]!.message, /now restricted/);
    assert.equal(await limiter.restriction(INTERNAL, new Date(NOW.getTime() + 4_000)), null);
    assert.deepEqual(events, ['restricted', 'released']);
  });

  it('the decision names the pool with its trace name, renameable in the policy', () => {
    const renamed = decide({ name: '', policy: { pools: { relay: 'RelayPool-B' } }, expect: { action: 'deliver', pool: 'relay', codes: [] } });
    assert.equal(renamed.poolName, 'RelayPool-B');
    assert.equal(decide({ name: '', expect: { action: 'deliver', pool: 'relay', codes: [] } }).poolName, 'RegularRelayOutboundPool');
  });

  it('every consulted verdict is in the decision, including the ones not needed', () => {
    const decision = decide({ name: '', verdicts: { spam: ham, authentication: spfPass, senderDomain: resolves }, expect: { action: 'deliver', pool: 'normal', codes: [] } });
    assert.deepEqual(decision.verdicts.spam, ham);
    assert.deepEqual(decision.verdicts.senderDomain, resolves);
    assert.equal(decision.verdicts.limits.state, 'absent');
    assert.deepEqual(decision.ndr, { isNdr: false, basis: null });
  });
});
