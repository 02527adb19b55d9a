// Bounds on the work mailauth's DKIM verifier is handed, checked before it sees the message.
//
// mailauth 7.1's verifier is quadratic in input an attacker writes (dkimVerify alone, in doubling
// series of the header from 32 to 256 KiB; test/hostile/mailauth-dkim.test.ts holds the
// authenticator to linear time):
// - its header parser (lib/tools.js parseHeaders) joins the lines of a folded field by copying
//   the field's list of lines again at each line, and splices each continuation line out of the
//   list of all lines: one field folded 64 Ki times (256 KiB) took 20 s;
// - for every signature it verifies (each DKIM-Signature, and the newest ARC-Message-Signature),
//   getSigningHeaderLines copies the list of fields and walks it from the bottom once per name
//   in h=: a 256 KiB header of short fields and an h= naming absent fields took 1 s, an h= of
//   "from" repeated over fields below From 1.8 s;
// - every signature with its own c=, a= and l= gets a body hasher of its own, each reading the
//   whole body: 2,000 signatures with distinct l= over a 256 KiB body took 2.2 s;
// - its relaxed body canonicalisation (lib/dkim/body/relaxed.js) copies the unfinished line again
//   with every chunk: a body of one 16 MiB line took 3–4 s, in time quadratic in the line.
// The bounds below make each of these linear in the message, with constants that leave real
// mail alone. What is over a bound is not verified — it never passes — and the rest of the
// message is: when in doubt, the relay pool.

import { Readable } from 'node:stream';
import { dkimVerify } from 'mailauth';

/**
 * The most header lines (fields and their continuation lines) the DKIM verifier is given. Over
 * it, no DKIM-Signature and no ARC set of the message is verified: mailauth's header parser is
 * quadratic in the lines of a folded field and in the continuation lines of the header. Real
 * header sections have tens of lines, a few hundred with a long recipient list; Postfix keeps
 * 100 KiB of a header (`header_size_limit`), about 1,300 lines of 78 characters.
 */
export const MAX_HEADER_LINES = 4096;

/**
 * The most header field names the `h=` tag of one DKIM-Signature or ARC-Message-Signature may
 * list for the signature to be verified: mailauth walks the header fields once per name. Real
 * signers list about 10 to 40 names (Gmail about 10), a few dozen more when they over-sign.
 */
export const MAX_SIGNED_FIELDS = 128;

/**
 * The most DKIM-Signature fields considered per message: the first ones, top down (the newest
 * signers). Fields after them are neither verified nor reported, as RFC 6376 §6.1 lets a verifier
 * limit the signatures it attempts; each would cost mailauth a walk of the header fields, a body
 * hash and a key lookup. Real mail carries one to three (the author's domain, its sending service,
 * a mailing list).
 */
export const MAX_DKIM_SIGNATURES = 8;

/**
 * The longest body line, in octets between two line feeds, over which the message's signatures
 * are verified. Over it, no DKIM-Signature and no ARC-Message-Signature is: mailauth's relaxed
 * body canonicalisation copies the unfinished line again with every chunk it reads (time
 * quadratic in the line: one line of 16 MiB took 4 s of CPU, blocking the event loop past any
 * deadline). RFC 5322 §2.1.1 caps a line at 998 characters, and MTAs break longer ones on the
 * way (Postfix's `smtp_line_length_limit`, 998), which breaks any signature over them anyway.
 */
export const MAX_BODY_LINE = 65_536;

/** The longest `d=` or `s=` value reported for a signature that is not verified (a domain name has at most 253 characters). */
const MAX_REPORTED_VALUE = 253;

/** A signature left unverified by a bound, reported as a DKIM result `permerror`. */
interface Unverified {
  readonly signingDomain: string;
  readonly selector?: string;
  readonly comment: string;
}

