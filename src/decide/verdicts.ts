// Providers may return garbage. Every verdict is checked against its shape before a rule reads
// it; what does not fit becomes a failed verdict ("returned garbage: …"), never a crash or a guess.

import type {
  AuthenticationVerdict,
  ConsumeResult,
  DkimVerdict,
  LimitBreach,
  Restriction,
  RestrictionCause,
  SpamReportResult,
  SpamVerdict,
  SpfResult,
  TenantBreach,
} from '../providers/types.js';
import { show } from '../errors.js';
import type { SenderDomainVerdict } from './types.js';

/** Thrown by the checks below; its message says what was wrong. */
export class GarbageError extends Error {
  override readonly name = 'GarbageError';
}

const SPF_RESULTS = new Set(['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror']);
const AUTH_RESULTS = new Set(['pass', 'fail', 'neutral', 'none', 'temperror', 'permerror', 'policy']);
const LIMIT_ACTIONS = new Set(['block', 'alert', 'block-user-for-today', 'block-user']);
const DOMAIN_BASES = new Set(['mx', 'a', 'aaaa', 'null-mx', 'no-records']);
const LIMIT_WINDOWS = new Set(['messagesPerMinute', 'internalRecipientsPerHour', 'externalRecipientsPerHour', 'recipientsPerDay']);

/** The answer of a limiter that found no breach, shared rather than made for every message. */
export const NO_BREACHES: readonly LimitBreach[] = Object.freeze([]);

