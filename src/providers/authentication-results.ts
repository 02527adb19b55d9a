// Authentication-Results (RFC 8601): a parser for the header field, and the verdict the decision
// core reads (rules 7 and 8) taken from the fields this service's own MTA — or the neighbours it
// trusts — added at ingress. Anyone can write an Authentication-Results field into a message, so
// only fields whose authserv-id is named as trusted count (RFC 8601 §5); every other field is
// ignored, with the reason.
//
// The parser is a single forward scan with at most one character of lookahead: no regular
// expression over the value, no backtracking, so its time is linear in the length of the value.
// Grammar (RFC 8601 §2.2, with CFWS of RFC 5322 §3.2.2 wherever the ABNF allows it):
//
//   authres-payload = [CFWS] authserv-id [ CFWS authres-version ] ( no-result / 1*resinfo ) [CFWS]
//   authres-version = 1*DIGIT [CFWS]
//   no-result       = [CFWS] ";" [CFWS] "none"
//   resinfo         = [CFWS] ";" methodspec [ CFWS reasonspec ] [ CFWS 1*propspec ]
//   methodspec      = [CFWS] method [CFWS] "=" [CFWS] result
//   method          = Keyword [ [CFWS] "/" [CFWS] method-version ]
//   reasonspec      = "reason" [CFWS] "=" [CFWS] value
//   propspec        = ptype [CFWS] "." [CFWS] property [CFWS] "=" pvalue
//   pvalue          = [CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS]
//   value           = token / quoted-string          (RFC 2045 §5.1)
//   Keyword         = Ldh-str                        (RFC 5321 §4.1.2)
//
// Where real MTAs depart from the ABNF and the meaning stays unambiguous, the parser accepts it
// (each is listed in the TSDoc of parseAuthenticationResults); nowhere does it guess.

import { isNullSender, normaliseDomain } from '../address.js';
import { OutboundPoolsError, show } from '../errors.js';
import { parseHeaders } from '../headers.js';
import type { ArcVerdict, AuthenticationVerdict, AuthResult, DkimVerdict, SpfResult } from './types.js';

/** Options of {@link parseAuthenticationResults} and {@link authenticationFromHeaders}. */
export interface AuthenticationResultsOptions {
  /**
   * The authserv-ids whose Authentication-Results fields are trusted: this service's own MTA
   * and the neighbours it trusts (RFC 8601 §5). Compared case-insensitively (ASCII letters only).
   * At least one. Those MTAs must remove, on ingress, any field that already claims their
   * authserv-id (RFC 8601 §5): no parser can tell a forged field from a real one.
   */
  readonly authservIds: readonly string[];
}

/** One `method=result` of an Authentication-Results field (a `resinfo`, RFC 8601 §2.2). */
export interface AuthenticationMethodResult {
  /** The method, lowercased: `spf`, `dkim`, `dmarc`, `arc`, `iprev`, `auth`, or any other. */
  readonly method: string;
  /** The method version (`dkim/1` → 1), when written. */
  readonly version?: number;
  /** The result, lowercased (`pass`, `fail`, …), whatever the method; not checked against a list. */
  readonly result: string;
  /** The `reason=` text, unquoted. */
  readonly reason?: string;
  /**
   * The properties by `ptype.property`, both lowercased (`smtp.mailfrom`, `header.d`,
   * `header.i`, `header.s`, `header.b`, `smtp.helo`, `header.from`, `policy.iprev`, …). Values
   * as written, quoted strings unquoted; a quoted local-part keeps its quotes
   * (`"john doe"@example.com`). A bare `name=value` outside RFC 8601's grammar, as Microsoft
   * 365's `action=none` after a DMARC result, is kept under `name` (no ".").
   */
  readonly properties: Readonly<Record<string, string>>;
}

/** A field added by a trusted authserv-id, parsed. */
export interface TrustedAuthenticationResults {
  readonly trusted: true;
  /** The authserv-id as written (quotes removed). */
  readonly authservId: string;
  /** The `authres-version` after the authserv-id, when written (only 1 is defined). */
  readonly version?: number;
  /** The results in the order written; empty for `none` (no authentication was done). */
  readonly results: readonly AuthenticationMethodResult[];
}

/** A field whose authserv-id is not trusted: nothing else of it was read. */
export interface UntrustedAuthenticationResults {
  readonly trusted: false;
  /** The authserv-id as written (quotes removed). */
  readonly authservId: string;
  /** Why the field does not count, for logs and traces. */
  readonly reason: string;
}

/** What {@link parseAuthenticationResults} returns. */
export type ParsedAuthenticationResults = TrustedAuthenticationResults | UntrustedAuthenticationResults;

/** An Authentication-Results field, or one result of a field, that the verdict does not use. */
export interface IgnoredAuthenticationResults {
  /** The field's authserv-id; null when the field is too malformed to have one. */
  readonly authservId: string | null;
  /** Why it was not used. */
  readonly reason: string;
}

/** What {@link authenticationFromHeaders} returns. */
export interface AuthenticationFromHeaders {
  /** The verdict the decision core reads, from the trusted fields only. */
  readonly verdict: AuthenticationVerdict;
  /** Fields and results not used, in header order, each with the reason. */
  readonly ignored: readonly IgnoredAuthenticationResults[];
}

// ---------------------------------------------------------------------------------------------
// Characters

