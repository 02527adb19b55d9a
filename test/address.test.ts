// Envelope addresses (RFC 5321 §4.1.2, §4.5.3.1; RFC 6531 for UTF-8): what is accepted and how it
// is normalised, what is refused and how the refusal reads, and a property over arbitrary input.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isNullSender, limitKeyOf, normaliseDomain, parseAddressInFull, parseCommonAddress, parseEnvelopeAddress, type EnvelopeAddress } from '../src/address.js';
import { OutboundPoolsError } from '../src/errors.js';
import { decodePunycode } from '../src/punycode.js';
// Deprecated for applications, still in Node 22 and 24: an independent RFC 3492 implementation to test against.
import punycode from 'node:punycode';

const octets = (text: string): number => Buffer.byteLength(text, 'utf8');
const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A domain of exactly `length` octets: 63-octet labels of `d`, then `.org`. */
function domainOfLength(length: number): string {
  const body = Array.from({ length: length - 4 }, (_, i) => ((i + 1) % 64 === 0 ? '.' : 'd')).join('');
  assert.ok(!body.endsWith('.'), `domainOfLength(${length}) would end a label with a dot`);
  const domain = `${body}.org`;
  assert.equal(domain.length, length);
  return domain;
}

/** Asserts that `parse` refuses with `invalid-address` and a message that starts with `what`. */
function expectRefused(parse: () => EnvelopeAddress, what: string, label: string, reason?: RegExp): void {
  let result: EnvelopeAddress;
  try {
    result = parse();
  } catch (error) {
    assert.ok(error instanceof OutboundPoolsError, `${label}: threw ${String(error)} instead of an OutboundPoolsError`);
    assert.equal(error.code, 'invalid-address', `${label}: wrong error code`);
    assert.match(error.message, new RegExp(`^${escapeRegExp(what)} `), `${label}: the message does not name the field ${what}`);
    if (reason !== undefined) assert.match(error.message, reason, `${label}: the message does not say why`);
    return;
  }
  assert.fail(`${label}: expected OutboundPoolsError invalid-address naming ${what}, but it was accepted as ${JSON.stringify(result)}`);
}

interface Accepted {
  readonly input: string;
  readonly local: string;
  readonly domain: string;
  readonly literal?: boolean;
}

const ACCEPTED: readonly Accepted[] = [
  // Dot-strings.
  { input: 'user@example.org', local: 'user', domain: 'example.org' },
  { input: 'first.last@example.org', local: 'first.last', domain: 'example.org' },
  { input: 'user+tag@example.org', local: 'user+tag', domain: 'example.org' },
  { input: "!#$%&'*+/=?^_`{|}~-@example.org", local: "!#$%&'*+/=?^_`{|}~-", domain: 'example.org' },
  { input: 'User.Name@EXAMPLE.ORG', local: 'User.Name', domain: 'example.org' },
  { input: 'user@sub-domain.example.org', local: 'user', domain: 'sub-domain.example.org' },
  { input: 'user@123.example', local: 'user', domain: '123.example' },
  // Quoted strings, kept with their quotes.
  { input: '"john doe"@example.org', local: '"john doe"', domain: 'example.org' },
  { input: '"a@b"@example.org', local: '"a@b"', domain: 'example.org' },
  { input: '"a\\"b"@example.org', local: '"a\\"b"', domain: 'example.org' },
  { input: '"a\\\\b"@example.org', local: '"a\\\\b"', domain: 'example.org' },
  { input: '"a..b"@example.org', local: '"a..b"', domain: 'example.org' },
  { input: '".leading"@example.org', local: '".leading"', domain: 'example.org' },
  // UTF-8 local parts (RFC 6531) and IDN domains in lowercase A-labels.
  { input: 'Üser@Bücher.DE', local: 'Üser', domain: 'xn--bcher-kva.de' },
  { input: 'user@Bücher.DE', local: 'user', domain: 'xn--bcher-kva.de' },
  { input: '用户@例子.广告', local: '用户', domain: 'xn--fsqu00a.xn--4rr70v' },
  { input: 'иван@Пример.РФ', local: 'иван', domain: 'xn--e1afmkfd.xn--p1ai' },
  { input: 'user@xn--bcher-kva.de', local: 'user', domain: 'xn--bcher-kva.de' },
  { input: '😀@example.org', local: '😀', domain: 'example.org' },
  // Trailing dot (the root) dropped; angle brackets dropped.
  { input: 'user@example.org.', local: 'user', domain: 'example.org' },
  { input: '<user@example.org>', local: 'user', domain: 'example.org' },
  { input: '<"john doe"@Bücher.DE.>', local: '"john doe"', domain: 'xn--bcher-kva.de' },
  // The one single-label name accepted.
  { input: 'postmaster@localhost', local: 'postmaster', domain: 'localhost' },
  { input: 'postmaster@LOCALHOST', local: 'postmaster', domain: 'localhost' },
  // Limits, at the limit.
  { input: `${'a'.repeat(64)}@example.org`, local: 'a'.repeat(64), domain: 'example.org' },
  { input: `${'é'.repeat(32)}@example.org`, local: 'é'.repeat(32), domain: 'example.org' },
  { input: `${'€'.repeat(21)}a@example.org`, local: `${'€'.repeat(21)}a`, domain: 'example.org' },
  { input: `${'😀'.repeat(16)}@example.org`, local: '😀'.repeat(16), domain: 'example.org' },
  { input: `user@${'l'.repeat(63)}.example`, local: 'user', domain: `${'l'.repeat(63)}.example` },
  { input: `${'a'.repeat(64)}@${domainOfLength(189)}`, local: 'a'.repeat(64), domain: domainOfLength(189) },
];

