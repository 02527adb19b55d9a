// The get_mx hook of the Haraka plugin without Haraka: what it answers for the MX records its
// resolveMx finds (sorted, bound to the pool), and how it hands over to Haraka's own lookup
// (CONT, bound through todo.notes.outbound_ip/outbound_helo) for a null MX, no MX or a failed
// lookup. The decisions are real ones, made by the plugin's own decider.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createHarakaPlugin,
  harakaAuthentication,
  HARAKA_CODES,
  INPUT_NOTE,
  NOTE,
  type HarakaConnection,
  type HarakaMxAnswer,
  type HarakaPluginOptions,
} from '../src/haraka/plugin.js';
import { createMemoryRateLimiter, createPolicy, createStaticResolver, decideFromVerdicts, type ConsumeRequest, type Decision, type ProviderMessage, type RateLimiter, type StaticZone } from '../src/index.js';
import { createRequire } from 'node:module';

const ROOT = new URL('../', import.meta.url).pathname;
const ZONE = JSON.parse(readFileSync(join(ROOT, 'examples', 'zone.json'), 'utf8')) as StaticZone;
const POOLS = {
  normal: { bind: '127.0.0.10', helo: 'out.contoso.com' },
  'high-risk': { bind: '127.0.0.20', helo: 'hr.contoso.com' },
  relay: { bind: '127.0.0.30', helo: 'rly.contoso.com' },
} as const;

type MxRecord = { readonly exchange: string; readonly priority: number };
type ResolveMx = NonNullable<HarakaPluginOptions['resolveMx']>;

/** A plugin whose resolveMx is `resolveMx`, recording the domains it was asked for. */
function pluginWith(resolveMx: ResolveMx) {
  const asked: string[] = [];
  const plugin = createHarakaPlugin({
    policy: createPolicy({ acceptedDomains: ['contoso.com'], spam: { threshold: 6 } }),
    providers: {
      dns: createStaticResolver(ZONE),
      spam: {
        classify: async (message) => ({ score: /lottery/.test(Buffer.from(message.raw ?? '').toString('utf8')) ? 12 : 0.5 }),
      },
    },
    pools: POOLS,
    resolveMx: (domain) => {
      asked.push(domain);
      return resolveMx(domain);
    },
  });
  return { plugin, asked };
}

async function decision(plugin: ReturnType<typeof createHarakaPlugin>, subject = 'Quarterly numbers'): Promise<Decision> {
  return plugin.decide({
    mailFrom: 'megan@contoso.com',
    rcptTo: ['lee@fabrikam.example'],
    headers: `From: megan@contoso.com\r\nTo: lee@fabrikam.example\r\nSubject: ${subject}\r\n\r\n`,
  });
}

/** Calls hook_get_mx as Haraka does, with a todo carrying `notes`; resolves with what it answered. */
async function getMx(
  plugin: ReturnType<typeof createHarakaPlugin>,
  notes: Record<string, unknown>,
  domain = 'fabrikam.example',
): Promise<{ code: number | undefined; answer: unknown; calls: number }> {
  let calls = 0;
  let code: number | undefined;
  let answer: unknown;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('hook_get_mx never called next')), 2000);
    plugin
      .hook_get_mx(
        (c, a) => {
          calls += 1;
          code = c;
          answer = a;
          clearTimeout(timer);
          resolve();
        },
        { todo: { notes } },
        domain,
      )
      .catch(reject);
  });
  // A second call of next would make Haraka run the next hook twice: give it a chance to show.
  await new Promise((resolve) => setImmediate(resolve));
  return { code, answer, calls };
}

