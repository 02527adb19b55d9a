// The Haraka plugin in the real Haraka: a relaying Haraka with outbound-pools decides each message
// at data_post and delivers it to a loopback sink through get_mx, bound to its pool's address.
// The sink records the source address of each delivery: that is the proof of the pool.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { decidePool } from '../../src/decide/gather.js';
import { HARAKA_CODES } from '../../src/haraka/plugin.js';
import { startSmtpSink, type SinkDelivery, type SmtpSink } from '../servers/smtp-sink.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const HARAKA_BIN = join(ROOT, 'node_modules', '.bin', 'haraka');
const ENTRY = join(ROOT, 'dist', 'haraka', 'index.cjs');
const POLICY = JSON.parse(readFileSync(join(ROOT, 'examples', 'policy.json'), 'utf8')) as Record<string, unknown>;
const ZONE = JSON.parse(readFileSync(join(ROOT, 'examples', 'zone.json'), 'utf8')) as Record<string, unknown>;
const TEST_POLICY = { ...POLICY, spam: { threshold: 6, blockCategories: ['phishing'] } };
// The inbound MX that authenticated the forwarded mail; Haraka here is the outbound relay.
const AUTHSERV_ID = 'inbound.contoso.com';
const SRS_SECRET = 'haraka-integration-secret';
const POOLS = {
  normal: { bind: '127.0.0.10', helo: 'out.contoso.com' },
  'high-risk': { bind: '127.0.0.20', helo: 'hr.contoso.com' },
  relay: { bind: '127.0.0.30', helo: 'rly.contoso.com' },
} as const;

// A stand-in for Haraka's spf plugin: records a result the way it does, in connection.auth_results.
// It also logs each read of the whole message (message_stream.get_data) by a later plugin.
const GET_DATA_LOGGED = 'test: get_data read';
const SPF_STUB = `exports.hook_data_post = function (next, connection) {
  const transaction = connection.transaction;
  if (transaction.header.get('X-Test-Spf').trim() === 'pass') {
    connection.auth_results('spf=pass smtp.mailfrom=' + transaction.mail_from.host);
  }
  const stream = transaction.message_stream;
  const getData = stream.get_data;
  const id = transaction.header.get('Message-ID').trim();
  stream.get_data = function (...args) {
    connection.loginfo(${JSON.stringify(GET_DATA_LOGGED)} + ' ' + id);
    return getData.apply(stream, args);
  };
  next();
};
`;

// The plugin file Haraka loads: the providers are code, so options are built in code. The spam
// classifier stands in for rspamd: it scores the Subject; authentication comes from the
// Authentication-Results fields of the trusted authserv-id.
function pluginSource(sinkPort: number): string {
  return `const { install } = require(${JSON.stringify(ENTRY)});
install(exports, (op) => ({
  policy: op.createPolicy(${JSON.stringify(TEST_POLICY)}),
  providers: {
    dns: op.createStaticResolver(${JSON.stringify(ZONE)}),
    spam: {
      async classify(message) {
        const subject = /^Subject:(.*)$/im.exec(Buffer.from(message.raw ?? '').toString('utf8'))?.[1] ?? '';
        if (/phish/i.test(subject)) return { score: 20, categories: ['phishing'] };
        return { score: /winner|lottery|free money/i.test(subject) ? 12 : 0.5 };
      },
    },
    authenticator: {
      async authenticate(message) {
        return op.authenticationFromHeaders(message.raw ?? '', { authservIds: [${JSON.stringify(AUTHSERV_ID)}] }).verdict;
      },
    },
  },
  srs: { rewriter: new op.Srs({ secret: ${JSON.stringify(SRS_SECRET)} }), domain: 'contoso.com' },
  pools: ${JSON.stringify(POOLS)},
  nextHop: { host: '127.0.0.1', port: ${sinkPort} },
}));
`;
}

