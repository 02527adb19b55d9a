// A Haraka plugin: decides the pool of each relayed message at data_post, and binds the outbound
// connection to the pool's source address and HELO name in get_mx. The logic lives here, free of
// any Haraka import, so that it can be tested without Haraka; docs/haraka.md shows how Haraka
// loads it (through dist/haraka/index.cjs).

import { resolveMx } from 'node:dns/promises';
import { createDecider, type Decider } from '../decide/gather.js';
import { formatTrace, TRACE_HEADER } from '../decide/trace.js';
import type { Decision, OutboundMessage, SrsContext } from '../decide/types.js';
import type { Policy, PolicyInput, Pool } from '../policy.js';
import { authenticationFromHeaders, parseAuthenticationResults } from '../providers/authentication-results.js';
import type { AuthenticationVerdict, Providers } from '../providers/types.js';

/**
 * The return codes of Haraka's `next(code, msg)`, as `haraka-constants` 1.x defines them (and as
 * Haraka puts them on every plugin: `this.OK`, `DENY`, …).
 */
export const HARAKA_CODES = Object.freeze({ CONT: 900, DENY: 902, DENYSOFT: 903, OK: 906 });

/** The name of the transaction note holding the decision. */
export const NOTE = 'outbound_pools';

/**
 * The name of the transaction note an earlier plugin of yours may set to say what only your
 * directory knows: `{ tenant?, groups?, autoForwarded? }` (`message.tenant` for tenant caps,
 * `message.groups` for scoped policies, `message.autoForwarded` for forwarding control). Checked
 * by the decision like any message field: a wrong type is an invalid message (DENYSOFT).
 */
export const INPUT_NOTE = 'outbound_pools_input';

/** The fields {@link INPUT_NOTE} may carry into the decision. */
const INPUT_FIELDS = ['tenant', 'groups', 'autoForwarded'] as const;

/** Where a pool's connections come from: the source address to bind and the HELO/EHLO name. */
export interface HarakaPoolBinding {
  /** The local IP address outbound connections of this pool bind to (`mx.bind`). */
  readonly bind: string;
  /** The name the pool greets with (`mx.bind_helo`); should match the PTR of `bind`. */
  readonly helo: string;
}

/** Options of {@link createHarakaPlugin}. */
export interface HarakaPluginOptions {
  /** The policy: a plain object or the result of `createPolicy()`. */
  readonly policy?: PolicyInput | Policy;
  /** The verdict providers (DNS, rate limiter, spam classifier, authenticator). */
  readonly providers?: Providers;
  /** When given, verified forwards get their envelope sender rewritten with SRS. */
  readonly srs?: SrsContext;
  /** The source address and HELO of each pool. */
  readonly pools: Readonly<Record<Pool, HarakaPoolBinding>>;
  /**
   * A smart host: when given, `get_mx` returns it (with the pool's bind and HELO) instead of
   * letting Haraka look the MX up in DNS. Port default 25.
   */
  readonly nextHop?: { readonly host: string; readonly port?: number };
  /**
   * Decide only for connections Haraka relays (`connection.relaying`: authenticated or
   * allowed by the relay plugin), the mail that goes out through outbound. Default true; inbound
   * mail to local domains is left alone.
   */
  readonly relayingOnly?: boolean;
  /**
   * Use the authentication Haraka's own plugins did (spf, dkim_verify …: the results they give
   * `connection.auth_results()`, under the authserv-id `connection.local.host`) as the message's
   * authentication, skipping the authenticator provider, whenever there are any. Default true.
   */
  readonly harakaAuthResults?: boolean;
  /**
   * Looks up the MX of a recipient domain when there is no `nextHop`. Default: `resolveMx` of
   * `node:dns/promises`. When it fails or finds nothing usable (no MX, a null MX, or a null MX
   * among other records), Haraka looks the domain up itself (and handles implicit and null MX),
   * bound through `todo.notes.outbound_ip`. Code only: it cannot be set in outbound_pools.json.
   */
  readonly resolveMx?: (domain: string) => Promise<readonly { readonly exchange: string; readonly priority: number }[]>;
}

/** Haraka's `next` callback. */
export type HarakaNext = (code?: number, message?: unknown) => void;

