// The shipped DNS resolver (SPEC §4): node:dns (c-ares) behind a bounded lru-cache, with
// concurrent identical queries coalesced into one upstream query and a hard timeout per try.
// It keeps node:dns's contract — `resolve(name, rrtype)`, ENOTFOUND for NXDOMAIN, ENODATA for
// NODATA, any other code is a failure — so decidePool and mailauth can share one instance.
//
// Why not hand c-ares `{ timeout, tries }` and be done: c-ares backs off exponentially between
// tries and checks its timers coarsely (measured on Node 20 / c-ares 1.34: timeout 100 ms ×
// 3 tries gave ETIMEOUT after 1.7 s), and node:dns cannot cancel one query. So each try is one
// c-ares query to one server with its own timer; a try that times out or meets a server-level
// failure (SERVFAIL, REFUSED, connection refused) moves on to the next server, the way a stub
// resolver walks resolv.conf. A whole lookup therefore ends within `timeoutMs × tries`.
//
// Under a burst (thousands of decisions for hundreds of new domains) two more things matter.
// UDP has no flow control: hundreds of queries sent at once overflow a socket buffer (the
// server's, or ours for the answers) and are dropped without a word, then retried — so at most
// `maxInFlight` queries are on the wire at once, the rest wait here. And a lost datagram should
// not cost a fixed 2 s: a try that is not the last waits the server's retransmission timeout,
// estimated from its answers as TCP does (RFC 6298 §2: smoothed RTT + 4 × its variation), at
// least MIN_RETRY_MS and at most `timeoutMs`; the last try waits `timeoutMs`.

import { promises as dnsPromises } from 'node:dns';
import { isIPv4, isIPv6 } from '../ip.js';
import { lruCacheClass } from '../lru.js';
import { dnsQueryName } from '../dns/query-name.js';
import { OutboundPoolsError, show } from '../errors.js';
import { isRecord, settingsObject } from '../settings.js';
import type { DnsResolver } from './types.js';

/**
 * The cache of {@link createDnsResolver}. Seconds may have fractions.
 *
 * node:dns reports TTLs for A and AAAA answers only (`resolve4`/`resolve6` with `{ ttl: true }`);
 * for every other type (MX, TXT, PTR, …) the TTL is unknown and the answer is kept for
 * `maxTtlSeconds`. Keep that short enough for the MX and TXT (SPF, DKIM, DMARC) records you
 * look up.
 */
export interface DnsCacheOptions {
  /** Most (name, type) answers kept, positive and negative together; least recently used go first. Default 10,000. */
  readonly maxEntries?: number;
  /**
   * Most bytes the kept answers take, by an estimate of their size (each string its length plus
   * 32, each record 32, each name twice): least recently used go first, and an answer larger
   * than a tenth of this is not kept. Sender domains are the client's to choose, and a domain
   * can serve 64 KB TXT answers: the count alone would let 10,000 of them take 700 MB. Default
   * 32 MiB (10,000 typical answers take under 4 MB).
   */
  readonly maxBytes?: number;
  /** Longest time an answer is kept, and the time for answers without a TTL (all but A/AAAA). Default 300. */
  readonly maxTtlSeconds?: number;
  /** Shortest time an A/AAAA answer is kept, whatever its TTL says. Default 0: a TTL of 0 is not cached. */
  readonly minTtlSeconds?: number;
  /**
   * How long NXDOMAIN (ENOTFOUND) and NODATA (ENODATA) are kept (RFC 2308 negative caching;
   * node:dns does not expose the SOA minimum, so this is fixed). 0 turns negative caching off. Default 60.
   */
  readonly negativeTtlSeconds?: number;
}

