// A spam classifier that asks rspamd (https://docs.rspamd.com/developers/protocol): POST /checkv2
// on the normal worker with the message as the body and the envelope in request headers (IP,
// Helo, From, Rcpt, User, Queue-Id, Settings-ID), and the JSON reply — score, action, symbols —
// mapped to the SpamVerdict rule 6 reads.
//
// rspamd's `soft reject` is not a verdict on the content. It is a temporary refusal: its
// ratelimit module sets it when a bucket is full (`Ratelimit "user" exceeded`), its greylist
// module when it greylists, and both set it as a pre-result that ends the scan, so the score
// that comes with it covers only what ran before. Reading it as spam would send a legitimate
// bulk sender to the high-risk pool (mailcow #176: month-end billing trips the limiter); reading
// it as clean would throw away the one thing rspamd said. So it is reported as a failure — an
// RspamdError with code `ESOFTREJECT` and rspamd's SMTP message — and the caller's fail mode for
// the spam provider decides: `fail-open` delivers with a `provider-failed` reason that quotes
// rspamd, `defer` answers 451 — which is what rspamd asked for. (Rate limits themselves are
// rule 3's business, with the rate limiter provider.) Put `soft reject` in `spamActions` to treat
// it as spam instead.

import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { OutboundPoolsError, quoteText, show } from '../errors.js';
import type { AsyncSpamClassifier, ProviderMessage, SpamVerdict } from '../providers/types.js';

/**
 * The actions rspamd 3.x answers with (note the spaces). `discard` and `quarantine` come from
 * `force_actions` rules; operators may define actions of their own, hence `string`.
 */
export type RspamdAction =
  | 'no action'
  | 'greylist'
  | 'add header'
  | 'rewrite subject'
  | 'soft reject'
  | 'reject'
  | 'discard'
  | 'quarantine'
  | (string & {});

/** The actions that make `isSpam` true unless `spamActions` says otherwise. */
export const DEFAULT_RSPAMD_SPAM_ACTIONS: readonly RspamdAction[] = Object.freeze(['reject', 'rewrite subject', 'add header', 'discard', 'quarantine']);

/**
 * Which rspamd symbols put which category on the verdict (a category in
 * `policy.spam.blockCategories` blocks the message) unless `categories` says otherwise. Only
 * strong signals: phishing-feed hits, and the virus symbol of rspamd's antivirus example
 * (antivirus symbols are named per scanner rule: list yours). `PHISHING`, rspamd's heuristic for
 * a link whose text names another host, is left out: newsletters trip it, and a category can block.
 */
export const DEFAULT_RSPAMD_CATEGORIES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  phishing: Object.freeze(['PHISHED_OPENPHISH', 'PHISHED_PHISHTANK', 'PHISHED_GENERIC_SERVICE']),
  malware: Object.freeze(['CLAM_VIRUS']),
});

/** Options of {@link createRspamdClassifier}. */
export interface RspamdClassifierOptions {
  /**
   * Where rspamd's normal worker (or a proxy in front of it) listens, e.g.
   * `http://127.0.0.1:11333`. `/checkv2` is appended to the path unless the URL ends with it.
   */
  readonly url: string;
  /** Sent as the `Password` header: for a controller or a proxy that requires one. */
  readonly password?: string;
  /** Sent as `Settings-ID`: the rspamd settings to apply (e.g. an `outbound` profile). */
  readonly settingsId?: string;
  /**
   * This classifier's own limit on a request, in milliseconds, besides the caller's AbortSignal
   * (`decidePool` aborts at the policy's `deadlines.spamMs`). Default 10,000.
   */
  readonly timeoutMs?: number;
  /**
   * More request headers for every request (`Hostname`, `MTA-Name`, `Flags`, `Log-Tag`, …).
   * Headers the classifier sets itself (IP, Helo, From, Rcpt, User, Queue-Id, Settings-ID,
   * Password) and HTTP framing headers are refused.
   */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Actions that make `isSpam` true. Default {@link DEFAULT_RSPAMD_SPAM_ACTIONS}. Written as
   * rspamd answers them or as in its configuration (`add_header`). With `soft reject` here, a
   * soft reject is spam instead of an `ESOFTREJECT` failure.
   */
  readonly spamActions?: readonly RspamdAction[];
  /** Category → rspamd symbols that put it on the verdict. Replaces {@link DEFAULT_RSPAMD_CATEGORIES}. */
  readonly categories?: Readonly<Record<string, readonly string[]>>;
}