describe('hook_get_mx without a nextHop', () => {
  it('answers OK with the MX records sorted by priority, each on port 25 bound to the pool', async () => {
    const records: MxRecord[] = [
      { exchange: 'mx3.fabrikam.example', priority: 30 },
      { exchange: 'mx1.fabrikam.example', priority: 5 },
      { exchange: 'mx2.fabrikam.example', priority: 10 },
    ];
    const { plugin, asked } = pluginWith(async () => records);
    const decided = await decision(plugin);
    assert.equal(decided.action, 'deliver');
    assert.equal(decided.action === 'deliver' ? decided.pool : undefined, 'normal');
    const notes: Record<string, unknown> = { [NOTE]: decided };
    const { code, answer, calls } = await getMx(plugin, notes);
    assert.equal(calls, 1);
    assert.equal(code, HARAKA_CODES.OK);
    assert.deepEqual(asked, ['fabrikam.example']);
    const expected: HarakaMxAnswer[] = [
      { exchange: 'mx1.fabrikam.example', port: 25, priority: 5, bind: '127.0.0.10', bind_helo: 'out.contoso.com' },
      { exchange: 'mx2.fabrikam.example', port: 25, priority: 10, bind: '127.0.0.10', bind_helo: 'out.contoso.com' },
      { exchange: 'mx3.fabrikam.example', port: 25, priority: 30, bind: '127.0.0.10', bind_helo: 'out.contoso.com' },
    ];
    assert.deepEqual(answer, expected);
    // The records resolveMx gave are not reordered in place.
    assert.deepEqual(
      records.map((mx) => mx.priority),
      [30, 5, 10],
    );
    // Bound through the answer, not through the deprecated notes.
    assert.equal(notes['outbound_ip'], undefined);
    assert.equal(notes['outbound_helo'], undefined);
  });

  it('binds to the pool of the decision (high-risk for spam)', async () => {
    const { plugin } = pluginWith(async () => [{ exchange: '127.0.0.5', priority: 10 }]);
    const decided = await decision(plugin, 'You won the lottery');
    assert.equal(decided.action === 'deliver' ? decided.pool : undefined, 'high-risk');
    const { code, answer } = await getMx(plugin, { [NOTE]: decided });
    assert.equal(code, HARAKA_CODES.OK);
    assert.deepEqual(answer, [{ exchange: '127.0.0.5', port: 25, priority: 10, bind: '127.0.0.20', bind_helo: 'hr.contoso.com' }]);
  });

  const handedOver: { readonly name: string; readonly resolveMx: ResolveMx }[] = [
    { name: 'a null MX (RFC 7505) as node:dns gives it', resolveMx: async () => [{ exchange: '', priority: 0 }] },
    { name: "a null MX written '.'", resolveMx: async () => [{ exchange: '.', priority: 0 }] },
    { name: 'no MX records', resolveMx: async () => [] },
    {
      name: 'a null MX among other records',
      resolveMx: async () => [
        { exchange: 'mx1.fabrikam.example', priority: 10 },
        { exchange: '', priority: 0 },
      ],
    },
    {
      name: 'a lookup that rejects (ENOTFOUND)',
      resolveMx: async (domain) => {
        throw Object.assign(new Error(`queryMx ENOTFOUND ${domain}`), { code: 'ENOTFOUND' });
      },
    },
    {
      name: 'a lookup that rejects (ESERVFAIL)',
      resolveMx: async (domain) => {
        throw Object.assign(new Error(`queryMx ESERVFAIL ${domain}`), { code: 'ESERVFAIL' });
      },
    },
    {
      name: 'a lookup that throws synchronously',
      resolveMx: () => {
        throw new Error('resolver misconfigured');
      },
    },
  ];
  for (const { name, resolveMx } of handedOver) {
    it(`answers CONT with notes.outbound_ip and outbound_helo of the pool for ${name}`, async () => {
      const { plugin, asked } = pluginWith(resolveMx);
      const decided = await decision(plugin);
      assert.equal(decided.action === 'deliver' ? decided.pool : undefined, 'normal');
      const notes: Record<string, unknown> = { [NOTE]: decided };
      const { code, answer, calls } = await getMx(plugin, notes);
      assert.equal(calls, 1);
      assert.deepEqual(asked, ['fabrikam.example']);
      assert.equal(code, HARAKA_CODES.CONT);
      assert.equal(answer, undefined);
      assert.equal(notes['outbound_ip'], '127.0.0.10');
      assert.equal(notes['outbound_helo'], 'out.contoso.com');
    });
  }

  it('leaves a message without a deliver decision alone: CONT, no lookup, no notes', async () => {
    const { plugin, asked } = pluginWith(async () => [{ exchange: 'mx1.fabrikam.example', priority: 10 }]);
    for (const notes of [{}, { [NOTE]: { action: 'defer' } }, { [NOTE]: 'not a decision' }] as Record<string, unknown>[]) {
      const { code, answer } = await getMx(plugin, notes);
      assert.equal(code, HARAKA_CODES.CONT);
      assert.equal(answer, undefined);
      assert.equal(notes['outbound_ip'], undefined);
      assert.equal(notes['outbound_helo'], undefined);
    }
    assert.deepEqual(asked, []);
  });
});