/** Options of {@link createDnsResolver}; every one is optional. */
export interface DnsResolverOptions {
  /**
   * DNS servers, asked in order: `'192.0.2.53'`, `'127.0.0.1:5353'`, `'2001:db8::53'`,
   * `'[2001:db8::53]:5353'`. Default: the system's (what `new dns.Resolver().getServers()` reads).
   */
  readonly servers?: readonly string[];
  /** How long one try waits for an answer, in milliseconds. Default 2000. */
  readonly timeoutMs?: number;
  /**
   * How many tries a lookup makes in all, each to the next server in turn. A try ends early on
   * SERVFAIL, REFUSED or connection refused; then the next try goes out at once. Default 2.
   */
  readonly tries?: number;
  /** Cache settings, or `false` for no cache (concurrent identical queries are still coalesced). */
  readonly cache?: DnsCacheOptions | false;
  /**
   * Most queries on the wire at once (default 64); more wait, in order, and go out as answers
   * come back. UDP datagrams beyond what the sockets buffer are dropped silently and retried:
   * a bounded burst reaches the server once per name and type.
   */
  readonly maxInFlight?: number;
}

/** Counters of a {@link CachingDnsResolver} since it was created. */
export interface DnsResolverStats {
  /** Lookups that went upstream (each may have made up to `tries` tries). */
  readonly queries: number;
  /**
   * Queries sent on the wire: one per try (a lookup that timed out and tried again counts
   * twice). What the DNS servers received, unless a datagram was lost on the way.
   */
  readonly sent: number;
  /** Lookups answered from the cache, positive or negative. */
  readonly cacheHits: number;
  /** Lookups that joined an identical lookup already on its way upstream. */
  readonly coalesced: number;
  /** Upstream lookups that ended in a failure (timeout, SERVFAIL, refused, …). */
  readonly failures: number;
  /** Answers in the cache now (expired ones may still count until they are read). */
  readonly cached: number;
}

/**
 * A {@link DnsResolver} with a cache: call it as `resolver(name, rrtype)`, exactly like
 * `dns.promises.resolve`, or pass it as mailauth's `resolver` option.
 *
 * - Names are normalised before lookup and caching: case, one trailing dot, U-labels to
 *   A-labels (`Bücher.example` → `xn--bcher-kva.example`); names with `_` labels
 *   (`_dmarc.example.org`, `s1._domainkey.example.org`) are lowercased label by label.
 * - Types: A, AAAA, CAA, CNAME, MX, NAPTR, NS, PTR, SOA, SRV, TXT, in any case.
 * - Answers are the shapes of `dns.promises.resolve` (A/AAAA as address strings, MX as
 *   `{ exchange, priority }`, TXT as arrays of chunks), always a fresh copy: mutating one
 *   changes neither the cache nor what other callers get.
 * - Rejections carry node:dns's `code`, `syscall` and `hostname`: `ENOTFOUND` (NXDOMAIN) and
 *   `ENODATA` (no record of that type; also an empty answer, such as a CNAME to a name without
 *   the type) mean absence and are cached for `negativeTtlSeconds`. `ETIMEOUT`, `ESERVFAIL`,
 *   `EREFUSED`, `ECONNREFUSED`, `EBADNAME` and any other code are failures and never cached.
 * - A wrong argument (not a string, an unsupported type) rejects with an
 *   {@link OutboundPoolsError} `invalid-context`.
 */
export interface CachingDnsResolver extends DnsResolver {
  /** Counters since creation; a fresh object each call. */
  stats(): DnsResolverStats;
  /** Empties the cache. Lookups on their way upstream still answer their callers but are not cached. */
  clear(): void;
}

/** The record types node:dns's `resolve` takes on Node 20. */
const RRTYPES: ReadonlySet<string> = new Set(['A', 'AAAA', 'CAA', 'CNAME', 'MX', 'NAPTR', 'NS', 'PTR', 'SOA', 'SRV', 'TXT']);
/** Server-level failures: another server (or the same one, later) may answer. */
const NEXT_SERVER: ReadonlySet<string> = new Set(['ETIMEOUT', 'ESERVFAIL', 'EREFUSED', 'ECONNREFUSED']);

const DEFAULTS = { timeoutMs: 2000, tries: 2, maxInFlight: 64 } as const;
/**
 * The shortest wait before a try that is not the last gives up (RFC 6298 says 1 s for TCP; a
 * resolver answers in milliseconds, but a busy machine can stall a process for tens of them).
 */
