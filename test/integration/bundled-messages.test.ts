// The demo's bundled messages, decided by real providers instead of precomputed verdicts: DNS
// from a real dnsmasq serving examples/zone.json, authentication by mailauth through that DNS,
// spam verdicts from a real rspamd, limits counted in memory as in the demo. They must land in the
// same pools as in the demo.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decidePool } from '../../src/decide/gather.js';
import type { OutboundMessage } from '../../src/decide/types.js';
import { createPolicy, type PolicyInput } from '../../src/policy.js';
import { createDnsResolver } from '../../src/providers/dns.js';
import { createMemoryRateLimiter } from '../../src/providers/memory-limiter.js';
import { createMailauthAuthenticator } from '../../src/mailauth/authenticator.js';
import { createRspamdClassifier } from '../../src/rspamd/classifier.js';
import type { StaticZone } from '../../src/providers/static-dns.js';
import { Srs } from '../../src/srs/index.js';
import { startDnsmasq, type DnsmasqServer } from '../servers/dnsmasq.js';
import { startRspamd, type RspamdServer } from '../servers/rspamd.js';

const EXAMPLES = new URL('../../examples/', import.meta.url).pathname;

// The pools of test/cli/decide.test.ts, where the verdicts came precomputed.
const EXPECTED: Record<string, { pool: string | null; first: string }> = {
  '01-accepted-domain.eml': { pool: 'normal', first: 'accepted-domain' },
  '02-ndr.eml': { pool: 'high-risk', first: 'ndr' },
  '03-spam.eml': { pool: 'high-risk', first: 'spam' },
  '04-forward-spf-pass.eml': { pool: 'normal', first: 'spf-pass' },
  '05-forward-unverified.eml': { pool: 'relay', first: 'relay-unverified' },
  '06-unresolvable-sender.eml': { pool: 'high-risk', first: 'sender-domain-unresolvable' },
  '07-too-many-recipients.eml': { pool: null, first: 'recipients-per-message-exceeded' },
  '08-null-mx-sender.eml': { pool: 'high-risk', first: 'sender-domain-unresolvable' },
  // Under examples/policy.json (the set's default, no scoped policy): rspamd scores the offer low.
  '09-scoped-policy.eml': { pool: 'normal', first: 'accepted-domain' },
  '10-auto-forward-blocked.eml': { pool: null, first: 'auto-forwarding-blocked' },
  // The memory limiter counts as in the demo: 01 and 09 count for the tenant contoso first.
  '11-tenant-over-cap.eml': { pool: null, first: 'tenant-limit-exceeded' },
};

/** The envelope of an example, without the verdicts it carries for the offline demo. */
function envelopeOf(file: string): OutboundMessage {
  const { spam: _spam, authentication: _authentication, ...envelope } = JSON.parse(
    readFileSync(join(EXAMPLES, 'messages', file.replace(/\.eml$/, '.json')), 'utf8'),
  ) as Record<string, unknown>;
  // rspamd judges `Date:` by its own wall clock (DATE_IN_PAST), which no test can inject: a
  // message dated in the example is dated now here, as the decision's clock is now.
  const raw = readFileSync(join(EXAMPLES, 'messages', file), 'utf8').replace(/^Date: .*$/m, `Date: ${new Date().toUTCString().replace(/GMT$/, '+0000')}`);
  return { ...(envelope as unknown as OutboundMessage), headers: raw };
}

describe('the bundled messages through real DNS, mailauth and rspamd', () => {
  let dns: DnsmasqServer;
  let rspamd: RspamdServer;
  before(async () => {
    [dns, rspamd] = await Promise.all([startDnsmasq(JSON.parse(readFileSync(join(EXAMPLES, 'zone.json'), 'utf8')) as StaticZone), startRspamd()]);
  });
  after(async () => {
    await Promise.all([dns?.stop(), rspamd?.stop()]);
  });

  it('every example lands in the pool the demo shows, for the same reason', async () => {
    const resolver = createDnsResolver({ servers: [dns.address], timeoutMs: 1000, tries: 1 });
    const policy = createPolicy(JSON.parse(readFileSync(join(EXAMPLES, 'policy.json'), 'utf8')) as PolicyInput);
    const providers = {
      rateLimiter: createMemoryRateLimiter(),
      dns: resolver,
      authenticator: createMailauthAuthenticator({ resolver, mta: 'mx1.contoso.com' }),
      spam: createRspamdClassifier({ url: rspamd.url }),
    };
    const srs = { rewriter: new Srs({ secret: 'integration-secret' }), domain: 'contoso.com' };
    const files = readdirSync(join(EXAMPLES, 'messages')).filter((file) => file.endsWith('.eml')).sort();
    assert.deepEqual(files, Object.keys(EXPECTED));
    const seen: Record<string, { pool: string | null; first: string }> = {};
    for (const file of files) {
      const decision = await decidePool(envelopeOf(file), { policy, providers, srs });
      seen[file] = { pool: decision.pool, first: decision.reasons[0]!.code };
      const failures = decision.reasons.filter((reason) => reason.code === 'provider-failed' || reason.code === 'dns-error');
      assert.deepEqual(failures, [], `${file}: a provider failed: ${JSON.stringify(failures)}`);
    }
    assert.deepEqual(seen, EXPECTED);
  });
});
