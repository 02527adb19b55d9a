// Envelope addresses as RFC 5321 §4.1.2 defines them (with the UTF-8 extension of RFC 6531),
// parsed once at the edge so that the rules only ever see clean, normalised values.

import { isIPv4, isIPv6 } from './ip.js';
import { domainToASCII, domainToUnicode } from 'node:url';
import { OutboundPoolsError, show } from './errors.js';
import { aLabelToUnicode } from './punycode.js';
import { plainRecord } from './records.js';

/** A parsed envelope address. */
export interface EnvelopeAddress {
  /** The local part as given (quotes kept when it was a quoted-string). */
  readonly local: string;
  /** The domain in lowercase A-labels (`Bücher.DE` → `xn--bcher-kva.de`), or an address literal. */
  readonly domain: string;
  /** `local@domain`, with the normalised domain. */
  readonly address: string;
  /** Whether the domain is an address literal (`[192.0.2.1]`, `[IPv6:…]`). */
  readonly isAddressLiteral: boolean;
}

/** An {@link EnvelopeAddress} made by `new` (see records.ts: a decision keeps its addresses while it waits). */
const Address = plainRecord<[local: string, domain: string, address: string, isAddressLiteral: boolean], EnvelopeAddress>(function (local, domain, address, isAddressLiteral) {
  this.local = local;
  this.domain = domain;
  this.address = address;
  this.isAddressLiteral = isAddressLiteral;
});

// RFC 5321 §4.5.3.1: local part 64 octets, domain 255 octets, path 256 octets with its brackets.
const MAX_LOCAL_OCTETS = 64;
const MAX_DOMAIN_OCTETS = 255;
const MAX_ADDRESS_OCTETS = 254;
/** Longer input is refused before it is looked at. */
const MAX_INPUT_LENGTH = 1024;

// qtextSMTP or quoted-pairSMTP (RFC 5321 §4.1.2), UTF-8 allowed.
const QUOTED_STRING = /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\uffff]|\\[\x20-\x7e])*"$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
// ASCII that has no place in a domain name. node:url's domainToASCII parses URL hosts and would
// cut `contoso.com/evil.example` to `contoso.com` or decode `%6F`: such input never reaches it.
const NOT_IN_DOMAIN = /[\x00-\x2c\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]/;
const CONTROL = /[\x00-\x1f\x7f]/;
// A lone surrogate has no UTF-8 form.
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/**
 * The fast path for plain ASCII names: checks the letter-digit-hyphen rule label by label in
 * one pass and lowercases. Returns undefined when the name needs IDNA (non-ASCII, `xn--`).
 */
function asciiDomain(text: string): string | null | undefined {
  const end = text.length > 0 && text.charCodeAt(text.length - 1) === 0x2e ? text.length - 1 : text.length;
  if (end === 0 || end > MAX_DOMAIN_OCTETS) return null;
  let labelStart = 0;
  let dots = 0;
  let labelAllDigits = true;
  let upper = false;
  for (let i = 0; i <= end; i++) {
    const code = i === end ? 0x2e : text.charCodeAt(i);
    if (code === 0x2e) {
      // RFC 3696 §2: a top-level domain is never all-numeric (`0x7f.1` would be read as an
      // address); that also refuses an IPv4 address written without brackets.
      if (i === end && labelAllDigits) return null;
      labelAllDigits = true;
      const length = i - labelStart;
      if (length === 0 || length > 63) return null;
      if (text.charCodeAt(labelStart) === 0x2d || text.charCodeAt(i - 1) === 0x2d) return null; // no leading or trailing '-'
      if (length >= 4 && text.charCodeAt(labelStart + 2) === 0x2d && text.charCodeAt(labelStart + 3) === 0x2d) return undefined; // xn-- and other ACE
      if (i < end) dots++;
      labelStart = i + 1;
    } else if (code >= 0x30 && code <= 0x39) {
      continue;
    } else if ((code >= 0x61 && code <= 0x7a) || code === 0x2d) {
      labelAllDigits = false;
    } else if (code >= 0x41 && code <= 0x5a) {
      labelAllDigits = false;
      upper = true;
    } else {
      return undefined;
    }
  }
  const name = text.slice(0, end);
  // One label is not a mail domain (but localhost).
  if (dots === 0 && name.toLowerCase() !== 'localhost') return null;
  return upper ? name.toLowerCase() : name;
}

