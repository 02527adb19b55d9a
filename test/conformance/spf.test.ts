// The RFC 7208 SPF test suite (openspf.org, release 2014.04, as shipped in pyspf): every case run
// through the library — its zone in the static resolver, the mailauth authenticator inside
// decidePool, at the case's client address, HELO and MAIL FROM — and compared with the suite's
// result. The disagreements are listed by case name below; for each, the test shows where it
// comes from (mailauth run directly on the same input gives the same result, or node:dns itself
// refuses the name), so the list cannot silently go stale.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { createRequire } from 'node:module';
import { spf } from 'mailauth';
import { decidePool } from '../../src/decide/gather.js';
import { createMailauthAuthenticator } from '../../src/mailauth/authenticator.js';
import { spfCases, type SpfCase } from './suites.js';

const MAILAUTH_VERSION = (createRequire(import.meta.url)('mailauth/package.json') as { version: string }).version;
const MTA = 'mx.conformance.example';

/** Cases where mailauth itself, lenient by default, gives another result than the suite: shown by running it directly. Its strict mode agrees on all of them. */
const MAILAUTH_OWN: Readonly<Record<string, string>> = {
  'bare-ip6': 'mailauth takes "ip6" without a network as no match; RFC 7208 §5.6 makes it a syntax error (permerror)',
  'exp-syntax-error': 'mailauth does not check the syntax of the exp= modifier, so a broken one is no error',
  'exp-twice': 'mailauth accepts exp= twice; RFC 7208 §6 allows each modifier once (permerror)',
  'exp-only-macro-char': 'mailauth does not check the macro-string of exp=',
  'invalid-hello-macro': 'mailauth checks the domain after macro expansion ("Invalid domain"); RFC 7208 §7.1 checks the domain-spec before it',
  'hello-domain-literal': 'as invalid-hello-macro: %{h} of a domain literal HELO fails mailauth\'s check after expansion',
  'require-valid-helo': 'as invalid-hello-macro: %{h} of a single-label HELO fails mailauth\'s check after expansion',
};

/** Cases where node:dns itself refuses the name the suite expects to be looked up. */
const NODE_DNS_REFUSES: Readonly<Record<string, string>> = {
  'macro-mania-in-domain': 'macro%percent  space%20url-space.example.com',
};

function decideSpf(test: SpfCase, strict: boolean) {
  return decidePool(
    {
      // The outbound sender is any forward: the case's MAIL FROM is the one the message arrived with.
      mailFrom: 'forwarded@conformance.example',
      rcptTo: ['lee@northwind.example'],
      headers: 'From: someone@conformance.example\r\n\r\nbody\r\n',
      ingress: { ip: test.host, helo: test.helo, mailFrom: test.mailfrom },
    },
    { providers: { authenticator: createMailauthAuthenticator({ resolver: test.resolver, mta: MTA, strict }) }, now: new Date(Date.UTC(2014, 3, 1)) },
  );
}

async function libraryResult(test: SpfCase, strict = false): Promise<string> {
  const decision = await decideSpf(test, strict);
  const verdict = decision.verdicts.authentication;
  assert.equal(verdict.state, 'provided', JSON.stringify(verdict));
  return verdict.state === 'provided' ? String(verdict.value.spf?.result) : '';
}

async function mailauthResult(test: SpfCase): Promise<string> {
  // As the adapter calls it: an address given as HELO is written as an address literal.
  const helo = /^[0-9.]+$|:/.test(test.helo) ? `[${test.helo}]` : test.helo;
  const result = await spf({ sender: test.mailfrom, ip: test.host, helo, resolver: test.resolver as never, mta: MTA });
  return result.status.result;
}

describe(`RFC 7208 SPF suite through decidePool with the mailauth authenticator (mailauth ${MAILAUTH_VERSION})`, () => {
  const cases = spfCases();
  const listed = new Set([...Object.keys(MAILAUTH_OWN), ...Object.keys(NODE_DNS_REFUSES)]);

  it('the suite has 203 cases, and every listed disagreement names one of them', () => {
    assert.equal(cases.length, 203);
    for (const name of listed) assert.ok(cases.some((test) => test.name === name), name);
  });

  it("with the authenticator's strict option, mailauth agrees on every case listed as its own", async () => {
    for (const name of Object.keys(MAILAUTH_OWN)) {
      const test = cases.find((candidate) => candidate.name === name)!;
      assert.ok(test.results.includes(await libraryResult(test, true)), name);
    }
  });

  for (const test of cases) {
    const expected = test.results.join(' or ');
    if (MAILAUTH_OWN[test.name] !== undefined) {
      it(`${test.name} (${test.spec}): mailauth's own — ${MAILAUTH_OWN[test.name]}`, async () => {
        const result = await libraryResult(test);
        assert.ok(!test.results.includes(result), `now agrees (${result}): take ${test.name} off the list`);
        assert.equal(result, await mailauthResult(test), 'the library gives what mailauth gives on the same input');
      });
    } else if (NODE_DNS_REFUSES[test.name] !== undefined) {
      it(`${test.name} (${test.spec}): node:dns refuses the name (EBADNAME), mailauth then says permerror; the suite expects a lookup`, async () => {
        const result = await libraryResult(test);
        assert.equal(result, 'permerror');
        assert.equal(result, await mailauthResult(test));
        // node:dns refuses it before sending anything: no server is needed to see it.
        const node = new Resolver({ timeout: 200, tries: 1 });
        node.setServers(['127.0.0.1:9']);
        await assert.rejects(node.resolve(NODE_DNS_REFUSES[test.name]!, 'A'), { code: 'EBADNAME' });
      });
    } else {
      it(`${test.name} (${test.spec}): ${expected}`, async () => {
        assert.ok(test.results.includes(await libraryResult(test)), `expected ${expected}`);
      });
    }
  }
});
