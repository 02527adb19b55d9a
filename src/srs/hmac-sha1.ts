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

// The outer block of every HMAC: the 20-byte inner digest, then its padding (0x80, zeros, and
// the length, 64 + 20 bytes in bits), which never changes. Shared by every call: the functions
// below are synchronous and never re-entered, so sharing is safe and allocates nothing.
const outerBlock = new DataView(new ArrayBuffer(64));
outerBlock.setUint8(20, 0x80);
outerBlock.setUint32(60, (64 + 20) * 8);

// The SHA-1 functions of FIPS 180-4 §4.1.1 and the rotations of §3.2; V8 inlines them.
const rotl1 = (x: number): number => (x << 1) | (x >>> 31);
const rotl5 = (x: number): number => (x << 5) | (x >>> 27);
const rotl30 = (x: number): number => (x << 30) | (x >>> 2);
/** Ch(x, y, z), rounds 0–19: y where x is set, z elsewhere. */
const choose = (x: number, y: number, z: number): number => z ^ (x & (y ^ z));
/** Parity(x, y, z), rounds 20–39 and 60–79. */
const parity = (x: number, y: number, z: number): number => x ^ y ^ z;
/** Maj(x, y, z), rounds 40–59: the bit most of x, y, z have. */
const majority = (x: number, y: number, z: number): number => (x & y) | (z & (x | y));

/**
 * One SHA-1 compression of the 64-byte block at `offset` in `data` into `state` (FIPS 180-4
 * §6.1.2). DataView reads the block's big-endian words directly (V8 compiles each to one load
 * and a byte swap), instead of assembling each from four bytes.
 *
 * Written out round by round, on purpose: with the message schedule in sixteen local variables
 * (the 16-word circular form of FIPS 180-4 §6.1.3: W[t] replaces W[t-16] in place) and the five
 * working variables renamed from round to round instead of shifted, V8 keeps everything in
 * registers, and a compression takes about 105 ns instead of 190 ns for the loop over an
 * 80-word array (measured on the development machine, Node 22). Each line is one round t:
 * `e = ROTL5(a) + f_t(b, c, d) + e + W[t] + K_t; b = ROTL30(b)`, the letters rotating by one
 * every round; from round 16 on, the line first computes W[t] = ROTL1(W[t-3] ^ W[t-8] ^
 * W[t-14] ^ W[t-16]). The property tests compare the result with node:crypto.
 */
