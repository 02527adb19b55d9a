// The static resolver answers as dns.promises.resolve answers from a recursive server holding the
// same zone: checked side by side against node:dns asking dnsmasq (test/servers/dnsmasq.ts)
// serving that zone, then for what dnsmasq cannot serve (CNAME to non-address records, loops).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { types } from 'node:util';
import { spf } from 'mailauth';
import { checkMailHost } from '../../src/dns/mail-host.js';
import { decidePool } from '../../src/decide/gather.js';
import { createStaticResolver, type StaticZone } from '../../src/providers/static-dns.js';
import { startDnsmasq, type DnsmasqServer } from '../servers/dnsmasq.js';

const ZONE: StaticZone = {
  'host.zone.test': { A: ['192.0.2.1', '192.0.2.2'], AAAA: ['2001:db8::1'] },
  'alias.zone.test': { CNAME: ['host.zone.test'] },
  'alias2.zone.test': { CNAME: ['alias.zone.test'] },
  'mx.zone.test': { MX: [{ exchange: 'host.zone.test', priority: 10 }, { exchange: 'backup.zone.test', priority: 20 }] },
  'null-mx.zone.test': { MX: [{ exchange: '.', priority: 0 }] },
  'txt.zone.test': { TXT: ['v=spf1 -all', ['chunk one', 'chunk two']] },
  '1.2.0.192.in-addr.arpa': { PTR: ['host.zone.test'] },
};

/**
 * What a lookup gave: the records (in a fixed order: an RRset has none), or the error's code,
 * syscall, hostname and message. An MX record is compared as `{ exchange, priority }`, the
 * DnsResolver contract's shape: Node 24 adds `type: 'MX'` to it, Node 22 does not.
 */
async function outcome(lookup: Promise<unknown>): Promise<unknown> {
  const shape = (record: unknown) => {
    const mx = record as { exchange?: unknown; priority?: unknown } | null;
    return typeof mx === 'object' && mx !== null && 'exchange' in mx ? { exchange: mx.exchange, priority: mx.priority } : record;
  };
  try {
    const records = await lookup;
    return { records: Array.isArray(records) ? records.map((record) => JSON.stringify(shape(record))).sort() : records };
  } catch (error) {
    const { code, syscall, hostname, message } = error as { code?: string; syscall?: string; hostname?: string; message: string };
    return { code, syscall, hostname, message };
  }
}

describe('createStaticResolver answers as node:dns does from a server holding the same zone', () => {
  let server: DnsmasqServer;
  let node: Resolver;
  before(async () => {
    server = await startDnsmasq(ZONE);
    node = new Resolver({ timeout: 2000, tries: 1 });
    node.setServers([server.address]);
  });
  after(async () => {
    await server?.stop();
  });

  const queries: [name: string, type: string][] = [
    ['host.zone.test', 'A'],
    ['host.zone.test', 'AAAA'],
    ['host.zone.test', 'MX'],
    ['host.zone.test', 'TXT'],
    ['alias.zone.test', 'A'],
    ['alias.zone.test', 'AAAA'],
    ['alias.zone.test', 'CNAME'],
    ['alias2.zone.test', 'A'],
    ['alias2.zone.test', 'CNAME'],
    ['mx.zone.test', 'MX'],
    ['null-mx.zone.test', 'MX'],
    ['txt.zone.test', 'TXT'],
    ['1.2.0.192.in-addr.arpa', 'PTR'],
    ['nowhere.zone.test', 'A'],
    ['nowhere.zone.test', 'TXT'],
    ['mx.zone.test', 'A'],
    ['txt.zone.test', 'PTR'],
  ];
  for (const [name, type] of queries) {
    it(`${type} ${name}: the same records, or the same code, syscall, hostname and message`, async () => {
      const staticOutcome = await outcome(createStaticResolver(ZONE)(name, type));
      const nodeOutcome = await outcome(node.resolve(name, type));
      assert.deepEqual(staticOutcome, nodeOutcome);
    });
  }
});

