// Authentication at ingress with mailauth: SPF for the connecting client, every DKIM
// signature, the ARC chain, and DMARC when asked for — mapped to the verdict the decision reads
// (rules 7 and 8).
// With trusted gateways (Microsoft's "enhanced filtering for connectors", skip listing), SPF is
// evaluated for the first hop of the Received chain that is not one of the gateways: the
// sender's own server, not the gateway in front of this service that re-sent the message.

import { BlockList, isIP } from 'node:net';
import { arc as verifyArc, dmarc as verifyDmarc, spf as verifySpf } from 'mailauth';
import { OutboundPoolsError, show } from '../errors.js';
import { isNullSender, withoutBrackets } from '../address.js';
import { parseHeaders } from '../headers.js';
import { isHeloStandIn, parseArcAuthenticationResults, type ArcAuthenticationResults } from '../providers/authentication-results.js';
import type { AsyncAuthenticator, AuthenticationVerdict, AuthResult, DkimVerdict, DnsResolver, IngressHop, ProviderMessage, SpfResult } from '../providers/types.js';
import { dkimVerifyBounded } from './dkim-bounds.js';

/** Options of {@link createMailauthAuthenticator}. */
export interface MailauthAuthenticatorOptions {
  /** The DNS resolver mailauth uses; share the decision's (`createDnsResolver`). Default: node:dns. */
  readonly resolver?: DnsResolver;
  /** The authserv-id of this service's Authentication-Results (mailauth `mta`). Default: the host name. */
  readonly mta?: string;
  /**
   * Gateways in front of this service (CIDR ranges, IPv4 or IPv6, or single addresses): their
   * hops in the Received chain are skipped to find the real source for SPF.
   */
  readonly trustedGateways?: readonly string[];
  /** Smallest RSA key accepted for DKIM/ARC, in bits (mailauth default 1024). */
  readonly minBitLength?: number;
  /**
   * mailauth's strict mode: every check follows its RFC exactly instead of mailauth's lenient
   * defaults (default false). Strict, mailauth fails ARC-Seals with malformed tag lists that the
   * lenient mode accepts (four cases of the ARC validation suite), and may fail real mail that
   * the lenient mode lets through.
   */
  readonly strict?: boolean;
  /**
   * Whether to evaluate DMARC too (default false). No decision rule reads it: rules 7 and 8 read
   * SPF, aligned DKIM and trusted ARC. `true` adds, per message, the `_dmarc` TXT lookup (two for
   * a subdomain without its own record) and the evaluation — about 7–9 % of mailauth's CPU time
   * on a DKIM-signed message (bench/providers.mjs part 3) — for a `dmarc` result in the verdict,
   * as mailauth's `authenticate()` reports it; the decision is the same either way.
   */
  readonly dmarc?: boolean;
}

const KNOWN = new Set(['resolver', 'mta', 'trustedGateways', 'minBitLength', 'strict', 'dmarc']);

function invalid(message: string): OutboundPoolsError {
  return new OutboundPoolsError('invalid-context', message);
}

function gatewayList(ranges: readonly string[] | undefined): BlockList | null {
  if (ranges === undefined || ranges.length === 0) return null;
  if (!Array.isArray(ranges)) throw invalid('trustedGateways must be an array of CIDR ranges such as 192.0.2.0/24 or 2001:db8::/32.');
  const list = new BlockList();
  for (const range of ranges) {
    const [address = '', prefix] = typeof range === 'string' ? range.split('/') : [];
    const family = isIP(address);
    const bits = prefix === undefined ? (family === 6 ? 128 : 32) : Number(prefix);
    if (family === 0 || !Number.isInteger(bits) || bits < 0 || bits > (family === 6 ? 128 : 32) || (prefix !== undefined && !/^\d+$/.test(prefix))) {
      throw invalid(`trustedGateways entry ${show(range)} is not an IP address or CIDR range.`);
    }
    list.addSubnet(address, bits, family === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

/** Space, tab, CR or LF: what separates words in a Received field (folds included). */
function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0d || code === 0x0a;
}

/** The longest comment after a from-clause's domain that is read for the client's address (RFC 5321 §4.4 TCP-info is short). */
const MAX_TCP_INFO = 512;

/**
 * The address an MTA wrote for its client: a literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`, and
 * Exim's `[192.0.2.1]:2525` with the client's port) or bare (`192.0.2.1`, as Exchange and qmail
 * write it); undefined for anything else.
 */
function addressIn(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  let text = token;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || !/^(?::\d{1,5})?$/.test(text.slice(close + 1))) return undefined;
    text = text.slice(1, close);
    if (/^IPv6:/i.test(text)) text = text.slice(5);
  }
  return isIP(text) !== 0 ? text : undefined;
}

