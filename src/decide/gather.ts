// decidePool: check the input, gather the verdicts the rules need — from the message where they
// were precomputed, else from the providers, concurrently, each under its deadline — then apply
// the rules. Every provider fault (throw, reject, hang, garbage) becomes a failed verdict; the
// policy's fail modes decide what that means. Nothing here throws because a provider misbehaved.

import { OutboundPoolsError, show } from '../errors.js';
import { checkMailHost } from '../dns/mail-host.js';
import { createPolicy, isPolicy, type Policy } from '../policy.js';
import type { ConsumeResult, ProviderMessage, Providers } from '../providers/types.js';
import { readEnvelope } from './envelope.js';
import { applyRules } from './rules.js';
import type { DecideContext, Decision, Envelope, OutboundMessage, SrsContext, Verdict, Verdicts } from './types.js';
import { checkAuthentication, checkConsumeResult, checkRestriction, checkSenderDomain, checkSpam, GarbageError } from './verdicts.js';

/** The context, checked. */
export interface ResolvedContext {
  readonly policy: Policy;
  readonly providers: Providers;
  readonly srs: SrsContext | undefined;
  readonly now: Date;
  readonly signal: AbortSignal | undefined;
}

function invalidContext(message: string): OutboundPoolsError {
  return new OutboundPoolsError('invalid-context', message);
}

const CONTEXT_KEYS = ['policy', 'providers', 'srs', 'now', 'signal'];
const PROVIDER_METHODS: Record<keyof Providers, readonly string[] | null> = {
  dns: null,
  rateLimiter: ['consume', 'restriction'],
  spam: ['classify'],
  authenticator: ['authenticate'],
};

function checkProviders(value: unknown): Providers {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null) throw invalidContext(`providers must be an object, got ${show(value)}.`);
  for (const [name, provider] of Object.entries(value)) {
    if (!(name in PROVIDER_METHODS)) throw invalidContext(`Unknown provider ${show(name)}; known: ${Object.keys(PROVIDER_METHODS).join(', ')}.`);
    if (provider === undefined) continue;
    const methods = PROVIDER_METHODS[name as keyof Providers];
    if (methods === null) {
      if (typeof provider !== 'function') throw invalidContext('providers.dns must be a function (name, rrtype) => Promise, like dns.promises.resolve.');
    } else if (typeof provider !== 'object' || provider === null || methods.some((m) => typeof (provider as Record<string, unknown>)[m] !== 'function')) {
      throw invalidContext(`providers.${name} must be an object with ${methods.map((m) => `${m}()`).join(' and ')}.`);
    }
  }
  return value as Providers;
}

/** Checks a decide context once; the sync core and decidePool share it. */
export function resolveContext(context: DecideContext): ResolvedContext {
  if (typeof context !== 'object' || context === null) throw invalidContext(`The context must be an object, got ${show(context)}.`);
  for (const key of Object.keys(context)) {
    if (!CONTEXT_KEYS.includes(key)) throw invalidContext(`Unknown context field ${show(key)}; known: ${CONTEXT_KEYS.join(', ')}.`);
  }
  const policy = isPolicy(context.policy) ? context.policy : createPolicy(context.policy);
  const { srs, now, signal } = context;
  if (srs !== undefined) {
    if (typeof srs !== 'object' || srs === null || typeof srs.rewriter?.forward !== 'function' || typeof srs.domain !== 'string' || srs.domain.length === 0) {
      throw invalidContext('srs must be { rewriter: new Srs({ secret }), domain: "forwarding.example" }.');
    }
  }
  if (now !== undefined && (!(now instanceof Date) || Number.isNaN(now.getTime()))) throw invalidContext(`now must be a valid Date, got ${show(now)}.`);
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidContext('signal must be an AbortSignal.');
  return { policy, providers: checkProviders(context.providers), srs, now: now ?? new Date(), signal };
}

/** Precomputed verdicts on the message are the caller's input: garbage there is an input error. */
function given<T>(value: unknown, field: string, check: (value: unknown) => T): Verdict<T> | undefined {
  if (value === undefined) return undefined;
  try {
    return { state: 'given', value: check(value) };
  } catch (error) {
    if (error instanceof GarbageError) throw new OutboundPoolsError('invalid-message', `message.${field} is malformed: ${error.message}.`);
    throw error;
  }
}

