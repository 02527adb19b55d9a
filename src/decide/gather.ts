// decidePool: check the input, gather the verdicts the rules need — from the message where they
// were precomputed, else from the providers, concurrently, each under its deadline — then apply
// the rules. Every provider fault (throw, reject, hang, garbage) becomes a failed verdict; the
// policy's fail modes decide what that means. Nothing here throws because a provider misbehaved.

import { normaliseDomain } from '../address.js';
import { describeThrown, OutboundPoolsError, quoteText, show } from '../errors.js';
import { checkMailHost, checkMailHostSync } from '../dns/mail-host.js';
import { createPolicy, isPolicy, type Policy, type PolicyInput } from '../policy.js';
import { plainRecord } from '../records.js';
import { isPolicySet, selectPolicy, type PolicySet } from '../policy-set.js';
import type { ConsumeRequest, ConsumeResult, ProviderMessage, Providers, RateLimiter, SpamReportResult, TenantLimitRequest } from '../providers/types.js';
import { envelopeOf, readMessage } from './envelope.js';
import { applyRules, isBlockedForward, type RuleInput } from './rules.js';
import type { DecideContext, Decision, Envelope, OutboundMessage, SrsContext, Verdict, Verdicts } from './types.js';
import { ask, Call, Consultation, isPending, whenLate, type Pending } from './consultation.js';
import { checkAuthentication, checkConsumeResult, checkRestriction, checkSenderDomain, checkSpam, GarbageError } from './verdicts.js';
import { askSpamReport, awaitSpamReport, isReportableSpam, withSpamReport } from './spam-report.js';

/** The context, checked. */
export interface ResolvedContext {
  /** The policy; with a policy set, its default (the one that applies is chosen per message). */
  readonly policy: Policy;
  /** The scoped policies, when `context.policy` came from `createPolicySet`. */
  readonly policySet: PolicySet | undefined;
  readonly providers: Providers;
  readonly srs: SrsContext | undefined;
  readonly now: Date;
  readonly signal: AbortSignal | undefined;
}

function invalidContext(message: string): OutboundPoolsError {
  return new OutboundPoolsError('invalid-context', message);
}

const CONTEXT_KEYS = ['policy', 'providers', 'srs', 'now', 'signal'];
const PROVIDER_NAMES: readonly (keyof Providers)[] = ['dns', 'rateLimiter', 'spam', 'authenticator'];

/**
 * The type of `provider[name]`. A getter that throws, or a Proxy that does, reads as
 * `'function'`: that is a fault of the provider, which the call then reports as
 * `provider-failed` (SPEC §4: never a throw because a provider misbehaved).
 */
function methodType(provider: object, name: string): string {
  try {
    return typeof (provider as Record<string, unknown>)[name];
  } catch {
    return 'function';
  }
}

/** Whether `provider` is an object with methods `a` and (when given) `b`. */
function hasMethods(provider: unknown, a: string, b?: string): boolean {
  if (typeof provider !== 'object' || provider === null) return false;
  return methodType(provider, a) === 'function' && (b === undefined || methodType(provider, b) === 'function');
}

/** Whether `provider`'s optional methods `a` and `b` are functions where present. */
function optionalMethods(provider: object, a: string, b: string): boolean {
  const typeA = methodType(provider, a);
  const typeB = methodType(provider, b);
  return (typeA === 'undefined' || typeA === 'function') && (typeB === 'undefined' || typeB === 'function');
}

function badProvider(name: string, what: string): OutboundPoolsError {
  return invalidContext(`providers.${name} must be ${what}.`);
}

const NO_PROVIDERS: Providers = Object.freeze({});

