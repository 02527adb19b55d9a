// The bounds on what mailauth's DKIM verifier is given (src/mailauth/dkim-bounds.ts): real mail
// verifies as before, and a signature over a bound — which mailauth alone verifies — does not
// pass. Keys are generated here, messages signed and sealed with mailauth, DNS answered by
// createStaticResolver: no network.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rsaKey } from './keys.js';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { arc as verifyArc, dkimSign, dkimVerify, sealMessage } from 'mailauth';
import { createMailauthAuthenticator } from '../../src/mailauth/authenticator.js';
import { boundSignatures, hasLongLine, MAX_BODY_LINE, MAX_DKIM_SIGNATURES, MAX_HEADER_LINES, MAX_SIGNED_FIELDS } from '../../src/mailauth/dkim-bounds.js';
import { createStaticResolver } from '../../src/providers/static-dns.js';
import { decidePool } from '../../src/decide/gather.js';
import type { ProviderMessage } from '../../src/providers/types.js';

const fabrikamKey = rsaKey();
const listsKey = rsaKey();
const FABRIKAM_MX = '198.51.100.25';
const STRANGER = '203.0.113.9';
const resolver = createStaticResolver({
  'fabrikam.example': { TXT: ['v=spf1 ip4:198.51.100.0/24 -all'] },
  'k1._domainkey.fabrikam.example': { TXT: [fabrikamKey.record] },
  'lists.example': { TXT: ['v=spf1 -all'] },
  'arc1._domainkey.lists.example': { TXT: [listsKey.record] },
});
/** The test's clock: signatures are made and verified at it, and the messages are dated by it. */
const NOW = new Date('2026-11-23T09:20:12Z');
const DATE = NOW.toUTCString().replace('GMT', '+0000');

/** A message with `extra` header fields after the usual ones (each a line of its own unless folded). */
function message(extra: readonly string[] = []): string {
  return [
    'From: Alice <alice@fabrikam.example>',
    'To: megan@contoso.com',
    'Subject: Lunch on Friday?',
    `Date: ${DATE}`,
    'Message-ID: <lunch-42@fabrikam.example>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    ...extra,
    '',
    'Shall we meet at noon?',
    '',
  ].join('\r\n');
}

/** `raw` with a DKIM-Signature of fabrikam.example on top, over `headerList` (mailauth's default list when not given). */
async function signed(raw: string, headerList?: string): Promise<string> {
  // mailauth's type definitions lag its API (signatureData, headerList: README "DKIM signing").
  const { signatures, errors } = await dkimSign(raw, {
    canonicalization: 'relaxed/relaxed',
    signTime: NOW,
    ...(headerList === undefined ? {} : { headerList }),
    signatureData: [{ signingDomain: 'fabrikam.example', selector: 'k1', privateKey: fabrikamKey.privateKey }],
  } as unknown as Parameters<typeof dkimSign>[1]);
  assert.deepEqual(errors, []);
  return signatures + raw;
}

/** What mailauth alone says of the message's DKIM signatures: the bound is what changes it. */
async function mailauthAlone(raw: string): Promise<string[]> {
  const result = await dkimVerify(raw, { resolver: resolver as never, curTime: NOW });
  return result.results.map((row) => `${row.signingDomain} ${row.status.result}`);
}

const authenticator = createMailauthAuthenticator({ resolver, mta: 'mx1.contoso.com' });

// mailauth's own header parser and tag-list parser (not in its type definitions), to check the
// bounds against what mailauth reads.
const mailauthTools = createRequire(import.meta.url)('mailauth/lib/tools.js') as {
  parseHeaders(header: Buffer): { parsed: { key: string | null; line: Buffer }[] };
  parseDkimHeaders(line: Buffer): { parsed: { h?: { value?: unknown } } };
};

function authenticate(raw: string | Buffer, ip = STRANGER) {
  const message: ProviderMessage = { raw, mailFrom: 'alice@fabrikam.example', rcptTo: ['lee@northwind.example'], ingress: { ip, helo: 'client.example' }, now: NOW };
  return authenticator.authenticate(message, new AbortController().signal);
}

