// Mutation search over genuine SRS addresses (issue 11): every small edit an attacker can make to
// a bounce address they received — move an `=`, change, insert or delete a character, change case,
// add or strip quoting — is tried, and each one `reverse` accepts must lead back to the same
// sender. With hashInput 'delimited' that holds for every accepted mutation; with the compatible
// 'concatenated' hash the only other outcome is the documented boundary shift (docs/srs.md):
// the same `host‖local` text split at another place.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Srs, SrsError, type HashInput } from '../../src/srs/index.js';

const NOW = 1577836860_000;
const FORWARDER = 'fwd.example';

// Local parts with the characters that matter: separators, dots, quotes, backslashes, `@`,
// spaces (these need quoting), non-ASCII; domains of letters, digits and inner hyphens.
const localChar = fc.constantFrom(...'abcxyzABCXYZ0189=+-._~#!%&'.split(''), ' ', '"', '\\', '@', 'ü', 'É', '漢');
const localContent = fc.string({ unit: localChar, minLength: 1, maxLength: 14 }).filter((s) => !/^srs[01][-+=]/i.test(s));
const labelChar = fc.constantFrom(...'abcdxyzABXZ019-'.split(''), 'ü');
const label = fc.string({ unit: labelChar, minLength: 1, maxLength: 8 }).filter((s) => !s.startsWith('-') && !s.endsWith('-'));
const host = fc.array(label, { minLength: 1, maxLength: 3 }).map((labels) => labels.join('.'));

/** How a sender writes a local part: bare when it is atext and dots, else an RFC 5321 quoted-string. */
function writeLocal(content: string): string {
  return /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.\u0080-\uffff]+$/.test(content) ? content : `"${content.replace(/["\\]/g, '\\$&')}"`;
}

/** The local part of an address as text, quotes and escapes removed, and its domain. */
function contentOf(address: string): { local: string; domain: string } {
  const at = address.lastIndexOf('@');
  const raw = address.slice(0, at);
  const quoted = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"');
  return { local: quoted ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw, domain: address.slice(at + 1) };
}

/** ASCII-only lowercasing: the case the hash ignores (non-ASCII case is signed). */
const asciiLower = (text: string): string => text.replace(/[A-Z]/g, (c) => c.toLowerCase());

/** The characters substituted and inserted: the separators, quoting, and ordinary letters. */
const EDIT_CHARS = ['=', '.', '-', '+', 'a', 'Z', '0', '"', '\\', ' ', '@', 'é'];

/** Every single-step mutation of `address` (deduplicated, the original left out). */
function mutations(address: string): Set<string> {
  const out = new Set<string>();
  const at = address.lastIndexOf('@');
  for (let i = 0; i < address.length; i++) {
    out.add(address.slice(0, i) + address.slice(i + 1)); // delete
    for (const c of EDIT_CHARS) {
      out.add(address.slice(0, i) + c + address.slice(i + 1)); // change
      out.add(address.slice(0, i) + c + address.slice(i)); // insert
    }
    const char = address[i]!;
    const flipped = char === char.toLowerCase() ? char.toUpperCase() : char.toLowerCase();
    if (flipped !== char) out.add(address.slice(0, i) + flipped + address.slice(i + 1)); // case
  }
  // Move each `=` of the local part anywhere else in the local part.
  for (let from = 0; from < at; from++) {
    if (address[from] !== '=') continue;
    const without = address.slice(0, from) + address.slice(from + 1);
    for (let to = 0; to < at; to++) out.add(without.slice(0, to) + '=' + without.slice(to));
  }
  out.add(address.toUpperCase());
  out.add(address.toLowerCase());
  // Quoting the hash does not cover: quote the whole local part, strip its quotes, escape a character.
  const { local, domain } = contentOf(address);
  const quoted = `"${local.replace(/["\\]/g, '\\$&')}"`;
  out.add(`${quoted}@${domain}`);
  out.add(`${local}@${domain}`);
  for (let i = 1; i < quoted.length - 1; i++) {
    if (quoted[i] !== '\\' && quoted[i - 1] !== '\\') out.add(`${quoted.slice(0, i)}\\${quoted.slice(i)}@${domain}`);
  }
  out.delete(address);
  return out;
}

interface SearchResult {
  tried: number;
  accepted: number;
  shifts: string[];
}

/**
 * Reverses every mutation of `genuine` (which reverses to `original`). Checks that each refusal
 * is an SrsError and each acceptance leads to `original` (ASCII case aside) or, where
 * `allowShift`, to a boundary shift of it; returns the counts.
 */
function search(srs: Srs, genuine: string, original: string, allowShift: boolean): SearchResult {
  const result: SearchResult = { tried: 0, accepted: 0, shifts: [] };
  // SRS1 reverses to an SRS0 address: the hash covers its host and the part after `SRS0`.
  const tag = /^"?SRS0/i.test(original) ? 4 : 0;
  const want = contentOf(original);
  for (const mutated of mutations(genuine)) {
    result.tried++;
    let reversed: string;
    try {
      reversed = srs.reverse(mutated, { now: NOW });
    } catch (error) {
      assert.ok(error instanceof SrsError, `reverse(${JSON.stringify(mutated)}) threw ${String(error)}`);
      continue;
    }
    result.accepted++;
    const got = contentOf(reversed);
    if (asciiLower(got.local) === asciiLower(want.local) && asciiLower(got.domain) === asciiLower(want.domain)) continue;
    const shifted = asciiLower(got.domain + got.local.slice(tag)) === asciiLower(want.domain + want.local.slice(tag));
    assert.ok(
      allowShift && shifted,
      `${JSON.stringify(mutated)} (a mutation of ${JSON.stringify(genuine)}) reversed to ${JSON.stringify(reversed)}, ` +
        `not ${JSON.stringify(original)}${shifted ? ' (a boundary shift)' : ''}`,
    );
    result.shifts.push(`${mutated} → ${reversed}`);
  }
  return result;
}