// Checked on every decidePool call (createDecider checks once). The providers are read once,
// into an object of our own: a getter on the caller's object cannot answer differently later.
function checkProviders(value: unknown): Providers {
  if (value === undefined) return NO_PROVIDERS;
  if (typeof value !== 'object' || value === null) throw invalidContext(`providers must be an object, got ${show(value)}.`);
  const providers: { -readonly [K in keyof Providers]: unknown } = {};
  let names: string[];
  try {
    names = Object.keys(value);
  } catch (error) {
    throw invalidContext(`providers cannot be read (${describeThrown(error)}).`);
  }
  for (const name of names) {
    let provider: unknown;
    try {
      provider = (value as Record<string, unknown>)[name];
    } catch (error) {
      throw invalidContext(`providers.${name} cannot be read (${describeThrown(error)}).`);
    }
    switch (name) {
      case 'dns':
        if (provider !== undefined && typeof provider !== 'function') throw badProvider(name, 'a function (name, rrtype) => Promise, like dns.promises.resolve');
        break;
      case 'rateLimiter':
        if (
          provider !== undefined &&
          (!hasMethods(provider, 'consume', 'restriction') ||
            !optionalMethods(provider as object, 'consumeSync', 'restrictionSync') ||
            !optionalMethods(provider as object, 'reportSpam', 'reportSpamSync') ||
            !optionalMethods(provider as object, 'refund', 'refundSync'))
        ) {
          throw badProvider(name, 'an object with consume() and restriction() (and, optionally, consumeSync() and restrictionSync(); reportSpam() and reportSpamSync(); refund() and refundSync())');
        }
        break;
      case 'spam':
        if (provider !== undefined && !hasMethods(provider, 'classify')) throw badProvider(name, 'an object with classify()');
        break;
      case 'authenticator':
        if (provider !== undefined && !hasMethods(provider, 'authenticate')) throw badProvider(name, 'an object with authenticate()');
        break;
      default:
        throw invalidContext(`Unknown provider ${show(name)}; known: ${PROVIDER_NAMES.join(', ')}.`);
    }
    if (provider !== undefined) providers[name] = provider;
  }
  return providers as Providers;
}


/** Checks a decide context once; the sync core and decidePool share it. */
export function resolveContext(context: DecideContext): ResolvedContext {
  if (typeof context !== 'object' || context === null) throw invalidContext(`The context must be an object, got ${show(context)}.`);
  let given: DecideContext;
  try {
    for (const key in context) {
      if (!CONTEXT_KEYS.includes(key)) throw invalidContext(`Unknown context field ${show(key)}; known: ${CONTEXT_KEYS.join(', ')}.`);
    }
    // Each field read once (a getter may answer differently, or throw).
    const { policy, providers, srs, now, signal } = context;
    given = { policy, providers, srs, now, signal } as DecideContext;
  } catch (error) {
    if (error instanceof OutboundPoolsError) throw error;
    throw invalidContext(`The context cannot be read (${describeThrown(error)}).`);
  }
  const policySet = isPolicySet(given.policy) ? given.policy : undefined;
  let policy: Policy;
  try {
    policy = policySet !== undefined ? policySet.default : isPolicy(given.policy) ? given.policy : createPolicy(given.policy as PolicyInput);
  } catch (error) {
    if (error instanceof OutboundPoolsError) throw error;
    throw new OutboundPoolsError('invalid-policy', `The policy cannot be read (${describeThrown(error)}).`);
  }
  return { policy, policySet, providers: checkProviders(given.providers), srs: checkSrs(given.srs), now: checkNow(given.now), signal: checkSignal(given.signal) };
}

const SRS_SHAPE = 'srs must be { rewriter: new Srs({ secret }), domain: "forwarding.example" }';

/** The SRS context, read once into an object of our own; the rewriter is called later, as `rewriter.forward(…)`. */
function checkSrs(srs: unknown): SrsContext | undefined {
  if (srs === undefined) return undefined;
  if (typeof srs !== 'object' || srs === null) throw invalidContext(`${SRS_SHAPE}, got ${show(srs)}.`);
  let rewriter: unknown;
  let domain: unknown;
  try {
    ({ rewriter, domain } = srs as Record<string, unknown>);
  } catch (error) {
    throw invalidContext(`srs cannot be read (${describeThrown(error)}).`);
  }
  if (typeof rewriter !== 'object' || rewriter === null || methodType(rewriter, 'forward') !== 'function') throw invalidContext(`${SRS_SHAPE}: rewriter has no forward().`);
  if (typeof domain !== 'string' || normaliseDomain(domain) === null) throw invalidContext(`${SRS_SHAPE}: domain ${show(domain)} is not a domain name.`);
  return { rewriter: rewriter as SrsContext['rewriter'], domain };
}

