// `outbound-pools explain`: why a message got its pool, rule by rule (docs/decision-rules.md),
// read back from the decision object alone (reasons, verdicts, ndr): the rules are not re-run.

import { formatTrace } from '../decide/trace.js';
import { quoteText } from '../errors.js';
import type { Decision, Reason, Verdict } from '../decide/types.js';
import { isAcceptedDomain, type Policy } from '../policy.js';
import type { AuthenticationVerdict, ConsumeResult, SpamVerdict } from '../providers/types.js';

/** What the decision object does not carry but the envelope does; optional, for rule 2. */
export interface ExplainEnvelope {
  readonly rcptTo?: readonly string[];
  /** `message.autoForwarded`, for rule 10. */
  readonly autoForwarded?: boolean;
  /** `message.tenant`, for rule 11. */
  readonly tenant?: string;
}

/** The rules in table order, with their short names. */
export const RULES: readonly { readonly rule: number; readonly name: string }[] = [
  { rule: 1, name: 'sender restricted' },
  { rule: 10, name: 'automatic forwarding' },
  { rule: 2, name: 'recipients per message' },
  { rule: 3, name: 'sending limits' },
  { rule: 11, name: 'tenant cap' },
  { rule: 4, name: 'NDR' },
  { rule: 5, name: 'sender domain' },
  { rule: 6, name: 'spam' },
  { rule: 7, name: 'relay (unverified forward)' },
  { rule: 8, name: 'verified forward' },
  { rule: 9, name: 'accepted domain' },
];

/** Where a rule stands in the order the rules are applied. */
function position(rule: number): number {
  const index = RULES.findIndex((entry) => entry.rule === rule);
  return index < 0 ? RULES.length : index;
}

/** What a rule did for a message. */
export type RuleOutcome = 'applies' | 'does not apply' | 'not reached';

function verdictText<T>(verdict: Verdict<T>, what: string, describe: (value: T) => string): string {
  switch (verdict.state) {
    case 'given':
      return `${describe(verdict.value)} (given on the message)`;
    case 'provided':
      return describe(verdict.value);
    case 'failed':
      return `the ${what} failed: ${verdict.error}`;
    case 'absent':
      return verdict.why;
  }
}

function valueOf<T>(verdict: Verdict<T>): T | undefined {
  return verdict.state === 'given' || verdict.state === 'provided' ? verdict.value : undefined;
}

function limitsText(limits: ConsumeResult): string {
  if (limits.breaches.length === 0) return `within every limit${limits.counted ? ' (counted)' : ''}`;
  return `over ${limits.breaches.map((b) => `${b.window} ${b.used}/${b.limit} (${b.set}, ${b.action})`).join('; ')}`;
}

function spamText(spam: SpamVerdict, policy: Policy): string {
  const parts: string[] = [];
  if (spam.score !== undefined) parts.push(`score ${spam.score}${policy.spam.threshold === null ? ' (no threshold)' : `, threshold ${policy.spam.threshold}`}`);
  if (spam.isSpam !== undefined) parts.push(spam.isSpam ? 'classified spam' : 'classified not spam');
  if (spam.categories !== undefined && spam.categories.length > 0) parts.push(`categories ${spam.categories.join(', ')}`);
  return parts.length === 0 ? 'no score or judgement' : parts.join(', ');
}

function authText(auth: AuthenticationVerdict): string {
  const parts: string[] = [];
  if (auth.spf !== undefined) {
    const helo = auth.spf.identity === 'helo' ? ' (the HELO name: verifies no sender that is not null)' : '';
    parts.push(`SPF ${auth.spf.result}${auth.spf.domain === undefined ? '' : ` for ${auth.spf.domain}${helo}`}`);
  }
  for (const dkim of auth.dkim ?? []) parts.push(`DKIM ${dkim.result} d=${dkim.domain}`);
  if (auth.arc !== undefined) parts.push(`ARC ${auth.arc.result}${auth.arc.sealer === undefined ? '' : ` sealed by ${auth.arc.sealer}`}`);
  return parts.length === 0 ? 'no SPF, DKIM or ARC result' : parts.join(', ');
}