describe('hook_data_post with a deferred decision', () => {
  // Over SMTP, Haraka sends the DSN's code whichever of DENY and DENYSOFT the hook answered (the
  // integration test sees the 451); here, that the hook answers DENYSOFT, which keeps the client
  // retrying and Haraka logging a temporary refusal.
  it('answers DENYSOFT with the exact reply of the decision when the spam classifier fails and the policy defers', async () => {
    const plugin = createHarakaPlugin({
      policy: createPolicy({ acceptedDomains: ['contoso.com'], spam: { threshold: 6 }, onProviderFailure: { spam: 'defer' } }),
      providers: {
        dns: createStaticResolver(ZONE),
        spam: {
          classify: async () => {
            throw new Error('the classifier is unreachable');
          },
        },
      },
      pools: POOLS,
      resolveMx: async () => assert.fail('get_mx is not reached'),
    });
    const headers = Buffer.from('From: megan@contoso.com\r\nTo: lee@fabrikam.example\r\nSubject: Minutes\r\n\r\nHello.\r\n');
    const address = (user: string, host: string) => ({ user, host, isNull: () => false });
    const added: string[] = [];
    const transaction = {
      mail_from: address('megan', 'contoso.com'),
      rcpt_to: [address('lee', 'fabrikam.example')],
      notes: {} as Record<string, unknown>,
      message_stream: { get_data: (callback: (data: Buffer) => void) => callback(headers) },
      add_header: (name: string, value: string) => added.push(`${name}: ${value}`),
      remove_header: () => undefined,
    };
    const answered: { code: number | undefined; message: unknown }[] = [];
    await plugin.hook_data_post((code, message) => answered.push({ code, message }), {
      transaction,
      relaying: true,
      remote: { ip: '127.0.0.1' },
    });
    assert.equal(answered.length, 1);
    const [{ code, message }] = answered as [{ code: number | undefined; message: unknown }];
    assert.equal(code, HARAKA_CODES.DENYSOFT);
    const decided = transaction.notes[NOTE] as Decision;
    assert.equal(decided.action, 'defer');
    const reply = decided.reply;
    assert.ok(reply);
    assert.deepEqual({ code: reply.code, enhancedCode: reply.enhancedCode }, { code: 451, enhancedCode: '4.3.0' });
    // Haraka reads a DSN-shaped reply: a class named DSN with the code and the text after it.
    assert.equal((message as { constructor: { name: string } }).constructor.name, 'DSN');
    assert.deepEqual({ ...(message as object) }, { code: 451, reply: `${reply.enhancedCode} ${reply.text}` });
    assert.deepEqual(added, [], 'a deferred message got a trace header');
  });
});