const RECIPIENT_LITERALS: readonly Accepted[] = [
  { input: 'user@[192.0.2.1]', local: 'user', domain: '[192.0.2.1]', literal: true },
  { input: '<user@[192.0.2.1]>', local: 'user', domain: '[192.0.2.1]', literal: true },
  { input: 'user@[IPv6:2001:db8::1]', local: 'user', domain: '[IPv6:2001:db8::1]', literal: true },
  { input: 'user@[IPv6:::1]', local: 'user', domain: '[IPv6:::1]', literal: true },
  { input: 'user@[IPv6:::ffff:192.0.2.1]', local: 'user', domain: '[IPv6:::ffff:192.0.2.1]', literal: true },
];

interface Refused {
  readonly input: unknown;
  readonly why: string;
  /** What the message must also say, when the reason is specific. */
  readonly reason?: RegExp;
}

const REFUSED: readonly Refused[] = [
  // Not strings.
  { input: undefined, why: 'undefined', reason: /must be a string/ },
  { input: null, why: 'null', reason: /must be a string/ },
  { input: 42, why: 'a number', reason: /must be a string/ },
  { input: {}, why: 'an object', reason: /must be a string/ },
  { input: ['user@example.org'], why: 'an array', reason: /must be a string/ },
  { input: Buffer.from('user@example.org'), why: 'bytes', reason: /must be a string/ },
  // Empty parts.
  { input: '', why: 'the empty string (the null sender is not an address)' },
  { input: '<>', why: '<> (the null sender is not an address)' },
  { input: 'user', why: 'no @' },
  { input: '@', why: 'only @' },
  { input: 'user@', why: 'an empty domain' },
  { input: '@example.org', why: 'an empty local part' },
  { input: '<@example.org>', why: 'an empty local part in brackets' },
  { input: 'user@@example.org', why: 'two @' },
  // Dot-string syntax.
  { input: 'a..b@example.org', why: 'a double dot in the local part', reason: /local part/ },
  { input: '.user@example.org', why: 'a leading dot in the local part', reason: /local part/ },
  { input: 'user.@example.org', why: 'a trailing dot in the local part', reason: /local part/ },
  { input: '.@example.org', why: 'a local part that is only a dot', reason: /local part/ },
  { input: 'john doe@example.org', why: 'an unquoted space', reason: /local part/ },
  { input: 'a(b)@example.org', why: 'parentheses in a dot-string', reason: /local part/ },
  { input: 'a,b@example.org', why: 'a comma in a dot-string', reason: /local part/ },
  { input: 'a"b"@example.org', why: 'quotes inside a dot-string', reason: /local part/ },
  { input: '"unterminated@example.org', why: 'an unterminated quoted string', reason: /local part/ },
  { input: '"a"b"@example.org', why: 'an unescaped quote in a quoted string', reason: /local part/ },
  { input: '"a\\"@example.org', why: 'a quoted string whose closing quote is escaped', reason: /local part/ },
  { input: '<user@example.org', why: 'an unmatched <' },
  { input: 'user@example.org>', why: 'an unmatched >' },
  { input: '<<user@example.org>>', why: 'doubled angle brackets' },
  // Control characters, anywhere.
  { input: 'us\x00er@example.org', why: 'NUL', reason: /control characters/ },
  { input: 'us\ter@example.org', why: 'a tab', reason: /control characters/ },
  { input: 'user@example.org\r\n', why: 'CRLF at the end', reason: /control characters/ },
  { input: 'user\r\nRCPT TO:<x@evil.example>@example.org', why: 'SMTP command injection', reason: /control characters/ },
  { input: '"a\nb"@example.org', why: 'LF inside a quoted string', reason: /control characters/ },
  { input: 'user@exa\x7fmple.org', why: 'DEL', reason: /control characters/ },
  // Source routes (RFC 5321 §4.1.2 A-d-l; obsolete, refused).
  { input: '@relay.example:user@example.org', why: 'a source route', reason: /source route/ },
  { input: '<@a.example,@b.example:user@example.org>', why: 'a bracketed source route', reason: /source route/ },
  // Domains.
  { input: 'user@example..org', why: 'an empty label', reason: /not a domain name/ },
  { input: 'user@.example.org', why: 'a leading dot in the domain', reason: /not a domain name/ },
  { input: 'user@example.org..', why: 'two trailing dots', reason: /not a domain name/ },
  { input: 'user@-example.org', why: 'a label starting with -', reason: /not a domain name/ },
  { input: 'user@example-.org', why: 'a label ending with -', reason: /not a domain name/ },
  { input: 'user@mail.-x-.example', why: 'an inner label wrapped in -', reason: /not a domain name/ },
  { input: 'user@a_b.example.org', why: 'an underscore in a label', reason: /not a domain name/ },
  { input: 'user@_dmarc.example.org', why: 'a leading underscore', reason: /not a domain name/ },
  { input: 'user@exa mple.org', why: 'a space in the domain', reason: /not a domain name/ },
  { input: 'user@example', why: 'a single-label domain', reason: /not a domain name/ },
  { input: 'user@com', why: 'a top-level domain alone', reason: /not a domain name/ },
  { input: 'user@192.0.2.1', why: 'a bare IPv4 address', reason: /not a domain name/ },
  { input: 'user@192.0.2.1.', why: 'a bare IPv4 address with a trailing dot', reason: /not a domain name/ },
  { input: 'user@0x7f.1', why: 'a bare IPv4 address in WHATWG hex shorthand', reason: /not a domain name/ },
  { input: 'user@2001:db8::1', why: 'a bare IPv6 address', reason: /not a domain name/ },
  { input: 'user@xn--abc.example', why: 'an A-label that is not valid Punycode', reason: /not a domain name/ },
  { input: `user@${'l'.repeat(64)}.example`, why: 'a 64-octet label', reason: /not a domain name/ },
  { input: `u@${domainOfLength(256)}`, why: 'a 256-octet domain' },
  // Address literals that are not IP addresses.
  { input: 'user@[192.0.2.256]', why: 'an IPv4 literal with an octet over 255', reason: /address literal/ },
  { input: 'user@[192.0.2]', why: 'an IPv4 literal with three octets', reason: /address literal/ },
  { input: 'user@[01.2.3.4]', why: 'an IPv4 literal with a leading zero', reason: /address literal/ },
  { input: 'user@[example.org]', why: 'a domain in brackets', reason: /address literal/ },
  { input: 'user@[]', why: 'empty brackets', reason: /address literal/ },
  { input: 'user@[IPv6:zzzz::1]', why: 'an IPv6 literal with non-hex digits', reason: /address literal/ },
  { input: 'user@[2001:db8::1]', why: 'an IPv6 literal without its IPv6: tag', reason: /address literal/ },
  { input: 'user@[x-tag:whatever]', why: 'a general address literal', reason: /address literal/ },
  { input: 'user@[192.0.2.1', why: 'an unclosed literal' },
  // Lengths.
  { input: `${'a'.repeat(65)}@example.org`, why: 'a 65-octet local part', reason: /64 octets/ },
  { input: `${'é'.repeat(33)}@example.org`, why: 'a 33-character, 66-octet local part', reason: /64 octets/ },
  { input: `${'€'.repeat(22)}@example.org`, why: 'a 22-character, 66-octet local part', reason: /64 octets/ },
  { input: `${'😀'.repeat(16)}a@example.org`, why: 'a 65-octet local part of emoji', reason: /64 octets/ },
  { input: `"${'a'.repeat(63)}"@example.org`, why: 'a 65-octet quoted local part (quotes count)', reason: /64 octets/ },
  { input: `${'a'.repeat(64)}@${domainOfLength(190)}`, why: 'a 255-octet address', reason: /254 octets/ },
  // 249 octets as written, 255 once Bücher becomes xn--bcher-kva.
  { input: `${'a'.repeat(60)}@${domainOfLength(177)}.Bücher.de`, why: 'an address over 254 octets once the IDN is in A-labels', reason: /254 octets/ },
  { input: `${'a'.repeat(2000)}@example.org`, why: 'input over 1024 characters', reason: /1024/ },
];

