// Every parser runs in time linear in its input (SPEC §6, "Hostile input"; issue 11): each is
// fed hostile shapes — runs of the characters its grammar treats specially — in a doubling
// series (test/hostile/doubling.ts), through its public function, and fails when one doubling
// grows the time more than 3×. Each test prints the measured growth as a diagnostic.
import { describe, it, type TestContext } from 'node:test';
import { BlockList } from 'node:net';
import { decidePool, parseEnvelopeAddress, normaliseDomain, createPolicy, OutboundPoolsError, type OutboundMessage } from '../../src/index.js';
import { contentTypeParameter, fromDomain, parseContentType, parseHeaders } from '../../src/headers.js';
import { limitKeyOf } from '../../src/address.js';
import { parseTrace } from '../../src/decide/trace.js';
import { dnsQueryName } from '../../src/dns/query-name.js';
import { decodeCommand } from '../../src/postfix/milter/commands.js';
import { parseListenAddress } from '../../src/postfix/listener.js';
import { parseForwarders } from '../../src/postfix/forwarders.js';
import { milterMessage } from '../../src/postfix/pool-milter.js';
import { parseCommandLine } from '../../src/cli/args.js';
import { UsageError } from '../../src/cli/io.js';
import { MilterProtocolError } from '../../src/postfix/milter/packet.js';
import { planInputs, sniffKind } from '../../src/cli/inputs.js';
import { harakaAuthentication, type HarakaConnection } from '../../src/haraka/plugin.js';
import { authenticationFromHeaders, parseAuthenticationResults } from '../../src/providers/authentication-results.js';
import { firstUntrustedHop, receivedFrom } from '../../src/mailauth/authenticator.js';
import { Srs, SrsError } from '../../src/srs/index.js';
import { assertLinear, describeSeries, type DoublingOptions } from './doubling.js';

