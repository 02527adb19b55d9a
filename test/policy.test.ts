// createPolicy: defaults, normalisation, freezing, refusals that name the setting; isAcceptedDomain;
// the reference presets from the Microsoft 365 documentation (SPEC §1).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OutboundPoolsError } from '../src/errors.js';
import { acceptedMatcher, createPolicy, isAcceptedDomain, isPolicy, presets, type Policy, type PolicyInput } from '../src/policy.js';

/** createPolicy on input the types would not allow. */
const create = (input: unknown): Policy => createPolicy(input as PolicyInput);

function expectInvalidPolicy(input: unknown, pattern: RegExp, label: string): void {
  let result: Policy;
  try {
    result = create(input);
  } catch (error) {
    assert.ok(error instanceof OutboundPoolsError, `${label}: threw ${String(error)} instead of an OutboundPoolsError`);
    assert.equal(error.code, 'invalid-policy', `${label}: wrong error code`);
    assert.match(error.message, pattern, `${label}: the message does not name the setting`);
    return;
  }
  assert.fail(`${label}: expected OutboundPoolsError invalid-policy, but it was accepted as ${JSON.stringify(result)}`);
}

function assertDeeplyFrozen(value: unknown, path: string): void {
  if (typeof value !== 'object' || value === null) return;
  assert.ok(Object.isFrozen(value), `${path} is not frozen`);
  for (const [key, inner] of Object.entries(value)) assertDeeplyFrozen(inner, `${path}.${key}`);
}

describe('createPolicy defaults', () => {
  const policy = createPolicy({});

  it('names the pools RegularOutboundPool, HighRiskOutboundPool and RegularRelayOutboundPool', () => {
    assert.deepEqual(policy.pools, { normal: 'RegularOutboundPool', 'high-risk': 'HighRiskOutboundPool', relay: 'RegularRelayOutboundPool' });
  });

  it('ignores DNS errors, blocks over-limit mail, and fails open for every provider', () => {
    assert.equal(policy.dns.onError, 'ignore');
    assert.equal(policy.overLimit, 'block');
    assert.deepEqual(policy.onProviderFailure, { rateLimiter: 'fail-open', spam: 'fail-open', authenticator: 'fail-open' });
  });

  it('verifies forwards with DKIM, relaxed alignment, and trusts no ARC sealer', () => {
    assert.deepEqual(policy.relay, { dkim: true, alignment: 'relaxed', trustedArcSealers: [] });
  });

  it('has no limits, no recipients-per-message limit, no spam threshold and no accepted domains', () => {
    assert.deepEqual(policy.limits, []);
    assert.equal(policy.recipientsPerMessage, null);
    assert.deepEqual(policy.spam, { threshold: null, blockCategories: [], restrictAfter: null });
    assert.equal(policy.tenantLimits, null);
    assert.deepEqual(policy.acceptedDomains, []);
  });

  it('has the documented deadlines', () => {
    assert.deepEqual(policy.deadlines, { totalMs: 10_000, dnsMs: 3_000, rateLimiterMs: 1_000, spamMs: 5_000, authenticatorMs: 5_000 });
  });

  it('is the same with no argument as with {}', () => {
    assert.deepEqual(createPolicy(), policy);
  });

  it('is deeply frozen', () => {
    assertDeeplyFrozen(policy, 'policy');
    const full = createPolicy({
      acceptedDomains: ['contoso.com'],
      limits: [presets.exchangeOnline, { name: 'own', messagesPerMinute: 5 }],
      spam: { threshold: 5, blockCategories: ['Malware'] },
      relay: { trustedArcSealers: ['arc.example'] },
      pools: { relay: 'Relay' },
    });
    assertDeeplyFrozen(full, 'policy');
    assert.throws(() => {
      (full.acceptedDomains as string[]).push('evil.example');
    }, TypeError);
  });

  it('is branded: isPolicy is true for it and false for a plain copy', () => {
    assert.equal(isPolicy(policy), true);
    assert.equal(isPolicy({ ...policy }), false);
    assert.equal(isPolicy(JSON.parse(JSON.stringify(policy))), false);
  });

  it('is idempotent: createPolicy(createPolicy(x)) returns the same object', () => {
    const once = createPolicy({ acceptedDomains: ['Contoso.com'], limits: presets.exchangeOnline });
    // Written without a cast on purpose: this must type-check too (the parameter is `PolicyInput | Policy`;
    // a Policy is not a PolicyInput, since its `spam.threshold` is `number | null`).
    assert.equal(createPolicy(once), once);
  });

  it('accepts a JSON round trip of its own result and gives an equal policy', () => {
    const once = createPolicy({ acceptedDomains: ['*.Contoso.com'], limits: [presets.outboundSpamStrict], spam: { threshold: 4 } });
    const again = create(JSON.parse(JSON.stringify({ ...once, recipientsPerMessage: undefined })));
    assert.deepEqual(again, once);
  });

  it('neither mutates nor freezes its input', () => {
    const input = {
      acceptedDomains: ['Contoso.COM', '*.Fabrikam.com'],
      limits: [{ name: 'a', messagesPerMinute: 10 }],
      spam: { threshold: 5, blockCategories: ['Malware'] },
      pools: { normal: 'Normal' },
    };
    const copy = structuredClone(input);
    createPolicy(input);
    assert.deepEqual(input, copy);
    assert.equal(Object.isFrozen(input), false);
    assert.equal(Object.isFrozen(input.acceptedDomains), false);
    assert.equal(Object.isFrozen(input.limits[0]), false);
  });
});