function compress(state: Int32Array, data: DataView, offset: number): void {
  let w0 = data.getInt32(offset), w1 = data.getInt32(offset + 4), w2 = data.getInt32(offset + 8), w3 = data.getInt32(offset + 12);
  let w4 = data.getInt32(offset + 16), w5 = data.getInt32(offset + 20), w6 = data.getInt32(offset + 24), w7 = data.getInt32(offset + 28);
  let w8 = data.getInt32(offset + 32), w9 = data.getInt32(offset + 36), w10 = data.getInt32(offset + 40), w11 = data.getInt32(offset + 44);
  let w12 = data.getInt32(offset + 48), w13 = data.getInt32(offset + 52), w14 = data.getInt32(offset + 56), w15 = data.getInt32(offset + 60);
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let e = state[4]!;
  e = (rotl5(a) + choose(b, c, d) + e + w0 + K1) | 0; b = rotl30(b);
  d = (rotl5(e) + choose(a, b, c) + d + w1 + K1) | 0; a = rotl30(a);
  c = (rotl5(d) + choose(e, a, b) + c + w2 + K1) | 0; e = rotl30(e);
  b = (rotl5(c) + choose(d, e, a) + b + w3 + K1) | 0; d = rotl30(d);
  a = (rotl5(b) + choose(c, d, e) + a + w4 + K1) | 0; c = rotl30(c);
  e = (rotl5(a) + choose(b, c, d) + e + w5 + K1) | 0; b = rotl30(b);
  d = (rotl5(e) + choose(a, b, c) + d + w6 + K1) | 0; a = rotl30(a);
  c = (rotl5(d) + choose(e, a, b) + c + w7 + K1) | 0; e = rotl30(e);
  b = (rotl5(c) + choose(d, e, a) + b + w8 + K1) | 0; d = rotl30(d);
  a = (rotl5(b) + choose(c, d, e) + a + w9 + K1) | 0; c = rotl30(c);
  e = (rotl5(a) + choose(b, c, d) + e + w10 + K1) | 0; b = rotl30(b);
  d = (rotl5(e) + choose(a, b, c) + d + w11 + K1) | 0; a = rotl30(a);
  c = (rotl5(d) + choose(e, a, b) + c + w12 + K1) | 0; e = rotl30(e);
  b = (rotl5(c) + choose(d, e, a) + b + w13 + K1) | 0; d = rotl30(d);
  a = (rotl5(b) + choose(c, d, e) + a + w14 + K1) | 0; c = rotl30(c);
  e = (rotl5(a) + choose(b, c, d) + e + w15 + K1) | 0; b = rotl30(b);
  w0 = rotl1(w13 ^ w8 ^ w2 ^ w0); d = (rotl5(e) + choose(a, b, c) + d + w0 + K1) | 0; a = rotl30(a);
  w1 = rotl1(w14 ^ w9 ^ w3 ^ w1); c = (rotl5(d) + choose(e, a, b) + c + w1 + K1) | 0; e = rotl30(e);
  w2 = rotl1(w15 ^ w10 ^ w4 ^ w2); b = (rotl5(c) + choose(d, e, a) + b + w2 + K1) | 0; d = rotl30(d);
  w3 = rotl1(w0 ^ w11 ^ w5 ^ w3); a = (rotl5(b) + choose(c, d, e) + a + w3 + K1) | 0; c = rotl30(c);
  w4 = rotl1(w1 ^ w12 ^ w6 ^ w4); e = (rotl5(a) + parity(b, c, d) + e + w4 + K2) | 0; b = rotl30(b);
  w5 = rotl1(w2 ^ w13 ^ w7 ^ w5); d = (rotl5(e) + parity(a, b, c) + d + w5 + K2) | 0; a = rotl30(a);
  w6 = rotl1(w3 ^ w14 ^ w8 ^ w6); c = (rotl5(d) + parity(e, a, b) + c + w6 + K2) | 0; e = rotl30(e);
  w7 = rotl1(w4 ^ w15 ^ w9 ^ w7); b = (rotl5(c) + parity(d, e, a) + b + w7 + K2) | 0; d = rotl30(d);
  w8 = rotl1(w5 ^ w0 ^ w10 ^ w8); a = (rotl5(b) + parity(c, d, e) + a + w8 + K2) | 0; c = rotl30(c);
  w9 = rotl1(w6 ^ w1 ^ w11 ^ w9); e = (rotl5(a) + parity(b, c, d) + e + w9 + K2) | 0; b = rotl30(b);
  w10 = rotl1(w7 ^ w2 ^ w12 ^ w10); d = (rotl5(e) + parity(a, b, c) + d + w10 + K2) | 0; a = rotl30(a);
  w11 = rotl1(w8 ^ w3 ^ w13 ^ w11); c = (rotl5(d) + parity(e, a, b) + c + w11 + K2) | 0; e = rotl30(e);
  w12 = rotl1(w9 ^ w4 ^ w14 ^ w12); b = (rotl5(c) + parity(d, e, a) + b + w12 + K2) | 0; d = rotl30(d);
  w13 = rotl1(w10 ^ w5 ^ w15 ^ w13); a = (rotl5(b) + parity(c, d, e) + a + w13 + K2) | 0; c = rotl30(c);
  w14 = rotl1(w11 ^ w6 ^ w0 ^ w14); e = (rotl5(a) + parity(b, c, d) + e + w14 + K2) | 0; b = rotl30(b);
  w15 = rotl1(w12 ^ w7 ^ w1 ^ w15); d = (rotl5(e) + parity(a, b, c) + d + w15 + K2) | 0; a = rotl30(a);
  w0 = rotl1(w13 ^ w8 ^ w2 ^ w0); c = (rotl5(d) + parity(e, a, b) + c + w0 + K2) | 0; e = rotl30(e);
  w1 = rotl1(w14 ^ w9 ^ w3 ^ w1); b = (rotl5(c) + parity(d, e, a) + b + w1 + K2) | 0; d = rotl30(d);
  w2 = rotl1(w15 ^ w10 ^ w4 ^ w2); a = (rotl5(b) + parity(c, d, e) + a + w2 + K2) | 0; c = rotl30(c);
  w3 = rotl1(w0 ^ w11 ^ w5 ^ w3); e = (rotl5(a) + parity(b, c, d) + e + w3 + K2) | 0; b = rotl30(b);
  w4 = rotl1(w1 ^ w12 ^ w6 ^ w4); d = (rotl5(e) + parity(a, b, c) + d + w4 + K2) | 0; a = rotl30(a);
  w5 = rotl1(w2 ^ w13 ^ w7 ^ w5); c = (rotl5(d) + parity(e, a, b) + c + w5 + K2) | 0; e = rotl30(e);
  w6 = rotl1(w3 ^ w14 ^ w8 ^ w6); b = (rotl5(c) + parity(d, e, a) + b + w6 + K2) | 0; d = rotl30(d);
  w7 = rotl1(w4 ^ w15 ^ w9 ^ w7); a = (rotl5(b) + parity(c, d, e) + a + w7 + K2) | 0; c = rotl30(c);
  w8 = rotl1(w5 ^ w0 ^ w10 ^ w8); e = (rotl5(a) + majority(b, c, d) + e + w8 + K3) | 0; b = rotl30(b);
  w9 = rotl1(w6 ^ w1 ^ w11 ^ w9); d = (rotl5(e) + majority(a, b, c) + d + w9 + K3) | 0; a = rotl30(a);
  w10 = rotl1(w7 ^ w2 ^ w12 ^ w10); c = (rotl5(d) + majority(e, a, b) + c + w10 + K3) | 0; e = rotl30(e);
  w11 = rotl1(w8 ^ w3 ^ w13 ^ w11); b = (rotl5(c) + majority(d, e, a) + b + w11 + K3) | 0; d = rotl30(d);
  w12 = rotl1(w9 ^ w4 ^ w14 ^ w12); a = (rotl5(b) + majority(c, d, e) + a + w12 + K3) | 0; c = rotl30(c);
  w13 = rotl1(w10 ^ w5 ^ w15 ^ w13); e = (rotl5(a) + majority(b, c, d) + e + w13 + K3) | 0; b = rotl30(b);
  w14 = rotl1(w11 ^ w6 ^ w0 ^ w14); d = (rotl5(e) + majority(a, b, c) + d + w14 + K3) | 0; a = rotl30(a);
  w15 = rotl1(w12 ^ w7 ^ w1 ^ w15); c = (rotl5(d) + majority(e, a, b) + c + w15 + K3) | 0; e = rotl30(e);
  w0 = rotl1(w13 ^ w8 ^ w2 ^ w0); b = (rotl5(c) + majority(d, e, a) + b + w0 + K3) | 0; d = rotl30(d);
  w1 = rotl1(w14 ^ w9 ^ w3 ^ w1); a = (rotl5(b) + majority(c, d, e) + a + w1 + K3) | 0; c = rotl30(c);
  w2 = rotl1(w15 ^ w10 ^ w4 ^ w2); e = (rotl5(a) + majority(b, c, d) + e + w2 + K3) | 0; b = rotl30(b);
  w3 = rotl1(w0 ^ w11 ^ w5 ^ w3); d = (rotl5(e) + majority(a, b, c) + d + w3 + K3) | 0; a = rotl30(a);
  w4 = rotl1(w1 ^ w12 ^ w6 ^ w4); c = (rotl5(d) + majority(e, a, b) + c + w4 + K3) | 0; e = rotl30(e);
  w5 = rotl1(w2 ^ w13 ^ w7 ^ w5); b = (rotl5(c) + majority(d, e, a) + b + w5 + K3) | 0; d = rotl30(d);
  w6 = rotl1(w3 ^ w14 ^ w8 ^ w6); a = (rotl5(b) + majority(c, d, e) + a + w6 + K3) | 0; c = rotl30(c);
  w7 = rotl1(w4 ^ w15 ^ w9 ^ w7); e = (rotl5(a) + majority(b, c, d) + e + w7 + K3) | 0; b = rotl30(b);
  w8 = rotl1(w5 ^ w0 ^ w10 ^ w8); d = (rotl5(e) + majority(a, b, c) + d + w8 + K3) | 0; a = rotl30(a);
  w9 = rotl1(w6 ^ w1 ^ w11 ^ w9); c = (rotl5(d) + majority(e, a, b) + c + w9 + K3) | 0; e = rotl30(e);
  w10 = rotl1(w7 ^ w2 ^ w12 ^ w10); b = (rotl5(c) + majority(d, e, a) + b + w10 + K3) | 0; d = rotl30(d);
  w11 = rotl1(w8 ^ w3 ^ w13 ^ w11); a = (rotl5(b) + majority(c, d, e) + a + w11 + K3) | 0; c = rotl30(c);
  w12 = rotl1(w9 ^ w4 ^ w14 ^ w12); e = (rotl5(a) + parity(b, c, d) + e + w12 + K4) | 0; b = rotl30(b);
  w13 = rotl1(w10 ^ w5 ^ w15 ^ w13); d = (rotl5(e) + parity(a, b, c) + d + w13 + K4) | 0; a = rotl30(a);
  w14 = rotl1(w11 ^ w6 ^ w0 ^ w14); c = (rotl5(d) + parity(e, a, b) + c + w14 + K4) | 0; e = rotl30(e);
  w15 = rotl1(w12 ^ w7 ^ w1 ^ w15); b = (rotl5(c) + parity(d, e, a) + b + w15 + K4) | 0; d = rotl30(d);
  w0 = rotl1(w13 ^ w8 ^ w2 ^ w0); a = (rotl5(b) + parity(c, d, e) + a + w0 + K4) | 0; c = rotl30(c);
  w1 = rotl1(w14 ^ w9 ^ w3 ^ w1); e = (rotl5(a) + parity(b, c, d) + e + w1 + K4) | 0; b = rotl30(b);
  w2 = rotl1(w15 ^ w10 ^ w4 ^ w2); d = (rotl5(e) + parity(a, b, c) + d + w2 + K4) | 0; a = rotl30(a);
  w3 = rotl1(w0 ^ w11 ^ w5 ^ w3); c = (rotl5(d) + parity(e, a, b) + c + w3 + K4) | 0; e = rotl30(e);
  w4 = rotl1(w1 ^ w12 ^ w6 ^ w4); b = (rotl5(c) + parity(d, e, a) + b + w4 + K4) | 0; d = rotl30(d);
  w5 = rotl1(w2 ^ w13 ^ w7 ^ w5); a = (rotl5(b) + parity(c, d, e) + a + w5 + K4) | 0; c = rotl30(c);
  w6 = rotl1(w3 ^ w14 ^ w8 ^ w6); e = (rotl5(a) + parity(b, c, d) + e + w6 + K4) | 0; b = rotl30(b);
  w7 = rotl1(w4 ^ w15 ^ w9 ^ w7); d = (rotl5(e) + parity(a, b, c) + d + w7 + K4) | 0; a = rotl30(a);
  w8 = rotl1(w5 ^ w0 ^ w10 ^ w8); c = (rotl5(d) + parity(e, a, b) + c + w8 + K4) | 0; e = rotl30(e);
  w9 = rotl1(w6 ^ w1 ^ w11 ^ w9); b = (rotl5(c) + parity(d, e, a) + b + w9 + K4) | 0; d = rotl30(d);
  w10 = rotl1(w7 ^ w2 ^ w12 ^ w10); a = (rotl5(b) + parity(c, d, e) + a + w10 + K4) | 0; c = rotl30(c);
  w11 = rotl1(w8 ^ w3 ^ w13 ^ w11); e = (rotl5(a) + parity(b, c, d) + e + w11 + K4) | 0; b = rotl30(b);
  w12 = rotl1(w9 ^ w4 ^ w14 ^ w12); d = (rotl5(e) + parity(a, b, c) + d + w12 + K4) | 0; a = rotl30(a);
  w13 = rotl1(w10 ^ w5 ^ w15 ^ w13); c = (rotl5(d) + parity(e, a, b) + c + w13 + K4) | 0; e = rotl30(e);
  w14 = rotl1(w11 ^ w6 ^ w0 ^ w14); b = (rotl5(c) + parity(d, e, a) + b + w14 + K4) | 0; d = rotl30(d);
  w15 = rotl1(w12 ^ w7 ^ w1 ^ w15); a = (rotl5(b) + parity(c, d, e) + a + w15 + K4) | 0; c = rotl30(c);
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
}

