// The mailauth authenticator runs in time linear in the message (SPEC §6, "Hostile input"):
// mailauth's DKIM verifier is quadratic in the header an attacker writes — its header parser in
// the lines of a folded field, its header selection in the names of h= times the fields, and it
// hashes the body once per signature — so the authenticator bounds what it is given
// (src/mailauth/dkim-bounds.ts). Each shape is a doubling series of the header block (16 KiB to
// 512 KiB; test/hostile/doubling.ts) through createMailauthAuthenticator().authenticate(), DNS
// answered by createStaticResolver. Before the bounds, each grew 3.1–37× a doubling somewhere in
// the series, and took 0.15–20 s a call at 256 KiB.
import { describe, it, type TestContext } from 'node:test';
import { createMailauthAuthenticator } from '../../src/mailauth/authenticator.js';
import { createStaticResolver } from '../../src/providers/static-dns.js';
import { assertLinear, describeSeries, type DoublingOptions } from './doubling.js';

// No key record: the signatures' body hashes never match, so mailauth never looks one up.
const resolver = createStaticResolver({ 'fabrikam.example': { TXT: ['v=spf1 ip4:198.51.100.0/24 -all'] } });
const authenticator = createMailauthAuthenticator({ resolver, mta: 'mx1.contoso.com' });
const NOW = new Date('2026-11-23T09:20:12Z');

function authenticate(raw: string | Buffer): Promise<unknown> {
  return authenticator.authenticate(
    { raw, mailFrom: 'alice@fabrikam.example', rcptTo: ['lee@northwind.example'], ingress: { ip: '203.0.113.9', helo: 'client.example' }, now: NOW },
    new AbortController().signal,
  );
}

/** Repeats `unit` until the string is at least `size` characters long. */
function fill(unit: string, size: number): string {
  return unit.repeat(Math.ceil(size / unit.length));
}

/** `count` names made by `name`, joined into an h= value. */
function names(count: number, name: (i: number) => string): string {
  return Array.from({ length: Math.floor(count) }, (_, i) => name(i)).join(':');
}

const HEAD = `From: Alice <alice@fabrikam.example>\r\nTo: megan@contoso.com\r\nSubject: Lunch on Friday?\r\nDate: ${NOW.toUTCString().replace('GMT', '+0000')}\r\n`;
const BODY = '\r\nShall we meet at noon?\r\n';
const signature = (h: string, more = '') => `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=fabrikam.example; s=k1;${more} h=${h}; bh=AAAA; b=AAAA\r\n`;
/** A field of 64 characters: the 256 KiB of them in the h= shapes at 512 KiB are under 4,000 lines. */
const FIELD = 'X-Filler: a value of some length to make a line of 64 characters\r\n';

const shapes: readonly { readonly name: string; readonly make: (size: number) => string }[] = [
  {
    name: 'many fields, and a DKIM-Signature whose h= names fields that are absent',
    make: (size) => signature(`from:${names(size / 2 / 8, (i) => `x-a${i}`)}`) + HEAD + fill(FIELD, size / 2) + BODY,
  },
  {
    name: 'a DKIM-Signature whose h= repeats "from", above many fields below From',
    make: (size) => HEAD + fill(FIELD, size / 2) + signature(names(size / 2 / 5, () => 'from')) + BODY,
  },
  {
    name: 'a DKIM-Signature whose h= is folded at every name',
    // Five characters a line: past the bound on lines from 32 KiB on (below it, mailauth's parser
    // is still quadratic in the lines of the field, within the bound).
    make: (size) => signature(`from:${names(size / 6, () => 'a').replaceAll(':', ':\r\n ')}`) + HEAD + BODY,
  },
  {
    name: 'one field folded many times',
    make: (size) => signature('from') + HEAD + `Comments: a\r\n${fill(' b\r\n', size)}` + BODY,
  },
  {
    name: 'many lines that are not fields',
    make: (size) => signature('from') + HEAD + `Comments: a\r\n${fill('abc\r\n', size)}` + BODY,
  },
  {
    name: 'many DKIM-Signatures, each with its own l=, over a body as large',
    make: (size) => Array.from({ length: size / 128 }, (_, i) => signature('from:to:subject', ` l=${i + 1};`)).join('') + HEAD + '\r\n' + fill('Shall we meet at noon?\r\n', size),
  },
  {
    name: 'an ARC set whose ARC-Message-Signature h= names fields that are absent, and many fields',
    make: (size) =>
      'ARC-Seal: i=1; a=rsa-sha256; cv=none; d=lists.example; s=arc1; b=AAAA\r\n' +
      `ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=lists.example; s=arc1; h=from:${names(size / 2 / 8, (i) => `x-a${i}`)}; bh=AAAA; b=AAAA\r\n` +
      'ARC-Authentication-Results: i=1; mx.lists.example; spf=pass smtp.mailfrom=alice@fabrikam.example\r\n' +
      HEAD +
      fill(FIELD, size / 2) +
      BODY,
  },
];

// 16 KiB to 512 KiB of header: mailauth's own linear work (its header parser reads the header a
// byte at a time, about 80 ms a MiB) hides the quadratic work of the smaller sizes, so the series
// runs on to where that dominates; the fields are 64 characters long so that the h= shapes stay
// under the bound on header lines up to 512 KiB and exercise the bound on h=.
const SERIES: DoublingOptions = { start: 16_384, doublings: 5 };

/**
 * Shapes for the bounds' own reading of the header (linear before them too): a tag list read
 * one search at a time could run on past its field at every tag, or at every field.
 */
const scanShapes: typeof shapes = [
  {
    name: 'a DKIM-Signature of many tags, h= among them',
    make: (size) => `DKIM-Signature: d=fabrikam.example; s=k1;${fill(' h=from:to; a;', size)} bh=AAAA; b=AAAA\r\n` + HEAD + BODY,
  },
  {
    name: 'many DKIM-Signatures without a semicolon',
    make: (size) => fill('DKIM-Signature: h=from:to\r\n', size) + HEAD + BODY,
  },
];

describe('the mailauth authenticator is linear in a hostile header (createMailauthAuthenticator().authenticate)', () => {
  for (const shape of [...shapes, ...scanShapes]) {
    it(`authenticate is linear on ${shape.name}`, async (t: TestContext) => {
      const result = await assertLinear(shape.make, authenticate, SERIES);
      t.diagnostic(describeSeries(result));
    });
  }
});

// A body of one long line under a relaxed signature: mailauth's relaxed body canonicalisation
// copies the unfinished line again with every chunk, so one line of 16 MiB took 4 s of CPU
// (3.5–3.9× a doubling from 4 MiB on) and blocked the event loop past any deadline. A line over
// MAX_BODY_LINE leaves the signatures unverified. Bytes, not a string: a string this large is
// V8's large-object space's business (see doubling.ts).
describe('the mailauth authenticator is linear in a hostile body (one long line under a relaxed signature)', () => {
  for (const [name, unit] of [
    ['"a " repeated', 'a '],
    ['bare CRs', '\r'],
  ] as const) {
    it(`authenticate is linear on a body of ${name} with no line feed, 1 to 16 MiB`, async (t: TestContext) => {
      const head = signature('from') + HEAD + '\r\n';
      const result = await assertLinear((size) => Buffer.from(head + fill(unit, size)), authenticate, { start: 1 << 20, doublings: 4, runs: 3 });
      t.diagnostic(describeSeries(result));
    });
  }
});
