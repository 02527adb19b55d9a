// The shapes that go into a decision and come out of it.

import type { EnvelopeAddress } from '../address.js';
import type { Policy, PolicyInput, Pool } from '../policy.js';
import type { PolicySet } from '../policy-set.js';
import type {
  AuthenticationVerdict,
  ConsumeResult,
  Ingress,
  ProviderName,
  Providers,
  SpamReportResult,
  SpamVerdict,
} from '../providers/types.js';
import type { Srs } from '../srs/index.js';

/** A message to route: its envelope, optionally its header (or whole text) and precomputed verdicts. */
export interface OutboundMessage {
  /** The envelope sender (MAIL FROM); `''` or `'<>'` is the null sender of DSNs. */
  readonly mailFrom: string;
  /** The envelope recipients (RCPT TO); at least one. */
  readonly rcptTo: readonly string[];
  /** The header block, or the whole message, as text or bytes. */
  readonly headers?: string | Uint8Array;
  /** Who submitted it (an account id): the key for sending limits. Default: the envelope sender. */
  readonly submitter?: string;
  /** The MTA's queue id, passed on to providers for their logs (rspamd's `Queue-Id`). */
  readonly queueId?: string;
  /** How the message arrived, for authentication at ingress. */
  readonly ingress?: Ingress;
  /** Authentication already done at ingress (skips the authenticator provider). */
  readonly authentication?: AuthenticationVerdict;
  /** A spam verdict already made (skips the spam provider). */
  readonly spam?: SpamVerdict;
  /** The sender's groups, from your directory: scoped policies (`createPolicySet`) match them. */
  readonly groups?: readonly string[];
  /**
   * Whether the MTA forwards this message automatically (mailbox forwarding, an inbox rule's
   * redirect): with `policy.autoForwarding: 'off'` it may not go to external recipients.
   */
  readonly autoForwarded?: boolean;
  /**
   * The organisation (tenant) that sent it, for a service that sends for many: the message counts
   * against the tenant's cap of external recipients (`policy.tenantLimits`, rule 11) as well as
   * its sender's limits.
   */
  readonly tenant?: string;
}

/** What the SRS step needs: a rewriter and the forwarding domain to rewrite into. */
export interface SrsContext {
  readonly rewriter: Pick<Srs, 'forward'>;
  readonly domain: string;
}

/** The second argument of `decidePool`. */
export interface DecideContext {
  /**
   * A plain policy object, the frozen result of `createPolicy()` (faster: validated once), or a
   * set of scoped policies from `createPolicySet()` (the one that applies is chosen per message).
   */
  readonly policy?: PolicyInput | Policy | PolicySet;
  readonly providers?: Providers;
  /** When given, rule 8 rewrites the envelope sender of verified forwards. */
  readonly srs?: SrsContext;
  /** The clock; default now. */
  readonly now?: Date;
  /** Aborts the gathering: the decision then comes at once, with the policy's fail modes. */
  readonly signal?: AbortSignal;
}

/**
 * One verdict as the decision saw it:
 * - `given`: precomputed on the message;
 * - `provided`: answered by a provider in time;
 * - `failed`: the provider threw, rejected, hung past its deadline or returned garbage;
 * - `absent`: nothing to consult (no provider, or not needed: the reason says which).
 */
export type Verdict<T> =
  | { readonly state: 'given'; readonly value: T }
  | { readonly state: 'provided'; readonly value: T }
  | { readonly state: 'failed'; readonly error: string }
  | { readonly state: 'absent'; readonly why: string };

/** Whether the sender's domain can receive mail (rule 5). */
export interface SenderDomainVerdict {
  readonly domain: string;
  readonly receivesMail: boolean;
  /** What settled it: a real MX, A or AAAA records, a null MX (RFC 7505), or nothing at all. */
  readonly basis: 'mx' | 'a' | 'aaaa' | 'null-mx' | 'no-records';
}

/** Whether the message is a non-delivery report (rule 4), and why. */
export interface NdrVerdict {
  readonly isNdr: boolean;
  readonly basis: 'null-sender' | 'delivery-status-report' | null;
}

/** Everything the rules read, gathered. */
export interface Verdicts {
  readonly limits: Verdict<ConsumeResult>;
  readonly senderDomain: Verdict<SenderDomainVerdict>;
  readonly spam: Verdict<SpamVerdict>;
  readonly authentication: Verdict<AuthenticationVerdict>;
  /**
   * The rate limiter's answer to the spam report of a message judged spam (rule 6) under a policy
   * with `spam.restrictAfter`; present only when a report was made or attempted.
   */
  readonly spamReport?: Verdict<SpamReportResult>;
}