const KEYWORD = 1; // ALPHA / DIGIT / "-"
const TOKEN = 2; // RFC 2045 token: VCHAR except tspecials
const PVALUE = 4; // token, address and domain characters: see pvalue()
const CLASS = new Uint8Array(128);
for (let code = 0x21; code < 0x7f; code++) {
  const char = String.fromCharCode(code);
  if (!'()<>@,;:\\"/[]?='.includes(char)) CLASS[code]! |= TOKEN | PVALUE;
  if ('@:/[]?='.includes(char)) CLASS[code]! |= PVALUE;
  if (/[A-Za-z0-9-]/.test(char)) CLASS[code]! |= KEYWORD;
}

const SP = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = 0x28;
const CLOSE = 0x29;
const SEMICOLON = 0x3b;

/** A version number longer than this is refused (no method has more than a few versions). */
const MAX_VERSION_DIGITS = 9;

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** Lowercases ASCII letters only: Unicode case folding would let `K` (U+212A) match `k`. */
function asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}

// ---------------------------------------------------------------------------------------------
// Scanner

/** The parse state: the value and the position of the next character. */
interface Scan {
  readonly text: string;
  pos: number;
  /**
   * Set by {@link comment} when a comment holds an odd number of double quotes: a quoted string
   * (a quoted local part the MTA wrote into its comment) cut by the comment's ")" — the rest of it
   * then reads as results of its own (see {@link splitSign}).
   */
  cutQuote?: boolean;
}

function malformed(scan: Scan, message: string, at = scan.pos): OutboundPoolsError {
  const where = at < scan.text.length ? `at offset ${at}, near ${show(scan.text.slice(at, at + 24))}` : `at the end, offset ${at}`;
  return new OutboundPoolsError('invalid-headers', `Malformed Authentication-Results value: ${message} (${where}).`);
}

function peek(scan: Scan): number {
  return scan.pos < scan.text.length ? scan.text.charCodeAt(scan.pos) : -1;
}

/**
 * Consumes the line break at scan.pos (CRLF, or a bare LF as header parsers leave it). Inside
 * a value it must be a fold: followed by a space or tab (RFC 5322 §2.2.3). At the very end of the
 * value it ends the field (`trailingOk`).
 */
function lineBreak(scan: Scan, trailingOk: boolean): void {
  const { text } = scan;
  let next = scan.pos;
  if (text.charCodeAt(next) === CR) {
    if (text.charCodeAt(next + 1) !== LF) throw malformed(scan, 'a CR that is not followed by LF');
    next += 2;
  } else {
    next += 1;
  }
  if (next === text.length && trailingOk) {
    scan.pos = next;
    return;
  }
  const after = text.charCodeAt(next);
  if (after !== SP && after !== TAB) {
    throw malformed(scan, 'a line break that is not a fold (a folded line goes on with a space or tab)');
  }
  scan.pos = next;
}

/** Whether `code` is a control character that no part of the field may hold. */
function isForbiddenControl(code: number): boolean {
  return (code < 0x20 && code !== TAB) || code === 0x7f;
}

/** Consumes a quoted-pair's second character (after the backslash at scan.pos). */
function quotedPair(scan: Scan, what: string): string {
  const next = scan.pos + 1;
  if (next >= scan.text.length) throw malformed(scan, `unterminated ${what}`);
  const code = scan.text.charCodeAt(next);
  if (code === CR || code === LF || isForbiddenControl(code)) throw malformed(scan, `a backslash before a control character in a ${what}`);
  scan.pos = next + 1;
  return scan.text[next]!;
}

/** Skips one comment, nested comments included (RFC 5322 §3.2.2); scan.pos is at "(". */
function comment(scan: Scan): void {
  const { text } = scan;
  const open = scan.pos;
  let depth = 0;
  let quotes = 0;
  while (scan.pos < text.length) {
    const code = text.charCodeAt(scan.pos);
    if (code === OPEN) {
      depth++;
      scan.pos++;
    } else if (code === CLOSE) {
      depth--;
      scan.pos++;
      if (depth === 0) {
        if ((quotes & 1) === 1) scan.cutQuote = true;
        return;
      }
    } else if (code === QUOTE) {
      quotes++;
      scan.pos++;
    } else if (code === BACKSLASH) {
      quotedPair(scan, 'comment');
    } else if (code === CR || code === LF) {
      lineBreak(scan, false);
    } else if (isForbiddenControl(code)) {
      throw malformed(scan, `a control character (U+${code.toString(16).padStart(4, '0').toUpperCase()}) in a comment`);
    } else {
      scan.pos++;
    }
  }
  throw malformed(scan, depth > 1 ? `an unterminated comment (${depth} levels still open)` : 'an unterminated comment', open);
}

/** Skips CFWS: spaces, tabs, folds and comments. Returns whether anything was skipped. */
function cfws(scan: Scan): boolean {
  const { text } = scan;
  const start = scan.pos;
  while (scan.pos < text.length) {
    const code = text.charCodeAt(scan.pos);
    if (code === SP || code === TAB) scan.pos++;
    else if (code === CR || code === LF) lineBreak(scan, true);
    else if (code === OPEN) comment(scan);
    else break;
  }
  return scan.pos > start;
}

/** A run of characters of class `mask` (and any non-ASCII when `nonAscii`); may be empty. */
function run(scan: Scan, mask: number, nonAscii: boolean): string {
  const { text } = scan;
  const start = scan.pos;
  while (scan.pos < text.length) {
    const code = text.charCodeAt(scan.pos);
    if (code < 0x80 ? (CLASS[code]! & mask) === 0 : !nonAscii) break;
    scan.pos++;
  }
  return text.slice(start, scan.pos);
}