describe('hook_data_post with what an earlier plugin put in transaction.notes.outbound_pools_input', () => {
  const headers = Buffer.from('From: megan@contoso.com\r\nTo: lee@fabrikam.example\r\nSubject: Minutes\r\n\r\nHello.\r\n');
  const address = (user: string, host: string) => ({ user, host, isNull: () => false });
  const transactionWith = (input: unknown) => ({
    mail_from: address('megan', 'contoso.com'),
    rcpt_to: [address('lee', 'fabrikam.example')],
    notes: { [INPUT_NOTE]: input } as Record<string, unknown>,
    message_stream: { get_data: (callback: (data: Buffer) => void) => callback(headers) },
    add_header: () => undefined,
    remove_header: () => undefined,
  });
  const dataPost = async (plugin: ReturnType<typeof createHarakaPlugin>, input: unknown) => {
    const transaction = transactionWith(input);
    const codes: (number | undefined)[] = [];
    await plugin.hook_data_post((code) => codes.push(code), { transaction, relaying: true, remote: { ip: '127.0.0.1' } });
    return { code: codes[0], decision: transaction.notes[NOTE] as Decision | undefined };
  };

  it('autoForwarded and a tenant reach the decision: forwarding off blocks, a tenant past its cap is refused', async () => {
    const plugin = createHarakaPlugin({
      policy: createPolicy({ acceptedDomains: ['contoso.com'], autoForwarding: 'off', tenantLimits: { externalRecipientsPerDay: 1 } }),
      providers: { dns: createStaticResolver(ZONE), rateLimiter: createMemoryRateLimiter() },
      pools: POOLS,
      resolveMx: async () => assert.fail('get_mx is not reached'),
    });
    const forwarded = await dataPost(plugin, { autoForwarded: true });
    assert.equal(forwarded.code, HARAKA_CODES.DENY);
    assert.equal(forwarded.decision?.reasons[0]?.code, 'auto-forwarding-blocked');
    const first = await dataPost(plugin, { tenant: 'contoso', ignored: 'not a message field' });
    assert.equal(first.decision?.action, 'deliver');
    const second = await dataPost(plugin, { tenant: 'contoso' });
    assert.equal(second.code, HARAKA_CODES.DENY);
    assert.equal(second.decision?.reasons[0]?.code, 'tenant-limit-exceeded');
    // Another tenant is not affected; neither is a message without one.
    assert.equal((await dataPost(plugin, { tenant: 'fabrikam' })).decision?.action, 'deliver');
    assert.equal((await dataPost(plugin, undefined)).decision?.action, 'deliver');
  });

  it('a field of the wrong type is an invalid message: DENYSOFT, no decision', async () => {
    const plugin = createHarakaPlugin({
      policy: createPolicy({ acceptedDomains: ['contoso.com'] }),
      providers: { dns: createStaticResolver(ZONE) },
      pools: POOLS,
      resolveMx: async () => assert.fail('get_mx is not reached'),
    });
    const wrong = await dataPost(plugin, { groups: 'sales' });
    assert.equal(wrong.code, HARAKA_CODES.DENYSOFT);
    assert.equal(wrong.decision, undefined);
  });
});