/**
 * The comment that starts at `start` (an opening parenthesis): its words at the top level (nested
 * comments and quoted-pairs left out), and where it ends; null when it does not end within
 * {@link MAX_TCP_INFO} characters.
 */
function commentWords(text: string, start: number): { readonly words: string[]; readonly end: number } | null {
  const words: string[] = [];
  let depth = 0;
  let word = start + 1;
  const flush = (at: number): void => {
    if (at > word) words.push(text.slice(word, at));
  };
  const limit = Math.min(text.length, start + MAX_TCP_INFO);
  for (let i = start; i < limit; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x5c) {
      i++; // a quoted-pair: neither a parenthesis nor a word break
    } else if (code === 0x28) {
      if (depth === 1) flush(i);
      depth++;
    } else if (code === 0x29) {
      if (depth === 1) flush(i);
      depth--;
      if (depth === 0) return { words, end: i + 1 };
      word = i + 1;
    } else if (depth === 1 && isWhitespace(code)) {
      flush(i);
      word = i + 1;
    }
    if (depth > 1) word = i + 1;
  }
  return null;
}

/** An Exim `key=value` item in a from-clause comment (`helo=`, `port=`, `ident=`): the client's words, or the MTA's notes. */
const EXIM_ITEM = /^[a-z]+=/i;

/** The items Exim writes after the address when it has no verified host name. */
const EXIM_ADDRESS_FIRST_ITEM = /^(?:helo|port|ident)=/i;

/** What may follow a from-clause (RFC 5321 §4.4: by-, via-, with-, id-, for-clauses), or its end. */
const NEXT_CLAUSE = /^(?:(?:by|via|with|id|for)[ \t\r\n]|;|$)/i;

/**
 * The address the writing MTA connected from, from the from-domain and the comments after it —
 * only where that MTA put it, never in text the client chose (its HELO name, its ident):
 * - RFC 5321 §4.4 TCP-info, as Postfix, Sendmail, Gmail and Haraka write it:
 *   `from helo (rdns [192.0.2.1])`, `from helo ([192.0.2.1])`;
 * - Exchange: `from helo (192.0.2.1)`; qmail: `from rdns (HELO helo) (192.0.2.1)`;
 * - Exim: `from rdns ([192.0.2.1]:port helo=helo)`, and without a verified host name the address
 *   first, `from [192.0.2.1] (helo=[198.51.100.7])` or `from [192.0.2.1]`.
 * Only the first two words of the TCP-info count, and none after an Exim `key=` item.
 */
function clientAddress(domain: string, comments: readonly (readonly string[])[], clauseFollows: boolean): string | undefined {
  const first = comments[0];
  const literal = domain.startsWith('[') ? addressIn(domain) : undefined;
  if (first === undefined || first.length === 0) return clauseFollows ? literal : undefined;
  // Exim without a verified host name: the address first, then only its items (`helo=`,
  // `port=`, `ident=`). Any other word beside them is not Exim's: a HELO literal followed by a
  // reverse-DNS name that looks like an item (`from [HELO] (x=y [client])`, which an MTA writing
  // the PTR name as found would produce) is ambiguous, and reads as no address.
  if (literal !== undefined && EXIM_ITEM.test(first[0]!)) {
    return comments.length === 1 && clauseFollows && first.every((word) => EXIM_ADDRESS_FIRST_ITEM.test(word)) ? literal : undefined;
  }
  // qmail: the first comment is the client's own claim (`HELO name`); its TCP-info follows.
  const tcpInfo = /^(?:helo|ehlo)$/i.test(first[0]!) ? comments[1] : first;
  if (tcpInfo === undefined) return undefined;
  const words = tcpInfo.slice(0, 2);
  const item = words.findIndex((word) => EXIM_ITEM.test(word));
  return (item < 0 ? words : words.slice(0, item)).map(addressIn).find((address) => address !== undefined);
}

