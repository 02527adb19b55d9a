// The few header fields the decision reads (Content-Type, From, Message-ID), found in a header
// block or a whole message (RFC 5322 §2.2: the header ends at the first empty line).
//
// Every function here runs in time linear in its input (test/hostile/linear.test.ts holds them
// to it): a header block is attacker-controlled text of up to a megabyte.

import { OutboundPoolsError, show } from './errors.js';

/** Header blocks larger than this are refused: no MTA accepts such a header section. */
export const MAX_HEADER_BYTES = 1024 * 1024;

/** The header fields of one message, unfolded, in order; names lowercased. */
export type HeaderFields = readonly (readonly [name: string, value: string])[];

const decoder = new TextDecoder('utf-8');

function tooLarge(): OutboundPoolsError {
  return new OutboundPoolsError('invalid-headers', `The header section is over ${MAX_HEADER_BYTES} bytes; no MTA accepts that.`);
}

const LF_LF = Buffer.from('\n\n', 'latin1');
const LF_CRLF = Buffer.from('\n\r\n', 'latin1');

/**
 * How many bytes to decode for the header section, which must fit in {@link MAX_HEADER_BYTES}.
 * The empty line ending the section is found by Buffer's native search rather than a loop over
 * the bytes in JavaScript, in the line-end style of the first line (CRLF or LF). When that empty
 * line is within the limit, the bytes through it are enough: an earlier empty line of the other
 * style ends the section sooner, and the readers stop at the first empty line of either style
 * themselves. Otherwise the exact end is wanted, for the size check: the other style is searched
 * before the first one's empty line (or to the limit), so that no search reads the body when the
 * section ends early.
 *
 * @returns the number of bytes to decode, the section's whole (or no header at all: 0)
 * @throws {OutboundPoolsError} `invalid-headers` for a section over {@link MAX_HEADER_BYTES}
 */
function headerBytes(bytes: Uint8Array): number {
  if (bytes[0] === 0x0a || (bytes[0] === 0x0d && bytes[1] === 0x0a)) return 0; // no header at all
  const all = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // An empty line whose line feed comes after MAX_HEADER_BYTES + 2 ends a section over the limit
  // anyway (the CR before it and the line's last byte are already past it).
  const view = all.length > MAX_HEADER_BYTES + 5 ? all.subarray(0, MAX_HEADER_BYTES + 5) : all;
  const firstLf = view.indexOf(0x0a);
  if (firstLf < 0) {
    if (bytes.length > MAX_HEADER_BYTES) throw tooLarge();
    return bytes.length;
  }
  const crlf = firstLf > 0 && view[firstLf - 1] === 0x0d;
  const [usual, other] = crlf ? [LF_CRLF, LF_LF] : [LF_LF, LF_CRLF];
  let at = view.indexOf(usual, firstLf);
  // The section ends at or before `at`, within the limit.
  if (at >= 0 && at <= MAX_HEADER_BYTES) return at + usual.length;
  const before = at < 0 ? view : view.subarray(0, at + other.length - 1);
  const otherAt = before.indexOf(other, firstLf);
  if (otherAt >= 0 && (at < 0 || otherAt < at)) at = otherAt;
  const end = at < 0 ? bytes.length : view[at - 1] === 0x0d ? at - 1 : at;
  if (end > MAX_HEADER_BYTES) throw tooLarge();
  return end;
}

/** Whether `code` is in JavaScript's `\s` (what `trim()` removes): a field name has none. */
function isSpace(code: number): boolean {
  if (code > 0x20 && code < 0x7f) return false;
  return (
    code === 0x20 || (code >= 0x09 && code <= 0x0d) || code === 0xa0 || code === 0x1680 || (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 || code === 0x2029 || code === 0x202f || code === 0x205f || code === 0x3000 || code === 0xfeff
  );
}

/**
 * The colon ending the field name of the line [start, end), or -1 when the line is not a field:
 * no colon, an empty name, or whitespace in the name (a leading mbox `From ` line, garbage).
 * Lines that are not fields are skipped, not guessed at.
 */
function fieldColon(text: string, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x3a) return i > start ? i : -1;
    if (isSpace(code)) return -1;
  }
  return -1;
}

/**
 * Picks the fields whose value is wanted: given the name's span [start, colon) of `text`, a slot
 * number (≥ 0) that {@link FieldSink.take} gets back with the value, or -1 to skip the field.
 */
interface FieldSink {
  pick(text: string, start: number, colon: number): number;
  take(slot: number, value: string): void;
}