describe('parseEnvelopeAddress: accepted addresses, normalised', () => {
  for (const row of [...ACCEPTED, ...RECIPIENT_LITERALS]) {
    it(`accepts ${JSON.stringify(row.input.length > 70 ? `${row.input.slice(0, 60)}…` : row.input)} as ${row.local.length > 20 ? '…' : row.local}@${row.domain.length > 30 ? '…' : row.domain}`, () => {
      const parsed = parseEnvelopeAddress(row.input, 'rcptTo[0]', true);
      assert.deepEqual(parsed, {
        local: row.local,
        domain: row.domain,
        address: `${row.local}@${row.domain}`,
        isAddressLiteral: row.literal ?? false,
      });
    });
  }

  it('accepts every non-literal address as a sender too, with the same result', () => {
    for (const row of ACCEPTED) {
      assert.deepEqual(parseEnvelopeAddress(row.input, 'mailFrom', false), parseEnvelopeAddress(row.input, 'rcptTo[0]', true), row.input);
    }
  });

  it('counts the 64-octet local-part limit in UTF-8 octets, not characters', () => {
    assert.equal(octets('é'.repeat(32)), 64);
    assert.doesNotThrow(() => parseEnvelopeAddress(`${'é'.repeat(32)}@example.org`, 'mailFrom', false));
    expectRefused(() => parseEnvelopeAddress(`${'é'.repeat(33)}@example.org`, 'mailFrom', false), 'mailFrom', '33 × é', /64 octets/);
  });

  it('counts the 254-octet address limit on the normalised address (A-labels, no brackets)', () => {
    const address = `${'a'.repeat(64)}@${domainOfLength(189)}`;
    assert.equal(octets(address), 254);
    assert.equal(parseEnvelopeAddress(`<${address}>`, 'rcptTo[0]', true).address, address);
  });
});

