// The outbound-pools milter for Postfix: at end of message it decides the pool and tells Postfix
// with a header that milter_header_checks turns into `FILTER pool_x:` (docs/postfix.md). It maps
// decisions to the MTA as the Haraka adapter does (src/haraka/plugin.ts): block → the decision's
// 5xx, defer → its 4xx, deliver → the pool, the trace header and the SRS sender.

import { parseEnvelopeAddress } from '../address.js';
import type { Decision, OutboundMessage } from '../decide/types.js';
import { OutboundPoolsError } from '../errors.js';
import { formatTrace, TRACE_HEADER } from '../decide/trace.js';
import { authenticationFromHeaders } from '../providers/authentication-results.js';
import type { SpamVerdict } from '../providers/types.js';
import { parseForwarders, type Forwarders } from './forwarders.js';
import { SMFIM, type SymbolLists } from './milter/commands.js';
import type { MessageChange, MilterHandler, MilterMessage, MilterVerdict } from './milter/session.js';

/** The header naming the pool, for milter_header_checks: `X-Outbound-Pool-Route: high-risk`. */
export const POOL_HEADER = 'X-Outbound-Pool-Route';

/** Options of {@link createPoolMilter}. */
export interface PoolMilterOptions {
  /** Decides a message: `createDecider(...)` or `(message) => decidePool(message, context)`. */
  readonly decide: (message: OutboundMessage) => Promise<Decision>;
  /** The header naming the pool (default {@link POOL_HEADER}); any such field from the client is removed. */
  readonly poolHeader?: string;
  /**
   * The authserv-ids whose Authentication-Results fields are trusted (RFC 8601 §5): those of
   * the inbound MX that received the message before it was forwarded. Read only in messages
   * from the designated forwarders of `authResultsFrom`, which must be given with it. None: no
   * authentication verdict is read from the header (the decider's authenticator provider, if
   * any, decides).
   */
  readonly authservIds?: readonly string[];
  /**
   * The designated forwarders whose messages' Authentication-Results fields are read: client
   * addresses (`192.0.2.25`), CIDR ranges (`192.0.2.0/24`, `2001:db8::/48`) and SASL logins
   * (`{auth_authen}`, compared case-insensitively). Required with `authservIds`. The milter runs
   * on the submission listener, where the submitting client writes the whole header block and
   * nothing removes a field claiming the inbound MX's authserv-id; only the copy of the inbound
   * MX's fields a forwarder resubmits (a mailbox server's forwarding rule) can be trusted. For any
   * other client the fields are not read (a foreign sender is then unverified: the relay pool).
   */
  readonly authResultsFrom?: readonly string[];
  /**
   * A header field carrying a spam score put there by a filter that runs before this milter
   * (the score is the field's first number, e.g. `X-Spam-Score: 7.5`). Used only when given,
   * and only for messages that have it; the last such field counts, and a message that has it is
   * not given to the decider's spam classifier.
   *
   * Trust it only when that filter writes or overwrites the field for **every** client,
   * authenticated ones included: on the submission listener the client writes the header block,
   * so a field the filter left alone is the client's own score of its own mail. rspamd's milter
   * leaves authenticated clients' headers alone by default (`milter_headers`:
   * `skip_authenticated`); list the routine that writes the field in `authenticated_headers`
   * (docs/postfix.md). Do not combine it with a spam classifier in the decider: a message
   * carrying the field would skip it (the `outbound-pools milter` command refuses
   * `--spam-score-header` with `--rspamd-url`).
   */
  readonly spamScoreHeader?: string;
  /**
   * Body octets to collect, for a spam classifier that reads the whole message (rspamd).
   * Default 0: only the header is read, and Postfix is asked not to send the body.
   */
  readonly bodyLimit?: number;
  /** Called with one line per decision: the queue id and the trace (default: nowhere). */
  readonly log?: (line: string) => void;
  /**
   * Which organisation a message is sent for (`message.tenant`, for `policy.tenantLimits`):
   * - `'login-domain'`: the domain of the SASL login (`{auth_authen}`, `user@domain`); messages
   *   without a login, or whose login has no domain, have no tenant;
   * - `'sender-domain'`: the envelope sender's domain, lowercased (the null sender has none);
   * - a function of the decision's input, for anything else (a lookup of your own).
   * Default: no tenant.
   */
  readonly tenant?: 'login-domain' | 'sender-domain' | ((message: OutboundMessage) => string | undefined);
}

/**
 * The domain of `address`, normalised as the decision normalises envelope domains (lowercase
 * A-labels); undefined for anything that is not an address (a login without a domain, the null
 * sender).
 */
function domainOf(address: string | undefined): string | undefined {
  if (address === undefined || address === '') return undefined;
  try {
    return parseEnvelopeAddress(address, 'tenant', false).domain;
  } catch {
    return undefined;
  }
}

