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
    }
  }
  return lastAt;
}

function unquote(quoted: string): string {
  return quoted.slice(1, -1).replace(/\\(.)/g, '$1');
}

/** Writes a local part as an RFC 5321 quoted-string. */
export function quoteLocalPart(local: string): string {
  return `"${local.replace(/["\\]/g, '\\$&')}"`;
}

/** Splits an address at its last `@`; the local part comes back unquoted. */
export function splitAddress(address: unknown): AddressParts {
  const at = checkAddressText(address);
  const text = address as string;
  if (at < 0 || at === text.length - 1) {
    throw new SrsError('no-domain', `The address ${describe(address)} has no domain: SRS needs local@domain.`);
  }
  const rawLocal = text.slice(0, at);
  const quoted = rawLocal.length >= 2 && rawLocal.startsWith('"') && rawLocal.endsWith('"');
  const local = quoted ? unquote(rawLocal) : rawLocal;
  if (local.length === 0) {
    throw new SrsError('invalid-address', `The address ${describe(address)} has an empty local part.`);
  }
  return { local, domain: text.slice(at + 1), quoted };
}

/** The kind of SRS a local part is by its tag (`SRS0=`, `srs1+`, …), or null when it is neither. */
export function srsKind(local: string): 'SRS0' | 'SRS1' | null {
  if (local.length < 5 || !startsWithIgnoringAsciiCase(local, 'srs')) return null;
  const digit = local.charCodeAt(3);
  const separator = local.charCodeAt(4);
  if (separator !== 0x3d && separator !== 0x2b && separator !== 0x2d) return null; // = + -
  return digit === 0x30 ? 'SRS0' : digit === 0x31 ? 'SRS1' : null;
}

function malformed(address: string, missing: string): SrsError {
  return new SrsError('malformed', `The SRS address ${describe(address)} is malformed: ${missing}.`);
}

/**
 * Splits `rest` at its first `count` `=` signs. The last field keeps any further `=`: original
 * local parts such as `user=with=equals` survive (Mail::SRS `split` with a limit).
 */
export function splitFields(rest: string, count: number): string[] | null {
  const fields: string[] = [];
  let start = 0;
  for (let i = 0; i < count; i++) {
    const end = rest.indexOf('=', start);
    if (end < 0) return null;
    fields.push(rest.slice(start, end));
    start = end + 1;
  }
  fields.push(rest.slice(start));
  return fields;
}

/** Parses the local part of an SRS address; `address` is only used in error messages. */
export function parseSrsLocal(parts: AddressParts, address: string): SrsAddress {
  const kind = srsKind(parts.local);
  if (kind === null) {
    throw new SrsError('not-srs', `The address ${describe(address)} is not an SRS address (no SRS0/SRS1 tag).`);
  }
  const separator = parts.local.charAt(4) as SrsSeparator;
  const rest = parts.local.slice(5);
  if (kind === 'SRS0') {
    const fields = splitFields(rest, 3);
    if (fields === null) throw malformed(address, 'SRS0 needs HASH=TT=host=local');
    const [hash, timestamp, host, local] = fields as [string, string, string, string];
    if (hash.length === 0) throw malformed(address, 'the hash is empty');
    if (decodeStamp(timestamp) < 0) {
      throw malformed(address, `the timestamp ${describe(timestamp)} is not two characters of A-Z2-7`);
    }
    if (host.length === 0) throw malformed(address, 'the original domain is empty');
    if (local.length === 0) throw malformed(address, 'the original local part is empty');
    return { type: 'SRS0', separator, hash, timestamp, host, local, domain: parts.domain };
  }
  const fields = splitFields(rest, 2);
  if (fields === null) throw malformed(address, 'SRS1 needs HASH=srs0host=srs0part');
  const [hash, srs0Host, srs0Rest] = fields as [string, string, string];
  if (hash.length === 0) throw malformed(address, 'the hash is empty');
  if (hash.includes('.')) {
    throw malformed(address, 'hashless SRS1 (Mail::SRS before 0.28) is not accepted: it cannot be verified');
  }
  if (srs0Host.length === 0) throw malformed(address, 'the SRS0 host is empty');
  if (srs0Rest.length === 0) throw malformed(address, 'the wrapped SRS0 part is empty');
  return {
    type: 'SRS1',
    separator,
    hash,
    srs0Host,
    srs0Local: `SRS0${srs0Rest}`,
    domain: parts.domain,
  };
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
