// Property tests of the decision core (SPEC §3–§4): for random messages, verdicts and policies,
// decideFromVerdicts never throws, is deterministic, never mutates its inputs, and returns a
// decision whose action, pool, reply, reasons and SRS outcome agree with one another and with
// the rules' order. Junk input gets OutboundPoolsError and nothing else.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decideFromVerdicts, decidePool, type VerdictsInput } from '../../src/decide/gather.js';
import type { Decision, OutboundMessage, ReasonCode, SrsContext, Verdict } from '../../src/decide/types.js';
import { OutboundPoolsError } from '../../src/errors.js';
import { createPolicy, type Policy, type PolicyInput } from '../../src/policy.js';
import type { AuthenticationVerdict, ConsumeResult, SpamVerdict } from '../../src/providers/types.js';
import { Srs } from '../../src/srs/index.js';

const NOW = new Date('2024-03-01T12:00:00Z');

// ---------------------------------------------------------------------------------------------
// Generators.

const ACCEPTED_DOMAINS = ['contoso.com', '*.contoso.org'];
/** Sender and recipient domains, with whether ACCEPTED_DOMAINS accepts them. */
const DOMAINS: ReadonlyMap<string, boolean> = new Map([
  ['contoso.com', true],
  ['mail.contoso.org', true],
  ['contoso.org', false], // *.contoso.org matches subdomains only
  ['fabrikam.example', false],
  ['mail.fabrikam.example', false],
  ['example.net', false],
  ['forward.example.co.uk', false],
]);
const domain = fc.constantFrom(...DOMAINS.keys());
const local = fc.constantFrom('alice', 'bob', 'carol.d', 'x+tag', 'postmaster', 'o_o', 'user-42');
const address = fc.tuple(local, domain).map(([l, d]) => `${l}@${d}`);
const sender = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom('', '<>') },
  { weight: 10, arbitrary: address },
  { weight: 1, arbitrary: address.map((a) => `<${a}>`) },
);
const recipient = fc.oneof({ weight: 8, arbitrary: address }, { weight: 1, arbitrary: local.map((l) => `${l}@[192.0.2.7]`) });

/** Content-Type values, with whether they make a delivery-status report (rule 4). */
const CONTENT_TYPES: ReadonlyMap<string, boolean> = new Map([
  ['multipart/report; report-type=delivery-status; boundary="b1"', true],
  ['multipart/report; report-type="delivery-status"', true],
  ['Multipart/Report; Report-Type=Delivery-Status', true],
  ['multipart/report (a DSN); report-type=delivery-status', true],
  ['multipart/report; report-type=disposition-notification', false],
  ['multipart/report', false],
  ['multipart/mixed; boundary=x', false],
  ['text/plain; charset=utf-8', false],
]);
const headers = fc
  .record(
    {
      from: address.map((a) => `From: Someone <${a}>`),
      messageId: fc.integer({ min: 1, max: 5 }).map((n) => `Message-ID: <m${n}@contoso.com>`),
      contentType: fc
        .oneof(
          { weight: 1, arbitrary: fc.constantFrom(...[...CONTENT_TYPES].filter(([, dsn]) => dsn).map(([type]) => type)) },
          { weight: 4, arbitrary: fc.constantFrom(...[...CONTENT_TYPES].filter(([, dsn]) => !dsn).map(([type]) => type)) },
        )
        .map((c) => `Content-Type: ${c}`),
    },
    { requiredKeys: [] },
  )
  .chain((fields) => fc.tuple(fc.constant(Object.values(fields).join('\r\n') + '\r\n\r\nbody\r\n'), fc.boolean()))
  .map(([text, bytes]) => (bytes ? new TextEncoder().encode(text) : text));

const isoDate = fc.date({ min: new Date('2020-01-01'), max: new Date('2030-01-01'), noInvalidDate: true }).map((d) => d.toISOString());
const LIMIT_WINDOWS = ['messagesPerMinute', 'internalRecipientsPerHour', 'externalRecipientsPerHour', 'recipientsPerDay'] as const;
const LIMIT_ACTIONS = ['block', 'alert', 'block-user-for-today', 'block-user'] as const;
const breach = fc.record({
  window: fc.constantFrom(...LIMIT_WINDOWS),
  limit: fc.integer({ min: 1, max: 1000 }),
  used: fc.integer({ min: 0, max: 2000 }),
  action: fc.constantFrom(...LIMIT_ACTIONS),
  set: fc.constantFrom('set-a', 'set-b'),
});
const restriction = fc.oneof(
  { weight: 6, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.record({ until: fc.oneof(fc.constant(null), isoDate), reason: fc.constantFrom('abuse', 'limit') }, { requiredKeys: ['until'] }) },
);
const breaches = fc.oneof({ weight: 2, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(breach, { minLength: 1, maxLength: 3 }) });
const consumeResult: fc.Arbitrary<ConsumeResult> = fc.record({ restriction, breaches, counted: fc.boolean() });
const senderDomainValue = fc.record({
  domain,
  receivesMail: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  basis: fc.constantFrom('mx', 'a', 'aaaa', 'null-mx', 'no-records') as fc.Arbitrary<'mx' | 'a' | 'aaaa' | 'null-mx' | 'no-records'>,
});
const CATEGORIES = ['phishing', 'Malware', 'bulk', 'PHISHING', 'adult'];
const spamValue: fc.Arbitrary<SpamVerdict> = fc
  .record(
    { score: fc.double({ min: -10, max: 30, noNaN: true }), isSpam: fc.boolean(), categories: fc.array(fc.constantFrom(...CATEGORIES), { maxLength: 2 }) },
    { requiredKeys: [] },
  )
  .filter((value) => Object.keys(value).length > 0);
