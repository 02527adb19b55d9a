// A resolver that answers from a zone object: for tests, demos and offline use. It keeps
// node:dns's conventions (ENOTFOUND for an unknown name, ENODATA for a known name without the
// record type), so code written against it behaves the same against the real resolver.

import { normaliseDomain } from '../address.js';
import { OutboundPoolsError } from '../errors.js';
import type { SyncDnsLookup } from '../dns/mail-host.js';
import type { DnsResolver } from './types.js';

/** The records of one name. `fail` makes every query for the name fail with that DNS error code. */
export interface StaticZoneEntry {
  readonly A?: readonly string[];
  readonly AAAA?: readonly string[];
  /** `exchange: '.'` (or `''`) is a null MX. */
  readonly MX?: readonly { readonly exchange: string; readonly priority: number }[];
  /** Each record as one string, or as its chunks. */
  readonly TXT?: readonly (string | readonly string[])[];
  readonly CNAME?: readonly string[];
  readonly fail?: 'ESERVFAIL' | 'ETIMEOUT' | 'EREFUSED';
}

/** Names (any case, U-labels allowed) to their records. */
export type StaticZone = Readonly<Record<string, StaticZoneEntry>>;

function dnsError(code: string, rrtype: string, name: string): Error {
  const syscall = `query${rrtype.charAt(0)}${rrtype.slice(1).toLowerCase()}`;
  return Object.assign(new Error(`${syscall} ${code} ${name}`), { code, syscall, hostname: name });
}

/**
 * A {@link DnsResolver} answering from `zone`. Answers are fresh copies; unknown names reject with
 * `ENOTFOUND`, missing types with `ENODATA`, entries with `fail` with that code.
 */
export function createStaticResolver(zone: StaticZone): DnsResolver & { readonly lookupSync: SyncDnsLookup } {
  const entries = new Map<string, StaticZoneEntry>();
  for (const [name, entry] of Object.entries(zone)) {
    const key = normaliseDomain(name) ?? name.toLowerCase().replace(/\.$/, '');
    entries.set(key, entry);
  }
  const lookupSync: SyncDnsLookup = (name: string, rrtype: string) => {
    if (typeof name !== 'string' || typeof rrtype !== 'string') {
      throw new OutboundPoolsError('invalid-context', 'The DNS resolver takes (name: string, rrtype: string).');
    }
    // Names from decidePool are normalised already: try them as they are first.
    const entry = entries.get(name) ?? entries.get(normaliseDomain(name) ?? name.toLowerCase().replace(/\.$/, ''));
    if (entry === undefined) throw dnsError('ENOTFOUND', rrtype, name);
    if (entry.fail !== undefined) throw dnsError(entry.fail, rrtype, name);
    const type = rrtype.toUpperCase();
    const records = entry[type as 'A' | 'AAAA' | 'MX' | 'TXT' | 'CNAME'];
    if (records === undefined || records.length === 0) throw dnsError('ENODATA', type, name);
    if (type === 'TXT') return (records as StaticZoneEntry['TXT'])!.map((record) => (typeof record === 'string' ? [record] : [...record]));
    if (type === 'MX') return (records as StaticZoneEntry['MX'])!.map(({ exchange, priority }) => ({ exchange: exchange === '.' ? '' : exchange, priority }));
    return [...(records as readonly string[])];
  };
  // The promise form is the DnsResolver contract (mailauth awaits it); decidePool uses the
  // synchronous form directly, so an in-memory zone costs no promise.
  const resolver = async (name: string, rrtype: string) => lookupSync(name, rrtype);
  return Object.assign(resolver, { lookupSync });
}