/** A Keyword (RFC 5321 Ldh-str), lowercased; `what` names it in the error when there is none. */
function keyword(scan: Scan, what: string): string {
  const start = scan.pos;
  const word = run(scan, KEYWORD, false);
  if (word === '') throw malformed(scan, `expected ${what}`);
  if (word.endsWith('-')) throw malformed(scan, `${show(word)} ends with "-", which no keyword does`, start);
  return word.toLowerCase();
}

/**
 * A quoted-string (RFC 5322 §3.2.4), scan.pos at the opening quote; returns its content. Built
 * by concatenation, not an array of pieces: a string of many quoted-pairs would otherwise make an
 * array of twice as many pieces, which V8 grows and joins ten times slower past 16,000 of them.
 */
function quotedString(scan: Scan): string {
  const { text } = scan;
  const open = scan.pos;
  scan.pos++;
  let content = '';
  let chunk = scan.pos;
  while (scan.pos < text.length) {
    const code = text.charCodeAt(scan.pos);
    if (code === QUOTE) {
      content += text.slice(chunk, scan.pos);
      scan.pos++;
      return content;
    }
    if (code === BACKSLASH) {
      content += text.slice(chunk, scan.pos);
      content += quotedPair(scan, 'quoted string');
      chunk = scan.pos;
    } else if (code === CR || code === LF) {
      // Unfolding removes the line break and keeps the whitespace after it.
      content += text.slice(chunk, scan.pos);
      lineBreak(scan, false);
      chunk = scan.pos;
    } else if (isForbiddenControl(code)) {
      throw malformed(scan, `a control character (U+${code.toString(16).padStart(4, '0').toUpperCase()}) in a quoted string`);
    } else {
      scan.pos++;
    }
  }
  throw malformed(scan, 'an unterminated quoted string', open);
}

/** A `value` (token or quoted-string, RFC 2045 §5.1). */
function value(scan: Scan, what: string): string {
  if (peek(scan) === QUOTE) return quotedString(scan);
  const token = run(scan, TOKEN, false);
  if (token === '') throw malformed(scan, `expected ${what}`);
  return token;
}