/**
 * The header section as text: a string as it is (its bytes are counted as it is scanned), bytes
 * decoded through the end of the section ({@link headerBytes}), whose size is checked there
 * (decoded bytes are counted already: a replacement character would count 3 bytes again). The
 * text may go on past the section's empty line: the readers stop at it.
 *
 * @throws {OutboundPoolsError} `invalid-headers` for bytes over {@link MAX_HEADER_BYTES}, or input that is not text.
 */
function headerText(input: string | Uint8Array): string {
  if (typeof input === 'string') return input;
  if (input instanceof Uint8Array) {
    return decoder.decode(input.subarray(0, headerBytes(input)));
  }
  throw new OutboundPoolsError('invalid-headers', `headers must be a string or a Uint8Array, got ${show(input)}.`);
}

/**
 * Reads the header section of `input` in one pass: the section ends at the first empty line
 * (RFC 5322 §2.1; a message that starts with one has no header fields); continuation lines are
 * unfolded into the field they continue (RFC 5322 §2.2.3) — joined by one space, each part
 * trimmed. Only the values `sink` picks are sliced out, and only their lines: the other fields
 * cost a look at their name and a jump to the next line break.
 *
 * @throws {OutboundPoolsError} `invalid-headers` for a section over {@link MAX_HEADER_BYTES}, or input that is not text.
 */
function scanFields(input: string | Uint8Array, sink: FieldSink): void {
  const text = headerText(input);
  const countBytes = typeof input === 'string';
  const length = text.length;
  if (length === 0 || text.charCodeAt(0) === 0x0a || (text.charCodeAt(0) === 0x0d && text.charCodeAt(1) === 0x0a)) return;

  let slot = -1; // the slot of the field being read, -1 when its value is not wanted (or no field yet)
  let value = '';
  // The parts of a folded value, joined once at the end: appending to a string line by line
  // would build a rope as deep as the field is long.
  let parts: string[] | null = null;
  let sectionEnd = length;
  for (let pos = 0; ; ) {
    const newline = text.indexOf('\n', pos);
    const lineEnd = newline < 0 ? length : newline;
    // The section reaches at least this line's end (a CR before an empty line aside): over the
    // limit in characters is over it in bytes, whatever the rest holds.
    if (countBytes && lineEnd > MAX_HEADER_BYTES + 1) throw tooLarge();
    const first = text.charCodeAt(pos);
    if (first === 0x20 || first === 0x09) {
      // A continuation line: part of the last field (a line before any field is not a field).
      if (slot >= 0) {
        const more = text.slice(pos, lineEnd).trim();
        if (more !== '') (parts ??= value === '' ? [] : [value]).push(more);
      }
    } else {
      const colon = fieldColon(text, pos, lineEnd);
      if (colon > 0) {
        if (slot >= 0) sink.take(slot, parts === null ? value : parts.join(' '));
        slot = sink.pick(text, pos, colon);
        value = slot >= 0 ? text.slice(colon + 1, lineEnd).trim() : '';
        parts = null;
      }
    }
    if (newline < 0) break;
    pos = newline + 1;
    const next = text.charCodeAt(pos);
    if (next === 0x0a || (next === 0x0d && text.charCodeAt(pos + 1) === 0x0a)) {
      sectionEnd = text.charCodeAt(newline - 1) === 0x0d ? newline - 1 : newline;
      break;
    }
  }
  if (slot >= 0) sink.take(slot, parts === null ? value : parts.join(' '));
  // Characters count at most 3 UTF-8 bytes: only long sections need counting.
  if (countBytes && sectionEnd > MAX_HEADER_BYTES / 3) {
    if (sectionEnd > MAX_HEADER_BYTES || Buffer.byteLength(sectionEnd === length ? text : text.slice(0, sectionEnd), 'utf8') > MAX_HEADER_BYTES) throw tooLarge();
  }
}

/** Parses the header fields: unfolds continuation lines (RFC 5322 §2.2.3) and lowercases names. */
export function parseHeaders(input: string | Uint8Array): HeaderFields {
  const fields: [string, string][] = [];
  scanFields(input, {
    pick(text, start, colon) {
      fields.push([text.slice(start, colon).toLowerCase(), '']);
      return fields.length - 1;
    },
    take(slot, value) {
      fields[slot]![1] = value;
    },
  });
  return fields;
}

/** The value of the first field named `name` (lowercase), or undefined. */
export function headerValue(fields: HeaderFields, name: string): string | undefined {
  return fields.find(([field]) => field === name)?.[1];
}

