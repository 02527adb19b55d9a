// The rspamd spam classifier against a real rspamd (Debian package) on loopback, with test rules
// that force outcomes (test/servers/rspamd.ts): a clean message, forced spam, add header and
// greylist scores, a ratelimit-style soft reject, settings, categories; then the faults — rspamd
// down, a server that accepts and never answers, the caller's abort, replies that are not
// rspamd's — each alone and through decidePool.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import {
  createRspamdClassifier,
  DEFAULT_RSPAMD_SPAM_ACTIONS,
  RspamdError,
  verdictFromRspamd,
  type RspamdClassifierOptions,
} from '../../src/rspamd/classifier.js';
import { decidePool } from '../../src/decide/gather.js';
import { OutboundPoolsError } from '../../src/errors.js';
import type { Decision } from '../../src/decide/types.js';
import type { PolicyInput } from '../../src/policy.js';
import type { AsyncSpamClassifier, ProviderMessage } from '../../src/providers/types.js';
import { startRspamd, type RspamdServer } from '../servers/rspamd.js';

/**
 * rspamd scores the `Date:` field against its own wall clock (DATE_IN_PAST, DATE_IN_FUTURE), which
 * no test can inject, so the message is dated now: a fixed date drifts into DATE_IN_PAST.
 */
const DATE = new Date().toUTCString().replace(/GMT$/, '+0000');
const HEADERS = [
  'From: Megan Bowen <megan@contoso.com>',
  'To: Lee Gu <lee@example.net>',
  'Subject: Lunch on Friday?',
  `Date: ${DATE}`,
  'Message-ID: <lunch-42@contoso.com>',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
].join('\r\n');
const MESSAGE = `${HEADERS}\r\n\r\nShall we meet at noon?\r\n`;

/** The message with extra header fields on top. */
function withFields(...fields: string[]): string {
  return `${fields.map((field) => `${field}\r\n`).join('')}${MESSAGE}`;
}

function providerMessage(raw: ProviderMessage['raw'], extra: Partial<ProviderMessage> = {}): ProviderMessage {
  return { raw, mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], submitter: 'megan@contoso.com', ...extra };
}

const ACCEPTED = ['contoso.com'];
const SPAM_POLICY: PolicyInput = { acceptedDomains: ACCEPTED, spam: { threshold: 6 }, deadlines: { spamMs: 2_000, totalMs: 3_000 } };
const NEVER = new AbortController().signal;

function label(decision: Decision): string[] {
  return decision.reasons.map((reason) => (reason.provider === undefined ? reason.code : `${reason.code}(${reason.provider})`));
}