function quote(text: string): string {
  return `"${text.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * A property value: a quoted string; a quoted local-part with `@domain`; the null reverse-path
 * `<>` standing alone; or a run of token characters plus `@` (local@domain, @domain), `:` (IPv6
 * addresses), `/` `=` `?` (base64 of header.b, SRS and other atext local-parts) and `[` `]`
 * (address literals), and non-ASCII (RFC 8616). The run ends at whitespace, a comment, `;` or
 * the end: no ambiguity.
 *
 * `<>` is outside RFC 8601's grammar (it would be `""`), but Gmail, Exchange Online and others
 * write `spf=none smtp.mailfrom=<>` for every bounce they receive; it is read as `<>`, a null
 * sender, when whitespace, a comment, `;` or the end follows it.
 */
function pvalue(scan: Scan, what: string): string {
  if (isNullPath(scan)) {
    scan.pos += 2;
    return '<>';
  }
  if (peek(scan) === QUOTE) {
    const content = quotedString(scan);
    if (peek(scan) !== 0x40) return content;
    scan.pos++;
    const domain = run(scan, PVALUE, true);
    if (domain === '') throw malformed(scan, `expected a domain after the "@" of ${what}`);
    return `${quote(content)}@${domain}`;
  }
  const text = run(scan, PVALUE, true);
  if (text === '') throw malformed(scan, `expected ${what}`);
  return text;
}

/** Whether the scan is at `<>` followed by whitespace, a comment, `;` or the end. */
function isNullPath(scan: Scan): boolean {
  const { text, pos } = scan;
  if (text.charCodeAt(pos) !== 0x3c || text.charCodeAt(pos + 1) !== 0x3e) return false;
  if (pos + 2 === text.length) return true;
  const next = text.charCodeAt(pos + 2);
  return next === SP || next === TAB || next === CR || next === LF || next === OPEN || next === SEMICOLON;
}

/** A version number (1*DIGIT). */
function digits(scan: Scan, what: string): number {
  const start = scan.pos;
  while (isDigit(peek(scan))) scan.pos++;
  if (scan.pos === start) throw malformed(scan, `expected ${what} (digits)`);
  if (scan.pos - start > MAX_VERSION_DIGITS) throw malformed(scan, `${what} has more than ${MAX_VERSION_DIGITS} digits`, start);
  return Number(scan.text.slice(start, scan.pos));
}

// ---------------------------------------------------------------------------------------------
// Grammar

const FIELD_NAME = /^authentication-results[ \t]*:/i;

/** The authserv-id (after an optional field name). */
function headId(scan: Scan): string {
  const name = FIELD_NAME.exec(scan.text);
  if (name !== null) scan.pos = name[0].length;
  cfws(scan);
  if (scan.pos >= scan.text.length) throw malformed(scan, 'an empty value: expected an authserv-id');
  return value(scan, 'an authserv-id (a token or a quoted string)');
}

/** The authres-version after the authserv-id, if any; leaves scan.pos at the first ";". */
function headVersion(scan: Scan): number | undefined {
  const spaced = cfws(scan);
  let version: number | undefined;
  if (isDigit(peek(scan))) {
    if (!spaced) throw malformed(scan, 'a version glued to the authserv-id (whitespace or a comment must separate them)');
    version = digits(scan, 'the authres-version');
    cfws(scan);
  }
  if (scan.pos >= scan.text.length) {
    throw malformed(scan, `no results after the authserv-id: expected ";" and method=result, or "; none" when nothing was checked`);
  }
  if (peek(scan) !== SEMICOLON) {
    throw malformed(scan, version === undefined ? 'expected ";" (or a version number) after the authserv-id' : 'expected ";" after the authres-version');
  }
  return version;
}

/** One resinfo after its method name: [/version] = result, reason and properties. */
function resinfo(scan: Scan, method: string): AuthenticationMethodResult {
  let version: number | undefined;
  if (peek(scan) === 0x2f) {
    scan.pos++;
    cfws(scan);
    version = digits(scan, `the version of method ${show(method)} after "/"`);
    cfws(scan);
  }
  if (peek(scan) !== 0x3d) throw malformed(scan, `expected "=" and a result after the method ${show(method)}`);
  scan.pos++;
  cfws(scan);
  const result = keyword(scan, `the result of method ${show(method)}`);
  cfws(scan);
  let reason: string | undefined;
  const properties: Record<string, string> = {};
  while (scan.pos < scan.text.length && peek(scan) !== SEMICOLON) {
    const start = scan.pos;
    const ptype = keyword(scan, 'a property (ptype.property=value), reason=, or ";"');
    cfws(scan);
    if (peek(scan) === 0x3d && ptype !== 'reason') {
      // A bare name=value beside the properties: not in RFC 8601's grammar, but Microsoft 365
      // writes `dmarc=pass action=none header.from=…` in every field it adds and seals. Kept
      // under its name (no "."), so no mapping reads it for a ptype.property.
      scan.pos++;
      cfws(scan);
      const text = value(scan, `the value of ${ptype}= (a token or a quoted string)`);
      if (Object.hasOwn(properties, ptype)) throw malformed(scan, `${ptype}= given twice in one result of method ${show(method)}`, start);
      properties[ptype] = text;
      cfws(scan);
      continue;
    }
    if (peek(scan) === 0x3d) {
      if (reason !== undefined) throw malformed(scan, `a second reason= for method ${show(method)}`, start);
      scan.pos++;
      cfws(scan);
      reason = value(scan, 'the reason (a token or a quoted string)');
      cfws(scan);
      continue;
    }
    if (peek(scan) !== 0x2e) throw malformed(scan, `expected "." and a property name after ${show(ptype)} (ptype.property=value)`);
    scan.pos++;
    cfws(scan);
    const property = keyword(scan, `a property name after ${show(`${ptype}.`)}`);
    cfws(scan);
    const key = `${ptype}.${property}`;
    if (peek(scan) !== 0x3d) throw malformed(scan, `expected "=" and a value after ${show(key)}`);
    scan.pos++;
    cfws(scan);
    const text = pvalue(scan, `the value of ${key}`);
    if (Object.hasOwn(properties, key)) throw malformed(scan, `${key} given twice in one result of method ${show(method)}`, start);
    properties[key] = text;
    cfws(scan);
  }
  return {
    method,
    ...(version === undefined ? {} : { version }),
    result,
    ...(reason === undefined ? {} : { reason }),
    properties,
  };
}

/** The results after the head; scan.pos at the first ";". */
function body(scan: Scan): AuthenticationMethodResult[] {
  const results: AuthenticationMethodResult[] = [];
  let none = false;
  while (scan.pos < scan.text.length) {
    scan.pos++; // the ";"
    cfws(scan);
    // An empty resinfo (";;", or a ";" at the end) says nothing: skipped.
    if (scan.pos >= scan.text.length || peek(scan) === SEMICOLON) continue;
    const start = scan.pos;
    const method = keyword(scan, 'a method name (spf, dkim, dmarc, …) or "none"');
    cfws(scan);
    if (none) throw malformed(scan, '"none" must be the only result of the field', start);
    if (method === 'none' && (scan.pos >= scan.text.length || peek(scan) === SEMICOLON)) {
      if (results.length > 0) throw malformed(scan, '"none" must be the only result of the field', start);
      none = true;
      continue;
    }
    results.push(resinfo(scan, method));
  }
  if (!none && results.length === 0) throw malformed(scan, 'no results: expected method=result, or "none" when nothing was checked');
  return results;
}

// ---------------------------------------------------------------------------------------------
// Trust

interface Trust {
  readonly ids: ReadonlySet<string>;
  readonly listed: string;
}

function invalidOptions(message: string): OutboundPoolsError {
  return new OutboundPoolsError('invalid-context', message);
}

function trust(options: unknown): Trust {
  if (typeof options !== 'object' || options === null) {
    throw invalidOptions(`options must be an object with authservIds, got ${show(options)}.`);
  }
  const list: unknown = (options as { authservIds?: unknown }).authservIds;
  if (!Array.isArray(list) || list.length === 0) {
    throw invalidOptions(
      `authservIds must be a non-empty array of the authserv-ids whose Authentication-Results are trusted, got ${list === undefined ? 'nothing' : show(list)}.`,
    );
  }
  const ids = new Set<string>();
  Array.from(list as unknown[]).forEach((id, index) => {
    if (typeof id !== 'string' || id === '' || id !== id.trim() || [...id].some((char) => isForbiddenControl(char.charCodeAt(0)))) {
      throw invalidOptions(`authservIds[${index}] must be an authserv-id such as "mx.example.org", got ${show(id)}.`);
    }
    ids.add(asciiLower(id));
  });
  return { ids, listed: (list as string[]).join(', ') };
}

function untrustedReason(authservId: string, trusted: Trust): string {
  return `authserv-id ${show(authservId)} is not one of the trusted ids (${trusted.listed}); RFC 8601 §5: only fields this service or its trusted neighbours added count`;
}

function checkValue(value: unknown): string {
  if (typeof value !== 'string') throw new OutboundPoolsError('invalid-headers', `An Authentication-Results value must be a string, got ${show(value)}.`);
  return value;
}

/**
 * Parses the value of one Authentication-Results header field (RFC 8601 §2.2) and says whether
 * it counts. The authserv-id is read first; when it is not one of `options.authservIds`
 * (compared ASCII case-insensitively), the field is not trusted and nothing else of it is read
 * (so malformed content in an untrusted field is not an error): `{ trusted: false, reason }`.
 *
 * Handled: comments, nested, wherever CFWS may be; folded lines (CRLF or LF then a space or
 * tab) and a final CRLF; quoted strings with quoted-pairs (authserv-id, reason, values); the
 * authres-version; `none`; several results separated by `;`; method versions (`dkim/1`);
 * `reason=`; any number of properties; unknown methods, results and properties (kept). Method,
 * result, ptype and property names are lowercased; values are kept as written.
 *
 * Accepted beyond the ABNF, because MTAs write them and the meaning is unambiguous:
 * an `Authentication-Results:` field name before the value; empty results (`;;`, a final `;`);
 * `reason=` after properties; unquoted values holding `/`, `=`, `?`, `:`, `[`, `]` or non-ASCII
 * (Gmail's `header.b=ab/cd+ef`, SRS addresses, IPv6 addresses); a bare `name=value` beside the
 * properties (Microsoft 365's `dmarc=pass action=none`), kept in `properties` under `name`.
 *
 * Runs in time linear in the length of the value.
 *
 * @throws {OutboundPoolsError} `invalid-headers` when the value is not a string or is malformed
 *   (the message says what was expected, and where); `invalid-context` when `options` has no
 *   usable `authservIds`.
 */
export function parseAuthenticationResults(value: string, options: AuthenticationResultsOptions): ParsedAuthenticationResults {
  const trusted = trust(options);
  const scan: Scan = { text: checkValue(value), pos: 0 };
  const authservId = headId(scan);
  const version = headVersion(scan);
  if (!trusted.ids.has(asciiLower(authservId))) return { trusted: false, authservId, reason: untrustedReason(authservId, trusted) };
  const results = body(scan);
  return { trusted: true, authservId, ...(version === undefined ? {} : { version }), results };
}

// ---------------------------------------------------------------------------------------------
// The verdict

const SPF_RESULTS: ReadonlySet<string> = new Set<SpfResult>(['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror']);
const AUTH_RESULTS: ReadonlySet<string> = new Set<AuthResult>(['pass', 'fail', 'neutral', 'none', 'temperror', 'permerror', 'policy']);
const MAPPED_METHODS: ReadonlySet<string> = new Set(['spf', 'dkim', 'dmarc', 'arc']);

type Spf = NonNullable<AuthenticationVerdict['spf']>;
type Dmarc = NonNullable<AuthenticationVerdict['dmarc']>;
type Arc = NonNullable<AuthenticationVerdict['arc']>;

/** The domain of `domain`, `@domain` or `local@domain`, normalised; null when it is not a domain name. */
function identityDomain(identity: string): string | null {
  return normaliseDomain(identity.slice(identity.lastIndexOf('@') + 1));
}

function label(result: AuthenticationMethodResult): string {
  return `${result.method}${result.version === undefined ? '' : `/${result.version}`}=${result.result}`;
}

/** Why a result cannot be used, or the mapped verdict part. */
type Mapped<T> = { readonly ok: T } | { readonly why: string };

/**
 * Whether `mailfrom` is the stand-in RFC 7208 §2.4 makes for a null MAIL FROM, `postmaster@` the
 * HELO name, as mailauth (lenient) and others record their HELO check
 * (`smtp.mailfrom=postmaster@mx.example smtp.helo=mx.example`). A real sender of that name from a
 * server greeting with it reads as a HELO check too: when in doubt, not verified.
 */
export function isHeloStandIn(mailfrom: string | undefined, helo: string | undefined): boolean {
  if (mailfrom === undefined || helo === undefined) return false;
  const at = mailfrom.lastIndexOf('@');
  if (at !== 'postmaster'.length || asciiLower(mailfrom.slice(0, at)) !== 'postmaster') return false;
  const domain = normaliseDomain(mailfrom.slice(at + 1));
  return domain !== null && domain === normaliseDomain(helo);
}

function mapSpf(result: AuthenticationMethodResult): Mapped<Spf & { readonly helo: boolean }> {
  if (!SPF_RESULTS.has(result.result)) return { why: `${label(result)}: ${show(result.result)} is not an SPF result (RFC 7208 §2.6)` };
  // smtp.mailfrom (RFC 8601 §2.7.2); smtp.mfrom is its name in the drafts before RFC 5451, which
  // sealers and filters still write, and means the same.
  const mailfromProperty = result.properties['smtp.mailfrom'] === undefined && result.properties['smtp.mfrom'] !== undefined ? 'smtp.mfrom' : 'smtp.mailfrom';
  const mailfrom = result.properties[mailfromProperty];
  const helo = result.properties['smtp.helo'];
  // A null MAIL FROM (RFC 5321 §4.5.5): SPF checked the HELO identity (RFC 7208 §2.4).
  const nullSender = mailfrom === undefined || isNullSender(mailfrom) || isHeloStandIn(mailfrom, helo);
  const identity = nullSender ? helo : mailfrom;
  const property = nullSender ? 'smtp.helo' : mailfromProperty;
  // The identity rule: a pass vouches only for the identity it names, so a result naming none is not used.
  if (identity === undefined) return { why: `${label(result)} names no domain (neither smtp.mailfrom, smtp.mfrom nor smtp.helo): the checked domain is not known` };
  const domain = identityDomain(identity);
  if (domain === null) return { why: `${label(result)}: ${property}=${show(identity)} has no domain name` };
  return { ok: { result: result.result as SpfResult, domain, helo: nullSender } };
}

function mapDkim(result: AuthenticationMethodResult): Mapped<DkimVerdict> {
  if (!AUTH_RESULTS.has(result.result)) return { why: `${label(result)}: ${show(result.result)} is not a DKIM result (RFC 8601 §2.7.1)` };
  const d = result.properties['header.d'];
  const i = result.properties['header.i'];
  const property = d !== undefined ? 'header.d' : 'header.i';
  const identity = d ?? i;
  if (identity === undefined) return { why: `${label(result)} names no signing domain (neither header.d nor header.i)` };
  const domain = identityDomain(identity);
  if (domain === null) return { why: `${label(result)}: ${property}=${show(identity)} has no domain name` };
  const selector = result.properties['header.s'];
  return { ok: { result: result.result as AuthResult, domain, ...(selector === undefined || selector === '' ? {} : { selector }) } };
}

function mapDmarc(result: AuthenticationMethodResult): Mapped<Dmarc> {
  if (!AUTH_RESULTS.has(result.result)) return { why: `${label(result)}: ${show(result.result)} is not a DMARC result (RFC 7489 §11.2)` };
  const from = result.properties['header.from'];
  if (from === undefined) return { ok: { result: result.result as AuthResult } };
  const domain = identityDomain(from);
  if (domain === null) return { why: `${label(result)}: header.from=${show(from)} has no domain name` };
  return { ok: { result: result.result as AuthResult, domain } };
}

function mapArc(result: AuthenticationMethodResult): Mapped<Arc> {
  if (!AUTH_RESULTS.has(result.result)) return { why: `${label(result)}: ${show(result.result)} is not an ARC result (RFC 8617 §4.4)` };
  // Authentication-Results does not name the sealer, nor what the sealer's ARC-Authentication-Results
  // said: the verdict has the chain's result only, and rule 8's arc-pass (which needs a trusted
  // sealer) cannot fire from it.
  return { ok: { result: result.result as AuthResult } };
}

/** The error for a malformed field of a trusted authserv-id: its verdict is not guessed at. */
function trustedMalformed(which: string, authservId: string, error: unknown): unknown {
  if (!(error instanceof OutboundPoolsError)) return error;
  return new OutboundPoolsError('invalid-headers', `${which}, from trusted authserv-id ${show(authservId)}: ${error.message}`);
}

/**
 * Reads the Authentication-Results fields of a header block (or a whole message: the header
 * ends at the first empty line) and maps the newest field added by a trusted authserv-id to the
 * {@link AuthenticationVerdict} the decision core reads.
 *
 * Only that one field is read (RFC 8601 §5): it is the one this service's border MTA added on
 * top. Every older field claiming a trusted authserv-id is listed in `ignored` and not parsed:
 * the border should have removed such fields on ingress, and if it did not, one of them may be a
 * forgery that came with the message (so a malformed one is not an error either). An MTA whose
 * several filters each write a field of their own must consolidate them into one, or hand
 * `decidePool` a precomputed verdict.
 *
 * From that field:
 * - `spf`: result, and the domain of `smtp.mailfrom` (or of the legacy `smtp.mfrom`) — of
 *   `smtp.helo` when the MAIL FROM was null (`""`, `<>` or absent). The MAIL FROM's result is
 *   used before the HELO's. A pass vouches only for the domain it names.
 *
 * The field verifies nothing (verdict `{}`, the reason in `ignored`) when it may not say what its
 * MTA wrote — a quoted local part written unescaped into a comment can end the comment early and
 * read as a result of its own: a comment with an odd number of double quotes, an SPF result
 * naming no identity, a DKIM result other than `none` naming no signing domain, or two SPF
 * results for a MAIL FROM.
 * - `dkim`: every signature: result, domain of `header.d` (else of `header.i`), selector
 *   `header.s`. A result naming neither is not used.
 * - `arc`: the chain's result only (the first); Authentication-Results names no sealer, so
 *   `sealer` is undefined (and an ARC pass cannot verify a forward on its own).
 * - `dmarc`: the first result, and the domain of `header.from` when given.
 *
 * Domains are normalised (lowercase A-labels). Results of other methods (iprev, auth, …) are
 * not used, nor listed. Method versions other than 1, results outside the verdict's types
 * (`spf=policy`, `dkim=hardfail`) and identities that are not domain names are not used, and are
 * listed in `ignored` with the reason, as are superseded results, untrusted and older trusted
 * fields, a newest trusted field of an authres-version other than 1, and fields too malformed to
 * name their authserv-id (`authservId: null`; Microsoft 365 writes fields without one).
 *
 * @throws {OutboundPoolsError} `invalid-headers` when the headers are not a string or bytes, are
 *   over the size limit, or when the newest field of a trusted authserv-id is malformed (this
 *   service's own verdict is never guessed at); `invalid-context` when `options` has no usable
 *   `authservIds`.
 */
export function authenticationFromHeaders(headers: string | Uint8Array, options: AuthenticationResultsOptions): AuthenticationFromHeaders {
  const trusted = trust(options);
  const fields = parseHeaders(headers).filter(([name]) => name === 'authentication-results');
  const ignored: IgnoredAuthenticationResults[] = [];
  let verdict: AuthenticationVerdict = {};
  // The index of the newest field of a trusted authserv-id, once found.
  let newest: number | undefined;

  fields.forEach(([, value], index) => {
    const which = `Authentication-Results field ${index + 1} of ${fields.length}`;
    const scan: Scan = { text: value, pos: 0 };
    const unreadable = (error: unknown): void => {
      if (!(error instanceof OutboundPoolsError)) throw error;
      ignored.push({ authservId: null, reason: `${which} has no readable authserv-id: ${error.message}` });
    };
    let authservId: string;
    try {
      authservId = headId(scan);
    } catch (error) {
      return unreadable(error);
    }
    let version: number | undefined;
    let headError: unknown;
    try {
      version = headVersion(scan);
    } catch (error) {
      headError = error;
    }
    const id = authservId;
    const skip = (reason: string): void => void ignored.push({ authservId: id, reason: `${which}: ${reason}` });
    const isTrusted = trusted.ids.has(asciiLower(authservId));
    // Without the ";" after it, what was read may not be an authserv-id at all ("spf=pass …" of
    // Microsoft 365): an untrusted one is unreadable; a trusted one is this service's, malformed.
    if (headError !== undefined && !isTrusted) return unreadable(headError);
    if (!isTrusted) return skip(untrustedReason(authservId, trusted));
    if (newest !== undefined) {
      return skip(
        `an older field of a trusted authserv-id, not read: only the newest (field ${newest + 1}, added by this service's border) counts, RFC 8601 §5; an older one may be forged`,
      );
    }
    newest = index;
    if (headError !== undefined) throw trustedMalformed(which, authservId, headError);
    // Another version of the field may have another grammar: not parsed, not an error.
    if (version !== undefined && version !== 1) return skip(`authres-version ${version} is not 1, the only version defined (RFC 8601 §2.2)`);
    let results: AuthenticationMethodResult[];
    try {
      results = body(scan);
    } catch (error) {
      throw trustedMalformed(which, authservId, error);
    }
    const split = splitSign(results, scan);
    if (split !== null) return skip(`the newest field of a trusted authserv-id verifies nothing: ${split}`);
    verdict = verdictOf(results, skip);
  });
  return { verdict, ignored };
}