/**
 * Normalises a domain name to lowercase A-labels and checks it label by label (letters, digits,
 * hyphens; 1–63 octets each, 255 in all). Returns null when it is not a domain name.
 */
export function normaliseDomain(domain: string): string | null {
  const fast = asciiDomain(domain);
  if (fast !== undefined) return fast;
  if (NOT_IN_DOMAIN.test(domain) || LONE_SURROGATE.test(domain)) return null;
  const ascii = domainToASCII(domain);
  if (ascii === '' || !onlyCaseMapped(domain, ascii)) return null;
  const checked = asciiDomain(ascii);
  if (checked !== undefined) return checked;
  const labels = (ascii.endsWith('.') ? ascii.slice(0, -1) : ascii).split('.');
  return labels.length >= 2 && ascii.length <= MAX_DOMAIN_OCTETS && labels.every(isLabel) ? labels.join('.') : null;
}

/**
 * Whether domainToASCII changed `domain` no more than IDNA2008 does: case, Unicode normalisation
 * (NFC) and U-labels to A-labels, label by label. UTS-46, which it applies, also maps characters
 * no domain name holds — a zero-width space or a soft hyphen (removed), fullwidth letters, the
 * ideographic full stop (a dot) — onto a plain name: `con\u200Btoso.com` would become
 * `contoso.com`, an accepted domain, while the message leaves with the other name. Such input is
 * not a domain name.
 */
function onlyCaseMapped(domain: string, ascii: string): boolean {
  const given = (domain.endsWith('.') ? domain.slice(0, -1) : domain).split('.');
  const mapped = (ascii.endsWith('.') ? ascii.slice(0, -1) : ascii).split('.');
  if (given.length !== mapped.length) return false;
  for (let i = 0; i < given.length; i++) if (!labelOnlyCaseMapped(given[i]!, mapped[i]!)) return false;
  return true;
}

/**
 * Whether `mapped`, domainToASCII's output for one label `given`, differs from it by no more than
 * IDNA2008 allows: case, NFC, the U-label as its A-label (see {@link onlyCaseMapped}).
 */
export function labelOnlyCaseMapped(given: string, mapped: string): boolean {
  // A character that lowercases to ASCII (the Kelvin sign K, U+212A, to k) spells another name:
  // `ban\u212Aa.example` is not bank.example.
  if (foldsOntoAscii(given)) return false;
  const label = given.toLowerCase();
  if (label === mapped) return true;
  // JavaScript lowercases a final Σ to ς, UTS-46 to σ: the same letter for this purpose.
  return domainToUnicode(mapped).replace(/ς/g, 'σ') === label.normalize('NFC').replace(/ς/g, 'σ');
}

/**
 * Whether a lowercase label of domainToASCII's output is a letter-digit-hyphen label and, when
 * it is an A-label (`xn--`), a valid one: its Punycode decodes (checked here, since Node 24's
 * domainToASCII no longer refuses `xn--abc`) to a U-label that IDNA encodes back to the same
 * A-label (RFC 5891 §5.4: the label round-trips; that refuses non-canonical encodings and
 * U-labels IDNA would map, such as capitals or unnormalised text).
 */
function isLabel(label: string): boolean {
  if (!LABEL.test(label)) return false;
  if (!label.startsWith('xn--')) return true;
  const unicode = aLabelToUnicode(label);
  return unicode !== null && domainToASCII(`${unicode}.example`) === `${label}.example`;
}

/**
 * Parses an envelope address (`user@example.org` or `<user@example.org>`).
 * `field` (with `index` for lists) names the field in error messages (`mailFrom`, `rcptTo[2]`).
 *
 * @throws {OutboundPoolsError} `invalid-address` with the reason.
 */
