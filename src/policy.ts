// The policy: every setting a decision depends on, validated once by createPolicy() into a
// frozen, normalised object. Unknown keys are errors: a misspelt setting silently ignored would
// route mail differently from what the administrator wrote.

import { normaliseDomain } from './address.js';
import { publicSuffixKind } from './public-suffix.js';
import { OutboundPoolsError, show, UNQUOTABLE } from './errors.js';
import { MAX_SPAM_COUNT } from './providers/limit-windows.js';
import { settingsObject } from './settings.js';
import type { LimitAction, LimitSet, SpamRestrictAfter } from './providers/types.js';

/** A delivery pool. */
export type Pool = 'normal' | 'high-risk' | 'relay';

/** What to do when the sender's domain cannot be checked in DNS (timeout, SERVFAIL). */
export type DnsErrorAction = 'ignore' | 'defer' | 'high-risk';

/** What a provider failure (throw, reject, hang, garbage) means. */
export type FailureMode = 'fail-open' | 'defer';

/** A limit set as written in a policy. Omit a window for no limit on it. */
export interface LimitSetInput {
  /** Shown in reasons; default `limits[i]`. */
  readonly name?: string;
  readonly messagesPerMinute?: number;
  readonly internalRecipientsPerHour?: number;
  readonly externalRecipientsPerHour?: number;
  /** Over a 24-hour sliding window. */
  readonly recipientsPerDay?: number;
  readonly recipientsPerMessage?: number;
  /** Default `'block'`. */
  readonly action?: LimitAction;
}

/** A policy as written: a plain object (JSON-compatible). Every key is optional. */
export interface PolicyInput {
  /** Domains of the organisation: `example.com` exactly, `*.example.com` for any subdomain. */
  readonly acceptedDomains?: readonly string[];
  /** One limit set or several; a message must fit all of them. */
  readonly limits?: LimitSetInput | readonly LimitSetInput[];
  /** Over-limit messages are blocked (default), or — the older Microsoft behaviour — sent through the high-risk pool. */
  readonly overLimit?: 'block' | 'high-risk';
  /**
   * Automatic forwarding to external recipients (`message.autoForwarded`): `'on'` (default)
   * allows it, `'off'` blocks it — Microsoft's outbound spam policy setting "Automatic forwarding
   * rules", whose default ("Automatic - System-controlled") now means off: see `presets.microsoftDefault`.
   */
  readonly autoForwarding?: 'on' | 'off';
  readonly spam?: {
    /** Score at or above which a message is spam. Without it, only the classifier's own judgement counts. */
    readonly threshold?: number;
    /** Categories (e.g. `malware`, `phishing`) that block instead of using the high-risk pool. */
    readonly blockCategories?: readonly string[];
    /**
     * Restrict a sender whose messages were judged spam (rule 6, high-risk) `count` times (1 to
     * 1,000) within the `window` (an hour or a day, sliding), counted by the rate limiter: the message reaching
     * the count still leaves through the high-risk pool, later ones are refused (rule 1).
     * `action`: `block-user-for-today` (default, until the next UTC midnight) or `block-user`
     * (until an administrator releases the sender). `null`, as not given: no restriction after
     * spam (a scoped policy turns the default's off with it).
     */
    readonly restrictAfter?: {
      readonly count: number;
      readonly window: 'hour' | 'day';
      readonly action?: 'block-user' | 'block-user-for-today';
    } | null;
  };
  /**
   * The cap of a tenant (`message.tenant`): at most `externalRecipientsPerDay` external
   * recipients over a sliding 24 hours, for all its senders together — Microsoft 365's tenant
   * external recipient rate limit. Over it, every message of the tenant with an external
   * recipient is blocked (rule 11). Counted by the rate limiter. `null`, as not given: tenants
   * are counted, not capped (a scoped policy turns the default's cap off with it).
   */
  readonly tenantLimits?: {
    readonly externalRecipientsPerDay: number;
  } | null;
  readonly relay?: {
    /** Whether aligned DKIM pass at ingress verifies a forward (default true, per the Microsoft documentation the project started from). */
    readonly dkim?: boolean;
    /** DKIM `d=` alignment with the sender's domain: `relaxed` (same registrable domain, default) or `strict` (equal). */
    readonly alignment?: 'relaxed' | 'strict';
    /** ARC sealers whose validated chain counts as verification. Default none. */
    readonly trustedArcSealers?: readonly string[];
  };
  readonly dns?: {
    /** Default `'ignore'`: a DNS failure never sends good mail to the high-risk pool on its own. */
    readonly onError?: DnsErrorAction;
  };
  /** Trace names per pool (the `OutboundIpPoolName` of the decision). */
  readonly pools?: { readonly normal?: string; readonly 'high-risk'?: string; readonly relay?: string };
  /** Deadlines in milliseconds. */
  readonly deadlines?: {
    readonly totalMs?: number;
    readonly dnsMs?: number;
    readonly rateLimiterMs?: number;
    readonly spamMs?: number;
    readonly authenticatorMs?: number;
  };
  /** What each provider's failure means. Default `'fail-open'` for all. */
  readonly onProviderFailure?: {
    readonly rateLimiter?: FailureMode;
    readonly spam?: FailureMode;
    readonly authenticator?: FailureMode;
  };
}

