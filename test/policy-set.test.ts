import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { limitKeyOf } from '../src/address.js';
import { createPolicy } from '../src/policy.js';
import { createPolicySet, isPolicySet, selectPolicy, type PolicySet, type PolicySetInput, type PolicySubject, type ScopedPolicyInput } from '../src/policy-set.js';
import { OutboundPoolsError } from '../src/errors.js';
import { createDecider, decideFromVerdicts, decidePool } from '../src/decide/gather.js';
import { createStaticResolver } from '../src/providers/static-dns.js';

const SET: PolicySetInput = {
  default: { acceptedDomains: ['contoso.com', '*.contoso.com'], spam: { threshold: 5 }, limits: { name: 'eol', messagesPerMinute: 30 } },
  scoped: [
    // Written out of priority order on purpose.
    { name: 'sales-strict', priority: 2, domains: ['sales.contoso.com'], policy: { spam: { threshold: 3 } } },
    { name: 'executives', priority: 0, users: ['ceo@contoso.com', 'cfo@contoso.com'], exceptGroups: ['interns'], policy: { limits: { messagesPerMinute: 100 } } },
    { name: 'marketing-bulk', priority: 1, groups: ['marketing'], domains: ['contoso.com', 'sales.contoso.com'], exceptUsers: ['intern@contoso.com'], policy: { overLimit: 'high-risk' } },
  ],
};

describe('createPolicySet', () => {
  const set = createPolicySet(SET);

  it('sorts scoped policies by priority, freezes the set and brands it', () => {
    assert.deepEqual(set.scoped.map((p) => p.name), ['executives', 'marketing-bulk', 'sales-strict']);
    assert.ok(Object.isFrozen(set) && Object.isFrozen(set.scoped) && Object.isFrozen(set.scoped[0]));
    assert.ok(isPolicySet(set));
    assert.equal(isPolicySet({ ...set }), false);
    assert.equal(createPolicySet(set), set);
  });

  it("a scoped policy's settings replace the default's where given; the rest come from the default", () => {
    const [executives, marketing, sales] = set.scoped;
    assert.equal(sales!.policy.spam.threshold, 3);
    assert.deepEqual(sales!.policy.acceptedDomains, ['contoso.com', '*.contoso.com']);
    assert.deepEqual(sales!.policy.limits.map((l) => l.messagesPerMinute), [30]);
    assert.equal(executives!.policy.limits[0]!.messagesPerMinute, 100, 'a list replaces whole');
    assert.equal(executives!.policy.spam.threshold, 5);
    assert.equal(marketing!.policy.overLimit, 'high-risk');
    assert.equal(set.default.overLimit, 'block');
  });

  it('merges object settings key by key: a scoped spam.blockCategories keeps the default spam.threshold', () => {
    const merged = createPolicySet({
      default: { spam: { threshold: 6 } },
      scoped: [{ name: 'p', priority: 0, users: ['a@contoso.com'], policy: { spam: { blockCategories: ['malware'] } } }],
    });
    assert.equal(merged.scoped[0]!.policy.spam.threshold, 6);
    assert.deepEqual(merged.scoped[0]!.policy.spam.blockCategories, ['malware']);
  });

  it('a scoped policy overrides the tenant cap and spam.restrictAfter (whole), keeps them when silent, and turns them off with null', () => {
    const set = createPolicySet({
      default: { spam: { threshold: 6, restrictAfter: { count: 5, window: 'day' } }, tenantLimits: { externalRecipientsPerDay: 1_000 } },
      scoped: [
        { name: 'strict', priority: 0, users: ['a@contoso.com'], policy: { spam: { restrictAfter: { count: 2, window: 'hour', action: 'block-user' } }, tenantLimits: { externalRecipientsPerDay: 100 } } },
        { name: 'silent', priority: 1, users: ['b@contoso.com'], policy: { spam: { threshold: 4 } } },
        { name: 'off', priority: 2, users: ['c@contoso.com'], policy: { spam: { restrictAfter: null }, tenantLimits: null } },
      ],
    });
    const [strict, silent, off] = set.scoped;
    assert.deepEqual(strict!.policy.spam.restrictAfter, { count: 2, window: 'hour', action: 'block-user' });
    assert.deepEqual(strict!.policy.tenantLimits, { externalRecipientsPerDay: 100 });
    assert.equal(strict!.policy.spam.threshold, 6);
    assert.deepEqual(silent!.policy.spam.restrictAfter, { count: 5, window: 'day', action: 'block-user-for-today' });
    assert.deepEqual(silent!.policy.tenantLimits, { externalRecipientsPerDay: 1_000 });
    assert.equal(off!.policy.spam.restrictAfter, null);
    assert.equal(off!.policy.tenantLimits, null);
  });

  const refusals: [string, unknown, RegExp][] = [
    ['an unknown key in the set', { default: {}, scopes: [] }, /Unknown setting policy set\.scopes/],
    ['an unknown key in a scoped policy', { default: {}, scoped: [{ name: 'a', priority: 0, users: ['a@b.example'], policy: {}, userz: [] }] }, /Unknown setting scoped\[0\]\.userz/],
    ['duplicate priorities', { default: {}, scoped: [{ name: 'a', priority: 1, users: ['a@b.example'], policy: {} }, { name: 'b', priority: 1, groups: ['g'], policy: {} }] }, /"a" and "b" both have priority 1/],
    ['duplicate names', { default: {}, scoped: [{ name: 'a', priority: 1, users: ['a@b.example'], policy: {} }, { name: 'a', priority: 2, groups: ['g'], policy: {} }] }, /Two policies are named "a"/],
    ['a scoped policy named like the default', { default: {}, scoped: [{ name: 'Default', priority: 1, users: ['a@b.example'], policy: {} }] }, /named "Default"/],
    ['a scoped policy with no condition', { default: {}, scoped: [{ name: 'a', priority: 0, exceptUsers: ['a@b.example'], policy: {} }] }, /applies to nobody/],
    ['a negative priority', { default: {}, scoped: [{ name: 'a', priority: -1, users: ['a@b.example'], policy: {} }] }, /priority must be a whole number/],
    ['a user that is not an address', { default: {}, scoped: [{ name: 'a', priority: 0, users: ['alice'], policy: {} }] }, /users\[0\] "alice" is not an email address/],
    ['a domain that is not a domain', { default: {}, scoped: [{ name: 'a', priority: 0, domains: ['not a domain'], policy: {} }] }, /domains\[0\] "not a domain" is not a domain name/],
    ['a name with a control character', { default: {}, scoped: [{ name: 'a\r\nb', priority: 0, users: ['a@b.example'], policy: {} }] }, /name must be a name/],
    ['a merged policy that createPolicy refuses', { default: {}, scoped: [{ name: 'a', priority: 0, users: ['a@b.example'], policy: { spam: { threshold: 'high' } } }] }, /scoped\[0\]\.policy \("a"\): spam\.threshold must be a finite number/],
    ['a default made by createPolicy (nothing to merge onto)', { default: createPolicy({}) }, /a policy as written/],
    ['no default', { scoped: [] }, /default must be a policy object/],
  ];
  for (const [what, input, message] of refusals) {
    it(`refuses ${what} with invalid-policy`, () => {
      assert.throws(() => createPolicySet(input as PolicySetInput), (error: unknown) => error instanceof OutboundPoolsError && error.code === 'invalid-policy' && message.test(error.message));
    });
  }
});