describe('parseEnvelopeAddress: address literals', () => {
  for (const row of RECIPIENT_LITERALS) {
    it(`refuses ${row.input} as a sender: a literal has no DNS to check`, () => {
      expectRefused(() => parseEnvelopeAddress(row.input, 'mailFrom', false), 'mailFrom', row.input, /address literal cannot be a sender domain/);
    });
  }

  // RFC 5321 §4.1.3: IPv6-addr is a full, compressed or IPv4-mapped IPv6 address. The check in
  // src/address.ts is only /^IPv6:[0-9A-Fa-f:.]+$/, which lets these through.
  for (const literal of ['[IPv6:1]', '[IPv6:::::]', '[IPv6:1.2.3.4]', '[IPv6:.]', '[IPv6:1:2:3:4:5:6:7:8:9]', '[IPv6:2001:db8:::1]']) {
    it(`refuses ${literal}: it is not an IPv6 address`, () => {
      expectRefused(() => parseEnvelopeAddress(`user@${literal}`, 'rcptTo[0]', true), 'rcptTo[0]', literal, /address literal/);
    });
  }
});

describe('parseEnvelopeAddress: refusals name the field and say why', () => {
  for (const [index, row] of REFUSED.entries()) {
    const what = index % 2 === 0 ? 'mailFrom' : `rcptTo[${index}]`;
    it(`refuses ${row.why} with invalid-address naming ${what}`, () => {
      expectRefused(() => parseEnvelopeAddress(row.input, what, true), what, row.why, row.reason);
    });
  }

  // A domain is letters, digits and hyphens. node:url's domainToASCII is a WHATWG *URL host*
  // parser: it percent-decodes, and it stops at '/', '?', '#' and '\' (the end of a URL host), so
  // everything after them is silently dropped and a different domain comes out.
  for (const [input, becomes] of [
    ['alice@contoso.com/evil.example', 'contoso.com'],
    ['alice@contoso.com?evil.example', 'contoso.com'],
    ['alice@contoso.com#evil.example', 'contoso.com'],
    ['alice@contoso.com\\evil.example', 'contoso.com'],
    ['alice@cont%6Fso.com', 'contoso.com'],
    ['alice@evil%2Eexample', 'evil.example'],
  ] as const) {
    it(`refuses ${JSON.stringify(input)} instead of reading it as a different domain (${becomes})`, () => {
      expectRefused(() => parseEnvelopeAddress(input, 'mailFrom', false), 'mailFrom', input, /not a domain name/);
    });
  }

  // A lone UTF-16 surrogate is not a character: it has no UTF-8 encoding (RFC 3629), so the
  // address cannot be sent in SMTPUTF8 as written. The local-part pattern admits \ud800-\udfff.
  for (const local of ['\ud800', 'a\udc00b', '\ude00']) {
    it(`refuses a local part with a lone surrogate (${JSON.stringify(local)}): it is not UTF-8`, () => {
      expectRefused(() => parseEnvelopeAddress(`${local}@example.org`, 'rcptTo[0]', true), 'rcptTo[0]', JSON.stringify(local));
    });
  }
});

