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

/**
 * The most characters of a provider's text (an error's message or code) that a reason quotes.
 * Enough for any real error (`ECONNREFUSED 127.0.0.1:11333`, rspamd's messages); a provider that
 * throws a 5 MB message does not make a 5 MB reason in every decision and every log line.
 */
export const MAX_QUOTED_LENGTH = 256;

/**
 * Text from outside — a provider's error message, a rate limiter's restriction reason — as a
 * reason or log line quotes it: control characters (C0, DEL, C1), line and paragraph separators,
 * bidi controls and lone surrogates, which could forge or reorder a log line (`\r\n550 …`), are
 * escaped (`\r`, `\n`, `\t`, `\uXXXX`), and the text is cut after `max` characters with `…` and
 * its length. Always a copy: a slice of a huge string would keep all of it alive.
 */
export function quoteText(text: string, max: number = MAX_QUOTED_LENGTH): string {
  const parts: string[] = [];
  let length = 0;
  let i = 0;
  for (; i < text.length && length < max; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && isLowSurrogate(text.charCodeAt(i + 1))) {
      // A pair is one character: kept whole, never cut in two.
      parts.push(text[i]! + text[i + 1]!);
      length += 2;
      i++;
    } else if (isUnquotable(code)) {
      const escaped = ESCAPES[code] ?? `\\u${code.toString(16).padStart(4, '0')}`;
      parts.push(escaped);
      length += escaped.length;
    } else {
      parts.push(text[i]!);
      length++;
    }
  }
  if (i < text.length) parts.push(`… (${text.length} characters)`);
  return parts.join('');
}

const ESCAPES: Readonly<Record<number, string>> = { 0x09: '\\t', 0x0a: '\\n', 0x0d: '\\r' };

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/**
 * Characters that could forge or reorder a line of a log or of the CLI's output: controls (C0,
 * DEL, C1), the line and paragraph separators, bidi controls, and surrogates (tested one code
 * unit at a time, a surrogate is a lone one: quoteText takes pairs before). Limit-set names may
 * hold none of them (policy.ts).
 * @internal
 */
export const UNQUOTABLE = /[\p{Cc}\u2028\u2029\p{Bidi_Control}]|\p{Cs}/u;

function isUnquotable(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && UNQUOTABLE.test(String.fromCharCode(code)));
}