function fail(message: string): never {
  throw new GarbageError(message);
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${what} is not an object`);
  return value as Record<string, unknown>;
}

function optionalString(value: unknown, what: string): string | undefined {
  if (value !== undefined && typeof value !== 'string') fail(`${what} is not a string`);
  return value as string | undefined;
}

function result<T extends string>(value: unknown, allowed: Set<string>, what: string): T {
  const text = typeof value === 'string' ? value.toLowerCase() : value;
  if (typeof text !== 'string' || !allowed.has(text)) fail(`${what} is not a known result (${show(value)})`);
  return text as T;
}

/** The items of an array, holes included (as undefined): `.map` would skip a hole silently. */
function items(value: unknown[]): unknown[] {
  return Array.from(value);
}

function spf(value: unknown, what: string): AuthenticationVerdict['spf'] {
  if (value === undefined) return undefined;
  const { domain: givenDomain, result: givenResult, identity } = object(value, what);
  const domain = optionalString(givenDomain, `${what}.domain`);
  const checked = result<SpfResult>(givenResult, SPF_RESULTS, `${what}.result`);
  if (identity !== undefined && identity !== 'mailfrom' && identity !== 'helo') fail(`${what}.identity is not 'mailfrom' or 'helo'`);
  // Literals, not spreads: every decision with a verdict passes here.
  if (identity === undefined) return domain === undefined ? { result: checked } : { result: checked, domain };
  return domain === undefined ? { result: checked, identity } : { result: checked, domain, identity };
}

function dkimList(value: unknown, what: string): readonly DkimVerdict[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) fail(`${what} is not an array`);
  return items(value).map((item, index) => {
    const { domain, selector: givenSelector, result: givenResult } = object(item, `${what}[${index}]`);
    if (typeof domain !== 'string') fail(`${what}[${index}].domain is not a string`);
    const selector = optionalString(givenSelector, `${what}[${index}].selector`);
    return {
      result: result(givenResult, AUTH_RESULTS, `${what}[${index}].result`),
      domain,
      ...(selector === undefined ? {} : { selector }),
    };
  });
}

/** Checks an authentication verdict. */
export function checkAuthentication(value: unknown): AuthenticationVerdict {
  const verdict = object(value, 'the authentication verdict');
  const { spf: givenSpf, dkim: givenDkim, arc: givenArc, ingress: givenIngress, dmarc: givenDmarc } = verdict;
  const out: { -readonly [K in keyof AuthenticationVerdict]: AuthenticationVerdict[K] } = {};
  const spfVerdict = spf(givenSpf, 'spf');
  if (spfVerdict !== undefined) out.spf = spfVerdict;
  const dkim = dkimList(givenDkim, 'dkim');
  if (dkim !== undefined) out.dkim = dkim;
  if (givenArc !== undefined) {
    const arc = object(givenArc, 'arc');
    const { sealer: givenSealer, spf: givenArcSpf, dkim: givenArcDkim, result: givenResult } = arc;
    const sealer = optionalString(givenSealer, 'arc.sealer');
    const arcSpf = spf(givenArcSpf, 'arc.spf');
    const arcDkim = dkimList(givenArcDkim, 'arc.dkim');
    out.arc = {
      result: result(givenResult, AUTH_RESULTS, 'arc.result'),
      ...(sealer === undefined ? {} : { sealer }),
      ...(arcSpf === undefined ? {} : { spf: arcSpf }),
      ...(arcDkim === undefined ? {} : { dkim: arcDkim }),
    };
  }
  if (givenIngress !== undefined) {
    const { ip: givenIp, helo: givenHelo, source } = object(givenIngress, 'ingress');
    const ip = optionalString(givenIp, 'ingress.ip');
    const helo = optionalString(givenHelo, 'ingress.helo');
    if (source !== 'connection' && !(typeof source === 'number' && Number.isInteger(source) && source >= 0)) {
      fail("ingress.source is not 'connection' or a Received index");
    }
    out.ingress = { source, ...(ip === undefined ? {} : { ip }), ...(helo === undefined ? {} : { helo }) };
  }
  if (givenDmarc !== undefined) {
    const { domain: givenDomain, result: givenResult } = object(givenDmarc, 'dmarc');
    const domain = optionalString(givenDomain, 'dmarc.domain');
    out.dmarc = { result: result(givenResult, AUTH_RESULTS, 'dmarc.result'), ...(domain === undefined ? {} : { domain }) };
  }
  return out;
}

/** Checks a spam verdict. */
export function checkSpam(value: unknown): SpamVerdict {
  const { score, isSpam, categories } = object(value, 'the spam verdict');
  const out: { -readonly [K in keyof SpamVerdict]: SpamVerdict[K] } = {};
  if (score !== undefined) {
    if (typeof score !== 'number' || !Number.isFinite(score)) fail(`score is not a finite number (${show(score)})`);
    out.score = score;
  }
  if (isSpam !== undefined) {
    if (typeof isSpam !== 'boolean') fail('isSpam is not a boolean');
    out.isSpam = isSpam;
  }
  if (categories !== undefined) {
    const names = Array.isArray(categories) ? items(categories) : null;
    if (names === null || !names.every((c) => typeof c === 'string')) fail('categories is not an array of strings');
    out.categories = (names as string[]).map((c) => c.toLowerCase());
  }
  if (out.score === undefined && out.isSpam === undefined && out.categories === undefined) {
    fail('it has none of score, isSpam, categories');
  }
  return out;
}

function restriction(value: unknown): Restriction | null {
  if (value === null || value === undefined) return null;
  const { until, reason: givenReason, since: givenSince, cause: givenCause } = object(value, 'restriction');
  if (until !== null && (typeof until !== 'string' || Number.isNaN(Date.parse(until)))) fail('restriction.until is not an ISO date or null');
  const reason = optionalString(givenReason, 'restriction.reason');
  // The usual answer of a limiter that predates since and cause: nothing more to read.
  if (givenSince === undefined && givenCause === undefined) return { until, ...(reason === undefined ? {} : { reason }) };
  const since = optionalString(givenSince, 'restriction.since');
  if (since !== undefined && Number.isNaN(Date.parse(since))) fail('restriction.since is not an ISO date');
  const cause = givenCause === undefined ? undefined : restrictionCause(givenCause);
  return {
    until,
    ...(reason === undefined ? {} : { reason }),
    ...(since === undefined ? {} : { since }),
    ...(cause === undefined ? {} : { cause }),
  };
}

const SPAM_WINDOWS = new Set(['hour', 'day']);

/** Why a sender was restricted: a limit, spam, or an administrator. */
function restrictionCause(value: unknown): RestrictionCause {
  const { kind, window, set, count } = object(value, 'restriction.cause');
  switch (kind) {
    case 'admin':
      return { kind: 'admin' };
    case 'limit':
      if (typeof window !== 'string' || !LIMIT_WINDOWS.has(window)) fail('restriction.cause.window is not a limit window');
      if (typeof set !== 'string') fail('restriction.cause.set is not a string');
      return { kind: 'limit', window: window as LimitBreach['window'], set };
    case 'spam':
      if (typeof count !== 'number' || !Number.isFinite(count)) fail('restriction.cause.count is not a number');
      if (typeof window !== 'string' || !SPAM_WINDOWS.has(window)) fail("restriction.cause.window is not 'hour' or 'day'");
      return { kind: 'spam', count, window: window as 'hour' | 'day' };
    default:
      return fail(`restriction.cause.kind is not limit, spam or admin (${show(kind)})`);
  }
}

/** The tenant's cap, breached (rule 11): absent and null mean none. */
function tenantBreach(value: unknown): TenantBreach | null {
  if (value === null || value === undefined) return null;
  const { tenant, limit, used } = object(value, 'tenantBreach');
  if (typeof tenant !== 'string') fail('tenantBreach.tenant is not a string');
  if (typeof limit !== 'number' || !Number.isFinite(limit)) fail('tenantBreach.limit is not a number');
  if (typeof used !== 'number' || !Number.isFinite(used)) fail('tenantBreach.used is not a number');
  return { tenant, limit, used };
}

/** Checks a rate limiter's answer to a spam report (`reportSpam`). */
export function checkSpamReport(value: unknown): SpamReportResult {
  const { count, restriction: given } = object(value, 'the spam report answer');
  if (typeof count !== 'number' || !Number.isFinite(count)) fail('count is not a number');
  return { count, restriction: restriction(given) };
}

/** Checks a rate limiter's answer. */
export function checkConsumeResult(value: unknown): ConsumeResult {
  const verdict = object(value, 'the rate limiter answer');
  const result = consumeResult(verdict);
  // A retry (its id counted before, nothing counted now) says so: the decision refunds nothing.
  return verdict.retry === true ? { ...result, retry: true } : result;
}

// Each field of a provider's answer is read once, into an object of our own: a getter may
// answer differently the second time (or throw), and the rules read the copy, never the answer.
function consumeResult(verdict: Record<string, unknown>): ConsumeResult {
  const { breaches: given, counted, tenantBreach: givenTenant, restriction: givenRestriction, imposed: givenImposed } = verdict;
  if (!Array.isArray(given)) fail('breaches is not an array');
  if (typeof counted !== 'boolean') fail('counted is not a boolean');
  // A tenant over its cap (rule 11), when the limiter says so; otherwise the result has no such field.
  const tenant = tenantBreach(givenTenant);
  const restricted = restriction(givenRestriction);
  // The usual answer has no breach: nothing to copy.
  const breaches = given.length === 0 ? NO_BREACHES : items(given).map(limitBreach);
  // Absent: the limiter does not say (rules.ts reads its breaches); null: it imposed nothing.
  if (givenImposed !== undefined) {
    const imposed = restriction(givenImposed);
    return tenant === null ? { restriction: restricted, breaches, counted, imposed } : { restriction: restricted, breaches, tenantBreach: tenant, counted, imposed };
  }
  return tenant === null ? { restriction: restricted, breaches, counted } : { restriction: restricted, breaches, tenantBreach: tenant, counted };
}

function limitBreach(item: unknown, index: number): LimitBreach {
  const { window, action, limit, used, set } = object(item, `breaches[${index}]`);
  if (typeof window !== 'string' || !LIMIT_WINDOWS.has(window)) fail(`breaches[${index}].window is not a limit window`);
  if (typeof action !== 'string' || !LIMIT_ACTIONS.has(action)) fail(`breaches[${index}].action is not a limit action`);
  if (typeof limit !== 'number' || !Number.isFinite(limit)) fail(`breaches[${index}].limit is not a number`);
  if (typeof used !== 'number' || !Number.isFinite(used)) fail(`breaches[${index}].used is not a number`);
  if (typeof set !== 'string') fail(`breaches[${index}].set is not a string`);
  return { window: window as LimitBreach['window'], limit, used, set, action: action as LimitBreach['action'] };
}

/** Checks the answer of `restriction()` (null, or a restriction). */
export function checkRestriction(value: unknown): Restriction | null {
  return restriction(value);
}

/** Checks a sender-domain verdict given on the message or computed. */
export function checkSenderDomain(value: unknown): SenderDomainVerdict {
  const { domain, receivesMail, basis } = object(value, 'the sender domain verdict');
  if (typeof domain !== 'string' || typeof receivesMail !== 'boolean') fail('it needs domain and receivesMail');
  if (typeof basis !== 'string' || !DOMAIN_BASES.has(basis)) fail('basis is not mx, a, aaaa, null-mx or no-records');
  return { domain, receivesMail, basis: basis as SenderDomainVerdict['basis'] };
}
