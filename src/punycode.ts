// Punycode decoding (RFC 3492 §6.2), to check A-labels ourselves. node:url's domainToASCII
// refused an `xn--` label whose Punycode does not decode up to Node 22, and passes it through
// unchanged from Node 24 (`xn--abc.example` comes back as it went in): what a domain name is
// must not depend on the Node version.

const BASE = 36;
const T_MIN = 1;
const T_MAX = 26;
const SKEW = 38;
const DAMP = 700;
const INITIAL_BIAS = 72;
const INITIAL_N = 0x80;
/** RFC 3492 §6.4: decoding fails on overflow past the integer size; 32 bits, as its sample code. */
const MAX_INT = 0x7fffffff;

/** RFC 3492 §6.1. */
function adapt(delta: number, points: number, first: boolean): number {
  let d = first ? Math.floor(delta / DAMP) : Math.floor(delta / 2);
  d += Math.floor(d / points);
  let k = 0;
  while (d > ((BASE - T_MIN) * T_MAX) >> 1) {
    d = Math.floor(d / (BASE - T_MIN));
    k += BASE;
  }
  return k + Math.floor(((BASE - T_MIN + 1) * d) / (d + SKEW));
}

/** The value of a Punycode digit (`a`–`z` 0–25, `0`–`9` 26–35, either case), or -1. */
function digitValue(code: number): number {
  if (code >= 0x61 && code <= 0x7a) return code - 0x61;
  if (code >= 0x41 && code <= 0x5a) return code - 0x41;
  if (code >= 0x30 && code <= 0x39) return code - 0x30 + 26;
  return -1;
}

/**
 * Decodes a Punycode string (the part of an A-label after `xn--`) to its code points, or
 * returns null when it is not valid Punycode: a non-basic character, a bad digit, a truncated
 * number, an overflow, or a code point that is a surrogate or past U+10FFFF.
 */
export function decodePunycode(input: string): number[] | null {
  const output: number[] = [];
  // The basic code points come before the last delimiter, if any (RFC 3492 §3.1).
  const delimiter = input.lastIndexOf('-');
  for (let j = 0; j < delimiter; j++) {
    const code = input.charCodeAt(j);
    if (code >= 0x80) return null;
    output.push(code);
  }
  let n = INITIAL_N;
  let i = 0;
  let bias = INITIAL_BIAS;
  for (let pos = delimiter > 0 ? delimiter + 1 : 0; pos < input.length; ) {
    const oldI = i;
    let w = 1;
    for (let k = BASE; ; k += BASE) {
      if (pos >= input.length) return null;
      const digit = digitValue(input.charCodeAt(pos++));
      if (digit < 0 || digit > Math.floor((MAX_INT - i) / w)) return null;
      i += digit * w;
      const t = k <= bias ? T_MIN : k >= bias + T_MAX ? T_MAX : k - bias;
      if (digit < t) break;
      if (w > Math.floor(MAX_INT / (BASE - t))) return null;
      w *= BASE - t;
    }
    const length = output.length + 1;
    bias = adapt(i - oldI, length, oldI === 0);
    if (Math.floor(i / length) > MAX_INT - n) return null;
    n += Math.floor(i / length);
    i %= length;
    if (n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return null;
    output.splice(i, 0, n);
    i++;
  }
  return output;
}

/**
 * The U-label of an A-label (`xn--bcher-kva` → `bücher`), or null when the label is not one:
 * its Punycode does not decode, or decodes to ASCII only (RFC 5890 §2.3.2.1: an A-label is
 * the ASCII form of a label with at least one non-ASCII character). `label` is lowercase.
 */
export function aLabelToUnicode(label: string): string | null {
  if (!label.startsWith('xn--')) return null;
  const points = decodePunycode(label.slice(4));
  if (points === null || points.length === 0 || points.every((point) => point < 0x80)) return null;
  return String.fromCodePoint(...points);
}