/** Repeats `unit` until the string is `size` characters long (cut to size). */
function fill(unit: string, size: number): string {
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

/** Calls `run`, swallowing the typed refusals a parser may answer hostile input with (and nothing else). */
function refusedOrParsed(run: () => unknown): () => Promise<unknown> | unknown {
  return () => {
    try {
      const result = run();
      return result instanceof Promise ? result.catch(typedOnly) : result;
    } catch (error) {
      return typedOnly(error);
    }
  };
}

function typedOnly(error: unknown): undefined {
  if (error instanceof OutboundPoolsError || error instanceof SrsError) return undefined;
  throw error;
}

interface Shape {
  readonly name: string;
  readonly make: (size: number) => string;
}

/** One test per shape: `run` over `make(size)`, linear or failing with the measured series. */
function linearIn(parser: string, shapes: readonly Shape[], run: (input: string) => unknown, options: DoublingOptions): void {
  linearOn(parser, shapes, (text) => text, run, options);
}

/**
 * {@link linearIn} for a parser that takes something made from the text (a Buffer, a parsed
 * JSON value): `prepare` runs with `make`, before timing, so the series measures the parser,
 * not the making. Buffer.from of more than 4 KiB leaves Node's shared pool for an allocation of
 * its own, and V8's JSON.parse slows by up to 10× a step on deep nesting, neither of them ours:
 * timed with the parser, they failed CI runs with one step of 3-12× (stop 19).
 */
function linearOn<T>(parser: string, shapes: readonly Shape[], prepare: (text: string) => T, run: (input: T) => unknown, options: DoublingOptions): void {
  for (const shape of shapes) {
    it(`${parser} is linear on ${shape.name}`, async (t: TestContext) => {
      const result = await assertLinear((size) => prepare(shape.make(size)), (input) => refusedOrParsed(() => run(input))(), options);
      t.diagnostic(describeSeries(result));
    });
  }
}

/** Shapes built from one repeated unit. */
const repeated = (...units: string[]): Shape[] => units.map((unit) => ({ name: `${JSON.stringify(unit)} repeated`, make: (size: number) => fill(unit, size) }));
const prefixed = (prefix: string, ...units: string[]): Shape[] =>
  units.map((unit) => ({ name: `${JSON.stringify(prefix)} then ${JSON.stringify(unit)} repeated`, make: (size: number) => prefix + fill(unit, size) }));

// 1 Ki to 32 Ki characters: long enough that the work, not the call, is measured, and below
// V8's large-object threshold throughout (see doubling.ts): quadratic work shows as 4× a step.
const FIELD: DoublingOptions = { start: 1024 };

describe('envelope addresses (parseEnvelopeAddress, normaliseDomain)', () => {
  const shapes = [
    ...repeated('a.', '@', '"', 'ü', 'xn--'),
    ...prefixed('"', 'a\\'),
    ...prefixed('user@', 'a.', 'ü.'),
  ];
  linearIn('parseEnvelopeAddress (sender)', shapes, (text) => parseEnvelopeAddress(text, 'mailFrom', false), FIELD);
  linearIn('parseEnvelopeAddress (recipient)', shapes, (text) => parseEnvelopeAddress(text, 'rcptTo', true), FIELD);
  linearIn('normaliseDomain', [...repeated('a.', 'ü.', 'xn--a.')], (text) => normaliseDomain(text), FIELD);
});

describe('header fields (fromDomain, parseContentType, parseHeaders)', () => {
  linearIn(
    'fromDomain',
    [
      ...repeated(',', ':', 'a@b,', 'a:', '<', '"', '(', '("', ' '),
      ...prefixed('"', '\\a'),
      ...prefixed('(', '\\)'),
      ...prefixed('a@', ',', ':'),
    ],
    (text) => fromDomain(text),
    FIELD,
  );
  linearIn(
    'parseContentType',
    [
      ...repeated(';', '(', ';a="', '; a="x', ';a="\\'),
      ...prefixed('text/plain', ';', ';a="x', '; a', ';a=b', '(a)'),
      ...prefixed('multipart/report; report-type="', 'a\\'),
    ],
    (text) => parseContentType(text),
    FIELD,
  );
  linearIn(
    'parseHeaders',
    [
      ...repeated('a\n', 'a: b\r\n', ' \n', 'a b: c\n', '\r', 'From: x\r\n x\r\n'),
      { name: 'one long line without a colon', make: (size) => `A: b\r\n${fill('a', size)}` },
      { name: 'many lines without a colon before the first one', make: (size) => `${fill('abcdefghij\n', size)}A: b\n` },
      { name: 'one field folded many times', make: (size) => `Subject: a\r\n${fill(' b\r\n', size)}` },
    ],
    (text) => parseHeaders(text),
    FIELD,
  );
});

// Quadratic work inside a fast native call (the old fromDomain rescanned the field with
// `includes('@')` at each comma or colon) shows only at large sizes: 2–13 s a decision at 1 MB,
// and under 5 ms at 32 Ki. The From path copies nothing large, so these series may cross V8's
// large-object threshold (doubling.ts) and run up to 960 Ki characters, the header's limit.
const LARGE: DoublingOptions = { start: 30_000 };

describe('From, up to the header limit (fromDomain, decidePool)', () => {
  linearIn('fromDomain (large)', [...repeated(',', ':', 'a:', ';')], (text) => fromDomain(text), LARGE);
  const context = { policy: createPolicy({ acceptedDomains: ['contoso.com'] }) };
  linearIn(
    'decidePool (large)',
    [
      { name: 'a From field of commas', make: (size) => `From: ${fill(',', size)}\r\n` },
      { name: 'a From field of colons', make: (size) => `From: ${fill(':', size)}\r\n` },
    ],
    (headers) => decidePool({ mailFrom: 'alice@fabrikam.example', rcptTo: ['bob@example.net'], headers }, context),
    LARGE,
  );
});

describe('the whole decision (decidePool) with a huge header block', () => {
  const context = { policy: createPolicy({ acceptedDomains: ['contoso.com'] }) };
  const decide = (headers: string) => decidePool({ mailFrom: 'alice@fabrikam.example', rcptTo: ['bob@example.net'], headers }, context);
  linearIn(
    'decidePool',
    [
      { name: 'many small fields', make: (size) => fill('X-Filler: some value\r\n', size) },
      { name: 'a From field of commas', make: (size) => `From: ${fill(',', size)}\r\n` },
      { name: 'a From field of colons', make: (size) => `From: ${fill(':', size)}\r\n` },
      { name: 'a From field of "a@b," repeated', make: (size) => `From: ${fill('a@b,', size)}\r\n` },
      { name: 'a From field of quotes and backslashes', make: (size) => `From: "${fill('\\"', size)}\r\n` },
      { name: 'a folded From field', make: (size) => `From: a\r\n${fill(' ,:\r\n', size)}` },
      { name: 'a Content-Type of ;a="x', make: (size) => `Content-Type: multipart/report${fill(';a="x', size)}\r\n` },
      { name: 'a Content-Type of comments', make: (size) => `Content-Type: multipart/report${fill('(a(b)', size)}\r\n` },
      { name: 'a long Message-ID', make: (size) => `Message-ID: <${fill('a', size)}@example.org>\r\n` },
      { name: 'lines without colons', make: (size) => `${fill('garbage line\r\n', size)}From: a@b.example\r\n` },
    ],
    decide,
    FIELD,
  );
  it('decidePool is linear in the number of recipients', async (t: TestContext) => {
    const make = (count: number): OutboundMessage => ({
      mailFrom: 'alice@contoso.com',
      rcptTo: Array.from({ length: count }, (_, i) => `user${i}@${i % 2 === 0 ? 'contoso.com' : `d${i % 97}.example`}`),
    });
    const result = await assertLinear(make, (message) => decidePool(message, context), { start: 256 });
    t.diagnostic(describeSeries(result));
  });
});

describe('Authentication-Results (parseAuthenticationResults, authenticationFromHeaders)', () => {
  const options = { authservIds: ['mx.contoso.com'] };
  const values = [
    ...prefixed('mx.contoso.com;', ' spf=pass smtp.mailfrom=a;', ' (', '(a)', ' dkim=pass header.d="', ';'),
    ...prefixed('mx.contoso.com; spf=pass smtp.mailfrom=', 'a', '"a', '(', 'a@'),
    ...repeated('(', '"', ' ', '(\\'),
  ];
  linearIn('parseAuthenticationResults', values, (value) => parseAuthenticationResults(value, options), FIELD);
  linearIn(
    'authenticationFromHeaders',
    [
      { name: 'many fields', make: (size) => fill('Authentication-Results: mx.contoso.com; spf=pass smtp.mailfrom=a.example\r\n', size) },
      { name: 'one long field of results', make: (size) => `Authentication-Results: mx.contoso.com;${fill(' dkim=pass header.d=a.example;', size)}\r\n` },
      { name: 'untrusted fields', make: (size) => fill('Authentication-Results: other.example; spf=pass\r\n', size) },
    ],
    (headers) => authenticationFromHeaders(headers, options),
    FIELD,
  );
});

describe('Received (receivedFrom, firstUntrustedHop)', () => {
  linearIn(
    'receivedFrom',
    [
      ...repeated(' ', ' from', '[1', 'from (', ' from [1.'),
      ...prefixed('from ', 'a', ' ', '('),
      ...prefixed('from a (', '[1', ' '),
      ...prefixed('from a ([', '1'),
    ],
    (value) => receivedFrom(value),
    FIELD,
  );
  const gateways = new BlockList();
  gateways.addSubnet('192.0.2.0', 24, 'ipv4');
  linearIn(
    'firstUntrustedHop',
    [
      { name: 'many Received fields through trusted gateways', make: (size) => fill('Received: from gw.example (gw.example [192.0.2.1]) by mx\r\n', size) },
      { name: 'one long Received field', make: (size) => `Received: from ${fill('a (', size)}\r\n` },
    ],
    (raw) => firstUntrustedHop({ raw, mailFrom: 'a@b.example', rcptTo: ['c@d.example'], ingress: { ip: '192.0.2.1' } }, gateways),
    FIELD,
  );
});

describe('SRS (Srs.reverse)', () => {
  const srs = new Srs({ secret: 'tops3cr3t' });
  linearIn(
    'Srs.reverse',
    [
      ...prefixed('SRS0=', '=', 'a=', '@'),
      ...prefixed('SRS1=', '=='),
      ...prefixed('SRS0=vmyz=2W=', 'a'),
      ...repeated('SRS0=', 'SRS1=a=='),
    ],
    (address) => srs.reverse(`${address}@example.com`, { now: 1577836860_000 }),
    FIELD,
  );
});

describe('policy JSON (createPolicy on JSON.parse(…), parsed before timing)', () => {
  const jsonOf = (value: unknown) => JSON.stringify(value);
  linearOn(
    'createPolicy',
    [
      { name: 'many accepted domains', make: (size) => jsonOf({ acceptedDomains: Array.from({ length: size / 16 }, (_, i) => `d${i}.example`) }) },
      { name: 'many wildcard accepted domains', make: (size) => jsonOf({ acceptedDomains: Array.from({ length: size / 16 }, (_, i) => `*.d${i}.example`) }) },
      { name: 'many limit sets', make: (size) => jsonOf({ limits: Array.from({ length: size / 64 }, (_, i) => ({ name: `set-${i}`, messagesPerMinute: 1 + i })) }) },
      { name: 'a long limit-set name', make: (size) => jsonOf({ limits: { name: fill('a', size), messagesPerMinute: 1 } }) },
      { name: 'a long accepted domain', make: (size) => jsonOf({ acceptedDomains: [fill('a.', size)] }) },
      { name: 'many spam categories', make: (size) => jsonOf({ spam: { blockCategories: Array.from({ length: size / 8 }, (_, i) => `c${i}`) } }) },
      { name: 'a deeply nested unknown value', make: (size) => `{"spam":{"threshold":${'['.repeat(size / 2)}${']'.repeat(size / 2)}}}` },
    ],
    (text) => JSON.parse(text) as Parameters<typeof createPolicy>[0],
    (value) => createPolicy(value),
    FIELD,
  );
});

describe('the trace line (parseTrace)', () => {
  linearIn('parseTrace', [...repeated('a=b; ', '"', '\\"', '=', ';'), ...prefixed('reply="', '\\"', 'a'), ...prefixed('x=', ';', ' ')], (text) => parseTrace(text), FIELD);
});

describe('Content-Type parameters in RFC 2231 form (contentTypeParameter)', () => {
  const read = (text: string) => {
    const parsed = parseContentType(text);
    return parsed === null ? undefined : contentTypeParameter(parsed.parameters, 'report-type');
  };
  linearIn(
    'contentTypeParameter',
    [
      { name: 'many sections', make: (size) => `multipart/report${Array.from({ length: Math.ceil(size / 24) }, (_, i) => `; report-type*${i}*=a%41`).join('')}`.slice(0, size + 40) },
      { name: 'one long extended value', make: (size) => `multipart/report; report-type*=utf-8''${fill('%41', size)}` },
      { name: 'a long charset prefix', make: (size) => `multipart/report; report-type*=${fill('a', size)}` },
    ],
    read,
    FIELD,
  );
});

describe('sender keys (limitKeyOf)', () => {
  linearIn('limitKeyOf', [...prefixed('"', 'a\\', '\\"'), ...repeated('a.', '@'), ...prefixed('a@', 'ü.', 'xn--a.')], (text) => limitKeyOf(text), FIELD);
});

describe('IDNA: a long A-label is refused before it is decoded', () => {
  linearIn('normaliseDomain (A-labels)', [...prefixed('xn--', 'a', 'a-'), ...prefixed('a.xn--', '9')], (text) => normaliseDomain(`${text}.example`), FIELD);
});

describe('DNS query names (dnsQueryName)', () => {
  linearIn('dnsQueryName', [...repeated('a.', '_', 'ü.', '.'), ...prefixed('_dmarc.', 'a.')], (text) => dnsQueryName(text), FIELD);
});

/** `run`, with the typed refusals of a daemon's or the CLI's parsers (MilterProtocolError, UsageError, the TypeError of a bad listen address) taken as answers. */
function refusing<T = string>(run: (input: T) => unknown, ...types: (abstract new (...args: never[]) => Error)[]): (input: T) => unknown {
  return (input) => {
    try {
      return run(input);
    } catch (error) {
      if (types.some((type) => error instanceof type)) return undefined;
      throw error;
    }
  };
}

describe('milter packets (decodeCommand)', () => {
  linearOn(
    'decodeCommand',
    [
      { name: 'a macro packet of many pairs', make: (size) => `D${'C'}${fill('k\0v\0', size)}` },
      { name: 'a macro packet of one long value', make: (size) => `DCk\0${fill('v', size)}\0` },
      { name: 'a header packet with a long value', make: (size) => `LSubject\0${fill('a', size)}\0` },
      { name: 'a MAIL packet of many arguments', make: (size) => `M${fill('<a@b>\0', size)}` },
      { name: 'a header packet of NULs', make: (size) => `L${fill('\0', size)}` },
    ],
    (text) => ({ command: text.charCodeAt(0), data: Buffer.from(text.slice(1), 'latin1') }),
    refusing(decodeCommand, MilterProtocolError),
    // 256 to 8 Ki: Node 24 decodes a Buffer of 16 Ki or more to a string another way (one step
    // of about 4.8× there, then 0.8×: a threshold, not growth), which the series would report.
    { start: 256 },
  );
});

describe('daemon and CLI arguments (parseListenAddress, parseForwarders, parseCommandLine)', () => {
  linearIn('parseListenAddress', [...prefixed('inet:', ':', '1'), ...prefixed('unix:', 'a/'), ...repeated('/')], refusing((text) => parseListenAddress(text), TypeError), FIELD);
  linearIn(
    'parseForwarders',
    [
      { name: 'many entries', make: (size) => Array.from({ length: Math.ceil(size / 14) }, (_, i) => `192.0.${(i >> 8) & 255}.${i & 255}`).join(' ') },
      { name: 'many logins', make: (size) => Array.from({ length: Math.ceil(size / 8) }, (_, i) => `user-${i}`).join(' ') },
      ...prefixed('1.', '1.'),
      ...repeated(':'),
    ],
    (text) => parseForwarders(text.split(' ')),
    FIELD,
  );
  const options = { policy: { type: 'string' }, json: { type: 'boolean' }, 'redis-url': { type: 'string' } } as const;
  linearIn(
    'parseCommandLine',
    [
      { name: 'an unknown flag, long', make: (size) => `--${fill('x', size)}` },
      // Up to about 11,000 arguments: an array of 16 Ki elements or more is in V8's large-object space (doubling.ts).
      { name: 'many positionals', make: (size) => fill('ab ', size).trim() },
      { name: 'a long flag value', make: (size) => `--policy=${fill('a', size)}` },
    ],
    refusing((text) => parseCommandLine(text.split(' '), options), UsageError),
    FIELD,
  );
});

describe('input files: the head sniffed (sniffKind)', () => {
  linearOn(
    'sniffKind',
    [...repeated('\n', ' ', '{', 'a'), ...prefixed('{"mailFrom":"', 'a')],
    (text) => Buffer.from(text, 'latin1'),
    (head) => sniffKind(head, true),
    FIELD,
  );
  // Standard input arrives in chunks (64 KiB from a pipe); blank lines before the first
  // non-blank one were buffered and the whole buffer scanned again at every chunk: 16 MiB of
  // newlines took 16 s. Chunks of 1 KiB here, so that a few hundred KiB make a long series.
  linearOn(
    'planInputs (standard input)',
    [
      { name: 'blank lines, then a JSON line', make: (size) => `${fill('\n', size)}{"mailFrom":"a@b.example","rcptTo":["c@d.example"]}\n` },
      { name: 'spaces, then a JSON line', make: (size) => `${fill(' ', size)}{"mailFrom":"a@b.example","rcptTo":["c@d.example"]}\n` },
    ],
    (text) => {
      const bytes = Buffer.from(text, 'latin1');
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; at += 1_024) chunks.push(bytes.subarray(at, at + 1_024));
      return chunks;
    },
    (chunks) =>
      planInputs({
        paths: ['-'],
        batches: [],
        flags: {},
        stdin: async function* () {
          yield* chunks;
        },
      }),
    { start: 32_768, doublings: 4 },
  );
});