/** What {@link boundSignatures} found: what mailauth is given, and what is reported unverified. */
export interface SignatureBounds {
  /**
   * The message for mailauth: the caller's when no bound is crossed; a stream of the same bytes
   * with the name of every signature over a bound made unknown (its first letter replaced by
   * `X`: `XKIM-Signature`, `XRC-Message-Signature`), so that mailauth leaves it alone; or null
   * when the header is over {@link MAX_HEADER_LINES} lines and nothing is to be verified.
   */
  readonly input: string | Buffer | Readable | null;
  /** The DKIM-Signatures among the first {@link MAX_DKIM_SIGNATURES} that are not verified, and why. */
  readonly unverified: readonly Unverified[];
  /** Whether the header holds ARC fields (read when the header is not verified at all). */
  readonly arc: boolean;
}

/** The fields read here: the signatures mailauth verifies, and the other ARC fields. */
type Kind = 'dkim' | 'message-signature' | 'arc';

/** Lowercased field names and their kinds. */
const KINDS: ReadonlyMap<string, Kind> = new Map([
  ['dkim-signature', 'dkim'],
  ['arc-message-signature', 'message-signature'],
  ['arc-seal', 'arc'],
  ['arc-authentication-results', 'arc'],
]);
/** The longest name in {@link KINDS}. */
const LONGEST_KIND = 26;

/** A signature field: where its name starts, how many names its `h=` lists, and its `d=` and `s=` spans. */
interface SignatureField {
  readonly kind: 'dkim' | 'message-signature';
  readonly nameAt: number;
  readonly names: number;
  readonly domain: readonly [number, number] | null;
  readonly selector: readonly [number, number] | null;
}

/** A field-name character (RFC 5322 ftext: printable US-ASCII but the colon), as mailauth's parser reads one. */
function isNameChar(code: number): boolean {
  return code >= 0x21 && code <= 0x7e && code !== 0x3a;
}

/** Space, tab or a CR left in a line: what mailauth's parser allows between a field name and its colon. */
function isLineSpace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0d;
}

/**
 * What a tag name may hold besides its letter and still be that tag for mailauth, which trims
 * the whitespace of a decoded UTF-8 string (`\s`): ASCII controls and space, and any byte of a
 * multi-byte character. Wider than mailauth, so that no `h=` it reads goes uncounted.
 */
function isTagSpace(code: number): boolean {
  return code <= 0x20 || code >= 0x7f;
}

/**
 * How much of `bytes` to read as the header: through its first empty line (LF LF or LF CR LF),
 * found by native search — in the line-end style of the first line first, then the other style
 * only before it, so that no search reads the body — or all of it without one.
 */
function headerLength(bytes: Buffer): number {
  const firstLf = bytes.indexOf(0x0a);
  if (firstLf < 0) return bytes.length;
  const [usual, other] = firstLf > 0 && bytes[firstLf - 1] === 0x0d ? ['\n\r\n', '\n\n'] : ['\n\n', '\n\r\n'];
  // An empty line starts with the line feed of the line before it: none comes before the first.
  let at = bytes.indexOf(usual, firstLf, 'latin1');
  const before = at < 0 ? bytes : bytes.subarray(0, at + usual.length);
  const otherAt = before.indexOf(other, firstLf, 'latin1');
  if (otherAt >= 0 && (at < 0 || otherAt < at)) at = otherAt;
  return at < 0 ? bytes.length : at + 1;
}

/**
 * The header of `raw` read as mailauth's verifier reads it (lib/tools.js parseHeaders), in one
 * pass. A Buffer's header is read as Latin-1 text, one character a byte, so that offsets are the
 * same in both; only ASCII is compared.
 */
class HeaderScan {
  readonly signatures: SignatureField[] = [];
  lines = 0;
  arc = false;
  /** Where the body starts (after the empty line), or the end of the text read when it has none. */
  bodyAt = 0;
  private readonly text: string;

  constructor(private readonly raw: string | Buffer) {
    this.text = typeof raw === 'string' ? raw : raw.toString('latin1', 0, headerLength(raw));
  }