/**
 * Why a trusted field's results may not be what its MTA wrote, or null. An MTA that writes the
 * MAIL FROM into a comment unescaped (`spf=fail (domain of "a);spf=pass ("@victim.example …)`)
 * lets the sender's quoted local part end the comment early: the rest reads as a result of its
 * own (`spf=pass`), which takes the MTA's real `smtp.mailfrom` for its identity, while the MTA's
 * own result is left naming none. Signs of that, any of which makes the field verify nothing
 * (when in doubt, the relay pool):
 * - a comment with an odd number of double quotes (a quoted string cut by its ")");
 * - an SPF result naming no identity, or a DKIM result other than `none` (no signature: MTAs
 *   write `dkim=none` alone) naming no signing domain;
 * - two SPF results for a MAIL FROM (an MTA writes one; the HELO's may come beside it).
 */
function splitSign(results: readonly AuthenticationMethodResult[], scan: Scan): string | null {
  if (scan.cutQuote === true) return 'a comment holds an odd number of double quotes (a quoted string cut short by the comment\'s ")"?)';
  let mailFromResults = 0;
  for (const result of results) {
    const { properties } = result;
    if (result.method === 'spf') {
      const mailfrom = properties['smtp.mailfrom'] ?? properties['smtp.mfrom'];
      if (mailfrom === undefined && properties['smtp.helo'] === undefined) return `${label(result)} names no identity`;
      if (mailfrom !== undefined && !isNullSender(mailfrom) && ++mailFromResults > 1) return 'two SPF results for the MAIL FROM';
    } else if (result.method === 'dkim' && result.result !== 'none' && properties['header.d'] === undefined && properties['header.i'] === undefined) {
      return `${label(result)} names no signing domain`;
    }
  }
  return null;
}