/** Forwards, or null when the result would exceed 64 octets (refused; tested elsewhere). */
function forwardOrNull(srs: Srs, address: string, via = FORWARDER): string | null {
  try {
    return srs.forward(address, via, { now: NOW });
  } catch (error) {
    if (error instanceof SrsError && error.code === 'local-part-too-long') return null;
    throw error;
  }
}

describe('mutation search over genuine SRS addresses (issue 11)', () => {
  // hashLength 8: a mutation that lands on another valid hash by chance (about 38^-8 per try)
  // must not flake a search of a few hundred thousand tries; the property is about structure.
  const totals = new Map<HashInput, SearchResult>();
  const senders = fc.tuple(localContent, host).map(([l, h]) => `${writeLocal(l)}@${h}`);

  for (const hashInput of ['delimited', 'concatenated'] as const) {
    const allowShift = hashInput === 'concatenated';
    const srs = new Srs({ secret: 'mutation-search', hashLength: 8, hashInput });
    const firstHop = new Srs({ secret: 'another-forwarder', separator: '+' });
    const total: SearchResult = { tried: 0, accepted: 0, shifts: [] };
    totals.set(hashInput, total);
    const add = (r: SearchResult): void => {
      total.tried += r.tried;
      total.accepted += r.accepted;
      total.shifts.push(...r.shifts);
    };
    const outcome = allowShift ? 'leads back to the sender or is a boundary shift of it' : 'leads back to the sender';

    it(`hashInput '${hashInput}': every accepted mutation of an SRS0 address ${outcome}`, () => {
      fc.assert(
        fc.property(senders, (sender) => {
          const genuine = forwardOrNull(srs, sender);
          fc.pre(genuine !== null);
          assert.equal(srs.reverse(genuine!, { now: NOW }), sender);
          add(search(srs, genuine!, sender, allowShift));
        }),
        { numRuns: 120, seed: 11 },
      );
    });

    it(`hashInput '${hashInput}': every accepted mutation of an SRS1 address ${outcome}`, () => {
      fc.assert(
        fc.property(senders, (sender) => {
          const srs0 = forwardOrNull(firstHop, sender, 'up.example');
          fc.pre(srs0 !== null);
          const genuine = forwardOrNull(srs, srs0!);
          fc.pre(genuine !== null);
          assert.equal(srs.reverse(genuine!, { now: NOW }), srs0);
          add(search(srs, genuine!, srs0!, allowShift));
        }),
        { numRuns: 60, seed: 12 },
      );
    });
  }

  it('the search really moved boundaries: shifts were accepted with the compatible hash, none with delimited', (t) => {
    const concatenated = totals.get('concatenated')!;
    const delimited = totals.get('delimited')!;
    t.diagnostic(
      `concatenated: ${concatenated.tried} mutations, ${concatenated.accepted} accepted, ${concatenated.shifts.length} boundary shifts; ` +
        `delimited: ${delimited.tried} mutations, ${delimited.accepted} accepted, ${delimited.shifts.length} shifts`,
    );
    assert.ok(concatenated.tried > 100_000 && delimited.tried > 100_000);
    assert.ok(concatenated.shifts.length > 0, 'the compatible hash admits boundary shifts; the search found none, so it searched badly');
    assert.equal(delimited.shifts.length, 0);
    // Accepted mutations other than shifts are case changes, `+`≡`-` in the hash and quoting.
    assert.ok(delimited.accepted > 0);
  });
});

describe('the boundary shift of issue 11, by example', () => {
  const sender = 'bob@victim.example-x.test';
  const shift = (address: string): string => address.replace('=victim.example-x.test=bob@', '=victim.example=-x.testbob@');

  it("with the compatible hash, an address for victim.example-x.test also verifies for victim.example (documented)", () => {
    const srs = new Srs({ secret: 'tops3cr3t' });
    const genuine = srs.forward(sender, FORWARDER, { now: NOW });
    assert.match(genuine, /=victim\.example-x\.test=bob@/);
    assert.equal(srs.reverse(shift(genuine), { now: NOW }), '-x.testbob@victim.example');
  });

  it("with hashInput 'delimited' the shifted address is refused as bad-hash, and the genuine one still reverses", () => {
    const srs = new Srs({ secret: 'tops3cr3t', hashInput: 'delimited' });
    const genuine = srs.forward(sender, FORWARDER, { now: NOW });
    assert.equal(srs.reverse(genuine, { now: NOW }), sender);
    assert.throws(
      () => srs.reverse(shift(genuine), { now: NOW }),
      (error: unknown) => error instanceof SrsError && error.code === 'bad-hash',
    );
  });

  it("'delimited' hashes differ from the compatible ones, so the two settings do not read each other's addresses", () => {
    const compatible = new Srs({ secret: 'tops3cr3t' });
    const delimited = new Srs({ secret: 'tops3cr3t', hashInput: 'delimited' });
    const a = compatible.forward(sender, FORWARDER, { now: NOW });
    const b = delimited.forward(sender, FORWARDER, { now: NOW });
    assert.notEqual(a, b);
    assert.throws(() => delimited.reverse(a, { now: NOW }), (error: unknown) => error instanceof SrsError && error.code === 'bad-hash');
    assert.throws(() => compatible.reverse(b, { now: NOW }), (error: unknown) => error instanceof SrsError && error.code === 'bad-hash');
  });
});
