// The interfaces a verdict provider implements. Each is small on purpose: write your own in a
// few lines (docs/architecture.md), or use the ones outbound-pools ships.

/**
 * A DNS resolver with the signature of `dns.promises.resolve` and of mailauth's `resolver`
 * option, so that one resolver (and one cache) serves both. "No such name" and "no such record"
 * reject with an error whose `code` is `ENOTFOUND` or `ENODATA`; any other rejection is a
 * failure (timeout, SERVFAIL, refused) and is never taken to mean absence.
 *
 * Records for `MX` are `{ exchange, priority }[]` (a null MX, RFC 7505, has exchange `''` or
 * `'.'`); for `A`/`AAAA` address strings; for `TXT` arrays of string chunks.
 */
export type DnsResolver = ((name: string, rrtype: string) => Promise<unknown>) & {
  /**
   * Optional: the same lookup answered at once (thrown instead of rejected), for an in-memory
   * resolver; `decidePool` then checks the sender domain without promises.
   */
  readonly lookupSync?: (name: string, rrtype: string) => unknown;
};

/** SPF results (RFC 7208 §2.6). */
export type SpfResult = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'temperror' | 'permerror';
/** DKIM, ARC and DMARC results as Authentication-Results reports them (RFC 8601 §2.7). */
export type AuthResult = 'pass' | 'fail' | 'neutral' | 'none' | 'temperror' | 'permerror' | 'policy';

/**
 * An SPF result at ingress, and what it checked. SPF checks one identity (RFC 7208 §2.3, §2.4):
 * the MAIL FROM's domain, or for a null MAIL FROM the HELO name's.
 */
export interface SpfVerdict {
  readonly result: SpfResult;
  /** The domain checked: of the MAIL FROM, or of the HELO name (`identity: 'helo'`). */
  readonly domain?: string;
  /**
   * The identity checked: `'mailfrom'` (assumed when absent) or `'helo'`. A HELO pass vouches for
   * the HELO name, which is the sender's identity only for a null MAIL FROM; it never verifies a
   * forward, whose sender is not null.
   */
  readonly identity?: 'mailfrom' | 'helo';
}

/** One DKIM signature checked at ingress. */
export interface DkimVerdict {
  readonly result: AuthResult;
  /** The signing domain, `d=`. */
  readonly domain: string;
  readonly selector?: string;
}

/** What ARC said at ingress (RFC 8617). */
export interface ArcVerdict {
  /** Validation of the whole chain (`cv=`). */
  readonly result: AuthResult;
  /** The domain (`d=`) of the newest ARC-Seal: the last intermediary that vouched. */
  readonly sealer?: string;
  /** The SPF result the newest ARC-Authentication-Results recorded. */
  readonly spf?: SpfVerdict;
  /** The DKIM results the newest ARC-Authentication-Results recorded. */
  readonly dkim?: readonly DkimVerdict[];
}

/** Which connection SPF was evaluated for (enhanced filtering: past the trusted gateways). */
export interface IngressHop {
  readonly ip?: string;
  readonly helo?: string;
  /**
   * Where it came from: `'connection'` (the client of this service), or the index of the
   * Received field (0 = topmost) whose from-clause named the first untrusted hop.
   */
  readonly source: 'connection' | number;
}

/** Authentication of the message when it reached this service (ingress). */
export interface AuthenticationVerdict {
  /** The hop SPF was evaluated for, when an authenticator chose it. */
  readonly ingress?: IngressHop;
  /** SPF of the ingress MAIL FROM (or HELO) domain. */
  readonly spf?: SpfVerdict;
  readonly dkim?: readonly DkimVerdict[];
  readonly arc?: ArcVerdict;
  readonly dmarc?: { readonly result: AuthResult; readonly domain?: string };
}

/** A spam verdict. */
export interface SpamVerdict {
  /** Score on the classifier's scale; compared with `policy.spam.threshold`. */
  readonly score?: number;
  /** The classifier's own judgement (rspamd action `reject`/`add header`/`rewrite subject`, …). */
  readonly isSpam?: boolean;
  /** Categories such as `phishing` or `malware`; those in `policy.spam.blockCategories` block. */
  readonly categories?: readonly string[];
}