/** The verdict of the results of one field; `skip` lists what is not used, and why. */
function verdictOf(results: readonly AuthenticationMethodResult[], skip: (reason: string) => void): AuthenticationVerdict {
  let arc: Arc | undefined;
  let dmarc: Dmarc | undefined;
  const dkim: DkimVerdict[] = [];
  const spfFound: (Spf & { readonly helo: boolean; readonly label: string })[] = [];
  for (const result of results) {
    if (!MAPPED_METHODS.has(result.method)) continue;
    if (result.version !== undefined && result.version !== 1) {
      skip(`${label(result)}: version ${result.version} of ${result.method} is not known (only 1 is)`);
      continue;
    }
    switch (result.method) {
      case 'spf': {
        const mapped = mapSpf(result);
        if ('why' in mapped) skip(mapped.why);
        else spfFound.push({ ...mapped.ok, label: label(result) });
        break;
      }
      case 'dkim': {
        const mapped = mapDkim(result);
        if ('why' in mapped) skip(mapped.why);
        else dkim.push(mapped.ok);
        break;
      }
      case 'dmarc': {
        const mapped = mapDmarc(result);
        if ('why' in mapped) skip(mapped.why);
        else if (dmarc !== undefined) skip(`${label(result)} not used: an earlier DMARC result in this field is used`);
        else dmarc = mapped.ok;
        break;
      }
      case 'arc': {
        const mapped = mapArc(result);
        if ('why' in mapped) skip(mapped.why);
        else if (arc !== undefined) skip(`${label(result)} not used: an earlier ARC result in this field is used`);
        else arc = mapped.ok;
      }
    }
  }
  // The MAIL FROM's SPF result before the HELO's (RFC 7208 §2.3, §2.4); else in order.
  const chosen = spfFound.find((found) => !found.helo) ?? spfFound[0];
  for (const found of spfFound) {
    if (found === chosen) continue;
    skip(`${found.label} not used: ${found.helo && !chosen!.helo ? 'the SPF result for the MAIL FROM in this field is used, not the one for the HELO' : 'an earlier SPF result in this field is used'}`);
  }
  return {
    ...(chosen === undefined ? {} : { spf: { result: chosen.result, ...(chosen.domain === undefined ? {} : { domain: chosen.domain }), ...(chosen.helo ? { identity: 'helo' as const } : {}) } }),
    ...(dkim.length === 0 ? {} : { dkim }),
    ...(arc === undefined ? {} : { arc }),
    ...(dmarc === undefined ? {} : { dmarc }),
  };
}