function describeError(error: unknown): string {
  if (error instanceof GarbageError) return `returned garbage: ${error.message}`;
  if (error instanceof Error) return `${(error as { code?: unknown }).code ? `${String((error as { code?: unknown }).code)}: ` : ''}${error.message}`;
  return `threw ${show(error)}`;
}

/**
 * Runs one provider call under a deadline (its own, cut short by what is left of the total and
 * by the caller's signal). Resolves with a verdict, never rejects. The provider gets a signal
 * that aborts when its time is up, so it can cancel its I/O.
 */
async function consult<T>(
  deadlineMs: number,
  overall: AbortSignal,
  call: (signal: AbortSignal) => Promise<unknown>,
  check: (value: unknown) => T,
): Promise<Verdict<T>> {
  if (overall.aborted) return { state: 'failed', error: 'not asked: the decision deadline had passed or the caller aborted' };
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const cutOff = new Promise<Verdict<T>>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve({ state: 'failed', error: `no answer within ${deadlineMs} ms` });
    }, deadlineMs);
    onAbort = () => {
      controller.abort();
      resolve({ state: 'failed', error: 'cut off: the decision deadline passed or the caller aborted' });
    };
    overall.addEventListener('abort', onAbort, { once: true });
  });
  const answer = (async (): Promise<Verdict<T>> => {
    try {
      return { state: 'provided', value: check(await call(controller.signal)) };
    } catch (error) {
      return { state: 'failed', error: describeError(error) };
    }
  })();
  try {
    return await Promise.race([answer, cutOff]);
  } finally {
    clearTimeout(timer);
    overall.removeEventListener('abort', onAbort!);
  }
}

const absent = (why: string) => ({ state: 'absent', why }) as const;

function limitsVerdict(envelope: Envelope, ctx: ResolvedContext, overall: AbortSignal): Promise<Verdict<ConsumeResult>> {
  const limiter = ctx.providers.rateLimiter;
  if (limiter === undefined) return Promise.resolve(absent('no rate limiter configured'));
  const { policy, now } = ctx;
  const perMessage = policy.recipientsPerMessage;
  if (perMessage !== null && envelope.recipients.length > perMessage.limit) {
    // Rule 2 refuses it anyway: ask only whether rule 1 applies first, and count nothing.
    return consult(policy.deadlines.rateLimiterMs, overall, () => limiter.restriction(envelope.limitKey, now), (value) => ({
      restriction: checkRestriction(value),
      breaches: [],
      counted: false,
    }));
  }
  return consult(
    policy.deadlines.rateLimiterMs,
    overall,
    () =>
      limiter.consume({
        key: envelope.limitKey,
        ...(envelope.messageId === null ? {} : { messageId: envelope.messageId }),
        internalRecipients: envelope.internalRecipients,
        externalRecipients: envelope.externalRecipients,
        limits: policy.limits,
        now,
      }),
    checkConsumeResult,
  );
}

/** Gathers every verdict the rules may read, concurrently. */
async function gather(message: OutboundMessage, envelope: Envelope, ctx: ResolvedContext): Promise<Verdicts> {
  const { policy, providers } = ctx;
  const spamGiven = given(message.spam, 'spam', checkSpam);
  const authGiven = given(message.authentication, 'authentication', checkAuthentication);

  const total = AbortSignal.timeout(policy.deadlines.totalMs);
  const overall = ctx.signal === undefined ? total : AbortSignal.any([total, ctx.signal]);
  const providerMessage: ProviderMessage = {
    raw: message.headers,
    mailFrom: message.mailFrom,
    rcptTo: message.rcptTo,
    ...(message.submitter === undefined ? {} : { submitter: message.submitter }),
    ...(message.ingress === undefined ? {} : { ingress: message.ingress }),
  };
  const isNdr = envelope.ndr.isNdr;
  const sender = envelope.sender;

  const [limits, senderDomain, spam, authentication] = await Promise.all([
    limitsVerdict(envelope, ctx, overall),
    isNdr || sender === null
      ? absent('not needed: an NDR goes to the high-risk pool whatever its domain')
      : providers.dns === undefined
        ? absent('no DNS resolver configured')
        : consult(policy.deadlines.dnsMs, overall, () => checkMailHost(providers.dns!, sender.domain), checkSenderDomain),
    spamGiven ??
      (isNdr
        ? absent('not needed: an NDR goes to the high-risk pool whatever its content')
        : providers.spam === undefined
          ? absent('no spam classifier configured')
          : consult(policy.deadlines.spamMs, overall, (signal) => providers.spam!.classify(providerMessage, signal), checkSpam)),
    authGiven ??
      (isNdr || envelope.senderAccepted
        ? absent('not needed: only forwards from outside the accepted domains are checked')
        : providers.authenticator === undefined
          ? absent('no authenticator configured')
          : consult(policy.deadlines.authenticatorMs, overall, (signal) => providers.authenticator!.authenticate(providerMessage, signal), checkAuthentication)),
  ]);
  return { limits, senderDomain, spam, authentication };
}

