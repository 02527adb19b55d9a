// The shipped DNS resolver against a real DNS server: dnsmasq on loopback (test/servers/dnsmasq.ts),
// and a UDP socket that never answers. Query counts are read from dnsmasq's query log — what
// reached the server, not what the resolver thinks it sent. SPEC §4 (DNS resolver) and §6 (the
// burst target).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo } from 'node:dgram';
import type { DNSResolver } from 'mailauth';
import { spf } from 'mailauth/lib/spf/index.js';
import { normaliseDomain } from '../../src/address.js';
import { checkMailHost } from '../../src/dns/mail-host.js';
import { OutboundPoolsError } from '../../src/errors.js';
import { createDnsResolver, type CachingDnsResolver, type DnsResolverOptions } from '../../src/providers/dns.js';
import { startDnsmasq, startSilentDnsServer, type DnsmasqServer, type DnsmasqZone } from '../servers/dnsmasq.js';

const BURST_DOMAINS = 500;
const BURST_DECISIONS = 10_000;
/** The burst's A record of domain `i`: 500 of them, so over two /24s. */
const burstAddress = (i: number): string => `198.51.${100 + Math.floor(i / 250)}.${(i % 250) + 1}`;
/** A DKIM key record of a 2048-bit key: longer than one 255-octet character-string. */
const DKIM_RECORD = `v=DKIM1; k=rsa; p=${randomBytes(294).toString('base64')}`;

const ZONE: DnsmasqZone = {
  'a-only.zone.test': { A: ['192.0.2.1'] },
  'aaaa-only.zone.test': { AAAA: ['2001:db8::1'] },
  'mx-only.zone.test': { MX: [{ exchange: 'mail.zone.test', priority: 10 }] },
  'null-mx.zone.test': { MX: [{ exchange: '.', priority: 0 }], A: ['192.0.2.2'] },
  'mail.zone.test': { A: ['192.0.2.3'] },
  // IDN: the zone in A-labels, asked as Bücher.example.
  'xn--bcher-kva.example': { MX: [{ exchange: 'mx.xn--bcher-kva.example', priority: 5 }] },
  'short-ttl.zone.test': { A: ['192.0.2.4'], MX: [{ exchange: 'mail.zone.test', priority: 10 }], ttl: 1 },
  'copies.zone.test': { A: ['192.0.2.5', '192.0.2.6'], MX: [{ exchange: 'mail.zone.test', priority: 10 }], TXT: ['v=spf1 -all'] },
  'k1._domainkey.zone.test': { TXT: [DKIM_RECORD] },
  'spf.zone.test': { MX: [{ exchange: 'mail.spf.zone.test', priority: 10 }], TXT: ['v=spf1 mx -all'] },
  'mail.spf.zone.test': { A: ['198.51.100.25'] },
  'servfail.zone.test': { fail: 'ESERVFAIL' },
  ...Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`lru-${i}.zone.test`, { A: [`192.0.2.${10 + i}`] }])),
  // TXT answers of about 800 bytes by the cache's estimate (its byte bound), and one of about 4 KB.
  ...Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`kb-${i}.zone.test`, { TXT: [`v=kb${i} ${'x'.repeat(600)}`] }])),
  'big.zone.test': { TXT: [`v=big ${'y'.repeat(4_000)}`] },
  ...Object.fromEntries(
    Array.from({ length: BURST_DOMAINS }, (_, i) => [`burst-${i}.zone.test`, { A: [burstAddress(i)], MX: [{ exchange: `mx.burst-${i}.zone.test`, priority: 10 }] }]),
  ),
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The rejection of `promise`, which must reject. */
async function rejection(promise: Promise<unknown>): Promise<Error & { code?: unknown; syscall?: unknown; hostname?: unknown }> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  assert.fail('expected a rejection');
}