// ---------------------------------------------------------------------------------------------
// ARC-Authentication-Results

const AAR_FIELD_NAME = /^arc-authentication-results[ \t]*:/i;

/** The largest ARC instance (RFC 8617 §4.2.1: 1 to 50; `1*2DIGIT` in §3.9). */
const MAX_ARC_INSTANCE = 50;

/** What an ARC-Authentication-Results field records: the results a sealer vouches for, or why none. */
export type ArcAuthenticationResults =
  | { readonly ok: true; readonly instance: number; readonly authservId: string; readonly spf?: NonNullable<ArcVerdict['spf']>; readonly dkim?: readonly DkimVerdict[]; readonly notes: readonly string[] }
  | { readonly ok: false; readonly why: string };

/**
 * Reads one ARC-Authentication-Results field (RFC 8617 §4.1.1: `i=N;` then an
 * Authentication-Results payload), with or without its field name, with the grammar and the
 * identity rules of {@link authenticationFromHeaders}: the SPF result of the MAIL FROM before the
 * HELO's (a HELO result is marked `identity: 'helo'`), DKIM results naming their signing domain.
 * The field records nothing (`ok: false`, and why) when it is malformed, names no instance, or
 * shows the signs of a comment cut short by a sender's quoted local part (see
 * {@link authenticationFromHeaders}): a sealer's word is taken only when it can be read whole.
 * Its authserv-id is not checked: an ARC set is trusted for its seal's `d=`, not its authserv-id.
 */
