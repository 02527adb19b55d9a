// Authentication-Results (RFC 8601): the parser, the trust rule of §5 (only fields added by a
// trusted authserv-id count), and the mapping into the AuthenticationVerdict the decision reads.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import {
  authenticationFromHeaders,
  parseArcAuthenticationResults,
  parseAuthenticationResults,
  type AuthenticationMethodResult,
  type AuthenticationResultsOptions,
  type ParsedAuthenticationResults,
} from '../../src/providers/authentication-results.js';
import { OutboundPoolsError } from '../../src/errors.js';
import type { AuthenticationVerdict } from '../../src/providers/types.js';
import { expectRefused } from '../assertions.js';
import { decideFromVerdicts, decidePool } from '../../src/decide/gather.js';
import { createPolicy } from '../../src/policy.js';
import { assertLinear } from './linear-time.js';


const trusting = (...authservIds: string[]): AuthenticationResultsOptions => ({ authservIds });

/** Parses with `authservIds` and asserts the field was trusted; returns its results. */
function trustedResults(value: string, ...authservIds: string[]): readonly AuthenticationMethodResult[] {
  const parsed = parseAuthenticationResults(value, trusting(...authservIds));
  assert.equal(parsed.trusted, true, `not trusted: ${JSON.stringify(parsed)}`);
  return parsed.trusted ? parsed.results : [];
}

const result = (method: string, outcome: string, properties: Record<string, string> = {}, extra: { version?: number; reason?: string } = {}): AuthenticationMethodResult => ({
  method,
  ...(extra.version === undefined ? {} : { version: extra.version }),
  result: outcome,
  ...(extra.reason === undefined ? {} : { reason: extra.reason }),
  properties,
});

// ---------------------------------------------------------------------------------------------

describe('parseAuthenticationResults: the examples of RFC 8601 Appendix B', () => {
  const examples: { name: string; value: string; trust: string; expected: ParsedAuthenticationResults }[] = [
    {
      name: 'B.2 nearly trivial case: "none" with an authres-version is a trusted field with no results',
      value: 'example.org 1; none',
      trust: 'example.org',
      expected: { trusted: true, authservId: 'example.org', version: 1, results: [] },
    },
    {
      name: 'B.3 service provided, authentication done: one folded SPF result',
      value: 'example.com;\r\n          spf=pass smtp.mailfrom=example.net',
      trust: 'example.com',
      expected: { trusted: true, authservId: 'example.com', results: [result('spf', 'pass', { 'smtp.mailfrom': 'example.net' })] },
    },
    {
      name: 'B.4 several authentications by one MTA: auth with a comment, then SPF',
      value: 'example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n          spf=pass smtp.mailfrom=example.net',
      trust: 'example.com',
      expected: {
        trusted: true,
        authservId: 'example.com',
        results: [result('auth', 'pass', { 'smtp.auth': 'sender@example.net' }), result('spf', 'pass', { 'smtp.mailfrom': 'example.net' })],
      },
    },
    {
      name: 'B.4 iprev with the policy.iprev property on a folded line',
      value: 'example.com; iprev=pass\r\n          policy.iprev=192.0.2.200',
      trust: 'example.com',
      expected: { trusted: true, authservId: 'example.com', results: [result('iprev', 'pass', { 'policy.iprev': '192.0.2.200' })] },
    },
    {
      name: 'B.4 of RFC 7601: the retired sender-id method is kept as an unknown method',
      value: 'example.com;\r\n          sender-id=pass header.from=example.net',
      trust: 'example.com',
      expected: { trusted: true, authservId: 'example.com', results: [result('sender-id', 'pass', { 'header.from': 'example.net' })] },
    },
    {
      name: 'B.5 different MTAs, the field of the last one: DKIM with a comment',
      value: 'example.com;\r\n          dkim=pass (good signature) header.d=example.com',
      trust: 'example.com',
      expected: { trusted: true, authservId: 'example.com', results: [result('dkim', 'pass', { 'header.d': 'example.com' })] },
    },
    {
      name: 'B.5 different MTAs, the field of the first one: auth and a failed SPF',
      value: 'example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.com;\r\n          spf=fail smtp.mailfrom=example.com',
      trust: 'example.com',
      expected: {
        trusted: true,
        authservId: 'example.com',
        results: [result('auth', 'pass', { 'smtp.auth': 'sender@example.com' }), result('spf', 'fail', { 'smtp.mailfrom': 'example.com' })],
      },
    },
    {
      name: 'B.6 multi-tiered: two DKIM signatures with quoted reasons and @domain identities',
      value:
        'example.com;\r\n      dkim=pass reason="good signature"\r\n        header.i=@mail-router.example.net;\r\n' +
        '      dkim=fail reason="bad signature"\r\n        header.i=@newyork.example.com',
      trust: 'example.com',
      expected: {
        trusted: true,
        authservId: 'example.com',
        results: [
          result('dkim', 'pass', { 'header.i': '@mail-router.example.net' }, { reason: 'good signature' }),
          result('dkim', 'fail', { 'header.i': '@newyork.example.com' }, { reason: 'bad signature' }),
        ],
      },
    },
    {
      name: 'B.6 multi-tiered: the field of the intermediate MTA',
      value: 'example.net;\r\n      dkim=pass (good signature) header.i=@newyork.example.com',
      trust: 'example.net',
      expected: { trusted: true, authservId: 'example.net', results: [result('dkim', 'pass', { 'header.i': '@newyork.example.com' })] },
    },
    {
      name: 'B.7 comment-heavy: comments around the version, the "/", the "=", the "." and the value',
      value:
        'foo.example.net (foobar) 1 (baz);\r\n    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n' +
        "      policy (A dot can go here) . (like that) expired\r\n      (this surprised me) = (as I wasn't expecting it) 1362471462",
      trust: 'foo.example.net',
      expected: { trusted: true, authservId: 'foo.example.net', version: 1, results: [result('dkim', 'fail', { 'policy.expired': '1362471462' }, { version: 1 })] },
    },
  ];
  for (const { name, value, trust, expected } of examples) {
    it(name, () => {
      assert.deepEqual(parseAuthenticationResults(value, trusting(trust)), expected);
    });
  }
});

describe('parseAuthenticationResults: trust (RFC 8601 §5)', () => {
  it("ignores an attacker's field with another authserv-id, with a reason naming both", () => {
    const parsed = parseAuthenticationResults('attacker.example; spf=pass smtp.mailfrom=bank.example; dmarc=pass header.from=bank.example', trusting('mx.example.org'));
    assert.equal(parsed.trusted, false);
    assert.equal(parsed.authservId, 'attacker.example');
    assert.ok(!parsed.trusted);
    assert.match(parsed.reason, /^authserv-id "attacker\.example" is not one of the trusted ids \(mx\.example\.org\)/);
  });

  it('does not read the rest of an untrusted field: its malformed results are not an error', () => {
    const parsed = parseAuthenticationResults('attacker.example; spf=pass ((( unterminated', trusting('mx.example.org'));
    assert.equal(parsed.trusted, false);
  });

  it('compares authserv-ids case-insensitively', () => {
    assert.equal(parseAuthenticationResults('MX.Example.ORG; none', trusting('mx.example.org')).trusted, true);
    assert.equal(parseAuthenticationResults('mx.example.org; none', trusting('MX.EXAMPLE.ORG')).trusted, true);
  });

  it('folds ASCII letters only: a Kelvin sign (U+212A) does not match "k"', () => {
    assert.equal(parseAuthenticationResults('"mx.\u212Aey.example"; none', trusting('mx.key.example')).trusted, false);
  });

  it('trusts a quoted authserv-id like the same token', () => {
    assert.deepEqual(parseAuthenticationResults('"mx.example.org"; none', trusting('mx.example.org')), { trusted: true, authservId: 'mx.example.org', results: [] });
  });

  it('trusts any of several authserv-ids', () => {
    assert.equal(parseAuthenticationResults('edge.example.org; none', trusting('mx.example.org', 'edge.example.org')).trusted, true);
  });

  it('does not take a longer or shorter name for a trusted one', () => {
    assert.equal(parseAuthenticationResults('mx.example.org.attacker.example; none', trusting('mx.example.org')).trusted, false);
    assert.equal(parseAuthenticationResults('example.org; none', trusting('mx.example.org')).trusted, false);
  });
});