/**
 * Why a sender was restricted:
 * - `limit`: a breach of a limit set whose action is `block-user` or `block-user-for-today`
 *   (rule 3): `window` and `set` name the breached window and its limit set;
 * - `spam`: `count` messages judged spam within `window` (`policy.spam.restrictAfter`);
 * - `admin`: an administrator's `restrict()`.
 */
export type RestrictionCause =
  | { readonly kind: 'limit'; readonly window: LimitWindow; readonly set: string }
  | { readonly kind: 'spam'; readonly count: number; readonly window: 'hour' | 'day' }
  | { readonly kind: 'admin' };

/** Why and until when a sender may not send (rule 1). */
export interface Restriction {
  /** ISO 8601 end of the restriction, or null: until an administrator releases it. */
  readonly until: string | null;
  readonly reason?: string;
  /** ISO 8601 instant the restriction began (limiters of outbound-pools always set it). */
  readonly since?: string;
  /** What caused it (limiters of outbound-pools always set it). */
  readonly cause?: RestrictionCause;
}

/** The four windows a limit set can have; recipients/message is stateless and checked by the core. */
export type LimitWindow = 'messagesPerMinute' | 'internalRecipientsPerHour' | 'externalRecipientsPerHour' | 'recipientsPerDay';

/**
 * What happens when a limit set is breached (the outbound spam policy's ActionWhenThresholdReached,
 * plus the service's own hard limits):
 * - `block`: refuse this message; the sender can send again when the window allows.
 * - `alert`: deliver and count, with a `limit-alert` reason.
 * - `block-user-for-today`: refuse, and restrict the sender until the next UTC day.
 * - `block-user`: refuse, and restrict the sender until released.
 */
export type LimitAction = 'block' | 'alert' | 'block-user-for-today' | 'block-user';

/** One breached window. */
export interface LimitBreach {
  readonly window: LimitWindow;
  readonly limit: number;
  /** How much had been sent in the window before this message. */
  readonly used: number;
  readonly action: LimitAction;
  /** The name of the limit set. */
  readonly set: string;
}

/** A normalised limit set, as the rate limiter receives it. */
export interface LimitSet {
  readonly name: string;
  readonly messagesPerMinute?: number;
  readonly internalRecipientsPerHour?: number;
  readonly externalRecipientsPerHour?: number;
  readonly recipientsPerDay?: number;
  readonly recipientsPerMessage?: number;
  readonly action: LimitAction;
}

/**
 * The organisation a message counts for, besides its sender (`message.tenant` with
 * `policy.tenantLimits`): its external recipients over a sliding 24 h, 61 buckets of 24 min, like
 * `recipientsPerDay`.
 */
export interface TenantLimitRequest {
  /** The tenant's name, as `message.tenant` gives it. */
  readonly key: string;
  /** `policy.tenantLimits.externalRecipientsPerDay`; absent: count the tenant, cap nothing. */
  readonly externalRecipientsPerDay?: number;
}

/** The tenant's cap, breached: the message has external recipients and would pass it. */
export interface TenantBreach {
  readonly tenant: string;
  readonly limit: number;
  /** External recipients the tenant sent in the last 24 h before this message. */
  readonly used: number;
}

