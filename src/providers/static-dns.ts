// A resolver that answers from a zone object: for tests, demos, offline use and the conformance
// suites. It answers as `dns.promises.resolve` does against a recursive server holding the same
// zone, and takes its arguments as createDnsResolver does, so code written against it behaves the
// same against the real resolver:
// - ENOTFOUND for a name that does not exist (NXDOMAIN), ENODATA for a name without records of
//   the type (NODATA), with the `code`, `syscall` (`queryA`, `queryTxt`, …), `hostname` and
//   message of node:dns's errors. Names are compared as createDnsResolver asks them (case, a
//   trailing dot and U-labels normalised); one that cannot be a DNS name gets EBADNAME.
// - CNAME chains are followed for every type but CNAME itself, as a recursive resolver does
//   (RFC 1034 §3.6.2, §4.3.2 step 3.a): an alias answers with its target's records, and gives
//   ENOTFOUND when the target does not exist. A chain that loops, or runs longer than
//   MAX_CNAME_CHAIN links, fails with ESERVFAIL, as a recursive server answers it: a broken zone
//   is a failure, never taken for "no such record".
// - Records in node:dns's shapes: A/AAAA/CNAME/NS/PTR as strings, MX as `{ exchange, priority }`
//   (a null MX's exchange `''`), TXT as arrays of chunks. Types node:dns knows but a zone cannot
//   hold (SOA, SRV, CAA, NAPTR) get ENODATA; other types are refused, as createDnsResolver
//   refuses them.

import { dnsQueryName } from '../dns/query-name.js';
import { OutboundPoolsError, show } from '../errors.js';
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
  /**
   * The name is an alias of this one target (a name has at most one CNAME, RFC 2181 §10.1): every
   * query but CNAME is answered from the target, whatever other records the entry lists.
   */
  readonly CNAME?: readonly string[];
  /** Reverse-lookup names (`1.2.0.192.in-addr.arpa` → host names), as SPF's `ptr` asks. */
  readonly PTR?: readonly string[];
  readonly NS?: readonly string[];
  readonly fail?: 'ESERVFAIL' | 'ETIMEOUT' | 'EREFUSED';
}

/** Names (any case, U-labels allowed) to their records. */
export type StaticZone = Readonly<Record<string, StaticZoneEntry>>;

/**
 * Links of a CNAME chain followed before the answer is SERVFAIL. Recursive servers stop at about
 * a dozen restarts (BIND's max-query-restarts is 11); no real zone needs more than a few.
 */
const MAX_CNAME_CHAIN = 16;

/** The types createDnsResolver looks up (any case), as node:dns names them. */
const RRTYPES: ReadonlySet<string> = new Set(['A', 'AAAA', 'CAA', 'CNAME', 'MX', 'NAPTR', 'NS', 'PTR', 'SOA', 'SRV', 'TXT']);

/** The syscall node:dns names in its errors: `queryA`, `queryAaaa`, `queryTxt`, … */
const SYSCALLS = new Map([...RRTYPES].map((type) => [type, `query${type.charAt(0)}${type.slice(1).toLowerCase()}`]));

/** node:dns's error for a DNS answer. */
export interface StaticDnsError extends Error {
  readonly code: string;
  readonly syscall: string;
  readonly hostname: string;
}

/**
 * A DNS error as node:dns makes it (`code`, `syscall`, `hostname`, message `queryTxt ENODATA
 * name`), an `instanceof Error`, but without a captured stack trace: a negative answer from the
 * zone is an ordinary answer, not a fault, and capturing a stack costs more than a hundred
 * times the lookup itself.
 */
function dnsError(code: string, rrtype: string, hostname: string): StaticDnsError {
  const syscall = SYSCALLS.get(rrtype)!;
  const message = `${syscall} ${code} ${hostname}`;
  // An object literal with Error.prototype: one allocation, no stack capture, still `instanceof Error`.
  return { __proto__: Error.prototype, message, stack: `Error: ${message}`, code, syscall, hostname } as unknown as StaticDnsError;
}

