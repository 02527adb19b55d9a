// Options of `new Srs(...)`, checked once, up front, into a frozen object: a wrong option is a
// precise error at start-up, never a surprise on the first bounce.

import { SrsError } from './errors.js';
import { MAX_HASH_LENGTH, type HashAlphabet, type HashInput } from './hash.js';
import type { SrsSeparator } from './address.js';
import { STAMP_CYCLE } from './timestamp.js';

/**
 * What {@link Srs.forward} does when the rewritten local part would be longer than the 64
 * octets RFC 5321 §4.5.3.1.1 allows (receivers may refuse it with `553 5.1.7`):
 * - `'refuse'` (default): throw `SrsError` `local-part-too-long`; the caller decides (send
 *   unrewritten through the relay pool, or reject).
 * - `'bounces'`: the Microsoft 365 fallback, `bounces+SRS=HASH=TT@forwarding-domain`. It does not
 *   carry the original sender: a bounce to it goes to the `bounces` mailbox of the forwarding
 *   domain (see {@link SrsOptions.bouncesLocalPart}), which must exist.
 */
export type LongLocalPartAction = 'refuse' | 'bounces';

/** Options for {@link Srs}. Only `secret` or `secrets` is required. */
export interface SrsOptions {
  /** The secret that signs and verifies. Give this or `secrets`. */
  readonly secret?: string | Uint8Array;
  /**
   * Several secrets for rotation: the first signs, all verify (Mail::SRS `Secret => [...]`,
   * postsrsd's secrets file, one per line). Put the new secret first and keep the old one for
   * `maxAge` days.
   */
  readonly secrets?: readonly (string | Uint8Array)[];
  /** Separator after the `SRS0`/`SRS1` tag: `=` (default), `+` or `-`. */
  readonly separator?: SrsSeparator;
  /** Hash characters emitted, 1–27. Default 4, like every peer. */
  readonly hashLength?: number;
  /** Fewest hash characters accepted on reverse, 1–`hashLength`. Default `hashLength`. */
  readonly hashMin?: number;
  /** Days an address stays valid, 0–1023. Default 21 (Mail::SRS, postsrsd, pysrs). */
  readonly maxAge?: number;
  /**
   * Hash alphabet emitted: `'base64'` (default; Mail::SRS, pysrs, postsrsd < 2.2.6) or
   * `'base64url'` (postsrsd ≥ 2.2.6, for receivers that refuse `/` in local parts). Reverse
   * accepts both whatever this says.
   */
  readonly alphabet?: HashAlphabet;
  /**
   * What the hash covers. `'concatenated'` (default) is the hash of Mail::SRS, postsrsd and
   * pysrs: stamp, host and local part run together, so the host/local boundary is not signed and
   * a genuine address for `victim.example-x.test` also verifies as one for `victim.example`
   * (docs/srs.md, "Boundary shifts"). `'delimited'` signs the fields with their `=` separators,
   * so no boundary can move; choose it when only this forwarder (or others running
   * outbound-pools with the same secret and setting) reverses its addresses, never a peer.
   * Switching invalidates the addresses in flight, like a new secret: bounces to addresses
   * signed the other way fail for up to `maxAge` days.
   */
  readonly hashInput?: HashInput;
  /** Rewrite even when the sender's domain is the forwarding domain. Default false. */
  readonly alwaysRewrite?: boolean;
  /** What to do when the rewritten local part would exceed 64 octets. Default `'refuse'`. */
  readonly longLocalPart?: LongLocalPartAction;
  /** Mailbox of the `'bounces'` fallback: `<this>+SRS=HASH=TT@domain`. Default `'bounces'`. */
  readonly bouncesLocalPart?: string;
}

/** The settings an {@link Srs} instance runs with (secrets left out). */
export interface SrsSettings {
  readonly separator: SrsSeparator;
  readonly hashLength: number;
  readonly hashMin: number;
  readonly maxAge: number;
  readonly alphabet: HashAlphabet;
  readonly hashInput: HashInput;
  readonly alwaysRewrite: boolean;
  readonly longLocalPart: LongLocalPartAction;
  readonly bouncesLocalPart: string;
  /** How many secrets verify (the first of them signs). */
  readonly secretCount: number;
}