/** What the rate limiter is asked to count. */
export interface ConsumeRequest {
  /** The sender key: the submitter when given, else the envelope sender. */
  readonly key: string;
  /**
   * The message's id for retries: a message whose id was counted for this key in the last 24 h
   * is a retry, answered counted without counting again — once: the retry spends the id, and
   * the next message with it counts (and is remembered again). The id is the client's to write:
   * a sender that reuses one id on every message gets at most one free message per counted one.
   */
  readonly messageId?: string;
  readonly internalRecipients: number;
  readonly externalRecipients: number;
  readonly limits: readonly LimitSet[];
  /**
   * The message's tenant, when `message.tenant` is given: the message counts for the tenant
   * too, atomically with the sender (in every window of both, or in none). A message with an
   * external recipient that would pass the tenant's cap is not counted, for sender nor tenant;
   * the sender's own breaches are still reported beside `tenantBreach`, and a restricting one
   * still restricts. A message without an external recipient adds nothing to the tenant and is
   * never refused by its cap; a retry (same `messageId`, same sender) counts once for both.
   */
  readonly tenant?: TenantLimitRequest;
  /**
   * Count the message even when it is over the sender's limits: the decision delivers such a
   * message through the high-risk pool (`policy.overLimit: 'high-risk'`), and mail that is sent
   * counts, for its sender and its tenant. The breaches are reported as ever and a restricting
   * one still restricts (`imposed`); the answer says `counted: true`. The tenant's cap still
   * refuses a message that would pass it: counted for neither then. Absent or false: a message
   * over an enforced limit counts nowhere (`counted: false`). A limiter of your own that ignores
   * it leaves such messages uncounted, as this package's limiters did before.
   */
  readonly countOverLimit?: boolean;
  readonly now: Date;
}

/** The rate limiter's answer. */
export interface ConsumeResult {
  /** Set when the sender is restricted (rule 1); nothing was counted then. */
  readonly restriction: Restriction | null;
  /** Windows the message would exceed; empty when it fits. */
  readonly breaches: readonly LimitBreach[];
  /** Set when the tenant's cap refuses the message (rule 11); absent or null otherwise. */
  readonly tenantBreach?: TenantBreach | null;
  /** Whether the message was counted (it fit, every breach was `alert`, or the request said `countOverLimit`). */
  readonly counted: boolean;
  /**
   * The restriction this message's breaches imposed on the sender (a `block-user` or
   * `block-user-for-today` breach), or null when they imposed none — in particular when an
   * administrator released the sender today ({@link ManagedRateLimiter.release}): the message is
   * then refused as `block` refuses it (`451 4.7.1`, try later), not as a restricted sender's.
   * Both limiters of outbound-pools set it whenever a breach refuses the message. A limiter that
   * leaves it out is taken at its breaches' word: a restricting breach restricted.
   */
  readonly imposed?: Restriction | null;
  /**
   * Set when the answer is `counted` only because the message's id had been counted already
   * (a retry, {@link ConsumeRequest.messageId}): this call counted nothing, so there is nothing
   * to {@link RateLimiter.refund | refund}.
   */
  readonly retry?: true;
}

/**
 * A message judged spam (rule 6), reported to the limiter when the policy has
 * `spam.restrictAfter`. A retry of a reported message (same id) counts once, as for
 * {@link ConsumeRequest.messageId}: the retry spends the id.
 */
export interface SpamReport {
  readonly key: string;
  readonly messageId?: string;
  readonly restrictAfter: SpamRestrictAfter;
  readonly now: Date;
}

/** `policy.spam.restrictAfter`, as the limiter receives it. */
export interface SpamRestrictAfter {
  readonly count: number;
  readonly window: 'hour' | 'day';
  readonly action: 'block-user' | 'block-user-for-today';
}

/** The limiter's answer to a {@link SpamReport}. */
export interface SpamReportResult {
  /** Spam messages of this sender within the window, this one included. */
  readonly count: number;
  /**
   * The restriction this message imposed (its count reached `restrictAfter.count`), else null —
   * also when the sender was released today (immune until the next UTC day).
   */
  readonly restriction: Restriction | null;
}

/**
 * A provider's answer: a promise, or — for an in-memory provider — the value itself. A
 * synchronous answer lets `decidePool` skip the promise machinery for that provider.
 */
export type MaybePromise<T> = T | Promise<T>;

/**
 * Keeps per-sender counts and restrictions (rules 1 and 3). `consume` is atomic: a message is
 * counted in every window or in none. `restriction` only reads.
 */