function decide(raw: string) {
  return decidePool(
    { mailFrom: 'alice@fabrikam.example', rcptTo: ['lee@northwind.example'], headers: raw, ingress: { ip: STRANGER, helo: 'client.example' } },
    { policy: { acceptedDomains: ['contoso.com'], relay: { trustedArcSealers: ['lists.example'] } }, providers: { authenticator }, now: NOW },
  );
}

/** `count` fields named `name`, numbered. */
function fields(name: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${name}: ${i}`);
}

describe('DKIM within the bounds: real mail verifies as before', () => {
  it('a DKIM-signed message passes, as a string and as a Buffer; the decision reads dkim-pass', async () => {
    const raw = await signed(message());
    assert.deepEqual(boundSignatures(raw).input, raw, 'nothing over a bound: mailauth is given the message itself');
    for (const input of [raw, Buffer.from(raw)]) {
      const verdict = await authenticate(input);
      assert.deepEqual(verdict.dkim, [{ result: 'pass', domain: 'fabrikam.example', selector: 'k1' }]);
    }
    assert.deepEqual((await decide(raw)).reasons.map((r) => r.code), ['dkim-pass', 'srs-skipped']);
  });

  it(`an h= of ${MAX_SIGNED_FIELDS} names (an over-signing signer's list, many times over) passes`, async () => {
    const raw = await signed(message(fields('X-Tag', MAX_SIGNED_FIELDS - 7)), 'From:To:Subject:Date:Message-ID:MIME-Version:Content-Type:X-Tag');
    assert.equal(/\bh=([^;]*)/.exec(raw)![1]!.split(':').length, MAX_SIGNED_FIELDS);
    assert.deepEqual((await authenticate(raw)).dkim, [{ result: 'pass', domain: 'fabrikam.example', selector: 'k1' }]);
  });

  it(`the ${MAX_DKIM_SIGNATURES}th DKIM-Signature from the top is still verified`, async () => {
    const raw = junkSignatures(MAX_DKIM_SIGNATURES - 1) + (await signed(message()));
    const verdict = await authenticate(raw);
    assert.equal(verdict.dkim?.length, MAX_DKIM_SIGNATURES);
    assert.deepEqual(verdict.dkim?.at(-1), { result: 'pass', domain: 'fabrikam.example', selector: 'k1' });
  });

  it(`a header of ${MAX_HEADER_LINES} lines is verified (a long folded recipient list)`, async () => {
    const cc = (lines: number) => `Cc: ${Array.from({ length: lines }, (_, i) => `user${i}@northwind.example`).join(',\r\n\t')}`;
    const headerLines = (raw: string) => raw.slice(0, raw.indexOf('\r\n\r\n')).split('\r\n').length;
    // The signature's own lines do not depend on the length of Cc: measured on a short one.
    const others = headerLines(await signed(message([cc(1)]))) - 1;
    const raw = await signed(message([cc(MAX_HEADER_LINES - others)]));
    assert.equal(headerLines(raw), MAX_HEADER_LINES);
    assert.deepEqual((await authenticate(raw)).dkim, [{ result: 'pass', domain: 'fabrikam.example', selector: 'k1' }]);
  });
});

/** `count` DKIM-Signatures of another domain that verify nothing (bad body hash). */
function junkSignatures(count: number): string {
  return Array.from({ length: count }, (_, i) => `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=junk${i}.example; s=s; h=from; bh=AAAA; b=AAAA\r\n`).join('');
}