describe('harakaAuthentication reads what each Haraka plugin recorded, one entry at a time', () => {
  // Haraka's own Connection#auth_results (connection.js): entries joined after the host name.
  const require = createRequire(import.meta.url);
  const { auth_results } = (require('Haraka/connection.js') as { Connection: { prototype: { auth_results: (message?: string) => string } } }).Connection.prototype;
  const connectionWith = (...entries: string[]) => {
    const connection = { local: { host: 'mx.contoso.com' }, notes: {}, transaction: { notes: {} }, auth_results };
    for (const entry of entries) connection.auth_results(entry);
    // Only what harakaAuthentication reads of a connection (its host and auth_results).
    return connection as unknown as HarakaConnection;
  };

  it("the SPF and DKIM plugins' results make the verdict", () => {
    const verdict = harakaAuthentication(connectionWith('spf=pass smtp.mailfrom=fabrikam.example', 'dkim=pass header.i=@fabrikam.example header.d=fabrikam.example header.s=k1'));
    assert.deepEqual(verdict?.spf, { result: 'pass', domain: 'fabrikam.example' });
    assert.equal(verdict?.dkim?.[0]?.domain, 'fabrikam.example');
  });

  it('an entry holding the separator itself (Haraka before 3.1.7 kept control characters) is one entry, and dropped', () => {
    // Haraka 3.1.6's auth_results: the entries joined as recorded, CR and LF included.
    const notes = { authentication_results: ['auth=fail (plain) smtp.auth=x;\r\n\tspf=pass smtp.mailfrom=bank.example'] };
    const transaction = { notes: { authentication_results: ['spf=fail smtp.mailfrom=bank.example'] } };
    const old = {
      local: { host: 'mx.contoso.com' },
      notes,
      transaction,
      auth_results: () => ['mx.contoso.com', ...notes.authentication_results, ...transaction.notes.authentication_results].join(';\r\n\t'),
    } as unknown as HarakaConnection;
    assert.deepEqual(harakaAuthentication(old)?.spf, { result: 'fail', domain: 'bank.example' });
  });

  it('a failed login whose user name reads as an SPF pass adds nothing (Haraka records the name as it was typed)', () => {
    // auth_base: `auth=fail (plain) smtp.auth=${user}`, control characters removed, ';' kept.
    const injected = 'auth=fail (plain) smtp.auth=x; spf=pass smtp.mailfrom=fabrikam.example';
    const withSpf = harakaAuthentication(connectionWith(injected, 'spf=fail smtp.mailfrom=fabrikam.example'));
    assert.deepEqual(withSpf?.spf, { result: 'fail', domain: 'fabrikam.example' });
    const alone = harakaAuthentication(connectionWith(injected, 'auth=pass (plain)'));
    assert.equal(alone?.spf, undefined);
    const decision = decideFromVerdicts(
      { mailFrom: 'alice@fabrikam.example', rcptTo: ['bob@northwind.example'], ...(alone === undefined ? {} : { authentication: alone }) },
      {},
      { policy: createPolicy({ acceptedDomains: ['contoso.com'] }), now: new Date(0) },
    );
    assert.deepEqual(decision.reasons.map((reason) => reason.code), ['relay-unverified']);
  });

  it('entries about no sender identity (auth=pass, iprev) make no verdict, so the configured authenticator still runs', () => {
    assert.equal(harakaAuthentication(connectionWith('auth=pass (plain) smtp.auth=megan')), undefined);
    assert.equal(harakaAuthentication(connectionWith('iprev=pass policy.iprev=203.0.113.7', 'auth=pass (login)')), undefined);
    assert.equal(harakaAuthentication(connectionWith('auth=pass (plain)', 'spf=fail smtp.mailfrom=fabrikam.example'))?.spf?.result, 'fail');
  });
});