/** Precomputed verdicts on the message are the caller's input: garbage there is an input error. */
function precomputed<T>(value: unknown, field: string, check: (value: unknown) => T): Verdict<T> | undefined {
  if (value === undefined) return undefined;
  try {
    return { state: 'given', value: check(value) };
  } catch (error) {
    if (error instanceof GarbageError) throw new OutboundPoolsError('invalid-message', `message.${field} is malformed: ${error.message}.`);
    throw new OutboundPoolsError('invalid-message', `message.${field} cannot be read (${describeThrown(error)}).`);
  }
}

const absent = (why: string) => Object.freeze({ state: 'absent', why } as const);

/**
 * Whether a provider method takes the AbortSignal: it declares a second parameter. Node's
 * AbortController costs more than a whole decision, so in-memory providers written as
 * `classify(message)` are spared it. (A method declared with rest parameters gets no signal.)
 */
function wantsSignal(provider: object, name: string): boolean {
  try {
    const method = (provider as Record<string, unknown>)[name];
    return typeof method === 'function' && method.length >= 2;
  } catch {
    return false; // the call reads it again, fails, and reports it
  }
}

type Answer = Verdict<unknown> | Pending;

// Why a verdict was not asked for; shared (frozen) rather than made for every message.
const ABSENT = {
  noLimiter: absent('no rate limiter configured'),
  noResolver: absent('no DNS resolver configured'),
  noClassifier: absent('no spam classifier configured'),
  noAuthenticator: absent('no authenticator configured'),
  ndrDomain: absent('not needed: an NDR goes to the high-risk pool whatever its domain'),
  ndrContent: absent('not needed: an NDR goes to the high-risk pool whatever its content'),
  notForward: absent('not needed: only forwards from outside the accepted domains are checked'),
} as const;

/** The message as the spam classifier and the authenticator see it, with the decision's clock. */
function providerMessage(message: OutboundMessage, now: Date): ProviderMessage {
  return new ForProviders(message, now);
}

/** A {@link ProviderMessage} made by `new` (see records.ts: providers keep it while the decision waits). */
const ForProviders = plainRecord<[message: OutboundMessage, now: Date], ProviderMessage>(function (message, now) {
  this.raw = message.headers;
  this.mailFrom = message.mailFrom;
  this.rcptTo = message.rcptTo;
  this.now = now;
  if (message.submitter !== undefined) this.submitter = message.submitter;
  if (message.queueId !== undefined) this.queueId = message.queueId;
  if (message.ingress !== undefined) this.ingress = message.ingress;
});

/**
 * What the rate limiter is asked to count for the message, or null when it is asked only whether
 * rule 1 comes first: rules 10 and 2 refuse the message whatever the limiter says, once rule 1
 * has not, so it is not counted (a refused message uses up no allowance, and a blocked automatic
 * forward must not restrict its sender nor fill its tenant's cap). The decision keeps the
 * request: a refund ({@link refundIfRefused}) takes back exactly what it counted.
 */
function consumeRequestOf(envelope: Envelope, policy: Policy, now: Date): ConsumeRequest | null {
  const perMessage = policy.recipientsPerMessage;
  if (isBlockedForward(envelope, policy) || (perMessage !== null && envelope.recipients.length > perMessage.limit)) return null;
  if (envelope.tenant !== null) return tenantRequest(envelope, envelope.tenant, policy, now);
  return new Request(envelope, policy.limits, undefined, policy.overLimit === 'high-risk', now);
}

/**
 * A {@link ConsumeRequest}, made by `new` (see records.ts: the limiter's request waits with the
 * decision, and is kept for a refund); `messageId`, `tenant` and `countOverLimit` only when
 * there are: a message over the sender's limits that `overLimit: 'high-risk'` delivers is sent,
 * so it counts.
 */
const Request = plainRecord<[envelope: Envelope, limits: Policy['limits'], tenant: TenantLimitRequest | undefined, countOverLimit: boolean, now: Date], ConsumeRequest>(function (envelope, limits, tenant, countOverLimit, now) {
  this.key = envelope.limitKey;
  if (envelope.messageId !== null) this.messageId = envelope.messageId;
  this.internalRecipients = envelope.internalRecipients;
  this.externalRecipients = envelope.externalRecipients;
  this.limits = limits;
  if (tenant !== undefined) this.tenant = tenant;
  if (countOverLimit) this.countOverLimit = true;
  this.now = now;
});