const spfResult = fc.constantFrom('pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror', 'PASS', 'Pass');
const authResult = fc.constantFrom('pass', 'fail', 'neutral', 'none', 'temperror', 'permerror', 'policy', 'PASS');
const authDomain = fc.constantFrom(...DOMAINS.keys(), 'FABRIKAM.example', 'other.example', 'arc.example');
const spf = fc.record({ result: spfResult, domain: authDomain }, { requiredKeys: ['result'] });
const dkim = fc.record({ result: authResult, domain: authDomain, selector: fc.constantFrom('s1', 's2') }, { requiredKeys: ['result', 'domain'] });
const arc = fc.record(
  { result: authResult, sealer: fc.constantFrom('arc.example', 'ARC.example', 'fabrikam.example', 'untrusted.example'), spf, dkim: fc.array(dkim, { maxLength: 2 }) },
  { requiredKeys: ['result'] },
);
const authenticationValue = fc.record(
  { spf, dkim: fc.array(dkim, { maxLength: 3 }), arc, dmarc: fc.record({ result: authResult, domain: authDomain }, { requiredKeys: ['result'] }) },
  { requiredKeys: [] },
) as fc.Arbitrary<AuthenticationVerdict>;

/** A verdict in any state: given, provided, failed or absent. */
function verdictOf<T>(value: fc.Arbitrary<T>): fc.Arbitrary<Verdict<T>> {
  return fc.oneof(
    fc.constant({ state: 'absent', why: 'not configured' } as const),
    fc.constantFrom('timeout', 'ESERVFAIL: queryMx', 'returned garbage').map((error) => ({ state: 'failed', error }) as const),
    value.map((v) => ({ state: 'given', value: v }) as const),
    value.map((v) => ({ state: 'provided', value: v }) as const),
  );
}
const verdicts: fc.Arbitrary<VerdictsInput> = fc.record(
  {
    limits: verdictOf(consumeResult),
    senderDomain: verdictOf(senderDomainValue),
    spam: verdictOf(spamValue),
    authentication: verdictOf(authenticationValue),
  },
  { requiredKeys: [] },
);

const message: fc.Arbitrary<OutboundMessage> = fc.record(
  {
    mailFrom: sender,
    rcptTo: fc.array(recipient, { minLength: 1, maxLength: 5 }),
    headers,
    submitter: fc.constantFrom('user-1', 'user-2'),
    spam: spamValue,
    authentication: authenticationValue,
  },
  { requiredKeys: ['mailFrom', 'rcptTo'] },
);

const failureMode = fc.constantFrom('fail-open', 'defer') as fc.Arbitrary<'fail-open' | 'defer'>;
const limitSet = fc.record(
  { messagesPerMinute: fc.constant(30), recipientsPerMessage: fc.integer({ min: 1, max: 8 }), action: fc.constantFrom(...LIMIT_ACTIONS) },
  { requiredKeys: ['messagesPerMinute'] },
);
const policyInput: fc.Arbitrary<PolicyInput> = fc.record(
  {
    acceptedDomains: fc.constant(ACCEPTED_DOMAINS),
    limits: fc.oneof(limitSet, fc.tuple(limitSet, limitSet).map(([a, b]) => [{ ...a, name: 'set-a' }, { ...b, name: 'set-b' }])),
    overLimit: fc.constantFrom('block', 'high-risk') as fc.Arbitrary<'block' | 'high-risk'>,
    spam: fc.record({ threshold: fc.double({ min: -5, max: 20, noNaN: true }), blockCategories: fc.subarray(['phishing', 'MALWARE', 'adult']) }, { requiredKeys: [] }),
    relay: fc.record(
      {
        dkim: fc.boolean(),
        alignment: fc.constantFrom('relaxed', 'strict') as fc.Arbitrary<'relaxed' | 'strict'>,
        trustedArcSealers: fc.subarray(['arc.example', 'fabrikam.example']),
      },
      { requiredKeys: [] },
    ),
    dns: fc.record({ onError: fc.constantFrom('ignore', 'defer', 'high-risk') as fc.Arbitrary<'ignore' | 'defer' | 'high-risk'> }, { requiredKeys: [] }),
    onProviderFailure: fc.record({ rateLimiter: failureMode, spam: failureMode, authenticator: failureMode }, { requiredKeys: [] }),
    pools: fc.record({ normal: fc.constant('Pool-Normal'), 'high-risk': fc.constant('Pool-Risky'), relay: fc.constant('Pool-Relay') }, { requiredKeys: [] }),
  },
  { requiredKeys: ['acceptedDomains'] },
);

const SRS_REWRITER = new Srs({ secret: 'property-secret' });
const srsContext: fc.Arbitrary<SrsContext | undefined> = fc.constantFrom(
  undefined,
  { rewriter: SRS_REWRITER, domain: 'fwd.contoso.com' },
  { rewriter: SRS_REWRITER, domain: 'fabrikam.example' }, // senders already there are not rewritten
);