describe('parseAuthenticationResults: syntax', () => {
  it('lowercases method, result, ptype and property names and keeps values as written', () => {
    assert.deepEqual(trustedResults('mx.example.org; DKIM=Pass Header.D=Example.COM HEADER.s=Sel1', 'mx.example.org'), [
      result('dkim', 'pass', { 'header.d': 'Example.COM', 'header.s': 'Sel1' }),
    ]);
  });

  it('reads comments anywhere CFWS may be, nested, with quoted-pairs, ";" and "=" inside', () => {
    const value = '(lead) mx.example.org (a (nested (deeper)) comment; spf=fail) ; (x) spf (y) = (z) pass (w\\) still; comment) smtp (.) . (.) mailfrom (=) = (") a@example.net (tail)';
    assert.deepEqual(trustedResults(value, 'mx.example.org'), [result('spf', 'pass', { 'smtp.mailfrom': 'a@example.net' })]);
  });

  it('unfolds CRLF and bare-LF folds followed by a space or a tab, and accepts a final CRLF', () => {
    const value = 'mx.example.org;\r\n\tspf=pass\n smtp.mailfrom=example.net;\r\n dkim=pass\r\n\t header.d=example.net\r\n';
    assert.deepEqual(trustedResults(value, 'mx.example.org'), [
      result('spf', 'pass', { 'smtp.mailfrom': 'example.net' }),
      result('dkim', 'pass', { 'header.d': 'example.net' }),
    ]);
  });

  it('unfolds a folded quoted string, keeping the whitespace after the line break', () => {
    assert.deepEqual(trustedResults('mx.example.org; dkim=fail reason="body hash\r\n did not verify"', 'mx.example.org'), [
      result('dkim', 'fail', {}, { reason: 'body hash did not verify' }),
    ]);
  });

  it('unquotes quoted values and reasons, quoted-pairs included, and non-ASCII text', () => {
    const value = 'mx.example.org; dkim=fail reason="the \\"b=\\" tag \\\\ did not verify (é)" header.d="example.net" header.i="user@example.net"';
    assert.deepEqual(trustedResults(value, 'mx.example.org'), [
      result('dkim', 'fail', { 'header.d': 'example.net', 'header.i': 'user@example.net' }, { reason: 'the "b=" tag \\ did not verify (é)' }),
    ]);
  });

  it('reads a token reason', () => {
    assert.deepEqual(trustedResults('mx.example.org; compauth=pass reason=100', 'mx.example.org'), [result('compauth', 'pass', {}, { reason: '100' })]);
  });

  it('reads values that are a domain, local@domain, @domain, or a quoted local-part @domain', () => {
    const value = 'mx.example.org; spf=pass smtp.mailfrom=user@example.net smtp.helo=mx.example.net; dkim=pass header.i=@example.net header.d=example.net; auth=pass smtp.auth="john doe"@example.net';
    assert.deepEqual(trustedResults(value, 'mx.example.org'), [
      result('spf', 'pass', { 'smtp.mailfrom': 'user@example.net', 'smtp.helo': 'mx.example.net' }),
      result('dkim', 'pass', { 'header.i': '@example.net', 'header.d': 'example.net' }),
      result('auth', 'pass', { 'smtp.auth': '"john doe"@example.net' }),
    ]);
  });

  it("reads unquoted values MTAs write with '/', '=', ':' and '[]': Gmail's header.b, SRS senders, IPv6 and literals", () => {
    const value =
      'mx.google.com; dkim=pass header.i=@gmail.com header.s=20230601 header.b=gfT/i2HB;' +
      ' spf=pass smtp.mailfrom=SRS0=HHH=TT=example.com=alice@forwarder.example smtp.helo=[192.0.2.1];' +
      ' iprev=pass smtp.remote-ip=2001:db8::1';
    assert.deepEqual(trustedResults(value, 'mx.google.com'), [
      result('dkim', 'pass', { 'header.i': '@gmail.com', 'header.s': '20230601', 'header.b': 'gfT/i2HB' }),
      result('spf', 'pass', { 'smtp.mailfrom': 'SRS0=HHH=TT=example.com=alice@forwarder.example', 'smtp.helo': '[192.0.2.1]' }),
      result('iprev', 'pass', { 'smtp.remote-ip': '2001:db8::1' }),
    ]);
  });

  it('reads a whole Gmail field: comments with "@", ":" and "=", and a final ";"', () => {
    const value =
      'mx.google.com;\r\n       dkim=pass header.i=@example.com header.s=s1 header.b=AbCd+/x1;\r\n' +
      '       arc=pass (i=1 spf=pass spfdomain=example.com dkim=pass dkdomain=example.com dmarc=pass fromdomain=example.com);\r\n' +
      '       spf=pass (google.com: domain of alice@example.com designates 192.0.2.1 as permitted sender) smtp.mailfrom=alice@example.com;\r\n' +
      '       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com;';
    assert.deepEqual(trustedResults(value, 'mx.google.com'), [
      result('dkim', 'pass', { 'header.i': '@example.com', 'header.s': 's1', 'header.b': 'AbCd+/x1' }),
      result('arc', 'pass'),
      result('spf', 'pass', { 'smtp.mailfrom': 'alice@example.com' }),
      result('dmarc', 'pass', { 'header.from': 'example.com' }),
    ]);
  });

  it('reads method versions, with or without CFWS around the "/"', () => {
    assert.deepEqual(trustedResults('mx.example.org; dkim/1=pass header.d=a.example; spf / 1 = fail smtp.mailfrom=a.example', 'mx.example.org'), [
      result('dkim', 'pass', { 'header.d': 'a.example' }, { version: 1 }),
      result('spf', 'fail', { 'smtp.mailfrom': 'a.example' }, { version: 1 }),
    ]);
  });

  it('reads "none" with comments around it and a final ";"', () => {
    assert.deepEqual(parseAuthenticationResults('mx.example.org (edge) ; (nothing checked) NONE (really) ;', trusting('mx.example.org')), {
      trusted: true,
      authservId: 'mx.example.org',
      results: [],
    });
  });

  it('reads a method that is called "none" when it has a result', () => {
    assert.deepEqual(trustedResults('mx.example.org; none=pass', 'mx.example.org'), [result('none', 'pass')]);
  });

  it('keeps unknown methods, results and properties', () => {
    assert.deepEqual(trustedResults('mx.example.org; x-vendor-check=maybe x-vendor.score=7 policy.x-seen=yes', 'mx.example.org'), [
      result('x-vendor-check', 'maybe', { 'x-vendor.score': '7', 'policy.x-seen': 'yes' }),
    ]);
  });

  it('skips empty results (";;" and a final ";")', () => {
    assert.deepEqual(trustedResults('mx.example.org;; spf=pass smtp.mailfrom=a.example ;; ;', 'mx.example.org'), [result('spf', 'pass', { 'smtp.mailfrom': 'a.example' })]);
  });

  it('accepts reason= after the properties', () => {
    assert.deepEqual(trustedResults('mx.example.org; dkim=fail header.d=a.example reason="bad"', 'mx.example.org'), [
      result('dkim', 'fail', { 'header.d': 'a.example' }, { reason: 'bad' }),
    ]);
  });

  it('accepts a quoted value followed directly by the next property', () => {
    assert.deepEqual(trustedResults('mx.example.org; dkim=pass header.d="a.example"header.s=x', 'mx.example.org'), [
      result('dkim', 'pass', { 'header.d': 'a.example', 'header.s': 'x' }),
    ]);
  });

  it('accepts the field name before the value', () => {
    assert.deepEqual(parseAuthenticationResults('Authentication-Results: mx.example.org; none', trusting('mx.example.org')), {
      trusted: true,
      authservId: 'mx.example.org',
      results: [],
    });
  });

  const malformed: [name: string, value: string, pattern: RegExp][] = [
    ['an empty value', '', /empty value: expected an authserv-id/],
    ['only whitespace and comments', '  (nothing) ', /empty value/],
    ['an authserv-id and nothing else', 'mx.example.org', /no results after the authserv-id/],
    ['an authserv-id with a ";" and nothing else', 'mx.example.org;', /no results: expected method=result, or "none"/],
    ['no authserv-id (the Microsoft 365 shape)', 'spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=contoso.com; dkim=none', /expected ";" \(or a version number\) after the authserv-id/],
    ['an authserv-id with a "/"', 'mx.example.org/1; none', /expected ";" \(or a version number\) after the authserv-id/],
    ['a version glued to a quoted authserv-id', '"mx.example.org"1; none', /version glued to the authserv-id/],
    ['something after the authres-version', 'mx.example.org 1 x; none', /expected ";" after the authres-version/],
    ['a version number of ten digits', 'mx.example.org 1234567890; none', /authres-version has more than 9 digits/],
    ['"none" followed by a result', 'mx.example.org; none; spf=pass', /"none" must be the only result/],
    ['a result followed by "none"', 'mx.example.org; spf=pass; none', /"none" must be the only result/],
    ['a method without "="', 'mx.example.org; spf pass', /expected "=" and a result after the method "spf"/],
    ['a method without a result', 'mx.example.org; spf=', /expected the result of method "spf"/],
    ['a "/" without a version', 'mx.example.org; dkim/=pass', /expected the version of method "dkim" after "\/" \(digits\)/],
    ['a keyword ending in "-"', 'mx.example.org; dkim-=pass', /ends with "-"/],
    ['a bare name= given twice', 'mx.example.org; dmarc=pass action=none action=reject', /action= given twice/],
    ['a bare name= without a value', 'mx.example.org; dmarc=pass action= ;', /expected the value of action=/],
    ['a ptype without a property', 'mx.example.org; spf=pass smtp.=a.example', /expected a property name after "smtp."/],
    ['a property without "="', 'mx.example.org; spf=pass smtp.mailfrom a.example', /expected "=" and a value after "smtp.mailfrom"/],
    ['a property without a value', 'mx.example.org; spf=pass smtp.mailfrom=', /expected the value of smtp.mailfrom/],
    ['a property without a value before ";"', 'mx.example.org; spf=pass smtp.mailfrom= ; dkim=pass', /expected the value of smtp.mailfrom/],
    ['a word that is not ptype.property', 'mx.example.org; spf=pass smtp', /expected "." and a property name after "smtp"/],
    ['a stray character after a result', 'mx.example.org; spf=pass, dkim=pass', /expected a property \(ptype.property=value\), reason=, or ";"/],
    ['a value with "<" (an unquoted angle address)', 'mx.example.org; spf=pass smtp.mailfrom=<a@example.net>', /expected the value of smtp.mailfrom/],
    ['a quoted local-part with nothing after "@"', 'mx.example.org; auth=pass smtp.auth="john"@', /expected a domain after the "@"/],
    ['the same property twice', 'mx.example.org; dkim=pass header.d=a.example header.d=b.example', /header.d given twice/],
    ['two reasons', 'mx.example.org; dkim=fail reason=a reason=b', /a second reason=/],
    ['an unterminated comment', 'mx.example.org; spf=pass (comment', /an unterminated comment/],
    ['an unterminated nested comment', 'mx.example.org; spf=pass (a (b (c) ', /unterminated comment \(2 levels still open\)/],
    ['an unterminated quoted string', 'mx.example.org; dkim=fail reason="bad', /an unterminated quoted string/],
    ['a backslash at the end of a quoted string', 'mx.example.org; dkim=fail reason="bad\\', /unterminated quoted string/],
    ['a line break that is not a fold', 'mx.example.org;\r\nspf=pass', /a line break that is not a fold/],
    ['a bare CR', 'mx.example.org;\r spf=pass', /a CR that is not followed by LF/],
    ['a NUL character', 'mx.example.org; spf=pass\u0000', /expected a property/],
    ['a control character in a comment', 'mx.example.org; spf=pass (a\u0001b)', /a control character \(U\+0001\) in a comment/],
    ['a control character in a quoted string', 'mx.example.org; dkim=fail reason="a\u007fb"', /a control character \(U\+007F\) in a quoted string/],
    ['a line break in a quoted string that is not a fold', 'mx.example.org; dkim=fail reason="a\r\nb"', /a line break that is not a fold/],
  ];
  for (const [name, value, pattern] of malformed) {
    it(`refuses ${name} with invalid-headers and says where`, () => {
      expectRefused(() => parseAuthenticationResults(value, trusting('mx.example.org')), 'invalid-headers', pattern, name);
      expectRefused(() => parseAuthenticationResults(value, trusting('mx.example.org')), 'invalid-headers', /^Malformed Authentication-Results value: .* \(at (offset \d+, near ".*"|the end, offset \d+)\)\.$/s, name);
    });
  }

  it('refuses a value that is not a string with invalid-headers', () => {
    for (const value of [undefined, null, 42, Buffer.from('mx.example.org; none'), ['mx.example.org; none']]) {
      expectRefused(() => parseAuthenticationResults(value as unknown as string, trusting('mx.example.org')), 'invalid-headers', /must be a string/, String(value));
    }
  });

  const badOptions: [name: string, options: unknown, pattern: RegExp][] = [
    ['no options', undefined, /options must be an object with authservIds/],
    ['no authservIds', {}, /authservIds must be a non-empty array .* got nothing/],
    ['an empty authservIds', { authservIds: [] }, /authservIds must be a non-empty array/],
    ['a string for authservIds', { authservIds: 'mx.example.org' }, /authservIds must be a non-empty array/],
    ['an empty authserv-id', { authservIds: [''] }, /authservIds\[0\] must be an authserv-id/],
    ['an authserv-id with spaces around it', { authservIds: ['mx.example.org', ' mx.example.org '] }, /authservIds\[1\] must be an authserv-id/],
    ['an authserv-id that is not a string', { authservIds: [42] }, /authservIds\[0\] must be an authserv-id .* got number/],
    ['a hole in authservIds', { authservIds: [, 'mx.example.org'] }, /authservIds\[0\] must be an authserv-id/],
  ];
  for (const [name, options, pattern] of badOptions) {
    it(`refuses ${name} with invalid-context`, () => {
      expectRefused(() => parseAuthenticationResults('mx.example.org; none', options as AuthenticationResultsOptions), 'invalid-context', pattern, name);
      expectRefused(() => authenticationFromHeaders('Subject: x\r\n', options as AuthenticationResultsOptions), 'invalid-context', pattern, name);
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('authenticationFromHeaders: the verdict from trusted fields', () => {
  const mx = trusting('mx.example.org');

  it('B.1 trivial case: a message without Authentication-Results gives an empty verdict', () => {
    const message = 'Received: from mail-router.example.com by server.example.org\r\nFrom: sender@example.com\r\nSubject: here\'s a sample\r\n\r\nHello! Goodbye!\r\n';
    assert.deepEqual(authenticationFromHeaders(message, mx), { verdict: {}, ignored: [] });
  });

  it("B.5: of two fields of one authserv-id only the newest (the border's) is read, the older one is listed unread", () => {
    const message =
      'Authentication-Results: example.com;\r\n          dkim=pass (good signature) header.d=example.com\r\n' +
      'Received: from mail-router.example.com (mail-router.example.com [192.0.2.1])\r\n        by auth-checker.example.com (8.11.6/8.11.6) with ESMTP id i7PK0sH7021929;\r\n        Fri, Feb 15 2002 17:19:22 -0800\r\n' +
      'DKIM-Signature: v=1; a=rsa-sha256; s=gatsby; d=example.com;\r\n        t=1188964191; c=simple/simple; h=From:Date:To:Subject:\r\n        Message-Id:Authentication-Results;\r\n        bh=sEuZGD/pSr7ANysbY3jtdaQ3Xv9xPQtS0m70;\r\n        b=EToRSuvUfQVP3Bkz ... rTB0t0gYnBVCM=\r\n' +
      'Authentication-Results: example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.com;\r\n          spf=fail smtp.mailfrom=example.com\r\n' +
      'Received: from dialup-1-2-3-4.example.net (dialup-1-2-3-4.example.net [192.0.2.200])\r\n        by mail-router.example.com (8.11.6/8.11.6)\r\n        with ESMTPA id g1G0r1kA003489;\r\n        Fri, Feb 15 2002 17:19:07 -0800\r\n' +
      'From: sender@example.com\r\nDate: Fri, Feb 15 2002 16:54:30 -0800\r\nTo: receiver@example.com\r\nMessage-Id: <12345.abc@example.com>\r\nSubject: here\'s a sample\r\n\r\nHello! Goodbye!\r\n';
    assert.deepEqual(authenticationFromHeaders(message, trusting('example.com')), {
      verdict: { dkim: [{ result: 'pass', domain: 'example.com' }] },
      ignored: [
        {
          authservId: 'example.com',
          reason:
            "Authentication-Results field 2 of 2: an older field of a trusted authserv-id, not read: only the newest (field 1, added by this service's border) counts, RFC 8601 §5; an older one may be forged",
        },
      ],
    });
  });

  it("B.6: the intermediate's field is ignored with a reason when only example.com is trusted", () => {
    const message =
      'Authentication-Results: example.com;\r\n      dkim=pass reason="good signature"\r\n        header.i=@mail-router.example.net;\r\n' +
      '      dkim=fail reason="bad signature"\r\n        header.i=@newyork.example.com\r\n' +
      'Received: from mail-router.example.net (mail-router.example.net [192.0.2.250])\r\n    by chicago.example.com (8.11.6/8.11.6) for <recipient@chicago.example.com>\r\n    with ESMTP id i7PK0sH7021929; Fri, Feb 15 2002 17:19:22 -0800\r\n' +
      'Authentication-Results: example.net;\r\n      dkim=pass (good signature) header.i=@newyork.example.com\r\n' +
      'From: sender@newyork.example.com\r\n\r\nHello!\r\n';
    const { verdict, ignored } = authenticationFromHeaders(message, trusting('example.com'));
    assert.deepEqual(verdict, {
      dkim: [
        { result: 'pass', domain: 'mail-router.example.net' },
        { result: 'fail', domain: 'newyork.example.com' },
      ],
    });
    assert.equal(ignored.length, 1);
    assert.equal(ignored[0]?.authservId, 'example.net');
    assert.match(ignored[0]?.reason ?? '', /^Authentication-Results field 2 of 2: authserv-id "example\.net" is not one of the trusted ids \(example\.com\)/);
  });

  it("ignores an attacker's forged pass above the trusted field: the trusted fail stands", () => {
    const headers =
      'Authentication-Results: attacker.example; spf=pass smtp.mailfrom=bank.example; dkim=pass header.d=bank.example; dmarc=pass header.from=bank.example\r\n' +
      'Authentication-Results: mx.example.org; spf=fail smtp.mailfrom=bank.example; dkim=fail header.d=bank.example; dmarc=fail header.from=bank.example\r\n';
    const { verdict, ignored } = authenticationFromHeaders(headers, mx);
    assert.deepEqual(verdict, {
      spf: { result: 'fail', domain: 'bank.example' },
      dkim: [{ result: 'fail', domain: 'bank.example' }],
      dmarc: { result: 'fail', domain: 'bank.example' },
    });
    assert.deepEqual(
      ignored.map((entry) => entry.authservId),
      ['attacker.example'],
    );
  });

  it('ignores a field too malformed to name its authserv-id (Microsoft 365 writes none), with a null authservId', () => {
    const headers = 'Authentication-Results: spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=contoso.com; dkim=none (message not signed) header.d=none;dmarc=pass action=none header.from=contoso.com;\r\n';
    const { verdict, ignored } = authenticationFromHeaders(headers, mx);
    assert.deepEqual(verdict, {});
    assert.equal(ignored[0]?.authservId, null);
    assert.match(ignored[0]?.reason ?? '', /^Authentication-Results field 1 of 1 has no readable authserv-id: Malformed Authentication-Results value: expected ";"/);
  });

  it('ignores an untrusted malformed field without error', () => {
    const { verdict, ignored } = authenticationFromHeaders('Authentication-Results: attacker.example; spf=(((\r\nAuthentication-Results: mx.example.org; spf=pass smtp.mailfrom=a.example\r\n', mx);
    assert.deepEqual(verdict, { spf: { result: 'pass', domain: 'a.example' } });
    assert.equal(ignored.length, 1);
  });

  it('refuses a malformed field of a trusted authserv-id with invalid-headers naming the field: its verdict is not guessed', () => {
    expectRefused(
      () => authenticationFromHeaders('Authentication-Results: attacker.example; none\r\nAuthentication-Results: mx.example.org; spf=pass smtp.mailfrom=\r\n', mx),
      'invalid-headers',
      /^Authentication-Results field 2 of 2, from trusted authserv-id "mx\.example\.org": Malformed Authentication-Results value: expected the value of smtp\.mailfrom/,
      'malformed trusted field',
    );
  });

  it('refuses a trusted authserv-id not followed by ";" with invalid-headers: it is this service\'s field, malformed', () => {
    expectRefused(
      () => authenticationFromHeaders('Authentication-Results: mx.example.org spf=pass smtp.mailfrom=a.example\r\n', mx),
      'invalid-headers',
      /^Authentication-Results field 1 of 1, from trusted authserv-id "mx\.example\.org": Malformed Authentication-Results value: expected ";" \(or a version number\) after the authserv-id/,
      'trusted head without ";"',
    );
  });

  it('ignores a trusted field of another authres-version without parsing it', () => {
    const { verdict, ignored } = authenticationFromHeaders('Authentication-Results: mx.example.org 2; spf=pass smtp.mailfrom=a.example ((( new syntax\r\n', mx);
    assert.deepEqual(verdict, {});
    assert.match(ignored[0]?.reason ?? '', /authres-version 2 is not 1/);
  });

  it('reads only the newest trusted field: an older one, of the same or another trusted authserv-id, changes nothing', () => {
    const headers =
      'Authentication-Results: mx.example.org; dkim=pass header.d=newer.example\r\n' +
      'Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=a.example; dmarc=pass header.from=a.example; dkim=pass header.d=a.example\r\n' +
      'Authentication-Results: edge.example.org; spf=pass smtp.mailfrom=a.example; arc=pass; dkim=pass header.d=older.example\r\n';
    const { verdict, ignored } = authenticationFromHeaders(headers, trusting('mx.example.org', 'edge.example.org'));
    assert.deepEqual(verdict, { dkim: [{ result: 'pass', domain: 'newer.example' }] });
    assert.deepEqual(
      ignored.map((entry) => [entry.authservId, entry.reason.replace(/:.*/, '')]),
      [
        ['mx.example.org', 'Authentication-Results field 2 of 3'],
        ['edge.example.org', 'Authentication-Results field 3 of 3'],
      ],
    );
    assert.ok(ignored.every((entry) => entry.reason.includes('only the newest (field 1')));
  });

  it('an unstripped forged field below the border\'s own cannot verify a forward, whatever it claims', async () => {
    const forged = 'Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=alice@fabrikam.example; dkim=pass header.d=fabrikam.example\r\n';
    const border = 'Authentication-Results: mx.example.org; spf=fail smtp.mailfrom=alice@fabrikam.example\r\n';
    const headers = `${border}Received: from relay.example (relay.example [203.0.113.9]) by mx.example.org; Mon, 23 Nov 2026 09:20:12 +0000\r\n${forged}`;
    const { verdict } = authenticationFromHeaders(headers, mx);
    const decision = await decidePool(
      { mailFrom: 'alice@fabrikam.example', rcptTo: ['bob@northwind.example'], authentication: verdict },
      { policy: { acceptedDomains: ['contoso.com'] }, now: new Date(0) },
    );
    assert.deepEqual(decision.reasons.map((reason) => reason.code), ['relay-unverified']);
    // The same forged field alone, where it would be the newest, is what a missing border field lets through.
    assert.deepEqual(authenticationFromHeaders(forged, mx).verdict.spf, { result: 'pass', domain: 'fabrikam.example' });
  });

  it('an SPF pass for the HELO identity alone does not verify a forward (whose sender is not null), even for the same domain', async () => {
    const headers = 'Authentication-Results: mx.example.org; spf=pass smtp.helo=fabrikam.example\r\n';
    const { verdict } = authenticationFromHeaders(headers, mx);
    const decide = (authentication: AuthenticationVerdict) =>
      decidePool({ mailFrom: 'alice@fabrikam.example', rcptTo: ['bob@northwind.example'], authentication }, { policy: { acceptedDomains: ['contoso.com'] }, now: new Date(0) });
    assert.deepEqual((await decide(verdict)).reasons.map((reason) => reason.code), ['relay-unverified']);
    // The same result for the MAIL FROM verifies it: the identity, not the domain, made the difference.
    const mailFrom = authenticationFromHeaders('Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=fabrikam.example\r\n', mx).verdict;
    assert.deepEqual((await decide(mailFrom)).reasons.map((reason) => reason.code), ['spf-pass', 'srs-skipped']);
    // A precomputed verdict says the same with identity: 'helo'; a value other than the two is refused.
    assert.deepEqual((await decide({ spf: { result: 'pass', domain: 'fabrikam.example', identity: 'helo' } })).reasons.map((reason) => reason.code), ['relay-unverified']);
    await assert.rejects(decide({ spf: { result: 'pass', domain: 'fabrikam.example', identity: 'ehlo' as never } }), /spf.identity is not 'mailfrom' or 'helo'/);
  });

  it("a HELO check written with its stand-in MAIL FROM (postmaster@ the HELO name, as mailauth writes it) is the HELO identity's", () => {
    const { verdict } = authenticationFromHeaders('Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=Postmaster@MX.a.example smtp.helo=mx.a.example\r\n', mx);
    assert.deepEqual(verdict, { spf: { result: 'pass', domain: 'mx.a.example', identity: 'helo' } });
    // postmaster of another domain than the HELO name is a sender like any other.
    const other = authenticationFromHeaders('Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=postmaster@a.example smtp.helo=mx.a.example\r\n', mx);
    assert.deepEqual(other.verdict, { spf: { result: 'pass', domain: 'a.example' } });
  });

  it("reads Microsoft 365's fields, whose DMARC result carries a bare action=", () => {
    const { verdict, ignored } = authenticationFromHeaders(
      'Authentication-Results: mx.example.org 1; spf=pass (sender ip is 203.0.113.7) smtp.mailfrom=fabrikam.example; dmarc=pass action=none header.from=fabrikam.example;dkim=pass (signature was verified) header.d=fabrikam.example;arc=none\r\n',
      mx,
    );
    assert.deepEqual(ignored, []);
    assert.deepEqual(verdict, {
      spf: { result: 'pass', domain: 'fabrikam.example' },
      dkim: [{ result: 'pass', domain: 'fabrikam.example' }],
      arc: { result: 'none' },
      dmarc: { result: 'pass', domain: 'fabrikam.example' },
    });
    const parsed = parseAuthenticationResults('mx.example.org; dmarc=pass action=none header.from=a.example', mx);
    assert.ok(parsed.trusted);
    assert.deepEqual(parsed.results[0]?.properties, { action: 'none', 'header.from': 'a.example' });
  });

  it('does not parse an older trusted field: a malformed one below the newest is listed, not an error', () => {
    const { verdict, ignored } = authenticationFromHeaders(
      'Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=a.example\r\nAuthentication-Results: mx.example.org; spf=pass smtp.mailfrom=(((\r\n',
      mx,
    );
    assert.deepEqual(verdict, { spf: { result: 'pass', domain: 'a.example' } });
    assert.equal(ignored.length, 1);
  });

  it('takes SPF from smtp.mfrom, the legacy name real sealers still write, as from smtp.mailfrom', () => {
    const { verdict } = authenticationFromHeaders('Authentication-Results: mx.example.org; spf=pass smtp.mfrom=jqd@D1.example\r\n', mx);
    assert.deepEqual(verdict, { spf: { result: 'pass', domain: 'd1.example' } });
  });

  it("prefers the MAIL FROM's SPF result to the HELO's in one field", () => {
    const { verdict, ignored } = authenticationFromHeaders('Authentication-Results: mx.example.org; spf=none smtp.helo=mx.a.example; spf=pass smtp.mailfrom=alice@a.example\r\n', mx);
    assert.deepEqual(verdict, { spf: { result: 'pass', domain: 'a.example' } });
    assert.match(ignored[0]?.reason ?? '', /spf=none not used: the SPF result for the MAIL FROM in this field is used, not the one for the HELO/);
  });

  it('a field with two SPF results for the MAIL FROM verifies nothing (an MTA writes one)', () => {
    const { verdict, ignored } = authenticationFromHeaders('Authentication-Results: mx.example.org; spf=fail smtp.mailfrom=a.example; spf=pass smtp.mailfrom=a.example\r\n', mx);
    assert.deepEqual(verdict, {});
    assert.match(ignored[0]?.reason ?? '', /verifies nothing: two SPF results for the MAIL FROM/);
  });

  // A border that writes the MAIL FROM into its comment unescaped (as in "domain of X designates
  // …"): a quoted local part with ")" ends the comment early, and the rest reads as results.
  const cut = (sender: string) =>
    `Authentication-Results: mx.example.org;\r\n spf=fail (mx.example.org: domain of ${sender} does not designate 203.0.113.9 as permitted sender) smtp.mailfrom=${sender}\r\n`;
  for (const [name, sender] of [
    ['an SPF pass', '"a);spf=pass ("@victim.example'],
    ['a DKIM pass', '"a);dkim=pass header.d=victim.example ("@victim.example'],
    ['an SPF pass with its own identity', '"a);spf=pass smtp.mailfrom=victim.example ("@victim.example'],
  ] as const) {
    it(`a sender's quoted local part that cuts the border's comment short cannot make ${name}: the field verifies nothing`, () => {
      let verdict: AuthenticationVerdict;
      try {
        const read = authenticationFromHeaders(cut(sender), mx);
        verdict = read.verdict;
        assert.match(read.ignored.at(-1)?.reason ?? '', /verifies nothing/);
      } catch (error) {
        // Or the field is malformed (a property given twice): refused, which verifies nothing either.
        assert.ok(error instanceof OutboundPoolsError && error.code === 'invalid-headers', String(error));
        verdict = {};
      }
      assert.deepEqual(verdict, {});
      const decision = decideFromVerdicts(
        { mailFrom: sender, rcptTo: ['bob@northwind.example'], authentication: verdict },
        {},
        { policy: createPolicy({ acceptedDomains: ['contoso.com'] }), now: new Date(0) },
      );
      assert.equal(decision.pool, 'relay');
    });
  }

  it('a quoted local part written whole into a comment (an even number of quotes) is read as usual', () => {
    const { verdict } = authenticationFromHeaders(
      'Authentication-Results: mx.example.org; spf=pass (mx.example.org: domain of "john doe"@a.example designates 203.0.113.9 as permitted sender) smtp.mailfrom="john doe"@a.example; dkim=none (message not signed)\r\n',
      mx,
    );
    assert.deepEqual(verdict, { spf: { result: 'pass', domain: 'a.example' } });
  });

  for (const [name, mailfrom] of [
    ['absent', ''],
    ['an empty quoted string', ' smtp.mailfrom=""'],
    ['"<>"', ' smtp.mailfrom="<>"'],
    ['<> unquoted (as Gmail and Exchange Online write it)', ' smtp.mailfrom=<>'],
    ['<> before a comment', ' smtp.mailfrom=<>(bounce)'],
  ] as const) {
    it(`uses the HELO domain for SPF when smtp.mailfrom is ${name} (a null sender), marked as the HELO identity`, () => {
      const { verdict } = authenticationFromHeaders(`Authentication-Results: mx.example.org; spf=pass${mailfrom} smtp.helo=MX.A.example\r\n`, mx);
      assert.deepEqual(verdict, { spf: { result: 'pass', domain: 'mx.a.example', identity: 'helo' } });
    });
  }

  it("reads a trusted border's bounce as Gmail writes it (spf=none smtp.mailfrom=<>): no SPF identity, the DKIM result kept", () => {
    const { verdict, ignored } = authenticationFromHeaders(
      'Authentication-Results: mx.google.com;\r\n       dkim=pass header.i=@gmail.com header.s=20230601;\r\n       spf=none smtp.mailfrom=<>;\r\n       dmarc=pass header.from=gmail.com\r\n',
      { authservIds: ['mx.google.com'] },
    );
    assert.deepEqual(verdict, { dkim: [{ result: 'pass', domain: 'gmail.com', selector: '20230601' }], dmarc: { result: 'pass', domain: 'gmail.com' } });
    assert.equal(ignored.length, 1);
    assert.match(ignored[0]!.reason, /spf=none names no domain/);
  });

  for (const [name, value] of [
    ['glued to a token', 'smtp.mailfrom=<>x.example'],
    ['an address in angle brackets', 'smtp.mailfrom=<a@b.example>'],
    ['a lone "<"', 'smtp.mailfrom=<'],
  ] as const) {
    it(`still refuses a trusted field whose smtp.mailfrom is ${name}`, () => {
      assert.throws(() => authenticationFromHeaders(`Authentication-Results: mx.example.org; spf=pass ${value}\r\n`, mx), /Malformed Authentication-Results/);
    });
  }

  const unused: [name: string, results: string, pattern: RegExp][] = [
    ['an SPF result that names no domain (the core would take it for the sender)', 'spf=pass', /verifies nothing: spf=pass names no identity/],
    ['an SPF result whose smtp.mailfrom has no domain name', 'spf=pass smtp.mailfrom=alice@', /smtp.mailfrom="alice@" has no domain name/],
    ['an SPF result that is not an SPF result', 'spf=policy smtp.mailfrom=a.example', /"policy" is not an SPF result/],
    ['the legacy "hardfail"', 'spf=hardfail smtp.mailfrom=a.example', /"hardfail" is not an SPF result/],
    ['a DKIM result without header.d or header.i', 'dkim=none (message not signed)', /dkim=none names no signing domain/],
    ['a DKIM pass without header.d or header.i', 'dkim=pass', /verifies nothing: dkim=pass names no signing domain/],
    ['a DKIM result whose header.d is not a domain name', 'dkim=pass header.d=none header.i=@a.example', /header.d="none" has no domain name/],
    ['a DKIM result that is not a DKIM result', 'dkim=hardfail header.d=a.example', /"hardfail" is not a DKIM result/],
    ['a DKIM result of method version 2', 'dkim/2=pass header.d=a.example', /dkim\/2=pass: version 2 of dkim is not known/],
    ['a DMARC result whose header.from is not a domain', 'dmarc=pass header.from=[192.0.2.1]', /header.from="\[192.0.2.1\]" has no domain name/],
    ['an ARC result that is not a result', 'arc=maybe', /"maybe" is not an ARC result/],
  ];
  for (const [name, results, pattern] of unused) {
    it(`does not use ${name}, and says so in ignored`, () => {
      const { verdict, ignored } = authenticationFromHeaders(`Authentication-Results: mx.example.org; ${results}\r\n`, mx);
      assert.deepEqual(verdict, {});
      assert.equal(ignored.length, 1);
      assert.equal(ignored[0]?.authservId, 'mx.example.org');
      assert.match(ignored[0]?.reason ?? '', pattern);
    });
  }

  it('does not use, nor list, results of methods the verdict has no place for (iprev, auth)', () => {
    assert.deepEqual(authenticationFromHeaders('Authentication-Results: mx.example.org; iprev=pass policy.iprev=192.0.2.1; auth=pass smtp.auth=a@a.example\r\n', mx), {
      verdict: {},
      ignored: [],
    });
  });

  it("takes the DKIM domain from header.i's domain when there is no header.d, and the selector from header.s", () => {
    const { verdict } = authenticationFromHeaders('Authentication-Results: mx.example.org; dkim=pass header.i=list+bounce@Lists.Example header.s=sel-2024\r\n', mx);
    assert.deepEqual(verdict, { dkim: [{ result: 'pass', domain: 'lists.example', selector: 'sel-2024' }] });
  });

  it('normalises domains to lowercase A-labels', () => {
    const { verdict } = authenticationFromHeaders('Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=Alice@Bücher.Example; dkim=pass header.d="BÜCHER.example"; dmarc=pass header.from=Bücher.example\r\n', mx);
    assert.deepEqual(verdict, {
      spf: { result: 'pass', domain: 'xn--bcher-kva.example' },
      dkim: [{ result: 'pass', domain: 'xn--bcher-kva.example' }],
      dmarc: { result: 'pass', domain: 'xn--bcher-kva.example' },
    });
  });

  it('maps results case-insensitively', () => {
    const { verdict } = authenticationFromHeaders('Authentication-Results: mx.example.org; SPF=PASS SMTP.MailFrom=a.example; DKIM=TempError header.d=a.example; ARC=Fail; DMARC=PermError\r\n', mx);
    assert.deepEqual(verdict, {
      spf: { result: 'pass', domain: 'a.example' },
      dkim: [{ result: 'temperror', domain: 'a.example' }],
      arc: { result: 'fail' },
      dmarc: { result: 'permerror' },
    });
  });

  it('gives an ARC verdict without a sealer (Authentication-Results does not name it)', () => {
    const { verdict } = authenticationFromHeaders('Authentication-Results: mx.example.org; arc=pass ("google.com:s=arc-20160816:i=1") smtp.remote-ip=192.0.2.1\r\n', mx);
    assert.deepEqual(verdict, { arc: { result: 'pass' } });
    assert.equal(verdict.arc?.sealer, undefined);
  });

  it('reads a "none" field as no verdict at all', () => {
    assert.deepEqual(authenticationFromHeaders('Authentication-Results: mx.example.org 1; none\r\n', mx), { verdict: {}, ignored: [] });
  });

  it('reads the header block as bytes the same as a string, and stops at the body', () => {
    const message = 'Authentication-Results: mx.example.org;\r\n  spf=pass smtp.mailfrom=a.example\r\n\r\nAuthentication-Results: mx.example.org; spf=fail smtp.mailfrom=a.example\r\n';
    const fromText = authenticationFromHeaders(message, mx);
    assert.deepEqual(fromText, { verdict: { spf: { result: 'pass', domain: 'a.example' } }, ignored: [] });
    assert.deepEqual(authenticationFromHeaders(new TextEncoder().encode(message), mx), fromText);
  });

  it('refuses headers that are not a string or bytes with invalid-headers', () => {
    expectRefused(() => authenticationFromHeaders(42 as unknown as string, mx), 'invalid-headers', /headers must be a string or a Uint8Array/, 'number');
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

/** Runs `run`; passes when it returns or throws an OutboundPoolsError, fails on anything else. */
function returnsOrRefuses<T>(run: () => T): T | OutboundPoolsError {
  try {
    return run();
  } catch (error) {
    if (error instanceof OutboundPoolsError) {
      assert.equal(error.code, 'invalid-headers');
      return error;
    }
    throw error;
  }
}

const isKeyword = (text: string): boolean => /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/.test(text);

/** Invariants of every parse that returns. */
function checkParsed(parsed: ParsedAuthenticationResults): void {
  assert.equal(typeof parsed.authservId, 'string');
  if (!parsed.trusted) {
    assert.match(parsed.reason, /is not one of the trusted ids/);
    return;
  }
  for (const entry of parsed.results) {
    assert.ok(isKeyword(entry.method), `method ${entry.method}`);
    assert.ok(isKeyword(entry.result), `result ${entry.result}`);
    for (const key of Object.keys(entry.properties)) {
      const [ptype = '', property = '', ...rest] = key.split('.');
      assert.ok(isKeyword(ptype) && isKeyword(property) && rest.length === 0, `property ${key}`);
    }
  }
}

// Pieces of Authentication-Results values, to make random ones that get far into the grammar.
const FRAGMENTS = [
  'mx.example.org', 'MX.Example.Org', 'attacker.example', '"mx.example.org"', ' ', '\t', '\r\n ', '\n\t', '\r\n', '\r', '\n', ';', '=', '.', '/', '@', '"', '\\', '(', ')',
  'none', 'spf', 'dkim', 'dmarc', 'arc', 'reason', 'pass', 'fail', 'smtp', 'header', 'mailfrom', 'helo', 'd', 'i', 's', 'b', 'from',
  '1', '2', 'example.net', 'a@example.net', '-', ':', '[', ']', '<', '>', ',', '\u0000', '\u007f', 'é', '😀', '\ud800',
];
const arValue = fc.string({ unit: fc.constantFrom(...FRAGMENTS), maxLength: 60 });
const arbitraryText = fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 200 }), arValue);

// Structured results and a serialiser that writes them with random CFWS, folding, quoting and case.
interface Generated {
  readonly authservId: string;
  readonly version?: number;
  readonly results: readonly AuthenticationMethodResult[];
}

const word = fc.stringMatching(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?$/);
const methodName = fc.oneof(fc.constantFrom('spf', 'dkim', 'dmarc', 'arc', 'iprev', 'auth', 'SPF', 'Dkim'), word);
const resultName = fc.oneof(fc.constantFrom('pass', 'fail', 'none', 'softfail', 'neutral', 'temperror', 'permerror', 'policy', 'PASS'), word);
// Text a quoted string can hold: no control characters but tab (and no lone surrogates).
const quotable = fc.string({ unit: 'grapheme', maxLength: 20 }).map((text) => text.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, ''));
const propertyValue = fc.oneof(
  fc.domain(),
  fc.emailAddress(),
  fc.domain().map((domain) => `@${domain}`),
  fc.ipV6(),
  fc.stringMatching(/^[A-Za-z0-9+/]{8}$/),
  fc.tuple(quotable, fc.domain()).map(([local, domain]) => `"${local.replace(/["\\]/g, '\\$&')}"@${domain}`),
  quotable,
);
const authservId = fc.oneof(fc.domain(), quotable.map((text) => text.trim()).filter((text) => text !== '' && !/[\u0000-\u001f]/.test(text)));
const methodResult = fc
  .record(
    {
      method: methodName,
      version: fc.integer({ min: 0, max: 999 }),
      result: resultName,
      reason: quotable,
      properties: fc.uniqueArray(fc.tuple(word, word, propertyValue), { maxLength: 4, selector: ([ptype, property]) => `${ptype}.${property}`.toLowerCase() }),
    },
    { requiredKeys: ['method', 'result', 'properties'] },
  )
  .map(({ method, version, result: outcome, reason, properties }) => ({ method, version, result: outcome, reason, properties }));
const generated = fc.record({ authservId, version: fc.option(fc.integer({ min: 0, max: 99 }), { nil: undefined }), results: fc.array(methodResult, { maxLength: 4 }) });

const comment: fc.Arbitrary<string> = fc.letrec<{ comment: string }>((tie) => ({
  comment: fc
    .array(fc.oneof({ maxDepth: 3 }, fc.constantFrom('x', ' ', 'a;b=c', '"', '.', '@', '\\(', '\\)', '\\\\', '\r\n ', 'é'), tie('comment')), { maxLength: 4 })
    .map((parts) => `(${parts.join('')})`),
})).comment;
const cfwsPiece = fc.oneof(fc.constantFrom(' ', '\t', '  ', '\r\n ', '\r\n\t', '\n '), comment);
const TOKEN_TEXT = /^[!#$%&'*+\-.^_`{|}~0-9A-Za-z]+$/;
const PVALUE_TEXT = /^[!#$%&'*+\-.^_`{|}~0-9A-Za-z@:/[\]?=\u0080-\uffff]+$/;

/** Serialises `value` with choices drawn from `pick`, a stream of random numbers. */
function serialise(value: Generated, pick: () => number, pieces: () => string): string {
  const optional = (): string => (pick() < 0.5 ? '' : pieces());
  const required = (): string => pieces();
  const mixCase = (text: string): string => [...text].map((char) => (pick() < 0.3 ? char.toUpperCase() : char)).join('');
  const quote = (text: string): string => `"${text.replace(/["\\]/g, '\\$&')}"`;
  const token = (text: string): string => (TOKEN_TEXT.test(text) && pick() < 0.7 ? text : quote(text));
  const pvalue = (text: string): string => (PVALUE_TEXT.test(text) && pick() < 0.7 ? text : quote(text));
  let out = optional() + token(value.authservId);
  if (value.version !== undefined) out += required() + String(value.version);
  if (value.results.length === 0) out += `${optional()};${optional()}${mixCase('none')}`;
  for (const entry of value.results) {
    out += `${optional()};${optional()}${mixCase(entry.method)}`;
    if (entry.version !== undefined) out += `${optional()}/${optional()}${entry.version}`;
    out += `${optional()}=${optional()}${mixCase(entry.result)}`;
    if (entry.reason !== undefined) out += `${required()}${mixCase('reason')}${optional()}=${optional()}${token(entry.reason)}`;
    for (const [key, text] of Object.entries(entry.properties)) {
      const [ptype, property] = key.split('.') as [string, string];
      out += `${required()}${mixCase(ptype)}${optional()}.${optional()}${mixCase(property)}${optional()}=${optional()}${pvalue(text)}`;
    }
  }
  return out + optional() + (pick() < 0.2 ? '\r\n' : '');
}

/** What the parser should return for `value`: names lowercased, everything else as generated. */
function expected(value: Generated): ParsedAuthenticationResults {
  return {
    trusted: true,
    authservId: value.authservId,
    ...(value.version === undefined ? {} : { version: value.version }),
    results: value.results.map((entry) => ({
      ...entry,
      method: entry.method.toLowerCase(),
      result: entry.result.toLowerCase(),
    })),
  };
}

const structured = generated.map(
  (value): Generated => ({
    authservId: value.authservId,
    ...(value.version === undefined ? {} : { version: value.version }),
    results: value.results.map((entry) => {
      const properties: Record<string, string> = {};
      for (const [ptype, property, text] of entry.properties) properties[`${ptype}.${property}`.toLowerCase()] = text;
      return {
        method: entry.method,
        ...(entry.version === undefined ? {} : { version: entry.version }),
        result: entry.result,
        ...(entry.reason === undefined ? {} : { reason: entry.reason }),
        properties,
      };
    }),
  }),
);

describe('parseArcAuthenticationResults: what a sealer recorded (RFC 8617 §4.1.1)', () => {
  it('reads the instance, the authserv-id and the results, with or without the field name, folded', () => {
    const read = parseArcAuthenticationResults('ARC-Authentication-Results: i=2; lists.example;\r\n\tspf=pass smtp.mailfrom=alice@Fabrikam.example;\r\n\tdkim=pass header.d=fabrikam.example header.s=k1\r\n');
    assert.deepEqual(read, {
      ok: true,
      instance: 2,
      authservId: 'lists.example',
      spf: { result: 'pass', domain: 'fabrikam.example' },
      dkim: [{ result: 'pass', domain: 'fabrikam.example', selector: 'k1' }],
      notes: [],
    });
    assert.deepEqual(parseArcAuthenticationResults(' i = 1 (first) ; lists.example; none'), { ok: true, instance: 1, authservId: 'lists.example', notes: [] });
  });
  for (const [name, value, pattern] of [
    ['no instance', 'lists.example; spf=pass smtp.mailfrom=a.example', /expected the instance "i=" first/],
    ['instance 0', 'i=0; lists.example; spf=pass smtp.mailfrom=a.example', /not 1 to 50/],
    ['instance 51', 'i=51; lists.example; spf=pass smtp.mailfrom=a.example', /not 1 to 50/],
    ['instance of three digits', 'i=001; lists.example; spf=pass smtp.mailfrom=a.example', /not 1 to 50/],
    ['no ";" after the instance', 'i=1 lists.example; spf=pass smtp.mailfrom=a.example', /expected ";" after the ARC instance/],
    ['a malformed payload', 'i=1; lists.example; spf=pass smtp.mailfrom=(', /malformed ARC-Authentication-Results value/],
    ['a comment cut short by a quote', 'i=1; lists.example; spf=fail (domain of "a);spf=pass ("@a.example) smtp.mailfrom=a.example', /odd number of double quotes/],
    ['two SPF results for the MAIL FROM', 'i=1; lists.example; spf=fail smtp.mailfrom=a.example; spf=pass smtp.mailfrom=a.example', /two SPF results for the MAIL FROM/],
    ['authres-version 2', 'i=1; lists.example 2; spf=pass smtp.mailfrom=a.example', /authres-version 2 is not 1/],
  ] as const) {
    it(`records nothing on ${name}`, () => {
      const read = parseArcAuthenticationResults(value);
      assert.equal(read.ok, false);
      assert.match((read as { why: string }).why, pattern);
    });
  }
  it('marks an SPF result for the HELO identity, and notes results it does not use', () => {
    const read = parseArcAuthenticationResults('i=1; lists.example; spf=pass smtp.helo=mx.a.example; dkim=pass header.d=none');
    assert.ok(read.ok);
    assert.deepEqual(read.spf, { result: 'pass', domain: 'mx.a.example', identity: 'helo' });
    assert.equal(read.dkim, undefined);
    assert.match(read.notes.join('\n'), /header.d="none" has no domain name/);
  });
});

describe('parseAuthenticationResults: properties', () => {
  it('returns a result or throws OutboundPoolsError for any string, never anything else', () => {
    fc.assert(
      fc.property(arbitraryText, fc.constantFrom(['mx.example.org'], ['MX.EXAMPLE.ORG', 'attacker.example']), (value, authservIds) => {
        const outcome = returnsOrRefuses(() => parseAuthenticationResults(value, { authservIds }));
        if (!(outcome instanceof OutboundPoolsError)) checkParsed(outcome);
      }),
      { numRuns: 2000 },
    );
  });

  it('returns a verdict or throws OutboundPoolsError for any header block of random Authentication-Results fields', () => {
    fc.assert(
      fc.property(fc.array(arValue, { maxLength: 5 }), (values) => {
        const headers = values.map((value) => `Authentication-Results: ${value}\r\n`).join('');
        returnsOrRefuses(() => authenticationFromHeaders(headers, trusting('mx.example.org')));
      }),
      { numRuns: 1000 },
    );
  });

  it('reads back the structure it was written from, whatever the comments, folds, quoting and case', () => {
    fc.assert(
      fc.property(structured, fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })), fc.infiniteStream(cfwsPiece), (value, numbers, pieces) => {
        const pick = (): number => numbers.next().value as number;
        const piece = (): string => pieces.next().value as string;
        const text = serialise(value, pick, piece);
        assert.deepEqual(parseAuthenticationResults(text, trusting(value.authservId)), expected(value), `value: ${JSON.stringify(text)}`);
      }),
      { numRuns: 1000 },
    );
  });

  it('lets no untrusted or unreadable field change the verdict', () => {
    const trustedField = structured.map((value) => ({ ...value, authservId: 'mx.example.org' }));
    const untrustedField = fc.oneof(
      structured.filter((value) => value.authservId.toLowerCase() !== 'mx.example.org').map((value) => ({ value, raw: false })),
      arValue.map((value) => ({ value, raw: true })),
    );
    fc.assert(
      fc.property(
        fc.array(trustedField, { maxLength: 3 }),
        fc.array(fc.tuple(fc.nat(), untrustedField), { maxLength: 3 }),
        fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })),
        fc.infiniteStream(cfwsPiece),
        (trustedValues, inserts, numbers, pieces) => {
          const pick = (): number => numbers.next().value as number;
          const piece = (): string => pieces.next().value as string;
          // Values without line breaks: parseHeaders unfolds lines and would otherwise see new fields in a bare LF.
          const fieldOf = (text: string): string => `Authentication-Results: ${text.replace(/\r?\n(?=[ \t])/g, '').replace(/\r\n$/, '')}\r\n`;
          const trustedFields = trustedValues.map((value) => fieldOf(serialise(value, pick, piece)));
          const base = authenticationFromHeaders(trustedFields.join(''), trusting('mx.example.org'));
          const all = [...trustedFields];
          for (const [at, insert] of inserts) {
            const text = insert.raw ? String(insert.value).replace(/[\r\n]/g, ' ') : serialise(insert.value as Generated, pick, piece);
            // A random value that happens to name the trusted id is not untrusted: skip it.
            const alone = returnsOrRefuses(() => authenticationFromHeaders(fieldOf(text), trusting('mx.example.org')));
            if (alone instanceof OutboundPoolsError || alone.ignored.length !== 1 || alone.ignored[0]?.authservId?.toLowerCase() === 'mx.example.org') continue;
            all.splice(at % (all.length + 1), 0, fieldOf(text));
          }
          const mixed = authenticationFromHeaders(all.join(''), trusting('mx.example.org'));
          assert.deepEqual(mixed.verdict, base.verdict);
        },
      ),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Large inputs, parsed in a child process that is killed at the deadline: a regular expression
// that backtracks, or a quadratic loop, would not finish, and a test in this process could not
// be stopped.

const BIG = 1024 * 1024;
const HUNDRED_KB = 100 * 1024;

function repeatTo(unit: string, length: number): string {
  return unit.repeat(Math.ceil(length / unit.length)).slice(0, length);
}

const bigInputs: { name: string; value: string; outcome: RegExp }[] = [
  { name: '100 KB of valid DKIM results', value: `mx.example.org${' ; dkim=pass header.d=example.com header.s=s1 header.b=AbC/dE+f'.repeat(HUNDRED_KB / 60)}`, outcome: /^ok \d+$/ },
  { name: '1 MB of valid DKIM results', value: `mx.example.org${' ; dkim=pass header.d=example.com header.s=s1 header.b=AbC/dE+f'.repeat(BIG / 60)}`, outcome: /^ok \d+$/ },
  { name: 'a 1 MB property value', value: `mx.example.org; spf=pass smtp.mailfrom=${repeatTo('a', BIG)}@example.com`, outcome: /^ok 1$/ },
  { name: 'a 1 MB quoted reason full of quoted-pairs', value: `mx.example.org; dkim=fail reason="${repeatTo('\\"', BIG)}"`, outcome: /^ok 1$/ },
  { name: '1 MB of balanced nested comments', value: `mx.example.org ${'('.repeat(BIG / 2)}${')'.repeat(BIG / 2)}; none`, outcome: /^ok 0$/ },
  { name: '1 MB of unclosed comments', value: `mx.example.org ${'('.repeat(BIG)}`, outcome: /^invalid-headers: .*unterminated comment/ },
  { name: 'a 1 MB unterminated quoted string', value: `mx.example.org; dkim=fail reason="${repeatTo('a\\"', BIG)}`, outcome: /^invalid-headers: .*unterminated quoted string/ },
  { name: '1 MB of semicolons', value: `mx.example.org${';'.repeat(BIG)}`, outcome: /^invalid-headers: .*no results/ },
  { name: 'a 1 MB authserv-id', value: repeatTo('a.', BIG), outcome: /^invalid-headers: .*no results after the authserv-id/ },
  { name: '1 MB of folds', value: `mx.example.org;${'\r\n '.repeat(BIG / 3)}none`, outcome: /^ok 0$/ },
  { name: '1 MB of "a." after a method', value: `mx.example.org; spf=pass ${repeatTo('a.', BIG)}`, outcome: /^invalid-headers: / },
  { name: '1 MB of "x=" pairs', value: `mx.example.org; spf=pass ${repeatTo('x.y=a=', BIG)}`, outcome: /^ok 1$/ },
  { name: '1 MB of fragments', value: repeatTo('mx.example.org; dkim=(a"b\\)c;.=@ ', BIG), outcome: /^invalid-headers: / },
];

const CHILD = `
import { parseAuthenticationResults } from ${JSON.stringify(new URL('../../src/providers/authentication-results.ts', import.meta.url).href)};
let input = '';
process.stdin.setEncoding('utf8');
for await (const chunk of process.stdin) input += chunk;
const out = [];
for (const value of JSON.parse(input)) {
  try {
    const parsed = parseAuthenticationResults(value, { authservIds: ['mx.example.org'] });
    out.push(parsed.trusted ? 'ok ' + parsed.results.length : 'untrusted');
  } catch (error) {
    out.push((error.code ?? error.name) + ': ' + error.message);
  }
}
process.stdout.write(JSON.stringify(out));
`;

/** Parses each value in a child process killed after `deadlineMs`; resolves to one outcome per value. */
function parseInChild(values: readonly string[], deadlineMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the parser did not finish within ${deadlineMs} ms`));
    }, deadlineMs);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`the child exited with ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout) as string[]);
    });
    child.stdin.end(JSON.stringify(values));
  });
}

