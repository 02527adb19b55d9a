// Restriction after spam (SPEC §7, `policy.spam.restrictAfter`): a message the rules sent to the
// high-risk pool as spam (rule 6) is reported to the rate limiter, which counts it per sender and
// restricts the sender when the count is reached — in the limiter, so that it holds across every
// node sharing it. The rules decide first (pure and synchronous); the report comes after and adds
// only reasons: the message that reaches the count still leaves through the high-risk pool, with
// `spam-restriction`; later ones meet the restriction at rule 1. A report that cannot be made
// (no `reportSpam`, a failure, no answer in time) is noted, never turned into another decision.

import type { Policy } from '../policy.js';
import type { RateLimiter, SpamReport, SpamReportResult, SpamRestrictAfter } from '../providers/types.js';
import { ask, Consultation, type Pending } from './consultation.js';
import type { Decision, Envelope, Reason, Verdict } from './types.js';
import { checkSpamReport } from './verdicts.js';
import { plainRecord } from '../records.js';

/** Whether `decision` is one to report: rule 6 sent it to the high-risk pool, and the policy counts spam. */
export function isReportableSpam(decision: Decision, policy: Policy): boolean {
  return policy.spam.restrictAfter !== null && decision.action === 'deliver' && decision.reasons[0]?.code === 'spam';
}

/** A {@link SpamReport}, made by `new` (see records.ts: it waits for the limiter); `messageId` only when there is one. */
const Report = plainRecord<[envelope: Envelope, restrictAfter: SpamRestrictAfter, now: Date], SpamReport>(function (envelope, restrictAfter, now) {
  this.key = envelope.limitKey;
  if (envelope.messageId !== null) this.messageId = envelope.messageId;
  this.restrictAfter = restrictAfter;
  this.now = now;
});

const NO_REPORT_SPAM = 'it has no reportSpam() to count spam messages with, so policy.spam.restrictAfter restricts nobody';

/**
 * Reports the spam message to the limiter: `reportSpamSync` when it has one (no promise), else
 * `reportSpam`. Its methods are read inside the call: a getter that throws is the limiter's failure.
 */
export function askSpamReport(limiter: RateLimiter, envelope: Envelope, restrictAfter: SpamRestrictAfter, now: Date, signal: AbortSignal | undefined): Verdict<unknown> | Pending {
  const report = new Report(envelope, restrictAfter, now);
  return ask(
    () => {
      const sync = limiter.reportSpamSync;
      if (sync !== undefined) return sync.call(limiter, report);
      const reportSpam = limiter.reportSpam;
      if (reportSpam === undefined) throw new Error(NO_REPORT_SPAM);
      return reportSpam.call(limiter, report);
    },
    checkSpamReport,
    false,
    signal,
  );
}

/**
 * Waits for a report that answered with a promise, under the rate limiter's deadline cut to what
 * is left of the decision's total (`elapsedMs` have gone to gathering and the rules).
 */
export async function awaitSpamReport(pending: Pending, policy: Policy, signal: AbortSignal | undefined, elapsedMs: number): Promise<Verdict<SpamReportResult>> {
  const left = Math.max(0, policy.deadlines.totalMs - elapsedMs);
  const consultation = new Consultation(left, signal, performance.now());
  const slot = consultation.watch(pending, policy.deadlines.rateLimiterMs);
  await consultation.settled();
  return consultation.verdict<SpamReportResult>(slot);
}

function windowText(window: SpamRestrictAfter['window']): string {
  return window === 'hour' ? 'the last hour' : 'the last 24 hours';
}

/**
 * The decision with the report's outcome: its verdict in `verdicts.spamReport`, and a
 * `spam-restriction` reason right after the deciding `spam` (the restriction is its consequence)
 * when the limiter restricted the sender, or a `provider-failed` note when the report failed.
 */
export function withSpamReport(decision: Decision, verdict: Verdict<SpamReportResult>, envelope: Envelope, restrictAfter: SpamRestrictAfter): Decision {
  const [decisive, ...notes] = decision.reasons;
  let reasons: Reason[];
  if (verdict.state === 'failed') {
    reasons = [
      decisive!,
      ...notes,
      {
        code: 'provider-failed',
        rule: 6,
        provider: 'rateLimiter',
        message: `The rateLimiter provider could not count this spam message for ${envelope.limitKey} (policy.spam.restrictAfter): ${verdict.error}.`,
      },
    ];
  } else {
    const result = verdict.state === 'provided' || verdict.state === 'given' ? verdict.value : null;
    const restriction = result?.restriction ?? null;
    if (result === null || restriction === null) return { ...decision, verdicts: { ...decision.verdicts, spamReport: verdict } };
    const { until } = restriction;
    reasons = [
      decisive!,
      {
        code: 'spam-restriction',
        rule: 6,
        message: `Spam message ${result.count} of ${envelope.limitKey} in ${windowText(restrictAfter.window)} reaches spam.restrictAfter (${restrictAfter.count}): the sender is now restricted ${until === null ? 'until released' : `until ${until}`} (${restrictAfter.action}); this message still leaves through the high-risk pool.`,
        detail: { count: result.count, window: restrictAfter.window, action: restrictAfter.action, until },
      },
      ...notes,
    ];
  }
  return { ...decision, reasons, verdicts: { ...decision.verdicts, spamReport: verdict } };
}
