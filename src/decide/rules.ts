// The decision rules of SPEC §3, in order: the first rule that applies decides. One pure,
// synchronous function over gathered verdicts; read it beside the table in
// docs/decision-rules.md.

import { parseEnvelopeAddress } from '../address.js';
import { OutboundPoolsError, quoteText, show } from '../errors.js';
import type { Policy, Pool } from '../policy.js';
import type { LimitBreach, ProviderName } from '../providers/types.js';
import { SrsError } from '../srs/index.js';
import { REPLIES } from './replies.js';
import type { Decision, Envelope, Reason, SmtpReply, SrsContext, SrsOutcome, Verdict, Verdicts } from './types.js';
import { NO_BREACHES } from './verdicts.js';
import { verifyForward } from './verification.js';

/** Everything a decision is made from, besides the policy. */
export interface RuleInput {
  readonly envelope: Envelope;
  readonly verdicts: Verdicts;
  readonly srs: SrsContext | undefined;
  readonly now: Date;
  /** The name of the policy applied (`decision.policyName`); default {@link DEFAULT_POLICY_NAME}. */
  readonly policyName?: string;
}

/** The name a decision gives a single policy, and the default policy of a set unless renamed (Microsoft's "Default"). */
export const DEFAULT_POLICY_NAME = 'Default';

/** Rule 10's condition: an automatic forward to an external recipient under `autoForwarding: 'off'` (the limiter does not count it either). */
export function isBlockedForward(envelope: Envelope, policy: Policy): boolean {
  return envelope.autoForwarded && policy.autoForwarding === 'off' && envelope.externalRecipients > 0;
}

function valueOf<T>(verdict: Verdict<T>): T | undefined {
  return verdict.state === 'given' || verdict.state === 'provided' ? verdict.value : undefined;
}

function providerFailed(provider: ProviderName, error: string, rule: number): Reason {
  return { code: 'provider-failed', rule, provider, message: `The ${provider} provider failed: ${error}.` };
}

/** The longest restriction reason or tenant name a reason quotes whole (the CLI's --reason takes 500, message.tenant 512). */
const MAX_QUOTED_NAME = 512;

/** A breach in words; the set's name is the rate limiter's text (a policy's name, unless the limiter misbehaves). */
function describeBreach(breach: LimitBreach): string {
  return `${breach.window} ${breach.used}/${breach.limit} (${quoteText(breach.set)}, ${breach.action})`;
}

/** The reasons of a decision: the decisive one first, then its consequence, then the notes. */
function reasonsWith(decisive: Reason, consequence: Reason | undefined, notes: readonly Reason[]): Reason[] {
  const reasons = consequence === undefined ? [decisive] : [decisive, consequence];
  for (const note of notes) reasons.push(note);
  return reasons;
}

// Object literals of one shape for each kind of decision: no spreads, no closures per call.
function deliver(
  input: RuleInput,
  policy: Policy,
  notes: readonly Reason[],
  pool: Pool,
  decisive: Reason,
  srs: SrsOutcome | null = null,
  consequence?: Reason,
): Decision {
  return {
    action: 'deliver',
    policyName: input.policyName ?? DEFAULT_POLICY_NAME,
    pool,
    poolName: policy.pools[pool],
    mailFrom: srs?.applied ? srs.rewritten : (input.envelope.sender?.address ?? ''),
    srs,
    reply: null,
    reasons: reasonsWith(decisive, consequence, notes),
    verdicts: input.verdicts,
    ndr: input.envelope.ndr,
  };
}

function refuse(input: RuleInput, notes: readonly Reason[], action: 'block' | 'defer', reply: SmtpReply, decisive: Reason): Decision {
  return {
    action,
    policyName: input.policyName ?? DEFAULT_POLICY_NAME,
    pool: null,
    poolName: null,
    mailFrom: input.envelope.sender?.address ?? '',
    srs: null,
    reply,
    reasons: reasonsWith(decisive, undefined, notes),
    verdicts: input.verdicts,
    ndr: input.envelope.ndr,
  };
}