describe('parseAuthenticationResults: large inputs', () => {
  it('finishes on 100 KB and 1 MB values, valid and adversarial, within the deadline', { timeout: 20_000 }, async () => {
    const outcomes = await parseInChild(
      bigInputs.map((input) => input.value),
      15_000,
    );
    bigInputs.forEach((input, index) => {
      assert.match(outcomes[index] ?? '', input.outcome, input.name);
    });
  });

  it('reads a 1 MB value in this process too, with every result', { timeout: 5_000 }, () => {
    const count = Math.floor(BIG / 60);
    const results = trustedResults(`mx.example.org${' ; dkim=pass header.d=example.com header.s=s1 header.b=AbC/dE+f'.repeat(count)}`, 'mx.example.org');
    assert.equal(results.length, count);
    assert.deepEqual(results[count - 1], result('dkim', 'pass', { 'header.d': 'example.com', 'header.s': 's1', 'header.b': 'AbC/dE+f' }));
  });

  it('maps a header block near the 1 MB limit of many fields, trusted and not', { timeout: 5_000 }, () => {
    const trustedField = 'Authentication-Results: mx.example.org; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com\r\n';
    const attackerField = 'Authentication-Results: attacker.example; dkim=pass header.d=bank.example\r\n';
    const pairs = Math.floor((BIG - 1024) / (trustedField.length + attackerField.length));
    const { verdict, ignored } = authenticationFromHeaders((trustedField + attackerField).repeat(pairs), trusting('mx.example.org'));
    // Only the newest trusted field is read; every other field is listed, unread.
    assert.deepEqual(verdict, { dkim: [{ result: 'pass', domain: 'example.com' }], spf: { result: 'pass', domain: 'example.com' } });
    assert.equal(ignored.length, pairs + (pairs - 1));
  });
});