/**
 * How many bytes a message of `length` bytes takes once padded (FIPS 180-4 §5.1.1): the message,
 * the 0x80 byte, zeros, and the 8-byte length, in whole 64-byte blocks. A buffer passed to
 * {@link HmacSha1.digest} must hold this many, the padding is written into it.
 */
export function paddedSize(length: number): number {
  return (((length + 8) >>> 6) + 1) * BLOCK_BYTES;
}

/**
 * Continues SHA-1 from `state`, which has already absorbed `prefixBytes` bytes, over the first
 * `length` bytes of `data`; leaves the digest in `state`. Pads in place (FIPS 180-4 §5.1.1), so
 * that every block is then read the same way.
 */
function finish(state: Int32Array, data: DataView, length: number, prefixBytes: number): void {
  const total = paddedSize(length);
  data.setUint8(length, 0x80);
  for (let i = length + 1; i < total - 4; i++) data.setUint8(i, 0);
  // The length in bits as a 64-bit big-endian number; its high half (zeroed above) is zero for
  // anything an address can be (under 512 MB).
  data.setUint32(total - 4, (prefixBytes + length) * 8);
  for (let offset = 0; offset < total; offset += BLOCK_BYTES) compress(state, data, offset);
}

/** SHA-1 of a whole byte array (a long HMAC key), copied into a buffer with room for the padding. */
function sha1(bytes: Uint8Array): Int32Array {
  const state = Int32Array.from(INITIAL_STATE);
  finish(state, paddedCopy(bytes), bytes.length, 0);
  return state;
}