describe('DKIM over the bounds: the signature is not verified, whatever mailauth alone says', () => {
  it(`a signature whose h= lists over ${MAX_SIGNED_FIELDS} names is a permerror, and the forward goes to the relay pool`, async () => {
    const raw = await signed(message(fields('X-Tag', MAX_SIGNED_FIELDS)), 'From:To:Subject:Date:Message-ID:MIME-Version:Content-Type:X-Tag');
    assert.deepEqual(await mailauthAlone(raw), ['fabrikam.example pass'], 'a valid signature');
    for (const input of [raw, Buffer.from(raw)]) {
      const verdict = await authenticate(input);
      assert.deepEqual(verdict.dkim, [{ result: 'permerror', domain: 'fabrikam.example', selector: 'k1' }]);
    }
    assert.deepEqual((await decide(raw)).reasons.map((r) => r.code), ['relay-unverified']);
  });

  it('an h= folded with its colons on other lines, or a tag named " H ", is counted all the same', async () => {
    const names = Array.from({ length: MAX_SIGNED_FIELDS }, (_, i) => `x-absent-${i}`).join(':\r\n\t');
    for (const tag of [`h=from:${names}`, ` H =from:${'x:'.repeat(MAX_SIGNED_FIELDS)}x`]) {
      const raw = `DKIM-Signature: v=1; a=rsa-sha256; d=fabrikam.example; s=k1;\r\n\t${tag}; bh=AAAA; b=AAAA\r\n${message()}`;
      assert.deepEqual((await authenticate(raw)).dkim, [{ result: 'permerror', domain: 'fabrikam.example', selector: 'k1' }], tag.slice(0, 20));
    }
  });

  it(`only the first ${MAX_DKIM_SIGNATURES} DKIM-Signatures are considered: a valid one below them is neither verified nor reported`, async () => {
    const raw = junkSignatures(MAX_DKIM_SIGNATURES) + (await signed(message()));
    assert.ok((await mailauthAlone(raw)).includes('fabrikam.example pass'));
    const verdict = await authenticate(raw);
    assert.equal(verdict.dkim?.length, MAX_DKIM_SIGNATURES);
    assert.ok(!verdict.dkim?.some((row) => row.domain === 'fabrikam.example'), JSON.stringify(verdict.dkim));
    assert.deepEqual((await decide(raw)).reasons.map((r) => r.code), ['relay-unverified']);
  });

  it(`a signature written "DKIM-Signature" then the colon on the next line is a DKIM-Signature (mailauth reads it as one)`, async () => {
    const raw = junkSignatures(MAX_DKIM_SIGNATURES) + (await signed(message())).replace('DKIM-Signature:', 'DKIM-Signature\r\n :');
    assert.ok((await mailauthAlone(raw)).includes('fabrikam.example pass'));
    assert.ok(!(await authenticate(raw)).dkim?.some((row) => row.domain === 'fabrikam.example'));
  });

  it(`a header over ${MAX_HEADER_LINES} lines: no DKIM signature is verified (permerror), SPF still is`, async () => {
    const raw = await signed(message(['Comments: a', ...Array.from({ length: MAX_HEADER_LINES }, () => ' b')]));
    assert.deepEqual(await mailauthAlone(raw), ['fabrikam.example pass'], 'a valid signature');
    assert.equal(boundSignatures(raw).input, null);
    const verdict = await authenticate(raw, FABRIKAM_MX);
    assert.deepEqual(verdict.dkim, [{ result: 'permerror', domain: 'fabrikam.example', selector: 'k1' }]);
    assert.deepEqual(verdict.spf, { result: 'pass', domain: 'fabrikam.example' });
    assert.deepEqual(verdict.arc, { result: 'none' }, 'no ARC fields');
  });
});