/** The three fields the decision reads: the first of each, unfolded and trimmed. */
export interface DecisionFields {
  /** RFC 5322 §3.6.2, for DKIM alignment (rules 7 and 8). */
  readonly from: string | undefined;
  /** RFC 2045 §5, for a delivery-status report (rule 4). */
  readonly contentType: string | undefined;
  /** RFC 5322 §3.6.4, so that a limiter counts a message once. */
  readonly messageId: string | undefined;
}

/** Whether the name [start, start + lower.length) of `text` is `lower` (lowercase letters and '-'), ignoring ASCII case. */
function nameIs(text: string, start: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    const expected = lower.charCodeAt(i);
    const code = text.charCodeAt(start + i);
    // Only ASCII letters fold: the name is compared as RFC 5322 §1.2.2 says, not as toLowerCase would.
    if (code !== expected && !(expected >= 0x61 && expected <= 0x7a && code === expected - 0x20)) return false;
  }
  return true;
}

/** Whether the line at `start` begins with the field name `lower` and its colon (ASCII case ignored). */
function startsField(text: string, start: number, lower: string): boolean {
  return text.charCodeAt(start + lower.length) === 0x3a && nameIs(text, start, lower);
}

/** The value of the field line whose colon is at `colon`, to `lineEnd`: trimmed as `trim()` does, one slice. */
function lineValue(text: string, colon: number, lineEnd: number): string {
  let start = colon + 1;
  let end = lineEnd;
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

const NO_FIELDS: DecisionFields = Object.freeze({ from: undefined, contentType: undefined, messageId: undefined });

/**
 * The fields the decision reads, in one pass over the header section, without splitting it into
 * lines or copying the fields it does not read. Same values as {@link headerValue} on
 * {@link parseHeaders}, with less work: a line is looked at only when its first character could
 * start `From:`, `Content-Type:` or `Message-ID:` (or when it may end one of those being read),
 * and the scan stops once all three are read when the section cannot be over the size limit.
 * The values may share memory with `input`: copy ({@link detach}) what outlives the call.
 *
 * @throws {OutboundPoolsError} `invalid-headers`, as {@link parseHeaders}.
 */
export function decisionFields(input: string | Uint8Array): DecisionFields {
  const text = headerText(input);
  const countBytes = typeof input === 'string';
  const length = text.length;
  if (length === 0 || text.charCodeAt(0) === 0x0a || (text.charCodeAt(0) === 0x0d && text.charCodeAt(1) === 0x0a)) return NO_FIELDS;
  // Stopping early skips the size checks, which only a string of over a third of the limit can fail.
  const mayStop = !countBytes || length <= MAX_HEADER_BYTES / 3;

  let from: string | undefined;
  let contentType: string | undefined;
  let messageId: string | undefined;
  // The field being read: 0 none, 1 From, 2 Content-Type, 3 Message-ID.
  let reading = 0;
  let value = '';
  // The parts of a folded value, joined once at the end (see scanFields).
  let parts: string[] | null = null;
  let sectionEnd = length;
  for (let pos = 0; ; ) {
    const newline = text.indexOf('\n', pos);
    const lineEnd = newline < 0 ? length : newline;
    if (countBytes && lineEnd > MAX_HEADER_BYTES + 1) throw tooLarge();
    const first = text.charCodeAt(pos);
    if (first === 0x20 || first === 0x09) {
      if (reading !== 0) {
        const more = lineValue(text, pos - 1, lineEnd);
        if (more !== '') (parts ??= value === '' ? [] : [value]).push(more);
      }
    } else {
      let colon = -1;
      if (reading !== 0) {
        // A line that is not a field leaves the field being read open (scanFields does the same).
        colon = fieldColon(text, pos, lineEnd);
        if (colon > 0) {
          const joined = parts === null ? value : parts.join(' ');
          if (reading === 1) from = joined;
          else if (reading === 2) contentType = joined;
          else messageId = joined;
          reading = 0;
          parts = null;
          if (mayStop && from !== undefined && contentType !== undefined && messageId !== undefined) break;
        }
      }
      if (reading === 0) {
        // The first field of each name counts (RFC 5322 §3.6 allows one of each).
        const lower = first | 0x20;
        if (lower === 0x66 && from === undefined && startsField(text, pos, 'from')) reading = 1;
        else if (lower === 0x63 && contentType === undefined && startsField(text, pos, 'content-type')) reading = 2;
        else if (lower === 0x6d && messageId === undefined && startsField(text, pos, 'message-id')) reading = 3;
        if (reading !== 0) value = lineValue(text, pos + (reading === 1 ? 4 : reading === 2 ? 12 : 10), lineEnd);
      }
    }
    if (newline < 0) break;
    pos = newline + 1;
    const next = text.charCodeAt(pos);
    if (next === 0x0a || (next === 0x0d && text.charCodeAt(pos + 1) === 0x0a)) {
      sectionEnd = text.charCodeAt(newline - 1) === 0x0d ? newline - 1 : newline;
      break;
    }
  }
  if (reading !== 0) {
    const joined = parts === null ? value : parts.join(' ');
    if (reading === 1) from = joined;
    else if (reading === 2) contentType = joined;
    else messageId = joined;
  }
  if (countBytes && sectionEnd > MAX_HEADER_BYTES / 3) {
    if (sectionEnd > MAX_HEADER_BYTES || Buffer.byteLength(sectionEnd === length ? text : text.slice(0, sectionEnd), 'utf8') > MAX_HEADER_BYTES) throw tooLarge();
  }
  return { from, contentType, messageId };
}

/**
 * A copy of `value` that shares no memory with the string it was sliced from. V8 represents a
 * slice of 13 characters or more as a view of its parent, which keeps the whole parent alive: a
 * Message-ID kept by a limiter would keep the caller's megabyte of message with it. Joining a
 * character and slicing it off makes V8 flatten the pair into a new string of the value's size.
 */
export function detach(value: string): string {
  return value.length < 13 ? value : ` ${value}`.slice(1);
}

/** Removes RFC 5322 comments `( … )`, nested, outside quoted strings (RFC 5322 §3.2.2). */
function stripComments(value: string): string {
  if (value.indexOf('(') < 0) return value;
  let out = '';
  let kept = 0; // where the text being kept started
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code === 0x5c && (quoted || depth > 0)) {
      i++; // a quoted-pair: kept inside a quoted string, dropped inside a comment
    } else if (quoted) {
      if (code === 0x22) quoted = false;
    } else if (code === 0x28) {
      if (depth === 0) out += value.slice(kept, i);
      depth++;
    } else if (code === 0x29 && depth > 0) {
      depth--;
      if (depth === 0) kept = i + 1;
    } else if (code === 0x22 && depth === 0) {
      quoted = true;
    }
  }
  return depth === 0 ? out + value.slice(kept) : out;
}

