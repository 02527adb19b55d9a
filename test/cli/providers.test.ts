// `outbound-pools decide` with real providers: --dns-server against dnsmasq serving
// examples/zone.json, --rspamd-url against rspamd, --redis-url against redis-server. The built
// bin, in a child process (spawned asynchronously: the servers' helpers live in this process).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDnsmasq, type DnsmasqServer, type DnsmasqZone } from '../servers/dnsmasq.js';
import { startRedis, type RedisServer } from '../servers/redis.js';
import { startRspamd, type RspamdServer } from '../servers/rspamd.js';
import { BIN, runBin } from './run-bin.js';

const EXAMPLES = new URL('../../examples/', import.meta.url).pathname;
const MESSAGES = join(EXAMPLES, 'messages');

const run = runBin;

const jsonLines = (text: string) => text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>);

describe('outbound-pools decide --dns-server (a real dnsmasq)', () => {
  let dns: DnsmasqServer;
  before(async () => {
    assert.ok(existsSync(BIN), `${BIN} is missing: run \`npm run build\` first (npm test does).`);
    dns = await startDnsmasq(JSON.parse(readFileSync(join(EXAMPLES, 'zone.json'), 'utf8')) as DnsmasqZone);
  });
  after(async () => {
    await dns?.stop();
  });

  it('decides the bundled examples with answers from the server, as with the static zone', async () => {
    const result = await run(['decide', MESSAGES, '--dns-server', dns.address, '--json']);
    assert.equal(result.status, 0, result.stderr);
    const lines = jsonLines(result.stdout);
    const decisions: Record<string, Record<string, any>> = Object.fromEntries(lines.filter((line) => 'file' in line).map((line) => [line.file, line]));
    assert.deepEqual(
      Object.fromEntries(Object.entries(decisions).map(([file, d]) => [file, [d.pool, d.reasons[0].code]])),
      {
        '01-accepted-domain.eml': ['normal', 'accepted-domain'],
        '02-ndr.eml': ['high-risk', 'ndr'],
        '03-spam.eml': ['high-risk', 'spam'],
        '04-forward-spf-pass.eml': ['normal', 'spf-pass'],
        '05-forward-unverified.eml': ['relay', 'relay-unverified'],
        '06-unresolvable-sender.eml': ['high-risk', 'sender-domain-unresolvable'],
        '07-too-many-recipients.eml': [null, 'recipients-per-message-exceeded'],
        '08-null-mx-sender.eml': ['high-risk', 'sender-domain-unresolvable'],
        '09-scoped-policy.eml': ['high-risk', 'spam'],
        '10-auto-forward-blocked.eml': [null, 'auto-forwarding-blocked'],
        // No rate limiter without --redis-url: nothing counts for the tenant's cap (the demo counts in memory).
        '11-tenant-over-cap.eml': ['normal', 'accepted-domain'],
      },
    );
    assert.deepEqual(decisions['06-unresolvable-sender.eml']!.verdicts.senderDomain, {
      state: 'provided',
      value: { domain: 'no-such-domain.example', receivesMail: false, basis: 'no-records' },
    });
    assert.equal(decisions['08-null-mx-sender.eml']!.verdicts.senderDomain.value.basis, 'null-mx');
    assert.equal(lines.at(-1)!.summary.messages, 11);
    // The answers came from the server: it was asked.
    assert.ok((await dns.queryCount({ name: 'no-such-domain.example' })) >= 1);
    assert.ok((await dns.queryCount({ name: 'woodgrove.example', type: 'MX' })) >= 1);
  });

  it('explain reads the verdict from the server too', async () => {
    const result = await run(['explain', join(MESSAGES, '04-forward-spf-pass.eml'), '--dns-server', dns.address]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /5 sender domain: +fabrikam\.example has MX → does not apply/);
  });

  it('--zone and --dns-server together are a usage error', async () => {
    const result = await run(['decide', join(MESSAGES, '01-accepted-domain.eml'), '--dns-server', dns.address, '--zone', join(EXAMPLES, 'zone.json')]);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--zone .* or --dns-server .*, not both/);
  });
});