/** Asserts that `promise` rejects with an RspamdError of `code`, and returns it. */
async function rejectsWith(promise: Promise<unknown>, code: RspamdError['code']): Promise<RspamdError> {
  let caught: unknown;
  await promise.then(
    (value) => assert.fail(`expected ${code}, got ${JSON.stringify(value)}`),
    (error: unknown) => {
      caught = error;
    },
  );
  assert.ok(caught instanceof RspamdError, `expected an RspamdError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

interface Recorded {
  readonly request: Headers;
  readonly reply: { score: number; action: string; symbols: Record<string, { options?: string[] }> };
}

/** Runs `call` with global fetch wrapped, recording the request headers and rspamd's JSON reply. */
async function recording<T>(call: () => Promise<T>): Promise<{ result: T; recorded: Recorded[] }> {
  const original = globalThis.fetch;
  const recorded: Recorded[] = [];
  globalThis.fetch = async (input, init) => {
    const response = await original(input, init);
    recorded.push({ request: new Headers(init?.headers), reply: (await response.clone().json()) as Recorded['reply'] });
    return response;
  };
  try {
    return { result: await call(), recorded };
  } finally {
    globalThis.fetch = original;
  }
}

/** A TCP server that accepts connections and never says a word; it reports when a client hangs up. */
async function silentServer(): Promise<{ url: string; closed: Promise<void>; stop: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let hungUp!: () => void;
  const closed = new Promise<void>((resolve) => (hungUp = resolve));
  let stopping = false;
  const server: Server = createServer((socket) => {
    // After an abort, undici opens a fresh idle connection to the origin: do not wait for it.
    if (stopping) return void socket.destroy();
    sockets.add(socket);
    socket.resume(); // read (and drop) the request, or the client's hang-up would go unnoticed
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      hungUp();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    closed,
    stop: async () => {
      stopping = true;
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An HTTP server that answers every request with `status` and `body`: replies that are not rspamd's. */
async function cannedServer(status: number, body: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const server: HttpServer = createHttpServer((request, response) => {
    request.resume();
    request.on('end', () => response.writeHead(status, { 'content-type': 'application/json', connection: 'close' }).end(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, stop: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('createRspamdClassifier against a real rspamd', () => {
  let rspamd: RspamdServer;
  let spam: AsyncSpamClassifier;

  before(
    async () => {
      rspamd = await startRspamd();
      spam = createRspamdClassifier({ url: rspamd.url });
    },
    { timeout: 40_000 },
  );
  after(async () => {
    await rspamd?.stop();
  });

  it('declares the AbortSignal parameter, so that decidePool passes it one', () => {
    assert.equal(spam.classify.length, 2);
  });

  it('gives a clean message from an authenticated submitter a low score and isSpam false', async () => {
    const verdict = await spam.classify(providerMessage(MESSAGE), NEVER);
    assert.equal(verdict.isSpam, false);
    assert.ok(verdict.score !== undefined && verdict.score < 4, `score ${verdict.score}`);
    assert.equal(verdict.categories, undefined);
  });

  it('reports a message rspamd rejects (the 20-point test rule) as spam with its score', async () => {
    const verdict = await spam.classify(providerMessage(withFields('X-Test-Spam: yes')), NEVER);
    assert.equal(verdict.isSpam, true);
    assert.ok(verdict.score !== undefined && verdict.score >= 20, `score ${verdict.score}`);
  });

  it('sends forced spam to the high-risk pool through decidePool (reason spam, score over the threshold)', async () => {
    const decision = await decidePool(
      { mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], headers: withFields('X-Test-Spam: yes'), submitter: 'megan@contoso.com' },
      { policy: SPAM_POLICY, providers: { spam } },
    );
    assert.equal(decision.action, 'deliver');
    assert.equal(decision.pool, 'high-risk');
    assert.deepEqual(label(decision), ['spam']);
    assert.equal(decision.reasons[0]!.detail?.threshold, 6);
    assert.ok(Number(decision.reasons[0]!.detail?.score) >= 20);
    assert.equal(decision.verdicts.spam.state, 'provided');
  });

  it('delivers a clean message through the normal pool through decidePool', async () => {
    const decision = await decidePool(
      { mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], headers: MESSAGE, submitter: 'megan@contoso.com' },
      { policy: SPAM_POLICY, providers: { spam } },
    );
    assert.equal(decision.pool, 'normal');
    assert.deepEqual(label(decision), ['accepted-domain']);
  });

  it("maps rspamd's actions: add header (score 8) is spam, greylist (score 5) is not but keeps its score", async () => {
    const addHeader = await spam.classify(providerMessage(withFields('X-Test-Score: 8')), NEVER);
    assert.equal(addHeader.isSpam, true);
    assert.ok(addHeader.score! >= 6 && addHeader.score! < 15, `score ${addHeader.score}`);
    const greylist = await spam.classify(providerMessage(withFields('X-Test-Score: 5')), NEVER);
    assert.equal(greylist.isSpam, false);
    assert.ok(greylist.score! >= 4 && greylist.score! < 6, `score ${greylist.score}`);
    // Through decidePool, the score alone decides against the policy threshold of 6.
    const decision = await decidePool(
      { mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], headers: withFields('X-Test-Score: 5'), submitter: 'megan@contoso.com' },
      { policy: SPAM_POLICY, providers: { spam } },
    );
    assert.equal(decision.pool, 'normal');
  });

  it('treats a soft reject (rspamd ratelimit) as no verdict: rejects with ESOFTREJECT and rspamd’s SMTP message', async () => {
    const error = await rejectsWith(spam.classify(providerMessage(withFields('X-Test-Ratelimit: yes')), NEVER), 'ESOFTREJECT');
    assert.equal(error.action, 'soft reject');
    assert.equal(error.smtpMessage, 'Ratelimit "user" exceeded');
    assert.match(error.message, /Ratelimit "user" exceeded/);
  });

  it('makes a soft reject provider-failed through decidePool: fail-open delivers by the other rules, defer answers 451', async () => {
    const message = { mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], headers: withFields('X-Test-Ratelimit: yes'), submitter: 'megan@contoso.com' };
    const open = await decidePool(message, { policy: SPAM_POLICY, providers: { spam } });
    assert.equal(open.action, 'deliver');
    assert.equal(open.pool, 'normal', 'a rate limit is not spam: not the high-risk pool');
    assert.deepEqual(label(open), ['accepted-domain', 'provider-failed(spam)']);
    const failed = open.reasons.find((reason) => reason.code === 'provider-failed')!;
    assert.match(failed.message, /ESOFTREJECT: .*Ratelimit "user" exceeded/);

    const deferred = await decidePool(message, { policy: { ...SPAM_POLICY, onProviderFailure: { spam: 'defer' } }, providers: { spam } });
    assert.equal(deferred.action, 'defer');
    assert.equal(deferred.reply?.code, 451);
    assert.deepEqual(label(deferred), ['provider-failed(spam)']);
  });

  it('counts a soft reject as spam when spamActions lists it', async () => {
    const strict = createRspamdClassifier({ url: rspamd.url, spamActions: [...DEFAULT_RSPAMD_SPAM_ACTIONS, 'soft reject'] });
    const verdict = await strict.classify(providerMessage(withFields('X-Test-Ratelimit: yes')), NEVER);
    assert.equal(verdict.isSpam, true);
  });

  it('sends the envelope as rspamd reads it: From, every Rcpt, IP, Helo, User, Queue-Id', async () => {
    const message = {
      ...providerMessage(MESSAGE, {
        rcptTo: ['lee@example.net', '"quoted,comma"@example.org', 'kim@bücher.example'],
        ingress: { ip: '192.0.2.10', helo: 'mail.contoso.com' },
      }),
      queueId: '4Xk9Lz1abc',
    };
    const { result, recorded } = await recording(() => spam.classify(message, NEVER));
    assert.equal(result.isSpam, false);
    assert.equal(recorded.length, 1);
    // TEST_ENVELOPE echoes what rspamd parsed from the request headers.
    assert.deepEqual(recorded[0]!.reply.symbols.TEST_ENVELOPE?.options, [
      'from=megan@contoso.com',
      'rcpt=lee@example.net',
      'rcpt=quoted,comma@example.org',
      'rcpt=kim@xn--bcher-kva.example',
      'ip=192.0.2.10',
      'helo=mail.contoso.com',
      'user=megan@contoso.com',
      'qid=4Xk9Lz1abc',
    ]);
  });

  it('sends the null sender as <> and leaves out a recipient with a non-ASCII local part (rspamd 3.4 would flag BROKEN_HEADERS)', async () => {
    const message = providerMessage(MESSAGE, { mailFrom: '', rcptTo: ['josé@example.net', 'lee@example.net'] });
    const { result, recorded } = await recording(() => spam.classify(message, NEVER));
    assert.equal(recorded[0]!.request.get('from'), '<>');
    assert.deepEqual(recorded[0]!.reply.symbols.TEST_ENVELOPE?.options, ['from=', 'rcpt=lee@example.net', 'user=megan@contoso.com']);
    assert.equal(recorded[0]!.reply.symbols.BROKEN_HEADERS, undefined);
    assert.equal(result.isSpam, false);
  });

  it('sends a header block alone with an empty body, from a string or bytes, CRLF or LF', async () => {
    for (const raw of [
      `X-Test-Spam: yes\r\n${HEADERS}`,
      `X-Test-Spam: yes\r\n${HEADERS}\r\n`,
      `X-Test-Spam: yes\n${HEADERS.replaceAll('\r\n', '\n')}\n`,
      new TextEncoder().encode(`X-Test-Spam: yes\r\n${HEADERS}`),
      Buffer.from(withFields('X-Test-Spam: yes')),
    ]) {
      const verdict = await spam.classify(providerMessage(raw), NEVER);
      assert.equal(verdict.isSpam, true, `rspamd saw the X-Test-Spam field of ${JSON.stringify(String(raw).slice(0, 30))}`);
    }
  });

  it('rejects with ENOCONTENT, without asking rspamd, when there is no message', async () => {
    const { recorded } = await recording(async () => {
      await rejectsWith(spam.classify(providerMessage(undefined), NEVER), 'ENOCONTENT');
      await rejectsWith(spam.classify(providerMessage(''), NEVER), 'ENOCONTENT');
    });
    assert.equal(recorded.length, 0);
  });

  it('applies the rspamd settings settingsId names (strict: add header from score 1)', async () => {
    const message = providerMessage(withFields('X-Test-Score: 2'));
    assert.equal((await spam.classify(message, NEVER)).isSpam, false);
    const strict = createRspamdClassifier({ url: rspamd.url, settingsId: 'strict' });
    assert.equal((await strict.classify(message, NEVER)).isSpam, true);
  });

  it('puts a category on the verdict when its symbol fires, and blockCategories then blocks', async () => {
    const phish = createRspamdClassifier({ url: rspamd.url, categories: { phishing: ['TEST_PHISH'] } });
    const verdict = await phish.classify(providerMessage(withFields('X-Test-Phish: yes')), NEVER);
    assert.deepEqual(verdict.categories, ['phishing']);
    const decision = await decidePool(
      { mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], headers: withFields('X-Test-Phish: yes'), submitter: 'megan@contoso.com' },
      { policy: { ...SPAM_POLICY, spam: { threshold: 100, blockCategories: ['phishing'] } }, providers: { spam: phish } },
    );
    assert.equal(decision.action, 'block');
    assert.deepEqual(label(decision), ['spam']);
  });

  it('accepts the url with a trailing slash or ending in /checkv2, and sends the extra headers and the password', async () => {
    for (const url of [`${rspamd.url}/`, `${rspamd.url}/checkv2`, `${rspamd.url}/checkv2/`]) {
      const { result, recorded } = await recording(() =>
        createRspamdClassifier({ url, headers: { 'MTA-Name': 'outbound-test' }, password: 'q1' }).classify(providerMessage(MESSAGE), NEVER),
      );
      assert.equal(result.isSpam, false);
      assert.equal(recorded[0]!.request.get('mta-name'), 'outbound-test');
      assert.equal(recorded[0]!.request.get('password'), 'q1');
    }
  });

  it('rejects with EHTTP and rspamd’s error text for a path rspamd does not serve', async () => {
    const wrongPath = createRspamdClassifier({ url: `${rspamd.url}/no/such/path` });
    const error = await rejectsWith(wrongPath.classify(providerMessage(MESSAGE), NEVER), 'EHTTP');
    assert.ok(error.status !== undefined && error.status >= 400, `status ${error.status}`);
  });
});

describe('createRspamdClassifier when rspamd fails', () => {
  it('rejects with ENETWORK when nothing listens (rspamd down), and decidePool gives provider-failed within its deadline', async () => {
    const down = createRspamdClassifier({ url: `http://127.0.0.1:${await closedPort()}` });
    const error = await rejectsWith(down.classify(providerMessage(MESSAGE), NEVER), 'ENETWORK');
    assert.match(error.message, /ECONNREFUSED/);

    const started = Date.now();
    const decision = await decidePool(
      { mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], headers: MESSAGE },
      { policy: { ...SPAM_POLICY, deadlines: { spamMs: 500, totalMs: 1_000 } }, providers: { spam: down } },
    );
    assert.ok(Date.now() - started < 1_500, `took ${Date.now() - started} ms`);
    assert.equal(decision.pool, 'normal');
    assert.deepEqual(label(decision), ['accepted-domain', 'provider-failed(spam)']);
    assert.equal(decision.verdicts.spam.state, 'failed');
  });

  it('times out (ETIMEDOUT) after timeoutMs against a server that accepts TCP and never answers, and hangs up', async () => {
    const silent = await silentServer();
    try {
      const started = Date.now();
      await rejectsWith(createRspamdClassifier({ url: silent.url, timeoutMs: 300 }).classify(providerMessage(MESSAGE), NEVER), 'ETIMEDOUT');
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 290 && elapsed < 2_000, `took ${elapsed} ms`);
      await silent.closed;
    } finally {
      await silent.stop();
    }
  });

  it("aborts an in-flight request when the caller's AbortSignal fires (ABORT_ERR), and hangs up", async () => {
    const silent = await silentServer();
    try {
      const controller = new AbortController();
      const started = Date.now();
      const pending = createRspamdClassifier({ url: silent.url }).classify(providerMessage(MESSAGE), controller.signal);
      setTimeout(() => controller.abort(), 150);
      await rejectsWith(pending, 'ABORT_ERR');
      assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
      await silent.closed;
      // Already aborted: no request at all.
      await rejectsWith(createRspamdClassifier({ url: silent.url }).classify(providerMessage(MESSAGE), controller.signal), 'ABORT_ERR');
    } finally {
      await silent.stop();
    }
  });

  it('gives provider-failed at the policy deadline through decidePool when rspamd never answers, aborting the request', async () => {
    const silent = await silentServer();
    try {
      const started = Date.now();
      const decision = await decidePool(
        { mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], headers: MESSAGE },
        { policy: { ...SPAM_POLICY, deadlines: { spamMs: 300, totalMs: 1_000 } }, providers: { spam: createRspamdClassifier({ url: silent.url }) } },
      );
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 290 && elapsed < 1_500, `took ${elapsed} ms`);
      assert.deepEqual(label(decision), ['accepted-domain', 'provider-failed(spam)']);
      assert.match(decision.reasons[1]!.message, /no answer within 300 ms/);
      await silent.closed; // the classifier's request was aborted, not left hanging
    } finally {
      await silent.stop();
    }
  });

  it('rejects replies that are not rspamd’s: HTTP 500 (EHTTP), not JSON, no score (EPROTOCOL), skipped (ESKIPPED)', async () => {
    const cases: [number, string, RspamdError['code'], RegExp][] = [
      [500, '{"error":"invalid command","error_domain":"protocol-error"}', 'EHTTP', /HTTP 500: invalid command/],
      [200, '<html>Welcome to nginx</html>', 'EPROTOCOL', /not JSON/],
      [200, '{"action":"no action","symbols":{}}', 'EPROTOCOL', /no score/],
      [200, '{"score":1,"symbols":{}}', 'EPROTOCOL', /no action/],
      [200, '[1,2]', 'EPROTOCOL', /not a JSON object/],
      [200, '{"is_skipped":true,"score":0,"action":"no action"}', 'ESKIPPED', /skipped/],
    ];
    for (const [status, body, code, message] of cases) {
      const canned = await cannedServer(status, body);
      try {
        const error = await rejectsWith(createRspamdClassifier({ url: canned.url }).classify(providerMessage(MESSAGE), NEVER), code);
        assert.match(error.message, message);
        if (code === 'EHTTP') assert.equal(error.status, status);
      } finally {
        await canned.stop();
      }
    }
  });
});