/** A parsed Content-Type (RFC 2045 §5.1): type and subtype lowercased, parameter names lowercased. */
export interface ContentType {
  readonly type: string;
  readonly parameters: ReadonlyMap<string, string>;
}

// RFC 2045 §5.1 token characters, as a lookup table.
const TOKEN = new Uint8Array(128);
for (const char of "!#$%&'*+.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-") TOKEN[char.charCodeAt(0)] = 1;

function isToken(code: number): boolean {
  return code < 0x80 && TOKEN[code] === 1;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

function skipToken(text: string, i: number): number {
  while (i < text.length && isToken(text.charCodeAt(i))) i++;
  return i;
}

function isLineTerminator(code: number): boolean {
  return code === 0x0a || code === 0x0d || code === 0x2028 || code === 0x2029;
}

/**
 * Parses a Content-Type value; null when it has no `type/subtype`. Parameters are
 * `; name = value` with a token or a quoted-string value (quoted-pairs unescaped); text between
 * them that is not a parameter is skipped; the first of parameters with the same name counts.
 */
export function parseContentType(value: string): ContentType | null {
  const text = stripComments(value);
  const typeStart = skipSpace(text, 0);
  const slash = skipToken(text, typeStart);
  if (slash === typeStart || text.charCodeAt(slash) !== 0x2f) return null;
  const typeEnd = skipToken(text, slash + 1);
  if (typeEnd === slash + 1) return null;
  const parameters = new Map<string, string>();
  // A quoted value that finds no closing quote fails at `openFailsBefore`: so does every one
  // opened before that point (it reads the same characters the same way), which keeps runs of
  // unclosed quotes linear.
  let openFailsBefore = -1;
  for (let semicolon = text.indexOf(';', typeEnd); semicolon >= 0; ) {
    const nameStart = skipSpace(text, semicolon + 1);
    const nameEnd = skipToken(text, nameStart);
    const equals = skipSpace(text, nameEnd);
    if (nameEnd === nameStart || text.charCodeAt(equals) !== 0x3d) {
      semicolon = text.indexOf(';', semicolon + 1);
      continue;
    }
    const valueStart = skipSpace(text, equals + 1);
    let parameter: string | undefined;
    let end = valueStart;
    if (text.charCodeAt(valueStart) === 0x22 && valueStart >= openFailsBefore) {
      let unescaped = '';
      let kept = valueStart + 1;
      for (let i = valueStart + 1; i < text.length; i++) {
        const code = text.charCodeAt(i);
        if (code === 0x22) {
          parameter = unescaped + text.slice(kept, i);
          end = i + 1;
          break;
        }
        if (code === 0x5c) {
          if (i + 1 >= text.length || isLineTerminator(text.charCodeAt(i + 1))) {
            openFailsBefore = i;
            break;
          }
          unescaped += text.slice(kept, i);
          kept = i + 1;
          i++;
        }
      }
      if (parameter === undefined && openFailsBefore < valueStart) openFailsBefore = text.length;
    }
    if (parameter === undefined) {
      // A token, or whatever runs to the next ';' or space (an unclosed quote included).
      while (end < text.length && text.charCodeAt(end) !== 0x3b && !isSpace(text.charCodeAt(end))) end++;
      parameter = text.slice(valueStart, end);
    }
    const name = text.slice(nameStart, nameEnd).toLowerCase();
    if (!parameters.has(name)) parameters.set(name, parameter);
    semicolon = text.indexOf(';', end);
  }
  return { type: text.slice(typeStart, typeEnd).toLowerCase(), parameters };
}

/**
 * A Content-Type parameter as RFC 2231 lets it be written: plain (`name=value`), extended
 * (`name*=charset'lang'%XX…`), or in numbered sections (`name*0=…`, `name*1*=%XX…`), joined
 * in order. Undefined when the parameter is absent; null when it is written in an extended form
 * that cannot be read (no charset'language' prefix, a bad %-escape, over 100 sections).
 */
export function contentTypeParameter(parameters: ReadonlyMap<string, string>, name: string): string | null | undefined {
  const plain = parameters.get(name);
  if (plain !== undefined) return plain;
  const extended = parameters.get(`${name}*`);
  if (extended !== undefined) return decodeExtendedValue(extended, true);
  let joined = '';
  for (let n = 0; n <= 100; n++) {
    const section = parameters.get(`${name}*${n}`);
    if (section !== undefined) {
      joined += section;
      continue;
    }
    const encoded = parameters.get(`${name}*${n}*`);
    if (encoded === undefined) return n === 0 ? undefined : joined;
    const decoded = decodeExtendedValue(encoded, n === 0);
    if (decoded === null) return null;
    joined += decoded;
  }
  return null;
}

/** An RFC 2231 extended value: %-escapes decoded (as UTF-8), after the `charset'language'` prefix of a first section. */
function decodeExtendedValue(value: string, prefixed: boolean): string | null {
  let text = value;
  if (prefixed) {
    const first = text.indexOf("'");
    const second = first < 0 ? -1 : text.indexOf("'", first + 1);
    if (second < 0) return null;
    text = text.slice(second + 1);
  }
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

/**
 * The domain of the first mailbox in a From field (`"Name" <user@example.org>`,
 * `user@example.org`, `Group: a@x, b@y;`), or undefined when it has none. Angle brackets and
 * commas inside quoted display names do not count.
 */
export function fromDomain(value: string): string | undefined {
  const text = stripComments(value);
  let quoted = false;
  let start = 0;
  let angle = -1;
  let end = text.length;
  // The last '@' seen, quoted or not: "is there an '@' since `start`" in constant time.
  let lastAt = -1;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x40) lastAt = i;
    if (code === 0x5c && quoted) {
      i++;
      if (text.charCodeAt(i) === 0x40) lastAt = i;
    } else if (code === 0x22) {
      quoted = !quoted;
    } else if (quoted) {
      continue;
    } else if (code === 0x3a && angle < 0 && lastAt < start) {
      start = i + 1; // a group name (RFC 5322 §3.4): its mailboxes follow
    } else if (code === 0x3c) {
      angle = i + 1;
    } else if (code === 0x3e && angle >= 0) {
      end = i;
      break;
    } else if ((code === 0x2c || code === 0x3b) && angle < 0 && lastAt >= start) {
      // The end of the first mailbox. (A comma before any @ is in an unquoted display name,
      // "Doe, John <john@example.org>": invalid, but common.)
      end = i;
      break;
    }
  }
  const mailboxStart = angle >= 0 ? angle : start;
  // The last '@' before `end`: the loop saw every character before it (lastIndexOf would look again).
  const at = lastAt;
  if (at < mailboxStart) return undefined;
  // The domain runs from the first non-space after the '@' to a space or an angle bracket.
  const domainStart = skipSpace(text, at + 1);
  let domainEnd = domainStart;
  while (domainEnd < end) {
    const code = text.charCodeAt(domainEnd);
    if (code === 0x3c || code === 0x3e || isSpace(code)) break;
    domainEnd++;
  }
  return domainEnd > domainStart ? text.slice(domainStart, domainEnd) : undefined;
}
