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
  readonly spf?: { readonly result: SpfResult; readonly domain?: string };
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
  readonly spf?: { readonly result: SpfResult; readonly domain?: string };
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

/** Why and until when a sender may not send (rule 1). */
export interface Restriction {
  /** ISO 8601 end of the restriction, or null: until an administrator releases it. */
  readonly until: string | null;
  readonly reason?: string;
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

/** What the rate limiter is asked to count. */
export interface ConsumeRequest {
  /** The sender key: the submitter when given, else the envelope sender. */
  readonly key: string;
  /** Retries of the same message (same id) count once. */
  readonly messageId?: string;
  readonly internalRecipients: number;
  readonly externalRecipients: number;
  readonly limits: readonly LimitSet[];
  readonly now: Date;
}

/** The rate limiter's answer. */
export interface ConsumeResult {
  /** Set when the sender is restricted (rule 1); nothing was counted then. */
  readonly restriction: Restriction | null;
  /** Windows the message would exceed; empty when it fits. */
  readonly breaches: readonly LimitBreach[];
  /** Whether the message was counted (it fit, or every breach was `alert`). */
  readonly counted: boolean;
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
  consume(request: ConsumeRequest): MaybePromise<ConsumeResult>;
  restriction(key: string, now: Date): MaybePromise<Restriction | null>;
  /**
   * Optional: `consume` answered at once (thrown instead of rejected), for a limiter that keeps
   * its state in memory; `decidePool` then asks it without a promise. Same semantics as `consume`.
   */
  readonly consumeSync?: (request: ConsumeRequest) => ConsumeResult;
  /** Optional: `restriction` answered at once, as {@link RateLimiter.consumeSync}. */
  readonly restrictionSync?: (key: string, now: Date) => Restriction | null;
}

/** A restricted sender, as {@link ManagedRateLimiter.restricted} lists it. */
export interface RestrictedSender extends Restriction {
  readonly key: string;
}

/**
 * A rate limiter that also manages restrictions: the in-memory and Redis limiters of
 * outbound-pools implement it. `release` lifts a restriction (an administrator's "release
 * user"); `restricted` lists the senders restricted now.
 */
export interface ManagedRateLimiter extends RateLimiter {
  consume(request: ConsumeRequest): Promise<ConsumeResult>;
  restriction(key: string, now: Date): Promise<Restriction | null>;
  release(key: string): Promise<boolean>;
  restricted(now: Date): Promise<readonly RestrictedSender[]>;
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