/** The position of the first character at or after `at` that is not whitespace. */
function skipWhitespace(text: string, at: number): number {
  let next = at;
  while (isWhitespace(text.charCodeAt(next))) next++;
  return next;
}

/**
 * The HELO name and client address a Received field's from-clause records (RFC 5321 §4.4); the
 * address only where the writing MTA records its client (see {@link clientAddress}): an address
 * the client wrote (an Exim `helo=[…]`, a qmail `HELO [...]`) is never taken for it.
 */
export function receivedFrom(value: string): { helo?: string; ip?: string } | null {
  // The from-clause opens the field (RFC 5321 §4.4): a "from" later on is inside a comment or
  // another clause (`by mx (Postfix, from userid 0)`).
  const from = /^\s*from\s+(\S+)/i.exec(value);
  if (from === null) return null;
  // The whole word after "from" is the client's name, parentheses and all: a HELO such as
  // `x([198.51.100.25])` (which Haraka records as given) must not open a comment of its own.
  const helo = from[1]!;
  let at = from[0].length;
  const comments: string[][] = [];
  while (comments.length < 2) {
    at = skipWhitespace(value, at);
    if (value.charCodeAt(at) !== 0x28) break;
    const comment = commentWords(value, at);
    if (comment === null) break;
    comments.push(comment.words);
    at = comment.end;
  }
  at = skipWhitespace(value, at);
  const ip = clientAddress(helo, comments, NEXT_CLAUSE.test(value.slice(at, at + 5)));
  return { helo, ...(ip === undefined ? {} : { ip }) };
}

function isTrusted(gateways: BlockList, ip: string): boolean {
  const family = isIP(ip);
  return family !== 0 && gateways.check(ip, family === 6 ? 'ipv6' : 'ipv4');
}

/** Whether a Received value is only comments before its `;` and date (no from-, by- or other clause). */
function onlyComments(value: string): boolean {
  let depth = 0;
  let seen = false;
  const limit = Math.min(value.length, MAX_TCP_INFO);
  for (let i = 0; i < limit; i++) {
    const code = value.charCodeAt(i);
    if (code === 0x5c) i++;
    else if (code === 0x28) {
      depth++;
      seen = true;
    } else if (code === 0x29) depth = Math.max(0, depth - 1);
    else if (depth === 0) {
      if (code === 0x3b) return seen;
      if (!isWhitespace(code)) return false;
    }
  }
  return false;
}

/**
 * The hop to evaluate SPF for. Without trusted gateways, the connecting client. With them: the
 * client if it is not a gateway (or not known); else the Received chain, top down — field 0 was
 * written by this service about the gateway, field 1 by that gateway about its client, and so
 * on — until a from-clause names an address outside the gateways. The walk trusts a field only
 * because a gateway wrote it: it stops at the first field whose client address cannot be read
 * (another format, no from-clause), since whoever connected there may have written every field
 * below it; that hop has no address, and SPF verifies nobody without one (mailauth answers
 * `temperror`). When in doubt, the relay pool.
 */
export function firstUntrustedHop(message: ProviderMessage, gateways: BlockList | null): IngressHop {
  const client: IngressHop = {
    source: 'connection',
    ...(message.ingress?.ip === undefined ? {} : { ip: message.ingress.ip }),
    ...(message.ingress?.helo === undefined ? {} : { helo: message.ingress.helo }),
  };
  if (gateways === null || message.raw === undefined) return client;
  // Without the connection's address nothing says a gateway handed the message over.
  if (client.ip === undefined || !isTrusted(gateways, client.ip)) return client;
  const received = parseHeaders(message.raw).filter(([name]) => name === 'received');
  for (let index = 0; index < received.length; index++) {
    const value = received[index]![1];
    // A field of comments and a date only — qmail's `(qmail 4242 invoked from network); date`
    // above its own record of the connection — records no hop: the gateway's next field does.
    if (onlyComments(value)) continue;
    const hop = receivedFrom(value);
    if (hop?.ip === undefined) return { source: index, ...(hop?.helo === undefined ? {} : { helo: hop.helo }) };
    if (isTrusted(gateways, hop.ip)) continue;
    return { source: index, ip: hop.ip, ...(hop.helo === undefined ? {} : { helo: hop.helo }) };
  }
  return client;
}

