// `outbound-pools explain`: explainDecision (pure, from the decision object) and the command as a
// user runs it (the built bin) on three bundled examples.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { explainDecision, RULES } from '../../src/cli/explain.js';
import { decidePool } from '../../src/decide/gather.js';
import type { Decision, OutboundMessage } from '../../src/decide/types.js';
import { createPolicy } from '../../src/policy.js';
import { createStaticResolver, type StaticZone } from '../../src/providers/static-dns.js';
import { Srs } from '../../src/srs/index.js';

const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const EXAMPLES = new URL('../../examples/', import.meta.url).pathname;
const MESSAGES = join(EXAMPLES, 'messages');
const policy = createPolicy(JSON.parse(readFileSync(join(EXAMPLES, 'policy.json'), 'utf8')) as object);
const dns = createStaticResolver(JSON.parse(readFileSync(join(EXAMPLES, 'zone.json'), 'utf8')) as StaticZone);

function example(name: string): OutboundMessage {
  const envelope = JSON.parse(readFileSync(join(MESSAGES, `${name}.json`), 'utf8')) as object;
  return { ...envelope, headers: readFileSync(join(MESSAGES, `${name}.eml`)) } as unknown as OutboundMessage;
}

/** The line of rule `n`, with the padding after the colon collapsed. */
function ruleLine(lines: readonly string[], n: number): string {
  const line = lines.find((candidate) => candidate.startsWith(`${n} `));
  assert.ok(line !== undefined, `no line for rule ${n} in:\n${lines.join('\n')}`);
  return line.replace(/: +/, ': ');
}

function outcomes(lines: readonly string[]): string[] {
  return RULES.map(({ rule }) => /→ (applies|does not apply|not reached)/.exec(ruleLine(lines, rule))![1]!);
}

