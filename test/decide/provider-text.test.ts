// A provider's words reach reasons quoted (quoteText, src/errors.ts): at most MAX_QUOTED_LENGTH
// characters, control characters, line separators and bidi controls escaped. Reasons are logged
// by MTAs and printed a line each by the CLI: a provider error with "\r\n550 …" must not forge a
// line, and a 5 MB error message must not make a 5 MB reason.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideFromVerdicts, decidePool } from '../../src/decide/gather.js';
import type { Decision, Reason } from '../../src/decide/types.js';
import { MAX_QUOTED_LENGTH, quoteText } from '../../src/errors.js';
import type { Providers } from '../../src/providers/types.js';
import { explainDecision } from '../../src/cli/explain.js';
import { createPolicy } from '../../src/policy.js';

const FORGED = '\r\n550 5.7.1 forged line\n\u2028\u202e';
/** 5 MB of error text with line breaks throughout, a forged SMTP reply first. */
const HUGE = `resolver exploded${FORGED}${'x\r\n'.repeat(5_000_000 / 3)}`;
/** Room for the text around the quoted words in a reason ("The spam provider failed: …", the length note). */
const REASON_SLACK = 160;
const MESSAGE = { mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], headers: 'From: megan@contoso.com\r\nSubject: hi\r\n' };
const POLICY = { acceptedDomains: ['contoso.com'], spam: { threshold: 6 } };

function reason(decision: Decision, code: Reason['code']): Reason {
  const found = decision.reasons.find((entry) => entry.code === code);
  assert.ok(found !== undefined, `no ${code} in ${JSON.stringify(decision.reasons.map((entry) => entry.code))}`);
  return found;
}

/** A reason message that quotes a huge hostile text: bounded, on one line, with the forged reply escaped and not dropped. */
function assertQuoted(message: string, bound = MAX_QUOTED_LENGTH + REASON_SLACK): void {
  assert.ok(message.length <= bound, `a reason of ${message.length} characters`);
  assert.doesNotMatch(message, /[\r\n\u2028\u2029\u202e]/, 'a line break or bidi control in the reason');
  assert.match(message, /\\r\\n550 5\.7\.1 forged line\\n\\u2028\\u202e/);
}

function hostileError(): Error {
  return Object.assign(new Error(HUGE), { code: 'ESERVFAIL' });
}