/** Asks the rate limiter: count the message (`request`), or (null: rule 10 or 2 refuses it anyway) only whether rule 1 comes first. */
function askLimiter(limiter: RateLimiter, envelope: Envelope, request: ConsumeRequest | null, now: Date, signal: AbortSignal | undefined): Answer {
  // A limiter that can answer at once (createMemoryRateLimiter) is asked without promises.
  // The methods are read inside the call: a getter that throws is the limiter's failure.
  if (request === null) {
    return ask(
      () => (limiter.restrictionSync === undefined ? limiter.restriction(envelope.limitKey, now) : limiter.restrictionSync(envelope.limitKey, now)),
      checkRestrictionOnly,
      false,
      signal,
    );
  }
  return ask(() => (limiter.consumeSync === undefined ? limiter.consume(request) : limiter.consumeSync(request)), checkConsumeResult, false, signal);
}

const ignore = (): void => {};

/**
 * The limiter calls a deadline cut off, by the failed verdict each became: their answer may still
 * come, and count a message the decision did not wait for (see {@link refundIfRefused}). Only
 * verdicts of such calls are put here; a WeakMap, so that a decision dropped takes its entry along.
 */
const lateLimits = new WeakMap<object, Call>();

/** Asks the limiter to take back what `request` counted; a throw or a rejection is ignored. */
function takeBack(limiter: RateLimiter, request: ConsumeRequest): void {
  try {
    // The methods are read inside the try: a getter that throws is the limiter's failure.
    const answer: unknown = limiter.refundSync === undefined ? limiter.refund?.(request) : limiter.refundSync(request);
    if (typeof (answer as { then?: unknown } | null)?.then === 'function') (answer as PromiseLike<void>).then(undefined, ignore);
  } catch {
    // The message stays counted; the decision does not depend on it.
  }
}

/**
 * Takes back what the late answer of a limiter call cut off counted, once it comes (the
 * consultation keeps its first answer, checked: garbage or a rejection takes nothing back).
 */
function takeBackWhenCounted(call: Call, limiter: RateLimiter, request: ConsumeRequest): void {
  whenLate(call, (verdict) => {
    if (verdict.state !== 'provided') return;
    const result = verdict.value as ConsumeResult;
    if (result.counted && result.retry !== true) takeBack(limiter, request);
  });
}

/**
 * Takes back what the rate limiter counted for a message the rules then blocked or deferred for
 * a reason of their own — a blocked spam category (rule 6), a DNS failure (rule 5) or a provider
 * failure with `defer`: a refused message uses up no allowance, neither the sender's windows nor
 * its tenant's cap, and its Message-ID is forgotten, so that the message sent again counts as a
 * new one rather than as a free retry (docs/limits.md). Nothing is taken back from a delivered
 * message (high-risk and relay included: it is sent, so it counts), nor when the limiter counted
 * nothing (rules 1, 3 and 11 refused it, it answered a retry, or it was asked for a restriction
 * only). When the limiter's deadline cut it off, its answer may still come and count the
 * message: it is taken back then, if the answer says it counted. A synchronous refund is made at
 * once; a promise is not waited for, and its rejection, like a throw, is ignored: the decision
 * stands either way. A limiter without `refund` keeps the count.
 */
function refundIfRefused(decision: Decision, limiter: RateLimiter | undefined, request: ConsumeRequest | null): Decision {
  if (decision.action === 'deliver' || request === null || limiter === undefined) return decision;
  const limits = decision.verdicts.limits;
  if (limits.state === 'failed') {
    // Cut off by its deadline, the limiter may still count the message: taken back when it does.
    const late = lateLimits.get(limits);
    if (late !== undefined) takeBackWhenCounted(late, limiter, request);
    return decision;
  }
  if (limits.state !== 'provided' || !limits.value.counted || limits.value.retry === true) return decision;
  takeBack(limiter, request);
  return decision;
}

/** The request of a message with a tenant (rule 11): it counts for the tenant too, capped when the policy says so. */
function tenantRequest(envelope: Envelope, key: string, policy: Policy, now: Date): ConsumeRequest {
  return new Request(envelope, policy.limits, new Tenant(key, policy.tenantLimits?.externalRecipientsPerDay), policy.overLimit === 'high-risk', now);
}