function run(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('explainDecision', () => {
  it('spam: rules 1, 10, 2, 3, 11, 4 and 5 do not apply, 6 applies with the score it read, 7–9 not reached', async () => {
    const lines = explainDecision(await decidePool(example('03-spam'), { policy, providers: { dns } }), policy, example('03-spam'));
    // In the order the rules are applied: 1, 10, 2, 3, 11, 4, …, 9.
    assert.deepEqual(outcomes(lines), ['does not apply', 'does not apply', 'does not apply', 'does not apply', 'does not apply', 'does not apply', 'does not apply', 'applies', 'not reached', 'not reached', 'not reached']);
    assert.equal(ruleLine(lines, 11), '11 tenant cap: no tenant given (cap 500 external recipients in 24 h) → does not apply');
    assert.equal(ruleLine(lines, 10), '10 automatic forwarding: not an automatic forward → does not apply');
    assert.equal(ruleLine(lines, 5), '5 sender domain: bulk-offers.example has MX → does not apply');
    assert.equal(ruleLine(lines, 2), '2 recipients per message: 1 recipient, at most 500 (exchange-online) → does not apply');
    assert.match(ruleLine(lines, 6), /^6 spam: score 14\.2, threshold 6, classified spam \(given on the message\) → applies: spam — Spam score 14\.2 ≥ threshold 6\.$/);
    assert.equal(ruleLine(lines, 1), '1 sender restricted: no rate limiter configured → does not apply');
    assert.equal(lines.at(-2), 'decision: deliver through the high-risk pool (HighRiskOutboundPool)');
    assert.equal(lines.at(-1), 'trace: OutboundIpPoolName=HighRiskOutboundPool; action=deliver; pool=high-risk; reasons=spam');
  });

  it('a verified forward: 7 and 9 do not apply, 8 applies with the SPF result; the SRS outcome follows', async () => {
    const srs = { rewriter: new Srs({ secret: 'test' }), domain: 'contoso.com' };
    const decision = await decidePool(example('04-forward-spf-pass'), { policy, providers: { dns }, srs, now: new Date('2026-11-23T09:00:00Z') });
    const lines = explainDecision(decision, policy);
    assert.deepEqual(outcomes(lines), ['does not apply', 'does not apply', 'does not apply', 'does not apply', 'does not apply', 'does not apply', 'does not apply', 'does not apply', 'does not apply', 'applies', 'does not apply']);
    assert.equal(ruleLine(lines, 5), '5 sender domain: fabrikam.example has MX → does not apply');
    assert.match(ruleLine(lines, 8), /^8 verified forward: SPF pass for fabrikam\.example \(given on the message\) → applies: spf-pass/);
    assert.equal(ruleLine(lines, 9), '9 accepted domain: fabrikam.example is not an accepted domain → does not apply');
    // Without the envelope, rule 2 still says the limit.
    assert.equal(ruleLine(lines, 2), '2 recipients per message: at most 500 (exchange-online) → does not apply');
    assert.ok(lines.some((line) => /srs-rewritten: Envelope sender rewritten with SRS to SRS0=/.test(line)));
    assert.match(lines.at(-1)!, /^trace: OutboundIpPoolName=RegularOutboundPool; .*reasons=spf-pass,srs-rewritten; mail-from=SRS0=/);
  });

  it('an accepted sender: 9 applies, and 7 and 8 do not apply (they concern only senders from outside)', async () => {
    const lines = explainDecision(await decidePool(example('01-accepted-domain'), { policy, providers: { dns } }), policy);
    assert.deepEqual(outcomes(lines).slice(8), ['does not apply', 'does not apply', 'applies']);
    assert.match(ruleLine(lines, 7), /contoso\.com is accepted: only forwards from outside are checked → does not apply/);
  });

  it('a blocked automatic forward: 10 applies right after 1, everything after is not reached', async () => {
    const lines = explainDecision(await decidePool(example('10-auto-forward-blocked'), { policy, providers: { dns } }), policy, example('10-auto-forward-blocked'));
    assert.deepEqual(outcomes(lines).slice(0, 3), ['does not apply', 'applies', 'not reached']);
    assert.match(ruleLine(lines, 10), /^10 automatic forwarding: an automatic forward, and the policy turns automatic forwarding off → applies: auto-forwarding-blocked/);
    assert.match(lines.at(-2)!, /^decision: block — 550 5\.7\.520 /);
  });

  it('a tenant over its cap: 11 applies right after 3, with what the limiter counted; NDR and later rules not reached', async () => {
    const capped = createPolicy({ ...(JSON.parse(readFileSync(join(EXAMPLES, 'policy.json'), 'utf8')) as object), tenantLimits: { externalRecipientsPerDay: 10 } });
    const rateLimiter = {
      consume: async () => ({ restriction: null, breaches: [], tenantBreach: { tenant: 'contoso', limit: 10, used: 9 }, counted: false }),
      restriction: async () => null,
    };
    const message = { ...example('01-accepted-domain'), rcptTo: ['lee@adventure-works.example', 'kim@adventure-works.example'], tenant: 'contoso' };
    const lines = explainDecision(await decidePool(message, { policy: capped, providers: { dns, rateLimiter } }), capped, message);
    assert.deepEqual(outcomes(lines).slice(3, 6), ['does not apply', 'applies', 'not reached']);
    assert.match(ruleLine(lines, 11), /^11 tenant cap: tenant contoso: 9 external recipients in 24 h, cap 10 → applies: tenant-limit-exceeded — Tenant contoso sent to 9 external recipients/);
    assert.match(lines.at(-2)!, /^decision: block — 550 5\.7\.233 /);
    const within = explainDecision(await decidePool(message, { policy: capped, providers: { dns } }), capped, message);
    assert.equal(ruleLine(within, 11), '11 tenant cap: no rate limiter configured → does not apply');
  });

  it('a spam message that restricted its sender: the spam-restriction note under rule 6', async () => {
    const counting = createPolicy({ ...(JSON.parse(readFileSync(join(EXAMPLES, 'policy.json'), 'utf8')) as object), spam: { threshold: 6, restrictAfter: { count: 2, window: 'day' } } });
    const rateLimiter = {
      consume: async () => ({ restriction: null, breaches: [], counted: true }),
      restriction: async () => null,
      reportSpam: async () => ({ count: 2, restriction: { until: '2026-11-24T00:00:00.000Z' } }),
    };
    const lines = explainDecision(await decidePool(example('03-spam'), { policy: counting, providers: { dns, rateLimiter } }), counting, example('03-spam'));
    assert.match(ruleLine(lines, 6), /→ applies: spam/);
    assert.ok(lines.some((line) => /note spam-restriction: Spam message 2 of compromised-user@contoso\.com in the last 24 hours reaches spam\.restrictAfter \(2\)/.test(line)), lines.join('\n'));
  });

  it('an NDR, a blocked message, and notes of failed providers', async () => {
    const ndr = explainDecision(await decidePool(example('02-ndr'), { policy, providers: { dns } }), policy);
    assert.match(ruleLine(ndr, 4), /^4 NDR: an NDR \(null-sender\) → applies: ndr/);
    assert.match(ruleLine(ndr, 5), /not needed: an NDR goes to the high-risk pool whatever its domain → not reached/);
    assert.match(ruleLine(ndr, 9), /^9 accepted domain: null sender → not reached$/);

    const tooMany = explainDecision(await decidePool(example('07-too-many-recipients'), { policy, providers: { dns } }), policy);
    assert.deepEqual(outcomes(tooMany).slice(0, 4), ['does not apply', 'does not apply', 'applies', 'not reached']);
    assert.match(ruleLine(tooMany, 2), /^2 recipients per message: 501 recipients, at most 500 \(exchange-online\) → applies: recipients-per-message-exceeded/);
    assert.equal(tooMany.at(-2), 'decision: block — 550 5.5.3 Too many recipients: at most 500 per message');

    const failing = {
      dns,
      spam: {
        classify: () => Promise.reject(new Error('rspamd is down')),
      },
    };
    const failed: Decision = await decidePool(example('01-accepted-domain'), { policy, providers: failing });
    const lines = explainDecision(failed, policy);
    assert.match(ruleLine(lines, 6), /^6 spam: the spam classifier failed: .*rspamd is down.* \(policy: fail-open\) → does not apply$/);
    assert.ok(lines.some((line) => /note provider-failed: The spam provider failed/.test(line)));
    assert.match(lines.at(-1)!, /reasons=accepted-domain,provider-failed\(spam\)$/);
  });
});

describe('outbound-pools explain', () => {
  before(() => assert.ok(existsSync(BIN), `${BIN} is missing: run \`npm run build\` first (npm test does).`));

  const cases: [string, RegExp[]][] = [
    [
      '03-spam.eml',
      [
        /^ {2}5 sender domain: +bulk-offers\.example has MX → does not apply$/m,
        /^ {2}6 spam: +score 14\.2, threshold 6, classified spam \(given on the message\) → applies: spam/m,
        /^ {2}9 accepted domain: +bulk-offers\.example is not an accepted domain → not reached$/m,
        /^decision: deliver through the high-risk pool \(HighRiskOutboundPool\)$/m,
        /^trace: OutboundIpPoolName=HighRiskOutboundPool; action=deliver; pool=high-risk; reasons=spam$/m,
      ],
    ],
    [
      '04-forward-spf-pass.eml',
      [
        /^ {2}5 sender domain: +fabrikam\.example has MX → does not apply$/m,
        /^ {2}7 relay \(unverified forward\): +SPF pass for fabrikam\.example \(given on the message\) → does not apply$/m,
        /^ {2}8 verified forward: +SPF pass for fabrikam\.example \(given on the message\) → applies: spf-pass/m,
        /^decision: deliver through the normal pool \(RegularOutboundPool\)$/m,
        /^trace: OutboundIpPoolName=RegularOutboundPool; action=deliver; pool=normal; reasons=spf-pass,srs-skipped$/m,
      ],
    ],
    [
      '06-unresolvable-sender.eml',
      [
        /^ {2}4 NDR: +not an NDR → does not apply$/m,
        /^ {2}5 sender domain: +no-such-domain\.example has no MX, A or AAAA → applies: sender-domain-unresolvable/m,
        /^ {2}6 spam: +no spam classifier configured → not reached$/m,
        /^decision: deliver through the high-risk pool \(HighRiskOutboundPool\)$/m,
        /^trace: OutboundIpPoolName=HighRiskOutboundPool; action=deliver; pool=high-risk; reasons=sender-domain-unresolvable$/m,
      ],
    ],
  ];
  for (const [file, patterns] of cases) {
    it(`explains ${file} rule by rule, 1–9 in order`, () => {
      const result = run(['explain', join(MESSAGES, file)]);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout.split('\n')[0], file);
      const numbers = [...result.stdout.matchAll(/^ {2}(\d) /gm)].map((match) => Number(match[1]));
      assert.deepEqual(numbers, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
      for (const pattern of patterns) assert.match(result.stdout, pattern);
    });
  }

  it('takes the envelope flags; a bad message exits 1, bad usage 2', () => {
    const flags = run(['explain', join(MESSAGES, '03-spam.eml'), '--mail-from', 'megan@contoso.com', '--rcpt', 'lee@adventure-works.example', '--srs-secret', 's']);
    assert.equal(flags.status, 0, flags.stderr);
    // The flag replaces the sender only: 03-spam.json's spam verdict still applies, before rule 9.
    assert.match(flags.stdout, /6 spam: +score 14\.2, threshold 6, classified spam \(given on the message\) → applies/);
    assert.match(flags.stdout, /9 accepted domain: +contoso\.com is an accepted domain → not reached/);
    const invalid = run(['explain', join(MESSAGES, '03-spam.eml'), '--mail-from', 'not an address', '--rcpt', 'a@b.example']);
    assert.equal(invalid.status, 1);
    assert.match(invalid.stderr, /03-spam\.eml: invalid: .*not a valid envelope address/);
    assert.equal(run(['explain']).status, 2);
    assert.equal(run(['explain', MESSAGES]).status, 2);
    assert.equal(run(['explain', join(MESSAGES, '03-spam.eml'), join(MESSAGES, '02-ndr.eml')]).status, 2);
    assert.equal(run(['explain', join(MESSAGES, '03-spam.eml'), '--batch', 'x.jsonl']).status, 2);
    const help = run(['explain', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Exit status: 0 explained, 1 .*, 2 usage error/);
  });
});