export function parseArcAuthenticationResults(value: string): ArcAuthenticationResults {
  if (typeof value !== 'string') return { ok: false, why: `an ARC-Authentication-Results value must be a string, got ${show(value)}` };
  const name = AAR_FIELD_NAME.exec(value);
  const scan: Scan = { text: value, pos: name === null ? 0 : name[0].length };
  try {
    cfws(scan);
    if (peek(scan) !== 0x69 && peek(scan) !== 0x49) throw malformed(scan, 'expected the instance "i=" first (RFC 8617 §4.1.1)');
    scan.pos++;
    cfws(scan);
    if (peek(scan) !== 0x3d) throw malformed(scan, 'expected "=" after "i"');
    scan.pos++;
    cfws(scan);
    const start = scan.pos;
    const instance = digits(scan, 'the ARC instance');
    if (scan.pos - start > 2 || instance < 1 || instance > MAX_ARC_INSTANCE) throw malformed(scan, `the ARC instance is not 1 to ${MAX_ARC_INSTANCE}`, start);
    cfws(scan);
    if (peek(scan) !== SEMICOLON) throw malformed(scan, 'expected ";" after the ARC instance');
    scan.pos++;
    const authservId = headId(scan);
    const version = headVersion(scan);
    if (version !== undefined && version !== 1) return { ok: false, why: `authres-version ${version} is not 1, the only version defined (RFC 8601 §2.2)` };
    const results = body(scan);
    const split = splitSign(results, scan);
    if (split !== null) return { ok: false, why: split };
    const notes: string[] = [];
    const { spf, dkim } = verdictOf(results, (reason) => void notes.push(reason));
    return { ok: true, instance, authservId, ...(spf === undefined ? {} : { spf }), ...(dkim === undefined ? {} : { dkim }), notes };
  } catch (error) {
    if (!(error instanceof OutboundPoolsError)) throw error;
    return { ok: false, why: error.message.replace('Malformed Authentication-Results value', 'malformed ARC-Authentication-Results value') };
  }
}