const MIN_RETRY_MS = 200;
const CACHE_DEFAULTS = { maxEntries: 10_000, maxBytes: 32 * 1024 * 1024, maxTtlSeconds: 300, minTtlSeconds: 0, negativeTtlSeconds: 60 } as const;
const LIMITS = { timeoutMs: 600_000, tries: 10, maxEntries: 10_000_000, maxBytes: 2 ** 40, ttlSeconds: 7 * 86_400, maxInFlight: 100_000 } as const;
const OPTION_KEYS = ['servers', 'timeoutMs', 'tries', 'cache', 'maxInFlight'] as const;
const CACHE_KEYS = ['maxEntries', 'maxBytes', 'maxTtlSeconds', 'minTtlSeconds', 'negativeTtlSeconds'] as const;

// ---------------------------------------------------------------------------------------------
// Options, validated once
// ---------------------------------------------------------------------------------------------

interface CacheSettings {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly maxTtlMs: number;
  readonly minTtlMs: number;
  readonly negativeTtlMs: number;
}

interface Settings {
  /** node:dns server strings, validated and normalised. */
  readonly servers: readonly string[];
  readonly timeoutMs: number;
  readonly tries: number;
  readonly maxInFlight: number;
  readonly cache: CacheSettings | null;
}

function invalid(message: string): OutboundPoolsError {
  return new OutboundPoolsError('invalid-context', `createDnsResolver: ${message}`);
}

function record(value: unknown, path: string, known: readonly string[]): Record<string, unknown> {
  return settingsObject(value, path, known, invalid);
}

function integer(value: unknown, path: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${path} must be a whole number from ${min} to ${max}, got ${typeof value === 'number' ? value : show(value)}.`);
  }
  return value;
}

function seconds(value: unknown, path: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalid(`${path} must be a number of seconds from ${min} to ${max}, got ${typeof value === 'number' ? value : show(value)}.`);
  }
  return value;
}

/**
 * One server as node:dns's setServers wants it. Parsed here because setServers silently wraps
 * a port over 65535 (`:99999` becomes `:34463`) and aborts the process on port 0 (Node 20).
 */
function serverAddress(value: unknown, path: string): string {
  const bad = (): OutboundPoolsError =>
    invalid(`${path} ${show(value)} is not a DNS server; use an IP address with an optional port: '192.0.2.53', '127.0.0.1:5353', '2001:db8::53', '[2001:db8::53]:5353'.`);
  if (typeof value !== 'string') throw bad();
  const match = /^\[([^\]]+)\]:(\d{1,5})$/.exec(value) ?? /^([^:]+):(\d{1,5})$/.exec(value);
  const host = match === null ? value : match[1]!;
  const port = match === null ? 53 : Number(match[2]);
  const v4 = isIPv4(host);
  if ((!v4 && !isIPv6(host)) || port < 1 || port > 65_535) throw bad();
  if (port === 53) return host;
  return v4 ? `${host}:${port}` : `[${host}]:${port}`;
}

function settingsOf(options: unknown): Settings {
  const given = record(options, 'options', OPTION_KEYS);
  let servers: string[];
  if (given.servers === undefined) {
    servers = new dnsPromises.Resolver().getServers();
    if (servers.length === 0) throw invalid('the system has no DNS servers configured (/etc/resolv.conf); give servers.');
  } else {
    if (!Array.isArray(given.servers) || given.servers.length === 0) {
      throw invalid(`servers must be a non-empty array such as ['127.0.0.1:5353'] (leave it out for the system's servers), got ${show(given.servers)}.`);
    }
    servers = given.servers.map((server, index) => serverAddress(server, `servers[${index}]`));
  }
  const timeoutMs = integer(given.timeoutMs, 'timeoutMs', 1, LIMITS.timeoutMs, DEFAULTS.timeoutMs);
  const tries = integer(given.tries, 'tries', 1, LIMITS.tries, DEFAULTS.tries);
  const maxInFlight = integer(given.maxInFlight, 'maxInFlight', 1, LIMITS.maxInFlight, DEFAULTS.maxInFlight);
  if (given.cache === false) return { servers, timeoutMs, tries, maxInFlight, cache: null };
  if (given.cache !== undefined && !isRecord(given.cache)) {
    throw invalid(`cache must be an object (use {} for the defaults) or false, got ${show(given.cache)}.`);
  }
  const cache = record(given.cache, 'cache', CACHE_KEYS);
  const maxEntries = integer(cache.maxEntries, 'cache.maxEntries', 1, LIMITS.maxEntries, CACHE_DEFAULTS.maxEntries);
  const maxBytes = integer(cache.maxBytes, 'cache.maxBytes', 1024, LIMITS.maxBytes, CACHE_DEFAULTS.maxBytes);
  const maxTtl = seconds(cache.maxTtlSeconds, 'cache.maxTtlSeconds', 0, LIMITS.ttlSeconds, CACHE_DEFAULTS.maxTtlSeconds);
  const minTtl = seconds(cache.minTtlSeconds, 'cache.minTtlSeconds', 0, LIMITS.ttlSeconds, Math.min(CACHE_DEFAULTS.minTtlSeconds, maxTtl));
  if (minTtl > maxTtl) throw invalid(`cache.minTtlSeconds (${minTtl}) must not be above cache.maxTtlSeconds (${maxTtl}).`);
  const negativeTtl = seconds(cache.negativeTtlSeconds, 'cache.negativeTtlSeconds', 0, LIMITS.ttlSeconds, CACHE_DEFAULTS.negativeTtlSeconds);
  return { servers, timeoutMs, tries, maxInFlight, cache: { maxEntries, maxBytes, maxTtlMs: maxTtl * 1000, minTtlMs: minTtl * 1000, negativeTtlMs: negativeTtl * 1000 } };
}

