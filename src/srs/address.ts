// Reading envelope addresses the way the SRS peers do: split at the last `@` (Mail::SRS and
// pysrs; only quoted local parts can contain another `@`), and recognise SRS0/SRS1 local parts
// by their tag, case-insensitively, followed by one of the separators `=`, `+`, `-`.

import { MAX_ADDRESS_LENGTH, SrsError } from './errors.js';
import { decodeStamp } from './timestamp.js';

/** The initial separator after `SRS0`/`SRS1`. Every later separator is always `=`. */
export type SrsSeparator = '=' | '+' | '-';

/** An envelope address cut into its local part (unquoted) and its domain. */
export interface AddressParts {
  /** The local part, with the quotes and backslash escapes of a quoted-string removed. */
  readonly local: string;
  /** Everything after the last `@`, as written. */
  readonly domain: string;
  /** Whether the local part was a quoted-string (`"foo bar"@example.org`). */
  readonly quoted: boolean;
}

/** A first-hop SRS address: `SRS0<s>HASH=TT=host=local@forwarder`. */
export interface Srs0Address {
  readonly type: 'SRS0';
  readonly separator: SrsSeparator;
  readonly hash: string;
  /** The two-character day stamp as written. */
  readonly timestamp: string;
  /** The original sender's domain. */
  readonly host: string;
  /** The original sender's local part. */
  readonly local: string;
  /** The forwarder's domain after `@` (not covered by the hash; ignored on reverse). */
  readonly domain: string;
}

/** A later-hop SRS address: `SRS1<s>HASH=srs0host=<s0>…@forwarder`, wrapping an SRS0 address. */
export interface Srs1Address {
  readonly type: 'SRS1';
  readonly separator: SrsSeparator;
  readonly hash: string;
  /** The domain of the first forwarder, where the wrapped SRS0 address lives. */
  readonly srs0Host: string;
  /** The wrapped SRS0 local part, `SRS0` tag restored (`SRS0=vmyz=2W=otherdomain.com=test`). */
  readonly srs0Local: string;
  readonly domain: string;
}

/** An SRS address taken apart (`parseSrs`): an SRS0 or an SRS1 address, by `type`. */
export type SrsAddress = Srs0Address | Srs1Address;


function asciiLower(code: number): number {
  return code >= 0x41 && code <= 0x5a ? code | 0x20 : code;
}

/**
 * Whether `text` starts with `prefix`, ignoring the case of ASCII letters only, the way the peers
 * compare (`lc` on bytes, `strncasecmp` in the C locale). `prefix` must be lowercase.
 */
export function startsWithIgnoringAsciiCase(text: string, prefix: string): boolean {
  if (text.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (asciiLower(text.charCodeAt(i)) !== prefix.charCodeAt(i)) return false;
  }
  return true;
}

/** Whether two strings are equal ignoring the case of ASCII letters only (`strcasecmp`). */
export function equalsIgnoringAsciiCase(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (asciiLower(a.charCodeAt(i)) !== asciiLower(b.charCodeAt(i))) return false;
  }
  return true;
}