describe('adapters: Haraka auth results, the milter spam header (harakaAuthentication, milterMessage)', () => {
  const haraka = (entries: string[]) =>
    harakaAuthentication({ local: { host: 'mx.contoso.com' }, notes: { authentication_results: entries }, transaction: null, auth_results: () => '' } as unknown as HarakaConnection);
  linearIn(
    'harakaAuthentication',
    [
      { name: 'many entries', make: (size) => Array.from({ length: Math.ceil(size / 40) }, (_, i) => `spf=pass smtp.mailfrom=d${i}.example`).join('\n') },
      { name: 'one long entry', make: (size) => `spf=pass smtp.mailfrom=${fill('a.', size)}example` },
      { name: 'one entry of semicolons', make: (size) => `spf=pass ${fill(';', size)}` },
    ],
    (text) => haraka(text.split('\n')),
    FIELD,
  );
  const milter = (value: string) =>
    milterMessage(
      { client: null, helo: null, mailFrom: 'a@contoso.com', mailParameters: [], rcptTo: ['b@example.net'], headers: [['X-Spam-Score', value]], body: Buffer.alloc(0), bodyTruncated: false, macro: () => undefined, actions: 0 },
      { spamScoreHeader: 'X-Spam-Score' },
    );
  linearIn('milterMessage (spam score header)', [...repeated('-', '.', '1', ' ', 'e'), ...prefixed('score=', '-'), ...prefixed('1', '0')], (text) => milter(text), FIELD);
});
