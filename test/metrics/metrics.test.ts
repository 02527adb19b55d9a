import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { decidePool } from '../../src/decide/gather.js';
import type { DecideContext, Decision } from '../../src/decide/types.js';
import { createPolicy } from '../../src/policy.js';
import { createStaticResolver } from '../../src/providers/static-dns.js';
import { createDecisionMetrics } from '../../src/metrics/index.js';
import { createMemoryRateLimiter } from '../../src/providers/memory-limiter.js';
import type { LimiterEvent } from '../../src/providers/types.js';

const context: DecideContext = {
  policy: createPolicy({ acceptedDomains: ['contoso.com'], spam: { threshold: 5 }, onProviderFailure: { spam: 'defer' } }),
  providers: {
    dns: createStaticResolver({
      'fabrikam.example': { MX: [{ exchange: 'mx.fabrikam.example', priority: 10 }] },
      'contoso.com': { MX: [{ exchange: 'mx.contoso.com', priority: 10 }] },
    }),
    spam: { classify: () => Promise.reject(new Error('down')) },
  },
  now: new Date(1_800_000_000_000),
};

async function decisions(): Promise<Decision[]> {
  const spamFree = { ...context, providers: { dns: context.providers!.dns! } };
  return [
    await decidePool({ mailFrom: 'a@contoso.com', rcptTo: ['x@example.net'], spam: { score: 1 } }, spamFree),
    await decidePool({ mailFrom: 'b@contoso.com', rcptTo: ['x@example.net'], spam: { score: 1 } }, spamFree),
    await decidePool({ mailFrom: '', rcptTo: ['x@example.net'], spam: { score: 1 } }, spamFree),
    await decidePool({ mailFrom: 'c@fabrikam.example', rcptTo: ['x@example.net'], spam: { score: 9 } }, spamFree),
    await decidePool({ mailFrom: 'd@fabrikam.example', rcptTo: ['x@example.net'], spam: { score: 0 } }, spamFree),
    await decidePool({ mailFrom: 'e@contoso.com', rcptTo: ['x@example.net'] }, context),
  ];
}

/** The samples of a text exposition: `name{labels}` → value. */
function samples(text: string): Map<string, number> {
  const result = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\d+)$/.exec(line);
    assert.ok(match, `a well-formed sample line: ${JSON.stringify(line)}`);
    result.set(match[1]!, Number(match[2]));
  }
  return result;
}