describe('normaliseDomain', () => {
  const rows: readonly (readonly [string, string | null])[] = [
    ['Bücher.DE', 'xn--bcher-kva.de'],
    ['EXAMPLE.ORG', 'example.org'],
    ['example.org.', 'example.org'],
    ['faß.de', 'xn--fa-hia.de'],
    ['localhost', 'localhost'],
    ['example', null],
    ['', null],
    ['.', null],
    ['192.0.2.1', null],
    ['a_b.example', null],
    ['-a.example', null],
    ['a-.example', null],
    ['a..example', null],
  ];
  for (const [input, expected] of rows) {
    it(`normalises ${JSON.stringify(input)} to ${JSON.stringify(expected)}`, () => {
      assert.equal(normaliseDomain(input), expected);
    });
  }

  it('accepts 63-octet labels and refuses 64-octet ones', () => {
    assert.equal(normaliseDomain(`${'x'.repeat(63)}.example`), `${'x'.repeat(63)}.example`);
    assert.equal(normaliseDomain(`${'x'.repeat(64)}.example`), null);
  });

  it('accepts a 255-octet domain and refuses a 256-octet one', () => {
    assert.equal(normaliseDomain(domainOfLength(255)), domainOfLength(255));
    assert.equal(normaliseDomain(domainOfLength(256)), null);
  });
});

