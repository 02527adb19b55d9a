// One line that tells an administrator which pool sent a message and why, the way the message
// trace of Microsoft 365 shows OutboundIpPoolName. Safe as a header field value or a log line.

import type { Decision } from './types.js';

/** Header field name suggested for the trace (`X-Outbound-Pool: <formatTrace(decision)>`). */
export const TRACE_HEADER = 'X-Outbound-Pool';

function printable(text: string): string {
  // Header-safe: no CR/LF or other controls, no non-ASCII (RFC 5322 field bodies are ASCII).
  return text.replace(/[^\x20-\x7e]/g, '?');
}

/**
 * `OutboundIpPoolName=RegularRelayOutboundPool; action=deliver; pool=relay; reasons=relay-unverified`
 * — plus `mail-from=` when SRS rewrote the sender and `reply=` for refusals. Provider failures
 * show as `provider-failed(spam)`.
 */
export function formatTrace(decision: Decision): string {
  const reasons = decision.reasons.map((reason) => (reason.provider ? `${reason.code}(${reason.provider})` : reason.code)).join(',');
  const parts = [
    `OutboundIpPoolName=${decision.poolName ?? 'none'}`,
    `action=${decision.action}`,
    `pool=${decision.pool ?? 'none'}`,
    `reasons=${reasons}`,
  ];
  if (decision.srs?.applied) parts.push(`mail-from=${decision.mailFrom}`);
  if (decision.reply !== null) parts.push(`reply="${decision.reply.line.replace(/"/g, "'")}"`);
  return printable(parts.join('; '));
}