/** The parsed message the rules see. */
export interface Envelope {
  /** null for the null sender. */
  readonly sender: EnvelopeAddress | null;
  readonly recipients: readonly EnvelopeAddress[];
  readonly internalRecipients: number;
  readonly externalRecipients: number;
  /** The domain of the header From, normalised, when there is a header. */
  readonly headerFromDomain: string | null;
  readonly messageId: string | null;
  /**
   * The key for sending limits: the submitter, else the envelope sender (`<>` for the null
   * sender), in the form `limitKeyOf` gives (lowercased; an address canonical).
   */
  readonly limitKey: string;
  readonly senderAccepted: boolean;
  readonly ndr: NdrVerdict;
  /** `message.groups`, checked (empty when not given). */
  readonly groups: readonly string[];
  /** `message.autoForwarded`, checked (false when not given). */
  readonly autoForwarded: boolean;
  /** `message.tenant`, checked (null when not given). */
  readonly tenant: string | null;
}

/** Reason codes that decide: one per rule of SPEC §3. */
export type DecisiveReasonCode =
  | 'sender-restricted'
  | 'recipients-per-message-exceeded'
  | 'sending-limit-exceeded'
  | 'ndr'
  | 'sender-domain-unresolvable'
  | 'spam'
  | 'relay-unverified'
  | 'spf-pass'
  | 'dkim-pass'
  | 'arc-pass'
  | 'accepted-domain'
  | 'auto-forwarding-blocked'
  | 'tenant-limit-exceeded';

/**
 * Reason codes that inform; `dns-error` and `provider-failed` decide when the policy says defer.
 * `spam-restriction`: the spam message that restricted its sender (`policy.spam.restrictAfter`).
 */
export type InformationalReasonCode = 'srs-rewritten' | 'srs-skipped' | 'limit-alert' | 'dns-error' | 'provider-failed' | 'spam-restriction';

/** Every code a {@link Reason} may carry: the decisive ones of SPEC §3 and §7, and the notes. */
export type ReasonCode = DecisiveReasonCode | InformationalReasonCode;

/** One reason. `rule` is the SPEC §3 rule that produced it (null for SRS notes). */
export interface Reason {
  readonly code: ReasonCode;
  readonly rule: number | null;
  readonly message: string;
  /** The provider, for `provider-failed` and `dns-error`. */
  readonly provider?: ProviderName;
  /** Facts behind the reason (limit windows, scores, the domain that passed …). */
  readonly detail?: Readonly<Record<string, string | number | boolean | null>>;
}

/** A suggested SMTP reply for a refused or deferred message (RFC 5321 §4.2, RFC 3463 codes). */
export interface SmtpReply {
  readonly code: number;
  readonly enhancedCode: string;
  readonly text: string;
  /** `code enhancedCode text`, ready to send. */
  readonly line: string;
}

/** What happened to the envelope sender. */
export type SrsOutcome =
  | { readonly applied: true; readonly original: string; readonly rewritten: string }
  | { readonly applied: false; readonly why: string };

interface DecisionCommon {
  /** The name of the policy applied: a scoped policy's, or the default's (`'Default'` for a single policy). */
  readonly policyName: string;
  /** Most decisive first: the deciding reason, what it led to (SRS), then notes. */
  readonly reasons: readonly Reason[];
  readonly verdicts: Verdicts;
  readonly ndr: NdrVerdict;
  /** The envelope sender to use: SRS-rewritten when rule 8 applied, else the original. */
  readonly mailFrom: string;
  /** null unless rule 8 decided. */
  readonly srs: SrsOutcome | null;
}

/** The message leaves through `pool`. */
export interface DeliverDecision extends DecisionCommon {
  readonly action: 'deliver';
  readonly pool: Pool;
  /** The trace name of the pool (`OutboundIpPoolName`). */
  readonly poolName: string;
  readonly reply: null;
}

/** The message is refused for good (or until the sender may send again). */
export interface BlockDecision extends DecisionCommon {
  readonly action: 'block';
  readonly pool: null;
  readonly poolName: null;
  readonly reply: SmtpReply;
}

/** The message should be tried again later (a provider or DNS failed and the policy says defer). */
export interface DeferDecision extends DecisionCommon {
  readonly action: 'defer';
  readonly pool: null;
  readonly poolName: null;
  readonly reply: SmtpReply;
}

/**
 * What `decidePool` answers, by `action`: `deliver` names the pool (and the envelope sender to
 * use, SRS-rewritten under rule 8); `block` and `defer` name no pool and carry the SMTP reply to
 * give. `reasons` start with the decisive one; `verdicts` hold every verdict consulted.
 */
export type Decision = DeliverDecision | BlockDecision | DeferDecision;