// ---------------------------------------------------------------------------------------------
// Helpers: freezing, and a reference model of the rules' order.

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Reflect.ownKeys(value)) deepFreeze((value as Record<PropertyKey, unknown>)[key]);
  }
  return value;
}

function valueOf<T>(verdict: Verdict<T>): T | undefined {
  return verdict.state === 'given' || verdict.state === 'provided' ? verdict.value : undefined;
}

const ABSENT = { state: 'absent', why: '' } as const;

function headerText(value: string | Uint8Array | undefined): string {
  if (value === undefined) return '';
  return typeof value === 'string' ? value : new TextDecoder().decode(value);
}

function isDsn(message: OutboundMessage): boolean {
  const match = /^content-type:[ \t]*(.*)$/im.exec(headerText(message.headers).split(/\r?\n\r?\n/)[0]!);
  return match !== null && CONTENT_TYPES.get(match[1]!) === true;
}

function senderAddress(mailFrom: string): string | null {
  if (mailFrom === '' || mailFrom === '<>') return null;
  return mailFrom.startsWith('<') ? mailFrom.slice(1, -1) : mailFrom;
}

const domainOf = (addr: string) => addr.slice(addr.lastIndexOf('@') + 1);
const PASS_CODES: readonly ReasonCode[] = ['spf-pass', 'dkim-pass', 'arc-pass'];
const INFORMATIONAL: readonly ReasonCode[] = ['srs-rewritten', 'srs-skipped', 'limit-alert', 'dns-error', 'provider-failed'];

/**
 * The first reason a decision must give, worked out independently of src from SPEC §3:
 * `provider-failed:<provider>` for a deferring failure, `7|8` where only DKIM/ARC alignment
 * (not modelled here) tells relay-unverified from dkim-pass/arc-pass.
 */
function expectedFirst(msg: OutboundMessage, input: VerdictsInput, policy: Policy): string {
  const addr = senderAddress(msg.mailFrom);
  const limits = input.limits ?? ABSENT;
  if (limits.state === 'failed' && policy.onProviderFailure.rateLimiter === 'defer') return 'provider-failed:rateLimiter';
  const limitValue = valueOf(limits);
  if (limitValue?.restriction != null) return 'sender-restricted';
  if (policy.recipientsPerMessage !== null && msg.rcptTo.length > policy.recipientsPerMessage.limit) return 'recipients-per-message-exceeded';
  if (limitValue !== undefined && limitValue.breaches.some((b) => b.action !== 'alert')) return 'sending-limit-exceeded';
  if (addr === null || isDsn(msg)) return 'ndr';
  const senderDomain = input.senderDomain ?? ABSENT;
  if (senderDomain.state === 'failed' && policy.dns.onError !== 'ignore') return 'dns-error';
  if (valueOf(senderDomain)?.receivesMail === false) return 'sender-domain-unresolvable';
  const spam = input.spam ?? (msg.spam === undefined ? ABSENT : ({ state: 'given', value: msg.spam } as const));
  if (spam.state === 'failed' && policy.onProviderFailure.spam === 'defer') return 'provider-failed:spam';
  const spamValue = valueOf(spam);
  if (spamValue !== undefined) {
    if ((spamValue.categories ?? []).some((c) => policy.spam.blockCategories.includes(c.toLowerCase()))) return 'spam';
    if (spamValue.isSpam === true) return 'spam';
    if (spamValue.score !== undefined && policy.spam.threshold !== null && spamValue.score >= policy.spam.threshold) return 'spam';
  }
  const senderDomainName = domainOf(addr);
  if (DOMAINS.get(senderDomainName) === true) return 'accepted-domain';
  const auth = input.authentication ?? (msg.authentication === undefined ? ABSENT : ({ state: 'given', value: msg.authentication } as const));
  if (auth.state === 'failed' && policy.onProviderFailure.authenticator === 'defer') return 'provider-failed:authenticator';
  const authValue = valueOf(auth);
  if (authValue === undefined) return 'relay-unverified';
  const passes = (result: string | undefined) => result?.toLowerCase() === 'pass';
  // The identity rule: an SPF pass vouches only for the domain it names (none: nobody).
  if (passes(authValue.spf?.result) && authValue.spf?.domain !== undefined && authValue.spf.domain.toLowerCase() === senderDomainName) return 'spf-pass';
  const anyDkimPass = (authValue.dkim ?? []).some((d) => passes(d.result));
  const arcCould = policy.relay.trustedArcSealers.length > 0 && passes(authValue.arc?.result);
  if (!(policy.relay.dkim && anyDkimPass) && !arcCould) return 'relay-unverified';
  return '7|8';
}

function firstLabel(decision: Decision): string {
  const first = decision.reasons[0]!;
  return first.code === 'provider-failed' ? `provider-failed:${first.provider}` : first.code;
}