/** A {@link TenantLimitRequest}, made by `new` (see records.ts); the cap only when the policy sets one. */
const Tenant = plainRecord<[key: string, externalRecipientsPerDay: number | undefined], TenantLimitRequest>(function (key, externalRecipientsPerDay) {
  this.key = key;
  if (externalRecipientsPerDay !== undefined) this.externalRecipientsPerDay = externalRecipientsPerDay;
});

function checkRestrictionOnly(value: unknown): ConsumeResult {
  return { restriction: checkRestriction(value), breaches: [], counted: false };
}

/**
 * Gathers every verdict the rules may read: all providers are called at once, and only when one
 * answers with a promise is there anything to wait for.
 */
function gather(
  message: OutboundMessage,
  envelope: Envelope,
  ctx: ResolvedContext,
  request: ConsumeRequest | null,
  now: Date,
  signal: AbortSignal | undefined,
): Verdicts | Promise<Verdicts> {
  const { policy, providers } = ctx;
  const spamGiven = precomputed(message.spam, 'spam', checkSpam);
  const authGiven = precomputed(message.authentication, 'authentication', checkAuthentication);
  const isNdr = envelope.ndr.isNdr;
  const sender = envelope.sender;
  // The deadlines count from here: a provider's synchronous work cannot be cut off, but it counts.
  // A monotonic clock: a step of the wall clock cannot stretch or cut a deadline.
  const start = performance.now();

  const limiter = providers.rateLimiter;
  const limits: Answer = limiter === undefined ? ABSENT.noLimiter : askLimiter(limiter, envelope, request, now, signal);
  const dns = providers.dns;
  const senderDomain: Answer =
    isNdr ? ABSENT.ndrDomain
    : dns === undefined || sender === null ? ABSENT.noResolver
    : ask(
        // A resolver that can answer at once (createStaticResolver) is asked without promises.
        () => (dns.lookupSync === undefined ? checkMailHost(dns, sender.domain) : checkMailHostSync(dns.lookupSync, sender.domain)),
        checkSenderDomain,
        false,
        signal,
      );
  const classifier = providers.spam;
  const authenticator = providers.authenticator;
  const askSpam = spamGiven === undefined && !isNdr && classifier !== undefined;
  const askAuth = authGiven === undefined && !isNdr && !envelope.senderAccepted && authenticator !== undefined;
  const forProviders = askSpam || askAuth ? providerMessage(message, now) : undefined;
  const spam: Answer =
    spamGiven ??
    (askSpam ? ask((s) => classifier.classify(forProviders!, s!), checkSpam, wantsSignal(classifier, 'classify'), signal)
    : isNdr ? ABSENT.ndrContent
    : ABSENT.noClassifier);
  const authentication: Answer =
    authGiven ??
    (askAuth ? ask((s) => authenticator.authenticate(forProviders!, s!), checkAuthentication, wantsSignal(authenticator, 'authenticate'), signal)
    : isNdr || envelope.senderAccepted ? ABSENT.notForward
    : ABSENT.noAuthenticator);

  if (!isPending(limits) && !isPending(senderDomain) && !isPending(spam) && !isPending(authentication)) {
    // Every provider answered at once: the decision needs no promise at all.
    return { limits, senderDomain, spam, authentication } as Verdicts;
  }
  const { deadlines } = policy;
  const consultation = new Consultation(deadlines.totalMs, signal, start);
  const slot = (answer: Answer, deadlineMs: number): Answer | Call => (isPending(answer) ? consultation.watch(answer, deadlineMs) : answer);
  // Four constants, not an array literal: they wait with the decision (see consultation.ts on
  // allocation-site pretenuring).
  const limitsSlot = slot(limits, deadlines.rateLimiterMs);
  const senderDomainSlot = slot(senderDomain, deadlines.dnsMs);
  const spamSlot = slot(spam, deadlines.spamMs);
  const authenticationSlot = slot(authentication, deadlines.authenticatorMs);
  const verdict = (answer: Answer | Call): Verdict<unknown> => (answer instanceof Call ? consultation.verdict(answer) : (answer as Verdict<unknown>));
  return consultation.settled().then(() => {
    const limitsVerdict = verdict(limitsSlot);
    if (limitsSlot instanceof Call && limitsSlot.cutOff) lateLimits.set(limitsVerdict, limitsSlot);
    return {
      limits: limitsVerdict,
      senderDomain: verdict(senderDomainSlot),
      spam: verdict(spamSlot),
      authentication: verdict(authenticationSlot),
    } as Verdicts;
  });
}