describe('selectPolicy: first match by priority, OR within a condition, AND across, any exception excludes', () => {
  const set = createPolicySet(SET);
  const rows: [string, PolicySubject, string][] = [
    ['a listed user', { mailFrom: 'ceo@contoso.com' }, 'executives'],
    ['a listed user, any case', { mailFrom: 'CFO@contoso.com' }, 'executives'],
    ['a listed user excepted by group', { mailFrom: 'ceo@contoso.com', groups: ['interns'] }, 'Default'],
    ['group AND domain: both hold', { mailFrom: 'bob@contoso.com', groups: ['marketing'] }, 'marketing-bulk'],
    ['group AND domain: the group alone is not enough', { mailFrom: 'bob@fabrikam.example', groups: ['marketing'] }, 'Default'],
    ['group AND domain: the domain alone is not enough (falls to the next policy)', { mailFrom: 'bob@sales.contoso.com' }, 'sales-strict'],
    ['either listed domain (OR within a condition)', { mailFrom: 'bob@sales.contoso.com', groups: ['marketing'] }, 'marketing-bulk'],
    ['an excepted user', { mailFrom: 'intern@contoso.com', groups: ['marketing'] }, 'Default'],
    ['a higher-priority policy wins when two apply', { mailFrom: 'ceo@contoso.com', groups: ['marketing'] }, 'executives'],
    ['the submitter counts when it is an address', { mailFrom: 'noreply@fabrikam.example', submitter: 'ceo@contoso.com' }, 'executives'],
    ['a submitter that is not an address does not', { mailFrom: 'noreply@fabrikam.example', submitter: 'user-42' }, 'Default'],
    ['the null sender matches no user or domain', { mailFrom: '', groups: ['marketing'] }, 'Default'],
    ['domains match exactly, not subdomains', { mailFrom: 'x@eu.sales.contoso.com' }, 'Default'],
    ['a listed user in a quoted spelling', { mailFrom: '"ceo"@contoso.com' }, 'executives'],
    ['a listed user, quoted-pairs and a final dot', { mailFrom: '"\\c\\eo"@Contoso.COM.' }, 'executives'],
    ['an excepted user in a quoted spelling is still excepted', { mailFrom: '"intern"@contoso.com', groups: ['marketing'] }, 'Default'],
    ['a submitter spelled with a final dot and capitals', { mailFrom: 'noreply@fabrikam.example', submitter: 'CEO@contoso.com.' }, 'executives'],
  ];
  for (const [what, subject, expected] of rows) {
    it(`${what} → ${expected}`, () => {
      const selected = selectPolicy(set, subject);
      assert.equal(selected.name, expected);
      assert.equal(selected.policy, expected === 'Default' ? set.default : set.scoped.find((p) => p.name === expected)!.policy);
    });
  }

  it('an empty set always gives the default, under its own name', () => {
    const only = createPolicySet({ default: {}, defaultName: 'Org default' });
    assert.deepEqual(selectPolicy(only, { mailFrom: 'ceo@contoso.com' }), { name: 'Org default', policy: only.default });
  });
});