describe('a body line over the bound', () => {
  /** The usual message with `line` as its body's first line (CR LF after it). */
  const withLine = (line: string) => message().replace('Shall we meet at noon?', line);
  it(`a line of ${MAX_BODY_LINE} octets (its CR included) verifies; one octet more and no signature is verified (permerror), relay pool`, async () => {
    const fits = await signed(withLine('a'.repeat(MAX_BODY_LINE - 1)));
    assert.deepEqual(await mailauthAlone(fits), ['fabrikam.example pass']);
    assert.deepEqual((await authenticate(fits)).dkim, [{ result: 'pass', domain: 'fabrikam.example', selector: 'k1' }]);
    const over = await signed(withLine('a'.repeat(MAX_BODY_LINE)));
    assert.deepEqual(await mailauthAlone(over), ['fabrikam.example pass'], 'a valid signature');
    for (const input of [over, Buffer.from(over)]) {
      assert.deepEqual((await authenticate(input)).dkim, [{ result: 'permerror', domain: 'fabrikam.example', selector: 'k1' }]);
    }
    assert.deepEqual((await decide(over)).reasons.map((r) => r.code), ['relay-unverified']);
  });

  it('hasLongLine answers as a line-by-line count of UTF-8 octets does, on strings and bytes alike', () => {
    const naive = (text: string, limit: number): boolean => text.split('\n').some((line) => Buffer.byteLength(line, 'utf8') > limit);
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', '\n', '\r', 'bb', '€', '\u{1F600}'), { maxLength: 300 }), fc.integer({ min: 1, max: 40 }), fc.nat(20), (parts, limit, skip) => {
        const text = parts.join('');
        // Start at a character boundary: an offset in code units for the string, in octets for the bytes.
        const start = Math.min(skip, parts.length);
        const before = parts.slice(0, start).join('');
        const expected = naive(text.slice(before.length), limit);
        assert.equal(hasLongLine(text, before.length, limit), expected, JSON.stringify({ text, start, limit }));
        assert.equal(hasLongLine(Buffer.from(text, 'utf8'), Buffer.byteLength(before, 'utf8'), limit), expected);
      }),
      { numRuns: 3000 },
    );
  });

  it('a body line is measured in octets whether the message is a string or bytes: 30,000 "€" (90,000 octets) are over the bound', () => {
    const raw = `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=fabrikam.example; s=k1; h=from; bh=AAAA; b=AAAA\r\n${message().replace('Shall we meet at noon?', '€'.repeat(30_000))}`;
    for (const input of [raw, Buffer.from(raw)]) {
      assert.deepEqual(boundSignatures(input).unverified.map((row) => row.comment), [`not verified: a body line is over ${MAX_BODY_LINE} octets`]);
    }
  });
});

describe('ARC over the bounds', () => {
  /** `raw` sealed by lists.example (i=1), its ARC-Message-Signature over `headerList`. */
  async function sealed(raw: string, headerList: string): Promise<string> {
    const seal = await sealMessage(Buffer.from(raw), {
      signingDomain: 'lists.example',
      selector: 'arc1',
      privateKey: listsKey.privateKey,
      authResults: 'mx.lists.example; spf=pass smtp.mailfrom=alice@fabrikam.example',
      cv: 'none',
      signTime: NOW,
      headerList,
    } as unknown as Parameters<typeof sealMessage>[1]);
    return seal.toString() + raw;
  }

  async function mailauthArc(raw: string): Promise<string> {
    const dkim = await dkimVerify(raw, { resolver: resolver as never, curTime: NOW });
    const arc = await verifyArc((dkim as unknown as { arc: Parameters<typeof verifyArc>[0] }).arc, { resolver: resolver as never } as Parameters<typeof verifyArc>[1]);
    return arc.status.result;
  }

  it('a chain whose ARC-Message-Signature is within the bounds passes', async () => {
    const raw = await sealed(message(fields('X-Tag', 10)), 'From:To:Subject:X-Tag');
    assert.equal(await mailauthArc(raw), 'pass');
    assert.equal((await authenticate(raw)).arc?.result, 'pass');
    assert.deepEqual((await decide(raw)).reasons.map((r) => r.code), ['arc-pass', 'srs-skipped']);
  });

  it(`an ARC-Message-Signature whose h= lists over ${MAX_SIGNED_FIELDS} names is hidden from mailauth: the chain fails`, async () => {
    const raw = await sealed(message(fields('X-Tag', MAX_SIGNED_FIELDS)), 'From:To:Subject:X-Tag');
    assert.equal(await mailauthArc(raw), 'pass', 'a valid chain');
    const bounds = boundSignatures(raw);
    assert.ok(bounds.input instanceof Readable);
    const seen = ((await bounds.input.toArray()) as string[]).join('');
    assert.equal(seen, raw.replace('ARC-Message-Signature:', 'XRC-Message-Signature:'), 'one letter changed, nothing else');
    assert.equal((await authenticate(raw)).arc?.result, 'fail');
    assert.deepEqual((await decide(raw)).reasons.map((r) => r.code), ['relay-unverified']);
  });

  it(`a header over ${MAX_HEADER_LINES} lines with an ARC chain: the chain fails, unverified`, async () => {
    const raw = await sealed(message(['Comments: a', ...Array.from({ length: MAX_HEADER_LINES }, () => ' b')]), 'From:To:Subject');
    assert.equal(await mailauthArc(raw), 'pass', 'a valid chain');
    assert.equal((await authenticate(raw)).arc?.result, 'fail');
  });
});