// Issue 10: Node 24's domainToASCII passes an `xn--` label with bad Punycode through unchanged
// (Node 22 refused it), so A-labels are checked by src/punycode.ts. These hold on both majors:
// run this file with Node 22 and with Node 24.
describe('normaliseDomain: A-labels, checked the same on every Node version', () => {
  const rows: readonly (readonly [string, string | null, string])[] = [
    ['xn--abc.example', null, 'Punycode that does not decode (a truncated number)'],
    ['xn--.example', null, 'an empty Punycode part'],
    ['xn--a.example', null, 'a single digit that is not a whole number'],
    ['xn--bcher-kva9.de', null, 'a valid A-label with a trailing digit'],
    ['xn--a-ecp.example', null, 'a U-label IDNA would not produce'],
    ['xn--zz-.example', null, 'Punycode of ASCII only (Node 22 accepted it)'],
    ['xn--ss-.example', null, 'Punycode of ASCII only, again'],
    ['xn--ab--c.example', null, 'a hyphen where a digit should be'],
    ['bücher.xn--abc', null, 'a bad A-label as the top-level domain'],
    ['xn--bcher-kva.de', 'xn--bcher-kva.de', 'a valid A-label'],
    ['XN--BCHER-KVA.DE', 'xn--bcher-kva.de', 'a valid A-label in capitals'],
    ['xn--ls8h.la', 'xn--ls8h.la', 'an A-label outside the BMP (U+1F4A9)'],
    ['xn--9ca.xn--9ca', 'xn--9ca.xn--9ca', 'A-labels in every label'],
    ['Bücher.xn--tda', 'xn--bcher-kva.xn--tda', 'a U-label beside an A-label'],
    ['ab--c.example', 'ab--c.example', 'hyphens at 3–4 of a label that is not an A-label'],
  ];
  for (const [input, expected, why] of rows) {
    it(`${expected === null ? 'refuses' : 'accepts'} ${input}: ${why} (Node ${process.versions.node})`, () => {
      assert.equal(normaliseDomain(input), expected);
    });
  }

  it('refuses a sender whose domain is a bad A-label with invalid-address', () => {
    expectRefused(() => parseEnvelopeAddress('alice@xn--abc.example', 'mailFrom', false), 'mailFrom', 'xn--abc', /is not a domain name/);
  });

  it('decodes Punycode as Node\'s punycode module (RFC 3492) does, and refuses what it cannot encode back', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }), (text) => {
        const encoded = punycode.encode(text);
        assert.deepEqual(decodePunycode(encoded), [...text].map((char) => char.codePointAt(0)), encoded);
      }),
      { numRuns: 2000 },
    );
  });

  it('every domain domainToASCII makes from Unicode is accepted back, as the same A-labels', () => {
    const unicodeLabel = fc.string({ unit: fc.constantFrom(...'aäbßcçéñøüжя中文☕😀-'), minLength: 1, maxLength: 10 });
    fc.assert(
      fc.property(unicodeLabel, (label) => {
        const ascii = normaliseDomain(`${label}.example`);
        if (ascii === null) return;
        assert.equal(normaliseDomain(ascii), ascii, `${label} → ${ascii} is not accepted back`);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isNullSender', () => {
  for (const [input, expected] of [
    ['', true],
    ['<>', true],
    [' ', false],
    ['< >', false],
    ['<<>>', false],
    ['""', false],
    ['MAILER-DAEMON@example.org', false],
    ['<MAILER-DAEMON@example.org>', false],
  ] as const) {
    it(`${JSON.stringify(input)} ${expected ? 'is' : 'is not'} the null sender`, () => {
      assert.equal(isNullSender(input), expected);
    });
  }
});

describe('parseEnvelopeAddress properties', () => {
  /** Any UTF-16 code unit, lone surrogates included. */
  const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit));
  const localChar = fc.constantFrom(
    ...'abcXYZ019.!#$%&\'*+/=?^_`{|}~-"\\@ ()<>[]:,;'.split(''),
    'é', 'Ü', '漢', '😀', '\u00a0', '\x00', '\x7f', '\r', '\n',
  );
  const domainChar = fc.constantFrom(...'abcXYZ019.-_%/?#\\:[]@ '.split(''), 'ü', 'ß', '。', '\u00ad', '\r');
  const label = fc.string({ unit: domainChar, minLength: 0, maxLength: 12 });
  const addressLike = fc.oneof(
    fc.tuple(fc.string({ unit: localChar, maxLength: 20 }), fc.array(label, { minLength: 1, maxLength: 4 })).map(
      ([local, labels]) => `${local}@${labels.join('.')}`,
    ),
    fc.tuple(fc.string({ unit: localChar, maxLength: 70 }), fc.domain()).map(([local, domain]) => `${local}@${domain}`),
    fc.emailAddress(),
    fc.emailAddress().map((address) => `<${address}>`),
    fc.tuple(fc.emailAddress(), fc.boolean()).map(([address, dot]) => `${address.toUpperCase()}${dot ? '.' : ''}`),
    fc.ipV4().map((ip) => `postmaster@[${ip}]`),
    fc.ipV6().map((ip) => `postmaster@[IPv6:${ip}]`),
    fc.ipV4().map((ip) => `postmaster@${ip}`),
  );

  function check(input: string): void {
    for (const allowLiteral of [true, false]) {
      let parsed: EnvelopeAddress;
      try {
        parsed = parseEnvelopeAddress(input, 'rcptTo[0]', allowLiteral);
      } catch (error) {
        assert.ok(error instanceof OutboundPoolsError, `threw ${String(error)} for ${JSON.stringify(input)}`);
        assert.equal(error.code, 'invalid-address');
        assert.match(error.message, /^rcptTo\[0\] /);
        continue;
      }
      assert.equal(parsed.address, `${parsed.local}@${parsed.domain}`);
      assert.ok(octets(parsed.address) <= 254, `over 254 octets: ${JSON.stringify(parsed.address)}`);
      assert.ok(octets(parsed.local) <= 64, `local part over 64 octets: ${JSON.stringify(parsed.local)}`);
      assert.ok(!/[\x00-\x1f\x7f]/.test(parsed.address), `control character kept in ${JSON.stringify(parsed.address)}`);
      if (parsed.isAddressLiteral) {
        assert.ok(allowLiteral, `address literal accepted as a sender: ${JSON.stringify(input)}`);
      } else {
        assert.match(parsed.domain, /^[a-z0-9.-]+$/, `domain not in lowercase A-labels: ${JSON.stringify(parsed.domain)}`);
      }
      // Idempotent: the normalised address parses to itself.
      assert.deepEqual(parseEnvelopeAddress(parsed.address, 'rcptTo[0]', allowLiteral), parsed, `not idempotent for ${JSON.stringify(input)}`);
    }
  }

  it('on arbitrary strings: returns a normalised, idempotent address or throws OutboundPoolsError', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), check), { numRuns: 2000 });
  });

  it('on arbitrary Unicode strings (unit: binary): the same', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), check), { numRuns: 2000 });
  });

  it('on arbitrary UTF-16 (lone surrogates included): the same', () => {
    fc.assert(fc.property(fc.string({ unit: codeUnit, maxLength: 100 }), check), { numRuns: 2000 });
  });

  it('on address-like strings: the same', () => {
    fc.assert(fc.property(addressLike, check), { numRuns: 5000 });
  });

  /** The one-pass parser for common addresses answers only where the full parser agrees. */
  function agrees(input: string): boolean {
    const common = parseCommonAddress(input);
    if (common === undefined) return false;
    for (const allowLiteral of [true, false]) {
      let full: EnvelopeAddress | string;
      try {
        full = parseAddressInFull(input, allowLiteral);
      } catch (error) {
        full = `refused: ${(error as Error).message}`;
      }
      assert.deepEqual(common, full, `the common-case parser and the full parser differ on ${JSON.stringify(input)}`);
    }
    return true;
  }

  it('the one-pass parser for common addresses gives what the full parser gives, wherever it answers', () => {
    let answered = 0;
    fc.assert(
      fc.property(fc.oneof(addressLike, fc.string({ maxLength: 300 }), fc.string({ unit: codeUnit, maxLength: 80 })), (input) => {
        if (agrees(input)) answered++;
      }),
      { numRuns: 20_000 },
    );
    // It must also be the path common addresses take, or it speeds nothing up.
    assert.ok(answered > 2000, `the common-case parser answered only ${answered} of 20,000 inputs`);
  });

  it('the one-pass parser answers for plain addresses and leaves every other form to the full parser', () => {
    const common = ['megan@contoso.com', '<megan@contoso.com>', 'Megan.Bowen@Contoso.COM', 'a@b.co.', "o'brien+tag@mail.example.org", 'x@sub-1.example', `${'l'.repeat(64)}@example.org`, 'postmaster@localhost'];
    for (const input of common) assert.ok(agrees(input), `${JSON.stringify(input)} should take the common-case path`);
    const others = [
      '', '<>', '<a@b.com', 'a@b.com>', '@relay:a@b.com', '"quoted"@b.com', 'a@b@c.com', 'é@b.com', 'a@bücher.de', 'a@xn--bcher-kva.de',
      'a@[192.0.2.1]', 'a@192.0.2.1', 'a..b@c.com', '.a@c.com', 'a.@c.com', 'a@-b.com', 'a@b-.com', 'a@b..com', 'a@b.com..',
      `${'l'.repeat(65)}@example.org`, 'a@b_c.com', 'a b@c.com',
    ];
    for (const input of others) assert.equal(parseCommonAddress(input), undefined, `${JSON.stringify(input)} should go to the full parser`);
  });

  it('on non-strings: always OutboundPoolsError invalid-address', () => {
    fc.assert(
      fc.property(fc.anything().filter((value) => typeof value !== 'string'), (value) => {
        expectRefused(() => parseEnvelopeAddress(value, 'mailFrom', true), 'mailFrom', String(typeof value), /must be a string/);
      }),
      { numRuns: 500 },
    );
  });
});