  /**
   * Splits the header into fields exactly where mailauth does: the first line opens a field;
   * another line opens one when it is a field name, optional spaces and a colon, or a field name
   * alone on its line with the colon (after optional spaces) opening the next line; every other
   * line continues the field above (a fold, or a line that is not a field at all). The header
   * ends at the first empty line (LF LF or LF CR LF: mailauth turns a bare LF into CR LF first).
   */
  run(): void {
    const { text } = this;
    let pos = 0;
    let fieldAt = -1;
    let nameOnlyAt = -1; // a line of a field name alone, which opens a field if a colon opens the next
    for (;;) {
      const lf = text.indexOf('\n', pos);
      let end = lf < 0 ? text.length : lf;
      if (end > pos && text.charCodeAt(end - 1) === 0x0d) end--;
      if (end === pos) {
        this.bodyAt = lf < 0 ? text.length : lf + 1;
        break;
      }
      this.lines++;
      let at = pos;
      while (at < end && isNameChar(text.charCodeAt(at))) at++;
      const named = at > pos;
      while (at < end && isLineSpace(text.charCodeAt(at))) at++;
      if (nameOnlyAt >= 0) {
        // This line opens with spaces and a colon: the name on the line above opened a field.
        if (!named && at < end && text.charCodeAt(at) === 0x3a) {
          this.field(fieldAt, nameOnlyAt);
          fieldAt = nameOnlyAt;
        }
        nameOnlyAt = -1;
      }
      if (fieldAt < 0) fieldAt = pos;
      else if (named && at < end && text.charCodeAt(at) === 0x3a) {
        this.field(fieldAt, pos);
        fieldAt = pos;
      } else if (named && at === end) nameOnlyAt = pos;
      if (lf < 0) {
        pos = text.length;
        this.bodyAt = pos;
        break;
      }
      pos = lf + 1;
    }
    if (fieldAt >= 0) this.field(fieldAt, pos);
  }

  /**
   * The field [start, end): its name is what precedes the first colon, without the line breaks
   * and the spaces around it (mailauth's key); no colon, the whole field. Spaces inside the name
   * are skipped too, which can only take a field that mailauth does not verify for one it does.
   */
  private field(start: number, end: number): void {
    const { text } = this;
    let name = '';
    let nameAt = -1;
    let at = start;
    for (; at < end; at++) {
      const code = text.charCodeAt(at);
      if (code === 0x3a) break;
      if (code === 0x20 || code === 0x09 || code === 0x0d || code === 0x0a) continue;
      if (nameAt < 0) {
        // Every name read here starts with a D or an A: most fields are left at their first letter.
        if ((code | 0x20) !== 0x64 && (code | 0x20) !== 0x61) return;
        nameAt = at;
      }
      if (name.length === LONGEST_KIND) return;
      name += String.fromCharCode(code >= 0x41 && code <= 0x5a ? code + 0x20 : code);
    }
    const kind = KINDS.get(name);
    if (kind === undefined) return;
    this.arc ||= kind !== 'dkim';
    if (kind !== 'arc') this.signatures.push({ kind, nameAt, ...this.tags(at + 1, end) });
  }

  /**
   * The tag-list [start, end) of a signature (RFC 6376 §3.2; semicolons separate the tags, the
   * first `=` ends a tag's name): how many names its `h=` lists at most — its colons plus one,
   * the largest over every `h=` — and the spans of its last `d=` and `s=`. A tag is `h` (or `H`:
   * mailauth's lenient mode folds case) when that letter is all its name holds but whitespace.
   */
  private tags(start: number, end: number): Pick<SignatureField, 'names' | 'domain' | 'selector'> {
    // Searched within the field's own text: a search of the whole header for a `;` could run on
    // to the next field's, at each field. A name or an `h=` value is read a character at a time.
    const list = this.text.slice(start, end);
    let names = 0;
    let domain: readonly [number, number] | null = null;
    let selector: readonly [number, number] | null = null;
    for (let at = 0; at < list.length; ) {
      let tag = 0; // the tag name's one letter, lowercased; -1 for any other name, 0 for none yet
      let equals = at;
      for (; equals < list.length; equals++) {
        const code = list.charCodeAt(equals);
        if (code === 0x3d || code === 0x3b) break;
        if (!isTagSpace(code)) tag = tag === 0 ? code | 0x20 : -1;
      }
      if (equals >= list.length || list.charCodeAt(equals) === 0x3b) {
        at = equals + 1; // a tag without `=`
        continue;
      }
      let close = equals + 1;
      if (tag === 0x68) {
        let colons = 0;
        for (; close < list.length; close++) {
          const code = list.charCodeAt(close);
          if (code === 0x3b) break;
          if (code === 0x3a) colons++;
        }
        names = Math.max(names, colons + 1);
      } else {
        close = list.indexOf(';', close);
        if (close < 0) close = list.length;
        if (tag === 0x64) domain = [start + equals + 1, start + close];
        else if (tag === 0x73) selector = [start + equals + 1, start + close];
      }
      at = close + 1;
    }
    return { names, domain, selector };
  }