function describe(value: unknown): string {
  if (typeof value !== 'string') return typeof value;
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/**
 * Refuses what cannot be an envelope address before anything else looks at it, and returns the
 * index of its last `@` (-1 when it has none), found in the same pass.
 */
export function checkAddressText(address: unknown, what = 'address'): number {
  if (typeof address !== 'string') {
    throw new SrsError('invalid-address', `The ${what} must be a string, got ${describe(address)}.`);
  }
  if (address.length === 0) throw new SrsError('invalid-address', `The ${what} is empty.`);
  if (address.length > MAX_ADDRESS_LENGTH) {
    throw new SrsError(
      'invalid-address',
      `The ${what} is ${address.length} characters long; at most ${MAX_ADDRESS_LENGTH} are accepted (RFC 5321 allows a 256-octet path).`,
    );
  }
  let lastAt = -1;
  for (let i = 0; i < address.length; i++) {
    const code = address.charCodeAt(i);
    if (code === 0x40) lastAt = i;
    else if (code < 0x20 || code === 0x7f) {
      throw new SrsError('invalid-address', `The ${what} ${describe(address)} contains control characters.`);
    } else if (code >= 0xd800 && code <= 0xdfff) {
      // A lone surrogate has no UTF-8 form: it would reach the hash as U+FFFD, so two different
      // strings would carry one hash. A high surrogate followed by a low one is a real character.
      if (code <= 0xdbff && (address.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
      else throw new SrsError('invalid-address', `The ${what} ${describe(address)} is not well-formed Unicode (a lone surrogate).`);
    }
  }
  return lastAt;
}

/** UTF-8 length of `text[start, end)` in octets, counted without encoding it (the input is well-formed). */
export function octets(text: string, start = 0, end = text.length): number {
  let count = end - start;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) count += 1;
    else if (code >= 0xd800 && code <= 0xdbff) {
      count += 2; // a surrogate pair: two UTF-16 units, four octets
      i++;
    } else count += 2;
  }
  return count;
}

/** Whether `text[start, end)` takes more than `max` octets in UTF-8; counts only when the length cannot tell. */
export function exceedsOctets(text: string, max: number, start = 0, end = text.length): boolean {
  const length = end - start;
  if (length > max) return true;
  return length * 3 > max && octets(text, start, end) > max; // at most three octets per UTF-16 unit
}

/** Longest local part RFC 5321 §4.5.3.1.1 allows, in octets. */
export const MAX_LOCAL_PART_OCTETS = 64;
/** Longest domain RFC 5321 §4.5.3.1.2 allows, in octets. */
const MAX_DOMAIN_OCTETS = 255;
/** Longest DNS label, RFC 1035 §2.3.4. */
const MAX_LABEL_OCTETS = 63;

/**
 * Whether `text` is a domain an envelope address can carry, and so one a genuine SRS field can
 * hold: dot-separated labels of letters, digits, `-` (not first or last, RFC 5321 §4.1.2
 * `sub-domain`), `_` (found in real DNS names) and non-ASCII characters (RFC 6531 §3.3 U-labels),
 * each 1–63 octets; or an address literal `[…]` (RFC 5321 §4.1.3) of printable ASCII. Never `=`,
 * the SRS field separator: a host holding one could not be read back. At most 255 octets, no
 * trailing dot.
 */
export function isDomainName(text: string, start = 0, end = text.length): boolean {
  if (end <= start || end - start > MAX_DOMAIN_OCTETS) return false;
  if (text.charCodeAt(start) === 0x5b) return isAddressLiteral(text, start, end);
  let labelStart = start;
  let labelOctets = 0;
  let total = 0;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80 && DOMAIN_CHAR[code] === 1 && (code !== 0x2d || i !== labelStart)) {
      // The usual case first: a letter, digit, '_' or an inner '-'.
      if (++labelOctets > MAX_LABEL_OCTETS) return false;
      total++;
      continue;
    }
    if (code === 0x2e) {
      // '.': the label before it must be non-empty and must not end with '-'.
      if (labelOctets === 0 || text.charCodeAt(i - 1) === 0x2d) return false;
      labelStart = i + 1;
      labelOctets = 0;
      total++;
      continue;
    }
    if (code < 0x80) return false;
    const size = code < 0x800 ? 2 : code >= 0xd800 && code <= 0xdbff ? 4 : 3;
    if (size === 4) i++;
    labelOctets += size;
    total += size;
    if (labelOctets > MAX_LABEL_OCTETS) return false;
  }
  return labelOctets > 0 && text.charCodeAt(end - 1) !== 0x2d && total <= MAX_DOMAIN_OCTETS;
}

/** ASCII characters of a domain label: letters, digits, `-` and `_`. */
const DOMAIN_CHAR = asciiSet('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_');

function asciiSet(chars: string): Uint8Array {
  const set = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) set[chars.charCodeAt(i)] = 1;
  return set;
}