export function parseEnvelopeAddress(input: unknown, field: string, allowAddressLiteral: boolean, index?: number): EnvelopeAddress {
  try {
    return parseAddress(input, allowAddressLiteral);
  } catch (error) {
    if (!(error instanceof AddressSyntaxError)) throw error;
    const what = index === undefined ? field : `${field}[${index}]`;
    if (error.typeError) throw new OutboundPoolsError('invalid-address', `${what} must be a string, got ${show(input)}.`);
    const why = CONTROL.test(input as string) ? 'it contains control characters' : error.message;
    throw new OutboundPoolsError('invalid-address', `${what} ${show(input)} is not a valid envelope address: ${why}.`);
  }
}

/** Why an address does not parse; turned into an OutboundPoolsError naming the field. */
class AddressSyntaxError extends Error {
  constructor(
    message: string,
    readonly typeError = false,
  ) {
    super(message);
  }
}

// atext (RFC 5322 §3.2.3) of the ASCII range, as a lookup table.
const ATEXT = new Uint8Array(128);
for (const char of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~-") ATEXT[char.charCodeAt(0)] = 1;

/**
 * The UTF-8 length of a dot-string local part (RFC 5321 §4.1.2 with RFC 6531's UTF-8), or -1
 * when it is not one: one pass instead of a regex, a surrogate check and an encoding.
 */
function dotStringOctets(local: string): number {
  let octets = 0;
  let previousDot = true; // a dot may not come first, nor after another dot
  for (let i = 0; i < local.length; i++) {
    const code = local.charCodeAt(i);
    if (code === 0x2e) {
      if (previousDot) return -1;
      previousDot = true;
      octets++;
      continue;
    }
    previousDot = false;
    if (code < 0x80) {
      if (ATEXT[code] === 0) return -1;
      octets++;
    } else if (code < 0x800) {
      octets += 2;
    } else if (code >= 0xd800 && code <= 0xdbff) {
      if (i + 1 >= local.length || (local.charCodeAt(i + 1) & 0xfc00) !== 0xdc00) return -1; // lone high surrogate
      octets += 4;
      i++;
    } else if (code >= 0xdc00 && code <= 0xdfff) {
      return -1; // lone low surrogate
    } else {
      octets += 3;
    }
  }
  return previousDot ? -1 : octets;
}

/**
 * The common case in one pass over the string: a dot-string local part of ASCII atext and a
 * letter-digit-hyphen domain (no A-labels; see asciiDomain), as `user@example.org` or
 * `<user@example.org>`. Returns undefined for anything else — quoted or UTF-8 local parts, IDN,
 * address literals, and every error — which {@link parseAddressInFull} then reads and explains.
 * It gives the same result as parseAddressInFull wherever it gives one (a property test holds it
 * to that).
 * @internal
 */
export function parseCommonAddress(input: string): EnvelopeAddress | undefined {
  let start = 0;
  let end = input.length;
  if (end > 0 && input.charCodeAt(0) === 0x3c) {
    if (input.charCodeAt(end - 1) !== 0x3e) return undefined;
    start = 1;
    end--;
  }
  // The local part, up to the first '@' (a dot-string has none of its own).
  let at = start;
  let previousDot = true; // a dot may not come first, nor after another dot
  for (; at < end; at++) {
    const code = input.charCodeAt(at);
    if (code === 0x40) break;
    if (code === 0x2e) {
      if (previousDot) return undefined;
      previousDot = true;
    } else {
      if (code >= 0x80 || ATEXT[code] === 0) return undefined;
      previousDot = false;
    }
  }
  if (at === end || previousDot || at - start > MAX_LOCAL_OCTETS) return undefined;
  const rawDomain = input.slice(at + 1, end);
  const domain = asciiDomain(rawDomain);
  if (domain === null || domain === undefined || at - start + 1 + domain.length > MAX_ADDRESS_OCTETS) return undefined;
  const local = input.slice(start, at);
  const address = domain !== rawDomain ? `${local}@${domain}` : start === 0 ? input : input.slice(start, end);
  return new Address(local, domain, address, false);
}

function parseAddress(input: unknown, allowAddressLiteral: boolean): EnvelopeAddress {
  if (typeof input === 'string') {
    const common = parseCommonAddress(input);
    if (common !== undefined) return common;
  }
  return parseAddressInFull(input, allowAddressLiteral);
}

/**
 * Every envelope address RFC 5321 and 6531 allow, and the reason for any they do not.
 * @internal
 */
export function parseAddressInFull(input: unknown, allowAddressLiteral: boolean): EnvelopeAddress {
  if (typeof input !== 'string') throw new AddressSyntaxError('not a string', true);
  if (input.length > MAX_INPUT_LENGTH) throw new AddressSyntaxError(`longer than ${MAX_INPUT_LENGTH} characters`);
  // Control characters fail every check below (atext, qtext, domain labels); the error path
  // names them (see parseEnvelopeAddress), so the common case needs no extra pass for them.
  const text = input.startsWith('<') && input.endsWith('>') ? input.slice(1, -1) : input;
  if (text.startsWith('@')) throw new AddressSyntaxError('source routes (@relay:user@domain) are not accepted');
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) throw new AddressSyntaxError('it needs local@domain');
  const local = text.slice(0, at);
  const rawDomain = text.slice(at + 1);
  let localOctets = dotStringOctets(local);
  if (localOctets < 0) {
    if (LONE_SURROGATE.test(local)) throw new AddressSyntaxError('the local part has a lone surrogate, which has no UTF-8 form');
    if (!QUOTED_STRING.test(local)) throw new AddressSyntaxError('the local part is neither a dot-string nor a quoted string');
    localOctets = Buffer.byteLength(local, 'utf8');
  }
  if (localOctets > MAX_LOCAL_OCTETS) throw new AddressSyntaxError(`the local part is over ${MAX_LOCAL_OCTETS} octets`);

  let domain: string;
  let isAddressLiteral = false;
  if (rawDomain.startsWith('[') && rawDomain.endsWith(']')) {
    const literal = rawDomain.slice(1, -1);
    const isIp = isIPv4(literal) || (/^IPv6:/i.test(literal) && isIPv6(literal.slice(5)));
    if (!isIp) throw new AddressSyntaxError('the address literal is not an IPv4 address or IPv6:address');
    if (!allowAddressLiteral) throw new AddressSyntaxError('an address literal cannot be a sender domain: it has no DNS to check');
    domain = rawDomain;
    isAddressLiteral = true;
  } else {
    const normalised = normaliseDomain(rawDomain);
    if (normalised === null) throw new AddressSyntaxError(`${show(rawDomain)} is not a domain name`);
    domain = normalised;
  }
  // The domain is ASCII now (A-labels or an address literal): its length is its octets.
  if (localOctets + 1 + domain.length > MAX_ADDRESS_OCTETS) throw new AddressSyntaxError(`longer than ${MAX_ADDRESS_OCTETS} octets`);
  // Most addresses are already normalised: keep the string rather than build an equal one.
  return new Address(local, domain, domain === rawDomain ? text : `${local}@${domain}`, isAddressLiteral);
}

