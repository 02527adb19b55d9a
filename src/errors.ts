/**
 * Machine-readable reasons for refusing input, in Node's `err.code` tradition.
 *
 * - `invalid-message`: the message object is not what {@link decidePool} takes (wrong type,
 *   missing `rcptTo`, unknown keys, …).
 * - `invalid-address`: an envelope address does not parse as RFC 5321 (the message says why).
 * - `invalid-headers`: the header block is not text, or larger than the limit.
 * - `invalid-policy`: a policy setting is wrong or unknown.
 * - `invalid-context`: a context setting (providers, srs, clock, signal) is wrong.
 */
export type OutboundPoolsErrorCode =
  | 'invalid-message'
  | 'invalid-address'
  | 'invalid-headers'
  | 'invalid-policy'
  | 'invalid-context';

/** The error outbound-pools throws for bad input; never for a misbehaving provider. */
export class OutboundPoolsError extends Error {
  override readonly name = 'OutboundPoolsError';
  readonly code: OutboundPoolsErrorCode;

  constructor(code: OutboundPoolsErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** A short, safe rendering of a value for an error message. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (value === null) return 'null';
  try {
    if (Array.isArray(value)) return 'an array';
  } catch {
    // Array.isArray throws on a revoked Proxy: it is an object all the same.
  }
  return typeof value;
}

/** A thrown value in words, for an error message; safe on anything (a Proxy, a getter that throws, a Symbol). */
export function describeThrown(error: unknown): string {
  try {
    return error instanceof Error && typeof error.message === 'string' ? error.message : `threw ${show(error)}`;
  } catch {
    return 'an error that cannot be described';
  }
}
