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
  const spf = object(value, what);
  const domain = optionalString(spf.domain, `${what}.domain`);
  const checked = result<SpfResult>(spf.result, SPF_RESULTS, `${what}.result`);
  return domain === undefined ? { result: checked } : { result: checked, domain };
}

function dkimList(value: unknown, what: string): readonly DkimVerdict[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) fail(`${what} is not an array`);
  return items(value).map((item, index) => {
    const signature = object(item, `${what}[${index}]`);
    if (typeof signature.domain !== 'string') fail(`${what}[${index}].domain is not a string`);
    const selector = optionalString(signature.selector, `${what}[${index}].selector`);
    return {
      result: result(signature.result, AUTH_RESULTS, `${what}[${index}].result`),
      domain: signature.domain,
      ...(selector === undefined ? {} : { selector }),
    };
  });
}

/** Checks an authentication verdict. */
export function checkAuthentication(value: unknown): AuthenticationVerdict {
  const verdict = object(value, 'the authentication verdict');
  const out: { -readonly [K in keyof AuthenticationVerdict]: AuthenticationVerdict[K] } = {};
  const spfVerdict = spf(verdict.spf, 'spf');
  if (spfVerdict !== undefined) out.spf = spfVerdict;
  const dkim = dkimList(verdict.dkim, 'dkim');
  if (dkim !== undefined) out.dkim = dkim;
  if (verdict.arc !== undefined) {
    const arc = object(verdict.arc, 'arc');
    const sealer = optionalString(arc.sealer, 'arc.sealer');
    const arcSpf = spf(arc.spf, 'arc.spf');
    const arcDkim = dkimList(arc.dkim, 'arc.dkim');
    out.arc = {
      result: result(arc.result, AUTH_RESULTS, 'arc.result'),
      ...(sealer === undefined ? {} : { sealer }),
      ...(arcSpf === undefined ? {} : { spf: arcSpf }),
      ...(arcDkim === undefined ? {} : { dkim: arcDkim }),
    };
  }
  if (verdict.ingress !== undefined) {
    const hop = object(verdict.ingress, 'ingress');
    const ip = optionalString(hop.ip, 'ingress.ip');
    const helo = optionalString(hop.helo, 'ingress.helo');
    if (hop.source !== 'connection' && !(typeof hop.source === 'number' && Number.isInteger(hop.source) && hop.source >= 0)) {
      fail("ingress.source is not 'connection' or a Received index");
    }
    out.ingress = { source: hop.source as 'connection' | number, ...(ip === undefined ? {} : { ip }), ...(helo === undefined ? {} : { helo }) };
  }
  if (verdict.dmarc !== undefined) {
    const dmarc = object(verdict.dmarc, 'dmarc');
    const domain = optionalString(dmarc.domain, 'dmarc.domain');
    out.dmarc = { result: result(dmarc.result, AUTH_RESULTS, 'dmarc.result'), ...(domain === undefined ? {} : { domain }) };
  }
  return out;
}

/** Checks a spam verdict. */
export function checkSpam(value: unknown): SpamVerdict {
  const verdict = object(value, 'the spam verdict');
  const out: { -readonly [K in keyof SpamVerdict]: SpamVerdict[K] } = {};
  if (verdict.score !== undefined) {
    if (typeof verdict.score !== 'number' || !Number.isFinite(verdict.score)) fail(`score is not a finite number (${show(verdict.score)})`);
    out.score = verdict.score;
  }
  if (verdict.isSpam !== undefined) {
    if (typeof verdict.isSpam !== 'boolean') fail('isSpam is not a boolean');
    out.isSpam = verdict.isSpam;
  }
  if (verdict.categories !== undefined) {
    if (!Array.isArray(verdict.categories) || !items(verdict.categories).every((c) => typeof c === 'string')) fail('categories is not an array of strings');
    out.categories = (verdict.categories as string[]).map((c) => c.toLowerCase());
  }
  if (out.score === undefined && out.isSpam === undefined && out.categories === undefined) {
    fail('it has none of score, isSpam, categories');
  }
  return out;
}

function restriction(value: unknown): Restriction | null {
  if (value === null || value === undefined) return null;
  const r = object(value, 'restriction');
  if (r.until !== null && (typeof r.until !== 'string' || Number.isNaN(Date.parse(r.until)))) fail('restriction.until is not an ISO date or null');
  const reason = optionalString(r.reason, 'restriction.reason');
  // The usual answer of a limiter that predates since and cause: nothing more to read.
  if (r.since === undefined && r.cause === undefined) return { until: r.until as string | null, ...(reason === undefined ? {} : { reason }) };
  const since = optionalString(r.since, 'restriction.since');
  if (since !== undefined && Number.isNaN(Date.parse(since))) fail('restriction.since is not an ISO date');
  const cause = r.cause === undefined ? undefined : restrictionCause(r.cause);
  return {
    until: r.until as string | null,
    ...(reason === undefined ? {} : { reason }),
    ...(since === undefined ? {} : { since }),
    ...(cause === undefined ? {} : { cause }),
  };
}

