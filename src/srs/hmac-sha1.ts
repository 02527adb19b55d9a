// HMAC-SHA1 (RFC 2104 over FIPS 180-4 SHA-1) for the short messages SRS signs, in plain
// TypeScript. Why not node:crypto's createHmac: for a 40-byte message its per-call set-up (a
// native object, the key schedule, two extra compressions for the padded key) costs more than
// the hashing itself. Here the key's inner and outer states are computed once per secret, so
// one HMAC of an address is two or three compressions and no allocation. The property tests
// check it against createHmac on random keys and messages.

const BLOCK_BYTES = 64;
const INITIAL_STATE = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0] as const;
// Round constants as signed 32-bit integers, so that V8 keeps the round arithmetic in int32.
const K1 = 0x5a827999;
const K2 = 0x6ed9eba1;
const K3 = 0x8f1bbcdc | 0;
const K4 = 0xca62c1d6 | 0;

// Scratch space shared by every call: the functions below are synchronous and never re-entered,
// so sharing is safe and keeps the hot path free of allocations.
const schedule = new Int32Array(80);
const block = new Int32Array(16);

/** One SHA-1 compression of the 16-word `block` into `state`. */
function compress(state: Int32Array): void {
  const w = schedule;
  for (let t = 0; t < 16; t++) w[t] = block[t]!;
  for (let t = 16; t < 80; t++) {
    const x = w[t - 3]! ^ w[t - 8]! ^ w[t - 14]! ^ w[t - 16]!;
    w[t] = (x << 1) | (x >>> 31);
  }
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let e = state[4]!;
  // One loop per round function, so that no round branches on its number; partial sums are
  // truncated with |0 so they never leave int32.
  for (let t = 0; t < 20; t++) {
    const next = (((a << 5) | (a >>> 27)) + ((((b & c) | (~b & d)) + ((e + w[t]!) | 0)) | 0) + K1) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = next;
  }
  for (let t = 20; t < 40; t++) {
    const next = (((a << 5) | (a >>> 27)) + (((b ^ c ^ d) + ((e + w[t]!) | 0)) | 0) + K2) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = next;
  }
  for (let t = 40; t < 60; t++) {
    const next = (((a << 5) | (a >>> 27)) + ((((b & c) | (b & d) | (c & d)) + ((e + w[t]!) | 0)) | 0) + K3) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = next;
  }
  for (let t = 60; t < 80; t++) {
    const next = (((a << 5) | (a >>> 27)) + (((b ^ c ^ d) + ((e + w[t]!) | 0)) | 0) + K4) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = next;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
}

/**
 * Continues SHA-1 from `state`, which has already absorbed `prefixBytes` bytes, over
 * `message[0, length)` with the final padding (FIPS 180-4 §5.1.1); leaves the digest in `state`.
 */
function finish(state: Int32Array, message: Uint8Array, length: number, prefixBytes: number): void {
  const total = Math.floor((length + 8) / BLOCK_BYTES) * BLOCK_BYTES + BLOCK_BYTES;
  const bits = (prefixBytes + length) * 8; // far below 2^32 for anything an address can be
  const whole = length & ~3; // bytes that fill whole words
  for (let start = 0; start < total; start += BLOCK_BYTES) {
    for (let word = 0, i = start; word < 16; word++, i += 4) {
      if (i < whole) {
        block[word] = (message[i]! << 24) | (message[i + 1]! << 16) | (message[i + 2]! << 8) | message[i + 3]!;
      } else if (i > length) {
        block[word] = 0;
      } else {
        // The word holding the end of the message and the 0x80 terminator.
        let value = 0;
        for (let j = i; j < i + 4; j++) value = (value << 8) | (j < length ? message[j]! : j === length ? 0x80 : 0);
        block[word] = value;
      }
    }
    if (start + BLOCK_BYTES === total) block[15] = bits;
    compress(state);
  }
}

function sha1(message: Uint8Array): Int32Array {
  const state = Int32Array.from(INITIAL_STATE);
  finish(state, message, message.length, 0);
  return state;
}

function wordsToBytes(words: Int32Array, out: Uint8Array): Uint8Array {
  for (let i = 0; i < 5; i++) {
    const word = words[i]!;
    out[4 * i] = word >>> 24;
    out[4 * i + 1] = word >>> 16;
    out[4 * i + 2] = word >>> 8;
    out[4 * i + 3] = word;
  }
  return out;
}

/** HMAC-SHA1 under one key, with the key's inner and outer states precomputed. */
export class HmacSha1 {
  readonly #inner = new Int32Array(5);
  readonly #outer = new Int32Array(5);
  readonly #work = new Int32Array(5);

  constructor(key: Uint8Array) {
    // RFC 2104 §2: a key longer than the block is hashed first; then it is zero-padded.
    const padded = new Uint8Array(BLOCK_BYTES);
    padded.set(key.length > BLOCK_BYTES ? wordsToBytes(sha1(key), new Uint8Array(20)) : key);
    for (const [state, xor] of [[this.#inner, 0x36], [this.#outer, 0x5c]] as const) {
      for (let word = 0; word < 16; word++) {
        const i = 4 * word;
        block[word] = ((padded[i]! ^ xor) << 24) | ((padded[i + 1]! ^ xor) << 16) | ((padded[i + 2]! ^ xor) << 8) | (padded[i + 3]! ^ xor);
      }
      state.set(INITIAL_STATE);
      compress(state);
    }
  }

  /**
   * The HMAC of `message[0, length)` as five big-endian 32-bit words. Returns a buffer of this
   * instance that the next call overwrites: read it before calling again.
   */
  digest(message: Uint8Array, length: number): Int32Array {
    const work = this.#work;
    work.set(this.#inner);
    finish(work, message, length, BLOCK_BYTES);
    // The outer hash takes the 20-byte inner digest: one block, padded, 84 bytes in all.
    block[0] = work[0]!;
    block[1] = work[1]!;
    block[2] = work[2]!;
    block[3] = work[3]!;
    block[4] = work[4]!;
    block[5] = 0x80000000 | 0;
    block.fill(0, 6, 15);
    block[15] = (BLOCK_BYTES + 20) * 8;
    work.set(this.#outer);
    compress(work);
    return work;
  }

  /** The HMAC as 20 bytes (a new array): for tests and callers off the hot path. */
  digestBytes(message: Uint8Array): Uint8Array {
    return wordsToBytes(this.digest(message, message.length), new Uint8Array(20));
  }
}