/** The parts of Haraka's envelope address (`@haraka/email-address` Address) the plugin reads. */
export interface HarakaAddress {
  readonly user?: string | null;
  readonly host?: string | null;
  isNull?(): boolean;
  format?(): string;
  readonly address?: string | (() => string);
  readonly original?: string;
}

/** The parts of a Haraka transaction the plugin uses. */
export interface HarakaTransaction {
  mail_from: HarakaAddress | null;
  readonly rcpt_to: readonly HarakaAddress[];
  readonly uuid?: string;
  readonly notes: Record<string, unknown>;
  readonly message_stream?: { get_data(callback: (data: Buffer) => void): void };
  /** The header Haraka parsed: its fields, one string each with its folds, as they will be sent. */
  readonly header?: { readonly header_list?: readonly unknown[] };
  add_header(name: string, value: string): void;
  remove_header(name: string): void;
}

/** The parts of a Haraka connection the plugin uses. */
export interface HarakaConnection {
  readonly transaction: HarakaTransaction | null;
  readonly relaying?: boolean;
  readonly remote?: { readonly ip?: string };
  readonly hello?: { readonly host?: string | null };
  readonly notes?: Record<string, unknown>;
  readonly local?: { readonly host?: string | null };
  /** Haraka's Authentication-Results value assembled from its plugins' results ('' for none). */
  auth_results?(): string;
  logdebug?(message: string): void;
  loginfo?(message: string): void;
  logerror?(message: string): void;
}

/** The parts of Haraka's outbound `HMailItem` the plugin uses in `get_mx`. */
export interface HarakaHmail {
  readonly todo?: { readonly notes?: Record<string, unknown> };
  readonly notes?: Record<string, unknown>;
  logerror?(message: string): void;
}

/** What `get_mx` answers with `OK`: a `HarakaMx`-shaped object (haraka-net-utils). */
export interface HarakaMxAnswer {
  readonly exchange: string;
  readonly port: number;
  readonly priority: number;
  readonly bind: string;
  readonly bind_helo: string;
}

/** The hooks {@link createHarakaPlugin} returns. Copy them onto a Haraka plugin's `exports`. */
export interface HarakaPlugin {
  /** Decides, records the decision and trace, rewrites the sender, or refuses the message. */
  hook_data_post(next: HarakaNext, connection: HarakaConnection): Promise<void>;
  /**
   * Binds delivery to the decided pool's address and HELO: answers `OK` with the next hop, or
   * with the domain's MX hosts, each with `bind` and `bind_helo`. When the MX lookup fails or
   * finds nothing usable, answers `CONT` (Haraka looks the domain up itself) after setting the
   * deprecated-but-still-read `todo.notes.outbound_ip`/`outbound_helo`.
   */
  hook_get_mx(next: HarakaNext, hmail: HarakaHmail, domain: string): Promise<void>;
  /** The decider in use, for callers that want to decide outside the hooks. */
  readonly decide: Decider;
}

/**
 * Haraka takes a DSN-shaped reply (a class named `DSN` with `code` and `reply`) to send an exact
 * SMTP code and enhanced status code instead of its defaults (550/450).
 */
class DSN {
  readonly code: number;
  readonly reply: string;
  constructor(code: number, reply: string) {
    this.code = code;
    this.reply = reply;
  }
  toString(): string {
    return this.reply;
  }
}

/** The mailbox of a Haraka envelope address; `''` for the null sender. */
export function harakaAddress(address: HarakaAddress | null | undefined): string {
  if (address === null || address === undefined) return '';
  if (typeof address.isNull === 'function' && address.isNull()) return '';
  const user = address.user ?? '';
  if (user === '') return '';
  const host = address.host ?? '';
  return host === '' ? user : `${user}@${host}`;
}

/** The whole message, as Haraka will send it: its header (with the changes of earlier plugins) and body. */
function readMessage(transaction: HarakaTransaction): Promise<Buffer | undefined> {
  const stream = transaction.message_stream;
  if (stream === undefined || typeof stream.get_data !== 'function') return Promise.resolve(undefined);
  return new Promise((resolve) => stream.get_data((data) => resolve(data)));
}