/** Per-call options of a decider made by {@link createDecider}. */
export interface DecideOptions {
  readonly now?: Date;
  readonly signal?: AbortSignal;
}

/** A decision function with its context checked once: see {@link createDecider}. */
export type Decider = (message: OutboundMessage, options?: DecideOptions) => Promise<Decision>;

/** One message under a policy set: the policy that applies to it, and its envelope read under that policy. */
interface Scoped {
  readonly ctx: ResolvedContext;
  readonly envelope: Envelope;
  readonly policyName: string;
}

/**
 * Chooses the scoped policy for a message. The sender is read under the default policy first;
 * when the chosen policy accepts other domains, the envelope is read again under it (its
 * internal and external recipients, and whether the sender is accepted, depend on them).
 */
function scoped(ctx: ResolvedContext, set: PolicySet, given: OutboundMessage): Scoped {
  const first = envelopeOf(given, ctx.policy);
  const { name, policy } = selectPolicy(set, { mailFrom: first.sender?.address ?? '', submitter: given.submitter, groups: first.groups });
  if (policy === ctx.policy) return { ctx, envelope: first, policyName: name };
  const sameDomains = policy.acceptedDomains.length === ctx.policy.acceptedDomains.length && policy.acceptedDomains.every((domain, i) => domain === ctx.policy.acceptedDomains[i]);
  return { ctx: { ...ctx, policy }, envelope: sameDomains ? first : envelopeOf(given, policy), policyName: name };
}

/** What the rules read; `policyName` only when a policy set chose one (a literal of one shape each way, no spread). */
function ruleInput(envelope: Envelope, verdicts: Verdicts, srs: SrsContext | undefined, now: Date, policyName: string | undefined): RuleInput {
  return policyName === undefined ? { envelope, verdicts, srs, now } : { envelope, verdicts, srs, now, policyName };
}

function decideWith(base: ResolvedContext, message: OutboundMessage, now: Date, signal: AbortSignal | undefined): Promise<Decision> {
  // Not an async function: when every provider answers at once, one resolved promise is all
  // the asynchrony a decision costs. Bad input still rejects rather than throws.
  try {
    const given = readMessage(message);
    let ctx = base;
    let envelope: Envelope;
    let policyName: string | undefined;
    if (base.policySet === undefined) {
      envelope = envelopeOf(given, base.policy);
    } else {
      ({ ctx, envelope, policyName } = scoped(base, base.policySet, given));
    }
    const { policy, srs } = ctx;
    const limiter = ctx.providers.rateLimiter;
    // Kept for a refund: the very request consume was given.
    const request = limiter === undefined ? null : consumeRequestOf(envelope, policy, now);
    // Only a policy that counts spam may need more time after the rules (the spam report).
    if (policy.spam.restrictAfter !== null) return decideReporting(ctx, given, envelope, request, now, signal, policyName);
    const verdicts = gather(given, envelope, ctx, request, now, signal);
    if (verdicts instanceof Promise) return verdicts.then((gathered) => refundIfRefused(applyRules(ruleInput(envelope, gathered, srs, now, policyName), policy), limiter, request));
    return Promise.resolve(refundIfRefused(applyRules(ruleInput(envelope, verdicts, srs, now, policyName), policy), limiter, request));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * {@link decideWith} under a policy with `spam.restrictAfter`: the rules decide, then a message
 * they sent to the high-risk pool as spam is reported to the rate limiter (src/decide/spam-report.ts),
 * at once through `reportSpamSync`, else under the rate limiter's deadline within what is left of
 * the total. Never rejects because the limiter misbehaved.
 */
function decideReporting(
  ctx: ResolvedContext,
  given: OutboundMessage,
  envelope: Envelope,
  request: ConsumeRequest | null,
  now: Date,
  signal: AbortSignal | undefined,
  policyName: string | undefined,
): Promise<Decision> {
  const start = performance.now();
  const { policy, srs } = ctx;
  const restrictAfter = policy.spam.restrictAfter!;
  const limiter = ctx.providers.rateLimiter;
  const report = (decision: Decision): Decision | Promise<Decision> => {
    // A refused message is refunded; only a delivered one is reported as spam.
    refundIfRefused(decision, limiter, request);
    if (limiter === undefined || !isReportableSpam(decision, policy)) return decision;
    const answer = askSpamReport(limiter, envelope, restrictAfter, now, signal);
    if (!isPending(answer)) return withSpamReport(decision, answer as Verdict<SpamReportResult>, envelope, restrictAfter);
    return awaitSpamReport(answer, policy, signal, performance.now() - start).then((verdict) => withSpamReport(decision, verdict, envelope, restrictAfter));
  };
  const verdicts = gather(given, envelope, ctx, request, now, signal);
  if (verdicts instanceof Promise) return verdicts.then((gathered) => report(applyRules(ruleInput(envelope, gathered, srs, now, policyName), policy)));
  return Promise.resolve(report(applyRules(ruleInput(envelope, verdicts, srs, now, policyName), policy)));
}

/** `value instanceof type`, false where asking throws (a revoked Proxy, a throwing getPrototypeOf trap). */
function isInstance(value: unknown, type: abstract new (...args: never[]) => unknown): boolean {
  try {
    return value instanceof type;
  } catch {
    return false;
  }
}

function checkNow(now: unknown): Date {
  if (now === undefined) return new Date();
  // Date.prototype.getTime throws on anything that is not a real Date, whatever its prototype says.
  let time: number;
  try {
    time = isInstance(now, Date) ? Date.prototype.getTime.call(now) : Number.NaN;
  } catch {
    time = Number.NaN;
  }
  if (Number.isNaN(time)) throw invalidContext(`now must be a valid Date, got ${show(now)}.`);
  return now as Date;
}

function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal !== undefined && !isInstance(signal, AbortSignal)) throw invalidContext('signal must be an AbortSignal.');
  return signal as AbortSignal | undefined;
}