function copyRecords(type: string, entry: StaticZoneEntry): unknown[] | undefined {
  switch (type) {
    case 'TXT':
      return entry.TXT?.map((record) => (typeof record === 'string' ? [record] : [...record]));
    case 'MX':
      return entry.MX?.map(({ exchange, priority }) => ({ exchange: exchange === '.' ? '' : exchange, priority }));
    case 'A':
    case 'AAAA':
    case 'CNAME':
    case 'PTR':
    case 'NS': {
      const records = entry[type];
      return records === undefined ? undefined : type === 'CNAME' ? records.slice(0, 1) : [...records];
    }
    default:
      return undefined;
  }
}

/**
 * A {@link DnsResolver} answering from `zone` as `dns.promises.resolve` answers from a recursive
 * server holding it (see the top of this file): CNAME chains followed, node:dns's error codes and
 * record shapes. Answers are fresh copies. A negative answer is a rejection with `code`
 * `ENOTFOUND` or `ENODATA`, made without a stack trace so that it costs about what a positive
 * one does. `lookupSync` is the same lookup, answered (or thrown) at once.
 *
 * @throws {OutboundPoolsError} `invalid-context` (as a rejection) when `name` is not a string or
 *   `rrtype` is not a type createDnsResolver looks up.
 */
export function createStaticResolver(zone: StaticZone): DnsResolver & { readonly lookupSync: SyncDnsLookup } {
  const entries = new Map<string, StaticZoneEntry>();
  for (const [name, entry] of Object.entries(zone)) {
    entries.set(dnsQueryName(name) ?? name.toLowerCase().replace(/\.$/, ''), entry);
  }
  /** The records, or the negative answer or failure as node:dns's error: returned, not thrown (a throw costs a stack capture). */
  const answer = (name: string, rrtype: string): unknown[] | StaticDnsError => {
    if (typeof name !== 'string' || typeof rrtype !== 'string') {
      throw new OutboundPoolsError('invalid-context', 'The DNS resolver takes (name: string, rrtype: string).');
    }
    const type = rrtype.toUpperCase();
    if (!RRTYPES.has(type)) {
      throw new OutboundPoolsError('invalid-context', `The DNS resolver does not look up ${show(rrtype)}; it takes ${[...RRTYPES].join(', ')}.`);
    }
    let current = dnsQueryName(name);
    if (current === null) return dnsError('EBADNAME', type, name);
    for (let links = 0; ; links++) {
      const entry = entries.get(current);
      if (entry === undefined) return dnsError('ENOTFOUND', type, name);
      if (entry.fail !== undefined) return dnsError(entry.fail, type, name);
      const alias = entry.CNAME?.[0];
      // RFC 1034 §4.3.2: an alias answers for its target, except to a query for the CNAME itself.
      if (alias !== undefined && type !== 'CNAME') {
        if (links === MAX_CNAME_CHAIN) return dnsError('ESERVFAIL', type, name);
        current = dnsQueryName(alias);
        // A target that cannot be a name (a broken zone): what a recursive server answers, SERVFAIL.
        if (current === null) return dnsError('ESERVFAIL', type, name);
        continue;
      }
      const records = copyRecords(type, entry);
      return records === undefined || records.length === 0 ? dnsError('ENODATA', type, name) : records;
    }
  };
  const lookupSync: SyncDnsLookup = (name: string, rrtype: string) => {
    const records = answer(name, rrtype);
    if (Array.isArray(records)) return records;
    throw records;
  };
  // The promise form is the DnsResolver contract (mailauth awaits it); decidePool uses the
  // synchronous form directly, so an in-memory zone costs no promise. A negative answer is a
  // rejection made without a throw: V8 captures a stack for every throw of a non-native error.
  const resolver = (name: string, rrtype: string): Promise<unknown> => {
    let records: unknown[] | StaticDnsError;
    try {
      records = answer(name, rrtype);
    } catch (error) {
      return Promise.reject(error);
    }
    return Array.isArray(records) ? Promise.resolve(records) : Promise.reject(records);
  };
  return Object.assign(resolver, { lookupSync });
}
