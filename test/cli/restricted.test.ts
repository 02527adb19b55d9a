// `outbound-pools restricted list | release | restrict` against a real redis-server: the built
// bin in child processes, as an administrator runs it beside a fleet that decides through the
// same Redis. Times are taken from the test's clock (passed as --now), never fixed dates: Redis
// expires keys on its own clock.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis, type RedisServer } from '../servers/redis.js';
import { BIN, runBin } from './run-bin.js';


const run = runBin;

/** The test's clock: now, to the second, and instants after it. */
const NOW_MS = Math.floor(Date.now() / 1000) * 1000;
const at = (offsetMs: number) => new Date(NOW_MS + offsetMs).toISOString();
const HOUR = 3_600_000;

describe('outbound-pools restricted (a real redis-server)', () => {
  let redis: RedisServer;
  let dir: string;
  before(async () => {
    assert.ok(existsSync(BIN), `${BIN} is missing: run \`npm run build\` first (npm test does).`);
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'outbound-pools-cli-restricted-'));
  });
  after(async () => {
    await redis?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('a library error (a --now out of the limiters\' range) is a usage error: one line and exit 2, no stack trace; an until far ahead is taken', async () => {
    const refused = await run(['restricted', 'list', '--redis-url', redis.url, '--now', '1960-01-01T00:00:00Z']);
    assert.equal(refused.status, 2, refused.stderr);
    assert.equal(
      refused.stderr,
      "outbound-pools: The rate limiter's now must be a Date from 1970-01-01T00:00:00.000Z to 2286-11-20T17:46:39.999Z (times are kept as 13 digits), got 1960-01-01T00:00:00.000Z.\nTry: outbound-pools help restricted\n",
    );
    const far = await run(['restricted', 'restrict', 'far@contoso.com', '--until', '9999-12-31T00:00:00Z', '--redis-url', redis.url, '--now', at(0)]);
    assert.equal(far.status, 0, far.stderr);
    const released = await run(['restricted', 'release', 'far@contoso.com', '--redis-url', redis.url, '--now', at(0)]);
    assert.equal(released.status, 0, released.stderr);
  });

  it('decide with --redis-url: a bad --srs-domain, an empty --srs-secret or a --now out of range is a usage error, and the command exits (Redis closed)', async () => {
    const envelope = join(dir, 'usage.jsonl');
    writeFileSync(envelope, `${JSON.stringify({ id: 'm', mailFrom: 'megan@fabrikam.example', rcptTo: ['lee@contoso.com'] })}\n`);
    const cases: [string[], RegExp][] = [
      [['--srs-secret', 's3cr3t', '--srs-domain', 'bad..domain'], /^outbound-pools: --srs-domain: srs must be .*is not a domain name\.\nTry: outbound-pools help decide\n$/],
      [['--srs-secret', '', '--srs-domain', 'contoso.com'], /^outbound-pools: --srs-secret: secret is empty.*\nTry: outbound-pools help decide\n$/],
      [['--now', '3000-01-01T00:00:00Z'], /^outbound-pools: --now must be from 1970-01-01 to 2286-11-20 \(the rate limiters' range\), got "3000-01-01T00:00:00Z"\.\nTry: outbound-pools help decide\n$/],
    ];
    for (const [flags, message] of cases) {
      // runBin fails the test when the command does not exit by itself within 10 s.
      const result = await run(['decide', envelope, '--redis-url', redis.url, ...flags], 10_000);
      assert.equal(result.status, 2, `${flags.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
  });

  it('restrict, list, decide (refused), release, list again', async () => {
    const empty = await run(['restricted', 'list', '--redis-url', redis.url, '--now', at(0)]);
    assert.equal(empty.status, 0, empty.stderr);
    assert.equal(empty.stdout, 'No sender is restricted.\n');

    const until = at(2 * HOUR);
    const restrict = await run(['restricted', 'restrict', 'megan@contoso.com', '--until', until, '--reason', 'compromised account', '--redis-url', redis.url, '--now', at(0), '--json']);
    assert.equal(restrict.status, 0, restrict.stderr);
    assert.deepEqual(JSON.parse(restrict.stdout), { key: 'megan@contoso.com', until, reason: 'compromised account', since: at(0), cause: { kind: 'admin' } });

    const listed = await run(['restricted', 'list', '--redis-url', redis.url, '--now', at(HOUR), '--json']);
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout), [{ key: 'megan@contoso.com', until, reason: 'compromised account', since: at(0), cause: { kind: 'admin' } }]);
    const text = await run(['restricted', 'list', '--redis-url', redis.url, '--now', at(HOUR)]);
    assert.equal(text.status, 0, text.stderr);
    const [header, row, ...rest] = text.stdout.trimEnd().split('\n');
    assert.match(header!, /^SENDER +SINCE +UNTIL +CAUSE +REASON$/);
    assert.equal(row!.split(/ {2,}/).join('|'), `megan@contoso.com|${at(0)}|${until}|administrator|compromised account`);
    assert.deepEqual(rest, []);

    // Every node deciding through this Redis refuses the sender (rule 1).
    const policy = join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ acceptedDomains: ['contoso.com'], deadlines: { rateLimiterMs: 15_000, totalMs: 20_000 } }));
    const envelope = join(dir, 'envelope.jsonl');
    writeFileSync(envelope, `${JSON.stringify({ id: 'm', mailFrom: 'megan@contoso.com', rcptTo: ['lee@adventure-works.example'] })}\n`);
    const decided = await run(['decide', envelope, '--policy', policy, '--redis-url', redis.url, '--now', at(HOUR), '--json']);
    assert.equal(decided.status, 0, decided.stderr);
    const decision = JSON.parse(decided.stdout.trim().split('\n')[0]!) as { action: string; reasons: { code: string }[]; smtp?: string };
    assert.equal(decision.action, 'block');
    assert.equal(decision.reasons[0]!.code, 'sender-restricted');

    const release = await run(['restricted', 'release', 'megan@contoso.com', '--redis-url', redis.url, '--now', at(HOUR)]);
    assert.equal(release.status, 0, release.stderr);
    assert.match(release.stdout, /^Released megan@contoso\.com; it is not restricted again automatically until the next UTC day\.\n$/);
    const again = await run(['restricted', 'release', 'megan@contoso.com', '--redis-url', redis.url, '--now', at(HOUR), '--json']);
    assert.equal(again.status, 1, 'releasing a sender that is not restricted: exit 1');
    assert.deepEqual(JSON.parse(again.stdout), { key: 'megan@contoso.com', released: false });
    const after = await run(['restricted', 'list', '--redis-url', redis.url, '--now', at(HOUR), '--json']);
    assert.deepEqual(JSON.parse(after.stdout), []);
  });

  it('a sender typed in another spelling is keyed as decisions key it: the restriction meets them', async () => {
    const restrict = await run(['restricted', 'restrict', '<"Kim"@Bücher.DE>', '--redis-url', redis.url, '--now', at(0), '--json']);
    assert.equal(restrict.status, 0, restrict.stderr);
    assert.equal((JSON.parse(restrict.stdout) as { key: string }).key, 'kim@xn--bcher-kva.de');
    const policy = join(dir, 'spelling.json');
    writeFileSync(policy, JSON.stringify({ acceptedDomains: ['contoso.com'], deadlines: { rateLimiterMs: 15_000, totalMs: 20_000 } }));
    const envelope = join(dir, 'spelling.jsonl');
    writeFileSync(envelope, `${JSON.stringify({ id: 'k', mailFrom: 'KIM@bücher.de', rcptTo: ['lee@adventure-works.example'] })}\n`);
    const decided = await run(['decide', envelope, '--policy', policy, '--redis-url', redis.url, '--now', at(HOUR), '--json']);
    assert.equal(decided.status, 0, decided.stderr);
    assert.equal((JSON.parse(decided.stdout.trim().split('\n')[0]!) as { reasons: { code: string }[] }).reasons[0]!.code, 'sender-restricted');
    const release = await run(['restricted', 'release', 'Kim@XN--BCHER-KVA.DE', '--redis-url', redis.url, '--now', at(HOUR)]);
    assert.equal(release.status, 0, release.stderr);
  });

  it('lists a restriction a limit imposed while deciding, with its window and set', async () => {
    const policy = join(dir, 'block-user.json');
    writeFileSync(policy, JSON.stringify({
      acceptedDomains: ['contoso.com'],
      limits: [{ name: 'tight', messagesPerMinute: 1, action: 'block-user' }],
      deadlines: { rateLimiterMs: 15_000, totalMs: 20_000 },
    }));
    const batch = join(dir, 'batch.jsonl');
    const line = (id: string) => JSON.stringify({ id, mailFrom: 'alex@contoso.com', rcptTo: ['lee@adventure-works.example'], raw: `From: alex@contoso.com\r\nMessage-ID: <${id}@contoso.com>\r\n\r\nhi\r\n` });
    writeFileSync(batch, `${line('one')}\n${line('two')}\n`);
    const decided = await run(['decide', batch, '--policy', policy, '--redis-url', redis.url, '--now', at(0)]);
    assert.equal(decided.status, 0, decided.stderr);
    assert.match(decided.stdout, /^two: block — 550 5\.1\.8 /m);

    const listed = await run(['restricted', 'list', '--redis-url', redis.url, '--now', at(60_000), '--json']);
    assert.equal(listed.status, 0, listed.stderr);
    const senders = JSON.parse(listed.stdout) as { key: string; until: string | null; since: string; cause: unknown }[];
    assert.deepEqual(senders.map(({ key, until, since, cause }) => ({ key, until, since, cause })), [
      { key: 'alex@contoso.com', until: null, since: at(0), cause: { kind: 'limit', window: 'messagesPerMinute', set: 'tight' } },
    ]);
    const release = await run(['restricted', 'release', 'alex@contoso.com', '--redis-url', redis.url, '--now', at(60_000)]);
    assert.equal(release.status, 0, release.stderr);
  });

  it('usage errors: exit 2 with the reason, before Redis is asked', async () => {
    const cases: [string[], RegExp][] = [
      [['restricted'], /restricted needs an action: list, release, restrict/],
      [['restricted', 'lift', 'x@contoso.com', '--redis-url', redis.url], /unknown action "lift"/],
      [['restricted', 'list'], /--redis-url is required/],
      [['restricted', 'release', '--redis-url', redis.url], /restricted release needs the sender/],
      [['restricted', 'list', 'x@contoso.com', '--redis-url', redis.url], /restricted list takes no sender/],
      [['restricted', 'restrict', 'x@contoso.com', '--redis-url', redis.url, '--until', 'soon'], /--until must be Unix seconds or an ISO 8601 date, got "soon"/],
      [['restricted', 'restrict', 'x@contoso.com', '--redis-url', redis.url, '--now', at(0), '--until', at(-HOUR)], /is not in the future/],
      [['restricted', 'release', 'x@contoso.com', '--redis-url', redis.url, '--reason', 'why'], /--until and --reason go with restricted restrict/],
      [['restricted', 'list', '--redis-ulr', redis.url], /unknown option --redis-ulr \(did you mean --redis-url\?\)/],
    ];
    for (const [args, message] of cases) {
      const result = await run(args);
      assert.equal(result.status, 2, `${args.join(' ')}: ${result.stdout}${result.stderr}`);
      assert.match(result.stderr, message, args.join(' '));
    }
  });

  it('a Redis that does not answer: exit 2, naming the URL', async () => {
    const down = await run(['restricted', 'list', '--redis-url', 'redis://127.0.0.1:1']);
    assert.equal(down.status, 2, down.stdout);
    assert.match(down.stderr, /--redis-url redis:\/\/127\.0\.0\.1:1: .*\(is a Redis server listening there\?\)/);
  });
});