/** `bytes` in a new buffer with room for the SHA-1 padding, as the DataView that the hashing reads. */
function paddedCopy(bytes: Uint8Array): DataView {
  const copy = new Uint8Array(paddedSize(bytes.length));
  copy.set(bytes);
  return new DataView(copy.buffer);
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
      const keyBlock = Uint8Array.from(padded, (byte) => byte ^ xor);
      state.set(INITIAL_STATE);
      compress(state, new DataView(keyBlock.buffer), 0);
    }
  }

  /**
   * The HMAC of the first `length` bytes of `message` as five big-endian 32-bit words.
   * `message` must hold {@link paddedSize}(length) bytes: the bytes after `length` are
   * overwritten with the padding. Returns a buffer of this instance that the next call
   * overwrites: read it before calling again.
   */
  digest(message: DataView, length: number): Int32Array {
    const work = this.#work;
    const inner = this.#inner;
    work[0] = inner[0]!;
    work[1] = inner[1]!;
    work[2] = inner[2]!;
    work[3] = inner[3]!;
    work[4] = inner[4]!;
    finish(work, message, length, BLOCK_BYTES);
    // The outer hash takes the 20-byte inner digest (its padding is already in outerBlock).
    outerBlock.setInt32(0, work[0]!);
    outerBlock.setInt32(4, work[1]!);
    outerBlock.setInt32(8, work[2]!);
    outerBlock.setInt32(12, work[3]!);
    outerBlock.setInt32(16, work[4]!);
    const outer = this.#outer;
    work[0] = outer[0]!;
    work[1] = outer[1]!;
    work[2] = outer[2]!;
    work[3] = outer[3]!;
    work[4] = outer[4]!;
    compress(work, outerBlock, 0);
    return work;
  }

  /** The HMAC as 20 bytes (a new array): for tests and callers off the hot path. */
  digestBytes(bytes: Uint8Array): Uint8Array {
    return wordsToBytes(this.digest(paddedCopy(bytes), bytes.length), new Uint8Array(20));
  }
}
