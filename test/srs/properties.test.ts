// Property tests: identities that must hold for every address, not just the vectors.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Srs, SrsError, isSrs, parseSrs, MAX_ADDRESS_LENGTH } from '../../src/srs/index.js';

const NOW = 1577836860_000;
const DAY = 86_400_000;

const localChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=+-%!&._~#'.split(''), 'ü', 'É', 'ß', '漢', 'я');
const labelChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-'.split(''), 'ü', 'ö');
const local = fc.string({ unit: localChar, minLength: 1, maxLength: 24 }).filter((s) => !/^srs[01][-+=]/i.test(s));
// A domain label does not start or end with '-' (RFC 5321 §4.1.2): forward refuses such a domain.
const label = fc.string({ unit: labelChar, minLength: 1, maxLength: 12 }).filter((s) => !s.startsWith('-') && !s.endsWith('-'));
const host = fc.array(label, { minLength: 1, maxLength: 3 }).map((labels) => labels.join('.'));
const sender = fc.tuple(local, host).map(([l, h]) => `${l}@${h}`);
const options = fc.record({
  separator: fc.constantFrom('=', '+', '-') as fc.Arbitrary<'=' | '+' | '-'>,
  hashLength: fc.integer({ min: 4, max: 12 }),
  alphabet: fc.constantFrom('base64', 'base64url') as fc.Arbitrary<'base64' | 'base64url'>,
});
const clock = fc.integer({ min: 0, max: 4_000_000_000_000 });

/** Forwards, or returns null when the result would not fit in 64 octets (a refusal, tested elsewhere). */
function forwardOrNull(srs: Srs, address: string, domain: string, now: number): string | null {
  try {
    return srs.forward(address, domain, { now });
  } catch (error) {
    if (error instanceof SrsError && error.code === 'local-part-too-long') return null;
    throw error;
  }
}