describe('createDnsResolver against a real DNS server (dnsmasq)', () => {
  let server: DnsmasqServer;
  const resolvers: CachingDnsResolver[] = [];

  before(async () => {
    server = await startDnsmasq(ZONE, { ttlSeconds: 300 });
  });
  after(async () => {
    await server?.stop();
  });

  /** A fresh resolver (own cache) asking the dnsmasq. */
  function resolverFor(options: Omit<DnsResolverOptions, 'servers'> = {}): CachingDnsResolver {
    const resolver = createDnsResolver({ servers: [server.address], timeoutMs: 1000, tries: 1, ...options });
    resolvers.push(resolver);
    return resolver;
  }

  /** Counts queries for `name`/`type` at the server from now on. */
  async function counter(name: string, type: string): Promise<() => Promise<number>> {
    const start = await server.queryCount({ name, type });
    return async () => (await server.queryCount({ name, type })) - start;
  }

  describe('answers and absence, with node:dns codes', () => {
    it('a name that does not exist (NXDOMAIN) rejects with ENOTFOUND, syscall and hostname as node:dns sets them', async () => {
      const error = await rejection(resolverFor()('nowhere.zone.test', 'MX'));
      assert.equal(error.code, 'ENOTFOUND');
      assert.equal(error.syscall, 'queryMx');
      assert.equal(error.hostname, 'nowhere.zone.test');
      assert.equal(error.message, 'queryMx ENOTFOUND nowhere.zone.test');
    });

    it('a name without records of the type (NODATA) rejects with ENODATA', async () => {
      const resolver = resolverFor();
      assert.equal((await rejection(resolver('a-only.zone.test', 'MX'))).code, 'ENODATA');
      assert.equal((await rejection(resolver('a-only.zone.test', 'AAAA'))).code, 'ENODATA');
      assert.equal((await rejection(resolver('aaaa-only.zone.test', 'A'))).code, 'ENODATA');
    });

    it('answers have the shapes of dns.promises.resolve: address strings, { exchange, priority }, TXT chunks', async () => {
      const resolver = resolverFor();
      assert.deepEqual(await resolver('copies.zone.test', 'A'), ['192.0.2.5', '192.0.2.6']);
      assert.deepEqual(await resolver('aaaa-only.zone.test', 'AAAA'), ['2001:db8::1']);
      assert.deepEqual(await resolver('mx-only.zone.test', 'MX'), [{ exchange: 'mail.zone.test', priority: 10 }]);
      assert.deepEqual(await resolver('copies.zone.test', 'TXT'), [['v=spf1 -all']]);
    });

    it('a null MX (RFC 7505) served by dnsmasq comes back as exchange "" with priority 0', async () => {
      assert.deepEqual(await resolverFor()('null-mx.zone.test', 'MX'), [{ exchange: '', priority: 0 }]);
    });

    it('a DKIM-sized TXT record comes back as its character-strings of at most 255 octets', async () => {
      const [record, ...others] = (await resolverFor()('k1._domainkey.zone.test', 'TXT')) as string[][];
      assert.equal(others.length, 0);
      assert.ok(record!.length >= 2, 'the key needs more than one character-string');
      assert.ok(record!.every((chunk) => chunk.length <= 255));
      assert.equal(record!.join(''), DKIM_RECORD);
    });

    it('case, a trailing dot and U-labels are normalised: Bücher.EXAMPLE. and xn--bcher-kva.example share one query', async () => {
      const resolver = resolverFor();
      const asked = await counter('xn--bcher-kva.example', 'MX');
      const expected = [{ exchange: 'mx.xn--bcher-kva.example', priority: 5 }];
      assert.deepEqual(await resolver('Bücher.EXAMPLE.', 'mx'), expected);
      assert.deepEqual(await resolver('xn--bcher-kva.example', 'MX'), expected);
      assert.deepEqual(await resolver('XN--BCHER-KVA.EXAMPLE', 'Mx'), expected);
      assert.equal(await asked(), 1);
      assert.deepEqual(resolver.stats(), { queries: 1, sent: 1, cacheHits: 2, coalesced: 0, failures: 0, cached: 1 });
    });
  });

  describe('checkMailHost through the resolver (rule 5)', () => {
    const rows = [
      { domain: 'mx-only.zone.test', basis: 'mx', receivesMail: true, says: 'a domain with only an MX receives mail at its MX, and A/AAAA are not asked' },
      { domain: 'a-only.zone.test', basis: 'a', receivesMail: true, says: 'a domain with only an A record receives mail at that address (RFC 5321 §5.1)' },
      { domain: 'aaaa-only.zone.test', basis: 'aaaa', receivesMail: true, says: 'a domain with only an AAAA record receives mail at that address' },
      { domain: 'null-mx.zone.test', basis: 'null-mx', receivesMail: false, says: 'a domain with a null MX receives no mail, even with an A record (RFC 7505)' },
      { domain: 'nowhere.zone.test', basis: 'no-records', receivesMail: false, says: 'a domain that does not exist receives no mail' },
      { domain: normaliseDomain('Bücher.example')!, basis: 'mx', receivesMail: true, says: 'an IDN domain (Bücher.example as A-labels) receives mail at its MX' },
    ] as const;
    for (const row of rows) {
      it(row.says, async () => {
        const resolver = resolverFor();
        const addressQueries = await counter(row.domain, 'A');
        assert.deepEqual(await checkMailHost(resolver, row.domain), { domain: row.domain, receivesMail: row.receivesMail, basis: row.basis });
        if (row.basis === 'mx' || row.basis === 'null-mx') assert.equal(await addressQueries(), 0, 'MX settles it');
      });
    }

    it('SERVFAIL is a failure, not absence: checkMailHost rejects with ESERVFAIL instead of saying "no records"', async () => {
      await assert.rejects(checkMailHost(resolverFor(), 'servfail.zone.test'), { code: 'ESERVFAIL' });
    });
  });

  describe('failures', () => {
    it('SERVFAIL rejects with ESERVFAIL and is never cached: the next lookup reaches the server again', async () => {
      const resolver = resolverFor();
      const asked = await counter('servfail.zone.test', 'MX');
      const first = await rejection(resolver('servfail.zone.test', 'MX'));
      assert.equal(first.code, 'ESERVFAIL');
      assert.equal(first.message, 'queryMx ESERVFAIL servfail.zone.test');
      assert.equal(await asked(), 1);
      assert.equal((await rejection(resolver('servfail.zone.test', 'MX'))).code, 'ESERVFAIL');
      assert.equal(await asked(), 2);
      assert.deepEqual(resolver.stats(), { queries: 2, sent: 2, cacheHits: 0, coalesced: 0, failures: 2, cached: 0 });
    });

    it('a server that never answers: ETIMEOUT within timeoutMs × tries, one datagram per try, and not cached', async () => {
      const silent = await startSilentDnsServer();
      try {
        const timeoutMs = 150;
        const tries = 3;
        const resolver = createDnsResolver({ servers: [silent.address], timeoutMs, tries });
        let started = performance.now();
        const error = await rejection(resolver('slow.zone.test', 'A'));
        const elapsed = performance.now() - started;
        assert.equal(error.code, 'ETIMEOUT');
        assert.equal(error.message, 'queryA ETIMEOUT slow.zone.test');
        assert.ok(elapsed >= timeoutMs * tries - 5, `gave up after ${elapsed.toFixed(0)} ms, before ${tries} tries of ${timeoutMs} ms`);
        assert.ok(elapsed < timeoutMs * tries + 400, `took ${elapsed.toFixed(0)} ms, over ${timeoutMs} ms × ${tries} tries`);
        assert.equal(silent.received, tries);

        started = performance.now();
        assert.equal((await rejection(resolver('slow.zone.test', 'A'))).code, 'ETIMEOUT');
        assert.ok(performance.now() - started >= timeoutMs * tries - 5, 'the second lookup waited again: the timeout was not cached');
        assert.equal(silent.received, 2 * tries);
        assert.equal(resolver.stats().cached, 0);
      } finally {
        await silent.stop();
      }
    });

    it('a try that times out moves on to the next server', async () => {
      const silent = await startSilentDnsServer();
      try {
        const resolver = createDnsResolver({ servers: [silent.address, server.address], timeoutMs: 150, tries: 2 });
        const started = performance.now();
        assert.deepEqual(await resolver('a-only.zone.test', 'A'), ['192.0.2.1']);
        assert.ok(performance.now() - started >= 145);
        assert.equal(silent.received, 1);
      } finally {
        await silent.stop();
      }
    });

    it('a name that cannot be a DNS name rejects with EBADNAME without a query', async () => {
      const resolver = resolverFor();
      for (const name of ['a..zone.test', 'white space.zone.test', `${'x'.repeat(64)}.zone.test`, '', '_dmarc.zo\u00ADne.test', '_dmarc.zone\u3002test']) {
        assert.equal((await rejection(resolver(name, 'A'))).code, 'EBADNAME', JSON.stringify(name));
      }
      assert.equal(resolver.stats().queries, 0);
    });
  });

  describe('the cache', () => {
    it('negative answers (NXDOMAIN and NODATA) are cached for negativeTtlSeconds, then asked again', async () => {
      const resolver = resolverFor({ cache: { negativeTtlSeconds: 0.5 } });
      const nxdomain = await counter('negative.zone.test', 'A');
      const nodata = await counter('a-only.zone.test', 'TXT');
      for (let i = 0; i < 3; i++) {
        assert.equal((await rejection(resolver('negative.zone.test', 'A'))).code, 'ENOTFOUND');
        assert.equal((await rejection(resolver('a-only.zone.test', 'TXT'))).code, 'ENODATA');
      }
      assert.equal(await nxdomain(), 1);
      assert.equal(await nodata(), 1);
      await sleep(600);
      assert.equal((await rejection(resolver('negative.zone.test', 'A'))).code, 'ENOTFOUND');
      assert.equal((await rejection(resolver('a-only.zone.test', 'TXT'))).code, 'ENODATA');
      assert.equal(await nxdomain(), 2);
      assert.equal(await nodata(), 2);
    });

    it('an A answer lives for its TTL (node:dns reports it); an MX answer, whose TTL node:dns hides, for maxTtlSeconds', async () => {
      const resolver = resolverFor({ cache: { maxTtlSeconds: 60 } });
      const a = await counter('short-ttl.zone.test', 'A');
      const mx = await counter('short-ttl.zone.test', 'MX');
      await resolver('short-ttl.zone.test', 'A');
      await resolver('short-ttl.zone.test', 'MX');
      await resolver('short-ttl.zone.test', 'A');
      await resolver('short-ttl.zone.test', 'MX');
      assert.deepEqual([await a(), await mx()], [1, 1]);
      await sleep(1_100); // the A record's TTL is 1 s; the MX record's is unknown here, so 60 s
      await resolver('short-ttl.zone.test', 'A');
      await resolver('short-ttl.zone.test', 'MX');
      assert.deepEqual([await a(), await mx()], [2, 1]);

      const shortMax = resolverFor({ cache: { maxTtlSeconds: 0.5 } });
      const copies = await counter('copies.zone.test', 'MX');
      await shortMax('copies.zone.test', 'MX');
      await shortMax('copies.zone.test', 'MX');
      await sleep(600);
      await shortMax('copies.zone.test', 'MX');
      assert.equal(await copies(), 2);
    });

    it('the cache holds at most maxEntries answers: the least recently used one is asked again', async () => {
      const resolver = resolverFor({ cache: { maxEntries: 3 } });
      const oldest = await counter('lru-0.zone.test', 'A');
      const newest = await counter('lru-3.zone.test', 'A');
      for (let i = 0; i < 4; i++) await resolver(`lru-${i}.zone.test`, 'A');
      assert.equal(resolver.stats().cached, 3);
      assert.deepEqual(await resolver('lru-3.zone.test', 'A'), ['192.0.2.13']);
      assert.deepEqual(await resolver('lru-0.zone.test', 'A'), ['192.0.2.10']);
      assert.equal(await newest(), 1, 'the newest answer was still cached');
      assert.equal(await oldest(), 2, 'the oldest answer had been evicted');
      assert.equal(resolver.stats().cached, 3);
    });

    it('the cache is bounded in bytes too: answers past maxBytes evict the oldest, and one over a tenth of it is not kept', async () => {
      const resolver = resolverFor({ cache: { maxBytes: 9_000 } });
      for (let i = 0; i < 12; i++) await resolver(`kb-${i}.zone.test`, 'TXT');
      const { cached } = resolver.stats();
      // About 800 bytes each by the estimate: 12 of them do not fit in 9,000 bytes; ten or so do.
      assert.ok(cached >= 8 && cached <= 11, `${cached} answers of ~800 bytes cached under maxBytes 9,000`);
      const big = await counter('big.zone.test', 'TXT');
      await resolver('big.zone.test', 'TXT');
      // Over 512 octets: truncated over UDP, asked again over TCP — the server counts both.
      const once = await big();
      assert.ok(once >= 1);
      await resolver('big.zone.test', 'TXT');
      assert.equal(await big(), 2 * once, 'an answer over a tenth of maxBytes is asked again every time');
    });

    it('answers are fresh copies: mutating one changes neither the cache nor what concurrent callers get', async () => {
      const resolver = resolverFor();
      const [first, second] = (await Promise.all([resolver('copies.zone.test', 'MX'), resolver('copies.zone.test', 'MX')])) as { exchange: string; priority: number }[][];
      assert.notEqual(first, second);
      assert.notEqual(first![0], second![0]);
      first![0]!.exchange = 'evil.example';
      first!.push({ exchange: 'more.example', priority: 0 });
      assert.deepEqual(second, [{ exchange: 'mail.zone.test', priority: 10 }]);
      assert.deepEqual(await resolver('copies.zone.test', 'MX'), [{ exchange: 'mail.zone.test', priority: 10 }]);

      const addresses = (await resolver('copies.zone.test', 'A')) as string[];
      const order = [...addresses];
      addresses.length = 0;
      assert.deepEqual(await resolver('copies.zone.test', 'A'), order, 'the cached answer, in the order it came');

      const txt = (await resolver('copies.zone.test', 'TXT')) as string[][];
      txt[0]![0] = 'v=spf1 +all';
      assert.deepEqual(await resolver('copies.zone.test', 'TXT'), [['v=spf1 -all']]);

      const error = await rejection(resolver('nowhere.zone.test', 'A'));
      error.code = 'ESERVFAIL';
      assert.equal((await rejection(resolver('nowhere.zone.test', 'A'))).code, 'ENOTFOUND');
    });

    it('cache: false keeps nothing but still coalesces concurrent identical queries', async () => {
      const resolver = resolverFor({ cache: false });
      const asked = await counter('mail.zone.test', 'A');
      await Promise.all(Array.from({ length: 20 }, () => resolver('mail.zone.test', 'A')));
      assert.equal(await asked(), 1);
      await resolver('mail.zone.test', 'A');
      assert.equal(await asked(), 2);
      assert.deepEqual(resolver.stats(), { queries: 2, sent: 2, cacheHits: 0, coalesced: 19, failures: 0, cached: 0 });
    });

    it('clear() empties the cache: the next lookup asks the server', async () => {
      const resolver = resolverFor();
      const asked = await counter('mail.zone.test', 'MX');
      await rejection(resolver('mail.zone.test', 'MX'));
      await rejection(resolver('mail.zone.test', 'MX'));
      resolver.clear();
      assert.equal(resolver.stats().cached, 0);
      await rejection(resolver('mail.zone.test', 'MX'));
      assert.equal(await asked(), 2);
    });
  });

  it(`SPEC §6: a burst of ${BURST_DECISIONS} concurrent lookups for ${BURST_DOMAINS} new domains (MX and A) reaches the server at most once per domain and type`, async (t) => {
    const resolver = resolverFor({ timeoutMs: 2000, tries: 2 });
    const domains = Array.from({ length: BURST_DOMAINS }, (_, i) => `burst-${i}.zone.test`);
    const before = await server.queries();
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: BURST_DECISIONS }, (_, i) => {
        const domain = domains[i % BURST_DOMAINS]!;
        return Promise.all([resolver(domain, 'MX'), resolver(domain, 'A')]);
      }),
    );
    answers.forEach(([mx, a], i) => {
      const n = i % BURST_DOMAINS;
      assert.deepEqual(mx, [{ exchange: `mx.burst-${n}.zone.test`, priority: 10 }]);
      assert.deepEqual(a, [burstAddress(n)]);
    });
    const ms = performance.now() - started;
    const names = new Set(domains);
    const burst = (await server.queries()).slice(before.length).filter((query) => names.has(query.name));
    const count = (type: string) => burst.filter((query) => query.type === type).length;
    t.diagnostic(`${BURST_DECISIONS} concurrent lookups × (MX, A) for ${BURST_DOMAINS} domains reached dnsmasq as ${count('MX')} MX and ${count('A')} A queries in ${Math.round(ms)} ms`);
    t.diagnostic(`resolver stats: ${JSON.stringify(resolver.stats())}`);
    assert.ok(count('MX') <= BURST_DOMAINS, `${count('MX')} MX queries`);
    assert.ok(count('A') <= BURST_DOMAINS, `${count('A')} A queries`);
    assert.equal(burst.length, count('MX') + count('A'), 'no other types asked');
    // The resolver's own count of queries on the wire is the server's.
    assert.equal(resolver.stats().sent, burst.length);

    // The same burst again is answered from the cache: nothing more reaches the server.
    const again = await server.queries();
    await Promise.all(Array.from({ length: BURST_DECISIONS }, (_, i) => Promise.all([resolver(domains[i % BURST_DOMAINS]!, 'MX'), resolver(domains[i % BURST_DOMAINS]!, 'A')])));
    const repeated = (await server.queries()).slice(again.length).filter((query) => names.has(query.name)).length;
    t.diagnostic(`the repeated burst reached dnsmasq with ${repeated} queries`);
    assert.equal(repeated, 0);
  });

  it("works as mailauth's resolver: SPF through TXT, MX and A lookups, passing the MX host and failing another address", async () => {
    const resolver = resolverFor();
    const txt = await counter('spf.zone.test', 'TXT');
    const pass = await spf({ sender: 'alice@spf.zone.test', ip: '198.51.100.25', helo: 'mail.spf.zone.test', mta: 'mx.receiver.test', resolver: resolver as DNSResolver });
    assert.equal(pass.status.result, 'pass');
    const fail = await spf({ sender: 'alice@spf.zone.test', ip: '198.51.100.26', helo: 'elsewhere.test', mta: 'mx.receiver.test', resolver: resolver as DNSResolver });
    assert.equal(fail.status.result, 'fail');
    assert.equal(await txt(), 1, 'the second evaluation read the SPF record from the cache');
    assert.ok(resolver.stats().cacheHits >= 3, `the second evaluation was answered from the cache: ${JSON.stringify(resolver.stats())}`);
  });
});

