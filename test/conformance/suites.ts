// The public conformance suites vendored under test/fixtures/conformance (see the README there):
// loading their cases, and turning a case's zone into a static resolver.
import { readFileSync } from 'node:fs';
import { createStaticResolver, type StaticZone, type StaticZoneEntry } from '../../src/providers/static-dns.js';
import type { DnsResolver } from '../../src/providers/types.js';

const FIXTURES = new URL('../fixtures/conformance/', import.meta.url);

/** One case of ValiMail's ARC validation suite. */
export interface ArcCase {
  readonly name: string;
  readonly description: string;
  readonly message: string;
  /** The expected chain validation result, lowercased: `pass`, `fail` or `none`. */
  readonly cv: string;
  readonly txtRecords: Readonly<Record<string, string>>;
}

/** Every case of `arc-draft-validation-tests.json`, in file order. */
export function arcCases(): ArcCase[] {
  const scenarios = JSON.parse(readFileSync(new URL('arc/arc-draft-validation-tests.json', FIXTURES), 'utf8')) as {
    tests: Record<string, { description: string; message: string; cv: string }>;
    'txt-records': Record<string, string>;
  }[];
  return scenarios.flatMap((scenario) =>
    Object.entries(scenario.tests).map(([name, test]) => ({
      name,
      description: test.description,
      message: test.message,
      cv: test.cv.trim().toLowerCase(),
      txtRecords: scenario['txt-records'],
    })),
  );
}

/** The records of a name as the SPF suite writes them (RFC 7208 suite schema). */
type SpfRecord = 'TIMEOUT' | Readonly<Record<string, string | number | readonly (string | number)[]>>;

/** One case of the RFC 7208 SPF suite. */
export interface SpfCase {
  readonly name: string;
  readonly scenario: string;
  readonly spec: string;
  readonly helo: string;
  readonly host: string;
  readonly mailfrom: string;
  /** The results the suite accepts (the first preferred). */
  readonly results: readonly string[];
  readonly resolver: DnsResolver;
}

function timeout(name: string, rrtype: string): Error & { code: string } {
  return Object.assign(new Error(`query${rrtype} ETIMEOUT ${name}`), { code: 'ETIMEOUT' });
}

/**
 * The resolver of a scenario: its zone through createStaticResolver, with the suite driver's
 * conventions (pyspf's testspf.py) for what a zone object cannot say: a TXT record is made from
 * each SPF-type record of a name that lists no TXT (RFC 7208 §3.1 retired the SPF type, and the
 * suite relies on its drivers to do so); "NONE" is no record; a bare TIMEOUT times out every query
 * of a type not listed before it; a `TYPE: TIMEOUT` times out that type; an unlisted name under
 * `error.` times out.
 */
function scenarioResolver(zonedata: Readonly<Record<string, readonly SpfRecord[]>>): DnsResolver {
  const zone: Record<string, { -readonly [K in keyof StaticZoneEntry]: StaticZoneEntry[K] }> = {};
  const timeouts = new Map<string, ReadonlySet<string> | 'all-but'>();
  const answering = new Map<string, Set<string>>();
  for (const [rawName, records] of Object.entries(zonedata)) {
    const name = rawName.toLowerCase().replace(/\.$/, '');
    const entry: { -readonly [K in keyof StaticZoneEntry]: StaticZoneEntry[K] } & { SPF?: (string | readonly string[])[] } = {};
    const listed = new Set<string>();
    // Types with a record before a bare TIMEOUT: the driver answers those, and times out the rest.
    const answered = new Set<string>();
    const timedOut = new Set<string>();
    let bareTimeout = false;
    const add = <K extends 'A' | 'AAAA' | 'PTR' | 'CNAME'>(key: K, value: string) => {
      entry[key] = [...(entry[key] ?? []), value];
    };
    for (const record of records) {
      if (record === 'TIMEOUT') {
        bareTimeout = true;
        break;
      }
      for (const [type, value] of Object.entries(record)) {
        listed.add(type);
        if (value === 'TIMEOUT') {
          timedOut.add(type);
          continue;
        }
        if (value === 'NONE') continue;
        answered.add(type);
        switch (type) {
          case 'TXT':
          case 'SPF': {
            const text = typeof value === 'string' ? value : (value as readonly string[]).map(String);
            if (type === 'TXT') entry.TXT = [...(entry.TXT ?? []), text];
            else entry.SPF = [...(entry.SPF ?? []), text];
            break;
          }
          case 'MX': {
            const [priority, exchange] = value as readonly [number, string];
            entry.MX = [...(entry.MX ?? []), { exchange: String(exchange), priority: Number(priority) }];
            break;
          }
          case 'A':
          case 'AAAA':
          case 'PTR':
          case 'CNAME':
            add(type, String(value));
            break;
          default:
            throw new Error(`the SPF suite's zone has a record type this driver does not know: ${type}`);
        }
      }
    }
    if (!listed.has('TXT') && entry.SPF !== undefined) entry.TXT = entry.SPF;
    delete entry.SPF;
    zone[name] = entry;
    if (bareTimeout) {
      timeouts.set(name, 'all-but');
      // TXT records made from SPF ones come after everything listed (testspf.py's getrdata), so
      // after the TIMEOUT too: a TXT query of such a name times out.
      answering.set(name, answered);
    } else if (timedOut.size > 0) {
      timeouts.set(name, timedOut);
    }
  }
  const answer = createStaticResolver(zone as StaticZone);
  const resolver = (name: string, rrtype: string): Promise<unknown> => {
    const key = name.toLowerCase().replace(/\.$/, '');
    const rule = timeouts.get(key);
    const type = rrtype.toUpperCase();
    if (rule === 'all-but' ? !answering.get(key)!.has(type) : rule?.has(type)) return Promise.reject(timeout(name, type));
    if (rule === undefined && zone[key] === undefined && key.startsWith('error.')) return Promise.reject(timeout(name, type));
    return answer(name, rrtype);
  };
  return resolver;
}

/** Every case of `rfc7208-tests.json`, in file order, each with its scenario's resolver. */
export function spfCases(): SpfCase[] {
  const scenarios = JSON.parse(readFileSync(new URL('spf/rfc7208-tests.json', FIXTURES), 'utf8')) as {
    description: string;
    tests: Record<string, { spec: string | number; helo: string; host: string; mailfrom: string; result: string | string[] }>;
    zonedata: Record<string, SpfRecord[]>;
  }[];
  return scenarios.flatMap((scenario) => {
    const resolver = scenarioResolver(scenario.zonedata);
    return Object.entries(scenario.tests).map(([name, test]) => ({
      name,
      scenario: scenario.description,
      spec: String(test.spec),
      helo: test.helo,
      host: test.host,
      mailfrom: test.mailfrom,
      results: typeof test.result === 'string' ? [test.result] : test.result,
      resolver,
    }));
  });
}