describe('limitKeyOf: one key per mailbox or login, as decisions key the sender', () => {
  const cases: [typed: string, key: string][] = [
    ['alice@contoso.com', 'alice@contoso.com'],
    ['<Alice@Contoso.COM>', 'alice@contoso.com'],
    ['"alice"@contoso.com', 'alice@contoso.com'],
    ['"al\\ice"@contoso.com', 'alice@contoso.com'],
    ['"a b"@contoso.com', '"a b"@contoso.com'],
    ['"a\\ b"@contoso.com', '"a b"@contoso.com'],
    ['"a\\"b"@contoso.com', '"a\\"b"@contoso.com'],
    ['megan@Bücher.DE', 'megan@xn--bcher-kva.de'],
    ['alice@contoso.com.', 'alice@contoso.com'],
    ['', '<>'],
    ['<>', '<>'],
    ['Megan', 'megan'],
    ['CONTOSO\\Megan', 'contoso\\megan'],
    // Other letters fold as toLowerCase folds them; one that would fold onto ASCII is kept.
    ['ÅSA@contoso.com', 'åsa@contoso.com'],
    ['\u212Aevin@contoso.com', '\u212Aevin@contoso.com'],
    ['mailbox-\u212Aiosk', 'mailbox-\u212Aiosk'],
  ];
  for (const [typed, key] of cases) {
    it(`${JSON.stringify(typed)} → ${JSON.stringify(key)}`, () => {
      assert.equal(limitKeyOf(typed), key);
      assert.equal(limitKeyOf(key), key, 'a key is its own key');
    });
  }
});