/** Applies the rules to gathered verdicts, in the order 1, 10, 2, 3, 11, 4–9. Pure: same input, same decision. */
export function applyRules(input: RuleInput, policy: Policy): Decision {
  const { envelope, verdicts } = input;
  const notes: Reason[] = [];

  // Rules 1 and 3 read the rate limiter's answer.
  const limits = verdicts.limits;
  if (limits.state === 'failed') {
    const reason = providerFailed('rateLimiter', limits.error, 1);
    if (policy.onProviderFailure.rateLimiter === 'defer') return refuse(input, notes, 'defer', REPLIES.providerDeferred('rateLimiter'), reason);
    notes.push(reason);
  }
  const limitOutcome = valueOf(limits);

  // Rule 1: a restricted sender sends nothing.
  if (limitOutcome?.restriction) {
    const { until, reason, cause } = limitOutcome.restriction;
    // The limiter's words: `until` only has to satisfy Date.parse, which skips a parenthesised comment (CR LF included).
    return refuse(input, notes, 'block', REPLIES.senderRestricted, {
      code: 'sender-restricted',
      rule: 1,
      message: `${envelope.limitKey} is restricted from sending ${until === null ? 'until released' : `until ${quoteText(until)}`}${reason ? `: ${quoteText(reason, MAX_QUOTED_NAME)}` : ''}.`,
      detail: cause === undefined ? { key: envelope.limitKey, until } : { key: envelope.limitKey, until, cause: cause.kind },
    });
  }

  // Rule 10 (SPEC §7, forwarding control), applied right after rule 1: with automatic forwarding off, an automatic forward
  // to anyone outside the organisation is refused, whatever its authentication; forwards inside
  // the organisation are not affected. After rule 1, whose refusal is the stronger statement
  // (the sender may send nothing at all); before the limits, because the forward is refused for
  // what it is, not for how much was sent — a permanent reason the administrator can act on.
  if (isBlockedForward(envelope, policy)) {
    return refuse(input, notes, 'block', REPLIES.autoForwardingBlocked, {
      code: 'auto-forwarding-blocked',
      rule: 10,
      message: `An automatic forward to ${envelope.externalRecipients} external recipient${envelope.externalRecipients === 1 ? '' : 's'}; the policy turns automatic forwarding off.`,
      detail: { externalRecipients: envelope.externalRecipients },
    });
  }

  // Rule 2: recipients per message, stateless.
  const perMessage = policy.recipientsPerMessage;
  if (perMessage !== null && envelope.recipients.length > perMessage.limit) {
    return refuse(input, notes, 'block', REPLIES.tooManyRecipients(perMessage.limit), {
      code: 'recipients-per-message-exceeded',
      rule: 2,
      message: `${envelope.recipients.length} recipients; ${perMessage.set} allows ${perMessage.limit} per message.`,
      detail: { recipients: envelope.recipients.length, limit: perMessage.limit, set: perMessage.set },
    });
  }

  // Rule 3: sending limits. `alert` breaches only inform.
  const breaches = limitOutcome?.breaches ?? NO_BREACHES;
  const enforced = breaches.length === 0 ? NO_BREACHES : breaches.filter((breach) => breach.action !== 'alert');
  for (const breach of breaches) {
    if (breach.action === 'alert') {
      notes.push({
        code: 'limit-alert',
        rule: 3,
        message: `Over ${describeBreach(breach)}: delivered, as the limit set only alerts.`,
        detail: { window: breach.window, limit: breach.limit, used: breach.used, set: breach.set },
      });
    }
  }
  if (enforced.length > 0) {
    const first = enforced[0]!;
    const calledFor = enforced.some((breach) => breach.action === 'block-user' || breach.action === 'block-user-for-today');
    // What the limiter did, when it says: a sender an administrator released today is not
    // restricted again before the next UTC day, and is told to try later, as `block` tells it.
    const imposed = limitOutcome!.imposed;
    const restricts = imposed === undefined ? calledFor : imposed !== null;
    const released = calledFor && !restricts;
    const reason: Reason = {
      code: 'sending-limit-exceeded',
      rule: 3,
      message: `Over ${enforced.map(describeBreach).join('; ')}${restricts ? '; the sender is now restricted' : released ? '; the sender was released today and is not restricted again before the next UTC day' : ''}.`,
      detail: { window: first.window, limit: first.limit, used: first.used, set: first.set, action: first.action },
    };
    if (policy.overLimit !== 'high-risk') return refuse(input, notes, 'block', restricts ? REPLIES.limitRestricted : REPLIES.rateLimited, reason);
    // The older treatment sends it high-risk — unless its tenant is over its cap: delivering it
    // would pass the cap (SPEC §7: every such message of the tenant is blocked). Rule 11 then
    // decides, with the sender's own breach as a note.
    if (!(limitOutcome?.tenantBreach && envelope.externalRecipients > 0)) return deliver(input, policy, notes, 'high-risk', reason);
    notes.push(reason);
  }

  // Rule 11 (SPEC §7, tenant cap), applied right after rule 3: it reads the same limiter answer,
  // and a sender restricted (rule 1) or over its own limits (rule 3) is told about its own
  // problem first. Only mail to external recipients is refused — the limiter sets no breach for
  // a message without one, and the rule checks it again. Always a block: `overLimit: 'high-risk'`
  // is the older treatment of a sender's sending limits, and Microsoft's tenant external
  // recipient rate limit never sent mail through the high-risk pool.
  const tenantBreach = limitOutcome?.tenantBreach;
  if (tenantBreach && envelope.externalRecipients > 0) {
    return refuse(input, notes, 'block', REPLIES.tenantLimited, {
      code: 'tenant-limit-exceeded',
      rule: 11,
      message: `Tenant ${quoteText(tenantBreach.tenant, MAX_QUOTED_NAME)} sent to ${tenantBreach.used} external recipients in the last 24 hours; ${envelope.externalRecipients} more would pass its cap of ${tenantBreach.limit}.`,
      detail: { tenant: tenantBreach.tenant, limit: tenantBreach.limit, used: tenantBreach.used, externalRecipients: envelope.externalRecipients },
    });
  }

  // Rule 4: every NDR leaves through the high-risk pool (backscatter looks like spam).
  if (envelope.ndr.isNdr) {
    return deliver(input, policy, notes, 'high-risk', {
      code: 'ndr',
      rule: 4,
      message:
        envelope.ndr.basis === 'null-sender'
          ? 'A non-delivery report (null reverse-path <>).'
          : 'A non-delivery report (multipart/report; report-type=delivery-status).',
      detail: { basis: envelope.ndr.basis },
    });
  }

  // Rule 5: a sender domain without A, AAAA or MX (or with only a null MX) cannot take bounces.
  const senderDomain = verdicts.senderDomain;
  if (senderDomain.state === 'failed') {
    const reason: Reason = {
      code: 'dns-error',
      rule: 5,
      provider: 'dns',
      message: `The sender domain could not be checked in DNS (${senderDomain.error}); the policy says ${policy.dns.onError}.`,
    };
    if (policy.dns.onError === 'defer') return refuse(input, notes, 'defer', REPLIES.dnsDeferred, reason);
    if (policy.dns.onError === 'high-risk') return deliver(input, policy, notes, 'high-risk', reason);
    notes.push(reason);
  }
  const domain = valueOf(senderDomain);
  if (domain !== undefined && !domain.receivesMail) {
    return deliver(input, policy, notes, 'high-risk', {
      code: 'sender-domain-unresolvable',
      rule: 5,
      message:
        domain.basis === 'null-mx'
          ? `The sender domain ${domain.domain} publishes a null MX (RFC 7505): it takes no mail, so no bounces.`
          : `The sender domain ${domain.domain} has no MX, A or AAAA record.`,
      detail: { domain: domain.domain, basis: domain.basis },
    });
  }

  // Rule 6: spam. Categories the policy names block; other spam uses the high-risk pool.
  const spamVerdict = verdicts.spam;
  if (spamVerdict.state === 'failed') {
    const reason = providerFailed('spam', spamVerdict.error, 6);
    if (policy.onProviderFailure.spam === 'defer') return refuse(input, notes, 'defer', REPLIES.providerDeferred('spam'), reason);
    notes.push(reason);
  }
  const spam = valueOf(spamVerdict);
  if (spam !== undefined) {
    const blocking = spam.categories?.find((category) => policy.spam.blockCategories.includes(category));
    const overThreshold = spam.score !== undefined && policy.spam.threshold !== null && spam.score >= policy.spam.threshold;
    const detail = { score: spam.score ?? null, threshold: policy.spam.threshold, isSpam: spam.isSpam ?? null, category: blocking ?? null };
    if (blocking !== undefined) {
      return refuse(input, notes, 'block', REPLIES.spamBlocked, { code: 'spam', rule: 6, message: `Classified ${blocking}, which the policy blocks.`, detail });
    }
    if (overThreshold || spam.isSpam === true) {
      return deliver(input, policy, notes, 'high-risk', {
        code: 'spam',
        rule: 6,
        message: overThreshold ? `Spam score ${spam.score} ≥ threshold ${policy.spam.threshold}.` : 'Classified as spam.',
        detail,
      });
    }
  }

  // Rule 9 comes before 7 and 8 in effect: they only concern senders outside the accepted domains.
  const from = envelope.sender!;
  if (envelope.senderAccepted) {
    return deliver(input, policy, notes, 'normal', { code: 'accepted-domain', rule: 9, message: `${from.domain} is an accepted domain.`, detail: { domain: from.domain } });
  }

  // Rules 7 and 8: a forward from outside is verified at ingress, or relayed.
  const authVerdict = verdicts.authentication;
  if (authVerdict.state === 'failed') {
    const reason = providerFailed('authenticator', authVerdict.error, 7);
    if (policy.onProviderFailure.authenticator === 'defer') return refuse(input, notes, 'defer', REPLIES.providerDeferred('authenticator'), reason);
    notes.push(reason);
  }
  const verification = verifyForward(valueOf(authVerdict), envelope, policy);
  if (verification === null) {
    return deliver(input, policy, notes, 'relay', {
      code: 'relay-unverified',
      rule: 7,
      message: `${from.domain} is not an accepted domain and neither SPF nor aligned DKIM${policy.relay.trustedArcSealers.length > 0 ? ' nor trusted ARC' : ''} passed at ingress.`,
      detail: { domain: from.domain },
    });
  }
  const decisive: Reason = { code: verification.code, rule: 8, message: verification.message, detail: { domain: verification.domain } };
  const srs = rewriteSender(from.address, input);
  const srsReason: Reason = srs.applied
    ? { code: 'srs-rewritten', rule: 8, message: `Envelope sender rewritten with SRS to ${srs.rewritten}.`, detail: { original: srs.original } }
    : { code: 'srs-skipped', rule: 8, message: `Envelope sender not rewritten: ${srs.why}.` };
  return deliver(input, policy, notes, 'normal', decisive, srs, srsReason);
}