describe('boundSignatures reads the header as mailauth does', () => {
  const over = `h=from${':x'.repeat(MAX_SIGNED_FIELDS)}`;
  /** What mailauth is given: the message as it is, with a field hidden, or nothing — the same for the message as a string and as a Buffer. */
  const given = (raw: string) => {
    const answers = [raw, Buffer.from(raw)].map((message) => {
      const { input } = boundSignatures(message);
      return input === message ? 'as is' : input === null ? 'nothing' : 'hidden';
    });
    assert.equal(answers[1], answers[0], 'a Buffer is read as its string is');
    return answers[0];
  };
  const top = 'Received: from a.example by b.example; Mon, 23 Nov 2026 09:20:11 +0000\r\n';
  it('hides a signature whatever the case of its name, or spaces before its colon', () => {
    for (const name of ['DKIM-Signature', 'dkim-signature', 'DKIM-SIGNATURE \t', 'ARC-Message-Signature', 'arc-message-signature']) {
      assert.equal(given(`${top}${name}: d=a.example; ${over}\r\nFrom: a@b.example\r\n\r\nbody`), 'hidden', name);
    }
  });
  it('leaves fields that only look like signatures alone', () => {
    for (const text of [
      `${top}X-DKIM-Signature: ${over}\r\n`, // another field
      `${top}Subject: a\r\n DKIM-Signature: ${over}\r\n`, // a fold of Subject
      `${top}From: a@b.example\r\n\r\nDKIM-Signature: ${over}\r\n`, // in the body
      `${top}DKIM-Signature: z=${over.slice(2)}; h=from\r\n`, // colons in another tag
      `${top}DKIM Signature: ${over}\r\n`, // not a field name
    ]) {
      assert.equal(given(text), 'as is', text.slice(top.length, top.length + 40));
    }
  });
  it('reads lines ending in a bare LF, and a header without a body, alike', () => {
    assert.equal(given(`${top}DKIM-Signature: d=a.example; ${over}\n\nbody`), 'hidden');
    assert.equal(given(`${top}DKIM-Signature: d=a.example; ${over}`), 'hidden');
    assert.equal(given(`\r\nDKIM-Signature: d=a.example; ${over}\r\n`), 'as is', 'an empty first line: no header at all');
    assert.equal(given(`\nDKIM-Signature: d=a.example; ${over}\n`), 'as is', 'an empty first line of a bare LF');
    assert.equal(given(`${top}From: a@b.example\r\n\nDKIM-Signature: d=a.example; ${over}\r\n`), 'as is', 'a CRLF header ended by a bare LF');
    assert.equal(given(`${top}From: a@b.example\r\nDKIM-Signature: d=a.example; ${over}\r\n\n\nbody`), 'hidden');
  });
  it('takes a first line with leading spaces, or its name alone with the colon below it, for a field, as mailauth does', () => {
    assert.equal(given(`  DKIM-Signature: d=a.example; ${over}\r\nFrom: a@b.example\r\n\r\n`), 'hidden');
    assert.equal(given(`${top}DKIM-Signature \r\n\t: d=a.example; ${over}\r\n\r\n`), 'hidden');
  });
  it(`counts the lines of the header only: ${MAX_HEADER_LINES} are verified, one more is not`, () => {
    const lines = (count: number) => `${top}Comments: a\r\n${' b\r\n'.repeat(count - 2)}\r\n${'body\r\n'.repeat(MAX_HEADER_LINES)}`;
    assert.equal(given(lines(MAX_HEADER_LINES)), 'as is');
    assert.equal(given(lines(MAX_HEADER_LINES + 1)), 'nothing');
  });
});