/**
 * A local part in one spelling for each mailbox: a quoted string whose content is a dot-string
 * unquoted (`"alice"` and `"al\ice"` are `alice`, RFC 5321 §4.1.2: the quotes and quoted-pairs
 * are not part of the value), any other quoted string with only `"` and `\` escaped; a
 * dot-string as it is.
 */
export function canonicalLocalPart(local: string): string {
  if (local.length < 2 || local.charCodeAt(0) !== 0x22) return local;
  const content = localPartValue(local);
  return dotStringOctets(content) >= 0 ? content : `"${content.replace(/["\\]/g, '\\$&')}"`;
}

/** A local part's value: a quoted string without its quotes and quoted-pairs (RFC 5321 §4.1.2), a dot-string as it is. */
export function localPartValue(local: string): string {
  return local.length >= 2 && local.charCodeAt(0) === 0x22 ? local.slice(1, -1).replace(/\\(.)/gsu, '$1') : local;
}

/**
 * `text` lowercased, except for a non-ASCII character whose lowercase is ASCII (the Kelvin sign
 * K, U+212A, lowercases to k): it is kept as it is, so that no spelling of a name folds onto
 * another ASCII name — `\u212Aevin@contoso.com` is not kevin@contoso.com, nor is a login
 * `mailbox-\u212Aiosk` the forwarder `mailbox-kiosk`. Other letters fold as toLowerCase folds
 * them (`ÅSA` is `åsa`).
 * @internal
 */