/** `[…]` with printable ASCII inside other than `[`, `\\`, `]` (RFC 5321 dcontent) and `=`. */
function isAddressLiteral(text: string, start: number, end: number): boolean {
  if (end - start < 3 || text.charCodeAt(end - 1) !== 0x5d) return false;
  for (let i = start + 1; i < end - 1; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x21 || code > 0x7e || code === 0x5b || code === 0x5c || code === 0x5d || code === 0x3d) return false;
  }
  return true;
}

/** RFC 5322 §3.2.3 atext (which RFC 5321 Dot-string uses) and `.`; non-ASCII is atext too (RFC 6531 §3.3). */
const ATEXT = asciiSet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~.");

/**
 * Whether a local part can be written bare: only atext and dots. Stricter would be RFC 5321
 * §4.1.2 Dot-string (no leading, trailing or doubled dot), but senders such as `john..doe` exist
 * and every peer hands them back bare; what matters is that nothing in it (space, `@`, `"`, `\\`,
 * `,` …) changes where the address splits.
 */
function isBareLocalPart(local: string): boolean {
  for (let i = 0; i < local.length; i++) {
    const code = local.charCodeAt(i);
    if (code < 0x80 && ATEXT[code] !== 1) return false;
  }
  return true;
}

/** Whether `local` is a whole RFC 5321 §4.1.2 Quoted-string: `"…"` with `\\` escaping the next character. */
function isQuotedString(local: string): boolean {
  const last = local.length - 1;
  if (last < 1 || local.charCodeAt(0) !== 0x22 || local.charCodeAt(last) !== 0x22) return false;
  let i = 1;
  while (i < last) {
    const code = local.charCodeAt(i);
    if (code === 0x22) return false;
    i += code === 0x5c ? 2 : 1; // quoted-pair: the next character is literal, even '"'
  }
  return i === last; // past it: the closing quote was escaped
}

/**
 * The local part `content` as it is written in an address: bare when it is atext and dots, as it
 * stands when it already is a whole quoted-string (the form Mail::SRS signs for a quoted sender),
 * otherwise quoted. `reverse` writes the unwrapped local part this way, so the result depends only
 * on the text the hash covers, never on quoting around the SRS address, which it does not cover.
 */
export function asLocalPart(content: string): string {
  return isBareLocalPart(content) || isQuotedString(content) ? content : quoteLocalPart(content);
}

function unquote(quoted: string): string {
  return quoted.slice(1, -1).replace(/\\(.)/g, '$1');
}