// The second Haraka: no nextHop, so get_mx looks the recipient domain's MX up with resolveMx,
// which points fabrikam.example at the loopback sink on port 25 and fails for every other domain
// (nothing else may be looked up); and a policy that defers when the spam classifier fails,
// with a classifier that throws for the marker Subject.
const MX_DOMAIN = 'fabrikam.example';
const MX_EXCHANGE = '127.0.0.1';
const DEFER_POLICY = { ...TEST_POLICY, onProviderFailure: { spam: 'defer' as const } };
const CLASSIFIER_DOWN = 'classifier-down';
function mxPluginSource(): string {
  return `const { install } = require(${JSON.stringify(ENTRY)});
install(exports, (op) => ({
  policy: op.createPolicy(${JSON.stringify(DEFER_POLICY)}),
  providers: {
    dns: op.createStaticResolver(${JSON.stringify(ZONE)}),
    spam: {
      async classify(message) {
        const subject = /^Subject:(.*)$/im.exec(Buffer.from(message.raw ?? '').toString('utf8'))?.[1] ?? '';
        if (subject.includes(${JSON.stringify(CLASSIFIER_DOWN)})) throw new Error('the classifier is unreachable');
        return { score: /winner|lottery|free money/i.test(subject) ? 12 : 0.5 };
      },
    },
  },
  pools: ${JSON.stringify(POOLS)},
  async resolveMx(domain) {
    if (domain === ${JSON.stringify(MX_DOMAIN)}) return [{ exchange: ${JSON.stringify(MX_EXCHANGE)}, priority: 10 }];
    throw Object.assign(new Error('queryMx ENOTFOUND ' + domain), { code: 'ENOTFOUND' });
  },
}));
`;
}

// The third Haraka: no spam classifier, no authenticator (the DNS and a memory limiter only), so
// the plugin reads the header Haraka parsed and never the whole message; one message a minute
// per sender, so that the Message-ID it reads there shows: a retry of a counted id counts once.
const ONE_A_MINUTE = { ...TEST_POLICY, limits: [{ name: 'one-a-minute', messagesPerMinute: 1, action: 'block' }] };
function headerOnlyPluginSource(sinkPort: number): string {
  return `const { install } = require(${JSON.stringify(ENTRY)});
install(exports, (op) => ({
  policy: op.createPolicy(${JSON.stringify(ONE_A_MINUTE)}),
  providers: { dns: op.createStaticResolver(${JSON.stringify(ZONE)}), rateLimiter: op.createMemoryRateLimiter() },
  pools: ${JSON.stringify(POOLS)},
  nextHop: { host: '127.0.0.1', port: ${sinkPort} },
}));
`;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, child: ChildProcess, output: () => string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Haraka exited with ${child.exitCode}:\n${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.setTimeout(2000, () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('data', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`Haraka did not listen on ${port} within ${timeoutMs} ms:\n${output()}`);
}

/** A Haraka started on loopback from a temporary directory, with the given plugin file. */
interface HarakaInstance {
  readonly port: number;
  /** Everything Haraka wrote so far (stdout and stderr). */
  log(): string;
  stop(): Promise<void>;
}

let built = false;
function buildOnce(): void {
  if (built) return;
  // The plugin runs from dist: build it (npm test builds too).
  const build = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], {
    encoding: 'utf8',
  });
  // A failed build may leave an old dist/ behind: that would test stale code.
  assert.equal(build.status, 0, `the build failed (${build.error?.message ?? `status ${build.status}, signal ${build.signal}`}):\n${build.stdout}${build.stderr}`);
  assert.ok(existsSync(ENTRY), `the build did not produce ${ENTRY}:\n${build.stdout}${build.stderr}`);
  built = true;
}