describe('SRS properties', () => {
  it('reverse(forward(x)) = x for any sender, separator, hash length, alphabet and day', () => {
    fc.assert(
      fc.property(sender, options, clock, fc.integer({ min: 0, max: 21 }), (address, opts, now, age) => {
        const srs = new Srs({ secret: 'property', ...opts });
        const forwarded = forwardOrNull(srs, address, 'fwd.example', now);
        fc.pre(forwarded !== null);
        assert.ok(isSrs(forwarded));
        assert.equal(srs.reverse(forwarded!, { now: now + age * DAY }), address);
      }),
      { numRuns: 2000 },
    );
  });

  it('two hops: SRS1 reverses to the first SRS0, which reverses to the sender', () => {
    fc.assert(
      fc.property(sender, clock, (address, now) => {
        const first = new Srs({ secret: 'first-hop' });
        const second = new Srs({ secret: 'second-hop', separator: '+' });
        const srs0 = forwardOrNull(first, address, 'one.example', now);
        fc.pre(srs0 !== null);
        const srs1 = forwardOrNull(second, srs0!, 'two.example', now);
        fc.pre(srs1 !== null);
        assert.match(srs1!, /^SRS1\+/);
        assert.equal(second.reverse(srs1!, { now }), srs0);
        assert.equal(first.reverse(srs0!, { now }), address);
      }),
      { numRuns: 500 },
    );
  });

  it('any change to the hash, stamp, host or local part of a valid address is rejected', () => {
    // hashLength 8 so that a random mutation colliding with a valid hash (about 36^-8) never flakes.
    const srs = new Srs({ secret: 'mutation', hashLength: 8 });
    const field = fc.constantFrom('hash', 'timestamp', 'host', 'local') as fc.Arbitrary<'hash' | 'timestamp' | 'host' | 'local'>;
    const replacement = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'.split(''));
    fc.assert(
      fc.property(sender, field, fc.nat(), replacement, (address, which, position, char) => {
        const forwarded = forwardOrNull(srs, address, 'fwd.example', NOW);
        fc.pre(forwarded !== null);
        const parsed = parseSrs(forwarded!);
        assert.equal(parsed.type, 'SRS0');
        if (parsed.type !== 'SRS0') return;
        const original = parsed[which];
        const at = position % original.length;
        // Case changes are equivalent by design (intermediate MTAs smash case): change the letter itself.
        fc.pre(original[at]!.toLowerCase() !== char && !(which === 'hash' && '+-/_'.includes(original[at]!)));
        const mutated = { ...parsed, [which]: original.slice(0, at) + char + original.slice(at + 1) };
        if (which === 'timestamp') fc.pre(/^[a-z2-7]{2}$/i.test(mutated.timestamp));
        const tampered = `SRS0=${mutated.hash}=${mutated.timestamp}=${mutated.host}=${mutated.local}@fwd.example`;
        assert.throws(
          () => srs.reverse(tampered, { now: NOW }),
          (error: unknown) => error instanceof SrsError && error.code === 'bad-hash',
        );
      }),
      { numRuns: 3000 },
    );
  });

  it('the hash ignores ASCII case but not the case of other letters, as the peers do', () => {
    const srs = new Srs({ secret: 'case' });
    fc.assert(
      fc.property(sender, (address) => {
        const forwarded = forwardOrNull(srs, address, 'fwd.example', NOW);
        fc.pre(forwarded !== null);
        const asciiSwapped = forwarded!.replace(/[A-Za-z]/g, (c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()));
        const reversed = srs.reverse(asciiSwapped, { now: NOW });
        assert.equal(reversed.toLowerCase(), address.toLowerCase());
      }),
      { numRuns: 1000 },
    );
  });

  it('no input makes forward, reverse, parse or isSrs throw anything but SrsError', () => {
    const srs = new Srs({ secret: 'fuzz', longLocalPart: 'bounces' });
    const srsLike = fc
      .tuple(fc.constantFrom('SRS0', 'SRS1', 'srs0', 'bounces+SRS', ''), fc.constantFrom('=', '+', '-', ''), fc.string({ maxLength: 60 }))
      .map(([tag, sep, rest]) => tag + sep + rest);
    const anyInput = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ unit: 'binary', maxLength: 200 }),
      srsLike,
      fc.tuple(srsLike, fc.string({ maxLength: 20 })).map(([l, d]) => `${l}@${d}`),
      fc.anything(),
    );
    fc.assert(
      fc.property(anyInput, fc.string({ maxLength: 30 }), (input, domain) => {
        for (const call of [
          () => srs.forward(input as string, domain, { now: NOW }),
          () => srs.forward(input as string, 'fwd.example', { now: NOW }),
          () => srs.reverse(input as string, { now: NOW }),
          () => srs.parse(input as string),
          () => parseSrs(input),
        ]) {
          try {
            call();
          } catch (error) {
            assert.ok(error instanceof SrsError, `threw ${String(error)} for ${JSON.stringify(input)}`);
          }
        }
        assert.equal(typeof isSrs(input), 'boolean');
        assert.equal(typeof srs.isSrs(input), 'boolean');
      }),
      { numRuns: 5000 },
    );
  });

  it('a 1 MB address is refused up front, and worst-case inputs at the length limit finish', { timeout: 5000 }, () => {
    const srs = new Srs({ secret: 'big' });
    const huge = `SRS0=${'='.repeat(1 << 20)}@example.com`;
    for (const call of [() => srs.reverse(huge), () => srs.forward(huge, 'example.com'), () => parseSrs(huge)]) {
      assert.throws(call, (error: unknown) => error instanceof SrsError && error.code === 'invalid-address');
    }
    assert.equal(isSrs(huge), false);
    // Inputs just under the limit made of the characters every parser step looks for.
    for (const filler of ['=', '@', '"', '\\', 'A', 'SRS0=', 'SRS1=a=', '=2W=']) {
      const text = `SRS0=${filler.repeat(MAX_ADDRESS_LENGTH)}`.slice(0, MAX_ADDRESS_LENGTH - 12) + '@example.com';
      for (const call of [() => srs.reverse(text), () => srs.forward(text, 'fwd.example'), () => parseSrs(text)]) {
        try {
          call();
        } catch (error) {
          assert.ok(error instanceof SrsError);
        }
      }
    }
  });
});
