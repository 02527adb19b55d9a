// How long the mailauth authenticator takes on a message whose From field is 80 KB of one
// character that address parsers find hard (commas, colons, quotes, angle brackets), against a
// plain 80 KB From. mailauth 4.13 (nodemailer 8.0.7's quadratic address parser,
// GHSA-2x7j-588g-ccc2) took 8.6 s on such a field; run with `node bench/mailauth-from.mjs`.
import { createStaticResolver } from '../dist/index.js';
import { createMailauthAuthenticator } from '../dist/mailauth/index.js';
import { createRequire } from 'node:module';

const mailauthVersion = createRequire(import.meta.url)('mailauth/package.json').version;
const resolver = createStaticResolver({ 'example.org': { TXT: [['v=spf1 ip4:203.0.113.7 -all']] } });
const authenticator = createMailauthAuthenticator({ resolver, mta: 'mx1.contoso.com' });
const SIZE = 80 * 1024;
const fields = {
  plain: `From: ${'a'.repeat(SIZE)}@example.org`,
  commas: `From: ${','.repeat(SIZE)}`,
  colons: `From: ${':'.repeat(SIZE)}`,
  quotes: `From: ${'"'.repeat(SIZE)}`,
  'angle brackets': `From: ${'<'.repeat(SIZE)}`,
  'group syntax': `From: ${'g:a@example.org;'.repeat(SIZE / 16)}`,
};
console.log(`mailauth ${mailauthVersion}, Node ${process.version}: authenticate a message with an 80 KB From field`);
for (const [name, from] of Object.entries(fields)) {
  const raw = `${from}\r\nTo: bob@example.net\r\nSubject: hi\r\nDKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1; h=from; bh=AAAA; b=AAAA\r\n\r\nbody\r\n`;
  const message = { raw, mailFrom: 'alice@example.org', rcptTo: ['bob@example.net'], ingress: { ip: '203.0.113.7', helo: 'mx.example.org' } };
  const times = [];
  for (let round = 0; round < 3; round++) {
    const started = performance.now();
    await authenticator.authenticate(message, new AbortController().signal);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  console.log(`  ${name.padEnd(15)} min ${times[0].toFixed(1)} ms, max ${times[2].toFixed(1)} ms`);
}