async function startHaraka(plugin: string): Promise<HarakaInstance> {
  buildOnce();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'outbound-pools-haraka-'));
  let log = '';
  let child: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const running = child;
      const exited = once(running, 'exit');
      running.kill('SIGTERM');
      const timer = setTimeout(() => running.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Haraka's default configs (as `haraka -i` installs them), then ours over them.
    cpSync(join(ROOT, 'node_modules', 'Haraka', 'config'), join(dir, 'config'), { recursive: true });
    mkdirSync(join(dir, 'plugins'));
    mkdirSync(join(dir, 'queue'));
    const config = (name: string, text: string): void => writeFileSync(join(dir, 'config', name), text);
    config('smtp.ini', `[main]\nlisten=127.0.0.1:${port}\nnodes=\n`);
    config('me', 'mx1.contoso.com\n');
    config('host_list', 'contoso.com\n');
    config('plugins', 'relay\nspf_stub\noutbound_pools\n');
    // Haraka renames every Authentication-Results field it receives (clean_auth_results): this
    // relay trusts the inbound MX's fields, so it keeps them (docs/haraka.md).
    const connectionIni = readFileSync(join(dir, 'config', 'connection.ini'), 'utf8');
    config('connection.ini', connectionIni.replace(/^;\s*clean_auth_results=true$/m, 'clean_auth_results=false'));
    assert.match(readFileSync(join(dir, 'config', 'connection.ini'), 'utf8'), /^clean_auth_results=false$/m);
    config('relay.ini', '[relay]\nacl=true\nforce_routing=false\ndest_domains=false\n');
    config('relay_acl_allow', '127.0.0.0/8\n');
    config('outbound.ini', `[main]\nqueue_dir=${join(dir, 'queue')}\n`);
    config('log.ini', '[main]\nlevel=info\n');
    writeFileSync(join(dir, 'plugins', 'outbound_pools.js'), plugin);
    writeFileSync(join(dir, 'plugins', 'spf_stub.js'), SPF_STUB);
    child = spawn(process.execPath, [HARAKA_BIN, '-c', dir], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
    await waitForPort(port, child, () => log);
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, log: () => log, stop };
}

interface TestMessage {
  readonly name: string;
  readonly from: string;
  readonly to: readonly string[];
  readonly headers: string;
  readonly body?: string;
}

function raw(message: TestMessage): string {
  return `${message.headers.trim().replace(/\r?\n/g, '\r\n')}\r\nMessage-ID: <${message.name}@test.contoso.com>\r\n\r\n${message.body ?? 'Hello.'}\r\n`;
}

const MESSAGES = {
  accepted: {
    name: 'accepted',
    from: 'megan@contoso.com',
    to: ['lee@fabrikam.example'],
    headers: 'From: Megan <megan@contoso.com>\nTo: lee@fabrikam.example\nSubject: Quarterly numbers',
  },
  ndr: {
    name: 'ndr',
    from: '',
    to: ['alex@fabrikam.example'],
    headers: 'From: MAILER-DAEMON@contoso.com\nTo: alex@fabrikam.example\nSubject: Undeliverable: hello\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"',
    body: '--b\r\nContent-Type: text/plain\r\n\r\nUndeliverable.\r\n--b--',
  },
  spam: {
    name: 'spam',
    from: 'megan@contoso.com',
    to: ['lee@fabrikam.example'],
    headers: 'From: megan@contoso.com\nTo: lee@fabrikam.example\nSubject: You are a WINNER of the lottery',
  },
  unverified: {
    name: 'unverified',
    from: 'kim@northwind.example',
    to: ['lee@fabrikam.example'],
    headers: 'From: kim@northwind.example\nTo: forward@contoso.com\nSubject: Forwarded, unverified',
  },
  verified: {
    name: 'verified',
    from: 'alex@fabrikam.example',
    to: ['ops@adventure-works.example'],
    headers: `Authentication-Results: ${AUTHSERV_ID}; spf=pass smtp.mailfrom=fabrikam.example\nFrom: alex@fabrikam.example\nTo: forward@contoso.com\nSubject: Forwarded, SPF pass`,
  },
  verifiedByHaraka: {
    name: 'verified-by-haraka',
    from: 'alex@fabrikam.example',
    to: ['ops@adventure-works.example'],
    headers: 'X-Test-Spf: pass\nFrom: alex@fabrikam.example\nTo: forward@contoso.com\nSubject: Forwarded, SPF pass in Haraka',
  },
  blocked: {
    name: 'blocked',
    from: 'megan@contoso.com',
    to: ['lee@fabrikam.example'],
    headers: 'From: megan@contoso.com\nTo: lee@fabrikam.example\nSubject: Verify your account (phish)',
  },
} satisfies Record<string, TestMessage>;

/** Sends a message to the Haraka listening on `port`, as a relaying client on loopback. */
async function sendVia(port: number, message: TestMessage): Promise<void> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: true,
    name: 'client.contoso.com',
    tls: { rejectUnauthorized: false },
  });
  try {
    await transport.sendMail({ envelope: { from: message.from, to: [...message.to] }, raw: raw(message) });
  } finally {
    transport.close();
  }
}