/** Writes a local part as an RFC 5321 quoted-string. */
export function quoteLocalPart(local: string): string {
  return `"${local.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * Where an address splits, as positions rather than copies (the hot paths slice only what they
 * return). One object, reused by every call of {@link viewAddress}: read it before the next call.
 */
export interface AddressView {
  /** The text the local part is read from: the address itself, or its local part unquoted. */
  text: string;
  /** The local part is `text[0, end)`. */
  end: number;
  /** Index of the last `@` of the address: the domain is `address.slice(at + 1)`. */
  at: number;
  /** Whether the local part was a quoted-string (`"foo bar"@example.org`). */
  quoted: boolean;
}

const view: AddressView = { text: '', end: 0, at: 0, quoted: false };

/**
 * Splits an address at its last `@` (Mail::SRS and pysrs: only a quoted local part can hold
 * another `@`), after {@link checkAddressText}; a quoted local part is read unquoted.
 */
export function viewAddress(address: unknown): AddressView {
  const at = checkAddressText(address);
  const text = address as string;
  if (at < 0 || at === text.length - 1) {
    throw new SrsError('no-domain', `The address ${describe(address)} has no domain: SRS needs local@domain.`);
  }
  const quoted = at >= 2 && text.charCodeAt(0) === 0x22 && text.charCodeAt(at - 1) === 0x22;
  view.text = quoted ? unquote(text.slice(0, at)) : text;
  view.end = quoted ? view.text.length : at;
  view.at = at;
  view.quoted = quoted;
  if (view.end === 0) {
    throw new SrsError('invalid-address', `The address ${describe(address)} has an empty local part.`);
  }
  return view;
}

/** Splits an address at its last `@`; the local part comes back unquoted. */
export function splitAddress(address: unknown): AddressParts {
  const { text, end, at, quoted } = viewAddress(address);
  return { local: text.slice(0, end), domain: (address as string).slice(at + 1), quoted };
}

/** The kind of SRS the text from `start` is by its tag (`SRS0=`, `srs1+`, …), or null when it is neither. */
export function srsKind(local: string, start = 0): 'SRS0' | 'SRS1' | null {
  if (local.length < start + 5) return null;
  const s = local.charCodeAt(start) | 0x20;
  const r = local.charCodeAt(start + 1) | 0x20;
  const s2 = local.charCodeAt(start + 2) | 0x20;
  if (s !== 0x73 || r !== 0x72 || s2 !== 0x73) return null; // "srs" in any ASCII case
  const separator = local.charCodeAt(start + 4);
  if (separator !== 0x3d && separator !== 0x2b && separator !== 0x2d) return null; // = + -
  const digit = local.charCodeAt(start + 3);
  return digit === 0x30 ? 'SRS0' : digit === 0x31 ? 'SRS1' : null;
}

function malformed(address: string, missing: string): SrsError {
  return new SrsError('malformed', `The SRS address ${describe(address)} is malformed: ${missing}.`);
}

/** Whether an SRS1 part starts as forward leaves it: with the separator of the SRS0 it wraps. */
export function isWrappedSrs0(rest: string, start = 0): boolean {
  const code = rest.charCodeAt(start);
  return code === 0x3d || code === 0x2b || code === 0x2d; // = + -
}

/**
 * The fields of an SRS local part as positions, filled by {@link scanSrsFields}; one object,
 * reused: read it before the next call. The hash is `[5, hashEnd)`. SRS0: the stamp is
 * `[hashEnd + 1, stampEnd)`, the host `[stampEnd + 1, hostEnd)`, the original local part
 * `[hostEnd + 1, end)`. SRS1: the SRS0 host is `[hashEnd + 1, hostEnd)`, the wrapped part after
 * `SRS0` `[hostEnd + 1, end)` (stampEnd is unused).
 */
export interface SrsFields {
  kind: 'SRS0' | 'SRS1';
  hashEnd: number;
  stampEnd: number;
  hostEnd: number;
}

const fields: SrsFields = { kind: 'SRS0', hashEnd: 0, stampEnd: 0, hostEnd: 0 };

/**
 * Finds the fields of the SRS local part `text[0, end)`; `address` is only used in error
 * messages. Fields are split at the first `=` signs after the tag, the last one keeps any
 * further `=` (original local parts such as `user=with=equals`, Mail::SRS `split` with a limit).
 * Besides the form, it refuses what no genuine forward produces, so that `reverse` never hands on
 * a host or local part that a forwarder could not have signed: a host that is not a domain name,
 * an empty or over-64-octet original local part, an original local part that is itself SRS
 * (forward wraps those as SRS1), an SRS1 part that does not start with a separator.
 */
export function scanSrsFields(text: string, end: number, address: string): SrsFields {
  const kind = srsKind(text);
  if (kind === null || end < 5) {
    throw new SrsError('not-srs', `The address ${describe(address)} is not an SRS address (no SRS0/SRS1 tag).`);
  }
  const hashEnd = text.indexOf('=', 5);
  if (hashEnd < 0 || hashEnd >= end) {
    throw malformed(address, kind === 'SRS0' ? 'SRS0 needs HASH=TT=host=local' : 'SRS1 needs HASH=srs0host=srs0part');
  }
  if (hashEnd === 5) throw malformed(address, 'the hash is empty');
  fields.kind = kind;
  fields.hashEnd = hashEnd;
  if (kind === 'SRS0') {
    const stampEnd = text.indexOf('=', hashEnd + 1);
    const hostEnd = stampEnd < 0 ? -1 : text.indexOf('=', stampEnd + 1);
    if (hostEnd < 0 || hostEnd >= end) throw malformed(address, 'SRS0 needs HASH=TT=host=local');
    if (decodeStamp(text, hashEnd + 1, stampEnd) < 0) {
      throw malformed(address, `the timestamp ${describe(text.slice(hashEnd + 1, stampEnd))} is not two characters of A-Z2-7`);
    }
    if (!isDomainName(text, stampEnd + 1, hostEnd)) {
      throw malformed(address, `the original domain ${describe(text.slice(stampEnd + 1, hostEnd))} is not a domain name`);
    }
    checkOriginalLocal(text, hostEnd + 1, end, address);
    fields.stampEnd = stampEnd;
    fields.hostEnd = hostEnd;
    return fields;
  }
  for (let i = 5; i < hashEnd; i++) {
    if (text.charCodeAt(i) === 0x2e) {
      throw malformed(address, 'hashless SRS1 (Mail::SRS before 0.28) is not accepted: it cannot be verified');
    }
  }
  const hostEnd = text.indexOf('=', hashEnd + 1);
  if (hostEnd < 0 || hostEnd >= end) throw malformed(address, 'SRS1 needs HASH=srs0host=srs0part');
  if (!isDomainName(text, hashEnd + 1, hostEnd)) {
    throw malformed(address, `the SRS0 host ${describe(text.slice(hashEnd + 1, hostEnd))} is not a domain name`);
  }
  if (hostEnd + 1 >= end || !isWrappedSrs0(text, hostEnd + 1)) {
    throw malformed(address, 'the wrapped SRS0 part does not start with a separator (= + -)');
  }
  // "SRS0" and the wrapped part: the local part reverse returns.
  if (exceedsOctets(text, MAX_LOCAL_PART_OCTETS - 4, hostEnd + 1, end)) {
    throw malformed(address, `the wrapped SRS0 local part is over ${MAX_LOCAL_PART_OCTETS} octets, which forward never emits`);
  }
  fields.stampEnd = -1;
  fields.hostEnd = hostEnd;
  return fields;
}

function checkOriginalLocal(text: string, start: number, end: number, address: string): void {
  if (start >= end) throw malformed(address, 'the original local part is empty');
  if (exceedsOctets(text, MAX_LOCAL_PART_OCTETS, start, end)) {
    throw malformed(address, `the original local part is over ${MAX_LOCAL_PART_OCTETS} octets (RFC 5321 §4.5.3.1.1)`);
  }
  if (srsKind(text, start) !== null) throw malformed(address, 'the original local part is itself SRS, which forward wraps as SRS1');
}

/** Parses the local part of an SRS address; `address` is only used in error messages. */
export function parseSrsLocal(parts: AddressParts, address: string): SrsAddress {
  const local = parts.local;
  const { kind, hashEnd, stampEnd, hostEnd } = scanSrsFields(local, local.length, address);
  const separator = local.charAt(4) as SrsSeparator;
  const hash = local.slice(5, hashEnd);
  if (kind === 'SRS0') {
    return {
      type: 'SRS0',
      separator,
      hash,
      timestamp: local.slice(hashEnd + 1, stampEnd),
      host: local.slice(stampEnd + 1, hostEnd),
      local: local.slice(hostEnd + 1),
      domain: parts.domain,
    };
  }
  return { type: 'SRS1', separator, hash, srs0Host: local.slice(hashEnd + 1, hostEnd), srs0Local: `SRS0${local.slice(hostEnd + 1)}`, domain: parts.domain };
}

/**
 * Whether an address is SRS0 or SRS1 by its tag (`SRS0=`, `srs1+`, …). It does not check the
 * hash or timestamp: use {@link Srs.reverse} for that. Never throws; anything that is not a
 * string or not an address is simply not SRS.
 */
export function isSrs(address: unknown): boolean {
  if (typeof address !== 'string' || address.length > MAX_ADDRESS_LENGTH) return false;
  const at = address.lastIndexOf('@');
  if (at < 0) return false;
  return srsKind(address.startsWith('"') ? address.slice(1, at) : address) !== null;
}

/**
 * Reads the fields of an SRS0 or SRS1 address without checking its hash or age (no secret
 * needed): for logs, tracing and tools. Throws {@link SrsError} `not-srs` or `malformed`.
 */
export function parseSrs(address: unknown): SrsAddress {
  const parts = splitAddress(address);
  return parseSrsLocal(parts, address as string);
}