export interface RateLimiter {
  /**
   * Counts the message, or says why not. A limiter that gives up on a command its server may
   * still run (the Redis limiter's own timeout) may reject with an error whose `late` is a
   * promise of the answer still to come: the decision then treats that answer as it treats one
   * that came after its deadline — when it refused the message and the late answer says
   * `counted` (not a retry), it calls {@link RateLimiter.refund} with the same request.
   */
  consume(request: ConsumeRequest): MaybePromise<ConsumeResult>;
  restriction(key: string, now: Date): MaybePromise<Restriction | null>;
  /**
   * Optional: counts a message judged spam and restricts its sender at `restrictAfter.count`.
   * Needed by a policy with `spam.restrictAfter` (a limiter without it: the decision notes that
   * nothing was counted).
   */
  readonly reportSpam?: (report: SpamReport) => MaybePromise<SpamReportResult>;
  /** Optional: `reportSpam` answered at once, as {@link RateLimiter.consumeSync}. */
  readonly reportSpamSync?: (report: SpamReport) => SpamReportResult;
  /**
   * Optional: `consume` answered at once (thrown instead of rejected), for a limiter that keeps
   * its state in memory; `decidePool` then asks it without a promise. Same semantics as `consume`.
   */
  readonly consumeSync?: (request: ConsumeRequest) => ConsumeResult;
  /** Optional: `restriction` answered at once, as {@link RateLimiter.consumeSync}. */
  readonly restrictionSync?: (key: string, now: Date) => Restriction | null;
  /**
   * Optional, and custom limiters should implement it: takes back what `consume(request)`
   * counted at `request.now` — the message in the minute window, its internal and external
   * recipients in the hour windows and all of them in the day window, in the buckets of
   * `request.now`; the tenant's external recipients (`request.tenant`); and the remembered
   * `messageId`, so that a retry of the message counts as a new one. A bucket that has left its
   * window is left alone, no other bucket is touched, and no count goes below zero. With a
   * `messageId`, nothing is taken back unless the id is still remembered as counted at
   * `request.now`: a retry answered meanwhile (the message sent again while this copy waited on
   * its other providers) was delivered on that count, and a second refund of the same request
   * finds the id spent. The decision calls it, with the very
   * request it gave `consume`, when a message the limiter counted (not a retry) is then blocked
   * or deferred for another reason (a blocked spam category, a DNS or provider failure with
   * `defer`): a refused message uses up no allowance. When `consume` was cut off by its deadline
   * (the decision failed it) and the message was refused, it is called later, when the late
   * answer comes and says it counted. Its failure is ignored. Without it such a message stays
   * counted.
   */
  readonly refund?: (request: ConsumeRequest) => MaybePromise<void>;
  /** Optional: `refund` done at once (thrown instead of rejected), as {@link RateLimiter.consumeSync}. */
  readonly refundSync?: (request: ConsumeRequest) => void;
}

/** A restricted sender, as {@link ManagedRateLimiter.restricted} lists it. */
export interface RestrictedSender extends Restriction {
  readonly key: string;
  readonly since: string;
  readonly cause: RestrictionCause;
}

/** An administrator's restriction: `restrict(key, { until, reason })`. */
export interface RestrictOptions {
  /** When it ends; null or absent: until released. */
  readonly until?: Date | null;
  readonly reason?: string;
  /** When it begins (the limiter's clock for `since`); default: now. */
  readonly now?: Date;
}

/**
 * What a managed limiter tells an operator's code (`subscribe`). On Redis every node's
 * subscribers see every node's events (pub/sub); in memory, the process's own.
 * - `restricted`: a sender was restricted (a limit, spam, or an administrator);
 * - `released`: an administrator released it (immune to automatic restriction until `immuneUntil`);
 * - `limit-alert`: a breach whose action is `alert` (the message was counted; emitted by the
 *   limiter before the later rules run, so a message those then refuse — a blocked spam
 *   category — is refunded, and the alert stands);
 * - `tenant-cap`: a tenant's cap refused a message.
 * `at` is the ISO 8601 instant, from the clock of the call that caused it. `key` is always a
 * sender's key — for `tenant-cap`, the sender of the refused message (`breach.tenant` names the
 * tenant).
 */
export type LimiterEvent =
  | { readonly type: 'restricted'; readonly at: string; readonly key: string; readonly restriction: Restriction & { readonly since: string; readonly cause: RestrictionCause } }
  | { readonly type: 'released'; readonly at: string; readonly key: string; readonly immuneUntil: string }
  | { readonly type: 'limit-alert'; readonly at: string; readonly key: string; readonly breach: LimitBreach }
  | { readonly type: 'tenant-cap'; readonly at: string; readonly key: string; readonly breach: TenantBreach };