describe('createDecisionMetrics', () => {
  it('counts decisions by action, pool and deciding reason, every reason, and failures by provider', async () => {
    const metrics = createDecisionMetrics();
    for (const decision of await decisions()) metrics.observe(decision);
    const text = metrics.text();
    assert.match(text, /^# HELP outbound_pools_decisions_total .+\n# TYPE outbound_pools_decisions_total counter\n/);
    assert.deepEqual(
      Object.fromEntries(samples(text)),
      {
        'outbound_pools_decisions_total{action="defer",pool="none",reason="provider-failed"}': 1,
        'outbound_pools_decisions_total{action="deliver",pool="high-risk",reason="ndr"}': 1,
        'outbound_pools_decisions_total{action="deliver",pool="high-risk",reason="spam"}': 1,
        'outbound_pools_decisions_total{action="deliver",pool="normal",reason="accepted-domain"}': 2,
        'outbound_pools_decisions_total{action="deliver",pool="relay",reason="relay-unverified"}': 1,
        'outbound_pools_reasons_total{reason="accepted-domain"}': 2,
        'outbound_pools_reasons_total{reason="ndr"}': 1,
        'outbound_pools_reasons_total{reason="provider-failed"}': 1,
        'outbound_pools_reasons_total{reason="relay-unverified"}': 1,
        'outbound_pools_reasons_total{reason="spam"}': 1,
        'outbound_pools_provider_failures_total{provider="spam"}': 1,
      },
    );
  });

  it('a value outside the known sets counts as other, so it cannot add series', () => {
    const metrics = createDecisionMetrics({ prefix: 'mta_' });
    metrics.observe({ action: 'deliver', pool: 'normal', reasons: [{ code: 'x"\n{evil}' }] } as unknown as Decision);
    assert.equal(samples(metrics.text()).get('mta_decisions_total{action="deliver",pool="normal",reason="other"}'), 1);
    metrics.reset();
    assert.equal(samples(metrics.text()).size, 0);
  });

  it('refuses a prefix that is not a metric name and unknown options', () => {
    assert.throws(() => createDecisionMetrics({ prefix: 'bad prefix' }), TypeError);
    assert.throws(() => createDecisionMetrics({ prefx: 'a_' } as never), /Unknown metrics option "prefx"/);
  });

  it('serves a scrape over HTTP with the exposition content type', async () => {
    const metrics = createDecisionMetrics();
    for (const decision of await decisions()) metrics.observe(decision);
    const server = createServer((request, response) => {
      response.writeHead(request.url === '/metrics' ? 200 : 404, { 'content-type': metrics.contentType });
      response.end(request.url === '/metrics' ? metrics.text() : '');
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as { port: number };
      const scrape = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(scrape.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
      assert.equal(samples(await scrape.text()).get('outbound_pools_decisions_total{action="deliver",pool="normal",reason="accepted-domain"}'), 2);
    } finally {
      server.close();
    }
  });

  it("counts a limiter's events by type, and its restrictions by cause; unsubscribing stops it", async () => {
    const metrics = createDecisionMetrics();
    const limiter = createMemoryRateLimiter();
    const stop = metrics.observeLimiter(limiter);
    const now = new Date('2026-11-23T10:00:00.000Z');
    const limits = [{ name: 'watch', action: 'alert' as const, messagesPerMinute: 1 }, { name: 'hard', action: 'block-user' as const, messagesPerMinute: 3 }];
    const send = (ms: number, external = 1) =>
      limiter.consumeSync({ key: 'megan@contoso.com', internalRecipients: 0, externalRecipients: external, limits, tenant: { key: 'contoso', externalRecipientsPerDay: 4 }, now: new Date(now.getTime() + ms) });
    send(0); // counted
    send(1); // limit-alert
    send(2, 3); // tenant-cap (2 + 3 > 4)
    send(3); // limit-alert
    send(4); // refused by hard: restricted (limit)
    limiter.reportSpamSync({ key: 'spam@contoso.com', restrictAfter: { count: 1, window: 'hour', action: 'block-user' }, now });
    await limiter.restrict('admin@contoso.com', { now });
    await limiter.release('admin@contoso.com', now);
    await Promise.resolve(); // events arrive in a microtask
    assert.deepEqual(
      Object.fromEntries([...samples(metrics.text())].filter(([name]) => name.includes('limiter'))),
      {
        'outbound_pools_limiter_events_total{type="limit-alert"}': 2,
        'outbound_pools_limiter_events_total{type="released"}': 1,
        'outbound_pools_limiter_events_total{type="restricted"}': 3,
        'outbound_pools_limiter_events_total{type="tenant-cap"}': 1,
        'outbound_pools_limiter_restrictions_total{cause="admin"}': 1,
        'outbound_pools_limiter_restrictions_total{cause="limit"}': 1,
        'outbound_pools_limiter_restrictions_total{cause="spam"}': 1,
      },
    );
    assert.match(metrics.text(), /# TYPE outbound_pools_limiter_events_total counter\n/);
    stop();
    await limiter.restrict('again@contoso.com', { now });
    await Promise.resolve();
    assert.equal(samples(metrics.text()).get('outbound_pools_limiter_events_total{type="restricted"}'), 3);
    // An event of an unknown type or cause counts as other.
    metrics.observeLimiterEvent({ type: 'surprise', at: now.toISOString(), key: 'k' } as unknown as LimiterEvent);
    metrics.observeLimiterEvent({ type: 'restricted', at: now.toISOString(), key: 'k', restriction: { until: null, since: now.toISOString(), cause: { kind: 'x' } } } as unknown as LimiterEvent);
    assert.equal(samples(metrics.text()).get('outbound_pools_limiter_events_total{type="other"}'), 1);
    assert.equal(samples(metrics.text()).get('outbound_pools_limiter_restrictions_total{cause="other"}'), 1);
    assert.throws(() => metrics.observeLimiter({} as never), TypeError);
  });

  it('knows the reason codes of the outbound-spam model (tenant-limit-exceeded, spam-restriction)', () => {
    const metrics = createDecisionMetrics();
    for (const code of ['tenant-limit-exceeded', 'spam-restriction']) {
      metrics.observe({ action: 'block', pool: null, reasons: [{ code }] } as unknown as Decision);
      assert.equal(samples(metrics.text()).get(`outbound_pools_reasons_total{reason="${code}"}`), 1);
    }
  });
});