/**
 * The header block Haraka parsed (`transaction.header.header_list`, the fields it sends, each
 * line ending in LF), or undefined when there is none to read (not parsed yet, or not strings).
 * Haraka keeps the first 1,000 lines of a header (`max_lines` under `[headers]` in
 * connection.ini): a field after them is not read, as Haraka's own plugins do not read it.
 */
function headerBlock(transaction: HarakaTransaction): string | undefined {
  const list = transaction.header?.header_list;
  if (!Array.isArray(list) || list.length === 0) return undefined;
  let block = '';
  for (const field of list) {
    if (typeof field !== 'string') return undefined;
    block += field.endsWith('\n') ? field : `${field}\n`;
  }
  return `${block}\n`;
}

/**
 * Whether a provider that reads the whole message will run: a spam classifier, or an
 * authenticator (DKIM and ARC hash the body) when Haraka's results do not stand in for it.
 */
function readsBody(providers: Providers, authentication: AuthenticationVerdict | undefined): boolean {
  return providers.spam !== undefined || (providers.authenticator !== undefined && authentication === undefined);
}

/** How Haraka's `auth_results()` joins its entries (connection.js): each entry is stripped of control characters first. */
const HARAKA_AR_SEPARATOR = ';\r\n\t';

/**
 * The entries Haraka's plugins recorded, one each: the arrays `auth_results()` joins
 * (`authentication_results` in the connection's and the transaction's notes), read as they are so
 * that an entry holding the separator stays one entry whatever Haraka's version; else the
 * joined value split at the separator. Undefined when nothing was recorded.
 */
function harakaEntries(connection: HarakaConnection): readonly unknown[] | undefined {
  const own = connection.notes?.['authentication_results'];
  const transaction = connection.transaction?.notes?.['authentication_results'];
  if (Array.isArray(own) || Array.isArray(transaction)) {
    const entries = [...(Array.isArray(own) ? own : []), ...(Array.isArray(transaction) ? transaction : [])];
    return entries.length === 0 ? undefined : entries;
  }
  const value = connection.auth_results!();
  if (typeof value !== 'string' || value === '') return undefined;
  return value.split(HARAKA_AR_SEPARATOR).slice(1);
}

/**
 * The authentication Haraka's own plugins recorded for the connection and transaction, or
 * undefined when they recorded nothing about the sender (no SPF, DKIM or ARC result: `auth=pass`
 * of an SMTP AUTH client or `iprev` alone make no verdict, so the configured authenticator runs).
 *
 * `connection.auth_results()` joins what each plugin recorded — one `method=result …` entry per
 * call — after the host name. An entry may hold text the client chose: Haraka's auth plugin
 * records a failed login's user name (`auth=fail (plain) smtp.auth=<user>`) with only control
 * characters removed, so a user name `x; spf=pass smtp.mailfrom=bank.example` would read, in the
 * joined field, as an SPF pass of its own. The entries are therefore read one by one, and an
 * entry counts only when it is exactly one result: one with a `;` of its own, or that does not
 * parse, is dropped whole (it is never the SPF or DKIM plugin's own, which write one result each).
 */
export function harakaAuthentication(connection: HarakaConnection): AuthenticationVerdict | undefined {
  const host = connection.local?.host;
  if (typeof connection.auth_results !== 'function' || typeof host !== 'string' || host === '') return undefined;
  const options = { authservIds: [host] };
  const entries = harakaEntries(connection);
  if (entries === undefined) return undefined;
  const kept = entries.filter((entry) => {
    // Haraka before 3.1.7 kept an entry's control characters: `;\r\n\t` inside one is not a separator.
    if (typeof entry !== 'string' || /[\x00-\x1f\x7f]/.test(entry)) return false;
    try {
      const parsed = parseAuthenticationResults(`${host}; ${entry}`, options);
      return parsed.trusted && parsed.results.length === 1;
    } catch {
      return false;
    }
  });
  if (kept.length === 0) return undefined;
  const { verdict } = authenticationFromHeaders(`Authentication-Results: ${host}${HARAKA_AR_SEPARATOR}${kept.join(HARAKA_AR_SEPARATOR)}\r\n\r\n`, options);
  // Entries that say nothing about the sender (auth=pass of an SMTP AUTH client, iprev) make no
  // verdict: an empty one would stand in for the configured authenticator, which then never runs.
  return verdict.spf === undefined && verdict.dkim === undefined && verdict.arc === undefined ? undefined : verdict;
}