/** The decision agrees with itself and with the policy (pool ⇔ reasons ⇔ reply ⇔ SRS). */
function assertCoherent(decision: Decision, msg: OutboundMessage, policy: Policy, srs: SrsContext | undefined): void {
  assert.ok(decision.reasons.length > 0, 'a decision gives at least one reason');
  const first = decision.reasons[0]!;
  assert.ok(!['srs-rewritten', 'srs-skipped', 'limit-alert'].includes(first.code), `an informational ${first.code} cannot come first`);
  for (const later of decision.reasons.slice(1)) {
    assert.ok(INFORMATIONAL.includes(later.code), `only the first reason decides; ${later.code} came later`);
  }
  for (const reason of decision.reasons) {
    if (reason.code === 'provider-failed') assert.ok(['rateLimiter', 'spam', 'authenticator'].includes(reason.provider!), 'provider-failed names its provider');
    if (reason.code === 'dns-error') assert.equal(reason.provider, 'dns');
  }

  if (decision.action === 'deliver') {
    assert.ok(decision.pool !== null, 'deliver has a pool');
    assert.equal(decision.poolName, policy.pools[decision.pool]);
    assert.equal(decision.reply, null);
  } else {
    assert.equal(decision.pool, null, `${decision.action} has no pool`);
    assert.equal(decision.poolName, null);
    assert.ok(decision.reply !== null, `${decision.action} has a reply`);
    assert.equal(decision.reply.line, `${decision.reply.code} ${decision.reply.enhancedCode} ${decision.reply.text}`);
    if (decision.action === 'defer') assert.equal(decision.reply.code, 451, 'a deferral is a temporary failure');
    assert.equal(decision.srs, null);
  }

  const outcome = `${decision.action}/${decision.pool}`;
  switch (first.code) {
    case 'ndr':
    case 'sender-domain-unresolvable':
      assert.equal(outcome, 'deliver/high-risk');
      break;
    case 'spam':
      if (decision.action === 'block') {
        assert.equal(decision.reply.enhancedCode, '5.7.1');
        assert.ok(policy.spam.blockCategories.includes(String(first.detail?.category)), 'a spam block names a blocked category');
      } else {
        assert.equal(outcome, 'deliver/high-risk');
      }
      break;
    case 'relay-unverified':
      assert.equal(outcome, 'deliver/relay');
      break;
    case 'accepted-domain':
    case 'spf-pass':
    case 'dkim-pass':
    case 'arc-pass':
      assert.equal(outcome, 'deliver/normal');
      break;
    case 'sender-restricted':
    case 'recipients-per-message-exceeded':
      assert.equal(decision.action, 'block');
      break;
    case 'sending-limit-exceeded':
      assert.equal(outcome, policy.overLimit === 'high-risk' ? 'deliver/high-risk' : 'block/null');
      break;
    case 'dns-error':
      assert.notEqual(policy.dns.onError, 'ignore', "dns-error cannot decide when dns.onError is 'ignore'");
      assert.equal(outcome, policy.dns.onError === 'defer' ? 'defer/null' : 'deliver/high-risk');
      break;
    case 'provider-failed':
      assert.equal(outcome, 'defer/null');
      assert.equal(policy.onProviderFailure[first.provider as 'rateLimiter' | 'spam' | 'authenticator'], 'defer');
      break;
    default:
      assert.fail(`unexpected first reason ${first.code}`);
  }
  if (decision.action === 'defer') assert.ok(first.code === 'dns-error' || first.code === 'provider-failed', 'only failures defer');

  // SRS: only rule 8 (normal pool, first reason a pass) touches the envelope sender.
  const original = senderAddress(msg.mailFrom) ?? '';
  if (PASS_CODES.includes(first.code)) {
    assert.ok(decision.srs !== null, 'rule 8 says what happened to the envelope sender');
    assert.ok(decision.reasons[1]?.code === 'srs-rewritten' || decision.reasons[1]?.code === 'srs-skipped');
  } else {
    assert.equal(decision.srs, null, `no SRS outcome unless a forward was verified (first reason ${first.code})`);
    assert.ok(!decision.reasons.some((r) => r.code === 'srs-rewritten' || r.code === 'srs-skipped'));
  }
  if (decision.srs?.applied === true) {
    assert.equal(decision.pool, 'normal');
    assert.ok(srs !== undefined, 'SRS applied without a rewriter');
    assert.equal(decision.reasons[1]!.code, 'srs-rewritten');
    assert.equal(decision.srs.original, original);
    assert.equal(decision.mailFrom, decision.srs.rewritten);
    assert.match(decision.mailFrom, /^SRS[01][=+-]/i);
    assert.ok(decision.mailFrom.endsWith(`@${srs.domain}`));
  } else {
    assert.equal(decision.mailFrom, original, 'the envelope sender is unchanged unless SRS was applied');
  }
  if (decision.ndr.isNdr) {
    assert.ok(
      ['sender-restricted', 'recipients-per-message-exceeded', 'sending-limit-exceeded', 'ndr', 'provider-failed'].includes(first.code),
      `an NDR is decided by rules 1–4, not by ${first.code}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------

describe('decideFromVerdicts: properties of the decision core', () => {
  it('never throws, is deterministic, never mutates its inputs, and returns a coherent decision that follows the rules in order', () => {
    fc.assert(
      fc.property(message, verdicts, policyInput, srsContext, fc.boolean(), (msg, given, input, srs, prebuilt) => {
        const before = structuredClone({ msg, given, input });
        const frozen = deepFreeze({ msg, given, input });
        const policy = createPolicy(frozen.input);
        const context = Object.freeze({ policy: prebuilt ? policy : frozen.input, now: NOW, ...(srs === undefined ? {} : { srs }) });

        let first: Decision;
        try {
          first = decideFromVerdicts(frozen.msg, frozen.given, context);
        } catch (error) {
          assert.fail(`decideFromVerdicts threw on valid input: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
        }
        const second = decideFromVerdicts(frozen.msg, frozen.given, context);
        assert.deepEqual(second, first, 'same input, same decision');
        const third = decideFromVerdicts(frozen.msg, frozen.given, { ...context, policy: prebuilt ? frozen.input : policy });
        assert.deepEqual(third, first, 'a plain policy and its createPolicy() result decide alike');

        assert.deepEqual(structuredClone({ msg, given, input }), before, 'the inputs were mutated');
        assert.equal(NOW.getTime(), new Date('2024-03-01T12:00:00Z').getTime(), 'the clock was mutated');

        assertCoherent(first, msg, policy, srs);
        const expected = expectedFirst(msg, given, policy);
        if (expected === '7|8') {
          assert.ok(['relay-unverified', 'dkim-pass', 'arc-pass'].includes(firstLabel(first)), `expected rule 7 or 8, got ${firstLabel(first)}`);
        } else {
          assert.equal(firstLabel(first), expected, 'the first reason is the first rule that applies (SPEC §3)');
        }
      }),
      { numRuns: 1500, includeErrorInReport: true },
    );
  });

  it('a forward from outside the accepted domains is relayed (rule 7) or verified and SRS-rewritten (rule 8), never anything else', () => {
    const outsideSender = fc.tuple(local, fc.constantFrom(...[...DOMAINS].filter(([, accepted]) => !accepted).map(([d]) => d))).map(([l, d]) => `${l}@${d}`);
    const benign = fc.record(
      {
        limits: fc.constantFrom({ state: 'provided', value: { restriction: null, breaches: [], counted: true } } as const, { state: 'failed', error: 'timeout' } as const),
        senderDomain: fc.constantFrom({ state: 'provided', value: { domain: 'x.example', receivesMail: true, basis: 'mx' } } as const, { state: 'absent', why: '' } as const),
        spam: fc.constantFrom({ state: 'given', value: { isSpam: false } } as const, { state: 'failed', error: 'timeout' } as const),
      },
      { requiredKeys: [] },
    );
    const authentication = fc.oneof(
      { weight: 6, arbitrary: authenticationValue.map((value) => ({ state: 'provided', value }) as const) },
      { weight: 1, arbitrary: fc.constant({ state: 'failed', error: 'timeout' } as const) },
      { weight: 1, arbitrary: fc.constant({ state: 'absent', why: '' } as const) },
    );
    const fromHeader = fc.option(address.map((a) => `From: <${a}>\r\n\r\n`), { nil: undefined });
    const quietPolicy = policyInput.map((p): PolicyInput => ({ ...p, limits: { messagesPerMinute: 30 }, onProviderFailure: { authenticator: p.onProviderFailure?.authenticator ?? 'fail-open' } }));
    fc.assert(
      fc.property(outsideSender, fromHeader, benign, authentication, quietPolicy, srsContext, (mailFrom, head, rest, auth, input, srs) => {
        const msg: OutboundMessage = { mailFrom, rcptTo: ['bob@example.net'], ...(head === undefined ? {} : { headers: head }) };
        const given: VerdictsInput = { ...rest, authentication: auth };
        const policy = createPolicy(input);
        const decision = decideFromVerdicts(msg, given, { policy, now: NOW, ...(srs === undefined ? {} : { srs }) });
        assertCoherent(decision, msg, policy, srs);
        const code = firstLabel(decision);
        const expected = expectedFirst(msg, given, policy);
        if (expected === '7|8') assert.ok(['relay-unverified', 'dkim-pass', 'arc-pass'].includes(code), `expected rule 7 or 8, got ${code}`);
        else assert.equal(code, expected);
        const first = decision.reasons[0]!;
        if (first.code === 'dkim-pass') {
          assert.ok(policy.relay.dkim, 'DKIM verifies only when relay.dkim is on');
          if (policy.relay.alignment === 'strict') {
            const fromDomain = head === undefined ? null : domainOf(head.slice(head.indexOf('<') + 1, head.indexOf('>')));
            assert.ok([domainOf(mailFrom), fromDomain].includes(String(first.detail?.domain).toLowerCase()), 'strict alignment: d= equals the sender or From domain');
          }
        }
        if (first.code === 'arc-pass') {
          const auth = valueOf(given.authentication!)!;
          assert.ok(policy.relay.trustedArcSealers.includes(auth.arc!.sealer!.toLowerCase()), 'ARC verifies only when sealed by a trusted sealer');
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('the decision reports the verdicts it was given, and fills the rest in as absent', () => {
    fc.assert(
      fc.property(message, verdicts, policyInput, (msg, given, input) => {
        const decision = decideFromVerdicts(msg, given, { policy: input, now: NOW });
        for (const field of ['limits', 'senderDomain'] as const) {
          assert.equal(decision.verdicts[field].state, given[field]?.state ?? 'absent');
        }
        assert.equal(decision.verdicts.spam.state, given.spam?.state ?? (msg.spam === undefined ? 'absent' : 'given'));
        assert.equal(decision.verdicts.authentication.state, given.authentication?.state ?? (msg.authentication === undefined ? 'absent' : 'given'));
      }),
      { numRuns: 300, includeErrorInReport: true },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The earlier rule wins: several competing conditions, each of which alone would decide.

const RULE_CODES: Readonly<Record<number, ReasonCode>> = {
  1: 'sender-restricted',
  2: 'recipients-per-message-exceeded',
  3: 'sending-limit-exceeded',
  4: 'ndr',
  5: 'sender-domain-unresolvable',
  6: 'spam',
  7: 'relay-unverified',
  8: 'spf-pass',
  9: 'accepted-domain',
};

const noise = <T>(value: fc.Arbitrary<T>): fc.Arbitrary<Verdict<T>> =>
  fc.oneof(
    fc.constant({ state: 'absent', why: 'not configured' } as const),
    fc.constant({ state: 'failed', error: 'timeout' } as const),
    value.map((v) => ({ state: 'provided', value: v }) as const),
  );
const state = fc.constantFrom('given', 'provided') as fc.Arbitrary<'given' | 'provided'>;

const competition = fc.record({
  conditions: fc.uniqueArray(fc.integer({ min: 1, max: 6 }), { minLength: 2, maxLength: 6 }),
  base: fc.constantFrom(7, 8, 9),
  overLimit: fc.constantFrom('block', 'high-risk') as fc.Arbitrary<'block' | 'high-risk'>,
  states: fc.tuple(state, state, state, state),
  enforced: fc.constantFrom('block', 'block-user', 'block-user-for-today') as fc.Arbitrary<'block' | 'block-user' | 'block-user-for-today'>,
  alerts: fc.array(breach.map((b) => ({ ...b, action: 'alert' as const })), { maxLength: 2 }),
  dsn: fc.constantFrom(...[...CONTENT_TYPES].filter(([, dsn]) => dsn).map(([type]) => type)),
  basis: fc.constantFrom('null-mx', 'no-records') as fc.Arbitrary<'null-mx' | 'no-records'>,
  spamHow: fc.constantFrom('isSpam', 'score', 'category'),
  limitNoise: noise(fc.constant({ restriction: null, breaches: [], counted: true })),
  domainNoise: noise(fc.constant({ domain: 'x.example', receivesMail: true, basis: 'mx' as const })),
  spamNoise: noise(fc.constant({ score: 1, isSpam: false })),
  authNoise: noise(fc.constant({ spf: { result: 'fail' as const } })),
});

describe('the earlier rule wins', () => {
  it('with two or more competing conditions, the first reason is the earliest rule’s code', () => {
    fc.assert(
      fc.property(competition, (c) => {
        const has = (rule: number) => c.conditions.includes(rule);
        const senderAddr = c.base === 9 ? 'alice@contoso.com' : 'carol@fabrikam.example';
        const msg: OutboundMessage = {
          mailFrom: senderAddr,
          rcptTo: has(2) ? ['a@example.net', 'b@example.net', 'c@example.net'] : ['a@example.net'],
          headers: has(4) ? `From: ${senderAddr}\r\nContent-Type: ${c.dsn}\r\n\r\n` : `From: ${senderAddr}\r\nContent-Type: text/plain\r\n\r\n`,
        };
        const limits: Verdict<ConsumeResult> =
          has(1) || has(3)
            ? {
                state: c.states[0],
                value: {
                  restriction: has(1) ? { until: null, reason: 'abuse' } : null,
                  breaches: [...c.alerts, ...(has(3) ? [{ window: 'messagesPerMinute' as const, limit: 30, used: 30, action: c.enforced, set: 'set-a' }] : [])],
                  counted: false,
                },
              }
            : c.limitNoise;
        const given: VerdictsInput = {
          limits,
          senderDomain: has(5) ? { state: c.states[1], value: { domain: 'fabrikam.example', receivesMail: false, basis: c.basis } } : c.domainNoise,
          spam: has(6)
            ? { state: c.states[2], value: c.spamHow === 'isSpam' ? { isSpam: true } : c.spamHow === 'score' ? { score: 7 } : { categories: ['Phishing'] } }
            : c.spamNoise,
          authentication: c.base === 8 ? { state: c.states[3], value: { spf: { result: 'pass', domain: 'fabrikam.example' } } } : c.authNoise,
        };
        const policy: PolicyInput = {
          acceptedDomains: ACCEPTED_DOMAINS,
          limits: { messagesPerMinute: 30, recipientsPerMessage: 2 },
          overLimit: c.overLimit,
          spam: { threshold: 5, ...(c.spamHow === 'category' ? { blockCategories: ['phishing'] } : {}) },
          // Failures only inform here, so the conditions alone compete.
          dns: { onError: 'ignore' },
        };
        const decision = decideFromVerdicts(msg, given, { policy, now: NOW });
        const winner = Math.min(...c.conditions);
        assert.equal(decision.reasons[0]!.code, RULE_CODES[winner], `rules ${c.conditions.join(', ')} (and base ${c.base}) all apply: rule ${winner} must win`);
        assert.equal(decision.reasons[0]!.rule, winner);
        assertCoherent(decision, msg, createPolicy(policy), undefined);
      }),
      { numRuns: 800, includeErrorInReport: true },
    );
  });

  it('with no competing condition, rules 7, 8 and 9 decide by the sender and its authentication', () => {
    fc.assert(
      fc.property(competition, (c) => {
        const senderAddr = c.base === 9 ? 'alice@contoso.com' : 'carol@fabrikam.example';
        const given: VerdictsInput = {
          limits: c.limitNoise,
          senderDomain: c.domainNoise,
          spam: c.spamNoise,
          authentication: c.base === 8 ? { state: c.states[3], value: { spf: { result: 'pass', domain: 'fabrikam.example' } } } : c.authNoise,
        };
        const decision = decideFromVerdicts({ mailFrom: senderAddr, rcptTo: ['a@example.net'] }, given, { policy: { acceptedDomains: ACCEPTED_DOMAINS }, now: NOW });
        assert.equal(decision.reasons[0]!.code, RULE_CODES[c.base]);
      }),
      { numRuns: 200, includeErrorInReport: true },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Junk input: OutboundPoolsError, and nothing else.

const junk = fc.anything({
  maxDepth: 3,
  withNullPrototype: true,
  withSparseArray: true,
  withBoxedValues: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  withDate: true,
  withBigInt: true,
  withObjectString: true,
});
const junkChar = fc.constantFrom('a', 'Z', '0', '.', '@', '<', '>', '"', '\\', '[', ']', ' ', ':', '-', '+', '\x00', '\r', '\n', '\x7f', 'ü', '漢', '\u200b', '\ud800');
const junkAddress = fc.oneof(
  fc.string({ unit: junkChar, maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.tuple(fc.string({ unit: junkChar, maxLength: 20 }), fc.string({ unit: junkChar, maxLength: 20 })).map(([l, d]) => `${l}@${d}`),
  fc.tuple(fc.string({ unit: 'grapheme', maxLength: 20 }), domain).map(([l, d]) => `${l}@${d}`),
  fc.tuple(local, fc.string({ unit: 'grapheme', maxLength: 20 })).map(([l, d]) => `${l}@${d}`),
  fc.integer({ min: 60, max: 1100 }).map((n) => `${'a'.repeat(n)}@contoso.com`),
  fc.integer({ min: 60, max: 300 }).map((n) => `alice@${'b'.repeat(n)}.com`),
  fc.constantFrom('@', '<>@', 'alice@', '@contoso.com', '<alice@contoso.com', 'alice@[999.1.1.1]', 'alice@[IPv6:zz]', 'alice@[192.0.2.1]', '@relay:alice@contoso.com', 'alice@1.2.3.4'),
);

/** Runs both entry points; any error must be an OutboundPoolsError. */
async function onlyOutboundPoolsErrors(what: string, run: () => unknown): Promise<void> {
  try {
    await run();
  } catch (error) {
    assert.ok(
      error instanceof OutboundPoolsError,
      `SRC BUG: ${what} threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)} — bad input must get an OutboundPoolsError, never any other error`,
    );
    assert.ok(typeof error.code === 'string' && error.message.length > 0);
  }
}

async function bothEntryPoints(msg: unknown, given: unknown = {}): Promise<void> {
  const context = { policy: { acceptedDomains: ACCEPTED_DOMAINS }, now: NOW };
  await onlyOutboundPoolsErrors('decideFromVerdicts', () => decideFromVerdicts(msg as OutboundMessage, given as VerdictsInput, context));
  await onlyOutboundPoolsErrors('decidePool', () => decidePool(msg as OutboundMessage, context));
}

const junkSpam = fc.oneof(
  junk,
  fc.record({ score: junk, isSpam: junk, categories: fc.oneof(junk, fc.sparseArray(fc.oneof(junk, fc.constantFrom(...CATEGORIES)), { maxLength: 3 })) }, { requiredKeys: [] }),
);
const junkSpf = fc.oneof(junk, fc.record({ result: fc.oneof(junk, spfResult), domain: junk }, { requiredKeys: [] }));
const junkDkimList = fc.oneof(
  junk,
  fc.sparseArray(fc.oneof(junk, fc.record({ result: fc.oneof(junk, authResult), domain: fc.oneof(junk, authDomain), selector: junk }, { requiredKeys: [] })), { maxLength: 3 }),
);
const junkAuthentication = fc.oneof(
  junk,
  fc.record(
    {
      spf: junkSpf,
      dkim: junkDkimList,
      arc: fc.oneof(junk, fc.record({ result: fc.oneof(junk, authResult), sealer: junk, spf: junkSpf, dkim: junkDkimList }, { requiredKeys: [] })),
      dmarc: fc.oneof(junk, fc.record({ result: fc.oneof(junk, authResult), domain: junk }, { requiredKeys: [] })),
    },
    { requiredKeys: [] },
  ),
);
const junkFields = fc.record(
  {
    mailFrom: fc.oneof(junk, junkAddress, sender),
    rcptTo: fc.oneof(junk, fc.array(fc.oneof(junkAddress, recipient, junk), { maxLength: 4 }), fc.sparseArray(recipient, { maxLength: 4 })),
    headers: fc.oneof(junk, fc.string({ maxLength: 200 }), headers),
    submitter: fc.oneof(junk, fc.string({ maxLength: 20 })),
    ingress: junk,
    spam: junkSpam,
    authentication: junkAuthentication,
  },
  { requiredKeys: ['mailFrom', 'rcptTo'] },
);

const junkLimits = fc.oneof(
  junk,
  fc.record(
    {
      restriction: fc.oneof(junk, fc.record({ until: fc.oneof(junk, isoDate), reason: junk }, { requiredKeys: [] })),
      breaches: fc.oneof(junk, fc.sparseArray(fc.oneof(junk, breach, breach.map((b) => ({ ...b, limit: String(b.limit) }))), { maxLength: 3 })),
      counted: fc.oneof(junk, fc.boolean()),
    },
    { requiredKeys: [] },
  ),
);
const junkSenderDomain = fc.oneof(junk, fc.record({ domain: fc.oneof(junk, domain), receivesMail: fc.oneof(junk, fc.boolean()), basis: fc.oneof(junk, fc.constant('mx')) }, { requiredKeys: [] }));
const junkVerdict = (value: fc.Arbitrary<unknown>) =>
  fc.oneof(
    junk,
    fc.record(
      { state: fc.oneof(fc.constantFrom('given', 'provided', 'failed', 'absent'), junk), value, error: fc.oneof(fc.string(), junk), why: junk },
      { requiredKeys: ['state'] },
    ),
  );
const junkVerdicts = fc.oneof(
  junk,
  fc.record(
    { limits: junkVerdict(junkLimits), senderDomain: junkVerdict(junkSenderDomain), spam: junkVerdict(junkSpam), authentication: junkVerdict(junkAuthentication) },
    { requiredKeys: [] },
  ),
);

const VALID: OutboundMessage = { mailFrom: 'carol@fabrikam.example', rcptTo: ['bob@example.net'] };

describe('junk input gets OutboundPoolsError, never a TypeError or any other error', () => {
  it('junk as the message (fc.anything) makes decidePool and decideFromVerdicts throw only OutboundPoolsError', async () => {
    await fc.assert(
      fc.asyncProperty(junk, (msg) => bothEntryPoints(msg)),
      { numRuns: 400, includeErrorInReport: true },
    );
  });

  it('junk envelope addresses in mailFrom and rcptTo throw only OutboundPoolsError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(junkAddress, sender), fc.array(fc.oneof(junkAddress, recipient), { minLength: 1, maxLength: 3 }), (mailFrom, rcptTo) =>
        bothEntryPoints({ mailFrom, rcptTo }),
      ),
      { numRuns: 600, includeErrorInReport: true },
    );
  });

  it('a message with the right fields holding junk values throws only OutboundPoolsError', async () => {
    await fc.assert(
      fc.asyncProperty(junkFields, (msg) => bothEntryPoints(msg)),
      {
        numRuns: 600, includeErrorInReport: true,
        // Known counterexamples, checked on every run (see the report): a sparse rcptTo, and a
        // null-prototype object where checkSpam prints the value with String().
        examples: [
          [{ mailFrom: 'alice@contoso.com', rcptTo: new Array(1) as string[] }],
          [{ mailFrom: 'alice@contoso.com', rcptTo: ['bob@example.net'], spam: { score: Object.create(null) as object } }],
        ] as unknown as [unknown][],
      },
    );
  });

  it('junk verdicts handed to decideFromVerdicts throw only OutboundPoolsError', async () => {
    await fc.assert(
      fc.asyncProperty(junkVerdicts, async (given) => {
        await onlyOutboundPoolsErrors('decideFromVerdicts', () => decideFromVerdicts(VALID, given as VerdictsInput, { policy: { acceptedDomains: ACCEPTED_DOMAINS }, now: NOW }));
      }),
      {
        numRuns: 600, includeErrorInReport: true,
        // Known counterexamples, checked on every run: a null verdict, a null-prototype score,
        // and a sparse breaches list (which passes the check and crashes rule 3).
        examples: [
          [{ limits: null }],
          [{ spam: { state: 'given', value: { score: Object.create(null) as object } } }],
          [{ limits: { state: 'given', value: { restriction: null, breaches: new Array(1), counted: true } } }],
        ] as unknown as [unknown][],
      },
    );
  });
});

// The counterexamples above, one test each, so that every bug shows on its own.
describe('junk that src lets through today (each one a bug: see the assertion messages)', () => {
  const context = { policy: { acceptedDomains: ACCEPTED_DOMAINS }, now: NOW };
  const cases: readonly (readonly [string, unknown, unknown])[] = [
    ['a sparse rcptTo ([ <hole> ]) is invalid-message, not a TypeError from readEnvelope', { mailFrom: 'alice@contoso.com', rcptTo: new Array(1) }, {}],
    ['a null verdict (verdicts.limits = null) is invalid-context, not a TypeError from checkedVerdict', VALID, { limits: null }],
    ['a null-prototype spam score on the message is invalid-message, not a TypeError from checkSpam', { ...VALID, spam: { score: Object.create(null) as object } }, {}],
    ['a null-prototype spam score in a given verdict is invalid-context, not a TypeError from checkSpam', VALID, { spam: { state: 'given', value: { score: Object.create(null) as object } } }],
    ['a given limits verdict whose breaches have a hole is invalid-context, not a TypeError from rule 3', VALID, { limits: { state: 'given', value: { restriction: null, breaches: new Array(1), counted: true } } }],
    ['a given authentication verdict whose dkim list has a hole is invalid-context, not a TypeError from rule 7', VALID, { authentication: { state: 'given', value: { dkim: new Array(1) } } }],
  ];
  for (const [name, msg, given] of cases) {
    it(name, async () => {
      const failures: string[] = [];
      const collect = async (what: string, run: () => unknown) => {
        try {
          await onlyOutboundPoolsErrors(what, run);
        } catch (error) {
          failures.push((error as Error).message);
        }
      };
      await collect('decideFromVerdicts', () => decideFromVerdicts(msg as OutboundMessage, given as VerdictsInput, context));
      if (Object.keys(given as object).length === 0) await collect('decidePool', () => decidePool(msg as OutboundMessage, context));
      assert.deepEqual(failures, [], failures.join('\n'));
    });
  }
});