/**
 * Why a request to rspamd gave no verdict:
 * - `ESOFTREJECT`: rspamd answered `soft reject` — a rate limit or greylisting, not a verdict
 *   (see `smtpMessage`).
 * - `ESKIPPED`: rspamd skipped the message (`is_skipped`: too large, or settings that skip)
 *   without a spam action; a skip with one (GTUBE, a prefilter's reject) is a spam verdict.
 * - `ENOCONTENT`: the message has no header block or text to scan.
 * - `EHTTP`: rspamd answered with an HTTP status other than 200 (see `status`).
 * - `EPROTOCOL`: the reply is not rspamd's JSON (not JSON, no score, no action, or larger than
 *   {@link MAX_RSPAMD_REPLY_BYTES}).
 * - `ETIMEDOUT`: no reply within `timeoutMs`.
 * - `ABORT_ERR`: the caller's AbortSignal fired.
 * - `ENETWORK`: no connection, or it broke (the message has the system's reason).
 */
export type RspamdErrorCode = 'ESOFTREJECT' | 'ESKIPPED' | 'ENOCONTENT' | 'EHTTP' | 'EPROTOCOL' | 'ETIMEDOUT' | 'ABORT_ERR' | 'ENETWORK';

/** What {@link createRspamdClassifier}'s `classify` rejects with. `decidePool` turns it into a `provider-failed` reason. */
export class RspamdError extends Error {
  override readonly name = 'RspamdError';
  readonly code: RspamdErrorCode;
  /** The HTTP status, for `EHTTP`. */
  readonly status?: number;
  /** rspamd's action, for `ESOFTREJECT` and `ESKIPPED`. */
  readonly action?: string;
  /** rspamd's score, for `ESOFTREJECT` and `ESKIPPED`: partial when a pre-result ended the scan. */
  readonly score?: number;
  /** rspamd's `messages.smtp_message`, e.g. `Ratelimit "user" exceeded`. */
  readonly smtpMessage?: string;