describe('createPolicy normalisation', () => {
  it('accepts domains under public suffixes, a private-section suffix on its own, and names with any printable text', () => {
    const policy = createPolicy({
      acceptedDomains: ['contoso.co.uk', '*.contoso.co.uk', 'github.io', 'example.invalid', 'localhost', '*.fabrikam.github.io'],
      limits: { name: 'Ventes — équipe 東京 (hourly)', messagesPerMinute: 1 },
    });
    assert.deepEqual(policy.acceptedDomains, ['contoso.co.uk', '*.contoso.co.uk', 'github.io', 'example.invalid', 'localhost', '*.fabrikam.github.io']);
    assert.equal(policy.limits[0]!.name, 'Ventes — équipe 東京 (hourly)');
  });

  it('normalises accepted domains to lowercase A-labels and keeps *. wildcards', () => {
    const policy = createPolicy({ acceptedDomains: ['Contoso.COM', '*.Contoso.com', 'Bücher.DE', '*.Пример.РФ', 'fabrikam.com.'] });
    assert.deepEqual(policy.acceptedDomains, ['contoso.com', '*.contoso.com', 'xn--bcher-kva.de', '*.xn--e1afmkfd.xn--p1ai', 'fabrikam.com']);
  });

  it('takes one limit set as an object, named limits[0] with action block', () => {
    const policy = createPolicy({ limits: { messagesPerMinute: 30 } });
    assert.deepEqual(policy.limits, [{ name: 'limits[0]', action: 'block', messagesPerMinute: 30 }]);
  });

  it('takes several limit sets as an array, names them by index unless named', () => {
    const policy = createPolicy({ limits: [{ recipientsPerDay: 100 }, { name: 'burst', messagesPerMinute: 5, action: 'alert' }] });
    assert.deepEqual(policy.limits, [
      { name: 'limits[0]', action: 'block', recipientsPerDay: 100 },
      { name: 'burst', action: 'alert', messagesPerMinute: 5 },
    ]);
  });

  it('keeps only the windows that were set', () => {
    const [set] = createPolicy({ limits: { externalRecipientsPerHour: 7 } }).limits;
    assert.deepEqual(Object.keys(set!).sort(), ['action', 'externalRecipientsPerHour', 'name']);
  });

  it('recipientsPerMessage is the smallest over all sets, with the set that sets it', () => {
    const policy = createPolicy({
      limits: [
        { name: 'service', recipientsPerMessage: 500 },
        { name: 'no-rpm', messagesPerMinute: 30 },
        { name: 'tight', recipientsPerMessage: 100 },
        { name: 'tight-too', recipientsPerMessage: 100 },
        { name: 'loose', recipientsPerMessage: 1000 },
      ],
    });
    assert.deepEqual(policy.recipientsPerMessage, { limit: 100, set: 'tight' });
  });

  it('recipientsPerMessage is null when no set has one', () => {
    assert.equal(createPolicy({ limits: [{ messagesPerMinute: 1 }] }).recipientsPerMessage, null);
  });

  it('accepts limits from 1 to 10,000,000', () => {
    const [set] = createPolicy({ limits: { messagesPerMinute: 1, recipientsPerDay: 10_000_000 } }).limits;
    assert.equal(set?.messagesPerMinute, 1);
    assert.equal(set?.recipientsPerDay, 10_000_000);
  });

  it('merges pool names over the defaults', () => {
    assert.deepEqual(createPolicy({ pools: { relay: 'Relay-1' } }).pools, {
      normal: 'RegularOutboundPool',
      'high-risk': 'HighRiskOutboundPool',
      relay: 'Relay-1',
    });
  });

  it('lowercases spam block categories and keeps the threshold (0 and negatives included)', () => {
    assert.deepEqual(createPolicy({ spam: { threshold: 0, blockCategories: ['Malware', 'PHISHING'] } }).spam, {
      threshold: 0,
      blockCategories: ['malware', 'phishing'],
      restrictAfter: null,
    });
    assert.equal(createPolicy({ spam: { threshold: -2.5 } }).spam.threshold, -2.5);
  });

  it('takes every enumerated option', () => {
    const policy = createPolicy({
      overLimit: 'high-risk',
      dns: { onError: 'defer' },
      relay: { dkim: false, alignment: 'strict', trustedArcSealers: ['ARC.Example'] },
      onProviderFailure: { rateLimiter: 'defer', spam: 'defer', authenticator: 'defer' },
      deadlines: { totalMs: 120_000, dnsMs: 1 },
    });
    assert.equal(policy.overLimit, 'high-risk');
    assert.equal(policy.dns.onError, 'defer');
    assert.deepEqual(policy.relay, { dkim: false, alignment: 'strict', trustedArcSealers: ['arc.example'] });
    assert.deepEqual(policy.onProviderFailure, { rateLimiter: 'defer', spam: 'defer', authenticator: 'defer' });
    assert.equal(policy.deadlines.totalMs, 120_000);
    assert.equal(policy.deadlines.dnsMs, 1);
  });

  it('takes a tenant cap and a restriction after spam, frozen; the action defaults to block-user-for-today', () => {
    const policy = createPolicy({ tenantLimits: { externalRecipientsPerDay: 5_000 }, spam: { threshold: 5, restrictAfter: { count: 3, window: 'hour' } } });
    assert.deepEqual(policy.tenantLimits, { externalRecipientsPerDay: 5_000 });
    assert.deepEqual(policy.spam.restrictAfter, { count: 3, window: 'hour', action: 'block-user-for-today' });
    assert.ok(Object.isFrozen(policy.tenantLimits) && Object.isFrozen(policy.spam.restrictAfter));
    assert.deepEqual(createPolicy({ spam: { restrictAfter: { count: 1, window: 'day', action: 'block-user' } } }).spam.restrictAfter, { count: 1, window: 'day', action: 'block-user' });
  });

  it('reads null for tenantLimits and spam.restrictAfter as not set (a JSON round trip of a policy without them)', () => {
    const policy = createPolicy({ tenantLimits: null, spam: { restrictAfter: null } });
    assert.equal(policy.tenantLimits, null);
    assert.equal(policy.spam.restrictAfter, null);
  });
});