const KNOWN_OPTIONS = new Set([
  'secret',
  'secrets',
  'separator',
  'hashLength',
  'hashMin',
  'maxAge',
  'alphabet',
  'hashInput',
  'alwaysRewrite',
  'longLocalPart',
  'bouncesLocalPart',
]);

function invalid(message: string): SrsError {
  return new SrsError('invalid-option', message);
}

function integerIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be an integer from ${min} to ${max}, got ${String(value)}.`);
  }
  return value;
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw invalid(`${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(value)}.`);
  }
  return value as T;
}

function secretBytes(secret: unknown, index: number): Buffer {
  const name = index < 0 ? 'secret' : `secrets[${index}]`;
  if (typeof secret === 'string') {
    if (secret.length === 0) throw invalid(`${name} is empty: an empty secret lets anyone forge addresses.`);
    return Buffer.from(secret, 'utf8');
  }
  if (secret instanceof Uint8Array) {
    if (secret.length === 0) throw invalid(`${name} is empty: an empty secret lets anyone forge addresses.`);
    return Buffer.from(secret);
  }
  throw invalid(`${name} must be a string or a Uint8Array, got ${typeof secret}.`);
}

function readSecrets(options: SrsOptions): Buffer[] {
  const hasOne = options.secret !== undefined;
  const hasMany = options.secrets !== undefined;
  if (hasOne === hasMany) {
    throw invalid('Give exactly one of `secret` (one secret) or `secrets` (a list, the first signs).');
  }
  if (hasOne) return [secretBytes(options.secret, -1)];
  if (!Array.isArray(options.secrets) || options.secrets.length === 0) {
    throw invalid('secrets must be a non-empty array; its first secret signs, all of them verify.');
  }
  return options.secrets.map((secret, index) => secretBytes(secret, index));
}

// No `+` and no `=`: the fallback address is `<mailbox>+SRS=HASH=TT`.
const MAILBOX = /^[A-Za-z0-9!#$%&'*/?^_`{|}~.-]{1,40}$/;

/** Validates options into settings plus the secrets as bytes. */
export function normaliseSrsOptions(options: unknown): { settings: SrsSettings; secrets: Buffer[] } {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid('new Srs(options) needs an options object, at least { secret }.');
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw invalid(`Unknown option \`${key}\`; known: ${[...KNOWN_OPTIONS].join(', ')}.`);
  }
  const input = options as SrsOptions;
  const secrets = readSecrets(input);
  const hashLength = integerIn('hashLength', input.hashLength ?? 4, 1, MAX_HASH_LENGTH);
  const hashMin = integerIn('hashMin', input.hashMin ?? hashLength, 1, hashLength);
  const bouncesLocalPart = input.bouncesLocalPart ?? 'bounces';
  if (typeof bouncesLocalPart !== 'string' || !MAILBOX.test(bouncesLocalPart)) {
    throw invalid(`bouncesLocalPart must be a plain mailbox name (letters, digits, . _ -), got ${JSON.stringify(bouncesLocalPart)}.`);
  }
  if (input.alwaysRewrite !== undefined && typeof input.alwaysRewrite !== 'boolean') {
    throw invalid(`alwaysRewrite must be true or false, got ${JSON.stringify(input.alwaysRewrite)}.`);
  }
  const settings: SrsSettings = Object.freeze({
    separator: oneOf('separator', input.separator ?? '=', ['=', '+', '-'] as const),
    hashLength,
    hashMin,
    maxAge: integerIn('maxAge', input.maxAge ?? 21, 0, STAMP_CYCLE - 1),
    alphabet: oneOf('alphabet', input.alphabet ?? 'base64', ['base64', 'base64url'] as const),
    hashInput: oneOf('hashInput', input.hashInput ?? 'concatenated', ['concatenated', 'delimited'] as const),
    alwaysRewrite: input.alwaysRewrite ?? false,
    longLocalPart: oneOf('longLocalPart', input.longLocalPart ?? 'refuse', ['refuse', 'bounces'] as const),
    bouncesLocalPart,
    secretCount: secrets.length,
  });
  return { settings, secrets };
}