function findDelivery(deliveries: readonly SinkDelivery[], name: string, log: () => string): SinkDelivery {
  const found = deliveries.find((delivery) => delivery.message.includes(`Message-ID: <${name}@test.contoso.com>`));
  assert.ok(found, `${name} did not reach the sink; Haraka log:\n${log().slice(-4000)}`);
  return found;
}

describe('the Haraka plugin in a real Haraka', () => {
  let sink: SmtpSink;
  let haraka: HarakaInstance | undefined;
  let port: number;
  const log = (): string => haraka?.log() ?? '';

  before(async () => {
    sink = await startSmtpSink();
    haraka = await startHaraka(pluginSource(sink.port));
    port = haraka.port;
  });

  after(async () => {
    await haraka?.stop();
    await sink?.stop();
  });

  const send = (message: TestMessage): Promise<void> => sendVia(port, message);
  const delivered = (deliveries: readonly SinkDelivery[], name: string): SinkDelivery => findDelivery(deliveries, name, log);

  it('uses the return codes of haraka-constants', () => {
    const constants = createRequire(join(ROOT, 'node_modules', 'Haraka', 'package.json'))('haraka-constants') as Record<string, number>;
    assert.deepEqual(HARAKA_CODES, { CONT: constants['cont'], DENY: constants['deny'], DENYSOFT: constants['denysoft'], OK: constants['ok'] });
  });

  it('delivers each message from its pool address, with the trace header and the envelope sender of the decision', async () => {
    const sent: TestMessage[] = [MESSAGES.accepted, MESSAGES.ndr, MESSAGES.spam, MESSAGES.unverified, MESSAGES.verified, MESSAGES.verifiedByHaraka];
    for (const message of sent) await send(message);
    const deliveries = await sink.waitFor(sent.length, 20_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\nHaraka log:\n${log().slice(-6000)}`);
    });

    const expect = (name: keyof typeof MESSAGES, pool: keyof typeof POOLS, reason: string): SinkDelivery => {
      const delivery = delivered(deliveries, MESSAGES[name].name);
      assert.equal(delivery.clientAddress, POOLS[pool].bind, `${name}: source address`);
      assert.equal(delivery.helo, POOLS[pool].helo, `${name}: HELO`);
      const trace = /^X-Outbound-Pool: (.*)$/m.exec(delivery.message)?.[1] ?? '';
      assert.match(trace, new RegExp(`; pool=${pool}; reasons=${reason}`), `${name}: trace ${trace}`);
      assert.deepEqual(delivery.rcptTo, MESSAGES[name].to);
      return delivery;
    };
    assert.equal(expect('accepted', 'normal', 'accepted-domain').mailFrom, 'megan@contoso.com');
    assert.equal(expect('ndr', 'high-risk', 'ndr').mailFrom, '');
    assert.equal(expect('spam', 'high-risk', 'spam').mailFrom, 'megan@contoso.com');
    assert.equal(expect('unverified', 'relay', 'relay-unverified').mailFrom, 'kim@northwind.example');
    const verified = expect('verified', 'normal', 'spf-pass,srs-rewritten');
    assert.match(verified.mailFrom, /^SRS0=[^=]+=[^=]+=fabrikam\.example=alex@contoso\.com$/);
    assert.match(verified.message, new RegExp(`mail-from=${verified.mailFrom.replace(/[.+]/g, '\\$&')}`));
    const byHaraka = expect('verifiedByHaraka', 'normal', 'spf-pass,srs-rewritten');
    assert.match(byHaraka.mailFrom, /^SRS0=[^=]+=[^=]+=fabrikam\.example=alex@contoso\.com$/);
  });

  it('refuses a blocked message with the reply of the decision', async () => {
    const { createPolicy, createStaticResolver } = await import('../../src/index.js');
    const decision = await decidePool(
      { mailFrom: MESSAGES.blocked.from, rcptTo: MESSAGES.blocked.to, headers: raw(MESSAGES.blocked) },
      {
        policy: createPolicy(TEST_POLICY),
        providers: {
          dns: createStaticResolver(ZONE as never),
          spam: { classify: async () => ({ score: 20, categories: ['phishing'] }) },
        },
      },
    );
    assert.equal(decision.action, 'block');
    const before = sink.deliveries.length;
    await assert.rejects(send(MESSAGES.blocked), (error: { responseCode?: number; response?: string }) => {
      assert.equal(error.responseCode, decision.reply!.code);
      assert.ok(error.response?.includes(`${decision.reply!.enhancedCode} ${decision.reply!.text}`), `response: ${error.response}`);
      return true;
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(sink.deliveries.length, before, 'a blocked message reached the sink');
  });

  it('reads the whole message for the spam classifier', async () => {
    assert.ok(sink);
    const before = sink.deliveries.length;
    const message = { ...MESSAGES.accepted, name: 'whole-read' };
    await sendVia(port, message);
    await sink.waitFor(before + 1, 20_000);
    assert.ok(log().includes(`${GET_DATA_LOGGED} <${message.name}@test.contoso.com>`), `no read of the whole message:\n${log().slice(-4000)}`);
  });
});

/** Fails, saying why and what to do, when 127.0.0.1:25 cannot be listened on. */
async function probePort25(): Promise<void> {
  const probe = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(25, MX_EXCHANGE, () => resolve());
    });
  } catch (error) {
    const code = (error as { code?: string }).code ?? String(error);
    throw new Error(
      `cannot listen on ${MX_EXCHANGE}:25 (${code}): Haraka delivers to an MX on port 25, so this test needs that port free ` +
        `(see what holds it: ss -ltnp 'sport = :25') and the right to bind it (root, or CAP_NET_BIND_SERVICE).`,
    );
  }
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

describe('the Haraka plugin in a real Haraka, delivering by MX and deferring on a classifier failure', () => {
  let sink: SmtpSink | undefined;
  let haraka: HarakaInstance | undefined;
  let port: number;
  const log = (): string => haraka?.log() ?? '';

  const MX_MESSAGES = {
    accepted: { ...MESSAGES.accepted, name: 'mx-accepted' },
    spam: { ...MESSAGES.spam, name: 'mx-spam' },
    deferred: {
      name: 'mx-deferred',
      from: 'megan@contoso.com',
      to: ['lee@fabrikam.example'],
      headers: `From: megan@contoso.com\nTo: lee@fabrikam.example\nSubject: Minutes (${CLASSIFIER_DOWN})`,
    },
    afterDeferred: { ...MESSAGES.accepted, name: 'mx-after-deferred' },
  } satisfies Record<string, TestMessage>;

  before(async () => {
    // An MX is reached on port 25, always: the sink must listen there (on the exchange the
    // plugin's resolveMx gives). startSmtpSink does not report a failed listen, so try first.
    await probePort25();
    sink = await startSmtpSink(25);
    assert.equal(sink.host, MX_EXCHANGE);
    assert.equal(sink.port, 25);
    haraka = await startHaraka(mxPluginSource());
    port = haraka.port;
  });

  after(async () => {
    await haraka?.stop();
    await sink?.stop();
  });

  it('delivers to the MX resolveMx finds, from the pool address and with the pool HELO', async () => {
    assert.ok(sink);
    const before = sink.deliveries.length;
    await sendVia(port, MX_MESSAGES.accepted);
    await sendVia(port, MX_MESSAGES.spam);
    const deliveries = (await sink.waitFor(before + 2, 20_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\nHaraka log:\n${log().slice(-6000)}`);
    })).slice(before);
    const accepted = findDelivery(deliveries, MX_MESSAGES.accepted.name, log);
    assert.equal(accepted.clientAddress, POOLS.normal.bind, 'accepted: source address');
    assert.equal(accepted.helo, POOLS.normal.helo, 'accepted: HELO');
    assert.match(accepted.message, /^X-Outbound-Pool: .*; pool=normal; reasons=accepted-domain/m);
    assert.deepEqual(accepted.rcptTo, MX_MESSAGES.accepted.to);
    const spam = findDelivery(deliveries, MX_MESSAGES.spam.name, log);
    assert.equal(spam.clientAddress, POOLS['high-risk'].bind, 'spam: source address');
    assert.equal(spam.helo, POOLS['high-risk'].helo, 'spam: HELO');
    assert.match(spam.message, /^X-Outbound-Pool: .*; pool=high-risk; reasons=spam/m);
    // The plugin answered get_mx with the MX itself: Haraka did not fall back to the deprecated
    // notes.outbound_ip binding (it logs when it does).
    assert.doesNotMatch(log(), /notes\.outbound_ip is deprecated/);
  });

  it('defers a message whose spam check failed, with the reply of the decision, and delivers nothing of it', async () => {
    assert.ok(sink);
    const { createPolicy, createStaticResolver } = await import('../../src/index.js');
    const decision = await decidePool(
      { mailFrom: MX_MESSAGES.deferred.from, rcptTo: MX_MESSAGES.deferred.to, headers: raw(MX_MESSAGES.deferred) },
      {
        policy: createPolicy(DEFER_POLICY),
        providers: {
          dns: createStaticResolver(ZONE as never),
          spam: {
            classify: async () => {
              throw new Error('the classifier is unreachable');
            },
          },
        },
      },
    );
    assert.equal(decision.action, 'defer');
    const reply = decision.reply;
    assert.ok(reply);
    assert.equal(reply.code, 451);
    assert.match(reply.enhancedCode, /^4\./);
    const before = sink.deliveries.length;
    await assert.rejects(sendVia(port, MX_MESSAGES.deferred), (error: { responseCode?: number; response?: string }) => {
      assert.equal(error.responseCode, reply.code, `response: ${error.response}`);
      assert.match(error.response ?? '', new RegExp(`^${reply.code} `), `response: ${error.response}`);
      assert.ok(error.response?.includes(`${reply.enhancedCode} ${reply.text}`), `response: ${error.response}`);
      return true;
    });
    // A message sent after it arrives; the deferred one must not have been queued before it.
    await sendVia(port, MX_MESSAGES.afterDeferred);
    const deliveries = (await sink.waitFor(before + 1, 20_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\nHaraka log:\n${log().slice(-6000)}`);
    })).slice(before);
    findDelivery(deliveries, MX_MESSAGES.afterDeferred.name, log);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const arrived = sink.deliveries.slice(before);
    assert.equal(arrived.length, 1, `expected only ${MX_MESSAGES.afterDeferred.name}; arrived: ${arrived.map((d) => /Message-ID: <([^>]*)>/.exec(d.message)?.[1]).join(', ')}`);
    assert.ok(!arrived.some((delivery) => delivery.message.includes(`<${MX_MESSAGES.deferred.name}@`)), 'the deferred message reached the sink');
  });
});

describe('the Haraka plugin in a real Haraka, without a provider that reads the body', () => {
  let sink: SmtpSink | undefined;
  let haraka: HarakaInstance | undefined;
  let port: number;
  const log = (): string => haraka?.log() ?? '';

  before(async () => {
    sink = await startSmtpSink();
    haraka = await startHaraka(headerOnlyPluginSource(sink.port));
    port = haraka.port;
  });

  after(async () => {
    await haraka?.stop();
    await sink?.stop();
  });

  it('reads the Message-ID from the header Haraka parsed, and never the whole message', async () => {
    assert.ok(sink);
    const first = { ...MESSAGES.accepted, name: 'header-only', body: 'x'.repeat(200_000) };
    const before = sink.deliveries.length;
    await sendVia(port, first);
    // The same message again (a client's retry, the same Message-ID): counted once, delivered.
    await sendVia(port, first);
    // Another message of the sender within the minute: over one a minute, refused.
    await assert.rejects(sendVia(port, { ...first, name: 'header-only-second' }), (error: { responseCode?: number; response?: string }) => {
      assert.equal(error.responseCode, 451, `response: ${error.response}`);
      assert.match(error.response ?? '', /^451 4\.7\.1 Sending rate limit exceeded/, `response: ${error.response}`);
      return true;
    });
    const deliveries = (await sink.waitFor(before + 2, 20_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\nHaraka log:\n${log().slice(-6000)}`);
    })).slice(before);
    for (const delivery of deliveries) {
      assert.ok(delivery.message.includes(`Message-ID: <${first.name}@test.contoso.com>`), delivery.message.slice(0, 2000));
      assert.equal(delivery.clientAddress, POOLS.normal.bind);
    }
    assert.ok(!log().includes(GET_DATA_LOGGED), `the plugin read the whole message:\n${log().slice(-4000)}`);
  });
});
