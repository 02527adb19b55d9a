// DKIM/SPF identifier alignment in the sense of DMARC (RFC 7489 §3.1): relaxed means the same
// organisational (registrable) domain, found with the Public Suffix List via tldts; strict
// means the same domain.

import { normaliseDomain } from '../address.js';
import { registrableDomain } from '../public-suffix.js';

export { registrableDomain };

/** Whether two domains are aligned; both are normalised first, so case and U-labels do not matter. */
export function isAligned(a: string, b: string, mode: 'relaxed' | 'strict'): boolean {
  const left = normaliseDomain(a);
  const right = normaliseDomain(b);
  if (left === null || right === null) return false;
  if (left === right) return true;
  return mode === 'relaxed' && registrableDomain(left) === registrableDomain(right);
}