/**
 * selectPolicy as it was when the lists were scanned with `includes` (before they became sets):
 * the oracle the set-based matching must agree with, answer for answer.
 */
function scanningSelectPolicy(set: PolicySet, subject: PolicySubject): string {
  const addressOf = (candidate: string | undefined): { address: string; domain: string } | null => {
    if (candidate === undefined || candidate === '') return null;
    const address = limitKeyOf(candidate);
    const at = address.lastIndexOf('@');
    if (at <= 0 || at === address.length - 1 || address.startsWith('<')) return null;
    return { address, domain: address.slice(at + 1) };
  };
  const intersects = (listed: readonly string[], values: readonly string[]): boolean => values.some((value) => listed.includes(value));
  const identities = [addressOf(subject.mailFrom), addressOf(subject.submitter)].filter((identity) => identity !== null);
  const addresses = identities.map((identity) => identity.address);
  const domains = identities.map((identity) => identity.domain);
  const groups = subject.groups ?? [];
  for (const scoped of set.scoped) {
    if (scoped.users.length > 0 && !intersects(scoped.users, addresses)) continue;
    if (scoped.groups.length > 0 && !intersects(scoped.groups, groups)) continue;
    if (scoped.domains.length > 0 && !intersects(scoped.domains, domains)) continue;
    if (intersects(scoped.exceptUsers, addresses) || intersects(scoped.exceptGroups, groups) || intersects(scoped.exceptDomains, domains)) continue;
    return scoped.name;
  }
  return set.defaultName;
}

describe('selectPolicy with its lists as sets answers as the scan did', () => {
  // Small alphabets, so that random sets and senders meet: spellings that differ only by case,
  // quoting or a final dot, groups that differ only by case or a space.
  const local = fc.constantFrom('ceo', 'CEO', '"ceo"', 'intern', 'bob', 'Bob');
  const domain = fc.constantFrom('contoso.com', 'Contoso.COM', 'contoso.com.', 'sales.contoso.com', 'fabrikam.example');
  const address = fc.tuple(local, domain).map(([l, d]) => `${l}@${d}`);
  const group = fc.constantFrom('marketing', 'Marketing', 'marketing ', 'sales', 'interns', 'Ünits', 'a');
  const listOf = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(fc.array(arbitrary, { maxLength: 4 }), { nil: undefined });
  const scoped = fc
    .record({ users: listOf(address), groups: listOf(group), domains: listOf(domain), exceptUsers: listOf(address), exceptGroups: listOf(group), exceptDomains: listOf(domain) })
    .filter((conditions) => (conditions.users?.length ?? 0) + (conditions.groups?.length ?? 0) + (conditions.domains?.length ?? 0) > 0);
  const policySet = fc.array(scoped, { maxLength: 6 }).map((list) =>
    createPolicySet({
      default: {},
      scoped: list.map((conditions, index): ScopedPolicyInput => {
        const written = Object.fromEntries(Object.entries(conditions).filter(([, value]) => value !== undefined));
        return { name: `p${index}`, priority: (index * 7) % 11, ...written, policy: {} };
      }),
    }),
  );
  const subject = fc.record(
    {
      mailFrom: fc.oneof(address, fc.constantFrom('', '<>', 'not-an-address')),
      submitter: fc.option(fc.oneof(address, fc.constantFrom('user-42', '')), { nil: undefined }),
      groups: fc.option(fc.array(group, { maxLength: 5 }), { nil: undefined }),
    },
    { requiredKeys: ['mailFrom'] },
  ) as fc.Arbitrary<PolicySubject>;

  it('for random sets and senders, the policy chosen is the one the scan chose', () => {
    fc.assert(
      fc.property(policySet, subject, (set, who) => {
        assert.equal(selectPolicy(set, who).name, scanningSelectPolicy(set, who));
      }),
      { numRuns: 3000 },
    );
  });

  it('a set whose scoped policies are copies (no matcher made by createPolicySet) answers the same', () => {
    fc.assert(
      fc.property(policySet, subject, (set, who) => {
        const copy: PolicySet = { ...set, scoped: set.scoped.map((entry) => ({ ...entry })) };
        assert.equal(selectPolicy(copy, who).name, scanningSelectPolicy(set, who));
      }),
      { numRuns: 500 },
    );
  });

  it("an object that inherits a set's group index but lists its scoped policies in another order answers by its own list", () => {
    fc.assert(
      fc.property(policySet, subject, (set, who) => {
        const reordered = Object.create(set, { scoped: { value: [...set.scoped].reverse() } }) as PolicySet;
        assert.equal(selectPolicy(reordered, who).name, scanningSelectPolicy(reordered, who));
      }),
      { numRuns: 500 },
    );
  });
});