describe('isAcceptedDomain', () => {
  const policy = createPolicy({ acceptedDomains: ['Contoso.COM', '*.Contoso.com', 'Bücher.DE', '*.tailspin.example', 'fabrikam.com.'] });
  const rows: readonly (readonly [string, boolean])[] = [
    ['contoso.com', true],
    ['a.contoso.com', true],
    ['a.b.contoso.com', true],
    ['evilcontoso.com', false],
    ['contoso.com.evil.example', false],
    ['contoso.co', false],
    ['xn--bcher-kva.de', true],
    ['shop.xn--bcher-kva.de', false],
    ['fabrikam.com', true],
    ['mail.fabrikam.com', false],
    ['tailspin.example', false],
    ['x.tailspin.example', true],
    ['xtailspin.example', false],
    ['example', false],
  ];
  for (const [domain, expected] of rows) {
    it(`${domain} ${expected ? 'is' : 'is not'} accepted`, () => {
      assert.equal(isAcceptedDomain(policy, domain), expected);
    });
  }

  it('*.contoso.com alone matches a.contoso.com and a.b.contoso.com, but neither contoso.com nor evilcontoso.com', () => {
    const wildcardOnly = createPolicy({ acceptedDomains: ['*.contoso.com'] });
    assert.equal(isAcceptedDomain(wildcardOnly, 'a.contoso.com'), true);
    assert.equal(isAcceptedDomain(wildcardOnly, 'a.b.contoso.com'), true);
    assert.equal(isAcceptedDomain(wildcardOnly, 'contoso.com'), false);
    assert.equal(isAcceptedDomain(wildcardOnly, 'evilcontoso.com'), false);
  });

  it('an exact entry does not match subdomains', () => {
    const exactOnly = createPolicy({ acceptedDomains: ['contoso.com'] });
    assert.equal(isAcceptedDomain(exactOnly, 'contoso.com'), true);
    assert.equal(isAcceptedDomain(exactOnly, 'a.contoso.com'), false);
  });

  it('nothing is accepted with no accepted domains', () => {
    assert.equal(isAcceptedDomain(createPolicy({}), 'contoso.com'), false);
  });

  it('a long list (kept as a set) matches like a short one', () => {
    const tenants = Array.from({ length: 40 }, (_, i) => `tenant${i}.example`);
    const long = createPolicy({ acceptedDomains: [...tenants, '*.contoso.com'] });
    for (const domain of tenants) assert.equal(isAcceptedDomain(long, domain), true, domain);
    assert.equal(isAcceptedDomain(long, 'a.contoso.com'), true);
    assert.equal(isAcceptedDomain(long, 'tenant40.example'), false);
    assert.equal(isAcceptedDomain(long, 'a.tenant1.example'), false);
  });

  it('a policy object not made by createPolicy is matched the same way', () => {
    const made = createPolicy({ acceptedDomains: ['contoso.com', '*.tailspin.example'] });
    const copy = { ...made } as Policy; // own enumerable fields only: no precomputed matcher
    for (const domain of ['contoso.com', 'a.contoso.com', 'x.tailspin.example', 'tailspin.example']) {
      assert.equal(isAcceptedDomain(copy, domain), isAcceptedDomain(made, domain), domain);
    }
    assert.equal(isAcceptedDomain(copy, 'x.tailspin.example'), true);
  });
});