// ---------------------------------------------------------------------------------------------
// Names, answers and errors
// ---------------------------------------------------------------------------------------------

/** What one upstream lookup found; kept in the cache (records and absence) and never handed out. */
type Outcome =
  | { readonly kind: 'records'; readonly records: unknown; readonly ttlMs: number | undefined }
  | { readonly kind: 'absent'; readonly code: 'ENOTFOUND' | 'ENODATA' }
  | { readonly kind: 'failure'; readonly code: string };

/** An estimate of what a cached answer takes in memory: each string its length plus 32, each object or array 32, the key twice. */
function outcomeBytes(key: string, outcome: Outcome): number {
  let bytes = 64 + 2 * key.length;
  const stack: unknown[] = [outcome.kind === 'records' ? outcome.records : null];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') bytes += 32 + value.length;
    else if (Array.isArray(value)) {
      bytes += 32;
      for (const item of value) stack.push(item);
    } else if (typeof value === 'object' && value !== null) {
      bytes += 32;
      for (const item of Object.values(value)) stack.push(item);
    } else bytes += 8;
  }
  return Math.ceil(bytes);
}

const NODATA: Outcome = { kind: 'absent', code: 'ENODATA' };
const NXDOMAIN: Outcome = { kind: 'absent', code: 'ENOTFOUND' };
const TIMED_OUT: Outcome = { kind: 'failure', code: 'ETIMEOUT' };

type Copier = (records: unknown) => unknown;
const copyStrings: Copier = (records) => (records as string[]).slice();
/** Fresh copies of answers, by type; the shapes are node:dns's. */
const COPIERS: Readonly<Record<string, Copier>> = {
  A: copyStrings,
  AAAA: copyStrings,
  CNAME: copyStrings,
  NS: copyStrings,
  PTR: copyStrings,
  MX: (records) => (records as { exchange: string; priority: number }[]).map(({ exchange, priority }) => ({ exchange, priority })),
  TXT: (records) => (records as string[][]).map((chunks) => chunks.slice()),
};

function copyAnswer(rrtype: string, records: unknown): unknown {
  return (COPIERS[rrtype] ?? structuredClone)(records);
}

/** An error as node:dns makes them: `queryMx ENOTFOUND example.org`, with code, syscall and hostname. */
function dnsError(code: string, rrtype: string, hostname: string): Error & { code: string; syscall: string; hostname: string } {
  const syscall = `query${rrtype.charAt(0)}${rrtype.slice(1).toLowerCase()}`;
  return Object.assign(new Error(`${syscall} ${code} ${hostname}`), { code, syscall, hostname });
}

function outcomeOfError(error: unknown): Outcome {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ENOTFOUND') return NXDOMAIN;
  if (code === 'ENODATA') return NODATA;
  return { kind: 'failure', code: typeof code === 'string' && code.length > 0 ? code : 'EUNKNOWN' };
}