type Loose = Record<string, unknown> | undefined;

function field(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) current = typeof current === 'object' && current !== null ? (current as Record<string, unknown>)[key] : undefined;
  return current;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/**
 * The newest ARC-Authentication-Results as its sealer wrote it, read with our own grammar
 * ({@link parseArcAuthenticationResults}): mailauth's lenient reading keeps one SPF result of
 * several (the last, HELO or not) and reads on past a comment cut short by a quoted local part,
 * so a sender's forged `spf=pass` inside a trusted sealer's field would count. Null when the raw
 * field is not at hand or cannot be read whole: the sealer then vouches for nothing.
 */
function newestArcResults(chain: readonly unknown[]): Extract<ArcAuthenticationResults, { ok: true }> | null {
  const original = field(chain[chain.length - 1], 'arc-authentication-results', 'original');
  const raw = typeof original === 'string' ? original : Buffer.isBuffer(original) ? original.toString('utf8') : undefined;
  if (raw === undefined) return null;
  const read = parseArcAuthenticationResults(raw);
  // mailauth orders the sets by instance, 1 to N with none missing: the newest is instance N. A
  // field whose own "i=" says otherwise was grouped by another reading of it: not taken.
  return read.ok && read.instance === chain.length ? read : null;
}

/**
 * Whether mailauth's SPF check was of the HELO identity: for a null `sender`, the one it was
 * given. Without the sender, from what mailauth recorded: `smtp.helo` alone (strict mode), or
 * the stand-in `postmaster@` the HELO name (lenient) — so a real sender of that name greeting
 * with it reads as a HELO check too.
 */
function checkedHelo(spf: unknown, sender: string | undefined): boolean {
  if (sender !== undefined) return isNullSender(sender);
  const mailfrom = text(field(spf, 'status', 'smtp', 'mailfrom'));
  const helo = text(field(spf, 'status', 'smtp', 'helo'));
  if (mailfrom === undefined && helo !== undefined) return true;
  return isHeloStandIn(mailfrom ?? text(field(spf, 'envelope-from')), helo ?? text(field(spf, 'helo')));
}

/**
 * Whether a DKIM signature mailauth passed vouches for less than the message: its `l=` covers
 * only part of the body (mailauth's `status.underSized`, the octets past it: anyone may append
 * to a signed message), or its key says `t=y` (`status.testing`: RFC 6376 §3.6.1, the domain is
 * testing DKIM and verifiers MUST NOT treat its messages differently from unsigned ones).
 * Such a pass is read as `policy` (RFC 8601 §2.7.1: valid, but not accepted by local policy).
 */
function vouchesForLess(row: unknown): boolean {
  const underSized = field(row, 'status', 'underSized');
  return (typeof underSized === 'number' && underSized > 0) || field(row, 'status', 'testing') === true;
}

/**
 * mailauth's result, in the shape of {@link AuthenticationVerdict}. `sender` is the MAIL FROM the
 * SPF check was given: when SPF checked the HELO identity (see {@link checkedHelo}), the verdict
 * says so (`spf.identity: 'helo'`). The ARC verdict's SPF and DKIM results are those of the
 * newest ARC-Authentication-Results field as written (in mailauth's `arc.chain`), read with this
 * package's own grammar; without it (a result that went through JSON) they are left out.
 */