/**
 * Decides which pool a message leaves through. Checks the input (throwing
 * `OutboundPoolsError` for bad input), gathers the verdicts — precomputed on the message or from
 * `context.providers`, concurrently, each under the policy's deadline — and applies the rules
 * of SPEC §3. No I/O of its own besides the providers; never mutates its arguments; never throws
 * or hangs because a provider misbehaved.
 */
export function decidePool(message: OutboundMessage, context: DecideContext = {}): Promise<Decision> {
  // Not async: an async function returning decideWith's promise would add two microtask turns.
  let ctx: ResolvedContext;
  try {
    ctx = resolveContext(context);
  } catch (error) {
    return Promise.reject(error);
  }
  return decideWith(ctx, message, ctx.now, ctx.signal);
}

/**
 * `decidePool` with the context (policy, providers, SRS) checked once, for an MTA that decides
 * many messages with the same setup. The clock and an abort signal can still be given per call.
 *
 * @example
 * ```ts
 * const decide = createDecider({ policy: createPolicy({ acceptedDomains: ['contoso.com'] }) });
 * const decision = await decide({ mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'] });
 * decision.pool;
 * // → 'normal'
 * ```
 */
export function createDecider(context: Omit<DecideContext, 'now' | 'signal'> = {}): Decider {
  const base = resolveContext(context);
  return (message, options) => {
    if (options === undefined) return decideWith(base, message, new Date(), undefined);
    // Bad options reject, as every bad input of decidePool does; nothing here throws.
    let now: Date;
    let signal: AbortSignal | undefined;
    try {
      ({ now, signal } = checkOptions(options));
    } catch (error) {
      return Promise.reject(error);
    }
    return decideWith(base, message, now, signal);
  };
}

const OPTION_KEYS = ['now', 'signal'];

/** A decider's per-call options, checked: an object with `now` and `signal`, both optional. */
function checkOptions(options: unknown): { now: Date; signal: AbortSignal | undefined } {
  let now: unknown;
  let signal: unknown;
  try {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw invalidContext(`The options of a decider must be an object { now?, signal? }, got ${show(options)}.`);
    }
    for (const key in options) {
      if (!OPTION_KEYS.includes(key)) throw invalidContext(`Unknown decider option ${show(key)}; known: ${OPTION_KEYS.join(', ')}.`);
    }
    ({ now, signal } = options as Record<string, unknown>);
  } catch (error) {
    if (error instanceof OutboundPoolsError) throw error;
    throw invalidContext(`The options of a decider cannot be read (${describeThrown(error)}).`);
  }
  return { now: checkNow(now), signal: checkSignal(signal) };
}

