// ValiMail's ARC validation suite (arc_test_suite, arc-draft-validation-tests): every case run
// through the library — the suite's key records in the static resolver, the mailauth
// authenticator inside decidePool, at an injected clock — and the chain validation result
// (verdict.arc.result) compared with the suite's `cv`. Disagreements are listed by case name
// below; each test shows where one comes from, so the list cannot silently go stale.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { authenticate } from 'mailauth';
import { decidePool } from '../../src/decide/gather.js';
import { createMailauthAuthenticator } from '../../src/mailauth/authenticator.js';
import { createStaticResolver } from '../../src/providers/static-dns.js';
import { arcCases, type ArcCase } from './suites.js';

const MAILAUTH_VERSION = (createRequire(import.meta.url)('mailauth/package.json') as { version: string }).version;
/** The suite's messages are signed with t=12345 and no x=; the clock is the suite's last commit. */
const NOW = new Date(Date.UTC(2018, 10, 23));

/** Cases where mailauth itself gives another result than the suite: shown by running it directly. */
const MAILAUTH_OWN: Readonly<Record<string, string>> = {
  ams_fields_h_empty: 'mailauth refuses an ARC-Message-Signature with an empty h= (no header field signed); the suite takes it as valid',
  as_format_inv_tag_key: 'mailauth, lenient by default, skips an ARC-Seal tag with an invalid key that the suite fails (strict: agrees)',
  as_format_tags_dup: 'mailauth, lenient by default, accepts an ARC-Seal with a duplicated tag (strict: agrees)',
  as_format_tags_key_case: 'mailauth, lenient by default, accepts an ARC-Seal tag key in the wrong case (strict: agrees)',
  as_format_tags_sc: 'mailauth, lenient by default, accepts a stray semicolon in an ARC-Seal (strict: agrees)',
};

/**
 * Cases where the library's result is RFC 8617's and the suite, written against a draft, expects
 * none: a seal with cv=fail. RFC 8617 §5.2 step 2 (the newest seal) and step 3.C (an older one):
 * the chain is then "fail", which is what the library reports (it never verifies a forward).
 */
const RFC_8617_FAIL = new Set(['cv_fail_i1_as_cv_fail', 'cv_fail_i2_as2_fail', 'cv_fail_i2_as1_fail']);

function resolverOf(test: ArcCase) {
  return createStaticResolver(Object.fromEntries(Object.entries(test.txtRecords).map(([name, txt]) => [name, { TXT: [txt] }])));
}

function messageOf(test: ArcCase): string {
  return test.message.replace(/\r?\n/g, '\r\n');
}

async function libraryResult(test: ArcCase, strict = false): Promise<string> {
  const decision = await decidePool(
    { mailFrom: 'jqd@d1.example', rcptTo: ['lee@northwind.example'], headers: messageOf(test), ingress: { ip: '72.52.75.15', helo: 'segv.d1.example' } },
    { providers: { authenticator: createMailauthAuthenticator({ resolver: resolverOf(test), mta: 'mx.conformance.example', strict }) }, now: NOW },
  );
  const verdict = decision.verdicts.authentication;
  assert.equal(verdict.state, 'provided', JSON.stringify(verdict));
  return verdict.state === 'provided' ? (verdict.value.arc?.result ?? 'none') : '';
}

async function mailauthResult(test: ArcCase): Promise<string> {
  const result = await authenticate(messageOf(test), {
    resolver: resolverOf(test) as never,
    ip: '72.52.75.15',
    helo: 'segv.d1.example',
    sender: 'jqd@d1.example',
    mta: 'mx.conformance.example',
    disableBimi: true,
  });
  return result.arc ? result.arc.status.result : 'none';
}

describe(`ValiMail ARC validation suite through decidePool with the mailauth authenticator (mailauth ${MAILAUTH_VERSION})`, () => {
  const cases = arcCases();

  it('the suite has 171 cases, and every listed disagreement names one of them', () => {
    assert.equal(cases.length, 171);
    for (const name of [...Object.keys(MAILAUTH_OWN), ...RFC_8617_FAIL]) assert.ok(cases.some((test) => test.name === name), name);
  });

  it("with the authenticator's strict option, mailauth agrees on the four malformed ARC-Seals it accepts by default", async () => {
    for (const name of ['as_format_inv_tag_key', 'as_format_tags_dup', 'as_format_tags_key_case', 'as_format_tags_sc']) {
      const test = cases.find((candidate) => candidate.name === name)!;
      assert.equal(await libraryResult(test, true), test.cv, name);
    }
  });

  for (const test of cases) {
    if (MAILAUTH_OWN[test.name] !== undefined) {
      it(`${test.name}: mailauth's own — ${MAILAUTH_OWN[test.name]}`, async () => {
        const result = await libraryResult(test);
        assert.notEqual(result, test.cv, `now agrees (${result}): take ${test.name} off the list`);
        assert.equal(result, await mailauthResult(test), 'the library gives what mailauth gives on the same input');
      });
    } else if (RFC_8617_FAIL.has(test.name)) {
      it(`${test.name}: a seal with cv=fail fails the chain (RFC 8617 §5.2); the suite expects no result`, async () => {
        assert.equal(test.cv, '');
        assert.equal(await libraryResult(test), 'fail');
      });
    } else {
      it(`${test.name} (${test.description}): cv=${test.cv}`, async () => {
        assert.equal(await libraryResult(test), test.cv);
      });
    }
  }
});
