// The SRS hash: HMAC-SHA1 keyed with a secret, over the concatenation (no delimiters) of the
// fields, each lowercased with ASCII rules only, as UTF-8 bytes; then standard base64, cut short.
// Mail::SRS lowercases byte strings with Perl `lc`, libsrs2/postsrsd with C `tolower` in the C
// locale and pysrs with `bytes.lower()`: all three leave non-ASCII bytes alone, so `Ü` stays `Ü`.
// String.prototype.toLowerCase() would turn it into `ü` and break interoperability.

import { HmacSha1 } from './hmac-sha1.js';

/** base64 of a 20-byte SHA-1 digest is 28 characters, the last one padding: 27 carry data. */
export const MAX_HASH_LENGTH = 27;

export type HashAlphabet = 'base64' | 'base64url';

const ALPHABETS: Record<HashAlphabet, string> = {
  base64: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/',
  base64url: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
};

const encoder = new TextEncoder();
// Reused message buffer (synchronous, never re-entered); grows for long addresses.
let message = new Uint8Array(256);

/** Writes `text` as UTF-8 with ASCII letters lowercased into the shared buffer; returns the byte count. */
function writeMacMessage(text: string): number {
  // Worst case three UTF-8 bytes per UTF-16 unit.
  if (message.length < text.length * 3) message = new Uint8Array(text.length * 3);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80) return writeNonAscii(text);
    message[i] = code >= 0x41 && code <= 0x5a ? code | 0x20 : code;
  }
  return text.length;
}

function writeNonAscii(text: string): number {
  const { written } = encoder.encodeInto(text, message);
  for (let i = 0; i < written; i++) {
    const b = message[i]!;
    if (b >= 0x41 && b <= 0x5a) message[i] = b | 0x20;
  }
  return written;
}

/** The first `length` base64 characters of a digest given as five big-endian words. */
function base64Prefix(words: Int32Array, length: number, alphabet: string): string {
  let out = '';
  for (let bit = 0; out.length < length; bit += 6) {
    // Six bits starting at `bit` of the 160-bit digest; bits past the end read as zero (padding).
    const word = bit >>> 5;
    const offset = bit & 31;
    let sextet = (words[word]! << offset) >>> 26;
    if (offset > 26 && word < 4) sextet |= words[word + 1]! >>> (58 - offset);
    out += alphabet.charAt(sextet);
  }
  return out;
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
  readonly #keys: readonly HmacSha1[];
  readonly #alphabet: string;

  constructor(secrets: readonly Uint8Array[], alphabet: HashAlphabet) {
    this.#keys = secrets.map((secret) => new HmacSha1(secret));
    this.#alphabet = ALPHABETS[alphabet];
  }

  #hash(key: HmacSha1, joined: string, length: number): string {
    return base64Prefix(key.digest(message, writeMacMessage(joined)), length, this.#alphabet);
  }

  /** The first `length` characters of the hash of `joined` under the signing secret. */
  sign(joined: string, length: number): string {
    return this.#hash(this.#keys[0]!, joined, length);
  }

  /**
   * Whether `received` is a correct prefix of the hash of `joined` under any secret. Every
   * secret is tried (no early exit), so timing does not reveal which secret matched.
   */
  verify(received: string, joined: string): boolean {
    if (received.length === 0 || received.length > MAX_HASH_LENGTH) return false;
    let matched = false;
    for (const key of this.#keys) matched = sameHash(received, this.#hash(key, joined, received.length)) || matched;
    return matched;
  }
}