/**
 * The outbound message of a Haraka connection at data_post.
 *
 * `options.providers`: the providers the message will be decided with. The whole message is read
 * (`message_stream.get_data`, the message in memory) only when one of them reads it — a spam
 * classifier, or an authenticator that Haraka's own results do not stand in for; otherwise the
 * header block Haraka parsed is enough (the decision reads From, Content-Type and Message-ID), and
 * a 64 MB message costs no 64 MB copy. Without `providers` the whole message is read.
 */
export async function harakaMessage(
  connection: HarakaConnection,
  transaction: HarakaTransaction,
  options: { readonly harakaAuthResults?: boolean; readonly providers?: Providers } = {},
): Promise<OutboundMessage> {
  const authentication = options.harakaAuthResults === false ? undefined : harakaAuthentication(connection);
  const headerOnly = options.providers !== undefined && !readsBody(options.providers, authentication) ? headerBlock(transaction) : undefined;
  const headers = headerOnly ?? (await readMessage(transaction));
  const ip = connection.remote?.ip;
  const helo = connection.hello?.host ?? undefined;
  const mailFrom = harakaAddress(transaction.mail_from);
  const authUser = connection.notes?.['auth_user'];
  const input = transaction.notes[INPUT_NOTE] as Record<string, unknown> | undefined;
  const given: Record<string, unknown> = {};
  if (typeof input === 'object' && input !== null) for (const field of INPUT_FIELDS) if (input[field] !== undefined) given[field] = input[field];
  return {
    ...(given as Pick<OutboundMessage, (typeof INPUT_FIELDS)[number]>),
    mailFrom,
    rcptTo: transaction.rcpt_to.map((rcpt) => harakaAddress(rcpt)),
    ...(headers !== undefined ? { headers } : {}),
    ...(typeof authUser === 'string' && authUser !== '' ? { submitter: authUser } : {}),
    ...(transaction.uuid !== undefined ? { queueId: transaction.uuid } : {}),
    ...(authentication !== undefined ? { authentication } : {}),
    ingress: { ...(ip !== undefined ? { ip } : {}), ...(helo ? { helo } : {}), mailFrom },
  };
}

/** The envelope sender as a new Haraka Address, built with the class of the current one. */
function rewrittenSender(current: HarakaAddress, rewritten: string): HarakaAddress {
  const at = rewritten.lastIndexOf('@');
  const Ctor = (current as { constructor: new (user: string, host: string, options: object) => HarakaAddress }).constructor;
  // The user/host form skips the 64-octet local-part check: SRS local parts may exceed it.
  return new Ctor(rewritten.slice(0, at), rewritten.slice(at + 1), { postel: true });
}

/** The decision a message was given, from the notes of a transaction or an outbound todo. */
function decisionIn(notes: Record<string, unknown> | undefined): Decision | undefined {
  const decision = notes?.[NOTE] as Decision | undefined;
  return decision !== undefined && typeof decision === 'object' && typeof decision.action === 'string' ? decision : undefined;
}

/**
 * Creates the hooks of the outbound-pools Haraka plugin.
 *
 * - `hook_data_post`: for relayed mail, decides the pool from the envelope, the message, the
 *   client's IP and HELO and the authenticated user (`connection.notes.auth_user`, the key for
 *   sending limits); stores the decision in `transaction.notes.outbound_pools`; adds the trace
 *   header (`X-Outbound-Pool`, any such field from the client is removed first); sets the
 *   SRS-rewritten envelope sender; refuses a blocked message with `DENY` and a deferred one with
 *   `DENYSOFT`, each with the decision's exact reply (`550 5.7.1 …`).
 * - `hook_get_mx`: for a message with a decision, binds the delivery to the pool's address and
 *   HELO: answers `OK` with the next hop when one is configured, else with the domain's MX
 *   hosts; when that lookup fails or finds none, sets `todo.notes.outbound_ip`/`outbound_helo`
 *   and lets Haraka find the MX itself.
 *
 * Haraka loads it through the CommonJS entry (`require('outbound-pools/haraka').install(exports)`,
 * docs/haraka.md); an ESM host can call it directly:
 *
 * @example
 * ```js
 * import { createHarakaPlugin } from 'outbound-pools/haraka';
 * const hooks = createHarakaPlugin({
 *   policy: { acceptedDomains: ['contoso.com'] },
 *   pools: {
 *     normal: { bind: '192.0.2.10', helo: 'out.contoso.com' },
 *     'high-risk': { bind: '192.0.2.20', helo: 'hr.contoso.com' },
 *     relay: { bind: '192.0.2.30', helo: 'rly.contoso.com' },
 *   },
 * });
 * // hooks.hook_data_post(next, connection); hooks.hook_get_mx(next, hmail, domain)
 * ```
 */