  /** The text of [start, end) with its whitespace collapsed, as mailauth reads a tag value; undefined when empty or too long to be reported. */
  value(span: readonly [number, number] | null): string | undefined {
    if (span === null || span[1] - span[0] > 4 * MAX_REPORTED_VALUE) return undefined;
    const { raw } = this;
    const text = (typeof raw === 'string' ? raw.slice(span[0], span[1]) : raw.toString('utf8', span[0], span[1])).replace(/\s+/g, ' ').trim();
    return text.length > 0 && text.length <= MAX_REPORTED_VALUE ? text : undefined;
  }
}

/**
 * Whether a line of `message` from `start` on (an offset in its octets, or in a string's code
 * units) is over `limit` octets of UTF-8, in time linear in the body and with one native search
 * per block, not per line: a line over the limit holds a whole block (half the limit, in octets;
 * a sixth of it in code units), so only a block without a line feed has its line measured (and
 * the search goes on after that line).
 */
export function hasLongLine(message: string | Buffer, start: number, limit: number): boolean {
  const isText = typeof message === 'string';
  // Octets of UTF-8 either way. A UTF-16 code unit is at most 3 of them: a line of a string is
  // measured in octets only when its code units could be over the limit.
  const unitLimit = isText ? Math.floor(limit / 3) : limit;
  const block = Math.max(1, unitLimit >>> 1);
  const length = message.length;
  const lf = (from: number): number => (typeof message === 'string' ? message.indexOf('\n', from) : message.indexOf(0x0a, from));
  const lfBefore = (from: number): number => (typeof message === 'string' ? message.lastIndexOf('\n', from) : message.lastIndexOf(0x0a, from));
  for (let at = start; at < length; ) {
    const end = Math.min(at + block, length);
    const next = lf(at);
    if (next >= 0 && next < end) {
      at = end;
      continue;
    }
    // No line feed in [at, end): measure the line holding it.
    const lineStart = at === start ? start : Math.max(start, lfBefore(at - 1) + 1);
    const lineEnd = next < 0 ? length : next;
    if (lineEnd - lineStart > unitLimit && (isText ? Buffer.byteLength(message.slice(lineStart, lineEnd), 'utf8') : lineEnd - lineStart) > limit) return true;
    at = lineEnd + 1;
  }
  return false;
}

/**
 * Reads the header of `message` in one pass, in time linear in it, and applies the bounds:
 * - a header over {@link MAX_HEADER_LINES} lines is not given to mailauth at all;
 * - of the DKIM-Signature fields, the first {@link MAX_DKIM_SIGNATURES} are considered and the
 *   rest are hidden from mailauth; a considered one whose `h=` lists more than
 *   {@link MAX_SIGNED_FIELDS} names is hidden too and reported unverified;
 * - an ARC-Message-Signature whose `h=` lists more than {@link MAX_SIGNED_FIELDS} names is
 *   hidden, so the ARC chain lacks that set's signature and fails;
 * - when a body line is over {@link MAX_BODY_LINE} octets, every DKIM-Signature considered and
 *   every ARC-Message-Signature is hidden (the considered DKIM-Signatures reported unverified).
 * Hiding a field renames it in a copy of the header up to the last field hidden; the body is not
 * copied. A signature that covers a hidden field (an ARC-Message-Signature covers the
 * DKIM-Signatures) then fails as well: only on a message already over a bound.
 */