describe('verdictFromRspamd', () => {
  const reply = (action: string, symbols: Record<string, unknown> = {}) => ({ is_skipped: false, score: 9.5, required_score: 15, action, symbols });

  it("maps a /checkv2 reply: isSpam from the action, categories from the symbols, rspamd's config spelling of actions accepted", () => {
    assert.deepEqual(verdictFromRspamd(reply('add header')), { score: 9.5, isSpam: true });
    assert.deepEqual(verdictFromRspamd(reply('greylist')), { score: 9.5, isSpam: false });
    assert.deepEqual(verdictFromRspamd(reply('no action', { PHISHED_OPENPHISH: {}, CLAM_VIRUS: {} })), {
      score: 9.5,
      isSpam: false,
      categories: ['phishing', 'malware'],
    });
    assert.deepEqual(verdictFromRspamd(reply('add header'), { spamActions: ['reject'] }), { score: 9.5, isSpam: false });
    assert.deepEqual(verdictFromRspamd(reply('greylist'), { spamActions: ['Greylist', 'add_header'] }), { score: 9.5, isSpam: true });
    assert.throws(() => verdictFromRspamd({ ...reply('soft reject'), messages: { smtp_message: 'Try again later' } }), (error: unknown) => {
      return error instanceof RspamdError && error.code === 'ESOFTREJECT' && error.smtpMessage === 'Try again later';
    });
  });
});