describe('provider errors in reasons are bounded and control-escaped', () => {
  it('a spam provider rejecting with a 5 MB message with CR LF: the provider-failed reason is short, one line', async () => {
    const providers: Providers = { spam: { classify: async () => Promise.reject(hostileError()) } };
    const decision = await decidePool(MESSAGE, { policy: POLICY, providers });
    const failed = reason(decision, 'provider-failed');
    assertQuoted(failed.message);
    assert.match(failed.message, /^The spam provider failed: ESERVFAIL: resolver exploded\\r\\n550/);
    assert.match(failed.message, /… \(\d{7} characters\)\.$/);
  });

  it('a spam provider throwing at once: the same', async () => {
    const providers: Providers = {
      spam: {
        classify: () => {
          throw hostileError();
        },
      },
    };
    assertQuoted(reason(await decidePool(MESSAGE, { policy: POLICY, providers }), 'provider-failed').message);
  });

  it('a DNS resolver rejecting with a 5 MB message with CR LF: the dns-error reason is short, one line', async () => {
    const dns = Object.assign(async () => Promise.reject(hostileError()), {});
    const decision = await decidePool(MESSAGE, { policy: { ...POLICY, dns: { onError: 'high-risk' } }, providers: { dns } });
    const failed = reason(decision, 'dns-error');
    assertQuoted(failed.message);
    assert.equal(decision.pool, 'high-risk');
  });

  it('an error whose code is huge and has CR LF: the code is cut short too', async () => {
    const providers: Providers = { spam: { classify: async () => Promise.reject(Object.assign(new Error('boom'), { code: `E${FORGED}${'y'.repeat(1_000_000)}` })) } };
    const failed = reason(await decidePool(MESSAGE, { policy: POLICY, providers }), 'provider-failed');
    assert.ok(failed.message.length < 200, failed.message);
    assert.doesNotMatch(failed.message, /[\r\n]/);
  });

  it('a failed verdict passed to decideFromVerdicts with such an error: quoted the same', () => {
    const decision = decideFromVerdicts({ mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'] }, { spam: { state: 'failed', error: HUGE } }, { policy: POLICY });
    assertQuoted(reason(decision, 'provider-failed').message);
  });

  it("a rate limiter's restriction reason and until with CR LF are escaped in the sender-restricted reason", async () => {
    // Date.parse skips a parenthesised comment, CR LF and all: `until` is the limiter's text too.
    const restriction = { until: `Mon, 01 Jan 2035 00:00:00 GMT (${FORGED})`, reason: `abuse desk${FORGED}` };
    const providers: Providers = { rateLimiter: { consume: async () => ({ restriction, breaches: [], counted: false }), restriction: async () => restriction } };
    const decision = await decidePool(MESSAGE, { policy: POLICY, providers });
    const restricted = reason(decision, 'sender-restricted');
    assert.doesNotMatch(restricted.message, /[\r\n\u2028\u202e]/);
    assert.match(restricted.message, /abuse desk\\r\\n550/);
    // The CLI's explanation prints the limiter's verdict on a line of its own.
    const lines = explainDecision(decision, createPolicy(POLICY));
    for (const line of lines) assert.doesNotMatch(line, /[\r\n\u2028\u202e]/, line);
    assert.ok(lines.some((line) => line.includes('restricted until Mon, 01 Jan 2035 00:00:00 GMT (\\r\\n550')), lines.join('\n'));
  });

  it('an SRS rewriter throwing a 5 MB message: the srs-skipped reason is short, one line', () => {
    const rewriter = {
      forward: () => {
        throw new Error(HUGE);
      },
    };
    const decision = decideFromVerdicts(
      { mailFrom: 'alice@fabrikam.example', rcptTo: ['lee@example.net'] },
      { authentication: { state: 'given', value: { spf: { result: 'pass', domain: 'fabrikam.example' } } } },
      { policy: POLICY, srs: { rewriter, domain: 'contoso.com' } as never },
    );
    assertQuoted(reason(decision, 'srs-skipped').message);
  });
});

describe('quoteText', () => {
  const rows: readonly (readonly [string, string, string])[] = [
    ['plain text is kept as it is', 'connect ECONNREFUSED 127.0.0.1:11333', 'connect ECONNREFUSED 127.0.0.1:11333'],
    ['CR, LF and tab become \\r, \\n, \\t', 'a\r\nb\tc', 'a\\r\\nb\\tc'],
    ['other C0 controls, DEL and C1 controls become \\u escapes', 'a\u0000b\u007fc\u0085d\u001b[31m', 'a\\u0000b\\u007fc\\u0085d\\u001b[31m'],
    ['line and paragraph separators and bidi controls are escaped', 'a\u2028b\u2029c\u202ed\u2066e\u200ff\u061c', 'a\\u2028b\\u2029c\\u202ed\\u2066e\\u200ff\\u061c'],
    ['a lone surrogate is escaped, a pair is kept', 'a\ud800b😀c\udc00', 'a\\ud800b😀c\\udc00'],
    ['non-ASCII letters are kept', 'Bücher Ω 日本', 'Bücher Ω 日本'],
  ];
  for (const [what, input, expected] of rows) {
    it(what, () => assert.equal(quoteText(input), expected));
  }

  it('cuts after MAX_QUOTED_LENGTH characters and says how long the text was', () => {
    assert.equal(MAX_QUOTED_LENGTH, 256);
    const quoted = quoteText('a'.repeat(1_000));
    assert.equal(quoted, `${'a'.repeat(256)}… (1000 characters)`);
    assert.equal(quoteText('a'.repeat(256)), 'a'.repeat(256));
  });

  it('counts escapes in the bound, and never cuts a surrogate pair in two', () => {
    assert.ok(quoteText('\n'.repeat(1_000)).length <= 256 + 2 + ' … (1000 characters)'.length);
    const pairs = quoteText('😀'.repeat(300), 5);
    assert.equal(pairs, `${'😀'.repeat(3)}… (600 characters)`);
  });

  it('takes a bound of its own', () => {
    assert.equal(quoteText('abcdef', 3), 'abc… (6 characters)');
  });
});