/** A verdict handed to the sync core, checked like a provider's answer (garbage is an input error). */
function checkedVerdict<T>(verdict: Verdict<T> | undefined, name: string, check: (value: unknown) => T): Verdict<T> | undefined {
  if (verdict === undefined) return undefined;
  if (typeof verdict !== 'object' || verdict === null) throw invalidContext(`verdicts.${name} must be a verdict object, got ${show(verdict)}.`);
  // Read once, into a verdict of our own: the rules never touch the caller's object.
  let state: unknown;
  let detail: unknown;
  try {
    state = (verdict as { state?: unknown }).state;
    detail = state === 'failed' ? (verdict as { error?: unknown }).error : state === 'absent' ? (verdict as { why?: unknown }).why : (verdict as { value?: unknown }).value;
  } catch (error) {
    throw invalidContext(`verdicts.${name} cannot be read (${describeThrown(error)}).`);
  }
  if (state === 'failed') {
    if (typeof detail !== 'string') throw invalidContext(`verdicts.${name}.error must be a string.`);
    // Often a provider's error passed on by the MTA hook: quoted as describeError quotes one (consultation.ts).
    return { state, error: quoteText(detail) };
  }
  if (state === 'absent') return { state, why: typeof detail === 'string' ? detail : 'not given' };
  if (state !== 'given' && state !== 'provided') throw invalidContext(`verdicts.${name}.state must be given, provided, failed or absent.`);
  try {
    return { state, value: check(detail) } as Verdict<T>;
  } catch (error) {
    if (error instanceof GarbageError) throw invalidContext(`verdicts.${name} is malformed: ${error.message}.`);
    throw invalidContext(`verdicts.${name} cannot be read (${describeThrown(error)}).`);
  }
}

/** Verdicts for {@link decideFromVerdicts}: any left out count as not consulted (a spam report is made after a decision, not before). */
export type VerdictsInput = Partial<Omit<Verdicts, 'spamReport'>>;

/**
 * The synchronous core: the decision for a message from verdicts you gathered yourself (in an
 * MTA hook that already ran SPF, rspamd and a limiter). `message.spam` and
 * `message.authentication` are used where `verdicts` has none. Pure: no I/O, no clock unless
 * `context.now` is missing. It makes no spam report for `policy.spam.restrictAfter`: whoever
 * gathered the verdicts makes it too (`rateLimiter.reportSpam()`, for a decision that delivers
 * with `spam` as its first reason).
 */
export function decideFromVerdicts(message: OutboundMessage, verdicts: VerdictsInput, context: Omit<DecideContext, 'providers' | 'signal'> = {}): Decision {
  const base = resolveContext(context);
  const given = readMessage(message);
  const { ctx, envelope, policyName } =
    base.policySet === undefined ? { ctx: base, envelope: envelopeOf(given, base.policy), policyName: undefined } : scoped(base, base.policySet, given);
  if (typeof verdicts !== 'object' || verdicts === null) throw invalidContext(`verdicts must be an object, got ${show(verdicts)}.`);
  let supplied: VerdictsInput;
  try {
    const { limits, senderDomain, spam, authentication } = verdicts;
    supplied = { limits, senderDomain, spam, authentication } as VerdictsInput;
  } catch (error) {
    throw invalidContext(`verdicts cannot be read (${describeThrown(error)}).`);
  }
  const notGiven = absent('not given');
  const full: Verdicts = {
    limits: checkedVerdict(supplied.limits, 'limits', checkConsumeResult) ?? notGiven,
    senderDomain: checkedVerdict(supplied.senderDomain, 'senderDomain', checkSenderDomain) ?? notGiven,
    spam: checkedVerdict(supplied.spam, 'spam', checkSpam) ?? precomputed(given.spam, 'spam', checkSpam) ?? notGiven,
    authentication:
      checkedVerdict(supplied.authentication, 'authentication', checkAuthentication) ??
      precomputed(given.authentication, 'authentication', checkAuthentication) ??
      notGiven,
  };
  return applyRules(ruleInput(envelope, full, ctx.srs, ctx.now, policyName), ctx.policy);
}