export function createHarakaPlugin(options: HarakaPluginOptions): HarakaPlugin {
  const { policy, providers, srs, pools, nextHop } = options;
  for (const pool of ['normal', 'high-risk', 'relay'] as const) {
    const binding = pools?.[pool];
    if (binding === undefined || typeof binding.bind !== 'string' || typeof binding.helo !== 'string') {
      throw new TypeError(`outbound-pools/haraka: pools.${pool} must be { bind, helo }.`);
    }
  }
  const relayingOnly = options.relayingOnly ?? true;
  const harakaAuthResults = options.harakaAuthResults ?? true;
  const lookupMx = options.resolveMx ?? resolveMx;
  const decide = createDecider({
    ...(policy !== undefined ? { policy } : {}),
    ...(providers !== undefined ? { providers } : {}),
    ...(srs !== undefined ? { srs } : {}),
  });
  const { CONT, DENY, DENYSOFT, OK } = HARAKA_CODES;

  return {
    decide,
    async hook_data_post(next, connection) {
      const transaction = connection.transaction;
      if (transaction === null || (relayingOnly && connection.relaying !== true)) return next(CONT);
      let decision: Decision;
      try {
        decision = await decide(await harakaMessage(connection, transaction, { harakaAuthResults, providers: providers ?? {} }));
      } catch (error) {
        // Bad input (no recipients, an unparsable address): try again later, never guess a pool.
        connection.logerror?.(`outbound-pools: no decision: ${error instanceof Error ? error.message : String(error)}`);
        return next(DENYSOFT, new DSN(451, '4.3.0 Outbound pool decision failed'));
      }
      transaction.notes[NOTE] = decision;
      const trace = formatTrace(decision);
      connection.loginfo?.(`outbound-pools: ${trace}`);
      if (decision.action !== 'deliver') {
        const reply = decision.reply;
        return next(decision.action === 'block' ? DENY : DENYSOFT, new DSN(reply.code, `${reply.enhancedCode} ${reply.text}`));
      }
      transaction.remove_header(TRACE_HEADER);
      transaction.add_header(TRACE_HEADER, trace);
      if (decision.srs?.applied && transaction.mail_from !== null) {
        transaction.mail_from = rewrittenSender(transaction.mail_from, decision.mailFrom);
      }
      return next(CONT);
    },
    async hook_get_mx(next, hmail, domain) {
      const notes = hmail.todo?.notes;
      const decision = decisionIn(notes);
      if (decision === undefined || decision.action !== 'deliver') return next(CONT);
      const binding = pools[decision.pool];
      const bound = (exchange: string, port: number, priority: number): HarakaMxAnswer => ({
        exchange,
        port,
        priority,
        bind: binding.bind,
        bind_helo: binding.helo,
      });
      if (nextHop !== undefined) return next(OK, bound(nextHop.host, nextHop.port ?? 25, 0));
      let mxs: readonly { readonly exchange: string; readonly priority: number }[] = [];
      try {
        mxs = await lookupMx(domain);
      } catch {
        // Haraka's own lookup below reports the error (bounce or retry) as it always does.
      }
      const usable = mxs.filter((mx) => mx.exchange !== '' && mx.exchange !== '.');
      if (usable.length > 0 && usable.length === mxs.length) {
        return next(OK, [...usable].sort((a, b) => a.priority - b.priority).map((mx) => bound(mx.exchange, 25, mx.priority)));
      }
      if (notes !== undefined) {
        notes['outbound_ip'] = binding.bind;
        notes['outbound_helo'] = binding.helo;
      }
      return next(CONT);
    },
  };
}