export function verdictFromMailauth(result: unknown, hop: IngressHop, sender?: string): AuthenticationVerdict {
  const spfResult = text(field(result, 'spf', 'status', 'result'));
  const spfDomain = text(field(result, 'spf', 'domain'));
  const heloChecked = checkedHelo(field(result, 'spf'), sender);
  const dkim: DkimVerdict[] = [];
  for (const row of (field(result, 'dkim', 'results') as Loose[] | undefined) ?? []) {
    const domain = text(field(row, 'signingDomain'));
    const status = text(field(row, 'status', 'result'));
    const selector = text(field(row, 'selector'));
    if (domain === undefined || status === undefined) continue;
    dkim.push({ result: status === 'pass' && vouchesForLess(row) ? 'policy' : (status as AuthResult), domain, ...(selector === undefined ? {} : { selector }) });
  }
  const arc = field(result, 'arc');
  const arcResult = text(field(arc, 'status', 'result'));
  // RFC 8617 §5.1.1: the sealer is the ADMD that signed the newest ARC-Seal, whose d= is what a
  // trusted sealer is compared with. The newest ARC-Message-Signature (mailauth's arc.signature)
  // may name any other domain: the seal's signature does not bind the two.
  const chain = field(arc, 'chain');
  const newestSet = Array.isArray(chain) ? (chain[chain.length - 1] as unknown) : undefined;
  const sealer = text(field(newestSet, 'arc-seal', 'parsed', 'd', 'value'));
  const recorded = arcResult === undefined || !Array.isArray(chain) || chain.length === 0 ? null : newestArcResults(chain);
  const dmarcResult = text(field(result, 'dmarc', 'status', 'result'));
  const dmarcDomain = text(field(result, 'dmarc', 'domain'));
  return {
    ingress: hop,
    ...(spfResult === undefined ? {} : { spf: { result: spfResult as SpfResult, ...(spfDomain === undefined ? {} : { domain: spfDomain }), ...(heloChecked ? { identity: 'helo' as const } : {}) } }),
    dkim,
    ...(arcResult === undefined
      ? {}
      : {
          arc: {
            result: arcResult as AuthResult,
            ...(sealer === undefined ? {} : { sealer }),
            ...(recorded?.spf === undefined ? {} : { spf: recorded.spf }),
            ...(recorded?.dkim === undefined ? {} : { dkim: recorded.dkim }),
          },
        }),
    ...(dmarcResult === undefined ? {} : { dmarc: { result: dmarcResult as AuthResult, ...(dmarcDomain === undefined ? {} : { domain: dmarcDomain }) } }),
  };
}

/** What {@link runMailauth} is asked: the message, the hop SPF is evaluated for, and the clock. */
interface MailauthInput {
  readonly raw: string | Uint8Array;
  readonly hop: IngressHop;
  readonly sender: string;
  readonly now: Date;
}

/**
 * mailauth's `authenticate()` without BIMI and without writing header fields, step by step so
 * that the clock reaches it: `authenticate()` does not pass a time to its DKIM verifier, which
 * then judges `t=` and `x=` of DKIM-Signatures and ARC-Message-Signatures by the wall clock. The
 * steps and their options are authenticate()'s own (mailauth 7.1, lib/mailauth.js); DMARC, which
 * no rule reads, only with the `dmarc` option.
 */
async function runMailauth(input: MailauthInput, options: MailauthAuthenticatorOptions): Promise<Record<string, unknown>> {
  const resolver = options.resolver as never;
  // The caller's bytes as they are: a Buffer passes through, any other Uint8Array is viewed as
  // one (Buffer.from(view) would copy the whole message).
  const { raw } = input;
  const message = typeof raw === 'string' || Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const strict = options.strict === true;
  // Within bounds on the header's lines, on h= and on the signatures (dkim-bounds.ts): mailauth's
  // verifier is quadratic past them.
  const dkim = await dkimVerifyBounded(message, {
    sender: input.sender,
    curTime: input.now,
    strict,
    ...(resolver === undefined ? {} : { resolver }),
    ...(options.minBitLength === undefined ? {} : { minBitLength: options.minBitLength }),
  });
  const { ip } = input.hop;
  // As authenticate(): no HELO name means the client address, written as an address literal.
  const heloName = input.hop.helo ?? ip;
  const helo = heloName !== undefined && isIP(heloName) !== 0 ? `[${heloName}]` : heloName;
  const spf = await verifySpf({
    // mailauth reads only an empty sender as the null reverse-path (and then checks the HELO).
    sender: isNullSender(input.sender) ? '' : input.sender,
    strict,
    ...(ip === undefined ? {} : { ip }),
    ...(helo === undefined ? {} : { helo }),
    ...(options.mta === undefined ? {} : { mta: options.mta }),
    ...(resolver === undefined ? {} : { resolver }),
  } as Parameters<typeof verifySpf>[0]);
  // dkimVerify hands the parsed ARC chain on as a non-enumerable property, as authenticate() uses it.
  const chain = (dkim as unknown as { readonly arc: Parameters<typeof verifyArc>[0] }).arc;
  const arc = await verifyArc(chain, {
    strict,
    ...(ip === undefined ? {} : { ip }),
    ...(resolver === undefined ? {} : { resolver }),
    ...(options.minBitLength === undefined ? {} : { minBitLength: options.minBitLength }),
  } as Parameters<typeof verifyArc>[1]);
  const headerFrom = (dkim as { headerFrom?: unknown }).headerFrom;
  const dmarc =
    options.dmarc !== true || headerFrom === undefined || headerFrom === null || headerFrom === false
      ? false
      : await verifyDmarc({
          headerFrom,
          fromFields: (dkim as { fromFields?: unknown }).fromFields,
          spfDomains: spf.status.result === 'pass' && typeof spf.domain === 'string' ? [spf.domain] : [],
          dkimDomains: (dkim.results ?? [])
            .filter((row) => row.status?.result === 'pass')
            .map((row) => ({ id: row.id, domain: row.signingDomain, aligned: row.status.aligned, underSized: row.status.underSized })),
          arcResult: arc,
          strict,
          ...(resolver === undefined ? {} : { resolver }),
        } as unknown as Parameters<typeof verifyDmarc>[0]);
  return { dkim, spf, arc, dmarc };
}