describe('a policy set as context.policy', () => {
  const set = createPolicySet({
    default: { acceptedDomains: ['contoso.com'], spam: { threshold: 8 } },
    scoped: [
      { name: 'strict-marketing', priority: 0, groups: ['marketing'], policy: { spam: { threshold: 3 } } },
      { name: 'subsidiary', priority: 1, domains: ['fabrikam.example'], policy: { acceptedDomains: ['contoso.com', 'fabrikam.example'] } },
    ],
  });
  const dns = createStaticResolver({
    'contoso.com': { MX: [{ exchange: 'mx.contoso.com', priority: 10 }] },
    'fabrikam.example': { MX: [{ exchange: 'mx.fabrikam.example', priority: 10 }] },
  });
  const now = new Date(1_800_000_000_000);

  it("decides with the scoped policy that applies and names it in decision.policyName", async () => {
    const message = { mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], spam: { score: 5 } };
    const marketing = await decidePool({ ...message, groups: ['marketing'] }, { policy: set, providers: { dns }, now });
    assert.deepEqual([marketing.policyName, marketing.pool, marketing.reasons[0]?.code], ['strict-marketing', 'high-risk', 'spam']);
    const other = await decidePool(message, { policy: set, providers: { dns }, now });
    assert.deepEqual([other.policyName, other.pool, other.reasons[0]?.code], ['Default', 'normal', 'accepted-domain']);
  });

  it("reads the envelope under the chosen policy: its accepted domains decide who is internal", async () => {
    const decide = createDecider({ policy: set, providers: { dns } });
    const decision = await decide({ mailFrom: 'alice@fabrikam.example', rcptTo: ['lee@example.net'] }, { now });
    assert.deepEqual([decision.policyName, decision.pool, decision.reasons[0]?.code], ['subsidiary', 'normal', 'accepted-domain']);
  });

  it('the sync core takes a set too', () => {
    const decision = decideFromVerdicts({ mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], groups: ['marketing'], spam: { score: 4 } }, {}, { policy: set, now });
    assert.deepEqual([decision.policyName, decision.pool], ['strict-marketing', 'high-risk']);
  });

  it('a single policy is named Default', async () => {
    const decision = await decidePool({ mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'] }, { policy: { acceptedDomains: ['contoso.com'] }, providers: { dns }, now });
    assert.equal(decision.policyName, 'Default');
  });

  for (const [what, groups] of [
    ['not an array', 'marketing'],
    ['a name with a control character', ['mark\neting']],
    ['an empty name', ['']],
    ['a number', [5]],
  ] as const) {
    it(`message.groups that is ${what} is refused with invalid-message`, async () => {
      await assert.rejects(decidePool({ mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], groups } as never, { policy: set, now }), (error: unknown) => error instanceof OutboundPoolsError && error.code === 'invalid-message' && /groups/.test(error.message));
    });
  }

  it('message.autoForwarded must be a boolean', async () => {
    await assert.rejects(decidePool({ mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], autoForwarded: 'yes' } as never, { now }), /autoForwarded must be true or false/);
  });
});