/** A validated, normalised, frozen policy. Make one with {@link createPolicy}. */
export interface Policy {
  readonly acceptedDomains: readonly string[];
  readonly limits: readonly LimitSet[];
  /** The smallest recipients-per-message limit of all sets, or null. */
  readonly recipientsPerMessage: { readonly limit: number; readonly set: string } | null;
  readonly overLimit: 'block' | 'high-risk';
  readonly autoForwarding: 'on' | 'off';
  readonly spam: {
    readonly threshold: number | null;
    readonly blockCategories: readonly string[];
    /** `spam.restrictAfter`, its action filled in; null when not set. */
    readonly restrictAfter: SpamRestrictAfter | null;
  };
  /** `tenantLimits`; null when not set (a tenant is then counted, not capped). */
  readonly tenantLimits: { readonly externalRecipientsPerDay: number } | null;
  readonly relay: { readonly dkim: boolean; readonly alignment: 'relaxed' | 'strict'; readonly trustedArcSealers: readonly string[] };
  readonly dns: { readonly onError: DnsErrorAction };
  readonly pools: { readonly [P in Pool]: string };
  readonly deadlines: {
    readonly totalMs: number;
    readonly dnsMs: number;
    readonly rateLimiterMs: number;
    readonly spamMs: number;
    readonly authenticatorMs: number;
  };
  readonly onProviderFailure: { readonly rateLimiter: FailureMode; readonly spam: FailureMode; readonly authenticator: FailureMode };
}

/** Trace names used when the policy names none; `RegularRelayOutboundPool` is Microsoft's documented one. */
export const DEFAULT_POOL_NAMES: Readonly<Record<Pool, string>> = Object.freeze({
  normal: 'RegularOutboundPool',
  'high-risk': 'HighRiskOutboundPool',
  relay: 'RegularRelayOutboundPool',
});

const DEFAULT_DEADLINES = { totalMs: 10_000, dnsMs: 3_000, rateLimiterMs: 1_000, spamMs: 5_000, authenticatorMs: 5_000 } as const;
const MAX_DEADLINE_MS = 120_000;
const MAX_LIMIT = 10_000_000;

const LIMIT_ACTIONS: readonly LimitAction[] = ['block', 'alert', 'block-user-for-today', 'block-user'];
const LIMIT_WINDOWS = ['messagesPerMinute', 'internalRecipientsPerHour', 'externalRecipientsPerHour', 'recipientsPerDay', 'recipientsPerMessage'] as const;