describe('createRspamdClassifier options', () => {
  const refused: [string, unknown, RegExp][] = [
    ['no options', undefined, /options object/],
    ['an unknown option', { url: 'http://127.0.0.1:11333', timeout: 5 }, /Unknown rspamd classifier option "timeout"/],
    ['no url', {}, /url must be rspamd's address/],
    ['a url that is not one', { url: '127.0.0.1:11333' }, /http: or https:|not a URL/],
    ['a url with credentials', { url: 'http://user:pw@127.0.0.1:11333' }, /credentials/],
    ['a url with a query', { url: 'http://127.0.0.1:11333/?x=1' }, /query/],
    ['a timeout of 0', { url: 'http://127.0.0.1:11333', timeoutMs: 0 }, /timeoutMs must be a whole number/],
    ['a timeout of 1.5 ms', { url: 'http://127.0.0.1:11333', timeoutMs: 1.5 }, /timeoutMs/],
    ['an empty password', { url: 'http://127.0.0.1:11333', password: '' }, /password/],
    ['a settings id with a space', { url: 'http://127.0.0.1:11333', settingsId: 'my settings' }, /settingsId/],
    ['a header the classifier sets', { url: 'http://127.0.0.1:11333', headers: { Rcpt: 'x@example.net' } }, /Rcpt is set by the classifier/],
    ['Settings-ID as a header', { url: 'http://127.0.0.1:11333', headers: { 'settings-id': 'x' } }, /use the settingsId option/],
    ['a header value with a line break', { url: 'http://127.0.0.1:11333', headers: { Hostname: 'a\r\nRcpt: x' } }, /line breaks/],
    ['a header name that is not one', { url: 'http://127.0.0.1:11333', headers: { 'Bad Name': 'x' } }, /not an HTTP header name/],
    ['spamActions not an array', { url: 'http://127.0.0.1:11333', spamActions: 'reject' }, /spamActions must be an array/],
    ['categories with a bad list', { url: 'http://127.0.0.1:11333', categories: { phishing: 'PHISHING' } }, /categories.phishing must be an array/],
  ];
  for (const [what, options, message] of refused) {
    it(`refuses ${what} with invalid-context`, () => {
      assert.throws(
        () => createRspamdClassifier(options as RspamdClassifierOptions),
        (error: unknown) => error instanceof OutboundPoolsError && error.code === 'invalid-context' && message.test(error.message),
      );
    });
  }
});
