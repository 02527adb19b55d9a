// The SRS hash: HMAC-SHA1 keyed with a secret, over the concatenation (no delimiters) of the
// fields, each lowercased with ASCII rules only, as UTF-8 bytes; then standard base64, cut short.
// Mail::SRS lowercases byte strings with Perl `lc`, libsrs2/postsrsd with C `tolower` in the C
// locale and pysrs with `bytes.lower()`: all three leave non-ASCII bytes alone, so `Ü` stays `Ü`.
// String.prototype.toLowerCase() would turn it into `ü` and break interoperability.

import { createHmac } from 'node:crypto';

/** base64 of a 20-byte SHA-1 digest is 28 characters, the last one padding: 27 carry data. */
export const MAX_HASH_LENGTH = 27;

export type HashAlphabet = 'base64' | 'base64url';

const NON_ASCII = /[^\x00-\x7f]/;

/** The HMAC message: fields joined, ASCII letters lowercased, UTF-8 encoded. */
function macMessage(joined: string): string | Buffer {
  // For pure-ASCII text toLowerCase() is exactly ASCII lowercasing; otherwise lowercase the bytes.
  if (!NON_ASCII.test(joined)) return joined.toLowerCase();
  const bytes = Buffer.from(joined, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b >= 0x41 && b <= 0x5a) bytes[i] = b | 0x20;
  }
  return bytes;
}

/** Canonical form of a hash character for comparison: case folded, `-`≡`+`, `_`≡`/`. */
function foldHashChar(code: number): number {
  if (code >= 0x41 && code <= 0x5a) return code | 0x20;
  if (code === 0x2d) return 0x2b; // '-' → '+'
  if (code === 0x5f) return 0x2f; // '_' → '/'
  return code;
}

/**
 * Compares a received hash with the expected one without an early exit, so the time taken does
 * not tell an attacker how many leading characters were right. Case-insensitive because
 * intermediate MTAs lowercase local parts (Mail::SRS "Someone smashed case"), and base64url
 * tolerant because postsrsd ≥ 2.2.6 emits `-` and `_`.
 */
function sameHash(received: string, expected: string): boolean {
  let difference = received.length ^ expected.length;
  const length = Math.min(received.length, expected.length);
  for (let i = 0; i < length; i++) {
    difference |= foldHashChar(received.charCodeAt(i)) ^ foldHashChar(expected.charCodeAt(i));
  }
  return difference === 0;
}

/** Signs with the first secret; verifies against every secret (rotation). */
export class SrsHasher {
  readonly #secrets: readonly Buffer[];
  readonly #urlSafe: boolean;

  constructor(secrets: readonly Buffer[], alphabet: HashAlphabet) {
    this.#secrets = secrets;
    this.#urlSafe = alphabet === 'base64url';
  }

  #digest(secret: Buffer, joined: string): string {
    return createHmac('sha1', secret)
      .update(macMessage(joined))
      .digest(this.#urlSafe ? 'base64url' : 'base64');
  }

  /** The first `length` characters of the hash of `joined` under the signing secret. */
  sign(joined: string, length: number): string {
    return this.#digest(this.#secrets[0]!, joined).slice(0, length);
  }

  /**
   * Whether `received` is a correct prefix of the hash of `joined` under any secret. Every
   * secret is tried (no early exit), so timing does not reveal which secret matched.
   */
  verify(received: string, joined: string): boolean {
    if (received.length === 0 || received.length > MAX_HASH_LENGTH) return false;
    let matched = false;
    for (const secret of this.#secrets) {
      const expected = this.#digest(secret, joined).slice(0, received.length);
      matched = sameHash(received, expected) || matched;
    }
    return matched;
  }
}