/** A function that receives {@link LimiterEvent}s; its errors and rejections are ignored. */
export type LimiterEventListener = (event: LimiterEvent) => void;

/**
 * A rate limiter that also manages restrictions: the in-memory and Redis limiters of
 * outbound-pools implement it.
 * - `restrict` imposes an administrator's restriction (replacing any other for the key);
 * - `release` lifts a restriction (an administrator's "release user"): the sender is not
 *   restricted again automatically (limit or spam) until the next UTC day — a breach then refuses
 *   the message as `block` would, without restricting; `restrict` still works;
 * - `restricted` lists the senders restricted now, with when, why and until when;
 * - `subscribe` delivers {@link LimiterEvent}s and returns the function that stops them.
 */
export interface ManagedRateLimiter extends RateLimiter {
  consume(request: ConsumeRequest): Promise<ConsumeResult>;
  restriction(key: string, now: Date): Promise<Restriction | null>;
  readonly reportSpam: (report: SpamReport) => Promise<SpamReportResult>;
  readonly refund: (request: ConsumeRequest) => Promise<void>;
  restrict(key: string, options?: RestrictOptions): Promise<RestrictedSender>;
  /**
   * True when a restriction in force at `now` was lifted; `now` (default: the system clock)
   * starts the immunity, until the next UTC midnight after it. A key without a restriction in
   * force gets no immunity and no `released` event.
   */
  release(key: string, now?: Date): Promise<boolean>;
  restricted(now: Date): Promise<readonly RestrictedSender[]>;
  /**
   * Delivers later events to `listener` (never synchronously inside the call that caused them;
   * a listener's error or rejection is ignored) until the returned function is called. A
   * subscription over the network (Redis pub/sub) may take a moment to start: events before it
   * has are not delivered.
   */
  subscribe(listener: LimiterEventListener): () => void;
}

/** What a spam classifier or authenticator is given. */
export interface ProviderMessage {
  /** The raw header block, or the whole message, as given to decidePool. */
  readonly raw: string | Uint8Array | undefined;
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly submitter?: string;
  /** The MTA's queue id, when the caller gave one. */
  readonly queueId?: string;
  readonly ingress?: Ingress;
  /**
   * The decision's clock (the context's `now`): a provider that judges time — signature `t=` and
   * `x=`, ARC — judges it at this instant, so that a decision depends only on its inputs.
   */
  readonly now?: Date;
}

/** Where the message came from when it reached this service. */
export interface Ingress {
  readonly ip?: string;
  readonly helo?: string;
  /** The MAIL FROM it arrived with, when different from the outbound envelope sender. */
  readonly mailFrom?: string;
}

/** Classifies a message as spam or not (rule 6). */
export interface SpamClassifier {
  classify(message: ProviderMessage, signal: AbortSignal): MaybePromise<SpamVerdict>;
}

/** A spam classifier that always answers with a promise (one that does I/O). */
export interface AsyncSpamClassifier extends SpamClassifier {
  classify(message: ProviderMessage, signal: AbortSignal): Promise<SpamVerdict>;
}

/** Authenticates a message as it arrived (rules 7 and 8). */
export interface Authenticator {
  authenticate(message: ProviderMessage, signal: AbortSignal): MaybePromise<AuthenticationVerdict>;
}

/** An authenticator that always answers with a promise (one that does I/O). */
export interface AsyncAuthenticator extends Authenticator {
  authenticate(message: ProviderMessage, signal: AbortSignal): Promise<AuthenticationVerdict>;
}

/** The providers `decidePool` may consult; all optional. */
export interface Providers {
  readonly dns?: DnsResolver;
  readonly rateLimiter?: RateLimiter;
  readonly spam?: SpamClassifier;
  readonly authenticator?: Authenticator;
}

/** Names of providers, as `provider-failed` reasons name them. */
export type ProviderName = keyof Providers;