const SPAM_WINDOWS = new Set(['hour', 'day']);

/** Why a sender was restricted: a limit, spam, or an administrator. */
function restrictionCause(value: unknown): RestrictionCause {
  const cause = object(value, 'restriction.cause');
  switch (cause.kind) {
    case 'admin':
      return { kind: 'admin' };
    case 'limit':
      if (typeof cause.window !== 'string' || !LIMIT_WINDOWS.has(cause.window)) fail('restriction.cause.window is not a limit window');
      if (typeof cause.set !== 'string') fail('restriction.cause.set is not a string');
      return { kind: 'limit', window: cause.window as LimitBreach['window'], set: cause.set };
    case 'spam':
      if (typeof cause.count !== 'number' || !Number.isFinite(cause.count)) fail('restriction.cause.count is not a number');
      if (typeof cause.window !== 'string' || !SPAM_WINDOWS.has(cause.window)) fail("restriction.cause.window is not 'hour' or 'day'");
      return { kind: 'spam', count: cause.count, window: cause.window as 'hour' | 'day' };
    default:
      return fail(`restriction.cause.kind is not limit, spam or admin (${show(cause.kind)})`);
  }
}

/** The tenant's cap, breached (rule 11): absent and null mean none. */
function tenantBreach(value: unknown): TenantBreach | null {
  if (value === null || value === undefined) return null;
  const breach = object(value, 'tenantBreach');
  if (typeof breach.tenant !== 'string') fail('tenantBreach.tenant is not a string');
  for (const key of ['limit', 'used'] as const) {
    if (typeof breach[key] !== 'number' || !Number.isFinite(breach[key])) fail(`tenantBreach.${key} is not a number`);
  }
  return { tenant: breach.tenant, limit: breach.limit as number, used: breach.used as number };
}

/** Checks a rate limiter's answer to a spam report (`reportSpam`). */
export function checkSpamReport(value: unknown): SpamReportResult {
  const report = object(value, 'the spam report answer');
  if (typeof report.count !== 'number' || !Number.isFinite(report.count)) fail('count is not a number');
  return { count: report.count, restriction: restriction(report.restriction) };
}

/** Checks a rate limiter's answer. */
export function checkConsumeResult(value: unknown): ConsumeResult {
  const verdict = object(value, 'the rate limiter answer');
  const result = consumeResult(verdict);
  // A retry (its id counted before, nothing counted now) says so: the decision refunds nothing.
  return verdict.retry === true ? { ...result, retry: true } : result;
}

function consumeResult(verdict: Record<string, unknown>): ConsumeResult {
  if (!Array.isArray(verdict.breaches)) fail('breaches is not an array');
  if (typeof verdict.counted !== 'boolean') fail('counted is not a boolean');
  // A tenant over its cap (rule 11), when the limiter says so; otherwise the result has no such field.
  const tenant = verdict.tenantBreach === undefined || verdict.tenantBreach === null ? null : tenantBreach(verdict.tenantBreach);
  // The usual answer has no breach: nothing to copy.
  if (verdict.breaches.length === 0) {
    return tenant === null
      ? { restriction: restriction(verdict.restriction), breaches: NO_BREACHES, counted: verdict.counted }
      : { restriction: restriction(verdict.restriction), breaches: NO_BREACHES, tenantBreach: tenant, counted: verdict.counted };
  }
  const breaches = items(verdict.breaches).map((item, index): LimitBreach => {
    const breach = object(item, `breaches[${index}]`);
    if (typeof breach.window !== 'string' || !LIMIT_WINDOWS.has(breach.window)) fail(`breaches[${index}].window is not a limit window`);
    if (typeof breach.action !== 'string' || !LIMIT_ACTIONS.has(breach.action)) fail(`breaches[${index}].action is not a limit action`);
    for (const key of ['limit', 'used'] as const) {
      if (typeof breach[key] !== 'number' || !Number.isFinite(breach[key])) fail(`breaches[${index}].${key} is not a number`);
    }
    if (typeof breach.set !== 'string') fail(`breaches[${index}].set is not a string`);
    return breach as unknown as LimitBreach;
  });
  return tenant === null
    ? { restriction: restriction(verdict.restriction), breaches, counted: verdict.counted }
    : { restriction: restriction(verdict.restriction), breaches, tenantBreach: tenant, counted: verdict.counted };
}

/** Checks the answer of `restriction()` (null, or a restriction). */
export function checkRestriction(value: unknown): Restriction | null {
  return restriction(value);
}

/** Checks a sender-domain verdict given on the message or computed. */
export function checkSenderDomain(value: unknown): SenderDomainVerdict {
  const verdict = object(value, 'the sender domain verdict');
  if (typeof verdict.domain !== 'string' || typeof verdict.receivesMail !== 'boolean') fail('it needs domain and receivesMail');
  if (!['mx', 'a', 'aaaa', 'null-mx', 'no-records'].includes(verdict.basis as string)) fail('basis is not mx, a, aaaa, null-mx or no-records');
  return verdict as unknown as SenderDomainVerdict;
}
