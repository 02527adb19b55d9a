// What decidePool hands to the providers, and what it does not ask for.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { decidePool } from '../../src/decide/gather.js';
import type { ProviderMessage } from '../../src/providers/types.js';

it('the spam classifier and the authenticator get the envelope, submitter, queue id, ingress and raw message', async () => {
  const seen: ProviderMessage[] = [];
  const headers = 'From: alice@fabrikam.example\r\n\r\nbody\r\n';
  await decidePool(
    { mailFrom: 'alice@fabrikam.example', rcptTo: ['lee@northwind.example'], headers, submitter: 'user-42', queueId: '4Xk9Lz1abc', ingress: { ip: '198.51.100.25', helo: 'mx.fabrikam.example' } },
    {
      providers: {
        spam: { classify: async (message) => (seen.push(message), { score: 0 }) },
        authenticator: { authenticate: async (message) => (seen.push(message), {}) },
      },
    },
  );
  assert.equal(seen.length, 2);
  for (const message of seen) {
    assert.deepEqual(message, {
      raw: headers,
      mailFrom: 'alice@fabrikam.example',
      rcptTo: ['lee@northwind.example'],
      submitter: 'user-42',
      queueId: '4Xk9Lz1abc',
      ingress: { ip: '198.51.100.25', helo: 'mx.fabrikam.example' },
    });
  }
});

it('an accepted-domain sender is not sent to the authenticator: rules 7 and 8 do not apply to it', async () => {
  let asked = false;
  const decision = await decidePool(
    { mailFrom: 'megan@contoso.com', rcptTo: ['lee@northwind.example'] },
    { policy: { acceptedDomains: ['contoso.com'] }, providers: { authenticator: { authenticate: async () => ((asked = true), {}) } } },
  );
  assert.equal(asked, false);
  assert.deepEqual(decision.verdicts.authentication, { state: 'absent', why: 'not needed: only forwards from outside the accepted domains are checked' });
});