/**
 * Rule 8's SRS step; never throws: an address SRS cannot carry (over 64 octets), a failing
 * rewriter, or one that answers something other than an envelope address (a number, text with
 * CR LF) leaves the sender as it was, with the reason. Only a checked address reaches `mailFrom`.
 */
function rewriteSender(address: string, input: RuleInput): SrsOutcome {
  if (input.srs === undefined) return { applied: false, why: 'no SRS rewriter configured (context.srs)' };
  let rewritten: unknown;
  try {
    rewritten = input.srs.rewriter.forward(address, input.srs.domain, { now: input.now });
  } catch (error) {
    return { applied: false, why: rewriterError(error) };
  }
  if (rewritten === address) return { applied: false, why: `the sender is already in ${input.srs.domain}` };
  if (typeof rewritten !== 'string') return { applied: false, why: `the SRS rewriter returned ${show(rewritten)}, not an address` };
  try {
    parseEnvelopeAddress(rewritten, 'the SRS address', false);
    return { applied: true, original: address, rewritten };
  } catch (error) {
    return { applied: false, why: `the SRS rewriter returned an invalid address: ${error instanceof OutboundPoolsError ? error.message : 'unreadable'}` };
  }
}

/** Why the rewriter threw, in words; safe on anything it can throw. */
function rewriterError(error: unknown): string {
  try {
    // The rewriter may be the caller's own: its words are quoted as a provider's are.
    if (error instanceof SrsError) return `${error.code}: ${quoteText(error.message)}`;
    return `the SRS rewriter failed: ${error instanceof Error && typeof error.message === 'string' ? quoteText(error.message) : show(error)}`;
  } catch {
    return 'the SRS rewriter failed with an error that cannot be described';
  }
}