describe('createStaticResolver: CNAME chains for every type, loops, and cheap negative answers', () => {
  const zone: StaticZone = {
    'spf.fabrikam.example': { TXT: ['v=spf1 ip4:198.51.100.0/24 -all'], MX: [{ exchange: 'mx.fabrikam.example', priority: 10 }] },
    'fabrikam.example': { CNAME: ['spf.fabrikam.example'] },
    'mx.fabrikam.example': { A: ['198.51.100.25'] },
    'dangling.example': { CNAME: ['nowhere.example'] },
    'loop-a.example': { CNAME: ['loop-b.example'] },
    'loop-b.example': { CNAME: ['loop-a.example'] },
    ...Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`chain-${i}.example`, { CNAME: [`chain-${i + 1}.example`] }])),
    'chain-20.example': { A: ['192.0.2.20'] },
  };
  const resolver = createStaticResolver(zone);

  it('a name that is a CNAME answers TXT and MX from its target', async () => {
    assert.deepEqual(await resolver('fabrikam.example', 'TXT'), [['v=spf1 ip4:198.51.100.0/24 -all']]);
    assert.deepEqual(await resolver('fabrikam.example', 'MX'), [{ exchange: 'mx.fabrikam.example', priority: 10 }]);
    assert.deepEqual(await resolver('fabrikam.example', 'CNAME'), ['spf.fabrikam.example']);
  });

  it('SPF through a CNAME passes (was permerror), and the sender domain has a mail host (was high-risk)', async () => {
    const result = await spf({ sender: 'alice@fabrikam.example', ip: '198.51.100.25', helo: 'mx.fabrikam.example', resolver: resolver as never });
    assert.equal(result.status.result, 'pass');
    assert.deepEqual(await checkMailHost(resolver, 'fabrikam.example'), { domain: 'fabrikam.example', receivesMail: true, basis: 'mx' });
    const decision = await decidePool({ mailFrom: 'alice@fabrikam.example', rcptTo: ['lee@northwind.example'] }, { providers: { dns: resolver }, now: new Date(0) });
    assert.deepEqual(decision.verdicts.senderDomain, { state: 'provided', value: { domain: 'fabrikam.example', receivesMail: true, basis: 'mx' } });
    assert.notEqual(decision.pool, 'high-risk');
  });

  it('a CNAME to a name that does not exist is ENOTFOUND; a loop, or a chain over 16 links, is ESERVFAIL (a failure, not absence)', async () => {
    assert.equal(((await outcome(resolver('dangling.example', 'A'))) as { code: string }).code, 'ENOTFOUND');
    assert.equal(((await outcome(resolver('loop-a.example', 'TXT'))) as { code: string }).code, 'ESERVFAIL');
    assert.equal(((await outcome(resolver('chain-0.example', 'A'))) as { code: string }).code, 'ESERVFAIL');
    assert.deepEqual(await resolver('chain-4.example', 'A'), ['192.0.2.20']);
  });

  it('a negative answer is an Error with code, syscall and hostname, made without capturing a stack trace', async () => {
    const error = await resolver('nowhere.example', 'MX').catch((caught: unknown) => caught);
    assert.ok(error instanceof Error);
    assert.deepEqual({ ...(error as object) }, { message: 'queryMx ENOTFOUND nowhere.example', stack: 'Error: queryMx ENOTFOUND nowhere.example', code: 'ENOTFOUND', syscall: 'queryMx', hostname: 'nowhere.example' });
    // What made every negative answer cost a stack trace was constructing a native Error (V8
    // captures the stack there). Checked structurally, not by timing: the answer, rejected or
    // thrown by lookupSync, is no native Error; its stack is a plain string with no frames; and
    // V8 never formats a captured stack for it (Error.prepareStackTrace, which V8 calls when a
    // captured stack is first read, is not called), while it is for a plain Error (the control).
    let thrown: unknown;
    try {
      resolver.lookupSync('nowhere.example', 'A');
    } catch (caught) {
      thrown = caught;
    }
    const saved = Error.prepareStackTrace;
    let formatted = 0;
    Error.prepareStackTrace = () => {
      formatted++;
      return 'formatted';
    };
    try {
      for (const negative of [error, thrown, await resolver('nowhere.example', 'TXT').catch((caught: unknown) => caught)]) {
        assert.ok(negative instanceof Error);
        assert.equal(types.isNativeError(negative), false);
        const stack = Object.getOwnPropertyDescriptor(negative, 'stack');
        assert.ok(stack !== undefined && 'value' in stack && stack.get === undefined, 'the stack is a data property, not a captured one');
        assert.equal(negative.stack, `Error: ${negative.message}`);
        assert.doesNotMatch(negative.stack, /\n\s+at /);
      }
      assert.equal(formatted, 0, 'a stack was captured for a negative answer');
      assert.equal(new Error('control').stack, 'formatted');
      assert.equal(formatted, 1, 'the control: a plain Error captures a stack');
    } finally {
      Error.prepareStackTrace = saved;
    }
    assert.equal(((await outcome(resolver('nowhere.example', 'A'))) as { code: string }).code, 'ENOTFOUND');
  });

  it('names are taken as createDnsResolver takes them: case, trailing dot, U-labels; EBADNAME for a non-name', async () => {
    const idn = createStaticResolver({ 'Bücher.example': { A: ['192.0.2.9'] } });
    assert.deepEqual(await idn('BÜCHER.example.', 'a'), ['192.0.2.9']);
    assert.deepEqual(await idn('xn--bcher-kva.example', 'A'), ['192.0.2.9']);
    for (const name of ['a..example', `${'x'.repeat(64)}.example`, '']) {
      assert.equal(((await outcome(idn(name, 'A'))) as { code: string }).code, 'EBADNAME', JSON.stringify(name));
    }
    await assert.rejects(idn('example', 'SPF'), { name: 'OutboundPoolsError', code: 'invalid-context' });
    const keys = createStaticResolver({ 's1._domainkey.Fabrikam.example': { TXT: ['v=DKIM1; p='] }, '_dmarc.fabrikam.example': { TXT: ['v=DMARC1; p=none'] } });
    assert.deepEqual(await keys('S1._DOMAINKEY.fabrikam.example', 'TXT'), [['v=DKIM1; p=']]);
    assert.deepEqual(await keys('_dmarc.fabrikam.example.', 'TXT'), [['v=DMARC1; p=none']]);
    // A label UTS-46 would map beyond case is no name, as normaliseDomain refuses it: without the
    // check these were asked as _dmarc.fabrikam.example (the soft hyphen and the zero-width space
    // dropped, the fullwidth letters mapped) and as a label holding a dot.
    for (const name of ['_dmarc.fab\u00ADrikam.example', '_dmarc.fabri\u200Bkam.example', '_dmarc.ｆａｂｒｉｋａｍ.example', '_dmarc.fabrikam\u3002example']) {
      assert.equal(((await outcome(keys(name, 'TXT'))) as { code: string }).code, 'EBADNAME', JSON.stringify(name));
    }
    // U-labels beside an underscore label stay names.
    const ulabel = createStaticResolver({ '_dmarc.bücher.example': { TXT: ['v=DMARC1; p=none'] } });
    assert.deepEqual(await ulabel('_DMARC.BÜCHER.example', 'TXT'), [['v=DMARC1; p=none']]);
    assert.deepEqual(await ulabel('_dmarc.xn--bcher-kva.example', 'TXT'), [['v=DMARC1; p=none']]);
  });
});