describe('what mailauth reads after the bounds (its own parser, on generated headers)', () => {
  /** The header fields mailauth's verifier reads from `bytes`: bare LFs made CR LF, through the first empty line. */
  function mailauthFields(bytes: Buffer) {
    const text = bytes.toString('latin1').replace(/(?<!\r)\n/g, '\r\n');
    const end = text.startsWith('\r\n') ? 0 : text.indexOf('\r\n\r\n') + 2 || text.length;
    return mailauthTools.parseHeaders(Buffer.from(text.slice(0, end), 'latin1')).parsed;
  }
  /** One of `common` most of the time, else one of `rare`. */
  const mostly = (common: readonly string[], rare: readonly string[]) => fc.oneof({ arbitrary: fc.constantFrom(...common), weight: 3 }, { arbitrary: fc.constantFrom(...rare), weight: 1 });
  // Headers of signature fields, some spelt or folded the odd ways mailauth still reads, with
  // tag lists whose h= often lists over the bound (about a third of them, and a third with over
  // MAX_DKIM_SIGNATURES DKIM-Signatures).
  const header = fc
    .array(
      fc.tuple(
        mostly(['DKIM-Signature', 'ARC-Message-Signature'], ['dkim-signature', 'DKIM-Signature \t', ' DKIM-Signature', 'From', 'X-DKIM-Signature', 'DKIM Signature']),
        mostly([':', ': '], [' :', '\r\n :', '\r\n\t', '\n:', '']),
        fc.array(mostly(['h=', 'a:'.repeat(70), ':', ';'], [' H =', 'h\u00a0=', 'z=', 'd=a.example', ' ', '\r\n ', '\r\n\t:', 'é']), { maxLength: 12, size: 'max' }),
        fc.constantFrom('\r\n', '\n'),
      ),
      { minLength: 1, maxLength: 30, size: 'max' },
    )
    .map((fields) => fields.map(([name, separator, tags, end]) => name + separator + tags.join('') + end).join(''));
  it(`no DKIM-Signature beyond the ${MAX_DKIM_SIGNATURES}th, and no h= of over ${MAX_SIGNED_FIELDS} names, reaches mailauth's verifier`, async () => {
    await fc.assert(
      fc.asyncProperty(header, fc.boolean(), async (text, asBuffer) => {
        const raw = `${text}\r\nbody\r\n`;
        const { input } = boundSignatures(asBuffer ? Buffer.from(raw) : raw);
        if (input === null) return;
        const seen = typeof input === 'string' ? Buffer.from(input) : Buffer.isBuffer(input) ? input : Buffer.concat(((await input.toArray()) as (string | Buffer)[]).map((chunk) => Buffer.from(chunk)));
        const fields = mailauthFields(seen);
        const signatures = fields.filter((field) => field.key === 'dkim-signature');
        assert.ok(signatures.length <= MAX_DKIM_SIGNATURES, `${signatures.length} DKIM-Signatures`);
        for (const field of [...signatures, ...fields.filter((field) => field.key === 'arc-message-signature')]) {
          const h = mailauthTools.parseDkimHeaders(field.line).parsed.h?.value;
          const names = typeof h === 'string' ? h.split(':').filter((name) => name.trim().length > 0).length : 0;
          assert.ok(names <= MAX_SIGNED_FIELDS, `${field.key} with ${names} names in h=`);
        }
      }),
      { numRuns: 500 },
    );
  });
});