describe('normaliseDomain refuses what UTS-46 would map onto another name', () => {
  for (const [what, domain] of [
    ['a zero-width space', 'con\u200btoso.com'],
    ['a soft hyphen', 'con\u00adtoso.com'],
    ['fullwidth letters', '\uff43ontoso.com'],
    ['the ideographic full stop', 'contoso\u3002com'],
  ] as const) {
    it(`${what}: not a domain name (it would read as contoso.com)`, () => {
      assert.equal(normaliseDomain(domain), null);
      assert.throws(() => parseEnvelopeAddress(`a@${domain}`, 'mailFrom', false), (error: unknown) => error instanceof OutboundPoolsError && error.code === 'invalid-address');
    });
  }
  it('the Kelvin sign (U+212A), which lowercases to an ASCII k: not a domain name (it would read as bank.example)', () => {
    assert.equal(normaliseDomain('ban\u212A.example'), null);
    assert.equal(normaliseDomain('BAN\u212A.example'), null);
    assert.throws(() => parseEnvelopeAddress('alice@ban\u212A.example', 'mailFrom', false), (error: unknown) => error instanceof OutboundPoolsError && error.code === 'invalid-address');
    // Nor does it become a sender key of the ASCII name.
    assert.notEqual(limitKeyOf('\u212Aevin@contoso.com'), limitKeyOf('kevin@contoso.com'));
    // Around it, letters fold as toLowerCase folds them, context rules included (a final sigma).
    assert.equal(limitKeyOf('\u212AΑΣ@x.example'), limitKeyOf('\u212Aας@x.example'));
    assert.equal(limitKeyOf('\u212AΑΣ@x.example'), '\u212Aας@x.example');
  });
  it('case, NFC and U-labels are still mapped', () => {
    assert.equal(normaliseDomain('Bücher.DE'), 'xn--bcher-kva.de');
    assert.equal(normaliseDomain('bu\u0308cher.de'), 'xn--bcher-kva.de');
    assert.equal(normaliseDomain('XN--BCHER-KVA.de.'), 'xn--bcher-kva.de');
    assert.equal(normaliseDomain('straße.de'), 'xn--strae-oqa.de');
    // A final capital sigma: JavaScript lowercases it to ς, UTS-46 to σ.
    assert.equal(normaliseDomain('ΑΣ.gr'), normaliseDomain('ασ.gr'));
    assert.equal(normaliseDomain('ΟΔΟΣ.gr'), 'xn--pxavbq.gr');
  });
});