function domainOf(address: string): string | null {
  const at = address.lastIndexOf('@');
  return at < 0 ? null : address.slice(at + 1).toLowerCase();
}

function decisionText(decision: Decision): string {
  return decision.action === 'deliver'
    ? `deliver through the ${decision.pool} pool (${decision.poolName})`
    : `${decision.action} — ${decision.reply.line}`;
}

/** One rule of the table, as `explain` reports it. */
export interface RuleExplanation {
  readonly rule: number;
  readonly name: string;
  /** The verdict the rule read, in words. */
  readonly read: string;
  readonly outcome: RuleOutcome;
  /** The deciding reason, on the rule that applies. */
  readonly reason?: { readonly code: string; readonly message: string };
  /** Other reasons of the decision that belong to this rule (a failed provider, …). */
  readonly notes: readonly { readonly code: string; readonly message: string }[];
}

/** A decision explained: each rule in table order, the decision in words, the trace line. */
export interface Explanation {
  readonly rules: readonly RuleExplanation[];
  readonly decision: string;
  /** The SRS outcome (srs-rewritten, srs-skipped), if any. */
  readonly srs: readonly { readonly code: string; readonly message: string }[];
  readonly trace: string;
}

/** A restriction reason is quoted whole up to this length, as in the sender-restricted reason (rules.ts). */
const MAX_REASON_LENGTH = 512;

const brief = (reason: Reason) => ({ code: reason.code, message: reason.message });

/**
 * For every rule in the order they are applied (1, 10, 2, 3, 11, 4–9), whether each applies, does not apply or was not reached, with
 * the verdict it read; then the decision, its SRS outcome and its trace line. Pure.
 */