/**
 * Decides which pool a message leaves through. Checks the input (throwing
 * `OutboundPoolsError` for bad input), gathers the verdicts — precomputed on the message or from
 * `context.providers`, concurrently, each under the policy's deadline — and applies the rules
 * of SPEC §3. No I/O of its own besides the providers; never mutates its arguments; never throws
 * or hangs because a provider misbehaved.
 */
export async function decidePool(message: OutboundMessage, context: DecideContext = {}): Promise<Decision> {
  const ctx = resolveContext(context);
  const envelope = readEnvelope(message, ctx.policy);
  const verdicts = await gather(message, envelope, ctx);
  return applyRules({ envelope, verdicts, srs: ctx.srs, now: ctx.now }, ctx.policy);
}

/** A verdict handed to the sync core, checked like a provider's answer (garbage is an input error). */
function checkedVerdict<T>(verdict: Verdict<T> | undefined, name: string, check: (value: unknown) => T): Verdict<T> | undefined {
  if (verdict === undefined) return undefined;
  const state = (verdict as { state?: unknown }).state;
  if (state === 'failed') {
    if (typeof (verdict as { error?: unknown }).error !== 'string') throw invalidContext(`verdicts.${name}.error must be a string.`);
    return verdict;
  }
  if (state === 'absent') return verdict;
  if (state !== 'given' && state !== 'provided') throw invalidContext(`verdicts.${name}.state must be given, provided, failed or absent.`);
  try {
    return { state, value: check((verdict as { value?: unknown }).value) } as Verdict<T>;
  } catch (error) {
    if (error instanceof GarbageError) throw invalidContext(`verdicts.${name} is malformed: ${error.message}.`);
    throw error;
  }
}

/** Verdicts for {@link decideFromVerdicts}: any left out count as not consulted. */
export type VerdictsInput = Partial<Verdicts>;

/**
 * The synchronous core: the decision for a message from verdicts you gathered yourself (in an
 * MTA hook that already ran SPF, rspamd and a limiter). `message.spam` and
 * `message.authentication` are used where `verdicts` has none. Pure: no I/O, no clock unless
 * `context.now` is missing.
 */
export function decideFromVerdicts(message: OutboundMessage, verdicts: VerdictsInput, context: Omit<DecideContext, 'providers' | 'signal'> = {}): Decision {
  const ctx = resolveContext(context);
  const envelope = readEnvelope(message, ctx.policy);
  if (typeof verdicts !== 'object' || verdicts === null) throw invalidContext(`verdicts must be an object, got ${show(verdicts)}.`);
  const notGiven = absent('not given');
  const full: Verdicts = {
    limits: checkedVerdict(verdicts.limits, 'limits', checkConsumeResult) ?? notGiven,
    senderDomain: checkedVerdict(verdicts.senderDomain, 'senderDomain', checkSenderDomain) ?? notGiven,
    spam: checkedVerdict(verdicts.spam, 'spam', checkSpam) ?? given(message.spam, 'spam', checkSpam) ?? notGiven,
    authentication:
      checkedVerdict(verdicts.authentication, 'authentication', checkAuthentication) ??
      given(message.authentication, 'authentication', checkAuthentication) ??
      notGiven,
  };
  return applyRules({ envelope, verdicts: full, srs: ctx.srs, now: ctx.now }, ctx.policy);
}
