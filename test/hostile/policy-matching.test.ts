// Matching a message against long policy lists costs a decision time linear in the message, not
// in the message times the lists (SPEC §6, "Hostile input"): a policy set's scoped groups, users
// and domains, and a policy's accepted domains with thousands of `*.` entries, are looked up, not
// scanned. Each series doubles the lists and the message together — a scan would grow 4× a
// step, a lookup 2× — through decideFromVerdicts, one decision per call (test/hostile/doubling.ts).
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { decideFromVerdicts } from '../../src/decide/gather.js';
import type { OutboundMessage } from '../../src/decide/types.js';
import { createPolicy, type Policy } from '../../src/policy.js';
import { createPolicySet, type PolicySet } from '../../src/policy-set.js';
import { assertLinear, describeSeries } from './doubling.js';

const NOW = new Date('2024-03-01T12:00:00Z');
/** The reviewer's shape: 20 scoped policies, each listing 5 groups for every group the message has. */
const SCOPED_POLICIES = 20;
const LISTED_PER_MESSAGE_GROUP = 5;

interface Case<P> {
  readonly policy: P;
  readonly message: OutboundMessage;
}

/** `size` groups on the message, none of them listed, and 5·size groups (and users) listed by each scoped policy. */
function scopedByGroups(size: number): Case<PolicySet> {
  const listed = SCOPED_POLICIES * LISTED_PER_MESSAGE_GROUP * size;
  const scoped = Array.from({ length: SCOPED_POLICIES }, (_, p) => ({
    name: `scoped-${p}`,
    priority: p,
    groups: Array.from({ length: LISTED_PER_MESSAGE_GROUP * size }, (_, g) => `team-${p}-${g}`),
    exceptUsers: Array.from({ length: size }, (_, u) => `user${p}-${u}@contoso.com`),
    policy: { spam: { threshold: 4 } },
  }));
  const policy = createPolicySet({ default: { acceptedDomains: ['contoso.com'] }, scoped });
  assert.equal(policy.scoped.reduce((sum, s) => sum + s.groups.length, 0), listed);
  const groups = Array.from({ length: size }, (_, g) => `member-${g}`);
  return { policy, message: { mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], groups } };
}

/** `size` wildcard accepted domains, and `size` recipients in none of them (each tested against every wildcard by a scan). */
function wildcardsAndRecipients(size: number): Case<Policy> {
  const policy = createPolicy({ acceptedDomains: ['contoso.com', ...Array.from({ length: size }, (_, i) => `*.tenant${i}.example`)] });
  const rcptTo = Array.from({ length: size }, (_, i) => `user${i}@mail.other${i}.example`);
  return { policy, message: { mailFrom: 'megan@contoso.com', rcptTo } };
}

function decide(input: Case<PolicySet | Policy>): unknown {
  return decideFromVerdicts(input.message, {}, { policy: input.policy, now: NOW });
}

describe('policy matching is linear in the message, whatever the lists (decideFromVerdicts)', () => {
  it('a message with n groups against 20 scoped policies of 5n groups each: the time per decision grows with n, not n²', async (t: TestContext) => {
    // 31 to 992 groups on the message (MAX_GROUPS is 1,000); 155 to 4,960 listed per policy.
    const sample = scopedByGroups(4);
    assert.equal(decideFromVerdicts(sample.message, {}, { policy: sample.policy, now: NOW }).policyName, 'Default');
    const result = await assertLinear(scopedByGroups, decide, { start: 31 });
    t.diagnostic(describeSeries(result));
  });

  it('n recipients against n wildcard accepted domains: the time per decision grows with n, not n²', async (t: TestContext) => {
    // 128 to 4,096 of each: every step stays below the large-object threshold of doubling.ts.
    const sample = wildcardsAndRecipients(32);
    assert.equal(decideFromVerdicts(sample.message, {}, { policy: sample.policy, now: NOW }).pool, 'normal');
    const result = await assertLinear(wildcardsAndRecipients, decide, { start: 128 });
    t.diagnostic(describeSeries(result));
  });
});