/**
 * An {@link Authenticator} that runs mailauth on the message as it arrived (give the whole
 * message as `headers`: DKIM needs the body) — SPF, every DKIM signature and the ARC chain, as
 * mailauth's `authenticate()` does, and DMARC with `dmarc: true` — with the ingress IP, HELO and
 * MAIL FROM (or, with `trustedGateways`, those of the first untrusted hop) through `resolver`, at the decision's
 * clock (`message.now`, the context's `now`): signature times (DKIM and ARC `t=`, `x=`) are
 * judged at that instant, so the verdict depends only on the inputs. The verdict says which hop
 * was used (`ingress`). DKIM and ARC are verified within bounds that keep hostile headers from
 * costing mailauth quadratic time (./dkim-bounds.ts): a signature over them is not verified.
 */
export function createMailauthAuthenticator(options: MailauthAuthenticatorOptions = {}): AsyncAuthenticator {
  if (typeof options !== 'object' || options === null) throw invalid('createMailauthAuthenticator takes an options object.');
  for (const key of Object.keys(options)) if (!KNOWN.has(key)) throw invalid(`Unknown mailauth authenticator option ${show(key)}; known: ${[...KNOWN].join(', ')}.`);
  if (options.resolver !== undefined && typeof options.resolver !== 'function') throw invalid('resolver must be a function (name, rrtype) => Promise, like dns.promises.resolve.');
  if (options.mta !== undefined && (typeof options.mta !== 'string' || options.mta.length === 0)) throw invalid('mta must be a host name.');
  if (options.minBitLength !== undefined && (!Number.isInteger(options.minBitLength) || options.minBitLength < 512)) throw invalid('minBitLength must be an integer of at least 512.');
  if (options.strict !== undefined && typeof options.strict !== 'boolean') throw invalid('strict must be true or false.');
  if (options.dmarc !== undefined && typeof options.dmarc !== 'boolean') throw invalid('dmarc must be true or false.');
  const gateways = gatewayList(options.trustedGateways);
  const settings = { ...options };
  return {
    async authenticate(message) {
      if (message.raw === undefined) throw new Error('no message to authenticate: pass the whole message as headers');
      const hop = firstUntrustedHop(message, gateways);
      // decidePool hands ingress.mailFrom on without its angle brackets; mailFrom may be written
      // as the MAIL FROM command carries it (`<alice@example.org>`), and SPF would read the
      // domain `example.org>`.
      const sender = message.ingress?.mailFrom ?? withoutBrackets(message.mailFrom);
      // A caller that does not go through decidePool may leave the clock out: then it is now.
      const now = message.now ?? new Date();
      const result = await runMailauth({ raw: message.raw, hop, sender, now }, settings);
      return verdictFromMailauth(result, hop, sender);
    },
  };
}