describe('createDnsResolver options and arguments', () => {
  const refused: [string, unknown, RegExp][] = [
    ['an unknown option', { server: ['127.0.0.1'] }, /Unknown setting options\.server; known: servers, timeoutMs, tries, cache/],
    ['options that are not an object', 'fast', /options must be an object/],
    ['an empty server list', { servers: [] }, /servers must be a non-empty array/],
    ['a server that is not an IP address', { servers: ['dns.example'] }, /servers\[0\] "dns\.example" is not a DNS server/],
    ['port 0 (which aborts Node 20 in setServers)', { servers: ['127.0.0.1:0'] }, /servers\[0\] "127\.0\.0\.1:0" is not a DNS server/],
    ['a port over 65535 (which setServers wraps)', { servers: ['127.0.0.1:99999'] }, /is not a DNS server/],
    ['a zero timeout', { timeoutMs: 0 }, /timeoutMs must be a whole number from 1 to 600000, got 0/],
    ['a fractional number of tries', { tries: 1.5 }, /tries must be a whole number from 1 to 10/],
    ['cache: true', { cache: true }, /cache must be an object \(use \{\} for the defaults\) or false/],
    ['an unknown cache option', { cache: { ttl: 5 } }, /Unknown setting cache\.ttl; known: maxEntries, maxBytes, maxTtlSeconds, minTtlSeconds, negativeTtlSeconds/],
    ['maxEntries 0', { cache: { maxEntries: 0 } }, /cache\.maxEntries must be a whole number from 1/],
    ['a negative TTL', { cache: { negativeTtlSeconds: -1 } }, /cache\.negativeTtlSeconds must be a number of seconds/],
    ['minTtlSeconds above maxTtlSeconds', { cache: { minTtlSeconds: 600, maxTtlSeconds: 60 } }, /cache\.minTtlSeconds \(600\) must not be above cache\.maxTtlSeconds \(60\)/],
  ];
  for (const [what, options, message] of refused) {
    it(`refuses ${what} at creation with OutboundPoolsError invalid-context`, () => {
      assert.throws(
        () => createDnsResolver(options as DnsResolverOptions),
        (error: unknown) => error instanceof OutboundPoolsError && error.code === 'invalid-context' && message.test(error.message),
      );
    });
  }

  it('accepts IPv4 and IPv6 servers with and without ports, and no options at all (the system servers)', async () => {
    // Accepted at creation (none of these is asked: 192.0.2.0/24 may be a real network here).
    createDnsResolver({ servers: ['192.0.2.53', '127.0.0.1:5353', '2001:db8::53', '[2001:db8::53]:5353'] });
    createDnsResolver();
    // And used as spelled: 'IPv4:port' and '[IPv6]:port' reach a real dnsmasq (through a UDP
    // relay on ::1 for the IPv6 form: dnsmasq listens on 127.0.0.1), and a list is asked in order.
    const dnsmasq = await startDnsmasq({ 'a-only.zone.test': { A: ['192.0.2.1'] } });
    const silent = await startSilentDnsServer();
    const relay = createSocket('udp6');
    const clients = new Map<number, RemoteInfo>();
    const upstream = createSocket('udp4');
    try {
      relay.on('message', (query, from) => {
        clients.set(query.readUInt16BE(0), from);
        upstream.send(query, dnsmasq.port, '127.0.0.1');
      });
      upstream.on('message', (reply) => {
        const client = clients.get(reply.readUInt16BE(0));
        if (client !== undefined) relay.send(reply, client.port, client.address);
      });
      await new Promise<void>((resolve) => relay.bind(0, '::1', resolve));
      const ipv6 = `[::1]:${relay.address().port}`;
      for (const servers of [[dnsmasq.address], [ipv6]]) {
        const resolver = createDnsResolver({ servers, timeoutMs: 2_000, tries: 1 });
        assert.deepEqual(await resolver('a-only.zone.test', 'A'), ['192.0.2.1'], servers[0]);
        assert.equal(resolver.stats().sent, 1);
      }
      const inOrder = createDnsResolver({ servers: [silent.address, dnsmasq.address], timeoutMs: 300, tries: 2 });
      assert.deepEqual(await inOrder('a-only.zone.test', 'A'), ['192.0.2.1']);
      assert.equal(silent.received, 1, 'the first server was asked first');
      assert.equal(inOrder.stats().sent, 2);
    } finally {
      relay.close();
      upstream.close();
      await silent.stop();
      await dnsmasq.stop();
    }
  });

  it('rejects a call with a wrong argument or an unsupported record type with invalid-context', async () => {
    const resolver = createDnsResolver({ servers: ['127.0.0.1:9'] });
    await assert.rejects((resolver as (name: unknown, rrtype: unknown) => Promise<unknown>)(42, 'A'), { name: 'OutboundPoolsError', code: 'invalid-context' });
    await assert.rejects(resolver('example.test', 'TLSA-ish'), { name: 'OutboundPoolsError', code: 'invalid-context', message: /does not look up "TLSA-ish"/ });
    assert.equal(resolver.stats().queries, 0);
  });
});
