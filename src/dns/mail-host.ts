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

type Lookup = readonly unknown[] | 'nxdomain';

/** What an answer or a rejection of one lookup means; failures and garbage are thrown. */
function settleLookup(domain: string, rrtype: string, outcome: { records: unknown } | { error: unknown }): Lookup {
  if ('error' in outcome) {
    const { error } = outcome;
    if ((error as { code?: unknown } | null)?.code === 'ENOTFOUND') return 'nxdomain';
    if (isAbsent(error)) return [];
    throw error;
  }
  return checkedRecords(domain, rrtype, outcome.records);
}

/** The records of an answer, checked; index loops read holes as undefined, refused like garbage. */
function checkedRecords(domain: string, rrtype: string, records: unknown): Lookup {
  if (!Array.isArray(records)) throw new GarbageError(`the resolver answered ${rrtype} ${domain} with ${typeof records}, not an array`);
  if (rrtype === 'A' || rrtype === 'AAAA') {
    for (let i = 0; i < records.length; i++) {
      if (typeof records[i] !== 'string') throw new GarbageError(`the resolver answered ${rrtype} ${domain} with something other than address strings`);
    }
  }
  return records as readonly unknown[];
}

/** Records of one type; `'nxdomain'` when the name does not exist; failures and garbage are thrown. */
async function lookup(resolve: DnsResolver, domain: string, rrtype: string): Promise<Lookup> {
  let outcome: { records: unknown } | { error: unknown };
  try {
    outcome = { records: await resolve(domain, rrtype) };
  } catch (error) {
    outcome = { error };
  }
  return settleLookup(domain, rrtype, outcome);
}

/** The same lookup through a synchronous resolver (see {@link SyncDnsLookup}). */
function lookupSync(resolve: SyncDnsLookup, domain: string, rrtype: string): Lookup {
  let records: unknown;
  try {
    records = resolve(domain, rrtype);
  } catch (error) {
    return settleLookup(domain, rrtype, { error });
  }
  return checkedRecords(domain, rrtype, records);
}

/**
 * A resolver that can answer at once, without a promise: `createStaticResolver` attaches one as
 * `resolver.lookupSync`. Same answers and errors as the resolver, thrown instead of rejected.
 */
export type SyncDnsLookup = (name: string, rrtype: string) => unknown;

/** The verdict from the MX answer, or null when A/AAAA must be asked (no MX). */
function fromMx(domain: string, mx: Lookup): SenderDomainVerdict | null {
  // NXDOMAIN: the name does not exist, so it has no A or AAAA either.
  if (mx === 'nxdomain') return { domain, receivesMail: false, basis: 'no-records' };
  if (mx.length === 0) return null;
  // Every record is checked (an index loop: a hole is garbage, where filter would skip it).
  let real = false;
  for (let i = 0; i < mx.length; i++) if (!isNullMx(mx[i])) real = true;
  return real ? { domain, receivesMail: true, basis: 'mx' } : { domain, receivesMail: false, basis: 'null-mx' };
}

/** The verdict from the A and AAAA lookups (each settled: records, or the failure to throw). */
function fromAddresses(domain: string, a: PromiseSettledResult<Lookup>, aaaa: PromiseSettledResult<Lookup>): SenderDomainVerdict {
  if (a.status === 'fulfilled' && a.value !== 'nxdomain' && a.value.length > 0) return { domain, receivesMail: true, basis: 'a' };
  if (aaaa.status === 'fulfilled' && aaaa.value !== 'nxdomain' && aaaa.value.length > 0) return { domain, receivesMail: true, basis: 'aaaa' };
  // Absence only counts as absence when both lookups found nothing; one failure leaves it unknown.
  if (a.status === 'rejected') throw a.reason;
  if (aaaa.status === 'rejected') throw aaaa.reason;
  return { domain, receivesMail: false, basis: 'no-records' };
}

function settledSync(run: () => Lookup): PromiseSettledResult<Lookup> {
  try {
    return { status: 'fulfilled', value: run() };
  } catch (reason) {
    return { status: 'rejected', reason };
  }
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
  const byMx = fromMx(domain, await lookup(resolve, domain, 'MX'));
  if (byMx !== null) return byMx;
  const [a, aaaa] = await Promise.allSettled([lookup(resolve, domain, 'A'), lookup(resolve, domain, 'AAAA')]);
  return fromAddresses(domain, a, aaaa);
}

/** {@link checkMailHost} through a synchronous lookup: the same questions, answered at once. */
export function checkMailHostSync(resolve: SyncDnsLookup, domain: string): SenderDomainVerdict {
  const byMx = fromMx(domain, lookupSync(resolve, domain, 'MX'));
  if (byMx !== null) return byMx;
  return fromAddresses(
    domain,
    settledSync(() => lookupSync(resolve, domain, 'A')),
    settledSync(() => lookupSync(resolve, domain, 'AAAA')),
  );
}