export function explain(decision: Decision, policy: Policy, envelope: ExplainEnvelope = {}): Explanation {
  const { verdicts, ndr } = decision;
  const decisive: Reason = decision.reasons[0]!;
  const decidingRule = decisive.rule ?? 0;
  const noteFor = (rule: number) => decision.reasons.slice(1).filter((reason) => reason.rule === rule && reason.code !== 'srs-rewritten' && reason.code !== 'srs-skipped');
  const sender = decision.srs?.applied ? decision.srs.original : decision.mailFrom;
  const senderDomain = valueOf(verdicts.senderDomain)?.domain ?? (sender === '' ? null : domainOf(sender));
  const accepted = senderDomain !== null && isAcceptedDomain(policy, senderDomain);
  // Rule 9 is checked before 7 and 8: for senders outside the accepted domains, it is known not to apply.
  const outcomeOf = (rule: number): RuleOutcome => {
    if (rule === decidingRule) return 'applies';
    if (decidingRule === 7 || decidingRule === 8) {
      if (rule === 9) return 'does not apply';
      if (rule === 7 && decidingRule === 8) return 'does not apply';
    }
    if (decidingRule === 9 && (rule === 7 || rule === 8)) return 'does not apply';
    // Table order, not rule numbers: rule 10 is applied right after rule 1.
    return position(rule) < position(decidingRule) ? 'does not apply' : 'not reached';
  };

  const read = (rule: number): string => {
    switch (rule) {
      case 1: {
        const text = verdictText(verdicts.limits, 'rate limiter', (limits) => (limits.restriction === null ? 'not restricted' : `restricted until ${limits.restriction.until === null ? 'released' : quoteText(limits.restriction.until)}${limits.restriction.reason ? `: ${quoteText(limits.restriction.reason, MAX_REASON_LENGTH)}` : ''}`));
        return verdicts.limits.state === 'failed' ? `${text} (policy: ${policy.onProviderFailure.rateLimiter})` : text;
      }
      case 2: {
        const limit = policy.recipientsPerMessage;
        const count = envelope.rcptTo?.length ?? (decisive.code === 'recipients-per-message-exceeded' ? Number(decisive.detail?.recipients) : undefined);
        const given = count === undefined ? '' : `${count} recipient${count === 1 ? '' : 's'}, `;
        return limit === null ? `${given}no per-message limit` : `${given}at most ${limit.limit} (${limit.set})`;
      }
      case 3:
        return verdictText(verdicts.limits, 'rate limiter', limitsText) + (policy.overLimit === 'high-risk' ? '; over-limit mail goes high-risk' : '');
      case 4:
        return ndr.isNdr ? `an NDR (${ndr.basis})` : 'not an NDR';
      case 5: {
        const text = verdictText(verdicts.senderDomain, 'sender domain check', (domain) => {
          const basis = { mx: 'has MX', a: 'has A', aaaa: 'has AAAA', 'null-mx': 'has a null MX (RFC 7505)', 'no-records': 'has no MX, A or AAAA' }[domain.basis];
          return `${domain.domain} ${basis}`;
        });
        return verdicts.senderDomain.state === 'failed' ? `${text} (dns.onError: ${policy.dns.onError})` : text;
      }
      case 6: {
        const text = verdictText(verdicts.spam, 'spam classifier', (spam) => spamText(spam, policy));
        return verdicts.spam.state === 'failed' ? `${text} (policy: ${policy.onProviderFailure.spam})` : text;
      }
      case 7:
      case 8: {
        if (accepted) return `${senderDomain} is accepted: only forwards from outside are checked`;
        const text = verdictText(verdicts.authentication, 'authentication', authText);
        return verdicts.authentication.state === 'failed' ? `${text} (policy: ${policy.onProviderFailure.authenticator})` : text;
      }
      case 11: {
        const cap = policy.tenantLimits;
        const breach = valueOf(verdicts.limits)?.tenantBreach;
        if (breach) return `tenant ${breach.tenant}: ${breach.used} external recipients in 24 h, cap ${breach.limit}`;
        if (cap === null) return envelope.tenant === undefined ? 'no tenant cap (tenantLimits not set)' : `tenant ${envelope.tenant}: counted, no cap (tenantLimits not set)`;
        if (envelope.tenant === undefined) return `no tenant given (cap ${cap.externalRecipientsPerDay} external recipients in 24 h)`;
        return verdictText(verdicts.limits, 'rate limiter', () => `tenant ${envelope.tenant} within its cap of ${cap.externalRecipientsPerDay} external recipients in 24 h`);
      }
      case 10:
        if (policy.autoForwarding === 'on') return 'automatic forwarding allowed (autoForwarding: on)';
        return envelope.autoForwarded === true ? 'an automatic forward, and the policy turns automatic forwarding off' : 'not an automatic forward';
      case 9:
        if (senderDomain === null) return 'null sender';
        return accepted ? `${senderDomain} is an accepted domain` : `${senderDomain} is not an accepted domain`;
      default:
        return '';
    }
  };

  const rules = RULES.map(({ rule, name }): RuleExplanation => {
    const outcome = outcomeOf(rule);
    return {
      rule,
      name,
      read: read(rule),
      outcome,
      ...(outcome === 'applies' ? { reason: brief(decisive) } : {}),
      notes: noteFor(rule).map(brief),
    };
  });
  return {
    rules,
    decision: decisionText(decision),
    srs: decision.reasons.filter((reason) => reason.code === 'srs-rewritten' || reason.code === 'srs-skipped').map(brief),
    trace: formatTrace(decision),
  };
}

/**
 * Lines saying, for every rule in the order they are applied (1, 10, 2, 3, 11, 4–9), whether each applies, does not apply or was not
 * reached, with the verdict it read; then the decision and its trace line. Pure.
 */
export function explainDecision(decision: Decision, policy: Policy, envelope: ExplainEnvelope = {}): string[] {
  const explanation = explain(decision, policy, envelope);
  const width = Math.max(...RULES.map(({ rule, name }) => `${rule} ${name}:`.length));
  const lines: string[] = [];
  for (const { rule, name, read, outcome, reason, notes } of explanation.rules) {
    let line = `${`${rule} ${name}:`.padEnd(width)} ${read} → ${outcome}`;
    if (reason !== undefined) line += `: ${reason.code} — ${reason.message}`;
    lines.push(line);
    for (const note of notes) lines.push(`${' '.repeat(width)}   note ${note.code}: ${note.message}`);
  }
  lines.push(`decision: ${explanation.decision}`);
  for (const reason of explanation.srs) lines.push(`  ${reason.code}: ${reason.message}`);
  lines.push(`trace: ${explanation.trace}`);
  return lines;
}
