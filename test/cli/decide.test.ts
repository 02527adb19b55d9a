// `outbound-pools demo` and `decide` as a user runs them: the built bin, in a child process.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const EXAMPLES = new URL('../../examples/messages/', import.meta.url).pathname;

function run(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

// What each bundled example demonstrates: SPEC §3 applied to it.
const EXPECTED: Record<string, { action: string; pool: string | null; first: string }> = {
  '01-accepted-domain.eml': { action: 'deliver', pool: 'normal', first: 'accepted-domain' },
  '02-ndr.eml': { action: 'deliver', pool: 'high-risk', first: 'ndr' },
  '03-spam.eml': { action: 'deliver', pool: 'high-risk', first: 'spam' },
  '04-forward-spf-pass.eml': { action: 'deliver', pool: 'normal', first: 'spf-pass' },
  '05-forward-unverified.eml': { action: 'deliver', pool: 'relay', first: 'relay-unverified' },
  '06-unresolvable-sender.eml': { action: 'deliver', pool: 'high-risk', first: 'sender-domain-unresolvable' },
  '07-too-many-recipients.eml': { action: 'block', pool: null, first: 'recipients-per-message-exceeded' },
  '08-null-mx-sender.eml': { action: 'deliver', pool: 'high-risk', first: 'sender-domain-unresolvable' },
  // The bundled policy set: the scoped policy of the marketing group has a spam threshold of 4.
  '09-scoped-policy.eml': { action: 'deliver', pool: 'high-risk', first: 'spam' },
  '10-auto-forward-blocked.eml': { action: 'block', pool: null, first: 'auto-forwarding-blocked' },
  // Rule 11: 01 and 09 counted one external recipient each for the tenant contoso; 499 more pass its cap of 500.
  '11-tenant-over-cap.eml': { action: 'block', pool: null, first: 'tenant-limit-exceeded' },
};

describe('outbound-pools demo and decide', () => {
  before(() => assert.ok(existsSync(BIN), `${BIN} is missing: run \`npm run build\` first (npm test does).`));

  it('demo decides every bundled example as SPEC §3 says, offline, and prints a summary', () => {
    const result = run(['demo']);
    assert.equal(result.status, 0, result.stderr);
    for (const [file, expected] of Object.entries(EXPECTED)) {
      const header = expected.action === 'deliver' ? `${file}: deliver through the ${expected.pool} pool` : `${file}: block — 550 5.`;
      assert.ok(result.stdout.includes(header), `missing "${header}"`);
    }
    assert.match(result.stdout, /11 message\(s\): normal 2, high-risk 5, relay 1, block 3, defer 0, invalid 0/);
    assert.match(result.stdout, /11-tenant-over-cap\.eml: block — 550 5\.7\.233 .*\n {2}tenant-limit-exceeded +Tenant contoso sent to 2 external recipients in the last 24 hours; 499 more would pass its cap of 500\./);
  });

  it('demo --json gives one decision per line with reasons, and the same addresses every run', () => {
    const first = run(['demo', '--json']);
    assert.equal(first.status, 0, first.stderr);
    const lines = first.stdout.trim().split('\n').map((line) => JSON.parse(line));
    // The last line is the summary (test/cli/batch.test.ts checks it).
    assert.ok('summary' in lines.at(-1));
    const decisions = lines.slice(0, -1);
    assert.deepEqual(
      Object.fromEntries(decisions.map((d) => [d.file, { action: d.action, pool: d.pool, first: d.reasons[0].code }])),
      EXPECTED,
    );
    const forward = decisions.find((d) => d.file === '04-forward-spf-pass.eml');
    assert.match(forward.mailFrom, /^SRS0=[^=]{4}=[A-Z2-7]{2}=fabrikam\.example=alice@contoso\.com$/);
    assert.equal(run(['demo', '--json']).stdout, first.stdout);
  });

  it('decide takes one .eml with the envelope as flags, which replace only the fields they name', () => {
    const result = run(['decide', join(EXAMPLES, '03-spam.eml'), '--mail-from', 'megan@contoso.com', '--rcpt', 'lee@adventure-works.example', '--json']);
    assert.equal(result.status, 0, result.stderr);
    const decision = JSON.parse(result.stdout.split('\n')[0]!);
    // The sender is the flag's; the precomputed spam verdict of 03-spam.json is kept, and decides.
    assert.equal(decision.mailFrom, 'megan@contoso.com');
    assert.deepEqual([decision.action, decision.pool, decision.reasons[0].code], ['deliver', 'high-risk', 'spam']);
    assert.deepEqual(decision.verdicts.spam, { state: 'given', value: { score: 14.2, isSpam: true } });
  });

  describe('with a policy of its own', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'outbound-pools-decide-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('--policy changes the outcome: a higher spam threshold, renamed pools', () => {
      const policy = join(dir, 'policy.json');
      writeFileSync(policy, JSON.stringify({ acceptedDomains: ['contoso.com'], spam: { threshold: 20 }, pools: { 'high-risk': 'HRDP-1' } }));
      // A score of 14.2 without a judgement: spam at the bundled threshold 6, not at 20.
      const scored = join(dir, 'scored.json');
      writeFileSync(scored, JSON.stringify({ raw: 'From: x@bulk-offers.example\r\nSubject: hi\r\n\r\nhi\r\n', mailFrom: 'x@bulk-offers.example', rcptTo: ['a@b.example'], spam: { score: 14.2 } }));
      const bundled = JSON.parse(run(['decide', scored, '--json']).stdout.split('\n')[0]!);
      assert.deepEqual([bundled.pool, bundled.reasons[0].code], ['high-risk', 'spam']);
      const decision = JSON.parse(run(['decide', scored, '--policy', policy, '--json']).stdout.split('\n')[0]!);
      assert.deepEqual([decision.pool, decision.reasons[0].code], ['relay', 'relay-unverified']);
      const ndr = JSON.parse(run(['decide', join(EXAMPLES, '02-ndr.eml'), '--mail-from', '<>', '--rcpt', 'a@b.example', '--policy', policy, '--json']).stdout.split('\n')[0]!);
      assert.equal(ndr.poolName, 'HRDP-1');
    });

    it('a bad message is reported with exit status 1, a bad policy or flag with 2', () => {
      const eml = join(dir, 'lonely.eml');
      writeFileSync(eml, 'Subject: no envelope\r\n\r\nbody\r\n');
      const noEnvelope = run(['decide', dir]);
      assert.equal(noEnvelope.status, 1);
      assert.match(noEnvelope.stderr, /lonely\.eml: invalid: no envelope/);
      const badAddress = run(['decide', eml, '--mail-from', 'not an address', '--rcpt', 'a@b.example']);
      assert.equal(badAddress.status, 1);
      assert.match(badAddress.stderr, /mailFrom "not an address" is not a valid envelope address/);
      const badPolicy = join(dir, 'bad.json');
      writeFileSync(badPolicy, JSON.stringify({ acceptedDomain: ['typo.example'] }));
      const policyError = run(['decide', eml, '--mail-from', 'a@b.example', '--rcpt', 'c@d.example', '--policy', badPolicy]);
      assert.equal(policyError.status, 2);
      assert.match(policyError.stderr, /Unknown setting policy\.acceptedDomain/);
      assert.equal(run(['decide']).status, 2);
      assert.equal(run(['decide', eml, '--bogus']).status, 2);
    });
  });
});
