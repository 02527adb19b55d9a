// The header readers as they were before issue 12 (split into lines, slice and lowercase every
// field; quadratic fromDomain and Content-Type parameters): a model the one-pass readers of
// src/headers.ts are held to on short input, where their answers must be the same.
import { MAX_HEADER_BYTES } from '../../src/headers.js';
import { OutboundPoolsError, show } from '../../src/errors.js';

const decoder = new TextDecoder('utf-8');

function tooLarge(): OutboundPoolsError {
  return new OutboundPoolsError('invalid-headers', `The header section is over ${MAX_HEADER_BYTES} bytes; no MTA accepts that.`);
}

/** Where the header section of bytes ends: the index of the empty line's first byte, or the length. */
function bytesHeaderEnd(bytes: Uint8Array): number {
  if (bytes[0] === 0x0a || (bytes[0] === 0x0d && bytes[1] === 0x0a)) return 0; // no header at all
  const limit = Math.min(bytes.length, MAX_HEADER_BYTES + 3);
  for (let i = 0; i < limit; i++) {
    if (bytes[i] !== 0x0a) continue;
    if (bytes[i + 1] === 0x0a) return bytes[i - 1] === 0x0d ? i - 1 : i;
    if (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) return bytes[i - 1] === 0x0d ? i - 1 : i;
  }
  return bytes.length;
}

/** The header section of a header block or of a whole message (without the empty line). */
function headerSection(input: string | Uint8Array): string {
  if (input instanceof Uint8Array) {
    const end = bytesHeaderEnd(input);
    if (end > MAX_HEADER_BYTES) throw tooLarge();
    return decoder.decode(input.subarray(0, end));
  }
  if (typeof input !== 'string') {
    throw new OutboundPoolsError('invalid-headers', `headers must be a string or a Uint8Array, got ${show(input)}.`);
  }
  // RFC 5322 §2.1: a message that starts with the empty line has no header fields.
  if (input.startsWith('\n') || input.startsWith('\r\n')) return '';
  const blank = /\r?\n\r?\n/.exec(input.length > MAX_HEADER_BYTES + 4 ? input.slice(0, MAX_HEADER_BYTES + 4) : input);
  const section = blank === null ? input : input.slice(0, blank.index);
  // Characters count at most 3 UTF-8 bytes: only long sections need counting.
  if (section.length > MAX_HEADER_BYTES / 3 && Buffer.byteLength(section, 'utf8') > MAX_HEADER_BYTES) throw tooLarge();
  return section;
}


/** Parses the header fields: unfolds continuation lines (RFC 5322 §2.2.3) and lowercases names. */
export function referenceParseHeaders(input: string | Uint8Array): [string, string][] {
  const fields: [string, string][] = [];
  for (const line of headerSection(input).split(/\r?\n/)) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length > 0) {
      const field = fields[fields.length - 1]!;
      const more = line.trim();
      field[1] = field[1] === '' ? more : more === '' ? field[1] : `${field[1]} ${more}`;
      continue;
    }
    const colon = line.indexOf(':');
    // Lines that are not fields (a leading mbox "From " line, garbage) are skipped, not guessed at.
    if (colon <= 0 || /[\s]/.test(line.slice(0, colon))) continue;
    fields.push([line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]);
  }
  return fields;
}


/** Removes RFC 5322 comments `( … )`, nested, outside quoted strings. */
function stripComments(value: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const char = value[i]!;
    if (char === '\\' && (quoted || depth > 0)) {
      if (depth === 0) out += char + (value[i + 1] ?? '');
      i++;
    } else if (quoted) {
      out += char;
      if (char === '"') quoted = false;
    } else if (char === '(') depth++;
    else if (char === ')' && depth > 0) depth--;
    else if (depth === 0) {
      if (char === '"') quoted = true;
      out += char;
    }
  }
  return out;
}


/** Parses a Content-Type value; null when it has no `type/subtype`. */
export function referenceParseContentType(value: string): { type: string; parameters: Map<string, string> } | null {
  const text = stripComments(value);
  const match = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*/.exec(text);
  if (match === null) return null;
  const parameters = new Map<string, string>();
  const parameter = /;\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  parameter.lastIndex = match[0].length;
  for (let found = parameter.exec(text); found !== null; found = parameter.exec(text)) {
    const name = found[1]!.toLowerCase();
    if (!parameters.has(name)) parameters.set(name, found[2] !== undefined ? found[2].replace(/\\(.)/g, '$1') : found[3]!);
  }
  return { type: match[1]!.toLowerCase(), parameters };
}


/**
 * The domain of the first mailbox in a From field (`"Name" <user@example.org>`,
 * `user@example.org`, `Group: a@x, b@y;`), or undefined when it has none. Angle brackets and
 * commas inside quoted display names do not count.
 */
export function referenceFromDomain(value: string): string | undefined {
  const text = stripComments(value);
  let quoted = false;
  let start = 0;
  let angle = -1;
  let end = text.length;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === '\\' && quoted) {
      i++;
    } else if (char === '"') {
      quoted = !quoted;
    } else if (quoted) {
      continue;
    } else if (char === ':' && angle < 0 && !text.slice(start, i).includes('@')) {
      start = i + 1; // a group name: its mailboxes follow
    } else if (char === '<') {
      angle = i + 1;
    } else if (char === '>' && angle >= 0) {
      end = i;
      break;
    } else if ((char === ',' || char === ';') && angle < 0 && text.slice(start, i).includes('@')) {
      // The end of the first mailbox. (A comma before any @ is in an unquoted display name,
      // "Doe, John <john@example.org>": invalid, but common.)
      end = i;
      break;
    }
  }
  const mailbox = angle >= 0 ? text.slice(angle, end) : text.slice(start, end);
  const at = mailbox.lastIndexOf('@');
  if (at < 0) return undefined;
  const domain = mailbox.slice(at + 1).trim().split(/[\s<>]/)[0]!;
  return domain.length > 0 ? domain : undefined;
}