/** Reference limit sets from the Microsoft 365 documentation, to use as they are or as a start. */
export const presets = Object.freeze({
  /** Exchange Online sending limits: 30 messages/minute, 10,000 recipients/day (sliding), 500 recipients/message. */
  exchangeOnline: Object.freeze({
    name: 'exchange-online',
    messagesPerMinute: 30,
    recipientsPerDay: 10_000,
    recipientsPerMessage: 500,
    action: 'block',
  } satisfies LimitSetInput),
  /** Recommended outbound spam policy, Standard: 500 external/hour, 1,000 internal/hour, 1,000/day, block the user. */
  outboundSpamStandard: Object.freeze({
    name: 'outbound-spam-standard',
    externalRecipientsPerHour: 500,
    internalRecipientsPerHour: 1_000,
    recipientsPerDay: 1_000,
    action: 'block-user',
  } satisfies LimitSetInput),
  /** Recommended outbound spam policy, Strict: 400 external/hour, 800 internal/hour, 800/day, block the user. */
  outboundSpamStrict: Object.freeze({
    name: 'outbound-spam-strict',
    externalRecipientsPerHour: 400,
    internalRecipientsPerHour: 800,
    recipientsPerDay: 800,
    action: 'block-user',
  } satisfies LimitSetInput),
  /**
   * Microsoft's default outbound spam policy, as far as a policy here can say it: automatic
   * forwarding to external recipients off (the default "Automatic - System-controlled" means off),
   * and no recipient limits of its own (0 in the portal), so only the service's sending limits
   * apply. A starting point: `createPolicy({ ...presets.microsoftDefault, acceptedDomains: [...] })`.
   */
  microsoftDefault: Object.freeze({
    autoForwarding: 'off',
    limits: Object.freeze([
      Object.freeze({ name: 'exchange-online', messagesPerMinute: 30, recipientsPerDay: 10_000, recipientsPerMessage: 500, action: 'block' }),
    ]),
  } satisfies PolicyInput),
});

const POLICY_BRAND: unique symbol = Symbol('outbound-pools.policy');
const ACCEPTED: unique symbol = Symbol('outbound-pools.accepted-domains');

function invalid(message: string): OutboundPoolsError {
  return new OutboundPoolsError('invalid-policy', message);
}

function record(value: unknown, path: string, known: readonly string[]): Record<string, unknown> {
  return settingsObject(value, path, known, invalid);
}

function oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) throw invalid(`${path} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${show(value)}.`);
  return value as T;
}