  constructor(
    code: RspamdErrorCode,
    message: string,
    details: { readonly status?: number; readonly action?: string; readonly score?: number; readonly smtpMessage?: string; readonly cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    if (details.status !== undefined) this.status = details.status;
    if (details.action !== undefined) this.action = details.action;
    if (details.score !== undefined) this.score = details.score;
    if (details.smtpMessage !== undefined) this.smtpMessage = details.smtpMessage;
  }
}

/**
 * The most bytes of rspamd's reply the classifier reads: 1 MiB. A `/checkv2` reply is a few
 * kilobytes (score, action, symbols with their options, a milter block); anything larger is not
 * rspamd's, and reading it whole — a misconfigured proxy, a hostile server on the URL — would
 * cost memory and time without bound. A larger reply is cut off unread (the connection is
 * dropped) and the classifier rejects with `EPROTOCOL`.
 */
export const MAX_RSPAMD_REPLY_BYTES = 1_048_576;

const KNOWN = ['url', 'password', 'settingsId', 'timeoutMs', 'headers', 'spamActions', 'categories'];
const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_TIMEOUT_MS = 120_000;
/** Headers the classifier sets, and HTTP framing that fetch owns. */
const RESERVED_HEADERS = new Set([
  'ip', 'helo', 'from', 'rcpt', 'user', 'queue-id', 'settings-id', 'password',
  'content-length', 'transfer-encoding', 'host', 'connection', 'keep-alive', 'upgrade', 'expect', 'te', 'trailer',
]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const UNSENDABLE = /[\r\n\0]/;

function invalid(message: string): OutboundPoolsError {
  return new OutboundPoolsError('invalid-context', message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** rspamd's spelling of an action: `add_header` and `Add Header` are `add header`. */
function actionName(action: string): string {
  return action.trim().toLowerCase().replace(/_/g, ' ');
}

/** A header value as fetch sends it: the UTF-8 bytes, one per char (fetch sends header strings as Latin-1). */
function wire(value: string): string {
  return /^[\x00-\x7f]*$/.test(value) ? value : Buffer.from(value, 'utf8').toString('latin1');
}

interface Mapping {
  readonly spamActions: ReadonlySet<string>;
  /** Symbol → categories. */
  readonly categories: ReadonlyMap<string, readonly string[]>;
}

function checkMapping(options: Pick<RspamdClassifierOptions, 'spamActions' | 'categories'>): Mapping {
  const { spamActions = DEFAULT_RSPAMD_SPAM_ACTIONS, categories = DEFAULT_RSPAMD_CATEGORIES } = options;
  if (!Array.isArray(spamActions) || !spamActions.every((action) => typeof action === 'string' && action.trim().length > 0)) {
    throw invalid(`spamActions must be an array of rspamd actions such as ["reject", "add header"], got ${show(spamActions)}.`);
  }
  if (!isRecord(categories)) throw invalid(`categories must be an object such as { phishing: ["PHISHED_OPENPHISH"] }, got ${show(categories)}.`);
  const bySymbol = new Map<string, string[]>();
  for (const [category, symbols] of Object.entries(categories)) {
    if (category.trim().length === 0) throw invalid('categories must not have an empty category name.');
    if (!Array.isArray(symbols) || !symbols.every((symbol) => typeof symbol === 'string' && symbol.length > 0)) {
      throw invalid(`categories.${category} must be an array of rspamd symbol names, got ${show(symbols)}.`);
    }
    for (const symbol of symbols as string[]) {
      const list = bySymbol.get(symbol) ?? [];
      list.push(category.trim().toLowerCase());
      bySymbol.set(symbol, list);
    }
  }
  return { spamActions: new Set(spamActions.map(actionName)), categories: bySymbol };
}

interface Config extends Mapping {
  readonly endpoint: string;
  readonly timeoutMs: number;
  /** Headers sent with every request, on the wire already. */
  readonly fixed: readonly (readonly [string, string])[];
}

function checkEndpoint(url: unknown): string {
  const example = 'such as http://127.0.0.1:11333';
  if (typeof url !== 'string' || url.length === 0) throw invalid(`url must be rspamd's address, ${example}, got ${show(url)}.`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid(`url ${show(url)} is not a URL; give rspamd's address, ${example}.`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw invalid(`url must be an http: or https: URL, ${example}, got ${show(url)}.`);
  if (parsed.username !== '' || parsed.password !== '') throw invalid('url must not contain credentials: use the password option for rspamd\'s Password header.');
  if (parsed.search !== '' || parsed.hash !== '') throw invalid(`url must not have a query or fragment, got ${show(url)}.`);
  const path = parsed.pathname.replace(/\/+$/, '');
  parsed.pathname = path.endsWith('/checkv2') ? path : `${path}/checkv2`;
  return parsed.href;
}

function checkOptions(options: RspamdClassifierOptions): Config {
  if (!isRecord(options)) throw invalid(`createRspamdClassifier takes an options object such as { url: 'http://127.0.0.1:11333' }, got ${show(options)}.`);
  for (const key of Object.keys(options)) {
    if (!KNOWN.includes(key)) throw invalid(`Unknown rspamd classifier option ${show(key)}; known: ${KNOWN.join(', ')}.`);
  }
  const endpoint = checkEndpoint(options.url);
  const fixed: [string, string][] = [];
  const { password, settingsId, timeoutMs = DEFAULT_TIMEOUT_MS, headers } = options;
  if (password !== undefined) {
    if (typeof password !== 'string' || password.length === 0 || UNSENDABLE.test(password)) throw invalid('password must be a non-empty string without line breaks.');
    fixed.push(['Password', wire(password)]);
  }
  if (settingsId !== undefined) {
    if (typeof settingsId !== 'string' || !/^[\x21-\x7e]+$/.test(settingsId)) throw invalid(`settingsId must be the id of rspamd settings (printable ASCII, no spaces), got ${show(settingsId)}.`);
    fixed.push(['Settings-ID', settingsId]);
  }
  if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
    throw invalid(`timeoutMs must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, got ${typeof timeoutMs === 'number' ? timeoutMs : show(timeoutMs)}.`);
  }
  if (headers !== undefined) {
    if (!isRecord(headers)) throw invalid(`headers must be an object of header names to values, got ${show(headers)}.`);
    for (const [name, value] of Object.entries(headers)) {
      if (!TOKEN.test(name)) throw invalid(`headers: ${show(name)} is not an HTTP header name.`);
      if (RESERVED_HEADERS.has(name.toLowerCase())) {
        const option = name.toLowerCase() === 'settings-id' ? ' (use the settingsId option)' : name.toLowerCase() === 'password' ? ' (use the password option)' : '';
        throw invalid(`headers: ${name} is set by the classifier${option}; it cannot be given.`);
      }
      if (typeof value !== 'string' || UNSENDABLE.test(value)) throw invalid(`headers.${name} must be a string without line breaks, got ${show(value)}.`);
      fixed.push([name, wire(value)]);
    }
  }
  return { endpoint, timeoutMs, fixed, ...checkMapping(options) };
}

const LF = 0x0a;
const CR = 0x0d;
const encoder = new TextEncoder();

/** Whether the bytes hold a blank line: the end of the header block (or an empty header block). */
function hasBody(bytes: Uint8Array): boolean {
  if (bytes[0] === LF || (bytes[0] === CR && bytes[1] === LF)) return true;
  for (let i = bytes.indexOf(LF); i !== -1; i = bytes.indexOf(LF, i + 1)) {
    const next = bytes[i + 1];
    if (next === LF || (next === CR && bytes[i + 2] === LF)) return true;
  }
  return false;
}

/**
 * The request body: the whole message as given, or — for a header block alone — the block
 * ended by a blank line, i.e. the message with an empty body. rspamd returns no verdict for an
 * empty request (it runs no rule), hence `ENOCONTENT` when there is nothing.
 */
function messageBody(raw: ProviderMessage['raw']): Uint8Array {
  const bytes = typeof raw === 'string' ? encoder.encode(raw) : raw instanceof Uint8Array ? raw : undefined;
  if (bytes === undefined || bytes.length === 0) {
    throw new RspamdError('ENOCONTENT', 'no message to scan: give decidePool the header block or the whole message as headers');
  }
  if (hasBody(bytes)) return bytes;
  const first = bytes.indexOf(LF);
  const eol = first > 0 && bytes[first - 1] === CR ? [CR, LF] : first === -1 ? [CR, LF] : [LF];
  const tail = bytes[bytes.length - 1] === LF ? eol : [...eol, ...eol];
  const out = new Uint8Array(bytes.length + tail.length);
  out.set(bytes);
  out.set(tail, bytes.length);
  return out;
}

/**
 * An envelope address as rspamd 3.x parses it: the domain in A-labels. A non-ASCII local part
 * (SMTPUTF8) is left out (null): rspamd 3.4 fails to parse it and adds BROKEN_HEADERS (score 10)
 * for the message, which would make an innocent message spam.
 */
function smtpAddress(address: string): string | null {
  const bare = address.startsWith('<') && address.endsWith('>') ? address.slice(1, -1) : address;
  if (UNSENDABLE.test(bare)) return null;
  if (/^[\x00-\x7f]*$/.test(bare)) return bare;
  const at = bare.lastIndexOf('@');
  const local = at === -1 ? bare : bare.slice(0, at);
  if (!/^[\x00-\x7f]*$/.test(local)) return null;
  const domain = domainToASCII(bare.slice(at + 1));
  return domain === '' ? null : `${local}@${domain}`;
}

function requestHeaders(message: ProviderMessage, config: Config): [string, string][] {
  const headers: [string, string][] = [...config.fixed] as [string, string][];
  const { mailFrom, rcptTo, submitter, ingress } = message;
  if (typeof mailFrom === 'string') {
    const from = mailFrom === '' || mailFrom === '<>' ? '<>' : smtpAddress(mailFrom);
    if (from !== null) headers.push(['From', from]);
  }
  // One Rcpt value per recipient. fetch joins repeated headers with ", ", and rspamd reads a
  // Rcpt value as an address list, so they are joined here, where it shows.
  const rcpts: string[] = [];
  for (const rcpt of Array.isArray(rcptTo) ? rcptTo : []) {
    const address = typeof rcpt === 'string' ? smtpAddress(rcpt) : null;
    if (address !== null && address !== '') rcpts.push(address);
  }
  if (rcpts.length > 0) headers.push(['Rcpt', rcpts.join(', ')]);
  if (typeof ingress?.ip === 'string' && isIP(ingress.ip) !== 0) headers.push(['IP', ingress.ip]);
  if (typeof ingress?.helo === 'string' && ingress.helo.length > 0 && !UNSENDABLE.test(ingress.helo)) headers.push(['Helo', wire(ingress.helo)]);
  // The submitter is the authenticated user: rspamd then scans as outbound mail (no RBL, SPF, …).
  if (typeof submitter === 'string' && submitter.length > 0 && !UNSENDABLE.test(submitter)) headers.push(['User', wire(submitter)]);
  const queueId: unknown = message.queueId;
  if (typeof queueId === 'string' && queueId.length > 0 && !UNSENDABLE.test(queueId)) headers.push(['Queue-Id', wire(queueId)]);
  return headers;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function mapReply(reply: unknown, mapping: Mapping): SpamVerdict {
  if (!isRecord(reply)) throw new RspamdError('EPROTOCOL', `rspamd's reply is not a JSON object (${show(reply)})`);
  const error = text(reply.error);
  if (error !== undefined) throw new RspamdError('EPROTOCOL', `rspamd answered an error: ${quoteText(error)}`);
  const score = reply.score;
  if (typeof score !== 'number' || !Number.isFinite(score)) throw new RspamdError('EPROTOCOL', `rspamd's reply has no score (${show(score)})`);
  const rawAction = reply.action;
  if (typeof rawAction !== 'string' || rawAction.length === 0) throw new RspamdError('EPROTOCOL', `rspamd's reply has no action (${show(rawAction)})`);
  const action = actionName(rawAction);
  const smtpMessage = isRecord(reply.messages) ? text(reply.messages.smtp_message) : undefined;
  const details = { action, score, ...(smtpMessage === undefined ? {} : { smtpMessage }) };
  const isSpam = mapping.spamActions.has(action);
  // A scan that a pre-result ended (GTUBE, a prefilter's reject) still says spam; a skip that
  // leaves no such action (too large, settings that skip) is no verdict at all.
  if (reply.is_skipped === true && !isSpam && action !== 'soft reject') {
    throw new RspamdError('ESKIPPED', `rspamd skipped the message (action ${show(action)})`, details);
  }
  if (action === 'soft reject' && !isSpam) {
    throw new RspamdError(
      'ESOFTREJECT',
      `rspamd answered soft reject, a temporary refusal (rate limit or greylisting), not a verdict${smtpMessage === undefined ? '' : `: ${quoteText(smtpMessage)}`}`,
      details,
    );
  }
  const categories = new Set<string>();
  if (isRecord(reply.symbols) && mapping.categories.size > 0) {
    for (const symbol of Object.keys(reply.symbols)) for (const category of mapping.categories.get(symbol) ?? []) categories.add(category);
  }
  return categories.size === 0 ? { score, isSpam } : { score, isSpam, categories: [...categories] };
}

/**
 * The {@link SpamVerdict} for a reply of rspamd's `/checkv2` (the parsed JSON), for an MTA hook
 * that already asked rspamd and decides with `decideFromVerdicts`. `score` is rspamd's score,
 * `isSpam` whether the action is one of `spamActions`, `categories` those whose symbols fired.
 * Throws an {@link RspamdError}: `ESOFTREJECT` for a soft reject (unless `spamActions` lists
 * it), `ESKIPPED` for a skipped message, `EPROTOCOL` for anything that is not such a reply.
 * Options as for {@link createRspamdClassifier}; bad ones throw OutboundPoolsError
 * `invalid-context`.
 */
export function verdictFromRspamd(reply: unknown, options: Pick<RspamdClassifierOptions, 'spamActions' | 'categories'> = {}): SpamVerdict {
  if (!isRecord(options)) throw invalid(`verdictFromRspamd takes an options object, got ${show(options)}.`);
  for (const key of Object.keys(options)) {
    if (key !== 'spamActions' && key !== 'categories') throw invalid(`Unknown verdictFromRspamd option ${show(key)}; known: spamActions, categories.`);
  }
  return mapReply(reply, checkMapping(options));
}

/** The error for a failed fetch: the abort reason when we aborted, else the network's reason. */
function fetchFailure(error: unknown, controller: AbortController, endpoint: string): RspamdError {
  if (controller.signal.aborted && controller.signal.reason instanceof RspamdError) return controller.signal.reason;
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new RspamdError('ENETWORK', `cannot reach rspamd at ${endpoint}: ${reason}`, { cause: error });
}

/**
 * The reply's body as text (UTF-8, as `response.text()` decodes it), or null when it is larger
 * than {@link MAX_RSPAMD_REPLY_BYTES}: the stream is then cancelled, which drops the connection,
 * so that an endless or enormous reply is never read to its end.
 */
async function boundedText(response: Response): Promise<string | null> {
  const body = response.body;
  if (body === null) return '';
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > MAX_RSPAMD_REPLY_BYTES) {
    await body.cancel();
    return null;
  }
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_RSPAMD_REPLY_BYTES) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks, size));
}

async function post(config: Config, body: Uint8Array, headers: [string, string][], signal: AbortSignal | undefined): Promise<unknown> {
  if (signal?.aborted === true) throw new RspamdError('ABORT_ERR', 'the request to rspamd was aborted before it started');
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new RspamdError('ETIMEDOUT', `rspamd did not answer within ${config.timeoutMs} ms`)), config.timeoutMs);
  const onAbort = () => controller.abort(new RspamdError('ABORT_ERR', 'the request to rspamd was aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    let status: number;
    let reply: string | null;
    try {
      const response = await fetch(config.endpoint, { method: 'POST', headers, body, signal: controller.signal, redirect: 'manual' });
      status = response.status;
      reply = await boundedText(response);
    } catch (error) {
      throw fetchFailure(error, controller, config.endpoint);
    }
    let parsed: unknown;
    try {
      parsed = reply === null ? undefined : JSON.parse(reply);
    } catch {
      parsed = undefined;
    }
    if (status !== 200) {
      const why = isRecord(parsed) ? text(parsed.error) : undefined;
      throw new RspamdError('EHTTP', `rspamd answered HTTP ${status}${why === undefined ? '' : `: ${quoteText(why)}`}`, { status });
    }
    if (reply === null) {
      throw new RspamdError('EPROTOCOL', `rspamd's reply is larger than ${MAX_RSPAMD_REPLY_BYTES} bytes, which no /checkv2 reply is; it was not read`);
    }
    if (parsed === undefined) throw new RspamdError('EPROTOCOL', `rspamd's reply is not JSON (${show(reply)})`);
    return parsed;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * A {@link SpamClassifier} that asks rspamd: POST `<url>/checkv2` with the message (the header
 * block gets an empty body) and the envelope as rspamd's request headers — `From` (the envelope
 * sender, `<>` for the null sender), `Rcpt` (every recipient), `IP` and `Helo` (from
 * `message.ingress`), `User` (the submitter: rspamd then scans as outbound, authenticated mail)
 * — plus `Settings-ID`, `Password` and `headers` from the options. Addresses go with their
 * domain in A-labels; one with a non-ASCII local part is left out (rspamd 3.4 cannot parse it).
 * No `Hostname` is sent (the message does not carry the client's reverse DNS name), so without a
 * submitter rspamd scans as inbound mail from an unknown host (`RDNS_NONE`,
 * `HFILTER_HOSTNAME_UNKNOWN`): give decidePool the submitter for outbound mail.
 *
 * The verdict: `score` (compare it with `policy.spam.threshold`), `isSpam` (the action is one of
 * `spamActions`), `categories` (from `categories`' symbols). `classify` rejects with an
 * {@link RspamdError} — `decidePool` makes that a `provider-failed` reason and applies
 * `policy.onProviderFailure.spam` — for a `soft reject` (`ESOFTREJECT`: a rate limit or
 * greylisting is not a verdict; see the top of this file), a skipped message, no message, a
 * status other than 200, a reply without score or action, a reply larger than
 * {@link MAX_RSPAMD_REPLY_BYTES} (not read past the limit), a timeout, an abort or no connection.
 *
 * The request is aborted by the AbortSignal `decidePool` gives (`deadlines.spamMs`) or after
 * `timeoutMs`, whichever comes first. Options are checked here, once: a bad or unknown one throws
 * OutboundPoolsError `invalid-context`.
 *
 * @example
 * ```ts
 * const spam = createRspamdClassifier({ url: 'http://127.0.0.1:11333', settingsId: 'outbound' });
 * const decision = await decidePool(
 *   { mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], headers, submitter: 'megan' },
 *   { policy: { spam: { threshold: 6 }, onProviderFailure: { spam: 'defer' } }, providers: { spam } },
 * );
 * ```
 */
export function createRspamdClassifier(options: RspamdClassifierOptions): AsyncSpamClassifier {
  const config = checkOptions(options);
  return {
    // Two parameters: decidePool passes an AbortSignal only to a method that declares one.
    async classify(message: ProviderMessage, signal: AbortSignal): Promise<SpamVerdict> {
      const body = messageBody(message.raw);
      const reply = await post(config, body, requestHeaders(message, config), signal);
      return mapReply(reply, config);
    },
  };
}
