// Rule 7/8: was the sender of a forward verified when the message arrived? SPF pass for the
// sender's domain, or DKIM pass aligned with the envelope sender's or header From domain, or a
// validated ARC chain sealed last by a trusted intermediary that recorded either of those.

import { normaliseDomain } from '../address.js';
import type { Policy } from '../policy.js';
import type { AuthenticationVerdict, DkimVerdict, SpfVerdict } from '../providers/types.js';
import { isAligned } from './alignment.js';
import type { Envelope } from './types.js';

/** How a forward was verified, with the domain that passed. */
export interface Verification {
  readonly code: 'spf-pass' | 'dkim-pass' | 'arc-pass';
  readonly message: string;
  readonly domain: string;
}

/**
 * The sender's domain when `spf` is a pass for it. SPF checks one identity — the MAIL FROM's
 * domain, or the HELO's for a null sender (RFC 7208 §2.3, §2.4) — and vouches for that domain
 * only, with no alignment. A forward's sender is not null, so a pass for the HELO identity never
 * verifies it. A pass that does not name its domain vouches for nobody: the
 * identity rule holds alike for precomputed verdicts, mailauth's results, Authentication-Results
 * and ARC-Authentication-Results.
 */
function spfPasses(spf: SpfVerdict | undefined, senderDomain: string): string | null {
  if (spf?.result !== 'pass' || spf.domain === undefined || spf.identity === 'helo') return null;
  if (spf.domain === senderDomain) return senderDomain;
  return normaliseDomain(spf.domain) === senderDomain ? senderDomain : null;
}

/** The `d=` of a DKIM pass aligned with the envelope sender or header From; a pass counts only for the domain it names. */
function alignedDkimPass(signatures: readonly DkimVerdict[] | undefined, envelope: Envelope, policy: Policy): string | null {
  const sender = envelope.sender!.domain;
  for (const signature of signatures ?? []) {
    if (signature.result !== 'pass') continue;
    if (isAligned(signature.domain, sender, policy.relay.alignment)) return signature.domain;
    if (envelope.headerFromDomain !== null && isAligned(signature.domain, envelope.headerFromDomain, policy.relay.alignment)) {
      return signature.domain;
    }
  }
  return null;
}

/** The way the sender was verified at ingress, or null (rule 7: relay pool). */
export function verifyForward(auth: AuthenticationVerdict | undefined, envelope: Envelope, policy: Policy): Verification | null {
  if (auth === undefined || envelope.sender === null) return null;
  const sender = envelope.sender.domain;
  const spfDomain = spfPasses(auth.spf, sender);
  if (spfDomain !== null) return { code: 'spf-pass', domain: spfDomain, message: `SPF passed for ${spfDomain} at ingress.` };
  if (policy.relay.dkim) {
    const dkimDomain = alignedDkimPass(auth.dkim, envelope, policy);
    if (dkimDomain !== null) {
      return { code: 'dkim-pass', domain: dkimDomain, message: `DKIM passed at ingress for d=${dkimDomain}, ${policy.relay.alignment}ly aligned with the sender.` };
    }
  }
  const arc = auth.arc;
  if (policy.relay.trustedArcSealers.length > 0 && arc?.result === 'pass' && arc.sealer !== undefined) {
    const sealer = normaliseDomain(arc.sealer);
    if (sealer !== null && policy.relay.trustedArcSealers.includes(sealer)) {
      const vouched = spfPasses(arc.spf, sender) ?? (policy.relay.dkim ? alignedDkimPass(arc.dkim, envelope, policy) : null);
      if (vouched !== null) {
        return { code: 'arc-pass', domain: vouched, message: `ARC chain validated, sealed last by trusted ${sealer}, which saw ${vouched} pass.` };
      }
    }
  }
  return null;
}