describe('outbound-pools decide --rspamd-url (a real rspamd)', () => {
  let rspamd: RspamdServer;
  let dir: string;
  let spamEml: string;
  before(
    async () => {
      // 03-spam.eml without its 03-spam.json, whose precomputed spam verdict would be used
      // (the flags replace the envelope fields they name, not the verdicts).
      dir = mkdtempSync(join(tmpdir(), 'outbound-pools-cli-rspamd-'));
      spamEml = join(dir, '03-spam.eml');
      copyFileSync(join(MESSAGES, '03-spam.eml'), spamEml);
      rspamd = await startRspamd();
    },
    { timeout: 40_000 },
  );
  after(async () => {
    await rspamd?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  const envelope = ['--mail-from', 'winner@bulk-offers.example', '--rcpt', 'lee@adventure-works.example'];

  it('classifies 03-spam.eml (GTUBE) as spam: the high-risk pool', async () => {
    const result = await run(['decide', spamEml, ...envelope, '--rspamd-url', rspamd.url, '--json']);
    assert.equal(result.status, 0, result.stderr);
    const [decision, summary] = jsonLines(result.stdout);
    assert.deepEqual([decision!.action, decision!.pool, decision!.reasons[0].code], ['deliver', 'high-risk', 'spam']);
    assert.equal(decision!.verdicts.spam.state, 'provided');
    assert.equal(decision!.verdicts.spam.value.isSpam, true);
    assert.equal(summary!.summary.outcomes['high-risk'], 1);

    // Without rspamd, nothing says spam: an unverified forward.
    const without = await run(['decide', spamEml, ...envelope, '--json']);
    assert.equal(jsonLines(without.stdout)[0]!.pool, 'relay');
  });

  it('a clean message stays out of the spam rule, and explain shows what rspamd said', async () => {
    const result = await run(['explain', join(MESSAGES, '01-accepted-domain.eml'), '--rspamd-url', rspamd.url]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /6 spam: +score -?[\d.]+, threshold 6, classified not spam → does not apply/);
    assert.match(result.stdout, /9 accepted domain: .* → applies/);
  });
});

describe('outbound-pools decide --redis-url (a real redis-server)', () => {
  let redis: RedisServer;
  let dir: string;
  before(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'outbound-pools-cli-redis-'));
  });
  after(async () => {
    await redis?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('counts in Redis: with one message a minute allowed, the second is blocked', async () => {
    const policy = join(dir, 'policy.json');
    // Deadlines well above the default second: this test is about what Redis counts, and the
    // first call of a fresh process (script load, connection) is slow on a loaded machine.
    const deadlines = { rateLimiterMs: 15_000, totalMs: 20_000 };
    writeFileSync(policy, JSON.stringify({ acceptedDomains: ['contoso.com'], limits: [{ name: 'tight', messagesPerMinute: 1, action: 'block' }], deadlines }));
    const batch = join(dir, 'batch.jsonl');
    // Distinct Message-IDs: the limiter counts a message once, however often it is decided.
    const raw = (id: string) => `From: megan@contoso.com\r\nTo: lee@adventure-works.example\r\nMessage-ID: <${id}@contoso.com>\r\nSubject: ${id}\r\n\r\nhello\r\n`;
    const line = (id: string) => JSON.stringify({ id, raw: raw(id), mailFrom: 'megan@contoso.com', rcptTo: ['lee@adventure-works.example'] });
    writeFileSync(batch, `${line('first')}\n${line('second')}\n`);
    const result = await run(['decide', batch, '--policy', policy, '--redis-url', redis.url, '--now', '2026-11-23T09:00:00Z']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^first: deliver through the normal pool/m);
    assert.match(result.stdout, /^second: block — 451 4\.7\.1 /m);
    assert.match(result.stdout, /sending-limit-exceeded +Over messagesPerMinute 1\/1 \(tight, block\)/);
    assert.match(result.stdout, /2 message\(s\): normal 1, high-risk 0, relay 0, block 1, defer 0, invalid 0/);

    // The count is in Redis, not in the process: a second run in the same minute is blocked at once.
    writeFileSync(batch, `${line('third')}\n${line('fourth')}\n`);
    const again = await run(['decide', batch, '--policy', policy, '--redis-url', redis.url, '--now', '2026-11-23T09:00:30Z', '--json']);
    assert.equal(again.status, 0, again.stderr);
    const decisions = jsonLines(again.stdout);
    assert.deepEqual(decisions.slice(0, 2).map((d) => [d.action, d.reasons[0].code, d.verdicts.limits.state]), [
      ['block', 'sending-limit-exceeded', 'provided'],
      ['block', 'sending-limit-exceeded', 'provided'],
    ]);
  });
});