export function boundSignatures(message: string | Buffer): SignatureBounds {
  const scan = new HeaderScan(message);
  scan.run();
  const unverified: Unverified[] = [];
  const report = (field: SignatureField, comment: string): void => {
    const signingDomain = scan.value(field.domain);
    const selector = scan.value(field.selector);
    if (signingDomain !== undefined) unverified.push({ signingDomain, ...(selector === undefined ? {} : { selector }), comment });
  };
  const tooLong = scan.lines > MAX_HEADER_LINES;
  // Only a message with a signature to verify has its body read.
  const longLine = !tooLong && scan.signatures.length > 0 && hasLongLine(message, scan.bodyAt, MAX_BODY_LINE);
  const hidden: number[] = [];
  let considered = 0;
  for (const field of scan.signatures) {
    if (field.kind === 'dkim') {
      if (considered++ >= MAX_DKIM_SIGNATURES) {
        hidden.push(field.nameAt);
      } else if (tooLong) {
        report(field, `not verified: the header has over ${MAX_HEADER_LINES} lines`);
      } else if (longLine) {
        hidden.push(field.nameAt);
        report(field, `not verified: a body line is over ${MAX_BODY_LINE} octets`);
      } else if (field.names > MAX_SIGNED_FIELDS) {
        hidden.push(field.nameAt);
        report(field, `not verified: h= lists over ${MAX_SIGNED_FIELDS} header fields`);
      }
    } else if (longLine || field.names > MAX_SIGNED_FIELDS) {
      hidden.push(field.nameAt);
    }
  }
  if (tooLong) return { input: null, unverified, arc: scan.arc };
  return { input: hidden.length === 0 ? message : hide(message, hidden), unverified, arc: scan.arc };
}

/** `message` with the first letter of the field name at each of `offsets` (ascending) replaced by `X`, as a stream: the header copied up to the last one, the rest as it is. */
function hide(message: string | Buffer, offsets: readonly number[]): Readable {
  const cut = offsets[offsets.length - 1]! + 1;
  let head: string | Buffer;
  if (typeof message === 'string') {
    const parts: string[] = [];
    let from = 0;
    for (const at of offsets) {
      parts.push(message.slice(from, at), 'X');
      from = at + 1;
    }
    head = parts.join('');
  } else {
    head = Buffer.from(message.subarray(0, cut));
    for (const at of offsets) head[at] = 0x58;
  }
  const rest = typeof message === 'string' ? message.slice(cut) : message.subarray(cut);
  return Readable.from(rest.length === 0 ? [head] : [head, rest]);
}

/** What dkimVerify reports for a message it was not given: no DKIM result; an ARC chain that fails when the header has ARC fields, none when it has none. */
function notVerified(bounds: SignatureBounds): Awaited<ReturnType<typeof dkimVerify>> {
  const result = { headerFrom: [] as string[], fromFields: 0, envelopeFrom: false as const, results: [] };
  const arc = { chain: false, warnings: [], ...(bounds.arc ? { error: Object.assign(new Error(`the header has over ${MAX_HEADER_LINES} lines`), { code: 'header_too_long' }) } : {}) };
  Object.defineProperty(result, 'arc', { value: arc, enumerable: false });
  return result;
}

/**
 * mailauth's `dkimVerify`, within the bounds of {@link boundSignatures}: what is over them is
 * not verified, and each DKIM-Signature among the first {@link MAX_DKIM_SIGNATURES} left
 * unverified is added to the results as `permerror` (RFC 8601 §2.7.1), after mailauth's own.
 */
export async function dkimVerifyBounded(message: string | Buffer, options: Parameters<typeof dkimVerify>[1]): ReturnType<typeof dkimVerify> {
  const bounds = boundSignatures(message);
  const result = bounds.input === null ? notVerified(bounds) : await dkimVerify(bounds.input, options);
  for (const row of bounds.unverified) {
    result.results.push({
      signingDomain: row.signingDomain,
      ...(row.selector === undefined ? {} : { selector: row.selector }),
      status: { result: 'permerror', comment: row.comment },
      info: '',
    });
  }
  return result;
}
