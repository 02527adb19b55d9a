// The SRS hash: HMAC-SHA1 keyed with a secret, over the concatenation (no delimiters, or `=`
// between them in the opt-in 'delimited' input) of the fields, each lowercased with ASCII rules only, as UTF-8 bytes; then standard base64, cut short.
// Mail::SRS lowercases byte strings with Perl `lc`, libsrs2/postsrsd with C `tolower` in the C
// locale and pysrs with `bytes.lower()`: all three leave non-ASCII bytes alone, so `Ü` stays `Ü`.
// String.prototype.toLowerCase() would turn it into `ü` and break interoperability.

import { HmacSha1, paddedSize } from './hmac-sha1.js';

/** base64 of a 20-byte SHA-1 digest is 28 characters, the last one padding: 27 carry data. */
export const MAX_HASH_LENGTH = 27;

/**
 * The alphabet of the hash an `Srs` writes: standard base64 (Mail::SRS, pysrs, postsrsd
 * before 2.2.6), or base64url (`-` and `_`, postsrsd 2.2.6 and later). Both are accepted on reverse.
 */
export type HashAlphabet = 'base64' | 'base64url';

/**
 * What the HMAC covers:
 * - `'concatenated'`: the fields joined with nothing between them, as Mail::SRS (Guarded),
 *   postsrsd and pysrs sign. The boundary between host and local part is not signed, so one hash
 *   fits every split of `host‖local` (see docs/srs.md, "Boundary shifts").
 * - `'delimited'`: the fields joined with `=`, exactly as they stand in the address. A host never
 *   contains `=`, so the split is signed too; only outbound-pools reads these hashes.
 */
export type HashInput = 'concatenated' | 'delimited';

const ALPHABETS: Record<HashAlphabet, string> = {
  base64: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/',
  base64url: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
};

const encoder = new TextEncoder();
// Reused message buffer (synchronous, never re-entered), written as bytes and read by the
// hashing as a DataView of the same memory; both grow together for long addresses.
let message = new Uint8Array(512);
let messageView = new DataView(message.buffer);

const EQUALS = 0x3d;

/**
 * Writes the fields one after another, as UTF-8 with ASCII letters lowercased, into the shared
 * buffer, with `=` between them when `delimited`; returns the byte count. Writing them in turn
 * spares joining them into a new string. `c` is absent for the two fields of SRS1.
 */
function writeMacMessage(delimited: boolean, a: string, b: string, c: string | undefined): number {
  // Three UTF-8 bytes per UTF-16 unit at most, two delimiters, and room for the SHA-1 padding.
  const most = paddedSize(3 * (a.length + b.length + (c?.length ?? 0)) + 2);
  if (message.length < most) {
    message = new Uint8Array(most);
    messageView = new DataView(message.buffer);
  }
  let at = writeField(a, 0);
  if (delimited) message[at++] = EQUALS;
  at = writeField(b, at);
  if (c === undefined) return at;
  if (delimited) message[at++] = EQUALS;
  return writeField(c, at);
}

function writeField(text: string, at: number): number {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80) return writeNonAscii(text, at);
    message[at + i] = code >= 0x41 && code <= 0x5a ? code | 0x20 : code;
  }
  return at + text.length;
}

function writeNonAscii(text: string, at: number): number {
  const { written } = encoder.encodeInto(text, message.subarray(at));
  for (let i = at; i < at + written; i++) {
    const b = message[i]!;
    if (b >= 0x41 && b <= 0x5a) message[i] = b | 0x20;
  }
  return at + written;
}

/** Base64 digit `index` (0…26) of a digest given as five big-endian words; bits past the end are zero. */
function sextet(words: Int32Array, index: number): number {
  const bit = index * 6;
  const word = bit >>> 5;
  const offset = bit & 31;
  let value = (words[word]! << offset) >>> 26;
  if (offset > 26 && word < 4) value |= words[word + 1]! >>> (58 - offset);
  return value;
}

/** The first `length` characters of a digest in the given base64 alphabet. */
function base64Prefix(words: Int32Array, length: number, alphabet: string): string {
  if (length === 4) {
    // The usual length, built in one flat string rather than four concatenations.
    return String.fromCharCode(
      alphabet.charCodeAt(sextet(words, 0)),
      alphabet.charCodeAt(sextet(words, 1)),
      alphabet.charCodeAt(sextet(words, 2)),
      alphabet.charCodeAt(sextet(words, 3)),
    );
  }
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet.charAt(sextet(words, i));
  return out;
}

/** Canonical form of a hash character for comparison: case folded, `-`≡`+`, `_`≡`/`. */
function foldHashChar(code: number): number {
  if (code >= 0x41 && code <= 0x5a) return code | 0x20;
  if (code === 0x2d) return 0x2b; // '-' → '+'
  if (code === 0x5f) return 0x2f; // '_' → '/'
  return code;
}

// Base64 digits, already folded, as character codes.
const FOLDED_DIGITS = Uint8Array.from(ALPHABETS.base64, (c) => foldHashChar(c.charCodeAt(0)));

/**
 * Whether `received` equals the start of the digest's base64, compared without an early exit so
 * that the time taken does not tell an attacker how many leading characters were right.
 * Case-insensitive because intermediate MTAs lowercase local parts (Mail::SRS "Someone smashed
 * case"), and base64url-tolerant because postsrsd ≥ 2.2.6 emits `-` and `_`.
 */
function matchesDigest(received: string, words: Int32Array): boolean {
  let difference = 0;
  for (let i = 0; i < received.length; i++) {
    difference |= foldHashChar(received.charCodeAt(i)) ^ FOLDED_DIGITS[sextet(words, i)]!;
  }
  return difference === 0;
}

/** Signs with the first secret; verifies against every secret (rotation). */
export class SrsHasher {
  readonly #keys: readonly HmacSha1[];
  readonly #alphabet: string;
  readonly #delimited: boolean;

  constructor(secrets: readonly Uint8Array[], alphabet: HashAlphabet, input: HashInput) {
    this.#keys = secrets.map((secret) => new HmacSha1(secret));
    this.#alphabet = ALPHABETS[alphabet];
    this.#delimited = input === 'delimited';
  }

  /**
   * The first `length` characters of the hash of the fields under the signing secret. SRS hashes
   * three fields (stamp, host, local) or, for SRS1, two (`c` absent).
   */
  sign(length: number, a: string, b: string, c?: string): string {
    const bytes = writeMacMessage(this.#delimited, a, b, c);
    this.signedOctets = this.#delimited ? bytes - (c === undefined ? 1 : 2) : bytes;
    const words = this.#keys[0]!.digest(messageView, bytes);
    return base64Prefix(words, length, this.#alphabet);
  }

  /**
   * The UTF-8 octets of the fields the last {@link sign} covered, delimiters left out: the size
   * of the address built from them follows, without counting the fields again.
   */
  signedOctets = 0;

  /**
   * Whether `received` is a correct prefix of the hash of the fields under any secret. Every
   * secret is tried (no early exit), so timing does not reveal which secret matched.
   */
  verify(received: string, a: string, b: string, c?: string): boolean {
    if (received.length === 0 || received.length > MAX_HASH_LENGTH) return false;
    const length = writeMacMessage(this.#delimited, a, b, c);
    let matched = false;
    for (const key of this.#keys) matched = matchesDigest(received, key.digest(messageView, length)) || matched;
    return matched;
  }
}