// ---------------------------------------------------------------------------------------------
// Upstream
// ---------------------------------------------------------------------------------------------

/** One c-ares query. A and AAAA go through resolve4/resolve6 for their TTLs. */
async function queryOnce(channel: dnsPromises.Resolver, name: string, rrtype: string): Promise<Outcome> {
  if (rrtype === 'A' || rrtype === 'AAAA') {
    const rows = rrtype === 'A' ? await channel.resolve4(name, { ttl: true }) : await channel.resolve6(name, { ttl: true });
    if (rows.length === 0) return NODATA;
    let ttl = Infinity;
    const addresses = rows.map((row) => {
      if (row.ttl < ttl) ttl = row.ttl;
      return row.address;
    });
    return { kind: 'records', records: addresses, ttlMs: ttl * 1000 };
  }
  const records: unknown = await channel.resolve(name, rrtype);
  if (Array.isArray(records) && records.length === 0) return NODATA;
  return { kind: 'records', records, ttlMs: undefined };
}

/** One try: the query, or ETIMEOUT after `timeoutMs`. A query left behind ends on c-ares's own timer. */
function tryOnce(channel: dnsPromises.Resolver, name: string, rrtype: string, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs, TIMED_OUT);
    queryOnce(channel, name, rrtype).then(
      (outcome) => {
        clearTimeout(timer);
        resolve(outcome);
      },
      (error: unknown) => {
        clearTimeout(timer);
        resolve(outcomeOfError(error));
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------
// The resolver
// ---------------------------------------------------------------------------------------------

/**
 * Creates the shipped {@link DnsResolver}: node:dns with a bounded cache of positive and
 * negative answers, concurrent identical queries coalesced into one upstream query, and a
 * timeout per try. Options are checked here, once.
 *
 * ```ts
 * const dns = createDnsResolver({ servers: ['127.0.0.1:5353'], timeoutMs: 1500, tries: 2 });
 * await dns('example.org', 'MX'); // [{ exchange: 'mx.example.org', priority: 10 }]
 * const decision = await decidePool(message, { policy, providers: { dns } });
 * ```
 *
 * @throws {OutboundPoolsError} `invalid-context` for an unknown option or a value out of range.
 */
export function createDnsResolver(options: DnsResolverOptions = {}): CachingDnsResolver {
  const settings = settingsOf(options);
  const { timeoutMs, tries } = settings;
  // One channel per server, each asking only that server once (c-ares `tries: 1`): the order,
  // the retries and the timeouts are ours.
  const channels = settings.servers.map((server) => {
    const channel = new dnsPromises.Resolver({ timeout: timeoutMs, tries: 1 });
    channel.setServers([server]);
    return { channel, srtt: 0, rttvar: 0, samples: 0 };
  });
  type Upstream = (typeof channels)[number];
  /** RFC 6298 §2.2–2.3: folds one round trip into the server's estimate. */
  const observe = (upstream: Upstream, rttMs: number): void => {
    if (upstream.samples++ === 0) {
      upstream.srtt = rttMs;
      upstream.rttvar = rttMs / 2;
    } else {
      upstream.rttvar = 0.75 * upstream.rttvar + 0.25 * Math.abs(upstream.srtt - rttMs);
      upstream.srtt = 0.875 * upstream.srtt + 0.125 * rttMs;
    }
  };
  /** How long a try that is not the last waits: the server's retransmission timeout. */
  const retryAfter = (upstream: Upstream): number =>
    upstream.samples === 0 ? timeoutMs : Math.min(timeoutMs, Math.max(MIN_RETRY_MS, Math.ceil(upstream.srtt + 4 * upstream.rttvar)));

  // The queries on the wire, at most maxInFlight; the rest wait in arrival order.
  let onTheWire = 0;
  let waiting: (() => void)[] = [];
  let waitingHead = 0;
  const takeSlot = (): Promise<void> | undefined => {
    if (onTheWire < settings.maxInFlight) {
      onTheWire++;
      return undefined;
    }
    return new Promise((resolve) => waiting.push(resolve));
  };
  /** Hands the slot to the next waiting query, or frees it. */
  const releaseSlot = (): void => {
    if (waitingHead < waiting.length) {
      const next = waiting[waitingHead]!;
      waiting[waitingHead++] = undefined as unknown as () => void;
      if (waitingHead === waiting.length) {
        waiting = [];
        waitingHead = 0;
      }
      next();
    } else onTheWire--;
  };
  const cacheSettings = settings.cache;
  const cache =
    cacheSettings === null
      ? null
      : new (lruCacheClass())<string, Outcome>({
          max: cacheSettings.maxEntries,
          maxSize: cacheSettings.maxBytes,
          maxEntrySize: Math.max(1, Math.floor(cacheSettings.maxBytes / 10)),
          sizeCalculation: (outcome, key) => outcomeBytes(key, outcome),
        });
  const inflight = new Map<string, Promise<Outcome>>();
  let generation = 0;
  let queries = 0;
  let sent = 0;
  let cacheHits = 0;
  let coalesced = 0;
  let failures = 0;

  /** The time to keep an outcome, in milliseconds; 0 for not at all. */
  function keepFor(outcome: Outcome): number {
    if (cacheSettings === null || outcome.kind === 'failure') return 0;
    if (outcome.kind === 'absent') return cacheSettings.negativeTtlMs;
    if (outcome.ttlMs === undefined) return cacheSettings.maxTtlMs;
    return Math.min(Math.max(outcome.ttlMs, cacheSettings.minTtlMs), cacheSettings.maxTtlMs);
  }

  async function lookUpstream(name: string, rrtype: string): Promise<Outcome> {
    let outcome = TIMED_OUT;
    for (let attempt = 0; attempt < tries; attempt++) {
      const upstream = channels[attempt % channels.length]!;
      const wait = takeSlot();
      if (wait !== undefined) await wait;
      sent++;
      const started = performance.now();
      outcome = await tryOnce(upstream.channel, name, rrtype, attempt === tries - 1 ? timeoutMs : retryAfter(upstream));
      releaseSlot();
      if (outcome !== TIMED_OUT) observe(upstream, performance.now() - started);
      if (outcome.kind !== 'failure' || !NEXT_SERVER.has(outcome.code)) break;
    }
    return outcome;
  }

  function answer(outcome: Outcome, rrtype: string, hostname: string): Promise<unknown> {
    if (outcome.kind === 'records') return Promise.resolve(copyAnswer(rrtype, outcome.records));
    return Promise.reject(dnsError(outcome.code, rrtype, hostname));
  }

  const resolve = (name: string, rrtype: string): Promise<unknown> => {
    if (typeof name !== 'string' || typeof rrtype !== 'string') {
      return Promise.reject(new OutboundPoolsError('invalid-context', 'The DNS resolver takes (name: string, rrtype: string).'));
    }
    const type = rrtype.toUpperCase();
    if (!RRTYPES.has(type)) {
      return Promise.reject(new OutboundPoolsError('invalid-context', `The DNS resolver does not look up ${show(rrtype)}; it takes ${[...RRTYPES].join(', ')}.`));
    }
    const normalised = dnsQueryName(name);
    if (normalised === null) return Promise.reject(dnsError('EBADNAME', type, name));
    const key = `${type}:${normalised}`;
    const cached = cache?.get(key);
    if (cached !== undefined) {
      cacheHits++;
      return answer(cached, type, name);
    }
    let pending = inflight.get(key);
    if (pending !== undefined) {
      coalesced++;
    } else {
      queries++;
      const started = generation;
      pending = lookUpstream(normalised, type).then((outcome) => {
        if (generation === started) {
          inflight.delete(key);
          const ttl = keepFor(outcome);
          if (ttl > 0) cache!.set(key, outcome, { ttl: Math.ceil(ttl) });
        }
        if (outcome.kind === 'failure') failures++;
        return outcome;
      });
      inflight.set(key, pending);
    }
    return pending.then((outcome) => answer(outcome, type, name));
  };

  return Object.assign(resolve, {
    stats: (): DnsResolverStats => ({ queries, sent, cacheHits, coalesced, failures, cached: cache?.size ?? 0 }),
    clear: (): void => {
      generation++;
      inflight.clear();
      cache?.clear();
    },
  });
}