/**
 * The accepted-domain matcher as it was when every wildcard was tried with `endsWith` (before
 * many wildcards became a set of suffixes): the oracle the lookup must agree with.
 */
function scanningMatcher(acceptedDomains: readonly string[]): (domain: string) => boolean {
  const exact = acceptedDomains.filter((entry) => !entry.startsWith('*.'));
  const suffixes = acceptedDomains.filter((entry) => entry.startsWith('*.')).map((entry) => entry.slice(1));
  return (domain) => exact.includes(domain) || suffixes.some((suffix) => domain.endsWith(suffix));
}

describe('acceptedMatcher with many wildcards (a set of suffixes) answers as the scan did', () => {
  // A few labels, so that random lists and names meet; lists of up to 40 entries cross the
  // 16 where wildcards move from a scan to a set. Names include the odd ones a socketmap key
  // can be: empty labels, a final dot, a leading dot, the bare suffix.
  const label = fc.constantFrom('contoso', 'com', 'a', 'b', 'mail', 'xn--bcher-kva', 'co', 'uk', 'evilcontoso', '');
  const name = fc.array(label, { minLength: 1, maxLength: 5 }).map((labels) => labels.join('.'));
  const entry = fc.tuple(fc.boolean(), name).map(([wildcard, domain]) => (wildcard ? `*.${domain}` : domain));
  const wildcard = name.map((domain) => `*.${domain}`);
  const list = fc.oneof(fc.array(entry, { maxLength: 40 }), fc.tuple(fc.array(wildcard, { minLength: 17, maxLength: 30 }), fc.array(entry, { maxLength: 10 })).map(([a, b]) => [...a, ...b]));
  const query = fc.oneof(name, name.map((domain) => `${domain}.`), name.map((domain) => `.${domain}`), fc.string({ maxLength: 12 }));
  /** Names at the edges of an entry: the entry itself, its suffix alone, one label under it, a name that merely ends like it. */
  const near = (entry: string): string[] => {
    const bare = entry.startsWith('*.') ? entry.slice(2) : entry;
    return [entry, bare, `.${bare}`, `a.${bare}`, `a.b.${bare}`, `a${bare}`, `${bare}.`];
  };

  it('for random lists and names, a name is accepted exactly when the scan accepted it', () => {
    fc.assert(
      fc.property(list, fc.array(query, { minLength: 1, maxLength: 20 }), (entries, names) => {
        const matcher = acceptedMatcher(entries);
        const oracle = scanningMatcher(entries);
        for (const domain of [...names, ...entries.flatMap(near)]) {
          assert.equal(matcher(domain), oracle(domain), `${JSON.stringify(domain)} against ${JSON.stringify(entries)}`);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('with 17 wildcards and more, *.contoso.com still matches a.b.contoso.com but neither contoso.com nor evilcontoso.com', () => {
    const many = createPolicy({ acceptedDomains: ['*.contoso.com', ...Array.from({ length: 20 }, (_, i) => `*.tenant${i}.example`)] });
    assert.equal(isAcceptedDomain(many, 'a.contoso.com'), true);
    assert.equal(isAcceptedDomain(many, 'a.b.contoso.com'), true);
    assert.equal(isAcceptedDomain(many, 'contoso.com'), false);
    assert.equal(isAcceptedDomain(many, 'evilcontoso.com'), false);
    assert.equal(isAcceptedDomain(many, 'x.tenant19.example'), true);
    assert.equal(isAcceptedDomain(many, 'tenant19.example'), false);
  });
});

describe('createPolicy refusals name the setting', () => {
  const rows: readonly (readonly [string, unknown, RegExp])[] = [
    // The policy itself.
    ['policy null', null, /^policy must be an object/],
    ['policy a string', 'contoso.com', /^policy must be an object/],
    ['policy an array', [], /^policy must be an object/],
    ['policy a number', 42, /^policy must be an object/],
    // Unknown keys, at every level.
    ['top-level typo acceptedDomain', { acceptedDomain: ['contoso.com'] }, /Unknown setting policy\.acceptedDomain\b/],
    ['top-level typo limit', { limit: { messagesPerMinute: 1 } }, /Unknown setting policy\.limit\b/],
    ['limits[0].mesagesPerMinute', { limits: [{ mesagesPerMinute: 30 }] }, /Unknown setting limits\[0\]\.mesagesPerMinute\b/],
    ['limits[1].recipientsPerHour', { limits: [{ messagesPerMinute: 1 }, { recipientsPerHour: 3 }] }, /Unknown setting limits\[1\]\.recipientsPerHour\b/],
    ['a typo in one limit set given as an object', { limits: { mesagesPerMinute: 30 } }, /Unknown setting limits\[0\]\.mesagesPerMinute\b/],
    ['spam.treshold', { spam: { treshold: 5 } }, /Unknown setting spam\.treshold\b/],
    ['relay.x', { relay: { x: true } }, /Unknown setting relay\.x\b/],
    ['deadlines.foo', { deadlines: { foo: 1 } }, /Unknown setting deadlines\.foo\b/],
    ['dns.onErr', { dns: { onErr: 'defer' } }, /Unknown setting dns\.onErr\b/],
    ['pools.highRisk', { pools: { highRisk: 'X' } }, /Unknown setting pools\.highRisk\b/],
    ['onProviderFailure.dns', { onProviderFailure: { dns: 'defer' } }, /Unknown setting onProviderFailure\.dns\b/],
    // Sections of the wrong type.
    ['spam null', { spam: null }, /^spam must be an object/],
    ['relay an array', { relay: [] }, /^relay must be an object/],
    ['dns a string', { dns: 'ignore' }, /^dns must be an object/],
    ['pools a string', { pools: 'X' }, /^pools must be an object/],
    ['deadlines a number', { deadlines: 1000 }, /^deadlines must be an object/],
    ['onProviderFailure a string', { onProviderFailure: 'defer' }, /^onProviderFailure must be an object/],
    ['limits a number', { limits: 30 }, /^limits\[0\] must be an object/],
    ['limits[1] null', { limits: [{ messagesPerMinute: 1 }, null] }, /^limits\[1\] must be an object/],
    // Limit values.
    ['a negative limit', { limits: { messagesPerMinute: -1 } }, /^limits\[0\]\.messagesPerMinute must be a whole number from 1 to 10000000/],
    ['a zero limit', { limits: { recipientsPerDay: 0 } }, /^limits\[0\]\.recipientsPerDay must be a whole number/],
    ['a fractional limit', { limits: { recipientsPerMessage: 1.5 } }, /^limits\[0\]\.recipientsPerMessage must be a whole number/],
    ['a NaN limit', { limits: { internalRecipientsPerHour: NaN } }, /^limits\[0\]\.internalRecipientsPerHour must be a whole number/],
    ['an infinite limit', { limits: { externalRecipientsPerHour: Infinity } }, /^limits\[0\]\.externalRecipientsPerHour must be a whole number/],
    ['a limit over 10,000,000', { limits: { recipientsPerDay: 10_000_001 } }, /^limits\[0\]\.recipientsPerDay must be a whole number/],
    ['a limit as a string', { limits: { messagesPerMinute: '30' } }, /^limits\[0\]\.messagesPerMinute must be a whole number/],
    ['a limit as null', { limits: { messagesPerMinute: null } }, /^limits\[0\]\.messagesPerMinute must be a whole number/],
    // SPEC §7: the tenant cap and the restriction after spam.
    ['tenantLimits a number', { tenantLimits: 500 }, /^tenantLimits must be an object/],
    ['tenantLimits without its cap', { tenantLimits: {} }, /^tenantLimits needs externalRecipientsPerDay/],
    ['tenantLimits.externalRecipientsPerHour', { tenantLimits: { externalRecipientsPerHour: 5 } }, /Unknown setting tenantLimits\.externalRecipientsPerHour\b/],
    ['a zero tenant cap', { tenantLimits: { externalRecipientsPerDay: 0 } }, /^tenantLimits\.externalRecipientsPerDay must be a whole number from 1 to 10000000/],
    ['a fractional tenant cap', { tenantLimits: { externalRecipientsPerDay: 2.5 } }, /^tenantLimits\.externalRecipientsPerDay must be a whole number/],
    ['a tenant cap as a string', { tenantLimits: { externalRecipientsPerDay: '500' } }, /^tenantLimits\.externalRecipientsPerDay must be a whole number/],
    ['spam.restrictAfter a number', { spam: { restrictAfter: 3 } }, /^spam\.restrictAfter must be an object/],
    ['spam.restrictAfter without window', { spam: { restrictAfter: { count: 3 } } }, /^spam\.restrictAfter needs count \(spam messages\) and window/],
    ['spam.restrictAfter without count', { spam: { restrictAfter: { window: 'day' } } }, /^spam\.restrictAfter needs count/],
    ['spam.restrictAfter.count 0', { spam: { restrictAfter: { count: 0, window: 'day' } } }, /^spam\.restrictAfter\.count must be a whole number from 1 to 1000/],
    ['spam.restrictAfter.count over 1,000 (what the Redis limiter can count)', { spam: { restrictAfter: { count: 1_001, window: 'day' } } }, /^spam\.restrictAfter\.count must be a whole number/],
    ['spam.restrictAfter.window week', { spam: { restrictAfter: { count: 3, window: 'week' } } }, /^spam\.restrictAfter\.window must be one of 'hour', 'day'/],
    ['spam.restrictAfter.action block', { spam: { restrictAfter: { count: 3, window: 'day', action: 'block' } } }, /^spam\.restrictAfter\.action must be one of 'block-user-for-today', 'block-user'/],
    ['spam.restrictAfter.windows', { spam: { restrictAfter: { count: 3, windows: 'day' } } }, /Unknown setting spam\.restrictAfter\.windows\b/],
    ['a bad limit in the second set', { limits: [{ messagesPerMinute: 1 }, { recipientsPerDay: -5 }] }, /^limits\[1\]\.recipientsPerDay/],
    ['a bad limit action', { limits: { messagesPerMinute: 1, action: 'Block' } }, /^limits\[0\]\.action must be one of 'block', 'alert', 'block-user-for-today', 'block-user'/],
    ['an empty limit set name', { limits: { name: '', messagesPerMinute: 1 } }, /^limits\[0\]\.name must be a non-empty string/],
    ['a limit set name that is a number', { limits: { name: 7, messagesPerMinute: 1 } }, /^limits\[0\]\.name must be a non-empty string/],
    ['a limit set name with a line feed', { limits: { name: 'set\nforged: line', messagesPerMinute: 1 } }, /^limits\[0\]\.name must be a non-empty string of at most 128 printable characters \(no control characters/],
    ['a limit set name with a carriage return', { limits: { name: 'set\r', messagesPerMinute: 1 } }, /^limits\[0\]\.name must be .*no control characters/],
    ['a limit set name with a NUL', { limits: { name: 'a\u0000b', messagesPerMinute: 1 } }, /^limits\[0\]\.name must be .*no control characters/],
    ['a limit set name with a C1 control (U+0085)', { limits: { name: 'a\u0085b', messagesPerMinute: 1 } }, /^limits\[0\]\.name must be .*no control characters/],
    ['a limit set name with a line separator (U+2028)', { limits: { name: 'a\u2028b', messagesPerMinute: 1 } }, /^limits\[0\]\.name must be .*line separators/],
    ['a limit set name with a bidi override (U+202E)', { limits: { name: 'a\u202eb', messagesPerMinute: 1 } }, /^limits\[0\]\.name must be .*bidi controls/],
    ['a limit set name with a lone surrogate', { limits: { name: 'a\ud800', messagesPerMinute: 1 } }, /^limits\[0\]\.name must be /],
    ['a limit set name over 128 characters', { limits: { name: 'n'.repeat(129), messagesPerMinute: 1 } }, /^limits\[0\]\.name must be a non-empty string of at most 128/],
    ['a public suffix as an accepted domain (com)', { acceptedDomains: ['com'] }, /^acceptedDomains\[0\] "com" is a public suffix \(com, in the Public Suffix List\)/],
    ['a public suffix as an accepted domain (co.uk)', { acceptedDomains: ['contoso.com', 'CO.UK'] }, /^acceptedDomains\[1\] "CO.UK" is a public suffix \(co\.uk/],
    ['a wildcard over a public suffix (*.co.uk)', { acceptedDomains: ['*.co.uk'] }, /^acceptedDomains\[0\] "\*\.co\.uk" is a public suffix \(co\.uk/],
    ['a wildcard over a public suffix (*.com)', { acceptedDomains: ['*.com'] }, /^acceptedDomains\[0\] "\*\.com" is a public suffix/],
    ['a wildcard over an IDN public suffix (*.рф)', { acceptedDomains: ['*.рф'] }, /^acceptedDomains\[0\] "\*\.рф" is a public suffix \(xn--p1ai/],
    ['a wildcard over a wildcard-rule suffix (*.foo.ck)', { acceptedDomains: ['*.foo.ck'] }, /is a public suffix \(foo\.ck/],
    ['a wildcard over a private-section suffix (*.github.io)', { acceptedDomains: ['*.github.io'] }, /^acceptedDomains\[0\] "\*\.github\.io" covers a public suffix \(github\.io, in the private section/],
    ['a set with no window', { limits: [{ messagesPerMinute: 1 }, { name: 'empty', action: 'alert' }] }, /^limits\[1\] sets no limit/],
    ['an empty set', { limits: {} }, /^limits\[0\] sets no limit/],
    ['duplicate set names', { limits: [{ name: 'a', messagesPerMinute: 1 }, { name: 'a', recipientsPerDay: 1 }] }, /Two limit sets are named "a"/],
    ['a name that collides with a default name', { limits: [{ messagesPerMinute: 1 }, { name: 'limits[0]', recipientsPerDay: 1 }] }, /Two limit sets are named "limits\[0\]"/],
    ['two identical presets', { limits: [presets.exchangeOnline, presets.exchangeOnline] }, /Two limit sets are named "exchange-online"/],
    // Enumerations.
    ['overLimit drop', { overLimit: 'drop' }, /^overLimit must be one of 'block', 'high-risk'/],
    ['dns.onError fail', { dns: { onError: 'fail' } }, /^dns\.onError must be one of 'ignore', 'defer', 'high-risk'/],
    ['relay.alignment loose', { relay: { alignment: 'loose' } }, /^relay\.alignment must be one of 'relaxed', 'strict'/],
    ['relay.dkim a string', { relay: { dkim: 'yes' } }, /^relay\.dkim must be true or false/],
    ['onProviderFailure.spam fail-closed', { onProviderFailure: { spam: 'fail-closed' } }, /^onProviderFailure\.spam must be one of 'fail-open', 'defer'/],
    ['onProviderFailure.rateLimiter upper case', { onProviderFailure: { rateLimiter: 'DEFER' } }, /^onProviderFailure\.rateLimiter must be one of/],
    // Spam.
    ['a NaN spam threshold', { spam: { threshold: NaN } }, /^spam\.threshold must be a finite number/],
    ['an infinite spam threshold', { spam: { threshold: -Infinity } }, /^spam\.threshold must be a finite number/],
    ['a spam threshold as a string', { spam: { threshold: '5' } }, /^spam\.threshold must be a finite number/],
    ['spam.blockCategories as a string', { spam: { blockCategories: 'malware' } }, /^spam\.blockCategories must be an array of non-empty strings/],
    ['an empty spam block category', { spam: { blockCategories: ['malware', ''] } }, /^spam\.blockCategories must be an array of non-empty strings/],
    // Pools.
    ['a pool name with a space', { pools: { normal: 'My Pool' } }, /^pools\.normal must be a trace name of 1–64 printable ASCII characters without spaces/],
    ['an empty pool name', { pools: { relay: '' } }, /^pools\.relay must be a trace name/],
    ['a pool name over 64 characters', { pools: { 'high-risk': 'P'.repeat(65) } }, /^pools\.high-risk must be a trace name/],
    ['a pool name with a control character', { pools: { normal: 'Pool\r\nX-Injected: 1' } }, /^pools\.normal must be a trace name/],
    ['a non-ASCII pool name', { pools: { normal: 'Pööl' } }, /^pools\.normal must be a trace name/],
    ['a pool name that is a number', { pools: { normal: 1 } }, /^pools\.normal must be a trace name/],
    // Deadlines.
    ['a zero deadline', { deadlines: { totalMs: 0 } }, /^deadlines\.totalMs must be a whole number from 1 to 120000/],
    ['a deadline over two minutes', { deadlines: { dnsMs: 120_001 } }, /^deadlines\.dnsMs must be a whole number/],
    ['a fractional deadline', { deadlines: { spamMs: 1.5 } }, /^deadlines\.spamMs must be a whole number/],
    ['a negative deadline', { deadlines: { authenticatorMs: -1 } }, /^deadlines\.authenticatorMs must be a whole number/],
    // Domains.
    ['acceptedDomains as a string', { acceptedDomains: 'contoso.com' }, /^acceptedDomains must be an array of non-empty strings/],
    ['an empty accepted domain', { acceptedDomains: [''] }, /^acceptedDomains must be an array of non-empty strings/],
    ['an accepted domain that is a number', { acceptedDomains: [42] }, /^acceptedDomains must be an array of non-empty strings/],
    ['an accepted domain with a space', { acceptedDomains: ['contoso.com', 'not a domain'] }, /^acceptedDomains\[1\] "not a domain" is not a domain name/],
    ['a wildcard over a top-level domain', { acceptedDomains: ['*.com'] }, /^acceptedDomains\[0\] "\*\.com" is a public suffix/],
    ['a bare *', { acceptedDomains: ['*'] }, /^acceptedDomains\[0\] "\*" is not a domain name/],
    ['a wildcard without its dot', { acceptedDomains: ['*contoso.com'] }, /^acceptedDomains\[0\]/],
    ['a double wildcard', { acceptedDomains: ['*.*.contoso.com'] }, /^acceptedDomains\[0\]/],
    ['a wildcard in the middle', { acceptedDomains: ['mail.*.contoso.com'] }, /^acceptedDomains\[0\]/],
    ['an accepted IPv4 address', { acceptedDomains: ['192.0.2.1'] }, /^acceptedDomains\[0\]/],
    ['an accepted domain with an underscore', { acceptedDomains: ['a_b.contoso.com'] }, /^acceptedDomains\[0\]/],
    ['a wildcard ARC sealer', { relay: { trustedArcSealers: ['*.arc.example'] } }, /^relay\.trustedArcSealers\[0\] "\*\.arc\.example" is not a domain name/],
    ['relay.trustedArcSealers as a string', { relay: { trustedArcSealers: 'arc.example' } }, /^relay\.trustedArcSealers must be an array/],
  ];
  for (const [name, input, pattern] of rows) {
    it(`refuses ${name} with invalid-policy naming the setting`, () => {
      expectInvalidPolicy(input, pattern, name);
    });
  }

  // The same WHATWG-host behaviour as in test/address.test.ts: node:url's domainToASCII stops at
  // '/', '?', '#', '\' and percent-decodes, so these become another accepted domain instead of an error.
  for (const [entry, becomes] of [
    ['contoso.com/anything', 'contoso.com'],
    ['contoso.com?x', 'contoso.com'],
    ['*.contoso.com#x', '*.contoso.com'],
    ['cont%6Fso.com', 'contoso.com'],
  ] as const) {
    it(`refuses the accepted domain ${JSON.stringify(entry)} instead of reading it as ${becomes}`, () => {
      expectInvalidPolicy({ acceptedDomains: [entry] }, /^acceptedDomains\[0\]/, entry);
    });
  }
});

describe('presets', () => {
  it('exchangeOnline is 30 messages/minute, 10,000 recipients/day, 500 recipients/message, block', () => {
    assert.deepEqual({ ...presets.exchangeOnline }, {
      name: 'exchange-online',
      messagesPerMinute: 30,
      recipientsPerDay: 10_000,
      recipientsPerMessage: 500,
      action: 'block',
    });
  });

  it('outboundSpamStandard is 500 external/hour, 1,000 internal/hour, 1,000/day, block-user', () => {
    assert.deepEqual({ ...presets.outboundSpamStandard }, {
      name: 'outbound-spam-standard',
      externalRecipientsPerHour: 500,
      internalRecipientsPerHour: 1_000,
      recipientsPerDay: 1_000,
      action: 'block-user',
    });
  });

  it('outboundSpamStrict is 400 external/hour, 800 internal/hour, 800/day, block-user', () => {
    assert.deepEqual({ ...presets.outboundSpamStrict }, {
      name: 'outbound-spam-strict',
      externalRecipientsPerHour: 400,
      internalRecipientsPerHour: 800,
      recipientsPerDay: 800,
      action: 'block-user',
    });
  });

  it('are frozen, and so is the presets object', () => {
    assert.ok(Object.isFrozen(presets));
    for (const [name, preset] of Object.entries(presets)) assert.ok(Object.isFrozen(preset), `presets.${name} is not frozen`);
    assert.throws(() => {
      (presets.exchangeOnline as { messagesPerMinute: number }).messagesPerMinute = 1_000_000;
    }, TypeError);
    assert.equal(presets.exchangeOnline.messagesPerMinute, 30);
  });

  it('are accepted together by createPolicy, unchanged, with recipientsPerMessage from exchangeOnline', () => {
    const policy = createPolicy({ limits: [presets.exchangeOnline, presets.outboundSpamStandard] });
    assert.deepEqual(policy.limits.map((set) => ({ ...set })), [{ ...presets.exchangeOnline }, { ...presets.outboundSpamStandard }]);
    assert.deepEqual(policy.recipientsPerMessage, { limit: 500, set: 'exchange-online' });
  });

  it('are accepted each on its own, and all three together', () => {
    const sets = [presets.exchangeOnline, presets.outboundSpamStandard, presets.outboundSpamStrict];
    for (const preset of sets) assert.equal(createPolicy({ limits: preset }).limits[0]?.name, preset.name);
    assert.equal(createPolicy({ limits: sets }).limits.length, 3);
  });

  it("microsoftDefault is Microsoft's default outbound spam policy: automatic forwarding off, the service's limits", () => {
    const policy = createPolicy({ ...presets.microsoftDefault, acceptedDomains: ['contoso.com'] });
    assert.equal(policy.autoForwarding, 'off');
    assert.deepEqual(policy.limits.map((set) => ({ ...set })), [{ ...presets.exchangeOnline }]);
    assert.equal(createPolicy({}).autoForwarding, 'on');
    assert.throws(() => createPolicy({ autoForwarding: 'yes' as never }), /autoForwarding must be one of 'on', 'off'/);
  });
});
