// Rule 5's question, "can this domain receive mail?", asked through any DnsResolver:
// RFC 5321 §5.1: mail goes to the MX hosts, or to the domain's own address when there is no MX;
// RFC 7505: a single MX of "." (a null MX) says the domain accepts no mail at all.

import type { DnsResolver } from '../providers/types.js';
import { GarbageError } from '../decide/verdicts.js';
import type { SenderDomainVerdict } from '../decide/types.js';

/** Whether a resolver rejection means "no such name" or "no such record" rather than a failure. */
export function isAbsent(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOTFOUND' || code === 'ENODATA';
}

/** Records of one type; `'nxdomain'` when the name does not exist; failures and garbage are thrown. */
async function lookup(resolve: DnsResolver, domain: string, rrtype: string): Promise<readonly unknown[] | 'nxdomain'> {
  let records: unknown;
  try {
    records = await resolve(domain, rrtype);
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code === 'ENOTFOUND') return 'nxdomain';
    if (isAbsent(error)) return [];
    throw error;
  }
  if (!Array.isArray(records)) throw new GarbageError(`the resolver answered ${rrtype} ${domain} with ${typeof records}, not an array`);
  // Array.from turns holes into undefined, which the checks below refuse (filter would skip them).
  const list = Array.from(records as unknown[]);
  if ((rrtype === 'A' || rrtype === 'AAAA') && !list.every((address) => typeof address === 'string')) {
    throw new GarbageError(`the resolver answered ${rrtype} ${domain} with something other than address strings`);
  }
  return list;
}

function isNullMx(record: unknown): boolean {
  if (typeof record !== 'object' || record === null) throw new GarbageError('an MX record is not an object');
  const exchange = (record as { exchange?: unknown }).exchange;
  if (typeof exchange !== 'string') throw new GarbageError('an MX record has no exchange');
  return exchange === '' || exchange === '.';
}

/**
 * Whether `domain` (A-labels) can receive mail: a real MX, else an A or AAAA record. Queries MX
 * first and A/AAAA only when there is no MX, so most domains cost one query.
 *
 * @throws the resolver's error when a lookup fails (not when it finds nothing).
 */
export async function checkMailHost(resolve: DnsResolver, domain: string): Promise<SenderDomainVerdict> {
  const mx = await lookup(resolve, domain, 'MX');
  // NXDOMAIN: the name does not exist, so it has no A or AAAA either.
  if (mx === 'nxdomain') return { domain, receivesMail: false, basis: 'no-records' };
  if (mx.length > 0) {
    const real = mx.filter((record) => !isNullMx(record));
    return real.length > 0 ? { domain, receivesMail: true, basis: 'mx' } : { domain, receivesMail: false, basis: 'null-mx' };
  }
  const [a, aaaa] = await Promise.allSettled([lookup(resolve, domain, 'A'), lookup(resolve, domain, 'AAAA')]);
  if (a.status === 'fulfilled' && a.value !== 'nxdomain' && a.value.length > 0) return { domain, receivesMail: true, basis: 'a' };
  if (aaaa.status === 'fulfilled' && aaaa.value !== 'nxdomain' && aaaa.value.length > 0) return { domain, receivesMail: true, basis: 'aaaa' };
  // Absence only counts as absence when both lookups found nothing; one failure leaves it unknown.
  if (a.status === 'rejected') throw a.reason;
  if (aaaa.status === 'rejected') throw aaaa.reason;
  return { domain, receivesMail: false, basis: 'no-records' };
}