describe('Authentication-Results parsing takes linear time (doubling series)', () => {
  const options = { authservIds: ['mx.example.org'] };
  const parse = (value: unknown) => {
    try {
      return parseAuthenticationResults(value as string, options);
    } catch (error) {
      if (error instanceof OutboundPoolsError) return error;
      throw error;
    }
  };
  const families: [what: string, base: number, input: (size: number) => string][] = [
    ['results', 64, (n) => `mx.example.org${'; dkim=pass header.d=a.example header.s=s1'.repeat(n)}`],
    ['nested comments', 2048, (n) => `mx.example.org ${'('.repeat(n)}${')'.repeat(n)}; none`],
    ['unclosed comments', 2048, (n) => `mx.example.org ${'('.repeat(n)}`],
    ['quoted-pairs in a reason', 1024, (n) => `mx.example.org; dkim=fail reason="${'\\"'.repeat(n)}"`],
    ['an unterminated quoted string', 1024, (n) => `mx.example.org; dkim=fail reason="${'a\\"'.repeat(n)}`],
    ['folds', 1024, (n) => `mx.example.org;${'\r\n '.repeat(n)}none`],
    ['properties of one result', 32, (n) => `mx.example.org; spf=pass ${Array.from({ length: n }, (_, i) => `x.p${i}=v`).join(' ')}`],
    ['a long property value', 2048, (n) => `mx.example.org; dkim=pass header.b=${'A/b+'.repeat(n)}`],
    ['semicolons', 4096, (n) => `mx.example.org${';'.repeat(n)}`],
  ];
  for (const [what, base, input] of families) {
    it(`parseAuthenticationResults: ${what}`, () => {
      assertLinear(what, base, input, parse);
    });
  }

  for (const [what, base, input] of [
    ['results', 64, (n: number) => `i=1; lists.example${'; dkim=pass header.d=a.example header.s=s1'.repeat(n)}`],
    ['comments before the instance', 2048, (n: number) => `${'(x) '.repeat(n)}i=1; lists.example; none`],
    ['unclosed comments', 2048, (n: number) => `i=1; lists.example ${'('.repeat(n)}`],
  ] as const) {
    it(`parseArcAuthenticationResults: ${what}`, () => {
      assertLinear(what, base, input, (value) => parseArcAuthenticationResults(value as string));
    });
  }

  it('authenticationFromHeaders: many fields, trusted and untrusted, only the newest trusted read', () => {
    const field = 'Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=a.example\r\nAuthentication-Results: other.example; dkim=pass header.d=b.example\r\n';
    assertLinear('fields', 32, (n) => field.repeat(n), (headers) => authenticationFromHeaders(headers as string, options));
  });
});