/** The tenant of a message under the `tenant` option. */
function tenantOf(option: NonNullable<PoolMilterOptions['tenant']>, message: OutboundMessage): string | undefined {
  if (option === 'login-domain') return domainOf(message.submitter);
  if (option === 'sender-domain') return domainOf(message.mailFrom);
  return option(message);
}

/**
 * The macros asked for (replacing Postfix's milter_*_macros for these stages): the queue id `i`
 * and the SASL login `{auth_authen}` (the key for sending limits) at MAIL FROM (Postfix's smtpd
 * opens the queue file there, so `i` is known), the queue id again at end of message.
 */
const MACROS: SymbolLists = new Map([
  [SMFIM.ENVFROM, ['i', 'auth_authen', 'auth_type']],
  [SMFIM.EOM, ['i']],
]);

/** The header block of a milter message as octets, lines ending in CRLF, then the blank line. */
function headerBlock(message: MilterMessage): string {
  let block = '';
  for (const [name, value] of message.headers) block += `${name}: ${value.replace(/\r?\n/g, '\r\n')}\r\n`;
  return `${block}\r\n`;
}

function spamFromHeader(message: MilterMessage, name: string): SpamVerdict | undefined {
  const lower = name.toLowerCase();
  let value: string | undefined;
  for (const [field, text] of message.headers) if (field.toLowerCase() === lower) value = text;
  if (value === undefined) return undefined;
  const score = /[-+]?\d+(?:\.\d+)?/.exec(value);
  return score === null ? undefined : { score: Number(score[0]) };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** The options {@link milterMessage} reads, validated once by {@link readOptions}. */
interface ReadOptions {
  /** Set together: whose Authentication-Results fields are read, and in whose messages. */
  readonly trust?: { readonly authservIds: readonly string[]; readonly forwarders: Forwarders };
  readonly spamScoreHeader?: string;
}

/**
 * Validates the reading options: `authservIds` and `authResultsFrom` go together (see
 * {@link PoolMilterOptions.authResultsFrom} for why the first is refused without the second).
 */
function readOptions(options: Pick<PoolMilterOptions, 'authservIds' | 'authResultsFrom' | 'spamScoreHeader'>): ReadOptions {
  const { authservIds, authResultsFrom, spamScoreHeader } = options;
  const spam = spamScoreHeader === undefined ? {} : { spamScoreHeader };
  if (authservIds === undefined || authservIds.length === 0) {
    if (authResultsFrom !== undefined && authResultsFrom.length > 0) {
      throw new OutboundPoolsError(
        'invalid-context',
        'authResultsFrom names the forwarders whose Authentication-Results fields are read, but authservIds names no authserv-id to trust: give both or neither.',
      );
    }
    return spam;
  }
  if (authResultsFrom === undefined || authResultsFrom.length === 0) {
    throw new OutboundPoolsError(
      'invalid-context',
      'authservIds needs authResultsFrom. The milter runs on the submission listener, where the submitting client writes the whole header block, ' +
        "and nothing there removes an Authentication-Results field claiming the inbound MX's authserv-id (RFC 8601 §5: the inbound MX strips forged ones at its border, not here). " +
        "Only a designated forwarder's copy of the inbound MX's fields can be trusted: list the forwarders (client addresses, CIDR ranges or SASL logins) in authResultsFrom.",
    );
  }
  return { ...spam, trust: { authservIds, forwarders: parseForwarders(authResultsFrom) } };
}

/**
 * The decision's input for a message as the milter saw it.
 *
 * Authentication-Results fields of `authservIds` are read only when the SMTP client is one of
 * the designated forwarders of `authResultsFrom` (by address or SASL login); otherwise, and
 * without `authservIds`, the input has no `authentication`. The spam score is read from
 * `spamScoreHeader` when given (see {@link PoolMilterOptions.spamScoreHeader} for when that can
 * be trusted).
 *
 * @throws OutboundPoolsError `invalid-context` when `authservIds` is given without
 *   `authResultsFrom` (or the reverse), or a forwarder entry does not parse.
 */
export function milterMessage(message: MilterMessage, options: Pick<PoolMilterOptions, 'authservIds' | 'authResultsFrom' | 'spamScoreHeader'> = {}): OutboundMessage {
  return inputOf(message, readOptions(options));
}

/** {@link milterMessage} with its options validated. */
function inputOf(message: MilterMessage, options: ReadOptions): OutboundMessage {
  const header = headerBlock(message);
  const raw = Buffer.from(message.body.length > 0 ? header + message.body.toString('latin1') : header, 'latin1');
  const client = message.client;
  // The address of SMFIC_CONNECT; Postfix's {client_addr} macro when the MTA sent no usable one.
  const ip = client !== null && (client.family === 'inet' || client.family === 'inet6') ? client.address : nonEmpty(message.macro('client_addr'));
  const submitter = message.macro('auth_authen');
  const queueId = message.macro('i');
  const trust = options.trust;
  const authentication = trust !== undefined && trust.forwarders.includes(ip, submitter) ? authenticationFromHeaders(header, trust).verdict : undefined;
  const spam = options.spamScoreHeader === undefined ? undefined : spamFromHeader(message, options.spamScoreHeader);
  return {
    mailFrom: message.mailFrom,
    rcptTo: message.rcptTo,
    headers: raw,
    ...(submitter !== undefined && submitter !== '' ? { submitter } : {}),
    ...(queueId !== undefined && queueId !== '' ? { queueId } : {}),
    ...(authentication !== undefined ? { authentication } : {}),
    ...(spam !== undefined ? { spam } : {}),
    ingress: { ...(ip !== undefined ? { ip } : {}), ...(message.helo ? { helo: message.helo } : {}), mailFrom: message.mailFrom },
  };
}

/** Deletes every field called `name` the client sent, last first so that indexes stay valid. */
function deletions(message: MilterMessage, name: string): MessageChange[] {
  const lower = name.toLowerCase();
  let count = 0;
  for (const [field] of message.headers) if (field.toLowerCase() === lower) count++;
  const out: MessageChange[] = [];
  for (let index = count; index >= 1; index--) out.push({ type: 'change-header', name, index, value: '' });
  return out;
}

/** The milter verdict for a decision. */
export function verdictFor(decision: Decision, message: MilterMessage, poolHeader = POOL_HEADER): MilterVerdict {
  if (decision.action === 'block') return { action: 'reject', reply: decision.reply.line };
  if (decision.action === 'defer') return { action: 'tempfail', reply: decision.reply.line };
  const changes: MessageChange[] = [
    ...deletions(message, poolHeader),
    ...deletions(message, TRACE_HEADER),
    { type: 'add-header', name: poolHeader, value: decision.pool },
    { type: 'add-header', name: TRACE_HEADER, value: formatTrace(decision) },
  ];
  if (decision.srs?.applied) changes.push({ type: 'change-from', address: decision.mailFrom });
  return { action: 'continue', changes };
}

/**
 * Creates the milter handler that decides each message's pool. Give it to
 * {@link startMilterServer}; the `outbound-pools milter` command does both.
 *
 * The options are validated here: a bad `poolHeader` or `tenant` is a `TypeError`;
 * `authservIds` without `authResultsFrom` (the submitting client writes the header block, so only
 * a designated forwarder's Authentication-Results can be trusted) or a bad forwarder entry is an
 * `OutboundPoolsError` with code `invalid-context`. `spamScoreHeader` is trusted as given: see
 * {@link PoolMilterOptions.spamScoreHeader} for when that is safe.
 *
 * @example
 * ```ts
 * import { createDecider, createPolicy } from 'outbound-pools';
 * import { createPoolMilter, parseListenAddress, startMilterServer } from 'outbound-pools/postfix';
 * const decide = createDecider({ policy: createPolicy({ acceptedDomains: ['contoso.com'] }) });
 * const server = await startMilterServer(parseListenAddress('inet:127.0.0.1:8890'), {
 *   handler: createPoolMilter({ decide, authservIds: ['mx.contoso.com'], authResultsFrom: ['192.0.2.25'] }),
 * });
 * ```
 */
export function createPoolMilter(options: PoolMilterOptions): MilterHandler {
  const poolHeader = options.poolHeader ?? POOL_HEADER;
  if (!/^[\x21-\x39\x3b-\x7e]+$/.test(poolHeader)) throw new TypeError(`poolHeader must be a header field name, got ${JSON.stringify(poolHeader)}`);
  const { decide, log, tenant } = options;
  if (tenant !== undefined && tenant !== 'login-domain' && tenant !== 'sender-domain' && typeof tenant !== 'function') {
    throw new TypeError(`tenant must be 'login-domain', 'sender-domain' or a function, got ${JSON.stringify(tenant)}`);
  }
  const read = readOptions(options);
  return {
    bodyLimit: options.bodyLimit ?? 0,
    macros: MACROS,
    async endOfMessage(message) {
      const queueId = message.macro('i') ?? 'NOQUEUE';
      let decision: Decision;
      try {
        const input = inputOf(message, read);
        const name = tenant === undefined ? undefined : tenantOf(tenant, input);
        decision = await decide(name === undefined ? input : { ...input, tenant: name });
      } catch (error) {
        // Bad input (no recipients, an unparsable address): try again later, never guess a pool.
        log?.(`${queueId}: no decision: ${error instanceof Error ? error.message : String(error)}`);
        return { action: 'tempfail', reply: '451 4.3.0 Outbound pool decision failed' };
      }
      log?.(`${queueId}: ${formatTrace(decision)}`);
      return verdictFor(decision, message, poolHeader);
    },
  };
}