function integer(value: unknown, path: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${path} must be a whole number from ${min} to ${max}, got ${show(value)}${typeof value === 'number' ? ` (${value})` : ''}.`);
  }
  return value;
}

function stringList(value: unknown, path: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && item.length > 0)) {
    throw invalid(`${path} must be an array of non-empty strings.`);
  }
  return value as string[];
}

function domainList(value: unknown, path: string, accepted: boolean): string[] {
  return stringList(value, path).map((entry, index) => {
    const wildcard = accepted && entry.startsWith('*.');
    const domain = normaliseDomain(wildcard ? entry.slice(2) : entry);
    if (domain === null) {
      // A top-level domain alone (`com`, `рф`) is no mail domain: say it is a public suffix.
      const label = accepted ? normaliseDomain(`${wildcard ? entry.slice(2) : entry}.example`)?.slice(0, -'.example'.length) : undefined;
      if (label !== undefined && !label.includes('.')) checkNotPublicSuffix(label, wildcard, `${path}[${index}]`, entry);
      throw invalid(`${path}[${index}] ${show(entry)} is not a domain name${accepted ? ' (use example.com, or *.example.com for its subdomains)' : ''}.`);
    }
    if (accepted) checkNotPublicSuffix(domain, wildcard, `${path}[${index}]`, entry);
    return wildcard ? `*.${domain}` : domain;
  });
}

/**
 * An accepted domain is the organisation's own: a public suffix (`com`, `co.uk`, per the Public
 * Suffix List that tldts carries) is no one's, and `*.co.uk` would accept every sender in the
 * United Kingdom as internal (rule 9: normal pool, no verification). A suffix from the list's
 * private section (`github.io`, where anyone can have a subdomain) is refused with `*.`; on its
 * own it names only its operator's domain.
 */
function checkNotPublicSuffix(domain: string, wildcard: boolean, path: string, entry: string): void {
  const kind = publicSuffixKind(domain);
  if (kind === 'icann') {
    throw invalid(`${path} ${show(entry)} is a public suffix (${domain}, in the Public Suffix List): no organisation owns it; accept your own domains under it (example.${domain}).`);
  }
  if (kind === 'private' && wildcard) {
    throw invalid(`${path} ${show(entry)} covers a public suffix (${domain}, in the private section of the Public Suffix List): its subdomains belong to different owners.`);
  }
}

/** What a limit-set name may not hold: control characters (C0, DEL, C1), line separators and bidi controls, which could forge or reorder log lines. */
const MAX_NAME_LENGTH = 128;

function limitSet(input: unknown, index: number): LimitSet {
  const path = `limits[${index}]`;
  const value = record(input, path, ['name', 'action', ...LIMIT_WINDOWS]);
  if (value.name !== undefined && (typeof value.name !== 'string' || value.name.length === 0 || value.name.length > MAX_NAME_LENGTH || UNQUOTABLE.test(value.name))) {
    throw invalid(`${path}.name must be a non-empty string of at most ${MAX_NAME_LENGTH} printable characters (no control characters, line separators or bidi controls), got ${show(value.name)}.`);
  }
  const set: Record<string, unknown> = {
    name: (value.name as string | undefined) ?? path,
    action: oneOf(value.action, `${path}.action`, LIMIT_ACTIONS, 'block'),
  };
  for (const window of LIMIT_WINDOWS) {
    if (value[window] !== undefined) set[window] = integer(value[window], `${path}.${window}`, 1, MAX_LIMIT);
  }
  if (LIMIT_WINDOWS.every((window) => set[window] === undefined)) {
    throw invalid(`${path} sets no limit; give at least one of ${LIMIT_WINDOWS.join(', ')}.`);
  }
  return Object.freeze(set) as unknown as LimitSet;
}

/** `spam.restrictAfter`: a count of spam messages within an hour or a day, and what it does. */
function restrictAfter(input: unknown): SpamRestrictAfter | null {
  if (input === undefined || input === null) return null;
  const value = record(input, 'spam.restrictAfter', ['count', 'window', 'action']);
  if (value.count === undefined || value.window === undefined) throw invalid('spam.restrictAfter needs count (spam messages) and window (\'hour\' or \'day\').');
  return {
    count: integer(value.count, 'spam.restrictAfter.count', 1, MAX_SPAM_COUNT),
    window: oneOf(value.window, 'spam.restrictAfter.window', ['hour', 'day'] as const, 'day'),
    action: oneOf(value.action, 'spam.restrictAfter.action', ['block-user-for-today', 'block-user'] as const, 'block-user-for-today'),
  };
}

/** `tenantLimits`: the tenant's external recipients per sliding 24 hours. */
function tenantLimits(input: unknown): Policy['tenantLimits'] {
  if (input === undefined || input === null) return null;
  const value = record(input, 'tenantLimits', ['externalRecipientsPerDay']);
  if (value.externalRecipientsPerDay === undefined) throw invalid('tenantLimits needs externalRecipientsPerDay (external recipients per 24 hours for the whole tenant).');
  return { externalRecipientsPerDay: integer(value.externalRecipientsPerDay, 'tenantLimits.externalRecipientsPerDay', 1, MAX_LIMIT) };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/**
 * Validates a policy once and returns it normalised and frozen: accepted domains in lowercase
 * A-labels, limits as an array of named sets, every default filled in. Pass the result to
 * `decidePool` (a plain object works too, but is validated on every call).
 *
 * @throws {OutboundPoolsError} `invalid-policy`, naming the setting and what it accepts.
 */
export function createPolicy(input: PolicyInput | Policy = {}): Policy {
  if (isPolicy(input)) return input;
  const value = record(input, 'policy', [
    'acceptedDomains', 'limits', 'overLimit', 'autoForwarding', 'spam', 'tenantLimits', 'relay', 'dns', 'pools', 'deadlines', 'onProviderFailure',
  ]);
  const rawLimits = value.limits === undefined ? [] : Array.isArray(value.limits) ? value.limits : [value.limits];
  const limits = rawLimits.map(limitSet);
  const names = new Set<string>();
  for (const set of limits) {
    if (names.has(set.name)) throw invalid(`Two limit sets are named ${show(set.name)}; names must differ.`);
    names.add(set.name);
  }
  let recipientsPerMessage: Policy['recipientsPerMessage'] = null;
  for (const set of limits) {
    if (set.recipientsPerMessage !== undefined && (recipientsPerMessage === null || set.recipientsPerMessage < recipientsPerMessage.limit)) {
      recipientsPerMessage = { limit: set.recipientsPerMessage, set: set.name };
    }
  }

  const spam = record(value.spam, 'spam', ['threshold', 'blockCategories', 'restrictAfter']);
  if (spam.threshold !== undefined && (typeof spam.threshold !== 'number' || !Number.isFinite(spam.threshold))) {
    throw invalid(`spam.threshold must be a finite number, got ${show(spam.threshold)}.`);
  }
  const relay = record(value.relay, 'relay', ['dkim', 'alignment', 'trustedArcSealers']);
  if (relay.dkim !== undefined && typeof relay.dkim !== 'boolean') throw invalid(`relay.dkim must be true or false, got ${show(relay.dkim)}.`);
  const dns = record(value.dns, 'dns', ['onError']);
  const pools = record(value.pools, 'pools', ['normal', 'high-risk', 'relay']);
  for (const [pool, name] of Object.entries(pools)) {
    if (typeof name !== 'string' || !/^[\x21-\x7e]{1,64}$/.test(name)) {
      throw invalid(`pools.${pool} must be a trace name of 1–64 printable ASCII characters without spaces, got ${show(name)}.`);
    }
  }
  const deadlines = record(value.deadlines, 'deadlines', Object.keys(DEFAULT_DEADLINES));
  const failure = record(value.onProviderFailure, 'onProviderFailure', ['rateLimiter', 'spam', 'authenticator']);
  const modes: readonly FailureMode[] = ['fail-open', 'defer'];

  const policy: Policy = {
    acceptedDomains: domainList(value.acceptedDomains, 'acceptedDomains', true),
    limits,
    recipientsPerMessage,
    overLimit: oneOf(value.overLimit, 'overLimit', ['block', 'high-risk'] as const, 'block'),
    autoForwarding: oneOf(value.autoForwarding, 'autoForwarding', ['on', 'off'] as const, 'on'),
    spam: {
      threshold: (spam.threshold as number | undefined) ?? null,
      blockCategories: stringList(spam.blockCategories, 'spam.blockCategories').map((c) => c.toLowerCase()),
      restrictAfter: restrictAfter(spam.restrictAfter),
    },
    tenantLimits: tenantLimits(value.tenantLimits),
    relay: {
      dkim: (relay.dkim as boolean | undefined) ?? true,
      alignment: oneOf(relay.alignment, 'relay.alignment', ['relaxed', 'strict'] as const, 'relaxed'),
      trustedArcSealers: domainList(relay.trustedArcSealers, 'relay.trustedArcSealers', false),
    },
    dns: { onError: oneOf(dns.onError, 'dns.onError', ['ignore', 'defer', 'high-risk'] as const, 'ignore') },
    pools: { ...DEFAULT_POOL_NAMES, ...(pools as Partial<Record<Pool, string>>) },
    deadlines: Object.fromEntries(
      Object.entries(DEFAULT_DEADLINES).map(([key, fallback]) => [
        key,
        deadlines[key] === undefined ? fallback : integer(deadlines[key], `deadlines.${key}`, 1, MAX_DEADLINE_MS),
      ]),
    ) as unknown as Policy['deadlines'],
    onProviderFailure: {
      rateLimiter: oneOf(failure.rateLimiter, 'onProviderFailure.rateLimiter', modes, 'fail-open'),
      spam: oneOf(failure.spam, 'onProviderFailure.spam', modes, 'fail-open'),
      authenticator: oneOf(failure.authenticator, 'onProviderFailure.authenticator', modes, 'fail-open'),
    },
  };
  Object.defineProperty(policy, POLICY_BRAND, { value: true });
  // Checked for every recipient of every message: worked out once, kept out of sight.
  Object.defineProperty(policy, ACCEPTED, { value: Object.freeze(acceptedMatcher(policy.acceptedDomains)) });
  return deepFreeze(policy);
}

/** Whether `value` came from {@link createPolicy} (and so needs no validation). */
export function isPolicy(value: unknown): value is Policy {
  return typeof value === 'object' && value !== null && (value as { [POLICY_BRAND]?: boolean })[POLICY_BRAND] === true;
}

/**
 * Whether `domain` (lowercase A-labels) is one of the accepted domains: equal to an entry, or a
 * subdomain of a `*.` entry (`*.contoso.com` does not match `contoso.com`). A lookup per label of
 * `domain` however long the list, for a policy made by {@link createPolicy}.
 */
export function isAcceptedDomain(policy: Policy, domain: string): boolean {
  const accepts = (policy as { [ACCEPTED]?: AcceptedMatcher })[ACCEPTED] ?? acceptedMatcher(policy.acceptedDomains);
  return accepts(domain);
}

/** Whether a domain (lowercase A-labels) is accepted: one policy's list, worked out once. */
type AcceptedMatcher = (domain: string) => boolean;

/**
 * A few names are compared one by one (a set would hash every freshly parsed domain, and look up
 * each of its parents for the wildcards); more go in a set, so that a recipient costs the same
 * against 20 entries as against 30,000.
 */
const EXACT_LIST_MAX = 16;

/**
 * The matcher of a list of domains written as `acceptedDomains` are (lowercase A-labels, `*.`
 * for every subdomain): also the SRS socketmap's local domains. `*.contoso.com` matches any name
 * that ends with `.contoso.com`, not `contoso.com` itself. Many wildcards are matched by looking
 * up each parent of the name (`.b.contoso.com`, `.contoso.com`, `.com`) in a set: a lookup per
 * label, whatever the number of wildcards.
 * @internal
 */
export function acceptedMatcher(acceptedDomains: readonly string[]): AcceptedMatcher {
  const exact: string[] = [];
  const suffixes: string[] = []; // `.contoso.com` for `*.contoso.com`
  let longest = 0;
  for (const entry of acceptedDomains) {
    if (entry.startsWith('*.')) {
      suffixes.push(entry.slice(1));
      longest = Math.max(longest, entry.length - 1);
    } else exact.push(entry);
  }
  const exactSet = exact.length > EXACT_LIST_MAX ? new Set(exact) : null;
  const suffixSet = suffixes.length > EXACT_LIST_MAX ? new Set(suffixes) : null;
  // A closure: what it matches against cannot be reached, let alone changed, from the policy.
  return (domain) => {
    if (exactSet === null ? exact.includes(domain) : exactSet.has(domain)) return true;
    if (suffixSet === null) {
      for (let i = 0; i < suffixes.length; i++) if (domain.endsWith(suffixes[i]!)) return true;
      return false;
    }
    // `domain.endsWith(suffix)` for a suffix that starts with a dot is `domain.slice(dot) ===
    // suffix` at one of the domain's dots; only dots within the longest suffix's length of the
    // end can be that one, which also bounds the work on a hostile name with thousands of labels.
    for (let dot = domain.indexOf('.', Math.max(0, domain.length - longest)); dot !== -1; dot = domain.indexOf('.', dot + 1)) {
      if (suffixSet.has(domain.slice(dot))) return true;
    }
    return false;
  };
}