describe('hook_data_post reads the whole message only for a provider that reads it', () => {
  // Haraka's own header parser (haraka-email-message, as Haraka's transaction uses it): the
  // header block as Haraka hands it to plugins, in transaction.header.header_list.
  const require = createRequire(import.meta.url);
  const { Header } = require('haraka-email-message') as { Header: new () => { header_list: string[]; parse(lines: string[]): void } };
  const LINES = [
    'Received: from client.contoso.com (client.contoso.com [192.0.2.7])\n',
    '\tby mx.contoso.com with ESMTPSA id 4f1; Mon, 7 Dec 2026 10:00:00 +0000\n',
    'From: Megan <megan@contoso.com>\n',
    'To: lee@fabrikam.example\n',
    'Message-ID:\n',
    ' <minutes-42@contoso.com>\n',
    'Subject: Minutes\n',
  ];
  const BODY = Buffer.alloc(4096, 'x');
  const address = (user: string, host: string) => ({ user, host, isNull: () => false });
  /** A transaction with Haraka's parsed header; `reads` counts the calls of get_data. */
  const transactionOf = (options: { parsed?: boolean; from?: string } = {}) => {
    const header = new Header();
    header.parse(LINES);
    const whole = Buffer.concat([Buffer.from(`${LINES.join('').replace(/\n/g, '\r\n')}\r\n`), BODY]);
    const transaction = {
      // A forward is authenticated: a sender of a domain the policy does not accept.
      mail_from: options.from === undefined ? address('megan', 'contoso.com') : address(options.from, 'adventure-works.example'),
      rcpt_to: [address('lee', 'fabrikam.example')],
      notes: {} as Record<string, unknown>,
      ...(options.parsed === false ? {} : { header }),
      reads: 0,
      message_stream: {
        get_data(callback: (data: Buffer) => void) {
          transaction.reads++;
          callback(whole);
        },
      },
      add_header: () => undefined,
      remove_header: () => undefined,
    };
    return transaction;
  };
  /** A memory limiter that records the message id of each consume. */
  const recordingLimiter = () => {
    const limiter = createMemoryRateLimiter();
    const ids: (string | undefined)[] = [];
    return {
      ids,
      // consume only (no consumeSync), so that every count passes through the recording.
      limiter: {
        consume: (request: ConsumeRequest) => (ids.push(request.messageId), limiter.consume(request)),
        restriction: (key: string, now: Date) => limiter.restriction(key, now),
      } satisfies RateLimiter,
    };
  };
  const dataPost = async (options: HarakaPluginOptions, transaction: ReturnType<typeof transactionOf>, connection: Partial<HarakaConnection> = {}) => {
    const plugin = createHarakaPlugin(options);
    const codes: (number | undefined)[] = [];
    await plugin.hook_data_post((code) => codes.push(code), { transaction, relaying: true, remote: { ip: '127.0.0.1' }, ...connection });
    return { code: codes[0], decision: transaction.notes[NOTE] as Decision | undefined };
  };
  const policy = createPolicy({ acceptedDomains: ['contoso.com'], spam: { threshold: 6 } });

  it('without a spam classifier or an authenticator, reads only the header Haraka parsed: the Message-ID still counts', async () => {
    const { ids, limiter } = recordingLimiter();
    const transaction = transactionOf();
    const { code, decision } = await dataPost({ policy, providers: { dns: createStaticResolver(ZONE), rateLimiter: limiter }, pools: POOLS }, transaction);
    assert.equal(code, HARAKA_CODES.CONT);
    assert.equal(decision?.action, 'deliver');
    assert.equal(transaction.reads, 0, 'the whole message was read');
    // The folded Message-ID of Haraka's header list reached the limiter.
    assert.deepEqual(ids, ['<minutes-42@contoso.com>']);
  });

  it('reads the whole message for a spam classifier, which gets the body', async () => {
    const raws: number[] = [];
    const transaction = transactionOf();
    const spam = { classify: (message: ProviderMessage) => (raws.push(message.raw?.length ?? -1), { score: 0 }) };
    const { decision } = await dataPost({ policy, providers: { dns: createStaticResolver(ZONE), spam }, pools: POOLS }, transaction);
    assert.equal(decision?.action, 'deliver');
    assert.equal(transaction.reads, 1);
    assert.ok(raws[0]! > BODY.length, `the classifier got ${raws[0]} bytes`);
  });

  it('reads the whole message for an authenticator, unless the results of Haraka\'s own plugins stand in for it', async () => {
    const authenticated: number[] = [];
    const authenticator = { authenticate: (message: ProviderMessage) => (authenticated.push(message.raw?.length ?? -1), {}) };
    const options = { policy, providers: { dns: createStaticResolver(ZONE), authenticator }, pools: POOLS };
    const alone = transactionOf({ from: 'pat' });
    await dataPost(options, alone);
    assert.equal(alone.reads, 1);
    assert.ok(authenticated[0]! > BODY.length);
    // Haraka's spf plugin recorded a result: the authenticator does not run, the body is not read.
    const withResults = transactionOf({ from: 'pat' });
    const { decision } = await dataPost(options, withResults, { local: { host: 'mx.contoso.com' }, auth_results: () => 'mx.contoso.com;\r\n\tspf=pass smtp.mailfrom=pat@adventure-works.example' });
    assert.deepEqual([decision?.action, decision?.pool], ['deliver', 'normal']);
    assert.equal(withResults.reads, 0, 'the whole message was read');
    assert.equal(authenticated.length, 1, 'the authenticator ran');
  });

  it('reads the message stream when Haraka has no parsed header to give', async () => {
    const { ids, limiter } = recordingLimiter();
    const transaction = transactionOf({ parsed: false });
    await dataPost({ policy, providers: { dns: createStaticResolver(ZONE), rateLimiter: limiter }, pools: POOLS }, transaction);
    assert.equal(transaction.reads, 1);
    assert.deepEqual(ids, ['<minutes-42@contoso.com>']);
  });
});