export function caseFold(text: string): string {
  if (!foldsOntoAscii(text)) return text.toLowerCase();
  // The runs between such letters lowercased whole, so that context rules (Greek final sigma)
  // still apply within them.
  let out = '';
  let run = '';
  for (const char of text) {
    if (char.charCodeAt(0) >= 0x80 && !NON_ASCII.test(char.toLowerCase())) {
      out += run.toLowerCase() + char;
      run = '';
    } else run += char;
  }
  return out + run.toLowerCase();
}

const NON_ASCII = /[^\x00-\x7f]/;

/** Whether `text` holds a non-ASCII character whose lowercase is ASCII (the Kelvin sign). */
function foldsOntoAscii(text: string): boolean {
  if (!NON_ASCII.test(text)) return false;
  for (const char of text) if (char.charCodeAt(0) >= 0x80 && !NON_ASCII.test(char.toLowerCase())) return true;
  return false;
}

/** The key sending limits count an envelope sender under: its canonical local part and domain, case-folded ({@link caseFold}). */
export function senderLimitKey(sender: EnvelopeAddress): string {
  const local = canonicalLocalPart(sender.local);
  return caseFold(local === sender.local ? sender.address : `${local}@${sender.domain}`);
}

/**
 * The key sending limits and restrictions know a sender by, from an address or a login as an
 * administrator or an MTA writes it: an envelope address (brackets or not) in its canonical form
 * ({@link senderLimitKey}: `"Megan"@Bücher.DE` → `megan@xn--bcher-kva.de`), the null sender as
 * `<>`, anything else (a SASL login) lowercased. The decision keys a message's sender this way
 * (`message.submitter` when given, else `mailFrom`), so a restriction imposed or released under
 * this key is the one the decision meets, whatever the spelling typed.
 *
 * @example
 * ```ts
 * limitKeyOf('<"Megan"@Contoso.COM>');
 * // → 'megan@contoso.com'
 * ```
 */
export function limitKeyOf(text: string): string {
  if (typeof text !== 'string') throw new OutboundPoolsError('invalid-address', `A sender key must be a string, got ${show(text)}.`);
  if (isNullSender(text)) return '<>';
  // A login without '@' (the usual submitter) is no address: spared the parser and its error.
  if (text.indexOf('@') < 0) return caseFold(text);
  let parsed = parseCommonAddress(text);
  if (parsed === undefined) {
    try {
      parsed = parseAddressInFull(text, false);
    } catch {
      return caseFold(text);
    }
  }
  return senderLimitKey(parsed);
}

/**
 * A path without the angle brackets of the MAIL FROM command (`<a@b.example>` → `a@b.example`,
 * `<>` → ''); anything else as it is.
 * @internal
 */
export function withoutBrackets(path: string): string {
  return path.length >= 2 && path.charCodeAt(0) === 0x3c && path.charCodeAt(path.length - 1) === 0x3e ? path.slice(1, -1) : path;
}

/** Whether an envelope sender is the null reverse-path (`''` or `<>`), used by DSNs (RFC 5321 §4.5.5). */
export function isNullSender(mailFrom: string): boolean {
  return mailFrom === '' || mailFrom === '<>';
}
