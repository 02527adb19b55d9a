// The few header fields the decision reads (Content-Type, From, Message-ID), found in a header
// block or a whole message (RFC 5322 §2.2: the header ends at the first empty line).

import { OutboundPoolsError, show } from './errors.js';

/** Header blocks larger than this are refused: no MTA accepts such a header section. */
export const MAX_HEADER_BYTES = 1024 * 1024;

/** The header fields of one message, unfolded, in order; names lowercased. */
export type HeaderFields = readonly (readonly [name: string, value: string])[];

const decoder = new TextDecoder('utf-8');

/** The header section of a header block or of a whole message. */
function headerSection(input: string | Uint8Array): string {
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else if (input instanceof Uint8Array) {
    // Decode only the header part: find the blank line in the bytes first.
    let end = input.length;
    for (let i = 0; i + 1 < input.length && i <= MAX_HEADER_BYTES; i++) {
      if (input[i] === 0x0a && (input[i + 1] === 0x0a || (input[i + 1] === 0x0d && input[i + 2] === 0x0a))) {
        end = i + 1;
        break;
      }
    }
    text = decoder.decode(input.subarray(0, Math.min(end, MAX_HEADER_BYTES + 1)));
  } else {
    throw new OutboundPoolsError('invalid-headers', `headers must be a string or a Uint8Array, got ${show(input)}.`);
  }
  const blank = /\r?\n\r?\n/.exec(text.length > MAX_HEADER_BYTES + 4 ? text.slice(0, MAX_HEADER_BYTES + 4) : text);
  const section = blank === null ? text : text.slice(0, blank.index);
  if (section.length > MAX_HEADER_BYTES) {
    throw new OutboundPoolsError('invalid-headers', `The header section is over ${MAX_HEADER_BYTES} bytes; no MTA accepts that.`);
  }
  return section;
}

/** Parses the header fields: unfolds continuation lines (RFC 5322 §2.2.3) and lowercases names. */
export function parseHeaders(input: string | Uint8Array): HeaderFields {
  const fields: [string, string][] = [];
  for (const line of headerSection(input).split(/\r?\n/)) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length > 0) {
      fields[fields.length - 1]![1] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    // Lines that are not fields (a leading mbox "From " line, garbage) are skipped, not guessed at.
    if (colon <= 0 || /[\s]/.test(line.slice(0, colon))) continue;
    fields.push([line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]);
  }
  return fields;
}

/** The value of the first field named `name` (lowercase), or undefined. */
export function headerValue(fields: HeaderFields, name: string): string | undefined {
  return fields.find(([field]) => field === name)?.[1];
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

/** A parsed Content-Type (RFC 2045 §5.1): type and subtype lowercased, parameter names lowercased. */
export interface ContentType {
  readonly type: string;
  readonly parameters: ReadonlyMap<string, string>;
}

/** Parses a Content-Type value; null when it has no `type/subtype`. */
export function parseContentType(value: string): ContentType | null {
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
 * The domain of the first mailbox in a From field (`"Name" <user@example.org>` or
 * `user@example.org`), or undefined when it has none.
 */
export function fromDomain(value: string): string | undefined {
  const text = stripComments(value);
  const angle = /<([^<>]*)>/.exec(text);
  const address = angle !== null ? angle[1]! : text.split(',')[0]!;
  const at = address.lastIndexOf('@');
  if (at < 0) return undefined;
  const domain = address.slice(at + 1).trim().replace(/[>;,\s].*$/, '');
  return domain.length > 0 ? domain : undefined;
}
